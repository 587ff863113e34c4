"""Full garbage collections during a run, with and without freezing what the run finds alive.

    python -m benchmarks.gc_pause [--repeats N] [--threads N]

``run_market(..., method="wca")`` repeatedly in one process, alternating runs with
``flexopt.run.gc_pause.frozen_before`` (the default) and runs with it replaced by a no-op
(the behaviour before). A ``gc.callbacks`` hook times every collection inside a run. Reported
per instance: medians over the repeats of the wall time, of the time spent in collections
and in generation-2 collections, the count of generation-2 collections, and the ratio of the
wall times (frozen / not). Instances: ``rts24-3dso`` and ``flexopt generate --transmission
case300 --feeder case69 --seed 0`` with 10 DSOs × 10 prosumers. The first run of each
instance (compilation, numba's cache) is left out. Writes ``results/gc_pause.csv``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks._common import machine, write_csv

ROOT = Path(__file__).resolve().parents[1]


class _Pauses:
    """Seconds spent in collections (all, generation 2) and the generation-2 count."""

    def __init__(self) -> None:
        self.on = False
        self.total = self.full = 0.0
        self.n_full = 0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if not self.on:
            return
        if phase == "start":
            self._start = time.perf_counter()
            return
        took = time.perf_counter() - self._start
        self.total += took
        if info["generation"] == 2:
            self.full += took
            self.n_full += 1


def main(argv: list[str] | None = None) -> None:
    import flexopt as fx
    from flexopt.generate import generate
    from flexopt.run import api

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="threads=N for every run")
    args = ap.parse_args(argv)
    pauses = _Pauses()
    gc.callbacks.append(pauses)
    frozen = api.frozen_before
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("rts24-3dso", ROOT / "instances" / "rts24-3dso"),
            ("case300 10 DSOs × 10", generate("case300", 10, "case69", 10, 0, Path(tmp) / "d")),
        ]
        for name, path in cases:
            inst = fx.load_instance(path)
            fx.run_market(inst, "wca", seed=0, threads=args.threads)  # compile, load caches
            got: dict[str, list[tuple[float, float, float, int]]] = {"frozen": [], "not": []}
            for _ in range(args.repeats):
                for how in ("not", "frozen"):
                    api.frozen_before = frozen if how == "frozen" else contextlib.nullcontext
                    pauses.total = pauses.full = 0.0
                    pauses.n_full = 0
                    pauses.on = True
                    start = time.perf_counter()
                    fx.run_market(inst, "wca", seed=0, threads=args.threads)
                    wall = time.perf_counter() - start
                    pauses.on = False
                    got[how].append((wall, pauses.total, pauses.full, pauses.n_full))
            api.frozen_before = frozen
            base = statistics.median(w for w, *_ in got["not"])
            for how, runs in got.items():
                wall, total, full, n_full = (statistics.median(x) for x in zip(*runs, strict=True))
                rows.append(
                    {
                        "instance": name,
                        "run": "frozen before the run" if how == "frozen" else "not frozen",
                        "wall_s": wall,
                        "gc_s": total,
                        "gc_full_s": full,
                        "full_collections": n_full,
                        "wall_ratio": wall / base,
                    }
                )
            write_csv(pd.DataFrame(rows), "gc_pause")
    print(f"machine: {machine()}; threads={args.threads}; medians of {args.repeats} runs\n")
    print("| instance | run | wall (s) | collections (ms) | full ones (ms) | full ones | wall × |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in pd.DataFrame(rows).itertuples():
        print(
            f"| {r.instance} | {r.run} | {r.wall_s:.3f} | {r.gc_s * 1e3:.1f} | "
            f"{r.gc_full_s * 1e3:.1f} | {r.full_collections:g} | {r.wall_ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
