"""The losses–price trade-off of the DSO coefficient problem across a sweep of one option
(``dcp_weight``): ``f_loss`` against ``f_price``, summed over the DSOs, one line per method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from flexopt.report.canvas import Figure, new_figure
from flexopt.report.compare_tables import dcp_sums
from flexopt.report.plot_compare import _HasSummary, _summaries

__all__ = ["tradeoff"]


def tradeoff(results: Sequence[_HasSummary | Mapping[str, Any]], by: str = "dcp_weight") -> Figure:
    """``f_loss`` (MWh) against ``f_price`` (€) of the DSOs' factors, summed over the DSOs
    (``summary["dso"][d]["dcp"]``), as the option ``by`` varies: one line per method through
    its runs in the order of ``by``, each point labelled with its value.

    Parameters
    ----------
    results : sequence of MarketResult or summary dicts
        Runs of one instance whose summaries record their options (``summary["options"]``);
        runs without DSO coefficient problems (the centralized market) are left out.
    by : str
        The swept option (default ``dcp_weight``, the ``w`` of the DSO objective).

    Raises
    ------
    ValueError
        For no run with a DSO coefficient problem, or runs of different instances.
    """
    summaries = _summaries(results)
    lines: dict[str, list[tuple[float, float, float]]] = {}
    for s in summaries:
        f_loss, f_price = dcp_sums(s)
        value = s.get("options", {}).get(by)
        if np.isnan(f_loss) or value is None:
            continue
        lines.setdefault(str(s["method"]), []).append((float(value), f_price, f_loss))
    if not lines:
        raise ValueError(f"tradeoff: no run with a DSO coefficient problem and option {by!r}")
    fig = new_figure(7.5, 5.5)
    ax = fig.add_subplot()
    for i, (method, points) in enumerate(lines.items()):
        points.sort()
        w, price, loss = (np.array(col) for col in zip(*points, strict=True))
        ax.plot(price, loss, "-o", color=f"C{i % 10}", label=method, ms=5)
        # a method whose factors do not follow w (none, mlf) sits on one point: one label
        labels: dict[tuple[float, float], list[str]] = {}
        for wi, x, y in zip(w, price, loss, strict=True):
            labels.setdefault((round(float(x), 6), round(float(y), 6)), []).append(f"{wi:g}")
        for (x, y), text in labels.items():
            ax.annotate(
                ",".join(text), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7
            )
    ax.set_xlabel("f_price: the DSOs' price of the requested flexibility (€, summed)")
    ax.set_ylabel("f_loss: the DSOs' feeder losses (MWh, summed)")
    ax.set_title(
        f"Losses vs price across {by} (points labelled with {by})\n{summaries[0]['instance']}",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(title="method", fontsize=8, title_fontsize=8)
    return fig
