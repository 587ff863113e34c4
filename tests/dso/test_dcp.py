"""The DCP evaluator against a slow per-individual reference (Pyomo/HiGHS + pandapower runpp)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest

from flexopt.dso.context import declaration, declared_capacity
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.market.local import LocalMarketData, build_local_clearing, read_local_clearing
from flexopt.run.api import run_market
from flexopt.solve import solve


@pytest.fixture(scope="module")
def market(rts):
    return run_market(rts, "none")


def _problem(rts, market, k: int, **opts) -> DCPProblem:
    ctx = market.outcome.contexts[k]
    req = market.tables["requirement"]
    r = req[req["dso_id"] == ctx.dso.id].set_index("hour")["requirement_mw"]
    return DCPProblem(ctx, r, rts.market.loss_price_eur_per_mwh, DCPOptions(**opts))


def _reference(problem: DCPProblem, x: np.ndarray) -> tuple[float, float]:
    """One individual, the slow way: HiGHS QP per hour, pandapower Newton–Raphson per hour."""
    ctx = problem.ctx
    alpha, beta = problem.factors(x[None, :])
    members = ctx.members
    a = pd.Series(alpha[0] * problem.a, index=members.index)
    b = pd.Series(beta[0] * problem.b, index=members.index)
    u_max = pd.DataFrame(problem.u_max, index=problem.hours, columns=members.index)
    q = pd.Series(problem.q, index=problem.hours)
    m = build_local_clearing(LocalMarketData(a, b, u_max, q, ctx.dt_h))
    res = solve(
        m, options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
    )
    u, price = read_local_clearing(m, res.duals)
    f_loss = f_price = 0.0
    for t in problem.hours:
        net = pn.case33bw()  # the bundled feeder is pandapower's case33bw (instances/README.md)
        row = ctx.hours.get_loc(t)
        p = pd.Series(ctx.p_mw[row].copy(), index=ctx.feeder.bus)
        p.loc[members["bus"].to_numpy()] -= u.loc[t].to_numpy()
        qv = pd.Series(ctx.q_mvar[row], index=ctx.feeder.bus)
        net.load["p_mw"] = p.loc[net.load.bus].to_numpy()
        net.load["q_mvar"] = qv.loc[net.load.bus].to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.runpp(net, tolerance_mva=1e-11)
        f_loss += ctx.dt_h * net.res_line.pl_mw.sum()
        f_price += ctx.dt_h * price.loc[t] * q.loc[t]
    n = ctx.dso.n_feeders
    return n * f_loss, n * f_price


@pytest.mark.parametrize(("k", "mode"), [(0, "ab"), (1, "b")])
def test_evaluator_equals_slow_reference(rts, market, k, mode):
    prob = _problem(rts, market, k, mode=mode)
    X = np.random.default_rng(k).uniform(0.5, 1.5, (4, prob.n_var))
    v = prob.values(X)
    for i, x in enumerate(X):
        f_loss, f_price = _reference(prob, x)
        assert v.f_loss_mwh[i] == pytest.approx(f_loss, rel=1e-7)
        assert v.f_price_eur[i] == pytest.approx(f_price, rel=1e-6)


def test_objective_is_normalized_at_x0_and_budget_feasible(rts, market):
    prob = _problem(rts, market, 0)
    v = prob.values(prob.x0[None, :])
    assert v.objective[0] == pytest.approx(1.0)
    assert v.budget_eur[0] >= 0  # uniform price ≥ average cost: x⁰ always balances


def test_without_budget_the_price_objective_runs_to_the_degenerate_corner(rts):
    """models/dcp.md (C7): without (C7) the price objective is minimized at the all-lower-bound
    corner; when every offering prosumer is screened (participation "screened") its dispatch
    equals x⁰'s (scaling every offer by 0.5 leaves the argmin unchanged). (C8) off too: a
    random population seldom meets its feasible set (the method starts from x⁰ for that)."""
    from flexopt.optim import WCA, minimize

    screened = run_market(rts, "none", participation="screened")
    prob = _problem(rts, screened, 1, budget=False, efficiency=False, weight=0.0)
    corner = prob.values(prob.lower[None, :])
    x0 = prob.values(prob.x0[None, :])
    np.testing.assert_allclose(corner.u_mw, x0.u_mw, atol=1e-12)
    assert corner.objective[0] == pytest.approx(0.5)  # every price halves
    res = minimize(prob, WCA(), max_iter=200, seed=0)
    # the search runs to it (within 1e-3: some α move the price little once β is at its bound)
    assert res.f == pytest.approx(corner.objective[0], abs=1e-3)
    assert corner.budget_eur[0] < 0  # and the DSO could not pay its prosumers' costs


def test_x0_holds_the_efficiency_exactly(rts, market):
    """(C8) compares the factors' social cost with the unmodified offers': zero at x⁰."""
    prob = _problem(rts, market, 0)
    v = prob.values(prob.x0[None, :])
    np.testing.assert_allclose(v.saving_eur, 0.0, atol=1e-9)
    assert prob.evaluate(prob.x0[None, :]).violation[0] == 0.0
    assert prob.n_constr == 2 * len(prob.hours) * prob.blocks  # (C7) and (C8) rows


def test_efficiency_lets_a_transfer_through_and_stops_a_dearer_dispatch(rts, market):
    """(C8): scaling every offer by one factor keeps the dispatch (a pure transfer: saving 0
    at every boundary); at the last boundary everyone runs at capacity whatever the factors;
    a factor that puts a dear prosumer ahead of the cheap ones makes the delivery dearer."""
    ctx = market.outcome.contexts[0]
    req = market.tables["requirement"]
    r = req[req["dso_id"] == ctx.dso.id].set_index("hour")["requirement_mw"]
    part = ctx.participants.copy()
    part["screened"] = part["offers"]  # every offering prosumer's factors are free
    prob = DCPProblem(
        replace(ctx, participants=part),
        r,
        rts.market.loss_price_eur_per_mwh,
        DCPOptions(mode="ab", budget=False),
    )
    same = prob.boundary_saving(np.full((1, prob.n_var), 0.7))
    np.testing.assert_allclose(same, 0.0, atol=1e-9 * np.abs(prob.social0_eur_per_h).max())
    rng = np.random.default_rng(3)
    X = rng.uniform(0.5, 1.5, (32, prob.n_var))
    e = prob.boundary_saving(X)
    np.testing.assert_allclose(e[..., -1], 0.0, atol=1e-6)  # Q = Σ Ū: the same dispatch
    # the dearest prosumer at marginal cost b/2, the others doubled: off the merit order
    b = prob.b
    beta = np.where(np.arange(prob.n) == np.argmax(b), 0.5, 1.5)
    x = prob.vector(np.ones(prob.n), beta)[None, :]
    assert prob.boundary_saving(x).min() < -1.0  # € per hour and copy
    assert prob.evaluate(x).violation[0] > 0
    off = DCPProblem(
        prob.ctx, r, prob.loss_price, DCPOptions(mode="ab", budget=False, efficiency=False)
    )
    assert off.n_constr == 0
    assert off.evaluate(x).violation[0] == 0


def test_wca_holds_budget_and_efficiency_in_the_market(rts):
    """The method starts from x⁰ (feasible for C7 and C8) and keeps a feasible point."""
    res = run_market(rts, "wca", seed=0, wca_iter=60)
    for s in res.summary["dso"].values():
        assert s["dcp"]["feasible"]
        assert s["dcp"]["efficiency_eur"] >= -1e-6
        assert s["dcp"]["budget_eur"] >= 0


def test_pay_as_bid_price_rule(rts, market):
    prob = _problem(rts, market, 0, price="pay_as_bid")
    uniform = _problem(rts, market, 0)
    x = prob.x0[None, :]
    assert (
        prob.values(x).f_price_eur[0] < uniform.values(x).f_price_eur[0]
    )  # convex costs: paid below margin


def test_wca_never_worse_than_the_baselines(rts):
    res = {m: run_market(rts, m, seed=0) for m in ("none", "mlf")}
    res["wca"] = run_market(rts, "wca", seed=0, wca_iter=120)
    for d, s in res["wca"].summary["dso"].items():
        wca = s["dcp"]
        assert wca["feasible"]
        assert wca["objective"] <= res["none"].summary["dso"][d]["dcp"]["objective"] + 1e-12
        mlf = res["mlf"].summary["dso"][d]["dcp"]
        if mlf["feasible"]:
            assert wca["objective"] <= mlf["objective"] + 1e-12
    assert res["wca"].summary["overload_mw_after"] == pytest.approx(0.0, abs=1e-6)
    again = run_market(rts, "wca", seed=0, wca_iter=120)
    assert again.summary["dso"] == res["wca"].summary["dso"]  # same seed, same numbers


def test_declared_capacity_matches_flexibility(rts, market):
    ctx = market.outcome.contexts[0]
    hours = market.outcome.hours
    cap = declared_capacity(ctx, hours)
    assert (cap > 0).all()


@pytest.fixture(scope="module")
def many_members(tmp_path_factory):
    """Contexts with 40 prosumers a feeder: sums over more than eight members round
    differently row-major and column-major."""
    from flexopt.dso.context import prepare
    from flexopt.generate import generate
    from flexopt.instance import load_instance

    inst = load_instance(generate("case30", 2, "case33bw", 40, 0, tmp_path_factory.mktemp("g")))
    return [prepare(inst, d) for d in inst.dsos]


@pytest.mark.parametrize("which", ["rts", "many"])
def test_declaration_is_m10_on_the_members_frames(which, market, many_members):
    """The declaration on arrays equals M10 and M10a written on the members' frames, bit for
    bit, for every DSO and for several first hours (S3 then clears the same requirement)."""
    contexts = market.outcome.contexts if which == "rts" else many_members
    for ctx in contexts:
        members = ctx.members
        base = ctx.dso.baseline_mw[members.index]
        for first in (0, 5, 17):
            hours = pd.Index(ctx.hours[first : first + 3], name="hour")
            eta = members["efficiency"].to_numpy()
            e0 = (members["soc_init_pu"] * members["e_max_mwh"]).to_numpy()
            p = base.to_numpy()
            level = e0 - np.cumsum(np.where(p > 0, p / eta, p * eta) * ctx.dt_h, axis=0)  # M1
            levels = np.vstack([e0[None, :], level])
            spare = eta * np.clip(levels[first:].min(axis=0), 0.0, None)  # M2
            power = (members["p_max_mw"].to_numpy() - base.loc[hours].to_numpy()).clip(0.0)
            cap = ctx.dso.n_feeders * np.minimum(power, spare[None, :] / ctx.dt_h).sum(axis=1)
            got_cap, got_energy = declaration(ctx, hours)
            assert np.array_equal(got_cap.to_numpy(), cap)
            assert got_cap.index.equals(hours)
            assert got_energy == float(ctx.dso.n_feeders * spare.sum())
    assert len(contexts[0].members) > 8 or which == "rts"
    assert declaration(ctx, hours[:0])[1] == 0.0


def test_pareto_mode_picks_a_feasible_compromise_on_its_front(rts):
    res = run_market(rts, "wca", pareto=True, wca_iter=80, seed=0)
    assert res.summary["overload_mw_after"] == pytest.approx(0.0, abs=1e-6)
    for offer in res.outcome.offers:
        mod = offer.modification
        if mod.pareto_f is None:
            continue
        assert offer.score.feasible
        assert any(np.allclose(mod.pareto_pick, row) for row in mod.pareto_f)
