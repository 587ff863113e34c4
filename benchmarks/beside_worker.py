"""What a forked pool worker costs this process: the warm-up's loading, and S1 beside it.

    python -m benchmarks.beside_worker [--repeat 3] [--dsos 10] [--prosumers 10]

Every measurement is a fresh child process (numba's registries and kernels not yet loaded,
as in a new ``flexopt run``), the settings interleaved round by round:

* ``warm-up``: ``warm_worker`` (numba's typing and target registries, the feeder sweep) and
  then ``warm_dso_stages`` (S5–S8's kernels) in this process — what a pool runs before
  forking its worker (``flexopt/pool_start.py``), and what this process's first tasks load;
* S1 (``day_ahead``) on ``flexopt generate --transmission case300 --feeder case69 --seed 0``
  with no pool, beside a forked worker that is idle, one that spins in pure Python, one that
  runs S4's tasks (``ex.start``, as a run hands them out), and one that runs S4 and then the
  later warm-up — each against the no-pool S1 of the same round.

Prints the medians over the rounds and writes ``results/beside_worker.csv``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks._common import machine, run_child, write_csv

SETTINGS = ("no pool", "idle worker", "spinning worker", "worker on S4", "worker on S4 + later")


def _spin(seconds: float) -> int:
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        n += 1
    return n


def child(instance: str, setting: str) -> None:
    """One measurement in this fresh process; prints one JSON line."""
    import concurrent.futures

    import flexopt as fx
    import flexopt.run.api  # the run's modules: their import is not measured
    from flexopt import executors
    from flexopt.run.tasks import PrepareTask, run_task, warm_worker
    from flexopt.run.tso import day_ahead
    from flexopt.run.warmup import warm_dso_stages

    if setting == "warm-up":
        t0 = time.perf_counter()
        warm_worker()
        t1 = time.perf_counter()
        warm_dso_stages()
        print(json.dumps({"warm_worker_s": t1 - t0, "warm_dso_stages_s": time.perf_counter() - t1}))
        return
    inst = fx.load_instance(instance)
    if setting != "no pool":
        later = warm_dso_stages if setting.endswith("later") else None
        block = executors.executor(2, warm=warm_worker, warm_later=later)  # kept open
        ex = block.__enter__()
        if setting in ("idle worker", "spinning worker"):
            concurrent.futures.wait(ex.ready)  # type: ignore[attr-defined]
            time.sleep(0.3)  # its warm-up done and settled
        if setting == "spinning worker":
            ex.pool.submit(_spin, 1.0)  # type: ignore[attr-defined]
        else:
            tasks = [PrepareTask.of(inst, d, "branch_current") for d in inst.dsos]
            ex.start(run_task, tasks)
    t = time.perf_counter()
    day_ahead(inst)
    print(json.dumps({"s1_s": time.perf_counter() - t}))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds, the settings interleaved")
    ap.add_argument("--dsos", type=int, default=10)
    ap.add_argument("--prosumers", type=int, default=10)
    ap.add_argument("--child", nargs=2, metavar=("INSTANCE", "SETTING"))
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    from flexopt.generate import generate

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inst"
        generate("case300", args.dsos, "case69", args.prosumers, 0, path)
        for rnd in range(1, args.repeat + 1):
            for setting in ("warm-up", *SETTINGS):
                print(f"beside_worker: round {rnd}, {setting} …", file=sys.stderr, flush=True)
                cmd = [sys.executable, "-m", "benchmarks.beside_worker", "--child", str(path)]
                status, row = run_child([*cmd, setting], 300.0)
                rows.append({"round": rnd, "setting": setting, "status": status, **row})
                write_csv(pd.DataFrame(rows), "beside_worker")  # an interrupt keeps these
    df = pd.DataFrame(rows)
    print(f"machine: {machine()}; {args.dsos} DSOs × {args.prosumers} prosumers, case300")
    warm = df[df["setting"] == "warm-up"]
    print(
        f"\nwarm-up in a fresh process (median of {len(warm)}): warm_worker "
        f"{warm['warm_worker_s'].median():.3f} s, then warm_dso_stages "
        f"{warm['warm_dso_stages_s'].median():.3f} s"
    )
    s1 = df[df["setting"] != "warm-up"].pivot(index="round", columns="setting", values="s1_s")
    print("\n| S1 beside | median (s) | range (s) | × no pool, median (range) |")
    print("|---|---:|---:|---:|")
    for setting in SETTINGS:
        ratio = s1[setting] / s1["no pool"]
        print(
            f"| {setting} | {s1[setting].median():.3f} | {s1[setting].min():.3f}–"
            f"{s1[setting].max():.3f} | {ratio.median():.2f} ({ratio.min():.2f}–{ratio.max():.2f}) |"
        )


if __name__ == "__main__":
    main()
