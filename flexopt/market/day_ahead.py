"""S1 — wholesale day-ahead energy market (copper plate economic dispatch).

Equations D1–D3 in ``models/day_ahead.md``::

    min  Σ_t Δt Σ_g (c2_g p_{g,t}² + c1_g p_{g,t})                     (D1)
    s.t. Σ_g p_{g,t} = D_t                      [λ_t, €/MWh]          (D2)
         p̲_g ≤ p_{g,t} ≤ p̄_g                                          (D3)
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

__all__ = [
    "DayAheadData",
    "DayAheadResult",
    "build_day_ahead",
    "dispatch_closed_form",
    "read_day_ahead",
]


@dataclass(frozen=True, eq=False)
class DayAheadData:
    """Inputs of S1.

    Attributes
    ----------
    generators : pandas.DataFrame
        Indexed by generator label; columns ``p_min_mw``, ``p_max_mw``, ``c1_eur_per_mwh``,
        ``c2_eur_per_mw2h``.
    demand_mw : pandas.Series
        Total forecast load per hour (index: hours).
    dt_h : float
        Length of an hour step.
    """

    generators: pd.DataFrame
    demand_mw: pd.Series
    dt_h: float = 1.0


@dataclass(frozen=True, eq=False)
class DayAheadResult:
    """Solution of S1: ``p_mw`` (hours × generators), ``price_eur_per_mwh`` per hour."""

    p_mw: pd.DataFrame
    price_eur_per_mwh: pd.Series
    cost_eur: float


def build_day_ahead(data: DayAheadData) -> pyo.ConcreteModel:
    """Build the S1 QP (D1–D3). Pure: never solves."""
    m = pyo.ConcreteModel(name="day_ahead")
    m.T = pyo.Set(initialize=list(data.demand_mw.index), ordered=True)
    m.G = pyo.Set(initialize=list(data.generators.index), ordered=True)
    m.dt_h = pyo.Param(initialize=float(data.dt_h), doc="hour step, h")
    add_generation(m, data)
    add_eq_balance(m, data)
    add_objective(m, data)
    return m


def add_generation(m: pyo.ConcreteModel, data: DayAheadData) -> None:
    """Generator outputs with their limits (D3)."""
    gen = data.generators

    def bounds(_m: pyo.ConcreteModel, g: Hashable, _t: Hashable) -> tuple[float, float]:
        return float(gen.at[g, "p_min_mw"]), float(gen.at[g, "p_max_mw"])

    m.p = pyo.Var(m.G, m.T, bounds=bounds, doc="output, MW")


def add_eq_balance(m: pyo.ConcreteModel, data: DayAheadData) -> None:
    """Copper-plate energy balance per hour (D2); its dual is the market price."""

    def rule(_m: pyo.ConcreteModel, t: Hashable) -> Any:
        return sum(m.p[g, t] for g in m.G) == float(data.demand_mw.loc[t])

    m.eq_balance = pyo.Constraint(m.T, rule=rule)


def add_objective(m: pyo.ConcreteModel, data: DayAheadData) -> None:
    """Variable generation cost (D1); no-load costs ``c0`` do not depend on the dispatch."""
    gen = data.generators
    c1 = gen["c1_eur_per_mwh"].to_dict()
    c2 = gen["c2_eur_per_mw2h"].to_dict()
    m.obj = pyo.Objective(
        expr=m.dt_h * sum(c2[g] * m.p[g, t] ** 2 + c1[g] * m.p[g, t] for g in m.G for t in m.T),
        sense=pyo.minimize,
    )


def read_day_ahead(m: pyo.ConcreteModel, duals: dict[Any, float]) -> DayAheadResult:
    """Collect the solution of a solved S1 model; prices are the duals of (D2) over Δt."""
    hours, gens = list(m.T), list(m.G)
    p = np.array([[pyo.value(m.p[g, t]) for g in gens] for t in hours])
    dt = float(pyo.value(m.dt_h))
    price = pd.Series(
        [duals[m.eq_balance[t]] / dt for t in hours],
        index=pd.Index(hours, name="hour"),
        name="price_eur_per_mwh",
    )
    return DayAheadResult(
        p_mw=pd.DataFrame(
            p, index=pd.Index(hours, name="hour"), columns=pd.Index(gens, name="gen")
        ),
        price_eur_per_mwh=price,
        cost_eur=float(pyo.value(m.obj)),
    )


def dispatch_closed_form(data: DayAheadData) -> DayAheadResult:
    """S1 from its optimality conditions, without a solver: the hours decouple and each is
    a separable convex QP with one balance row (D1–D3), so every unit sits at
    ``clip((λ − c1) / 2 c2, p̲, p̄)`` — linear units (``c2 = 0``) at a bound, or anywhere in
    between when ``λ = c1`` — and the price ``λ`` is where their sum meets the demand.

    The breakpoints (the ``λ`` where a unit reaches a bound) are sorted; the demand falls on
    one (then units with ``c1 = λ`` share the rest in proportion to their range) or between
    two, where the supply is affine in ``λ``. The fallback of S1 where HiGHS's QP solver stops
    at its iteration guard (it cycles on some degenerate hours); the same optimum, and where
    it is not unique (tied linear units) an equally cheap dispatch.
    """
    gen = data.generators
    lo, hi = gen["p_min_mw"].to_numpy(float), gen["p_max_mw"].to_numpy(float)
    c1, c2 = gen["c1_eur_per_mwh"].to_numpy(float), gen["c2_eur_per_mw2h"].to_numpy(float)
    quad = c2 > 0
    slope = np.where(quad, 1.0 / (2.0 * np.where(quad, c2, 1.0)), 0.0)  # dp/dλ inside the range
    points = np.unique(
        np.concatenate([c1[~quad], (c1 + 2 * c2 * lo)[quad], (c1 + 2 * c2 * hi)[quad]])
    )

    def supply(lam: np.ndarray, upper: bool) -> np.ndarray:
        """Unit outputs ``[len(lam), G]``; tied linear units at their upper or lower bound."""
        lam = lam[:, None]
        free = np.clip((lam - c1) * slope, lo, hi)
        tied = hi if upper else lo
        linear = np.where(lam > c1, hi, np.where(lam < c1, lo, tied))
        out: np.ndarray = np.where(quad, free, linear)
        return out

    low, high = supply(points, False), supply(points, True)
    s_low, s_high = low.sum(1), high.sum(1)
    hours = list(data.demand_mw.index)
    p = np.empty((len(hours), len(gen)))
    price = np.empty(len(hours))
    for i, t in enumerate(hours):
        d = float(np.clip(data.demand_mw.loc[t], lo.sum(), hi.sum()))
        k = int(np.searchsorted(s_high, d))  # first breakpoint whose upper supply reaches d
        k = min(k, len(points) - 1)
        if s_low[k] <= d:  # on breakpoint k: the tied linear units share the rest
            lam = points[k]
            row = low[k].copy()
            tied = ~quad & (c1 == lam)
            rest = d - row.sum()
            room = hi[tied] - lo[tied]
            if rest > 0 and room.sum() > 0:
                row[tied] += rest * room / room.sum()
        else:  # between breakpoints k-1 and k: the supply is affine in λ
            base, lam0 = s_high[k - 1], points[k - 1]
            free = quad & (c1 + 2 * c2 * lo <= lam0) & (c1 + 2 * c2 * hi >= points[k])
            gain = slope[free].sum()
            lam = lam0 + (d - base) / gain if gain > 0 else float(points[k])
            row = supply(np.array([lam]), False)[0]
        p[i], price[i] = row, lam
    cost = float(data.dt_h * (c2 * p**2 + c1 * p).sum())
    index = pd.Index(hours, name="hour")
    return DayAheadResult(
        p_mw=pd.DataFrame(p, index=index, columns=pd.Index(list(gen.index), name="gen")),
        price_eur_per_mwh=pd.Series(price, index=index, name="price_eur_per_mwh"),
        cost_eur=cost,
    )
