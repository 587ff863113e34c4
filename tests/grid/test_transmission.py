"""Transmission DC model against pandapower's own PTDF and DC power flow."""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest
from pandapower.converter.pypower.to_ppc import to_ppc
from pandapower.pypower.makePTDF import makePTDF

import flexopt as fx
from flexopt.errors import TopologyError
from flexopt.grid import balancing_weights, load_reduction_sensitivity
from flexopt.grid.pandapower_io import transmission_tables


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _reference(net):
    """makePTDF on the energized case pandapower builds (``to_ppc``: the ``ppci``), and each
    pandapower bus's column in it."""
    ppci = _quiet(to_ppc, net, init="flat")
    return makePTDF(ppci["baseMVA"], ppci["bus"], ppci["branch"]), net._pd2ppc_lookups["bus"]


def _rundcpp_flows(net, names):
    _quiet(pp.rundcpp, net)
    out = []
    for name in names:
        element, idx = name.split("_")[0], int(name.split("_")[1])
        res = net.res_line.p_from_mw if element == "line" else net.res_trafo.p_hv_mw
        out.append(res.at[idx])
    return np.array(out)


def _check_against_pandapower(net):
    """(T3) equals makePTDF and (T4, T4a) reproduce rundcpp's branch flows."""
    phi = fx.grid.ptdf(net)
    ref, lookup = _reference(net)
    np.testing.assert_allclose(
        phi.to_numpy(), ref[:, lookup[phi.columns.to_numpy()]], rtol=0, atol=1e-12
    )
    model = fx.grid.transmission_from_pandapower(net)
    want = _rundcpp_flows(net, model.branch)
    injection = np.zeros(model.n_bus)
    res = net.res_bus.p_mw.dropna()
    pos = model.bus.get_indexer(res.index)
    np.add.at(injection, pos[pos >= 0], -res.to_numpy()[pos >= 0])
    np.testing.assert_allclose(model.flows_mw(injection), want, rtol=0, atol=1e-9)
    return phi, model


@pytest.mark.parametrize("case", ["case24_ieee_rts", "case118"])
def test_ptdf_equals_makeptdf_and_rundcpp(case):
    _check_against_pandapower(getattr(pn, case)())


def test_d5_open_switch_out_of_service_bus_and_isolated_bus():
    """The audit's failures: an open line switch or an out-of-service bus gave a bare KeyError,
    an isolated empty bus "singular B". Now handled as rundcpp does."""
    net = pn.case118()
    pp.create_switch(net, net.line.from_bus.at[5], 5, et="l", closed=False)
    net.bus.at[40, "in_service"] = False
    lonely = pp.create_bus(net, vn_kv=138.0)
    phi, _ = _check_against_pandapower(net)
    assert 40 not in phi.columns
    assert lonely not in phi.columns
    assert np.all(phi.loc["line_5"] == 0.0)  # open at one end: energized, no flow


def test_d5_closed_bus_bus_switch_fuses_buses():
    net = pn.case118()
    extra = pp.create_bus(net, vn_kv=138.0)
    pp.create_switch(net, 10, extra, et="b", closed=True)
    phi, _ = _check_against_pandapower(net)
    np.testing.assert_array_equal(phi[extra].to_numpy(), phi[10].to_numpy())


def test_d5_phase_shifters_are_accepted():
    """case1354pegase has six phase-shifting transformers (rejected before): the PTDF does
    not depend on the shift (it equals the one with the shifts zeroed, the audit's check); the
    flows do (T4a, against rundcpp)."""
    net = _quiet(pn.case1354pegase)
    assert (net.trafo.shift_degree != 0).sum() == 6
    phi, model = _check_against_pandapower(net)
    assert np.abs(model.flow_offset_mw).max() > 1.0
    net.trafo["shift_degree"] = 0.0
    np.testing.assert_allclose(fx.grid.ptdf(net).to_numpy(), phi.to_numpy(), atol=1e-13)
    with pytest.raises(TopologyError, match=r"trafo \d+ shifts the phase"):
        transmission_tables(pn.case89pegase())


def test_d5_zero_reactance_is_a_clear_error():
    net = pn.case118()
    net.line.at[3, "x_ohm_per_km"] = 0.0
    with pytest.raises(TopologyError, match="branch line_3 has zero reactance") as err:
        fx.grid.ptdf(net)
    assert "\n" not in str(err.value)


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
    with pytest.raises(TopologyError, match=r"not connected: 1 of its 24 buses \(e.g. \[0\]\)"):
        _ = cut.ptdf


def _dense_ptdf(model):
    """(T3) by its definition, dense: Φ[:, n] = B_f[:, n] B_bus[n, n]⁻¹."""
    a = np.zeros((model.n_branch, model.n_bus))
    rows = np.arange(model.n_branch)
    a[rows, model.from_idx] = 1.0
    a[rows, model.to_idx] = -1.0
    bf = a / (model.x_pu * model.tap)[:, None]
    keep = np.flatnonzero(np.arange(model.n_bus) != model.slack_idx)
    phi = np.zeros_like(a)
    phi[:, keep] = bf[:, keep] @ np.linalg.inv((a.T @ bf)[np.ix_(keep, keep)])
    return phi


@pytest.mark.parametrize("slack", [0, 3, 6])
def test_ptdf_equals_its_definition_with_parallel_branches_and_taps(slack):
    """A meshed 7-bus toy with a parallel pair, taps, a branch at the slack and more branches
    than one block of the sparse solve (T3)."""
    from flexopt.grid.transmission import TransmissionModel

    rng = np.random.default_rng(slack)
    ends = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 0), (1, 4), (2, 5), (2, 5)]
    ends += [tuple(rng.choice(7, 2, replace=False)) for _ in range(30)]
    f, t = np.array(ends).T
    nl = len(ends)
    model = TransmissionModel(
        bus=pd.Index(range(100, 107)),
        branch=pd.Index([f"line_{i}" for i in range(nl)]),
        from_idx=f,
        to_idx=t,
        x_pu=rng.uniform(0.01, 0.3, nl),
        tap=rng.uniform(0.9, 1.1, nl),
        rating_mw=np.full(nl, np.inf),
        slack_idx=slack,
    )
    np.testing.assert_allclose(model.ptdf, _dense_ptdf(model), rtol=0, atol=1e-12)
    assert np.all(model.ptdf[:, slack] == 0.0)


def test_ptdf_of_a_single_bus_is_empty():
    from flexopt.grid.transmission import TransmissionModel

    empty = np.zeros(0)
    model = TransmissionModel(
        bus=pd.Index([7]),
        branch=pd.Index([]),
        from_idx=empty.astype(int),
        to_idx=empty.astype(int),
        x_pu=empty,
        tap=empty,
        rating_mw=empty,
        slack_idx=0,
    )
    assert model.ptdf.shape == (0, 1)


@pytest.mark.slow
def test_ptdf_equals_makeptdf_on_case3120sp():
    """The benchmark case (benchmarks/ptdf.py): 3 120 buses, 3 693 branches, many blocks."""
    _check_against_pandapower(_quiet(pn.case3120sp))
