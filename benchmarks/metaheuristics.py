"""Metaheuristics on the DSO coefficient problems of ``rts24-3dso`` at equal evaluations.

    python -m benchmarks.metaheuristics [--seeds 30] [--evals 5000] [--quick]

Every method solves the same DCP of each DSO (``models/dcp.md``: mode "ab", w = 0.5, budget
on) with the same number of evaluations and is scored on the same evaluator: flexopt's WCA
(Deb's rules for the budget) and mealpy's OriginalWCA, PSO, GA, DE, GWO and ICA (budget as a
penalty), next to the ``none`` (x⁰) and ``mlf`` baselines. A run whose final point violates
the budget is reported as infeasible. Writes ``results/metaheuristics.csv``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from benchmarks._common import machine, write_csv
from flexopt import load_instance, optim
from flexopt.dso.dcp import DCPOptions
from flexopt.methods import get_method
from flexopt.outcome import BilevelOutcome
from flexopt.run.api import run_market

MEALPY = ["OriginalWCA", "OriginalPSO", "BaseGA", "OriginalDE", "OriginalGWO", "OriginalICA"]


def problems():
    inst = load_instance("instances/rts24-3dso")
    outcome = run_market(inst, "none").outcome
    assert isinstance(outcome, BilevelOutcome)
    out = {}
    for dso_id in outcome.dso_ids:
        p = outcome.dcp(dso_id, DCPOptions())
        if not p.trivial:
            out[dso_id] = (p, p.ctx)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--evals", type=int, default=5000)
    ap.add_argument("--quick", action="store_true", help="3 seeds, 1000 evaluations")
    args = ap.parse_args(argv)
    seeds, evals = (3, 1000) if args.quick else (args.seeds, args.evals)
    rows = []
    for dso, (p, _) in problems().items():
        rng = np.random.default_rng(0)
        for name, method in (("none (x⁰)", "none"), ("mlf", "mlf")):
            f = get_method(method).modify(p, None, rng).factors
            ev = p.evaluate(p.vector(f.alpha, f.beta)[None, :])
            rows.append(
                {
                    "dso": dso,
                    "method": name,
                    "seed": -1,
                    "objective": ev.F[0, 0],
                    "feasible": ev.violation[0] <= 0,
                    "evaluations": 1,
                    "time_s": 0.0,
                }
            )
        iters = max(1, (evals - 50) // 49)
        for seed in range(seeds):
            # the market's search: the authors' constrained settings, one cycle (dcp_wca)
            wca = optim.WCA(d_max=1e-5, raining="gaussian", restart=0, river_rain="uniform")
            r = optim.minimize(p, wca, max_iter=iters, seed=seed)
            rows.append(
                {
                    "dso": dso,
                    "method": "flexopt WCA",
                    "seed": seed,
                    "objective": r.f,
                    "feasible": r.feasible,
                    "evaluations": r.evaluations,
                    "time_s": r.time_s,
                }
            )
            for name in MEALPY:
                m = optim.minimize(p, optim.Mealpy(name, pop_size=50), max_evals=evals, seed=seed)
                rows.append(
                    {
                        "dso": dso,
                        "method": f"mealpy {name}",
                        "seed": seed,
                        "objective": m.f,
                        "feasible": m.feasible,
                        "evaluations": m.evaluations,
                        "time_s": m.time_s,
                    }
                )
            print(f"{dso} seed {seed} done", file=sys.stderr)
    df = pd.DataFrame(rows)
    write_csv(df, "metaheuristics")
    feas = df[df["feasible"]]
    stats = feas.groupby(["dso", "method"]).agg(
        best=("objective", "min"),
        mean=("objective", "mean"),
        worst=("objective", "max"),
        std=("objective", "std"),
        evals=("evaluations", "mean"),
        time_s=("time_s", "mean"),
    )
    stats["feasible_runs"] = df.groupby(["dso", "method"])["feasible"].sum()
    stats["runs"] = df.groupby(["dso", "method"]).size()
    print(f"# DCP of rts24-3dso, {machine()}, {evals} evaluations per run, {seeds} seeds\n")
    print("| DSO | method | best | mean | worst | std | feasible runs | s per run |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for (dso, method), r in stats.iterrows():
        std = "" if np.isnan(r["std"]) else f"{r['std']:.2e}"
        print(
            f"| {dso} | {method} | {r['best']:.5f} | {r['mean']:.5f} | {r['worst']:.5f} | {std} | "
            f"{int(r.feasible_runs)}/{int(r.runs)} | {r.time_s:.2f} |"
        )
    missing = df.groupby(["dso", "method"])["feasible"].sum()
    for (dso, method), n in missing.items():
        if n == 0:
            print(
                f"| {dso} | {method} | — | — | — | — | 0/{int(df[(df.dso == dso) & (df.method == method)].shape[0])} | |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
