"""Where DSO-level work runs: serially (default), on threads of this process, in a local process
pool, or on a Dask cluster.

Each DSO's stages (S4, S5–S6, S8 in ``flexopt.dso.local``) depend only on that DSO's data and
a seed derived from the run's seed and the DSO's position, so every executor returns the same
numbers (``tests/test_executors.py``). Tasks are module-level functions with picklable
arguments; results come back in input order.

Threads start at once and share the run's data: nothing is pickled. They gain where a task's
work releases the GIL — the DCP search's compiled evaluation (``flexopt.dso._fused``), about
nine tenths of a ``wca`` run's DSO stages — and each runs numba and BLAS on one thread (the
threads are the parallelism; ``benchmarks/clearing_time.py``). Tasks that hold the GIL say
so (``gil_bound``: S4's and S8's) and run in the calling thread instead.

``workers=N`` runs the tasks on N processes: this one and N − 1 started for them (forked
where that is safe, :func:`fork_safe`, else spawned; ``flexopt.pool_start``). The started
workers run the warm-up (imports, compiled kernels) at once, in the background while the
caller goes on (S1–S2 of a run) — forked, they find it done: this process ran it before the
fork — and take tasks only once it is done: until then this process runs them, so a first
call is never much slower than serial. Their pool starts once and is reused: it outlives the
``with executor(...)`` block that made it and serves the next block asking for the same size
and warm-up (the runs of a ``compare``, repeated ``run_market`` calls), until
:func:`shutdown` or the interpreter exits. A block left by an exception shuts its pool down
instead; by an interrupt (Ctrl-C, ``SIGTERM``), it kills the pool's workers: their running
chunks (in ``flexopt compare``, whole runs) are lost, not waited for.

``start`` hands a call's items out now and collects them later: a pool's warm workers take
them at once, in halves of what is left, while the caller goes on (a run's S4 beside its
S1–S2), and this process joins in when it collects; the serial and threaded executors run
them when collected (the threads, items that hold the GIL in the collecting thread), a
Dask cluster at once. The first ``workers − 1`` times a call has
nothing left for a worker, the pool submits ``warm_later`` (a run's: the DSO stages of a tiny
DSO, which load S5–S8's kernels while this process finishes S1–S3); with ``workers=2``, once
for the one worker.

A pool of one worker keeps a DSO's context and offer (``flexopt.pool_keep``) for the block.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any, Generic, Protocol, TypeVar

from flexopt.dask_client import CONNECT_TIMEOUT_S, DaskExecutor
from flexopt.pool_feed import Feed
from flexopt.pool_keep import Keeper, forget
from flexopt.pool_start import fork_safe, process_pool

__all__ = ["CONNECT_TIMEOUT_S", "Executor", "Started", "executor", "fork_safe", "shutdown"]


A = TypeVar("A")
R = TypeVar("R")

_log = logging.getLogger(__name__)


class Started(Protocol[R]):
    """Items handed out ahead of their use (:meth:`Executor.start`): ``result()`` is their
    results in order (the same list when asked again); ``cancel()`` hands out nothing more,
    and ``result()`` then raises ``concurrent.futures.CancelledError``."""

    def result(self) -> list[R]: ...

    def cancel(self) -> None: ...


class Executor(Protocol):
    """Anything with an order-preserving ``map(fn, items) -> list``, ``as_completed``:
    ``(position, result)`` pairs as the items finish (progress, keeping what finished; a
    process pool's workers return theirs a chunk at a time), and ``start``: a ``map`` whose
    results are collected later, so that other processes may run it while this one goes on
    (in this process, it runs when collected). Items with a true ``gil_bound`` attribute
    (pandas and Python work) run in the calling thread of a threaded executor."""

    def map(self, fn: Callable[[A], R], items: Iterable[A]) -> list[R]: ...

    def as_completed(self, fn: Callable[[A], R], items: Iterable[A]) -> Iterator[tuple[int, R]]: ...

    def start(self, fn: Callable[[A], R], items: Iterable[A]) -> Started[R]: ...


class _Once(ABC, Generic[R]):
    """A started call's results, collected once; none once it is cancelled."""

    def __init__(self) -> None:
        self.done: list[R] | None = None
        self.cancelled = False

    def result(self) -> list[R]:
        if self.cancelled:
            raise concurrent.futures.CancelledError("the started call was cancelled")
        if self.done is None:
            self.done = self._collect()
        return self.done

    def cancel(self) -> None:
        self.cancelled = self.done is None
        self.leave()

    @abstractmethod
    def _collect(self) -> list[R]: ...

    def leave(self) -> None:
        """Hand out nothing more."""


class _Later(_Once[R], Generic[A, R]):
    """A ``map`` in this process, run when its result is asked for."""

    def __init__(self, ex: Executor, fn: Callable[[A], R], items: Iterable[A]) -> None:
        super().__init__()
        self.ex, self.fn, self.items = ex, fn, list(items)

    def _collect(self) -> list[R]:
        return self.ex.map(self.fn, self.items)


class _Serial:
    def map(self, fn: Callable[[A], R], items: Iterable[A]) -> list[R]:
        return [fn(x) for x in items]

    def as_completed(self, fn: Callable[[A], R], items: Iterable[A]) -> Iterator[tuple[int, R]]:
        for i, x in enumerate(items):
            yield i, fn(x)

    def start(self, fn: Callable[[A], R], items: Iterable[A]) -> Started[R]:
        return _Later(self, fn, items)


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


def _gil_bound(items: list[Any]) -> bool:
    """Whether every item says its work holds the GIL (a true ``gil_bound`` attribute)."""
    return bool(items) and all(getattr(x, "gil_bound", False) for x in items)


class _Threads(_Pool):
    """Threads of this process. Items that hold the GIL (:func:`_gil_bound`: a run's S4 and
    S8 tasks, pandas and Python) run in the calling thread: on the threads they ran slower
    than serially (S4 at 100 DSOs × 10: 0.47 s on two threads, 0.35 s in one). A started
    ``map`` runs when collected (on the threads, the GIL-bound tasks that ``start`` serves
    would only slow down the caller's own work)."""

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

    def map(self, fn: Callable[[A], R], items: Iterable[A]) -> list[R]:
        items = list(items)
        return _Serial().map(fn, items) if _gil_bound(items) else super().map(fn, items)

    def as_completed(self, fn: Callable[[A], R], items: Iterable[A]) -> Iterator[tuple[int, R]]:
        items = list(items)
        if _gil_bound(items):
            return _Serial().as_completed(fn, items)
        return super().as_completed(fn, items)

    def start(self, fn: Callable[[A], R], items: Iterable[A]) -> Started[R]:
        return _Later(self, fn, items)


_Warm = Callable[[], None] | None
#: Idle process pools by (workers, warm-up, later warm-up), kept for the next executor of
#: that shape.
_IDLE: dict[tuple[int, _Warm, _Warm], _Processes] = {}


def _nothing() -> None:
    """The warm-up of a pool given none: a worker is ready once it has started."""


class _Processes:
    """``workers`` processes on the tasks: this one, and ``workers − 1`` started for them
    (``flexopt.pool_start.process_pool``). A worker takes tasks once its warm-up is
    done, so no call waits for one still starting: until then this process runs the tasks, as
    the serial executor would. One whose warm-up raises takes nothing; the pool is then not
    kept. The first ``workers − 1`` times a call has nothing left to hand a worker, the pool
    submits the later warm-up (``warm_later``: the kernels of the stages to come). Warm-ups
    are not tied to workers: with three or more processes a fast worker may run two, and a
    chunk may wait for a worker still starting."""

    def __init__(self, workers: int, warm: _Warm, warm_later: _Warm = None) -> None:
        self.key = (workers, warm, warm_later)
        self.pool, self.forked = process_pool(workers, warm)
        self.lock = threading.Lock()
        self.active: set[Feed[Any, Any]] = set()  # the calls running now
        self.failed: BaseException | None = None
        self.later_sent = 0
        self.killed = False
        self.keeper = Keeper("m") if workers == 2 else None  # one worker: it gets every chunk
        # one per worker: each submit starts a process now
        with warnings.catch_warnings():  # forked: the threads are BLAS's, which survive it
            if self.forked:
                warnings.filterwarnings("ignore", ".*multi-threaded.*fork", DeprecationWarning)
            self.ready = [self.pool.submit(warm or _nothing) for _ in range(workers - 1)]
        for f in self.ready:  # one callback each for the pool's life (feeds come and go)
            f.add_done_callback(self._warmed)

    def _idle(self) -> None:
        """A call ran out of items for a worker (in the pool's thread): the first times, it
        runs the later warm-up while the caller goes on (in a run: S5–S8's kernels while
        this process finishes S1–S3)."""
        later = self.key[2]
        with self.lock:
            if later is None or self.later_sent >= self.key[0] - 1 or self.killed:
                return
            self.later_sent += 1
        try:
            f = self.pool.submit(later)
        except Exception:  # shut down or broken: there is nothing to warm
            return
        f.add_done_callback(_later_failed)

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
        started = self.start(fn, items, ahead=False)
        try:
            yield from started.feed.drain()
        finally:
            started.leave()

    def start(self, fn: Callable[[A], R], items: Iterable[A], ahead: bool = True) -> _Started[A, R]:
        """The workers take the items at once; this process joins in when it collects."""
        feed = Feed(self.pool, fn, list(items), self.key[0], self._idle, ahead, self.keeper)
        with self.lock:
            self.active.add(feed)
        for f in self.ready:  # the workers warm already (the others join when they are)
            if f.done():
                feed.warmed(f)
        return _Started(self, feed)

    @classmethod
    def get(cls, workers: int, warm: _Warm, warm_later: _Warm) -> _Processes:
        """An idle pool of this shape, or a new one."""
        pool = _IDLE.pop((workers, warm, warm_later), None)
        return pool if pool is not None and pool.usable() else cls(workers, warm, warm_later)

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
            return
        if self.keeper is not None:  # this block's objects, here and in the idle worker
            self.keeper.reset()
            with suppress(Exception):  # broken meanwhile: nothing is kept
                self.pool.submit(forget)
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


def _later_failed(f: concurrent.futures.Future[Any]) -> None:
    """A later warm-up that raised costs its worker time in its first tasks, nothing else."""
    if not f.cancelled() and (err := f.exception()) is not None:
        _log.warning("a pool worker's later warm-up failed: %r", err)


class _Started(_Once[R], Generic[A, R]):
    """A call of a process pool the workers run while this process goes on; cancelled, the
    chunks the workers hold run to their end."""

    def __init__(self, procs: _Processes, feed: Feed[A, R]) -> None:
        super().__init__()
        self.procs, self.feed = procs, feed

    def _collect(self) -> list[R]:
        try:
            got = dict(self.feed.drain())
        finally:
            self.leave()
        if len(got) != len(self.feed.items):  # its pool released (block left) before
            raise RuntimeError(
                f"a started call collected after its executor's block ended: "
                f"{len(got)} of {len(self.feed.items)} items ran"
            )
        return [got[i] for i in range(len(got))]

    def leave(self) -> None:
        with self.procs.lock:
            self.procs.active.discard(self.feed)
        self.feed.stop()


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
    warm_later: Callable[[], None] | None = None,
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
        Workers to be forked inherit this process's state, so it runs here first, before
        the fork, while the caller waits (an error here is left to the worker to report;
        ``flexopt.pool_start.process_pool``). Pools are kept per ``(workers, warm,
        warm_later)``.
    threads : int, optional
        ``> 1``: that many threads of this process (when neither ``scheduler`` nor
        ``workers > 1`` is given), started for the block and stopped after it.
    warm_later : callable, optional
        A module-level function the pool submits the first ``workers − 1`` times a call has
        nothing left to hand a worker (the warm-up of later work: in a run, the kernels of
        S5–S8 while this process finishes S1–S3; with ``workers=2`` the one worker runs it
        once). It goes through the pool's queue: a chunk of the next call may wait for it.
        One that raises logs a warning.
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
    pool = _Processes.get(workers, warm, warm_later)
    try:
        yield pool
    except BaseException as err:
        pool.close(kill=isinstance(err, KeyboardInterrupt))  # SIGTERM's Terminated is one
        raise
    pool.release()
