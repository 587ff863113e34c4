"""flexopt WCA vs mealpy OriginalWCA at equal evaluations (D = 30).

    python -m benchmarks.wca_engine [--seeds 30] [--quick]

flexopt runs its default, compiled engine (and, on Sphere, the numpy reference engine too).
Both run the authors' defaults where they apply (Npop 50, Nsr 4, C = 2; flexopt d_max 1e-16,
mealpy's own d_max default 1e-6) for flexopt's 1 000 iterations = 49 050 evaluations; mealpy
gets the same evaluation budget (``max_fe``). Quality: best / median / worst final value over
the seeds. Speed: evaluations per second on a trivial objective (Sphere), both measured in
this run, and their ratio — against mealpy through the adapter (on the same flexopt Problem)
and against mealpy on its own (Sphere as a plain per-solution function, the stricter
baseline). Writes ``results/wca_engine.csv``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from benchmarks._common import RESULTS, machine, write_csv
from flexopt import optim

D = 30
FUNCTIONS = {
    "sphere": (lambda X: (X**2).sum(1), 100.0),
    "rastrigin": (lambda X: (X**2 - 10 * np.cos(2 * np.pi * X)).sum(1) + 10 * X.shape[1], 5.12),
    "rosenbrock": (
        lambda X: (100 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1 - X[:, :-1]) ** 2).sum(1),
        30.0,
    ),
    "ackley": (
        lambda X: (
            -20 * np.exp(-0.2 * np.sqrt((X**2).mean(1)))
            - np.exp(np.cos(2 * np.pi * X).mean(1))
            + 20
            + np.e
        ),
        32.0,
    ),
    "griewank": (
        lambda X: (
            (X**2).sum(1) / 4000
            - np.prod(np.cos(X / np.sqrt(np.arange(1, X.shape[1] + 1))), axis=1)
            + 1
        ),
        600.0,
    ),
}
ITERATIONS = 1000
BUDGET = 50 + ITERATIONS * 49


def _problem(name: str) -> optim.Problem:
    f, bound = FUNCTIONS[name]
    return optim.Problem.from_function(f, -bound * np.ones(D), bound * np.ones(D))


def _run(method: str, problem: optim.Problem, seed: int) -> tuple[float, int, float]:
    if method == "flexopt WCA":
        r = optim.minimize(problem, optim.WCA(), max_iter=ITERATIONS, seed=seed)
    elif method == NUMPY:
        r = optim.minimize(problem, optim.WCA(engine="numpy"), max_iter=ITERATIONS, seed=seed)
    else:
        r = optim.minimize(
            problem,
            optim.Mealpy("OriginalWCA", pop_size=50, nsr=4, wc=2.0),
            max_evals=BUDGET,
            seed=seed,
        )
    return float(r.f), r.evaluations, r.time_s


FLOOR = "floor (draws, objective calls)"
NATIVE = "mealpy OriginalWCA, native objective"
NUMPY = "flexopt WCA, numpy engine"


def _floor(problem: optim.Problem, seed: int) -> tuple[float, int, float]:
    """The work no WCA engine can skip, timed alone: per iteration, the generator call that
    draws its uniforms and the objective call of each of its rounds (``Problem.evaluate``
    on the rounds' rows), with no flow, swap, evaporation or accounting. Everything else in
    a WCA iteration is bookkeeping."""
    import time

    wca = optim.WCA()
    optim.minimize(problem, wca, max_iter=1, seed=seed)  # the default layout after init
    rows = wca._x
    start = time.perf_counter()
    for _ in range(ITERATIONS):
        wca.rng.random(out=wca._draws)
        for x in rows:
            problem.evaluate(x)
    return np.nan, ITERATIONS * 49, time.perf_counter() - start


def _native_mealpy(seed: int) -> tuple[float, int, float]:
    """mealpy on its own terms: Sphere as a plain per-solution function, no flexopt Problem
    in between (the adapter's wrapping costs mealpy ~5 % of its throughput)."""
    import time

    from mealpy import WCA, FloatVar

    evals = 0

    def sphere(x: np.ndarray) -> float:
        nonlocal evals
        evals += 1
        return float(np.sum(x**2))

    task = {
        "obj_func": sphere,
        "bounds": FloatVar(lb=-100.0 * np.ones(D), ub=100.0 * np.ones(D)),
        "minmax": "min",
        "log_to": None,
    }
    opt = WCA.OriginalWCA(epoch=ITERATIONS, pop_size=50, nsr=4, wc=2.0)
    start = time.perf_counter()
    best = opt.solve(task, seed=seed, termination={"max_fe": BUDGET})
    return float(best.target.fitness), evals, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="3 seeds (smoke run)")
    ap.add_argument(
        "--report", action="store_true", help="only print the table of results/wca_engine.csv"
    )
    args = ap.parse_args(argv)
    if args.report:
        return report(pd.read_csv(RESULTS / "wca_engine.csv"))
    seeds = 3 if args.quick else args.seeds
    keys = ("f", "evaluations", "time_s")
    rows = [
        {"function": "sphere", "method": FLOOR, "seed": seed}
        | dict(zip(keys, _floor(_problem("sphere"), seed), strict=True))
        for seed in range(seeds)
    ]
    rows += [
        {"function": "sphere", "method": NATIVE, "seed": seed}
        | dict(zip(keys, _native_mealpy(seed), strict=True))
        for seed in range(seeds)
    ]
    for name in FUNCTIONS:
        problem = _problem(name)
        methods = ("flexopt WCA", "mealpy OriginalWCA") + ((NUMPY,) if name == "sphere" else ())
        for method in methods:
            for seed in range(seeds):
                f, evals, secs = _run(method, problem, seed)
                rows.append(
                    {
                        "function": name,
                        "method": method,
                        "seed": seed,
                        "f": f,
                        "evaluations": evals,
                        "time_s": secs,
                    }
                )
            print(f"{name:<11} {method:<19} done", file=sys.stderr)
    df = pd.DataFrame(rows)
    write_csv(df, "wca_engine")
    return report(df)


def report(df: pd.DataFrame) -> int:
    """Print the Markdown table and the same-run throughput ratio of a results table."""
    seeds = df["seed"].nunique()
    floor = df[df["method"] == FLOOR]
    df = df[df["method"] != FLOOR]
    stats = df.groupby(["function", "method"]).agg(
        best=("f", "min"),
        median=("f", "median"),
        worst=("f", "max"),
        evals=("evaluations", "mean"),
        time_s=("time_s", "mean"),
    )
    # throughput on the trivial objective, same run
    speed = (
        df[df["function"] == "sphere"]
        .groupby("method")
        .apply(lambda g: g["evaluations"].sum() / g["time_s"].sum(), include_groups=False)
    )
    ratio = speed["flexopt WCA"] / speed["mealpy OriginalWCA"]
    print(f"# WCA engine, {machine()}, D = {D}, {seeds} seeds, {BUDGET} evaluations per run\n")
    print("| function | method | best | median | worst | evaluations | s per run |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (fn, method), r in stats.iterrows():
        print(
            f"| {fn} | {method} | {r['best']:.3g} | {r['median']:.3g} | {r['worst']:.3g} | {r['evals']:,.0f} | {r['time_s']:.2f} |"
        )
    print(
        f"\nthroughput on Sphere: flexopt {speed['flexopt WCA']:,.0f} evaluations/s, mealpy "
        f"{speed['mealpy OriginalWCA']:,.0f} evaluations/s → {ratio:.1f}× (same run)"
    )
    baseline = speed["mealpy OriginalWCA"]
    if NATIVE in speed:
        baseline = speed[NATIVE]
        print(
            f"{NATIVE}: {baseline:,.0f} evaluations/s → flexopt "
            f"{speed['flexopt WCA'] / baseline:.1f}× (same run)"
        )
    if NUMPY in speed:
        print(
            f"{NUMPY}: {speed[NUMPY]:,.0f} evaluations/s → {speed[NUMPY] / baseline:.1f}× "
            f"{'native ' if NATIVE in speed else ''}mealpy; the compiled engine is "
            f"{speed['flexopt WCA'] / speed[NUMPY]:.2f}× faster (same run)"
        )
    if len(floor):
        per_it = 1e6 * floor["time_s"].sum() / floor["evaluations"].sum() * 49
        ceiling = floor["evaluations"].sum() / floor["time_s"].sum()
        print(
            f"{FLOOR}: {per_it:.1f} µs per iteration of 49 evaluations, flexopt "
            f"{1e6 / speed['flexopt WCA'] * 49:.1f} µs → bookkeeping "
            f"{1e6 / speed['flexopt WCA'] * 49 - per_it:.1f} µs; the floor alone would be "
            f"{ceiling / baseline:.1f}× {'native ' if NATIVE in speed else ''}mealpy"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
