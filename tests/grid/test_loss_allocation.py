"""Loss allocation: every method sums to the total; branch-current decomposition = Z-bus."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from flexopt.grid import (
    LOSS_ALLOCATION_METHODS,
    allocate_losses,
    marginal_loss_factors,
    screen_buses,
)


@pytest.mark.parametrize("method", LOSS_ALLOCATION_METHODS)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scale=arrays(np.float64, (2, 33), elements=st.floats(-0.3, 1.5)))
def test_allocations_sum_to_total(case33, method, scale):
    pf = case33.power_flow(case33.p_base_mw * scale, case33.q_base_mvar * scale)
    alloc = allocate_losses(pf, method)
    assert alloc.shape == (2, 33)
    np.testing.assert_allclose(alloc.sum(axis=-1), pf.loss_mw, rtol=1e-12, atol=1e-12)
    assert np.all(alloc[..., case33.root] == 0)


def test_branch_current_equals_zbus_allocation(case69):
    """Z-bus loss allocation (Conejo et al. 2001): L_j = Re(conj(I_j) Σ_k R_jk I_k) — written
    here from the bus impedance matrix, independently of the branch decomposition."""
    pf = case69.power_flow()
    r_bus = np.real(case69.z_pu)
    i = pf.i_bus_pu
    zbus = np.real(np.conj(i) * (r_bus @ i)) * case69.base_mva
    np.testing.assert_allclose(allocate_losses(pf, "branch_current"), zbus, atol=1e-12)


def test_raw_marginal_coefficients_over_recover(case33):
    """Raw marginal coefficients over-recover: Σ ∂L/∂P·P ≈ 1.44 × losses on case33bw, hence the normalization."""
    pf = case33.power_flow()
    dl_dp, _ = marginal_loss_factors(pf)
    assert (dl_dp * pf.p_mw).sum() / pf.loss_mw == pytest.approx(1.44, abs=0.005)


def test_marginal_coefficient_matches_first_principles(case33):
    pf = case33.power_flow()
    dl_dp, dl_dq = marginal_loss_factors(pf)
    j = 17
    p = case33.p_base_mw.copy()
    p[j] += 1e-3
    fd = (case33.power_flow(p, case33.q_base_mvar).loss_mw - pf.loss_mw) / 1e-3
    assert dl_dp[j] == pytest.approx(fd, rel=1e-3)
    assert dl_dq[j] > 0


def test_exact_marginal_coefficients_equal_central_differences(case69):
    """(L2a) against (L2): a batch of 2 × 24 random states with injections (negative load),
    line charging and shunt conductance on case69; central differences carry an O(h²) error
    of ~1e-10 at h = 1e-4 MW."""
    rng = np.random.default_rng(3)
    y = rng.uniform(0.0, 0.005, case69.n_bus) + 1j * rng.uniform(0.0, 0.02, case69.n_bus)
    feeder = replace(case69, y_shunt_pu=y)
    p = feeder.p_base_mw * rng.uniform(-0.5, 1.3, (2, 24, feeder.n_bus))
    q = feeder.q_base_mvar * rng.uniform(0.3, 1.3, (2, 24, feeder.n_bus))
    pf = feeder.power_flow(p, q)
    exact = marginal_loss_factors(pf)
    diff = marginal_loss_factors(pf, step_mw=1e-4)
    assert exact[0].shape == (2, 24, feeder.n_bus)
    np.testing.assert_allclose(exact[0], diff[0], atol=1e-8)
    np.testing.assert_allclose(exact[1], diff[1], atol=1e-8)
    assert np.abs(exact[0]).max() > 0.05  # the comparison is not between zeros


def test_pro_rata_is_proportional_to_load(case33):
    pf = case33.power_flow()
    alloc = allocate_losses(pf, "pro_rata")
    ratio = alloc[1:] / case33.p_base_mw[1:]
    np.testing.assert_allclose(ratio[np.isfinite(ratio)], pf.loss_mw / case33.p_base_mw.sum())


def test_screening_covers_share_with_fewest_buses():
    alloc = np.array([0.0, 5.0, 1.0, 3.0, 1.0, -0.5])
    # ranked 1 (5), 3 (3), then 2 and 4 (1 each): 5/10 = 50 %, 8/10 = 80 %
    assert screen_buses(alloc, 0.8).tolist() == [1, 3]
    assert screen_buses(alloc, 0.81).tolist() == [1, 2, 3]
    assert screen_buses(alloc, 1.0).tolist() == [1, 2, 3, 4]
    assert screen_buses(np.zeros(4), 0.8).size == 0
    with pytest.raises(ValueError, match="coverage"):
        screen_buses(alloc, 0.0)
