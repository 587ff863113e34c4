"""The ``flexopt`` command: outputs, determinism, exit codes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from flexopt.cli import main
from tests.conftest import RTS


def test_validate_ok(capsys):
    assert main(["validate", str(RTS)]) == 0
    assert "rts24-3dso: valid" in capsys.readouterr().out


def test_run_writes_tables_and_is_deterministic(tmp_path, capsys):
    args = ["run", str(RTS), "--plf", "monte_carlo", "--samples", "4000", "--seed", "3"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "congestion before" in out
    assert "line_10" in out
    for name in (
        "day_ahead",
        "congestion",
        "requirement",
        "bids",
        "tso_clearing",
        "dispatch",
        "losses",
        "settlement",
        "participants",
        "offers",
    ):
        assert (tmp_path / "a" / f"{name}.csv").is_file(), name
    for fig in ("line_loading", "offer_curves", "voltage_profiles", "losses_per_dso"):
        assert (tmp_path / "a" / f"{fig}.png").stat().st_size > 10_000, fig
    a = (tmp_path / "a" / "summary.json").read_bytes()
    assert a == (tmp_path / "b" / "summary.json").read_bytes()
    summary = json.loads(a)
    assert summary["seed"] == 3
    assert summary["plf_method"] == "monte_carlo"
    assert "clearing_time_s" not in summary  # timings live in timings.json only
    timings = json.loads((tmp_path / "a" / "timings.json").read_text())
    assert {"day_ahead_s", "plf_s", "requirement_s", "tso_market_s", "dispatch_s"} <= set(timings)
    cong = pd.read_csv(tmp_path / "a" / "congestion.csv")
    assert cong["congested"].sum() == summary["congested_line_hours_before"]


def test_run_replaces_a_previous_result_whole_with_force(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()  # an empty folder takes a result
    assert main(["run", str(RTS), "--out", str(out)]) == 0
    (out / "stale.csv").write_text("old")
    assert main(["run", str(RTS), "--out", str(out)]) == 2  # a previous result: --force
    assert "pass --force" in capsys.readouterr().err
    assert main(["run", str(RTS), "--out", str(out), "--force"]) == 0
    assert not (out / "stale.csv").exists()
    assert (out / "summary.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["o"]  # no temporary folder left behind


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "no/such/instance"], "does not exist"),
        (["run", str(RTS), "--plf", "magic"], "invalid choice"),
        (["run", str(RTS), "--method", "magic"], "invalid choice"),
        (["run", str(RTS), "--samples", "-3"], "expected an integer in 1.."),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert needle in err[0]


def _exit_code(argv: list[str]) -> int:
    """``main``'s status whether it returns it (bad data) or argparse exits (bad flags)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


def test_export_mps_solves_to_the_same_optimum_in_highs(tmp_path, capsys):
    """The exported MILP, read by HiGHS directly (no Pyomo), gives the MILP's optimum; with
    the budget, the export is the full model — a lower level and a budget row per hour and
    block boundary."""
    import highspy

    from flexopt import load_instance
    from flexopt.dso.dcp import DCPOptions
    from flexopt.dso.exact import ApproxModel, build_dcp_exact
    from flexopt.run.api import run_market
    from flexopt.solve import solve

    out = tmp_path / "dso1.mps"
    argv = ["export", str(RTS), "--dso", "DSO1", "--format", "mps", "--participation", "screened"]
    assert main([*argv, "--no-budget", "--out", str(out)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["dso1.mps"]  # nothing half written left
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(out))
    h.run()
    inst = load_instance(RTS)
    outcome = run_market(inst, "none", participation="screened").outcome
    problem = outcome.dcp("DSO1", DCPOptions(mode="b", budget=False))
    ours = solve(build_dcp_exact(ApproxModel(problem, 16)), mip_gap=1e-9)
    assert h.getInfo().objective_function_value == pytest.approx(ours.objective, abs=1e-6)

    full = tmp_path / "full.mps"
    assert main([*argv, "--out", str(full)]) == 0
    h.readModel(str(full))
    budgeted = outcome.dcp("DSO1", DCPOptions(mode="b"))
    model = build_dcp_exact(ApproxModel(budgeted, 16))
    assert len(model.edge) == len(budgeted.hours) * budgeted.blocks
    # the MPS writer adds one row holding the objective's constant (ONE_VAR_CONSTANT)
    assert h.getNumRow() == model.nconstraints() + 1


def test_export_rejects_unknown_dso_and_linear_format_for_ab(tmp_path, capsys):
    assert (
        _exit_code(
            ["export", str(RTS), "--dso", "DSO9", "--format", "mps", "--out", str(tmp_path / "x")]
        )
        == 2
    )
    assert "no DSO 'DSO9'" in capsys.readouterr().err
    assert (
        _exit_code(
            [
                "export",
                str(RTS),
                "--dso",
                "DSO1",
                "--format",
                "mps",
                "--mode",
                "ab",
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
    assert "--format nl" in capsys.readouterr().err
