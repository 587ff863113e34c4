"""The figures of a comparison: ``fx.plot.compare`` per set of the varied options, and the
losses–price trade-off across a ``dcp_weight`` sweep (``fx.plot.tradeoff``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flexopt.atomic import atomic_file
from flexopt.report.canvas import Figure
from flexopt.report.figures import DPI

__all__ = ["draw_figures"]

#: The sweep the trade-off figure is drawn across.
SWEPT = "dcp_weight"


def _save(fig: Figure, path: Path) -> Path:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    return path


def _values(rows: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    """The values of a varied option across the runs, in order of appearance."""
    out: list[Any] = []
    for r in rows:
        if name in r["varied"] and r["varied"][name] not in out:
            out.append(r["varied"][name])
    return out


def _matching(rows: Sequence[Mapping[str, Any]], combo: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per method, the first run whose varied options (those that apply to it) take the
    values of ``combo``."""
    picked: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["method"] not in picked and all(combo[k] == v for k, v in r["varied"].items()):
            picked[r["method"]] = r["summary"]
    return list(picked.values())


def _label(combo: Mapping[str, Any]) -> str:
    def text(v: Any) -> str:
        if isinstance(v, tuple | list):
            return ":".join(f"{x:g}" for x in v)
        return f"{v:g}" if isinstance(v, float) else f"{v}"  # as in the runs' names

    return "-".join(f"{k}={text(v)}" for k, v in combo.items())


def draw_figures(
    rows: Sequence[Mapping[str, Any]], varied: Sequence[str], folder: Path, seed: int
) -> list[Path]:
    """Draw the comparison figures of the runs with ``seed`` into ``folder``: one
    ``compare[_<set>].png`` per combination of the varied options, and ``tradeoff.png`` when
    ``dcp_weight`` is varied (the other varied options at their first value)."""
    import itertools

    from flexopt.report.plot import compare, tradeoff

    mine = [r for r in rows if r["seed"] == seed]
    values = {name: _values(mine, name) for name in varied}
    written = []
    for combo_values in itertools.product(*values.values()):
        combo = dict(zip(values, combo_values, strict=True))
        summaries = _matching(mine, combo)
        name = f"compare_{_label(combo)}" if combo else "compare"
        written.append(_save(compare(summaries), folder / f"{name}.png"))
    if SWEPT in values and any(r["varied"].get(SWEPT) is not None for r in mine):
        first = {k: v[0] for k, v in values.items() if k != SWEPT and v}
        sweep = [
            r["summary"]
            for r in mine
            if SWEPT in r["varied"] and all(r["varied"].get(k, v) == v for k, v in first.items())
        ]
        written.append(_save(tradeoff(sweep, SWEPT), folder / "tradeoff.png"))
    return written
