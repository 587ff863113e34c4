"""What crosses the TSO–DSO boundary: a DSO's block bid to the TSO market (S7,
``models/tso_market.md``) and a DSO's area as the common market sees it
(``models/centralized.md``).

Plain data, without Pyomo: the DSO tasks build and ship these, and a pool worker that runs
them never imports a modelling layer it does not use (``flexopt.executors``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flexopt.grid import Feeder

__all__ = ["DSOBid", "DistributionArea"]


@dataclass(frozen=True, eq=False)
class DSOBid:
    """What a DSO sends to the TSO: its interface bus and increasing block bids per hour.

    Attributes
    ----------
    dso_id : str
    bus : int
        Transmission interface bus.
    q_mw : DataFrame
        hours × blocks, block sizes (MW).
    price_eur_per_mwh : DataFrame
        hours × blocks, non-decreasing along the blocks.
    """

    dso_id: str
    bus: int
    q_mw: pd.DataFrame
    price_eur_per_mwh: pd.DataFrame


@dataclass(frozen=True, eq=False)
class DistributionArea:
    """One DSO as the common market sees it (one feeder copy; congested hours only).

    Attributes
    ----------
    dso_id : str
    bus : int
        Transmission interface bus.
    n_feeders : int
        Identical feeder copies ``n_d``.
    feeder : Feeder
    p_mw, q_mvar : ndarray
        ``[T, n_bus]`` day-ahead net load of one copy.
    prosumer_id : Index
        ``[n]`` every prosumer of the DSO (no screening: the common market sees them all).
    bus_pos : ndarray
        ``[n]`` feeder bus position of each prosumer.
    a, b : ndarray
        ``[n]`` original offer coefficients (€/MW²h, €/MWh).
    u_max_mw : ndarray
        ``[T, n]`` power headroom over the baseline (Z2).
    energy_mwh : ndarray
        ``[T, n]`` cap on the delivered energy up to each hour (Z3).
    """

    dso_id: str
    bus: int
    n_feeders: int
    feeder: Feeder
    p_mw: np.ndarray
    q_mvar: np.ndarray
    prosumer_id: pd.Index
    bus_pos: np.ndarray
    a: np.ndarray
    b: np.ndarray
    u_max_mw: np.ndarray
    energy_mwh: np.ndarray

    @property
    def incidence(self) -> np.ndarray:
        """``[n, n_bus]``: 1 where prosumer ``i`` sits."""
        m = np.zeros((len(self.bus_pos), self.feeder.n_bus))
        m[np.arange(len(self.bus_pos)), self.bus_pos] = 1.0
        return m
