"""Feeders read from pandapower nets as pandapower models them, against ``runpp``.

Real distribution grids with their substation transformers (Kerber, Dickert, CIGRE LV/MV,
mv_oberrhein, the IEEE European LV feeder, lv_schutterwald; SimBench when installed) and the
regressions of issue 14: open line switches (D1), elements that draw power (D2),
out-of-service external grids (D3) and buses (D4).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

import flexopt as fx
from flexopt.errors import TopologyError
from flexopt.grid.pandapower_io import feeder_arrays

ATOL = 1e-8  # pu and MW: the acceptance of issue 14

# pandapower's own network builders warn about their stored data (deprecated columns)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


def _runpp(net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, tolerance_mva=1e-10, max_iteration=50)


def _element_losses(net, feeder, pf) -> tuple[np.ndarray, np.ndarray]:
    """Loss per pandapower element (flexopt, pandapower): parallel elements share a feeder
    branch, a three-winding transformer is three branches to its star point."""
    want = {
        f"{et}_{i}": v
        for et in ("line", "trafo", "trafo3w")
        for i, v in net[f"res_{et}"].pl_mw.items()
    }
    got: dict[frozenset[str], float] = {}
    for label, loss in zip(feeder.branch_label, pf.loss_branch_mw, strict=True):
        key = frozenset(
            m.rsplit("_", 1)[0] if m.startswith("trafo3w") else m for m in label.split("|")
        )
        got[key] = got.get(key, 0.0) + loss
    return np.array(list(got.values())), np.array([sum(want[m] for m in k) for k in got])


def compare_with_runpp(net, *, ext_grid=None, atol=ATOL):
    """Voltages (complex), every branch's loss, the root's import and (F7) against runpp."""
    feeder = fx.grid.Feeder.from_pandapower(net, ext_grid=ext_grid)
    pf = feeder.power_flow(tol_pu=1e-12, max_iter=500)
    _runpp(net)
    real = feeder.bus[feeder.bus.isin(net.bus.index)]  # auxiliary buses have no result row
    res = net.res_bus.loc[real]
    v_want = res.vm_pu.to_numpy() * np.exp(1j * np.deg2rad(res.va_degree.to_numpy()))
    v_got = pf.v_pu[feeder.bus.get_indexer(real)]
    assert np.abs(v_got - v_want).max() < atol
    got, want = _element_losses(net, feeder, pf)
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)
    assert abs(pf.loss_mw - want.sum()) < atol
    # (F7): the root supplies what the buses draw plus the losses
    assert abs(pf.p_root_mw - pf.p_drawn_mw.sum() - pf.loss_mw) < 1e-9
    return feeder, pf


def _dickert_long():
    return pn.create_dickert_lv_network(
        feeders_range="long", linetype="C&OHL", customer="multiple", case="bad"
    )


@pytest.mark.parametrize(
    "make",
    [
        pn.create_kerber_landnetz_freileitung_1,
        pn.create_kerber_landnetz_kabel_1,
        pn.create_kerber_dorfnetz,
        pn.create_kerber_vorstadtnetz_kabel_1,
        pn.create_dickert_lv_network,
        _dickert_long,
        pn.create_cigre_network_lv,
        pn.create_cigre_network_mv,
        lambda: pn.create_cigre_network_mv(with_der="all"),  # sgens and storage
        pn.ieee_european_lv_asymmetric,  # asymmetric loads, summed to balanced
    ],
    ids=[
        "kerber_landnetz_freileitung_1",
        "kerber_landnetz_kabel_1",
        "kerber_dorfnetz",
        "kerber_vorstadtnetz_kabel_1",
        "dickert",
        "dickert_long_multiple",
        "cigre_lv",
        "cigre_mv",
        "cigre_mv_der",
        "ieee_european_lv",
    ],
)
def test_real_feeders_with_transformers_match_runpp(make):
    net = make()
    feeder, _ = compare_with_runpp(net)
    assert feeder.ratio is not None  # the substation transformer is in the feeder
    if len(net.ext_grid) == 1 and not len(net.load[net.load.bus == net.ext_grid.bus.iloc[0]]):
        assert abs(feeder.power_flow().p_root_mw - net.res_ext_grid.p_mw.iloc[0]) < ATOL


@pytest.mark.parametrize("ext_grid", [0, 1])
def test_mv_oberrhein_one_feeder_per_substation(ext_grid):
    """mv_oberrhein has two HV/MV substations, each feeding its own island: one feeder per
    external grid (``ext_grid=``) — the split pandapower's ``separation_by_sub`` makes."""
    net = pn.mv_oberrhein()
    feeder, _ = compare_with_runpp(net, ext_grid=ext_grid)
    root = net.ext_grid.bus.at[ext_grid]
    assert feeder.bus[feeder.root] == root
    other = net.ext_grid.bus.at[1 - ext_grid]
    assert other not in feeder.bus


