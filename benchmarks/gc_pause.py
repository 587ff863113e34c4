"""Garbage collections during a run, with and without freezing what the run finds alive.

    python -m benchmarks.gc_pause [--repeats N] [--threads N]

``run_market(..., method="wca")`` with ``flexopt.run.gc_pause.frozen_before`` (the default)
and with it replaced by a no-op (the behaviour before), alternately, in two settings:

- **first run of a process** (what ``flexopt run`` does): each run in a fresh child process,
  timed from after the imports and the instance's loading to the run's end — numba's cache,
  Pyomo's models and the first tables are made during it;
- **later runs in one process** (a library loop, ``compare``): after one run that is left out.

A ``gc.callbacks`` hook times every collection inside a run. Reported per instance and
setting, over the repeats: the mean wall time, the mean time spent in collections, the
generation-2 (full) collections — their count and time as totals over all repeats, and the
longest — and the ratio of the mean wall times (frozen / not). Instances: ``rts24-3dso`` and
``flexopt generate --transmission case300 --feeder case69 --seed 0`` with 10 DSOs × 10
prosumers. Writes ``results/gc_pause.csv``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks._common import machine, run_child, write_csv

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("wall", "gc", "full", "n_full", "longest")


class _Pauses:
    """Seconds spent in collections (all, generation 2, the longest) and the
    generation-2 count, while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.reset()

    def reset(self) -> None:
        self.total = self.full = self.longest = 0.0
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
            self.longest = max(self.longest, took)


def _timed_run(inst: object, frozen: bool, threads: int | None, pauses: _Pauses) -> dict:
    import flexopt as fx
    from flexopt.run import api

    keep = api.frozen_before
    api.frozen_before = keep if frozen else contextlib.nullcontext
    pauses.reset()
    pauses.on = True
    start = time.perf_counter()
    try:
        fx.run_market(inst, "wca", seed=0, threads=threads)
    finally:
        wall = time.perf_counter() - start
        pauses.on = False
        api.frozen_before = keep
    return dict(
        zip(FIELDS, (wall, pauses.total, pauses.full, pauses.n_full, pauses.longest), strict=True)
    )


def _child(path: str, how: str, threads: str) -> None:
    import flexopt as fx

    pauses = _Pauses()
    gc.callbacks.append(pauses)
    inst = fx.load_instance(path)
    row = _timed_run(inst, how == "frozen", int(threads) or None, pauses)
    print(json.dumps(row))


def _row(name: str, setting: str, how: str, runs: list[dict], base: float) -> dict:
    wall = statistics.mean(r["wall"] for r in runs)
    return {
        "instance": name,
        "setting": setting,
        "run": "frozen before the run" if how == "frozen" else "not frozen",
        "wall_s": wall,
        "gc_s": statistics.mean(r["gc"] for r in runs),
        "full_collections": sum(r["n_full"] for r in runs),
        "gc_full_total_s": sum(r["full"] for r in runs),
        "longest_full_s": max(r["longest"] for r in runs),
        "wall_ratio": wall / base,
    }


def main(argv: list[str] | None = None) -> None:
    import flexopt as fx
    from flexopt.generate import generate

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _child(*argv[1:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="threads=N for every run (0: none)")
    args = ap.parse_args(argv)
    pauses = _Pauses()
    gc.callbacks.append(pauses)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("rts24-3dso", ROOT / "instances" / "rts24-3dso"),
            ("case300 10 DSOs × 10", generate("case300", 10, "case69", 10, 0, Path(tmp) / "d")),
        ]
        for name, path in cases:
            first: dict[str, list[dict]] = {"not": [], "frozen": []}
            for _ in range(args.repeats):
                for how in first:
                    cmd = [sys.executable, "-m", "benchmarks.gc_pause", "--child"]
                    status, row = run_child([*cmd, str(path), how, str(args.threads)], 600)
                    if status != "ok":
                        raise RuntimeError(f"{name}, {how}: {status}")
                    first[how].append(row)
            inst = fx.load_instance(path)
            threads = args.threads or None
            _timed_run(inst, True, threads, pauses)  # compile, load caches: left out
            later: dict[str, list[dict]] = {"not": [], "frozen": []}
            for _ in range(args.repeats):
                for how in later:
                    later[how].append(_timed_run(inst, how == "frozen", threads, pauses))
            for setting, got in (("first run of a process", first), ("later runs", later)):
                base = statistics.mean(r["wall"] for r in got["not"])
                rows += [_row(name, setting, how, runs, base) for how, runs in got.items()]
            write_csv(pd.DataFrame(rows), "gc_pause")
    print(f"machine: {machine()}; threads={args.threads or None}; {args.repeats} runs of each\n")
    print(
        "| instance | setting | run | wall (s, mean) | collections (ms, mean) | full "
        "collections (all runs) | their time (ms, all runs) | longest (ms) | wall × |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in pd.DataFrame(rows).itertuples():
        print(
            f"| {r.instance} | {r.setting} | {r.run} | {r.wall_s:.3f} | {r.gc_s * 1e3:.1f} | "
            f"{r.full_collections} | {r.gc_full_total_s * 1e3:.0f} | "
            f"{r.longest_full_s * 1e3:.0f} | {r.wall_ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
