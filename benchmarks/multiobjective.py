"""Multi-objective problems: flexopt MOWCA against pymoo NSGA-II at equal budgets.

    python -m benchmarks.multiobjective [--seeds 10] [--quick] [--methods ...] [--problems ...]

Problems (pymoo's definitions, the evaluator of both methods): ZDT1, ZDT2, ZDT3, ZDT4, ZDT6
(2 objectives), DTLZ2 (3 objectives, 10 variables), BNH (2 objectives, 2 constraints) and
C1-DTLZ1 (3 objectives, 12 variables, 1 constraint) — pymoo's default sizes. flexopt sees them through :class:`ProblemFromPymoo`
(``G ≤ 0`` as pymoo's inequalities); NSGA-II (pymoo defaults: SBX η 15, polynomial mutation
η 20, duplicates eliminated, population 100) evaluates them itself. Metrics of the reported
front's feasible points: hypervolume with pymoo's HV at the reference point ``r = nadir +
0.1 · (nadir − ideal)`` of pymoo's ``pareto_front()``, as a share of that front's own
hypervolume; IGD against ``pareto_front()``. A run is feasible when its front holds a feasible
point. Needs the ``compare`` extra (pymoo). Writes ``results/multiobjective.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import machine, write_csv
from flexopt import optim
from flexopt.optim import Evaluation, Problem

#: name → (pymoo's name, keyword arguments, evaluations per run)
PROBLEMS: dict[str, tuple[str, dict[str, int], int]] = {
    "ZDT1": ("zdt1", {}, 25_000),
    "ZDT2": ("zdt2", {}, 25_000),
    "ZDT3": ("zdt3", {}, 25_000),
    "ZDT4": ("zdt4", {}, 25_000),
    "ZDT6": ("zdt6", {}, 25_000),
    "DTLZ2 (3 obj.)": ("dtlz2", {}, 25_000),
    "BNH (constrained)": ("bnh", {}, 10_000),
    "C1-DTLZ1 (3 obj., constrained)": ("c1dtlz1", {}, 50_000),
}


class ProblemFromPymoo(Problem):
    """A pymoo test problem as a flexopt :class:`Problem`: all objectives, the inequalities
    ``G ≤ 0`` (none of these problems has equalities)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lower = np.asarray(inner.xl, dtype=float)
        self.upper = np.asarray(inner.xu, dtype=float)
        self.n_obj, self.n_constr = int(inner.n_obj), int(inner.n_ieq_constr)

    def evaluate(self, X: np.ndarray) -> Evaluation:
        if not self.n_constr:
            return Evaluation(np.asarray(self.inner.evaluate(X, return_values_of=["F"])))
        F, G = self.inner.evaluate(X, return_values_of=["F", "G"])
        return Evaluation(np.asarray(F), np.reshape(G, (len(X), -1)))


class Scorer:
    """Hypervolume (share of the true front's) and IGD of a front's feasible points."""

    def __init__(self, inner: Any) -> None:
        from pymoo.indicators.hv import HV
        from pymoo.indicators.igd import IGD

        front = np.asarray(inner.pareto_front(), dtype=float)
        ideal, nadir = front.min(0), front.max(0)
        self.ref = nadir + 0.1 * (nadir - ideal)
        self.hv, self.igd = HV(ref_point=self.ref), IGD(front)
        self.hv_front = float(self.hv(front))

    def __call__(self, F: np.ndarray) -> tuple[float, float]:
        if len(F) == 0:
            return 0.0, float("inf")
        return float(self.hv(F)) / self.hv_front, float(self.igd(F))


def _feasible(p: ProblemFromPymoo, X: np.ndarray, F: np.ndarray) -> np.ndarray:
    """The rows of ``F`` whose point holds every constraint (re-evaluated: metrics only)."""
    if not p.n_constr or len(X) == 0:
        return F
    return F[p.evaluate(X).violation <= 0]


def run_mowca(p: ProblemFromPymoo, evals: int, seed: int, **options: Any) -> tuple[Any, float]:
    """flexopt MOWCA: its archive's feasible points and the seconds."""
    r = optim.minimize(p, optim.MOWCA(**options), max_evals=evals, seed=seed)
    if r.pareto_x is None or r.pareto_f is None:  # MOWCA always returns its archive
        raise RuntimeError("MOWCA returned no Pareto archive")
    return _feasible(p, r.pareto_x, r.pareto_f), r.time_s


