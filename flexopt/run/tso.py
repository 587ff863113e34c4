"""The TSO side of the market: S1 day-ahead market, S2 probabilistic load flow and its
re-check, S3 flexibility requirement and S7 TSO flexibility market.

Each stage is a function of the instance and the previous stages' results, testable on its
own. Only aggregated block bids (:class:`~flexopt.market.tso.DSOBid`), declared capacities and
accepted quantities cross the TSO–DSO boundary: nothing here receives a DSO's feeder or
prosumers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from flexopt.errors import FlexoptError, SolverError, SolverLimitError
from flexopt.grid import TransmissionModel, balancing_weights, transmission_from_data
from flexopt.instance import Instance
from flexopt.market.day_ahead import (
    DayAheadData,
    DayAheadResult,
    build_day_ahead,
    dispatch_closed_form,
    read_day_ahead,
)
from flexopt.market.requirement import RequirementData
from flexopt.market.requirement_lp import (
    build_requirement_lp,
    read_requirement_lp,
    requirement_tiebreak_lp,
)
from flexopt.market.tso import (
    DSOBid,
    Pricing,
    TSOMarketData,
    TSOMarketResult,
)
from flexopt.market.tso_lp import build_tso_lp, read_tso_lp, tso_pricing_lp
from flexopt.plf import PLFModel, PLFResult, congestion_table, run_plf
from flexopt.plf.methods import PLFMethod
from flexopt.run.finite import require_finite
from flexopt.run.options import MarketOptions
from flexopt.solve import DEFAULT_TIME_LIMIT_S, SolveResult, SolveStatus, solve, solve_lp

__all__ = [
    "DayAheadFlows",
    "clear_tso_market",
    "congestion",
    "day_ahead",
    "day_ahead_flows",
    "interface_reduction",
    "line_limits",
    "plf_model",
    "recheck",
    "recheck_market",
    "requirement",
    "solve_or_raise",
    "tso_market",
    "tso_market_data",
]


def solve_or_raise(
    model: pyo.ConcreteModel,
    stage: str,
    solver: str = "highs",
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    **kwargs: Any,
) -> SolveResult:
    """Solve a stage's (continuous) model to optimality, within ``time_limit_s`` and the
    solver's iteration guard.

    Raises
    ------
    SolverLimitError
        At a limit (even with an incumbent: a stage's prices are the duals of an optimum),
        naming the stage, the solver, the limit and what to change.
    SolverError
        For any other status without a solution, naming the stage, the solver and its status.
    """
    return raise_unless_optimal(
        solve(model, solver, time_limit=time_limit_s, **kwargs), stage, time_limit_s
    )


def raise_unless_optimal(res: SolveResult, stage: str, time_limit_s: float) -> SolveResult:
    """``res`` if it solved its stage; otherwise the typed error :func:`solve_or_raise` raises."""
    if res.limit == "time":
        raise SolverLimitError(
            stage,
            res.solver,
            res.status.value,
            "time",
            f"{stage}: solver {res.solver} stopped at its time limit of {time_limit_s:g} s "
            f"without an optimal solution; allow it more time with --stage-time-limit "
            f"(stage_time_limit_s)",
        )
    if res.limit is not None:
        raise SolverLimitError(
            stage,
            res.solver,
            res.status.value,
            res.limit,
            f"{stage}: solver {res.solver} stopped at its iteration guard without an optimal "
            f"solution (it cycles on a degenerate or badly scaled model); check the instance's "
            f"magnitudes (costs, powers, ratings, dt_h)",
        )
    if not res.ok:
        raise SolverError(
            stage,
            res.solver,
            res.status.value,
            f"{stage}: solver {res.solver} returned {res.status.value} ({res.message})",
        )
    return res


def day_ahead(inst: Instance, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> DayAheadResult:
    """S1: copper-plate economic dispatch of the forecast load (``models/day_ahead.md``)."""
    gens = inst.transmission.generators
    demand = inst.forecast_load_mw().sum(axis=1)
    p_min, p_max = gens["p_min_mw"].sum(), gens["p_max_mw"].sum()
    for t, d in demand.items():
        if not p_min - 1e-9 <= d <= p_max + 1e-9:
            raise FlexoptError(
                f"day-ahead market infeasible in hour {t}: demand {d:.1f} MW outside the "
                f"generation range [{p_min:.1f}, {p_max:.1f}] MW"
            )
    # hours decouple (no intertemporal constraint): one small QP per hour. HiGHS's QP solver
    # scales badly with size here (case300: 28× faster hour by hour, benchmarks/stages.py)
    per_hour = []
    for t in demand.index:
        data = DayAheadData(generators=gens, demand_mw=demand.loc[[t]], dt_h=inst.dt_h)
        model = build_day_ahead(data)
        res = solve(model, time_limit=time_limit_s)
        if res.status is SolveStatus.OPTIMAL:
            per_hour.append(read_day_ahead(model, res.duals))
        else:
            # HiGHS's active-set QP solver cycles on some degenerate hours (many linear units)
            # until its iteration guard stops it: the same optimum from the optimality
            # conditions (the demand is within the generation range, checked above)
            per_hour.append(dispatch_closed_form(data))
    out = DayAheadResult(
        p_mw=pd.concat([h.p_mw for h in per_hour]),
        price_eur_per_mwh=pd.concat([h.price_eur_per_mwh for h in per_hour]),
        cost_eur=sum(h.cost_eur for h in per_hour),
    )
    require_finite(
        "S1 day-ahead market", dispatch_mw=out.p_mw, price=out.price_eur_per_mwh, cost=out.cost_eur
    )
    return out


def plf_model(inst: Instance, da: DayAheadResult) -> PLFModel:
    """The PLF inputs from the instance and the day-ahead schedule (P1–P2): forecast load,
    its surge and uncertainty, the scheduled generation and the balancing weights (T5)."""
    net = transmission_from_data(inst)
    tr = inst.transmission
    gen_pos = net.bus_pos(tr.generators["bus"].to_numpy())
    p_da = da.p_mw[tr.generators.index].to_numpy()
    g = np.zeros((inst.hours, net.n_bus))
    np.add.at(g.T, gen_pos, p_da.T)
    weights = balancing_weights(
        net.n_bus,
        gen_pos,
        p_da if inst.scenario.balancing == "distributed" else None,
        net.slack_idx,
    )
    rho = inst.scenario.correlation
    return PLFModel(
        network=net,
        hours=inst.hour_index,
        load_mw=inst.forecast_load_mw()[net.bus].to_numpy(),
        increase_pu=inst.scenario.load_increase[net.bus].to_numpy(),
        sigma_pu=tr.buses["sigma_pu"].reindex(net.bus).to_numpy(),
        correlation=(1.0 - rho) * np.eye(net.n_bus) + rho,
        gen_injection_mw=g,
        weights=weights,
    )


@dataclass(frozen=True, eq=False)
class DayAheadFlows:
    """DC flows at the day-ahead point and their sensitivity to load reductions.

    Attributes
    ----------
    network : TransmissionModel
    load_mw : ndarray
        Forecast load ``[T, N]``.
    flow_mw : ndarray
        Day-ahead flows ``[T, L]`` (forecast load, scheduled generation).
    sensitivity : ndarray
        ``H`` ``[T, L, N]``: flow change per MW of load reduction (T6).
    """

    network: TransmissionModel
    load_mw: np.ndarray
    flow_mw: np.ndarray
    sensitivity: np.ndarray


def day_ahead_flows(inst: Instance, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> DayAheadFlows:
    """S1, then the day-ahead DC flows and sensitivities of the PLF model (P2, T6) — what the
    instance generators rank lines and buses by."""
    model = plf_model(inst, day_ahead(inst, time_limit_s=time_limit_s))
    return DayAheadFlows(
        network=model.network,
        load_mw=model.load_mw,
        flow_mw=model.flows_mw(model.load_mw),
        sensitivity=model.sensitivity,
    )


def congestion(
    inst: Instance,
    model: PLFModel,
    method: PLFMethod = "analytic",
    *,
    samples: int = 10_000,
    seed: int = 0,
    progress: bool = False,
) -> tuple[PLFResult, pd.DataFrame]:
    """S2: the PLF and its congestion table (P3–P6)."""
    res = run_plf(model, method, samples=samples, seed=seed, progress=progress)
    require_finite("S2 probabilistic load flow", flow_mean_mw=res.mean_mw, flow_std_mw=res.std_mw)
    table = congestion_table(
        res, model.network.rating_mw, model.hours, model.network.branch, inst.scenario.risk_quantile
    )
    return res, table


def line_limits(
    inst: Instance, model: PLFModel, res: PLFResult, hours: pd.Index
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PLF mean flows and the limits ``max(F̄ − z σ, 0)`` (hours × branches) of the S3/S7 LPs."""
    pos = model.hours.get_indexer(hours)
    branches = model.network.branch
    mean = pd.DataFrame(res.mean_mw[pos], index=hours, columns=branches)
    limit = model.network.rating_mw[None, :] - inst.scenario.risk_quantile * res.std_mw[pos]
    return mean, pd.DataFrame(np.clip(limit, 0.0, None), index=hours, columns=branches)


def requirement(
    inst: Instance,
    model: PLFModel,
    res: PLFResult,
    hours: pd.Index,
    capacity_mw: pd.DataFrame,
    dso_bus: dict[str, int],
    energy_mwh: pd.Series | None = None,
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """S3 (R1–R5): the least relief per DSO interface bus that clears every limit.

    Sees the DSOs' interface buses, declared capacities (hours × DSOs) and declared energies
    (DSO → MWh over the congested hours, R4a) only. Returns the requirement (hours × DSOs)
    and the overload it cannot resolve (hours × branches).
    """
    mean, limit = line_limits(inst, model, res, hours)
    net = model.network
    sens = {}
    for t in hours:
        h = model.sensitivity[model.hours.get_loc(t)]
        sens[t] = pd.DataFrame(
            h[:, net.bus_pos(list(dso_bus.values()))], index=net.branch, columns=list(dso_bus)
        )
    data = RequirementData(
        mean_flow_mw=mean,
        limit_mw=limit,
        sensitivity=sens,
        capacity_mw=capacity_mw,
        energy_mwh=energy_mwh,
        dt_h=inst.dt_h,
    )
    # as arrays: the LPs of the Pyomo models build_requirement and build_requirement_tiebreak
    # (the reference), handed to HiGHS alike, without building them term by term
    lp = build_requirement_lp(data)
    stage = "flexibility requirement (S3)"
    x = np.asarray(
        raise_unless_optimal(solve_lp(lp.lp, time_limit=time_limit_s), stage, time_limit_s).values
    )
    tie = requirement_tiebreak_lp(lp, x)
    # a safety net: the stage is small and well scaled; without the tie-break's optimum the
    # LP's own optimum stands
    r2 = solve_lp(tie.lp, time_limit=min(30.0, time_limit_s))
    if r2.status is SolveStatus.OPTIMAL:
        return read_requirement_lp(tie, np.asarray(r2.values))
    return read_requirement_lp(lp, x)


def tso_market_data(
    inst: Instance, model: PLFModel, res: PLFResult, hours: pd.Index, bids: list[DSOBid]
) -> TSOMarketData:
    """What the S7 LP sees: the S2 mean flows and limits of the congested hours, the PTDF
    sensitivities, and the DSOs' bids (K1–K6)."""
    mean, limit = line_limits(inst, model, res, hours)
    net = model.network
    sens = {
        t: pd.DataFrame(
            model.sensitivity[model.hours.get_loc(t)], index=net.branch, columns=net.bus
        )
        for t in hours
    }
    return TSOMarketData(
        mean_flow_mw=mean, limit_mw=limit, sensitivity=sens, bids=tuple(bids), dt_h=inst.dt_h
    )


def tso_market(
    inst: Instance,
    model: PLFModel,
    res: PLFResult,
    hours: pd.Index,
    bids: list[DSOBid],
    pricing: Pricing = "interface",
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> TSOMarketResult:
    """S7 (K1–K6): the TSO buys relief from the DSOs' block bids — all it receives of them.

    ``pricing="interface"`` (K5): after the LP, the LP over its supporting multipliers with
    the slacks held fixed, minimizing the TSO's payment; the interface and line prices are
    read from its solution. ``pricing="last_block"``: each DSO is paid its highest accepted
    block's price, line prices from the LP's own duals.
    """
    data = tso_market_data(inst, model, res, hours, bids)
    return clear_tso_market(data, pricing, time_limit_s=time_limit_s)


def clear_tso_market(
    data: TSOMarketData,
    pricing: Pricing = "interface",
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> TSOMarketResult:
    """S7 (K1–K6) on its data: the LP, then the prices by ``pricing`` (:func:`tso_market`).

    Built as arrays (:func:`~flexopt.market.tso_lp.build_tso_lp`), the same LP in the same
    order as the Pyomo model :func:`~flexopt.market.tso.build_tso_market` (which
    ``fx.models.tso_market`` returns): the same vertex, prices and payments, without Pyomo's
    cost of building both LPs term by term.
    """
    a = build_tso_lp(data)
    r = raise_unless_optimal(
        solve_lp(a.lp, time_limit=time_limit_s), "TSO market (S7)", time_limit_s
    )
    x = np.asarray(r.values)
    duals = np.array([r.duals.get(i, 0.0) for i in range(a.lp.n_rows)])
    if pricing == "interface":
        p = tso_pricing_lp(a, x)
        rp = raise_unless_optimal(
            solve_lp(p.lp, time_limit=time_limit_s),
            "TSO market (S7) supporting prices",
            time_limit_s,
        )
        y = np.asarray(rp.values)
        duals = np.where(p.column >= 0, -y[np.maximum(p.column, 0)], 0.0)
    return read_tso_lp(a, data, x, duals, float(r.objective or 0.0), pricing)


def recheck(
    inst: Instance,
    model: PLFModel,
    hours: pd.Index,
    accepted_mw: pd.DataFrame | None,
    dso_bus: dict[str, int],
    *,
    method: PLFMethod = "analytic",
    samples: int = 10_000,
    seed: int = 0,
) -> tuple[PLFResult, pd.DataFrame]:
    """S2 again, with the accepted relief ``F_{d,t}`` (hours × DSOs) lowering the load at
    each DSO's interface bus (P1') — on top of any reduction ``model`` already carries (the
    intraday market's model of a realization, ``models/intraday.md`` J8)."""
    reduction = interface_reduction(model, hours, accepted_mw, dso_bus)
    if model.reduction_mw is not None:
        reduction += model.reduction_mw
    return congestion(
        inst, replace(model, reduction_mw=reduction), method, samples=samples, seed=seed
    )


def interface_reduction(
    model: PLFModel, hours: pd.Index, relief_mw: pd.DataFrame | None, dso_bus: dict[str, int]
) -> np.ndarray:
    """The load reduction ``[T, N]`` of a relief ``F_{d,t}`` (``hours`` × DSOs) at each DSO's
    interface bus (P1'); zeros for ``None``."""
    reduction = np.zeros_like(model.load_mw)
    if relief_mw is not None:
        net = model.network
        for d, bus in dso_bus.items():
            reduction[model.hours.get_indexer(hours), net.bus_pos(bus)] += relief_mw[d].to_numpy()
    return reduction


def recheck_market(
    inst: Instance,
    model: PLFModel,
    hours: pd.Index,
    accepted_mw: pd.DataFrame | None,
    dso_bus: dict[str, int],
    options: MarketOptions,
) -> tuple[PLFResult, pd.DataFrame]:
    """:func:`recheck` with a run's PLF method, samples and seed."""
    return recheck(
        inst,
        model,
        hours,
        accepted_mw,
        dso_bus,
        method=options.plf_method,
        samples=options.samples,
        seed=options.seed,
    )
