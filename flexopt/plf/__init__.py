"""Probabilistic load flow on the DC transmission model: analytic, Monte Carlo, point estimate."""

from flexopt.plf.congestion import congestion_table
from flexopt.plf.methods import (
    PLF_METHODS,
    PLFResult,
    analytic,
    monte_carlo,
    point_estimate,
    run_plf,
)
from flexopt.plf.model import PLFModel

__all__ = [
    "PLF_METHODS",
    "PLFModel",
    "PLFResult",
    "analytic",
    "congestion_table",
    "monte_carlo",
    "point_estimate",
    "run_plf",
]
