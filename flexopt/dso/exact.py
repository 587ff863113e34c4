"""Exact single-level formulations of the DSO coefficient problem (``models/dcp_exact.md``
X1–X16). Pure builders: they never solve (``flexopt.methods.exact`` solves them through
:func:`flexopt.solve.solve`).

Each lower level (M4) — at the design point and at the upper end of every block of the bid —
is replaced by its KKT conditions, which are *linear* in ``(u, β, λ, μ)`` in mode ``"b"``
(β multiplies the constant ``b``); complementarity is modelled with binaries and big-M
bounds derived from the data (X6–X8), and where the quantity equals the capacity the price is
pinned to the closed form's (the dearest marginal cost at full output, X8a). Feeder losses use
LinDistFlow with tangent cuts (X9). The budget (C7) holds at every block boundary with the
settlement's make-whole payments ``max(λ u_i, C_i(u_i))`` (X12): exactly (bilinear ``λ u``) in
the MINLP for SCIP; in the MILP for HiGHS through the KKT identity
``λ u_i = 2 a_i u_i² + b_i β_i u_i + Ū_i μ⁺_i`` with the McCormick envelope of ``β_i u_i`` — a
relaxation, whose optimum bounds the approximate model (:class:`ApproxModel`) from below and
whose point is checked on it. The efficiency (C8) holds at the same boundaries as one linear
row each (X12a).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo

from flexopt.dso.approx import ApproxModel, ExactBounds, exact_bounds, factor_boxes
from flexopt.dso.budget import saving_slack
from flexopt.dso.clearing import clear
from flexopt.dso.dcp import DCPProblem

__all__ = [
    "ApproxModel",
    "ClearingCheck",
    "ExactBounds",
    "ExactSolution",
    "add_boundary",
    "add_lower_level",
    "add_lower_level_kkt",
    "budget_boundaries",
    "build_dcp_exact",
    "check_clearing",
    "exact_bounds",
    "read_dcp_exact",
    "read_factors",
]

#: Relative tolerance of "the quantity is the capacity" (X8a) and of the clearing check.
_TOL = 1e-7


def add_factors(m: pyo.ConcreteModel, pr: DCPProblem) -> None:
    """``β_i`` (and ``α_i`` in mode "ab") in their boxes; fixed at 1 for the prosumers that
    are not screened (X1)."""
    a_lo, a_hi, b_lo, b_hi = factor_boxes(pr)
    m.beta = pyo.Var(
        m.I, bounds=lambda _m, i: (float(b_lo[i]), float(b_hi[i])), initialize=1.0, doc="β_i"
    )
    if pr.options.mode == "ab":
        m.alpha = pyo.Var(
            m.I, bounds=lambda _m, i: (float(a_lo[i]), float(a_hi[i])), initialize=1.0, doc="α_i"
        )
    screened = set(pr.free.tolist())
    for i in m.I:
        if i not in screened:
            m.beta[i].fix(1.0)
            if pr.options.mode == "ab":
                m.alpha[i].fix(1.0)


def add_lower_level_kkt(b: pyo.Block, pr: DCPProblem, q_mw: np.ndarray) -> None:
    """Primal feasibility and stationarity of the local clearing at ``q_mw[t]`` (X4–X5).

    ``Σ_i u_{i,t} = Q_t`` and ``2 a_i α_i u_{i,t} + b_i β_i − λ_t − μ⁻_{i,t} + μ⁺_{i,t} = 0``,
    with ``α_i`` the model's variable when it has one (mode "ab": bilinear) and 1 otherwise
    (mode "b": linear, since ``b_i`` is data). ``b`` holds ``u``, ``lam``, ``mu_lo``,
    ``mu_hi`` over ``I × T``; the factors live on the model.
    """
    m = b.model()
    a, c = pr.a, pr.b
    alpha = getattr(m, "alpha", None)

    def quad(i: int, t: int) -> Any:
        return 2 * a[i] * (alpha[i] * b.u[i, t] if alpha is not None else b.u[i, t])

    b.eq_balance = pyo.Constraint(
        b.T, rule=lambda _b, t: sum(b.u[i, t] for i in b.I) == float(q_mw[t])
    )
    b.eq_stationarity = pyo.Constraint(
        b.I,
        b.T,
        rule=lambda _b, i, t: (
            quad(i, t) + c[i] * m.beta[i] - b.lam[t] - b.mu_lo[i, t] + b.mu_hi[i, t] == 0
        ),
    )


def add_lower_level(
    b: pyo.Block,
    approx: ApproxModel,
    q_mw: np.ndarray,
    bounds: ExactBounds,
    hours: list[int] | None = None,
) -> None:
    """One lower level (M4) at quantities ``q_mw`` ``[T]`` in the design hours at positions
    ``hours`` (all by default): KKT (X4–X5), complementarity by big-M (X6–X8), the price
    pinned to the closed form's where ``Q`` is the capacity (X8a), and its LinDistFlow
    losses with tangent cuts (X9) as ``b.loss[t]``."""
    pr = approx.problem
    umax = pr.u_max
    b.T = pyo.Set(initialize=range(len(pr.hours)) if hours is None else hours, ordered=True)
    b.I = pyo.RangeSet(0, pr.n - 1)
    b.u = pyo.Var(
        b.I,
        b.T,
        bounds=lambda _b, i, t: (float(bounds.u_lo[t, i]), float(bounds.u_hi[t, i])),
        doc="MW per copy",
    )
    b.lam = pyo.Var(b.T, bounds=lambda _b, t: (float(bounds.lam_lo[t]), float(bounds.lam_hi[t])))
    b.mu_lo = pyo.Var(b.I, b.T, bounds=lambda _b, i, t: (0.0, float(bounds.mu_lo_max[t, i])))
    b.mu_hi = pyo.Var(b.I, b.T, bounds=lambda _b, i, t: (0.0, float(bounds.mu_hi_max[t, i])))
    b.z_lo = pyo.Var(b.I, b.T, domain=pyo.Binary, doc="1: u at its lower bound")
    b.z_hi = pyo.Var(b.I, b.T, domain=pyo.Binary, doc="1: u at its upper bound")
    add_lower_level_kkt(b, pr, q_mw)  # (X4–X5)
    # (X6–X8) complementarity by big-M: μ⁻ > 0 only at u = 0, μ⁺ > 0 only at u = Ū
    mu_lo, mu_hi = bounds.mu_lo_max, bounds.mu_hi_max
    b.ineq_mu_lo = pyo.Constraint(
        b.I, b.T, rule=lambda _b, i, t: b.mu_lo[i, t] <= float(mu_lo[t, i]) * b.z_lo[i, t]
    )
    b.ineq_u_lo = pyo.Constraint(
        b.I, b.T, rule=lambda _b, i, t: b.u[i, t] <= float(umax[t, i]) * (1 - b.z_lo[i, t])
    )
    b.ineq_mu_hi = pyo.Constraint(
        b.I, b.T, rule=lambda _b, i, t: b.mu_hi[i, t] <= float(mu_hi[t, i]) * b.z_hi[i, t]
    )
    b.ineq_u_hi = pyo.Constraint(
        b.I, b.T, rule=lambda _b, i, t: float(umax[t, i]) * b.z_hi[i, t] <= b.u[i, t]
    )
    # (X8a) at Q = Σ Ū every u is at its capacity and the KKT leave λ free above the dearest
    # top; the closed form takes the smallest clearing price: some prosumer is marginal. (On a
    # flat part of the supply curve below the capacity — Q exactly a sum of capacities — λ is
    # free between two breakpoints as well; "some prosumer dispatched and marginal" needs a
    # strict u > 0 that a MILP cannot state, so there the closed-form check of the point
    # reports a mismatch instead.)
    cap = umax.sum(axis=1)
    full = [t for t in b.T if cap[t] > 0 and q_mw[t] >= cap[t] * (1 - _TOL)]
    pin = [(i, t) for t in full for i in range(pr.n) if umax[t, i] > 0]
    if pin:
        b.FULL = pyo.Set(initialize=full)
        b.PIN = pyo.Set(initialize=pin, dimen=2)
        b.y = pyo.Var(b.PIN, domain=pyo.Binary, doc="1: prosumer i sets the price at Q = Σ Ū")
        b.ineq_pin = pyo.Constraint(
            b.PIN, rule=lambda _b, i, t: b.mu_hi[i, t] <= float(mu_hi[t, i]) * (1 - b.y[i, t])
        )
        b.ineq_marginal = pyo.Constraint(
            b.FULL, rule=lambda _b, t: sum(b.y[i, s] for i, s in pin if s == t) >= 1
        )
    add_losses(b, approx)


def add_losses(b: pyo.Block, approx: ApproxModel) -> None:
    """(X9) tangent cuts ``φ_k ≥ 2 g P_k − g²`` on the LinDistFlow flows
    ``P_k = P⁰_k − Σ_i s_{ik} u_i`` (X2–X3); ``b.loss[t] = Σ_k r_k (φ_k + Q_k²) / V₀²``."""
    sens, p0, grid = approx.sens, approx.p_branch0, approx.p_grid
    b.K = pyo.RangeSet(0, sens.shape[1] - 1)
    b.S = pyo.RangeSet(0, approx.segments - 1)
    b.phi = pyo.Var(b.K, b.T, domain=pyo.NonNegativeReals, doc="≥ P_k² (MW²)")

    def flow(k: int, t: int) -> Any:
        return float(p0[t, k]) - sum(float(sens[i, k]) * b.u[i, t] for i in b.I if sens[i, k] != 0)

    b.ineq_tangent = pyo.Constraint(
        b.K,
        b.T,
        b.S,
        rule=lambda _b, k, t, s: (
            b.phi[k, t] >= 2 * float(grid[t, k, s]) * flow(k, t) - float(grid[t, k, s]) ** 2
        ),
    )
    ldf = approx.lindistflow
    r, v2, qb = ldf.r_ohm, ldf.v0_kv2, approx.q_branch
    b.loss = pyo.Expression(
        b.T, rule=lambda _b, t: sum(r[k] * (b.phi[k, t] + float(qb[t, k]) ** 2) for k in b.K) / v2
    )


def add_squares(b: pyo.Block, approx: ApproxModel) -> None:
    """(X10) ``ψ_{i,t} ≥ u_{i,t}²`` by tangent cuts, for the original costs."""
    ug = approx.u_grid
    b.psi = pyo.Var(b.I, b.T, domain=pyo.NonNegativeReals, doc="≥ u² (MW²)")
    b.ineq_u_sq = pyo.Constraint(
        b.I,
        b.T,
        b.S,
        rule=lambda _b, i, t, s: (
            b.psi[i, t] >= 2 * float(ug[t, i, s]) * b.u[i, t] - float(ug[t, i, s]) ** 2
        ),
    )


def add_efficiency(b: pyo.Block, approx: ApproxModel, k: int) -> None:
    """(X12a) the efficiency (C8) at the upper end of block ``k``: the social cost
    ``Σ_i (a_i ψ_i + b_i u_i) + π_loss (P^loss − P^loss_DA)`` is at most the unmodified
    offers' on the approximate model (a relaxation: the squares are under-estimated)."""
    pr = approx.problem
    a, c, lp, da = pr.a, pr.b, pr.loss_price, approx.loss_da
    s0 = approx.social0[:, k]
    b.ineq_efficiency = pyo.Constraint(
        b.T,
        rule=lambda _b, t: (
            sum(a[i] * b.psi[i, t] + c[i] * b.u[i, t] for i in b.I)
            + lp * (b.loss[t] - float(da[t]))
            <= float(s0[t]) + float(saving_slack(s0[t]))
        ),
    )


