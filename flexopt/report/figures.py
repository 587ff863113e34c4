"""The figures ``MarketResult.save`` writes: each :mod:`flexopt.report.plot` figure that
applies to the run, as a PNG written atomically."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from flexopt.atomic import atomic_file
from flexopt.outcome import MarketOutcome
from flexopt.report.plot import figures_of

__all__ = ["DPI", "make_figures"]

log = logging.getLogger(__name__)

#: Resolution of the written PNGs.
DPI = 120


@dataclass(frozen=True)
class _Run:
    """An outcome and its tables, as the figures read a run."""

    outcome: MarketOutcome
    tables: dict[str, pd.DataFrame]


def make_figures(
    outcome: MarketOutcome, tables: dict[str, pd.DataFrame], folder: Path
) -> list[Path]:
    """Draw every figure that applies into ``folder`` (``<name>.png``, each written
    atomically); returns the files written."""
    run = _Run(outcome, tables)
    written = []
    for name, draw in figures_of(run).items():
        path = Path(folder) / f"{name}.png"
        fig = draw(run)
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=DPI, format="png")
        log.debug("wrote %s", path)
        written.append(path)
    return written
