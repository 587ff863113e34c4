"""Atomic writing of result folders: everything goes to a temporary sibling, then one rename."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from flexopt.atomic import OutputRefusedError, atomic_directory, output_path
from flexopt.errors import NonFiniteError, OutputError

__all__ = ["RUN_KIND", "flat_table", "save_results", "strict_json"]

#: The kind of a result folder (its marker, ``flexopt.atomic.MARKER``).
RUN_KIND = "run"


def strict_json(data: Any) -> str:
    """``data`` as indented, sorted JSON that strict parsers accept: a NaN or an infinity is
    a :class:`~flexopt.errors.NonFiniteError`, never ``NaN``/``Infinity`` in the file."""
    try:
        return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except ValueError:
        raise NonFiniteError(
            f"non-finite number in the summary: {_first_non_finite(data)}"
        ) from None


def _first_non_finite(data: Any, where: str = "") -> str:
    if isinstance(data, dict):
        for k, v in data.items():
            if found := _first_non_finite(v, f"{where}.{k}" if where else str(k)):
                return found
    elif isinstance(data, list | tuple):
        for i, v in enumerate(data):
            if found := _first_non_finite(v, f"{where}[{i}]"):
                return found
    elif isinstance(data, float) and not math.isfinite(data):
        return f"{where} = {data}"
    return ""


def flat_table(df: pd.DataFrame, name: str = "table") -> pd.DataFrame:
    """``df`` as it is saved: a named index (``hour``, ``prosumer_id``, ``dso_id``, …) becomes
    leading columns, an unnamed range index is dropped — no CSV has an unnamed column.

    Raises
    ------
    ValueError
        For an index with an unnamed level that is not a range, or a column without a name
        of its own (``Unnamed: 0``, ``level_0``, ``index``).
    """
    names = list(df.index.names)
    if all(n is not None for n in names):
        df = df.reset_index()
    elif not isinstance(df.index, pd.RangeIndex):  # a range carries no information
        raise ValueError(f"table {name!r}: its index has an unnamed level ({names})")
    unnamed = [
        c
        for c in df.columns
        if not isinstance(c, str) or not c or c.startswith(("Unnamed", "level_", "index"))
    ]
    if unnamed:
        raise ValueError(f"table {name!r}: unnamed columns {unnamed}")
    return df


def save_results(
    out: str | Path,
    tables: dict[str, pd.DataFrame],
    summary: dict[str, Any],
    timings: dict[str, float],
    extra: Callable[[Path], None] | None = None,
    *,
    replace: bool = False,
    protect: Iterable[str | Path] = (),
) -> Path:
    """Write ``<name>.csv`` per table, ``summary.json`` and ``timings.json`` into ``out``.

    Timings live in their own file so that two runs with the same seed give byte-identical
    ``summary.json``. ``out`` must not exist, be empty, or — with ``replace`` — hold a
    previous result (its marker says so); it must not be, lie in or contain a ``protect``
    path (the instance directory). It is replaced only once the new folder is complete.

    Raises
    ------
    OutputError
        For an output path that is refused (one line naming it and why).
    NonFiniteError
        For a NaN or an infinity in the summary or the timings.
    """
    summary_text, timings_text = strict_json(summary), strict_json(timings)
    try:
        with atomic_directory(out, RUN_KIND, replace=replace, protect=protect) as work:
            for name, df in tables.items():
                flat_table(df, name).to_csv(work / f"{name}.csv", index=False, float_format="%.10g")
            (work / "summary.json").write_text(summary_text)
            (work / "timings.json").write_text(timings_text)
            if extra is not None:
                extra(work)
    except OutputRefusedError as err:
        raise OutputError(str(err)) from None
    return output_path(out)
