"""Pareto tools: non-dominated sorting, crowding distance, archives, 2-D hypervolume, fuzzy
compromise.

Minimization throughout. Deb, Pratap, Agarwal & Meyarivan (2002), "A fast and elitist
multiobjective genetic algorithm: NSGA-II", IEEE TEVC 6(2):182–197, doi:10.1109/4235.996017.
"""

from __future__ import annotations

from typing import Literal, cast

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "archive",
    "compromise",
    "constrained_ranks",
    "crowding_distance",
    "hypervolume_2d",
    "non_dominated_sort",
    "survive",
]


def non_dominated_sort(F: np.ndarray, engine: Literal["numba", "numpy"] = "numba") -> np.ndarray:
    """Front index per point (0 = non-dominated), ``F[n, m]``: ``i`` dominates ``j`` when
    ``F_i ≤ F_j`` everywhere and ``F_i < F_j`` somewhere (W6 of ``models/wca.md``). The
    compiled kernel (default) and the numpy code give the same ranks."""
    F = np.asarray(F, dtype=float)
    if engine == "numba":
        from flexopt.optim._kernels import front_ranks  # numba loads on first use

        ranks: np.ndarray = front_ranks(np.ascontiguousarray(F))
        return ranks
    n = F.shape[0]
    le = (F[:, None, :] <= F[None, :, :]).all(-1)
    lt = (F[:, None, :] < F[None, :, :]).any(-1)
    dominates = cast(np.ndarray, le & lt)  # [i, j]: i dominates j
    count: np.ndarray = dominates.sum(0)
    rank = np.full(n, -1)
    front = np.flatnonzero(count == 0)
    r = 0
    while front.size:
        rank[front] = r
        count = count - dominates[front].sum(0)
        count[rank >= 0] = -1
        front = np.flatnonzero(count == 0)
        r += 1
    return rank


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the points of one front (boundary points: ``inf``)."""
    F = np.asarray(F, dtype=float)
    n, m = F.shape
    cd = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        span = F[order[-1], k] - F[order[0], k]
        cd[order[0]] = cd[order[-1]] = np.inf
        if span > 0:
            cd[order[1:-1]] += (F[order[2:], k] - F[order[:-2], k]) / span
    return cd


def constrained_ranks(
    F: np.ndarray, v: np.ndarray, engine: Literal["numba", "numpy"] = "numba"
) -> np.ndarray:
    """Front index per point under constrained domination (Deb et al. 2002, §V; W6a of
    ``models/wca.md``): the feasible points (``v ≤ 0``) in their non-dominated fronts, then
    every infeasible point in a front of its own by increasing violation (equal violations
    share one)."""
    F = np.asarray(F, dtype=float)
    v = np.asarray(v, dtype=float)
    rank = np.empty(len(F), dtype=np.int64)
    feasible = v <= 0
    top = 0
    if feasible.any():
        rank[feasible] = non_dominated_sort(F[feasible], engine)
        top = int(rank[feasible].max()) + 1
    bad = np.flatnonzero(~feasible)
    if bad.size:
        levels = np.unique(v[bad], return_inverse=True)[1]
        rank[bad] = top + levels.ravel()
    return rank


def survive(
    F: np.ndarray,
    n: int,
    engine: Literal["numba", "numpy"] = "numba",
    v: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NSGA-II environmental selection of ``n`` points: whole fronts, the last by crowding.

    Returns the selected indices (best first: by front, then crowding descending), their
    fronts and their crowding distances. ``engine``: of :func:`non_dominated_sort`. ``v``:
    total violations, when given the fronts are those of :func:`constrained_ranks`.
    """
    rank = non_dominated_sort(F, engine) if v is None else constrained_ranks(F, v, engine)
    cd = np.zeros(len(F))
    for r in np.unique(rank):
        idx = np.flatnonzero(rank == r)
        cd[idx] = crowding_distance(F[idx])
    order = np.lexsort((-cd, rank))[:n]
    return order, rank[order], cd[order]


def archive(
    F: np.ndarray,
    size: int,
    engine: Literal["numba", "numpy"] = "numba",
    v: np.ndarray | None = None,
) -> np.ndarray:
    """Indices (increasing) of a bounded Pareto archive of the points ``F[n, m]`` (W8 of
    ``models/wca.md``).

    The first front — of :func:`constrained_ranks` when the violations ``v`` are given, of
    :func:`non_dominated_sort` otherwise — without duplicates (points equal in every objective
    and in violation: the first is kept), then, when more than ``size`` remain, the ``size``
    of largest crowding distance (the extremes first; ties: the first).
    """
    F = np.asarray(F, dtype=float)
    key = F if v is None else np.c_[F, v]
    first: np.ndarray = np.sort(np.unique(key, axis=0, return_index=True)[1])  # no duplicates
    rank = (
        non_dominated_sort(F[first], engine)
        if v is None
        else constrained_ranks(F[first], v[first], engine)
    )
    front: np.ndarray = first[rank == 0]
    if front.size > size:
        cd = crowding_distance(F[front])
        front = np.sort(front[np.argsort(-cd, kind="stable")[:size]])
    return front


def hypervolume_2d(F: np.ndarray, ref: ArrayLike) -> float:
    """Area dominated by the points of ``F[n, 2]`` and bounded by the reference point ``ref``."""
    F = np.asarray(F, dtype=float)
    r = np.asarray(ref, dtype=float)
    F = F[(F < r).all(1)]
    if F.size == 0:
        return 0.0
    F = F[non_dominated_sort(F, "numpy") == 0]
    F = F[np.argsort(F[:, 0])]
    widths = np.diff(np.r_[F[:, 0], r[0]])
    return float(np.sum(widths * (r[1] - F[:, 1])))


def compromise(F: np.ndarray) -> int:
    """Fuzzy max–min compromise of a front: ``argmax_i min_k μ_ik``, with the linear
    membership ``μ_ik = (f_k^max − f_ik) / (f_k^max − f_k^min)`` (1 where the range is empty)."""
    F = np.asarray(F, dtype=float)
    lo, hi = F.min(0), F.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    mu = np.where(hi > lo, (hi - F) / span, 1.0)
    return int(np.argmax(mu.min(1)))
