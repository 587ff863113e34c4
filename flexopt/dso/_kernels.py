"""The DSO's hot loops compiled with numba: the local clearing (M4–M6) and the grouping of
a batch's repeated loads (:func:`flexopt.dso.budget.feeder_loss`).

The clearing does the same floating-point operations, in the same order, as the numpy form
in :mod:`flexopt.dso.clearing` — equal bit for bit (``tests/dso/test_dcp_batching.py``) —
without its per-call array overhead.

Each market (one row of offers) is sorted once; each quantity of the batch then finds its
segment and dispatches. NumPy's sums over the offers are pairwise (eight accumulators, then
the remainder); :func:`_pairwise_py` repeats them for up to :data:`MAX_OFFERS` offers, the
block NumPy sums in one piece. The one difference: a quantity of ``-0.0`` is served as
``+0.0``, as NumPy's vectorized ``clip`` does — its scalar loop, for short arrays, keeps
``-0.0``; the two zeros compare equal and price and dispatch are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

import numba
import numpy as np

__all__ = ["MAX_OFFERS", "clear_markets", "first_equal_rows", "settle_rows"]

F = TypeVar("F", bound=Callable[..., object])
#: NumPy sums up to 128 numbers as one pairwise block: the kernel repeats that block only
MAX_OFFERS = 128


def _compile(fn: F) -> F:
    """``fn`` compiled (no fast-math: no contraction into fused multiply-adds), cached on disk
    where numba finds a writable place."""
    try:
        kernel = numba.njit(fn, cache=True, nogil=True)
    except RuntimeError:  # "cannot cache function …: no locator available"
        kernel = numba.njit(fn, cache=False, nogil=True)
    return cast(F, kernel)


def _pairwise_py(x: np.ndarray) -> float:
    """``x.sum()`` as NumPy adds ``len(x) ≤ 128`` contiguous float64: one by one below eight,
    otherwise eight running sums combined as a tree, then the remainder."""
    n = x.shape[0]
    res: float
    if n < 8:
        res = 0.0
        for i in range(n):
            res += x[i]
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]
    i = 8
    while i < n - n % 8:
        r0 += x[i]
        r1 += x[i + 1]
        r2 += x[i + 2]
        r3 += x[i + 3]
        r4 += x[i + 4]
        r5 += x[i + 5]
        r6 += x[i + 6]
        r7 += x[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += x[i]
        i += 1
    return res


def _pairwise_any_py(x: np.ndarray) -> float:
    """``x.sum()`` of contiguous float64 as NumPy adds them at any length: blocks of up to 128
    as :func:`_pairwise_py`, longer ones split in two at half the length
    rounded down to a multiple of eight. NumPy's reduction starts from ``0.0`` (a sum of
    ``-0.0`` is ``+0.0``): callers add it."""
    n = x.shape[0]
    if n <= MAX_OFFERS:
        return _pairwise(x)
    half = n // 2
    half -= half % 8
    left: float = _pairwise_any(x[:half])
    return left + _pairwise_any(x[half:])


def _clip_py(x: float, lo: float, hi: float) -> float:
    """NumPy's ``clip`` of a float, ``min(max(x, lo), hi)``."""
    y = x if x > lo else lo
    return y if y < hi else hi


def _resort_py(x: np.ndarray, order: np.ndarray, budget: int) -> bool:
    """Insertion sort of ``order`` by ``(x[o], o)`` in place — a stable sort's permutation —
    from its present (the last market's) order; ``False`` once it has moved ``budget``
    entries (then ``order`` is some permutation: sort afresh)."""
    moves = 0
    for i in range(1, order.shape[0]):
        o = order[i]
        key = x[o]
        j = i - 1
        while j >= 0 and (x[order[j]] > key or (x[order[j]] == key and order[j] > o)):
            order[j + 1] = order[j]
            j -= 1
        moves += i - 1 - j
        order[j + 1] = o
        if moves > budget:
            return False
    return True