def add_budget(
    b: pyo.Block, approx: ApproxModel, q_mw: np.ndarray, bounds: ExactBounds, exact_product: bool
) -> None:
    """(X12) the settled balance at quantities ``q_mw`` (a block boundary) is non-negative:
    ``λ_t Q_t + π_loss (P^loss_DA − P^loss_t) − Σ_i p_{i,t} ≥ 0`` with the make-whole
    payments ``p_i ≥ C_i(u_i)`` (``u²`` by tangent cuts ``ψ``, X10, :func:`add_squares`) and
    ``p_i ≥ λ u_i`` — the bilinear product itself (``exact_product``, for SCIP), or in the
    MILP two linear under-estimators of it: the McCormick envelope of ``λ u_i`` on the
    level's bounds, and its KKT identity ``2 a_i u_i² + b_i β_i u_i + Ū_i μ⁺_i`` with
    ``β_i u_i`` under its own envelope."""
    pr = approx.problem
    m = b.model()
    a, c, umax = pr.a, pr.b, pr.u_max
    b.pay = pyo.Var(b.I, b.T, domain=pyo.NonNegativeReals, doc="payment, €/h per copy")
    b.ineq_pay_cost = pyo.Constraint(
        b.I, b.T, rule=lambda _b, i, t: b.pay[i, t] >= a[i] * b.psi[i, t] + c[i] * b.u[i, t]
    )
    if exact_product:
        b.ineq_pay_price = pyo.Constraint(
            b.I, b.T, rule=lambda _b, i, t: b.pay[i, t] >= b.lam[t] * b.u[i, t]
        )
    else:
        lam_lo, lam_hi, u_lo, u_hi = bounds.lam_lo, bounds.lam_hi, bounds.u_lo, bounds.u_hi
        b.ineq_pay_mccormick_lo = pyo.Constraint(  # λ u ≥ λ̲ u + u̲ λ − λ̲ u̲
            b.I,
            b.T,
            rule=lambda _b, i, t: (
                b.pay[i, t]
                >= float(lam_lo[t]) * b.u[i, t]
                + float(u_lo[t, i]) * b.lam[t]
                - float(lam_lo[t] * u_lo[t, i])
            ),
        )
        b.ineq_pay_mccormick_hi = pyo.Constraint(  # λ u ≥ λ̅ u + u̅ λ − λ̅ u̅
            b.I,
            b.T,
            rule=lambda _b, i, t: (
                b.pay[i, t]
                >= float(lam_hi[t]) * b.u[i, t]
                + float(u_hi[t, i]) * b.lam[t]
                - float(lam_hi[t] * u_hi[t, i])
            ),
        )
        # λ u = 2 a u² + b β u + Ū μ⁺ (stationarity × u, complementarity), mode "b"
        _, _, b_lo, b_hi = factor_boxes(pr)
        b.w = pyo.Var(b.I, b.T, domain=pyo.NonNegativeReals, doc="McCormick of β_i u_i")
        b.ineq_w_lo = pyo.Constraint(
            b.I, b.T, rule=lambda _b, i, t: b.w[i, t] >= float(b_lo[i]) * b.u[i, t]
        )
        b.ineq_w_hi = pyo.Constraint(
            b.I,
            b.T,
            rule=lambda _b, i, t: (
                b.w[i, t]
                >= float(b_hi[i]) * b.u[i, t]
                + float(umax[t, i]) * m.beta[i]
                - float(b_hi[i] * umax[t, i])
            ),
        )
        b.ineq_pay_price = pyo.Constraint(
            b.I,
            b.T,
            rule=lambda _b, i, t: (
                b.pay[i, t]
                >= 2 * a[i] * b.psi[i, t] + c[i] * b.w[i, t] + float(umax[t, i]) * b.mu_hi[i, t]
            ),
        )
    lp, da = pr.loss_price, approx.loss_da
    b.ineq_budget = pyo.Constraint(
        b.T,
        rule=lambda _b, t: (
            float(q_mw[t]) * b.lam[t]
            + lp * (float(da[t]) - b.loss[t])
            - sum(b.pay[i, t] for i in b.I)
            >= 0
        ),
    )


