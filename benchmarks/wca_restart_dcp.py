"""New water cycles and rain on some coordinates (``models/wca.md`` W4d, deviations 8–9) on
the market's own constrained problem, the DSO coefficient problem.

    python -m benchmarks.wca_restart_dcp [--quick] [--sizes 10x50,30x50,100x10,100x50]
        [--split] [--report]

Every DSO coefficient problem with decisions (``DCPProblem`` at the market's design point,
caught through the method registry after S1–S4 and S3, as ``benchmarks/wca_stall.py`` does)
of ``rts24-3dso`` and of ``flexopt generate --transmission case300 --feeder case69 --seed 0``
at each size (DSOs × prosumers per DSO) is searched, seeds 0–2, by four variants:

- ``market``: exactly the ``wca`` method's default search (``methods/wca.py``:
  ``solve_dcp_wca`` with ``WCAConfig()`` — 50 × at most 300, stopped after ``wca_stall``
  stalled iterations (75 when the table in ``benchmarks/README.md`` was measured, 50 since
  2026-12-02), from x⁰ and the mlf point, ``d_max = 1e-5``, Gaussian raining);
- ``market + cycles``: the same WCA with ``restart=30, river_rain="coordinates"``;
- ``50 × 300`` and ``50 × 300 + cycles``: both without the stall termination (the old budget).

Every result is scored on the same evaluator, the DCP's own ``evaluate`` (objective C6,
violation ``Σ max(0, G)`` of C7–C8), and ranked by Deb's rules; the gap of a result is
relative to the best any variant found for that DSO. Per size and variant: median, mean and
worst gap over DSOs × seeds, how many (DSO, seed) pairs the variant improves / worsens by more than
a relative 1e-6 against the market's search with the same seed (and against the same budget
without new cycles), infeasible results, evaluations, search seconds. ``--split`` adds
each option alone in the market's search. Writes ``results/wca_restart_dcp.csv``
(``_split.csv`` with ``--split``) after every instance.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import RESULTS, machine, sizes_arg
from flexopt.atomic import atomic_file
from flexopt.dso.dcp import DCPProblem
from flexopt.dso.modification import Factors, unit_factors
from flexopt.dso.offer import Modification
from flexopt.methods.registry import register_method, unregister_method
from flexopt.methods.wca import WCAConfig, dcp_termination, dcp_wca, solve_dcp_wca, starts
from flexopt.optim import Result, minimize

ROOT = Path(__file__).resolve().parents[1]
NAME = "wca_restart_dcp"
PROBE = "wca_restart_dcp_probe"
SEEDS = (0, 1, 2)
TOL = 1e-6  # relative change that counts as improved / worsened
MARKET = WCAConfig()  # the wca method's defaults
FULL = WCAConfig(wca_stall=0)  # 50 × 300, the same starts
CYCLES: dict[str, Any] = {"restart": 30, "river_rain": "coordinates"}
#: label → (config, extra WCA options, the same budget without them)
VARIANTS: dict[str, tuple[WCAConfig, dict[str, Any], str]] = {
    "market": (MARKET, {}, ""),
    "market + cycles": (MARKET, CYCLES, "market"),
    "50 × 300": (FULL, {}, ""),
    "50 × 300 + cycles": (FULL, CYCLES, "50 × 300"),
}
#: ``--split``: each option alone in the market's search
SPLIT: dict[str, tuple[WCAConfig, dict[str, Any], str]] = {
    "market + restart 30": (MARKET, {"restart": 30}, "market"),
    "market + coordinates": (MARKET, {"river_rain": "coordinates"}, "market"),
}
FOUND: list[DCPProblem] = []


def search(
    problem: DCPProblem, config: WCAConfig, extra: dict[str, Any], seed: int
) -> tuple[Result, int]:
    """``solve_dcp_wca``'s search with ``extra`` WCA options; returns the result and the
    new cycles run."""
    algo = dcp_wca(problem, starts(problem, config), config, **extra)
    return minimize(
        problem, algo, termination=dcp_termination(config, problem.lower.size), seed=seed
    ), algo.cycles


def score(problem: DCPProblem, x: np.ndarray) -> tuple[float, float, bool]:
    """The one evaluator: the DCP's objective, its total violation (Deb's rules) and the
    market's own feasibility check of the factors as bid."""
    ev = problem.evaluate(x[None, :])
    f = float(ev.F[0, 0])
    v = 0.0 if ev.G is None else float(np.clip(ev.G[0], 0.0, None).sum())
    alpha, beta = problem.factors(x[None, :])
    return f, v, problem.score(Factors(alpha[0], beta[0])).feasible


def write_csv(df: pd.DataFrame, name: str) -> Path:
    """``results/<name>.csv`` atomically, with 12 digits: the 1e-6 comparisons of
    :func:`table` need more than ``_common.write_csv``'s 6."""
    out = RESULTS / f"{name}.csv"
    with atomic_file(out) as tmp:
        df.to_csv(tmp, index=False, float_format="%.12g")
    return out


def probe(problem: DCPProblem, config: None, rng: np.random.Generator) -> Modification:
    """Keep the DSO's problem, bid the unmodified offers."""
    if problem.has_decisions:
        FOUND.append(problem)
    return Modification(unit_factors(problem.n))


