"""S6 — aggregation of (modified) offers into increasing block bids (``models/local_market.md``
M7–M8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from flexopt.dso.clearing import clear

__all__ = ["BlockBid", "aggregate_blocks", "aggregated_cost"]


def aggregated_cost(a: ArrayLike, b: ArrayLike, u_max: ArrayLike, q: ArrayLike) -> np.ndarray:
    """``C_agg(Q)``: the value of the local clearing (M4) as a function of ``Q`` (M7), €/h.

    Convex and piecewise quadratic in ``Q`` on ``[0, Σ Ū]``.
    """
    return clear(a, b, u_max, q).cost


@dataclass(frozen=True, eq=False)
class BlockBid:
    """Block bids ``(q_k, π_k)``, ``k = 1..K``, with prices non-decreasing in ``k``.

    Attributes
    ----------
    q_mw : numpy.ndarray
        Block sizes ``[..., K]`` (MW).
    price_eur_per_mwh : numpy.ndarray
        Block prices ``[..., K]``.
    """

    q_mw: np.ndarray
    price_eur_per_mwh: np.ndarray

    def scaled(self, copies: int) -> BlockBid:
        """Bid of ``copies`` identical feeders: ``C(Q) = n C₁(Q/n)`` ⇒ block sizes × n, same prices."""
        return BlockBid(self.q_mw * copies, self.price_eur_per_mwh)


def aggregate_blocks(a: ArrayLike, b: ArrayLike, u_max: ArrayLike, blocks: int = 10) -> BlockBid:
    """Split ``[0, Σ Ū]`` into ``blocks`` equal blocks priced at the marginal cost at each
    block's upper end (M8).

    ``π_k = λ(Q_k)`` with ``Q_k = k Σ Ū / K`` and ``λ`` the local clearing price (M6): the
    prices increase along the blocks, a cost-minimizing buyer fills them in order, and at any
    accepted quantity ``F`` in block ``k`` the block's price covers the local uniform price,
    ``π_k ≥ λ(F)``, so the revenue ``π_k F`` covers the uniform local payment ``λ(F) F``.
    (The first wave priced blocks at the average cost increment, which fell short of
    ``λ(F)`` inside every block.)

    Parameters
    ----------
    a, b, u_max : array_like
        Offers ``[..., n]`` (modified coefficients for a DSO's bid).
    blocks : int
        ``K ≥ 1``.
    """
    if blocks < 1:
        raise ValueError(f"blocks must be ≥ 1, got {blocks}")
    a, b, u_max = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (a, b, u_max)))
    total = u_max.sum(-1)
    edges = total[..., None] * (np.arange(1, blocks + 1) / blocks)  # [..., K]
    width = np.broadcast_to(total[..., None] / blocks, edges.shape).copy()
    upper = clear(a[..., None, :], b[..., None, :], u_max[..., None, :], edges).price
    price = np.where(width > 0, upper, 0.0)
    # the clearing price is non-decreasing in Q; guard against rounding all the same
    price = np.maximum.accumulate(price, axis=-1)
    return BlockBid(q_mw=width, price_eur_per_mwh=price)
