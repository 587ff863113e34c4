"""Pyomo model builders of the market stages. Builders never solve (see :mod:`flexopt.solve`)."""

from flexopt.market.day_ahead import DayAheadData, build_day_ahead, read_day_ahead

__all__ = ["DayAheadData", "build_day_ahead", "read_day_ahead"]