def build_dcp_exact(
    approx: ApproxModel,
    bounds: ExactBounds | None = None,
    boundaries: list[tuple[int, int]] | None = None,
) -> pyo.ConcreteModel:
    """Single-level model of the DCP (X1–X12a). Pure: never solves.

    ``m.design``: the lower level at the design point, whose losses and price make the
    objective (C6, X11); ``m.edge[t, k]``: the lower level of hour position ``t`` at the upper
    end of block ``k`` with its budget row (C7, X12) and efficiency row (C8, X12a). ``boundaries``: which ``(t, k)`` to
    include — by default every one, when the budget is on (the full model, e.g. to export);
    :func:`flexopt.methods.exact.solve_dcp_exact` starts from none and adds the ones the
    solution violates (:func:`add_boundary`). Mode ``"b"``: a MILP (HiGHS; the budget's
    make-whole terms relaxed). Mode ``"ab"``: α becomes a variable, stationarity and the
    budget's ``λ u`` are bilinear — a nonconvex MINLP (SCIP, ``scip_direct``), exact on the
    approximate model.
    """
    pr = approx.problem
    bounds = bounds or exact_bounds(pr)
    m = pyo.ConcreteModel(name=f"dcp_{'milp' if pr.options.mode == 'b' else 'minlp'}")
    m.T, m.I = pyo.RangeSet(0, len(pr.hours) - 1), pyo.RangeSet(0, pr.n - 1)
    add_factors(m, pr)
    m.design = pyo.Block()
    add_lower_level(m.design, approx, pr.q, bounds)
    dt, w = pr.ctx.dt_h, pr.options.weight
    f_loss = dt * sum(m.design.loss[t] for t in m.T)
    f_price = dt * sum(float(pr.q[t]) * m.design.lam[t] for t in m.T)
    # (X11) objective (C6) on the approximate model
    m.obj = pyo.Objective(expr=w * f_loss / approx.f_loss0 + (1 - w) * f_price / approx.f_price0)
    m.edge = pyo.Block(pyo.Any)
    if boundaries is None:
        boundaries = budget_boundaries(pr)
    for t, k in boundaries:
        add_boundary(m, approx, t, k)
    return m


