"""How a process pool's workers start (``flexopt.executors``): forked from this process where
that is safe, else spawned; forked, after this process ran their warm-up itself, so that
they start with it done."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from contextlib import suppress

from flexopt.pool_feed import loaded_here

__all__ = ["fork_safe", "init_worker", "process_pool"]


def fork_safe() -> bool:
    """Whether a pool's workers may be forked from this process rather than spawned.

    A forked worker starts with every module loaded; a spawned one spends ~0.6 s importing
    them beside the run's S1 (one ``flexopt run --workers 2`` at 10 DSOs × 10 ran the DSO
    stages 1.05× faster than serially with a spawned worker, 1.40× with a forked one;
    ``benchmarks/README.md``). Safe on Linux while nothing but BLAS runs threads here: no other
    Python thread, no OpenMP runtime started (numba's threading layer: GNU OpenMP aborts a
    forked child entering a parallel region), ``highspy`` not loaded (HiGHS's threads would
    be missing in the child); OpenBLAS restarts its threads after a fork. A fresh ``flexopt
    run`` starts its pool before any of these. Native threads that other libraries start
    unseen (scipy's HiGHS run before): ``FLEXOPT_WORKER_START=spawn`` never forks."""
    import os
    import sys

    started = threading.active_count() > 1 or "highspy" in sys.modules
    if sys.platform != "linux" or os.environ.get("FLEXOPT_WORKER_START") == "spawn" or started:
        return False
    from threadpoolctl import threadpool_info

    # an OpenMP runtime loaded is started (numba's layer loads libgomp when it starts)
    return not any(lib["internal_api"] == "openmp" for lib in threadpool_info())


def init_worker() -> None:
    """One numba and one BLAS thread per process: the pool provides the parallelism (two
    workers each running OpenBLAS on both cores made S4's batched solves slower than serial).
    Through ``set_num_threads`` only: a ``NUMBA_NUM_THREADS`` changed after numba read its
    configuration makes the next compilation in this process fail once its threads run."""
    import signal

    import numba
    from threadpoolctl import threadpool_limits

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker had the CLI's handler
    numba.set_num_threads(1)
    threadpool_limits(1)  # numpy is loaded by now (forked, or imported with this function)


def process_pool(
    workers: int, warm: Callable[[], None] | None
) -> tuple[concurrent.futures.ProcessPoolExecutor, bool]:
    """The ``workers − 1`` processes of a pool of ``workers`` (this one is the other; started
    at their first submit), and whether they are forked (:func:`fork_safe`).

    Forked, a worker inherits what this process has loaded, so ``warm`` runs here first: a
    run's warm-up (numba's typing and target registries and the compiled feeder sweep, ~0.2 s
    in a fresh process) is what this process's own first task would load anyway, and the
    worker, which spent ~0.34 s on it beside S1 at 100 DSOs × 10, starts S4's tasks at once
    (``benchmarks/README.md``, "The warm-up before the fork"). It then runs ``warm`` again,
    finding it done. A warm-up that raises here is left to the worker, whose failure the
    pool reports; one that started threads here leaves the workers spawned."""
    import multiprocessing as mp

    forked = fork_safe()
    if forked and warm is not None:
        with suppress(Exception):  # the worker runs it again, and reports its failure
            warm()
            loaded_here()
        forked = fork_safe()
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers - 1,
        mp_context=mp.get_context("fork" if forked else "spawn"),
        initializer=init_worker,
    )
    return pool, forked
