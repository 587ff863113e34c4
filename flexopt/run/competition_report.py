"""The rival DSOs' game in a run's tables and summary (``models/competition.md`` N13): the
table ``competition`` (one row per DSO and congested hour) and the summary key
``competition``, each against the price-taking market. Every column and key is in
``docs/tables.md``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flexopt.market.equilibrium import CompetitionResult, lerner, marginal_cost
from flexopt.market.tso import TSOMarketResult

__all__ = ["competition_summary", "competition_table"]


def _long(frame: pd.DataFrame, name: str) -> pd.Series:
    """Hours × DSOs → a series on (dso_id, hour)."""
    out = frame.T.stack(future_stack=True).rename(name)
    out.index.names = ["dso_id", "hour"]
    return out


def _figures(res: TSOMarketResult, markups: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Price, acceptance, marginal cost and Lerner index of one S7 clearing (hours × DSOs)."""
    cost = marginal_cost(res, markups)
    return {
        "price_eur_per_mwh": res.price_eur_per_mwh,
        "accepted_mw": res.accepted_mw,
        "marginal_cost_eur_per_mwh": cost,
        "lerner_pu": lerner(res.price_eur_per_mwh, cost),
    }


def competition_table(c: CompetitionResult) -> pd.DataFrame:
    """One row per DSO and congested hour: pivotal, capped, the markup, and price,
    acceptance, marginal cost, Lerner index and profit at the final markups and when price
    taking (``price_taking_*``). Prices, costs and Lerner indices are NaN where nothing was
    accepted."""
    zero = c.markup_eur_per_mwh * 0.0
    eq = _figures(c.clearing, c.markup_eur_per_mwh)
    pt = _figures(c.price_taking, zero)
    cols = {
        "pivotal": c.pivotal,
        "capped": c.capped,
        "markup_eur_per_mwh": c.markup_eur_per_mwh,
        **eq,
        "profit_eur": c.profit_eur,
        **{f"price_taking_{k}": v for k, v in pt.items()},
        "price_taking_profit_eur": c.price_taking_profit_eur,
    }
    table = pd.concat([_long(v, k) for k, v in cols.items()], axis=1).reset_index()
    return table.astype({"pivotal": bool, "capped": bool})


def _r(x: float, nd: int = 6) -> float:
    return round(float(x), nd)


def _payment(res: TSOMarketResult, dt_h: float) -> float:
    return float((res.price_eur_per_mwh.fillna(0.0) * res.accepted_mw).to_numpy().sum() * dt_h)


def _max_or_none(values: pd.DataFrame | pd.Series) -> float | None:
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    return _r(a.max()) if a.size else None


def competition_summary(c: CompetitionResult, dt_h: float) -> dict[str, Any]:
    """The summary key ``competition``: how the game ended, the TSO's payment, relief and
    unresolved overload against the price-taking market, market power (Lerner index,
    pivotal DSO-hours), the solver work, and per DSO its profit and largest markup."""
    pay, pay_pt = _payment(c.clearing, dt_h), _payment(c.price_taking, dt_h)
    eq = _figures(c.clearing, c.markup_eur_per_mwh)
    out: dict[str, Any] = {
        "status": c.status.value,
        "rounds": c.rounds,
        "cycle_length": c.cycle_length,
        "tso_payment_eur": _r(pay),
        "tso_payment_price_taking_eur": _r(pay_pt),
        "tso_payment_ratio_pu": _r(pay / pay_pt) if pay_pt > 0 else None,
        "accepted_mwh": _r(c.clearing.accepted_mw.to_numpy().sum() * dt_h),
        "accepted_price_taking_mwh": _r(c.price_taking.accepted_mw.to_numpy().sum() * dt_h),
        "unresolved_mwh": _r(c.clearing.unresolved_mw.to_numpy().sum() * dt_h),
        "unresolved_price_taking_mwh": _r(c.price_taking.unresolved_mw.to_numpy().sum() * dt_h),
        "pivotal_dso_hours": int(c.pivotal.to_numpy().sum()),
        "capped_dso_hours": int(c.capped.to_numpy().sum()),
        "lerner_max_pu": _max_or_none(eq["lerner_pu"]),
        **{k: int(c.counts.get(k, 0)) for k in _COUNTS},
    }
    out["dso"] = {
        d: {
            "profit_eur": _r(c.profit_eur[d].sum()),
            "profit_price_taking_eur": _r(c.price_taking_profit_eur[d].sum()),
            "markup_max_eur_per_mwh": _r(c.markup_eur_per_mwh[d].max()),
            "lerner_max_pu": _max_or_none(eq["lerner_pu"][d]),
            "pivotal_hours": int(c.pivotal[d].sum()),
        }
        for d in c.markup_eur_per_mwh.columns
    }
    return out


_COUNTS = ("mpec_solves", "mpec_retries", "mpec_failures", "cuts", "enumerated", "clearings")
