"""The bilevel market end to end (DESIGN §1): S1 → S2 → S4 → S3 → S5/S6 → S7 → S8 → S2 re-check.

Only aggregated block bids (:class:`~flexopt.market.tso.DSOBid`) and accepted quantities
cross the TSO–DSO boundary: the TSO-side stages below never receive a DSO context.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from flexopt.dso import local
from flexopt.dso.dcp import DCPOptions
from flexopt.dso.flexibility import energy_headroom_mwh
from flexopt.errors import FlexoptError
from flexopt.executors import executor
from flexopt.grid import LOSS_ALLOCATION_METHODS, balancing_weights, transmission_from_data
from flexopt.instance import Instance
from flexopt.market.centralized import (
    CentralizedData,
    CentralizedResult,
    DistributionArea,
    build_centralized,
    dispatch_cost,
    read_centralized,
)
from flexopt.market.day_ahead import DayAheadData, DayAheadResult, build_day_ahead, read_day_ahead
from flexopt.market.requirement import (
    RequirementData,
    build_requirement,
    build_requirement_tiebreak,
    read_requirement,
)
from flexopt.market.tso import TSOMarketData, TSOMarketResult, build_tso_market, read_tso_market
from flexopt.plf import PLF_METHODS, PLFModel, PLFResult, congestion_table, run_plf
from flexopt.solve import solve

__all__ = [
    "METHODS",
    "MarketOptions",
    "MarketResult",
    "congestion",
    "day_ahead",
    "plf_model",
    "run_market",
]

METHODS = (*local.METHODS, "centralized")
CENTRAL_MODELS = ("qp", "ac")


@dataclass(frozen=True)
class MarketOptions:
    """Options of :func:`run_market`; unknown fields are rejected.

    Attributes
    ----------
    method : {"none", "mlf", "wca", "exact", "centralized"}
        How DSOs modify their prosumers' offers (S5), or ``"centralized"``: the common
        TSO–DSO market baseline (``models/centralized.md``) instead of S3 and S5–S7.
    plf_method : {"analytic", "monte_carlo", "pem"}
    samples : int
        Monte Carlo samples.
    seed : int
        Seed of every random draw.
    blocks : int
        Blocks per DSO bid and hour (S6).
    loss_allocation : {"branch_current", "marginal", "pro_rata"}
    factor_bounds : (float, float)
        Box of the modification factors.
    dcp_mode : {"ab", "b"}
        Decision variables of the DSO coefficient problem (``models/dcp.md``).
    dcp_weight : float
        Weight of losses in the single-objective DCP (C6).
    dcp_price : {"uniform", "pay_as_bid"}
    dcp_budget : bool
        The DSO budget balance constraint (C7).
    wca_pop, wca_iter : int
        WCA population and iterations per DSO.
    pareto : bool
        Solve the DCP with MOWCA and take the fuzzy compromise (``wca`` only).
    solver, time_limit_s, mip_gap, segments
        ``exact`` (``models/dcp_exact.md``): ``"highs"`` solves the mode-"b" MILP,
        ``"scip"`` the mode-"ab" MINLP; time limit per DSO, relative MIP gap, tangent points
        of the loss approximation.
    central_model : {"qp", "ac"}
        Feeders of the centralized market: LinDistFlow (convex QP, HiGHS) or the exact
        branch flow equations (NLP solved locally by ripopt from the QP's dispatch; small
        cases). SCIP certifies the AC optimum in the tests but returns no duals, hence no
        interface prices, so it is not offered here.
    vm_limits_pu : (float, float)
        Feeder voltage band of the centralized market (Z8).
    workers : int, optional
        Run the DSO-level stages in a local process pool of this size.
    scheduler : str, optional
        Run them on a Dask cluster (``tcp://host:port``, or ``"local"``; extra ``dask``).
    progress : bool
        Stage lines on stderr.
    """

    method: str = "none"
    plf_method: str = "analytic"
    samples: int = 10_000
    seed: int = 0
    blocks: int = 10
    loss_allocation: str = "branch_current"
    factor_bounds: tuple[float, float] = (0.5, 1.5)
    dcp_mode: str = "ab"
    dcp_weight: float = 0.5
    dcp_price: str = "uniform"
    dcp_budget: bool = True
    wca_pop: int = 50
    wca_iter: int = 300
    pareto: bool = False
    solver: str = "highs"
    time_limit_s: float = 60.0
    mip_gap: float = 1e-6
    segments: int = 16
    central_model: str = "qp"
    vm_limits_pu: tuple[float, float] = (0.95, 1.05)
    workers: int | None = None
    scheduler: str | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        checks = [
            ("method", self.method in METHODS, f"one of {METHODS}"),
            ("plf_method", self.plf_method in PLF_METHODS, f"one of {PLF_METHODS}"),
            (
                "loss_allocation",
                self.loss_allocation in LOSS_ALLOCATION_METHODS,
                f"one of {LOSS_ALLOCATION_METHODS}",
            ),
            ("samples", isinstance(self.samples, int) and self.samples > 0, "a positive integer"),
            ("blocks", isinstance(self.blocks, int) and self.blocks > 0, "a positive integer"),
            (
                "factor_bounds",
                0 < self.factor_bounds[0] <= 1 <= self.factor_bounds[1],
                "lo ≤ 1 ≤ hi with lo > 0",
            ),
            ("wca_pop", isinstance(self.wca_pop, int) and self.wca_pop >= 8, "an integer ≥ 8"),
            (
                "wca_iter",
                isinstance(self.wca_iter, int) and self.wca_iter > 0,
                "a positive integer",
            ),
            ("solver", self.solver in ("highs", "scip"), "'highs' or 'scip'"),
            ("mip_gap", 0 <= self.mip_gap < 1, "in [0, 1)"),
            ("time_limit_s", self.time_limit_s > 0, "> 0"),
            ("central_model", self.central_model in CENTRAL_MODELS, f"one of {CENTRAL_MODELS}"),
            (
                "vm_limits_pu",
                len(self.vm_limits_pu) == 2 and 0 < self.vm_limits_pu[0] < 1 < self.vm_limits_pu[1],
                "(lo, hi) with 0 < lo < 1 < hi",
            ),
        ]
        for name, ok, want in checks:
            if not ok:
                raise ValueError(
                    f"MarketOptions.{name} must be {want}, got {getattr(self, name)!r}"
                )
        self.dcp_options()  # validates the DCP fields

    def dcp_options(self) -> DCPOptions:
        """The DSO coefficient problem's options (``models/dcp.md``)."""
        return DCPOptions(
            mode=self.dcp_mode,
            bounds=self.factor_bounds,
            weight=self.dcp_weight,
            price=self.dcp_price,
            budget=self.dcp_budget,
        )

    @classmethod
    def from_kwargs(cls, **kwargs) -> MarketOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown market option(s) {unknown}; known: {sorted(known)}")
        return cls(**kwargs)


@dataclass
class MarketResult:
    """Result of :func:`run_market`.

    ``tables`` maps names to DataFrames; ``summary`` holds JSON-ready headline figures
    (``clearing_time_s`` is the only part that changes between identical runs and is written
    to ``timings.json``, not ``summary.json``).
    """

    method: str
    tables: dict[str, pd.DataFrame]
    summary: dict
    timings: dict[str, float]
    detail: dict = field(default_factory=dict, repr=False)

    def save(self, out: str | Path, figures: bool = True) -> Path:
        """Write CSV tables, ``summary.json``, ``timings.json`` and figures into ``out``
        atomically (a finished folder replaces ``out`` in one rename)."""
        from flexopt.report import save_results

        summary = {k: v for k, v in self.summary.items() if k != "clearing_time_s"}
        extra = None
        if figures:
            from flexopt.report.figures import make_figures

            extra = lambda folder: make_figures(self, folder)  # noqa: E731
        return save_results(out, self.tables, summary, self.timings, extra=extra)


# ---------------------------------------------------------------------------- stages
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
    # hours decouple (no intertemporal constraint): one small QP per hour. HiGHS's QP solver
    # scales badly with size here (case300: 28× faster hour by hour, benchmarks/stages.py)
    per_hour = []
    for t in demand.index:
        model = build_day_ahead(
            DayAheadData(generators=gens, demand_mw=demand.loc[[t]], dt_h=inst.dt_h)
        )
        res = solve(model, "highs")
        if not res.ok:
            raise FlexoptError(
                f"day-ahead market, hour {t}: solver returned {res.status.value} ({res.message})"
            )
        per_hour.append(read_day_ahead(model, res.duals))
    return DayAheadResult(
        p_mw=pd.concat([h.p_mw for h in per_hour]),
        price_eur_per_mwh=pd.concat([h.price_eur_per_mwh for h in per_hour]),
        cost_eur=sum(h.cost_eur for h in per_hour),
    )


def plf_model(inst: Instance, da: DayAheadResult) -> PLFModel:
    """Assemble the PLF inputs from the instance and the day-ahead schedule (P1–P2)."""
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


def congestion(
    inst: Instance,
    model: PLFModel,
    method: str = "analytic",
    *,
    samples: int = 10_000,
    seed: int = 0,
    progress: bool = False,
) -> tuple[PLFResult, pd.DataFrame]:
    """S2: PLF and the congestion table (P6)."""
    res = run_plf(model, method, samples=samples, seed=seed, progress=progress)  # type: ignore[arg-type]
    table = congestion_table(
        res, model.network.rating_mw, model.hours, model.network.branch, inst.scenario.risk_quantile
    )
    return res, table


def _limits(
    inst: Instance, model: PLFModel, res: PLFResult, hours: pd.Index
) -> tuple[pd.DataFrame, pd.DataFrame]:
    pos = model.hours.get_indexer(hours)
    branches = model.network.branch
    mean = pd.DataFrame(res.mean_mw[pos], index=hours, columns=branches)
    limit = model.network.rating_mw[None, :] - inst.scenario.risk_quantile * res.std_mw[pos]
    return mean, pd.DataFrame(np.clip(limit, 0.0, None), index=hours, columns=branches)


def _requirement(
    inst, model, res, hours, capacity: pd.DataFrame, dso_bus: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """S3 (R1–R5): TSO-side; sees DSO interface buses and declared capacities only."""
    mean, limit = _limits(inst, model, res, hours)
    net = model.network
    sens = {}
    for t in hours:
        h = model.sensitivity[model.hours.get_loc(t)]
        sens[t] = pd.DataFrame(
            h[:, net.bus_pos(list(dso_bus.values()))], index=net.branch, columns=list(dso_bus)
        )
    data = RequirementData(
        mean_flow_mw=mean, limit_mw=limit, sensitivity=sens, capacity_mw=capacity
    )
    lp = build_requirement(data)
    r1 = solve(lp)
    if not r1.ok:
        raise FlexoptError(
            f"flexibility requirement (S3): solver returned {r1.status.value} ({r1.message})"
        )
    qp = build_requirement_tiebreak(data, lp)
    r2 = solve(qp, time_limit=30.0)  # a safety net: the stage is small and well scaled
    return read_requirement(qp if r2.ok else lp)


def _tso_market(inst, model, res, hours, bids) -> TSOMarketResult:
    """S7 (K1–K5): TSO-side; receives the DSOs' block bids only."""
    mean, limit = _limits(inst, model, res, hours)
    net = model.network
    sens = {
        t: pd.DataFrame(
            model.sensitivity[model.hours.get_loc(t)], index=net.branch, columns=net.bus
        )
        for t in hours
    }
    data = TSOMarketData(
        mean_flow_mw=mean, limit_mw=limit, sensitivity=sens, bids=tuple(bids), dt_h=inst.dt_h
    )
    m = build_tso_market(data)
    r = solve(m)
    if not r.ok:
        raise FlexoptError(f"TSO market (S7): solver returned {r.status.value} ({r.message})")
    return read_tso_market(m, data, r.duals, r.objective)


# ---------------------------------------------------------------------------- end to end
def run_market(inst: Instance, method: str = "none", *, seed: int = 0, **options) -> MarketResult:
    """Run the bilevel market on an instance (DESIGN §1, S1–S8).

    Parameters
    ----------
    inst : Instance
    method : {"none", "mlf", "wca", "exact"}
        The DSOs' cost-coefficient modification (S5).
    seed : int
        Seed of every random draw (Monte Carlo PLF; per DSO ``(seed, k)`` for WCA).
    **options
        Fields of :class:`MarketOptions` (unknown names raise ``TypeError``), e.g.
        ``workers=2`` (process pool) or ``scheduler="tcp://…"`` (Dask) for the DSO-level work.

    Returns
    -------
    MarketResult
    """
    opt = MarketOptions.from_kwargs(method=method, seed=seed, **options)
    with executor(opt.workers, opt.scheduler) as ex:
        return _run(inst, opt, ex)


def _task_prepare(args) -> local.DSOContext:
    inst, dso, loss_method = args
    return local.prepare(inst, dso, loss_method)


def _task_bid(args) -> local.DSOOffer:
    ctx, requirement, method, loss_price, dcp, wca, exact, blocks, seed = args
    return local.make_bid(
        ctx,
        requirement,
        method,
        loss_price_eur_per_mwh=loss_price,
        dcp=dcp,
        wca=wca,
        exact=exact,
        blocks=blocks,
        rng=np.random.default_rng(seed),
    )


def _task_dispatch(args) -> local.DSODispatch:
    return local.dispatch(*args)


def _task_settle(args) -> local.DSODispatch:
    """S8 after the centralized market: every prosumer is paid the interface price λ_{d,t}
    (Z10), never below its original cost."""
    ctx, area, u, price, accepted, loss_price = args
    u_max = pd.DataFrame(area.u_max_mw, index=accepted.index, columns=area.prosumer_id)
    local_price = np.nan_to_num(price.to_numpy(), nan=0.0)
    return local.settle(ctx, ctx.dso.prosumers, u_max, u, local_price, accepted, price, loss_price)


def centralized_data(
    inst: Instance,
    model: PLFModel,
    res: PLFResult,
    hours: pd.Index,
    ctxs: list[local.DSOContext],
    vm_limits_pu: tuple[float, float] = (0.95, 1.05),
) -> CentralizedData:
    """What the common market sees (``models/centralized.md``): the S2 mean flows and limits
    of the congested ``hours``, the sensitivities at the DSO buses, and every DSO's feeder
    and prosumers at the day-ahead point (Z2–Z3 from the batteries' baselines)."""
    mean, limit = _limits(inst, model, res, hours)
    net = model.network
    pos = model.hours.get_indexer(hours)
    h = model.sensitivity[pos][:, :, net.bus_pos([c.dso.bus for c in ctxs])]
    areas = []
    for c in ctxs:
        pros, base = c.dso.prosumers, c.dso.baseline_mw
        rows = c.hours.get_indexer(hours)
        power = (pros["p_max_mw"].to_numpy() - base.loc[hours].to_numpy()).clip(0.0)
        areas.append(
            DistributionArea(
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
                energy_mwh=energy_headroom_mwh(pros, base, hours, inst.dt_h),
            )
        )
    return CentralizedData(
        mean_flow_mw=mean,
        limit_mw=limit,
        sensitivity=h,
        areas=tuple(areas),
        loss_price_eur_per_mwh=inst.market.loss_price_eur_per_mwh,
        dt_h=inst.dt_h,
        vm_limits_pu=vm_limits_pu,
    )


def _centralized_market(data: CentralizedData, opt: MarketOptions) -> CentralizedResult:
    """The common market (Z1–Z11): the QP, then — ``central_model="ac"`` — the AC NLP
    started from the QP's dispatch."""
    m = build_centralized(data)
    r = solve(m, "highs")
    if not r.ok:
        raise FlexoptError(
            f"centralized market (QP): solver returned {r.status.value} ({r.message})"
        )
    res = read_centralized(m, data, r.duals)
    if opt.central_model == "ac":
        mac = build_centralized(data, ac=True, start=res)
        rac = solve(mac, "ripopt")
        if not rac.ok:
            raise FlexoptError(
                f"centralized market (AC): ripopt returned {rac.status.value} ({rac.message})"
            )
        res = read_centralized(mac, data, rac.duals)
    return res


def _dispatch_by_dso(central: CentralizedData, results) -> dict[str, np.ndarray]:
    """Every method's dispatch as the centralized model's arrays (DSO → ``[T, n]`` per copy)."""
    out = {}
    for area, r in zip(central.areas, results, strict=True):
        tab = r.dispatch.pivot_table(index="hour", columns="prosumer_id", values="u_mw")
        u = tab.reindex(index=central.hours, columns=area.prosumer_id, fill_value=0.0)
        out[area.dso_id] = u.fillna(0.0).to_numpy()
    return out


def _run(inst: Instance, opt: MarketOptions, ex) -> MarketResult:
    """S1–S8 with the DSO-level stages mapped over ``ex`` (``flexopt.executors``)."""
    timings: dict[str, float] = {}
    clock = _Clock(timings, opt.progress)

    with clock("day_ahead", "S1 day-ahead market"):
        da = day_ahead(inst)
    with clock("plf", f"S2 probabilistic load flow ({opt.plf_method})"):
        model = plf_model(inst, da)
        plf_before, cong_before = congestion(
            inst, model, opt.plf_method, samples=opt.samples, seed=opt.seed, progress=opt.progress
        )
    hours = pd.Index(
        sorted(cong_before.loc[cong_before["congested"], "hour"].unique()), name="hour"
    )
    with clock("loss_allocation", "S4 loss allocation and screening"):
        # each task carries its own DSO only: the rest of the instance is other DSOs' data
        ctxs = ex.map(
            _task_prepare, [(replace(inst, dsos=(d,)), d, opt.loss_allocation) for d in inst.dsos]
        )
    dso_ids = [d.id for d in inst.dsos]
    dso_bus = {d.id: d.bus for d in inst.dsos}

    central = cres = None
    if len(hours):
        central = centralized_data(inst, model, plf_before, hours, ctxs, opt.vm_limits_pu)
    if len(hours) == 0 or opt.method == "centralized":
        capacity = requirement = pd.DataFrame(0.0, index=hours, columns=dso_ids)
        unresolved_req = pd.DataFrame(index=hours)
        offers, bids, tso = [], [], None
        if central is not None:
            with clock("central_market", f"centralized TSO–DSO market ({opt.central_model})"):
                cres = _centralized_market(central, opt)
            tso = TSOMarketResult(
                accepted_mw=cres.accepted_mw,
                price_eur_per_mwh=cres.price_eur_per_mwh,
                blocks=pd.DataFrame(),
                line_price_eur_per_mwh=cres.line_price_eur_per_mwh,
                unresolved_mw=cres.unresolved_mw,
                cost_eur=cres.flex_cost_eur,
            )
    else:
        capacity = pd.concat({c.dso.id: local.declared_capacity(c, hours) for c in ctxs}, axis=1)
        with clock("requirement", "S3 flexibility requirement"):
            requirement, unresolved_req = _requirement(
                inst, model, plf_before, hours, capacity, dso_bus
            )
        with clock("dso_bids", f"S5–S6 offers ({opt.method}) and block bids"):
            wca = local.WCASettings(n_pop=opt.wca_pop, n_iter=opt.wca_iter, pareto=opt.pareto)
            exact = local.ExactSettings(
                solver=opt.solver,
                time_limit_s=opt.time_limit_s,
                mip_gap=opt.mip_gap,
                segments=opt.segments,
            )
            dcp = opt.dcp_options()
            lp = inst.market.loss_price_eur_per_mwh
            offers = ex.map(
                _task_bid,
                [
                    (
                        c,
                        requirement[c.dso.id],
                        opt.method,
                        lp,
                        dcp,
                        wca,
                        exact,
                        opt.blocks,
                        [opt.seed, k],
                    )
                    for k, c in enumerate(ctxs)
                ],
            )
            bids = [o.bid for o in offers]
            if opt.progress and opt.method == "wca":
                for o in offers:
                    print(
                        f"flexopt:   {o.bid.dso_id}: {o.dcp['evaluations']} evaluations, DSO problem objective "
                        f"{o.dcp['objective']:.4f}",
                        file=sys.stderr,
                    )
        with clock("tso_market", "S7 TSO flexibility market"):
            tso = _tso_market(inst, model, plf_before, hours, bids)
    with clock("dispatch", "S8 local dispatch and settlement"):
        if cres is not None:
            results = ex.map(
                _task_settle,
                [
                    (
                        c,
                        a,
                        cres.u_mw[c.dso.id],
                        tso.price_eur_per_mwh[c.dso.id],
                        tso.accepted_mw[c.dso.id],
                        inst.market.loss_price_eur_per_mwh,
                    )
                    for c, a in zip(ctxs, central.areas, strict=True)
                ],
            )
        else:
            results = (
                ex.map(
                    _task_dispatch,
                    [
                        (
                            c,
                            o,
                            tso.accepted_mw[c.dso.id],
                            tso.price_eur_per_mwh[c.dso.id],
                            inst.market.loss_price_eur_per_mwh,
                        )
                        for c, o in zip(ctxs, offers, strict=True)
                    ],
                )
                if tso is not None
                else []
            )
    with clock("verification", "S2 re-check with the accepted flexibility"):
        reduction = np.zeros_like(model.load_mw)
        if tso is not None:
            net = model.network
            for d in dso_ids:
                reduction[model.hours.get_indexer(hours), net.bus_pos(dso_bus[d])] += (
                    tso.accepted_mw[d].to_numpy()
                )
        plf_after, cong_after = congestion(
            inst,
            replace(model, reduction_mw=reduction),
            opt.plf_method,
            samples=opt.samples,
            seed=opt.seed,
        )

    tables = _tables(
        inst,
        da,
        cong_before,
        cong_after,
        ctxs,
        capacity,
        requirement,
        unresolved_req,
        offers,
        tso,
        results,
    )
    summary = _summary(
        inst, opt, da, cong_before, cong_after, ctxs, requirement, tso, offers, results, timings
    )
    summary.update(_comparison(opt, central, cres, results, offers))
    detail = {
        "contexts": ctxs,
        "offers": offers,
        "tso": tso,
        "dispatch": results,
        "hours": hours,
        "plf_before": plf_before,
        "plf_after": plf_after,
        "network": model.network,
        "centralized_data": central,
        "centralized": cres,
    }
    return MarketResult(
        method=opt.method, tables=tables, summary=summary, timings=dict(timings), detail=detail
    )


class _Clock:
    """Times stages into ``timings`` and prints a line per stage when asked."""

    def __init__(self, timings: dict[str, float], progress: bool) -> None:
        self.timings, self.progress = timings, progress

    @contextmanager
    def __call__(self, key: str, label: str) -> Iterator[None]:
        if self.progress:
            print(f"flexopt: {label} …", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[f"{key}_s"] = time.perf_counter() - start


def _tables(
    inst,
    da,
    cong_before,
    cong_after,
    ctxs,
    capacity,
    requirement,
    unresolved_req,
    offers,
    tso,
    results,
):
    price = da.price_eur_per_mwh.rename("price_eur_per_mwh").to_frame()
    cong = cong_before.merge(
        cong_after[["hour", "branch", "mean_mw", "overload_mw", "congested"]],
        on=["hour", "branch"],
        suffixes=("", "_after"),
    )
    req = requirement.stack().rename("requirement_mw").to_frame()
    req["capacity_mw"] = capacity.stack()
    req.index.names = ["hour", "dso_id"]
    offer_rows = []
    for c, o in zip(ctxs, offers, strict=False):
        mem = c.members
        offer_rows.append(
            pd.DataFrame(
                {
                    "dso_id": c.dso.id,
                    "prosumer_id": mem.index,
                    "bus": mem["bus"].to_numpy(),
                    "a_eur_per_mw2h": mem["a_eur_per_mw2h"].to_numpy(),
                    "b_eur_per_mwh": mem["b_eur_per_mwh"].to_numpy(),
                    "alpha": o.factors.alpha,
                    "beta": o.factors.beta,
                    "a_mod_eur_per_mw2h": o.a_mod,
                    "b_mod_eur_per_mwh": o.b_mod,
                }
            )
        )
    bid_rows = [
        pd.DataFrame(
            {
                "dso_id": o.bid.dso_id,
                "hour": np.repeat(o.bid.q_mw.index.to_numpy(), o.bid.q_mw.shape[1]),
                "block": np.tile(o.bid.q_mw.columns.to_numpy(), len(o.bid.q_mw)),
                "q_mw": o.bid.q_mw.to_numpy().ravel(),
                "price_eur_per_mwh": o.bid.price_eur_per_mwh.to_numpy().ravel(),
            }
        )
        for o in offers
    ]
    tables = {
        "day_ahead": da.p_mw.join(price),
        "congestion": cong,
        "participants": pd.concat([c.participants for c in ctxs]),
        "requirement": req.reset_index(),
        "offers": pd.concat(offer_rows, ignore_index=True) if offer_rows else pd.DataFrame(),
        "bids": pd.concat(bid_rows, ignore_index=True) if bid_rows else pd.DataFrame(),
        "losses": pd.concat([r.losses for r in results], ignore_index=True)
        if results
        else _losses_no_market(ctxs),
    }
    if tso is not None:
        if len(tso.blocks):  # the centralized market has no bids
            tables["tso_clearing"] = tso.blocks
        tables["tso_prices"] = (
            pd.concat(
                {"accepted_mw": tso.accepted_mw, "price_eur_per_mwh": tso.price_eur_per_mwh}, axis=1
            )
            .stack(future_stack=True)
            .reset_index()
            .rename(columns={"level_0": "hour", "level_1": "dso_id"})
        )
        tables["line_prices"] = (
            tso.line_price_eur_per_mwh.stack()
            .rename("price_eur_per_mwh")
            .reset_index()
            .rename(columns={"level_0": "hour", "level_1": "branch"})
        )
        tables["dispatch"] = pd.concat([r.dispatch for r in results], ignore_index=True)
        tables["settlement"] = pd.concat([r.settlement for r in results], ignore_index=True)
        if len(unresolved_req.columns):
            tables["unresolved_requirement"] = (
                unresolved_req.stack().rename("unresolved_mw").reset_index()
            )
    return tables


def _comparison(opt, central, cres, results, offers) -> dict:
    """Summary keys that put the bilevel methods and the centralized market side by side.

    ``social_cost_lindistflow_eur``: the dispatch scored on the centralized model's own
    objective (Z1 without slack, congested hours) — the first-best comparison;
    ``information_exchanged_floats``: numbers crossing the TSO–DSO boundary (Z11): block
    bids, declared capacity and requirement, accepted quantities and prices for the bilevel
    scheme; every prosumer's offer and flexibility, the feeders and their loads, and the
    dispatch sent back for the centralized market.
    """
    if central is None:
        return {"social_cost_lindistflow_eur": 0.0, "information_exchanged_floats": 0}
    T = len(central.hours)
    if cres is not None:
        info = central.information_floats() + T * sum(len(a.a) for a in central.areas)
    else:
        info = sum(2 * o.bid.q_mw.size + 4 * T for o in offers)
    cost = dispatch_cost(central, _dispatch_by_dso(central, results)) if results else None
    out = {
        "social_cost_lindistflow_eur": _r(cost["social_cost_eur"], 6) if cost else 0.0,
        "information_exchanged_floats": int(info),
    }
    if cres is not None:
        out["central_model"] = opt.central_model
        out["flex_requested_mwh"] = None  # the common market has no requirement stage (S3)
    return out


def _losses_no_market(ctxs) -> pd.DataFrame:
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "dso_id": c.dso.id,
                    "hour": c.hours.to_numpy(),
                    "n_feeders": c.dso.n_feeders,
                    "loss_mw_before": c.dso.n_feeders * c.loss_mw,
                    "loss_mw_after": c.dso.n_feeders * c.loss_mw,
                }
            )
            for c in ctxs
        ],
        ignore_index=True,
    )


