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

The numba engine's lockstep kernel (``flexopt/grid/_sweep.py``) is timed against the
per-power-flow kernel it replaced, kept unchanged in ``benchmarks/_sweep_baseline.py`` and
swapped into ``Feeder.power_flow`` for its rows, on the same loads in the same run: the two
must agree (same largest iteration count, ≤ 1e-12 pu) and the second table gives their ratio per
feeder and batch size. Everything runs single-threaded (numba and BLAS: one thread per worker
is how flexopt runs). Writes ``results/feeder_pf.csv`` and prints Markdown tables for
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import warnings
from unittest import mock

import numpy as np
import pandas as pd

from benchmarks._common import best_time, machine, write_csv
from benchmarks._sweep_baseline import sweep as sweep_baseline

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandapower as pp
    import pandapower.networks as pn

import flexopt as fx
import flexopt.grid.engines

#: ``(method, engine, swap in the baseline kernel)`` timed per batch size
METHODS = (
    ("flexopt sweep (numba)", "numba", False),
    ("flexopt sweep (numba, baseline kernel)", "numba", True),
    ("flexopt sweep (numpy)", "numpy", False),
)
BATCHES = (1, 100, 10_000)


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


def _kernel(baseline):
    """``Feeder.power_flow``'s numba engine with the baseline kernel swapped in, or as is."""
    if baseline:
        return mock.patch.object(flexopt.grid.engines, "sweep", sweep_baseline)
    return contextlib.nullcontext()


def _vs_baseline(feeder, p, q):
    """Largest |ΔV| and |ΔI_branch| (pu) of the lockstep kernel against the baseline kernel
    on the same batch; raises beyond 1e-12 pu or unless the batch's largest iteration count
    is the same (``tests/grid/test_sweep.py`` compares them per power flow)."""
    new = feeder.power_flow(p, q, engine="numba")
    with _kernel(True):
        old = feeder.power_flow(p, q, engine="numba")
    assert new.iterations == old.iterations, (new.iterations, old.iterations)
    dv = float(np.abs(new.v_pu - old.v_pu).max())
    di = float(np.abs(new.i_branch_pu - old.i_branch_pu).max())
    assert max(dv, di) <= 1e-12, (dv, di)
    return dv, di


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
    import numba  # a core dependency of flexopt's numba engine
    from threadpoolctl import threadpool_limits

    # single-threaded, as flexopt's workers run (flexopt.pool_start.init_worker): numba and
    # BLAS (the numpy engine's matrix products; two BLAS threads on a loaded machine stall
    # each other)
    numba.set_num_threads(1)
    threadpool_limits(1)
    numba_note = "numba on; numba and BLAS 1 thread"
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
        timed = {}
        for batch in BATCHES:
            scale = rng.uniform(0.5, 1.5, (batch, feeder.n_bus))
            p, q = feeder.p_base_mw * scale, feeder.q_base_mvar * scale
            agree = _vs_baseline(feeder, p, q)
            for method, engine, baseline in METHODS:
                with _kernel(baseline):
                    t, _ = best_time(
                        lambda f=feeder, p=p, q=q, e=engine: f.power_flow(p, q, engine=e), min_s
                    )
                timed[method, batch] = t, agree
        for method, _, _ in METHODS:
            for batch in BATCHES:
                t, (dv_old, di_old) = timed[method, batch]
                row = {
                    "case": case,
                    "method": method,
                    "batch": batch,
                    "s_per_pf": t / batch,
                    "pf_per_s": batch / t,
                    "max_dv_pu": dv,
                    "max_dloss_mw": dl,
                }
                if method == METHODS[0][0]:  # the lockstep kernel against the baseline
                    row["ratio_vs_baseline"] = t / timed[METHODS[1][0], batch][0]
                    row["max_dv_vs_baseline_pu"] = dv_old
                    row["max_di_vs_baseline_pu"] = di_old
                rows.append(row)
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
    print("\nlockstep kernel vs the baseline kernel (same loads, same run, 1 thread):\n")
    print("| case | batch | baseline µs per PF | lockstep µs per PF | lockstep / baseline |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        if "ratio_vs_baseline" in r:
            t_old = r["s_per_pf"] / r["ratio_vs_baseline"]
            print(
                f"| {r['case']} | {r['batch']} | {t_old * 1e6:,.2f} | {r['s_per_pf'] * 1e6:,.2f} | "
                f"{r['ratio_vs_baseline']:.2f} |"
            )
    dev = df[["max_dv_vs_baseline_pu", "max_di_vs_baseline_pu"]].max()
    print(
        "\nlockstep vs baseline kernel (every timed batch): same iteration count, max |ΔV| "
        f"{dev.max_dv_vs_baseline_pu:.1e} pu, max |ΔI| {dev.max_di_vs_baseline_pu:.1e} pu"
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
