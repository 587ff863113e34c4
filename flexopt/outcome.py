"""Typed outcomes of a market run: what each framework produced, stage by stage.

:class:`MarketBase` holds what both frameworks start from (S1, S2, S4). The bilevel market
returns a :class:`BilevelOutcome` (S3, S5–S7 and its S8); the common TSO–DSO market returns a
:class:`CentralizedOutcome` — neither pretends to be the other. ``MarketResult.outcome`` is
one of the two; ``flexopt.report`` draws its figures from them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol

import pandas as pd

from flexopt.dso.context import DSOContext
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.dso.offer import DSOOffer
from flexopt.dso.settlement import DSODispatch
from flexopt.instance import Instance
from flexopt.market.centralized import CentralizedData, CentralizedResult
from flexopt.market.day_ahead import DayAheadResult
from flexopt.market.equilibrium import CompetitionResult
from flexopt.market.tso import TSOMarketResult
from flexopt.plf import PLFModel, PLFResult

__all__ = [
    "BilevelOutcome",
    "CentralizedOutcome",
    "InterfaceClearing",
    "MarketBase",
    "MarketOutcome",
]


class InterfaceClearing(Protocol):
    """What either market returns at the TSO–DSO interfaces (``TSOMarketResult``,
    ``CentralizedResult``)."""

    @property
    def accepted_mw(self) -> pd.DataFrame: ...

    @property
    def price_eur_per_mwh(self) -> pd.DataFrame: ...

    @property
    def line_price_eur_per_mwh(self) -> pd.DataFrame: ...


@dataclass(frozen=True, eq=False)
class MarketBase:
    """S1, S2 and S4: the day-ahead point, its congestion and every DSO's view of itself.

    Attributes
    ----------
    instance : Instance
    day_ahead : DayAheadResult
        S1 schedule and prices.
    plf_model : PLFModel
        The DC model of S2 (network, loads, surge, uncertainty, balancing).
    plf_before : PLFResult
        Flow moments before any flexibility.
    congestion_before : DataFrame
        The congestion table (P6) of ``plf_before``.
    hours : Index
        The congested hours, sorted.
    contexts : tuple of DSOContext
        Each DSO after S4, in instance order.
    """

    instance: Instance
    day_ahead: DayAheadResult
    plf_model: PLFModel
    plf_before: PLFResult
    congestion_before: pd.DataFrame
    hours: pd.Index
    contexts: tuple[DSOContext, ...]

    @property
    def dso_ids(self) -> list[str]:
        return [c.dso.id for c in self.contexts]

    @property
    def dso_bus(self) -> dict[str, int]:
        """DSO → transmission interface bus."""
        return {c.dso.id: c.dso.bus for c in self.contexts}

    def context(self, dso_id: str) -> DSOContext:
        """The S4 context of one DSO (``KeyError`` naming the DSOs if there is none)."""
        for c in self.contexts:
            if c.dso.id == dso_id:
                return c
        raise KeyError(f"no DSO {dso_id!r}; DSOs: {', '.join(self.dso_ids)}")

    @property
    def cleared(self) -> InterfaceClearing | None:
        """The market that set the accepted relief and its prices: the TSO market (bilevel) or
        the common market (centralized); ``None`` where no market was held (no congestion,
        or before a framework ran)."""
        return None

    @property
    def accepted_mw(self) -> pd.DataFrame | None:
        """Congested hours × DSOs, the relief taken at each interface."""
        return None if self.cleared is None else self.cleared.accepted_mw

    @property
    def price_eur_per_mwh(self) -> pd.DataFrame | None:
        """Congested hours × DSOs, the price paid for it (NaN where nothing was taken)."""
        return None if self.cleared is None else self.cleared.price_eur_per_mwh

    @property
    def line_price_eur_per_mwh(self) -> pd.DataFrame | None:
        """Congested hours × branches, the shadow prices of the line limits."""
        return None if self.cleared is None else self.cleared.line_price_eur_per_mwh

    def base_fields(self) -> dict[str, Any]:
        """The fields of this base, to build a framework's outcome on it."""
        return {f.name: getattr(self, f.name) for f in fields(MarketBase)}


