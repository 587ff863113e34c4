"""Method ``exact``: the DSO coefficient problem as a single-level model solved to proven
optimality (``models/dcp_exact.md``), and the local NLP on the AC feeder model.

``solver="highs"`` solves the mode-"b" MILP (X1–X12), ``solver="scip"`` the mode-"ab"
nonconvex MINLP globally. The models are built by :mod:`flexopt.dso.exact`; this module only
solves them, through :func:`flexopt.solve.solve`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from flexopt.dso.dcp import DCPProblem
from flexopt.dso.exact import ApproxModel, build_dcp_exact, build_dcp_nlp, read_factors
from flexopt.dso.modification import Factors, unit_factors
from flexopt.dso.offer import Modification
from flexopt.errors import FlexoptError
from flexopt.solve import solve

__all__ = ["EXACT_SOLVERS", "ExactConfig", "NLPResult", "modify", "solve_dcp_nlp"]

#: Solver → (DCP mode, Pyomo solver name, model kind).
EXACT_SOLVERS = {
    "highs": ("b", "highs", "MILP (mode b)"),
    "scip": ("ab", "scip_direct", "MINLP (mode ab)"),
}


@dataclass(frozen=True)
class ExactConfig:
    """Options of the ``exact`` method.

    Attributes
    ----------
    solver : {"highs", "scip"}
        ``highs``: the mode-"b" MILP; ``scip``: the mode-"ab" MINLP, solved globally. The
        mode follows the solver, so the DCP option ``dcp_mode`` does not apply.
    time_limit_s : float
        Per DSO; at the limit the incumbent is kept and its proven gap reported.
    mip_gap : float
        Relative MIP gap, in ``[0, 1)``.
    segments : int
        Tangent points of the loss approximation (X9), ``≥ 2``.
    """

    solver: str = "highs"
    time_limit_s: float = 60.0
    mip_gap: float = 1e-6
    segments: int = 16

    def __post_init__(self) -> None:
        if self.solver not in EXACT_SOLVERS:
            raise ValueError(f"solver must be one of {tuple(EXACT_SOLVERS)}, got {self.solver!r}")
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0, got {self.time_limit_s!r}")
        if not 0 <= self.mip_gap < 1:
            raise ValueError(f"mip_gap must be in [0, 1), got {self.mip_gap!r}")
        if not (isinstance(self.segments, int) and self.segments >= 2):
            raise ValueError(f"segments must be an integer ≥ 2, got {self.segments!r}")


def modify(problem: DCPProblem, config: ExactConfig, rng: np.random.Generator) -> Modification:
    """The exact DCP (X1–X12); a time-out keeps the incumbent and reports its proven gap.

    Raises
    ------
    FlexoptError
        Naming the DSO and the solver's status when no solution was found.
    """
    if problem.trivial:
        return Modification(unit_factors(problem.n))
    mode, solver, kind = EXACT_SOLVERS[config.solver]
    pr = DCPProblem(
        problem.ctx,
        problem.requirement_mw,
        problem.loss_price,
        replace(problem.options, mode=mode),
    )
    model = build_dcp_exact(ApproxModel(pr, config.segments))
    res = solve(model, solver, time_limit=config.time_limit_s, mip_gap=config.mip_gap)
    if not res.ok:
        raise FlexoptError(
            f"{problem.ctx.dso.id}: exact DSO problem: solver {solver} returned "
            f"{res.status.value} ({res.message})"
        )
    alpha, beta = read_factors(model)
    report = {
        "exact_model": kind,
        "exact_status": res.status.value,
        "exact_objective_approx": float(res.objective or 0.0),
        "exact_bound_approx": float(res.bound or 0.0),
        "exact_gap": float(res.gap or 0.0),
    }
    return Modification(Factors(alpha, beta), report=report)


@dataclass(frozen=True, eq=False)
class NLPResult:
    """A *local* solution of the AC NLP (X13–X16): factors, objective, the tightest Scholtes
    parameter solved, and the solver's status per homotopy step."""

    alpha: np.ndarray
    beta: np.ndarray
    objective: float | None
    eps: float | None
    steps: tuple[tuple[float, str], ...]

    @property
    def ok(self) -> bool:
        return self.objective is not None


def solve_dcp_nlp(
    problem: DCPProblem,
    schedule: tuple[float, ...] = (1e-3, 1e-4, 1e-5, 1e-6),
    solver: str = "ripopt",
) -> NLPResult:
    """Solve the AC NLP (:func:`flexopt.dso.exact.build_dcp_nlp`) locally by a homotopy on
    the Scholtes parameter (X16).

    Each step warm-starts from the previous one; the result is the tightest step that
    converged. A *local* optimum, reported as such — compare it on the AC evaluator.
    """
    m = build_dcp_nlp(problem, eps=schedule[0])
    steps: list[tuple[float, str]] = []
    best: tuple[np.ndarray, np.ndarray, float, float] | None = None
    for eps in schedule:
        m.eps.set_value(eps)
        res = solve(m, solver, duals=False)
        steps.append((eps, res.status.value))
        if not res.ok or res.objective is None:
            break
        alpha, beta = read_factors(m)
        best = (alpha, beta, float(res.objective), eps)
    if best is None:
        n = problem.n
        return NLPResult(np.ones(n), np.ones(n), None, None, tuple(steps))
    return NLPResult(best[0], best[1], best[2], best[3], tuple(steps))