def run_nsga2(p: ProblemFromPymoo, evals: int, seed: int) -> tuple[Any, float]:
    """pymoo NSGA-II (population 100, defaults): its final front's feasible points."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.optimize import minimize as pymoo_minimize

    start = time.perf_counter()
    res = pymoo_minimize(p.inner, NSGA2(pop_size=100), ("n_evals", evals), seed=seed)
    elapsed = time.perf_counter() - start
    if res.opt is None:  # pymoo reports no front when nothing feasible was found
        return np.empty((0, p.n_obj)), elapsed
    F, cv = res.opt.get("F"), res.opt.get("CV").ravel()
    return np.asarray(F)[cv <= 0], elapsed


METHODS: dict[str, Callable[[ProblemFromPymoo, int, int], tuple[Any, float]]] = {
    "flexopt MOWCA": run_mowca,
    "flexopt MOWCA, local_rain = 0": lambda p, e, s: run_mowca(p, e, s, local_rain=0.0),
    "pymoo NSGA-II": run_nsga2,
}
REFERENCE = "pymoo NSGA-II"  # the ratios' denominator


def table(df: pd.DataFrame) -> str:
    """Markdown: hypervolume (share of the true front's) and IGD, best / median / worst,
    feasible runs, median seconds per run; ratios of the medians to NSGA-II's."""
    lines = [
        "| problem | evaluations | method | HV best | HV median | HV worst | IGD best | "
        "IGD median | IGD worst | feasible | s per run | HV ratio | IGD ratio | time ratio |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    med = df.groupby(["problem", "method"], sort=False)[["hv", "igd", "time_s"]].median()
    for (prob, method), g in df.groupby(["problem", "method"], sort=False):
        hv, igd, t = med.loc[(prob, method)]
        ratios = ["", "", ""]
        if (prob, REFERENCE) in med.index and method != REFERENCE:
            ref = med.loc[(prob, REFERENCE)]
            ratios = [
                f"{x / r:.3g}" if r > 0 and np.isfinite(x / r) else "—"
                for x, r in zip((hv, igd, t), ref, strict=True)
            ]
        cells = [
            f"{g['hv'].max():.4f}",
            f"{hv:.4f}",
            f"{g['hv'].min():.4f}",
            f"{g['igd'].min():.3g}",
            f"{igd:.3g}",
            f"{g['igd'].max():.3g}",
            f"{int(g['feasible'].sum())}/{len(g)}",
            f"{t:.2f}",
        ]
        row = [str(prob), str(int(g["evaluations"].iloc[0])), str(method), *cells, *ratios]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from pymoo.problems import get_problem

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="2 seeds, a fifth of the budgets")
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    ap.add_argument("--out", default="multiobjective", help="results/<out>.csv")
    args = ap.parse_args(argv)
    seeds, share = (2, 5) if args.quick else (args.seeds, 1)
    rows = []
    for prob in args.problems:
        name, kwargs, evals = PROBLEMS[prob]
        evals //= share
        p = ProblemFromPymoo(get_problem(name, **kwargs))
        score = Scorer(p.inner)
        for method in args.methods:
            for seed in range(seeds):
                F, t = METHODS[method](p, evals, seed)
                hv, igd = score(F)
                rows.append(
                    {
                        "problem": prob,
                        "method": method,
                        "seed": seed,
                        "evaluations": evals,
                        "hv": hv,
                        "hv_absolute": hv * score.hv_front,
                        "reference_point": " ".join(f"{r:.6g}" for r in score.ref),
                        "igd": igd,
                        "front_size": len(F),
                        "feasible": len(F) > 0,
                        "time_s": t,
                    }
                )
            write_csv(pd.DataFrame(rows), args.out)  # after every method: a long run keeps its part
            print(f"{prob}: {method} done", file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    refs = df.groupby("problem", sort=False)["reference_point"].first()
    print(f"# {machine()}, {seeds} seeds; HV as a share of the true front's\n")
    print("Reference points: " + "; ".join(f"{k} ({v})" for k, v in refs.items()) + "\n")
    print(table(df))
    return 0


if __name__ == "__main__":
    sys.exit(main())