def _sorted_py(
    a: np.ndarray,
    b: np.ndarray,
    umax: np.ndarray,
    bp: np.ndarray,
    s_plus: np.ndarray,
    s_minus: np.ndarray,
    info: np.ndarray,
    period: int,
) -> None:
    """Per market ``[M, n]``: sorted breakpoints and ``S`` just above and below each
    ``[M, 2n]`` (the sweep of :func:`flexopt.dso.clearing.clear`), and ``info[M, 3]``: the
    capacity ``Σ u_max`` as NumPy sums it, whether ``S⁺`` never falls (1.0, else 0.0) and
    whether an offer is a step (``a ≤ 0``; 1.0, else 0.0).

    Markets ``period`` apart (one hour of two individuals of a population) mostly order their
    breakpoints alike: each starts from that market's order and insertion-sorts it, by
    breakpoint then position — the order NumPy's stable sort gives — and sorts afresh when
    that moves more than ``2n`` entries or a breakpoint is NaN."""
    m_count, n = a.shape
    events = np.empty(2 * n)
    d_slope = np.empty(2 * n)
    jump = np.empty(2 * n)
    orders = np.empty((period, 2 * n), dtype=np.int64)
    for m in range(m_count):
        order = orders[m % period]
        if m < period:
            order[:] = np.arange(2 * n)
        nan, steps = False, False
        for i in range(n):
            ai, bi, ui = a[m, i], b[m, i], umax[m, i]
            pos = ai > 0
            steps = steps or not pos
            slope = 0.5 / ai if pos else 0.0
            events[i] = bi
            events[n + i] = bi + 2.0 * ai * ui if pos else bi
            nan = nan or events[i] != events[i] or events[n + i] != events[n + i]
            d_slope[i] = slope
            d_slope[n + i] = -slope
            jump[i] = 0.0 if pos else ui
            jump[n + i] = 0.0
        if nan or not _resort(events, order, 2 * n):
            order[:] = np.argsort(events, kind="mergesort")  # stable: NumPy's order of ties
        slope_after = d_slope[order[0]]
        cum_jump = jump[order[0]]
        cum_rise = 0.0
        bp[m, 0] = events[order[0]]
        s_plus[m, 0] = cum_jump
        s_minus[m, 0] = cum_jump - jump[order[0]]
        rising = True
        for r in range(1, 2 * n):
            o = order[r]
            bp[m, r] = events[o]
            rise = slope_after * (bp[m, r] - bp[m, r - 1])
            cum_rise = rise if r == 1 else cum_rise + rise
            cum_jump += jump[o]
            s_plus[m, r] = cum_jump + cum_rise
            s_minus[m, r] = s_plus[m, r] - jump[o]
            slope_after += d_slope[o]
            rising = rising and s_plus[m, r] >= s_plus[m, r - 1]  # False on NaN
        info[m, 0] = _pairwise(umax[m])
        info[m, 1] = 1.0 if rising else 0.0
        info[m, 2] = 1.0 if steps else 0.0


def _dispatch_py(
    a: np.ndarray,
    b: np.ndarray,
    umax: np.ndarray,
    bp: np.ndarray,
    s_plus: np.ndarray,
    s_minus: np.ndarray,
    info: np.ndarray,
    market: np.ndarray,
    q: np.ndarray,
    u: np.ndarray,
    out: np.ndarray,
) -> None:
    """Price, dispatch and cost of each quantity ``q[e]`` of market ``market[e]``: ``u[e]``
    and ``out[e] = (price, served, cost)``.

    The segment is the first breakpoint with ``S⁺ ≥ served − 1e-12``: found by bisection
    where ``S⁺`` never falls (``info``), else by a scan — the same breakpoint. Without step
    offers nothing is marginal at a step: the share of the rest is skipped (it is zero)."""
    n = a.shape[1]
    tmp = np.empty(n)
    for e in range(q.shape[0]):
        m = market[e]
        served = _clip(q[e], 0.0, info[m, 0])
        target = served - 1e-12
        if info[m, 1] > 0.0:
            lo, hi = 0, 2 * n
            while lo < hi:
                mid = (lo + hi) // 2
                if s_plus[m, mid] >= target:
                    hi = mid
                else:
                    lo = mid + 1
            k = lo if lo < 2 * n else 0
        else:
            k = 0
            for r in range(2 * n):
                if s_plus[m, r] >= target:
                    k = r
                    break
        km1 = k - 1 if k > 0 else 0
        lam_hi, lam_lo = bp[m, k], bp[m, km1]
        s_lo = s_plus[m, km1] if k > 0 else 0.0
        s_hi = s_minus[m, k]
        if served <= s_hi and k > 0 and s_hi > s_lo:
            lam = lam_lo + (served - s_lo) / (s_hi - s_lo) * (lam_hi - lam_lo)
        else:
            lam = lam_hi
        if served <= 0:
            lam = b[m, 0]
            for i in range(1, n):
                lam = b[m, i] if b[m, i] < lam else lam
        for i in range(n):
            ai, bi, ui = a[m, i], b[m, i], umax[m, i]
            if ai > 0:
                u[e, i] = _clip((lam - bi) / (2.0 * ai), 0.0, ui)
            else:
                u[e, i] = ui if bi < lam else 0.0
        if info[m, 2] > 0.0:
            rest = served - _pairwise(u[e])
            rest = rest if rest > 0.0 else 0.0
            for i in range(n):
                marginal = a[m, i] <= 0 and b[m, i] == lam and served > 0
                tmp[i] = umax[m, i] if marginal else 0.0
            cap = _pairwise(tmp)
            share = rest / cap if cap > 0 else 0.0
            for i in range(n):
                if a[m, i] <= 0 and b[m, i] == lam and served > 0:
                    u[e, i] = umax[m, i] * share
        for i in range(n):
            tmp[i] = a[m, i] * u[e, i] * u[e, i] + b[m, i] * u[e, i]
        out[e, 0], out[e, 1], out[e, 2] = lam, served, _pairwise(tmp)


