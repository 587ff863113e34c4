"""S5–S6 on one DSO: what a coefficient method returns, and the block bid the DSO builds from
it (``models/local_market.md`` M7–M9, ``models/dcp.md``).

A coefficient method (``flexopt.methods``) answers with a :class:`Modification` — factors
``α_i, β_i`` and whatever it reports about its search. :func:`build_offer` turns any
modification into the DSO's :class:`DSOOffer`: modified coefficients, block bid (M7–M8) and the
factors scored on the DSO coefficient problem, the same evaluator for every method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, SupportsIndex

import numpy as np
import pandas as pd

from flexopt.dso.aggregation import aggregate_blocks
from flexopt.dso.budget import break_even_prices
from flexopt.dso.dcp import DCPProblem, DCPScore
from flexopt.dso.modification import Factors
from flexopt.market.interface import DSOBid
from flexopt.pool_keep import reduce_kept

__all__ = ["DSOOffer", "Modification", "build_offer"]


@dataclass(frozen=True, eq=False)
class Modification:
    """What a coefficient method returns for one DSO.

    Attributes
    ----------
    factors : Factors
        ``α_i, β_i`` per participating prosumer (M9).
    evaluations : int
        Evaluations of the DSO coefficient problem the method spent (0 for analytic rules).
    history : ndarray, optional
        Best objective per iteration of an iterative search (convergence figure).
    pareto_f : ndarray, optional
        ``[m, 2]`` front of a multi-objective search (normalized ``f_loss``, ``f_price``).
    pareto_pick : ndarray, optional
        ``[2]`` the point of that front the method chose.
    report : Mapping
        Method-specific figures for the summary (e.g. the exact model's solver status and
        gap), merged into ``summary["dso"][id]["dcp"]``.
    """

    factors: Factors
    evaluations: int = 0
    history: np.ndarray | None = None
    pareto_f: np.ndarray | None = None
    pareto_pick: np.ndarray | None = None
    report: Mapping[str, str | float | int | bool] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class DSOOffer:
    """A DSO's modified offers for the congested hours (per feeder copy) and its bid.

    Attributes
    ----------
    method : str
        The coefficient method that produced it.
    factors : Factors
    a_mod, b_mod : ndarray
        ``[n]`` modified coefficients ``a'_i = α_i a_i``, ``b'_i = β_i b_i`` (M9).
    u_max_mw : DataFrame
        Congested hours × participants, capacity per copy (M3, split by the requirement).
    design_q_mw : Series
        The design point per copy, ``R_{d,t} / n``.
    bid : DSOBid
        What crosses to the TSO (M7–M8).
    score : DCPScore
        The factors on the DSO coefficient problem's evaluator (C1–C8), DSO level.
    modification : Modification
        The method's full answer (convergence history, Pareto front, solver report).
    microgrids : tuple of DSOOffer
        The offers of the DSO's microgrids (``models/microgrid.md`` G5), each made by the
        same method on the microgrid's own problem; their pieces are among this offer's.
    """

    method: str
    factors: Factors
    a_mod: np.ndarray
    b_mod: np.ndarray
    u_max_mw: pd.DataFrame
    design_q_mw: pd.Series
    bid: DSOBid
    score: DCPScore
    modification: Modification
    microgrids: tuple[DSOOffer, ...] = ()

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        # S8 reads it where S5–S6 made it: a pool's worker keeps it (flexopt.pool_keep)
        return reduce_kept(self, int(protocol))

    @property
    def dso_id(self) -> str:
        return self.bid.dso_id

    def summary(self) -> dict[str, str | float | int | bool]:
        """The score and the method's report, as ``summary["dso"][id]["dcp"]``."""
        return {**self.score.as_dict(), **self.modification.report}


def build_offer(problem: DCPProblem, method: str, modification: Modification) -> DSOOffer:
    """Modified offers and the block bid of one DSO (M7–M9).

    The bid aggregates the modified offers over the members' capacity ``Ū_{i,t}`` (M3, spare
    energy split in proportion to the requirement) into ``problem.blocks`` blocks per hour,
    each priced at the modified marginal cost at its upper end (M8) — but never below the
    DSO's break-even price on the block (C7b): whatever quantity the TSO accepts, at least at
    the block's price, the DSO's settled balance is non-negative. Scaled to the DSO's ``n``
    feeder copies.
    """
    ctx = problem.ctx
    u_max = problem.capacity_mw
    hours = u_max.index
    a_mod, b_mod = modification.factors.apply(problem.a, problem.b)
    blk = aggregate_blocks(a_mod, b_mod, u_max.to_numpy(), problem.blocks)
    rows = ctx.hours.get_indexer(hours)
    floor = break_even_prices(
        a_mod,
        b_mod,
        problem.a,
        problem.b,
        u_max.to_numpy(),
        problem.blocks,
        feeder=ctx.feeder,
        p_mw=ctx.p_mw[rows],
        q_mvar=ctx.q_mvar[rows],
        incidence=problem.incidence,
        loss_da_mw=ctx.loss_mw[rows],
        loss_price_eur_per_mwh=problem.loss_price,
    )
    price = np.maximum.accumulate(np.maximum(blk.price_eur_per_mwh, floor), axis=-1)
    n = ctx.dso.n_feeders
    cols = pd.RangeIndex(1, problem.blocks + 1, name="block")
    bid = DSOBid(
        dso_id=ctx.dso.id,
        bus=ctx.dso.bus,
        q_mw=pd.DataFrame(n * blk.q_mw, index=hours, columns=cols),
        price_eur_per_mwh=pd.DataFrame(price, index=hours, columns=cols),
    )
    return DSOOffer(
        method=method,
        factors=modification.factors,
        a_mod=a_mod,
        b_mod=b_mod,
        u_max_mw=u_max,
        design_q_mw=problem.requirement_mw / ctx.dso.n_feeders,
        bid=bid,
        score=problem.score(modification.factors, modification.evaluations),
        modification=modification,
    )
