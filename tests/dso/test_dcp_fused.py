"""The compiled DCP evaluation (``flexopt.dso._fused``) equals the numpy form bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from flexopt.dso._fused import FusedDCP, fusable
from flexopt.dso.context import prepare
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.errors import PowerFlowError


def _problem(rts, seed: int, shared_bus: bool = False, blocks: int = 6, **opts) -> DCPProblem:
    rng = np.random.default_rng(seed)
    dso = rts.dsos[seed % len(rts.dsos)]
    pros = dso.prosumers.copy()
    pros["b_eur_per_mwh"] = rng.uniform(20, 90, len(pros)).round(2)
    pros["a_eur_per_mw2h"] = rng.choice([0.0, 0.5, 2.0], len(pros))  # steps and slopes
    if shared_bus:  # four prosumers at one bus: the injection adds three terms there
        pros.loc[pros.index[:4], "bus"] = pros["bus"].iloc[0]
    dso = replace(dso, prosumers=pros)
    ctx = prepare(replace(rts, dsos=(dso,)), dso, participation="all")
    hours = pd.Index([12, 13, 14, 15, 16, 17, 18, 19, 20], name="hour")  # nine: pairwise sums
    req = pd.Series(rng.uniform(0.1, 1.0, len(hours)) * dso.n_feeders * 0.5, index=hours)
    return DCPProblem(ctx, req, 50.0, DCPOptions(**opts), blocks=blocks)


def _numpy(pr: DCPProblem, X: np.ndarray):
    fused, pr._fused = pr._fused, None
    try:
        return pr.evaluate(X)
    finally:
        pr._fused = fused


@pytest.mark.parametrize(
    ("seed", "shared_bus", "opts"),
    [
        (0, False, {}),
        (1, True, {}),
        (2, False, {"mode": "b"}),
        (3, False, {"budget": False}),
        (4, True, {"efficiency": False}),
        (5, False, {"budget": False, "efficiency": False}),
        (6, False, {"weight": 0.0, "bounds": (0.2, 3.0)}),
    ],
)
def test_fused_evaluation_equals_the_numpy_form(rts, seed, shared_bus, opts):
    pr = _problem(rts, seed, shared_bus, **opts)
    assert pr.has_decisions
    assert fusable(pr)
    assert pr._fused is not None
    rng = np.random.default_rng(seed)
    X = rng.uniform(pr.lower, pr.upper, (37, len(pr.lower)))
    X[0] = pr.x0
    X[1] = X[2]  # a repeated individual: its loads are solved once
    X[3, : len(X[3]) // 2] = 1.0  # some factors at 1: block ends repeat across individuals
    ref = _numpy(pr, X)
    F, G = pr._fused(X)
    assert F.tobytes() == ref.F.tobytes()
    if ref.G is None:
        assert G is None
    else:
        assert G is not None
        assert G.tobytes() == ref.G.tobytes()
    one = pr.evaluate(X[4])  # a single vector, as minimize may pass
    assert one.F.tobytes() == ref.F[4:5].tobytes()


def test_other_problems_take_the_numpy_form(rts):
    pr = _problem(rts, 0, price="pay_as_bid")
    assert not fusable(pr)
    assert pr._fused is None
    assert pr.evaluate(pr.x0).F.shape == (1, 1)


def test_a_power_flow_that_does_not_converge_raises(rts):
    pr = _problem(rts, 0)
    crushing = FusedDCP(_scaled_loads(pr, 1e4))
    with pytest.raises(PowerFlowError, match="did not converge"):
        crushing(pr.x0[None, :])


def _scaled_loads(pr: DCPProblem, factor: float) -> DCPProblem:
    """``pr`` with its day-ahead loads scaled (beyond the feeder's loadability)."""
    pr.p = pr.p * factor
    return pr


def test_repeated_hours_are_computed_once_and_read_for_each(rts):
    """Design hours with the same loads, requirement and capacity (a flat stretch of the
    profile): the compiled form computes one of them and reads it for the others, and still
    equals the numpy form bit for bit."""
    pr = _problem(rts, 0)
    req = pr.requirement_mw.copy()
    loads = [x.copy() for x in (pr.ctx.p_mw, pr.ctx.q_mvar, pr.ctx.loss_mw)]
    rows = pr.ctx.hours.get_indexer(req.index)
    for copy_of, to in ((0, 3), (0, 5), (1, 2)):  # hours 15 and 17 as 12, 14 as 13
        for x in loads:
            x[rows[to]] = x[rows[copy_of]]
        req.iloc[to] = req.iloc[copy_of]
    ctx = replace(pr.ctx, p_mw=loads[0], q_mvar=loads[1], loss_mw=loads[2])
    cap = pr.capacity_mw.copy()
    cap.iloc[[3, 5, 2]] = cap.iloc[[0, 0, 1]].to_numpy()
    rep = DCPProblem(ctx, req, 50.0, DCPOptions(), blocks=6, capacity_mw=cap)
    assert rep._fused is not None
    assert rep._fused._args[4].shape[0] == len(rep.hours) - 3  # distinct hours' capacities
    X = np.random.default_rng(1).uniform(rep.lower, rep.upper, (21, len(rep.lower)))
    ref = _numpy(rep, X)
    F, G = rep._fused(X)
    assert F.tobytes() == ref.F.tobytes()
    assert G is not None
    assert ref.G is not None
    assert G.tobytes() == ref.G.tobytes()
    assert np.array_equal(G[:, 3 * 6 : 4 * 6], G[:, :6])  # hour 15's budget rows are hour 12's


@pytest.mark.parametrize(("engine", "blocks"), [("numba", 6), ("numpy", 6), ("numba", 10)])
def test_a_search_on_deferred_constraints_is_the_same_search(rts, engine, blocks):
    """The ``wca`` method's search asks for the block ends' constraints (C7, C8) of the
    points it compares only: the same result, history and evaluations bit for bit (10
    blocks: 180 constraint rows, beyond the 128 that NumPy sums in one block)."""
    from flexopt.methods.wca import WCAConfig, dcp_termination, dcp_wca, starts
    from flexopt.optim import minimize

    pr = _problem(rts, 1, blocks=blocks)
    cfg = WCAConfig()
    x = np.random.default_rng(2).uniform(pr.lower, pr.upper, (5, len(pr.lower)))
    ev = pr.evaluate_deferred(x)
    assert ev.G is None
    assert ev.deferred is not None
    assert ev.F.tobytes() == pr.evaluate(x).F.tobytes()
    assert ev.violation.tobytes() == pr.evaluate(x).violation.tobytes()
    full = pr.evaluate(x).violation
    assert (full > 0).all()  # random factors break the efficiency rows (C8)
    some = ev.violation_within(np.array([np.inf, -np.inf, full[2], 0.0, full[4] / 2]))
    np.testing.assert_array_equal(some[[1, 3, 4]], np.inf)  # not needed, infeasible, above
    assert some[[0, 2]].tobytes() == full[[0, 2]].tobytes()
    runs = []
    for lazy in (True, False):
        alg = dcp_wca(pr, starts(pr, cfg), cfg, engine=engine, lazy_violation=lazy)
        term = dcp_termination(cfg, pr.lower.size)
        runs.append(minimize(pr, alg, termination=term, seed=np.random.default_rng(5)))
    a, b = runs
    assert a.x.tobytes() == b.x.tobytes()
    assert a.f == b.f
    assert a.violation == b.violation
    assert a.history.tobytes() == b.history.tobytes()
    assert a.evaluations == b.evaluations


def test_the_block_ends_in_any_order_give_the_same_violations(rts):
    """The deferred block ends run the most often violated first (``_hits``); whatever that
    order, a violation asked for is the whole evaluation's bit for bit, and one beyond its
    bound is ``inf``."""
    pr = _problem(rts, 1, blocks=10)
    x = np.random.default_rng(3).uniform(pr.lower, pr.upper, (6, len(pr.lower)))
    full = pr.evaluate(x).violation
    bound = np.array([np.inf, full[1], 0.0, full[3] / 2, -np.inf, 2 * full[5]])
    fused = pr._fused
    K = fused._hits.size
    orders = (np.zeros(K), np.arange(K), np.arange(K)[::-1], np.r_[0, 9, 1, 8, 2, 7, 3, 6, 5, 4])
    for hits in orders:
        fused._hits[:] = hits
        some = pr.evaluate_deferred(x).violation_within(bound)
        assert some[[0, 1, 5]].tobytes() == full[[0, 1, 5]].tobytes()
        np.testing.assert_array_equal(some[[2, 3, 4]], np.inf)
        # the counts grow where block ends added to the violations computed
        assert (fused._hits >= hits).all()
        assert fused._hits.sum() > hits.sum()
