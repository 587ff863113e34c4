"""Optimization engine (numpy, and numba for WCA's compiled bookkeeping; imports nothing else
of flexopt, nor pyomo or pandapower).

>>> import numpy as np, flexopt as fx
>>> sphere = fx.optim.Problem.from_function(lambda X: (X**2).sum(1), -100 * np.ones(5), 100 * np.ones(5))
>>> res = fx.optim.minimize(sphere, fx.optim.WCA(), max_iter=200, seed=0)
>>> bool(res.f < 1e-6)
True
"""

from flexopt.optim.core import (
    Algorithm,
    Evaluation,
    Problem,
    Result,
    Termination,
    deb_better,
    deb_order,
)
from flexopt.optim.loop import minimize
from flexopt.optim.mealpy_adapter import Mealpy
from flexopt.optim.mowca import MOWCA
from flexopt.optim.pareto import (
    compromise,
    constrained_ranks,
    crowding_distance,
    hypervolume_2d,
    non_dominated_sort,
    survive,
)
from flexopt.optim.wca import WCA, allocate_streams, flow

__all__ = [
    "MOWCA",
    "WCA",
    "Algorithm",
    "Evaluation",
    "Mealpy",
    "Problem",
    "Result",
    "Termination",
    "allocate_streams",
    "compromise",
    "constrained_ranks",
    "crowding_distance",
    "deb_better",
    "deb_order",
    "flow",
    "hypervolume_2d",
    "minimize",
    "non_dominated_sort",
    "survive",
]
