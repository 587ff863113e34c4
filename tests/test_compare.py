"""``flexopt compare`` and ``fx.compare``: every combination runs once, a rerun skips finished
runs, the tables hold a row per run (and per run and DSO), the figures are drawn."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import flexopt as fx
import flexopt.run.compare as compare_module
from flexopt.cli import main
from flexopt.errors import OptionError
from flexopt.run.compare import plan
from tests.conftest import RTS, exit_code, one_error_line

ARGV = [
    "compare",
    str(RTS),
    "--methods",
    "none,mlf,wca,centralized",
    "--set",
    "dcp_weight=0,1",
    "--wca-iter",
    "5",
]
#: none, mlf and wca at two weights; centralized once (dcp_weight does not apply to it)
RUNS = 7


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "out"
    assert main([*ARGV, "--out", str(out)]) == 0
    return out


def _summaries(out):
    return {p.parent.name: p for p in sorted((out / "runs").glob("*/summary.json"))}


def test_compare_writes_a_row_per_run_and_per_dso(compared):
    runs = pd.read_csv(compared / "runs.csv")
    assert len(runs) == RUNS
    assert sorted(runs["method"].value_counts().items()) == [
        ("centralized", 1),
        ("mlf", 2),
        ("none", 2),
        ("wca", 2),
    ]
    assert set(runs.loc[runs["method"] != "centralized", "dcp_weight"]) == {0.0, 1.0}
    assert runs.loc[runs["method"] == "centralized", "dcp_weight"].isna().all()
    assert np.allclose(runs["relief_mwh"], runs["flex_accepted_mwh"] + runs["relief_losses_mwh"])
    terms = runs[
        ["welfare_dso_balance_eur", "welfare_prosumer_surplus_eur", "welfare_social_cost_eur"]
    ].sum(axis=1)
    assert np.allclose(runs["welfare_tso_payment_eur"], terms, atol=1e-3)
    assert (runs["clearing_time_s"] > 0).all()
    dso = pd.read_csv(compared / "dso.csv")
    assert len(dso) == RUNS * 3
    bilevel = dso[dso["method"] != "centralized"]
    sums = bilevel.groupby("run")[["dcp_f_loss_mwh", "dcp_f_price_eur"]].sum()
    table = runs.set_index("run").loc[sums.index]
    assert np.allclose(sums["dcp_f_loss_mwh"], table["f_loss_mwh"])
    assert np.allclose(sums["dcp_f_price_eur"], table["f_price_eur"])
    # each row is its run's own summary
    for name, path in _summaries(compared).items():
        s = json.loads(path.read_text())
        row = runs.set_index("run").loc[name]
        assert row["tso_cost_eur"] == pytest.approx(s["tso_cost_eur"])
        assert s["method"] == row["method"]
        if s["method"] != "centralized":
            assert s["options"]["dcp_weight"] == row["dcp_weight"]
        if s["method"] == "wca":
            assert s["options"]["wca_iter"] == 5


def test_compare_draws_the_figures(compared):
    for name in ("compare_dcp_weight=0", "compare_dcp_weight=1", "tradeoff"):
        assert (compared / f"{name}.png").stat().st_size > 10_000, name


def test_tradeoff_draws_a_line_per_method_through_the_sweep(compared):
    summaries = [json.loads(p.read_text()) for p in _summaries(compared).values()]
    fig = fx.plot.tradeoff(summaries)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert set(lines) == {"none", "mlf", "wca"}  # centralized has no DSO problem
    wca = sorted(
        (s["options"]["dcp_weight"], sum(d["dcp"]["f_price_eur"] for d in s["dso"].values()))
        for s in summaries
        if s["method"] == "wca"
    )
    assert np.allclose(lines["wca"].get_xdata(), [p for _, p in wca])


def test_a_rerun_skips_finished_runs(compared, capsys):
    before = {n: p.stat().st_mtime_ns for n, p in _summaries(compared).items()}
    table = (compared / "runs.csv").read_text()
    capsys.readouterr()
    assert main([*ARGV, "--out", str(compared)]) == 0
    out, err = capsys.readouterr()
    assert f"0 ran, {RUNS} done before" in out
    assert f"{RUNS} of {RUNS} runs done before, skipped" in err
    assert {n: p.stat().st_mtime_ns for n, p in _summaries(compared).items()} == before
    assert (compared / "runs.csv").read_text() == table
    # -q: nothing on stderr
    assert main(["-q", *ARGV, "--out", str(compared)]) == 0
    assert capsys.readouterr().err == ""


def test_fx_compare_is_the_same_comparison(compared):
    """The library call names and checks runs as the command does: all found, none run."""
    res = fx.compare(
        RTS,
        ["none", "mlf", "wca", "centralized"],
        set={"dcp_weight": [0, 1]},
        options={"wca_iter": 5},
        out=compared,
    )
    assert res.ran == []
    assert len(res.skipped) == RUNS
    assert len(res.runs) == RUNS
    assert res.runs["run"].tolist() == pd.read_csv(compared / "runs.csv")["run"].tolist()


def test_a_run_with_other_shared_options_is_refused_before_any_work(compared, capsys):
    assert exit_code([*ARGV[:-1], "6", "--out", str(compared)]) == 2
    line = one_error_line(capsys)
    assert "holds a run with other options (wca_iter)" in line
    assert "--force" in line


def test_an_interrupted_compare_keeps_the_finished_runs(tmp_path, monkeypatch):
    real = compare_module._run_job
    calls = []

    def interrupted_second(job):
        calls.append(job)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(compare_module, "_run_job", interrupted_second)
    out = tmp_path / "cmp"
    with pytest.raises(KeyboardInterrupt):
        fx.compare(RTS, ["none", "mlf"], out=out)
    assert [p.name for p in (out / "runs").iterdir()] == ["none-seed=0"]
    assert (out / "runs" / "none-seed=0" / "summary.json").is_file()
    assert not (out / "runs.csv").exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--methods", "none,magic"], "unknown method 'magic'"),
        (["--methods", "none", "--set", "colour=1"], "NAME=V1,V2"),
        (["--methods", "none", "--set", "dcp_weight=0,2"], "dcp_weight"),
        (["--methods", "none", "--set", "factor_bounds=0.5,1.5"], "pairs LO:HI"),
        (["--methods", "none", "--seeds", "4-1"], "--seeds: expected a range"),
        (["--methods", "none,mlf", "--wca-iter", "5"], "'wca_iter' applies to none of the methods"),
        (["--methods", "centralized", "--set", "dcp_weight=0,1"], "applies to none"),
        (["--methods", "none", "--set", "blocks=2", "--blocks", "3"], "both shared and varied"),
    ],
)
def test_bad_compare_input_is_one_line(tmp_path, capsys, argv, needle):
    out = tmp_path / "never"
    assert exit_code(["compare", str(RTS), *argv, "--out", str(out)]) == 2
    assert needle in one_error_line(capsys)
    assert not out.exists()


def test_plan_names_every_combination_once():
    specs = plan(
        ["mlf", "centralized"],
        {"dcp_weight": [0, 0.5], "factor_bounds": [(0.8, 1.2)]},
        [0, 1],
        {"blocks": 4},
    )
    names = [s.name for s in specs]
    assert len(names) == len(set(names)) == 2 * 2 + 2
    assert "mlf-dcp_weight=0.5-factor_bounds=0.8:1.2-seed=1" in names
    assert "centralized-seed=0" in names
    assert all(s.options.blocks == 4 for s in specs if s.method == "mlf")
    with pytest.raises(OptionError, match="twice"):
        plan(["mlf", "mlf"], {}, [0], {})
