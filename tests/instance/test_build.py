"""Instances built from pandapower nets (``Instance.from_pandapower``), written with
``Instance.save`` and read back equal; the public prosumer generator."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pandas as pd
import pytest

import flexopt as fx
from flexopt.errors import FlexoptError, InstanceError, OutputError, TopologyError
from flexopt.grid.build import feeder_from_data
from flexopt.instance import DSOSpec, make_prosumers
from tests.instance.roundtrip import assert_instances_equal

HAS_SIMBENCH = importlib.util.find_spec("simbench") is not None
LV = "simbench:1-LV-rural1--0-sw"


@pytest.fixture(scope="module")
def built():
    """case30 with a drawn case33bw DSO, a case69 DSO with its own prosumer table and
    baseline, a surge and a derated line."""
    table = pd.DataFrame(
        {
            "prosumer_id": ["B-1", "B-2"],
            "bus": [5, 17],
            "p_max_mw": [0.1, 0.2],
            "e_max_mwh": [0.4, 0.8],
            "soc_init_pu": [0.5, 0.5],
            "efficiency": [0.95, 0.9],
            "a_eur_per_mw2h": [100.0, 50.0],
            "b_eur_per_mwh": [60.0, 45.5],
        }
    )
    baseline = pd.DataFrame(
        {"hour": [1, 2, 20], "prosumer_id": ["B-1", "B-1", "B-2"], "p_mw": [-0.05, -0.05, 0.1]}
    )
    increase = pd.DataFrame({"hour": [13, 14], "bus": [2, 2], "increase_pu": [0.1, 0.1]})
    return fx.Instance.from_pandapower(
        "case30",
        [
            DSOSpec("A", 2, "case33bw", copies=3, prosumers=5),
            DSOSpec("B", 3, "case69", copies=2, prosumers=table, baseline=baseline),
        ],
        name="built30",
        load_increase=increase,
        ratings_mw={"line_2": 55.5},
        seed=7,
    )


def test_built_instance_holds_what_was_asked(built):
    assert built.name == "built30"
    assert built.hours == 24
    a, b = built.dsos
    assert (a.id, a.bus, a.n_feeders, len(a.prosumers)) == ("A", 2, 3, 5)
    assert a.feeder.name == "case33bw"
    assert a.feeder.vn_kv == 12.66
    assert a.prosumers["p_max_mw"].between(0.05, 0.15).all()
    assert list(b.prosumers.index) == ["B-1", "B-2"]
    assert b.n_feeders == 2
    assert b.baseline_mw.at[20, "B-2"] == 0.1
    assert b.baseline_mw.at[3, "B-1"] == 0.0
    assert built.transmission.branches.at["line_2", "rating_mw"] == 55.5
    assert built.scenario.load_increase.at[14, 2] == 0.1
    assert built.scenario.load_increase.to_numpy().sum() == pytest.approx(0.2)
    assert (built.transmission.buses["sigma_pu"] > 0).sum() == (
        built.transmission.buses["load_p_mw"] > 0
    ).sum()


def test_save_then_load_is_the_same_instance(built, tmp_path):
    out = built.save(tmp_path / "b30")
    assert (out / ".flexopt-output").read_text().startswith("flexopt-output: instance")
    assert_instances_equal(built, fx.load_instance(out))
    with pytest.raises(OutputError):
        built.save(out)  # an existing instance is replaced only when asked
    assert built.save(out, replace=True) == out


def test_a_bundled_instance_round_trips(tmp_path):
    inst = fx.load_instance("instances/rts24-3dso")
    assert_instances_equal(inst, fx.load_instance(inst.save(tmp_path / "rts")))


def test_the_built_instance_runs(built):
    res = fx.run_market(built, "none")
    assert set(res.summary["dso"]) == {"A", "B"}


def test_same_seed_same_prosumers_and_public_generator():
    feeder = fx.grid.Feeder.from_pandapower(fx.grid.case33bw())
    p1, b1 = make_prosumers(feeder, 6, seed=3, dso_id="D")
    p2, _ = make_prosumers(feeder, 6, seed=np.random.default_rng(3), dso_id="D")
    pd.testing.assert_frame_equal(p1, p2)
    assert list(p1.columns)[:3] == ["prosumer_id", "dso_id", "bus"]
    assert p1["prosumer_id"].iloc[0] == "D-P01"
    assert p1["bus"].is_unique
    assert set(b1["hour"]) == set(range(1, 25))
    small, _ = make_prosumers(feeder, 4, seed=0, p_max_mw=(0.005, 0.015))
    assert small["p_max_mw"].between(0.005, 0.015).all()
    with pytest.raises(ValueError, match="n and hours"):
        make_prosumers(feeder, 0)


def test_generator_reads_the_feeder_of_an_instance():
    """The same draws on the feeder read from pandapower and from the instance table."""
    inst = fx.load_instance("instances/rts24-3dso")
    table_feeder = feeder_from_data(inst.dsos[0].feeder)
    pp_feeder = fx.grid.Feeder.from_pandapower(fx.grid.case33bw())
    a, _ = make_prosumers(table_feeder, 12, seed=1)
    b, _ = make_prosumers(pp_feeder, 12, seed=1)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"id": "", "bus": 1, "feeder": "case33bw"}, "id"),
        ({"id": "D", "bus": "7", "feeder": "case33bw"}, "bus"),
        ({"id": "D", "bus": 7, "feeder": "case33bw", "copies": 0}, "copies"),
        ({"id": "D", "bus": 7, "feeder": "case33bw", "prosumers": 0}, "prosumers"),
        ({"id": "D", "bus": 7, "feeder": "case33bw", "baseline": pd.DataFrame()}, "baseline"),
        ({"id": "D", "bus": 7, "feeder": "case33bw", "vn_kv": 0.0}, "vn_kv"),
    ],
)
def test_bad_specs_are_one_line(spec, field):
    with pytest.raises(InstanceError, match=f"field '{field}'") as err:
        DSOSpec(**spec)
    assert "\n" not in str(err.value)


def test_bad_requests_name_what_is_wrong(tmp_path):
    ok = [DSOSpec("D", 2, "case33bw", prosumers=2)]
    with pytest.raises(FlexoptError, match="transmission: 'case9999' is neither"):
        fx.Instance.from_pandapower("case9999", ok)
    with pytest.raises(FlexoptError, match="does not exist"):
        fx.Instance.from_pandapower(str(tmp_path / "none.json"), ok)
    with pytest.raises(FlexoptError, match="DSOSpec 'D' feeder: 'nofeeder' is neither"):
        fx.Instance.from_pandapower("case30", [DSOSpec("D", 2, "nofeeder")])
    with pytest.raises(InstanceError, match=r"distribution\.dso\[0\]\.bus"):
        fx.Instance.from_pandapower("case30", [DSOSpec("D", 0, "case33bw", prosumers=2)])
    with pytest.raises(FlexoptError, match="ratings_mw: no branch 'line_999'"):
        fx.Instance.from_pandapower("case30", ok, ratings_mw={"line_999": 1.0})


def test_json_nets_and_net_objects(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandapower as pp
        import pandapower.networks as pn

    pp.to_json(pn.case30(), str(tmp_path / "t.json"))
    pp.to_json(pn.case33bw(), str(tmp_path / "f.json"))
    net69 = fx.grid.case69()
    inst = fx.Instance.from_pandapower(
        str(tmp_path / "t.json"),
        [
            DSOSpec("D1", 2, str(tmp_path / "f.json"), prosumers=2),
            DSOSpec("D2", 3, net69, prosumers=2),
            DSOSpec("D3", 7, net69, prosumers=2),
        ],
    )
    d1, d2, d3 = inst.dsos
    assert d1.feeder.name == "f"
    assert d2.feeder.name == "case69"
    assert d2.feeder is d3.feeder  # one net object: one feeder file
    ref = fx.Instance.from_pandapower("case30", [DSOSpec("D1", 2, "case33bw", prosumers=2)])
    pd.testing.assert_frame_equal(d1.feeder.branches, ref.dsos[0].feeder.branches)
    pd.testing.assert_frame_equal(inst.transmission.branches, ref.transmission.branches)


def test_a_feeder_with_an_off_nominal_transformer_is_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandapower as pp

    net = pp.create_empty_network(name="offnominal")
    hv, lv, end = (pp.create_bus(net, vn_kv=v) for v in (20.0, 0.4, 0.4))
    pp.create_ext_grid(net, hv)
    pp.create_transformer(net, hv, lv, "0.4 MVA 20/0.4 kV")
    net.trafo["tap_pos"] = 2
    pp.create_line(net, lv, end, 0.1, "NAYY 4x50 SE")
    pp.create_load(net, end, p_mw=0.05)
    with pytest.raises(TopologyError, match="off-nominal"):
        fx.Instance.from_pandapower("case30", [DSOSpec("D", 2, net, prosumers=1)])


@pytest.mark.skipif(not HAS_SIMBENCH, reason="simbench (optional extra) not installed")
def test_simbench_feeder_is_referred_to_its_low_voltage(tmp_path):
    inst = fx.Instance.from_pandapower("case30", [DSOSpec("LV", 2, LV, copies=40, prosumers=4)])
    f = inst.dsos[0].feeder
    assert f.name == "simbench_1-LV-rural1--0-sw"
    assert f.vn_kv == 0.4
    assert f.branches["p_mw"].sum() == pytest.approx(0.08)  # loads only, PV left out
    assert inst.dsos[0].prosumers["p_max_mw"].between(0.005, 0.015).all()
    for note in ("static generators", "phase shift", "referred to 0.4 kV", "root voltage"):
        assert note in inst.description
    # the table's feeder against pandapower's own power flow of the loads (PV out of service)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandapower as pp
        import simbench

        net = simbench.get_simbench_net(LV[len("simbench:") :])
    net.sgen["in_service"] = False
    net.ext_grid["vm_pu"] = 1.0
    pp.runpp(net)
    feeder = feeder_from_data(f)
    pf = feeder.power_flow(feeder.p_base_mw, feeder.q_base_mvar)
    # the series losses match; the table leaves out the transformer's no-load loss (pfe)
    no_load = net.trafo.pfe_kw.sum() / 1e3
    total = net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()
    assert float(pf.loss_mw) == pytest.approx(total - no_load, rel=0.01)
    assert_instances_equal(inst, fx.load_instance(inst.save(tmp_path / "lv")))


def test_dsos_sharing_a_feeder_file_with_their_own_voltage_round_trip(tmp_path):
    """Two DSOs on one feeder table at different voltages: one file, each DSO's vn_kv."""
    inst = fx.Instance.from_pandapower(
        "case30",
        [
            DSOSpec("A", 2, "case33bw", prosumers=2),
            DSOSpec("B", 3, "case33bw", prosumers=2, vn_kv=20.0),
        ],
    )
    assert [d.feeder.vn_kv for d in inst.dsos] == [12.66, 20.0]
    out = inst.save(tmp_path / "two")
    assert sorted(p.name for p in (out / "distribution").glob("case33bw*")) == ["case33bw.csv"]
    assert_instances_equal(inst, fx.load_instance(out))
