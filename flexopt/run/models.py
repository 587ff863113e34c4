"""The market's optimization models as Pyomo ``ConcreteModel``s, ready for any Pyomo solver
(``fx.models``): the day-ahead market (S1), the TSO market on a run's bids (S7), one DSO's
exact coefficient problem (``models/dcp_exact.md``) and the centralized market
(``models/centralized.md``). The builders are the ones the run uses; these functions only
gather their data. Solving one with HiGHS, or with SCIP where it is nonlinear, through
flexopt's solver wrapper (a typed status, a time limit) or Pyomo's own solver interfaces::

    import flexopt as fx
    from flexopt.solve import solve

    inst = fx.load_instance("instances/rts24-3dso")
    m = fx.models.dso_problem(inst, "DSO1", formulation="milp")
    print(solve(m, "highs", time_limit=60).status)
    m = fx.models.dso_problem(inst, "DSO1", formulation="minlp")
    print(solve(m, "scip_direct", time_limit=60).status)  # any MINLP solver Pyomo reaches
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pyomo.environ as pyo

from flexopt.dso.exact import ApproxModel, build_dcp_exact
from flexopt.dso.exact_nlp import build_dcp_nlp
from flexopt.errors import FlexoptError
from flexopt.instance import Instance
from flexopt.market.centralized import build_centralized
from flexopt.market.day_ahead import DayAheadData, build_day_ahead
from flexopt.market.tso import build_tso_market
from flexopt.outcome import BilevelOutcome
from flexopt.run.api import run_market
from flexopt.run.centralized import centralized_data
from flexopt.run.result import MarketResult
from flexopt.run.tso import tso_market_data

__all__ = ["FORMULATIONS", "centralized", "day_ahead", "dso_problem", "tso_market"]

#: ``dso_problem`` formulations → DCP mode (``models/dcp_exact.md``).
FORMULATIONS = {"milp": "b", "minlp": "ab", "nlp": "ab"}


def day_ahead(inst: Instance) -> pyo.ConcreteModel:
    """S1, every hour in one model: ``min Σ_t Δt Σ_g C_g(p_{g,t})`` s.t. the copper-plate
    balance per hour and the units' limits (``models/day_ahead.md``). The run solves it
    hour by hour (the hours decouple); the optimum is the same."""
    demand = inst.forecast_load_mw().sum(axis=1)
    data = DayAheadData(generators=inst.transmission.generators, demand_mw=demand, dt_h=inst.dt_h)
    return build_day_ahead(data)


def tso_market(result: MarketResult) -> pyo.ConcreteModel:
    """S7 on the bids of a bilevel run (K1–K6, ``models/tso_market.md``): the LP the run
    solved, before its pricing step (the run writes it as arrays in this model's order,
    ``flexopt.market.tso_lp``; the two give the same solution bit for bit)."""
    out = result.outcome
    if not isinstance(out, BilevelOutcome):
        raise FlexoptError(f"{out.method}: a centralized run has no DSO bids and no TSO market")
    if out.tso is None:
        raise FlexoptError("no congestion in this run: the TSO held no market")
    # rival DSOs (models/competition.md): S7 cleared the equilibrium's marked-up bids
    bids = list(out.competition.bids) if out.competition else [o.bid for o in out.offers]
    data = tso_market_data(out.instance, out.plf_model, out.plf_before, out.hours, bids)
    return build_tso_market(data)


def dso_problem(
    inst: Instance,
    dso_id: str,
    formulation: str = "milp",
    *,
    segments: int = 16,
    **options: Any,
) -> pyo.ConcreteModel:
    """One DSO's coefficient problem at its design point (the requirement of a ``none`` run
    with ``options``), with every block boundary (C7, C8).

    ``formulation``: ``"milp"`` — mode "b" (β only), LinDistFlow losses, a MILP (X1–X12a);
    ``"minlp"`` — mode "ab", nonconvex (bilinear) MINLP (X1–X12a); ``"nlp"`` — mode "ab" on
    the AC feeder model with Scholtes-relaxed complementarity, solved locally (X13–X16).
    ``options``: market options of the run that sets the design point (``participation``,
    ``blocks``, ``dcp_budget``, ``dcp_efficiency``, ``dcp_weight``, …).
    """
    if formulation not in FORMULATIONS:
        raise FlexoptError(f"formulation must be one of {tuple(FORMULATIONS)}, got {formulation!r}")
    ids = [d.id for d in inst.dsos]
    if dso_id not in ids:
        raise FlexoptError(f"no DSO {dso_id!r} (DSOs: {', '.join(ids)})")
    res = run_market(inst, "none", **options)
    out = res.outcome
    assert isinstance(out, BilevelOutcome)  # "none" is a bilevel method
    problem = out.dcp(dso_id, replace(res.options.dcp, mode=FORMULATIONS[formulation]))
    if problem.trivial:
        raise FlexoptError(f"{dso_id}: the TSO asks this DSO for nothing; there is no problem")
    if formulation == "nlp":
        return build_dcp_nlp(problem)
    return build_dcp_exact(ApproxModel(problem, segments))


def centralized(inst: Instance, *, ac: bool = False, **options: Any) -> pyo.ConcreteModel:
    """The common TSO–DSO market (Z1–Z11, ``models/centralized.md``) of the instance's
    congested hours: the QP (LinDistFlow feeders), or with ``ac`` the AC NLP (its start is
    the model's own default)."""
    res = run_market(inst, "none", **options)
    out = res.outcome
    assert isinstance(out, BilevelOutcome)
    if not len(out.hours):
        raise FlexoptError("no congestion in this instance: there is no common market to hold")
    return build_centralized(centralized_data(out), ac=ac)
