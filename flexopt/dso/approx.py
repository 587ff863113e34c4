"""The approximate model of the DSO coefficient problem that the exact formulations solve
(``models/dcp_exact.md`` X2–X3, X9–X12), as a batched numpy evaluator.

Feeder losses by LinDistFlow, ``Σ_k r_k (P_k² + Q_k²) / V₀²``, with each ``P_k²`` replaced by
its tangent-cut outer approximation (X9), and the ``u²`` of the original costs likewise (X10);
everything else — the clearing, the objective (C6), the settlement-consistent budget (C7)
and the efficiency (C8) at every block boundary — exactly as in
:class:`~flexopt.dso.dcp.DCPProblem`. Any method's
factors (WCA's included) can be scored on the very model the MILP/MINLP optimizes, so that
"MILP bound ≤ heuristic value" is a test that can fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flexopt.dso.budget import saving_slack
from flexopt.dso.clearing import Clearing, clear
from flexopt.dso.dcp import DCPProblem, objective_scale
from flexopt.grid.lindistflow import LinDistFlow
from flexopt.optim import Evaluation, Problem

__all__ = ["ApproxModel", "ExactBounds", "exact_bounds", "factor_boxes"]


def factor_boxes(problem: DCPProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-prosumer boxes ``(α̲, α̅, β̲, β̅)`` ``[n]``: the factor box for the screened
    prosumers (α only in mode "ab"), ``[1, 1]`` for every other one (X1)."""
    lo, hi = problem.options.bounds
    free = np.zeros(problem.n, dtype=bool)
    free[problem.free] = True
    b_lo, b_hi = np.where(free, lo, 1.0), np.where(free, hi, 1.0)
    if problem.options.mode == "ab":
        return b_lo, b_hi, b_lo.copy(), b_hi.copy()
    return np.ones(problem.n), np.ones(problem.n), b_lo, b_hi


