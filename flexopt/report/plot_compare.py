"""The method-comparison figure: several runs of one instance side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from matplotlib.axes import Axes

from flexopt.report.canvas import Figure, new_figure

__all__ = ["WELFARE_TERMS", "compare"]

#: The welfare split of a run (``summary["welfare"]``), in the order drawn, with labels.
WELFARE_TERMS: dict[str, str] = {
    "tso_payment_eur": "TSO\npayment",
    "dso_balance_eur": "DSO\nbalance",
    "prosumer_surplus_eur": "prosumer\nsurplus",
    "social_cost_eur": "social\ncost",
    "loss_value_eur": "loss\nvalue",
}


class _HasSummary(Protocol):
    @property
    def summary(self) -> dict[str, Any]: ...


def _summaries(results: Sequence[_HasSummary | Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    out = [r if isinstance(r, Mapping) else r.summary for r in results]
    if not out:
        raise ValueError("compare: no results given")
    names = {s["instance"] for s in out}
    if len(names) > 1:
        raise ValueError(f"compare: runs of different instances: {', '.join(sorted(names))}")
    return out


def _labels(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The method of each run; a method run twice is told apart by its position."""
    methods = [str(s["method"]) for s in summaries]
    return [m if methods.count(m) == 1 else f"{m} #{i + 1}" for i, m in enumerate(methods)]


def _bars(ax: Axes, labels: list[str], values: np.ndarray, title: str, unit: str) -> None:
    """One bar per run from zero, each with its value written on it."""
    x = np.arange(len(labels))
    bars = ax.bar(x, values, 0.6, color=[f"C{i % 10}" for i in range(len(labels))])
    ax.bar_label(bars, [f"{v:,.1f}" for v in values], fontsize=8, padding=2)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xticks(x, labels)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    ax.margins(y=0.18)


def compare(results: Sequence[_HasSummary | Mapping[str, Any]]) -> Figure:
    """Runs of the same instance with different methods side by side: the relief bought, the
    overload left, the TSO payment, the change of feeder losses, the social cost and the
    welfare split (``summary["welfare"]``).

    Parameters
    ----------
    results : sequence of MarketResult or summary dicts
        Of one instance (a ``ValueError`` otherwise), e.g. ``none``, ``mlf``, ``wca`` and
        ``centralized``.
    """
    summaries = _summaries(results)
    labels = _labels(summaries)

    def col(key: str) -> np.ndarray:
        return np.array([float(s[key] or 0.0) for s in summaries])

    fig = new_figure(max(11.0, 3 * (1.2 + 0.9 * len(labels))), 7.0)
    ax = fig.subplot_mosaic([["relief", "overload", "tso"], ["losses", "social", "welfare"]])
    x = np.arange(len(labels))
    flex, loss_relief = col("flex_accepted_mwh"), col("relief_losses_mwh")
    a = ax["relief"]
    a.bar(x, flex, 0.6, label="accepted flexibility", color="C0")
    top = a.bar(x, loss_relief, 0.6, bottom=flex, label="from lower feeder losses", color="C9")
    a.bar_label(top, [f"{v:,.1f}" for v in flex + loss_relief], fontsize=8, padding=2)
    a.set_xticks(x, labels)
    a.set_title("Relief at the DSO interfaces", fontsize=10)
    a.set_ylabel("MWh over the day")
    a.set_ylim(0.0, 1.4 * max(float((flex + loss_relief).max()), 1e-9))  # room for the legend
    a.legend(fontsize=8, loc="upper left", frameon=False)

    _bars(ax["overload"], labels, col("overload_mw_after"), "Overload left after", "MW·h")
    before = col("overload_mw_before")
    ax["overload"].axhline(before.max(), ls="--", color="0.4", lw=1, label="before flexibility")
    ax["overload"].legend(fontsize=8, loc="center right")
    _bars(ax["tso"], labels, col("tso_cost_eur"), "TSO payment", "€")
    _bars(
        ax["losses"],
        labels,
        col("dso_losses_mwh_after") - col("dso_losses_mwh_before"),
        "Change of DSO feeder losses",
        "MWh over the day",
    )
    _bars(
        ax["social"],
        labels,
        col("social_cost_eur"),
        "Social cost (flexibility + day's losses)",
        "€",
    )

    w = ax["welfare"]
    width = 0.8 / len(labels)
    terms = list(WELFARE_TERMS)
    tx = np.arange(len(terms))
    for i, (lab, s) in enumerate(zip(labels, summaries, strict=True)):
        values = [float(s["welfare"][t]) for t in terms]
        w.bar(tx - 0.4 + (i + 0.5) * width, values, width, label=lab, color=f"C{i % 10}")
    w.axhline(0.0, color="k", lw=0.6)
    w.set_xticks(tx, [WELFARE_TERMS[t] for t in terms], fontsize=8)
    w.set_title("Welfare split\nTSO payment = balance + surplus + cost", fontsize=9)
    w.set_ylabel("€")
    w.legend(
        fontsize=8, title="method", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0)
    )
    fig.suptitle(f"Methods compared on {summaries[0]['instance']}", fontsize=11)
    return fig
