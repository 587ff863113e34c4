"""Method ``exact``: the DSO coefficient problem as a single-level model solved to proven
optimality (``models/dcp_exact.md``), and the local NLP on the AC feeder model.

``solver="highs"`` solves the mode-"b" MILP (X1–X12a), ``solver="scip"`` the mode-"ab"
nonconvex MINLP globally. The models are built by :mod:`flexopt.dso.exact`; this module only
solves them, through :func:`flexopt.solve.solve`, and re-evaluates every point it returns:
the closed-form clearing at the point's factors must reproduce the model's price and
dispatch, and the budget must hold on the approximate model at every block boundary. A point
that fails either check is reported with a status that says so — never "optimal".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from flexopt.dso.approx import ApproxModel
from flexopt.dso.budget import saving_slack
from flexopt.dso.dcp import DCPProblem
from flexopt.dso.modification import Factors, unit_factors
from flexopt.dso.offer import Modification
from flexopt.errors import FlexoptError

if TYPE_CHECKING:
    from flexopt.dso.exact import ExactSolution
    from flexopt.solve import SolveResult

__all__ = [
    "EXACT_SOLVERS",
    "ExactConfig",
    "ExactOutcome",
    "NLPResult",
    "modify",
    "solve_dcp_exact",
    "solve_dcp_nlp",
]

#: Bounds: seconds per DSO, tangent points of the loss approximation.
MAX_TIME_LIMIT_S = 1e6
MAX_SEGMENTS = 1_000
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
        Per DSO, in ``(0, MAX_TIME_LIMIT_S]``; at the limit the incumbent is kept and its
        proven gap reported.
    mip_gap : float
        Relative MIP gap, in ``[0, 1)``.
    segments : int
        Tangent points of the loss approximation (X9), ``2..MAX_SEGMENTS``.
    """

    solver: str = "highs"
    time_limit_s: float = 60.0
    mip_gap: float = 1e-6
    segments: int = 16

    def __post_init__(self) -> None:
        if self.solver not in EXACT_SOLVERS:
            raise ValueError(f"solver must be one of {tuple(EXACT_SOLVERS)}, got {self.solver!r}")
        if not (_is_number(self.time_limit_s) and 0 < self.time_limit_s <= MAX_TIME_LIMIT_S):
            raise ValueError(
                f"time_limit_s must be a number of seconds in (0, {MAX_TIME_LIMIT_S:g}], "
                f"got {self.time_limit_s!r}"
            )
        if not (_is_number(self.mip_gap) and 0 <= self.mip_gap < 1):
            raise ValueError(f"mip_gap must be in [0, 1), got {self.mip_gap!r}")
        if not (
            isinstance(self.segments, int)
            and not isinstance(self.segments, bool)
            and 2 <= self.segments <= MAX_SEGMENTS
        ):
            raise ValueError(
                f"segments must be an integer in 2..{MAX_SEGMENTS}, got {self.segments!r}"
            )


def _is_number(x: object) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True, eq=False)
class ExactOutcome:
    """What :func:`solve_dcp_exact` found.

    Attributes
    ----------
    status : str
        ``"optimal"`` / ``"feasible"`` (a time limit hit with an incumbent) when the point
        passes both checks; ``"clearing_mismatch"`` when the closed-form clearing at the
        point's factors does not reproduce the model's price; ``"budget_violated"`` when the
        point breaks the budget (C7) on the approximate model — possible only in the MILP,
        whose make-whole terms are relaxed, and then its objective is a bound, not a value;
        ``"efficiency_violated"`` when it holds the budget but breaks (C8) there (the squares
        of the original costs are under-estimated by their tangents).
    solver_status : str
        The last solve's own status.
    solution : ExactSolution
    objective, bound, gap : float
        Of the last solve (the model with the boundaries added so far is a relaxation of the
        full one: its bound bounds the full problem).
    price_gap : float
        €/MWh between the model's and the closed form's design-point price.
    budget_eur : float
        The point's worst-case day balance on the approximate model (per copy).
    boundaries : int
        Block-boundary lower levels the model needed (of ``T·K``).
    solves : int
    """

    status: str
    solver_status: str
    solution: ExactSolution
    objective: float
    bound: float
    gap: float
    price_gap: float
    budget_eur: float
    boundaries: int
    solves: int