class ApproxModel(Problem):
    """The DCP on LinDistFlow losses with tangent-cut outer approximations (X9–X10).

    Parameters
    ----------
    problem : DCPProblem
        Mode ``"b"`` or ``"ab"``; the approximation concerns the losses and the ``u²`` of the
        original costs only.
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
        self.u_grid = np.linspace(0.0, umax, segments, axis=-1)  # [T, n, S] for u² (X10)
        self.loss_da = self._losses(np.zeros((1, *umax.shape)), self.p_grid)[0]  # [T]
        x0 = problem.x0[None, :]
        f_loss0, f_price0, _, _ = self._parts(x0)
        self.f_loss0 = objective_scale(float(f_loss0[0]))
        self.f_price0 = objective_scale(float(f_price0[0]))
        self.social0 = self._edges(x0)[3][0]  # [T, K] (C8) of the unmodified offers
        self.lower, self.upper = problem.lower, problem.upper
        self.n_obj, self.n_constr = 1, problem.n_constr

    @staticmethod
    def tangent_max(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """``max_s (2 g_s x − g_s²)`` — the outer approximation of ``x²`` (X9)."""
        tangent: np.ndarray = np.max(2 * grid * x[..., None] - grid**2, axis=-1)
        return tangent

    def _losses(self, u: np.ndarray, p_grid: np.ndarray) -> np.ndarray:
        """Approximate loss ``[..., T(, J)]`` of dispatch ``u[..., T(, J), n]`` (X3, X9)."""
        extra = u.ndim - 3  # 1 for a stack of quantities per hour
        p0 = self.p_branch0.reshape(self.p_branch0.shape[:1] + (1,) * extra + (-1,))
        q = self.q_branch.reshape(p0.shape)
        p = p0 - u @ self.sens
        return self.lindistflow.loss_mw(self.tangent_max(p, p_grid), q**2)

    def losses_mw(self, u: np.ndarray) -> np.ndarray:
        """Approximate feeder loss ``[P, T]`` for dispatch ``u[P, T, n]`` (X3, X9)."""
        return self._losses(u, self.p_grid)

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
        obj: np.ndarray = w * f_loss / self.f_loss0 + (1 - w) * f_price / self.f_price0
        return obj

    def _edges(self, X: np.ndarray) -> tuple[Clearing, np.ndarray, np.ndarray, np.ndarray]:
        """At every block's upper end ``[P, T, K]``: the clearing, the loss change's value
        ``π_loss (P^loss_DA − P^loss)``, the original costs ``a_i u_i² + b_i u_i`` ``[..., n]``
        and the social cost ``S`` (C8), squares by their tangent cuts (X9–X10)."""
        X = np.atleast_2d(X)
        pr = self.problem
        alpha, beta = pr.factors(X)
        cl = clear(
            (alpha * pr.a)[:, None, None, :],
            (beta * pr.b)[:, None, None, :],
            pr.u_max[None, :, None, :],
            pr.edges_mw[None],
        )  # [P, T, K(, n)]
        u = cl.u_mw
        saved = pr.loss_price * (self.loss_da[:, None] - self._losses(u, self.p_grid[:, None]))
        cost = pr.a * self.tangent_max(u, self.u_grid[None, :, None]) + pr.b * u
        return cl, saved, cost, cost.sum(-1) - saved

    def boundary_balance(self, X: np.ndarray) -> np.ndarray:
        """(C7) on the approximate model, ``[P, T, K]`` €/h per copy: at each block's upper
        end, ``λ' Q + π_loss (P^loss_DA − P^loss) − Σ_i max(λ' u_i, a_i u_i² + b_i u_i)``
        with the squares by their tangent cuts (X10, X12)."""
        cl, saved, cost, _ = self._edges(X)
        u = cl.u_mw
        pay = np.where(u > 1e-12, np.maximum(cl.price[..., None] * u, cost), 0.0)
        g: np.ndarray = cl.price * cl.served_mw + saved - pay.sum(-1)
        return g

    def boundary_saving(self, X: np.ndarray) -> np.ndarray:
        """(C8) on the approximate model, ``[P, T, K]`` €/h per copy: the unmodified offers'
        social cost at each block's upper end less these factors' (X12a)."""
        e: np.ndarray = self.social0 - self._edges(X)[3]
        return e

    def budget(self, X: np.ndarray) -> np.ndarray:
        """The worst-case day balance ``Δt Σ_t min_k g_{t,k}`` on the approximate model, per
        copy ``[P]``."""
        b: np.ndarray = self.problem.ctx.dt_h * self.boundary_balance(X).min(-1).sum(-1)
        return b

    def evaluate(self, X: np.ndarray) -> Evaluation:
        P, opts, dt = len(np.atleast_2d(X)), self.problem.options, self.problem.ctx.dt_h
        rows = []
        if opts.budget:
            rows.append(-dt * self.boundary_balance(X).reshape(P, -1))
        if opts.efficiency:
            tol = saving_slack(self.social0)
            rows.append(-dt * (self.boundary_saving(X) + tol).reshape(P, -1))
        G = np.concatenate(rows, axis=-1) if rows else None
        return Evaluation(self.objective(X)[:, None], G)


@dataclass(frozen=True, eq=False)
class ExactBounds:
    """Bounds of one lower level's variables at given quantities (X6–X8): price ``[T]``,
    dispatch ``[T, n]`` and the big-M constants of its multipliers ``[T, n]``."""

    lam_lo: np.ndarray
    lam_hi: np.ndarray
    u_lo: np.ndarray
    u_hi: np.ndarray
    mu_lo_max: np.ndarray
    mu_hi_max: np.ndarray


def exact_bounds(problem: DCPProblem, q_mw: np.ndarray | None = None) -> ExactBounds:
    """Bounds of the lower level at quantities ``q_mw`` ``[T]`` (the design point by default)
    over every factor the boxes allow (X6–X8).

    The clearing price at ``Q`` does not decrease when any offer's ``a'`` or ``b'`` rises, and
    a prosumer's dispatch falls with its own offer and rises with the others': the price lies
    between the clearings with every factor at its lower and at its upper end (X6), and
    ``u_i`` between the clearings with ``i`` dearest and the others cheapest, and the reverse.
    With ``u_i = 0`` stationarity gives ``μ⁻_i = β_i b_i − λ ≤ β̅_i b_i − λ_lo`` (X7); with
    ``u_i = Ū_i``, ``μ⁺_i = λ − 2 α_i a_i Ū_i − β_i b_i ≤ λ_hi − 2 α̲_i a_i Ū_i − β̲_i b_i`` (X8).
    The boxes are those of :func:`factor_boxes` (``[1, 1]`` for prosumers not screened).
    Tighter than one bound for every quantity, which keeps the MILP's relaxations of the
    budget (X12) close.
    """
    q = problem.q if q_mw is None else np.asarray(q_mw, dtype=float)
    a_lo, a_hi, b_lo, b_hi = factor_boxes(problem)
    a, b, umax = problem.a, problem.b, problem.u_max  # [n], [n], [T, n]
    n, T = problem.n, len(q)
    if n == 0:
        z = np.zeros((T, 0))
        return ExactBounds(np.zeros(T), np.zeros(T), z, z, z, z)
    cheap = clear(a_lo * a, b_lo * b, umax, q)
    dear = clear(a_hi * a, b_hi * b, umax, q)
    # prosumer i dearest (cheapest), every other one cheapest (dearest): [n, T, n]
    eye = np.eye(n, dtype=bool)
    own_dear = clear(
        np.where(eye, a_hi * a, a_lo * a)[:, None, :],
        np.where(eye, b_hi * b, b_lo * b)[:, None, :],
        umax[None],
        q[None],
    )
    own_cheap = clear(
        np.where(eye, a_lo * a, a_hi * a)[:, None, :],
        np.where(eye, b_lo * b, b_hi * b)[:, None, :],
        umax[None],
        q[None],
    )
    idx = np.arange(n)
    u_lo = own_dear.u_mw[idx, :, idx].T  # [T, n]
    u_hi = own_cheap.u_mw[idx, :, idx].T
    # a little slack against rounding: a bound the exact point sits on must not cut it off
    pad = 1e-7 * np.maximum(1.0, np.abs(dear.price))
    lam_lo, lam_hi = cheap.price - pad, dear.price + pad
    u_lo = np.clip(np.minimum(u_lo, u_hi) - 1e-9, 0.0, None)
    u_hi = np.minimum(u_hi + 1e-9, umax)
    mu_lo = np.maximum(b_hi * b[None, :] - lam_lo[:, None], 0.0)
    mu_hi = np.maximum(lam_hi[:, None] - 2 * a_lo * a * umax - b_lo * b[None, :], 0.0)
    return ExactBounds(lam_lo, lam_hi, u_lo, u_hi, mu_lo, mu_hi)
