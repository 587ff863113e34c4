"""No non-finite number leaves a run: every table and the summary are checked before they are
returned, and an infinity or a NaN is a :class:`~flexopt.errors.NonFiniteError` naming the
table or summary key and the stage that produced it.

The only NaN a result may hold is "not applicable" where a column says so: the price of a
DSO-hour where nothing was accepted (``tso_prices``, ``settlement``; an empty CSV cell).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from flexopt.errors import NonFiniteError

__all__ = ["NAN_ALLOWED", "check_finite", "require_finite"]

#: (table, column) whose NaN means "not applicable" (a price where nothing was accepted).
NAN_ALLOWED = frozenset(
    {("tso_prices", "price_eur_per_mwh"), ("settlement", "tso_price_eur_per_mwh")}
    | {  # rival DSOs (competition.csv): a DSO-hour without acceptance has no price
        ("competition", f"{pre}{col}")
        for pre in ("", "price_taking_")
        for col in ("price_eur_per_mwh", "marginal_cost_eur_per_mwh", "lerner_pu")
    }
)
_S7 = {True: "S7 TSO flexibility market", False: "the centralized market (Z)"}


def require_finite(stage: str, **values: Any) -> None:
    """A stage's own guard: :class:`~flexopt.errors.NonFiniteError` naming the stage and the
    quantity when any of ``values`` (arrays, frames, numbers) holds an infinity or a NaN."""
    for name, value in values.items():
        a = np.asarray(value, dtype=float)
        if not np.isfinite(a).all():
            raise NonFiniteError(
                f"{stage}: non-finite {name} ({a[~np.isfinite(a)].flat[0]}); the instance's "
                "magnitudes are probably outside what the models handle"
            )


def _table_stage(name: str, column: str, bilevel: bool) -> str:
    if name == "congestion":
        return "S2′ re-check" if column.endswith("_after") else "S2 probabilistic load flow"
    return {
        "day_ahead": "S1 day-ahead market",
        "participants": "S4 loss allocation and screening",
        "requirement": "S3 flexibility requirement",
        "unresolved_requirement": "S3 flexibility requirement",
        "offers": "S5 coefficient modification",
        "bids": "S6 block bids",
        "tso_clearing": _S7[bilevel],
        "tso_prices": _S7[bilevel],
        "line_prices": _S7[bilevel],
        "intraday": "the intraday market (J)",
        "competition": "rival DSOs (N)",
    }.get(name, "S8 local dispatch and settlement")


def _summary_stage(key: str, bilevel: bool) -> str:
    top = key.split(".")[0].split("[")[0]
    if top == "day_ahead_cost_eur":
        return "S1 day-ahead market"
    if top.endswith("_after") and top.startswith(("congested", "overload")):
        return "S2′ re-check"
    if top.startswith(("congested", "overload")):
        return "S2 probabilistic load flow"
    if top == "flex_requested_mwh":
        return "S3 flexibility requirement"
    if top in ("flex_accepted_mwh", "tso_cost_eur"):
        return _S7[bilevel]
    if top == "dso" and ".dcp." in key:
        return "S5 coefficient modification"
    if top == "intraday":
        return "the intraday market (J)"
    if top == "competition":
        return "rival DSOs (N)"
    if top in ("information_exchanged_floats", "clearing_time_s"):
        return "assembling the summary"
    return "S8 local dispatch and settlement"


def _first_bad(data: Any, where: str = "") -> tuple[str, float] | None:
    if isinstance(data, dict):
        for k, v in data.items():
            if found := _first_bad(v, f"{where}.{k}" if where else str(k)):
                return found
    elif isinstance(data, list | tuple):
        for i, v in enumerate(data):
            if found := _first_bad(v, f"{where}[{i}]"):
                return found
    elif isinstance(data, float | np.floating) and not math.isfinite(data):
        return where, float(data)
    return None


def check_finite(tables: dict[str, pd.DataFrame], summary: dict[str, Any], bilevel: bool) -> None:
    """Raise :class:`~flexopt.errors.NonFiniteError` at the first infinity or NaN (outside
    :data:`NAN_ALLOWED`) in ``tables`` or ``summary``."""
    hint = "the instance's magnitudes are probably outside what the models handle"
    for name, df in tables.items():
        for column in df.columns:
            values = df[column]
            if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
                continue
            a = values.to_numpy(dtype=float)
            bad = np.isinf(a) if (name, column) in NAN_ALLOWED else ~np.isfinite(a)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise NonFiniteError(
                    f"{_table_stage(name, str(column), bilevel)}: non-finite result {a[i]} in "
                    f"table '{name}', column '{column}' (row {i + 1}); {hint}"
                )
    found = _first_bad(summary)
    if found is not None:
        key, value = found
        raise NonFiniteError(
            f"{_summary_stage(key, bilevel)}: non-finite result {value} in the summary "
            f"('{key}'); {hint}"
        )
