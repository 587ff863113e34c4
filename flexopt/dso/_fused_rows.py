"""The steps of a compiled DCP evaluation (:mod:`flexopt.dso._fused`): the markets of a
population (C1), a list of quantities cleared in them with the feeder's loss at each (C2,
C7a, C3, F6), and the constraint rows of one block end (C7, C8) — shared by the whole
evaluation and by the one that computes the block ends one at a time for the points a search
compares. Each does the numpy form's floating-point operations in its order
(``tests/dso/test_dcp_fused.py``)."""

from __future__ import annotations

import numpy as np

from flexopt.dso._kernels import _compile, _dispatch, _first_equal, _pairwise, _settle, _sorted
from flexopt.grid._sweep import _kernel_serial

__all__ = ["Feeder", "Markets", "block_end", "clear_rows", "markets"]

#: a population's markets ``[P·T, ·]``: offers ``a``, ``b``, capacities, then the sorted
#: breakpoints, ``S`` above and below each, and ``(capacity, rising, steps)`` (``_sorted``)
Markets = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: the feeder as :func:`_clear_rows_py` takes it: day-ahead loads ``p``, ``q`` per distinct hour,
#: the prosumers' injection plan, the grouping key, each hour's first equal-load hour, the
#: sweep's network and stopping rule, branch resistances
Feeder = tuple[
    np.ndarray,
    np.ndarray,
    tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    np.ndarray,
    np.ndarray,
    tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, complex, float, int],
    np.ndarray,
]


def _markets_py(
    X: np.ndarray, free: np.ndarray, mode_ab: bool, a: np.ndarray, b: np.ndarray, umax: np.ndarray
) -> Markets:
    """(C1) one market per individual and (distinct) hour, ``[P·T, n]``: the modified offers
    and the hour's capacity, then their sorted breakpoints (:func:`_sorted`)."""
    P = X.shape[0]
    n = a.shape[0]
    T = umax.shape[0]
    m = free.shape[0]
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
    bp = np.empty((P * T, 2 * n))
    s_plus = np.empty_like(bp)
    s_minus = np.empty_like(bp)
    info = np.empty((P * T, 3))
    _sorted(am, bm, um, bp, s_plus, s_minus, info, T)
    return am, bm, um, bp, s_plus, s_minus, info


def _clear_rows_py(
    mk: Markets,
    market: np.ndarray,
    q: np.ndarray,
    hour: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    p_load: np.ndarray,
    q_load: np.ndarray,
    plan: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    key: np.ndarray,
    same_hour: np.ndarray,
    net: tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, complex, float, int],
    r_pu: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(C2, C7a, C3, F6) quantity ``q[e]`` cleared in market ``market[e]`` of hour ``hour[e]``:
    ``(price, served, cost)`` ``[E, 3]``, ``(payment, original cost)`` ``[E, 2]``, the
    feeder's loss ``[E]``, and the number of power flows that did not converge."""
    am, bm, um, bp, s_plus, s_minus, info = mk
    bus1, first, bus2, second = plan
    E = q.shape[0]
    n_bus = p_load.shape[1]
    n_branch = r_pu.shape[0]
    u = np.empty((E, a.shape[0]))
    cleared = np.empty((E, 3))
    _dispatch(am, bm, um, bp, s_plus, s_minus, info, market, q, u, cleared)
    price = np.ascontiguousarray(cleared[:, 0])
    settled = np.empty((E, 2))
    _settle(u, price, a, b, settled)
    # each distinct load solved once: rows with the same dispatch (its bytes) in hours of the
    # same day-ahead load have the same net load (flexopt.dso.budget.feeder_loss groups the
    # net loads themselves; equal loads from different dispatches are solved apart, alike)
    same_load = np.empty((E, 1))
    for e in range(E):
        same_load[e, 0] = same_hour[hour[e]]
    same = _first_equal(key, u, same_load, u.view(np.int64), same_load.view(np.int64))
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
        t = hour[e]
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
    loss = np.empty(E)
    if failed:
        return cleared, settled, loss, failed
    # (F6) each power flow's loss: r_k |I_k|² S_base summed over the branches
    loss_u = np.empty(n_solve)
    branch = np.empty(n_branch)
    base_mva = net[0]
    for s in range(n_solve):
        for k in range(n_branch):
            c = i_branch[s, k]
            branch[k] = r_pu[k] * (c.real * c.real + c.imag * c.imag) * base_mva  # as abs2
        loss_u[s] = _pairwise(branch)
    for e in range(E):
        loss[e] = loss_u[at[same[e]]]
    return cleared, settled, loss, 0


def _block_end_py(
    e: int,
    t: int,
    k: int,
    cleared: np.ndarray,
    settled: np.ndarray,
    loss: np.ndarray,
    loss_da: np.ndarray,
    social0: np.ndarray,
    slack: np.ndarray,
    loss_price: float,
    dt: float,
) -> tuple[float, float]:
    """The budget (C7) and efficiency (C8) rows of row ``e``, block end ``k`` of hour ``t``."""
    saving = loss_da[t] - loss[e]
    net_cost = settled[e, 0] - loss_price * saving
    social = settled[e, 1] - loss_price * saving
    budget = -dt * (cleared[e, 0] * cleared[e, 1] - net_cost)
    return budget, -dt * (social0[t, k] - social + slack[t, k])


markets = _compile(_markets_py)
clear_rows = _compile(_clear_rows_py)
block_end = _compile(_block_end_py)
