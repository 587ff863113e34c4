"""Method ``mlf``: loss-factor-adjusted bids (``models/local_market.md`` M9)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flexopt.dso.dcp import DCPProblem
from flexopt.dso.modification import Factors, mlf_factors
from flexopt.dso.offer import Modification

__all__ = ["modify"]


def modify(problem: DCPProblem, config: None, rng: np.random.Generator) -> Modification:
    """``β_i = 1 − π_loss MLF_i / b_i`` clipped to the factor box for the screened prosumers,
    ``α ≡ 1`` and ``β = 1`` for the others (M9).

    ``MLF_i`` is the prosumer's marginal loss factor averaged over the congested hours with
    the requirement as weights (evenly if the DSO was asked for nothing).
    """
    req = problem.requirement_mw
    weight = req if req.sum() > 0 else pd.Series(1.0, index=req.index)
    w = weight.to_numpy() / weight.sum()
    mlf = (problem.ctx.mlf.loc[req.index].to_numpy() * w[:, None]).sum(axis=0)
    f = mlf_factors(problem.b, mlf, problem.loss_price, problem.options.bounds)
    beta = np.ones(problem.n)
    beta[problem.free] = f.beta[problem.free]
    return Modification(Factors(np.ones(problem.n), beta))
