"""Local market clearing of one DSO as a Pyomo QP (``models/local_market.md`` M4).

The pipeline uses the closed form (:func:`flexopt.dso.clear`); this builder is its
independent reference (tests hold the two to 1e-8) and the starting block of the exact DCP
formulations.

    min  Σ_{t,i} Δt (a_i u_{i,t}² + b_i u_{i,t})
    s.t. Σ_i u_{i,t} = Q_t          [λ_t Δt]       eq_balance        (M4)
         0 ≤ u_{i,t} ≤ Ū_{i,t}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

__all__ = ["LocalMarketData", "build_local_clearing", "read_local_clearing"]


@dataclass(frozen=True, eq=False)
class LocalMarketData:
    """Offers ``a``, ``b`` (per prosumer), capacity ``u_max_mw`` (hours × prosumers) and the
    quantity ``q_mw`` per hour."""

    a_eur_per_mw2h: pd.Series
    b_eur_per_mwh: pd.Series
    u_max_mw: pd.DataFrame
    q_mw: pd.Series
    dt_h: float = 1.0


def build_local_clearing(data: LocalMarketData) -> pyo.ConcreteModel:
    """Build (M4). Pure: never solves."""
    m = pyo.ConcreteModel(name="local_clearing")
    m.T = pyo.Set(initialize=list(data.q_mw.index), ordered=True)
    m.I = pyo.Set(initialize=list(data.a_eur_per_mw2h.index), ordered=True)
    m.dt_h = pyo.Param(initialize=float(data.dt_h))
    umax = data.u_max_mw

    m.u = pyo.Var(m.I, m.T, bounds=lambda _m, i, t: (0.0, float(umax.loc[t, i])), doc="MW")
    m.eq_balance = pyo.Constraint(
        m.T, rule=lambda _m, t: sum(m.u[i, t] for i in m.I) == float(data.q_mw.loc[t])
    )
    a, b = data.a_eur_per_mw2h.to_dict(), data.b_eur_per_mwh.to_dict()
    m.obj = pyo.Objective(
        expr=m.dt_h * sum(a[i] * m.u[i, t] ** 2 + b[i] * m.u[i, t] for i in m.I for t in m.T)
    )
    return m


def read_local_clearing(
    m: pyo.ConcreteModel, duals: dict[Any, float]
) -> tuple[pd.DataFrame, pd.Series]:
    """Dispatch (hours × prosumers) and the clearing price per hour (dual of M4 over Δt)."""
    hours, pros = list(m.T), list(m.I)
    u = pd.DataFrame(
        np.array([[pyo.value(m.u[i, t]) for i in pros] for t in hours]), index=hours, columns=pros
    )
    dt = float(pyo.value(m.dt_h))
    price = pd.Series(
        [duals[m.eq_balance[t]] / dt for t in hours], index=hours, name="price_eur_per_mwh"
    )
    return u, price
