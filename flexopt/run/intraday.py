"""The intraday flexibility market (``models/intraday.md``, J1–J11): after the day-ahead
bilevel market, realizations of the load drawn from the PLF model, each followed by the
bilevel market once more on its realized flows, with the batteries' day-ahead commitments
kept.

What carries from day ahead (J5, J7): the accepted relief and its loss relief are delivered
in every realization, their payment stands, and each battery's baseline becomes its committed
schedule (baseline plus its day-ahead dispatch), so the intraday offers hold the power and
energy left over. The intraday market itself is :func:`~flexopt.run.bilevel.run_bilevel` on a
:class:`~flexopt.outcome.MarketBase` whose PLF model is the realization (no uncertainty left).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from flexopt.dso.context import DSOContext
from flexopt.errors import OptionError, check_terminated
from flexopt.executors import Executor
from flexopt.instance import Instance
from flexopt.outcome import BilevelOutcome, MarketBase, MarketOutcome
from flexopt.plf import PLFModel, congestion_table
from flexopt.progress import Progress, progress_log
from flexopt.run.bilevel import run_bilevel
from flexopt.run.clock import Clock
from flexopt.run.intraday_config import IntradayConfig
from flexopt.run.options import MarketOptions
from flexopt.run.tasks import PrepareTask, run_task
from flexopt.run.tso import congestion, interface_reduction

__all__ = [
    "IntradayInterrupted",
    "IntradayOutcome",
    "IntradayPlan",
    "IntradayScenario",
    "committed_instance",
    "draw_realization",
    "intraday_scenario",
    "overload_mwh",
    "plan_intraday",
    "realized_model",
    "run_intraday",
]

#: The random stream of the realizations (issue 18), apart from the Monte Carlo PLF's (P4).
STREAM = 18
#: An overload below this (MW, per line-hour) is none — the congestion table's tolerance (P6).
TOL_MW = 1e-6


@dataclass(frozen=True, eq=False)
class IntradayPlan:
    """What every realization starts from: the day-ahead market and what carries from it.

    Attributes
    ----------
    dayahead : BilevelOutcome
        The day-ahead market (its instance carries ``z_DA`` as risk quantile, J2).
    config : IntradayConfig
    dayahead_quantile, monitor_quantile : float
        ``z_DA`` (J2) and ``z_mon`` (J3).
    monitored : DataFrame
        The line-hours ``C^mon`` (J3): ``hour``, ``branch``, ``mean_mw``, ``std_mw``,
        ``rating_mw``, ``prob_overload`` (S2) and ``dayahead`` (in ``C^DA``, bought day ahead).
    instance : Instance
        The day-ahead instance with every battery's baseline its committed schedule (J7).
    contexts : tuple of DSOContext
        S4 of every DSO at the committed point (J7).
    reduction_mw : ndarray
        ``[T, N]``, the day-ahead relief ``F^DA + ΔP^DA`` at the interface buses (J5).
    payment_eur : float
        ``P^DA``, the TSO's day-ahead payment (M12).
    """

    dayahead: BilevelOutcome
    config: IntradayConfig
    dayahead_quantile: float
    monitor_quantile: float
    monitored: pd.DataFrame
    instance: Instance
    contexts: tuple[DSOContext, ...]
    reduction_mw: np.ndarray
    payment_eur: float

    @property
    def monitored_hours(self) -> pd.Index:
        """``T^mon`` (J3), sorted."""
        return pd.Index(sorted(self.monitored["hour"].unique()), name="hour")


@dataclass(frozen=True, eq=False)
class IntradayScenario:
    """One realization ``ξ_k`` and the markets' outcome in it (J4–J10).

    Attributes
    ----------
    scenario : int
        ``k`` (1…N).
    market : BilevelOutcome or None
        The intraday market (J8); ``None`` when no monitored hour overloads (J6).
    overload_none_mwh, overload_dayahead_mwh, overload_intraday_mwh : float
        ``O`` (J10) of the realization without any market, after the day-ahead market
        (``O^DA``) and after the intraday market too (``O^ID``), MW·h.
    payment_eur : float
        ``P^ID``, the TSO's intraday payment.
    """

    scenario: int
    market: BilevelOutcome | None
    overload_none_mwh: float
    overload_dayahead_mwh: float
    overload_intraday_mwh: float
    payment_eur: float

    @property
    def hours(self) -> pd.Index:
        """``T^ID`` (J6)."""
        return pd.Index([], name="hour") if self.market is None else self.market.hours

    def _total_mwh(self, name: str) -> float:
        """``Δt Σ`` of the intraday market's hours × DSOs frame ``name`` (0: no market)."""
        frame = None if self.market is None else getattr(self.market, name)
        if self.market is None or frame is None:
            return 0.0
        return float(frame.to_numpy().sum() * self.market.instance.dt_h)

    @property
    def requirement_mwh(self) -> float:
        """``Δt Σ R^ID``, the intraday requirement (S3 on the realized flows)."""
        return self._total_mwh("requirement_mw")

    @property
    def accepted_mwh(self) -> float:
        """``Δt Σ F^ID``, the relief the TSO bought intraday."""
        return self._total_mwh("accepted_mw")

    @property
    def relief_losses_mwh(self) -> float:
        """``Δt Σ ΔP^ID``, the intraday relief from lower feeder losses."""
        return self._total_mwh("loss_relief_mw")


