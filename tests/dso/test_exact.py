"""The single-level models of the DCP: brute force, KKT, big-M, the closed-form check of the
price (X8a), the budget at every block boundary (X12), MILP bound ≤ WCA."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest

from flexopt.dso.clearing import clear
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.dso.exact import (
    ApproxModel,
    build_dcp_exact,
    check_clearing,
    exact_bounds,
    read_dcp_exact,
    read_factors,
)
from flexopt.methods.exact import solve_dcp_exact
from flexopt.optim import WCA, minimize
from flexopt.run.api import run_market
from flexopt.solve import SolveStatus, solve


@pytest.fixture(scope="module")
def market(rts):
    """Screened participation keeps the lower levels small (4–6 prosumers per DSO)."""
    return run_market(rts, "none", participation="screened")


def _problem(rts, market, k, n_members=None, hours=None, **opts) -> DCPProblem:
    ctx = market.outcome.contexts[k]
    if n_members is not None:  # a tiny case: keep the first screened prosumers only
        part = ctx.participants.copy()
        keep = part.index[part["screened"]][:n_members]
        part["screened"] = part["offers"] = part.index.isin(keep)
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
    prob = _problem(rts, market, 1, n_members=n, hours=hours, budget=False, efficiency=False)
    approx = ApproxModel(prob, 12)
    _, res = _milp(approx)
    grid = _grid_best(approx, n)
    assert res.bound <= grid + 1e-9  # the MILP is a global bound for its model
    assert res.objective == pytest.approx(grid, abs=2e-4 if n == 2 else 1e-3)  # grid resolution


def _grid_best(approx: ApproxModel, n: int) -> float:
    """The best feasible objective on a uniform grid of the factor box."""
    steps = {2: 201, 3: 61}[n]
    axes = np.meshgrid(*[np.linspace(0.5, 1.5, steps)] * n, indexing="ij")
    X = np.stack([a.ravel() for a in axes], axis=1)
    best = np.inf
    for chunk in np.array_split(X, max(1, len(X) // 5_000)):  # the boundaries' arrays are large
        ev = approx.evaluate(chunk)
        ok = ev.violation <= 1e-9
        best = min(best, float(ev.F[ok, 0].min(initial=np.inf)))
    return best


@pytest.mark.parametrize("n", [2, 3])
def test_milp_with_efficiency_beats_the_grid_and_holds_it(rts, market, n):
    """(C8, X12a): the MILP's efficiency rows are exact on the approximate model (the
    tangent cuts of its squares are the evaluator's), so its point holds (C8) there and is
    at least as good as the best grid point that holds it."""
    prob = _problem(rts, market, 1, n_members=n, hours=2, budget=False)
    approx = ApproxModel(prob, 12)
    m, res = _milp(approx)
    x = prob.vector(*read_factors(m))[None, :]
    assert approx.boundary_saving(x).min() >= -1e-6 * max(1.0, np.abs(approx.social0).max())
    assert approx.evaluate(x).violation[0] <= 1e-6
    assert res.objective <= _grid_best(approx, n) + 1e-9
    assert res.bound <= res.objective + 1e-9


def test_kkt_model_reproduces_the_closed_form_clearing(rts, market):
    prob = _problem(rts, market, 0, budget=False, efficiency=False)
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
    assert check_clearing(prob, sol).agrees


def test_price_at_full_capacity_is_pinned_to_the_closed_form(rts, market):
    """(X8a) With the design point at the capacity every u sits at Ū and the KKT conditions
    leave λ free above the dearest top; the first wave's MILP used that to report a price of
    98.0 where the market clears at 63.5. Pinned, the model's price is the closed form's."""
    prob = _problem(rts, market, 1, budget=False, efficiency=False)
    full = DCPProblem(
        prob.ctx,
        pd.Series(prob.u_max.sum(axis=1) * prob.ctx.dso.n_feeders, index=prob.hours),
        rts.market.loss_price_eur_per_mwh,
        DCPOptions(mode="b", budget=False, efficiency=False, weight=0.0),
    )
    assert np.allclose(full.q, full.u_max.sum(axis=1))
    approx = ApproxModel(full, 8)
    m = build_dcp_exact(approx)
    beta = np.full(full.n, 0.8)
    for i, v in enumerate(beta):
        m.beta[i].fix(float(v))
    m.obj.deactivate()  # maximize the price: without the pin λ runs to its upper bound
    m.price = pyo.Objective(expr=sum(m.design.lam[t] for t in m.T), sense=pyo.maximize)
    res = solve(m, mip_gap=1e-9)
    assert res.ok
    sol = read_dcp_exact(m)
    top = (2 * full.a * full.u_max + 0.8 * full.b).max(axis=1)
    np.testing.assert_allclose(sol.lam, top, rtol=1e-7)
    assert check_clearing(full, sol).agrees


def test_a_free_price_on_a_flat_supply_curve_is_caught_by_the_closed_form_check(rts, market):
    """Below the capacity the supply curve can be flat too: two linear offers (40 and 60
    €/MWh) and the quantity exactly the cheaper one's capacity — the KKT conditions allow any
    λ in [40, 60] and the MILP cannot state "some prosumer dispatched (u > 0) and marginal".
    The closed form takes 40; the re-evaluation of the model's point reports the mismatch
    (found by an independent review)."""
    prob = _problem(rts, market, 0, n_members=2, hours=1, budget=False, efficiency=False)
    ctx = prob.ctx
    pros = ctx.dso.prosumers.copy()
    first, second = prob.ctx.members.index
    pros.loc[[first, second], "a_eur_per_mw2h"] = 0.0
    pros.loc[[first, second], "b_eur_per_mwh"] = [40.0, 60.0]
    ctx = replace(ctx, dso=replace(ctx.dso, prosumers=pros))
    n = ctx.dso.n_feeders
    req = pd.Series(prob.u_max[:, 0] * n, index=prob.hours)
    flat = DCPProblem(
        ctx,
        req,
        rts.market.loss_price_eur_per_mwh,
        DCPOptions(mode="b", budget=False, efficiency=False),
    )
    m = build_dcp_exact(ApproxModel(flat, 4))
    for i in m.I:
        m.beta[i].fix(1.0)
    m.obj.deactivate()  # maximize the price: without the pin it would run to 60
    m.price = pyo.Objective(expr=sum(m.design.lam[t] for t in m.T), sense=pyo.maximize)
    res = solve(m, mip_gap=1e-9)
    assert res.ok
    sol = read_dcp_exact(m)
    np.testing.assert_allclose(sol.lam, 60.0, atol=1e-6)
    check = check_clearing(flat, sol)
    assert not check.agrees
    assert check.price_gap == pytest.approx(20.0, abs=1e-6)


@pytest.mark.parametrize("k", [0, 2])
def test_no_big_m_bound_binds_and_the_bound_never_beats_wca_on_its_model(rts, market, k):
    """The lazy boundaries keep the model a relaxation of the full one: its bound is a bound
    for WCA on the same approximate model (a check that can fail), and where its point meets
    every boundary it is the optimum."""
    prob = _problem(rts, market, k, efficiency=False)  # a random WCA seldom meets (C8)
    approx = ApproxModel(prob, 16)
    out = solve_dcp_exact(approx, time_limit_s=6.0, mip_gap=1e-9)
    sol = out.solution
    b = exact_bounds(prob)
    for mu, top in ((sol.mu_lo, b.mu_lo_max), (sol.mu_hi, b.mu_hi_max)):
        assert ((mu < top - 1e-6) | (top == 0)).all()  # no big-M binds (zero: cannot be > 0)
    assert out.price_gap < 1e-6  # the closed form reproduces the model's price
    x = np.r_[sol.beta][None]
    # the design level is exact on the approximate model: same objective
    assert approx.objective(x)[0] == pytest.approx(out.objective, abs=1e-6)
    assert out.status in ("optimal", "feasible", "budget_violated")
    if out.status == "optimal":
        assert (approx.boundary_balance(x) >= -1e-6 * max(1.0, approx.f_price0)).all()
    for seed in range(2):
        wca = WCA(d_max=1e-5, raining="gaussian", restart=0, river_rain="uniform")  # dcp_wca's
        w = minimize(approx, wca, max_iter=150, seed=seed)
        assert w.feasible
        assert out.bound <= w.f + 1e-9


def test_the_full_model_holds_every_boundary(rts, market):
    """build_dcp_exact without a boundary list is the full model: one lower level and budget
    row per hour and block (what `flexopt export` writes)."""
    prob = _problem(rts, market, 2, n_members=2, hours=1)
    m = build_dcp_exact(ApproxModel(prob, 4))
    assert len(m.edge) == len(prob.hours) * prob.blocks
    assert all(len(m.edge[key].ineq_budget) == 1 for key in m.edge)
    assert all(len(m.edge[key].ineq_efficiency) == 1 for key in m.edge)


def test_market_with_the_exact_method(rts):
    res = run_market(rts, "exact", time_limit_s=3.0, participation="screened")
    assert res.summary["overload_mw_after"] == pytest.approx(0.0, abs=1e-6)
    for s in res.summary["dso"].values():
        assert s["balance_eur"] >= -1e-6
        dcp = s["dcp"]
        if "exact_status" not in dcp:
            continue
        assert dcp["exact_status"] in (
            "optimal",
            "feasible",
            "budget_violated",
            "efficiency_violated",
        )
        assert dcp["exact_price_gap"] < 1e-5
        assert dcp["exact_bound_approx"] <= dcp["exact_objective_approx"] + 1e-9
        if dcp["exact_status"] == "optimal":
            assert dcp["exact_gap"] <= 1e-6
            assert dcp["feasible"] or dcp["budget_eur"] > -1.0  # AC vs the approximate model


def test_minlp_mode_ab_equals_brute_force_grid(rts, market):
    """Mode "ab" (bilinear stationarity) solved globally by SCIP vs a grid over (α, β)."""
    prob = _problem(rts, market, 1, n_members=2, hours=1, budget=False, efficiency=False)
    prob = DCPProblem(
        prob.ctx,
        prob_requirement(market, prob),
        rts.market.loss_price_eur_per_mwh,
        DCPOptions(mode="ab", budget=False, efficiency=False),
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
    """Mode "b" is mode "ab" with α ≡ 1: the MINLP optimum cannot be worse (without the
    budget, which the MILP relaxes and the MINLP does not)."""
    b = ApproxModel(_problem(rts, market, k, budget=False, efficiency=False), 16)
    ctx = b.problem.ctx
    ab = ApproxModel(
        DCPProblem(
            ctx,
            prob_requirement(market, b.problem),
            rts.market.loss_price_eur_per_mwh,
            DCPOptions(mode="ab", budget=False, efficiency=False),
        ),
        16,
    )
    _, rb = _milp(b)
    m = build_dcp_exact(ab)
    rab = solve(m, "scip_direct", time_limit=120, mip_gap=1e-7)
    assert rab.ok
    assert rab.objective <= rb.objective + 1e-6


def test_market_with_the_exact_minlp_through_scip(rts):
    res = run_market(rts, "exact", solver="scip", time_limit_s=2.0, participation="screened")
    assert res.summary["overload_mw_after"] == pytest.approx(0.0, abs=1e-6)
    models = {s["dcp"].get("exact_model") for s in res.summary["dso"].values()}
    assert models == {"MINLP (mode ab)"}
    for s in res.summary["dso"].values():
        assert s["balance_eur"] >= -1e-6
        assert s["dcp"]["exact_price_gap"] < 1e-4  # SCIP's own feasibility tolerance
    with pytest.raises(ValueError, match="solver"):
        run_market(rts, "exact", solver="cplex")


@pytest.mark.parametrize("k", [0, 2])
def test_ac_nlp_local_solution_is_consistent_with_the_ac_evaluator(rts, market, k):
    """The branch-flow NLP is the AC model: at its (local) solution the independent AC
    evaluator gives the same objective; it improves on x⁰ and the budget holds up to the
    Scholtes relaxation."""
    from flexopt.methods.exact import solve_dcp_nlp

    prob = market.outcome.dcp(market.outcome.dso_ids[k], DCPOptions(mode="ab"))
    nlp = solve_dcp_nlp(prob)
    assert nlp.ok, nlp.steps
    assert nlp.eps <= 1e-5
    assert nlp.status == "local"  # the closed-form clearing reproduces its price
    x = prob.vector(nlp.alpha, nlp.beta)[None, :]
    v = prob.values(x)
    assert v.objective[0] == pytest.approx(nlp.objective, abs=1e-5)
    assert nlp.objective < 1.0  # better than x⁰ (objective 1)
    # the NLP holds the budget at the design point (settlement rules, AC losses)
    alpha, beta = prob.factors(x)
    at = prob.deliver(alpha, beta, prob.q[None, :, None])
    assert (at.balance_eur_per_h(at.price_eur_per_mwh) > -0.01).all()  # ε-relaxed complementarity


def test_time_out_returns_the_incumbent_with_its_gap_or_a_clear_error(rts, market):
    """A time limit never fails silently: an incumbent comes back with its proven gap, or the
    market says clearly that no solution was found (which of the two depends on the machine)."""
    from flexopt.errors import FlexoptError

    prob = _problem(rts, market, 1)
    model = build_dcp_exact(ApproxModel(prob, 16), boundaries=[(0, 3), (1, 3)])
    res = solve(model, time_limit=0.05, mip_gap=1e-9)
    assert res.status in (SolveStatus.FEASIBLE, SolveStatus.NO_SOLUTION, SolveStatus.OPTIMAL)
    if res.status is SolveStatus.FEASIBLE:  # the gap may have closed just as time ran out
        assert res.bound <= res.objective + 1e-9
        assert res.gap >= 0
    if res.status is SolveStatus.NO_SOLUTION:
        assert res.objective is None
    out, message = None, ""
    try:
        out = run_market(rts, "exact", time_limit_s=0.05, mip_gap=1e-9, participation="screened")
    except FlexoptError as err:
        message = str(err)
    if out is None:
        assert "no_solution" in message
        return
    for s in out.summary["dso"].values():
        d = s["dcp"]
        if d.get("exact_solver_status") == "feasible":
            assert d["exact_gap"] >= 0
            assert d["exact_bound_approx"] <= d["exact_objective_approx"]


def test_ac_nlp_keeps_the_last_step_that_converged(rts, market, monkeypatch):
    """A homotopy step stopped by a limit (``FEASIBLE``: pyomo-ripopt 0.8.2 hits its
    iteration cap on DSO1's last step) has not converged: the result is the step before."""
    import flexopt.solve as solve_mod
    from flexopt.methods.exact import solve_dcp_nlp

    real = solve_mod.solve

    def capped_last(m, solver, **kw):
        res = real(m, solver, **kw)
        if pyo.value(m.eps) < 5e-6:  # the schedule's last step stops at a limit
            return replace(res, status=SolveStatus.FEASIBLE)
        return res

    monkeypatch.setattr(solve_mod, "solve", capped_last)
    prob = market.outcome.dcp(market.outcome.dso_ids[2], DCPOptions(mode="ab"))
    nlp = solve_dcp_nlp(prob)
    assert [s for _, s in nlp.steps] == ["optimal", "optimal", "optimal", "feasible"]
    assert nlp.eps == pytest.approx(1e-5)  # the last step that converged
    assert nlp.ok
