"""One DSO's side of the market: S4 (losses, screening), S5–S6 (modified offers, block bid)
and S8 (local dispatch, settlement). Each function takes one DSO and returns its results, so
the pipeline can map them over DSOs with any executor. Equations in
``models/local_market.md`` (M1–M12)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from flexopt.dso.aggregation import aggregate_blocks
from flexopt.dso.clearing import clear
from flexopt.dso.dcp import DCPBiObjective, DCPOptions, DCPProblem
from flexopt.dso.flexibility import flexibility_capacity
from flexopt.dso.modification import Factors, mlf_factors, unit_factors
from flexopt.grid import (
    Feeder,
    allocate_losses,
    feeder_from_data,
    marginal_loss_factors,
    screen_buses,
)
from flexopt.instance import DSOData, Instance
from flexopt.market.tso import DSOBid
from flexopt.optim import MOWCA, WCA, compromise, minimize

__all__ = [
    "BASELINE_METHODS",
    "METHODS",
    "DSOContext",
    "DSODispatch",
    "DSOOffer",
    "ExactSettings",
    "WCASettings",
    "declared_capacity",
    "dispatch",
    "feeder_net_load",
    "make_bid",
    "prepare",
    "settle",
]

BASELINE_METHODS = ("none", "mlf")
METHODS = ("none", "mlf", "wca", "exact")
Method = Literal["none", "mlf", "wca", "exact"]


def feeder_net_load(inst: Instance, dso: DSOData) -> tuple[np.ndarray, np.ndarray]:
    """Feeder net load ``[T, n_bus]`` at the day-ahead point (``models/loss_allocation.md`` S4.1):
    bus loads follow the instance's load profile, batteries run their baseline schedule."""
    feeder = feeder_from_data(dso.feeder)
    prof = inst.scenario.load_profile.to_numpy()[:, None]
    p = prof * feeder.p_base_mw
    q = prof * feeder.q_base_mvar
    pos = feeder.bus.get_indexer(dso.prosumers["bus"].to_numpy())
    np.add.at(p.T, pos, -dso.baseline_mw.to_numpy().T)
    return p, q


@dataclass(frozen=True, eq=False)
class DSOContext:
    """What a DSO knows about itself at the day-ahead point (after S4)."""

    dso: DSOData
    feeder: Feeder
    hours: pd.Index
    dt_h: float
    p_mw: np.ndarray
    q_mvar: np.ndarray
    loss_mw: np.ndarray  # per feeder, [T]
    allocation: pd.DataFrame  # hours × feeder buses
    participants: pd.DataFrame  # one row per prosumer: bus, loss_share, participates
    mlf: pd.DataFrame  # hours × participating prosumers, ∂P_loss/∂P at their bus

    @property
    def members(self) -> pd.DataFrame:
        """Offers and battery data of the participating prosumers."""
        return self.dso.prosumers.loc[self.participants.index[self.participants["participates"]]]

    @property
    def bus_pos(self) -> np.ndarray:
        return self.feeder.bus.get_indexer(self.members["bus"].to_numpy())


def prepare(inst: Instance, dso: DSOData, loss_method: str = "branch_current") -> DSOContext:
    """S4: AC power flow at the day-ahead point, loss allocation, screening (L1–L5)."""
    feeder = feeder_from_data(dso.feeder)
    p, q = feeder_net_load(inst, dso)
    pf = feeder.power_flow(p, q)
    alloc = allocate_losses(pf, loss_method)  # type: ignore[arg-type]
    energy = alloc.sum(axis=0) * inst.dt_h
    chosen = set(feeder.bus[screen_buses(energy, inst.market.loss_coverage)])
    total = energy.clip(min=0).sum()
    share = pd.Series(energy / total if total > 0 else 0.0 * energy, index=feeder.bus)
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
    members = pros.loc[participants["participates"]]
    for arr in (p, q):  # the day-ahead point is shared by every later stage: freeze it
        arr.flags.writeable = False
    dl_dp, _ = marginal_loss_factors(pf)
    mlf = pd.DataFrame(
        dl_dp[:, feeder.bus.get_indexer(members["bus"].to_numpy())],
        index=inst.hour_index,
        columns=members.index,
    )
    return DSOContext(
        dso=dso,
        feeder=feeder,
        hours=inst.hour_index,
        dt_h=inst.dt_h,
        p_mw=p,
        q_mvar=q,
        loss_mw=pf.loss_mw,
        allocation=pd.DataFrame(
            alloc, index=inst.hour_index, columns=pd.Index(feeder.bus, name="bus")
        ),
        participants=participants,
        mlf=mlf,
    )