@dataclass(frozen=True, eq=False)
class BilevelOutcome(MarketBase):
    """The bilevel market: requirement (S3), offers and bids (S5–S6), TSO market (S7),
    local dispatch and settlement (S8) and the S2 re-check.

    Attributes
    ----------
    method : str
        The DSOs' coefficient method.
    blocks : int
        Blocks per bid and hour (S6).
    capacity_mw, requirement_mw : DataFrame
        Congested hours × DSOs: declared capacity ``R̄`` (M10) and requirement ``R`` (S3).
    unresolved_requirement_mw : DataFrame
        Congested hours × branches, overload S3 cannot resolve with the declared capacity.
    offers : tuple of DSOOffer
        One per DSO (empty without congestion).
    tso : TSOMarketResult or None
        ``None`` without congestion (no market held).
    dispatch : tuple of DSODispatch
        One per DSO (empty without congestion).
    loss_relief_mw : DataFrame
        Congested hours × DSOs, the fall of each DSO's import from its lower feeder losses
        (empty without congestion).
    plf_after : PLFResult
    congestion_after : DataFrame
        The S2 re-check with the interface relief: accepted flexibility plus lower losses.
    common_view : CentralizedData or None
        What the centralized market would see of the same instance, to score the bilevel
        dispatch on its objective (Z1); ``None`` without congestion.
    competition : CompetitionResult or None
        Rival DSOs' markups and their game (``models/competition.md``); ``None`` when the
        DSOs take prices (the default) or without congestion.
    """

    method: str
    blocks: int
    capacity_mw: pd.DataFrame
    requirement_mw: pd.DataFrame
    unresolved_requirement_mw: pd.DataFrame
    offers: tuple[DSOOffer, ...]
    tso: TSOMarketResult | None
    dispatch: tuple[DSODispatch, ...]
    loss_relief_mw: pd.DataFrame
    plf_after: PLFResult
    congestion_after: pd.DataFrame
    common_view: CentralizedData | None
    competition: CompetitionResult | None = None

    framework = "bilevel"

    @property
    def cleared(self) -> TSOMarketResult | None:
        return self.tso

    def dcp(self, dso_id: str, options: DCPOptions | None = None) -> DCPProblem:
        """The DSO coefficient problem of one DSO at its design point (its requirement),
        e.g. to solve it with another method or to export it."""
        return DCPProblem(
            self.context(dso_id),
            self.requirement_mw[dso_id],
            self.instance.market.loss_price_eur_per_mwh,
            options,
            self.blocks,
        )


@dataclass(frozen=True, eq=False)
class CentralizedOutcome(MarketBase):
    """The common TSO–DSO market (``models/centralized.md``): one model over every prosumer,
    its settlement (S8) and the S2 re-check.

    Attributes
    ----------
    method : str
        ``"centralized"``.
    central_model : {"qp", "ac"}
    data : CentralizedData or None
        What the common market saw; ``None`` without congestion (no market held).
    result : CentralizedResult or None
    dispatch : tuple of DSODispatch
    loss_relief_mw : DataFrame
        Congested hours × DSOs, the fall of each DSO's import from its lower feeder losses.
    plf_after : PLFResult
    congestion_after : DataFrame
        The S2 re-check with the interface relief: accepted flexibility plus lower losses.
    """

    method: str
    central_model: str
    data: CentralizedData | None
    result: CentralizedResult | None
    dispatch: tuple[DSODispatch, ...]
    loss_relief_mw: pd.DataFrame
    plf_after: PLFResult
    congestion_after: pd.DataFrame

    framework = "centralized"

    @property
    def cleared(self) -> CentralizedResult | None:
        return self.result


MarketOutcome = BilevelOutcome | CentralizedOutcome
