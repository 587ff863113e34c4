"""The DCP evaluation in one batch: the design point beside the block boundaries, repeated
power flows solved once, x⁰ kept — every number equal, bit for bit, to separate calls."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from flexopt.dso import clearing
from flexopt.dso._kernels import settle_rows
from flexopt.dso.budget import bus_injection, feeder_loss, injection_plan, saving_slack
from flexopt.dso.clearing import clear
from flexopt.dso.context import prepare
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.dso.modification import unit_factors


def _problem(rts, seed: int, **opts) -> DCPProblem:
    rng = np.random.default_rng(seed)
    dso = rts.dsos[seed % len(rts.dsos)]
    pros = dso.prosumers.copy()
    pros["b_eur_per_mwh"] = rng.uniform(20, 90, len(pros)).round(2)
    dso = replace(dso, prosumers=pros)
    ctx = prepare(replace(rts, dsos=(dso,)), dso, participation="all")
    hours = pd.Index([13, 14, 15], name="hour")
    req = pd.Series(rng.uniform(0.1, 1.0, 3) * dso.n_feeders * 0.5, index=hours)
    return DCPProblem(ctx, req, 50.0, DCPOptions(**opts), blocks=6)


def _loss(pr: DCPProblem, u: np.ndarray, p_mw: np.ndarray, q_mvar: np.ndarray) -> np.ndarray:
    """One power flow call, no grouping: the reference."""
    p = p_mw - u @ pr.incidence
    loss: np.ndarray = pr.ctx.feeder.power_flow(p, np.broadcast_to(q_mvar, p.shape)).loss_mw
    return loss


def _separately(pr: DCPProblem, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objective (C6) and constraint rows (C7, C8) as two clearings and two power flows."""
    alpha, beta = pr.factors(X)
    a_mod, b_mod = (alpha * pr.a)[:, None, :], (beta * pr.b)[:, None, :]
    cl = clear(a_mod, b_mod, pr.u_max[None], pr.q[None])
    dt, w = pr.ctx.dt_h, pr.options.weight
    f_loss = dt * _loss(pr, cl.u_mw, pr.p, pr.q_mvar).sum(-1)
    f_price = dt * (cl.price * cl.served_mw).sum(-1)
    objective = w * f_loss / pr.f_loss0 + (1 - w) * f_price / pr.f_price0
    edges = np.broadcast_to(pr.edges_mw, (len(X), *pr.edges_mw.shape))
    at = clear(a_mod[:, :, None], b_mod[:, :, None], pr.u_max[None, :, None], edges)
    u = at.u_mw
    cost = pr.a * u * u + pr.b * u
    pay = np.where(u > 1e-12, np.maximum(at.price[..., None] * u, cost), 0.0).sum(-1)
    loss = _loss(pr, u, pr.p[None, :, None], pr.q_mvar[None, :, None])
    saving = pr.loss_da[None, :, None] - loss
    balance = at.price * at.served_mw - (pay - pr.loss_price * saving)
    social = cost.sum(-1) - pr.loss_price * saving
    e = pr.social0_eur_per_h - social + saving_slack(pr.social0_eur_per_h)
    P = len(X)
    return objective, np.c_[-dt * balance.reshape(P, -1), -dt * e.reshape(P, -1)]


@pytest.mark.parametrize("seed", range(3))
def test_one_batch_equals_separate_calls(rts, seed):
    pr = _problem(rts, seed)
    assert pr.has_decisions
    rng = np.random.default_rng(seed)
    X = rng.uniform(pr.lower, pr.upper, (7, len(pr.x0)))
    X = np.r_[X, X[:2], pr.x0[None]]  # repeated individuals: repeated power flows
    ev = pr.evaluate(X)
    objective, G = _separately(pr, X)
    assert np.array_equal(ev.F[:, 0], objective)
    assert ev.G is not None
    assert np.array_equal(ev.G, G)


def test_unconstrained_evaluation_skips_the_boundaries(rts):
    pr = _problem(rts, 1, budget=False, efficiency=False)
    X = np.random.default_rng(1).uniform(pr.lower, pr.upper, (5, len(pr.x0)))
    ev = pr.evaluate(X)
    assert ev.G is None
    assert np.array_equal(ev.F[:, 0], _separately(pr, X)[0])


