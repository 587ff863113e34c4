"""Centralized (common TSO–DSO) flexibility market: the efficiency benchmark of the bilevel
scheme (``models/centralized.md`` Z1–Z11).

One operator sees every prosumer of every DSO, every feeder and the transmission network,
and clears them together::

    min  Δt Σ_t Σ_d n_d [ Σ_i (a_i u_{d,i,t}² + b_i u_{d,i,t}) + π_loss P^loss_{d,t}(u) ]
         + M Δt Σ_{l,t} (s⁺_{l,t} + s⁻_{l,t})                                              (Z1)
    s.t. 0 ≤ u_{d,i,t} ≤ Ū_{d,i,t}                                                          (Z2)
         Δt Σ_{τ ≤ t} u_{d,i,τ} ≤ E_{d,i,t}                                                  (Z3)
         n_d Σ_i u_{d,i,t} − F_{d,t} = 0                     [λ_{d,t}]                       (Z4)
         PTDF limits on the PLF mean flows, as S7 (K2, K3, K6)                               (Z5)
         feeder flows, voltages and losses: LinDistFlow (Z6–Z9, QP) or branch flow (X13–X15)

``n_d`` identical feeder copies share one dispatch: the QP is convex and symmetric in the
copies, so one copy scaled by ``n_d`` is exact. The dual of (Z4) over Δt is the marginal
value of flexibility at the DSO's interface (€/MWh) — the price the TSO pays (Z10). Where
overload is left unresolved it is taken from the least-payment multipliers that support the
dispatch with the slacks held at their solved values (:func:`build_centralized_pricing`,
K5a–K5c), so that the penalty ``M`` never sets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from flexopt.grid.lindistflow import LinDistFlow
from flexopt.market.distflow import add_branch_flow, add_lindistflow, dispatch_scale
from flexopt.market.interface import DistributionArea
from flexopt.market.lines import add_line_limits, read_line_limits
from flexopt.market.pricing import MultiplierLP, build_supporting_prices
from flexopt.market.tso import SLACK_PENALTY_EUR

__all__ = [
    "CentralizedData",
    "CentralizedResult",
    "DistributionArea",
    "build_centralized",
    "build_centralized_pricing",
    "dispatch_cost",
    "has_unresolved_overload",
    "read_centralized",
]


@dataclass(frozen=True, eq=False)
class CentralizedData:
    """Everything the common market sees.

    ``mean_flow_mw`` / ``limit_mw``: congested hours × branches (S2, as S3 and S7);
    ``sensitivity``: ``[T, L, D]`` flow change per MW of load reduction at each DSO's bus.
    """

    mean_flow_mw: pd.DataFrame
    limit_mw: pd.DataFrame
    sensitivity: np.ndarray
    areas: tuple[DistributionArea, ...]
    loss_price_eur_per_mwh: float
    dt_h: float = 1.0
    vm_limits_pu: tuple[float, float] = (0.95, 1.05)

    @property
    def hours(self) -> pd.Index:
        return self.mean_flow_mw.index

    def information_floats(self) -> int:
        """Numbers the operator must collect: per prosumer and hour ``Ū, E`` plus ``a, b``; per
        feeder branch ``r, x`` and topology; per bus and hour ``p, q`` (Z11)."""
        T = len(self.hours)
        return int(
            sum(
                len(a.a) * (2 + 2 * T) + 3 * a.feeder.n_branch + 2 * T * a.feeder.n_bus
                for a in self.areas
            )
        )


@dataclass(frozen=True, eq=False)
class CentralizedResult:
    """Dispatch and prices of the common market.

    ``u_mw`` maps DSO → ``[T, n]`` per copy; ``accepted_mw`` / ``price_eur_per_mwh`` are
    hours × DSOs (price NaN where nothing was taken); ``model_loss_mw`` maps DSO → ``[T]``
    per copy, on the model's own feeder equations; ``flex_cost_eur`` and
    ``loss_value_eur`` are the two parts of (Z1) without the slack penalty.
    """

    u_mw: dict[str, np.ndarray]
    accepted_mw: pd.DataFrame
    price_eur_per_mwh: pd.DataFrame
    line_price_eur_per_mwh: pd.DataFrame
    unresolved_mw: pd.DataFrame
    model_loss_mw: dict[str, np.ndarray]
    flex_cost_eur: float
    loss_value_eur: float


def build_centralized(
    data: CentralizedData, ac: bool = False, start: CentralizedResult | None = None
) -> pyo.ConcreteModel:
    """Build the common market (Z1–Z9). Pure: never solves.

    ``ac=False``: LinDistFlow feeders — a convex QP (HiGHS). ``ac=True``: the exact branch
    flow equations — a nonconvex NLP (ripopt locally, SCIP globally), started from ``start``
    (e.g. the QP's dispatch) when given.
    """
    hours = list(range(len(data.hours)))
    m = pyo.ConcreteModel(name="centralized_ac" if ac else "centralized_qp")
    m.T = pyo.RangeSet(0, len(hours) - 1)
    m.D = pyo.Set(initialize=[a.dso_id for a in data.areas], ordered=True)
    areas = {a.dso_id: a for a in data.areas}

    def area_block(b: pyo.Block, d: str) -> None:
        add_area(b, areas[d], data, ac, start.u_mw[d] if start is not None else None)

    m.area = pyo.Block(m.D, rule=area_block)
    m.F = pyo.Var(m.D, m.T, domain=pyo.NonNegativeReals, doc="relief at the interface, MW")
    m.eq_interface = pyo.Constraint(  # (Z4)
        m.D,
        m.T,
        rule=lambda _m, d, t: (
            areas[d].n_feeders * sum(m.area[d].u[i, t] for i in m.area[d].I) - m.F[d, t] == 0
        ),
    )
    f_max = np.stack([a.n_feeders * a.u_max_mw.sum(axis=1) for a in data.areas], axis=1)
    add_line_limits(  # (Z5)
        m,
        hours,
        list(data.mean_flow_mw.columns),
        data.mean_flow_mw.to_numpy(),
        data.limit_mw.reindex_like(data.mean_flow_mw).to_numpy(),
        data.sensitivity,
        f_max,
        {(k, t): m.F[d, t] for k, d in enumerate(m.D) for t in hours},
    )
    dt, lp = data.dt_h, data.loss_price_eur_per_mwh
    m.flex_cost = pyo.Expression(
        expr=dt * sum(areas[d].n_feeders * m.area[d].cost[t] for d in m.D for t in m.T)
    )
    m.loss_value = pyo.Expression(
        expr=dt * lp * sum(areas[d].n_feeders * m.area[d].loss_mw[t] for d in m.D for t in m.T)
    )
    m.obj = pyo.Objective(  # (Z1)
        expr=m.flex_cost
        + m.loss_value
        + SLACK_PENALTY_EUR * dt * pyo.quicksum(m.s_up[i] + m.s_dn[i] for i in m.LT)
    )
    return m


def add_area(
    b: pyo.Block,
    area: DistributionArea,
    data: CentralizedData,
    ac: bool,
    u_start: np.ndarray | None = None,
) -> None:
    """One DSO: prosumer flexibility (Z2–Z3), offer costs and its feeder (Z6–Z9 / X13–X15).

    The variables are ``b.u_share[i, t]``, the dispatch in units ``s_i`` and (Z3) divided
    by ``s_i``; ``b.u[i, t] = s_i b.u_share[i, t]`` is the dispatch in MW per copy. QP:
    ``s_i`` the prosumer's largest headroom (:func:`~flexopt.market.distflow.dispatch_scale`)
    — the same optimum and duals of (Z4)–(Z5) as in MW, without the MW scale's
    ill-conditioning. AC: ``s_i = 1`` MW (the NLP solver scales its own problem).
    """
    T, n = len(data.hours), len(area.a)
    b.T = pyo.RangeSet(0, T - 1)
    b.I = pyo.RangeSet(0, n - 1)
    scale = np.ones(n) if ac else dispatch_scale(area.u_max_mw)
    u0 = np.zeros((T, n)) if u_start is None else u_start
    b.u_share = pyo.Var(
        b.I,
        b.T,
        bounds=lambda _b, i, t: (0.0, float(area.u_max_mw[t, i] / scale[i])),
        initialize=lambda _b, i, t: float(u0[t, i] / scale[i]),
        doc="extra discharge, units of the prosumer's largest headroom",
    )
    b.u = pyo.Expression(
        b.I,
        b.T,
        rule=lambda _b, i, t: float(scale[i]) * b.u_share[i, t],
        doc="extra discharge, MW per copy",
    )
    reachable = data.dt_h * np.cumsum(area.u_max_mw, axis=0)

    def energy(_b: pyo.Block, i: int, t: int) -> Any:
        # (Z3), left out where the power headroom alone cannot reach it
        if reachable[t, i] <= area.energy_mwh[t, i] + 1e-12:
            return pyo.Constraint.Skip
        cap = float(area.energy_mwh[t, i] / scale[i])
        return data.dt_h * sum(b.u_share[i, s] for s in range(t + 1)) <= cap

    b.ineq_energy = pyo.Constraint(b.I, b.T, rule=energy)
    if ac:
        at_bus: dict[int, list[int]] = {j: [] for j in range(area.feeder.n_bus)}
        for i, j in enumerate(area.bus_pos):
            at_bus[int(j)].append(i)

        def withdrawal(j: int, t: int) -> Any:
            return sum(b.u[i, t] for i in at_bus[j])

        pf = area.feeder.power_flow(area.p_mw - u0 @ area.incidence, area.q_mvar)
        add_branch_flow(b, area.feeder, area.p_mw, area.q_mvar, withdrawal, start=pf)
        lo2, hi2 = (v**2 for v in data.vm_limits_pu)
        v_da = area.feeder.power_flow(area.p_mw, area.q_mvar).vm_pu ** 2
        for j in range(area.feeder.n_bus):  # (Z8) on the AC voltages
            if j == area.feeder.root:
                continue
            for t in b.T:
                b.v[j, t].setlb(min(lo2, v_da[t, j]))
                b.v[j, t].setub(max(hi2, v_da[t, j]))
    else:
        add_lindistflow(
            b, area.feeder, area.p_mw, area.q_mvar, area.incidence, data.vm_limits_pu, area.u_max_mw
        )
    a, c = area.a, area.b
    b.cost = pyo.Expression(
        b.T, rule=lambda _b, t: sum(a[i] * b.u[i, t] ** 2 + c[i] * b.u[i, t] for i in b.I)
    )


def build_centralized_pricing(
    m: pyo.ConcreteModel, tol: float = 1e-7, stationarity_tol: float = 1e-6
) -> MultiplierLP:
    """The least-payment supporting multipliers of the solved common market (Z10).

    Minimizes ``Σ_{d,t} λ_{d,t} F_{d,t} Δt`` (weights ``F`` on the duals ``λ Δt`` of Z4) over
    the KKT multipliers of the QP or NLP at its solution (K5a–K5b), the unresolved-overload
    slacks held at their solved values. In an hour with unresolved overload every
    dispatched ``u`` counts as taken in full (K5c): the energy rows (Z3) would otherwise
    carry the penalty ``M`` of that hour into the hours they share with it. ``tol``: a
    slack above it makes its hour short; ``stationarity_tol``: the relative residual
    allowed in the rows (K5a), for a QP or NLP solved to its solver's tolerance. A builder:
    solve the returned model and read it with
    :func:`~flexopt.market.pricing.read_supporting_duals`.
    """
    weights = {m.eq_interface[d, t]: max(float(pyo.value(m.F[d, t])), 0.0) for d, t in m.F}
    slacks = [*m.s_up.values(), *m.s_dn.values()]
    short = {t for (l, t) in m.LT if pyo.value(m.s_up[l, t]) + pyo.value(m.s_dn[l, t]) > tol}
    taken = [m.area[d].u_share[i, t] for d in m.D for (i, t) in m.area[d].u_share if t in short]
    return build_supporting_prices(
        m, weights, fixed=slacks, saturated=taken, stationarity_tol=stationarity_tol
    )


def has_unresolved_overload(m: pyo.ConcreteModel, tol: float = 1e-7) -> bool:
    """Whether a slack of (Z5) is positive in the loaded solution."""
    return any(float(pyo.value(s)) > tol for s in (*m.s_up.values(), *m.s_dn.values()))


def read_centralized(
    m: pyo.ConcreteModel, data: CentralizedData, duals: Mapping[Any, float]
) -> CentralizedResult:
    """Dispatch, relief, interface prices (Z10), line prices and unresolved overload.

    ``duals`` (constraint → ``∂objective/∂rhs``) are the solver's where they support the
    least payment, otherwise those of :func:`build_centralized_pricing` — always so when
    overload is left unresolved, where the solver's carry the penalty ``M`` (Z10).
    """
    hours, dsos = data.hours, list(m.D)
    T = len(hours)
    u = {
        d: np.array([[pyo.value(m.area[d].u[i, t]) for i in m.area[d].I] for t in range(T)])
        .reshape(T, -1)
        .clip(0.0)
        for d in dsos
    }
    f = np.array([[pyo.value(m.F[d, t]) for d in dsos] for t in range(T)]).reshape(T, len(dsos))
    f = np.where(f > 1e-7, f, 0.0)
    lam = np.array(
        [[duals.get(m.eq_interface[d, t], np.nan) for d in dsos] for t in range(T)]
    ).reshape(T, len(dsos))
    price = np.where(f > 0, lam / data.dt_h, np.nan)
    lines = list(data.mean_flow_mw.columns)
    mu, slack = read_line_limits(m, list(range(T)), lines, duals, data.dt_h)
    return CentralizedResult(
        u_mw=u,
        accepted_mw=pd.DataFrame(f, index=hours, columns=dsos),
        price_eur_per_mwh=pd.DataFrame(price, index=hours, columns=dsos),
        line_price_eur_per_mwh=pd.DataFrame(mu, index=hours, columns=lines),
        unresolved_mw=pd.DataFrame(slack, index=hours, columns=lines),
        model_loss_mw={
            d: np.array([pyo.value(m.area[d].loss_mw[t]) for t in range(T)]) for d in dsos
        },
        flex_cost_eur=float(pyo.value(m.flex_cost)),
        loss_value_eur=float(pyo.value(m.loss_value)),
    )


def dispatch_cost(data: CentralizedData, u_mw: dict[str, np.ndarray]) -> dict[str, float]:
    """(Z1) without the slack for any dispatch ``u_mw`` (DSO → ``[T, n]`` per copy, missing
    DSOs dispatch nothing): original offer costs plus the value of the LinDistFlow losses
    (Z9). Scores every method on the centralized model's own terms."""
    flex = loss = 0.0
    for area in data.areas:
        u = u_mw.get(area.dso_id, np.zeros_like(area.u_max_mw))
        flex += area.n_feeders * float((area.a * u * u + area.b * u).sum())
        loss_t = LinDistFlow(area.feeder).loss_of_loads_mw(
            area.p_mw - u @ area.incidence, area.q_mvar
        )
        loss += area.n_feeders * float(loss_t.sum())
    dt = data.dt_h
    flex_eur, loss_eur = dt * flex, dt * data.loss_price_eur_per_mwh * loss
    return {
        "flex_cost_eur": flex_eur,
        "loss_value_eur": loss_eur,
        "social_cost_eur": flex_eur + loss_eur,
    }