def _first_equal_py(
    key: np.ndarray, p: np.ndarray, q: np.ndarray, ip: np.ndarray, iq: np.ndarray
) -> np.ndarray:
    """For each row ``i``, the first row whose ``p`` and ``q`` bytes (``ip``, ``iq``, their
    int64 views; ``[rows, ·]`` of any two widths) equal its own — ``i`` itself when none
    before it does. Candidates share a weighted sum (``key``: one weight per column of ``p``,
    then of ``q``); a stable sort keeps each group in row order."""
    n_rows, n_p = p.shape
    n_q = q.shape[1]
    h = np.empty(n_rows)
    for i in range(n_rows):
        s = 0.0
        for j in range(n_p):
            s += p[i, j] * key[j]
        for j in range(n_q):
            s += q[i, j] * key[n_p + j]
        h[i] = s
    order = np.argsort(h, kind="mergesort")
    first = np.arange(n_rows)
    for r in range(1, n_rows):
        i = order[r]
        back = r - 1
        while back >= 0 and h[order[back]] == h[i]:
            k = order[back]
            if first[k] == k:  # a group's first row: compare the bytes
                same = True
                for j in range(n_p):
                    if ip[i, j] != ip[k, j]:
                        same = False
                        break
                for j in range(n_q if same else 0):
                    if iq[i, j] != iq[k, j]:
                        same = False
                        break
                if same:
                    first[i] = k
                    break
            back -= 1
    return first


def _settle_py(
    u: np.ndarray, price: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray
) -> None:
    """Per row of ``u`` ``[E, n]``: ``Σ_i [u_i > 1e-12] max(λ u_i, C_i(u_i))`` and
    ``Σ_i C_i(u_i)``, ``C_i(u) = a_i u² + b_i u``, into ``out`` ``[E, 2]``."""
    n = u.shape[1]
    pay = np.empty(n)
    cost = np.empty(n)
    for e in range(u.shape[0]):
        for i in range(n):
            x = u[e, i]
            c = a[i] * x * x + b[i] * x
            own = price[e] * x
            cost[i] = c
            pay[i] = (own if own >= c else c) if x > 1e-12 else 0.0
        out[e, 0] = _pairwise(pay)
        out[e, 1] = _pairwise(cost)


_pairwise = _compile(_pairwise_py)
_pairwise_any = _compile(_pairwise_any_py)
_settle = _compile(_settle_py)
_first_equal = _compile(_first_equal_py)
_clip = _compile(_clip_py)
_resort = _compile(_resort_py)
_sorted = _compile(_sorted_py)
_dispatch = _compile(_dispatch_py)


def clear_markets(
    a: np.ndarray, b: np.ndarray, umax: np.ndarray, market: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Clear quantities ``q[e]`` ``[E]`` in markets ``market[e]`` with offers ``[M, n]``
    (``0 < n ≤ MAX_OFFERS``). Returns ``u`` ``[E, n]`` and ``(price, served, cost)``
    ``[E, 3]``."""
    a, b, umax = (np.ascontiguousarray(x, dtype=np.float64) for x in (a, b, umax))
    m_count, n = a.shape
    bp = np.empty((m_count, 2 * n))
    s_plus = np.empty_like(bp)
    s_minus = np.empty_like(bp)
    info = np.empty((m_count, 3))
    _sorted(a, b, umax, bp, s_plus, s_minus, info, 1)
    u = np.empty((len(q), n))
    out = np.empty((len(q), 3))
    market = np.ascontiguousarray(market, dtype=np.int64)
    q = np.ascontiguousarray(q, float)
    _dispatch(a, b, umax, bp, s_plus, s_minus, info, market, q, u, out)
    return u, out


def first_equal_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``[N]``: for each row of ``p``, ``q`` (``[N, n_bus]``, C-contiguous float64) the first
    row with the same bytes in both — itself when it is the first."""
    key = np.sqrt(np.arange(2.0, 2 * p.shape[1] + 2.0))  # any fixed numbers group the rows
    first: np.ndarray = _first_equal(key, p, q, p.view(np.int64), q.view(np.int64))
    return first


def settle_rows(
    u: np.ndarray, price: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Payments ``Σ_i max(λ u_i, C_i(u_i))`` over the dispatched (``u_i > 1e-12``) and the
    original cost ``Σ_i C_i(u_i)`` of each row of ``u`` ``[E, n]`` at its price ``[E]``
    (offers ``a``, ``b`` ``[n]``, ``n ≤ MAX_OFFERS``), as NumPy sums them."""
    out = np.empty((u.shape[0], 2))
    _settle(
        np.ascontiguousarray(u, dtype=np.float64),
        np.ascontiguousarray(price, dtype=np.float64),
        np.ascontiguousarray(a, dtype=np.float64),
        np.ascontiguousarray(b, dtype=np.float64),
        out,
    )
    return out[:, 0].copy(), out[:, 1].copy()
