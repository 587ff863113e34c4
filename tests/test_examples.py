"""The runnable examples (``examples/*.py``) in their fast setting: each runs from the command
line, writes where it is told and prints its results. ``examples/build_instance.py`` has its
own test (``test_example_build_instance.py``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pandas as pd

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_tested():
    tested = {"quickstart", "compare_methods", "weight_sweep", "optim_own_problem"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested | {"build_instance"}


def test_quickstart(tmp_path, capsys):
    assert _example("quickstart").main(["--fast", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Instance('rts24-3dso': 24 buses, 3 DSOs, 24 h)" in out
    assert "MarketResult(method='mlf'" in out
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["method"] == "mlf"
    assert summary["overload_mw_after"] < summary["overload_mw_before"]
    assert (tmp_path / "line_loading.png").stat().st_size > 10_000
    assert "hour" in pd.read_csv(tmp_path / "results" / "settlement.csv").columns


def test_compare_methods(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert _example("compare_methods").main(["--fast", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "lowest social cost:" in text
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["method"]) == ["centralized", "mlf", "none", "wca"]
    assert (runs["overload_mw_after"] <= runs["overload_mw_before"]).all()
    assert (out / "compare.png").is_file()


def test_weight_sweep_draws_the_tradeoff(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert _example("weight_sweep").main(["--fast", "--out", str(out)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "f_loss" in ln]
    assert len(lines) == 6  # mlf and wca at three weights
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["dcp_weight"].unique()) == [0.0, 0.5, 1.0]
    assert (out / "tradeoff_example.png").stat().st_size > 10_000
    assert (out / "tradeoff.png").is_file()


def test_optim_on_your_own_problem(capsys):
    example = _example("optim_own_problem")
    r = example.solve(max_iter=200, seed=0)
    assert r.feasible
    assert (example.constraints(r.x[None, :]) <= 1e-9).all()
    assert 5_800 < float(r.f) < 6_300  # the best known cost is about 5 885
    assert example.main(["--fast"]) == 0
    assert capsys.readouterr().out.startswith("Result(WCA: x=[4 values]")
