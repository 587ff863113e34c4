"""Method ``none``: the offers unchanged (``x⁰``, every factor 1)."""

from __future__ import annotations

import numpy as np

from flexopt.dso.dcp import DCPProblem
from flexopt.dso.modification import unit_factors
from flexopt.dso.offer import Modification

__all__ = ["modify"]


def modify(problem: DCPProblem, config: None, rng: np.random.Generator) -> Modification:
    """``α = β = 1`` for every participant."""
    return Modification(unit_factors(problem.n))