def declared_capacity(ctx: DSOContext, hours: pd.Index) -> pd.Series:
    """``R̄_{d,t}`` the DSO declares to the TSO for the congested ``hours`` (M10): its
    participants' flexibility (M3) with spare energy split evenly over those hours, times the
    number of feeder copies."""
    weight = pd.Series(1.0, index=hours)
    cap = flexibility_capacity(
        ctx.members, ctx.dso.baseline_mw[ctx.members.index], weight, ctx.dt_h
    )
    return ctx.dso.n_feeders * cap.loc[hours].sum(axis=1)


@dataclass(frozen=True, eq=False)
class DSOOffer:
    """A DSO's modified offers for the congested hours (per feeder copy) and its bid."""

    method: str
    factors: Factors
    a_mod: np.ndarray  # [n]
    b_mod: np.ndarray  # [n]
    u_max_mw: pd.DataFrame  # hours × participants, per copy
    design_q_mw: pd.Series  # per copy: R_{d,t} / n
    bid: DSOBid
    dcp: dict  # the method's factors scored on the DCP evaluator (C1–C7), DSO level
    history: np.ndarray | None = None  # WCA convergence (best objective per iteration)
    pareto_f: np.ndarray | None = None  # MOWCA front (normalized f_loss, f_price)
    pareto_pick: np.ndarray | None = None  # the fuzzy compromise on that front


@dataclass(frozen=True)
class WCASettings:
    """How the ``wca`` method searches: population, iterations, multi-objective or not."""

    n_pop: int = 50
    n_iter: int = 300
    pareto: bool = False


@dataclass(frozen=True)
class ExactSettings:
    """How the ``exact`` method solves (``models/dcp_exact.md``): ``solver="highs"`` — the
    mode-"b" MILP; ``solver="scip"`` — the mode-"ab" MINLP, solved globally by SCIP."""

    solver: str = "highs"
    time_limit_s: float = 60.0
    mip_gap: float = 1e-6
    segments: int = 16


def make_bid(
    ctx: DSOContext,
    requirement_mw: pd.Series,
    method: Method,
    *,
    loss_price_eur_per_mwh: float,
    dcp: DCPOptions | None = None,
    wca: WCASettings | None = None,
    exact: ExactSettings | None = None,
    rng: np.random.Generator | None = None,
    blocks: int = 10,
) -> DSOOffer:
    """S5–S6: modify the participants' offers (``method``) and aggregate them into block bids.

    The spare energy is split over the hours in proportion to the requirement ``R_{d,t}``
    (evenly if the DSO was asked for nothing) (M3); the design point of the coefficient
    problem is ``Q_t = R_{d,t} / n`` per feeder copy. Whatever the method, its factors are
    scored on the same DCP evaluator (``models/dcp.md``) and reported in ``DSOOffer.dcp``.
    """
    dcp = dcp or DCPOptions()
    wca = wca or WCASettings()
    hours = requirement_mw.index
    weight = requirement_mw if requirement_mw.sum() > 0 else pd.Series(1.0, index=hours)
    members = ctx.members
    u_max = flexibility_capacity(members, ctx.dso.baseline_mw[members.index], weight, ctx.dt_h).loc[
        hours
    ]
    a = members["a_eur_per_mw2h"].to_numpy()
    b = members["b_eur_per_mwh"].to_numpy()
    problem = DCPProblem(ctx, requirement_mw, loss_price_eur_per_mwh, dcp)
    history = pareto_f = pareto_pick = None
    evaluations = 0
    solved: dict = {}
    if method == "none" or (method in ("wca", "exact") and problem.trivial):
        factors = unit_factors(len(members))
    elif method == "mlf":
        w = weight.to_numpy() / weight.sum()
        mlf = (ctx.mlf.loc[hours].to_numpy() * w[:, None]).sum(axis=0)
        factors = mlf_factors(b, mlf, loss_price_eur_per_mwh, dcp.bounds)
    elif method == "wca":
        factors, history, pareto_f, pareto_pick, evaluations = _solve_wca(
            problem, wca, rng or np.random.default_rng(0)
        )
    elif method == "exact":
        factors, solved = _solve_exact(
            ctx, requirement_mw, loss_price_eur_per_mwh, dcp, exact or ExactSettings()
        )
    else:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    a_mod, b_mod = factors.apply(a, b)
    blk = aggregate_blocks(a_mod, b_mod, u_max.to_numpy(), blocks).scaled(ctx.dso.n_feeders)
    cols = pd.RangeIndex(1, blocks + 1, name="block")
    bid = DSOBid(
        dso_id=ctx.dso.id,
        bus=ctx.dso.bus,
        q_mw=pd.DataFrame(blk.q_mw, index=hours, columns=cols),
        price_eur_per_mwh=pd.DataFrame(blk.price_eur_per_mwh, index=hours, columns=cols),
    )
    score = {**_score(problem, factors, evaluations), **solved}
    return DSOOffer(
        method,
        factors,
        a_mod,
        b_mod,
        u_max,
        requirement_mw / ctx.dso.n_feeders,
        bid,
        score,
        history,
        pareto_f,
        pareto_pick,
    )


