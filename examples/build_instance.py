"""Build an instance in Python from pandapower nets and run the market on it.

    python examples/build_instance.py [--transmission case118] [--dsos 6] [--prosumers 8]
                                      [--method mlf] [--out DIR]

Requires the optional extra ``simbench`` (``pip install 'flexopt[simbench]'``): the DSOs
alternate between the IEEE 33-bus feeder (pandapower ``case33bw``, 12.66 kV) and the SimBench
rural low-voltage grid ``1-LV-rural1--0-sw`` (0.4 kV, read with its MV/LV transformer). The
script stops with one line if simbench is missing.

The recipe is ``flexopt generate``'s (``instances/README.md``), written out with the public
API:

1. ``fx.Instance.from_pandapower`` on the transmission case with a probe DSO, and the
   day-ahead flows of that instance;
2. an unforecast +8 % load on every load bus in hours 13–15; the two lines that surge
   stresses most get an operating limit 2 % above their day-long base-case maximum
   (``ratings_mw``), so the surge congests them;
3. the DSOs at the load buses where a load reduction relieves those lines most, each with
   ``round(0.6 · bus load / feeder peak)`` copies of its feeder and prosumers drawn by
   ``fx.instance.make_prosumers`` (through ``DSOSpec(prosumers=N)``);
4. ``fx.run_market`` with the chosen method; ``--out`` saves the instance (``Instance.save``)
   beside the results.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import flexopt as fx
from flexopt.instance import DSOSpec

LV = "simbench:1-LV-rural1--0-sw"
FEEDERS = ("case33bw", LV)
SURGE_PU, SURGE_HOURS, MARGIN, SHARE = 0.08, (13, 14, 15), 1.02, 0.6


def build(
    transmission: str = "case118", n_dsos: int = 6, prosumers: int = 8, seed: int = 0
) -> fx.Instance:
    """The instance of the module docstring (steps 1–3)."""
    from flexopt.run.tso import day_ahead_flows  # the day-ahead market (S1) and its flows

    # 1. a probe instance: transmission tables, peak loads and the day-ahead flows
    probe = fx.Instance.from_pandapower(
        transmission, [DSOSpec("probe", _first_load_bus(transmission), "case33bw", prosumers=1)]
    )
    load = probe.transmission.buses["load_p_mw"]
    load_buses = load.index[load > 0]
    flows = day_ahead_flows(probe)
    f0, h, lf = flows.flow_mw, flows.sensitivity, flows.load_mw
    # 2. the surge and the two lines it stresses most (among those carrying a real flow)
    on = np.isin(probe.hour_index, SURGE_HOURS)[:, None]
    delta = np.where(np.isin(flows.network.bus, load_buses), SURGE_PU, 0.0)[None, :] * on
    f1 = f0 - np.einsum("tlb,tb->tl", h, lf * delta)
    base_max = np.abs(f0).max(axis=0)
    real = base_max >= 0.05 * base_max.max()
    stress = np.where(real, np.abs(f1).max(axis=0) / np.maximum(base_max, 1e-9), 0.0)
    derated = np.argsort(-np.round(stress, 9), kind="stable")[:2]
    ratings = {flows.network.branch[l]: round(MARGIN * base_max[l], 3) for l in derated}
    # 3. DSOs where a load reduction relieves both lines most (hour 14)
    t = SURGE_HOURS[1] - 1
    relief = -(h[t][derated] * np.sign(f1[t, derated])[:, None]).sum(axis=0)
    pos = flows.network.bus_pos(load_buses.to_numpy())
    buses = load_buses[np.argsort(-np.round(relief[pos], 9), kind="stable")][:n_dsos]
    peaks = {f: _feeder_peak_mw(f) for f in FEEDERS}
    specs = []
    for k, bus in enumerate(buses):
        feeder = FEEDERS[k % len(FEEDERS)]
        copies = max(1, min(10_000, round(SHARE * load[bus] / peaks[feeder])))
        specs.append(DSOSpec(f"DSO{k + 1}", int(bus), feeder, copies=copies, prosumers=prosumers))
    increase = pd.DataFrame(
        [(hour, int(b), SURGE_PU) for hour in SURGE_HOURS for b in load_buses],
        columns=["hour", "bus", "increase_pu"],
    )
    return fx.Instance.from_pandapower(
        transmission,
        specs,
        name=f"{transmission}-{n_dsos}dso-simbench",
        load_increase=increase,
        ratings_mw=ratings,
        seed=seed,
    )


def _first_load_bus(transmission: str) -> int:
    from flexopt.grid.sources import transmission_net

    net = transmission_net(transmission)
    return int(net.load[net.load.p_mw > 0].bus.min())


def _feeder_peak_mw(source: str) -> float:
    """The peak load of a feeder as the instance's table holds it."""
    from flexopt.grid.sources import feeder_net, feeder_table

    return float(feeder_table(feeder_net(source)).branches["p_mw"].sum())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transmission", default="case118")
    ap.add_argument("--dsos", type=int, default=6)
    ap.add_argument("--prosumers", type=int, default=8)
    ap.add_argument("--method", default="mlf")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="save the instance and the results here")
    args = ap.parse_args(argv)
    if importlib.util.find_spec("simbench") is None:
        print(
            "build_instance.py: needs simbench (pip install 'flexopt[simbench]')", file=sys.stderr
        )
        return 2
    inst = build(args.transmission, args.dsos, args.prosumers, args.seed)
    print(f"{inst.name}: {inst.description}")
    for d in inst.dsos:
        print(
            f"  {d.id}: bus {d.bus}, {d.n_feeders} x {d.feeder.name} ({d.feeder.vn_kv:g} kV), {len(d.prosumers)} prosumers per copy"
        )
    res = fx.run_market(inst, method=args.method, seed=args.seed)
    s = res.summary
    print(
        f"overload {s['overload_mw_before']:.2f} -> {s['overload_mw_after']:.2f} MW·h, "
        f"flexibility accepted {s['flex_accepted_mwh']:.2f} MWh, TSO cost {s['tso_cost_eur']:.0f} EUR"
    )
    if args.out:
        inst.save(args.out / "instance")
        res.save(args.out / "results")
        print(f"wrote {args.out}/instance and {args.out}/results")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
