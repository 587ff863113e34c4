"""Marginal loss factors (L2a): the tree adjoint (``flexopt.grid._mlf``) equals the dense
Jacobian solve it replaced, to rounding, on every feature of a feeder (F3a, F4a, F6)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from flexopt.grid import Feeder, marginal_loss_factors
from flexopt.grid.loss_allocation import _marginal_dense_factors


def _assert_equal_to_dense(pf) -> None:
    """Adjoint = dense to 1e-10 relative (1e-12 of the largest factor where a factor is ~0),
    and the comparison is not between zeros."""
    adjoint = marginal_loss_factors(pf)
    dense = _marginal_dense_factors(pf)
    for a, d in zip(adjoint, dense, strict=True):
        assert a.shape == d.shape == pf.v_pu.shape
        scale = np.abs(d).max()
        assert scale > 1e-6
        np.testing.assert_allclose(a, d, rtol=1e-10, atol=1e-12 * scale)
        assert np.all(a[..., pf.feeder.root] == 0.0)


def _random_loads(feeder: Feeder, rng: np.random.Generator, shape: tuple[int, ...]):
    """Loads between 50 % injection and 150 % of the base case, reactive 0–150 %."""
    p = feeder.p_base_mw * rng.uniform(-0.5, 1.5, (*shape, feeder.n_bus))
    q = feeder.q_base_mvar * rng.uniform(0.0, 1.5, (*shape, feeder.n_bus))
    return p, q


@pytest.mark.parametrize("shape", [(), (24,), (3, 24)], ids=["n", "T_n", "k_T_n"])
@pytest.mark.parametrize("name", ["case33", "case69"])
def test_adjoint_equals_dense_on_random_loadings(request, name, shape):
    feeder = request.getfixturevalue(name)
    rng = np.random.default_rng(11)
    _assert_equal_to_dense(feeder.power_flow(*_random_loads(feeder, rng, shape)))


@pytest.mark.parametrize("name", ["case33", "case69"])
def test_adjoint_equals_dense_with_shunts_and_zip_loads(request, name):
    """Bus shunts (conductance and susceptance) and constant-impedance / constant-current
    shares (F4a) drawn per bus, different for P and Q."""
    feeder = request.getfixturevalue(name)
    rng = np.random.default_rng(5)
    n = feeder.n_bus
    y = rng.uniform(0.0, 0.005, n) + 1j * rng.uniform(-0.01, 0.02, n)
    shunts = replace(feeder, y_shunt_pu=y)
    _assert_equal_to_dense(shunts.power_flow(*_random_loads(feeder, rng, (2, 24))))
    zip_ = replace(
        shunts,
        const_z_share=rng.uniform(0.0, 0.5, (2, n)),
        const_i_share=rng.uniform(0.0, 0.5, (2, n)),
    )
    _assert_equal_to_dense(zip_.power_flow(*_random_loads(feeder, rng, (2, 24))))


def test_adjoint_equals_dense_with_ratios_branch_conductance_and_any_root(case69):
    """Everything at once on a synthetic feeder: complex cumulative ratios (F3a: |T| scales the
    ZIP loads' voltage), the branches' shunt conductance at both ends (F6, part of
    ``y_shunt_pu``), ZIP loads, and the root in the middle of the bus order."""
    rng = np.random.default_rng(9)
    table = case69.branch_table()
    order = rng.permutation(case69.n_bus)  # relabel: the root is no longer bus 0
    label = dict(zip(case69.bus, order, strict=True))
    base = Feeder.from_branches(
        table["from_bus"].map(label),
        table["to_bus"].map(label),
        table["r_ohm"],
        table["x_ohm"],
        vn_kv=case69.vn_kv,
        root=int(order[case69.root]),
        base_mva=case69.base_mva,
    )
    assert base.root != 0
    n, nb = base.n_bus, base.n_branch
    g_end = rng.uniform(0.0, 2e-3, (2, nb))
    y = 1j * rng.uniform(0.0, 0.01, n)
    np.add.at(y, base.parent, g_end[0])
    np.add.at(y, base.child, g_end[1])
    ratio = rng.uniform(0.95, 1.05, n) * np.exp(1j * rng.uniform(-0.2, 0.2, n))
    ratio[base.root] = 1.0
    feeder = replace(
        base,
        p_base_mw=rng.uniform(0.0, 0.15, n),
        q_base_mvar=rng.uniform(0.0, 0.1, n),
        y_shunt_pu=y,
        g_end_pu=g_end,
        ratio=ratio,
        const_z_share=rng.uniform(0.0, 0.5, (2, n)),
        const_i_share=rng.uniform(0.0, 0.5, (2, n)),
    )
    _assert_equal_to_dense(feeder.power_flow(*_random_loads(feeder, rng, (4, 24))))
    constant_power = replace(feeder, const_z_share=None, const_i_share=None)
    _assert_equal_to_dense(constant_power.power_flow(*_random_loads(feeder, rng, (24,))))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_adjoint_equals_dense_on_a_real_feeder_with_transformers():
    """CIGRE MV read from pandapower: its transformers (off-nominal ratios, iron losses at
    both ends), line conductance and voltage-dependent loads; at no load too (losses from
    the shunts only)."""
    import pandapower.networks as pn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = pn.create_cigre_network_mv(with_der="all")
    net.load["const_z_p_percent"] = 30.0
    net.load["const_i_q_percent"] = 50.0
    net.line["g_us_per_km"] = 5.0
    tap = {"tap_side": "hv", "tap_neutral": 0, "tap_step_percent": 2.5, "tap_pos": 2}
    for col, value in (tap | {"tap_changer_type": "Ratio"}).items():  # off-nominal ratios
        net.trafo[col] = value
    feeder = Feeder.from_pandapower(net)
    assert feeder.ratio is not None
    assert np.abs(np.abs(feeder.ratio) - 1.0).max() > 1e-3
    assert feeder.g_end_pu is not None
    assert feeder.const_z_share is not None
    rng = np.random.default_rng(0)
    _assert_equal_to_dense(feeder.power_flow(*_random_loads(feeder, rng, (5,)), tol_pu=1e-13))
    idle = feeder.power_flow(np.zeros(feeder.n_bus), np.zeros(feeder.n_bus))
    _assert_equal_to_dense(idle)


def test_adjoint_equals_central_differences_with_ratios(case33):
    """The adjoint against (L2) itself, not only the dense form, with a phase-shifting ratio
    and ZIP loads."""
    rng = np.random.default_rng(2)
    n = case33.n_bus
    ratio = np.exp(1j * rng.uniform(-0.1, 0.1, n)) * rng.uniform(0.97, 1.03, n)
    ratio[case33.root] = 1.0
    feeder = replace(
        case33,
        ratio=ratio,
        const_z_share=rng.uniform(0.0, 0.5, (2, n)),
        const_i_share=rng.uniform(0.0, 0.5, (2, n)),
    )
    pf = feeder.power_flow(*_random_loads(feeder, rng, (3,)), tol_pu=1e-13)
    exact = marginal_loss_factors(pf)
    diff = marginal_loss_factors(pf, step_mw=1e-4)
    np.testing.assert_allclose(exact[0], diff[0], atol=1e-8)
    np.testing.assert_allclose(exact[1], diff[1], atol=1e-8)


def test_a_singular_adjoint_system_is_a_power_flow_error(case33, monkeypatch):
    """The tree elimination does not pivot: a non-finite factor is reported, not returned."""
    import flexopt.grid.loss_allocation as la
    from flexopt.errors import PowerFlowError

    pf = case33.power_flow(case33.p_base_mw, case33.q_base_mvar)
    real = la.adjoint_factors

    def singular(*args, **kwargs):
        dl_dp, dl_dq = real(*args, **kwargs)
        dl_dp[..., 3] = np.nan
        return dl_dp, dl_dq

    monkeypatch.setattr(la, "adjoint_factors", singular)
    with pytest.raises(PowerFlowError, match="singular"):
        marginal_loss_factors(pf)
