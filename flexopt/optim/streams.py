"""WCA's stream counts (W2), flow (W3) and the plan of an iteration's draws (W4a),
``models/wca.md``; the first two shared by WCA and MOWCA."""

from __future__ import annotations

import numpy as np

__all__ = ["allocate_streams", "flow", "plan_draws"]


def allocate_streams(
    leader_costs: np.ndarray, best_stream_cost: float, n_stream: int
) -> np.ndarray:
    """Streams per leader (sea first, then rivers), eq. (W2) of ``models/wca.md``.

    ``NS_n = round(|CN_n / Σ CN| · N_stream)`` with ``CN_n = cost_n − cost_{Nsr+1}`` (the best
    stream's cost), repaired to sum exactly to ``N_stream`` — surplus taken from the last
    leaders that have more than one, deficit given to the sea — and sorted in descending
    order, so the sea gets the most. A leader left with none takes one from the leader with
    the most (the reference code's ``round(NS/6)`` transfer, simplified).

    >>> allocate_streams(np.array([1.0, 2.0, 3.0, 4.0]), 5.0, 46).tolist()
    [18, 14, 9, 5]
    """
    costs = np.asarray(leader_costs, dtype=float)
    n_sr = costs.size
    cn = costs - float(best_stream_cost)
    total = cn.sum()
    if n_stream < n_sr:
        raise ValueError(
            f"need at least one stream per leader: {n_stream} streams for {n_sr} leaders"
        )
    if total == 0 or not np.isfinite(total):
        ns = np.full(n_sr, n_stream // n_sr)
        ns[: n_stream - ns.sum()] += 1
        return ns
    ns = np.sort(np.round(np.abs(cn / total) * n_stream).astype(int))[::-1].copy()
    i = n_sr - 1
    while ns.sum() > n_stream:
        if ns[i] > 1:
            ns[i] -= 1
        else:
            i -= 1
    while ns.sum() < n_stream:
        ns[0] += 1
    while np.any(ns == 0):
        donor = int(np.argmax(ns))
        ns[donor] -= 1
        ns[int(np.flatnonzero(ns == 0)[0]) if ns[donor] > 0 else donor] += 1
    return np.sort(ns)[::-1].copy()


def flow(
    x: np.ndarray, target: np.ndarray, r: np.ndarray, c: float, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """``X ← clip(X + C · r ⊙ (X_target − X), lower, upper)`` (W3); ``r`` is injected."""
    out = target - x
    out *= r
    out *= c
    out += x
    np.maximum(out, lower, out=out)
    clipped: np.ndarray = np.minimum(out, upper, out=out)
    return clipped


def plan_draws(
    rounds: list[slice],
    sea_rows: list[tuple[int, int] | None],
    work: list[np.ndarray],
    sea_stream_rand: str,
    n_sr: int,
) -> tuple[
    list[tuple[int, int, int, int, int]], np.ndarray, list[list[tuple[np.ndarray, np.ndarray]]], int
]:
    """One buffer of uniforms per iteration, in the order they are used (W4a): each round's
    factors row by row — one per stream of the sea (rows ``sea_rows[i]`` of round ``i``) with
    ``sea_stream_rand="scalar"``, one per dimension otherwise — then one rain chance per
    river.

    Returns the pieces ``(round, first row, end row, factors per row, first factor)``, the
    buffer, per round the pairs of rows of its work buffer ``work[i]`` with their factors, and
    the number of factors (the rain chances follow them)."""
    d = work[0].shape[1]
    pieces = []  # (round, first row, last row, factors per row)
    for i, (rows, sea) in enumerate(zip(rounds, sea_rows, strict=True)):
        n = rows.stop - rows.start
        if sea is None or sea_stream_rand == "vector":
            pieces.append((i, 0, n, d))
            continue
        a, b = sea
        pieces += [(i, 0, a, d), (i, a, b, 1), (i, b, n, d)]
    pieces = [p for p in pieces if p[2] > p[1]]
    sizes = [(b - a) * k for _, a, b, k in pieces]
    ends = np.cumsum([0, *sizes])
    draws = np.empty(ends[-1] + n_sr - 1)
    segments: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in rounds]
    for (i, a, b, k), lo, hi in zip(pieces, ends[:-1], ends[1:], strict=True):
        segments[i].append((work[i][a:b], draws[lo:hi].reshape(b - a, k)))
    planned = [(*p, int(lo)) for p, lo in zip(pieces, ends[:-1], strict=True)]
    return planned, draws, segments, int(ends[-1])
