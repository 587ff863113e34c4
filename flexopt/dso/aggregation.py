"""S6 — aggregation of (modified) offers into increasing block bids (``models/local_market.md`` M7–M8)."""

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
    """Split ``[0, Σ Ū]`` into ``blocks`` equal blocks priced at the cost increment per MW (M8).

    ``π_k = (C_agg(Q_k) − C_agg(Q_{k−1})) / (Q_k − Q_{k−1})`` with ``Q_k = k Σ Ū / K``: the
    integral of the step curve equals ``C_agg`` at every block boundary, and convexity makes
    the prices non-decreasing, so a cost-minimizing buyer fills the blocks in order.

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
    edges = total[..., None] * (np.arange(blocks + 1) / blocks)  # [..., K+1]
    cost = aggregated_cost(a[..., None, :], b[..., None, :], u_max[..., None, :], edges)
    width = np.diff(edges, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        price = np.where(width > 0, np.diff(cost, axis=-1) / np.where(width > 0, width, 1.0), 0.0)
    # guard the tiny non-monotonicity that rounding can leave between equal-price blocks
    price = np.maximum.accumulate(price, axis=-1)
    return BlockBid(q_mw=width, price_eur_per_mwh=price)
