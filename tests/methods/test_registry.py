"""Coefficient methods are registered strategies: a new method is one function and one
registration, and it runs end to end through ``run_market`` and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flexopt.cli import main
from flexopt.dso.dcp import DCPProblem
from flexopt.dso.modification import Factors
from flexopt.dso.offer import Modification
from flexopt.methods import get_method, method_names, register_method, unregister_method
from flexopt.run.api import run_market
from tests.conftest import RTS, wait_for_run_pool


def beta09(problem: DCPProblem, config: None, rng: np.random.Generator) -> Modification:
    """The toy method: every β = 0.9, α = 1."""
    return Modification(Factors(np.ones(problem.n), np.full(problem.n, 0.9)))


@pytest.fixture
def toy():
    register_method("beta09", beta09, description="every β = 0.9")
    yield get_method("beta09")
    unregister_method("beta09")


def test_builtin_methods_are_registered():
    assert method_names()[:4] == ("none", "mlf", "wca", "exact")
    assert get_method("wca").option_names == (
        "wca_pop",
        "wca_iter",
        "wca_stall",
        "wca_stall_tol",
        "wca_start",
        "pareto",
    )
    assert get_method("none").option_names == ()


def test_a_registered_method_runs_end_to_end(rts, toy):
    res = run_market(rts, "beta09")
    assert res.summary["method"] == "beta09"
    offers = res.tables["offers"]
    assert len(offers) > 0
    assert (offers["beta_pu"] == 0.9).all()
    assert (offers["alpha_pu"] == 1.0).all()
    np.testing.assert_allclose(offers["b_mod_eur_per_mwh"], 0.9 * offers["b_eur_per_mwh"])
    # scored on the same DSO-problem evaluator as every other method
    for dso_id in res.outcome.dso_ids:
        problem = res.outcome.dcp(dso_id)
        want = problem.score(Factors(np.ones(problem.n), np.full(problem.n, 0.9)))
        assert res.summary["dso"][dso_id]["dcp"]["objective"] == pytest.approx(want.objective)
    # cheaper offers than x⁰: the TSO pays less for the same relief
    none = run_market(rts, "none")
    assert res.summary["flex_accepted_mwh"] == pytest.approx(none.summary["flex_accepted_mwh"])
    assert res.summary["tso_cost_eur"] < none.summary["tso_cost_eur"]
    assert res.summary["overload_mw_after"] == pytest.approx(0.0, abs=1e-6)


def test_a_registered_method_runs_in_worker_processes(rts, toy):
    """Tasks carry the method itself, so spawned workers need no registration of their own."""
    serial = run_market(rts, "beta09")
    run_market(rts, "beta09", workers=2)  # starts the worker
    wait_for_run_pool(2)
    pool = run_market(rts, "beta09", workers=2)  # the warm worker takes tasks
    assert pool.tables["settlement"].equals(serial.tables["settlement"])


def test_a_registered_method_is_a_cli_choice(rts, toy, tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["run", str(RTS), "--method", "beta09", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "beta09"
    assert summary["tso_cost_eur"] == pytest.approx(
        run_market(rts, "beta09").summary["tso_cost_eur"], rel=1e-12
    )
    assert "beta09" in capsys.readouterr().out


def test_registration_guards():
    with pytest.raises(ValueError, match="registered already"):
        register_method("wca", beta09)
    with pytest.raises(ValueError, match="framework"):
        register_method("centralized", beta09)
    with pytest.raises(ValueError, match="identifier"):
        register_method("two words", beta09)
    with pytest.raises(ValueError, match="registered: none, mlf, wca, exact"):
        get_method("magic")


def test_the_stall_window_scales_with_the_factors():
    """``wca_stall`` from 10 factors up, proportionally fewer below, at least 20, never more
    than ``wca_stall``; 0 keeps the stall test off (``benchmarks/wca_stall.py``)."""
    from flexopt.methods.wca import WCAConfig, dcp_termination, stall_window

    cfg = WCAConfig()
    assert [stall_window(cfg, d) for d in (1, 2, 4, 8, 10, 12, 40)] == [20, 20, 20, 40, 50, 50, 50]
    wider = WCAConfig(wca_stall=75)
    assert [stall_window(wider, d) for d in (2, 4, 8, 10)] == [20, 30, 60, 75]
    assert stall_window(WCAConfig(wca_stall=5), 2) == 5
    assert stall_window(WCAConfig(wca_stall=0), 4) == 0
    assert dcp_termination(WCAConfig(wca_stall=0), 4).stall_iter is None
    assert dcp_termination(cfg, 4).stall_iter == 20
    assert dcp_termination(cfg, 12).stall_iter == 50