def _solve_exact(ctx, requirement_mw, loss_price, dcp: DCPOptions, exact: ExactSettings):
    """The exact DCP (X1–X12); a time-out keeps the incumbent and reports its proven gap."""
    from dataclasses import replace

    from flexopt.dso.exact import ApproxModel, build_dcp_exact, read_dcp_exact
    from flexopt.errors import FlexoptError
    from flexopt.solve import solve

    # highs: the mode-"b" MILP; scip: the mode-"ab" MINLP (bilinear stationarity), solved globally
    mode, solver = ("b", "highs") if exact.solver == "highs" else ("ab", "scip_direct")
    problem = DCPProblem(ctx, requirement_mw, loss_price, replace(dcp, mode=mode))
    approx = ApproxModel(problem, exact.segments)
    model = build_dcp_exact(approx)
    res = solve(model, solver, time_limit=exact.time_limit_s, mip_gap=exact.mip_gap)
    if not res.ok:
        raise FlexoptError(
            f"{ctx.dso.id}: exact DSO problem: solver {solver} returned {res.status.value} ({res.message})"
        )
    sol = read_dcp_exact(model)
    info = {
        "exact_model": "MILP (mode b)" if mode == "b" else "MINLP (mode ab)",
        "exact_status": res.status.value,
        "exact_objective_approx": float(res.objective),
        "exact_bound_approx": float(res.bound),
        "exact_gap": float(res.gap or 0.0),
    }
    return Factors(sol["alpha"], sol["beta"]), info


def _solve_wca(problem: DCPProblem, wca: WCASettings, rng: np.random.Generator):
    """The DCP with WCA (single objective C6 under C7) or MOWCA + fuzzy compromise."""
    if not wca.pareto:
        algo = WCA(
            n_pop=wca.n_pop,
            d_max=1e-5 if problem.n_constr else 1e-16,
            raining="gaussian" if problem.n_constr else "uniform",
        )
        res = minimize(problem, algo, max_iter=wca.n_iter, seed=rng)
        alpha, beta = problem.factors(res.x[None, :])
        return Factors(alpha[0], beta[0]), res.history, None, None, res.evaluations
    penalty = problem.options.budget
    res = minimize(
        DCPBiObjective(problem), MOWCA(n_pop=max(wca.n_pop, 20)), max_iter=wca.n_iter, seed=rng
    )
    front_x, front_f = res.pareto_x, res.pareto_f
    if penalty:  # keep budget-feasible members when there are any
        ok = problem.evaluate(front_x).violation <= 0
        if ok.any():
            front_x, front_f = front_x[ok], front_f[ok]
    pick = compromise(front_f)
    alpha, beta = problem.factors(front_x[pick][None, :])
    return Factors(alpha[0], beta[0]), res.history, front_f, front_f[pick], res.evaluations


def _score(problem: DCPProblem, factors: Factors, evaluations: int) -> dict:
    if problem.trivial:
        return {
            "objective": 1.0,
            "f_loss_mwh": 0.0,
            "f_price_eur": 0.0,
            "budget_eur": 0.0,
            "feasible": True,
            "evaluations": 0,
        }
    v = problem.values(problem.vector(factors.alpha, factors.beta)[None, :])
    return {
        "objective": float(v.objective[0]),
        "f_loss_mwh": float(v.f_loss_mwh[0]),
        "f_price_eur": float(v.f_price_eur[0]),
        "budget_eur": float(v.budget_eur[0]),
        "feasible": bool(v.budget_eur[0] >= -1e-9),
        "evaluations": int(evaluations),
    }


@dataclass(frozen=True, eq=False)
class DSODispatch:
    """S8 results of one DSO (DSO-level quantities include all feeder copies)."""

    dispatch: pd.DataFrame  # long: hour, prosumer_id, u_mw (per copy), ...
    losses: pd.DataFrame  # per hour: loss before/after (feeder and DSO)
    settlement: pd.DataFrame  # per hour: money flows
    vm_before: np.ndarray  # [T, n_bus]
    vm_after: np.ndarray


