"""The three PLF methods agree; Monte Carlo is seeded; congestion follows its definition."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flexopt.plf import analytic, congestion_table, monte_carlo, point_estimate
from flexopt.run.tso import day_ahead, plf_model


@pytest.fixture(scope="module")
def model(rts):
    return plf_model(rts, day_ahead(rts))


def _relative(a, b, floor):
    return np.abs(a - b) / np.maximum(np.abs(b), floor)


def test_pem_is_exact_for_dc_flows(model):
    """Hong's 2m+1 scheme reproduces the first two moments of linear functions exactly."""
    a, p = analytic(model), point_estimate(model)
    np.testing.assert_allclose(p.mean_mw, a.mean_mw, atol=1e-8)
    np.testing.assert_allclose(p.std_mw, a.std_mw, atol=1e-7)
    assert p.samples == 2 * len(model.uncertain) + 1


def test_monte_carlo_agrees_with_analytic(model):
    a = analytic(model)
    mc = monte_carlo(model, samples=100_000, seed=7)
    # means within 0.5 % on every flow above 10 MW, and within 4 standard errors everywhere
    big = np.abs(a.mean_mw) > 10.0
    assert _relative(mc.mean_mw, a.mean_mw, 1.0)[big].max() < 0.005
    assert np.all(np.abs(mc.mean_mw - a.mean_mw) <= 4 * a.std_mw / np.sqrt(mc.samples) + 1e-9)
    has_std = a.std_mw > 0.05
    assert _relative(mc.std_mw, a.std_mw, 1e-9)[has_std].max() < 0.05
    np.testing.assert_allclose(mc.prob_overload, a.prob_overload, atol=0.01)


def test_correlated_errors(model):
    corr = np.full_like(model.correlation, 0.6)
    np.fill_diagonal(corr, 1.0)
    m = replace(model, correlation=corr)
    a, p = analytic(m), point_estimate(m)
    np.testing.assert_allclose(p.std_mw, a.std_mw, atol=1e-7)
    mc = monte_carlo(m, samples=50_000, seed=1)
    has_std = a.std_mw > 0.05
    assert _relative(mc.std_mw, a.std_mw, 1e-9)[has_std].max() < 0.05
    assert not np.allclose(a.std_mw, analytic(model).std_mw)  # correlation matters


def test_monte_carlo_is_deterministic_per_seed(model):
    one = monte_carlo(model, samples=3000, seed=11, chunk=700)
    two = monte_carlo(model, samples=3000, seed=11, chunk=700)
    other = monte_carlo(model, samples=3000, seed=12, chunk=700)
    np.testing.assert_array_equal(one.mean_mw, two.mean_mw)
    np.testing.assert_array_equal(one.std_mw, two.std_mw)
    assert not np.array_equal(one.mean_mw, other.mean_mw)


def test_slack_balancing_moves_the_imbalance_to_the_reference_bus(model):
    slack = replace(model, weights=np.eye(model.network.n_bus)[[model.network.slack_idx]])
    a = analytic(slack)
    # every realized imbalance flows from the slack bus: E f = Φ (g − E L̃)
    expected = (model.gen_injection_mw - model.expected_load_mw) @ model.network.ptdf.T
    np.testing.assert_allclose(a.mean_mw, expected, atol=1e-9)


def test_congestion_table_definition():
    from flexopt.plf import PLFResult

    res = PLFResult(
        mean_mw=np.array([[95.0, -104.0, 50.0]]),
        std_mw=np.array([[4.0, 1.0, 0.0]]),
        prob_overload=np.zeros((1, 3)),
        method="analytic",
        samples=0,
    )
    import pandas as pd

    rating = np.array([100.0, 100.0, 60.0])
    mean_only = congestion_table(res, rating, pd.Index([1]), pd.Index(["a", "b", "c"]))
    assert mean_only["congested"].tolist() == [False, True, False]
    assert mean_only["overload_mw"].tolist() == [0.0, 4.0, 0.0]
    risky = congestion_table(
        res, rating, pd.Index([1]), pd.Index(["a", "b", "c"]), risk_quantile=1.645
    )
    assert risky["congested"].tolist() == [True, True, False]
    assert risky["overload_mw"].iloc[0] == pytest.approx(95 + 1.645 * 4 - 100)
