"""Where DSO-level work runs: serially (default), on threads of this process, in a local process
pool, or on a Dask cluster.

Each DSO's stages (S4, S5–S6, S8 in ``flexopt.dso.local``) depend only on that DSO's data and
a seed derived from the run's seed and the DSO's position, so every executor returns the same
numbers (``tests/test_executors.py``). Tasks are module-level functions with picklable
arguments; results come back in input order.

Threads start at once and share the run's data: nothing is pickled. They gain where a task's
work releases the GIL — the DCP search's compiled evaluation (``flexopt.dso._fused``), about
nine tenths of a ``wca`` run's DSO stages — and each runs numba and BLAS on one thread (the
threads are the parallelism; ``benchmarks/clearing_time.py``).

``workers=N`` runs the tasks on N processes: this one and N − 1 started for them (forked
where that is safe, :func:`fork_safe`, else spawned). The started workers run the warm-up
(imports, compiled kernels) at once, in the background while the caller goes on (S1–S2 of a
run), and take tasks only once it is done: until then this process runs them, so a first
call is never much slower than serial. Their pool starts once and is reused: it outlives the
``with executor(...)`` block that made it and serves the next block asking for the same size
and warm-up (the runs of a ``compare``, repeated ``run_market`` calls), until
:func:`shutdown` or the interpreter exits. A block left by an exception shuts its pool down
instead; by an interrupt (Ctrl-C, ``SIGTERM``), it kills the pool's workers: their running
chunks (in ``flexopt compare``, whole runs) are lost, not waited for.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import queue
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Generic, Protocol, TypeVar

from flexopt.dask_client import CONNECT_TIMEOUT_S, DaskExecutor

__all__ = ["CONNECT_TIMEOUT_S", "Executor", "executor", "fork_safe", "shutdown"]


A = TypeVar("A")
R = TypeVar("R")

_log = logging.getLogger(__name__)


class Executor(Protocol):
    """Anything with an order-preserving ``map(fn, items) -> list``, and ``as_completed``:
    ``(position, result)`` pairs as the items finish (progress, keeping what finished; a
    process pool's workers return theirs a chunk at a time)."""

    def map(self, fn: Callable[[A], R], items: Iterable[A]) -> list[R]: ...

    def as_completed(self, fn: Callable[[A], R], items: Iterable[A]) -> Iterator[tuple[int, R]]: ...


class _Serial:
    def map(self, fn: Callable[[A], R], items: Iterable[A]) -> list[R]:
        return [fn(x) for x in items]

    def as_completed(self, fn: Callable[[A], R], items: Iterable[A]) -> Iterator[tuple[int, R]]:
        for i, x in enumerate(items):
            yield i, fn(x)


def _init_worker() -> None:
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


class _Pool:
    """``map`` and ``as_completed`` over a :mod:`concurrent.futures` pool."""

    pool: concurrent.futures.Executor

    def map(self, fn: Callable[[A], R], items: Iterable[A]) -> list[R]:
        return list(self.pool.map(fn, items))

    def as_completed(self, fn: Callable[[A], R], items: Iterable[A]) -> Iterator[tuple[int, R]]:
        futures = {self.pool.submit(fn, x): i for i, x in enumerate(items)}
        for f in concurrent.futures.as_completed(futures):
            yield futures[f], f.result()


def _init_thread() -> None:
    """One numba thread for this pool thread (numba's count is per thread): the pool's
    threads are the parallelism, and the feeder sweeps then take their serial kernels."""
    import numba

    numba.set_num_threads(1)


class _Threads(_Pool):
    def __init__(self, threads: int) -> None:
        from threadpoolctl import threadpool_limits

        self.pool = concurrent.futures.ThreadPoolExecutor(
            threads, "flexopt-dso", initializer=_init_thread
        )
        self.limits = ExitStack()
        # BLAS on one thread per call while the pool runs (S4's solves on two threads each
        # ran slower than serial); restored when the executor closes
        self.limits.enter_context(threadpool_limits(1, user_api="blas"))

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
        self.limits.close()


#: Idle process pools by (workers, warm-up), kept for the next executor of that shape.
_IDLE: dict[tuple[int, Callable[[], None] | None], _Processes] = {}


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


def _nothing() -> None:
    """The warm-up of a pool given none: a worker is ready once it has started."""


class _Processes:
    """``workers`` processes on the tasks: this one, and ``workers − 1`` started for them
    (forked where :func:`fork_safe`, else spawned). A worker takes tasks once its warm-up is
    done, so no call waits for one still starting: until then this process runs the tasks, as
    the serial executor would. One whose warm-up raises takes nothing; the pool is then not
    kept. Warm-ups are not tied to workers: with three or more processes a fast worker may
    run two, and a chunk may wait for a worker still starting."""

    def __init__(self, workers: int, warm: Callable[[], None] | None) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.key = (workers, warm)
        self.forked = fork_safe()
        self.pool = ProcessPoolExecutor(
            max_workers=workers - 1,
            mp_context=mp.get_context("fork" if self.forked else "spawn"),
            initializer=_init_worker,
        )
        self.lock = threading.Lock()
        self.active: set[_Feed[Any, Any]] = set()  # the calls running now
        self.failed: BaseException | None = None
        self.killed = False
        # one per worker: each submit starts a process now
        with warnings.catch_warnings():  # forked: the threads are BLAS's, which survive it
            if self.forked:
                warnings.filterwarnings("ignore", ".*multi-threaded.*fork", DeprecationWarning)
            self.ready = [self.pool.submit(warm or _nothing) for _ in range(workers - 1)]
        for f in self.ready:  # one callback each for the pool's life (feeds come and go)
            f.add_done_callback(self._warmed)

    def _warmed(self, f: concurrent.futures.Future[Any]) -> None:
        """A warm-up ended (in the pool's thread): hand the worker to the running calls."""
        if f.cancelled() or self.killed:  # a killed worker's warm-up "fails": no news
            return
        if (err := f.exception()) is not None:
            self.failed = err
            _log.warning("a pool worker failed to warm up and takes no task: %r", err)
            return
        with self.lock:
            feeds = list(self.active)
        for feed in feeds:
            feed.warmed(f)

    def map(self, fn: Callable[[A], R], items: Iterable[A]) -> list[R]:
        done = dict(self.as_completed(fn, items))
        return [done[i] for i in range(len(done))]

    def as_completed(self, fn: Callable[[A], R], items: Iterable[A]) -> Iterator[tuple[int, R]]:
        feed = _Feed(self.pool, fn, list(items), self.key[0])
        try:
            with self.lock:
                self.active.add(feed)
            for f in self.ready:  # the workers warm already (the others join when they are)
                if f.done():
                    feed.warmed(f)
            yield from feed.drain()
        finally:
            with self.lock:
                self.active.discard(feed)
            feed.stop()

    @classmethod
    def get(cls, workers: int, warm: Callable[[], None] | None) -> _Processes:
        """An idle pool of this shape, or a new one."""
        pool = _IDLE.pop((workers, warm), None)
        return pool if pool is not None and pool.usable() else cls(workers, warm)

    def usable(self) -> bool:
        return not getattr(self.pool, "_broken", False) and self.failed is None

    def release(self) -> None:
        """Back to the idle pools (one per shape: a second one is shut down); calls left
        unfinished (a generator dropped) hand out nothing more."""
        with self.lock:
            for feed in self.active:
                feed.stop()
        if self.key in _IDLE or not self.usable():
            self.close()
        else:
            _IDLE[self.key] = self

    def close(self, kill: bool = False) -> None:
        """Stop the pool; its queued tasks never start. ``kill`` (an interrupted call): kill
        the workers rather than wait for their running chunks."""
        if kill:
            self.killed = True
            procs = list((getattr(self.pool, "_processes", None) or {}).values())
            for proc in procs:
                proc.terminate()  # workers take SIGTERM's default: they stop at once
            for proc in procs:
                proc.join(5)
            # a worker killed halfway through sending a result leaves the pool's thread
            # waiting for the rest for ever, unless the pipe's last writer here is closed
            if (results := getattr(self.pool, "_result_queue", None)) is not None:
                results._writer.close()
        self.pool.shutdown(cancel_futures=True)


class _Feed(Generic[A, R]):
    """The items of one call, handed out as they are asked for: to this process one at a
    time between its own tasks, and to each pool worker when it becomes free (its warm-up or
    its last chunk done, in the pool's callback thread), a chunk of the items left divided
    by four times the processes (at least one): fewer round trips while many items are
    left, single items towards the end so that all finish together (by twice the processes a
    worker took two of the few long searches at 10 DSOs: 1.24–1.43× on the DSO stages, not
    1.61–1.77×). A worker holds one chunk at a time, so none waits in a queue that this
    process could have run; its results arrive a chunk at a time."""

    def __init__(
        self, pool: concurrent.futures.Executor, fn: Callable[[A], R], items: list[A], n: int
    ) -> None:
        self.pool, self.fn, self.items, self.processes = pool, fn, items, n
        self.lock = threading.Lock()
        self.next = self.sent = 0
        self.stopped = False
        self.started: set[concurrent.futures.Future[Any]] = set()  # warm-ups handed a chunk
        # (positions, future) of what the workers finished; a None future: the pool would
        # not take the chunk (it broke or shut down before) and this process runs it
        self.done: queue.SimpleQueue[tuple[range, concurrent.futures.Future[list[R]] | None]] = (
            queue.SimpleQueue()
        )

    def _take(self, remote: bool) -> range:
        with self.lock:
            left = 0 if self.stopped else len(self.items) - self.next
            k = min(left, max(1, left // (4 * self.processes)) if remote else 1)
            chunk = range(self.next, self.next + k)
            self.next += k
            self.sent += k if remote else 0
            return chunk

    def warmed(self, f: concurrent.futures.Future[Any]) -> None:
        """Start handing chunks to the worker whose warm-up ``f`` ended well (once)."""
        with self.lock:
            if f in self.started or f.cancelled() or f.exception() is not None:
                return
            self.started.add(f)
        self._send()

    def _send(self) -> None:
        chunk = self._take(remote=True)
        if not chunk:
            return
        try:
            fut = self.pool.submit(_each, self.fn, [self.items[i] for i in chunk])
        except Exception:  # broken, shut down, or a worker that could not start
            self.done.put((chunk, None))
            return
        fut.add_done_callback(lambda f: self._returned(chunk, f))

    def _returned(self, chunk: range, f: concurrent.futures.Future[list[R]]) -> None:
        self.done.put((chunk, f))
        if not f.cancelled() and f.exception() is None:
            self._send()

    def _results(self, chunk: range, f: concurrent.futures.Future[list[R]] | None) -> list[R]:
        if f is None:
            return [_here(self.fn, self.items[i]) for i in chunk]
        return f.result()  # a task's error (or a broken pool) is raised here

    def drain(self) -> Iterator[tuple[int, R]]:
        """Run items here until none is left, yielding the workers' results as they come,
        then wait for the workers' last ones."""
        received = 0
        while True:
            while not self.done.empty():
                chunk, f = self.done.get()
                yield from zip(chunk, self._results(chunk, f), strict=True)
                received += len(chunk)
            mine = self._take(remote=False)
            if mine:
                yield mine[0], _here(self.fn, self.items[mine[0]])
                continue
            with self.lock:
                if received == self.sent:
                    return
            try:  # a timeout: Ctrl-C is seen while waiting
                chunk, f = self.done.get(timeout=0.1)
            except queue.Empty:
                continue
            yield from zip(chunk, self._results(chunk, f), strict=True)
            received += len(chunk)

    def stop(self) -> None:
        with self.lock:
            self.stopped = True


def _each(fn: Callable[[A], R], items: list[A]) -> list[R]:
    """A worker's chunk, in order."""
    return [fn(x) for x in items]


def _here(fn: Callable[[A], R], x: A) -> R:
    """``fn(x)`` in this process with numba on one thread (as a worker runs it: the
    processes are the parallelism), restored after."""
    import numba

    n = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return fn(x)
    finally:
        numba.set_num_threads(n)


def shutdown() -> None:
    """Stop the idle process pools (they are stopped at exit anyway)."""
    while _IDLE:
        _IDLE.popitem()[1].close()


atexit.register(shutdown)


@contextmanager
def executor(
    workers: int | None = None,
    scheduler: str | None = None,
    warm: Callable[[], None] | None = None,
    threads: int | None = None,
) -> Iterator[Executor]:
    """An executor for DSO-level work.

    Parameters
    ----------
    workers : int, optional
        ``> 1``: that many processes, this one and ``workers − 1`` started for the tasks
        (kept and reused); ``None`` or 1: serial.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``), or ``"local"`` for a two-worker
        ``LocalCluster`` (extra ``dask``). Takes precedence over ``workers``. A scheduler that
        does not answer within :data:`CONNECT_TIMEOUT_S` raises ``ConnectionError``.
    warm : callable, optional
        A module-level function each new pool worker runs at once (imports, compiled
        kernels), while the caller goes on; a worker takes tasks only once it has returned
        (one whose warm-up raises takes none: a warning is logged and the pool not kept).
        Pools are kept per ``(workers, warm)``.
    threads : int, optional
        ``> 1``: that many threads of this process (when neither ``scheduler`` nor
        ``workers > 1`` is given), started for the block and stopped after it.
    """
    if scheduler is not None:
        dask = DaskExecutor(scheduler)
        try:
            yield dask
        finally:
            dask.close()
        return
    if (workers is None or workers <= 1) and threads is not None and threads > 1:
        threaded = _Threads(threads)
        try:
            yield threaded
        finally:
            threaded.close()
        return
    if workers is None or workers <= 1:
        yield _Serial()
        return
    pool = _Processes.get(workers, warm)
    try:
        yield pool
    except BaseException as err:
        pool.close(kill=isinstance(err, KeyboardInterrupt))  # SIGTERM's Terminated is one
        raise
    pool.release()
