"""Battery prosumers drawn at random on a feeder (the recipe of ``instances/README.md``).

Used by ``flexopt generate``, ``instances/make_rts24_3dso.py`` and
:meth:`flexopt.Instance.from_pandapower`; numpy and pandas only (no physics: the feeder is
read through its bus labels, root and base-case loads).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

__all__ = [
    "BASELINE_COLUMNS",
    "PROSUMER_COLUMNS",
    "FeederLike",
    "loaded_buses",
    "make_prosumers",
]

#: Columns of ``prosumers.csv`` (``instances/README.md``).
PROSUMER_COLUMNS = (
    "prosumer_id",
    "dso_id",
    "bus",
    "p_max_mw",
    "e_max_mwh",
    "soc_init_pu",
    "efficiency",
    "a_eur_per_mw2h",
    "b_eur_per_mwh",
)
#: Columns of ``baseline.csv``.
BASELINE_COLUMNS = ("hour", "prosumer_id", "p_mw")
#: Battery power of a prosumer on a medium-voltage feeder (MW, drawn uniformly).
P_MAX_MV = (0.05, 0.15)


class FeederLike(Protocol):
    """What the generator reads of a feeder (:class:`flexopt.grid.Feeder` has it)."""

    @property
    def bus(self) -> pd.Index: ...

    @property
    def root(self) -> int: ...

    @property
    def p_base_mw(self) -> np.ndarray: ...


def loaded_buses(feeder: FeederLike) -> list[int]:
    """Labels of the feeder's buses with a positive base-case load, root excluded, ascending."""
    p = np.asarray(feeder.p_base_mw, dtype=float)
    return sorted(int(b) for pos, b in enumerate(feeder.bus) if pos != feeder.root and p[pos] > 0)


def make_prosumers(
    feeder: FeederLike,
    n: int,
    *,
    seed: int | np.random.Generator = 0,
    dso_id: str = "DSO1",
    p_max_mw: tuple[float, float] = P_MAX_MV,
    hours: int = 24,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Battery prosumers on one representative feeder and their baseline schedule.

    ``n`` distinct loaded buses drawn at random (beyond the number of loaded buses, the extra
    prosumers share buses drawn with replacement); battery power ``p_max`` uniform in
    ``p_max_mw``, 4 h of energy, half charged, one-way efficiency 0.92–0.97; offers ``b``
    40–80 €/MWh with ``a`` making the marginal cost at full power 20–60 % above ``b``;
    baseline (self-consumption before the market): charge at 25 % of ``p_max`` in hours 1–5,
    discharge at 20 % in hours 19–20 of the first day, idle after it.

    Parameters
    ----------
    feeder : flexopt.grid.Feeder
        The feeder (any object with ``bus``, ``root`` and ``p_base_mw``); prosumers sit at its
        buses with a positive base-case load.
    n : int
        Number of prosumers, at least 1.
    seed : int or numpy.random.Generator, default 0
        Seed of the draw, or a generator to draw from (consumed in place, so that several
        DSOs can share one stream).
    dso_id : str, default "DSO1"
        The DSO's id: the ``dso_id`` column and the prefix of ``prosumer_id``
        (``DSO1-P01``, …).
    p_max_mw : (float, float), default (0.05, 0.15)
        Range of the battery power (MW); 5–15 kW suits home batteries on a low-voltage feeder.
    hours : int, default 24
        Length of the baseline (hours of the instance).

    Returns
    -------
    prosumers : pandas.DataFrame
        The columns of ``prosumers.csv`` (:data:`PROSUMER_COLUMNS`).
    baseline : pandas.DataFrame
        The columns of ``baseline.csv`` (``hour``, ``prosumer_id``, ``p_mw``; discharge > 0).

    Raises
    ------
    ValueError
        If ``n`` or ``hours`` is below 1, the power range is not positive and increasing, or
        the feeder has no loaded bus.
    """
    lo, hi = (float(v) for v in p_max_mw)
    if n < 1 or hours < 1 or not 0 < lo <= hi:
        raise ValueError(
            f"make_prosumers: n and hours must be ≥ 1 and 0 < p_max_mw[0] ≤ p_max_mw[1], "
            f"got n={n}, hours={hours}, p_max_mw={p_max_mw}"
        )
    loaded = loaded_buses(feeder)
    if not loaded:
        raise ValueError("make_prosumers: the feeder has no bus with a positive load")
    draw = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    # distinct loaded buses first; beyond that number, several prosumers share a bus
    extra = max(n - len(loaded), 0)
    chosen = draw.choice(loaded, size=n - extra, replace=False).tolist()
    chosen = sorted(chosen + (draw.choice(loaded, size=extra).tolist() if extra else []))
    rows, base_rows = [], []
    for k, bus in enumerate(chosen):
        pid = f"{dso_id}-P{k + 1:02d}"
        p_max = round(float(draw.uniform(lo, hi)), 4)
        b = round(float(draw.uniform(40.0, 80.0)), 2)
        a = round(float(draw.uniform(0.10, 0.30)) * b / p_max, 2)  # marginal cost +20…60 %
        eta = round(float(draw.uniform(0.92, 0.97)), 3)
        rows.append((pid, dso_id, bus, p_max, round(4.0 * p_max, 4), 0.5, eta, a, b))
        for hour in range(1, min(hours, 24) + 1):  # charge at night, shave the evening peak
            p = -0.25 * p_max if 1 <= hour <= 5 else (0.2 * p_max if 19 <= hour <= 20 else 0.0)
            base_rows.append((hour, pid, round(p, 6)))
    return (
        pd.DataFrame(rows, columns=list(PROSUMER_COLUMNS)),
        pd.DataFrame(base_rows, columns=list(BASELINE_COLUMNS)),
    )
