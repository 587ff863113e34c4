"""Method ``wca``: the DSO coefficient problem solved by the Water Cycle Algorithm, or by
MOWCA with a fuzzy compromise (``models/dcp.md``, ``models/wca.md``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flexopt.dso.dcp import DCPBiObjective, DCPProblem
from flexopt.dso.modification import Factors, unit_factors
from flexopt.dso.offer import Modification
from flexopt.optim import MOWCA, WCA, compromise, minimize

__all__ = ["WCAConfig", "modify"]


@dataclass(frozen=True)
class WCAConfig:
    """Options of the ``wca`` method.

    Attributes
    ----------
    wca_pop : int
        Population (``≥ 8``; MOWCA uses at least 20).
    wca_iter : int
        Iterations per DSO.
    pareto : bool
        Solve the multi-objective form with MOWCA and take the fuzzy compromise.
    """

    wca_pop: int = 50
    wca_iter: int = 300
    pareto: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.wca_pop, int) and self.wca_pop >= 8):
            raise ValueError(f"wca_pop must be an integer ≥ 8, got {self.wca_pop!r}")
        if not (isinstance(self.wca_iter, int) and self.wca_iter > 0):
            raise ValueError(f"wca_iter must be a positive integer, got {self.wca_iter!r}")
        if not isinstance(self.pareto, bool):
            raise ValueError(f"pareto must be True or False, got {self.pareto!r}")


def modify(problem: DCPProblem, config: WCAConfig, rng: np.random.Generator) -> Modification:
    """The DCP with WCA (single objective C6 under C7: Deb's rules, the constrained
    settings of ``models/wca.md``) or MOWCA + fuzzy compromise (budget as a penalty, then
    the compromise among the budget-feasible front members when there are any)."""
    if not problem.has_decisions:
        return Modification(unit_factors(problem.n))
    if not config.pareto:
        algo = WCA(
            n_pop=config.wca_pop,
            d_max=1e-5 if problem.n_constr else 1e-16,
            raining="gaussian" if problem.n_constr else "uniform",
        )
        res = minimize(problem, algo, max_iter=config.wca_iter, seed=rng)
        alpha, beta = problem.factors(res.x[None, :])
        return Modification(
            Factors(alpha[0], beta[0]), evaluations=res.evaluations, history=res.history
        )
    res = minimize(
        DCPBiObjective(problem),
        MOWCA(n_pop=max(config.wca_pop, 20)),
        max_iter=config.wca_iter,
        seed=rng,
    )
    if res.pareto_x is None or res.pareto_f is None:  # MOWCA always returns its archive
        raise RuntimeError("MOWCA returned no Pareto archive")
    front_x, front_f = res.pareto_x, res.pareto_f
    if problem.options.budget:  # keep budget-feasible members when there are any
        ok = problem.evaluate(front_x).violation <= 0
        if ok.any():
            front_x, front_f = front_x[ok], front_f[ok]
    pick = compromise(front_f)
    alpha, beta = problem.factors(front_x[pick][None, :])
    return Modification(
        Factors(alpha[0], beta[0]),
        evaluations=res.evaluations,
        history=res.history,
        pareto_f=front_f,
        pareto_pick=front_f[pick],
    )
