"""Exact single-level formulations of the DSO coefficient problem (``models/dcp_exact.md`` X1–X16).

Mode ``"b"`` (β only): the lower level (M4) is replaced by its KKT conditions, which are
*linear* in ``(u, β, λ, μ)`` because β multiplies the constant ``b``; complementarity is
modelled with binaries and big-M bounds derived from the data (X6–X8); feeder losses use
LinDistFlow, ``Σ_k r_k (P_k² + Q_k²) / V₀²``, with a piecewise-linear outer approximation of
``P_k²`` (tangent cuts, X9); the uniform-price objective is linear in λ. The result is a MILP
(HiGHS). The same approximations define :class:`ApproxModel`, a batched numpy evaluator of the
approximate model, so that any method's factors (WCA's included) can be scored on the very
model the MILP optimizes.

This module builds and reads models; it never solves them (``flexopt.methods.exact`` solves
them through :func:`flexopt.solve.solve`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo

from flexopt.dso.clearing import Clearing, clear
from flexopt.dso.dcp import DCPProblem
from flexopt.grid.lindistflow import LinDistFlow
from flexopt.market.distflow import add_branch_flow
from flexopt.optim import Evaluation, Problem

__all__ = [
    "ApproxModel",
    "ExactBounds",
    "ExactSolution",
    "add_lower_level_kkt",
    "build_dcp_exact",
    "build_dcp_nlp",
    "exact_bounds",
    "read_dcp_exact",
    "read_factors",
]


class ApproxModel(Problem):
    """The DCP on LinDistFlow losses with tangent-cut outer approximations (X9–X10).

    An :class:`flexopt.optim.Problem` too: any metaheuristic can be run on the very model the
    MILP optimizes, which makes "MILP optimum ≤ heuristic value" a test that can fail.

    Parameters
    ----------
    problem : DCPProblem
        Mode ``"b"`` or ``"ab"``; the approximation concerns the losses and the quadratic
        costs in the budget only.
    segments : int
        Tangent points per squared term (``S ≥ 2``).
    """

    def __init__(self, problem: DCPProblem, segments: int = 16) -> None:
        if segments < 2:
            raise ValueError(f"segments must be ≥ 2, got {segments}")
        self.problem, self.segments = problem, segments
        self.lindistflow = ldf = LinDistFlow(problem.ctx.feeder)
        # [T, K] LinDistFlow flows at u = 0 (X2)
        self.p_branch0, self.q_branch = ldf.flows(problem.p, problem.q_mvar)
        self.sens = ldf.flow_sensitivity(problem.incidence)  # [n, K]: flow drop per MW of u_i (X3)
        umax = problem.u_max  # [T, n]
        p_lo = self.p_branch0 - umax @ self.sens  # every u at its capacity
        self.p_grid = np.linspace(
            np.minimum(p_lo, self.p_branch0), np.maximum(p_lo, self.p_branch0), segments, axis=-1
        )  # [T, K, S] tangent points (X9)
        self.u_grid = np.linspace(
            0.0, umax, segments, axis=-1
        )  # [T, n, S] for the u² of costs (X10)
        x0 = problem.x0[None, :]
        self.f_loss0, self.f_price0 = (float(v[0]) for v in self._parts(x0)[:2])
        self.loss0 = self._parts(x0)[3][0]  # [T]
        self.lower, self.upper = problem.lower, problem.upper
        self.n_obj, self.n_constr = 1, problem.n_constr

    def evaluate(self, X: np.ndarray) -> Evaluation:
        G = -self.budget(X)[:, None] if self.problem.options.budget else None
        return Evaluation(self.objective(X)[:, None], G)

    @staticmethod
    def tangent_max(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """``max_s (2 g_s x − g_s²)`` — the outer approximation of ``x²`` (X9)."""
        tangent: np.ndarray = np.max(2 * grid * x[..., None] - grid**2, axis=-1)
        return tangent

    def losses_mw(self, u: np.ndarray) -> np.ndarray:
        """Approximate feeder loss ``[P, T]`` for dispatch ``u[P, T, n]`` (X3, X9)."""
        p = self.p_branch0 - u @ self.sens  # [P, T, K]
        return self.lindistflow.loss_mw(self.tangent_max(p, self.p_grid), self.q_branch**2)

    def _parts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, Clearing, np.ndarray]:
        pr = self.problem
        alpha, beta = pr.factors(X)
        cl = clear(
            (alpha * pr.a)[:, None, :], (beta * pr.b)[:, None, :], pr.u_max[None], pr.q[None]
        )
        dt = pr.ctx.dt_h
        loss = self.losses_mw(cl.u_mw)
        f_loss = dt * loss.sum(-1)
        f_price = dt * (cl.price * cl.served_mw).sum(-1)
        return f_loss, f_price, cl, loss

    def objective(self, X: np.ndarray) -> np.ndarray:
        """(C6) on the approximate model, normalized by its own values at ``x⁰`` ``[P]``."""
        X = np.atleast_2d(X)
        f_loss, f_price, _, _ = self._parts(X)
        w = self.problem.options.weight
        return w * f_loss / self.f_loss0 + (1 - w) * f_price / self.f_price0

    def budget(self, X: np.ndarray) -> np.ndarray:
        """(C7) on the approximate model (per feeder copy), with tangent cuts for ``u²`` ``[P]``."""
        X = np.atleast_2d(X)
        pr = self.problem
        _, _, cl, loss = self._parts(X)
        cost = (pr.a * self.tangent_max(cl.u_mw, self.u_grid[None]) + pr.b * cl.u_mw).sum(-1)
        budget: np.ndarray = pr.ctx.dt_h * (
            cl.price * cl.served_mw + pr.loss_price * (self.loss0 - loss) - cost
        ).sum(-1)
        return budget


@dataclass(frozen=True, eq=False)
class ExactBounds:
    """Big-M constants derived from the data (X6–X8), ``[T]`` and ``[T, n]``."""

    lam_lo: np.ndarray
    lam_hi: np.ndarray
    mu_lo_max: np.ndarray
    mu_hi_max: np.ndarray


def exact_bounds(problem: DCPProblem) -> ExactBounds:
    """Bounds of the KKT multipliers (X6–X8).

    The clearing price lies between the cheapest first MW and the dearest last MW of any
    offer the factors allow: ``λ_t ∈ [min_i lo·b_i, max_i (hi·b_i + 2 α̅ a_i Ū_{i,t})]`` (X6).
    With ``u_i = 0`` stationarity gives ``μ⁻_i = β_i b_i − λ ≤ hi·b_i − λ_lo`` (X7); with
    ``u_i = Ū_i``, ``μ⁺_i = λ − 2 α_i a_i Ū_i − β_i b_i ≤ λ_hi − 2 α̲ a_i Ū_i − lo·b_i`` (X8),
    where ``[α̲, α̅]`` is the box of α (mode "ab") or ``[1, 1]`` (mode "b").
    """
    lo, hi = problem.options.bounds
    a_lo, a_hi = (lo, hi) if problem.options.mode == "ab" else (1.0, 1.0)
    a, b, umax = problem.a, problem.b, problem.u_max
    lam_lo = np.full(len(problem.hours), (lo * b).min())
    lam_hi = (hi * b + 2 * a_hi * a * umax).max(axis=1)
    mu_lo = np.maximum(hi * b[None, :] - lam_lo[:, None], 0.0)
    mu_hi = np.maximum(lam_hi[:, None] - 2 * a_lo * a * umax - lo * b[None, :], 0.0)
    return ExactBounds(lam_lo, lam_hi, mu_lo, mu_hi)


def add_lower_level_kkt(m: pyo.ConcreteModel, pr: DCPProblem) -> None:
    """Primal feasibility and stationarity of the local clearing (X4–X5).

    ``Σ_i u_{i,t} = Q_t`` and ``2 a_i α_i u_{i,t} + b_i β_i − λ_t − μ⁻_{i,t} + μ⁺_{i,t} = 0``,
    with ``α_i`` the model's variable when it has one (mode "ab": bilinear) and 1 otherwise
    (mode "b": linear, since ``b_i`` is data).
    """
    a, b = pr.a, pr.b
    alpha = getattr(m, "alpha", None)

    def quad(i: int, t: int) -> Any:
        return 2 * a[i] * (alpha[i] * m.u[i, t] if alpha is not None else m.u[i, t])

    m.eq_balance = pyo.Constraint(
        m.T, rule=lambda _m, t: sum(m.u[i, t] for i in m.I) == float(pr.q[t])
    )
    m.eq_stationarity = pyo.Constraint(
        m.I,
        m.T,
        rule=lambda _m, i, t: (
            quad(i, t) + b[i] * m.beta[i] - m.lam[t] - m.mu_lo[i, t] + m.mu_hi[i, t] == 0
        ),
    )


def build_dcp_exact(approx: ApproxModel, bounds: ExactBounds | None = None) -> pyo.ConcreteModel:
    """Single-level model of the DCP (X1–X12). Pure: never solves.

    Mode ``"b"``: a MILP (HiGHS). Mode ``"ab"``: α becomes a variable and the stationarity term
    ``2 a_i α_i u_i`` is bilinear — a nonconvex MINLP (SCIP, ``scip_direct``).
    """
    pr = approx.problem
    bounds = bounds or exact_bounds(pr)
    m = pyo.ConcreteModel(name=f"dcp_{'milp' if pr.options.mode == 'b' else 'minlp'}")
    T, n, K, S = len(pr.hours), pr.n, approx.sens.shape[1], approx.segments
    m.T, m.I, m.K, m.S = (pyo.RangeSet(0, v - 1) for v in (T, n, K, S))
    lo, hi = pr.options.bounds
    a, b = pr.a, pr.b
    m.beta = pyo.Var(m.I, bounds=(lo, hi), doc="β_i (X1)")
    if pr.options.mode == "ab":
        m.alpha = pyo.Var(m.I, bounds=(lo, hi), initialize=1.0, doc="α_i (X1)")

    m.u = pyo.Var(m.I, m.T, bounds=lambda _m, i, t: (0.0, float(pr.u_max[t, i])), doc="MW per copy")
    m.lam = pyo.Var(m.T, bounds=lambda _m, t: (float(bounds.lam_lo[t]), float(bounds.lam_hi[t])))
    m.mu_lo = pyo.Var(m.I, m.T, bounds=lambda _m, i, t: (0.0, float(bounds.mu_lo_max[t, i])))
    m.mu_hi = pyo.Var(m.I, m.T, bounds=lambda _m, i, t: (0.0, float(bounds.mu_hi_max[t, i])))
    m.z_lo = pyo.Var(m.I, m.T, domain=pyo.Binary, doc="1: u at its lower bound")
    m.z_hi = pyo.Var(m.I, m.T, domain=pyo.Binary, doc="1: u at its upper bound")
    m.phi = pyo.Var(m.K, m.T, domain=pyo.NonNegativeReals, doc="≥ P_k² (MW²)")

    add_lower_level_kkt(m, pr)  # (X4–X5)
    # (X6–X8) complementarity by big-M: μ⁻ > 0 only at u = 0, μ⁺ > 0 only at u = Ū
    m.ineq_mu_lo = pyo.Constraint(
        m.I,
        m.T,
        rule=lambda _m, i, t: m.mu_lo[i, t] <= float(bounds.mu_lo_max[t, i]) * m.z_lo[i, t],
    )
    m.ineq_u_lo = pyo.Constraint(
        m.I, m.T, rule=lambda _m, i, t: m.u[i, t] <= float(pr.u_max[t, i]) * (1 - m.z_lo[i, t])
    )
    m.ineq_mu_hi = pyo.Constraint(
        m.I,
        m.T,
        rule=lambda _m, i, t: m.mu_hi[i, t] <= float(bounds.mu_hi_max[t, i]) * m.z_hi[i, t],
    )
    m.ineq_u_hi = pyo.Constraint(
        m.I, m.T, rule=lambda _m, i, t: float(pr.u_max[t, i]) * m.z_hi[i, t] <= m.u[i, t]
    )

    # (X9) tangent cuts: φ_k ≥ 2 g P_k − g², P_k = P⁰_k − Σ_i s_{ik} u_i (LinDistFlow, X2–X3)
    sens, p0, grid = approx.sens, approx.p_branch0, approx.p_grid

    def flow(k: int, t: int) -> Any:
        return float(p0[t, k]) - sum(float(sens[i, k]) * m.u[i, t] for i in m.I if sens[i, k] != 0)

    m.ineq_tangent = pyo.Constraint(
        m.K,
        m.T,
        m.S,
        rule=lambda _m, k, t, s: (
            m.phi[k, t] >= 2 * float(grid[t, k, s]) * flow(k, t) - float(grid[t, k, s]) ** 2
        ),
    )
    dt, w = pr.ctx.dt_h, pr.options.weight
    ldf = approx.lindistflow
    r, v2, qb = ldf.r_ohm, ldf.v0_kv2, approx.q_branch
    m.loss = pyo.Expression(
        m.T, rule=lambda _m, t: sum(r[k] * (m.phi[k, t] + float(qb[t, k]) ** 2) for k in m.K) / v2
    )
    f_loss = dt * sum(m.loss[t] for t in m.T)
    f_price = dt * sum(float(pr.q[t]) * m.lam[t] for t in m.T)
    # (X11) objective (C6) on the approximate model
    m.obj = pyo.Objective(expr=w * f_loss / approx.f_loss0 + (1 - w) * f_price / approx.f_price0)
    # (X12) budget (C7): u² of the original costs by tangent cuts as well
    if pr.options.budget:
        m.psi = pyo.Var(m.I, m.T, domain=pyo.NonNegativeReals, doc="≥ u² (MW²)")
        ug = approx.u_grid
        m.ineq_u_sq = pyo.Constraint(
            m.I,
            m.T,
            m.S,
            rule=lambda _m, i, t, s: (
                m.psi[i, t] >= 2 * float(ug[t, i, s]) * m.u[i, t] - float(ug[t, i, s]) ** 2
            ),
        )
        loss0 = approx.loss0
        m.ineq_budget = pyo.Constraint(
            expr=dt
            * sum(
                float(pr.q[t]) * m.lam[t]
                + pr.loss_price * (float(loss0[t]) - m.loss[t])
                - sum(a[i] * m.psi[i, t] + b[i] * m.u[i, t] for i in m.I)
                for t in m.T
            )
            >= 0
        )
    return m


@dataclass(frozen=True, eq=False)
class ExactSolution:
    """A solved exact model: factors ``[n]`` (α ones in mode "b"), dispatch ``u`` ``[T, n]``,
    clearing price ``lam`` ``[T]`` and the bound multipliers ``mu_lo``, ``mu_hi`` ``[T, n]``."""

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
    """Factors, dispatch, prices and multipliers of a solved MILP/MINLP (X1–X12)."""
    T, n = len(m.T), len(m.I)

    def grid(var: pyo.Var) -> np.ndarray:
        return np.array([[pyo.value(var[i, t]) for i in m.I] for t in m.T]).reshape(T, n)

    alpha, beta = read_factors(m)
    return ExactSolution(
        alpha=alpha,
        beta=beta,
        u=grid(m.u),
        lam=np.array([pyo.value(m.lam[t]) for t in m.T]),
        mu_lo=grid(m.mu_lo),
        mu_hi=grid(m.mu_hi),
    )


def build_dcp_nlp(problem: DCPProblem, eps: float = 1e-7) -> pyo.ConcreteModel:
    """The DCP on the exact AC model of the radial feeder, as an NLP for a local solver (X13–X16).

    Branch-flow (DistFlow) equations in per unit — exact for a radial feeder without shunts
    (Baran & Wu 1989; Farivar & Low 2013, doi:10.1109/TPWRS.2013.2255317) — with branch flows
    ``P_k, Q_k``, squared currents ``ℓ_k`` and squared voltages ``v_j``::

        P_k = p_c − Σ_{i at c} u_i + Σ_{m child of c} P_m + r_k ℓ_k                  (X13)
        Q_k = q_c + Σ_{m child of c} Q_m + x_k ℓ_k
        v_c = v_π − 2 (r_k P_k + x_k Q_k) + (r_k² + x_k²) ℓ_k                         (X14)
        ℓ_k v_π = P_k² + Q_k²                                                        (X15)

    the lower level by its KKT conditions with the bilinear stationarity of mode ``"ab"``, and
    complementarity by the Scholtes relaxation ``μ⁻ u ≤ ε``, ``μ⁺ (Ū − u) ≤ ε`` (X16). Losses
    ``Σ_k r_k ℓ_k`` are the AC losses; objective (C6) and budget (C7) use the AC evaluator's
    normalizations. Nonconvex: a local solver returns a local optimum, started from the AC
    power flow at ``x⁰``.
    """
    pr = problem
    f = pr.ctx.feeder
    m = pyo.ConcreteModel(name="dcp_nlp")
    T, n = len(pr.hours), pr.n
    m.T, m.I = pyo.RangeSet(0, T - 1), pyo.RangeSet(0, n - 1)
    lo, hi = pr.options.bounds
    a, b = pr.a, pr.b
    bus_of = pr.ctx.bus_pos
    # start: the AC power flow at x⁰
    x0 = pr.values(pr.x0[None, :])
    u0 = x0.u_mw[0]
    pf = f.power_flow(pr.p - u0 @ pr.incidence, pr.q_mvar)

    m.alpha = pyo.Var(m.I, bounds=(lo, hi), initialize=1.0)
    m.beta = pyo.Var(m.I, bounds=(lo, hi), initialize=1.0)
    if pr.options.mode == "b":
        for i in m.I:
            m.alpha[i].fix(1.0)
    m.u = pyo.Var(
        m.I,
        m.T,
        bounds=lambda _m, i, t: (0.0, float(pr.u_max[t, i])),
        initialize=lambda _m, i, t: float(u0[t, i]),
    )
    m.lam = pyo.Var(m.T, initialize=lambda _m, t: float(x0.price_eur_per_mwh[0, t]))
    m.mu_lo = pyo.Var(m.I, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.mu_hi = pyo.Var(m.I, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    at_bus = {j: [i for i in range(n) if bus_of[i] == j] for j in range(f.n_bus)}
    add_branch_flow(
        m, f, pr.p, pr.q_mvar, lambda j, t: sum(m.u[i, t] for i in at_bus[j]), start=pf
    )  # (X13–X15)
    add_lower_level_kkt(m, pr)  # (X4–X5), bilinear in mode "ab"
    m.eps = pyo.Param(initialize=eps, mutable=True, doc="Scholtes relaxation")
    m.ineq_comp_lo = pyo.Constraint(
        m.I, m.T, rule=lambda _m, i, t: m.mu_lo[i, t] * m.u[i, t] <= m.eps
    )  # (X16)
    m.ineq_comp_hi = pyo.Constraint(
        m.I, m.T, rule=lambda _m, i, t: m.mu_hi[i, t] * (float(pr.u_max[t, i]) - m.u[i, t]) <= m.eps
    )
    dt, w = pr.ctx.dt_h, pr.options.weight
    f_loss = dt * sum(m.loss_mw[t] for t in m.T)
    f_price = dt * sum(float(pr.q[t]) * m.lam[t] for t in m.T)
    m.obj = pyo.Objective(expr=w * f_loss / pr.f_loss0 + (1 - w) * f_price / pr.f_price0)
    if pr.options.budget:
        m.ineq_budget = pyo.Constraint(
            expr=dt
            * sum(
                float(pr.q[t]) * m.lam[t]
                + pr.loss_price * (float(pr.loss0[t]) - m.loss_mw[t])
                - sum(a[i] * m.u[i, t] ** 2 + b[i] * m.u[i, t] for i in m.I)
                for t in m.T
            )
            >= 0
        )
    return m
