"""Batched feeder power flow against pandapower's Newton-Raphson ``runpp``."""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import flexopt as fx
from flexopt.errors import PowerFlowError, TopologyError
from flexopt.grid.cases import CASE69_PUBLISHED


def _runpp(net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, tolerance_mva=1e-11, max_iteration=50)


def _check_physics(pf):
    """Invariants after every power flow: losses ≥ 0 and the root supplies load + losses."""
    assert np.all(pf.loss_branch_mw >= 0)
    load = pf.p_mw.sum(axis=-1) - pf.p_mw[..., pf.feeder.root]
    np.testing.assert_allclose(pf.p_root_mw, load + pf.loss_mw, atol=1e-9)


def test_case33bw_base_matches_runpp_and_published(case33):
    net = pn.case33bw()
    _runpp(net)
    pf = case33.power_flow()
    _check_physics(pf)
    np.testing.assert_allclose(pf.vm_pu, net.res_bus.vm_pu.loc[case33.bus].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(
        pf.va_degree, net.res_bus.va_degree.loc[case33.bus].to_numpy(), atol=1e-5
    )
    assert abs(pf.loss_mw - net.res_line.pl_mw.sum()) < 1e-6
    # Baran & Wu 1989: 202.68 kW, 0.9131 pu at bus 18 (index 17)
    assert round(float(pf.loss_mw) * 1e3, 2) == 202.68
    assert int(np.argmin(pf.vm_pu)) == 17
    assert round(float(pf.vm_pu.min()), 4) == 0.9131


def test_case69_reproduces_published_base_case(case69):
    pf = case69.power_flow()
    _check_physics(pf)
    assert abs(pf.loss_mw * 1e3 - CASE69_PUBLISHED["loss_kw"]) < 0.1  # 224.99 vs 224.95 kW
    assert int(np.argmin(pf.vm_pu)) == CASE69_PUBLISHED["vm_min_bus"]
    assert round(float(pf.vm_pu.min()), 4) == CASE69_PUBLISHED["vm_min_pu"]
    net = fx.grid.case69()
    _runpp(net)
    np.testing.assert_allclose(pf.vm_pu, net.res_bus.vm_pu.to_numpy(), atol=1e-6)
    assert abs(pf.loss_mw - net.res_line.pl_mw.sum()) < 1e-6


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scale=arrays(np.float64, 33, elements=st.floats(0.0, 1.6)), pf_angle=st.floats(0.0, 0.6))
def test_random_loads_match_runpp(case33, scale, pf_angle):
    net = pn.case33bw()
    net.load["p_mw"] *= scale[net.load.bus.to_numpy()]
    net.load["q_mvar"] = net.load.p_mw * np.tan(pf_angle)
    _runpp(net)
    p = np.zeros(33)
    q = np.zeros(33)
    np.add.at(p, net.load.bus.to_numpy(), net.load.p_mw.to_numpy())
    np.add.at(q, net.load.bus.to_numpy(), net.load.q_mvar.to_numpy())
    pf = case33.power_flow(p, q)
    _check_physics(pf)
    np.testing.assert_allclose(pf.vm_pu, net.res_bus.vm_pu.to_numpy(), atol=1e-6)
    assert abs(pf.loss_mw - net.res_line.pl_mw.sum()) < 1e-6
    np.testing.assert_allclose(
        pf.i_ka,
        net.res_line.i_ka[net.line.in_service]
        .reindex(net.line.index[net.line.in_service])
        .to_numpy()[_branch_order(case33, net)],
        atol=1e-6,
    )


