"""Upward flexibility of battery prosumers (``models/local_market.md`` M1–M3)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["energy_headroom_mwh", "flexibility_capacity", "soc_trajectory_mwh", "spare_energy_mwh"]


def soc_trajectory_mwh(
    prosumers: pd.DataFrame, baseline_mw: pd.DataFrame, dt_h: float
) -> np.ndarray:
    """Stored energy at the end of every hour under the baseline ``[T, n]`` (I1 / M1)."""
    eta = prosumers["efficiency"].to_numpy()
    p = baseline_mw.to_numpy()
    draw = np.where(p > 0, p / eta, p * eta) * dt_h
    e0 = (prosumers["soc_init_pu"] * prosumers["e_max_mwh"]).to_numpy()
    levels: np.ndarray = e0 - np.cumsum(draw, axis=0)
    return levels


def spare_energy_mwh(
    prosumers: pd.DataFrame, baseline_mw: pd.DataFrame, first_hour: int, dt_h: float
) -> np.ndarray:
    """Energy a prosumer can release from ``first_hour`` on without breaking its baseline (M2).

    ``E^spare_i = min_{τ ≥ first_hour−1} E_{i,τ}``: extra discharge lowers the stored energy
    of every later hour, so the smallest later level (the start of ``first_hour`` included)
    bounds it. Returns ``[n]`` MWh.
    """
    e = soc_trajectory_mwh(prosumers, baseline_mw, dt_h)
    e0 = (prosumers["soc_init_pu"] * prosumers["e_max_mwh"]).to_numpy()
    levels = np.vstack([e0[None, :], e])  # level at the end of hour τ = row τ (row 0: start)
    pos = int(baseline_mw.index.get_loc(first_hour))
    spare: np.ndarray = np.clip(levels[pos:].min(axis=0), 0.0, None)
    return spare


def flexibility_capacity(
    prosumers: pd.DataFrame, baseline_mw: pd.DataFrame, weight: pd.Series, dt_h: float
) -> pd.DataFrame:
    """Upward flexibility ``Ū_{i,t}`` (MW) per hour and prosumer (M3).

    ``Ū_{i,t} = min(p̄_i − p^base_{i,t}, η_i e_{i,t} / Δt)`` where the spare energy (M2) is
    split over the hours with a positive ``weight`` (the DSO's requirement ``R_{d,t}``) in
    proportion to it, ``e_{i,t} = E^spare_i w_t / Σ_τ w_τ``, so that hours decouple — a
    simplification shared by every solution method. Hours with zero weight get ``Ū = 0``.

    Parameters
    ----------
    prosumers : DataFrame
        ``p_max_mw``, ``e_max_mwh``, ``soc_init_pu``, ``efficiency`` per prosumer.
    baseline_mw : DataFrame
        hours × prosumers, discharge > 0.
    weight : Series
        Non-negative per hour (index ⊆ baseline hours).

    Returns
    -------
    DataFrame
        hours × prosumers, MW.
    """
    w = weight.reindex(baseline_mw.index, fill_value=0.0).clip(lower=0.0)
    out = pd.DataFrame(0.0, index=baseline_mw.index, columns=baseline_mw.columns)
    if w.sum() <= 0:
        return out
    first = w.index[w.to_numpy() > 0][0]
    spare = spare_energy_mwh(prosumers, baseline_mw, first, dt_h)
    share = (w / w.sum()).to_numpy()[:, None]
    eta = prosumers["efficiency"].to_numpy()[None, :]
    power = (prosumers["p_max_mw"].to_numpy()[None, :] - baseline_mw.to_numpy()).clip(0.0)
    energy = eta * spare[None, :] * share / dt_h
    out[:] = np.where(share > 0, np.minimum(power, energy), 0.0)
    return out


def energy_headroom_mwh(
    prosumers: pd.DataFrame, baseline_mw: pd.DataFrame, hours: pd.Index, dt_h: float
) -> np.ndarray:
    """Cap on the energy delivered up to each of ``hours`` (``models/centralized.md`` Z3).

    Extra discharge in hour ``t`` lowers the stored energy at the end of ``t`` and of every
    later hour by ``u Δt / η``; the baseline stays feasible when every such level stays
    ``≥ 0``. With ``hours`` sorted, ``Δt Σ_{τ ≤ t_k} u_τ ≤ η min_{t_k ≤ τ < t_{k+1}} E_τ``
    for every ``k`` is exactly that condition (the cumulative sum is constant between
    listed hours). The hourly split of M3 is a restriction of it.

    Returns
    -------
    ndarray
        ``[len(hours), n]`` MWh delivered.
    """
    levels = soc_trajectory_mwh(prosumers, baseline_mw, dt_h)  # row τ: end of hour τ
    pos = baseline_mw.index.get_indexer(hours)
    if (pos < 0).any() or (np.diff(pos) <= 0).any():
        raise ValueError("hours must be sorted hours of the baseline")
    ends = np.append(pos[1:], len(baseline_mw))
    window_min = np.stack([levels[p:e].min(axis=0) for p, e in zip(pos, ends, strict=True)])
    headroom: np.ndarray = prosumers["efficiency"].to_numpy()[None, :] * np.clip(
        window_min, 0.0, None
    )
    return headroom
