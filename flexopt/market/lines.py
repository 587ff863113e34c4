"""Which line limits can bind (``models/tso_market.md`` K6): an exact presolve shared by the
TSO market (S7) and the centralized market.

A limit ``|E f_{l,t} + Σ_d H_{t,l,d} F_{d,t}| ≤ F̄_{l,t}`` over ``0 ≤ F_{d,t} ≤ F̄_{d,t}`` cannot
be violated when even the most adverse flexibility keeps the flow inside it:

    E f_{l,t} + Σ_d max(0, H_{t,l,d}) F̄_{d,t} ≤ F̄_{l,t}   and
    E f_{l,t} + Σ_d min(0, H_{t,l,d}) F̄_{d,t} ≥ −F̄_{l,t}                                   (K6)

Such rows are left out of the model: the optimum, the accepted quantities and the prices
are unchanged (their duals are zero), while a 300-bus system with 100 DSOs keeps a few
dozen of its ~10⁴ line-hour rows.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pyomo.environ as pyo

__all__ = ["add_line_limits", "binding_candidates", "read_line_limits"]


def binding_candidates(
    mean_mw: np.ndarray, limit_mw: np.ndarray, sensitivity: np.ndarray, f_max_mw: np.ndarray
) -> np.ndarray:
    """Mask of the line-hours whose limit some feasible flexibility could reach (K6).

    Parameters
    ----------
    mean_mw, limit_mw : ndarray
        ``[T, L]`` mean flow and limit.
    sensitivity : ndarray
        ``[T, L, D]`` flow change per MW of flexibility from each DSO.
    f_max_mw : ndarray
        ``[T, D]`` the most flexibility each DSO can deliver (``≥ 0``).

    Returns
    -------
    ndarray of bool, ``[T, L]``
    """
    f = np.clip(f_max_mw, 0.0, None)[:, None, :]
    hi = mean_mw + (np.clip(sensitivity, 0.0, None) * f).sum(-1)
    lo = mean_mw + (np.clip(sensitivity, None, 0.0) * f).sum(-1)
    tol = 1e-9 * np.maximum(1.0, np.abs(limit_mw))
    can_bind: np.ndarray = (hi > limit_mw - tol) | (lo < -limit_mw + tol)
    return can_bind


def add_line_limits(
    m: pyo.Block,
    hours: Sequence[Hashable],
    lines: Sequence[Hashable],
    mean_mw: np.ndarray,
    limit_mw: np.ndarray,
    sensitivity: np.ndarray,
    f_max_mw: np.ndarray,
    relief: Mapping[tuple[int, Hashable], Any],
) -> None:
    """PTDF flow limits after the flexibility, on the line-hours that can bind (K2, K3, K6).

    Adds ``m.LT`` (kept ``(line, hour)`` pairs), the unresolved-overload slacks ``m.s_up``,
    ``m.s_dn ≥ 0`` and ``m.ineq_flow_max`` / ``m.ineq_flow_min`` with constants on the right,
    ``Σ_d H_{t,l,d} F_{d,t} − s⁺ ≤ F̄ − E f`` and ``Σ_d H_{t,l,d} F_{d,t} + s⁻ ≥ −F̄ − E f``.
    ``relief[d, t]`` is the model's expression of ``F_{d,t}`` (``d`` the DSO's position).
    """
    keep = binding_candidates(mean_mw, limit_mw, sensitivity, f_max_mw)
    m.LT = pyo.Set(
        initialize=[(lines[j], hours[i]) for i, j in zip(*np.nonzero(keep), strict=True)],
        dimen=2,
        ordered=True,
    )
    m.s_up = pyo.Var(m.LT, domain=pyo.NonNegativeReals)
    m.s_dn = pyo.Var(m.LT, domain=pyo.NonNegativeReals)
    pos_t = {t: i for i, t in enumerate(hours)}
    pos_l = {l: j for j, l in enumerate(lines)}

    def change(l: Hashable, t: Hashable) -> Any:
        row = sensitivity[pos_t[t], pos_l[l]]
        return pyo.quicksum(float(h) * relief[d, t] for d, h in enumerate(row) if h != 0.0)

    def headroom(l: Hashable, t: Hashable, sign: int) -> float:
        i, j = pos_t[t], pos_l[l]
        return float(sign * limit_mw[i, j] - mean_mw[i, j])

    m.ineq_flow_max = pyo.Constraint(
        m.LT, rule=lambda _m, l, t: change(l, t) - m.s_up[l, t] <= headroom(l, t, 1)
    )
    m.ineq_flow_min = pyo.Constraint(
        m.LT, rule=lambda _m, l, t: change(l, t) + m.s_dn[l, t] >= headroom(l, t, -1)
    )


def read_line_limits(
    m: pyo.Block,
    hours: Sequence[Hashable],
    lines: Sequence[Hashable],
    duals: Mapping[Any, float],
    dt_h: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Line shadow prices ``(|μ⁺| + |μ⁻|) / Δt`` (€/MWh per MW) and unresolved overload (MW),
    ``[T, L]`` each; rows left out by (K6) cannot bind and read zero."""
    pos_t = {t: i for i, t in enumerate(hours)}
    pos_l = {l: j for j, l in enumerate(lines)}
    mu = np.zeros((len(hours), len(lines)))
    slack = np.zeros_like(mu)
    for l, t in m.LT:
        i, j = pos_t[t], pos_l[l]
        mu[i, j] = (
            abs(duals.get(m.ineq_flow_max[l, t], 0.0)) + abs(duals.get(m.ineq_flow_min[l, t], 0.0))
        ) / dt_h
        slack[i, j] = pyo.value(m.s_up[l, t]) + pyo.value(m.s_dn[l, t])
    return mu, np.where(slack > 1e-7, slack, 0.0)
