"""What every figure of ``flexopt.plot`` shares: matplotlib loaded quietly, a figure that
belongs to no pyplot state, the view of a run the figures read, and the DSOs worth a panel."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import pandas as pd

from flexopt.outcome import BilevelOutcome, MarketOutcome

# a user whose home is not writable (a read-only install run by a service user) costs
# matplotlib its font cache, not two lines of warnings on every run
_mpl_log = logging.getLogger("matplotlib")
_level = _mpl_log.level
_mpl_log.setLevel(logging.ERROR)
try:
    from matplotlib.figure import Figure
finally:
    _mpl_log.setLevel(_level)

__all__ = ["MAX_PANELS", "Figure", "RunView", "bilevel", "busiest", "new_figure"]

#: Per-DSO figures show at most this many DSOs (those that delivered the most).
MAX_PANELS = 6


class RunView(Protocol):
    """What a single-run figure reads: a :class:`~flexopt.MarketResult` is one."""

    @property
    def outcome(self) -> MarketOutcome: ...

    @property
    def tables(self) -> dict[str, pd.DataFrame]: ...


def new_figure(width: float, height: float, **kwargs: Any) -> Figure:
    """A figure with constrained layout that no pyplot state holds: nothing to close, no
    backend needed, drawable on a headless server (``fig.savefig``) or in a notebook."""
    return Figure(figsize=(width, height), layout="constrained", **kwargs)


def busiest(outcome: MarketOutcome, at_most: int = MAX_PANELS) -> list[str]:
    """The DSOs with the most accepted flexibility (one panel each), in instance order."""
    accepted = outcome.accepted_mw
    if accepted is None:
        return []
    acc = accepted.sum()
    top = set(acc.sort_values(ascending=False, kind="stable").index[:at_most])
    return [d for d in acc.index if d in top]


def bilevel(result: RunView, figure: str) -> BilevelOutcome:
    """The run's bilevel outcome with a market held, or a ``ValueError`` saying why
    ``figure`` cannot be drawn."""
    outcome = result.outcome
    if not isinstance(outcome, BilevelOutcome):
        raise ValueError(f"{figure}: the {outcome.method} market has no DSO bids")
    if outcome.tso is None:
        raise ValueError(f"{figure}: no congestion, no market was held")
    return outcome
