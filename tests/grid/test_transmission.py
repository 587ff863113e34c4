"""Transmission DC model against pandapower's own PTDF and DC power flow."""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from pandapower.pypower.makePTDF import makePTDF

import flexopt as fx
from flexopt.errors import TopologyError
from flexopt.grid import balancing_weights, load_reduction_sensitivity


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("case", ["case24_ieee_rts", "case118"])
def test_ptdf_equals_makeptdf(case):
    net = getattr(pn, case)()
    phi = fx.grid.ptdf(net)
    ppc = net._ppc
    ref = makePTDF(ppc["baseMVA"], ppc["bus"], ppc["branch"])
    in_service = np.real(ppc["branch"][:, 10]) > 0
    cols = net._pd2ppc_lookups["bus"][phi.columns.to_numpy()]
    np.testing.assert_allclose(phi.to_numpy(), ref[in_service][:, cols], atol=1e-12)


@pytest.mark.parametrize("case", ["case24_ieee_rts", "case118"])
def test_ptdf_reproduces_rundcpp_flows(case):
    net = getattr(pn, case)()
    phi = fx.grid.ptdf(net)
    _quiet(pp.rundcpp, net)
    injection = -net.res_bus.p_mw.reindex(phi.columns).to_numpy()
    ref = np.r_[
        net.res_line.p_from_mw[net.line.in_service].to_numpy(),
        net.res_trafo.p_hv_mw[net.trafo.in_service].to_numpy(),
    ]
    np.testing.assert_allclose(phi.to_numpy() @ injection, ref, atol=1e-9)


def test_ptdf_slack_column_is_zero_and_rows_named():
    net = pn.case24_ieee_rts()
    phi = fx.grid.ptdf(net)
    slack = int(net.ext_grid.bus.iloc[0])
    assert np.all(phi[slack] == 0.0)
    assert list(phi.index[:2]) == ["line_0", "line_1"]
    assert phi.index[-1] == "trafo_4"


def test_ratings_from_max_i_ka_and_sn_mva():
    r = fx.grid.line_ratings_mw(pn.case24_ieee_rts())
    # IEEE RTS 1979: 175 MVA at 138 kV, 500 MVA at 230 kV, 400 MVA transformers
    assert set(np.round(r[r.index.str.startswith("line")]).unique()) == {175.0, 500.0}
    assert set(r[r.index.str.startswith("trafo")].unique()) == {400.0}


def test_sensitivity_slack_rule_is_ptdf():
    model = fx.grid.transmission_from_pandapower(pn.case24_ieee_rts())
    w = balancing_weights(model.n_bus, np.array([0]), None, model.slack_idx)
    h = load_reduction_sensitivity(model.ptdf, w)
    np.testing.assert_allclose(h[0], model.ptdf, atol=1e-15)


def test_sensitivity_distributed_matches_finite_difference():
    """H is the flow change per MW of load reduction when generators share the imbalance."""
    model = fx.grid.transmission_from_pandapower(pn.case24_ieee_rts())
    rng = np.random.default_rng(3)
    gen_pos = np.array([0, 1, 6, 12, 14, 15, 17, 20, 21, 22])
    p_da = rng.uniform(10, 300, size=(2, len(gen_pos)))
    w = balancing_weights(model.n_bus, gen_pos, p_da, model.slack_idx)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    h = load_reduction_sensitivity(model.ptdf, w)
    load = rng.uniform(0, 200, model.n_bus)
    for t in range(2):
        g = np.zeros(model.n_bus)
        np.add.at(g, gen_pos, p_da[t])
        base = model.flows_mw(g - load)
        for b in (3, 9, 18):
            reduced = load.copy()
            reduced[b] -= 1.0
            g2 = g - w[t]  # the units lower their output by 1 MW in total
            np.testing.assert_allclose(model.flows_mw(g2 - reduced) - base, h[t, :, b], atol=1e-10)


def test_islanded_network_is_rejected():
    net = pn.case24_ieee_rts()
    model = fx.grid.transmission_from_pandapower(net)
    keep = np.ones(model.n_branch, dtype=bool)
    keep[model.branch.get_indexer(["line_0", "line_1", "line_2"])] = False  # isolate bus 0
    from dataclasses import replace

    cut = replace(
        model,
        branch=model.branch[keep],
        from_idx=model.from_idx[keep],
        to_idx=model.to_idx[keep],
        x_pu=model.x_pu[keep],
        tap=model.tap[keep],
        rating_mw=model.rating_mw[keep],
    )
    with pytest.raises(TopologyError, match="not connected"):
        _ = cut.ptdf
