"""Atomic writing of result folders: everything goes to a temporary sibling, then one rename."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from flexopt.atomic import atomic_directory

__all__ = ["save_results"]


def save_results(
    out: str | Path,
    tables: dict[str, pd.DataFrame],
    summary: dict[str, Any],
    timings: dict[str, float],
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``<name>.csv`` per table, ``summary.json`` and ``timings.json`` into ``out``.

    Timings live in their own file so that two runs with the same seed give byte-identical
    ``summary.json``. An existing ``out`` is replaced only once the new folder is complete.
    """
    out = Path(out).resolve()
    with atomic_directory(out) as work:
        for name, df in tables.items():
            df.to_csv(work / f"{name}.csv", float_format="%.10g")
        (work / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        (work / "timings.json").write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
        if extra is not None:
            extra(work)
    return out
