"""S1 against a hand-derived two-generator economic dispatch."""

from __future__ import annotations

import pandas as pd
import pytest

from flexopt.market import DayAheadData, build_day_ahead, read_day_ahead
from flexopt.solve import SolveStatus, solve


def _gens(p_max2: float = 200.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "p_min_mw": [0.0, 0.0],
            "p_max_mw": [200.0, p_max2],
            "c1_eur_per_mwh": [10.0, 8.0],
            "c2_eur_per_mw2h": [0.01, 0.02],
        },
        index=["g1", "g2"],
    )


def test_two_generator_optimum_and_price():
    """Equal marginal costs 10 + 0.02 p1 = 8 + 0.04 p2 with p1 + p2 = D.

    Hour 1 (D = 150): 0.06 p1 = 0.04·150 − 2 = 4 → p1 = 200/3, p2 = 250/3, λ = 34/3 €/MWh.
    Hour 2 (D = 90): 0.06 p1 = 0.04·90 − 2 = 1.6 → p1 = 80/3, p2 = 190/3, λ = 10 + 1.6/3.
    """
    demand = pd.Series([150.0, 90.0], index=[1, 2])
    m = build_day_ahead(DayAheadData(_gens(), demand))
    res = solve(m)
    assert res.status is SolveStatus.OPTIMAL
    da = read_day_ahead(m, res.duals)
    # hour 1
    assert da.p_mw.loc[1, "g1"] == pytest.approx(200 / 3, abs=1e-4)
    assert da.p_mw.loc[1, "g2"] == pytest.approx(250 / 3, abs=1e-4)
    assert da.price_eur_per_mwh.loc[1] == pytest.approx(34 / 3, abs=1e-4)
    # hour 2: 0.06 p1 = 0.04·90 − 2 = 1.6 → p1 = 80/3, p2 = 190/3, λ = 10 + 0.02·80/3
    assert da.p_mw.loc[2, "g1"] == pytest.approx(80 / 3, abs=1e-4)
    assert da.price_eur_per_mwh.loc[2] == pytest.approx(10 + 1.6 / 3, abs=1e-4)
    cost = sum(
        0.01 * p1**2 + 10 * p1 + 0.02 * p2**2 + 8 * p2
        for p1, p2 in [(200 / 3, 250 / 3), (80 / 3, 190 / 3)]
    )
    assert res.objective == pytest.approx(cost, rel=1e-6)


def test_price_set_by_the_unconstrained_unit():
    """g2 capped at 50 MW: g1 covers the rest, λ = 10 + 0.02 (150 − 50) = 12."""
    m = build_day_ahead(DayAheadData(_gens(p_max2=50.0), pd.Series([150.0], index=[1])))
    res = solve(m)
    da = read_day_ahead(m, res.duals)
    assert da.p_mw.loc[1, "g2"] == pytest.approx(50.0, abs=1e-5)
    assert da.price_eur_per_mwh.loc[1] == pytest.approx(12.0, abs=1e-4)


def test_infeasible_demand_is_a_status_not_an_exception():
    m = build_day_ahead(DayAheadData(_gens(), pd.Series([1000.0], index=[1])))
    res = solve(m)
    assert res.status is SolveStatus.INFEASIBLE
    assert not res.ok
    assert res.objective is None


def test_pipeline_reports_infeasible_day_ahead(rts):
    from dataclasses import replace

    from flexopt.errors import FlexoptError
    from flexopt.run.tso import day_ahead

    gens = rts.transmission.generators.assign(
        p_max_mw=rts.transmission.generators["p_max_mw"] * 0.5
    )
    small = replace(rts, transmission=replace(rts.transmission, generators=gens))
    with pytest.raises(FlexoptError, match="day-ahead market infeasible in hour"):
        day_ahead(small)


def test_hour_by_hour_equals_the_whole_day(rts):
    """The pipeline solves (D1–D3) one hour at a time; the 24-hour QP has the same dispatch,
    prices and cost (hours share no constraint)."""
    import numpy as np

    from flexopt.run.tso import day_ahead

    demand = rts.forecast_load_mw().sum(axis=1)
    m = build_day_ahead(DayAheadData(rts.transmission.generators, demand, rts.dt_h))
    res = solve(m)
    whole = read_day_ahead(m, res.duals)
    hourly = day_ahead(rts)
    assert hourly.cost_eur == pytest.approx(whole.cost_eur, rel=1e-7)
    np.testing.assert_allclose(hourly.p_mw.to_numpy(), whole.p_mw.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(
        hourly.price_eur_per_mwh.to_numpy(), whole.price_eur_per_mwh.to_numpy(), atol=1e-5
    )
    assert list(hourly.p_mw.index) == list(demand.index)