def budget_boundaries(pr: DCPProblem) -> list[tuple[int, int]]:
    """Every ``(hour position, block)`` at which the budget (C7) and the efficiency (C8)
    hold: none when both are off, and none in an hour without capacity (nothing can be
    accepted there)."""
    if not (pr.options.budget or pr.options.efficiency):
        return []
    edges = pr.edges_mw
    return [(t, k) for t in range(edges.shape[0]) for k in range(edges.shape[1]) if edges[t, k] > 0]


def add_boundary(m: pyo.ConcreteModel, approx: ApproxModel, t: int, k: int) -> None:
    """Add the lower level of hour position ``t`` at the upper end of block ``k`` with its
    budget row (C7, X12) and efficiency row (C8, X12a) as the options impose them, with
    bounds of its own quantity, to a model of :func:`build_dcp_exact`."""
    pr = approx.problem
    b = m.edge[t, k]
    q = pr.edges_mw[:, k]
    own = exact_bounds(pr, q)
    add_lower_level(b, approx, q, own, hours=[t])
    add_squares(b, approx)
    if pr.options.budget:
        add_budget(b, approx, q, own, exact_product=pr.options.mode == "ab")
    if pr.options.efficiency:
        add_efficiency(b, approx, k)


@dataclass(frozen=True, eq=False)
class ExactSolution:
    """A solved exact model at its design point: factors ``[n]`` (α ones in mode "b"),
    dispatch ``u`` ``[T, n]``, clearing price ``lam`` ``[T]`` and the bound multipliers
    ``mu_lo``, ``mu_hi`` ``[T, n]``."""

    alpha: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    lam: np.ndarray
    mu_lo: np.ndarray
    mu_hi: np.ndarray


