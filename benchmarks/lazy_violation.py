"""The ``wca`` method's DSO searches with lazy violations against every violation computed.

    python -m benchmarks.lazy_violation [--sizes 100x10,100x50] [--repeat 3]

Every DSO coefficient problem with factors to search of a market run (``rts24-3dso`` and
``flexopt generate --transmission case300 --feeder case69 --seed 0`` at each size; the
problems as an ``mlf`` run leaves them) is solved by the ``wca`` method's search twice per
round, in one process, the order alternating between rounds: with ``lazy_violation=False``
(every point's block ends computed: the baseline) and with the default (the constraints
deferred, W4b of ``models/wca.md``). The two must be the same searches bit for bit — the
script stops otherwise. Reported per instance: the searches, their evaluations, the share of
evaluated points whose violation a comparison asked for (and of those, the shares asked only
below an infeasible leader's violation and only
whether they are feasible), each setting's median time for all the searches and the speed-up
(median of the rounds' ratios, range). Writes ``results/lazy_violation.csv``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import flexopt as fx
from benchmarks._common import machine, sizes_arg, write_csv
from flexopt.dso import _fused
from flexopt.dso.dcp import DCPProblem
from flexopt.methods.wca import WCAConfig, dcp_termination, dcp_wca, starts
from flexopt.optim import minimize

ROOT = Path(__file__).resolve().parents[1]


def problems(path: Path) -> list[DCPProblem]:
    """The DCP problems with factors to search of an ``mlf`` run of the instance at
    ``path`` (the requirement and contexts every method's S5 sees)."""
    inst = fx.load_instance(path)
    res = fx.run_market(inst, "mlf", seed=0)
    out = []
    for ctx in res.outcome.contexts:
        req = res.outcome.requirement_mw[ctx.dso.id]
        loss_price = inst.market.loss_price_eur_per_mwh
        pr = DCPProblem(ctx, req, loss_price, res.options.dcp, res.outcome.blocks)
        if pr.has_decisions:
            out.append(pr)
    return out


@contextmanager
def counting(counts: dict[str, int]) -> Iterator[None]:
    """Count the points whose violation the searches ask for (``bound ≥ 0``) and those
    asked below an infeasible leader's violation (``0 < bound < inf``) and only whether they
    are feasible (``bound = 0``)."""
    original = _fused.FusedDCP.violation

    def violation(self: _fused.FusedDCP, mk: Any, bound: np.ndarray) -> np.ndarray:
        counts["asked"] += int((bound >= 0).sum())
        counts["feasibility"] += int((bound == 0).sum())
        counts["below"] += int(((bound > 0) & (bound < np.inf)).sum())
        return original(self, mk, bound)

    _fused.FusedDCP.violation = violation  # type: ignore[method-assign]
    try:
        yield
    finally:
        _fused.FusedDCP.violation = original  # type: ignore[method-assign]


def search_all(prs: list[DCPProblem], lazy: bool) -> tuple[float, list[tuple[Any, ...]]]:
    """Seconds for every search, and what each found (x's bytes, f, violation, evaluations,
    history)."""
    config = WCAConfig()
    start = time.perf_counter()
    found = []
    for j, pr in enumerate(prs):
        alg = dcp_wca(pr, starts(pr, config), config, lazy_violation=lazy)
        term = dcp_termination(config, pr.lower.size)
        r = minimize(pr, alg, termination=term, seed=np.random.default_rng([0, j]))
        found.append((r.x.tobytes(), r.f, r.violation, r.evaluations, r.history.tobytes()))
    return time.perf_counter() - start, found


def measure(name: str, path: Path, repeat: int) -> dict[str, Any]:
    prs = problems(path)
    search_all(prs[:1], True)  # numba's kernels loaded before the first timing
    times: dict[bool, list[float]] = {False: [], True: []}
    counts = {"asked": 0, "feasibility": 0, "below": 0}
    reference = None
    for r in range(repeat):
        for lazy in (False, True) if r % 2 == 0 else (True, False):
            with counting(counts):
                seconds, found = search_all(prs, lazy)
            if reference is None:
                reference = found
            if found != reference:
                raise AssertionError(f"{name}: lazy_violation={lazy} changed a search")
            times[lazy].append(seconds)
    assert reference is not None
    evaluations = sum(f[3] for f in reference)
    ratios = np.array(times[False]) / np.array(times[True])
    return {
        "instance": name,
        "searches": len(prs),
        "evaluations": evaluations,
        # every search ran once lazily per round: the counts are per lazy run
        "asked_share": counts["asked"] / repeat / evaluations,
        "feasibility_share": counts["feasibility"] / max(counts["asked"], 1),
        "below_share": counts["below"] / max(counts["asked"], 1),
        "full_s": float(np.median(times[False])),
        "lazy_s": float(np.median(times[True])),
        "speedup": float(np.median(ratios)),
        "speedup_min": float(ratios.min()),
        "speedup_max": float(ratios.max()),
        "rounds": repeat,
    }


def table(df: pd.DataFrame) -> str:
    lines = [
        "| instance | searches | evaluations | violations asked for | of which: below an "
        "infeasible leader | feasible? "
        "| every violation (s) | lazy (s) | speed-up (range) | same searches |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for _, r in df.iterrows():
        lines.append(
            f"| {r.instance} | {r.searches} | {r.evaluations:,} | {r.asked_share:.0%} "
            f"| {r.below_share:.0%} | {r.feasibility_share:.0%} | {r.full_s:.2f} | {r.lazy_s:.2f} "
            f"| {r.speedup:.2f}× ({r.speedup_min:.2f}–{r.speedup_max:.2f}) | bit for bit |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=sizes_arg, default=sizes_arg("100x10,100x50"))
    ap.add_argument("--repeat", type=int, default=3, help="rounds, the order alternating")
    args = ap.parse_args(argv)
    from flexopt.generate import generate

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("rts24-3dso", ROOT / "instances" / "rts24-3dso")]
        for dsos, pros in args.sizes:
            where = Path(tmp) / f"i{dsos}x{pros}"
            cases.append(
                (
                    f"case300 {dsos} DSOs × {pros}",
                    generate("case300", dsos, "case69", pros, 0, where),
                )
            )
        for name, path in cases:
            rows.append(measure(name, path, args.repeat))
            print(f"{name}: done", flush=True)
    df = pd.DataFrame(rows)
    out = write_csv(df, "lazy_violation")
    print(f"machine: {machine()}\n")
    print(table(df))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
