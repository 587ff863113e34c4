"""Compiled bookkeeping of a WCA iteration (numba), ``models/wca.md`` (W3)–(W5).

The kernels do what :class:`flexopt.optim.WCA`'s numpy engine does with ~35 small numpy calls
per iteration, on the same arrays and with the random numbers the engine has already drawn,
so both engines give the same results bit for bit (``tests/optim/test_engines.py``): the same
floating-point operations in the same order, comparisons with the same ties (the first of
equals wins, as ``argmin`` and the stable ``lexsort`` of :func:`~flexopt.optim.deb_order`).
Only the evaporation distance is summed in another order than ``einsum``; a distance within
rounding of ``d_max`` is handed back to the numpy code to decide (:func:`evaporation`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

__all__ = [
    "AMBIGUOUS",
    "NAN_OBJECTIVE",
    "evaporation",
    "flow_rows",
    "front_ranks",
    "rain_rows",
    "tell_round",
]

#: :func:`tell_round`'s answer when a value is NaN (the caller raises).
NAN_OBJECTIVE = -1
#: :func:`evaporation`'s answer when a distance lies within rounding of ``d_max``.
AMBIGUOUS = -2
#: relative margin around ``d_max²`` within which :func:`evaporation` defers to numpy: far
#: wider than the rounding of a sum of squares (a few ulp per term), far narrower than any gap
#: that matters
_MARGIN = 1e-9


def _compile(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` compiled with numba, cached on disk where a writable cache location exists."""
    try:
        kernel: Callable[..., Any] = numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # "cannot cache function …: no locator available": nothing writable
        kernel = numba.njit(cache=False, nogil=True)(fn)
    return kernel


def _flow_rows(
    X: np.ndarray,
    box: np.ndarray,
    draws: np.ndarray,
    c: float,
    start: int,
    stop: int,
    plan: np.ndarray,
) -> None:
    """Rows ``start:stop`` of ``X`` flow in place (W3):
    ``X_r ← clip(X_r + (X_t − X_r) · (C · u), lower, upper)`` with ``box = [lower, upper]``,
    ``t = plan[0, r]`` and row ``r``'s factors ``u = draws[plan[1, r] + j · plan[2, r]]``
    (``plan[2, r]`` 0: one factor for the row, the sea's streams; 1: one per dimension). The
    numpy engine's operations, in its order."""
    d = X.shape[1]
    lower = box[0]
    upper = box[1]
    for r in range(start, stop):
        t = plan[0, r]
        off = plan[1, r]
        if plan[2, r] == 0:  # one factor for the row: hoisted, so the loop vectorizes
            u = draws[off] * c
            for j in range(d):
                x = X[r, j]
                v = x + (X[t, j] - x) * u
                v = lower[j] if v < lower[j] else v
                X[r, j] = upper[j] if v > upper[j] else v
        else:
            for j in range(d):
                x = X[r, j]
                v = x + (X[t, j] - x) * (draws[off + j] * c)
                v = lower[j] if v < lower[j] else v
                X[r, j] = upper[j] if v > upper[j] else v


flow_rows = _compile(_flow_rows)


def _rain_rows(X: np.ndarray, box: np.ndarray, u: np.ndarray, first: int) -> None:
    """Rows ``first…`` of ``X`` re-drawn uniformly in the box (W4 iii):
    ``X_r ← lower + u_r ⊙ (upper − lower)``, the numpy engine's operations."""
    for i in range(u.shape[0]):
        for j in range(X.shape[1]):
            X[first + i, j] = box[0, j] + u[i, j] * (box[1, j] - box[0, j])


rain_rows = _compile(_rain_rows)


def _better(f1: float, v1: float, f2: float, v2: float) -> bool:
    """Deb's rules (W5): feasible beats infeasible, feasible by objective, infeasible by
    violation (:func:`~flexopt.optim.deb_better`)."""
    if v1 <= 0.0 and v2 <= 0.0:
        return f1 < f2
    return v1 < v2


better = _compile(_better)


def _challenge(
    X: np.ndarray, F: np.ndarray, V: np.ndarray, a: int, b: int, k: int, constrained: bool
) -> None:
    """The best of rows ``a:b`` swaps with leader ``k`` when strictly better (W4): the first
    of equals is the best, as ``argmin`` and :func:`~flexopt.optim.deb_order`."""
    best = a
    if constrained:  # deb_order's key: violation, then the objective of the feasible
        key_v = V[a]
        key_f = F[a] if V[a] <= 0.0 else 0.0
        for r in range(a + 1, b):
            fr = F[r] if V[r] <= 0.0 else 0.0
            if V[r] < key_v or (V[r] == key_v and fr < key_f):
                best, key_v, key_f = r, V[r], fr
        win = better(F[best], V[best], F[k], V[k])
    else:
        for r in range(a + 1, b):
            if F[r] < F[best]:
                best = r
        win = F[best] < F[k]
    if not win:
        return
    for j in range(X.shape[1]):
        X[best, j], X[k, j] = X[k, j], X[best, j]
    F[best], F[k] = F[k], F[best]
    V[best], V[k] = V[k], V[best]


challenge = _compile(_challenge)


