"""Local market clearing in closed form, batched (``models/local_market.md`` M4–M6).

    u(Q) = argmin Σ_i a_i u_i² + b_i u_i   s.t.  Σ_i u_i = Q,  0 ≤ u_i ≤ Ū_i        (M4)

KKT: ``u_i = clip((λ − b_i) / (2 a_i), 0, Ū_i)`` for ``a_i > 0`` and merit order for
``a_i = 0`` (all of ``Ū_i`` below ``λ``, none above, the marginal units sharing the
remainder) (M5). ``S(λ) = Σ_i u_i(λ)`` is piecewise linear and non-decreasing with
breakpoints ``b_i`` and ``b_i + 2 a_i Ū_i``; the clearing price is found exactly by one sweep
over the sorted breakpoints (cumulative slopes and jumps give ``S`` at each of them) and
interpolation on the segment that holds ``Q`` (M6) — no iteration, ``O(n log n)`` per market,
vectorized over any leading batch shape (population × hours).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from flexopt.dso._kernels import MAX_OFFERS, clear_markets

__all__ = ["Clearing", "clear"]


@dataclass(frozen=True, eq=False)
class Clearing:
    """Result of :func:`clear` (batch shape ``[...]``).

    Attributes
    ----------
    u_mw : numpy.ndarray
        Dispatch ``[..., n]``.
    price : numpy.ndarray
        Uniform clearing price ``λ`` ``[...]`` (€/MWh): the marginal cost of the last MW
        (0 when there are no offers at all).
        For ``Q ≤ 0`` the price of the first MW (``min_i b_i``); when ``Q`` exceeds the
        capacity, the marginal cost at full output.
    served_mw : numpy.ndarray
        ``min(Q, Σ Ū)`` ``[...]``.
    requested_mw : numpy.ndarray
        ``Q`` ``[...]``.
    cost : numpy.ndarray
        Value of the lower level ``Σ_i a_i u_i² + b_i u_i`` (€/h) ``[...]``.
    """

    u_mw: np.ndarray
    price: np.ndarray
    served_mw: np.ndarray
    requested_mw: np.ndarray
    cost: np.ndarray

    @property
    def shortfall_mw(self) -> np.ndarray:
        """Requested quantity the offers cannot cover ``[...]``."""
        short: np.ndarray = np.clip(self.requested_mw - self.served_mw, 0.0, None)
        return short


def _continuous(
    lam: np.ndarray, a: np.ndarray, b: np.ndarray, umax: np.ndarray, pos: np.ndarray
) -> np.ndarray:
    safe = np.where(pos, 2.0 * a, 1.0)
    u: np.ndarray = np.where(pos, np.clip((lam - b) / safe, 0.0, umax), 0.0)
    return u


def clear(a: ArrayLike, b: ArrayLike, u_max: ArrayLike, q: ArrayLike) -> Clearing:
    """Clear the local market for quantity ``q`` (M4–M6).

    Parameters
    ----------
    a, b : array_like
        Offer coefficients ``[..., n]`` (``a ≥ 0`` €/MW²h, ``b`` €/MWh).
    u_max : array_like
        Capacity ``Ū`` ``[..., n]`` (MW, ≥ 0).
    q : array_like
        Quantity to supply ``[...]`` (MW).

    Returns
    -------
    Clearing
    """
    a, b, umax = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (a, b, u_max)))
    q = np.asarray(q, dtype=float)
    batch = np.broadcast_shapes(a.shape[:-1], q.shape)
    n = a.shape[-1]
    if n == 0:  # a DSO without participants: nothing to dispatch, no price formed
        zeros = np.zeros(batch)
        empty = np.zeros((*batch, 0))
        q = np.broadcast_to(q, batch)
        return Clearing(u_mw=empty, price=zeros, served_mw=zeros, requested_mw=q, cost=zeros)
    # the breakpoint sweep on the offers' own batch (sorted once, however many quantities
    # share the same offers), the quantities on the full batch
    off = a.shape[:-1]
    off = (1,) * (len(batch) - len(off)) + off
    a, b, umax = (x.reshape(*off, n) for x in (a, b, umax))
    q = np.broadcast_to(q, batch)
    if n <= MAX_OFFERS:  # compiled: the same operations in the same order, bit for bit
        size = int(np.prod(off))
        market = np.broadcast_to(np.arange(size).reshape(off), batch).ravel()
        flat = [x.reshape(size, n) for x in (a, b, umax)]
        u, out = clear_markets(flat[0], flat[1], flat[2], market, q.ravel())
        price, served, cost = np.ascontiguousarray(out.T).reshape(3, *batch)
        return Clearing(u.reshape(*batch, n), price, served, q, cost)
    pos = a > 0
    step = ~pos
    total = umax.sum(-1)
    served = np.clip(q, 0.0, total)

    # sweep over the sorted breakpoints [..., 2n]: S changes slope by ±1/(2a) where an offer
    # starts or saturates and jumps by Ū where a linear offer (a = 0) switches on — O(n log n)
    slope = np.where(pos, 0.5 / np.where(pos, a, 1.0), 0.0)
    events = np.concatenate([b, np.where(pos, b + 2.0 * a * umax, b)], axis=-1)
    d_slope = np.concatenate([slope, -slope], axis=-1)
    jump = np.concatenate([np.where(step, umax, 0.0), np.zeros_like(umax)], axis=-1)
    # each market's row of [..., 2n] in sorted order: flat gathers (off has every axis)
    start = np.arange(0, events.size, 2 * n).reshape(*off, 1)
    order = np.argsort(events, axis=-1, kind="stable") + start
    bp = events.reshape(-1)[order]
    jump = jump.reshape(-1)[order]
    slope_after = np.cumsum(d_slope.reshape(-1)[order], axis=-1)
    rise = slope_after[..., :-1] * np.diff(bp, axis=-1)  # continuous growth between breakpoints
    s_plus = np.cumsum(jump, axis=-1)
    s_plus[..., 1:] += np.cumsum(rise, axis=-1)
    s_minus = s_plus - jump

    reach = s_plus >= served[..., None] - 1e-12
    k = np.argmax(reach, axis=-1)  # first breakpoint where S⁺ ≥ Q (all reach: Q ≤ Σ Ū)

    rows = start[..., 0]  # entry k of each market's row: a flat gather on the full batch

    def take(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
        taken: np.ndarray = arr.reshape(-1)[rows + idx]
        return taken

    lam_hi = take(bp, k)
    km1 = np.maximum(k - 1, 0)
    lam_lo = take(bp, km1)
    s_lo = np.where(k > 0, take(s_plus, km1), 0.0)
    s_hi = take(s_minus, k)
    on_segment = (served <= s_hi) & (k > 0) & (s_hi > s_lo)
    frac = np.where(on_segment, (served - s_lo) / np.where(s_hi > s_lo, s_hi - s_lo, 1.0), 1.0)
    lam = np.where(on_segment, lam_lo + frac * (lam_hi - lam_lo), lam_hi)
    lam = np.where(served <= 0, b.min(-1), lam)
    # the offers [*off, n] broadcast against the batch's price in every elementwise step
    u = _continuous(lam[..., None], a, b, umax, pos)
    u = np.where(step & (b < lam[..., None]), umax, u)
    marginal = step & (b == lam[..., None]) & (served[..., None] > 0)
    rest = np.clip(served - u.sum(-1), 0.0, None)
    cap = (marginal * umax).sum(-1)
    share = np.where(cap > 0, rest / np.where(cap > 0, cap, 1.0), 0.0)
    u = np.where(marginal, umax * share[..., None], u)
    cost = (a * u * u + b * u).sum(-1)
    return Clearing(u_mw=u, price=lam, served_mw=served, requested_mw=q, cost=cost)