def instances(sizes: list[tuple[int, int]], tmp: Path) -> list[tuple[str, Path]]:
    from flexopt.generate import generate

    out = [("rts24-3dso", ROOT / "instances" / "rts24-3dso")]
    for dsos, pros in sizes:
        path = generate("case300", dsos, "case69", pros, 0, tmp / f"{dsos}x{pros}")
        out.append((f"case300 {dsos} DSOs × {pros}", path))
    return out


def check_replica(problem: DCPProblem) -> None:
    """:func:`search` without extras is the market's search (same point, same count)."""
    mine, _ = search(problem, MARKET, {}, 0)
    ref = solve_dcp_wca(problem, starts(problem, MARKET), MARKET, 0)
    if not (np.array_equal(mine.x, ref.x) and mine.evaluations == ref.evaluations):
        raise RuntimeError("search() does not reproduce solve_dcp_wca")


def run_instance(name: str, path: Path) -> list[dict[str, Any]]:
    import flexopt as fx

    FOUND.clear()
    fx.run_market(fx.load_instance(path), PROBE, seed=0)
    rows = []
    for problem in FOUND:
        for label, (config, extra, _) in VARIANTS.items():
            for seed in SEEDS:
                start = time.perf_counter()
                res, cycles = search(problem, config, extra, seed)
                seconds = time.perf_counter() - start
                f, v, feasible = score(problem, res.x)
                rows.append(
                    {
                        "instance": name,
                        "dso": problem.ctx.dso.id,
                        "factors": problem.lower.size,
                        "constraints": problem.n_constr,
                        "variant": label,
                        "seed": seed,
                        "objective": f,
                        "violation": v,
                        "feasible": feasible,
                        "evaluations": res.evaluations,
                        "iterations": len(res.history),
                        "cycles": cycles,
                        "seconds": seconds,
                    }
                )
    return rows


def gaps(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``gap``: relative to the best result of any variant for the DSO under Deb's rules
    (NaN when the result or every result is infeasible)."""
    out = []
    for _, g in df.groupby(["instance", "dso"], sort=False):
        ok = g["violation"] <= 0
        best = g.loc[ok, "objective"].min() if ok.any() else np.nan
        gap = (g["objective"] / best - 1).where(ok)
        out.append(g.assign(gap=gap))
    return pd.concat(out)


def _changed(a: pd.Series, b: pd.Series) -> tuple[int, int]:
    """(improved, worsened) pairs of ``a`` against ``b`` beyond a relative ``TOL``."""
    rel = a / b - 1
    return int((rel < -TOL).sum()), int((rel > TOL).sum())


def table(df: pd.DataFrame) -> str:
    df = gaps(df)
    lines = [
        "| instance | DSOs | factors | variant | gap median | gap mean | gap worst | "
        "better / worse vs market | better / worse vs no cycles | infeasible | cycles | "
        "evaluations | × market | search s |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for inst, g in df.groupby("instance", sort=False):
        key = ["dso", "seed"]
        market = g[g["variant"] == "market"].set_index(key)
        for label, s in g.groupby("variant", sort=False):
            s = s.set_index(key)
            n = len(s)
            b, w = _changed(s["objective"], market["objective"])
            vs_market = "—" if label == "market" else f"{b}/{n} / {w}/{n}"
            base = VARIANTS[label][2]
            vs_base = "—"
            if base:
                ref = g[g["variant"] == base].set_index(key)["objective"]
                b2, w2 = _changed(s["objective"], ref)
                vs_base = f"{b2}/{n} / {w2}/{n}"
            ev = s["evaluations"].sum()
            infeasible = int(((s["violation"] > 0) | ~s["feasible"].astype(bool)).sum())
            dims = f"{s['factors'].min()}–{s['factors'].max()}"
            lines.append(
                f"| {inst} | {s.index.get_level_values('dso').nunique()} | {dims} | {label} | "
                f"{100 * s['gap'].median():+.4f} % | {100 * s['gap'].mean():+.4f} % | "
                f"{100 * s['gap'].max():+.4f} % | "
                f"{vs_market} | {vs_base} | {infeasible} | {s['cycles'].mean():.1f} | "
                f"{ev:,} | {ev / market['evaluations'].sum():.2f} | {s['seconds'].sum():.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="rts24-3dso and 10 DSOs × 10 only")
    ap.add_argument("--sizes", type=sizes_arg, default=sizes_arg("10x50,30x50,100x10,100x50"))
    ap.add_argument("--report", action="store_true", help="only print the CSV")
    ap.add_argument(
        "--split",
        action="store_true",
        help=f"also each option alone (writes results/{NAME}_split.csv)",
    )
    args = ap.parse_args(argv)
    name = f"{NAME}_split" if args.split else NAME
    if args.split:
        VARIANTS.update(SPLIT)
    if args.report:
        print(table(pd.read_csv(RESULTS / f"{name}.csv")))
        return
    sizes = [(10, 10)] if args.quick else args.sizes
    register_method(PROBE, probe)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i, (label, path) in enumerate(instances(sizes, Path(tmp))):
                if i == 0:  # compile both engines' paths before anything is timed
                    import flexopt as fx

                    FOUND.clear()
                    fx.run_market(fx.load_instance(path), PROBE, seed=0)
                    check_replica(FOUND[0])
                    search(FOUND[0], MARKET, CYCLES, 0)
                rows += run_instance(label, path)
                write_csv(pd.DataFrame(rows), name)
                print(f"{label}: done at {time.perf_counter() - start:.0f} s", flush=True)
    finally:
        unregister_method(PROBE)
    print(f"machine: {machine()}; wall {time.perf_counter() - start:.0f} s")
    print(table(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
