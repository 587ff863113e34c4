"""How a process pool's call hands its items out (``flexopt.executors``): chunks to each
worker as it becomes free, single items to this process between its own tasks."""

from __future__ import annotations

import bisect
import concurrent.futures
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from flexopt.pool_keep import Keeper, Key, each_kept

__all__ = ["Feed", "each", "here", "loaded_here"]

A = TypeVar("A")
R = TypeVar("R")

#: Before this process's first item, the seconds of work left to the workers below which it
#: leaves them the call: its own first item would also start numba and load the kernels here
#: (~0.4 s once, ``benchmarks/README.md``), ending the call later than they do, and the
#: Python-bound loading holds up their chunks' round trips through this process's threads.
#: Half that start: a longer wait is better spent starting here, beside the workers, than
#: in the next stage, where this process joins anyway (at 100 DSOs × 10, S4's last ~0.4 s
#: was left to the worker and the start fell in S5–S6: 0.85 s there, 0.66 s at 0.2).
COLD_S = 0.2
_ran_here = False  # whether it ran an item or a warm-up (numba started, kernels loaded)


class Feed(Generic[A, R]):
    """The items of one call, handed out as they are asked for: to this process one at a
    time between its own tasks, and to each pool worker when it becomes free (its warm-up or
    its last chunk done, in the pool's callback thread), a chunk of the items left divided by
    four times the processes (at least one) — by their weights where they have a ``weight``
    attribute (a DSO's search: its size), else by count: fewer round trips while many items are
    left, single items towards the end so that all finish together (by twice the processes a
    worker took two of the few long searches at 10 DSOs: 1.24–1.43× on the DSO stages, not
    1.61–1.77×). Ahead of its collection (a started call: this process takes no item yet), each
    worker takes half of the items left divided among the workers instead, so a large chunk may
    still run when this process joins in. A worker holds one chunk of a call at a time, so none
    waits in a queue that this process could have run (a later warm-up aside,
    ``flexopt.executors``); its results arrive a chunk at a time. Until this process has run an
    item (or a pool's warm-up, :func:`loaded_here`), it takes none of a call that the workers
    finish within :data:`COLD_S` anyway
    (:meth:`_leave_to_workers`)."""

    def __init__(
        self,
        pool: concurrent.futures.Executor,
        fn: Callable[[A], R],
        items: list[A],
        n: int,
        idle: Callable[[], None] = lambda: None,
        ahead: bool = False,
        keeper: Keeper | None = None,
    ) -> None:
        self.pool, self.fn, self.items, self.processes, self.idle = pool, fn, items, n, idle
        # the items' cumulative weights (an item's ``weight`` attribute, else 1)
        self.cum = list(
            itertools.accumulate((float(getattr(x, "weight", 1.0)) for x in items), initial=0.0)
        )
        self.ahead, self.keeper = ahead, keeper
        self.lock = threading.Lock()
        self.next = self.sent = 0
        self.back, self.work_s = 0, 0.0  # items the workers returned, and their seconds
        self.stopped = False
        self.started: set[concurrent.futures.Future[Any]] = set()  # warm-ups handed a chunk
        # (positions, future) of what the workers finished; a None future: the pool would
        # not take the chunk (it broke or shut down before) and this process runs it
        self.done: queue.SimpleQueue[tuple[range, concurrent.futures.Future[Any] | None]] = (
            queue.SimpleQueue()
        )

    def _take(self, remote: bool) -> range:
        with self.lock:
            left = 0 if self.stopped else len(self.items) - self.next
            # ahead of its collection (``start``) only the workers take items: each a
            # share of half of them (fewer round trips through a busy caller's threads)
            share = 2 * (self.processes - 1) if self.ahead else 4 * self.processes
            k = min(left, max(1, self._share(share)) if remote else 1)
            chunk = range(self.next, self.next + k)
            self.next += k
            self.sent += k if remote else 0
            return chunk

    def _share(self, share: int) -> int:
        """How many of the items left make ``1/share`` of their weight: the items whose
        weights add up to no more than that (a worker's chunk, handed out as it becomes
        free), or, ahead of the collection, the fewest that reach it; by count where the
        items have no weights."""
        cum, start = self.cum, self.next
        want = cum[start] + (cum[-1] - cum[start]) / share
        if self.ahead:
            return bisect.bisect_left(cum, want, lo=start) - start
        return bisect.bisect_right(cum, want, lo=start) - 1 - start

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
            if not self.stopped:  # the worker that asked has nothing left in this call
                self.idle()
            return
        items = [self.items[i] for i in chunk]
        sent: set[Key] = set()
        fut: concurrent.futures.Future[Any]
        try:
            if self.keeper is None:
                fut = self.pool.submit(each, self.fn, items)
            else:
                payload, sent, epoch = self.keeper.dumps(items)
                fut = self.pool.submit(each_kept, self.fn, payload, epoch)
        except Exception:  # broken, shut down, or a worker that could not start
            self.done.put((chunk, None))
            return
        t = time.perf_counter()
        fut.add_done_callback(lambda f: self._returned(chunk, f, sent, t))

    def _returned(
        self, chunk: range, f: concurrent.futures.Future[Any], sent: set[Any], t: float
    ) -> None:
        with self.lock:
            self.back += len(chunk)
            self.work_s += time.perf_counter() - t
        self.done.put((chunk, f))
        if not f.cancelled() and f.exception() is None:
            if self.keeper is not None:  # the worker holds what this chunk sent whole
                self.keeper.confirm(sent)
            self._send()

    def _results(self, chunk: range, f: concurrent.futures.Future[Any] | None) -> list[R]:
        if f is None:
            return [here(self.fn, self.items[i]) for i in chunk]
        got = f.result()  # a task's error (or a broken pool) is raised here
        if self.keeper is None:
            return got  # type: ignore[no-any-return]
        return self.keeper.loads(got[0])  # type: ignore[no-any-return]

    def _leave_to_workers(self, began: float, ahead: bool) -> bool:
        """Whether this process, which has run no item nor warm-up yet, leaves the rest of
        the call to the workers: at their pace in it so far, they finish the items they hold
        and those left within :data:`COLD_S`. Their pace unknown, it waits for it in a call they took
        ahead of its collection (started at ``began``), for at most :data:`COLD_S`: they
        have its first chunk, a half of the items, nearly done; in a call they began with
        it, it joins at once."""
        if _ran_here:
            return False
        with self.lock:
            if not self.back:
                return ahead and self.sent > 0 and time.perf_counter() - began < COLD_S
            left = len(self.items) - self.next + self.sent - self.back
            return left * self.work_s / self.back / (self.processes - 1) < COLD_S

    def drain(self) -> Iterator[tuple[int, R]]:
        """Run items here until none is left, yielding the workers' results as they come,
        then wait for the workers' last ones."""
        received, began, ahead = 0, time.perf_counter(), self.ahead
        self.ahead = False
        while True:
            while not self.done.empty():
                chunk, f = self.done.get()
                yield from zip(chunk, self._results(chunk, f), strict=True)
                received += len(chunk)
            mine = range(0) if self._leave_to_workers(began, ahead) else self._take(remote=False)
            if mine:
                yield mine[0], here(self.fn, self.items[mine[0]])
                continue
            with self.lock:  # (items left: a worker is being handed its next chunk)
                if received == self.sent and (self.stopped or self.next == len(self.items)):
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


def loaded_here() -> None:
    """This process has loaded most of what its first item would — numba's registries and
    the feeder sweep, a pool's warm-up run here before its workers were forked
    (``flexopt.pool_start``) — and no longer leaves calls to the workers."""
    global _ran_here
    _ran_here = True


def each(fn: Callable[[A], R], items: list[A]) -> list[R]:
    """A worker's chunk, in order."""
    return [fn(x) for x in items]


def here(fn: Callable[[A], R], x: A) -> R:
    """``fn(x)`` in this process with numba on one thread (as a worker runs it: the
    processes are the parallelism), restored after."""
    import numba

    global _ran_here
    n = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return fn(x)
    finally:
        numba.set_num_threads(n)
        _ran_here = True