@dataclass(frozen=True, eq=False)
class IntradayOutcome:
    """The intraday market over the realizations that finished.

    Attributes
    ----------
    plan : IntradayPlan
    scenarios : tuple of IntradayScenario
        In order ``k = 1, 2, …``; fewer than ``plan.config.scenarios`` when interrupted.
    interrupted : bool
        Ctrl-C or ``SIGTERM`` stopped the loop (:class:`IntradayInterrupted`).
    """

    plan: IntradayPlan
    scenarios: tuple[IntradayScenario, ...]
    interrupted: bool = False


class IntradayInterrupted(KeyboardInterrupt):
    """Ctrl-C or ``SIGTERM`` during the realizations, after some finished: a
    ``KeyboardInterrupt`` (the run stops, as any interrupted run does) that keeps what
    finished, as ``flexopt compare`` keeps its finished runs.

    Attributes
    ----------
    outcome : IntradayOutcome
        The realizations that finished.
    interrupt : KeyboardInterrupt
        The interrupt itself (``flexopt.cli.Terminated`` for ``SIGTERM``).
    result : MarketResult or None
        Set by :func:`flexopt.run.api.run`: the run's result over the finished realizations
        (``flexopt run`` prints and saves it, then exits as interrupted).
    """

    def __init__(self, outcome: IntradayOutcome, interrupt: KeyboardInterrupt) -> None:
        n = outcome.plan.config.scenarios
        super().__init__(
            f"intraday market interrupted after {len(outcome.scenarios)} of {n} realizations"
        )
        self.outcome = outcome
        self.interrupt = interrupt
        self.result: Any = None  # a MarketResult (flexopt.run.result imports this module)


def overload_mwh(flows_mw: np.ndarray, rating_mw: np.ndarray, dt_h: float) -> float:
    """``O = Δt Σ_{t,l} max(0, |f_{t,l}| − F̄_l)`` over every branch-hour (J10), MW·h; an
    excess below :data:`TOL_MW` counts as none."""
    excess = np.abs(flows_mw) - rating_mw
    return float(dt_h * np.where(excess > TOL_MW, excess, 0.0).sum())


