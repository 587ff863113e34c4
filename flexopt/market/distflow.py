"""Radial-feeder constraint families for Pyomo models (``models/centralized.md`` Z6–Z9,
``models/dcp_exact.md`` X13–X15).

Both families act on a block (or model) ``b`` that already holds an hour set ``b.T`` with
positions ``0..T−1`` matching the rows of ``p_mw`` / ``q_mvar``; ``withdrawal(j, t)`` returns
the flexible load reduction at feeder bus position ``j`` in hour ``t`` (MW, a Pyomo
expression or ``0``). Branch ``k`` ends at bus ``feeder.child[k]``.

* :func:`add_lindistflow` — LinDistFlow (Baran & Wu 1989 without the loss terms in the
  flows): linear flows and squared voltages, losses ``Σ_k r_k (P_k² + Q_k²) / V₀²`` as a
  convex quadratic expression. Used by the centralized QP.
* :func:`add_branch_flow` — the exact branch flow (DistFlow) equations of a radial feeder,
  nonconvex through ``ℓ_k v_i = P_k² + Q_k²``. Used by the AC NLPs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyomo.environ as pyo

from flexopt.grid import Feeder

__all__ = ["add_branch_flow", "add_lindistflow", "lindistflow_point"]

Withdrawal = Callable[[int, int], object]


def _children(feeder: Feeder) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {j: [] for j in range(feeder.n_bus)}
    for k, j in enumerate(feeder.parent):
        kids[int(j)].append(k)
    return kids


def lindistflow_point(
    feeder: Feeder, p_mw: np.ndarray, q_mvar: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LinDistFlow branch flows and squared voltages of given bus loads (Z6–Z7).

    ``P = p Aᵀ``, ``Q = q Aᵀ`` (``A`` the path matrix, F2) and
    ``v_j = v_root² − 2 Σ_k A_{k,j} (r_k P_k + x_k Q_k) / S_base``.

    Returns
    -------
    P_mw, Q_mvar : ndarray ``[..., K]``
    v_pu2 : ndarray ``[..., n_bus]``
    """
    a = feeder.path
    P, Q = p_mw @ a.T, q_mvar @ a.T
    drop = 2 * (feeder.r_pu * P + feeder.x_pu * Q) / feeder.base_mva
    return P, Q, feeder.v_root_pu**2 - drop @ a


def add_lindistflow(
    b: pyo.Block,
    feeder: Feeder,
    p_mw: np.ndarray,
    q_mvar: np.ndarray,
    withdrawal: Withdrawal,
    vm_limits_pu: tuple[float, float] = (0.95, 1.05),
    withdrawal_max_mw: np.ndarray | None = None,
) -> None:
    """LinDistFlow flows, voltages and losses of one feeder (Z6–Z9).

    Adds ``b.K``, ``b.P[k, t]`` (MW), ``b.eq_flow`` (Z6), the expression ``b.loss_mw[t]``
    (Z9) and — unless they cannot bind — ``b.v[j, t]`` (pu², root fixed), ``b.eq_voltage``
    (Z7) with the voltage bounds (Z8). Reactive loads are not flexible, so ``Q_k`` is data.

    Voltage bounds are ``[min(v̲², v⁰_j), max(v̄², v⁰_j)]`` with ``v⁰`` the LinDistFlow point
    without flexibility: a bus already outside the band at the day-ahead point may not get
    worse, but the market is not asked to repair it (that would be a different product).
    A withdrawal only raises LinDistFlow voltages, so the lower bound never binds; when
    ``withdrawal_max_mw`` (``[T, n_bus]``) cannot lift any voltage above its upper bound
    either, the voltages are left out (exact, and the model stays small).
    """
    K = feeder.n_branch
    kids = _children(feeder)
    _, Q, v0 = lindistflow_point(feeder, p_mw, q_mvar)
    r_ohm = feeder.r_pu * feeder.vn_kv**2 / feeder.base_mva
    v0_kv2 = (feeder.vn_kv * feeder.v_root_pu) ** 2
    lo2, hi2 = vm_limits_pu[0] ** 2, vm_limits_pu[1] ** 2
    b.K = pyo.RangeSet(0, K - 1)
    b.P = pyo.Var(b.K, b.T, doc="active flow into the branch's child, MW")

    def eq_flow(_b, k, t):  # (Z6): constants on the right
        c = int(feeder.child[k])
        return b.P[k, t] - sum(b.P[q, t] for q in kids[c]) + withdrawal(c, t) == float(p_mw[t, c])

    b.eq_flow = pyo.Constraint(b.K, b.T, rule=eq_flow)
    b.loss_mw = pyo.Expression(
        b.T,
        rule=lambda _b, t: (
            sum(float(r_ohm[k]) * (b.P[k, t] ** 2 + float(Q[t, k]) ** 2) for k in range(K)) / v0_kv2
        ),
    )
    if withdrawal_max_mw is not None:
        _, _, v_top = lindistflow_point(feeder, p_mw - withdrawal_max_mw, q_mvar)
        if (v_top <= np.maximum(hi2, v0) + 1e-12).all():
            return
    b.v = pyo.Var(
        range(feeder.n_bus),
        b.T,
        bounds=lambda _b, j, t: (min(lo2, v0[t, j]), max(hi2, v0[t, j])),
        doc="squared voltage, pu²",
    )
    for t in b.T:
        b.v[feeder.root, t].fix(feeder.v_root_pu**2)

    def eq_voltage(_b, k, t):  # (Z7)
        r, x, s = float(feeder.r_pu[k]), float(feeder.x_pu[k]), feeder.base_mva
        c, par = int(feeder.child[k]), int(feeder.parent[k])
        return b.v[c, t] - b.v[par, t] + 2 * r / s * b.P[k, t] == -2 * x / s * float(Q[t, k])

    b.eq_voltage = pyo.Constraint(b.K, b.T, rule=eq_voltage)


def add_branch_flow(
    b: pyo.Block,
    feeder: Feeder,
    p_mw: np.ndarray,
    q_mvar: np.ndarray,
    withdrawal: Withdrawal,
    start=None,
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

    def eq_p(_b, k, t):
        c = int(feeder.child[k])
        load = float(p_mw[t, c]) / base - withdrawal(c, t) / base
        return (
            b.P[k, t] == load + sum(b.P[q, t] for q in kids[c]) + float(feeder.r_pu[k]) * b.l[k, t]
        )

    def eq_q(_b, k, t):
        c = int(feeder.child[k])
        return (
            b.Q[k, t]
            == float(q_mvar[t, c]) / base
            + sum(b.Q[q, t] for q in kids[c])
            + float(feeder.x_pu[k]) * b.l[k, t]
        )

    def eq_v(_b, k, t):
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
