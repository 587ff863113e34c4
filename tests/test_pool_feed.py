"""How a process pool's call hands its items out: a worker's chunks and this process's single
items, and this process's first item held back when the workers finish the call soon."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator

import pytest

from flexopt import pool_feed
from flexopt.pool_feed import Feed, here


def _where(x: int) -> int:
    """The thread that ran ``x`` (a worker's, or this one)."""
    time.sleep(0.002)
    return threading.get_ident()


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """One worker: a thread stands in for the pool's process (the hand-out is the same)."""
    with concurrent.futures.ThreadPoolExecutor(1) as p:
        yield p


def _feed(
    pool: concurrent.futures.Executor, n: int, *, ahead: bool = False, pace_known: bool = True
) -> Feed[int, int]:
    feed: Feed[int, int] = Feed(pool, _where, list(range(n)), 2, ahead=ahead)
    ready = pool.submit(lambda: None)
    ready.result()
    feed.warmed(ready)  # the worker takes its first chunk now
    deadline = time.monotonic() + 10
    while pace_known and not feed.back and time.monotonic() < deadline:
        time.sleep(0.002)
    return feed


def _runners(feed: Feed[int, int], n: int) -> set[int]:
    got = dict(feed.drain())
    assert sorted(got) == list(range(n))
    return set(got.values())


def test_a_cold_process_leaves_a_call_the_workers_finish_soon(pool, monkeypatch):
    """Before its first item, this process runs none of a call that the worker, at its
    pace so far, finishes within ``COLD_S``: its own first item would start numba here."""
    monkeypatch.setattr(pool_feed, "_ran_here", False)
    monkeypatch.setattr(pool_feed, "COLD_S", 60.0)
    assert threading.get_ident() not in _runners(_feed(pool, 40), 40)
    assert pool_feed._ran_here is False


def test_a_cold_process_joins_a_call_the_workers_would_take_long_on(pool, monkeypatch):
    monkeypatch.setattr(pool_feed, "_ran_here", False)
    monkeypatch.setattr(pool_feed, "COLD_S", 1e-9)
    assert threading.get_ident() in _runners(_feed(pool, 40), 40)
    assert pool_feed._ran_here is True


def test_a_warm_process_always_joins(pool, monkeypatch):
    monkeypatch.setattr(pool_feed, "_ran_here", True)
    monkeypatch.setattr(pool_feed, "COLD_S", 60.0)
    assert threading.get_ident() in _runners(_feed(pool, 40), 40)


def test_the_workers_pace_unknown_a_cold_process_joins_at_once(pool, monkeypatch):
    """In a call that the workers begin with this process (none of it returned yet), it
    takes the first item: the first chunk says little of the rest (a DSO stage's first
    items may be the short ones)."""
    monkeypatch.setattr(pool_feed, "_ran_here", False)
    monkeypatch.setattr(pool_feed, "COLD_S", 60.0)
    feed = _feed(pool, 400, pace_known=False)
    assert not feed.back
    assert threading.get_ident() in _runners(feed, 400)


def test_a_call_taken_ahead_waits_for_the_workers_pace(pool, monkeypatch):
    """A call the worker took ahead of its collection: a cold process waits for its first
    chunk (at most ``COLD_S``) and then leaves it the rest, here."""
    monkeypatch.setattr(pool_feed, "_ran_here", False)
    monkeypatch.setattr(pool_feed, "COLD_S", 60.0)
    feed = _feed(pool, 40, ahead=True, pace_known=False)
    assert threading.get_ident() not in _runners(feed, 40)


def test_without_a_warm_worker_everything_runs_here(pool, monkeypatch):
    monkeypatch.setattr(pool_feed, "_ran_here", False)
    feed: Feed[int, int] = Feed(pool, _where, list(range(5)), 2, ahead=True)
    assert _runners(feed, 5) == {threading.get_ident()}


def test_an_item_run_here_warms_this_process(monkeypatch):
    monkeypatch.setattr(pool_feed, "_ran_here", False)
    assert here(abs, -3) == 3
    assert pool_feed._ran_here is True


class _Weighed:
    def __init__(self, weight: float) -> None:
        self.weight = weight


def test_a_workers_chunk_is_a_share_of_the_weight_left(pool):
    """Items with a ``weight`` (a DSO's search size) are handed out by weight: a worker's
    chunk holds the items making up to a quarter of the processes' share of the weight left
    (at least one), a heavy first item alone; items without one, by count."""
    heavy = [_Weighed(10.0)] + [_Weighed(1.0) for _ in range(30)]
    feed: Feed[_Weighed, int] = Feed(pool, id, heavy, 2)
    assert feed._take(remote=True) == range(0, 1)  # 10 > 40 / 8
    assert feed._take(remote=True) == range(1, 4)  # 30 / 8 = 3.75: three of weight 1
    assert feed._take(remote=False) == range(4, 5)  # this process: one at a time
    plain: Feed[int, int] = Feed(pool, id, list(range(31)), 2)
    assert plain._take(remote=True) == range(0, 3)  # 31 // 8
    ahead: Feed[_Weighed, int] = Feed(pool, id, heavy, 2, ahead=True)
    assert ahead._take(remote=True) == range(0, 11)  # the fewest reaching half: 10 + 10 × 1
