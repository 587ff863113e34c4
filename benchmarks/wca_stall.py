"""The ``wca`` method's stall termination and warm starts against 50 × 300 from x⁰.

    python -m benchmarks.wca_stall [--quick] [--stall 20,50,75,100] [--seeds 3]

Every DSO coefficient problem of a market run — ``rts24-3dso`` and ``flexopt generate
--transmission case300 --feeder case69 --seed 0`` with 100 DSOs × 10 and × 50 prosumers —
is solved by ``solve_dcp_wca`` (the ``wca`` method's search) under several settings, the
same seed for each setting of one DSO: the previous default (50 × 300 from x⁰ alone), the
same with another seed (the search's own noise), and 50 × at most 300 stopped after
``wca_stall`` stalled iterations from x⁰ and the mlf point — the window fixed, and the
``wca`` method's window by factors (``stall_window``: shorter below 10 factors). The problems are caught through
the method registry (a probe method that runs the settings and bids the unmodified offers).
Reported per setting: evaluations against 50 × 300, and the DCP objective's relative gap per
DSO (max, min, mean, how many worse by more than 0.01 %). With ``--seeds K`` every window
by factors also runs from ``K − 1`` more seeds, and a second table sets each window against
the longest one from the same seed — a stopped search is a prefix of a longer one, so the
gap is what the longer patience finds. Evaluations, not seconds, are the measure here (the
same count costs the same time); ``benchmarks/clearing_time.py`` times the market. Writes
``results/wca_stall.csv``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import machine, write_csv
from flexopt.dso.dcp import DCPProblem
from flexopt.dso.modification import unit_factors
from flexopt.dso.offer import Modification
from flexopt.methods.registry import register_method, unregister_method
from flexopt.methods.wca import WCAConfig, dcp_wca, solve_dcp_wca, starts
from flexopt.optim import Termination, minimize

ROOT = Path(__file__).resolve().parents[1]
PROBE = "wca_stall_probe"
REFERENCE = WCAConfig(wca_stall=0, wca_start="x0")
#: (label, config, seed offset, window kept at wca_stall on any number of factors) of each
#: setting; filled by :func:`settings`.
SETTINGS: list[tuple[str, WCAConfig, int, bool]] = []
FOUND: list[dict[str, Any]] = []


def settings(stalls: list[int], seeds: int = 1) -> list[tuple[str, WCAConfig, int, bool]]:
    """The reference and its other seed, each stall length with the window the ``wca``
    method takes (shorter on fewer than 10 factors, ``stall_window``) and kept fixed, and the
    default length from x⁰ alone; then each window by factors from ``seeds − 1`` more
    seeds."""
    out = [
        ("50 × 300 from x0", REFERENCE, 0, False),
        ("50 × 300 from x0, another seed", REFERENCE, 1, False),
    ]
    for s in stalls:
        out.append((f"stall {s} fixed, x0 + mlf", WCAConfig(wca_stall=s), 0, True))
        out.append((f"stall {s} by factors, x0 + mlf", WCAConfig(wca_stall=s), 0, False))
    out += [(f"stall {s} by factors, x0", WCAConfig(wca_stall=s, wca_start="x0"), 0, False)]
    for k in range(1, seeds):
        for s in stalls:
            label = f"stall {s} by factors, x0 + mlf, seed +{k}"
            out.append((label, WCAConfig(wca_stall=s), 10 + k, False))
    return out


def _by_factors(stall: int, k: int) -> str:
    return f"stall {stall} by factors, x0 + mlf" + (f", seed +{k}" if k else "")


def window_table(df: pd.DataFrame, stalls: list[int], seeds: int) -> str:
    """Each window by factors against the longest from the same seed, pooled over seeds."""
    longest = max(stalls)
    lines = [
        f"| instance | window | searches | evaluations × stall {longest} | gap max | gap mean "
        "| equal | worse by > 0.01 % |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for inst, g in df.groupby("instance", sort=False):
        for s in sorted(set(stalls) - {longest}):
            gaps, ev, ev_ref = [], 0, 0
            for k in range(seeds):
                a = g[g["setting"] == _by_factors(s, k)].set_index("dso")
                b = g[g["setting"] == _by_factors(longest, k)].set_index("dso")
                gaps.append(100 * (a["objective"] / b["objective"] - 1))
                ev, ev_ref = ev + a["evaluations"].sum(), ev_ref + b["evaluations"].sum()
            gap = pd.concat(gaps)
            lines.append(
                f"| {inst} | stall {s} | {len(gap)} | {ev / ev_ref:.2f} | {gap.max():+.4f} % "
                f"| {gap.mean():+.4f} % | {int((gap == 0).sum())} | {int((gap > 0.01).sum())} |"
            )
    return "\n".join(lines)


def probe(problem: DCPProblem, config: None, rng: np.random.Generator) -> Modification:
    """Run every setting on this DSO's problem (same seed), then bid the unmodified offers."""
    if problem.has_decisions:
        seed = int(rng.integers(2**62))
        for label, cfg, offset, fixed in SETTINGS:
            x0 = starts(problem, cfg)
            if fixed:
                stall = Termination(
                    max_iter=cfg.wca_iter, stall_iter=cfg.wca_stall, stall_tol=cfg.wca_stall_tol
                )
                r = minimize(problem, dcp_wca(problem, x0, cfg), termination=stall, seed=seed)
            else:
                r = solve_dcp_wca(problem, x0, cfg, seed + offset)
            FOUND.append(
                {
                    "dso": problem.ctx.dso.id,
                    "factors": problem.lower.size,
                    "setting": label,
                    "objective": r.f,
                    "evaluations": r.evaluations,
                }
            )
    return Modification(unit_factors(problem.n))


