"""Feeder AC power flow throughput: flexopt's batched sweep vs pandapower ``runpp``.

    python benchmarks/feeder_pf.py [--quick]

Both are timed in the same run on the same machine; the ratio is per power flow. pandapower is
measured in three configurations (cold start; warm start ``init="results"``; warm start plus
``recycle``), with numba if it is installed (pandapower's fast path). Accuracy is checked
against ``runpp`` on random loads in the same run. Writes ``results/feeder_pf.csv`` and prints
a Markdown table for ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
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
    def cold():
        pp.runpp(net, init="flat")

    def warm():
        pp.runpp(net, init="results")

    def recycle():
        pp.runpp(net, init="results", recycle={"trafo": False, "gen": False, "bus_pq": True})

    return {
        "runpp (flat start)": cold,
        "runpp (init=results)": warm,
        "runpp (init=results, recycle)": recycle,
    }


def _accuracy(feeder, make_net, rng, n=20):
    dv = dl = 0.0
    for _ in range(n):
        net = make_net()
        scale = rng.uniform(0.0, 1.5, len(net.bus))
        net.load["p_mw"] *= scale[net.load.bus.to_numpy()]
        net.load["q_mvar"] *= scale[net.load.bus.to_numpy()]
        pp.runpp(net, tolerance_mva=1e-11)
        p = np.zeros(feeder.n_bus)
        q = np.zeros(feeder.n_bus)
        pos = feeder.bus.get_indexer(net.load.bus.to_numpy())
        np.add.at(p, pos, net.load.p_mw.to_numpy())
        np.add.at(q, pos, net.load.q_mvar.to_numpy())
        pf = feeder.power_flow(p, q)
        dv = max(dv, float(np.abs(pf.vm_pu - net.res_bus.vm_pu.loc[feeder.bus].to_numpy()).max()))
        dl = max(dl, abs(float(pf.loss_mw) - float(net.res_line.pl_mw.sum())))
    return dv, dl


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
    for case, make_net in (("case33bw", pn.case33bw), ("case69", fx.grid.case69)):
        net = make_net()
        feeder = fx.grid.Feeder.from_pandapower(net)
        pp.runpp(net)
        base = {}
        for label, fn in _runpp_configs(net).items():
            t, _ = best_time(fn, min_s)
            base[label] = t
            rows.append(
                {"case": case, "method": label, "batch": 1, "s_per_pf": t, "pf_per_s": 1 / t}
            )
        dv, dl = _accuracy(feeder, make_net, rng, n=5 if args.quick else 20)
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
                for label, t in base.items():
                    r[f"speedup_vs_{label}"] = t / r["s_per_pf"]
    df = pd.DataFrame(rows)
    path = write_csv(df, "feeder_pf")
    print(f"# feeder power flow, {machine()}, pandapower {pp.__version__} ({numba_note})\n")
    print(
        "| case | method | batch | µs per PF | PF/s | × runpp flat | × runpp warm | × runpp warm+recycle |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['method']} | {r['batch']} | {r['s_per_pf'] * 1e6:,.1f} | {r['pf_per_s']:,.0f} | "
            f"{r['speedup_vs_runpp (flat start)']:,.0f} | {r['speedup_vs_runpp (init=results)']:,.0f} | "
            f"{r['speedup_vs_runpp (init=results, recycle)']:,.0f} |"
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