def test_x0_score_is_kept_and_equals_a_fresh_evaluation(rts):
    pr = _problem(rts, 0)
    unit = unit_factors(pr.n)
    kept = pr.score(unit)
    # two individuals bypass the kept x⁰ values
    fresh = pr.values_of(np.ones((2, pr.n)), np.ones((2, pr.n)))
    assert kept.objective == fresh.objective[0]
    assert kept.f_loss_mwh == fresh.f_loss_mwh[0]
    assert kept.budget_eur == fresh.budget_eur[0]
    assert kept.efficiency_eur == fresh.efficiency_eur[0]


def test_feeder_loss_solves_each_distinct_load_once(case33, monkeypatch):
    rng = np.random.default_rng(0)
    base = case33.p_base_mw * rng.uniform(0.5, 1.5, (4, case33.n_bus))
    p = base[[0, 1, 0, 2, 1, 3, 0]]
    q = np.broadcast_to(case33.q_base_mvar, p.shape)
    want = case33.power_flow(p, q).loss_mw
    solved = []
    real = type(case33).power_flow

    def counting(self, p_mw=None, q_mvar=None, **kw):
        solved.append(len(np.asarray(p_mw).reshape(-1, self.n_bus)))
        return real(self, p_mw, q_mvar, **kw)

    monkeypatch.setattr(type(case33), "power_flow", counting)
    got = feeder_loss(case33, p.reshape(7, 1, -1), q.reshape(7, 1, -1))
    assert got.shape == (7, 1)
    assert np.array_equal(got[:, 0], want)
    assert solved == [4]  # the distinct loads


def test_signed_zero_is_another_load(case33):
    p = np.tile(case33.p_base_mw, (2, 1))
    p[:, 0] = [0.0, -0.0]  # equal weighted sums, different bytes: solved apart
    q = np.broadcast_to(case33.q_base_mvar, p.shape)
    assert np.array_equal(feeder_loss(case33, p, q), case33.power_flow(p, q).loss_mw)


def _numpy_clear(monkeypatch, *args):
    """The numpy form of the clearing (the compiled one is used up to MAX_OFFERS offers)."""
    with monkeypatch.context() as m:
        m.setattr(clearing, "MAX_OFFERS", -1)
        return clearing.clear(*args)


@pytest.mark.parametrize("seed", range(4))
def test_compiled_clearing_equals_the_numpy_form_bit_for_bit(monkeypatch, seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        P, T, J = (int(v) for v in rng.integers(1, 5, 3))
        a = rng.uniform(0, 3, (P, 1, 1, n)) * (rng.random((P, 1, 1, n)) > 0.3)  # a = 0: steps
        b = np.round(rng.uniform(10, 50, (P, 1, 1, n)), int(rng.integers(0, 3)))  # ties
        umax = rng.uniform(0, 2, (1, T, 1, n)) * (rng.random((1, T, 1, n)) > 0.1)
        q = rng.uniform(-0.5, 1.2, (P, T, J)) * umax.sum(-1)
        q[..., 0] = 0.0
        q[..., -1] = umax.sum(-1)[..., 0]  # the full capacity
        got, want = clearing.clear(a, b, umax, q), _numpy_clear(monkeypatch, a, b, umax, q)
        for field in ("u_mw", "price", "served_mw", "requested_mw", "cost"):
            x, y = getattr(got, field), getattr(want, field)
            assert x.shape == y.shape
            assert x.tobytes() == np.ascontiguousarray(y).tobytes()


def test_compiled_clearing_takes_any_batch(monkeypatch):
    a, b = np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0, 15.0])
    umax = np.array([[1.0, 2.0, 0.5], [0.5, 0.5, 0.5]])
    q = np.array([[0.5, 2.0, 9.0], [-1.0, 0.25, 1.5]])
    got = clearing.clear(a, b, umax[:, None, :], q)
    want = _numpy_clear(monkeypatch, a, b, umax[:, None, :], q)
    assert np.array_equal(got.u_mw, want.u_mw)
    assert np.array_equal(got.price, want.price)
    one = clearing.clear(a, b, umax[0], 1.2)
    assert one.u_mw.shape == (3,)
    assert one.price.shape == ()


