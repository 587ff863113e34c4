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
    Feeder,
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


# ---------------------------------------------------------------------- every state (D6)
def _charging_feeder():
    import pandapower.networks as pn

    net = pn.case33bw()
    net.line["c_nf_per_km"] = 300.0
    return Feeder.from_pandapower(net)


def _states(feeder):
    """No load (charging-only losses), PV equal to load (net load ~1e-9 of it, either sign),
    reverse flow, and a mixed state whose net load sums to about zero."""
    rng = np.random.default_rng(7)
    p0, q0 = feeder.p_base_mw, feeder.q_base_mvar
    mixed = p0 * np.where(np.arange(feeder.n_bus) % 2 == 0, 1.0, -1.0)
    mixed[1] -= mixed.sum()  # Σ P = 0 up to rounding
    return {
        "no_load": (np.zeros_like(p0), np.zeros_like(q0)),
        "pv_equals_load": (p0 * rng.uniform(-1e-9, 1e-9, p0.shape), q0),
        "reverse_flow": (-2.0 * p0, q0),
        "net_zero_mixed": (mixed, q0),
    }


@pytest.mark.parametrize("method", LOSS_ALLOCATION_METHODS)
@pytest.mark.parametrize("state", ["no_load", "pv_equals_load", "reverse_flow", "net_zero_mixed"])
def test_d6_allocations_sum_to_the_loss_in_every_state(method, state):
    """The audit: marginal and pro_rata returned zeros where their normalizer vanished, and
    pro_rata gave shares of 8.5e15 MW at a net load near zero."""
    feeder = _charging_feeder()
    p, q = _states(feeder)[state]
    pf = feeder.power_flow(p, q)
    assert pf.loss_mw > 1e-4  # charging currents make losses even without load
    alloc = allocate_losses(pf, method)
    np.testing.assert_allclose(alloc.sum(), pf.loss_mw, rtol=1e-12)
    assert alloc[feeder.root] == 0.0
    assert np.abs(alloc).max() < 5 * pf.loss_mw  # bounded, whatever the normalizer
    if state == "no_load" and method != "branch_current":  # the documented fallback (L1)
        np.testing.assert_array_equal(alloc, allocate_losses(pf, "branch_current"))


def test_d6_single_signed_states_keep_the_classic_normalization(case33):
    """Where every marginal charge (every load) has one sign, (L3) and (L4) are the classic
    m_j P_loss / Σ m and P_j P_loss / Σ P."""
    for scale in (1.0, -1.5):
        pf = case33.power_flow(case33.p_base_mw * scale, case33.q_base_mvar * abs(scale))
        dl_dp, dl_dq = marginal_loss_factors(pf)
        m = dl_dp * pf.p_mw + dl_dq * pf.q_mvar
        assert np.all(m * np.sign(m.sum()) >= 0)
        np.testing.assert_allclose(
            allocate_losses(pf, "marginal"), m * pf.loss_mw / m.sum(), rtol=1e-12, atol=1e-15
        )
        p = pf.p_mw.copy()
        p[case33.root] = 0.0
        np.testing.assert_allclose(
            allocate_losses(pf, "pro_rata"), p * pf.loss_mw / p.sum(), rtol=1e-12, atol=1e-15
        )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_transformer_feeder_allocations_and_exact_marginals():
    """A feeder with its transformer (iron losses at both ends, L1a), line conductance and
    voltage-dependent loads: every method sums to the loss, even at no load, and the exact
    marginal coefficients (L2a) equal central differences."""
    import pandapower.networks as pn

    net = pn.create_cigre_network_mv(with_der="all")
    net.load["const_z_p_percent"] = 30.0
    net.load["const_i_q_percent"] = 50.0
    net.line["g_us_per_km"] = 5.0
    feeder = Feeder.from_pandapower(net)
    rng = np.random.default_rng(0)
    p = feeder.p_base_mw * rng.uniform(-0.5, 1.5, (3, feeder.n_bus))
    q = feeder.q_base_mvar * rng.uniform(0.0, 1.5, (3, feeder.n_bus))
    pf = feeder.power_flow(p, q, tol_pu=1e-13, max_iter=500)
    exact = marginal_loss_factors(pf)
    diff = marginal_loss_factors(pf, step_mw=1e-4)
    np.testing.assert_allclose(exact[0], diff[0], atol=1e-9)
    np.testing.assert_allclose(exact[1], diff[1], atol=1e-9)
    idle = feeder.power_flow(np.zeros(feeder.n_bus), np.zeros(feeder.n_bus))
    for result in (pf, idle):
        for method in LOSS_ALLOCATION_METHODS:
            alloc = allocate_losses(result, method)
            np.testing.assert_allclose(alloc.sum(-1), result.loss_mw, rtol=1e-12)
            assert np.all(alloc[..., feeder.root] == 0.0)
