"""``examples/build_instance.py``: its core on a small instance (case30, two DSOs — one on
case33bw, one on a SimBench low-voltage grid — three prosumers each)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import flexopt as fx
from tests.instance.roundtrip import assert_instances_equal

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "build_instance.py"
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("simbench") is None, reason="simbench (optional extra) not installed"
)


def _example():
    spec = importlib.util.spec_from_file_location("build_instance_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_builds_a_congested_instance_and_runs_the_market(tmp_path):
    example = _example()
    inst = example.build("case30", n_dsos=2, prosumers=3)
    assert [d.feeder.name for d in inst.dsos] == ["case33bw", "simbench_1-LV-rural1--0-sw"]
    assert inst.dsos[1].feeder.vn_kv == 0.4
    assert len(inst.transmission.branches.query("rating_mw < 9000")) >= 2
    res = fx.run_market(inst, method="mlf", seed=0)
    assert res.summary["overload_mw_before"] > 0
    assert res.summary["overload_mw_after"] < res.summary["overload_mw_before"]
    assert_instances_equal(inst, fx.load_instance(inst.save(tmp_path / "inst")))


def test_the_example_runs_from_the_command_line(tmp_path, capsys):
    argv = ["--transmission", "case30", "--dsos", "2", "--prosumers", "2", "--method", "none"]
    assert _example().main([*argv, "--out", str(tmp_path / "ex")]) == 0
    assert "overload" in capsys.readouterr().out
    assert (tmp_path / "ex" / "instance" / "instance.toml").is_file()
    assert (tmp_path / "ex" / "results" / "summary.json").is_file()
