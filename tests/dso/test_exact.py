"""The single-level MILP of the mode-"b" DCP: brute force, KKT, big-M, MILP ≤ WCA."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from flexopt.dso.clearing import clear
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.dso.exact import ApproxModel, build_dcp_exact, exact_bounds, read_dcp_exact
from flexopt.optim import WCA, minimize
from flexopt.run.api import run_market
from flexopt.solve import SolveStatus, solve


@pytest.fixture(scope="module")
def market(rts):
    return run_market(rts, "none")


def _problem(rts, market, k, n_members=None, hours=None, **opts) -> DCPProblem:
    ctx = market.outcome.contexts[k]
    if n_members is not None:  # a tiny case: keep the first participants only
        part = ctx.participants.copy()
        keep = part.index[part["participates"]][:n_members]
        part["participates"] = part.index.isin(keep)
        ctx = replace(ctx, participants=part)
    req = market.tables["requirement"]
    r = req[req["dso_id"] == ctx.dso.id].set_index("hour")["requirement_mw"]
    if hours is not None:
        r = r.iloc[:hours]
    if n_members is not None:  # keep the design point within the smaller capacity
        r = r * 0.3
    return DCPProblem(ctx, r, rts.market.loss_price_eur_per_mwh, DCPOptions(mode="b", **opts))


def _milp(approx, gap=1e-9):
    m = build_dcp_exact(approx)
    res = solve(m, time_limit=120, mip_gap=gap)
    assert res.status is SolveStatus.OPTIMAL, res.message
    return m, res


@pytest.mark.parametrize(("n", "hours"), [(2, 1), (2, 2), (3, 1)])
def test_milp_equals_brute_force_grid(rts, market, n, hours):
    """Without the budget the optimum is not confined to the thin boundary g = 0 (where the
    budgeted optimum sits, out of reach of a uniform grid); the budget is covered by the
    MILP ≤ WCA checks below."""
    prob = _problem(rts, market, 1, n_members=n, hours=hours, budget=False)
    approx = ApproxModel(prob, 12)
    _, res = _milp(approx)
    steps = {2: 201, 3: 61}[n]
    axes = np.meshgrid(*[np.linspace(0.5, 1.5, steps)] * n, indexing="ij")
    X = np.stack([a.ravel() for a in axes], axis=1)
    ev = approx.evaluate(X)
    feasible = ev.violation <= 1e-9
    grid = ev.F[feasible, 0].min()
    assert res.bound <= grid + 1e-9  # the MILP is a global bound for its model
    assert res.objective == pytest.approx(grid, abs=2e-4 if n == 2 else 1e-3)  # grid resolution


def test_kkt_model_reproduces_the_closed_form_clearing(rts, market):
    prob = _problem(rts, market, 0, budget=False)
    approx = ApproxModel(prob, 8)
    m = build_dcp_exact(approx)
    beta = np.random.default_rng(1).uniform(0.5, 1.5, prob.n)
    for i, v in enumerate(beta):
        m.beta[i].fix(float(v))
    res = solve(m, mip_gap=1e-9)
    assert res.ok
    sol = read_dcp_exact(m)
    cl = clear(prob.a, beta * prob.b, prob.u_max, prob.q)
    np.testing.assert_allclose(sol.u, cl.u_mw, atol=1e-6)
    np.testing.assert_allclose(sol.lam, cl.price, atol=1e-5)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_no_big_m_bound_binds_and_milp_beats_wca_on_its_model(rts, market, k):
    prob = _problem(rts, market, k)
    approx = ApproxModel(prob, 16)
    m, res = _milp(approx)
    sol = read_dcp_exact(m)
    b = exact_bounds(prob)
    assert (sol.mu_lo < b.mu_lo_max - 1e-6).all()
    assert (sol.mu_hi < b.mu_hi_max - 1e-6).all()
    assert ((sol.lam > b.lam_lo + 1e-6) & (sol.lam < b.lam_hi - 1e-6)).all()
    # the MILP's own β, scored by the numpy approximate model, gives the MILP's value
    assert approx.objective(sol.beta[None])[0] == pytest.approx(res.objective, abs=1e-7)
    for seed in range(3):
        w = minimize(approx, WCA(d_max=1e-5, raining="gaussian"), max_iter=200, seed=seed)
        assert w.feasible
        assert res.bound <= w.f[0] + 1e-9  # a check that can fail: the MILP is exact on its model


def test_market_with_the_exact_method(rts):
    res = run_market(rts, "exact", time_limit_s=30.0)
    assert res.summary["overload_mw_after"] == pytest.approx(0.0, abs=1e-6)
    for s in res.summary["dso"].values():
        dcp = s["dcp"]
        if "exact_status" in dcp:
            assert dcp["exact_status"] == "optimal"
            assert dcp["exact_bound_approx"] <= dcp["exact_objective_approx"] + 1e-9
            assert dcp["exact_gap"] <= 1e-6


def test_minlp_mode_ab_equals_brute_force_grid(rts, market):
    """Mode "ab" (bilinear stationarity) solved globally by SCIP vs a grid over (α, β)."""
    prob = _problem(rts, market, 1, n_members=2, hours=1, budget=False)
    prob = DCPProblem(
        prob.ctx,
        prob_requirement(market, prob),
        rts.market.loss_price_eur_per_mwh,
        DCPOptions(mode="ab", budget=False),
    )
    approx = ApproxModel(prob, 12)
    m = build_dcp_exact(approx)
    res = solve(m, "scip_direct", time_limit=120, mip_gap=1e-9)
    assert res.ok, res.message
    axes = np.meshgrid(*[np.linspace(0.5, 1.5, 26)] * 4, indexing="ij")
    X = np.stack([a.ravel() for a in axes], axis=1)
    grid = approx.evaluate(X).F[:, 0].min()
    assert res.bound <= grid + 1e-7
    assert res.objective == pytest.approx(grid, abs=5e-3)  # grid step 0.04 in four dimensions
    sol = read_dcp_exact(m)
    x = np.r_[sol.alpha, sol.beta]
    assert approx.objective(x[None])[0] == pytest.approx(res.objective, abs=1e-6)


def prob_requirement(market, prob):
    return pd.Series(prob.q * prob.ctx.dso.n_feeders, index=prob.hours)


@pytest.mark.parametrize("k", [0, 1])
def test_minlp_is_at_least_as_good_as_the_milp(rts, market, k):
    """Mode "b" is mode "ab" with α ≡ 1: the MINLP optimum cannot be worse."""
    b = ApproxModel(_problem(rts, market, k), 16)
    ctx = b.problem.ctx
    ab = ApproxModel(
        DCPProblem(
            ctx,
            prob_requirement(market, b.problem),
            rts.market.loss_price_eur_per_mwh,
            DCPOptions(mode="ab"),
        ),
        16,
    )
    _, rb = _milp(b)
    m = build_dcp_exact(ab)
    rab = solve(m, "scip_direct", time_limit=120, mip_gap=1e-7)
    assert rab.ok
    assert rab.objective <= rb.objective + 1e-6


def test_market_with_the_exact_minlp_through_scip(rts):
    res = run_market(rts, "exact", solver="scip", time_limit_s=60.0)
    assert res.summary["overload_mw_after"] == pytest.approx(0.0, abs=1e-6)
    models = {s["dcp"].get("exact_model") for s in res.summary["dso"].values()}
    assert models == {"MINLP (mode ab)"}
    with pytest.raises(ValueError, match="solver"):
        run_market(rts, "exact", solver="cplex")


@pytest.mark.parametrize("k", [0, 2])
def test_ac_nlp_local_solution_is_consistent_with_the_ac_evaluator(rts, market, k):
    """The branch-flow NLP is the AC model: at its (local) solution the independent AC
    evaluator gives the same objective; it improves on x⁰ and the budget holds up to the
    Scholtes relaxation."""
    from flexopt.methods.exact import solve_dcp_nlp

    ctx = market.outcome.contexts[k]
    req = market.tables["requirement"]
    r = req[req["dso_id"] == ctx.dso.id].set_index("hour")["requirement_mw"]
    prob = DCPProblem(ctx, r, rts.market.loss_price_eur_per_mwh, DCPOptions(mode="ab"))
    nlp = solve_dcp_nlp(prob)
    assert nlp.ok, nlp.steps
    assert nlp.eps <= 1e-5
    v = prob.values(np.r_[nlp.alpha, nlp.beta][None, :])
    assert v.objective[0] == pytest.approx(nlp.objective, abs=1e-5)
    assert nlp.objective < 1.0  # better than x⁰ (objective 1)
    assert v.budget_eur[0] > -0.05  # ε-relaxed complementarity: a few cents at most


def test_time_out_returns_the_incumbent_with_its_gap_or_a_clear_error(rts, market):
    """A time limit never fails silently: an incumbent comes back with its proven gap, or the
    market says clearly that no solution was found (which of the two depends on the machine)."""
    from flexopt.errors import FlexoptError

    prob = _problem(rts, market, 1)
    model = build_dcp_exact(ApproxModel(prob, 16))
    res = solve(model, time_limit=0.05, mip_gap=1e-9)
    assert res.status in (SolveStatus.FEASIBLE, SolveStatus.NO_SOLUTION, SolveStatus.OPTIMAL)
    if res.status is SolveStatus.FEASIBLE:  # the gap may have closed just as time ran out
        assert res.bound <= res.objective + 1e-9
        assert res.gap >= 0
    if res.status is SolveStatus.NO_SOLUTION:
        assert res.objective is None
    out, message = None, ""
    try:
        out = run_market(rts, "exact", time_limit_s=0.05, mip_gap=1e-9)
    except FlexoptError as err:
        message = str(err)
    if out is None:
        assert "no_solution" in message
        return
    for s in out.summary["dso"].values():
        d = s["dcp"]
        if d.get("exact_status") == "feasible":
            assert d["exact_gap"] >= 0
            assert d["exact_bound_approx"] <= d["exact_objective_approx"]
