"""Upward flexibility of battery prosumers (``models/local_market.md`` M1–M3)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flexopt.dso._flex_kernel import water_fill

__all__ = [
    "energy_headroom_mwh",
    "flexibility_capacity",
    "soc_trajectory_mwh",
    "spare_energy",
    "spare_energy_mwh",
]


def soc_trajectory_mwh(
    prosumers: pd.DataFrame, baseline_mw: pd.DataFrame, dt_h: float
) -> np.ndarray:
    """Stored energy at the end of every hour under the baseline ``[T, n]`` (I1 / M1)."""
    eta = prosumers["efficiency"].to_numpy()
    e0 = (prosumers["soc_init_pu"] * prosumers["e_max_mwh"]).to_numpy()
    return _levels(baseline_mw.to_numpy(), eta, e0, dt_h)


def _levels(p: np.ndarray, eta: np.ndarray, e0: np.ndarray, dt_h: float) -> np.ndarray:
    draw = np.where(p > 0, p / eta, p * eta) * dt_h
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
    eta = prosumers["efficiency"].to_numpy()
    e0 = (prosumers["soc_init_pu"] * prosumers["e_max_mwh"]).to_numpy()
    first = int(baseline_mw.index.get_loc(first_hour))
    return spare_energy(baseline_mw.to_numpy(), eta, e0, first, dt_h)


def spare_energy(
    p: np.ndarray, eta: np.ndarray, e0: np.ndarray, first: int, dt_h: float
) -> np.ndarray:
    """:func:`spare_energy_mwh` on arrays: baseline ``p`` ``[T, n]`` (MW), efficiencies and
    initial energies ``[n]``, ``first`` the position of the first hour."""
    levels = np.vstack([e0[None, :], _levels(p, eta, e0, dt_h)])  # row τ: end of hour τ
    spare: np.ndarray = np.clip(levels[first:].min(axis=0), 0.0, None)
    return spare


def flexibility_capacity(
    prosumers: pd.DataFrame,
    baseline_mw: pd.DataFrame,
    weight: pd.Series,
    dt_h: float,
    target_mw: pd.Series | None = None,
) -> pd.DataFrame:
    """Upward flexibility ``Ū_{i,t}`` (MW) per hour and prosumer (M3).

    The spare energy (M2) is split over the hours with a positive ``weight`` (the DSO's
    requirement ``R_{d,t}``) in proportion to it, capped by the power headroom, and what a cap
    leaves over goes to the other hours in the same proportion (water-filling):
    ``Ū_{i,t} = min(p̄_i − p^base_{i,t}, θ_i w_t)`` with ``θ_i`` such that
    ``Δt Σ_t Ū_{i,t} = η_i E^spare_i`` (or every hour at its power headroom when that uses less
    energy). Hours decouple — a simplification shared by every solution method — and the
    whole spare energy is offered. Hours with zero weight get ``Ū = 0``.

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
    hours = baseline_mw.index
    w = _on(hours, weight).clip(0.0)  # pandas' reindex and clip, on arrays: ~1 ms a DSO less
    if w.sum() <= 0:
        return pd.DataFrame(0.0, index=hours, columns=baseline_mw.columns)
    base = baseline_mw.to_numpy()
    eta = prosumers["efficiency"].to_numpy()
    e0 = (prosumers["soc_init_pu"] * prosumers["e_max_mwh"]).to_numpy()
    spare = spare_energy(base, eta, e0, int(np.flatnonzero(w > 0)[0]), dt_h)
    share = w / w.sum()
    power = (prosumers["p_max_mw"].to_numpy()[None, :] - base).clip(0.0)
    power = np.where(share[:, None] > 0, power, 0.0)
    energy = eta * spare / dt_h
    target = None if target_mw is None else _on(hours, target_mw)
    cap = water_fill(power, share, energy, target)  # = _capacity_numpy, compiled
    return pd.DataFrame(cap, index=hours, columns=baseline_mw.columns)


def _on(hours: pd.Index, s: pd.Series) -> np.ndarray:
    """``s.reindex(hours, fill_value=0.0)`` as floats."""
    values = np.append(s.to_numpy(dtype=float), 0.0)  # position −1: an hour ``s`` lacks
    out: np.ndarray = values[s.index.get_indexer(hours)]
    return out


def _capacity_numpy(
    power: np.ndarray, share: np.ndarray, energy: np.ndarray, target: np.ndarray | None
) -> np.ndarray:
    """The split of (M3) ``[T, n]`` with the weights fitted to ``target`` ``[T]`` — the numpy
    reference of :func:`flexopt.dso._flex_kernel.water_fill`."""
    cap = _split(power, share, energy)
    if target is not None:
        for _ in range(100):
            total = cap.sum(axis=1)
            short = (target > total * (1 + 1e-9) + 1e-12) & (share > 0)
            if not short.any():
                break
            raised = np.where(short, target / np.maximum(total, 1e-12), 1.0)
            new = share * raised
            new = new / new.sum()
            if np.allclose(new, share, rtol=1e-12, atol=0.0):
                break  # the weights no longer move (every short hour raised by the same ratio)
            share = new
            cap = _split(power, share, energy)
    return cap


def _split(power: np.ndarray, share: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """``min(P_{t,i}, θ_i s_t)`` ``[T, n]`` with ``θ_i`` from :func:`_water_level`."""
    theta = _water_level(power, share, energy)
    on = share[:, None] > 0
    level = np.where(on, theta[None, :] * np.where(on, share[:, None], 1.0), 0.0)
    split: np.ndarray = np.minimum(power, level)
    return split


def _water_level(power: np.ndarray, share: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """``θ_i`` with ``Σ_t min(P_{t,i}, θ_i s_t) = e_i`` ``[n]`` (``inf`` when even every hour
    at ``P`` uses less): ``Σ_t min(P, θ s)`` is piecewise linear in ``θ`` with breakpoints
    ``P_t / s_t``; sort them and solve on the segment that holds ``e_i``."""
    on = share > 0
    s = share[on][:, None]  # [T', 1]
    p = power[on]  # [T', n]
    ratio = p / s
    order = np.argsort(ratio, axis=0, kind="stable")
    r = np.take_along_axis(ratio, order, axis=0)  # ascending breakpoints [T', n]
    p_sorted = np.take_along_axis(p, order, axis=0)
    s_sorted = np.broadcast_to(s, p.shape)[order, np.arange(p.shape[1])]
    capped = np.cumsum(p_sorted, axis=0) - p_sorted  # Σ P of the hours already capped below r_k
    free = s_sorted[::-1].cumsum(axis=0)[::-1]  # Σ s of hours k.. (not capped yet)
    level_at = capped + r * free  # Σ_t min(P, r_k s) at each breakpoint
    reach = level_at >= energy[None, :]
    k = np.argmax(reach, axis=0)  # first breakpoint whose level reaches e
    idx = np.arange(p.shape[1])
    level = (energy - capped[k, idx]) / free[k, idx]
    theta: np.ndarray = np.where(reach.any(axis=0), level, np.inf)
    return theta


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