def test_mv_oberrhein_separated_nets_match_runpp():
    for net in pn.mv_oberrhein(separation_by_sub=True):
        compare_with_runpp(net)


@pytest.mark.parametrize("ext_grid", [0, 5])
def test_lv_schutterwald_subnets_match_runpp(ext_grid):
    """14 LV grids, each with its own transformer and external grid, 88 open line switches."""
    net = pn.lv_schutterwald()
    compare_with_runpp(net, ext_grid=net.ext_grid.index[ext_grid])


SIMBENCH = [
    "1-LV-rural1--0-sw",
    "1-LV-rural2--0-sw",
    "1-LV-rural3--0-sw",
    "1-LV-semiurb4--0-sw",
    "1-LV-semiurb5--0-sw",
    "1-LV-urban6--0-sw",
    "1-MV-rural--0-sw",
    "1-MV-semiurb--0-sw",
    "1-MV-urban--0-sw",
    "1-MV-comm--0-sw",
]
_QUICK = {"1-LV-rural1--0-sw", "1-MV-rural--0-sw"}


@pytest.mark.parametrize(
    "code",
    [c if c in _QUICK else pytest.param(c, marks=pytest.mark.slow) for c in SIMBENCH],
)
def test_simbench_grids_match_runpp(code):
    sb = pytest.importorskip("simbench")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = sb.get_simbench_net(code)
    compare_with_runpp(net)


# ---------------------------------------------------------------------- transformers
def _trafo_feeder(**trafo):
    net = pp.create_empty_network(sn_mva=1.0)
    hv = pp.create_bus(net, 20.0)
    lv = pp.create_bus(net, 0.4)
    end = pp.create_bus(net, 0.4)
    pp.create_ext_grid(net, hv, vm_pu=1.02, va_degree=10.0)
    spec = {"std_type": "0.4 MVA 20/0.4 kV"} | trafo
    pp.create_transformer(net, hv, lv, **spec)
    pp.create_line(net, lv, end, 0.3, "NAYY 4x150 SE")
    pp.create_load(net, end, p_mw=0.15, q_mvar=0.05)
    return net


@pytest.mark.parametrize(
    "setting",
    [
        {},
        {"tap_pos": 2},
        {"tap_pos": -2, "tap_side": "lv"},
        {
            "tap_pos": 1,
            "tap_step_percent": 0.0,
            "tap_step_degree": 5.0,
            "tap_changer_type": "Ideal",
        },
    ],
    ids=["neutral", "tap_hv", "tap_lv", "phase_shift_tap"],
)
def test_transformer_tap_and_shift_match_runpp(setting):
    net = _trafo_feeder()
    for col, value in setting.items():
        net.trafo[col] = value
    feeder, pf = compare_with_runpp(net)
    assert feeder.va_root_degree == 10.0
    assert pf.va_degree[feeder.root] == pytest.approx(10.0)


def test_transformer_fed_from_its_low_voltage_side_matches_runpp():
    """A step-up: the external grid at the LV bus, pandapower's tap side downstream."""
    net = _trafo_feeder(tap_pos=2)
    net.ext_grid.at[0, "bus"] = 1
    net.load.at[0, "bus"] = 0
    net.line.at[0, "in_service"] = False
    compare_with_runpp(net)


def test_parallel_transformers_and_lines_are_one_branch():
    net = _trafo_feeder()
    pp.create_transformer(net, 0, 1, std_type="0.4 MVA 20/0.4 kV")
    pp.create_line(net, 1, 2, 0.3, "NAYY 4x150 SE")
    feeder, _ = compare_with_runpp(net)
    assert sorted(feeder.branch_label) == ["line_0|line_1", "trafo_0|trafo_1"]
    net.trafo.at[1, "tap_pos"] = 1
    with pytest.raises(TopologyError, match="parallel branches trafo_0 and trafo_1"):
        fx.grid.Feeder.from_pandapower(net)


def test_three_winding_transformer_matches_runpp():
    net = pp.create_empty_network()
    hv, mv, lv = (pp.create_bus(net, v) for v in (110.0, 20.0, 10.0))
    pp.create_ext_grid(net, hv)
    pp.create_transformer3w(net, hv, mv, lv, "63/25/38 MVA 110/20/10 kV")
    pp.create_load(net, mv, p_mw=10.0, q_mvar=3.0)
    pp.create_load(net, lv, p_mw=8.0, q_mvar=2.0)
    compare_with_runpp(net)


