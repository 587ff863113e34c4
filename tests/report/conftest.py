"""Runs of the bundled instance shared by the figure tests (each takes about a second)."""

from __future__ import annotations

import pytest

import flexopt as fx
from flexopt.run.result import MarketResult


@pytest.fixture(scope="session")
def none_run(rts: fx.Instance) -> MarketResult:
    return fx.run_market(rts, "none")


@pytest.fixture(scope="session")
def mlf_run(rts: fx.Instance) -> MarketResult:
    return fx.run_market(rts, "mlf")


@pytest.fixture(scope="session")
def central_run(rts: fx.Instance) -> MarketResult:
    return fx.run_market(rts, "centralized")


@pytest.fixture(scope="session")
def wca_run(rts: fx.Instance) -> MarketResult:
    """A short WCA search: enough iterations for a history per DSO."""
    return fx.run_market(rts, "wca", wca_iter=15, seed=0)
