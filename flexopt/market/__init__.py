"""Pyomo model builders of the market stages. Builders never solve (see :mod:`flexopt.solve`).

The day-ahead names below load :mod:`flexopt.market.day_ahead` (and Pyomo) when first used,
so that importing a Pyomo-free module of this package (``flexopt.market.interface``) does not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flexopt.market.day_ahead import DayAheadData, build_day_ahead, read_day_ahead

__all__ = ["DayAheadData", "build_day_ahead", "read_day_ahead"]


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("flexopt.market.day_ahead"), name)
    raise AttributeError(f"module 'flexopt.market' has no attribute {name!r}")
