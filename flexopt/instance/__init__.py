"""Instances: on-disk format (TOML + CSV), validation, frozen dataclasses. No solver, no pandapower."""

from flexopt.instance.loader import MANIFEST, load_instance
from flexopt.instance.schema import (
    DSOData,
    FeederData,
    Instance,
    MarketData,
    ScenarioData,
    TransmissionData,
)

__all__ = [
    "MANIFEST",
    "DSOData",
    "FeederData",
    "Instance",
    "MarketData",
    "ScenarioData",
    "TransmissionData",
    "load_instance",
]