def _r(x: float, nd: int = 9) -> float:
    return round(float(x), nd)


def _summary(
    inst, opt, da, cong_before, cong_after, ctxs, requirement, tso, offers, results, timings
) -> dict:
    dt = inst.dt_h
    losses = pd.concat([r.losses for r in results]) if results else _losses_no_market(ctxs)
    settle = (
        pd.concat([r.settlement for r in results])
        if results
        else pd.DataFrame(
            columns=[
                "dso_id",
                "tso_payment_eur",
                "prosumer_payment_eur",
                "original_cost_eur",
                "loss_saving_eur",
                "balance_eur",
                "accepted_mw",
            ]
        )
    )
    lpe = inst.market.loss_price_eur_per_mwh
    loss_before = losses.groupby("dso_id")["loss_mw_before"].sum() * dt
    loss_after = losses.groupby("dso_id")["loss_mw_after"].sum() * dt
    per_dso = {}
    for c in ctxs:
        d = c.dso.id
        s = settle[settle["dso_id"] == d]
        per_dso[d] = {
            "participants": len(c.dso.prosumers)  # the common market screens no one
            if opt.method == "centralized"
            else int(c.participants["participates"].sum()),
            "requested_mwh": None  # no requirement stage (S3) in the common market
            if opt.method == "centralized"
            else (_r(requirement[d].sum() * dt) if d in requirement else 0.0),
            "accepted_mwh": _r(tso.accepted_mw[d].sum() * dt) if tso is not None else 0.0,
            "losses_mwh_before": _r(loss_before[d]),
            "losses_mwh_after": _r(loss_after[d]),
            "tso_payment_eur": _r(s["tso_payment_eur"].sum(), 6),
            "prosumer_payment_eur": _r(s["prosumer_payment_eur"].sum(), 6),
            "balance_eur": _r(s["balance_eur"].sum(), 6),
        }
        offer = next((o for o in offers if o.bid.dso_id == d), None)
        if offer is not None:
            per_dso[d]["dcp"] = {
                k: (_r(v, 9) if isinstance(v, float) else v) for k, v in offer.dcp.items()
            }
    before = cong_before[cong_before["congested"]]
    after = cong_after[cong_after["congested"]]
    return {
        "instance": inst.name,
        "method": opt.method,
        "plf_method": opt.plf_method,
        "seed": opt.seed,
        "day_ahead_cost_eur": _r(da.cost_eur, 6),
        "congested_line_hours_before": len(before),
        "congested_lines_before": sorted(before["branch"].unique().tolist()),
        "congested_hours": sorted(int(h) for h in before["hour"].unique()),
        "overload_mw_before": _r(before["overload_mw"].sum(), 6),
        "congested_line_hours_after": len(after),
        "overload_mw_after": _r(after["overload_mw"].sum(), 6),
        "flex_requested_mwh": _r(requirement.to_numpy().sum() * dt, 6),
        "flex_accepted_mwh": _r(tso.accepted_mw.to_numpy().sum() * dt, 6)
        if tso is not None
        else 0.0,
        "tso_cost_eur": _r(settle["tso_payment_eur"].sum(), 6),
        "dso_losses_mwh_before": _r(loss_before.sum()),
        "dso_losses_mwh_after": _r(loss_after.sum()),
        "dso_balance_eur": _r(settle["balance_eur"].sum(), 6),
        "flex_original_cost_eur": _r(settle["original_cost_eur"].sum(), 6),
        "social_cost_eur": _r(settle["original_cost_eur"].sum() + lpe * loss_after.sum(), 6),
        "dso": per_dso,
        "clearing_time_s": {k: _r(v, 6) for k, v in timings.items()},
    }