def dispatch(
    ctx: DSOContext,
    offer: DSOOffer,
    accepted_mw: pd.Series,
    price_eur_per_mwh: pd.Series,
    loss_price_eur_per_mwh: float,
) -> DSODispatch:
    """S8: dispatch the accepted quantity with the modified offers, AC power flow after,
    settlement (M11–M12).

    Each copy supplies ``F_{d,t} / n``. The TSO pays the DSO ``π_{d,t} F_{d,t} Δt``; the DSO
    pays every prosumer ``max(λ'_t u_i, C_i(u_i)) Δt`` — the local uniform price of the
    modified offers, but never below its *original* cost (make-whole) — and keeps the value
    of the losses it avoids, ``π_loss ΔP_loss Δt``.
    """
    hours = offer.u_max_mw.index
    f = accepted_mw.reindex(hours, fill_value=0.0).to_numpy()
    cl = clear(offer.a_mod, offer.b_mod, offer.u_max_mw.to_numpy(), f / ctx.dso.n_feeders)
    return settle(
        ctx,
        ctx.members,
        offer.u_max_mw,
        cl.u_mw,
        cl.price,
        accepted_mw,
        price_eur_per_mwh,
        loss_price_eur_per_mwh,
    )


def settle(
    ctx: DSOContext,
    members: pd.DataFrame,
    u_max_mw: pd.DataFrame,
    u: np.ndarray,
    local_price: np.ndarray,
    accepted_mw: pd.Series,
    price_eur_per_mwh: pd.Series,
    loss_price_eur_per_mwh: float,
) -> DSODispatch:
    """AC power flow after a dispatch and the money flows (M11–M12).

    ``u`` (``[T_c, n]`` MW per copy, hours of ``u_max_mw``) is the extra discharge of the
    prosumers in ``members``; each is paid ``max(local_price · u, C_i(u)) Δt``. Used by
    :func:`dispatch` and by the centralized market, which dispatches every prosumer itself.
    """
    n = ctx.dso.n_feeders
    hours = u_max_mw.index
    f = accepted_mw.reindex(hours, fill_value=0.0).to_numpy()
    a, b = members["a_eur_per_mw2h"].to_numpy(), members["b_eur_per_mwh"].to_numpy()
    cost = (a * u * u + b * u) * ctx.dt_h
    pay = np.maximum(local_price[:, None] * u * ctx.dt_h, cost)
    pay = np.where(u > 1e-12, pay, 0.0)
    bus_pos = ctx.feeder.bus.get_indexer(members["bus"].to_numpy())

    p_after = ctx.p_mw.copy()
    rows = ctx.hours.get_indexer(hours)
    np.add.at(p_after, (rows[:, None], bus_pos[None, :]), -u)
    before = ctx.feeder.power_flow(ctx.p_mw, ctx.q_mvar)
    after = ctx.feeder.power_flow(p_after, ctx.q_mvar)

    dispatch_tab = pd.DataFrame(
        {
            "dso_id": ctx.dso.id,
            "hour": np.repeat(hours.to_numpy(), u.shape[1]),
            "prosumer_id": np.tile(members.index.to_numpy(), len(hours)),
            "bus": np.tile(members["bus"].to_numpy(), len(hours)),
            "u_max_mw": u_max_mw.to_numpy().ravel(),
            "u_mw": u.ravel(),
            "dso_u_mw": n * u.ravel(),
            "local_price_eur_per_mwh": np.repeat(local_price, u.shape[1]),
            "original_cost_eur": n * cost.ravel(),
            "payment_eur": n * pay.ravel(),
        }
    )
    losses = pd.DataFrame(
        {
            "dso_id": ctx.dso.id,
            "hour": ctx.hours.to_numpy(),
            "n_feeders": n,
            "feeder_loss_mw_before": before.loss_mw,
            "feeder_loss_mw_after": after.loss_mw,
            "loss_mw_before": n * before.loss_mw,
            "loss_mw_after": n * after.loss_mw,
            "vm_min_pu_before": before.vm_pu.min(axis=1),
            "vm_min_pu_after": after.vm_pu.min(axis=1),
        }
    )
    saved = (
        losses.set_index("hour")["loss_mw_before"] - losses.set_index("hour")["loss_mw_after"]
    ).loc[hours]
    tso_pay = (
        price_eur_per_mwh.reindex(hours).fillna(0.0) * accepted_mw.reindex(hours, fill_value=0.0)
    ) * ctx.dt_h
    settlement = pd.DataFrame(
        {
            "dso_id": ctx.dso.id,
            "hour": hours.to_numpy(),
            "accepted_mw": f,
            "served_mw": n * u.sum(axis=1),
            "tso_price_eur_per_mwh": price_eur_per_mwh.reindex(hours).to_numpy(),
            "tso_payment_eur": tso_pay.to_numpy(),
            "prosumer_payment_eur": n * pay.sum(axis=1),
            "original_cost_eur": n * cost.sum(axis=1),
            "loss_saving_eur": loss_price_eur_per_mwh * saved.to_numpy() * ctx.dt_h,
        }
    )
    settlement["balance_eur"] = (
        settlement["tso_payment_eur"]
        + settlement["loss_saving_eur"]
        - settlement["prosumer_payment_eur"]
    )
    return DSODispatch(dispatch_tab, losses, settlement, before.vm_pu, after.vm_pu)
