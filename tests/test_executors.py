"""Serial, thread, process-pool and Dask (LocalCluster) executors give identical results."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time

import pytest

from flexopt.executors import executor
from flexopt.run.api import run_market
from flexopt.run.tasks import warm_worker
from tests.conftest import run_script, wait_for_run_pool


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
        concurrent.futures.wait(getattr(ex, "ready", ()))  # a pool's worker takes items too
        assert ex.map(_square, range(7)) == [0, 1, 4, 9, 16, 25, 36]
        assert sorted(ex.as_completed(_square, range(4))) == [(0, 0), (1, 1), (2, 4), (3, 9)]
        started = ex.start(_square, range(5))
        assert started.result() == [0, 1, 4, 9, 16]


def test_market_identical_across_executors(rts):
    serial = run_market(rts, "wca", wca_iter=40, seed=5)
    first = run_market(rts, "wca", wca_iter=40, seed=5, workers=2)  # worker maybe not ready
    wait_for_run_pool(2)
    pool = run_market(rts, "wca", wca_iter=40, seed=5, workers=2)  # tasks on both processes
    assert _summary(first) == _summary(serial)
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


class _Held(int):
    """An item whose work holds the GIL (as a run's S4 and S8 tasks say)."""

    gil_bound = True


def _thread(_: int) -> int:
    import threading

    return threading.get_ident()


def test_threads_run_gil_bound_items_in_the_calling_thread():
    """Items that hold the GIL (S4, S8: pandas and Python) ran slower on threads than in one,
    so the threaded executor runs them here — in ``map``, ``as_completed`` and a started
    call; other items (S5–S6's compiled searches) go to the threads."""
    import threading

    here = threading.get_ident()
    held = [_Held(i) for i in range(6)]
    with executor(threads=2) as ex:
        assert set(ex.map(_thread, held)) == {here}
        assert {t for _, t in ex.as_completed(_thread, held)} == {here}
        assert set(ex.start(_thread, held).result()) == {here}
        assert here not in set(ex.map(_thread, range(6)))


def _threads_here(_: int) -> int:
    import numba

    return int(numba.get_num_threads())


def test_centralized_market_identical_across_executors(rts):
    """The centralized market settles each DSO through the executor too."""
    serial = run_market(rts, "centralized")
    run_market(rts, "centralized", workers=2)
    wait_for_run_pool(2)
    pool = run_market(rts, "centralized", workers=2)
    assert _summary(pool) == _summary(serial)
    assert _summary(run_market(rts, "centralized", threads=2)) == _summary(serial)
    assert pool.tables["settlement"].equals(serial.tables["settlement"])


def _pid(_: int) -> int:
    time.sleep(0.02)  # long enough for both processes to take some
    return os.getpid()


def _slow_warm() -> None:
    time.sleep(3)


def _failing_warm() -> None:
    raise OSError("no flexopt here")


def _fails_on_zero(x: int) -> int:
    if x == 0:
        raise ValueError("zero")
    return x


def test_process_pools_start_once_and_are_reused():
    """Two blocks of the same shape share one pool (the same worker process); the tasks run
    on this process and the worker; a block left by an exception shuts its pool down;
    :func:`shutdown` stops the idle ones."""
    from flexopt import executors

    with executor(2, warm=warm_worker) as first:
        concurrent.futures.wait(first.ready)
        workers = set(first.pool._processes)
        assert set(first.map(_pid, range(40))) == workers | {os.getpid()}
    with executor(2, warm=warm_worker) as second:
        assert second is first
        assert set(second.map(_pid, range(40))) == workers | {os.getpid()}
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


def test_no_task_waits_for_a_worker_still_warming_up():
    """Until its warm-up is done a worker takes nothing: this process runs every task, at
    serial speed (a call used to wait for the pool's start, 0.25–0.36× serial)."""
    from flexopt import executors

    with executor(3, warm=_slow_warm) as ex:
        t = time.perf_counter()
        assert set(ex.map(_pid, range(10))) == {os.getpid()}
        assert sorted(ex.as_completed(_square, range(3))) == [(0, 0), (1, 1), (2, 4)]
        assert time.perf_counter() - t < 3
        assert not any(f.done() for f in ex.ready)
    executors._IDLE.pop((3, _slow_warm, None)).close()


def test_a_warm_pool_returns_every_item_once_in_order():
    """The worker takes chunks, this process single items: all come back, in order."""
    with executor(3, warm=warm_worker) as ex:
        concurrent.futures.wait(ex.ready)
        assert ex.map(_square, range(200)) == [x * x for x in range(200)]
        got = list(ex.as_completed(_square, range(50)))
        assert sorted(got) == [(x, x * x) for x in range(50)]


def test_a_task_failing_in_a_worker_raises_here():
    """A warm worker takes the first chunk as the call starts: item 0 fails there."""
    with executor(2, warm=warm_worker) as ex:
        concurrent.futures.wait(ex.ready)
        with pytest.raises(ValueError, match="zero"):
            ex.map(_fails_on_zero, range(8))


def test_a_worker_whose_warm_up_fails_takes_nothing(caplog):
    """Its pool runs everything here, says so, and is not kept for the next call."""
    from flexopt import executors

    with executor(2, warm=_failing_warm) as ex:
        concurrent.futures.wait(ex.ready)
        assert set(ex.map(_pid, range(6))) == {os.getpid()}
    assert "failed to warm up" in caplog.text
    assert (2, _failing_warm, None) not in executors._IDLE


@pytest.mark.parametrize("threads", [None, 2])
def test_a_started_call_runs_here_when_collected(threads):
    """Without started workers, ``start`` runs nothing until its result is asked for (the
    run's S4 then runs after S2, as before)."""
    with executor(threads=threads) as ex:
        seen: list[int] = []
        started = ex.start(seen.append, [1, 2])
        time.sleep(0.05)
        assert seen == []
        assert started.result() == [None, None]
        assert started.result() == [None, None]  # not run again
        assert sorted(seen) == [1, 2]
        cancelled = ex.start(seen.append, [3])
        cancelled.cancel()
        with pytest.raises(concurrent.futures.CancelledError):
            cancelled.result()
        assert 3 not in seen


def test_a_started_call_runs_on_the_worker_while_this_process_goes_on():
    """A warm worker takes the items of a started call at once; collected after they are
    done, every result comes from it, in order. A cancelled call hands out nothing more and
    its result raises; one collected after its executor's block says so."""
    with executor(2, warm=warm_worker) as ex:
        concurrent.futures.wait(ex.ready)
        (worker,) = set(ex.pool._processes)
        assert ex.map(_square, range(20))  # a spawned worker has imported this module
        started = ex.start(_pid, range(6))
        time.sleep(2.0)  # this process at other work (a run's S1–S2)
        assert started.result() == [worker] * 6
        assert started.result() == [worker] * 6  # collected once
        cancelled = ex.start(_pid, range(100))
        cancelled.cancel()
        assert not ex.active
        with pytest.raises(concurrent.futures.CancelledError):
            cancelled.result()
        assert ex.map(_square, range(5)) == [0, 1, 4, 9, 16]
        late = ex.start(_pid, range(100))
    with pytest.raises(RuntimeError, match="after its executor's block ended"):
        late.result()  # the block released its pool: the call handed out nothing more


def _mark_later() -> None:
    with open(os.environ["FLEXOPT_TEST_LATER"], "a") as f:
        f.write(f"{os.getpid()}\n")


def test_a_worker_runs_the_later_warm_up_once(tmp_path, monkeypatch):
    """The first time a call has nothing left for the worker, it runs ``warm_later``; once."""
    from flexopt import executors

    marks = tmp_path / "later.txt"
    monkeypatch.setenv("FLEXOPT_TEST_LATER", str(marks))  # before the workers start
    with executor(2, warm=warm_worker, warm_later=_mark_later) as ex:
        concurrent.futures.wait(ex.ready)
        (worker,) = set(ex.pool._processes)
        assert ex.map(_square, range(10)) == [x * x for x in range(10)]
        deadline = time.monotonic() + 10
        while not marks.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ex.map(_pid, range(20))
        assert ex.start(_square, range(3)).result() == [0, 1, 4]
    executors._IDLE.pop((2, warm_worker, _mark_later)).close()
    assert marks.read_text().split() == [str(worker)]


_WARM_HERE_FIRST = """
import concurrent.futures, os
from flexopt import executors, pool_feed
from tests.test_executors import _failing_warm, _mark_later

if __name__ == "__main__":
    assert executors.fork_safe() and not pool_feed._ran_here
    warm = _mark_later if os.environ["FLEXOPT_TEST_WARM"] == "marks" else _failing_warm
    with executors.executor(2, warm=warm) as ex:
        concurrent.futures.wait(ex.ready)
        assert ex.forked
        # ran here before the fork, this process joins calls at once; failed, it did not
        assert pool_feed._ran_here is (warm is _mark_later)
        (worker,) = set(ex.pool._processes)
        assert ex.map(abs, range(-3, 3)) == [3, 2, 1, 0, 1, 2]
    if warm is _mark_later:
        with open(os.environ["FLEXOPT_TEST_LATER"]) as f:
            assert f.read().split() == [str(os.getpid()), str(worker)]
    else:  # the worker failed it again: the pool says so and is not kept
        assert not ex.usable()
    print("ok")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
@pytest.mark.parametrize("warm", ["marks", "fails"])
def test_a_forked_pool_runs_the_warm_up_here_first(tmp_path, monkeypatch, warm):
    """A forked worker inherits what this process loaded: the warm-up runs here before the
    fork, then in the worker (finding it done). One that raises here is left to the worker,
    whose failure the pool reports as before."""
    monkeypatch.setenv("FLEXOPT_TEST_LATER", str(tmp_path / "marks.txt"))
    monkeypatch.setenv("FLEXOPT_TEST_WARM", warm)
    out = run_script(tmp_path, _WARM_HERE_FIRST, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_dso_tasks_do_not_import_pyomo():
    """A pool worker loads the DSO tasks and the coefficient methods at its start, and runs
    the DSO stages of a tiny DSO later on; Pyomo (half a second of it) is imported only by
    the stages that build a model."""
    code = (
        "import sys, flexopt.run.tasks, flexopt.methods, flexopt.run.warmup; "
        "flexopt.run.warmup.warm_dso_stages(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pyomo'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


_FORKED_POOL = """
import concurrent.futures, os
from flexopt import executors, load_instance, run_market
from flexopt.run.tasks import warm_worker
from flexopt.run.warmup import warm_dso_stages
from tests.test_executors import _pid, _square

if __name__ == "__main__":
    assert executors.fork_safe()
    rts = load_instance("instances/rts24-3dso")
    first = run_market(rts, "wca", wca_iter=40, seed=5, workers=2)  # starts the pool
    pool = executors._IDLE[(2, warm_worker, warm_dso_stages)]
    assert pool.forked
    concurrent.futures.wait(pool.ready)
    assert not executors.fork_safe()  # the run started numba's threads and loaded HiGHS
    with executors.executor(2, warm=warm_worker, warm_later=warm_dso_stages) as ex:
        assert ex is pool
        assert ex.map(_square, range(30)) == [x * x for x in range(30)]
        pids = set(ex.map(_pid, range(40)))
        assert len(pids) == 2 and os.getpid() in pids, pids
    pooled = run_market(rts, "wca", wca_iter=40, seed=5, workers=2)  # tasks on the worker
    serial = run_market(rts, "wca", wca_iter=40, seed=5)
    for name in ("dispatch", "settlement", "bids"):
        assert pooled.tables[name].equals(serial.tables[name]), name
        assert first.tables[name].equals(serial.tables[name]), name
    print("ok")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
def test_a_fresh_process_forks_its_workers(tmp_path):
    """A fresh process's ``run_market(..., workers=2)`` forks its pool's worker (with every
    module loaded); it takes tasks, and the market's numbers are the serial ones."""
    out = run_script(tmp_path, _FORKED_POOL, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_workers_are_forked_on_linux_only(monkeypatch):
    """Elsewhere (macOS's system libraries are not fork-safe, Windows cannot fork) they are
    spawned."""
    from flexopt.executors import fork_safe

    monkeypatch.setattr(sys, "platform", "darwin")
    assert not fork_safe()


_NOT_FORK_SAFE = """
import threading, sys
from flexopt.executors import fork_safe
assert fork_safe()
if sys.argv[1] == "numba":
    import numba
    numba.set_num_threads(1)  # starts numba's threading layer (GNU OpenMP here)
elif sys.argv[1] == "spawn asked for":
    import os
    os.environ["FLEXOPT_WORKER_START"] = "spawn"
elif sys.argv[1] == "thread":
    threading.Thread(target=threading.Event().wait, args=(5,), daemon=True).start()
else:
    import highspy
print(fork_safe())
"""


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
@pytest.mark.parametrize("what", ["numba", "thread", "highspy", "spawn asked for"])
def test_no_fork_once_threads_may_run(what):
    """Once numba's thread pool started, a Python thread runs or HiGHS is loaded, workers
    are spawned: a forked child would lack those threads (GNU OpenMP aborts it). And where
    ``FLEXOPT_WORKER_START=spawn`` asks for it."""
    out = subprocess.run(
        [sys.executable, "-c", _NOT_FORK_SAFE, what], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
