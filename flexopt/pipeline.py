"""The market stages end to end. Stages S1–S4 (physics core) are implemented here; each
returns tables that mirror its inputs' indices, and timings are kept apart from results."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from flexopt.errors import FlexoptError
from flexopt.grid import (
    allocate_losses,
    balancing_weights,
    feeder_from_data,
    screen_buses,
    transmission_from_data,
)
from flexopt.instance import DSOData, Instance
from flexopt.market.day_ahead import DayAheadData, DayAheadResult, build_day_ahead, read_day_ahead
from flexopt.plf import PLFModel, PLFResult, congestion_table, run_plf
from flexopt.solve import solve

__all__ = [
    "PhysicsResult",
    "congestion",
    "day_ahead",
    "dso_loss_allocation",
    "feeder_net_load",
    "plf_model",
    "run_physics",
]


def day_ahead(inst: Instance) -> DayAheadResult:
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
    data = DayAheadData(generators=gens, demand_mw=demand, dt_h=inst.dt_h)
    model = build_day_ahead(data)
    res = solve(model, "highs")
    if not res.ok:
        raise FlexoptError(f"day-ahead market: solver returned {res.status.value} ({res.message})")
    return read_day_ahead(model, res.duals)


def plf_model(inst: Instance, da: DayAheadResult) -> PLFModel:
    """Assemble the PLF inputs from the instance and the day-ahead schedule."""
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
    corr = (1.0 - rho) * np.eye(net.n_bus) + rho
    return PLFModel(
        network=net,
        hours=inst.hour_index,
        load_mw=inst.forecast_load_mw()[net.bus].to_numpy(),
        increase_pu=inst.scenario.load_increase[net.bus].to_numpy(),
        sigma_pu=tr.buses["sigma_pu"].reindex(net.bus).to_numpy(),
        correlation=corr,
        gen_injection_mw=g,
        weights=weights,
    )


def congestion(
    inst: Instance,
    model: PLFModel,
    method: str = "analytic",
    *,
    samples: int = 10_000,
    seed: int = 0,
    progress: bool = False,
) -> tuple[PLFResult, pd.DataFrame]:
    """S2: PLF and the congestion table (``models/plf.md`` P6)."""
    res = run_plf(model, method, samples=samples, seed=seed, progress=progress)  # type: ignore[arg-type]
    table = congestion_table(
        res, model.network.rating_mw, model.hours, model.network.branch, inst.scenario.risk_quantile
    )
    return res, table


def feeder_net_load(inst: Instance, dso: DSOData) -> tuple[np.ndarray, np.ndarray]:
    """Feeder net load ``[T, n_bus]`` at the day-ahead point (eq. S4.1).

    Bus loads follow the instance's load profile; batteries run their baseline schedule
    (discharge lowers the bus's net load).
    """
    feeder = feeder_from_data(dso.feeder)
    prof = inst.scenario.load_profile.to_numpy()[:, None]
    p = prof * feeder.p_base_mw
    q = prof * feeder.q_base_mvar
    pos = feeder.bus.get_indexer(dso.prosumers["bus"].to_numpy())
    np.add.at(p.T, pos, -dso.baseline_mw.to_numpy().T)
    return p, q


def dso_loss_allocation(
    inst: Instance, dso: DSOData, method: str = "branch_current"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """S4: feeder losses per hour, their allocation, and the screened participants.

    Returns
    -------
    allocation : DataFrame
        hours × feeder buses, MW (rows sum to the hour's loss).
    participants : DataFrame
        One row per prosumer: ``bus``, ``loss_share`` (of the day's allocated energy at its
        bus), ``participates``.
    """
    feeder = feeder_from_data(dso.feeder)
    p, q = feeder_net_load(inst, dso)
    pf = feeder.power_flow(p, q)
    alloc = allocate_losses(pf, method)  # type: ignore[arg-type]
    energy = alloc.sum(axis=0) * inst.dt_h
    chosen = set(feeder.bus[screen_buses(energy, inst.market.loss_coverage)])
    share = pd.Series(energy / energy.sum(), index=feeder.bus)
    pros = dso.prosumers
    participants = pd.DataFrame(
        {
            "dso_id": dso.id,
            "bus": pros["bus"],
            "loss_share": share.reindex(pros["bus"]).to_numpy(),
            "participates": pros["bus"].isin(chosen).to_numpy(),
        },
        index=pros.index,
    )
    table = pd.DataFrame(alloc, index=inst.hour_index, columns=pd.Index(feeder.bus, name="bus"))
    return table, participants


@dataclass
class PhysicsResult:
    """Output of stages S1–S4: tables, JSON-ready headline figures, timings."""

    tables: dict[str, pd.DataFrame]
    summary: dict
    timings: dict[str, float] = field(default_factory=dict)


def run_physics(
    inst: Instance,
    *,
    plf_method: Literal["analytic", "monte_carlo", "pem"] = "analytic",
    samples: int = 10_000,
    seed: int = 0,
    loss_method: str = "branch_current",
    progress: bool = False,
) -> PhysicsResult:
    """Run S1 (day-ahead), S2 (PLF and congestion) and S4 (feeder losses and screening)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    da = day_ahead(inst)
    timings["day_ahead_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = plf_model(inst, da)
    _, cong = congestion(inst, model, plf_method, samples=samples, seed=seed, progress=progress)
    timings["plf_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    losses, parts = [], []
    for dso in inst.dsos:
        alloc, part = dso_loss_allocation(inst, dso, loss_method)
        feeder_loss = alloc.sum(axis=1).to_numpy()
        losses.append(
            pd.DataFrame(
                {
                    "dso_id": dso.id,
                    "hour": alloc.index,
                    "feeder_loss_mw": feeder_loss,
                    "n_feeders": dso.n_feeders,
                    "loss_mw": dso.n_feeders * feeder_loss,
                }
            )
        )
        parts.append(part)
    timings["loss_allocation_s"] = time.perf_counter() - t0

    congested = cong[cong["congested"]]
    summary = {
        "instance": inst.name,
        "plf_method": plf_method,
        "seed": seed,
        "day_ahead_cost_eur": round(da.cost_eur, 6),
        "congested_line_hours_before": len(congested),
        "congested_lines": sorted(congested["branch"].unique().tolist()),
        "congested_hours": sorted(int(h) for h in congested["hour"].unique()),
        "overload_mw_before": round(float(congested["overload_mw"].sum()), 6),
        "max_overload_mw": round(float(cong["overload_mw"].max()), 6),
        "dso_losses_mwh_before": {
            d.id: round(float(t["loss_mw"].sum() * inst.dt_h), 9)
            for d, t in zip(inst.dsos, losses, strict=True)
        },
        "participants": {p["dso_id"].iloc[0]: int(p["participates"].sum()) for p in parts},
    }
    price = da.price_eur_per_mwh.rename("price_eur_per_mwh").to_frame()
    tables = {
        "day_ahead": da.p_mw.join(price),
        "congestion": cong,
        "losses": pd.concat(losses, ignore_index=True),
        "participants": pd.concat(parts),
    }
    return PhysicsResult(tables=tables, summary=summary, timings=timings)
