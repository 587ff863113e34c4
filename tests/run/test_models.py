"""fx.models: the market's Pyomo models, solved by any Pyomo solver, give the run's figures."""

from __future__ import annotations

import pyomo.environ as pyo
import pytest

import flexopt as fx
from flexopt.errors import FlexoptError
from flexopt.solve import SolveStatus, solve


def test_day_ahead_model_gives_the_runs_cost(rts):
    m = fx.models.day_ahead(rts)
    res = solve(m, "highs")
    assert res.status is SolveStatus.OPTIMAL
    ran = fx.run_market(rts, "none")
    assert res.objective == pytest.approx(ran.summary["day_ahead_cost_eur"], rel=1e-6)


def test_tso_market_model_gives_the_runs_lp_optimum(rts):
    ran = fx.run_market(rts, "mlf")
    m = fx.models.tso_market(ran)
    res = solve(m, "highs")
    assert res.status is SolveStatus.OPTIMAL
    assert res.objective == pytest.approx(ran.outcome.tso.cost_eur, rel=1e-6)
    with pytest.raises(FlexoptError, match="centralized run has no DSO bids"):
        fx.models.tso_market(fx.run_market(rts, "centralized"))


def test_dso_problem_milp_solves_and_holds_every_boundary(rts):
    m = fx.models.dso_problem(rts, "DSO1", "milp", blocks=2)
    assert isinstance(m, pyo.ConcreteModel)
    assert len(m.edge) > 0  # every block boundary: budget (C7) and efficiency (C8) rows
    assert all(hasattr(m.edge[k], "ineq_efficiency") for k in m.edge)
    res = solve(m, "highs", time_limit=60)
    assert res.ok
    assert not hasattr(m, "alpha")  # mode "b"
    assert hasattr(fx.models.dso_problem(rts, "DSO1", "minlp", blocks=2), "alpha")
    assert fx.models.dso_problem(rts, "DSO1", "nlp").nvariables() > 0
    with pytest.raises(FlexoptError, match="formulation must be one of"):
        fx.models.dso_problem(rts, "DSO1", "lp")
    with pytest.raises(FlexoptError, match="no DSO 'DSO9'"):
        fx.models.dso_problem(rts, "DSO9")


def test_centralized_model_gives_the_runs_social_cost_on_its_objective(rts):
    m = fx.models.centralized(rts)
    res = solve(m, "highs")
    assert res.status is SolveStatus.OPTIMAL
    ran = fx.run_market(rts, "centralized")
    r = ran.outcome.result
    assert r is not None
    # (Z1) without the unresolved-overload penalty: rts24-3dso resolves every overload
    assert res.objective == pytest.approx(r.flex_cost_eur + r.loss_value_eur, rel=1e-6)
