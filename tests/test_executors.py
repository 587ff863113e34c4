"""Serial, process-pool and Dask (LocalCluster) executors give identical results."""

from __future__ import annotations

import pytest

from flexopt.executors import executor
from flexopt.run.api import run_market
from flexopt.run.tasks import warm_worker


def _square(x: int) -> int:
    return x * x


def _summary(res) -> dict:
    return {k: v for k, v in res.summary.items() if k != "clearing_time_s"}


@pytest.mark.parametrize(("workers", "scheduler"), [(None, None), (2, None), (None, "local")])
def test_executors_preserve_order(workers, scheduler):
    with executor(workers, scheduler) as ex:
        assert ex.map(_square, range(7)) == [0, 1, 4, 9, 16, 25, 36]


def test_market_identical_across_executors(rts):
    serial = run_market(rts, "wca", wca_iter=40, seed=5)
    pool = run_market(rts, "wca", wca_iter=40, seed=5, workers=2)
    dask = run_market(rts, "wca", wca_iter=40, seed=5, scheduler="local")
    assert _summary(pool) == _summary(serial)
    assert _summary(dask) == _summary(serial)
    for name in ("dispatch", "settlement", "bids"):
        assert pool.tables[name].equals(serial.tables[name]), name


def test_centralized_market_identical_across_executors(rts):
    """The centralized market settles each DSO through the executor too."""
    serial = run_market(rts, "centralized")
    pool = run_market(rts, "centralized", workers=2)
    assert _summary(pool) == _summary(serial)
    assert pool.tables["settlement"].equals(serial.tables["settlement"])


def _pid(_: int) -> int:
    import os

    return os.getpid()


def test_process_pools_start_once_and_are_reused():
    """Two blocks of the same shape share one pool (the same worker processes); a block
    left by an exception shuts its pool down; :func:`shutdown` stops the idle ones."""
    from flexopt import executors

    with executor(2, warm=warm_worker) as first:
        pids = set(first.map(_pid, range(8)))
    with executor(2, warm=warm_worker) as second:
        assert second is first
        assert set(second.map(_pid, range(8))) <= pids
    seen: list[object] = []

    def interrupted() -> None:
        with executor(2, warm=warm_worker) as third:
            seen.append(third)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert seen == [first]
    with executor(2, warm=warm_worker) as fourth:
        assert fourth is not first  # the interrupted pool was not kept
        assert fourth.map(_square, [3]) == [9]
    executors.shutdown()
    assert not executors._IDLE
