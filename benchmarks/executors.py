"""Process pools that start once, and threads: repeated runs with ``workers=2`` and with
``threads=2`` against serial runs.

    python -m benchmarks.executors [--quick] [--repeats N] [--round-trips]

In one process: ``run_market`` serially, then with ``workers=2`` — this process and one
started worker, which takes tasks once it has warmed up (imports, the compiled sweep) while
this one runs S1–S2 and whatever tasks come before; the first call starts it, the later calls
reuse it — then again with a fresh worker for every call (``flexopt.executors.shutdown()``
between calls; *spawned*, not forked: by then this process has started numba's OpenMP
threads, so ``fork_safe()`` is false — a single ``flexopt run --workers 2`` forks its worker,
which ``benchmarks/clearing_time.py`` measures), and with two threads of the process
(``threads=2``: nothing to start or copy; the DCP search's compiled evaluation holds no
GIL). Instances: ``rts24-3dso`` and ``flexopt
generate --transmission case300 --feeder case69 --seed 0`` with 10 and 30 DSOs × 10
prosumers; method ``wca``. Reported: the wall time of the whole run and of the DSO stages
(S4, S5–S6, S8), medians over the repeats, and their ratio to the serial run of the same
instance in the same process. Writes ``results/executors.csv``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks._common import machine, write_csv

ROOT = Path(__file__).resolve().parents[1]
DSO_STAGES = ("loss_allocation_s", "dso_bids_s", "dispatch_s")


def timed(inst: object, workers: int | None, threads: int | None = None) -> tuple[float, float]:
    import flexopt as fx

    start = time.perf_counter()
    res = fx.run_market(inst, "wca", seed=0, workers=workers, threads=threads)
    wall = time.perf_counter() - start
    return wall, sum(res.timings.get(k, 0.0) for k in DSO_STAGES)


def _echo(x: int) -> int:
    return x


def round_trips(n: int = 200) -> dict[str, float]:
    """Microseconds per round trip of a trivial task through a warm one-worker
    ``ProcessPoolExecutor``: this thread waiting for it, or busy meanwhile in pure Python or
    in small pandas operations (as S4 and S8 are) — the pool's own threads in this process
    need the GIL to pass each task and result on."""
    import concurrent.futures
    import multiprocessing as mp

    import numpy as np

    out: dict[str, float] = {}
    frame = pd.DataFrame(np.random.default_rng(0).random((50, 5)))
    busy = {
        "waiting": None,
        "pure Python": lambda: sum(range(50)),
        "pandas": lambda: frame.loc[frame[0] > 0.5, 1].sum(),
    }
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        pool.submit(_echo, 0).result()
        for how, work in busy.items():
            done: list[float] = []

            def chain(_: object, done: list[float] = done) -> None:
                done.append(time.perf_counter())
                if len(done) < n:
                    pool.submit(_echo, 1).add_done_callback(chain)

            start = time.perf_counter()
            pool.submit(_echo, 1).add_done_callback(chain)
            while len(done) < n:
                if work is None:
                    time.sleep(1e-4)
                else:
                    work()
            out[how] = 1e6 * (time.perf_counter() - start) / n
    return out


def main(argv: list[str] | None = None) -> None:
    import flexopt as fx
    from flexopt import executors
    from flexopt.generate import generate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="rts24-3dso and 10 DSOs only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--round-trips", action="store_true", help="only the pool's round trip, idle or busy"
    )
    args = ap.parse_args(argv)
    if args.round_trips:
        for how, us in round_trips().items():
            print(f"round trip, this thread {how}: {us:,.0f} µs")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("rts24-3dso", ROOT / "instances" / "rts24-3dso")]
        for n in (10,) if args.quick else (10, 30):
            cases.append(
                (
                    f"case300 {n} DSOs × 10",
                    generate("case300", n, "case69", 10, 0, Path(tmp) / f"d{n}"),
                )
            )
        for name, path in cases:
            inst = fx.load_instance(path)
            timed(inst, None)  # compile and load once in this process
            runs: dict[str, list[tuple[float, float]]] = {
                "serial": [],
                "fresh pool (spawned)": [],
                "2 threads": [],
            }
            runs["pool, first call"] = [timed(inst, 2)]
            runs["pool, reused"] = [timed(inst, 2) for _ in range(args.repeats)]
            executors.shutdown()
            for _ in range(args.repeats):
                runs["serial"].append(timed(inst, None))
                runs["fresh pool (spawned)"].append(timed(inst, 2))
                executors.shutdown()
                runs["2 threads"].append(timed(inst, None, 2))
            serial = [statistics.median(x) for x in zip(*runs["serial"], strict=True)]
            for how, got in runs.items():
                wall, stages = (statistics.median(x) for x in zip(*got, strict=True))
                rows.append(
                    {
                        "instance": name,
                        "how": how,
                        "wall_s": wall,
                        "dso_stages_s": stages,
                        "speedup_wall": serial[0] / wall,
                        "speedup_dso_stages": serial[1] / stages,
                    }
                )
            write_csv(pd.DataFrame(rows), "executors")
    df = pd.DataFrame(rows)
    print(f"machine: {machine()}")
    print("| instance | run | wall (s) | speed-up | DSO stages (s) | speed-up |")
    print("|---|---|---:|---:|---:|---:|")
    for r in df.itertuples():
        print(
            f"| {r.instance} | {r.how} | {r.wall_s:.2f} | {r.speedup_wall:.2f} | "
            f"{r.dso_stages_s:.2f} | {r.speedup_dso_stages:.2f} |"
        )


if __name__ == "__main__":
    main()
