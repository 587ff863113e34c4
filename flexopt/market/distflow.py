"""Radial-feeder constraint families for Pyomo models (``models/centralized.md`` Z6–Z9,
``models/dcp_exact.md`` X13–X15).

Both families act on a block (or model) ``b`` that already holds an hour set ``b.T`` with
positions ``0..T−1`` matching the rows of ``p_mw`` / ``q_mvar``. The flexible load reduction
at feeder bus position ``j`` in hour ``t`` (MW) is ``Σ_i incidence[i, j] · b.u[i, t]`` for
:func:`add_lindistflow` and ``withdrawal(j, t)`` (a Pyomo expression or ``0``) for
:func:`add_branch_flow`. Branch ``k`` ends at bus ``feeder.child[k]``.

* :func:`add_lindistflow` — LinDistFlow (Baran & Wu 1989 without the loss terms in the
  flows): one flexible flow per group of branches carrying the same prosumers, squared
  voltages affine in them, losses ``Σ_k r_k (P_k² + Q_k²) / V₀²`` as a diagonal convex
  quadratic. Used by the centralized QP.
* :func:`add_branch_flow` — the exact branch flow (DistFlow) equations of a radial feeder,
  nonconvex through ``ℓ_k v_i = P_k² + Q_k²``. Used by the AC NLPs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pyomo.environ as pyo

from flexopt.grid import Feeder, PowerFlowResult
from flexopt.grid.lindistflow import LinDistFlow

__all__ = ["MIN_SCALE_MW", "add_branch_flow", "add_lindistflow", "dispatch_scale"]

Withdrawal = Callable[[int, int], Any]

#: Smallest unit (MW) of a dispatch or flow variable (:func:`dispatch_scale`): a smaller one
#: would bring the model's coefficients near HiGHS's 1e-9 drop threshold.
MIN_SCALE_MW = 1e-3


def dispatch_scale(u_max_mw: np.ndarray) -> np.ndarray:
    """The unit (MW) of each prosumer's dispatch variable: its largest headroom.

    In MW the centralized QP mixes LV batteries of a few kW, whose offers cost ~10³ €/MW²h
    and count ``n_d`` ~10² times, with MV branches whose losses cost ~10⁻³ €/MW²: a Hessian
    spanning 7e-3 … 5e5, on which HiGHS's active-set QP solver (which does not scale the
    model) can stop "optimal" with primal infeasibilities. As shares of their headroom the
    variables lie in ``[0, 1]`` and the Hessian spans a few orders of magnitude.

    Parameters
    ----------
    u_max_mw : ndarray
        ``[T, n]`` power headroom.

    Returns
    -------
    ndarray
        ``[n]`` ``max_t u_max_mw``, at least :data:`MIN_SCALE_MW`.
    """
    top = u_max_mw.max(axis=0) if len(u_max_mw) else np.zeros(u_max_mw.shape[1])
    scale: np.ndarray = np.maximum(top, MIN_SCALE_MW)
    return scale


def _children(feeder: Feeder) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {j: [] for j in range(feeder.n_bus)}
    for k, j in enumerate(feeder.parent):
        kids[int(j)].append(k)
    return kids


def add_lindistflow(
    b: pyo.Block,
    feeder: Feeder,
    p_mw: np.ndarray,
    q_mvar: np.ndarray,
    incidence: np.ndarray,
    vm_limits_pu: tuple[float, float] = (0.95, 1.05),
    u_max_mw: np.ndarray | None = None,
) -> None:
    """LinDistFlow losses and voltage limits of one feeder (Z6–Z9), flows grouped by the
    prosumers they carry.

    The flexible withdrawals are ``w_t = u_t E`` with ``b.u[i, t]`` the block's dispatch (MW,
    variables or expressions of them) and ``E = incidence`` ``[n, n_bus]``. A branch's flow is
    ``P_k = P⁰_k − z_k`` (Z6), ``z_k`` the dispatch of the prosumers below it, so branches with
    the same prosumers below them share one flexible flow: one variable per such group (at
    most ``2n − 1`` groups per feeder, whatever its size), defined along the tree by
    ``z_g − Σ_{groups h just below g} z_h − Σ_{i at g's lowest bus} u_i = 0`` (``eq_flow``).
    The variable ``b.z_share[g, t]`` is the flow in units of ``S_g = Σ_{i below g} s_i``,
    ``s`` the prosumers' :func:`dispatch_scale` (of ``u_max_mw``; 1 MW without it), and
    ``eq_flow`` is divided by ``S_g``: its coefficients are in ``(0, 1]`` (the flow in MW is
    the expression ``b.z[g, t] = S_g b.z_share[g, t]``). Then

    * (Z9) ``b.loss_mw[t] = Σ_k r_k (P_k² + Q_k²) / V₀²
      = c_t + Σ_g (R_g z_{g,t}² − 2 C_{g,t} z_{g,t})`` with ``R_g = Σ_{k∈g} r_k / V₀²``,
      ``C_{g,t} = Σ_{k∈g} r_k P⁰_{k,t} / V₀²`` and ``c_t`` the losses without flexibility
      (a diagonal, convex quadratic);
    * (Z7–Z8) ``v_{j,t} = v⁰_{j,t} + (2 / S_b) Σ_{k on the path to j} r_k z_{g(k),t}
      ≤ max(v̄², v⁰_{j,t})`` as ``b.ineq_voltage[j, t]``, only on the bus-hours that
      ``u_max_mw`` (``[T, n]``) can lift above that bound. A withdrawal only raises
      LinDistFlow voltages, so the lower bound ``min(v̲², v⁰)`` never binds. Reactive loads
      are not flexible, so ``Q`` is data.

    The same QP as with a flow variable per branch (``K`` per feeder-hour, most of them
    fixed by the loads alone), with ``≤ 2n − 1``; HiGHS's active-set QP solver is faster on it
    and solves the 100-DSO case300 instances on which it fails in the per-branch form
    (``benchmarks/stages.py``).
    """
    ldf = LinDistFlow(feeder)
    P0, Q, v0 = ldf.point(p_mw, q_mvar)
    r_ohm, v0_kv2 = ldf.r_ohm, ldf.v0_kv2
    below = (incidence @ feeder.path.T).T > 0  # [K, n]: prosumer i is below branch k
    pattern, group = np.unique(below, axis=0, return_inverse=True)
    group = group.ravel()
    flexible = cast(np.ndarray, pattern.any(axis=1))
    one_hot = np.eye(len(pattern))[group]  # [K, groups]
    R = r_ohm @ one_hot / v0_kv2
    C = (P0 * r_ohm) @ one_hot / v0_kv2
    const = ldf.loss_mw(P0**2, Q**2)
    groups = [int(g) for g in np.flatnonzero(flexible)]
    share = dispatch_scale(u_max_mw) if u_max_mw is not None else np.ones(len(incidence))
    unit = pattern.astype(float) @ share  # [groups] S_g, MW
    # a group's lowest bus: the child bus of its branch that no branch of the group leaves
    kids = _children(feeder)
    lowest = {
        int(group[k]): int(feeder.child[k])
        for k in range(feeder.n_branch)
        if flexible[group[k]] and all(group[m] != group[k] for m in kids[int(feeder.child[k])])
    }
    just_below = {
        g: [int(group[m]) for m in kids[c] if flexible[group[m]]] for g, c in lowest.items()
    }
    at_lowest = {g: np.flatnonzero(incidence[:, c]).tolist() for g, c in lowest.items()}
    b.Z = pyo.Set(initialize=groups, ordered=True)
    b.z_share = pyo.Var(b.Z, b.T, doc="flexible flow of a group of branches, units of S_g")
    b.z = pyo.Expression(
        b.Z,
        b.T,
        rule=lambda _b, g, t: float(unit[g]) * b.z_share[g, t],
        doc="flexible flow of a group of branches, MW",
    )

    def eq_flow(_b: pyo.Block, g: int, t: int) -> Any:  # (Z6) along the tree of groups, / S_g
        inflow = sum(b.z[h, t] for h in just_below[g]) + sum(b.u[i, t] for i in at_lowest[g])
        return b.z_share[g, t] - inflow / float(unit[g]) == 0

    b.eq_flow = pyo.Constraint(b.Z, b.T, rule=eq_flow)
    b.loss_mw = pyo.Expression(  # (Z9)
        b.T,
        rule=lambda _b, t: (
            float(const[t])
            + sum(float(R[g]) * b.z[g, t] ** 2 - 2.0 * float(C[t, g]) * b.z[g, t] for g in groups)
        ),
    )
    if u_max_mw is None:
        return
    top = np.maximum(vm_limits_pu[1] ** 2, v0)
    _, _, v_top = ldf.point(p_mw - u_max_mw @ incidence, q_mvar)
    can_bind = [(int(j), int(t)) for t, j in zip(*np.nonzero(v_top > top + 1e-12), strict=True)]
    if not can_bind:
        return
    # dv_j / dz_g = (2 / S_b) Σ_{k ∈ g on the path to j} r_k
    rise = 2.0 / feeder.base_mva * (feeder.path * feeder.r_pu[:, None]).T @ one_hot  # [bus, g]
    terms = {j: [(float(rise[j, g]), g) for g in groups if rise[j, g]] for j, _ in can_bind}
    b.ineq_voltage = pyo.Constraint(  # (Z7–Z8): constants on the right
        can_bind,
        rule=lambda _b, j, t: (
            sum(a * b.z[g, t] for a, g in terms[j]) <= float(top[t, j] - v0[t, j])
        ),
    )


def add_branch_flow(
    b: pyo.Block,
    feeder: Feeder,
    p_mw: np.ndarray,
    q_mvar: np.ndarray,
    withdrawal: Withdrawal,
    start: PowerFlowResult | None = None,
) -> None:
    """The exact branch flow model of a radial feeder (X13–X15), in per unit.

    ``P_k = p_c − w_c + Σ_{q child of c} P_q + r_k ℓ_k``, the same for ``Q`` with ``x_k``;
    ``v_c = v_i − 2 (r_k P_k + x_k Q_k) + |z_k|² ℓ_k``; ``ℓ_k v_i = P_k² + Q_k²``.
    Adds ``b.K``, ``b.P``, ``b.Q``, ``b.l``, ``b.v`` (root fixed), ``b.eq_p``, ``b.eq_q``,
    ``b.eq_v``, ``b.eq_current`` and the expression ``b.loss_mw[t]``. ``start`` (a
    :class:`~flexopt.grid.PowerFlowResult` over the same hours) initializes the variables.
    """
    K, base = feeder.n_branch, feeder.base_mva
    kids = _children(feeder)
    b.K = pyo.RangeSet(0, K - 1)
    if start is not None:
        s_from = start.s_from_mva / base
        i2 = np.abs(start.i_branch_pu) ** 2
        v2 = start.vm_pu**2
    else:
        s_from = np.zeros((len(b.T), K), dtype=complex)
        i2 = np.zeros((len(b.T), K))
        v2 = np.ones((len(b.T), feeder.n_bus))
    b.P = pyo.Var(b.K, b.T, initialize=lambda _b, k, t: float(s_from[t, k].real))
    b.Q = pyo.Var(b.K, b.T, initialize=lambda _b, k, t: float(s_from[t, k].imag))
    b.l = pyo.Var(
        b.K, b.T, domain=pyo.NonNegativeReals, initialize=lambda _b, k, t: float(i2[t, k])
    )
    b.v = pyo.Var(
        range(feeder.n_bus),
        b.T,
        domain=pyo.PositiveReals,
        initialize=lambda _b, j, t: float(v2[t, j]),
    )
    for t in b.T:
        b.v[feeder.root, t].fix(feeder.v_root_pu**2)

    def eq_p(_b: pyo.Block, k: int, t: int) -> Any:
        c = int(feeder.child[k])
        load = float(p_mw[t, c]) / base - withdrawal(c, t) / base
        return (
            b.P[k, t] == load + sum(b.P[q, t] for q in kids[c]) + float(feeder.r_pu[k]) * b.l[k, t]
        )

    def eq_q(_b: pyo.Block, k: int, t: int) -> Any:
        c = int(feeder.child[k])
        return (
            b.Q[k, t]
            == float(q_mvar[t, c]) / base
            + sum(b.Q[q, t] for q in kids[c])
            + float(feeder.x_pu[k]) * b.l[k, t]
        )

    def eq_v(_b: pyo.Block, k: int, t: int) -> Any:
        r, x = float(feeder.r_pu[k]), float(feeder.x_pu[k])
        return (
            b.v[int(feeder.child[k]), t]
            == b.v[int(feeder.parent[k]), t]
            - 2 * (r * b.P[k, t] + x * b.Q[k, t])
            + (r * r + x * x) * b.l[k, t]
        )

    b.eq_p = pyo.Constraint(b.K, b.T, rule=eq_p)  # (X13)
    b.eq_q = pyo.Constraint(b.K, b.T, rule=eq_q)
    b.eq_v = pyo.Constraint(b.K, b.T, rule=eq_v)  # (X14)
    b.eq_current = pyo.Constraint(  # (X15)
        b.K,
        b.T,
        rule=lambda _b, k, t: (
            b.l[k, t] * b.v[int(feeder.parent[k]), t] == b.P[k, t] ** 2 + b.Q[k, t] ** 2
        ),
    )
    b.loss_mw = pyo.Expression(
        b.T, rule=lambda _b, t: base * sum(float(feeder.r_pu[k]) * b.l[k, t] for k in b.K)
    )
