"""S3 on a one-line system solved by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from flexopt.market.requirement import (
    RequirementData,
    build_requirement,
    build_requirement_tiebreak,
    read_requirement,
)
from flexopt.solve import SolveStatus, solve
from tests.market._handed import assert_same_lp


def _data(
    h_a: float, h_b: float, cap_a: float, cap_b: float, flow: float = 110.0
) -> RequirementData:
    """One line at E f = 110 MW, limit 100 MW; a MW of reduction at A (B) changes it by h_a (h_b)."""
    hours = pd.Index([1])
    return RequirementData(
        mean_flow_mw=pd.DataFrame({"l": [flow]}, index=hours),
        limit_mw=pd.DataFrame({"l": [100.0]}, index=hours),
        sensitivity={1: pd.DataFrame({"A": [h_a], "B": [h_b]}, index=["l"])},
        capacity_mw=pd.DataFrame({"A": [cap_a], "B": [cap_b]}, index=hours),
    )


def _solve(data: RequirementData):
    m = build_requirement(data)
    res = solve(m)
    assert res.status is SolveStatus.OPTIMAL
    return read_requirement(m)


def test_most_effective_dso_first():
    # 110 − 0.5 R_A − 0.25 R_B ≤ 100: A relieves 0.5 MW per MW → R_A = 20, R_B = 0
    r, slack = _solve(_data(-0.5, -0.25, 50.0, 50.0))
    assert r.loc[1, "A"] == pytest.approx(20.0)
    assert r.loc[1, "B"] == pytest.approx(0.0)
    assert slack.to_numpy().sum() == 0.0


def test_capacity_binds_then_next_dso():
    # A capped at 12 MW relieves 6; the remaining 4 MW of flow need 16 MW at B
    r, _ = _solve(_data(-0.5, -0.25, 12.0, 50.0))
    assert r.loc[1, "A"] == pytest.approx(12.0)
    assert r.loc[1, "B"] == pytest.approx(16.0)


def test_infeasible_congestion_is_reported_as_slack():
    # at most 0.5·4 + 0.25·4 = 3 MW of relief for a 10 MW overload: 7 MW stay unresolved
    r, slack = _solve(_data(-0.5, -0.25, 4.0, 4.0))
    assert r.loc[1, "A"] == pytest.approx(4.0)
    assert r.loc[1, "B"] == pytest.approx(4.0)
    assert slack.loc[1, "l"] == pytest.approx(7.0)


def test_negative_flow_direction():
    # E f = −110: a reduction with H = +0.5 brings it back to −100
    r, _ = _solve(_data(0.5, 0.1, 50.0, 50.0, flow=-110.0))
    assert r.loc[1, "A"] == pytest.approx(20.0)


def test_tiebreak_spreads_in_proportion_to_capacity():
    """Equal sensitivities: every split with R_A + R_B = 20 is optimal for (R1); the
    tie-break (R5) minimizes R_A²/10 + R_B²/30 on that face → R ∝ R̄: (5, 15)."""
    data = _data(-0.5, -0.5, 10.0, 30.0)
    lp = build_requirement(data)
    assert solve(lp).ok
    qp = build_requirement_tiebreak(data, lp)
    assert solve(qp).ok
    r, _ = read_requirement(qp)
    assert r.loc[1, "A"] == pytest.approx(5.0, abs=1e-5)
    assert r.loc[1, "B"] == pytest.approx(15.0, abs=1e-5)


def test_tiebreak_keeps_unresolved_overload_and_stays_fast():
    """With too little capacity the first stage leaves slack; the tie-break keeps it and
    does not trade requirement for penalty (well scaled: solves at once)."""
    data = _data(-0.5, -0.5, 4.0, 8.0)  # at most 6 MW of relief for a 10 MW overload
    lp = build_requirement(data)
    assert solve(lp).ok
    qp = build_requirement_tiebreak(data, lp)
    res = solve(qp, time_limit=10)
    assert res.status is SolveStatus.OPTIMAL
    r, slack = read_requirement(qp)
    assert r.loc[1].sum() == pytest.approx(12.0, abs=1e-5)
    assert slack.loc[1, "l"] == pytest.approx(4.0, abs=1e-5)
    assert res.wall_s < 5


def test_presolve_drops_only_lines_that_cannot_bind(monkeypatch):
    """K6 on S3: with random flows, limits and sensitivities on 40 lines × 3 hours, the model
    that keeps every row and the presolved one give the same requirement and slack, and the
    presolve actually drops rows."""
    import numpy as np

    import flexopt.market.lines as lines_mod

    rng = np.random.default_rng(5)
    hours, lines, dsos = pd.Index([1, 2, 3]), [f"l{i}" for i in range(40)], ["A", "B", "C"]
    flow = pd.DataFrame(rng.uniform(-120, 120, (3, 40)), index=hours, columns=lines)
    data = RequirementData(
        mean_flow_mw=flow,
        limit_mw=pd.DataFrame(100.0, index=hours, columns=lines),
        sensitivity={
            t: pd.DataFrame(rng.uniform(-0.6, 0.6, (40, 3)), index=lines, columns=dsos)
            for t in hours
        },
        capacity_mw=pd.DataFrame(rng.uniform(5, 30, (3, 3)), index=hours, columns=dsos),
    )
    m = build_requirement(data)
    assert 0 < len(m.LT) < 3 * 40
    r_pre, s_pre = _solve(data)
    keep_all = lambda mean, *_: np.ones_like(mean, dtype=bool)  # noqa: E731
    monkeypatch.setattr(lines_mod, "binding_candidates", keep_all)
    assert len(build_requirement(data).LT) == 3 * 40
    r_all, s_all = _solve(data)
    pd.testing.assert_frame_equal(r_pre, r_all, atol=1e-6)
    pd.testing.assert_frame_equal(s_pre, s_all, atol=1e-6)
    assert s_all.to_numpy().sum() > 0  # some line stays overloaded: the slacks are compared too


def test_declared_energy_goes_to_the_hour_where_it_relieves_most():
    """(R4a) one DSO, 30 MW per hour but 24 MWh over both hours; overloads of 10 and 4 MW
    relieved by 0.5 and 0.25 MW per MW: the TSO places 20 MWh in hour 1 (clears it) and
    the 4 MWh left in hour 2 (3 MW stay overloaded). An even split (12 + 12) would have left
    4 + 1 = 5 MW."""
    hours = pd.Index([1, 2])
    data = RequirementData(
        mean_flow_mw=pd.DataFrame({"l": [110.0, 104.0]}, index=hours),
        limit_mw=pd.DataFrame({"l": [100.0, 100.0]}, index=hours),
        sensitivity={
            1: pd.DataFrame({"A": [-0.5]}, index=["l"]),
            2: pd.DataFrame({"A": [-0.25]}, index=["l"]),
        },
        capacity_mw=pd.DataFrame({"A": [30.0, 30.0]}, index=hours),
        energy_mwh=pd.Series({"A": 24.0}),
    )
    r, slack = _solve(data)
    assert r["A"].tolist() == pytest.approx([20.0, 4.0])
    assert slack["l"].tolist() == pytest.approx([0.0, 3.0])
    first = build_requirement(data)
    assert solve(first).ok
    tie = build_requirement_tiebreak(data, first)
    assert solve(tie).ok
    r2, _ = read_requirement(tie)
    assert r2["A"].tolist() == pytest.approx([20.0, 4.0], abs=1e-5)  # the energy row holds


# --------------------------------------------------------------- the run's arrays (S3 as LPs)
def _random_data(seed: int) -> RequirementData:
    """Random flows, limits, sensitivities (a few exact zeros) and capacities (some zero,
    some equal: ties), with a declared energy on odd seeds."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_t, n_l, n_d = int(rng.integers(1, 4)), int(rng.integers(8, 30)), int(rng.integers(2, 9))
    hours = pd.Index(range(10, 10 + n_t), name="hour")
    lines, dsos = [f"l{i}" for i in range(n_l)], [f"DSO{i}" for i in range(n_d)]
    sens = {}
    for t in hours:
        h = rng.uniform(-0.6, 0.6, (n_l, n_d)).round(3)
        h[rng.random((n_l, n_d)) < 0.15] = 0.0
        h[:, -1] = h[:, 0]  # the last DSO twins the first: a tie for R5
        sens[t] = pd.DataFrame(h, index=lines, columns=dsos)
    cap = rng.uniform(0, 25, (n_t, n_d)).round(1)
    cap[rng.random((n_t, n_d)) < 0.2] = 0.0
    energy = None
    if seed % 2:
        energy = pd.Series(cap.sum(0) * rng.uniform(0.3, 1.0, n_d), index=dsos)
    return RequirementData(
        mean_flow_mw=pd.DataFrame(rng.uniform(-130, 130, (n_t, n_l)), index=hours, columns=lines),
        limit_mw=pd.DataFrame(100.0, index=hours, columns=lines),
        sensitivity=sens,
        capacity_mw=pd.DataFrame(cap, index=hours, columns=dsos),
        energy_mwh=energy,
    )


