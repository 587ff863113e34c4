"""The least-payment supporting multipliers (``models/tso_market.md`` K5a–K5c): the sign
convention against HiGHS's own duals, the nonlinear path, held and saturated variables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest

import flexopt as fx
from flexopt.market.centralized import (
    CentralizedData,
    DistributionArea,
    build_centralized,
    build_centralized_pricing,
    read_centralized,
)
from flexopt.market.lp import LinearProgram, csr
from flexopt.market.pricing import (
    build_supporting_prices,
    read_supporting_duals,
    supporting_prices_lp,
)
from flexopt.solve import SolveStatus, solve, solve_lp


def _tiny_lp() -> pyo.ConcreteModel:
    """min 2x + 3y + z  s.t.  x + y ≥ 4 [c1], x ≤ 3 [c2], x + z + 1 = 6 [c3], x, y, z ≥ 0.
    Optimum x = 3, y = 1, z = 2, all off their bounds, so with λ = ∂f/∂rhs stationarity
    reads 3 = λ₁ (y), 1 = λ₃ (z), 2 = λ₁ + λ₂ + λ₃ (x): λ = (3, −2, 1), unique — one more
    unit on c2's right-hand side saves 2."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(domain=pyo.NonNegativeReals)
    m.y = pyo.Var(domain=pyo.NonNegativeReals)
    m.z = pyo.Var(domain=pyo.NonNegativeReals)
    m.c1 = pyo.Constraint(expr=m.x + m.y >= 4)
    m.c2 = pyo.Constraint(expr=m.x <= 3)
    m.c3 = pyo.Constraint(expr=m.x + m.z + 1 == 6)
    m.obj = pyo.Objective(expr=2 * m.x + 3 * m.y + m.z)
    return m


def test_multipliers_reproduce_highs_duals_where_unique():
    m = _tiny_lp()
    r = solve(m)
    assert r.status is SolveStatus.OPTIMAL
    assert [pyo.value(v) for v in (m.x, m.y, m.z)] == pytest.approx([3.0, 1.0, 2.0])
    # the hand-derived ∂objective/∂rhs, and HiGHS agrees (the convention of SolveResult.duals)
    want = {m.c1: 3.0, m.c2: -2.0, m.c3: 1.0}
    for c, v in want.items():
        assert r.duals[c] == pytest.approx(v, abs=1e-9)
    lp = build_supporting_prices(m, {m.c1: 1.0})
    assert solve(lp.model).status is SolveStatus.OPTIMAL
    got = read_supporting_duals(lp)
    for c, v in want.items():
        assert got[c] == pytest.approx(v, abs=1e-4)


def test_inactive_constraint_reads_zero_and_sign_follows_the_active_side():
    """x ≥ 1 [lo] binds, x ≤ 5 [hi] does not: λ_lo = ∂f/∂rhs = +1 (raising the floor costs),
    λ_hi = 0."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var()
    m.lo = pyo.Constraint(expr=m.x >= 1)
    m.hi = pyo.Constraint(expr=m.x <= 5)
    m.obj = pyo.Objective(expr=m.x)
    assert solve(m).ok
    lp = build_supporting_prices(m, {})
    assert lp.column[1] is None  # inactive: no multiplier
    assert solve(lp.model).ok
    got = read_supporting_duals(lp)
    assert got[m.lo] == pytest.approx(1.0, abs=1e-4)
    assert got[m.hi] == 0.0


def test_nonlinear_constraint_by_reverse_differentiation():
    """min x + y on the disc x² + y² ≤ 2: optimum (−1, −1), f*(r) = −√(2r), so
    ∂f/∂r = −1/2 at r = 2 (no solver needed: the point is set by hand)."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=-1.0)
    m.y = pyo.Var(initialize=-1.0)
    m.disc = pyo.Constraint(expr=m.x**2 + m.y**2 <= 2)
    m.obj = pyo.Objective(expr=m.x + m.y)
    lp = build_supporting_prices(m, {m.disc: 1.0})
    assert solve(lp.model).ok
    assert read_supporting_duals(lp)[m.disc] == pytest.approx(-0.5, abs=1e-4)


