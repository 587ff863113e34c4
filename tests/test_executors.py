"""Serial, thread, process-pool and Dask (LocalCluster) executors give identical results."""

from __future__ import annotations

import pytest

from flexopt.executors import executor
from flexopt.run.api import run_market
from flexopt.run.tasks import warm_worker


def _square(x: int) -> int:
    return x * x


def _summary(res) -> dict:
    return {k: v for k, v in res.summary.items() if k != "clearing_time_s"}


@pytest.mark.parametrize(
    ("workers", "scheduler", "threads"),
    [(None, None, None), (2, None, None), (None, "local", None), (None, None, 2)],
)
def test_executors_preserve_order(workers, scheduler, threads):
    with executor(workers, scheduler, threads=threads) as ex:
        assert ex.map(_square, range(7)) == [0, 1, 4, 9, 16, 25, 36]
        assert sorted(ex.as_completed(_square, range(4))) == [(0, 0), (1, 1), (2, 4), (3, 9)]


def test_market_identical_across_executors(rts):
    serial = run_market(rts, "wca", wca_iter=40, seed=5)
    pool = run_market(rts, "wca", wca_iter=40, seed=5, workers=2)
    dask = run_market(rts, "wca", wca_iter=40, seed=5, scheduler="local")
    threads = run_market(rts, "wca", wca_iter=40, seed=5, threads=2)
    assert _summary(pool) == _summary(serial)
    assert _summary(dask) == _summary(serial)
    assert _summary(threads) == _summary(serial)
    for name in ("dispatch", "settlement", "bids"):
        assert pool.tables[name].equals(serial.tables[name]), name
        assert threads.tables[name].equals(serial.tables[name]), name


def test_threads_give_the_serial_numbers(rts):
    serial = run_market(rts, "mlf", seed=3)
    threads = run_market(rts, "mlf", seed=3, threads=3)
    assert _summary(threads) == _summary(serial)
    for name in ("dispatch", "settlement", "bids"):
        assert threads.tables[name].equals(serial.tables[name]), name


def _tiny_lp(k: int) -> float:
    """min x + y, x + y ≥ k, x ≥ k/3: the optimum is k (a solver call from a pool thread)."""
    import pyomo.environ as pyo

    from flexopt.solve import solve

    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(k / 3, None))
    m.y = pyo.Var(bounds=(0, None))
    m.c = pyo.Constraint(expr=m.x + m.y >= k)
    m.obj = pyo.Objective(expr=m.x + m.y)
    return float(solve(m, duals=False).objective)


def test_solver_calls_from_threads_run_one_at_a_time():
    """Pyomo captures a solver's output on process-wide descriptors: threads solving at once
    (the exact methods' DSO tasks) broke it; ``flexopt.solve`` takes one call at a time."""
    with executor(threads=4) as ex:
        assert ex.map(_tiny_lp, range(1, 17)) == pytest.approx(list(range(1, 17)))


def test_threads_leave_blas_and_numba_as_they_were():
    import numba
    from threadpoolctl import threadpool_info

    before = ([i["num_threads"] for i in threadpool_info()], numba.get_num_threads())
    with executor(threads=2) as ex:
        assert ex.map(_threads_here, range(2)) == [1, 1]  # one numba thread per pool thread
    assert ([i["num_threads"] for i in threadpool_info()], numba.get_num_threads()) == before


def _threads_here(_: int) -> int:
    import numba

    return int(numba.get_num_threads())


def test_centralized_market_identical_across_executors(rts):
    """The centralized market settles each DSO through the executor too."""
    serial = run_market(rts, "centralized")
    pool = run_market(rts, "centralized", workers=2)
    assert _summary(pool) == _summary(serial)
    assert _summary(run_market(rts, "centralized", threads=2)) == _summary(serial)
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