def read_factors(m: pyo.ConcreteModel) -> tuple[np.ndarray, np.ndarray]:
    """``(α, β)`` of a solved exact model (α ones when it has no α variable)."""
    n = len(m.I)
    alpha = np.array([pyo.value(m.alpha[i]) for i in m.I]) if hasattr(m, "alpha") else np.ones(n)
    return alpha, np.array([pyo.value(m.beta[i]) for i in m.I])


def read_dcp_exact(m: pyo.ConcreteModel) -> ExactSolution:
    """Factors, dispatch, price and multipliers of a solved model at its design point."""
    level = m.design if hasattr(m, "design") else m
    T, n = len(m.T), len(m.I)

    def grid(var: pyo.Var) -> np.ndarray:
        return np.array([[pyo.value(var[i, t]) for i in m.I] for t in m.T]).reshape(T, n)

    alpha, beta = read_factors(m)
    return ExactSolution(
        alpha=alpha,
        beta=beta,
        u=grid(level.u),
        lam=np.array([pyo.value(level.lam[t]) for t in m.T]),
        mu_lo=grid(level.mu_lo),
        mu_hi=grid(level.mu_hi),
    )


@dataclass(frozen=True)
class ClearingCheck:
    """The model's design-point price and dispatch against the closed-form clearing (M6) at
    the model's own factors: ``price_gap`` (€/MWh) and ``dispatch_gap`` (MW), largest
    absolute differences; ``agrees`` within the tolerances."""

    price_gap: float
    dispatch_gap: float
    agrees: bool


def check_clearing(
    problem: DCPProblem, sol: ExactSolution, price_tol: float = 1e-4, dispatch_tol: float = 1e-5
) -> ClearingCheck:
    """Re-evaluate a model's point with the closed-form clearing (X8a): a model whose lower
    level is not pinned may report a price the market would not form."""
    cl = clear(sol.alpha * problem.a, sol.beta * problem.b, problem.u_max, problem.q)
    dp = float(np.abs(cl.price - sol.lam).max(initial=0.0))
    du = float(np.abs(cl.u_mw - sol.u).max(initial=0.0))
    scale = max(1.0, float(np.abs(cl.price).max(initial=0.0)))
    return ClearingCheck(dp, du, dp <= price_tol * scale and du <= dispatch_tol)
