"""DSO side: flexibility capacity, local market clearing, aggregation, coefficient modification."""

from flexopt.dso.aggregation import BlockBid, aggregate_blocks, aggregated_cost
from flexopt.dso.clearing import Clearing, clear
from flexopt.dso.flexibility import flexibility_capacity, spare_energy_mwh

__all__ = [
    "BlockBid",
    "Clearing",
    "aggregate_blocks",
    "aggregated_cost",
    "clear",
    "flexibility_capacity",
    "spare_energy_mwh",
]
