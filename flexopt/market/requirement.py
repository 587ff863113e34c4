"""S3 — flexibility requirement per DSO interface bus (``models/requirement.md`` R1–R4).

Per hour, the least total load reduction at the DSO buses that brings every monitored
branch within its limit, given the PLF mean flows:

    min  Σ_d R_{d,t} + M Σ_l (s⁺_{l,t} + s⁻_{l,t})                                  (R1)
    s.t. E f_{l,t} + Σ_d H_{t,l,b(d)} R_{d,t} ≤ F̄_l − z σ_{l,t} + s⁺_{l,t}          (R2)
         E f_{l,t} + Σ_d H_{t,l,b(d)} R_{d,t} ≥ −(F̄_l − z σ_{l,t}) − s⁻_{l,t}       (R3)
         0 ≤ R_{d,t} ≤ R̄_{d,t},  s ≥ 0                                             (R4)

A positive slack reports the MW a line stays overloaded (never an exception). Ties among
DSOs with the same sensitivities are broken by :func:`build_requirement_tiebreak`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from flexopt.market.lines import add_line_limits, read_line_limits

__all__ = ["RequirementData", "build_requirement", "build_requirement_tiebreak", "read_requirement"]

#: Penalty on unresolved overload (€-free: MW of requirement per MW of slack).
SLACK_PENALTY = 1e4


@dataclass(frozen=True, eq=False)
class RequirementData:
    """TSO-side inputs of S3, hours with congestion only.

    Attributes
    ----------
    mean_flow_mw : DataFrame
        hours × branches, PLF mean ``E f``.
    limit_mw : DataFrame
        hours × branches, ``F̄ − z σ`` (≥ 0).
    sensitivity : dict
        hour → DataFrame branches × DSOs, ``H_{t,l,b(d)}`` (flow change per MW of reduction).
    capacity_mw : DataFrame
        hours × DSOs, ``R̄_{d,t}`` declared by the DSOs: the most relief each can give in an
        hour (M10).
    energy_mwh : Series, optional
        DSO → ``Ē_d``, the most energy each can give over the congested hours together
        (M10a); without it the hours decouple.
    dt_h : float
    """

    mean_flow_mw: pd.DataFrame
    limit_mw: pd.DataFrame
    sensitivity: Mapping[Hashable, pd.DataFrame]
    capacity_mw: pd.DataFrame
    energy_mwh: pd.Series | None = None
    dt_h: float = 1.0


def build_requirement(data: RequirementData) -> pyo.ConcreteModel:
    """Build the S3 LP (R1–R4a). Pure: never solves."""
    m = pyo.ConcreteModel(name="requirement")
    _add_sets_and_vars(m, data)
    add_ineq_line_limits(m, data)
    add_ineq_energy(m, data)
    m.obj = pyo.Objective(
        expr=sum(m.R[d, t] for d in m.D for t in m.T)
        + SLACK_PENALTY * sum(m.s_up[l, t] + m.s_dn[l, t] for l, t in m.LT)
    )
    return m


def build_requirement_tiebreak(
    data: RequirementData, first: pyo.ConcreteModel
) -> pyo.ConcreteModel:
    """Second, lexicographic stage (R5): among the optima of (R1), spread the requirement over
    the DSOs in proportion to their capacity, as an LP.

        min Σ_t z_t   s.t. (R2)–(R4),  R_{d,t} ≤ z_t R̄_{d,t},  s ≤ s*,  Σ_d R_{d,t} ≤ Σ_d R*_{d,t}

    with ``(R*, s*)`` the solved first stage ``first`` (tolerance 1e-7, relative and absolute):
    each hour's largest utilization of a declared capacity is minimized, so DSOs with equal
    sensitivities end at equal utilization. Fixing the unresolved overload at its first-stage
    value keeps the stage well scaled when congestion cannot be fully resolved. (A quadratic
    ``Σ R²/R̄`` version stalled HiGHS's QP solver on case118 instances.) Without this stage,
    DSOs with equal sensitivities would get whatever vertex the LP solver returns.
    """
    m = pyo.ConcreteModel(name="requirement_tiebreak")
    _add_sets_and_vars(m, data)
    add_ineq_line_limits(m, data)
    add_ineq_energy(m, data)
    tol = 1e-7
    for l, t in m.LT:
        m.s_up[l, t].setub(pyo.value(first.s_up[l, t]) * (1 + tol) + tol)
        m.s_dn[l, t].setub(pyo.value(first.s_dn[l, t]) * (1 + tol) + tol)
    total = {t: sum(pyo.value(first.R[d, t]) for d in first.D) for t in first.T}
    m.ineq_optimal = pyo.Constraint(
        m.T, rule=lambda _m, t: sum(m.R[d, t] for d in m.D) <= total[t] * (1 + tol) + tol
    )
    cap = data.capacity_mw
    m.z = pyo.Var(
        m.T, domain=pyo.NonNegativeReals, doc="largest utilization of a declared capacity"
    )
    m.ineq_utilization = pyo.Constraint(
        m.D, m.T, rule=lambda _m, d, t: m.R[d, t] - float(cap.loc[t, d]) * m.z[t] <= 0
    )
    m.obj = pyo.Objective(expr=sum(m.z[t] for t in m.T))
    return m


def add_ineq_energy(m: pyo.ConcreteModel, data: RequirementData) -> None:
    """(R4a) ``Δt Σ_t R_{d,t} ≤ Ē_d``: each DSO's declared energy over the congested hours,
    so the TSO places a DSO's energy where the overload needs it (the hours couple)."""
    energy = data.energy_mwh
    if energy is None:
        return
    dt = float(data.dt_h)
    m.ineq_energy = pyo.Constraint(
        m.D,
        rule=lambda _m, d: dt * sum(m.R[d, t] for t in m.T) <= float(energy.loc[d]),
    )


def _add_sets_and_vars(m: pyo.ConcreteModel, data: RequirementData) -> None:
    m.T = pyo.Set(initialize=list(data.mean_flow_mw.index), ordered=True)
    m.L = pyo.Set(initialize=list(data.mean_flow_mw.columns), ordered=True)
    m.D = pyo.Set(initialize=list(data.capacity_mw.columns), ordered=True)
    cap = data.capacity_mw
    m.R = pyo.Var(m.D, m.T, bounds=lambda _m, d, t: (0.0, float(cap.loc[t, d])), doc="MW")


def add_ineq_line_limits(m: pyo.ConcreteModel, data: RequirementData) -> None:
    """Both flow directions within ``F̄ − zσ`` after the reductions (R2, R3), on the
    line-hours some declared capacity could push to their limit (K6, ``lines.py``); adds the
    slacks ``m.s_up``, ``m.s_dn`` over the kept pairs ``m.LT``."""
    hours, lines, dsos = list(m.T), list(m.L), list(m.D)
    sens = np.stack(
        [data.sensitivity[t].reindex(index=lines, columns=dsos).to_numpy(float) for t in hours]
    )
    add_line_limits(
        m,
        hours,
        lines,
        data.mean_flow_mw.loc[hours, lines].to_numpy(float),
        data.limit_mw.loc[hours, lines].to_numpy(float),
        sens,
        data.capacity_mw.loc[hours, dsos].to_numpy(float),
        {(k, t): m.R[d, t] for k, d in enumerate(dsos) for t in hours},
    )


def read_requirement(m: pyo.ConcreteModel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Requirement (hours × DSOs) and unresolved overload (hours × branches)."""
    hours, dsos, lines = list(m.T), list(m.D), list(m.L)
    r = pd.DataFrame(
        [[pyo.value(m.R[d, t]) for d in dsos] for t in hours], index=hours, columns=dsos
    )
    _, slack = read_line_limits(m, hours, lines, {}, 1.0)
    return r.clip(lower=0.0), pd.DataFrame(slack, index=hours, columns=lines)
