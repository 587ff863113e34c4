"""The DSO never loses money in the settlement (models/dcp.md C7, C7a–C7b): whatever
factors a method picks and whatever quantity the TSO accepts at no less than the accepted
blocks' prices, the settled balance is non-negative."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from flexopt.dso.aggregation import aggregate_blocks
from flexopt.dso.budget import break_even_prices, breakpoint_quantities, deliver
from flexopt.dso.clearing import clear
from flexopt.dso.context import prepare
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.dso.modification import Factors
from flexopt.dso.offer import Modification, build_offer
from flexopt.dso.settlement import dispatch
from flexopt.grid import Feeder
from flexopt.methods import get_method
from flexopt.methods.wca import WCAConfig


def _random_dso(rts, seed: int):
    """A bundled DSO with random offers (b 20–90 €/MWh, a up to 60 % markup at Ū) and a
    random requirement in the three congested hours."""
    rng = np.random.default_rng(seed)
    dso = rts.dsos[seed % len(rts.dsos)]
    pros = dso.prosumers.copy()
    pros["b_eur_per_mwh"] = rng.uniform(20, 90, len(pros)).round(2)
    pros["a_eur_per_mw2h"] = (
        rng.uniform(0.0, 0.6, len(pros)) * pros["b_eur_per_mwh"] / pros["p_max_mw"]
    ).round(2)
    dso = replace(dso, prosumers=pros)
    inst = replace(rts, dsos=(dso,))
    ctx = prepare(inst, dso, participation="all" if seed % 2 else "screened")
    hours = pd.Index([13, 14, 15], name="hour")
    req = pd.Series(rng.uniform(0.1, 1.0, 3) * dso.n_feeders * 0.5, index=hours)
    return ctx, req, rng


def _offers(ctx, req, rng, lp):
    problem = DCPProblem(ctx, req, lp, DCPOptions(), blocks=int(rng.integers(2, 12)))
    yield "random", build_offer(problem, "random", _random_factors(problem, rng))
    for name in ("none", "mlf", "wca"):
        method = get_method(name)
        config = WCAConfig(wca_iter=25) if name == "wca" else None
        yield name, build_offer(problem, name, method.modify(problem, config, rng))


def _random_factors(problem: DCPProblem, rng) -> Modification:
    """Any factors at all, budget or not: the bid's floor (C7b) must protect the DSO."""
    x = rng.uniform(problem.lower, problem.upper)
    alpha, beta = problem.factors(x[None, :])
    return Modification(Factors(alpha[0], beta[0]))


@pytest.mark.parametrize("seed", range(8))
def test_no_settled_balance_is_negative_at_random_accepted_quantities(rts, seed):
    ctx, req, rng = _random_dso(rts, seed)
    lp = rts.market.loss_price_eur_per_mwh
    for name, offer in _offers(ctx, req, rng, lp):
        bid = offer.bid
        edges = bid.q_mw.cumsum(axis=1)
        for _ in range(6):
            # a random quantity per hour; the TSO pays the price of the last accepted block
            # (the least it pays under either pricing rule)
            f = rng.uniform(0.0, 1.0, len(edges)) * edges.iloc[:, -1].to_numpy()
            k = np.array(
                [np.searchsorted(edges.iloc[t].to_numpy(), f[t] - 1e-12) for t in range(len(f))]
            )
            k = np.minimum(k, edges.shape[1] - 1)
            price = bid.price_eur_per_mwh.to_numpy()[np.arange(len(f)), k]
            out = dispatch(
                ctx,
                offer,
                pd.Series(f, index=edges.index),
                pd.Series(price, index=edges.index),
                lp,
            )
            balance = out.settlement["balance_eur"]
            assert (balance >= -1e-7).all(), (name, f, balance.to_numpy())


def test_the_floor_covers_the_price_jump_above_a_flat_supply_curve():
    """Where every dispatched prosumer is full and the next has not started, the local price
    jumps just above that quantity on the same dispatch: the floor must use the right-hand
    limit (found by an independent review: without it the DSO lost 0.97 €/h at F = 2.01)."""
    feeder = Feeder.from_branches([0, 1], [1, 2], [0.1, 0.1], [0.1, 0.1], vn_kv=10.0, root=0)
    a, b = np.ones(3), np.array([0.0, 30.0, 20.0])
    b_mod, umax = b * np.array([1.0, 0.5, 1.0]), np.ones(3)
    incidence = np.zeros((3, 3))
    incidence[:, 2] = 1.0
    grid = {"feeder": feeder, "incidence": incidence, "loss_price_eur_per_mwh": 0.0}
    floor = break_even_prices(
        a,
        b_mod,
        a,
        b,
        umax[None, :],
        3,
        p_mw=np.zeros((1, 3)),
        q_mvar=np.zeros((1, 3)),
        loss_da_mw=np.zeros(1),
        **grid,
    )[0]
    bid = aggregate_blocks(a, b_mod, umax, 3)
    price = np.maximum.accumulate(np.maximum(bid.price_eur_per_mwh, floor))
    assert price[2] == pytest.approx(25.5)  # the jump from 20 to 30 at F = 2, u = (1, 1, 0)
    f = np.linspace(1e-3, 3.0, 3001)
    k = np.minimum(np.searchsorted(np.cumsum(bid.q_mw), f - 1e-12), 2)
    at = deliver(
        a, b_mod, a, b, umax, f, p_mw=np.zeros(3), q_mvar=np.zeros(3), loss_da_mw=0.0, **grid
    )
    assert (at.balance_eur_per_h(price[k]) >= -1e-9).all()


def test_the_breakpoints_are_where_the_clearing_bends():
    """Between consecutive breakpoint quantities the price is affine in Q (C7a)."""
    rng = np.random.default_rng(0)
    a, b, umax = rng.uniform(10, 300, 6), rng.uniform(30, 90, 6), rng.uniform(0.05, 0.2, 6)
    kinks = np.unique(np.clip(breakpoint_quantities(a, b, umax), 0, umax.sum()))
    for lo, hi in itertools.pairwise(kinks):
        if hi - lo < 1e-9:
            continue
        q = np.linspace(lo, hi, 7)
        lam = clear(a, b, umax, q).price
        np.testing.assert_allclose(np.diff(lam, 2), 0.0, atol=1e-9)


def test_settlement_and_delivery_agree(rts):
    """The budget's delivery (C7a) is the settlement of S8 (M12) at the same quantity."""
    ctx, req, rng = _random_dso(rts, 3)
    lp = rts.market.loss_price_eur_per_mwh
    problem = DCPProblem(ctx, req, lp, DCPOptions())
    offer = build_offer(problem, "random", _random_factors(problem, rng))
    f = 0.7 * offer.bid.q_mw.sum(axis=1)
    price = pd.Series(77.0, index=f.index)
    settled = dispatch(ctx, offer, f, price, lp).settlement.set_index("hour")
    n = ctx.dso.n_feeders
    rows = ctx.hours.get_indexer(f.index)
    at = deliver(
        offer.a_mod,
        offer.b_mod,
        problem.a,
        problem.b,
        offer.u_max_mw.to_numpy(),
        f.to_numpy() / n,
        feeder=ctx.feeder,
        p_mw=ctx.p_mw[rows],
        q_mvar=ctx.q_mvar[rows],
        incidence=problem.incidence,
        loss_da_mw=ctx.loss_mw[rows],
        loss_price_eur_per_mwh=lp,
    )
    np.testing.assert_allclose(
        settled["balance_eur"].to_numpy(), n * at.balance_eur_per_h(np.full(3, 77.0)), rtol=1e-9
    )