def draw_realization(model: PLFModel, seed: int, k: int) -> np.ndarray:
    """``ξ_k`` ``[T, U]`` (J4): the correlated standard errors of the uncertain buses, drawn
    as Monte Carlo draws them (P4, ``ξ = K z``, ``z ~ N(0, I)`` per hour) from
    ``numpy.random.default_rng([seed, STREAM, k])`` — realization ``k`` is the same whatever
    the number of realizations."""
    rng = np.random.default_rng([seed, STREAM, k])
    z = rng.standard_normal((model.n_hours, len(model.uncertain)))
    xi: np.ndarray = z @ model.correlation_factor.T
    return xi


def realized_model(model: PLFModel, xi: np.ndarray, reduction_mw: np.ndarray) -> PLFModel:
    """The PLF model of one realization (J5): load ``L̃(ξ) − reduction`` with no uncertainty
    left, so that S2 on it gives the realized flows (P2) with ``σ = 0`` and S3/S7 work on
    them. The day-ahead generation schedule and the balancing weights are kept."""
    expected = model.load_mw * (1.0 + model.increase_pu)
    realized = model.realize(xi)  # P1, less any reduction the model already carries
    return replace(
        model,
        sigma_pu=np.zeros_like(model.sigma_pu),
        reduction_mw=expected - realized + reduction_mw,
    )


def committed_instance(o: BilevelOutcome) -> Instance:
    """The day-ahead instance with every battery's baseline its committed schedule, the
    baseline plus its day-ahead dispatch ``u^DA`` (J7)."""
    if not o.dispatch:
        return o.instance
    dsos = []
    for c, r in zip(o.contexts, o.dispatch, strict=True):
        base = c.dso.baseline_mw
        u = r.dispatch.pivot(index="hour", columns="prosumer_id", values="u_mw")
        extra = u.reindex(index=base.index, columns=base.columns).fillna(0.0).to_numpy()
        committed = pd.DataFrame(base.to_numpy() + extra, index=base.index, columns=base.columns)
        dsos.append(replace(c.dso, baseline_mw=committed))
    return replace(o.instance, dsos=tuple(dsos))


def plan_intraday(o: MarketOutcome, opt: MarketOptions, ex: Executor) -> IntradayPlan:
    """The monitored line-hours (J3), the day-ahead relief (J5) and the DSOs at their
    committed point (J7) — what every realization shares.

    Raises
    ------
    OptionError
        For an outcome of the centralized market (the intraday market is bilevel).
    """
    if not isinstance(o, BilevelOutcome):
        raise OptionError("option 'intraday' applies to the bilevel methods only")
    cfg = opt.intraday_config
    model = o.plf_model
    z_da = float(o.instance.scenario.risk_quantile)  # the day-ahead market ran with it (J2)
    z_mon = cfg.monitor_quantile(z_da)
    net = model.network
    table = congestion_table(o.plf_before, net.rating_mw, model.hours, net.branch, z_mon)
    monitored = table.loc[
        table["congested"],
        ["hour", "branch", "mean_mw", "std_mw", "rating_mw", "prob_overload"],
    ].reset_index(drop=True)
    bought = o.congestion_before.loc[o.congestion_before["congested"], ["hour", "branch"]]
    keys = pd.MultiIndex.from_frame(monitored[["hour", "branch"]])
    monitored["dayahead"] = keys.isin(pd.MultiIndex.from_frame(bought))
    relief = None if o.tso is None else o.tso.accepted_mw + o.loss_relief_mw
    inst = committed_instance(o)
    contexts = o.contexts
    if o.dispatch:  # S4 again at the committed point (J7)
        tasks = [PrepareTask.of(inst, d, opt.loss_allocation, opt.participation) for d in inst.dsos]
        contexts = tuple(ex.map(run_task, tasks))
    return IntradayPlan(
        dayahead=o,
        config=cfg,
        dayahead_quantile=z_da,
        monitor_quantile=z_mon,
        monitored=monitored,
        instance=inst,
        contexts=contexts,
        reduction_mw=interface_reduction(model, o.hours, relief, o.dso_bus),
        payment_eur=sum(float(r.settlement["tso_payment_eur"].sum()) for r in o.dispatch),
    )


