"""Instances: on-disk format (TOML + CSV), validation, frozen dataclasses, the prosumer
generator and the specification of an instance built from networks. No solver, no
pandapower."""

from flexopt.instance.loader import MANIFEST, load_instance
from flexopt.instance.prosumers import make_prosumers
from flexopt.instance.schema import (
    DSOData,
    FeederData,
    Instance,
    MarketData,
    MicrogridData,
    ScenarioData,
    TransmissionData,
)
from flexopt.instance.spec import DSOSpec

__all__ = [
    "MANIFEST",
    "DSOData",
    "DSOSpec",
    "FeederData",
    "Instance",
    "MarketData",
    "MicrogridData",
    "ScenarioData",
    "TransmissionData",
    "load_instance",
    "make_prosumers",
]
