"""The result of :func:`flexopt.run_market`: tables, summary, timings and the typed outcome."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from flexopt.outcome import MarketOutcome
from flexopt.report import make_figures, save_results
from flexopt.run.intraday import IntradayOutcome
from flexopt.run.options import MarketOptions

__all__ = ["MarketResult"]


@dataclass(frozen=True, eq=False)
class MarketResult:
    """Result of :func:`flexopt.run_market`.

    Attributes
    ----------
    options : MarketOptions
        What was run.
    outcome : BilevelOutcome or CentralizedOutcome
        Every stage's typed result (contexts, offers, TSO market, dispatch, PLF before and
        after, …).
    tables : dict of DataFrame
        The result tables (one CSV each).
    summary : dict
        JSON-ready headline figures; ``clearing_time_s`` is the only part that changes between
        identical runs and is written to ``timings.json``, not ``summary.json``.
    timings : dict
        Seconds per stage.
    intraday : IntradayOutcome or None
        The intraday market's realizations (``models/intraday.md``) when the run had it.
    """

    options: MarketOptions
    outcome: MarketOutcome
    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any]
    timings: dict[str, float]
    intraday: IntradayOutcome | None = None

    @property
    def method(self) -> str:
        return self.options.method

    def __repr__(self) -> str:
        """One line: method, instance, the overload before and after, the social cost (the
        tables and the summary are attributes)."""
        s = self.summary

        def num(key: str) -> str:
            return f"{float(s.get(key, float('nan'))):,.2f}".replace(",", " ")

        return (
            f"MarketResult(method={self.method!r}, instance={s.get('instance')!r}, "
            f"overload {num('overload_mw_before')} → {num('overload_mw_after')} MW·h, "
            f"social cost {num('social_cost_eur')} €)"
        )

    def save(
        self,
        out: str | Path,
        figures: bool = True,
        *,
        replace: bool = False,
        protect: Iterable[str | Path] = (),
    ) -> Path:
        """Write CSV tables, ``summary.json``, ``timings.json`` and figures into ``out``
        atomically (a finished folder takes ``out``'s place in one rename).

        ``out`` must not exist or be empty, or — with ``replace`` — hold a previous run's
        result; anything else raises :class:`~flexopt.errors.OutputError`, as does a path
        that is, lies in or contains one of ``protect``. The instance directory is always
        protected.
        """
        summary = {k: v for k, v in self.summary.items() if k != "clearing_time_s"}

        def draw(folder: Path) -> None:
            make_figures(self.outcome, self.tables, folder)

        return save_results(
            out,
            self.tables,
            summary,
            self.timings,
            extra=draw if figures else None,
            replace=replace,
            protect=(self.outcome.instance.path, *protect),
        )
