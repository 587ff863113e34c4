"""The table ``intraday`` (a row per realization) and the summary key ``intraday`` of a run with
the intraday market (``models/intraday.md`` J10–J11; ``docs/tables.md``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flexopt.run.intraday import IntradayOutcome

__all__ = ["intraday_summary", "intraday_table"]


def _r(x: float, nd: int = 6) -> float:
    return round(float(x), nd)


def intraday_table(out: IntradayOutcome) -> pd.DataFrame:
    """A row per finished realization: its overload without any market, after the day-ahead
    market alone and after the intraday market too, the intraday market's figures and the
    TSO's cost in both cases (J10)."""
    plan = out.plan
    penalty = plan.config.overload_penalty_eur_per_mwh
    rows = []
    for s in out.scenarios:
        rows.append(
            {
                "scenario_id": s.scenario,
                "n_intraday_hours": len(s.hours),
                "no_market_overload_mwh": s.overload_none_mwh,
                "da_only_overload_mwh": s.overload_dayahead_mwh,
                "da_only_overloaded": s.overload_dayahead_mwh > 0.0,
                "da_only_cost_eur": plan.payment_eur + penalty * s.overload_dayahead_mwh,
                "intraday_requirement_mwh": s.requirement_mwh,
                "intraday_accepted_mwh": s.accepted_mwh,
                "intraday_relief_losses_mwh": s.relief_losses_mwh,
                "intraday_payment_eur": s.payment_eur,
                "da_id_overload_mwh": s.overload_intraday_mwh,
                "da_id_overloaded": s.overload_intraday_mwh > 0.0,
                "da_id_cost_eur": plan.payment_eur
                + s.payment_eur
                + penalty * s.overload_intraday_mwh,
            }
        )
    return pd.DataFrame(rows)


def _case(table: pd.DataFrame, prefix: str, payment: pd.Series) -> dict[str, float]:
    """Expected cost, payment and overload, and the probability of any overload (J11)."""
    return {
        "expected_cost_eur": _r(table[f"{prefix}_cost_eur"].mean()),
        "expected_payment_eur": _r(payment.mean()),
        "expected_overload_mwh": _r(table[f"{prefix}_overload_mwh"].mean(), 9),
        "overload_prob_pu": _r(table[f"{prefix}_overloaded"].mean(), 9),
    }


def intraday_summary(out: IntradayOutcome) -> dict[str, Any]:
    """The summary key ``intraday``: the thresholds in effect, the monitored line-hours, and
    the expected figures of the day-ahead market alone (``da_only``) and with the intraday
    market (``da_id``) over the finished realizations (J11)."""
    plan = out.plan
    table = intraday_table(out)
    da_payment = pd.Series(plan.payment_eur, index=table.index)
    da_only = _case(table, "da_only", da_payment)
    da_id = _case(table, "da_id", da_payment + table["intraday_payment_eur"])
    da_id["expected_intraday_payment_eur"] = _r(table["intraday_payment_eur"].mean())
    da_id["expected_intraday_accepted_mwh"] = _r(table["intraday_accepted_mwh"].mean(), 9)
    da_id["markets_held"] = int((table["n_intraday_hours"] > 0).sum())
    mon = plan.monitored
    return {
        "scenarios": plan.config.scenarios,
        "scenarios_done": len(out.scenarios),
        "interrupted": out.interrupted,
        "dayahead_quantile": _r(plan.dayahead_quantile, 9),
        "monitor_quantile": _r(plan.monitor_quantile, 9),
        "overload_penalty_eur_per_mwh": plan.config.overload_penalty_eur_per_mwh,
        "dayahead_line_hours": int(mon["dayahead"].sum()),
        "watched_line_hours": int((~mon["dayahead"]).sum()),
        "monitored_hours": [int(h) for h in plan.monitored_hours],
        "dayahead_payment_eur": _r(plan.payment_eur),
        "no_market": {
            "expected_overload_mwh": _r(table["no_market_overload_mwh"].mean(), 9),
            "overload_prob_pu": _r(np.mean(table["no_market_overload_mwh"] > 0.0), 9),
        },
        "da_only": da_only,
        "da_id": da_id,
        "value_of_intraday_eur": _r(
            table["da_only_cost_eur"].mean() - table["da_id_cost_eur"].mean()
        ),
    }