@pytest.mark.parametrize("per_bus", [1, 2, 3, 5])
def test_bus_injection_adds_each_bus_in_prosumer_order(per_bus):
    rng = np.random.default_rng(per_bus)
    n, n_bus = 12, 14
    bus = rng.permutation(n_bus)[np.arange(n) // per_bus]  # per_bus prosumers at each bus
    incidence = np.zeros((n, n_bus))
    incidence[np.arange(n), bus] = 1.0
    plan = injection_plan(incidence)
    assert not plan.product
    assert len(plan.who) == min(per_bus, n)
    u = rng.uniform(0, 1, (4, 3, n))
    ref = np.zeros((4, 3, n_bus))
    for i in range(n):  # the first at a bus written, the next ones added
        ref[..., bus[i]] = u[..., i] + (ref[..., bus[i]] if (bus[:i] == bus[i]).any() else 0)
    assert bus_injection(u, incidence, plan).tobytes() == ref.tobytes()
    assert bus_injection(u, incidence).tobytes() == ref.tobytes()
    np.testing.assert_allclose(bus_injection(u, incidence), u @ incidence, rtol=1e-15, atol=0)
    if per_bus <= 2:  # at most two terms: the matrix product's very numbers
        assert np.array_equal(bus_injection(u, incidence), u @ incidence)
    weighted = incidence * 0.5  # not one bus with weight 1: the product
    assert injection_plan(weighted).product
    assert np.array_equal(bus_injection(u, weighted), u @ weighted)


def test_compiled_payments_equal_the_numpy_sums():
    rng = np.random.default_rng(7)
    for n in (1, 7, 8, 10, 50, 128):
        u = rng.uniform(0, 1, (30, n)) * (rng.random((30, n)) > 0.3)  # undispatched ones
        u[0, 0] = 1e-13  # below the dispatch threshold
        price = rng.uniform(-5, 80, 30)
        a, b = rng.uniform(0, 3, n), rng.uniform(0, 60, n)
        cost = a * u * u + b * u
        pay = np.where(u > 1e-12, np.maximum(price[:, None] * u, cost), 0.0).sum(-1)
        got_pay, got_cost = settle_rows(u, price, a, b)
        assert got_pay.tobytes() == pay.tobytes()
        assert got_cost.tobytes() == cost.sum(-1).tobytes()


@pytest.mark.parametrize("seed", range(3))
def test_clearing_of_similar_markets_equals_the_numpy_form(monkeypatch, seed):
    """Markets in a row that differ a little (a population's individuals): the compiled sort
    starts from the last market's order — ties, steps and equal breakpoints included."""
    rng = np.random.default_rng(seed)
    n, M = 40, 60
    a = rng.uniform(0, 2, n) * (rng.random(n) > 0.2)
    b = np.round(rng.uniform(10, 50, n), 0)  # many ties
    scale = 1 + 0.02 * rng.standard_normal((M, n)) * (rng.random((M, n)) > 0.7)
    a_m, b_m = a * scale, np.where(rng.random((M, n)) > 0.9, b + 1.0, b)
    umax = rng.uniform(0, 1, (M, n)) * (rng.random((M, n)) > 0.1)
    umax[1::2] = umax[::2]  # pairs of equal markets: nothing to move
    q = rng.uniform(-0.2, 1.1, (M, 3)) * umax.sum(-1, keepdims=True)
    args = (a_m[:, None, :], b_m[:, None, :], umax[:, None, :], q[:, None, :])
    got, want = clearing.clear(*args), _numpy_clear(monkeypatch, *args)
    for field in ("u_mw", "price", "served_mw", "cost"):
        assert getattr(got, field).tobytes() == np.ascontiguousarray(getattr(want, field)).tobytes()


def test_first_equal_rows_of_two_widths():
    """The grouping of repeated rows takes ``p`` and ``q`` of different widths (the compiled
    evaluation groups dispatches, ``[E, n]``, with their hour's load class, ``[E, 1]``)."""
    from flexopt.dso._kernels import _first_equal

    rng = np.random.default_rng(3)
    u = np.round(rng.uniform(0, 1, (40, 6)), 1)
    u[20:] = u[:20]
    cls = np.repeat([[0.0], [1.0]], 20, axis=0)
    cls[25] = 0.0  # the 6th row of the second half: the same class as its first copy
    key = np.sqrt(np.arange(2.0, 9.0))
    first = _first_equal(key, u, cls, u.view(np.int64), cls.view(np.int64))
    want = [
        next(k for k in range(i + 1) if (u[k] == u[i]).all() and cls[k, 0] == cls[i, 0])
        for i in range(40)
    ]
    assert first.tolist() == want
    assert first[25] == 5
    assert first[24] == 24
