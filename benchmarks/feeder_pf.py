"""Feeder AC power flow throughput: flexopt's batched sweep vs pandapower ``runpp``.

    python -m benchmarks.feeder_pf [--quick]

Both are timed in the same run on the same machine; the ratio is per power flow. pandapower is
measured in three configurations (cold start: flat, or pandapower's DC start where a
transformer's phase shift defeats a flat one; warm start ``init="results"``; warm start plus
``recycle``), with numba if it is installed (pandapower's fast path). Accuracy is checked
against ``runpp`` on random loads in the same run. Cases: the case33bw and case69 feeders
(lines only) and two real distribution grids read with their substation transformers by
``Feeder.from_pandapower`` — Kerber's Dorfnetz (LV village grid, one 0.4 MVA transformer) and
CIGRE MV with all its DER (two 110/20 kV transformers, open switches, sgens and storage).
Writes ``results/feeder_pf.csv`` and prints a Markdown table for ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import warnings

import numpy as np
import pandas as pd

from benchmarks._common import best_time, machine, write_csv

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandapower as pp
    import pandapower.networks as pn

import flexopt as fx


def _runpp_configs(net):
    """``(key, label, call)`` of the three ``runpp`` configurations. The cold start is flat
    where ``runpp`` converges from it and pandapower's DC start otherwise (a transformer's
    phase shift: Kerber's Dyn5 shifts 150°, beyond a flat start's reach)."""
    try:
        pp.runpp(net, init="flat")
        init = "flat"
    except pp.LoadflowNotConverged:
        init = "dc"

    def cold():
        pp.runpp(net, init=init)

    def warm():
        pp.runpp(net, init="results")

    def recycle():
        pp.runpp(net, init="results", recycle={"trafo": False, "gen": False, "bus_pq": True})

    return [
        ("cold", f"runpp ({init} start)", cold),
        ("warm", "runpp (init=results)", warm),
        ("recycle", "runpp (init=results, recycle)", recycle),
    ]


def _accuracy(feeder, template, rng, n=20):
    """Largest |ΔV| (pu) and |Δloss| (MW) against ``runpp`` over ``n`` random load scalings.

    Each scaled net is a copy of ``template``, the net ``feeder`` was read from (pandapower's
    Kerber builders draw their line types at random: two calls give two grids). The bus
    loads are those of the feeder read from the scaled net, so that sgens, storage and loads
    at fused buses count as pandapower counts them."""
    dv = dl = 0.0
    for _ in range(n):
        net = copy.deepcopy(template)
        scale = rng.uniform(0.0, 1.5, int(net.bus.index.max()) + 1)
        net.load["p_mw"] *= scale[net.load.bus.to_numpy()]
        net.load["q_mvar"] *= scale[net.load.bus.to_numpy()]
        scaled = fx.grid.Feeder.from_pandapower(net)
        pf = feeder.power_flow(scaled.p_base_mw, scaled.q_base_mvar)
        pp.runpp(net, tolerance_mva=1e-11)
        real = feeder.bus.isin(net.bus.index)  # auxiliary buses (open switches) have no result
        vm = net.res_bus.vm_pu.loc[feeder.bus[real]].to_numpy()
        dv = max(dv, float(np.abs(pf.vm_pu[real] - vm).max()))
        loss = sum(float(net[f"res_{et}"].pl_mw.sum()) for et in ("line", "trafo", "trafo3w"))
        dl = max(dl, abs(float(pf.loss_mw) - loss))
    return dv, dl


def _cigre_mv_der():
    return pn.create_cigre_network_mv(with_der="all")


CASES = (
    ("case33bw", pn.case33bw),
    ("case69", fx.grid.case69),
    ("kerber_dorfnetz", pn.create_kerber_dorfnetz),
    ("cigre_mv_der", _cigre_mv_der),
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter timings (smoke test)")
    args = ap.parse_args(argv)
    min_s = 0.1 if args.quick else 0.5
    try:
        import numba  # noqa: F401

        numba_note = "numba on"
    except ImportError:
        numba_note = "numba NOT installed (pandapower's slow path)"
    rng = np.random.default_rng(0)
    rows = []
    warnings.simplefilter("ignore")
    for case, make_net in CASES:
        net = make_net()
        template = copy.deepcopy(net)
        feeder = fx.grid.Feeder.from_pandapower(net)
        pp.runpp(net)
        base = {}
        for key, label, fn in _runpp_configs(net):
            t, _ = best_time(fn, min_s)
            base[key] = t
            rows.append(
                {"case": case, "method": label, "batch": 1, "s_per_pf": t, "pf_per_s": 1 / t}
            )
        dv, dl = _accuracy(feeder, template, rng, n=5 if args.quick else 20)
        for engine in ("numba", "numpy"):
            for batch in (1, 100, 10_000):
                scale = rng.uniform(0.5, 1.5, (batch, feeder.n_bus))
                p, q = feeder.p_base_mw * scale, feeder.q_base_mvar * scale
                t, _ = best_time(
                    lambda f=feeder, p=p, q=q, e=engine: f.power_flow(p, q, engine=e), min_s
                )
                rows.append(
                    {
                        "case": case,
                        "method": f"flexopt sweep ({engine})",
                        "batch": batch,
                        "s_per_pf": t / batch,
                        "pf_per_s": batch / t,
                        "max_dv_pu": dv,
                        "max_dloss_mw": dl,
                    }
                )
        for r in rows:
            if r["case"] == case:
                for key, t in base.items():
                    r[f"speedup_vs_runpp_{key}"] = t / r["s_per_pf"]
    df = pd.DataFrame(rows)
    path = write_csv(df, "feeder_pf")
    print(f"# feeder power flow, {machine()}, pandapower {pp.__version__} ({numba_note})\n")
    print(
        "| case | method | batch | µs per PF | PF/s | × runpp cold | × runpp warm | × runpp warm+recycle |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['method']} | {r['batch']} | {r['s_per_pf'] * 1e6:,.1f} | {r['pf_per_s']:,.0f} | "
            f"{r['speedup_vs_runpp_cold']:,.0f} | {r['speedup_vs_runpp_warm']:,.0f} | "
            f"{r['speedup_vs_runpp_recycle']:,.0f} |"
        )
    acc = df.dropna(subset=["max_dv_pu"]).groupby("case")[["max_dv_pu", "max_dloss_mw"]].max()
    print(
        "\naccuracy vs runpp (20 random load cases): "
        + "; ".join(
            f"{c}: max |ΔV| {a.max_dv_pu:.1e} pu, max |Δloss| {a.max_dloss_mw:.1e} MW"
            for c, a in acc.iterrows()
        )
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
