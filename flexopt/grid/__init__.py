"""Physics: transmission DC model and PTDF, radial feeders with batched AC power flow, loss
allocation. The only package that imports pandapower (lazily, for the pandapower helpers)."""

from __future__ import annotations

from typing import Any

from flexopt.grid import instance_builder as _instance_builder  # noqa: F401  (registers the builder)
from flexopt.grid.build import feeder_from_data, transmission_from_data
from flexopt.grid.feeder import Feeder, PowerFlowResult
from flexopt.grid.loss_allocation import (
    LOSS_ALLOCATION_METHODS,
    allocate_losses,
    marginal_loss_factors,
    screen_buses,
)
from flexopt.grid.transmission import (
    TransmissionModel,
    balancing_weights,
    load_reduction_sensitivity,
)

__all__ = [
    "LOSS_ALLOCATION_METHODS",
    "Feeder",
    "PowerFlowResult",
    "TransmissionModel",
    "allocate_losses",
    "balancing_weights",
    "case33bw",
    "case69",
    "feeder_from_data",
    "generator_table",
    "line_ratings_mw",
    "load_reduction_sensitivity",
    "marginal_loss_factors",
    "ptdf",
    "screen_buses",
    "transmission_from_data",
    "transmission_from_pandapower",
]

_LAZY = {
    "case33bw": "flexopt.grid.cases",
    "case69": "flexopt.grid.cases",
    "ptdf": "flexopt.grid.pandapower_io",
    "generator_table": "flexopt.grid.pandapower_io",
    "line_ratings_mw": "flexopt.grid.pandapower_io",
    "transmission_from_pandapower": "flexopt.grid.pandapower_io",
}


def __getattr__(name: str) -> Any:  # pandapower takes seconds to import: load it on demand
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flexopt.grid' has no attribute {name!r}")
