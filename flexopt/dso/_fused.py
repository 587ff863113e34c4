"""One DCP evaluation (C1–C8) as one compiled call that holds no GIL.

:meth:`flexopt.dso.dcp.DCPProblem.evaluate` in numpy is a chain of ~40 small array calls
around four compiled kernels (the clearing, the payments, the grouping of repeated loads, the
feeder sweep); at a few dozen individuals per call the chain costs as much as the kernels
(``benchmarks/clearing_time.py``). Here the same kernels run inside one numba function, with
the steps between them — the factors (C1), the market per individual and hour, each
prosumer's dispatch at its bus, the net loads, the branch losses (F6), the objective (C6) and
the constraint rows (C7, C8) — written as loops that do the numpy form's floating-point
operations in its order: every number is equal bit for bit (``tests/dso/test_dcp_fused.py``),
and a search's result with it.

Releasing the GIL for the whole evaluation is what lets several DSOs' searches run on
threads at once (:mod:`flexopt.executors`).

A search can defer the constraints (:meth:`FusedDCP.objective`, then
:meth:`FusedDCP.violation` for the points it compares): the objective needs each hour's
design point only; the block ends — ten of the eleven markets and power flows per hour at ten
blocks — are then computed a few block ends at a time (the most often violated first) for the
points whose violation matters, and a point stops as soon as its violation so far exceeds
what could still win (W4b of ``models/wca.md``). Equal design hours are computed once
(:func:`_distinct_hours`).

Taken when the numpy form takes the compiled kernels: ``0 < n ≤ MAX_OFFERS`` prosumers that
offer, every prosumer at one bus and no bus with more than two of them, the uniform price
rule, a feeder of constant-power loads without branch shunt conductances; any other DCP runs
the numpy form (:func:`fusable`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from flexopt.dso._fused_rows import Feeder, Markets, block_end, clear_rows, markets
from flexopt.dso._kernels import MAX_OFFERS, _compile, _pairwise, _pairwise_any
from flexopt.dso.budget import saving_slack
from flexopt.errors import PowerFlowError
from flexopt.grid._sweep import _NARROW
from flexopt.optim import Evaluation

__all__ = ["FusedDCP", "fusable"]

#: the feeder sweep's stopping rule, as :meth:`flexopt.grid.feeder.Feeder.power_flow`'s defaults
_TOL_PU, _MAX_ITER = 1e-10, 100


def _evaluate_py(
    X: np.ndarray,
    free: np.ndarray,
    mode_ab: bool,
    a: np.ndarray,
    b: np.ndarray,
    umax: np.ndarray,
    q_design: np.ndarray,
    edges: np.ndarray,
    with_edges: bool,
    rep: np.ndarray,
    feeder: Feeder,
    hours: tuple[np.ndarray, np.ndarray, np.ndarray],
    scalars: tuple[float, float, float, float, float, float],
    rows: tuple[bool, bool],
    F: np.ndarray,
    G: np.ndarray,
) -> tuple[int, Markets]:
    """Objective ``F[P]`` (C6) and constraint rows ``G[P, ·]`` (C7, then C8) of the decision
    vectors ``X[P, d]``; returns the number of power flows that did not converge (then ``F``
    and ``G`` are not written) and the population's markets (for :func:`_violations_py`).

    The per-hour arrays hold the distinct design hours only; hour ``t`` of the problem is
    ``rep[t]`` of them (:func:`_distinct_hours`): a repeated hour's market, dispatch and power
    flows are those of its first, so they are computed once and read for both. ``hours``:
    the day-ahead loss, ``x⁰``'s social cost per block end and its slack (C8)."""
    loss_price, dt, w, f_loss0, f_price0, _ = scalars
    budget, efficiency = rows
    loss_da, social0, slack = hours
    P = X.shape[0]
    T = umax.shape[0]  # distinct hours
    K = edges.shape[1]
    J = K + 1 if with_edges else 1
    mk = markets(X, free, mode_ab, a, b, umax)
    # (C2, C7a) the design quantity, then the block ends, of every market
    E = P * T * J
    market = np.empty(E, dtype=np.int64)
    q = np.empty(E)
    hour = np.empty(E, dtype=np.int64)
    for p in range(P):
        for t in range(T):
            e0 = (p * T + t) * J
            q[e0] = q_design[t]
            for j in range(J):
                if j:
                    q[e0 + j] = edges[t, j - 1]
                market[e0 + j] = p * T + t
                hour[e0 + j] = t
    cleared, settled, loss, failed = clear_rows(mk, market, q, hour, a, b, *feeder)
    if failed:
        return failed, mk
    # (C4–C6) at the design point; (C7, C8) at the block ends, over every hour of the problem
    n_hours = rep.shape[0]
    loss_t = np.empty(n_hours)
    spend_t = np.empty(n_hours)
    n_rows = n_hours * K
    for p in range(P):
        for h in range(n_hours):
            e = (p * T + rep[h]) * J
            loss_t[h] = loss[e]
            spend_t[h] = cleared[e, 0] * cleared[e, 1]
        f_loss = dt * _pairwise(loss_t)
        f_price = dt * _pairwise(spend_t)
        F[p] = w * f_loss / f_loss0 + (1 - w) * f_price / f_price0
        if not with_edges:
            continue
        for h in range(n_hours):
            t = rep[h]
            for k in range(K):
                e = (p * T + t) * J + 1 + k
                g, eff = block_end(
                    e, t, k, cleared, settled, loss, loss_da, social0, slack, loss_price, dt
                )
                r = h * K + k
                if budget:
                    G[p, r] = g
                    r += n_rows
                if efficiency:
                    G[p, r] = eff
    return 0, mk