@pytest.mark.parametrize("seed", range(6))
def test_the_arrays_hand_highs_the_pyomo_models_lps(seed):
    """The LP (R1–R4a) and the tie-break (R5) built as arrays are the LPs the Pyomo models
    hand HiGHS — same columns, bounds, costs, rows and entries (zero capacities included:
    ``0.0 · z`` makes ``z`` a column but writes no entry)."""
    import numpy as np

    from flexopt.market.requirement_lp import build_requirement_lp, requirement_tiebreak_lp

    data = _random_data(seed)
    model, arrays = build_requirement(data), build_requirement_lp(data)
    assert_same_lp(model, arrays.lp)
    assert solve(model).ok
    x = np.zeros(arrays.lp.n_cols)
    x[arrays.r_col] = [[model.R[d, t].value for t in model.T] for d in model.D]
    x[arrays.up_col] = [model.s_up[lt].value for lt in model.LT]
    x[arrays.dn_col] = [model.s_dn[lt].value for lt in model.LT]
    tie = requirement_tiebreak_lp(arrays, x)
    assert_same_lp(build_requirement_tiebreak(data, model), tie.lp)


@pytest.mark.parametrize("seed", range(8))
def test_the_run_solves_s3_as_the_pyomo_models_do_bit_for_bit(seed):
    """The run's S3 (arrays through ``solve_lp``) gives the Pyomo models' requirement and
    unresolved overload exactly, the tie-break included."""
    import numpy as np

    from flexopt.market.requirement_lp import (
        build_requirement_lp,
        read_requirement_lp,
        requirement_tiebreak_lp,
    )
    from flexopt.solve import solve_lp

    data = _random_data(seed)
    lp = build_requirement(data)
    assert solve(lp).status is SolveStatus.OPTIMAL
    want_first = read_requirement(lp)
    tie = build_requirement_tiebreak(data, lp)
    assert solve(tie).status is SolveStatus.OPTIMAL
    want = read_requirement(tie)

    arrays = build_requirement_lp(data)
    r1 = solve_lp(arrays.lp)
    assert r1.status is SolveStatus.OPTIMAL
    x = np.asarray(r1.values)
    got_first = read_requirement_lp(arrays, x)
    tie_arrays = requirement_tiebreak_lp(arrays, x)
    r2 = solve_lp(tie_arrays.lp)
    assert r2.status is SolveStatus.OPTIMAL
    got = read_requirement_lp(tie_arrays, np.asarray(r2.values))
    for g, w in ((got_first, want_first), (got, want)):
        pd.testing.assert_frame_equal(g[0], w[0], check_exact=True)
        pd.testing.assert_frame_equal(g[1], w[1], check_exact=True)


def test_a_non_finite_declaration_stops_s3_with_a_typed_error():
    """A NaN declared energy (or an infinite capacity) used to reach HiGHS, which dropped the
    rows and returned a requirement of zero; the run's S3 now raises ``SolverError`` naming
    the stage and the number."""
    import numpy as np

    from flexopt.errors import SolverError
    from flexopt.market.requirement_lp import build_requirement_lp
    from flexopt.run.tso import raise_unless_optimal
    from flexopt.solve import solve_lp

    data = _data(-0.5, -0.25, 50.0, 50.0)
    nan_energy = RequirementData(
        **{**data.__dict__, "energy_mwh": pd.Series({"A": 30.0, "B": np.nan})}
    )
    r = solve_lp(build_requirement_lp(nan_energy).lp)
    assert r.status is SolveStatus.ERROR
    assert "a row bound is NaN" in r.message
    with pytest.raises(SolverError, match=r"flexibility requirement \(S3\).*row bound is NaN"):
        raise_unless_optimal(r, "flexibility requirement (S3)", 10.0)
