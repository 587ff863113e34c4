"""``docs/tables.md`` is the data dictionary of every output: a bilevel (mlf) and a
centralized run on ``rts24-3dso`` are saved, and every column of every CSV, every key of
``summary.json`` and ``timings.json`` and every column of ``flexopt compare``'s ``runs.csv``
and ``dso.csv`` must be named there; no CSV has an unnamed column, and every column carries
its unit or is an id, a count or a flag."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import flexopt as fx
from flexopt.report.compare_tables import dso_table, runs_table
from flexopt.report.save import flat_table
from flexopt.run.flat import flat_options

DOC = Path(__file__).resolve().parents[1] / "docs" / "tables.md"
MICROGRIDS = Path(__file__).resolve().parents[1] / "instances" / "rts24-3dso-mg"
#: Placeholders of the dictionary and what they stand for.
PLACEHOLDERS = {
    "<generator_id>": r"[A-Za-z0-9_]+",
    "<dso_id>": r"[^.]+",
    "<microgrid_id>": r"[^.]+",
    "<dcp_key>": r"[a-z_]+",
    "<package>": r"[^.]+",
    "<option>": "(?:" + "|".join(re.escape(k) for k in flat_options()) + ")",
}
UNITS = {"mw", "mwh", "mvar", "eur", "pu", "kv", "percent", "s"}
IDS = {"hour", "block", "bus", "branch", "run", "method", "seed"}


def _sections() -> dict[str, list[str]]:
    """Names in the first column of each section's table, by the section's ``### `name` ``."""
    out: dict[str, list[str]] = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^### `([^`]+)`", line):
            current = m.group(1)
            out[current] = []
        elif current and (m := re.match(r"^\| `([^`]+)` \|", line)):
            out[current].append(m.group(1))
    return out


def _pattern(names: list[str]) -> re.Pattern[str]:
    parts = []
    for name in names:
        text = re.escape(name)
        for ph, rx in PLACEHOLDERS.items():
            text = text.replace(re.escape(ph), rx)
        parts.append(text)
    return re.compile("(?:" + "|".join(parts) + ")")


def _undocumented(section: str, names: list[str]) -> list[str]:
    doc = _sections()
    assert section in doc, f"docs/tables.md has no section `{section}`"
    rx = _pattern(doc[section])
    return [n for n in names if not rx.fullmatch(n)]


def _key_paths(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        out.append(path)
        if isinstance(value, dict):
            out.extend(_key_paths(value, path))
    return out


def _has_unit_or_is_key(column: str, values: pd.Series) -> bool:
    tokens = column.split("_")
    return (
        bool(UNITS & set(tokens))
        or column in IDS
        or column.endswith("_id")
        or column.startswith("n_")
        or values.dtype == bool
        or set(values.dropna().unique()) <= {True, False}
    )


@pytest.fixture(scope="module")
def saved(rts, tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    runs = {m: fx.run_market(rts, method=m, seed=0) for m in ("mlf", "centralized")}
    # microgrids add tables, columns and keys (models/microgrid.md)
    runs["microgrids"] = fx.run_market(fx.load_instance(MICROGRIDS), method="mlf", seed=0)
    return {m: (r, r.save(root / m, figures=False)) for m, r in runs.items()}


@pytest.mark.parametrize("method", ["mlf", "centralized", "microgrids"])
def test_every_csv_column_is_in_the_dictionary(saved, method):
    _, folder = saved[method]
    csvs = sorted(folder.glob("*.csv"))
    assert len(csvs) >= 9  # centralized: no requirement, offers, bids, tso_clearing
    for path in csvs:
        table = pd.read_csv(path)
        columns = [str(c) for c in table.columns]
        assert not [c for c in columns if c.startswith(("Unnamed", "level_"))], path.name
        assert _undocumented(path.name, columns) == [], path.name
        no_unit = [c for c in columns if not _has_unit_or_is_key(c, table[c])]
        assert no_unit == [], f"{path.name}: columns without a unit {no_unit}"


@pytest.mark.parametrize("method", ["mlf", "centralized", "microgrids"])
def test_every_summary_and_timings_key_is_in_the_dictionary(saved, method):
    result, folder = saved[method]
    summary = json.loads((folder / "summary.json").read_text())
    paths = _key_paths(summary)
    assert "dso.DSO1.welfare.social_cost_eur" in paths
    assert _undocumented("summary.json", paths) == []
    timings = json.loads((folder / "timings.json").read_text())
    assert _undocumented("timings.json", list(timings)) == []
    assert set(result.summary) - set(summary) == {"clearing_time_s"}


def test_every_option_of_the_summary_is_documented():
    doc = {n.removeprefix("options.") for n in _sections()["summary.json"] if "options." in n}
    assert doc == (set(flat_options()) - {"workers", "threads", "scheduler"}) | {"method"}


def test_the_compare_tables_are_in_the_dictionary(saved):
    rows = [
        {
            "name": f"{m}-seed=0",
            "method": m,
            "seed": 0,
            "varied": {} if m == "centralized" else {"dcp_weight": 0.5},
            "summary": json.loads((folder / "summary.json").read_text()),
            "clearing_time_s": 1.0,
        }
        for m, (_, folder) in saved.items()
        if m != "microgrids"
    ]
    for name, table in (
        ("runs.csv", runs_table(rows, ["dcp_weight"])),
        ("dso.csv", dso_table(rows, ["dcp_weight"])),
    ):
        columns = list(table.columns)
        assert "dcp_weight" in columns
        assert _undocumented(name, columns) == [], name
        no_unit = [c for c in columns if c != "dcp_weight" and not _has_unit_or_is_key(c, table[c])]
        assert no_unit == [], f"{name}: columns without a unit {no_unit}"


def test_the_dictionary_names_the_social_cost_to_compare():
    text = DOC.read_text(encoding="utf-8")
    assert "**Compare `social_cost_eur` across methods**" in text
    assert "social_cost_lindistflow_eur" in text


def test_a_saved_table_has_named_columns_only():
    hourly = pd.DataFrame({"x_mw": [1.0, 2.0]}, index=pd.Index([1, 2], name="hour"))
    assert list(flat_table(hourly).columns) == ["hour", "x_mw"]
    plain = pd.DataFrame({"x_mw": [1.0, 2.0]})
    assert list(flat_table(plain).columns) == ["x_mw"]
    with pytest.raises(ValueError, match="unnamed level"):
        flat_table(pd.DataFrame({"x_mw": [1.0]}, index=["a"]), "t")
    stacked = hourly.stack().reset_index()  # level_1: pandas' name for an unnamed level
    with pytest.raises(ValueError, match="unnamed columns"):
        flat_table(stacked, "t")
