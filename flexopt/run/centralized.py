"""The centralized framework: one common TSO–DSO market over every prosumer of every DSO in
place of S3 and S5–S7 (``models/centralized.md`` Z1–Z11), then S8 and the S2 re-check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from flexopt.dso.context import DSOContext
from flexopt.dso.flexibility import energy_headroom_mwh
from flexopt.dso.settlement import DSODispatch, loss_relief
from flexopt.executors import Executor
from flexopt.market.centralized import (
    CentralizedData,
    CentralizedResult,
    DistributionArea,
    build_centralized,
    build_centralized_pricing,
    has_unresolved_overload,
    read_centralized,
)
from flexopt.market.pricing import read_supporting_duals
from flexopt.outcome import CentralizedOutcome, MarketBase
from flexopt.run.clock import Clock
from flexopt.run.options import CentralizedConfig, MarketOptions
from flexopt.run.tasks import SettleTask, run_task
from flexopt.run.tso import line_limits, recheck_market, solve_or_raise
from flexopt.solve import DEFAULT_TIME_LIMIT_S

__all__ = ["centralized_data", "run_centralized", "solve_centralized"]


def centralized_data(
    base: MarketBase, vm_limits_pu: tuple[float, float] = (0.95, 1.05)
) -> CentralizedData:
    """What the common market sees (``models/centralized.md``): the S2 mean flows and limits
    of the congested hours, the sensitivities at the DSO buses, and every DSO's feeder and
    prosumers at the day-ahead point (Z2–Z3 from the batteries' baselines)."""
    inst, model, hours = base.instance, base.plf_model, base.hours
    mean, limit = line_limits(inst, model, base.plf_before, hours)
    net = model.network
    pos = model.hours.get_indexer(hours)
    h = model.sensitivity[pos][:, :, net.bus_pos([c.dso.bus for c in base.contexts])]
    return CentralizedData(
        mean_flow_mw=mean,
        limit_mw=limit,
        sensitivity=h,
        areas=tuple(_area(c, hours, inst.dt_h) for c in base.contexts),
        loss_price_eur_per_mwh=inst.market.loss_price_eur_per_mwh,
        dt_h=inst.dt_h,
        vm_limits_pu=vm_limits_pu,
    )


def _area(c: DSOContext, hours: pd.Index, dt_h: float) -> DistributionArea:
    pros, base = c.dso.prosumers, c.dso.baseline_mw
    rows = c.hours.get_indexer(hours)
    power = (pros["p_max_mw"].to_numpy() - base.loc[hours].to_numpy()).clip(0.0)
    return DistributionArea(
        dso_id=c.dso.id,
        bus=c.dso.bus,
        n_feeders=c.dso.n_feeders,
        feeder=c.feeder,
        p_mw=c.p_mw[rows],
        q_mvar=c.q_mvar[rows],
        prosumer_id=pros.index,
        bus_pos=c.feeder.bus.get_indexer(pros["bus"].to_numpy()),
        a=pros["a_eur_per_mw2h"].to_numpy(),
        b=pros["b_eur_per_mwh"].to_numpy(),
        u_max_mw=power,
        energy_mwh=energy_headroom_mwh(pros, base, hours, dt_h),
    )


def solve_centralized(
    data: CentralizedData,
    config: CentralizedConfig,
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> CentralizedResult:
    """The common market (Z1–Z11): the QP, then — ``central_model="ac"`` — the AC NLP
    started from the QP's dispatch.

    Prices (Z10): the solver's duals when every overload is resolved — there they support
    the dispatch and, unless degenerate, are the only multipliers that do — otherwise the
    least-payment supporting multipliers with the slacks held fixed (K5a–K5c), since the
    solver's carry the penalty ``M``, also into the hours the energy rows (Z3) tie to the
    short ones.
    """

    def prices(m: pyo.ConcreteModel, duals: dict[Any, float], name: str) -> dict[Any, float]:
        if not has_unresolved_overload(m):
            return duals
        lp = build_centralized_pricing(m)
        solve_or_raise(
            lp.model,
            f"centralized market ({name}) supporting prices",
            "highs",
            time_limit_s=time_limit_s,
        )
        return read_supporting_duals(lp)

    m = build_centralized(data)
    r = solve_or_raise(m, "centralized market (QP)", "highs", time_limit_s=time_limit_s)
    res = read_centralized(m, data, prices(m, r.duals, "QP"))
    if config.central_model == "ac":
        mac = build_centralized(data, ac=True, start=res)
        rac = solve_or_raise(mac, "centralized market (AC)", "ripopt", time_limit_s=time_limit_s)
        res = read_centralized(mac, data, prices(mac, rac.duals, "AC"))
    return res


def run_centralized(
    base: MarketBase, opt: MarketOptions, ex: Executor, clock: Clock
) -> CentralizedOutcome:
    """The centralized framework on ``base`` (S1, S2, S4 done)."""
    config: CentralizedConfig = opt.config
    inst, hours = base.instance, base.hours
    data = result = None
    dispatch: list[DSODispatch] = []
    if len(hours):
        with clock("central_market", f"centralized TSO–DSO market ({config.central_model})"):
            data = centralized_data(base, config.vm_limits_pu)  # what it sees (Z2–Z3)
            result = solve_centralized(data, config, time_limit_s=opt.stage_time_limit_s)
    with clock("dispatch", "S8 local dispatch and settlement"):
        if result is not None and data is not None:
            tasks = [
                SettleTask(
                    c,
                    a,
                    result.u_mw[c.dso.id],
                    result.price_eur_per_mwh[c.dso.id],
                    result.accepted_mw[c.dso.id],
                    inst.market.loss_price_eur_per_mwh,
                )
                for c, a in zip(base.contexts, data.areas, strict=True)
            ]
            dispatch = ex.map(run_task, tasks)
    with clock("verification", "S2 re-check with the accepted flexibility"):
        relief = loss_relief(dispatch, base.dso_ids, hours)
        accepted = None if result is None else result.accepted_mw + relief
        plf_after, cong_after = recheck_market(
            inst, base.plf_model, hours, accepted, base.dso_bus, opt
        )
    return CentralizedOutcome(
        **base.base_fields(),
        method=opt.method,
        central_model=config.central_model,
        data=data,
        result=result,
        dispatch=tuple(dispatch),
        loss_relief_mw=relief,
        plf_after=plf_after,
        congestion_after=cong_after,
    )


def dispatch_by_dso(
    data: CentralizedData, dispatch: tuple[DSODispatch, ...]
) -> dict[str, np.ndarray]:
    """Any framework's dispatch as the centralized model's arrays (DSO → ``[T, n]`` per copy):
    each (hour, prosumer)'s mean ``u_mw`` (one row each in a dispatch table), 0 where it has
    none. Scattered with numpy: a ``pivot_table`` per DSO took 0.24 s of a run's summary at
    100 DSOs, the scatter 0.014 s (``benchmarks/stages.py``)."""
    out = {}
    shape = (len(data.hours), 0)
    for area, r in zip(data.areas, dispatch, strict=True):
        tab, shape = r.dispatch, (shape[0], len(area.prosumer_id))
        u = tab["u_mw"].to_numpy(dtype=float)
        rows = data.hours.get_indexer(tab["hour"])
        cols = area.prosumer_id.get_indexer(tab["prosumer_id"])
        keep = (rows >= 0) & (cols >= 0) & ~np.isnan(u)
        cell = np.ravel_multi_index((rows[keep], cols[keep]), shape)
        total = np.bincount(cell, weights=u[keep], minlength=shape[0] * shape[1])
        count = np.bincount(cell, minlength=total.size)
        mean = np.divide(total, count, out=np.zeros(total.size), where=count > 0)
        out[area.dso_id] = mean.reshape(shape)
    return out
