"""Writing the on-disk instance format (``instances/README.md``): CSV tables and the manifest.

Shared by :meth:`flexopt.Instance.save`, ``flexopt generate`` and
``instances/make_rts24_3dso.py``. Folders are written through :mod:`flexopt.atomic` by the
callers; these helpers write into the temporary folder they are given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "GENERATED_HEADER",
    "INSTANCE_KIND",
    "feeder_file_name",
    "manifest_text",
    "toml_string",
    "write_table",
]

#: The kind of an instance folder (its marker, ``flexopt.atomic.MARKER``).
INSTANCE_KIND = "instance"
GENERATED_HEADER = (
    "# flexopt instance manifest (format: instances/README.md), written by `flexopt generate`.",
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def write_table(
    df: pd.DataFrame,
    path: Path,
    header_comment: str | None = None,
    *,
    float_format: str | None = "%.10g",
) -> None:
    """Write one instance CSV (no index), with an optional ``#`` comment line.

    Parameters
    ----------
    df : pandas.DataFrame
        The table, columns as ``instances/README.md`` names them.
    path : pathlib.Path
        The file; its folder is created.
    header_comment : str, optional
        One line written as ``# <header_comment>`` above the header.
    float_format : str or None, default "%.10g"
        Format of the floats; ``None`` writes the shortest text that reads back to the same
        float (:meth:`flexopt.Instance.save` uses it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        if header_comment:
            fh.write(f"# {header_comment.replace(chr(13), ' ').replace(chr(10), ' ')}\n")
        df.to_csv(fh, index=False, float_format=float_format)


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (quotes, backslashes and control characters escaped)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def feeder_file_name(name: str, taken: set[str]) -> str:
    """A file name ``distribution/<name>.csv`` for a feeder, made safe and not in ``taken``
    (a ``-2``, ``-3``, … suffix when it is); the chosen name is added to ``taken``."""
    stem = _UNSAFE.sub("_", name).strip("._") or "feeder"
    candidate, k = stem, 1
    while f"distribution/{candidate}.csv" in taken:
        k += 1
        candidate = f"{stem}-{k}"
    path = f"distribution/{candidate}.csv"
    taken.add(path)
    return path


def manifest_text(
    *,
    name: str,
    description: str,
    slack_bus: int,
    base_mva: float,
    dsos: Sequence[Mapping[str, Any]],
    microgrids: Sequence[Mapping[str, Any]] = (),
    hours: int = 24,
    dt_h: float = 1.0,
    load_increase: bool = True,
    balancing: str = "distributed",
    risk_quantile: float = 0.0,
    correlation: float = 0.0,
    loss_price: float = 50.0,
    loss_coverage: float = 0.8,
    header: Sequence[str] = GENERATED_HEADER,
) -> str:
    """The text of ``instance.toml``.

    Parameters
    ----------
    dsos : sequence of mappings
        One per DSO: ``id``, ``bus``, ``feeder`` (file name inside the instance), ``vn_kv``,
        ``feeders`` (copies).
    microgrids : sequence of mappings
        One per microgrid: ``id``, ``dso``, ``bus`` (point of connection), ``network`` (file
        name), ``vn_kv``, ``members`` (prosumer ids).
    load_increase : bool, default True
        Whether ``scenario/load_increase.csv`` is written (an instance without any load
        increase has none).
    header : sequence of str
        Comment lines at the top (each starting with ``#``).

    The table files have the fixed names of ``instances/README.md``
    (``transmission/buses.csv``, …); other parameters are the manifest's fields.
    """
    lines = [
        *header,
        "[instance]",
        f"name = {toml_string(name)}",
        f"description = {toml_string(description)}",
        f"hours = {hours}",
        f"dt_h = {float(dt_h)!r}",
        "",
        "[transmission]",
        'buses = "transmission/buses.csv"',
        'branches = "transmission/branches.csv"',
        'generators = "transmission/generators.csv"',
        f"slack_bus = {slack_bus}",
        f"base_mva = {float(base_mva)!r}",
        "",
        "[scenario]",
        'load_profile = "scenario/load_profile.csv"',
        *(['load_increase = "scenario/load_increase.csv"'] if load_increase else []),
        f"balancing = {toml_string(balancing)}",
        f"risk_quantile = {float(risk_quantile)!r}",
        f"correlation = {float(correlation)!r}",
        "",
        "[market]",
        f"loss_price_eur_per_mwh = {float(loss_price)!r}",
        f"loss_coverage = {float(loss_coverage)!r}",
        "",
        "[distribution]",
        'prosumers = "distribution/prosumers.csv"',
        'baseline = "distribution/baseline.csv"',
    ]
    for d in dsos:
        lines += [
            "",
            "[[distribution.dso]]",
            f"id = {toml_string(str(d['id']))}",
            f"bus = {int(d['bus'])}",
            f"feeder = {toml_string(str(d['feeder']))}",
            f"vn_kv = {float(d['vn_kv'])!r}",
            f"feeders = {int(d['feeders'])}",
        ]
    for g in microgrids:
        members = ", ".join(toml_string(str(m)) for m in g["members"])
        lines += [
            "",
            "[[distribution.microgrid]]",
            f"id = {toml_string(str(g['id']))}",
            f"dso = {toml_string(str(g['dso']))}",
            f"bus = {int(g['bus'])}",
            f"network = {toml_string(str(g['network']))}",
            f"vn_kv = {float(g['vn_kv'])!r}",
            f"members = [{members}]",
        ]
    return "\n".join(lines) + "\n"