def solve_dcp_exact(
    approx: ApproxModel,
    solver: str = "highs",
    *,
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-6,
    name: str = "exact DSO problem",
) -> ExactOutcome:
    """Solve the single-level model (X1–X12a) with the block boundaries added lazily.

    Start with the design point's lower level only; after each solve, evaluate the point's
    budget (C7) and efficiency (C8) at every block boundary on the approximate model and add
    the lower level and rows of each boundary it violates that the model does not hold yet;
    stop when none
    is left. Usually one or two of the ``T·K`` boundaries bind, so the models stay small (the
    full model, ``build_dcp_exact(approx)``, took > 120 s on rts24-3dso DSOs that this solves
    in seconds). The final model is a relaxation of the full one that its point satisfies,
    so an optimal point is optimal for the full model too.

    Raises
    ------
    FlexoptError
        Naming the problem and the solver's status when no solution was found.
    """
    pr = approx.problem
    # Pyomo is imported where a model is built: the DSO tasks of the other methods, which
    # every pool worker loads at its start, then never import it (flexopt.executors)
    from flexopt.dso.exact import add_boundary, build_dcp_exact, check_clearing, read_dcp_exact
    from flexopt.solve import solve

    model = build_dcp_exact(approx, boundaries=[])
    start = time.perf_counter()
    added: set[tuple[int, int]] = set()
    tol = 1e-6 * max(1.0, abs(approx.f_price0))
    solves = 0
    last: tuple[SolveResult, ExactSolution, np.ndarray, set[tuple[int, int]]] | None = None
    while True:
        left = max(time_limit_s - (time.perf_counter() - start), 1e-3)
        res = solve(model, solver, time_limit=left, mip_gap=mip_gap)
        solves += 1
        if not res.ok:
            if last is None:
                raise FlexoptError(
                    f"{name}: solver {solver} returned {res.status.value} ({res.message})"
                )
            # out of time after adding a boundary: keep the previous point, which breaks it
            res, sol, x, violated = last
            break
        sol = read_dcp_exact(model)
        x = pr.vector(sol.alpha, sol.beta)[None, :]
        g = _boundary_slack(approx, x, tol)
        violated = {(int(t), int(k)) for t, k in zip(*np.nonzero(g < 0), strict=True)}
        last = (res, sol, x, violated)
        # the most violated boundary not held yet, one at a time: one binding boundary often
        # lifts the others (adding every violated one made models as slow as the full one)
        if not violated - added or time.perf_counter() - start >= time_limit_s:
            break
        held = np.array([[(t, k) in added for k in range(g.shape[1])] for t in range(len(g))])
        worst = np.unravel_index(np.argmin(np.where(held, np.inf, g)), g.shape)
        t_new, k_new = int(worst[0]), int(worst[1])
        add_boundary(model, approx, t_new, k_new)
        added.add((t_new, k_new))
    check = check_clearing(pr, sol)
    status = res.status.value
    if not check.agrees:
        status = "clearing_mismatch"
    elif violated:
        broke_budget = pr.options.budget and bool((approx.boundary_balance(x)[0] < -tol).any())
        status = "budget_violated" if broke_budget else "efficiency_violated"
    budget = float(approx.budget(x)[0]) if pr.options.budget else 0.0
    return ExactOutcome(
        status=status,
        solver_status=res.status.value,
        solution=sol,
        objective=float(res.objective or 0.0),
        bound=float(res.bound if res.bound is not None else res.objective or 0.0),
        gap=float(res.gap or 0.0),
        price_gap=check.price_gap,
        budget_eur=budget,
        boundaries=len(added),
        solves=solves,
    )


