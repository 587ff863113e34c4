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

Taken when the numpy form takes the compiled kernels: ``0 < n ≤ MAX_OFFERS`` prosumers that
offer, every prosumer at one bus and no bus with more than two of them, the uniform price
rule, a feeder of constant-power loads without branch shunt conductances; any other DCP runs
the numpy form (:func:`fusable`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from flexopt.dso._kernels import (
    MAX_OFFERS,
    _compile,
    _dispatch,
    _first_equal,
    _pairwise,
    _settle,
    _sorted,
)
from flexopt.dso.budget import saving_slack
from flexopt.errors import PowerFlowError
from flexopt.grid._sweep import _kernel_serial

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
    p_load: np.ndarray,
    q_load: np.ndarray,
    loss_da: np.ndarray,
    plan: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    key: np.ndarray,
    same_hour: np.ndarray,
    net: tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, complex, float, int],
    r_pu: np.ndarray,
    scalars: tuple[float, float, float, float, float, float],
    rows: tuple[bool, bool],
    social0: np.ndarray,
    slack: np.ndarray,
    F: np.ndarray,
    G: np.ndarray,
) -> int:
    """Objective ``F[P]`` (C6) and constraint rows ``G[P, ·]`` (C7, then C8) of the decision
    vectors ``X[P, d]``; returns the number of power flows that did not converge (then ``F``
    and ``G`` are not written)."""
    loss_price, dt, w, f_loss0, f_price0, base_mva = scalars
    budget, efficiency = rows
    bus1, first, bus2, second = plan
    P = X.shape[0]
    n = a.shape[0]
    T = umax.shape[0]
    K = edges.shape[1]
    J = K + 1 if with_edges else 1
    m = free.shape[0]
    n_bus = p_load.shape[1]
    n_branch = r_pu.shape[0]
    # (C1) one market per individual and hour: modified offers, the hour's capacity
    am = np.empty((P * T, n))
    bm = np.empty((P * T, n))
    um = np.empty((P * T, n))
    alpha = np.ones(n)
    beta = np.ones(n)
    for p in range(P):
        for k in range(m):
            if mode_ab:
                alpha[free[k]] = X[p, k]
                beta[free[k]] = X[p, m + k]
            else:
                beta[free[k]] = X[p, k]
        for t in range(T):
            for i in range(n):
                am[p * T + t, i] = alpha[i] * a[i]
                bm[p * T + t, i] = beta[i] * b[i]
                um[p * T + t, i] = umax[t, i]
    # (C2, C7a) the design quantity, then the block ends, of every market
    E = P * T * J
    market = np.empty(E, dtype=np.int64)
    q = np.empty(E)
    for p in range(P):
        for t in range(T):
            e0 = (p * T + t) * J
            q[e0] = q_design[t]
            market[e0] = p * T + t
            for j in range(1, J):
                q[e0 + j] = edges[t, j - 1]
                market[e0 + j] = p * T + t
    bp = np.empty((P * T, 2 * n))
    s_plus = np.empty_like(bp)
    s_minus = np.empty_like(bp)
    info = np.empty((P * T, 3))
    _sorted(am, bm, um, bp, s_plus, s_minus, info, T)
    u = np.empty((E, n))
    cleared = np.empty((E, 3))  # price, served, cost
    _dispatch(am, bm, um, bp, s_plus, s_minus, info, market, q, u, cleared)
    price = np.ascontiguousarray(cleared[:, 0])
    settled = np.empty((E, 2))  # payment, original cost
    _settle(u, price, a, b, settled)
    # each distinct load solved once: rows with the same dispatch (its bytes) in hours of the
    # same day-ahead load have the same net load (flexopt.dso.budget.feeder_loss groups the
    # net loads themselves; equal loads from different dispatches are solved apart, alike)
    hour = np.empty((E, 1))
    for e in range(E):
        hour[e, 0] = same_hour[(e // J) % T]
    same = _first_equal(key, u, hour, u.view(np.int64), hour.view(np.int64))
    at = np.empty(E, dtype=np.int64)
    n_solve = 0
    for e in range(E):
        if same[e] == e:
            at[e] = n_solve
            n_solve += 1
    # (C3) net loads: the day-ahead load less each prosumer's dispatch at its bus
    p_u = np.empty((n_solve, n_bus))
    q_u = np.empty((n_solve, n_bus))
    inj = np.zeros(n_bus)
    for e in range(E):
        if same[e] != e:
            continue
        t = (e // J) % T
        inj[:] = 0.0
        for k in range(bus1.shape[0]):
            inj[bus1[k]] = u[e, first[k]]
        for k in range(bus2.shape[0]):
            inj[bus2[k]] += u[e, second[k]]
        s = at[e]
        for j in range(n_bus):
            p_u[s, j] = p_load[t, j] - inj[j]
            q_u[s, j] = q_load[t, j]
    v = np.empty((n_solve, 0), dtype=np.complex128)  # the branch currents only
    i_bus = np.empty_like(v)
    i_branch = np.empty((n_solve, n_branch), dtype=np.complex128)
    iters = np.empty(n_solve, dtype=np.int64)
    _kernel_serial(p_u, q_u, net, (v, i_bus, i_branch, iters))
    failed = 0
    for s in range(n_solve):
        if iters[s] < 0:
            failed += 1
    if failed:
        return failed
    # (F6) each power flow's loss: r_k |I_k|² S_base summed over the branches
    loss_u = np.empty(n_solve)
    branch = np.empty(n_branch)
    for s in range(n_solve):
        for k in range(n_branch):
            c = i_branch[s, k]
            branch[k] = r_pu[k] * (c.real * c.real + c.imag * c.imag) * base_mva  # as abs2
        loss_u[s] = _pairwise(branch)
    # (C4–C6) at the design point; (C7, C8) at the block ends
    loss_t = np.empty(T)
    spend_t = np.empty(T)
    n_rows = T * K
    for p in range(P):
        for t in range(T):
            e = (p * T + t) * J
            loss_t[t] = loss_u[at[same[e]]]
            spend_t[t] = cleared[e, 0] * cleared[e, 1]
        f_loss = dt * _pairwise(loss_t)
        f_price = dt * _pairwise(spend_t)
        F[p] = w * f_loss / f_loss0 + (1 - w) * f_price / f_price0
        if not with_edges:
            continue
        for t in range(T):
            for k in range(K):
                e = (p * T + t) * J + 1 + k
                saving = loss_da[t] - loss_u[at[same[e]]]
                r = t * K + k
                if budget:
                    net_cost = settled[e, 0] - loss_price * saving
                    G[p, r] = -dt * (cleared[e, 0] * cleared[e, 1] - net_cost)
                    r += n_rows
                if efficiency:
                    social = settled[e, 1] - loss_price * saving
                    G[p, r] = -dt * (social0[t, k] - social + slack[t, k])
    return 0


#: a tuple of arguments as the wrapper keeps them
_evaluate: Callable[..., int] = _compile(_evaluate_py)


def _floats(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def _ints(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.int64)


def _same_hour(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``[T]``: for each hour, the first hour with the same day-ahead loads (their bytes)."""
    rows = np.ascontiguousarray(np.c_[p, q], dtype=np.float64).view(np.int64)
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return np.ascontiguousarray(first[inverse.ravel()], dtype=np.float64)


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
        scale = (float(pr.f_loss0), float(pr.f_price0), float(f.base_mva))
        scalars = (pr.loss_price, float(pr.ctx.dt_h), float(o.weight), *scale)
        self.name, self.n_constr = f.name, int(pr.n_constr)
        self._args: tuple[Any, ...] = (
            np.ascontiguousarray(pr.free, dtype=np.int64),
            o.mode == "ab",
            *(_floats(x) for x in (pr.a, pr.b, pr.u_max, pr.q, pr.edges_mw)),
            self.n_constr > 0,
            *(_floats(x) for x in (pr.p, pr.q_mvar, pr.loss_da)),
            tuple(_ints(x) for x in (plan.bus[0], plan.who[0], *rest)),
            np.sqrt(np.arange(2.0, pr.n + 3.0)),  # any fixed numbers group the rows
            _same_hour(pr.p, pr.q_mvar),
            (*net, complex(f.v_root_pu), _TOL_PU, _MAX_ITER),
            _floats(f.r_pu),
            scalars,
            (bool(o.budget), bool(o.efficiency)),
            social0,
            _floats(saving_slack(social0)),
        )

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        X = np.ascontiguousarray(X, dtype=np.float64)
        F = np.empty(len(X))
        G = np.empty((len(X), self.n_constr))
        bad = _evaluate(X, *self._args, F, G)
        if bad:
            raise PowerFlowError(
                f"feeder '{self.name}': power flow did not converge in {_MAX_ITER} sweeps "
                f"({bad} cases); the load is probably beyond the feeder's loadability"
            )
        return F[:, None], (G if self.n_constr else None)
