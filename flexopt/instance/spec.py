"""What a user gives to build an instance from networks (:meth:`flexopt.Instance.from_pandapower`).

The instance layer holds no physics and imports no pandapower: the builder that reads the
nets lives in :mod:`flexopt.grid.instance_builder` and registers itself here
(:func:`register_builder`) when :mod:`flexopt.grid` is imported — which ``import flexopt``
always does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flexopt.errors import FlexoptError, InstanceError

__all__ = ["DSOSpec", "builder", "register_builder"]

_BUILDERS: dict[str, Callable[..., Any]] = {}


@dataclass(frozen=True, eq=False)
class DSOSpec:
    """One DSO of an instance built from networks.

    Parameters
    ----------
    id : str
        The DSO's id (one line, at most 200 characters).
    bus : int
        Its interface bus on the transmission side (a bus with load).
    feeder : pandapowerNet or str
        The representative feeder: a pandapower net, or a name — ``case33bw``, ``case69``,
        any ``pandapower.networks`` function without arguments, ``simbench:<code>`` (a
        SimBench grid, the optional extra ``simbench``) or a pandapower JSON file
        (``*.json``).
    copies : int, default 1
        Identical copies of the feeder the DSO operates (``feeders`` in the manifest).
    prosumers : int or pandas.DataFrame, default 12
        The number of battery prosumers per copy drawn by
        :func:`flexopt.instance.make_prosumers`, or a table with the columns of
        ``prosumers.csv`` (``prosumer_id`` as a column or the index; ``dso_id`` optional).
    baseline : pandas.DataFrame, optional
        With a prosumer table: the battery schedule before the market, long
        (``hour``, ``prosumer_id``, ``p_mw``) or wide (hours × prosumer ids); missing: idle.
        Drawn prosumers come with the generator's baseline.
    vn_kv : float, optional
        The voltage at which the DSO reads the feeder table's ohms (``vn_kv`` of the
        manifest; default: the feeder's own, the nominal voltage of its loaded buses). DSOs
        sharing a feeder at different voltages share one feeder file.
    """

    id: str
    bus: int
    feeder: Any
    copies: int = 1
    prosumers: int | pd.DataFrame = 12
    baseline: pd.DataFrame | None = None
    vn_kv: float | None = None

    def __post_init__(self) -> None:
        where = f"DSOSpec {self.id!r}"
        if not isinstance(self.id, str) or not self.id.strip():
            raise InstanceError(where, "id", "must be a non-empty string")
        if not _is_int(self.bus):
            raise InstanceError(where, "bus", f"must be an integer bus label, got {self.bus!r}")
        if not (_is_int(self.copies) and 1 <= self.copies <= 10_000):
            raise InstanceError(where, "copies", f"must be in 1..10000, got {self.copies!r}")
        if isinstance(self.prosumers, pd.DataFrame):
            if self.prosumers.empty:
                raise InstanceError(where, "prosumers", "the table has no rows")
        elif not (_is_int(self.prosumers) and 1 <= self.prosumers <= 1_000):
            raise InstanceError(
                where,
                "prosumers",
                f"must be a count in 1..1000 or a DataFrame, got {self.prosumers!r}",
            )
        if self.baseline is not None and not isinstance(self.prosumers, pd.DataFrame):
            raise InstanceError(
                where, "baseline", "is given with a prosumer table only (drawn ones have theirs)"
            )
        if self.vn_kv is not None and not (
            isinstance(self.vn_kv, int | float) and 0.1 <= self.vn_kv <= 1500
        ):
            raise InstanceError(where, "vn_kv", f"must be in [0.1, 1500] kV, got {self.vn_kv!r}")


def _is_int(x: object) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def register_builder(source: str, build: Callable[..., Any]) -> None:
    """Register the function that builds an :class:`~flexopt.instance.Instance` from
    ``source`` networks (``"pandapower"``: :mod:`flexopt.grid.instance_builder`)."""
    _BUILDERS[source] = build


def builder(source: str) -> Callable[..., Any]:
    """The registered builder for ``source`` networks.

    Raises
    ------
    FlexoptError
        If none is registered (:mod:`flexopt.grid` was never imported).
    """
    try:
        return _BUILDERS[source]
    except KeyError:
        raise FlexoptError(
            f"no instance builder for {source!r} networks (import flexopt.grid first)"
        ) from None
