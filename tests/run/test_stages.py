"""Each stage of the run on its own: composed by hand from the TSO stages and the DSO tasks,
they give what ``run_market`` gives; each framework returns its own typed outcome."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from flexopt.dso.context import declared_capacity
from flexopt.dso.settlement import loss_relief
from flexopt.errors import FlexoptError
from flexopt.methods import get_method
from flexopt.outcome import BilevelOutcome, CentralizedOutcome
from flexopt.run import tso
from flexopt.run.api import run_market
from flexopt.run.tasks import BidTask, DispatchTask, PrepareTask, run_task


@pytest.fixture(scope="module")
def mlf(rts):
    return run_market(rts, "mlf")


def test_an_s4_task_carries_only_what_s4_reads(rts):
    """``PrepareTask.of`` leaves the transmission grid, the load increase and the other DSOs
    out of the task a pool worker unpickles; the context it gives is the whole instance's."""
    for d in rts.dsos:
        task = PrepareTask.of(rts, d, "branch_current")
        assert task.instance.dsos == (d,)
        assert task.instance.transmission.branches.empty
        assert task.instance.scenario.load_increase.shape == (rts.hours, 0)
        one_dso = PrepareTask(replace(rts, dsos=(d,)), d, "branch_current")
        assert len(pickle.dumps(task)) < len(pickle.dumps(one_dso)) / 2
        got, want = run_task(task), run_task(PrepareTask(rts, d, "branch_current"))
        for name in ("p_mw", "q_mvar", "loss_mw"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), name
        for name in ("allocation", "participants", "mlf"):
            pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name))


def test_stages_by_hand_equal_run_market(rts, mlf):
    da = tso.day_ahead(rts)
    model = tso.plf_model(rts, da)
    plf, cong = tso.congestion(rts, model)
    hours = pd.Index(sorted(cong.loc[cong["congested"], "hour"].unique()), name="hour")
    ctxs = [run_task(PrepareTask(rts, d, "branch_current")) for d in rts.dsos]
    capacity = pd.concat({c.dso.id: declared_capacity(c, hours) for c in ctxs}, axis=1)
    dso_bus = {d.id: d.bus for d in rts.dsos}
    req, _ = tso.requirement(rts, model, plf, hours, capacity, dso_bus)
    lp = rts.market.loss_price_eur_per_mwh
    method = get_method("mlf")
    bids = [
        BidTask(c, req[c.dso.id], method, None, mlf.options.dcp, lp, 10, (0, k))
        for k, c in enumerate(ctxs)
    ]
    # a bid's weight (a process pool's chunks, the largest first): its search's size
    for t in bids:
        n_hours = int((t.requirement_mw.to_numpy() > 0).sum())
        size = int(t.context.screened.sum()) * len(t.context.members) * n_hours
        assert t.weight == 25.0 + size
    assert any(t.weight > 25.0 for t in bids)
    offers = [run_task(t) for t in bids]
    market = tso.tso_market(rts, model, plf, hours, [o.bid for o in offers])
    dispatch = [
        run_task(
            DispatchTask(c, o, market.accepted_mw[c.dso.id], market.price_eur_per_mwh[c.dso.id], lp)
        )
        for c, o in zip(ctxs, offers, strict=True)
    ]
    # the re-check sees the interface relief: accepted flexibility plus lower feeder losses
    relief = loss_relief(dispatch, list(dso_bus), hours)
    assert (relief.to_numpy() >= 0).all()
    assert relief.to_numpy().sum() > 1.0
    _, after = tso.recheck(rts, model, hours, market.accepted_mw + relief, dso_bus)

    out = mlf.outcome
    assert isinstance(out, BilevelOutcome)
    assert out.tso is not None
    pd.testing.assert_frame_equal(req, out.requirement_mw)
    pd.testing.assert_frame_equal(relief, out.loss_relief_mw)
    pd.testing.assert_frame_equal(market.accepted_mw, out.tso.accepted_mw)
    for mine, theirs in zip(dispatch, out.dispatch, strict=True):
        pd.testing.assert_frame_equal(mine.settlement, theirs.settlement)
    assert after["overload_mw"].sum() == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_array_equal(after["mean_mw"], out.congestion_after["mean_mw"])


def test_each_framework_has_its_own_outcome(rts, mlf):
    central = run_market(rts, "centralized")
    assert isinstance(central.outcome, CentralizedOutcome)
    assert central.outcome.result is not None
    # no bids, no requirement stage: no such tables, and no TSO market posing as one
    assert not {"bids", "offers", "requirement", "tso_clearing"} & set(central.tables)
    assert {"tso_prices", "dispatch", "settlement"} <= set(central.tables)
    assert central.summary["flex_requested_mwh"] is None
    assert isinstance(mlf.outcome, BilevelOutcome)
    assert {"bids", "offers", "requirement", "tso_clearing"} <= set(mlf.tables)
    assert mlf.outcome.accepted_mw is mlf.outcome.tso.accepted_mw


def test_a_stage_without_a_solution_names_stage_and_solver():
    import pyomo.environ as pyo

    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1))
    m.c = pyo.Constraint(expr=m.x >= 2)
    m.obj = pyo.Objective(expr=m.x)
    with pytest.raises(FlexoptError, match=r"^my stage: solver highs returned infeasible"):
        tso.solve_or_raise(m, "my stage")


def test_save_draws_figures_from_either_outcome(rts, mlf, tmp_path):
    central = run_market(rts, "centralized")
    for res, name in ((mlf, "mlf"), (central, "central")):
        out = res.save(tmp_path / name)
        assert (out / "voltage_profiles.png").stat().st_size > 10_000
    assert (tmp_path / "mlf" / "offer_curves.png").exists()
    assert not (tmp_path / "central" / "offer_curves.png").exists()


def test_the_executors_start_is_logged_only_when_something_starts(caplog):
    """``--progress``: a line for workers, threads or Dask; none for a run in this process."""
    import logging

    from flexopt.run.api import _starting
    from flexopt.run.clock import Clock
    from flexopt.run.options import MarketOptions

    assert _starting(MarketOptions()) is None
    assert _starting(MarketOptions(workers=1)) is None
    assert _starting(MarketOptions(workers=2)) == "starting 2 worker processes (this one and 1)"
    assert _starting(MarketOptions(threads=2)) == "starting 2 threads"
    assert _starting(MarketOptions(scheduler="local")).startswith("connecting to the Dask")
    clock = Clock(progress=True)
    with caplog.at_level(logging.INFO, logger="flexopt.progress"):
        with clock("pool_start", None):
            pass
        with clock("day_ahead", "S1 day-ahead market"):
            pass
    assert [r.getMessage() for r in caplog.records] == ["S1 day-ahead market …"]
    assert set(clock.timings) == {"pool_start_s", "day_ahead_s"}
