"""Rival DSOs (``models/competition.md``): the options of the strategic game, its typed result,
and the pure arithmetic of markups on bids — a DSO's realized profit (N9), its marginal cost
and Lerner index (N13).

A DSO adds a markup ``m_{d,t} ≥ 0`` (€/MWh) to every block price of its bid in hour ``t``,
``π̃_{d,t,k} = π_{d,t,k} + m_{d,t}`` (N1); its profit is what S7 pays it minus the cost its
unmarked bid declares, ``Π_{d,t} = Δt (p_{d,t} F_{d,t} − Σ_k π_{d,t,k} q_{d,t,k})`` (N9). TSO
side only: this module sees bids (``DSOBid``) and S7 results, nothing of a DSO's feeder.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from flexopt.errors import OptionError
from flexopt.market.tso import DSOBid, TSOMarketData, TSOMarketResult

__all__ = [
    "COMPETITION_MODES",
    "COMPETITION_OPTIONS",
    "CompetitionOptions",
    "CompetitionResult",
    "EquilibriumStatus",
    "check_competition_option",
    "competition_from_kwargs",
    "lerner",
    "marginal_cost",
    "realized_profit",
    "with_markups",
]

#: ``price_taking``: every DSO bids its S6 bid (today's market); ``nash``: markups at a Nash
#: equilibrium of the DSOs' best responses (N10–N11).
COMPETITION_MODES = ("price_taking", "nash")
#: Flat option name → field of :class:`CompetitionOptions` (bilevel methods only).
COMPETITION_OPTIONS = {
    "competition": "mode",
    "competition_cap": "cap_eur_per_mwh",
    "competition_markups": "markups_eur_per_mwh",
    "competition_rounds": "rounds",
}
#: Bounds on the game's size: markup grid points per DSO-hour, rounds of best responses.
MAX_GRID_POINTS = 1_000
MAX_ROUNDS = 10_000


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` as the flat option ``name`` (``None``: nothing)."""
    if name == "competition":
        return None if value in COMPETITION_MODES else f"one of {COMPETITION_MODES}"
    if name == "competition_cap":
        ok = value is None or (_finite(value) and value >= 0)
        return None if ok else "a markup ≥ 0 €/MWh or None"
    if name == "competition_markups":
        want = f"STEP,MAX in €/MWh with 0 < STEP ≤ MAX and at most {MAX_GRID_POINTS} steps"
        pair = tuple(value) if isinstance(value, tuple | list) else ()
        if not (len(pair) == 2 and all(_finite(v) for v in pair)):
            return want
        step, top = pair
        return None if step > 0 and top >= step and top / step <= MAX_GRID_POINTS else want
    if name == "competition_rounds":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ROUNDS
        return None if ok else f"an integer in 1..{MAX_ROUNDS}"
    raise OptionError(f"unknown competition option {name!r}; known: {tuple(COMPETITION_OPTIONS)}")


def check_competition_option(name: str, value: Any) -> None:
    """``value`` checked as the flat option ``name`` on its own.

    Raises
    ------
    OptionError
        Naming the option, what it must be and what it got.
    """
    want = _problem(name, value)
    if want is not None:
        raise OptionError(f"option {name!r} must be {want}, got {value!r}")