def _boundary_slack(approx: ApproxModel, x: np.ndarray, tol: float) -> np.ndarray:
    """``[T, K]`` the smaller of the budget's (C7) and the efficiency's (C8) slack at each
    block boundary on the approximate model, less ``tol`` (negative: violated); ``[0, 0]``
    when neither is imposed."""
    pr = approx.problem
    slack = np.full(pr.edges_mw.shape, np.inf)
    if pr.options.budget:
        slack = np.minimum(slack, approx.boundary_balance(x)[0] + tol)
    if pr.options.efficiency:
        slack = np.minimum(slack, approx.boundary_saving(x)[0] + tol + saving_slack(approx.social0))
    return slack if (pr.options.budget or pr.options.efficiency) else np.zeros((0, 0))


def modify(problem: DCPProblem, config: ExactConfig, rng: np.random.Generator) -> Modification:
    """The exact DCP (X1–X12a); a time-out keeps the incumbent and reports its proven gap.

    Raises
    ------
    FlexoptError
        Naming the DSO and the solver's status when no solution was found.
    """
    if not problem.has_decisions:
        return Modification(unit_factors(problem.n))
    mode, solver, kind = EXACT_SOLVERS[config.solver]
    pr = DCPProblem(
        problem.ctx,
        problem.requirement_mw,
        problem.loss_price,
        replace(problem.options, mode=mode),
        problem.blocks,
    )
    out = solve_dcp_exact(
        ApproxModel(pr, config.segments),
        solver,
        time_limit_s=config.time_limit_s,
        mip_gap=config.mip_gap,
        name=f"{problem.ctx.dso.id}: exact DSO problem",
    )
    report: dict[str, str | float | int | bool] = {
        "exact_model": kind,
        "exact_status": out.status,
        "exact_solver_status": out.solver_status,
        "exact_objective_approx": out.objective,
        "exact_bound_approx": out.bound,
        "exact_gap": out.gap,
        "exact_price_gap": out.price_gap,
        "exact_budget_approx_eur": problem.ctx.dso.n_feeders * out.budget_eur,
        "exact_boundaries": out.boundaries,
    }
    return Modification(Factors(out.solution.alpha, out.solution.beta), report=report)


@dataclass(frozen=True, eq=False)
class NLPResult:
    """A *local* solution of the AC NLP (X13–X16): factors, objective, the tightest Scholtes
    parameter solved, and the solver's status per homotopy step."""

    alpha: np.ndarray
    beta: np.ndarray
    objective: float | None
    eps: float | None
    steps: tuple[tuple[float, str], ...]
    price_gap: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.objective is not None

    @property
    def status(self) -> str:
        """``"local"`` (a local optimum whose price the closed-form clearing reproduces),
        ``"clearing_mismatch"`` or ``"failed"``."""
        if not self.ok:
            return "failed"
        return "local" if self.price_gap <= 1e-3 else "clearing_mismatch"


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
    from flexopt.dso.exact import check_clearing, read_dcp_exact
    from flexopt.dso.exact_nlp import build_dcp_nlp
    from flexopt.solve import SolveStatus, solve

    m = build_dcp_nlp(problem, eps=schedule[0])
    steps: list[tuple[float, str]] = []
    best: tuple[np.ndarray, np.ndarray, float, float, float] | None = None
    for eps in schedule:
        m.eps.set_value(eps)
        res = solve(m, solver, duals=False)
        steps.append((eps, res.status.value))
        # a step stopped by a limit has not converged (pyomo-ripopt 0.8.2 stops the last
        # step at its iteration cap on rts24-3dso's DSO1, 7e-3 off the clearing price):
        # the result stays the last step that did
        if res.status is not SolveStatus.OPTIMAL or res.objective is None:
            break
        sol = read_dcp_exact(m)
        gap = check_clearing(problem, sol).price_gap
        best = (sol.alpha, sol.beta, float(res.objective), eps, gap)
    if best is None:
        n = problem.n
        return NLPResult(np.ones(n), np.ones(n), None, None, tuple(steps))
    return NLPResult(best[0], best[1], best[2], best[3], tuple(steps), best[4])
