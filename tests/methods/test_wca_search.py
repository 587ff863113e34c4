"""The market's WCA search: the authors' constrained settings and one cycle, whatever the
optimizer's own defaults for constrained problems (``models/wca.md``)."""

from __future__ import annotations

import numpy as np

from flexopt.methods.wca import WCAConfig, dcp_wca
from flexopt.optim import Problem, minimize


def _constrained() -> Problem:
    return Problem.from_function(
        lambda X: X.sum(1), [0.0, 0.0], [1.0, 1.0], constraints=lambda X: 0.5 - X.sum(1)
    )


def test_the_market_search_runs_one_cycle_with_the_reference_rain():
    p = _constrained()
    alg = dcp_wca(p, np.zeros(2), WCAConfig())
    minimize(p, alg, max_iter=3, seed=0)
    assert (alg.restart, alg.river_rain, alg.cycles) == (0, "uniform", 0)
    assert alg._raining == "gaussian"  # the authors' constrained setting


def test_the_market_search_takes_new_cycles_when_asked():
    p = _constrained()
    alg = dcp_wca(p, np.zeros(2), WCAConfig(), restart=30, river_rain="coordinates")
    minimize(p, alg, max_iter=3, seed=0)
    assert (alg.restart, alg.river_rain) == (30, "coordinates")
