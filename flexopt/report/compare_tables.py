"""The tables of a comparison (``flexopt compare``): a row per run, and a row per run and DSO,
from the runs' summaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from flexopt.report.plot_compare import WELFARE_TERMS

__all__ = ["dcp_sums", "dso_table", "runs_table"]

#: Headline figures of a run, in the order of the table's columns.
_HEADLINE = (
    "flex_accepted_mwh",
    "relief_losses_mwh",
    "overload_mw_before",
    "overload_mw_after",
    "tso_cost_eur",
    "dso_balance_eur",
    "social_cost_eur",
    "dso_losses_mwh_before",
    "dso_losses_mwh_after",
)
#: Per-DSO figures, and the DSO coefficient problem's score of the factors.
_PER_DSO = (
    "accepted_mwh",
    "relief_losses_mwh",
    "losses_mwh_before",
    "losses_mwh_after",
    "tso_payment_eur",
    "prosumer_payment_eur",
    "balance_eur",
)
_DCP = {  # summary key → column (after ``dcp_``): the objective is dimensionless
    "objective": "objective_pu",
    "f_loss_mwh": "f_loss_mwh",
    "f_price_eur": "f_price_eur",
    "budget_eur": "budget_eur",
    "efficiency_eur": "efficiency_eur",
    "feasible": "feasible",
}


def dcp_sums(summary: Mapping[str, Any]) -> tuple[float, float]:
    """``f_loss`` and ``f_price`` summed over the DSOs (``summary["dso"][d]["dcp"]``); NaN
    for a run without DSO coefficient problems (the centralized market)."""
    scores = [d["dcp"] for d in summary.get("dso", {}).values() if "dcp" in d]
    if not scores:
        return float("nan"), float("nan")
    return (
        float(sum(s["f_loss_mwh"] for s in scores)),
        float(sum(s["f_price_eur"] for s in scores)),
    )


def _keys(run: Mapping[str, Any], varied: Sequence[str]) -> dict[str, Any]:
    """The columns that name a run: its folder, method, seed and the varied options (empty
    where an option does not apply to the method)."""
    out: dict[str, Any] = {"run": run["name"], "method": run["method"], "seed": run["seed"]}
    for name in varied:
        value = run["varied"].get(name)
        out[name] = ":".join(f"{v:g}" for v in value) if isinstance(value, list | tuple) else value
    return out


def runs_table(runs: Sequence[Mapping[str, Any]], varied: Sequence[str]) -> pd.DataFrame:
    """A row per run: its keys, the relief, the overload after, the TSO payment, the welfare
    terms, the social cost, the losses, ``f_loss``/``f_price`` summed over the DSOs and the
    clearing time.

    Parameters
    ----------
    runs : sequence of dict
        Each with ``name``, ``method``, ``seed``, ``varied`` (option → value), ``summary``
        and ``clearing_time_s``.
    varied : sequence of str
        The option names varied across the runs (a column each).
    """
    rows = []
    for run in runs:
        s = run["summary"]
        row = _keys(run, varied)
        row["relief_mwh"] = float(s["flex_accepted_mwh"]) + float(s["relief_losses_mwh"])
        row.update({k: s.get(k) for k in _HEADLINE})
        row.update({f"welfare_{t}": s["welfare"][t] for t in WELFARE_TERMS})
        row["f_loss_mwh"], row["f_price_eur"] = dcp_sums(s)
        row["clearing_time_s"] = run["clearing_time_s"]
        rows.append(row)
    return pd.DataFrame(rows)


def dso_table(runs: Sequence[Mapping[str, Any]], varied: Sequence[str]) -> pd.DataFrame:
    """A row per run and DSO: the run's keys, the DSO's figures, its welfare split and the
    score of its factors on the DSO coefficient problem (``dcp_*``; empty for the centralized
    market; ``dcp_objective_pu`` is the summary's ``dcp.objective``)."""
    rows = []
    for run in runs:
        for dso_id, d in run["summary"]["dso"].items():
            row = _keys(run, varied)
            row["dso_id"] = dso_id
            row.update({k: d.get(k) for k in _PER_DSO})
            row.update({f"welfare_{t}": d["welfare"][t] for t in WELFARE_TERMS})
            dcp = d.get("dcp", {})
            row.update({f"dcp_{col}": dcp.get(k) for k, col in _DCP.items()})
            rows.append(row)
    return pd.DataFrame(rows)