def _branch_order(feeder, net):
    """Map flexopt's breadth-first branch order onto pandapower's in-service lines."""
    lines = net.line[net.line.in_service]
    key = {
        frozenset((int(a), int(b))): k
        for k, (a, b) in enumerate(zip(lines.from_bus, lines.to_bus, strict=True))
    }
    return np.array(
        [
            key[frozenset((int(feeder.bus[p]), int(feeder.bus[c])))]
            for p, c in zip(feeder.parent, feeder.child, strict=True)
        ]
    )


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scale=arrays(np.float64, (3, 4, 33), elements=st.floats(-0.5, 1.5)))
def test_batched_equals_unbatched(case33, scale):
    p = case33.p_base_mw * scale
    q = case33.q_base_mvar * scale
    batch = case33.power_flow(p, q)
    assert batch.vm_pu.shape == (3, 4, 33)
    assert batch.loss_mw.shape == (3, 4)
    _check_physics(batch)
    for i, j in np.ndindex(3, 4):
        one = case33.power_flow(p[i, j], q[i, j])
        np.testing.assert_allclose(batch.vm_pu[i, j], one.vm_pu, atol=1e-9)
        np.testing.assert_allclose(batch.loss_mw[i, j], one.loss_mw, atol=1e-9)


def test_line_charging_and_shunts_match_runpp():
    net = pn.case33bw()
    net.line["c_nf_per_km"] = 300.0
    pp.create_shunt(net, bus=17, q_mvar=-0.3)  # a 0.3 Mvar capacitor
    pp.create_sgen(net, bus=24, p_mw=0.5, q_mvar=0.0)  # injections reduce the net load
    feeder = fx.grid.Feeder.from_pandapower(net)
    _runpp(net)
    pf = feeder.power_flow()
    np.testing.assert_allclose(pf.vm_pu, net.res_bus.vm_pu.to_numpy(), atol=1e-6)
    assert abs(pf.loss_mw - net.res_line.pl_mw.sum()) < 1e-6


def test_meshed_feeder_is_rejected():
    net = pn.case33bw()
    net.line.loc[net.line.index[~net.line.in_service][0], "in_service"] = True  # close a tie line
    with pytest.raises(TopologyError, match="meshed"):
        fx.grid.Feeder.from_pandapower(net)


def test_disconnected_feeder_is_rejected():
    with pytest.raises(TopologyError, match=r"not radial|not connected"):
        fx.grid.Feeder.from_branches(
            [0, 1, 2, 3], [1, 2, 0, 5], [1, 1, 1, 1], [1, 1, 1, 1], vn_kv=10, root=0
        )


def test_non_convergence_raises(case33):
    with pytest.raises(PowerFlowError, match="did not converge"):
        case33.power_flow(case33.p_base_mw * 40, case33.q_base_mvar * 40)


def test_branch_flows_balance_at_every_bus(case33):
    """Kirchhoff: power into a bus = its load + power into its child branches."""
    pf = case33.power_flow()
    f = case33
    s_from = pf.s_from_mva
    s_to = s_from - (f.r_pu + 1j * f.x_pu) * np.abs(pf.i_branch_pu) ** 2 * f.base_mva
    for k, j in enumerate(f.child):
        out = s_from[f.parent == j].sum()
        load = pf.p_mw[j] + 1j * pf.q_mvar[j]
        assert abs(s_to[k] - out - load) < 1e-9


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scale=arrays(np.float64, (5, 69), elements=st.floats(-0.5, 1.5)))
def test_numba_and_numpy_engines_agree(case69, scale):
    p, q = case69.p_base_mw * scale, case69.q_base_mvar * scale
    a = case69.power_flow(p, q, engine="numba")
    b = case69.power_flow(p, q, engine="numpy")
    # same fixed point; each numba power flow stops on its own tolerance (1e-10 pu)
    np.testing.assert_allclose(a.v_pu, b.v_pu, atol=1e-9)
    np.testing.assert_allclose(a.i_branch_pu, b.i_branch_pu, atol=1e-8)
    np.testing.assert_allclose(a.loss_mw, b.loss_mw, atol=1e-9)


def test_unknown_engine_is_rejected(case33):
    with pytest.raises(ValueError, match="engine"):
        case33.power_flow(engine="gpu")


def test_numpy_engine_reports_non_convergence(case33):
    with pytest.raises(PowerFlowError, match="did not converge"):
        case33.power_flow(case33.p_base_mw * 40, case33.q_base_mvar * 40, engine="numpy")
