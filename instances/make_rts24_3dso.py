"""Regenerate ``instances/rts24-3dso`` (and its microgrid twin ``rts24-3dso-mg``) deterministically.

    python instances/make_rts24_3dso.py [--out instances/rts24-3dso]

Every modelling choice is explained in ``instances/README.md``; the numbers it quotes are
printed by this script. The scenario is built in three steps:

1. Transmission: pandapower ``case24_ieee_rts`` exported to CSV (buses, branches in
   ``_ppc`` order, dispatchable units with their ``poly_cost``), hourly load of IEEE RTS 1979
   Table 4 (winter weekday, % of the daily peak).
2. Sudden load increase: an unforecast +8 % load in the southern 138 kV area (RTS buses
   1–10) during the afternoon plateau (hours 13–15). At the published ratings RTS-24 stays
   uncongested under copper-plate dispatch (peak loading 80 %), so the TSO operating limits of
   two 138 kV lines the surge stresses — RTS 8–9 and RTS 3–9 — are set 2 % above their own
   day-long base-case maximum flow: the day-ahead point is secure and the surge congests them.
3. Three DSOs at the load buses RTS 7, 8 and 9, where a load reduction relieves those lines,
   each operating ``n`` identical IEEE 33-bus feeders with 12 battery prosumers per feeder;
   ``n`` covers ``FEEDER_SHARE`` of the bus load.

``rts24-3dso-mg`` is the same system with one lateral of every DSO's feeder run as a
microgrid (``flexopt.instance.laterals``, ``models/microgrid.md``), written beside it.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.simplefilter("ignore")
import pandapower.networks as pn  # noqa: E402

from flexopt.atomic import atomic_directory  # noqa: E402
from flexopt.generate import manifest_text  # noqa: E402
from flexopt.generate import write_table as _write  # noqa: E402
from flexopt.grid.build import feeder_from_data  # noqa: E402
from flexopt.grid.instance_builder import RTS_HOURLY_PCT  # noqa: E402
from flexopt.grid.pandapower_io import generator_table, transmission_tables  # noqa: E402
from flexopt.grid.sources import feeder_net, feeder_table  # noqa: E402
from flexopt.instance import FeederData, make_prosumers  # noqa: E402
from flexopt.run.tso import day_ahead_flows  # noqa: E402

NAME = "rts24-3dso"
SEED = 20261124
SURGE_PU = 0.08
SURGE_HOURS = (13, 14, 15)
SOUTH_BUSES = tuple(range(10))  # pandapower 0..9 = RTS 1..10 (138 kV)
DERATE_MARGIN = 1.02
DERATED = ("line_10", "line_5")  # RTS 8–9 and RTS 3–9 (pandapower buses 7–8 and 2–8)
DSO_BUSES = (6, 7, 8)  # RTS 7, 8, 9
FEEDER_SHARE = 0.6  # share of a DSO bus's load served by feeders with participating prosumers
PROSUMERS_PER_FEEDER = 12
SIGMA_PU = 0.03
LOSS_PRICE = 50.0


def build(out: Path) -> None:
    from flexopt import load_instance

    rng = np.random.default_rng(SEED)
    net = pn.case24_ieee_rts()
    buses, branches, _, _ = transmission_tables(net)
    gens = generator_table(net)
    gens.insert(
        0, "gen", [f"{e}_{i}" for e, i in zip(gens.element, gens.element_index, strict=True)]
    )
    gens = gens.drop(columns=["element", "element_index"])
    load = net.load.groupby("bus").p_mw.sum().reindex(buses.index, fill_value=0.0)
    bus_tab = pd.DataFrame(
        {
            "bus": buses.index,
            "name": buses["name"].astype(str).to_numpy(),
            "vn_kv": buses["vn_kv"].to_numpy(),
            "load_p_mw": load.to_numpy(),
            "sigma_pu": np.where(load.to_numpy() > 0, SIGMA_PU, 0.0),
        }
    )
    br_tab = branches.reset_index()
    thermal = br_tab["rating_mw"].copy()
    profile = pd.DataFrame({"hour": np.arange(1, 25), "load_pu": np.array(RTS_HOURLY_PCT) / 100.0})

    # the bundled instance carries flexopt's instance marker: it is replaced, nothing else is
    with atomic_directory(out, "instance", replace=True) as work:
        _write(
            bus_tab,
            work / "transmission/buses.csv",
            "IEEE RTS-24 (pandapower case24_ieee_rts); load_p_mw = peak (2850 MW system)",
        )
        _write(
            gens,
            work / "transmission/generators.csv",
            "dispatchable units of case24_ieee_rts with poly_cost coefficients",
        )
        _write(
            profile,
            work / "scenario/load_profile.csv",
            "IEEE RTS 1979 Table 4, winter weekday, share of daily peak",
        )
        inc = pd.DataFrame(
            [(h, b, SURGE_PU) for h in SURGE_HOURS for b in SOUTH_BUSES if load.iloc[b] > 0],
            columns=["hour", "bus", "increase_pu"],
        )
        _write(
            inc,
            work / "scenario/load_increase.csv",
            "sudden load increase: unforecast afternoon surge (hours 13-15), southern 138 kV area",
        )
        # provisional files so the loader can run the day-ahead market on the thermal ratings
        _write(br_tab, work / "transmission/branches.csv")
        ft = feeder_table(feeder_net("case33bw"))
        feeder_tab = ft.branches
        feeder = feeder_from_data(FeederData("case33bw", ft.branches, ft.vn_kv, ft.root))
        _write(
            feeder_tab,
            work / "distribution/case33bw.csv",
            "IEEE 33-bus feeder (Baran & Wu 1989, pandapower case33bw), 12.66 kV; p/q = peak load at to_bus",
        )
        feeder_peak = float(feeder_tab["p_mw"].sum())

        # --- step 2: stressed lines and their derating -----------------------------------
        tmp_dsos = [{"id": "tmp", "bus": int(load.idxmax()), "feeders": 1}]
        pros, base = make_prosumers(
            feeder, PROSUMERS_PER_FEEDER, seed=np.random.default_rng(0), dso_id="tmp"
        )
        _write_manifest(work, tmp_dsos, vn_kv=ft.vn_kv)
        _write(pros, work / "distribution/prosumers.csv")
        _write(base, work / "distribution/baseline.csv")
        inst = load_instance(work)
        flows = day_ahead_flows(inst)
        model, lf, f0, h = flows.network, flows.load_mw, flows.flow_mw, flows.sensitivity
        delta = inst.scenario.load_increase[model.bus].to_numpy()
        f1 = f0 - np.einsum("tlb,tb->tl", h, lf * delta)
        stress = np.abs(f1).max(axis=0) / np.abs(f0).max(axis=0)
        derated = model.branch.get_indexer(list(DERATED))
        limits = thermal.to_numpy().copy()
        for l in derated:
            limits[l] = np.ceil(DERATE_MARGIN * np.abs(f0[:, l]).max())
        br_tab["rating_mw"] = limits
        _write(
            br_tab,
            work / "transmission/branches.csv",
            "rating_mw = TSO operating limit = thermal rating (175/500/400 MVA) except "
            + ", ".join(
                f"{model.branch[l]} ({limits[l]:.0f} of {thermal.iloc[l]:.0f} MW)" for l in derated
            )
            + ", set 2 % above their base-case daily maximum flow (instances/README.md)",
        )
        over = np.clip(np.abs(f1[:, derated]) - limits[derated], 0.0, None)  # [T, 2]

        # --- step 3: DSOs ------------------------------------------------------------------
        hours_cong = np.flatnonzero(over.max(axis=1) > 0)
        dso_pos = model.bus_pos(list(DSO_BUSES))
        t_mid = hours_cong[len(hours_cong) // 2]
        relief = -h[t_mid][np.ix_(derated, dso_pos)] * np.sign(f1[t_mid, derated])[:, None]
        dso_ids = [f"DSO{k + 1}" for k in range(len(DSO_BUSES))]
        drawn = [make_prosumers(feeder, PROSUMERS_PER_FEEDER, seed=rng, dso_id=i) for i in dso_ids]
        pros = pd.concat([p for p, _ in drawn], ignore_index=True)
        base = pd.concat([b for _, b in drawn], ignore_index=True)
        dsos = [
            {
                "id": i,
                "bus": int(b),
                "feeders": round(FEEDER_SHARE * load.loc[b] / feeder_peak),
            }
            for i, b in zip(dso_ids, DSO_BUSES, strict=True)
        ]
        _write_manifest(work, dsos, vn_kv=ft.vn_kv)
        _write(
            pros,
            work / "distribution/prosumers.csv",
            "battery prosumers of one representative feeder per DSO (see instances/README.md)",
        )
        _write(base, work / "distribution/baseline.csv", "baseline battery schedule, discharge > 0")
        final = load_instance(work)  # the instance must load as written

    print(f"wrote {out}")
    print(
        "  derated: "
        + ", ".join(
            f"{model.branch[l]} {model.bus[model.from_idx[l]]}-{model.bus[model.to_idx[l]]} "
            f"to {limits[l]:.0f} MW (thermal {thermal.iloc[l]:.0f}; stress x{stress[l]:.3f})"
            for l in derated
        )
    )
    print(
        "  overload by hour (MW): "
        + ", ".join(f"h{t + 1}: {over[t].round(2).tolist()}" for t in hours_cong)
    )
    print(
        f"  relief per MW of load reduction at hour {t_mid + 1} (rows {list(DERATED)}, cols DSO buses "
        f"{list(DSO_BUSES)}):\n{relief.round(3)}"
    )
    for d in final.dsos:
        print(
            f"  {d.id}: bus {d.bus}, {d.n_feeders} feeders x {len(d.prosumers)} prosumers, "
            f"{d.n_feeders * d.prosumers['p_max_mw'].sum():.2f} MW of battery power"
        )


def _write_manifest(work: Path, dsos: list[dict], vn_kv: float) -> None:
    text = manifest_text(
        NAME,
        "IEEE RTS-24 with three DSOs on IEEE 33-bus feeders; an afternoon load surge congests two 138 kV lines",
        12,
        100.0,
        dsos,
        "distribution/case33bw.csv",
        vn_kv,
        loss_price=LOSS_PRICE,
        header=(
            "# flexopt instance manifest (format: instances/README.md). Generated by",
            "# instances/make_rts24_3dso.py — edit the script, not this file.",
        ),
    )
    (work / "instance.toml").write_text(text, encoding="utf-8")


def build_microgrids(source: Path, out: Path) -> None:
    """``rts24-3dso-mg``: ``source`` with one lateral per DSO run as a microgrid."""
    from dataclasses import replace

    from flexopt import load_instance
    from flexopt.instance.laterals import lateral_microgrids
    from flexopt.instance.writer import INSTANCE_KIND

    inst = replace(
        lateral_microgrids(load_instance(source), 1),
        name=f"{NAME}-mg",
        description=(
            "rts24-3dso with one lateral of every DSO's feeder run as a microgrid (its "
            "prosumers offer in the microgrid's market, which offers to the DSO's)"
        ),
    )
    header = (
        "# flexopt instance manifest (format: instances/README.md). Generated by",
        "# instances/make_rts24_3dso.py — edit the script, not this file.",
    )
    with atomic_directory(out, INSTANCE_KIND, replace=True) as work:
        inst.write_files(work, header)
        load_instance(work)
    print(f"wrote {out}")
    for d in inst.dsos:
        for g in d.microgrids:
            print(
                f"  {g.id}: at bus {g.bus} of {d.id}'s feeder, {len(g.network.branches)} "
                f"branches, members {', '.join(g.prosumers.index)}"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / NAME)
    args = ap.parse_args(argv)
    build(args.out.resolve())
    build_microgrids(args.out.resolve(), args.out.resolve().with_name(f"{NAME}-mg"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