def instances(quick: bool, tmp: Path) -> list[tuple[str, Path]]:
    from flexopt.generate import generate

    out = [("rts24-3dso", ROOT / "instances" / "rts24-3dso")]
    for n_pros in (10,) if quick else (10, 50):
        out.append(
            (
                f"case300 100 DSOs × {n_pros}",
                generate("case300", 100, "case69", n_pros, 0, tmp / f"p{n_pros}"),
            )
        )
    return out


def table(df: pd.DataFrame) -> str:
    lines = [
        "| instance | DSOs searched | factors | setting | evaluations | × 50 × 300 | "
        "gap max | gap min | gap mean | worse by > 0.01 % |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for inst, g in df.groupby("instance", sort=False):
        ref = g[g["setting"] == SETTINGS[0][0]].set_index("dso")
        for label, s in g.groupby("setting", sort=False):
            s = s.set_index("dso")
            gap = 100 * (s["objective"] / ref["objective"] - 1)
            ev = s["evaluations"].sum()
            dims = f"{s['factors'].min()}–{s['factors'].max()}"
            lines.append(
                f"| {inst} | {len(s)} | {dims} | {label} | {ev:,} | "
                f"{ev / ref['evaluations'].sum():.2f} | {gap.max():+.4f} % | {gap.min():+.4f} % | "
                f"{gap.mean():+.4f} % | {int((gap > 0.01).sum())} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import flexopt as fx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="rts24-3dso and 100 DSOs × 10 only")
    ap.add_argument(
        "--stall", default="20,50,75", help="stall lengths; the last also runs from x⁰ alone"
    )
    ap.add_argument(
        "--seeds", type=int, default=1, help="seeds of each window by factors (and a table)"
    )
    args = ap.parse_args(argv)
    stalls = [int(s) for s in args.stall.split(",")]
    SETTINGS[:] = settings(stalls, args.seeds)
    register_method(PROBE, probe)
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, path in instances(args.quick, Path(tmp)):
                FOUND.clear()
                fx.run_market(fx.load_instance(path), PROBE, seed=0)
                rows += [{"instance": name, **r} for r in FOUND]
                write_csv(pd.DataFrame(rows), "wca_stall")
    finally:
        unregister_method(PROBE)
    print(f"machine: {machine()}")
    df = pd.DataFrame(rows)
    print(table(df[~df["setting"].str.contains("seed +", regex=False)]))
    if args.seeds > 1 and len(stalls) > 1:
        print()
        print(window_table(df, stalls, args.seeds))


if __name__ == "__main__":
    main()