def intraday_scenario(
    plan: IntradayPlan, xi: np.ndarray, k: int, opt: MarketOptions, ex: Executor
) -> IntradayScenario:
    """Realization ``ξ`` (``[T, U]``, J4) through the day-ahead relief (J5), the intraday
    market on the monitored hours it overloads (J6, J8) and the flows after it (J9).

    The intraday market is the bilevel market (S3, S5–S8, S2′) with ``opt``'s method and
    options, its coefficient methods seeded from ``(seed, STREAM, k)``.
    """
    da = plan.dayahead
    model = da.plf_model
    rating, dt = model.network.rating_mw, da.instance.dt_h
    none_mw = model.flows_mw(model.realize(xi))
    real = realized_model(model, xi, plan.reduction_mw)
    flows, table = congestion(plan.instance, real, "analytic")  # σ = 0: the realized flows
    overloaded = set(table.loc[table["congested"], "hour"])
    hours = pd.Index([t for t in plan.monitored_hours if t in overloaded], name="hour")
    o_da = overload_mwh(flows.mean_mw, rating, dt)
    if len(hours) == 0:  # J6: no market
        return IntradayScenario(k, None, overload_mwh(none_mw, rating, dt), o_da, o_da, 0.0)
    base = MarketBase(
        instance=plan.instance,
        day_ahead=da.day_ahead,
        plf_model=real,
        plf_before=flows,
        congestion_before=table,
        hours=hours,
        contexts=plan.contexts,
    )
    seed = int(np.random.SeedSequence([opt.seed, STREAM, k, 1]).generate_state(1)[0])
    # the realization is certain: the analytic S2′ is exact, and the stages stay quiet
    market = run_bilevel(
        base, replace(opt, seed=seed, plf_method="analytic", progress=False), ex, Clock()
    )
    return IntradayScenario(
        scenario=k,
        market=market,
        overload_none_mwh=overload_mwh(none_mw, rating, dt),
        overload_dayahead_mwh=o_da,
        overload_intraday_mwh=overload_mwh(market.plf_after.mean_mw, rating, dt),
        payment_eur=sum(float(r.settlement["tso_payment_eur"].sum()) for r in market.dispatch),
    )


def run_intraday(
    o: MarketOutcome, opt: MarketOptions, ex: Executor, clock: Clock
) -> IntradayOutcome:
    """The intraday market over ``opt.intraday_config.scenarios`` realizations (J4–J11).

    A bar on a terminal counts the realizations (``flexopt.progress``).

    Raises
    ------
    IntradayInterrupted
        Ctrl-C or ``SIGTERM`` after some realizations finished, holding them (before the
        first one finished the interrupt itself propagates).
    """
    n = opt.intraday_config.scenarios
    with clock("intraday", f"intraday market over {n} realizations of the load"):
        plan = plan_intraday(o, opt, ex)
        watched = int((~plan.monitored["dayahead"]).sum())
        clock.say(
            f"  {watched} line-hours wait for intraday, monitored hours "
            f"{plan.monitored_hours.tolist()}"
        )
        done: list[IntradayScenario] = []
        with Progress("intraday realizations", n, enabled=opt.progress) as bar:
            try:
                for k in range(1, n + 1):
                    xi = draw_realization(plan.dayahead.plf_model, opt.seed, k)
                    s = intraday_scenario(plan, xi, k, opt, ex)
                    done.append(s)
                    bar.update(note="market" if s.market is not None else "no market")
                    check_terminated()  # a swallowed SIGTERM keeps what finished too
            except KeyboardInterrupt as stop:
                if not done:
                    raise
                cut = IntradayInterrupted(IntradayOutcome(plan, tuple(done), True), stop)
                progress_log.warning(f"{cut}; the figures cover those")
                raise cut from stop
    return IntradayOutcome(plan, tuple(done))
