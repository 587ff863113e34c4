"""Method ``wca``: the DSO coefficient problem solved by the Water Cycle Algorithm, or by
MOWCA with a fuzzy compromise (``models/dcp.md``, ``models/wca.md``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from flexopt.dso.dcp import DCPBiObjective, DCPProblem
from flexopt.dso.modification import Factors, unit_factors
from flexopt.dso.offer import Modification
from flexopt.methods import mlf
from flexopt.optim import MOWCA, WCA, Problem, Result, Termination, compromise, minimize

__all__ = [
    "MAX_ITER",
    "MAX_POP",
    "STARTS",
    "WCAConfig",
    "modify",
    "solve_dcp_wca",
    "stall_window",
    "starts",
]

#: Bounds on a run's length: population and iterations per DSO.
MAX_POP = 10_000
MAX_ITER = 100_000
#: Where a DSO's search starts (its first raindrops, ``models/wca.md`` deviation 7).
STARTS = ("x0", "x0+mlf")
#: The stall window is ``wca_stall`` from this many factors up, proportionally shorter below
#: it, never below ``STALL_FLOOR`` iterations (``models/wca.md``, "Defaults").
STALL_FACTORS, STALL_FLOOR = 10, 20


@dataclass(frozen=True)
class WCAConfig:
    """Options of the ``wca`` method.

    Attributes
    ----------
    wca_pop : int
        Population (``8..MAX_POP``; MOWCA uses at least 20).
    wca_iter : int
        Iterations per DSO at most (``1..MAX_ITER``).
    wca_stall : int
        Stop a DSO's search after this many iterations in a row whose best improved by less
        than ``wca_stall_tol`` (relative) — on 10 factors or more; on ``d < 10`` after
        ``⌈wca_stall · d / 10⌉``, at least 20 (:func:`stall_window`); ``0`` runs all
        ``wca_iter``. Single objective only (MOWCA runs ``wca_iter``).
    wca_stall_tol : float
        Relative improvement that counts as progress (``[0, 1)``).
    wca_start : {"x0", "x0+mlf"}
        The first raindrops: ``x⁰`` (the unmodified offers), and the ``mlf`` method's point
        with ``"x0+mlf"``.
    pareto : bool
        Solve the multi-objective form with MOWCA and take the fuzzy compromise.
    """

    wca_pop: int = 50
    wca_iter: int = 300
    wca_stall: int = 50
    wca_stall_tol: float = 1e-6
    wca_start: str = "x0+mlf"
    pareto: bool = False

    def __post_init__(self) -> None:
        if not (_is_int(self.wca_pop) and 8 <= self.wca_pop <= MAX_POP):
            raise ValueError(f"wca_pop must be an integer in 8..{MAX_POP}, got {self.wca_pop!r}")
        if not (_is_int(self.wca_iter) and 0 < self.wca_iter <= MAX_ITER):
            raise ValueError(
                f"wca_iter must be an integer in 1..{MAX_ITER:_}, got {self.wca_iter!r}"
            )
        if not (_is_int(self.wca_stall) and 0 <= self.wca_stall <= MAX_ITER):
            raise ValueError(
                f"wca_stall must be an integer in 0..{MAX_ITER:_}, got {self.wca_stall!r}"
            )
        if not (isinstance(self.wca_stall_tol, float | int) and 0 <= self.wca_stall_tol < 1):
            raise ValueError(f"wca_stall_tol must be in [0, 1), got {self.wca_stall_tol!r}")
        if self.wca_start not in STARTS:
            raise ValueError(f"wca_start must be one of {STARTS}, got {self.wca_start!r}")
        if not isinstance(self.pareto, bool):
            raise ValueError(f"pareto must be True or False, got {self.pareto!r}")


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def solve_dcp_wca(
    problem: Problem, x0: np.ndarray, config: WCAConfig, rng: np.random.Generator | int
) -> Result:
    """The single-objective DCP search of the ``wca`` method on ``problem`` — the AC
    evaluator (:class:`DCPProblem`) or any model of it such as the exact methods'
    approximate one — from ``x0`` (the first raindrops, ``[d]`` or ``[k, d]``): Deb's rules
    for (C7) and (C8) with the authors' constrained settings (``d_max = 1e-5``, Gaussian
    raining) when the problem has constraints, the unconstrained ones otherwise; at most
    ``wca_iter`` iterations, fewer when the best stalls for ``wca_stall`` (``d_max`` decays
    over ``wca_iter`` either way, so a stopped run is a prefix of the full one;
    ``models/wca.md``), the window shorter on fewer than 10 factors (:func:`stall_window`)."""
    termination = dcp_termination(config, problem.lower.size)
    return minimize(problem, dcp_wca(problem, x0, config), termination=termination, seed=rng)


def dcp_wca(problem: Problem, x0: np.ndarray, config: WCAConfig, **options: Any) -> WCA:
    """The WCA of :func:`solve_dcp_wca`; ``options``: further :class:`~flexopt.optim.WCA`
    options (``restart``, ``river_rain``, … — ``benchmarks/wca_restart_dcp.py``). One cycle
    with the reference's rain unless given: the DCP gains nothing measurable from the
    constrained defaults of new cycles (``models/wca.md``)."""
    return WCA(
        n_pop=config.wca_pop,
        initial=x0,
        d_max=1e-5 if problem.n_constr else 1e-16,
        raining="gaussian" if problem.n_constr else "uniform",
        **{"restart": 0, "river_rain": "uniform", **options},
    )


def stall_window(config: WCAConfig, n_factors: int) -> int:
    """Stalled iterations that stop a search on ``n_factors`` factors: ``wca_stall`` from
    :data:`STALL_FACTORS` factors up, ``⌈wca_stall · d / STALL_FACTORS⌉`` below, never fewer
    than :data:`STALL_FLOOR` (nor more than ``wca_stall``); 0 when ``wca_stall`` is 0.

    Measured on the DCP (``benchmarks/wca_stall.py``): on 2–8 factors 20 stalled iterations
    end where 50 × 300 ends (gaps ≤ 0.0002 %), on 10–12 factors they stop early (up to
    +8.5 %), where 50 and 75 do not."""
    if not config.wca_stall:
        return 0
    scaled = math.ceil(config.wca_stall * n_factors / STALL_FACTORS)
    return min(config.wca_stall, max(STALL_FLOOR, scaled))


def dcp_termination(config: WCAConfig, n_factors: int = STALL_FACTORS) -> Termination:
    """``wca_iter`` iterations, fewer after :func:`stall_window` stalled ones on
    ``n_factors`` factors (0: no stall test)."""
    stall = stall_window(config, n_factors) or None
    return Termination(max_iter=config.wca_iter, stall_iter=stall, stall_tol=config.wca_stall_tol)


def starts(problem: DCPProblem, config: WCAConfig) -> np.ndarray:
    """The first raindrops ``[k, d]``: ``x⁰`` (the unmodified offers, which hold (C7) and
    (C8), whose feasible set can be too small for a random population to meet) and, with
    ``wca_start="x0+mlf"``, the ``mlf`` method's factors (M9) — a point near the loss-aware
    optimum that a short search would otherwise have to find."""
    if config.wca_start == "x0":
        return problem.x0[None, :]
    m = mlf.modify(problem, None, np.random.default_rng(0)).factors  # mlf draws nothing
    return np.stack([problem.x0, problem.vector(m.alpha, m.beta)])


def modify(problem: DCPProblem, config: WCAConfig, rng: np.random.Generator) -> Modification:
    """The DCP with WCA (single objective C6 under C7: Deb's rules, the constrained
    settings of ``models/wca.md``) or MOWCA + fuzzy compromise (budget as a penalty, then
    the compromise among the budget-feasible front members when there are any)."""
    if not problem.has_decisions:
        return Modification(unit_factors(problem.n))
    if not config.pareto:
        res = solve_dcp_wca(problem, starts(problem, config), config, rng)
        alpha, beta = problem.factors(res.x[None, :])
        return Modification(
            Factors(alpha[0], beta[0]), evaluations=res.evaluations, history=res.history
        )
    res = minimize(
        DCPBiObjective(problem),
        MOWCA(n_pop=max(config.wca_pop, 20), initial=starts(problem, config)),
        max_iter=config.wca_iter,
        seed=rng,
    )
    if res.pareto_x is None or res.pareto_f is None:  # MOWCA always returns its archive
        raise RuntimeError("MOWCA returned no Pareto archive")
    front_x, front_f = res.pareto_x, res.pareto_f
    if problem.n_constr:  # keep the members that hold C7 and C8 when there are any
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
