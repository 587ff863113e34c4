"""Which line limits can bind (``models/tso_market.md`` K6): an exact presolve shared by the
TSO market (S7) and the centralized market.

A limit ``|E f_{l,t} + Σ_d H_{t,l,d} F_{d,t}| ≤ F̄_{l,t}`` over ``0 ≤ F_{d,t} ≤ F̄_{d,t}`` cannot
be violated when even the most adverse flexibility keeps the flow inside it:

    E f_{l,t} + Σ_d max(0, H_{t,l,d}) F̄_{d,t} ≤ F̄_{l,t}   and
    E f_{l,t} + Σ_d min(0, H_{t,l,d}) F̄_{d,t} ≥ −F̄_{l,t}                                   (K6)

Such rows are left out of the model: the optimum, the accepted quantities and the prices
are unchanged (their duals are zero), while a 300-bus system with 100 DSOs keeps a few
dozen of its ~10⁴ line-hour rows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binding_candidates"]


def binding_candidates(
    mean_mw: np.ndarray, limit_mw: np.ndarray, sensitivity: np.ndarray, f_max_mw: np.ndarray
) -> np.ndarray:
    """Mask of the line-hours whose limit some feasible flexibility could reach (K6).

    Parameters
    ----------
    mean_mw, limit_mw : ndarray
        ``[T, L]`` mean flow and limit.
    sensitivity : ndarray
        ``[T, L, D]`` flow change per MW of flexibility from each DSO.
    f_max_mw : ndarray
        ``[T, D]`` the most flexibility each DSO can deliver (``≥ 0``).

    Returns
    -------
    ndarray of bool, ``[T, L]``
    """
    f = np.clip(f_max_mw, 0.0, None)[:, None, :]
    hi = mean_mw + (np.clip(sensitivity, 0.0, None) * f).sum(-1)
    lo = mean_mw + (np.clip(sensitivity, None, 0.0) * f).sum(-1)
    tol = 1e-9 * np.maximum(1.0, np.abs(limit_mw))
    return (hi > limit_mw - tol) | (lo < -limit_mw + tol)
