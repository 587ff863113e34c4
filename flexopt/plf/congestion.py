"""Congestion table from PLF moments (stage S2, eq. P6 in ``models/plf.md``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flexopt.plf.methods import PLFResult

__all__ = ["congestion_table"]


def congestion_table(
    result: PLFResult,
    rating_mw: np.ndarray,
    hours: pd.Index,
    branches: pd.Index,
    risk_quantile: float = 0.0,
    tol_mw: float = 1e-6,
) -> pd.DataFrame:
    """One row per branch-hour with the congestion verdict (P6).

    A branch is congested when ``|E f| + z σ_f > F̄`` (``z = risk_quantile``; ``z = 0`` is the
    paper's mean-flow criterion); ``overload_mw = max(0, |E f| + z σ_f − F̄)``.

    Returns
    -------
    pandas.DataFrame
        Columns ``hour``, ``branch``, ``mean_mw``, ``std_mw``, ``rating_mw``,
        ``loading_percent``, ``overload_mw``, ``prob_overload``, ``congested``.
    """
    t, l = result.mean_mw.shape
    rating = np.broadcast_to(rating_mw, (t, l))
    stressed = np.abs(result.mean_mw) + risk_quantile * result.std_mw
    overload = np.clip(stressed - rating, 0.0, None)
    return pd.DataFrame(
        {
            "hour": np.repeat(np.asarray(hours), l),
            "branch": np.tile(np.asarray(branches), t),
            "mean_mw": result.mean_mw.ravel(),
            "std_mw": result.std_mw.ravel(),
            "rating_mw": rating.ravel(),
            "loading_percent": (100.0 * np.abs(result.mean_mw) / rating).ravel(),
            "overload_mw": np.where(overload > tol_mw, overload, 0.0).ravel(),
            "prob_overload": result.prob_overload.ravel(),
            "congested": (overload > tol_mw).ravel(),
        }
    )