def test_quadratic_objective():
    """min x² + 5z s.t. x + z ≥ 2 [c], x ≤ 1 [cap], z ≥ 0: x = 1, z = 1. z interior pins
    λ_c = 5, then x: 2x = λ_c + λ_cap → λ_cap = −3 (the QP's duals are unique)."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var()
    m.z = pyo.Var(domain=pyo.NonNegativeReals)
    m.c = pyo.Constraint(expr=m.x + m.z >= 2)
    m.cap = pyo.Constraint(expr=m.x <= 1)
    m.obj = pyo.Objective(expr=m.x**2 + 5 * m.z)
    r = solve(m)
    assert r.ok
    assert pyo.value(m.x) == pytest.approx(1.0, abs=1e-6)
    lp = build_supporting_prices(m, {m.c: 1.0})
    assert solve(lp.model).ok
    got = read_supporting_duals(lp)
    assert got[m.c] == pytest.approx(5.0, abs=1e-4)
    assert got[m.cap] == pytest.approx(-3.0, abs=1e-4)
    assert r.duals[m.c] == pytest.approx(5.0, abs=1e-4)


def test_least_payment_picks_the_bottom_of_a_degenerate_range():
    """min 10 q s.t. q − F = 0 [link], F ≥ 4 [need], 0 ≤ q ≤ 4: q sits at its bound, so any
    λ_link ≥ 10 supports it (λ_need = λ_link); the least payment is 10 — a solver may report
    any of them."""
    m = pyo.ConcreteModel()
    m.q = pyo.Var(bounds=(0, 4))
    m.F = pyo.Var(domain=pyo.NonNegativeReals)
    m.link = pyo.Constraint(expr=m.q - m.F == 0)
    m.need = pyo.Constraint(expr=m.F >= 4)
    m.obj = pyo.Objective(expr=10 * m.q)
    assert solve(m).ok
    lp = build_supporting_prices(m, {m.link: 4.0})
    assert solve(lp.model).ok
    got = read_supporting_duals(lp)
    assert got[m.link] == pytest.approx(10.0, abs=1e-4)
    assert got[m.need] == pytest.approx(10.0, abs=1e-4)


def test_fixed_variables_get_no_row():
    """A slack s with penalty 1000 against a shortage: held fixed, its row (λ = 1000) is
    dropped and the offer, 7 €/MWh, prices the constraint."""
    m = pyo.ConcreteModel()
    m.q = pyo.Var(bounds=(0, 1))
    m.s = pyo.Var(domain=pyo.NonNegativeReals)
    m.need = pyo.Constraint(expr=m.q + m.s >= 3)
    m.obj = pyo.Objective(expr=7 * m.q + 1000 * m.s)
    r = solve(m)
    assert r.duals[m.need] == pytest.approx(1000.0)
    lp = build_supporting_prices(m, {m.need: 1.0}, fixed=[m.s])
    assert solve(lp.model).ok
    assert read_supporting_duals(lp)[m.need] == pytest.approx(7.0, abs=1e-4)


def test_a_non_stationary_point_is_refused():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=2.0)
    m.obj = pyo.Objective(expr=m.x)  # interior, unconstrained, gradient 1
    with pytest.raises(ValueError, match="not a KKT point"):
        build_supporting_prices(m, {})


# ------------------------------------------------------ energy rows and short hours (K5c)
def _area(d: str, bus: int) -> DistributionArea:
    """One prosumer (a = 1 €/MW²h, b = 10 €/MWh) on a one-branch feeder, 1 MWh of energy
    over the two hours (Z3), 5 MW of power headroom."""
    feeder = fx.grid.Feeder.from_branches([0], [1], [0.01], [0.0], vn_kv=10.0, root=0)
    return DistributionArea(
        dso_id=d,
        bus=bus,
        n_feeders=1,
        feeder=feeder,
        p_mw=np.array([[0.0, 1.0]] * 2),
        q_mvar=np.zeros((2, 2)),
        prosumer_id=pd.Index([f"{d}1"]),
        bus_pos=np.array([1]),
        a=np.array([1.0]),
        b=np.array([10.0]),
        u_max_mw=np.full((2, 1), 5.0),
        energy_mwh=np.ones((2, 1)),
    )


def short_hour_leak() -> CentralizedData:
    """Two DSOs, one line, hours 1 and 2. Hour 1 needs 100 MW of relief (short whatever
    happens), sensitivities −0.5 for both; hour 2 needs 0.3 MW, sensitivities −0.6 (A) and
    −0.25 (B). The penalty makes every MWh count in hour 1 at 0.5 M, so hour 2 is served by
    A (0.6 > 0.5 relief per MWh) with as little energy as it can: u_A = (0.5, 0.5),
    u_B = (1, 0); marginal costs 2u + 10 = 11 (A), 12 (B)."""
    hours = pd.Index([1, 2], name="hour")
    return CentralizedData(
        mean_flow_mw=pd.DataFrame([[200.0], [100.3]], index=hours, columns=["L"]),
        limit_mw=pd.DataFrame([[100.0], [100.0]], index=hours, columns=["L"]),
        sensitivity=np.array([[[-0.5, -0.5]], [[-0.6, -0.25]]]),
        areas=(_area("A", 1), _area("B", 2)),
        loss_price_eur_per_mwh=0.0,
    )


def test_saturation_keeps_the_short_hour_out_of_the_energy_rent():
    """Held slacks alone (K5a–K5b): the rows of hour 1 are equalities, so A's energy rent
    e_A = λ₁ − 11 = 1 (λ₁ = 12, set by B) is carried into hour 2: λ_A2 = 11 + e_A = 12,
    line price 12 / 0.6 = 20. Saturated (K5c): hour 1 only asks λ₁ ≥ 11 + e_A and
    λ₁ ≥ 12 + e_B, so e = 0 supports the dispatch: λ₁ = 12, λ_A2 = 11 (A's own marginal
    cost), line price 11 / 0.6 = 55/3."""
    data = short_hour_leak()
    m = build_centralized(data)
    r = solve(m)
    assert r.ok
    np.testing.assert_allclose(read_centralized(m, data, r.duals).u_mw["A"], [[0.5], [0.5]])
    weights = {m.eq_interface[d, t]: pyo.value(m.F[d, t]) for d, t in m.F}
    held = build_supporting_prices(m, weights, fixed=[*m.s_up.values(), *m.s_dn.values()])
    saturated = build_centralized_pricing(m)
    out = {}
    for name, lp in (("held", held), ("saturated", saturated)):
        assert solve(lp.model).ok
        out[name] = read_centralized(m, data, read_supporting_duals(lp))
    p_held, p_sat = out["held"].price_eur_per_mwh, out["saturated"].price_eur_per_mwh
    assert p_held.loc[1].tolist() == pytest.approx([12.0, 12.0], abs=1e-4)
    assert p_held.loc[2, "A"] == pytest.approx(12.0, abs=1e-4)
    assert out["held"].line_price_eur_per_mwh.loc[2, "L"] == pytest.approx(20.0, abs=1e-3)
    assert p_sat.loc[1].tolist() == pytest.approx([12.0, 12.0], abs=1e-4)
    assert p_sat.loc[2, "A"] == pytest.approx(11.0, abs=1e-4)
    assert np.isnan(p_sat.loc[2, "B"])
    assert out["saturated"].line_price_eur_per_mwh.loc[2, "L"] == pytest.approx(55 / 3, abs=1e-3)


def _tiny_arrays() -> LinearProgram:
    """:func:`_tiny_lp` as arrays: columns x, y, z; rows c1 (x + y ≥ 4), c2 (x ≤ 3), c3
    (x + z = 5)."""
    starts, index, value = csr([[(0, 1.0), (1, 1.0)], [(0, 1.0)], [(0, 1.0), (2, 1.0)]])
    return LinearProgram(
        name="tiny",
        cost=np.array([2.0, 3.0, 1.0]),
        col_lower=np.zeros(3),
        col_upper=np.full(3, np.inf),
        row_lower=np.array([4.0, -np.inf, 5.0]),
        row_upper=np.array([np.inf, 3.0, 5.0]),
        starts=starts,
        index=index,
        value=value,
        declared=3,
    )


def test_array_lp_gives_the_hand_derived_optimum_duals_and_multipliers():
    """The same LP through :func:`solve_lp`: x = (3, 1, 2), objective 11, λ = (3, −2, 1) from
    HiGHS and from the least-payment multipliers (unique here)."""
    lp = _tiny_arrays()
    r = solve_lp(lp)
    assert r.status is SolveStatus.OPTIMAL
    assert r.objective == pytest.approx(11.0)
    np.testing.assert_allclose(r.values, [3.0, 1.0, 2.0])
    assert [r.duals[i] for i in range(3)] == pytest.approx([3.0, -2.0, 1.0], abs=1e-9)
    p = supporting_prices_lp(
        lp, r.values, np.array([1.0, 0.0, 0.0]), np.zeros(3, bool), np.zeros(3, bool)
    )
    rp = solve_lp(p.lp)
    assert rp.status is SolveStatus.OPTIMAL
    lam = -rp.values[p.column]
    assert lam == pytest.approx([3.0, -2.0, 1.0], abs=1e-6)


def test_array_lp_failures_are_typed():
    """Infeasible (x ≤ 3 and x ≥ 4) and unbounded (min −x) come back as statuses with HiGHS's
    reason and no values; a bad time limit is refused before HiGHS runs."""
    lp = _tiny_arrays()
    bad = LinearProgram(**{**lp.__dict__, "row_lower": np.array([4.0, 4.0, 5.0])})
    r = solve_lp(bad)
    assert r.status is SolveStatus.INFEASIBLE
    assert r.values is None
    assert r.message
    free = LinearProgram(
        **{
            **lp.__dict__,
            "cost": np.array([-1.0, 0.0, 0.0]),
            "row_upper": np.array([np.inf, np.inf, np.inf]),
        }
    )
    r = solve_lp(free)
    assert r.status in (SolveStatus.UNBOUNDED, SolveStatus.INFEASIBLE)
    assert r.values is None
    with pytest.raises(ValueError, match="time_limit"):
        solve_lp(lp, time_limit=0.0)
    assert solve_lp(lp).status is SolveStatus.OPTIMAL  # the shared instance is left clean


def test_array_multipliers_refuse_a_point_that_is_not_stationary():
    """Interior and unconstrained with cost 1 (the Pyomo case above): no multiplier can
    support it; a point off the optimum with multipliers that cannot agree gives an
    infeasible multiplier LP."""
    lone = LinearProgram(
        name="lone",
        cost=np.array([1.0]),
        col_lower=np.array([-np.inf]),
        col_upper=np.array([np.inf]),
        row_lower=np.zeros(0),
        row_upper=np.zeros(0),
        starts=np.zeros(1, dtype=np.int64),
        index=np.zeros(0, dtype=np.int64),
        value=np.zeros(0),
        declared=1,
    )
    with pytest.raises(ValueError, match="not a KKT point"):
        supporting_prices_lp(
            lone, np.array([2.0]), np.zeros(0), np.zeros(1, bool), np.zeros(1, bool)
        )
    # a row that is not active leaves no multiplier, and no column at all when it is the only one
    lone_row = LinearProgram(
        **{
            **lone.__dict__,
            "cost": np.array([0.0]),
            "row_lower": np.array([-np.inf]),
            "row_upper": np.array([5.0]),
            "starts": np.array([0, 1]),
            "index": np.array([0]),
            "value": np.array([1.0]),
        }
    )
    p = supporting_prices_lp(
        lone_row, np.array([2.0]), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool)
    )
    assert p.column.tolist() == [-1]
    assert p.lp.n_cols == 0
    # x = 2.5 (inside c2), y = 1.5, z = 2.5: only c1 and c3 active; y's row gives λ₁ = 3, z's
    # λ₃ = 1, x's λ₁ + λ₃ = 2 — no multipliers agree
    lp = _tiny_arrays()
    x = np.array([2.5, 1.5, 2.5])
    p = supporting_prices_lp(lp, x, np.zeros(3), np.zeros(3, bool), np.zeros(3, bool))
    assert p.column[1] == -1  # c2 inactive
    assert solve_lp(p.lp).status is SolveStatus.INFEASIBLE


@pytest.mark.parametrize(
    ("field", "where", "bad", "message"),
    [
        ("row_upper", 1, np.nan, "a row bound is NaN (row 1)"),
        ("col_lower", 2, np.nan, "a column bound is NaN (column 2)"),
        ("cost", 0, np.inf, "a cost is not finite (column 0)"),
        ("value", 3, -np.inf, "a coefficient is not finite (row 2)"),
    ],
)
def test_array_lp_with_a_number_highs_cannot_take_is_an_error(field, where, bad, message):
    """A NaN bound or an infinite coefficient would make HiGHS drop the whole batch of rows
    and solve what is left (an "optimum" of the bounds alone); it comes back as ``ERROR``
    naming the number, and the shared instance solves the next LP."""
    lp = _tiny_arrays()
    values = getattr(lp, field).copy()
    values[where] = bad
    r = solve_lp(LinearProgram(**{**lp.__dict__, field: values}))
    assert r.status is SolveStatus.ERROR
    assert r.values is None
    assert message in r.message
    assert "'tiny'" in r.message
    assert solve_lp(lp).status is SolveStatus.OPTIMAL
