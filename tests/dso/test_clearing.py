"""Local clearing: closed form = Pyomo QP (HiGHS), KKT, merit order, aggregation integral."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from flexopt.dso import aggregate_blocks, aggregated_cost, clear, flexibility_capacity
from flexopt.market.local import LocalMarketData, build_local_clearing, read_local_clearing
from flexopt.solve import SolveStatus, solve


def _kkt_ok(a, b, umax, u, lam, q, tol=1e-9):
    """Stationarity 2a u + b − λ − ν⁻ + ν⁺ = 0 with ν ≥ 0 on the active bounds, and Σu = q."""
    g = 2 * a * u + b - lam
    interior = (u > tol) & (u < umax - tol)
    at_zero = u <= tol
    at_max = u >= umax - tol
    ok = np.abs(np.sum(u) - q) < 1e-9
    ok &= np.all(np.abs(g[interior & (a > 0)]) < 1e-7)
    ok &= np.all(g[at_zero & ~at_max] >= -1e-7)  # would not want more at price λ
    ok &= np.all(g[at_max & ~at_zero] <= 1e-7)  # would want more than its capacity
    return bool(ok)


def test_hand_case():
    # u1 = (λ−10)/2, u2 = (λ−12)/4, u1 + u2 = 4 → 0.75 λ = 12 → λ = 16, u = (3, 1)
    r = clear([1.0, 2.0], [10.0, 12.0], [5.0, 5.0], 4.0)
    np.testing.assert_allclose(r.u_mw, [3.0, 1.0])
    assert r.price == pytest.approx(16.0)
    assert r.cost == pytest.approx(1 * 9 + 30 + 2 * 1 + 12)


def test_merit_order_when_quadratic_coefficient_is_zero():
    r = clear([0.0, 0.0, 0.0], [30.0, 10.0, 20.0], [1.0, 2.0, 3.0], 4.0)
    np.testing.assert_allclose(r.u_mw, [0.0, 2.0, 2.0])  # cheapest full, marginal partial
    assert r.price == 20.0
    mixed = clear([0.0, 1.0], [10.0, 5.0], [2.0, 10.0], 3.0)  # step unit marginal at λ = 10
    np.testing.assert_allclose(mixed.u_mw, [0.5, 2.5])
    assert mixed.price == 10.0


def test_edges_zero_and_beyond_capacity():
    r = clear([1.0, 2.0], [10.0, 12.0], [5.0, 5.0], [0.0, 20.0])
    np.testing.assert_allclose(r.u_mw[0], 0.0)
    assert r.price[0] == 10.0  # the first MW's price
    np.testing.assert_allclose(r.u_mw[1], [5.0, 5.0])
    assert r.served_mw[1] == 10.0
    assert r.shortfall_mw[1] == 10.0
    assert r.price[1] == pytest.approx(max(10 + 2 * 5, 12 + 4 * 5))


@settings(max_examples=60, deadline=None)
@given(
    a=arrays(np.float64, 6, elements=st.sampled_from([0.0, 0.5, 3.0, 40.0, 250.0])),
    b=arrays(np.float64, 6, elements=st.floats(20.0, 90.0)),
    umax=arrays(np.float64, 6, elements=st.floats(0.0, 0.2)),
    share=st.floats(0.0, 1.0),
)
def test_kkt_holds(a, b, umax, share):
    q = share * umax.sum()
    r = clear(a, b, umax, q)
    assert np.all(r.u_mw >= -1e-12)
    assert np.all(r.u_mw <= umax + 1e-12)
    assert _kkt_ok(a, b, umax, r.u_mw, float(r.price), q)


def test_closed_form_equals_highs_qp():
    rng = np.random.default_rng(5)
    n, hours = 7, [1, 2, 3, 4]
    a = pd.Series(rng.uniform(20, 300, n), index=[f"p{i}" for i in range(n)])
    a.iloc[2] = 0.0  # a linear offer among quadratic ones
    b = pd.Series(rng.uniform(40, 80, n), index=a.index)
    umax = pd.DataFrame(rng.uniform(0.02, 0.15, (len(hours), n)), index=hours, columns=a.index)
    q = pd.Series(umax.sum(axis=1).to_numpy() * [0.1, 0.4, 0.75, 0.99], index=hours)
    m = build_local_clearing(LocalMarketData(a, b, umax, q))
    res = solve(
        m, options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
    )
    assert res.status is SolveStatus.OPTIMAL
    u_qp, price_qp = read_local_clearing(m, res.duals)
    closed = clear(a.to_numpy(), b.to_numpy(), umax.to_numpy(), q.to_numpy())
    np.testing.assert_allclose(closed.u_mw, u_qp.to_numpy(), atol=1e-8)
    np.testing.assert_allclose(closed.price, price_qp.to_numpy(), atol=1e-6)
    assert closed.cost.sum() == pytest.approx(res.objective, rel=1e-9)


def test_batched_population_by_hours():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 100, (50, 1, 5))  # population × 1 × prosumers (modified coefficients)
    b = rng.uniform(30, 90, (50, 1, 5))
    umax = rng.uniform(0, 0.1, (1, 24, 5))  # hours × prosumers
    q = umax.sum(-1) * 0.6
    batch = clear(a, b, umax, q)
    assert batch.u_mw.shape == (50, 24, 5)
    for p, t in [(0, 0), (17, 5), (49, 23)]:
        one = clear(a[p, 0], b[p, 0], umax[0, t], q[0, t])
        np.testing.assert_allclose(batch.u_mw[p, t], one.u_mw, atol=1e-12)
        assert batch.price[p, t] == pytest.approx(one.price)


def test_blocks_are_priced_at_the_marginal_cost_of_their_upper_end():
    """(M8) π_k = λ(Q_k): non-decreasing, and at any quantity F inside block k the block's
    price covers the local uniform price λ(F), so π_k F covers the uniform payment."""
    a, b, umax = (
        np.array([80.0, 0.0, 150.0, 30.0]),
        np.array([50.0, 55.0, 42.0, 70.0]),
        np.array([0.1, 0.05, 0.08, 0.12]),
    )
    bid = aggregate_blocks(a, b, umax, blocks=10)
    assert bid.q_mw.sum() == pytest.approx(umax.sum())
    assert np.all(np.diff(bid.price_eur_per_mwh) >= 0)
    edges = np.cumsum(bid.q_mw)
    np.testing.assert_allclose(bid.price_eur_per_mwh, clear(a, b, umax, edges).price)
    # the last block: the marginal cost at full output, max_i (b_i + 2 a_i Ū_i)
    assert bid.price_eur_per_mwh[-1] == pytest.approx(max(b + 2 * a * umax))
    rng = np.random.default_rng(3)
    f = rng.uniform(0, umax.sum(), 200)
    k = np.searchsorted(edges, f - 1e-15)
    assert (bid.price_eur_per_mwh[k] >= clear(a, b, umax, f).price - 1e-12).all()
    # the bid's revenue at each boundary covers the aggregated cost (M7) there
    revenue = np.cumsum(bid.q_mw * bid.price_eur_per_mwh)
    assert (revenue >= aggregated_cost(a, b, umax, edges) - 1e-12).all()
    tripled = bid.scaled(3)
    np.testing.assert_allclose(tripled.q_mw, 3 * bid.q_mw)


def test_flexibility_capacity_power_and_energy_limits():
    pros = pd.DataFrame(
        {
            "p_max_mw": [0.1, 0.1],
            "e_max_mwh": [0.4, 0.1],
            "soc_init_pu": [0.5, 0.5],
            "efficiency": [1.0, 0.9],
        },
        index=["x", "y"],
    )
    hours = pd.RangeIndex(1, 5, name="hour")
    base = pd.DataFrame({"x": [0.0, 0.05, 0.0, 0.0], "y": [0.0, 0.0, 0.0, 0.0]}, index=hours)
    req = pd.Series([0.0, 1.0, 1.0, 0.0], index=hours)
    cap = flexibility_capacity(pros, base, req, dt_h=1.0)
    # x: 0.2 MWh at the start of hour 2, 0.15 after it → spare 0.15 MWh, 0.075 per hour;
    # hour 2 is power-limited (0.05) and what its cap leaves goes to hour 3 (0.1, its power)
    np.testing.assert_allclose(cap["x"].to_numpy(), [0.0, 0.05, 0.1, 0.0])
    # y: 0.05 MWh spare, 0.025 per hour, η = 0.9 → 0.0225 MW
    np.testing.assert_allclose(cap["y"].to_numpy(), [0.0, 0.0225, 0.0225, 0.0])


def test_no_offers_is_an_empty_market():
    r = clear(np.zeros((3, 0)), np.zeros((3, 0)), np.zeros((3, 0)), [0.0, 1.0, 2.0])
    assert r.u_mw.shape == (3, 0)
    np.testing.assert_array_equal(r.served_mw, 0.0)
    np.testing.assert_array_equal(r.shortfall_mw, [0.0, 1.0, 2.0])
    bid = aggregate_blocks(np.zeros(0), np.zeros(0), np.zeros(0), blocks=4)
    np.testing.assert_array_equal(bid.q_mw, 0.0)
    np.testing.assert_array_equal(bid.price_eur_per_mwh, 0.0)


def test_capacity_split_moves_energy_to_the_hours_the_requirement_needs():
    """(M3) with a target: y can only give in hour 1 (its baseline fills hour 2), so x must
    put its energy into hour 2; the proportional split leaves hour 2 short of 0.08 MW, the
    fitted split meets both hours."""
    pros = pd.DataFrame(
        {
            "p_max_mw": [0.1, 0.05],
            "e_max_mwh": [0.2, 0.2],
            "soc_init_pu": [0.5, 0.5],
            "efficiency": [1.0, 1.0],
        },
        index=["x", "y"],
    )
    hours = pd.RangeIndex(1, 3, name="hour")
    base = pd.DataFrame({"x": [0.0, 0.0], "y": [0.0, 0.05]}, index=hours)
    target = pd.Series([0.05, 0.08], index=hours)
    plain = flexibility_capacity(pros, base, target, dt_h=1.0)
    assert plain.sum(axis=1).iloc[1] < 0.08 - 1e-3  # the proportional split falls short
    fitted = flexibility_capacity(pros, base, target, dt_h=1.0, target_mw=target)
    assert (fitted.sum(axis=1).to_numpy() >= target.to_numpy() - 1e-9).all()
    assert fitted["x"].sum() == pytest.approx(0.1)  # x's spare energy, all of it