@dataclass(frozen=True)
class CompetitionOptions:
    """How the DSOs bid (``models/competition.md``). Bilevel methods only.

    Attributes
    ----------
    mode : {"price_taking", "nash"}
        ``price_taking``: each DSO bids its S6 bid; ``nash``: each adds the markup of a Nash
        equilibrium of best responses (flat option ``competition``).
    cap_eur_per_mwh : float, optional
        Mitigation (``competition_cap``): the highest markup, €/MWh, a *pivotal* DSO-hour may
        add (N12); ``None``: no cap. Non-pivotal DSOs are disciplined by their rivals.
    markups_eur_per_mwh : (float, float)
        ``(step, max)`` of the markup grid ``0, step, 2 step, …, max`` (``competition_markups``,
        N7): the markups a DSO chooses from; ``max`` is also the highest markup any DSO adds.
    rounds : int
        The most rounds of best responses before the status ``max_rounds``
        (``competition_rounds``).
    """

    mode: str = "price_taking"
    cap_eur_per_mwh: float | None = None
    markups_eur_per_mwh: tuple[float, float] = (5.0, 200.0)
    rounds: int = 50

    def __post_init__(self) -> None:
        for name, f in COMPETITION_OPTIONS.items():
            check_competition_option(name, getattr(self, f))
        step, top = self.markups_eur_per_mwh
        object.__setattr__(self, "markups_eur_per_mwh", (float(step), float(top)))
        if self.cap_eur_per_mwh is not None:
            object.__setattr__(self, "cap_eur_per_mwh", float(self.cap_eur_per_mwh))
        if not self.strategic:
            given = [n for n, f in COMPETITION_OPTIONS.items() if getattr(self, f) != _DEFAULT[f]]
            if given:
                raise OptionError(
                    f"option(s) {given} apply to rival DSOs only: add competition='nash' "
                    "(--competition nash)"
                )

    @property
    def strategic(self) -> bool:
        return self.mode != "price_taking"

    def grid(self, cap: float | None = None) -> np.ndarray:
        """The markups a DSO-hour chooses from (N7), below ``cap`` (and ``cap`` itself) when
        given."""
        step, top = self.markups_eur_per_mwh
        n = math.floor(top / step + 1e-9)
        points = np.unique(np.r_[step * np.arange(n + 1), top])
        if cap is not None:
            points = np.unique(np.r_[points[points < cap], min(cap, top)])
        return points

    def flat(self) -> dict[str, Any]:
        """The flat options as a run's summary records them: none when price taking (today's
        runs record what they recorded before the option existed)."""
        if not self.strategic:
            return {}
        return {name: getattr(self, f) for name, f in COMPETITION_OPTIONS.items()}


_DEFAULT = {f.name: f.default for f in fields(CompetitionOptions)}


def competition_from_kwargs(
    kwargs: dict[str, Any], method: str, bilevel: bool
) -> CompetitionOptions:
    """Pop the competition options out of flat ``kwargs`` into their options.

    Raises
    ------
    OptionError
        For a bad value, an option without ``competition='nash'``, or any of them with a
        method that is not a bilevel one (the centralized market has no bids to mark up).
    """
    given = {
        COMPETITION_OPTIONS[k]: kwargs.pop(k) for k in list(kwargs) if k in COMPETITION_OPTIONS
    }
    if given and not bilevel:
        names = sorted(k for k, f in COMPETITION_OPTIONS.items() if f in given)
        raise OptionError(
            f"option(s) {names} do not apply to method {method!r}: rival DSOs mark up their "
            "bids to the TSO market (methods none, mlf, wca, exact, …)"
        )
    if isinstance(given.get("markups_eur_per_mwh"), list):
        given["markups_eur_per_mwh"] = tuple(given["markups_eur_per_mwh"])
    return CompetitionOptions(**given)


class EquilibriumStatus(enum.Enum):
    """How the best-response iteration ended (N11)."""

    CONVERGED = "converged"  # a round in which no DSO changed a markup
    CYCLE = "cycle"  # the markups after a round repeat an earlier round's
    MAX_ROUNDS = "max_rounds"  # neither within the rounds allowed