def _violations_py(
    mk: Markets,
    bound: np.ndarray,
    margin: float,
    a: np.ndarray,
    b: np.ndarray,
    edges: np.ndarray,
    rep: np.ndarray,
    feeder: Feeder,
    hours: tuple[np.ndarray, np.ndarray, np.ndarray],
    scalars: tuple[float, float, float, float, float, float],
    rows: tuple[bool, bool],
    order: np.ndarray,
    hits: np.ndarray,
    V: np.ndarray,
) -> int:
    """Total violation ``V[P]`` (C7, C8) of the points of a population whose markets ``mk``
    :func:`_evaluate_py` returned — exactly, as NumPy sums the rows of :func:`_evaluate_py`'s
    ``G`` — where it is at most ``bound[P]``, ``inf`` where it is not needed (``bound < 0``) or
    where its violation so far exceeds ``bound·(1 + margin)`` (the sums in another order
    differ by rounding): the block ends are computed a few ``k`` at a time (every hour) for
    the points whose partial violation is still within their limit, so that a point found
    infeasible by its first block ends (bound 0) costs those block ends only; a point that
    stays within its limit gets its exact total even when that total is a little above it.
    A stage holds enough block ends for :data:`~flexopt.grid._sweep._NARROW` power flows (the
    sweep's lockstep), all of them where every bound is infinite. The block ends are taken in
    ``order`` (the caller's: those that most often added to a violation so far first, which
    drops an infeasible point sooner); ``hits[k]`` counts the points whose violation block end
    ``k`` added to. The order changes which points are dropped only where a total lies within
    the margin of its limit, and no total (the rows are summed in their own order). NaN for a
    NaN row; returns the number of power flows that did not converge."""
    loss_price, dt = scalars[0], scalars[1]
    budget, efficiency = rows
    loss_da, social0, slack = hours
    P = bound.shape[0]
    T, K = edges.shape  # distinct hours
    n_rows = rep.shape[0] * K
    Gp = np.zeros((P, n_rows * (int(budget) + int(efficiency))))
    part = np.zeros(P)
    limit = np.empty(P)
    alive = np.empty(P, dtype=np.bool_)
    slot = np.empty(P, dtype=np.int64)
    whole = True
    for p in range(P):
        alive[p] = bound[p] >= 0.0
        limit[p] = bound[p] * (1.0 + margin) if bound[p] > 0.0 else bound[p]
        V[p] = np.inf
        if alive[p] and bound[p] < np.inf:
            whole = False
    k0 = 0
    while k0 < K:
        n_alive = 0
        for p in range(P):
            if alive[p]:
                slot[p] = n_alive
                n_alive += 1
        if n_alive == 0:
            break
        width = K if whole else min(max(-(-_NARROW // (n_alive * T)), 1), K - k0)
        n_e = n_alive * T * width
        market = np.empty(n_e, dtype=np.int64)
        q = np.empty(n_e)
        hour = np.empty(n_e, dtype=np.int64)
        for p in range(P):
            for t in range(T if alive[p] else 0):
                for j in range(width):
                    e = (slot[p] * T + t) * width + j
                    market[e] = p * T + t
                    q[e] = edges[t, order[k0 + j]]
                    hour[e] = t
        cleared, settled, loss, failed = clear_rows(mk, market, q, hour, a, b, *feeder)
        if failed:
            return failed
        for p in range(P):
            if not alive[p]:
                continue
            for j in range(width):
                k = order[k0 + j]
                before = part[p]
                for h in range(rep.shape[0]):
                    t = rep[h]
                    g, eff = block_end(
                        (slot[p] * T + t) * width + j,
                        t,
                        k,
                        cleared,
                        settled,
                        loss,
                        loss_da,
                        social0,
                        slack,
                        loss_price,
                        dt,
                    )
                    r = h * K + k
                    if budget:
                        Gp[p, r] = g
                        part[p] += g if g > 0.0 or g != g else 0.0
                        r += n_rows
                    if efficiency:
                        Gp[p, r] = eff
                        part[p] += eff if eff > 0.0 or eff != eff else 0.0
                if part[p] != before:
                    hits[k] += 1
            if not part[p] <= limit[p]:  # beyond its limit, or NaN (kept: the search raises)
                alive[p] = False
                V[p] = part[p] if part[p] != part[p] else np.inf
        k0 += width
    clipped = np.empty(Gp.shape[1])
    for p in range(P):
        if alive[p]:
            for c in range(Gp.shape[1]):
                g = Gp[p, c]
                clipped[c] = g if g > 0.0 or g != g else 0.0  # np.clip(G, 0, None)
            V[p] = _pairwise_any(clipped)
    return 0


#: a tuple of arguments as the wrapper keeps them, then the outputs
_evaluate: Callable[..., tuple[int, Markets]] = _compile(_evaluate_py)
_violations: Callable[..., int] = _compile(_violations_py)


def _floats(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def _ints(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.int64)


def _same_hour(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``[T]``: for each hour, the first hour with the same day-ahead loads (their bytes)."""
    rows = np.ascontiguousarray(np.c_[p, q], dtype=np.float64).view(np.int64)
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return np.ascontiguousarray(first[inverse.ravel()], dtype=np.float64)


def _distinct_hours(*per_hour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first of each group of design hours whose every per-hour figure (``[T, ·]`` or
    ``[T]``; their bytes) is equal, in hour order, and ``rep[T]``: each hour's group.

    Equal hours — a flat stretch of the load profile with the same requirement — have the
    same markets, dispatches and power flows for every decision vector."""
    rows = np.concatenate(
        [np.asarray(x, dtype=np.float64).reshape(len(x), -1) for x in per_hour], 1
    )
    _, first, inverse = np.unique(
        np.ascontiguousarray(rows).view(np.int64), axis=0, return_index=True, return_inverse=True
    )
    keep = np.sort(first)  # the groups in the order of their first hour
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return keep, np.ascontiguousarray(rank[inverse.ravel()], dtype=np.int64)


def fusable(problem: Any) -> bool:
    """Whether :class:`FusedDCP` evaluates ``problem`` (a :class:`~flexopt.dso.dcp.DCPProblem`,
    which imports this module): a problem with factors to search whose numpy form runs the
    compiled clearing, payments and sweep (module docstring)."""
    feeder = problem.ctx.feeder
    return (
        0 < problem.n <= MAX_OFFERS
        and problem.has_decisions  # the others are evaluated at x⁰ once, if at all
        and not problem._injection.product
        and problem.options.price == "uniform"
        and feeder._zip_data is None
        and feeder.g_end_pu is None
    )


class FusedDCP:
    """:meth:`DCPProblem.evaluate <flexopt.dso.dcp.DCPProblem.evaluate>` of a
    :func:`fusable` problem in one compiled call: ``(F[P, 1], G[P, ·] or None)``."""

    def __init__(self, problem: Any) -> None:
        pr, f, o = problem, problem.ctx.feeder, problem.options
        y = f.y_shunt_pu.copy()
        y[f.root] = 0.0
        parent, child = (np.ascontiguousarray(x, dtype=np.int64) for x in (f.parent, f.child))
        net = (float(f.base_mva), y, parent, child, f.z_branch_pu, int(f.root))
        # the first prosumer at each bus written, the others added in their order
        plan = pr._injection
        rest = [np.concatenate(x[1:]) if len(x) > 1 else np.zeros(0) for x in (plan.bus, plan.who)]
        social0 = _floats(pr.social0_eur_per_h)
        slack = _floats(saving_slack(social0))
        hours = (pr.u_max, pr.q, pr.edges_mw, pr.p, pr.q_mvar, pr.loss_da, social0, slack)
        keep, rep = _distinct_hours(*hours)
        u_max, q, edges, p, q_mvar, loss_da, social0, slack = (_floats(x[keep]) for x in hours)
        scale = (float(pr.f_loss0), float(pr.f_price0), float(f.base_mva))
        scalars = (pr.loss_price, float(pr.ctx.dt_h), float(o.weight), *scale)
        self.name, self.n_constr = f.name, int(pr.n_constr)
        offers = (_floats(pr.a), _floats(pr.b))
        feeder = (
            p,
            q_mvar,
            tuple(_ints(x) for x in (plan.bus[0], plan.who[0], *rest)),
            np.sqrt(np.arange(2.0, pr.n + 3.0)),  # any fixed numbers group the rows
            _same_hour(p, q_mvar),
            (*net, complex(f.v_root_pu), _TOL_PU, _MAX_ITER),
            _floats(f.r_pu),
        )
        rows = (bool(o.budget), bool(o.efficiency))
        tail = (rep, feeder, (loss_da, social0, slack), scalars, rows)
        free = np.ascontiguousarray(pr.free, dtype=np.int64)
        with_edges = self.n_constr > 0
        self._args: tuple[Any, ...] = (free, o.mode == "ab", *offers, u_max, q, edges, with_edges)
        self._args += tail
        # with_edges off: the design point only
        self._objective_args = (*self._args[:7], False, *tail)
        self._violation_args = (*offers, edges, *tail)
        # a partial sum in stage order exceeds the pairwise total by at most ~n_constr ulp
        self._margin = 1e-12 + self.n_constr * float(np.finfo(float).eps)
        # how often each block end has added to a violation: the most violated come first
        self._hits = np.zeros(edges.shape[1], dtype=np.int64)

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        F, G, _ = self._run(X, self._args)
        return F, G

    def objective(self, X: np.ndarray) -> tuple[np.ndarray, Markets]:
        """``F[P, 1]`` alone — the design point's markets and power flows, not the block ends'
        (bit for bit the ``F`` of a whole evaluation) — and the population's markets, for
        :meth:`violation`."""
        F, _, mk = self._run(X, self._objective_args)
        return F, mk

    def deferred(self, X: np.ndarray) -> Evaluation:
        """The objective of ``X[P, d]`` with (C7, C8) deferred to :meth:`violation`
        (:meth:`flexopt.optim.Problem.evaluate_deferred`)."""
        F, mk = self.objective(X)
        return Evaluation(F, deferred=partial(self.violation, mk))

    def violation(self, mk: Markets, bound: np.ndarray) -> np.ndarray:
        """Total violation (C7, C8) of each point of the population whose markets are ``mk``
        (:meth:`objective`) where it is at most ``bound``, ``inf`` elsewhere
        (:meth:`flexopt.optim.Evaluation.violation_within`): the block ends a few at a time,
        those most often violated so far in this problem's evaluations first, a point dropped
        once its violation so far exceeds its bound (a relative ``1e-12 + n_constr ε`` above
        it: the sums in another order differ by rounding)."""
        bound = np.ascontiguousarray(bound, dtype=np.float64)
        V = np.empty(len(bound))
        order = np.argsort(-self._hits, kind="stable")
        self._check(
            _violations(mk, bound, self._margin, *self._violation_args, order, self._hits, V)
        )
        return V

    def _run(
        self, X: np.ndarray, args: tuple[Any, ...]
    ) -> tuple[np.ndarray, np.ndarray | None, Markets]:
        X = np.ascontiguousarray(X, dtype=np.float64)
        F = np.empty(len(X))
        G = np.empty((len(X), self.n_constr))
        bad, mk = _evaluate(X, *args, F, G)
        self._check(bad)
        return F[:, None], (G if self.n_constr else None), mk

    def _check(self, bad: int) -> None:
        if bad:
            raise PowerFlowError(
                f"feeder '{self.name}': power flow did not converge in {_MAX_ITER} sweeps "
                f"({bad} cases); the load is probably beyond the feeder's loadability"
            )