# ---------------------------------------------------------------------- switches (D1)
def test_d1_line_open_at_one_end_stays_energized():
    """case33bw with charging and its tie lines in service but switched open at one end:
    pandapower keeps each energized from its closed end (the old reader dropped them: 1.8e-3
    pu)."""
    net = pn.case33bw()
    net.line["c_nf_per_km"] = 300.0
    ties = net.line.index[~net.line.in_service]
    for i in ties:
        net.line.at[i, "in_service"] = True
        pp.create_switch(net, net.line.to_bus.at[i], i, et="l", closed=False)
    feeder, _ = compare_with_runpp(net)
    assert all(f"line_{i}" in set(feeder.branch_label) for i in ties)
    assert feeder.n_bus == 33 + len(ties)  # one open end each


def test_d1_line_open_at_both_ends_and_open_bus_switch_isolate():
    net = pn.case33bw()
    net.line["c_nf_per_km"] = 300.0
    tie = net.line.index[~net.line.in_service][0]
    net.line.at[tie, "in_service"] = True
    for end in ("from_bus", "to_bus"):
        pp.create_switch(net, net.line.at[tie, end], tie, et="l", closed=False)
    extra = pp.create_bus(net, 12.66)
    pp.create_load(net, extra, p_mw=0.3)
    sw = pp.create_switch(net, 17, extra, et="b", closed=True)  # fused with bus 17
    feeder, _ = compare_with_runpp(net)
    assert f"line_{tie}" not in set(feeder.branch_label)
    assert extra not in feeder.bus  # fused: its load is bus 17's
    assert feeder.p_base_mw[feeder.bus.get_loc(17)] == pytest.approx(0.09 + 0.3)
    net.switch.at[sw, "closed"] = False
    feeder, _ = compare_with_runpp(net)
    assert extra not in feeder.bus


# ---------------------------------------------------------------------- elements (D2)
def test_d2_storage_is_modelled():
    """The issue's repro: a storage on case33bw changed pandapower by 1.6e-2 pu, flexopt by 0."""
    net = pn.case33bw()
    pp.create_storage(net, 17, p_mw=0.2, max_e_mwh=1)
    feeder, _ = compare_with_runpp(net)
    base = fx.grid.Feeder.from_pandapower(pn.case33bw())
    assert feeder.p_base_mw[17] == pytest.approx(base.p_base_mw[17] + 0.2)


def test_d2_every_element_that_draws_power_matches_runpp():
    net = pn.case33bw()
    net.line["c_nf_per_km"] = 200.0
    net.line["g_us_per_km"] = 20.0
    net.load.loc[net.load.index[:10], ["const_z_p_percent", "const_i_q_percent"]] = [40.0, 30.0]
    net.load.loc[net.load.index[10:20], ["const_i_p_percent", "const_z_q_percent"]] = [60.0, 20.0]
    pp.create_sgen(net, 24, p_mw=0.4, q_mvar=0.1)
    pp.create_storage(net, 12, p_mw=-0.1, max_e_mwh=1)
    pp.create_ward(net, 8, ps_mw=0.05, qs_mvar=0.02, pz_mw=0.03, qz_mvar=-0.04)
    pp.create_motor(net, 20, pn_mech_mw=0.08, cos_phi=0.85, efficiency_percent=92)
    pp.create_asymmetric_load(net, 30, p_a_mw=0.01, p_b_mw=0.03, p_c_mw=0.02, q_a_mvar=0.01)
    pp.create_asymmetric_sgen(net, 5, p_a_mw=0.02, p_b_mw=0.02, p_c_mw=0.02)
    pp.create_shunt(net, 15, q_mvar=-0.2, p_mw=0.01)
    feeder, pf = compare_with_runpp(net)
    assert feeder.const_z_share is not None
    assert feeder.g_end_pu is not None
    # pandapower applies a bus's voltage dependence to every PQ element at the bus
    # (makeSbus) but reports element results at constant power: compare the solver's import
    assert abs(pf.p_root_mw - net.res_ext_grid.p_mw.iloc[0]) < ATOL


@pytest.mark.parametrize(
    ("add", "match"),
    [
        (lambda n: pp.create_gen(n, 10, p_mw=0.1, vm_pu=1.0), r"gen 0 at bus 10 is a voltage"),
        (
            lambda n: pp.create_xward(n, 7, 0.1, 0.0, 0.0, 0.0, 0.1, 0.1, 1.0),
            r"xward 0 at bus 7 is an extended ward",
        ),
        (lambda n: pp.create_svc(n, 5, 1.0, 1.0, 1.0, 145.0), r"svc 0 at bus 5"),
    ],
    ids=["gen", "xward", "svc"],
)
def test_d2_elements_a_sweep_cannot_model_are_named(add, match):
    net = pn.case33bw()
    add(net)
    with pytest.raises(TopologyError, match=match) as err:
        fx.grid.Feeder.from_pandapower(net)
    assert "\n" not in str(err.value)