@dataclass(frozen=True, eq=False)
class CompetitionResult:
    """The DSOs' game and its outcome against the price-taking market.

    Attributes
    ----------
    status : EquilibriumStatus
    rounds : int
        Rounds of best responses run.
    cycle_length : int
        Rounds between two equal states of markups (0 unless ``status`` is ``cycle``).
    markup_eur_per_mwh : DataFrame
        Congested hours × DSOs, the markups of the last state (the equilibrium when
        converged).
    pivotal, capped : DataFrame
        Hours × DSOs (bool): the overload cannot be cleared as far without the DSO (N12); the
        cap applied to the DSO-hour.
    price_taking, clearing : TSOMarketResult
        S7 on the S6 bids, and on the bids with the final markups.
    profit_eur, price_taking_profit_eur : DataFrame
        Hours × DSOs, each DSO's profit (N9) in either market.
    bids : tuple of DSOBid
        The bids with the final markups — what S7 clears.
    history : tuple of DataFrame
        The markups before round 1 and after each round.
    counts : dict
        ``mpec_solves``, ``mpec_failures``, ``cuts`` (candidates the S7 check refused),
        ``enumerated`` (grid points evaluated without a MILP), ``clearings`` (S7 solves).
    """

    status: EquilibriumStatus
    rounds: int
    cycle_length: int
    markup_eur_per_mwh: pd.DataFrame
    pivotal: pd.DataFrame
    capped: pd.DataFrame
    price_taking: TSOMarketResult
    clearing: TSOMarketResult
    profit_eur: pd.DataFrame
    price_taking_profit_eur: pd.DataFrame
    bids: tuple[DSOBid, ...]
    history: tuple[pd.DataFrame, ...]
    counts: Mapping[str, int]


def with_markups(data: TSOMarketData, markups: pd.DataFrame) -> TSOMarketData:
    """``data`` with each DSO's block prices raised by its markup in each hour (N1); a DSO
    without a column keeps its bid."""
    bids = []
    for b in data.bids:
        if b.dso_id not in markups:
            bids.append(b)
            continue
        add = markups[b.dso_id].reindex(b.price_eur_per_mwh.index).fillna(0.0)
        bids.append(replace(b, price_eur_per_mwh=b.price_eur_per_mwh.add(add, axis=0)))
    return replace(data, bids=tuple(bids))


def _accepted_cost(res: TSOMarketResult) -> pd.DataFrame:
    """Hours × DSOs, ``Σ_k π̃_{d,t,k} q_{d,t,k}`` at the bid prices S7 cleared."""
    blocks = res.blocks.assign(cost=res.blocks["accepted_mw"] * res.blocks["price_eur_per_mwh"])
    cost = blocks.pivot_table(index="hour", columns="dso_id", values="cost", aggfunc="sum")
    return cost.reindex_like(res.accepted_mw).fillna(0.0)


def realized_profit(res: TSOMarketResult, markups: pd.DataFrame, dt_h: float) -> pd.DataFrame:
    """Each DSO's profit in S7's clearing of marked-up bids (N9), hours × DSOs (€):
    ``Δt (p F − Σ_k π̃_k q_k + m F)`` — the unmarked bid's cost is the marked one's minus
    ``m F``."""
    f = res.accepted_mw
    m = markups.reindex_like(f).fillna(0.0)
    paid = res.price_eur_per_mwh.fillna(0.0) * f
    return dt_h * (paid - _accepted_cost(res) + m * f)


def marginal_cost(res: TSOMarketResult, markups: pd.DataFrame) -> pd.DataFrame:
    """Hours × DSOs, the unmarked price of each DSO's highest accepted block (€/MWh): the cost
    of its last MW in its own bid; NaN where nothing was accepted."""
    taken = res.blocks[res.blocks["accepted_mw"] > 1e-7]
    top = taken.pivot_table(
        index="hour", columns="dso_id", values="price_eur_per_mwh", aggfunc="max"
    )
    top = top.reindex_like(res.accepted_mw)
    return (top - markups.reindex_like(top).fillna(0.0)).where(res.accepted_mw > 0.0)


def lerner(price: pd.DataFrame, cost: pd.DataFrame) -> pd.DataFrame:
    """The Lerner index ``(p − c) / p`` (N13), NaN where nothing was accepted or ``p ≤ 0``."""
    p = price.where(price > 0.0)
    return (p - cost) / p
