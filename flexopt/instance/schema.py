"""Frozen dataclasses of a validated instance (the on-disk format is in instances/README.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DSOData",
    "FeederData",
    "Instance",
    "MarketData",
    "ScenarioData",
    "TransmissionData",
]


@dataclass(frozen=True, eq=False)
class TransmissionData:
    """Transmission network tables.

    ``buses``: index ``bus``; ``name``, ``vn_kv``, ``load_p_mw`` (peak forecast),
    ``sigma_pu`` (std of the relative load forecast error).
    ``branches``: index ``branch``; ``from_bus``, ``to_bus``, ``x_pu``, ``tap``, ``rating_mw``.
    ``generators``: index ``gen``; ``bus``, ``p_min_mw``, ``p_max_mw``, ``c0_eur_per_h``,
    ``c1_eur_per_mwh``, ``c2_eur_per_mw2h``.
    """

    buses: pd.DataFrame
    branches: pd.DataFrame
    generators: pd.DataFrame
    slack_bus: int
    base_mva: float


@dataclass(frozen=True, eq=False)
class FeederData:
    """A radial feeder: ``branches`` (``from_bus`` → ``to_bus``, ``r_ohm``, ``x_ohm``, and the
    peak load ``p_mw``/``q_mvar`` at ``to_bus``), its nominal voltage and its root bus."""

    name: str
    branches: pd.DataFrame
    vn_kv: float
    root: int


@dataclass(frozen=True, eq=False)
class DSOData:
    """One DSO: its interface bus on the transmission side, its feeder and its prosumers.

    The DSO operates ``n_feeders`` identical copies of ``feeder`` with its prosumers (a
    representative feeder): each prosumer row stands for ``n_feeders`` identical prosumers, one
    per copy, and DSO-level quantities (flexibility, losses) are ``n_feeders`` × the feeder's.

    ``prosumers``: index ``prosumer_id``; ``bus`` (feeder bus), ``p_max_mw``, ``e_max_mwh``,
    ``soc_init_pu``, ``efficiency``, ``a_eur_per_mw2h``, ``b_eur_per_mwh``.
    ``baseline_mw``: hours × prosumers, battery discharge (+) / charge (−) before the market.
    """

    id: str
    bus: int
    feeder: FeederData
    n_feeders: int
    prosumers: pd.DataFrame
    baseline_mw: pd.DataFrame


@dataclass(frozen=True, eq=False)
class ScenarioData:
    """Load profile, sudden load increase and forecast uncertainty (``models/plf.md``, P1).

    ``load_profile``: hour → share of the peak load. ``load_increase``: hours × buses, the
    relative increase ``Δ_{b,t}`` over the forecast that the day-ahead market did not see.
    """

    load_profile: pd.Series
    load_increase: pd.DataFrame
    balancing: str
    risk_quantile: float
    correlation: float


@dataclass(frozen=True, eq=False)
class MarketData:
    """Market parameters shared by the stages."""

    loss_price_eur_per_mwh: float
    loss_coverage: float


@dataclass(frozen=True, eq=False)
class Instance:
    """A validated flexopt instance. Build it with :func:`flexopt.load_instance`."""

    name: str
    description: str
    path: Path
    hours: int
    dt_h: float
    transmission: TransmissionData
    scenario: ScenarioData
    market: MarketData
    dsos: tuple[DSOData, ...]

    @property
    def hour_index(self) -> pd.Index:
        return pd.RangeIndex(1, self.hours + 1, name="hour")

    def forecast_load_mw(self) -> pd.DataFrame:
        """Day-ahead forecast ``L_{b,t}`` (hours × buses) = peak × profile."""
        peak = self.transmission.buses["load_p_mw"]
        values = np.outer(self.scenario.load_profile.to_numpy(), peak.to_numpy())
        return pd.DataFrame(values, index=self.hour_index, columns=peak.index)

    def dso(self, dso_id: str) -> DSOData:
        for d in self.dsos:
            if d.id == dso_id:
                return d
        raise KeyError(f"no DSO {dso_id!r} in instance {self.name!r}")
