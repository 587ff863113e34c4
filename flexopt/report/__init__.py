"""Writing results: tables, summary.json, timings (atomically) and figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flexopt.report.save import save_results
from flexopt.report.text import summary_text

if TYPE_CHECKING:
    import pandas as pd

    from flexopt.outcome import MarketOutcome

__all__ = ["make_figures", "save_results", "summary_text"]


def make_figures(
    outcome: MarketOutcome, tables: dict[str, pd.DataFrame], folder: Path
) -> list[Path]:
    """:func:`flexopt.report.figures.make_figures`, importing matplotlib only when a figure
    is drawn (a run that writes none, or fails first, never loads it)."""
    from flexopt.report.figures import make_figures as draw

    return draw(outcome, tables, folder)