def test_out_of_service_refused_element_is_ignored():
    net = pn.case33bw()
    pp.create_gen(net, 10, p_mw=0.1, vm_pu=1.0, in_service=False)
    compare_with_runpp(net)


# ---------------------------------------------------------------------- D3, D4, sources
def test_d3_out_of_service_ext_grid_is_ignored():
    net = pn.case33bw()
    pp.create_ext_grid(net, 5, in_service=False)
    compare_with_runpp(net)


def test_d4_out_of_service_bus_is_de_energized_like_pandapower():
    """Bus 20 out of service: buses 20 and 21 are unsupplied (the old reader kept them
    energized: 0.12 MW of loss error); line 19–20 stays energized from bus 19."""
    net = pn.case33bw()
    net.line["c_nf_per_km"] = 300.0
    net.bus.at[20, "in_service"] = False
    feeder, _ = compare_with_runpp(net)
    dead = net.res_bus.index[net.res_bus.vm_pu.isna()]
    assert set(dead) == {20, 21}
    assert not set(dead) & set(feeder.bus)


def test_several_sources_need_a_choice_or_separate_islands():
    net = pn.mv_oberrhein()
    with pytest.raises(TopologyError, match=r"found 2 \[0, 1\]; pass ext_grid="):
        fx.grid.Feeder.from_pandapower(net)
    net = pn.case33bw()
    pp.create_ext_grid(net, 20)
    with pytest.raises(TopologyError, match="feeds the same island"):
        fx.grid.Feeder.from_pandapower(net, ext_grid=0)
    with pytest.raises(TopologyError, match="ext_grid 7 is not an in-service"):
        fx.grid.Feeder.from_pandapower(net, ext_grid=7)


def test_meshed_net_is_refused_in_one_line():
    net = pn.case33bw()
    net.line["in_service"] = True
    with pytest.raises(TopologyError, match="meshed") as err:
        fx.grid.Feeder.from_pandapower(net)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------- engines, API
def test_engines_agree_with_transformers_and_voltage_dependent_loads():
    net = pn.create_cigre_network_mv(with_der="all")
    net.load["const_z_p_percent"] = 50.0
    net.load["const_i_q_percent"] = 30.0
    feeder = fx.grid.Feeder.from_pandapower(net)
    rng = np.random.default_rng(1)
    p = feeder.p_base_mw * rng.uniform(-0.5, 1.5, (2, 3, feeder.n_bus))
    q = feeder.q_base_mvar * rng.uniform(0.0, 1.5, (2, 3, feeder.n_bus))
    a = feeder.power_flow(p, q, engine="numba")
    b = feeder.power_flow(p, q, engine="numpy")
    np.testing.assert_allclose(a.v_pu, b.v_pu, atol=1e-9)
    np.testing.assert_allclose(a.loss_mw, b.loss_mw, atol=1e-9)
    one = feeder.power_flow(p[1, 2], q[1, 2])
    np.testing.assert_allclose(a.v_pu[1, 2], one.v_pu, atol=1e-12)
    np.testing.assert_allclose(a.p_root_mw, a.p_drawn_mw.sum(-1) + a.loss_mw, atol=1e-9)


def test_feeder_arrays_round_trip_and_refusal():
    net = pn.case33bw()
    a = fx.grid.Feeder.from_pandapower(net)
    b = fx.grid.Feeder.from_branches(**feeder_arrays(net))
    np.testing.assert_allclose(a.power_flow().v_pu, b.power_flow().v_pu, atol=1e-14)
    with pytest.raises(TopologyError, match="cannot carry its transformers"):
        feeder_arrays(pn.create_kerber_landnetz_kabel_1())


def test_from_branches_merges_parallel_rows():
    a = fx.grid.Feeder.from_branches([0, 1], [1, 2], [1.0, 2.0], [1.0, 2.0], vn_kv=10, root=0)
    b = fx.grid.Feeder.from_branches(
        [0, 1, 1], [1, 2, 2], [1.0, 4.0, 4.0], [1.0, 4.0, 4.0], vn_kv=10, root=0
    )
    np.testing.assert_allclose(b.r_pu, a.r_pu)
    np.testing.assert_allclose(b.x_pu, a.x_pu)