def _evaporation(
    X: np.ndarray,
    chance: np.ndarray,
    d2: float,
    plan: np.ndarray,
    rain: np.ndarray,
    rain_chance: float,
) -> int:
    """Which points rain (W4 iii), marked in ``rain[n_pop]``: river ``r``'s streams when
    ``chance[r − 1] < rain_chance`` (0.1 in the reference) or ``‖X_sea − X_r‖² < d2``; a
    stream of the sea (``plan[3, r]``) within ``d2`` of the sea. Returns how many are marked,
    or :data:`AMBIGUOUS` when a distance lies within rounding of ``d2`` (the caller decides
    with numpy, bit for bit)."""
    n_riv = chance.shape[0]
    d = X.shape[1]
    far = d2 * (1.0 + _MARGIN)
    count = 0
    for r in range(1, X.shape[0]):
        # the partial sums only grow: past ``far`` the point is neither near nor ambiguous,
        # so the sum stops there (after one term, almost always)
        s = 0.0
        for j in range(d):
            g = X[r, j] - X[0, j]
            s += g * g
            if s > far:
                break
        if abs(s - d2) <= _MARGIN * d2:
            return AMBIGUOUS
        near = s < d2
        rain[r] = (
            (near or chance[r - 1] < rain_chance) if r <= n_riv else (near and plan[3, r] != 0)
        )
        count += rain[r]
    return count


evaporation = _compile(_evaporation)


def _tell_round(
    X: np.ndarray,
    F: np.ndarray,
    V: np.ndarray,
    f: np.ndarray,
    v: np.ndarray,
    groups: np.ndarray,
    plan: np.ndarray,
    box: np.ndarray,
    draws: np.ndarray,
    rain: np.ndarray,
    rounds: np.ndarray,
    i: int,
    n_sr: int,
    c: float,
    d2: float,
    constrained: bool,
    rain_chance: float,
) -> int:
    """After round ``i``, whose rows start at ``rounds[i, 0]``: store its objective ``f[:, 0]``
    (and violation ``v``), let the best stream of each of its groups ``(leader, first row,
    end row)``, rows ``rounds[i, 3]:rounds[i, 4]`` of ``groups``, swap with its leader when
    better, then the best river with the sea when ``rounds[i, 2]`` (W4 i–ii). Then, when there
    is a next round, let it flow (:func:`flow_rows`, rows ``rounds[i + 1, :2]``); after the
    last, mark the points that rain (:func:`evaporation`, ``draws`` ending with the rivers'
    rain chances, compared with ``rain_chance``).

    Returns :data:`NAN_OBJECTIVE` (changing nothing) when a value is NaN, else what
    :func:`evaporation` returns after the last round, else 0."""
    n = f.shape[0]
    for r in range(n):
        if np.isnan(f[r, 0]) or (constrained and np.isnan(v[r])):
            return NAN_OBJECTIVE
    start = rounds[i, 0]
    for r in range(n):
        F[start + r] = f[r, 0]
        if constrained:
            V[start + r] = v[r]
    for g in range(rounds[i, 3], rounds[i, 4]):
        challenge(X, F, V, groups[g, 1], groups[g, 2], groups[g, 0], constrained)
    if rounds[i, 2]:
        challenge(X, F, V, 1, n_sr, 0, constrained)
    if i + 1 < rounds.shape[0]:
        flow_rows(X, box, draws, c, rounds[i + 1, 0], rounds[i + 1, 1], plan)
        return 0
    count: int = evaporation(X, draws[draws.shape[0] - n_sr + 1 :], d2, plan, rain, rain_chance)
    return count


tell_round = _compile(_tell_round)


def _front_ranks(F: np.ndarray) -> np.ndarray:
    """Non-dominated sorting (NSGA-II, W6): the front of every row of ``F[n, m]``, 0 for the
    non-dominated; ``i`` dominates ``j`` when ``F_i ≤ F_j`` everywhere and ``<`` somewhere.
    Integer results, equal to :func:`~flexopt.optim.non_dominated_sort`'s numpy code."""
    n, m = F.shape
    dominates = np.zeros((n, n), dtype=np.bool_)
    count = np.zeros(n, dtype=np.intp)
    for i in range(n):
        for j in range(n):
            le = True
            lt = False
            for k in range(m):
                if not F[i, k] <= F[j, k]:  # also NaN: no order
                    le = False
                    break
                if F[i, k] < F[j, k]:
                    lt = True
            if le and lt:
                dominates[i, j] = True
                count[j] += 1
    rank = np.full(n, -1, dtype=np.intp)
    front = np.flatnonzero(count == 0)
    r = 0
    while front.size:
        for q in range(front.size):
            rank[front[q]] = r
        for q in range(front.size):
            for j in range(n):
                if dominates[front[q], j]:
                    count[j] -= 1
        nxt = 0
        for j in range(n):
            if count[j] == 0 and rank[j] < 0:
                nxt += 1
        front = np.empty(nxt, dtype=np.intp)
        nxt = 0
        for j in range(n):
            if count[j] == 0 and rank[j] < 0:
                front[nxt] = j
                nxt += 1
        r += 1
    return rank


front_ranks = _compile(_front_ranks)
