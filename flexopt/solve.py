"""The only code in flexopt that calls an optimization solver.

Every call returns a typed :class:`SolveResult`; nothing fails silently. A model that is
infeasible or hits a limit without a solution comes back with the matching
:class:`SolveStatus` and the solver's reason, never with stale variable values loaded.

Every call has a time limit (:data:`DEFAULT_TIME_LIMIT_S` unless the caller gives one) and,
for continuous models, an iteration guard (:func:`iteration_limit`): HiGHS's active-set QP
solver can cycle on degenerate models, and without a guard it never returns. A limit that is
hit is reported in :attr:`SolveResult.limit`. Loading the solution and reading the duals
happen inside the same guard as the solve: whatever the solver returns, the caller gets a
:class:`SolveResult`, and a non-finite objective or dual is an ``ERROR``, never a number.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition

from flexopt.market.lp import LinearProgram

__all__ = [
    "DEFAULT_TIME_LIMIT_S",
    "ITERATIONS_PER_ROW_COL",
    "ITERATION_FLOOR",
    "SolveResult",
    "SolveStatus",
    "hand_over",
    "iteration_limit",
    "solve",
    "solve_lp",
]

#: Seconds of a solver call whose caller gives no time limit: every call has one.
DEFAULT_TIME_LIMIT_S = 300.0
#: Iteration guard of continuous models (simplex, active-set QP): this many iterations per
#: variable and constraint, and at least :data:`ITERATION_FLOOR`. Both methods need a small
#: multiple of the model's size; one that cycles stops here instead of running forever.
ITERATIONS_PER_ROW_COL = 50
ITERATION_FLOOR = 10_000


class SolveStatus(enum.Enum):
    """Outcome of a solve, from the caller's point of view."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"  # a limit was hit; the incumbent and its bound are reported
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    NO_SOLUTION = "no_solution"  # a limit was hit before any feasible point
    ERROR = "error"

    @property
    def has_solution(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


@dataclass(frozen=True)
class SolveResult:
    """Typed result of :func:`solve`.

    Attributes
    ----------
    status : SolveStatus
    objective : float or None
        Objective of the loaded solution.
    bound : float or None
        Best proven bound (equals ``objective`` for LP/QP at optimality).
    wall_s : float
        Wall-clock time of the solver call, model hand-over included.
    solver : str
    message : str
        The solver's termination condition, verbatim.
    duals : dict
        Constraint data object → dual value (``λ = ∂objective/∂rhs`` with constants on the
        right-hand side); empty for MIPs or when no solution was found.
    limit : {"time", "iterations"} or None
        The limit the solver stopped at, if any (the status is then ``FEASIBLE`` with an
        incumbent or ``NO_SOLUTION``).
    values : ndarray or None
        The solution of an array LP (:func:`solve_lp`), whose ``duals`` are keyed by row.
    """

    status: SolveStatus
    objective: float | None
    bound: float | None
    wall_s: float
    solver: str
    message: str
    duals: dict[Any, float] = field(default_factory=dict, repr=False)
    limit: str | None = None
    values: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status.has_solution

    @property
    def gap(self) -> float | None:
        """Relative gap ``|obj − bound| / max(1, |obj|)`` when both are known."""
        if self.objective is None or self.bound is None:
            return None
        return abs(self.objective - self.bound) / max(1.0, abs(self.objective))

    def dual(self, constraint: Any) -> float:
        """Dual of one constraint data object (``KeyError`` if none was reported)."""
        return self.duals[constraint]


_TC_MAP = {
    TerminationCondition.convergenceCriteriaSatisfied: SolveStatus.OPTIMAL,
    TerminationCondition.provenInfeasible: SolveStatus.INFEASIBLE,
    TerminationCondition.locallyInfeasible: SolveStatus.INFEASIBLE,
    TerminationCondition.infeasibleOrUnbounded: SolveStatus.INFEASIBLE,
    TerminationCondition.unbounded: SolveStatus.UNBOUNDED,
}
_TC_LIMIT = {
    TerminationCondition.maxTimeLimit: "time",
    TerminationCondition.iterationLimit: "iterations",
}


def iteration_limit(model: pyo.ConcreteModel) -> int:
    """The iteration guard of a continuous model: :data:`ITERATIONS_PER_ROW_COL` per variable
    and constraint, at least :data:`ITERATION_FLOOR`."""
    size = int(model.nvariables()) + int(model.nconstraints())
    return max(ITERATION_FLOOR, ITERATIONS_PER_ROW_COL * size)


def solve(
    model: pyo.ConcreteModel,
    solver: str = "highs",
    *,
    time_limit: float | None = None,
    mip_gap: float | None = None,
    duals: bool = True,
    options: dict[str, Any] | None = None,
) -> SolveResult:
    """Solve a Pyomo model and load its solution when there is one.

    Parameters
    ----------
    model : pyomo.environ.ConcreteModel
        Built by one of the ``flexopt.market`` / ``flexopt.dso`` builders.
    solver : str
        ``"highs"`` (LP, convex QP, MILP) through Pyomo's HiGHS interface; any other name
        goes through ``pyomo.environ.SolverFactory`` (e.g. ``"scip_direct"``).
    time_limit : float, optional
        Seconds (default :data:`DEFAULT_TIME_LIMIT_S`). Hitting it returns ``FEASIBLE`` with
        the incumbent or ``NO_SOLUTION``, and ``limit="time"``.
    mip_gap : float, optional
        Relative MIP gap.
    duals : bool
        Collect constraint duals (continuous models).
    options : dict, optional
        Solver-specific options passed through unchanged (they override the iteration guard).
    """
    if time_limit is None:
        time_limit = DEFAULT_TIME_LIMIT_S
    if not time_limit > 0:
        raise ValueError(f"time_limit must be > 0 seconds, got {time_limit!r}")
    with _ONE_AT_A_TIME:
        if solver == "highs":
            return _solve_highs(model, time_limit, mip_gap, duals, options or {})
        return _solve_legacy(model, solver, time_limit, mip_gap, duals, options or {})


#: One solver call at a time in a process: Pyomo's solver interfaces capture the solver's
#: output through process-wide file descriptors, which threads running DSO tasks at once
#: (``flexopt.executors``) would share.
_ONE_AT_A_TIME = threading.RLock()


def _solve_highs(
    model: pyo.ConcreteModel,
    time_limit: float,
    mip_gap: float | None,
    duals: bool,
    options: dict[str, Any],
) -> SolveResult:
    from pyomo.contrib.solver.solvers.highs import Highs

    start = time.perf_counter()
    try:  # the solve, loading the solution and reading the duals: one guard
        discrete = _has_discrete(model)
        solver_options = {}
        if not discrete:
            guard = iteration_limit(model)
            solver_options = {"simplex_iteration_limit": guard, "qp_iteration_limit": guard}
        solver_options.update(options)
        kwargs: dict[str, Any] = {
            "load_solutions": False,
            "raise_exception_on_nonoptimal_result": False,
            "solver_options": solver_options,
            "time_limit": float(time_limit),
        }
        if mip_gap is not None:
            kwargs["rel_gap"] = float(mip_gap)
        res = Highs().solve(model, **kwargs)
        tc = res.termination_condition
        has_sol = res.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
        status = _TC_MAP.get(tc)
        if status is None:
            status = SolveStatus.FEASIBLE if has_sol else SolveStatus.NO_SOLUTION
        if status is SolveStatus.OPTIMAL and not has_sol:
            status = SolveStatus.ERROR
        dual_map: dict[Any, float] = {}
        if status.has_solution:
            res.solution_loader.load_vars()
            if duals and not discrete:
                dual_map = dict(res.solution_loader.get_duals())
        objective = res.incumbent_objective if status.has_solution else None
        bound = res.objective_bound if res.objective_bound is not None else objective
    except Exception as err:  # a solver crash must not escape as a bare traceback
        return SolveResult(
            SolveStatus.ERROR, None, None, time.perf_counter() - start, "highs", _one_line(err)
        )
    wall = time.perf_counter() - start
    return _checked(
        SolveResult(
            status, objective, bound, wall, "highs", str(tc.name), dual_map, _TC_LIMIT.get(tc)
        )
    )


def solve_lp(lp: LinearProgram, *, time_limit: float | None = None) -> SolveResult:
    """Solve an LP given as arrays with HiGHS, under the same guards as :func:`solve`.

    The columns and rows reach HiGHS in the LP's order with the iteration guard a Pyomo model
    of it gets (:func:`iteration_limit` over :attr:`LinearProgram.declared` variables), so an
    LP built in the order Pyomo would hand it over is solved to the same vertex. The result's
    :attr:`SolveResult.values` is ``x`` and its ``duals`` map each row's position to
    ``λ = ∂objective/∂row bound``.
    """
    if time_limit is None:
        time_limit = DEFAULT_TIME_LIMIT_S
    if not time_limit > 0:
        raise ValueError(f"time_limit must be > 0 seconds, got {time_limit!r}")
    start = time.perf_counter()
    with _ONE_AT_A_TIME:
        try:
            h = _highs()  # highspy on first use: loaded, it makes forking a pool unsafe
            hand_over(h, lp)
            guard = max(ITERATION_FLOOR, ITERATIONS_PER_ROW_COL * (lp.declared + lp.n_rows))
            for key, val in (
                ("time_limit", float(time_limit)),
                ("simplex_iteration_limit", guard),
                ("qp_iteration_limit", guard),
            ):
                h.setOptionValue(key, val)
            h.run()
            code = h.getModelStatus()
            info, sol = h.getInfo(), h.getSolution()
            has_sol = info.primal_solution_status == 2
            status = _HIGHS_STATUS.get(code.name)
            if status is None:
                status = SolveStatus.FEASIBLE if has_sol else SolveStatus.NO_SOLUTION
            if status is SolveStatus.OPTIMAL and not has_sol:
                status = SolveStatus.ERROR
            objective = float(info.objective_function_value) if status.has_solution else None
            x = np.asarray(sol.col_value, dtype=float) if status.has_solution else None
            duals: dict[Any, float] = {}
            if status.has_solution and sol.dual_valid:
                duals = dict(enumerate(np.asarray(sol.row_dual, dtype=float).tolist()))
            message = h.modelStatusToString(code)
        except Exception as err:  # a solver crash must not escape as a bare traceback
            return SolveResult(
                SolveStatus.ERROR, None, None, time.perf_counter() - start, "highs", _one_line(err)
            )
    wall = time.perf_counter() - start
    bound = objective if status is SolveStatus.OPTIMAL else None
    limit = _HIGHS_LIMIT.get(code.name)
    return _checked(
        SolveResult(status, objective, bound, wall, "highs", message, duals, limit, values=x)
    )


def hand_over(h: Any, lp: LinearProgram) -> None:
    """Load ``lp`` into the ``highspy.Highs`` instance ``h`` (cleared first) as Pyomo's HiGHS
    interface loads a model: the columns with their bounds, the rows by CSR, then the
    costs of a minimization.

    Raises
    ------
    ValueError
        For a NaN bound or a non-finite cost or coefficient, naming the first, and for any
        part HiGHS refuses (it drops a whole batch of rows with one bad entry, and would
        solve what is left).
    """
    import highspy

    bad = lp.not_finite()
    if bad:
        raise ValueError(f"LP '{lp.name}': {bad}")

    def refused(status: Any, what: str) -> None:
        if status == highspy.HighsStatus.kError:
            raise ValueError(f"LP '{lp.name}': HiGHS refused its {what}")

    h.clearModel()
    refused(h.addVars(lp.n_cols, lp.col_lower, lp.col_upper), "columns")
    rows = (lp.n_rows, lp.row_lower, lp.row_upper, len(lp.value), lp.starts[:-1], lp.index)
    refused(h.addRows(*rows, lp.value), "rows")
    refused(h.changeObjectiveSense(highspy.ObjSense.kMinimize), "sense")
    refused(h.changeColsCost(lp.n_cols, np.arange(lp.n_cols), lp.cost), "costs")


#: HiGHS's model statuses as :class:`SolveStatus` (any other: an incumbent or none).
_HIGHS_STATUS = {
    "kOptimal": SolveStatus.OPTIMAL,
    "kInfeasible": SolveStatus.INFEASIBLE,
    "kUnboundedOrInfeasible": SolveStatus.INFEASIBLE,
    "kUnbounded": SolveStatus.UNBOUNDED,
    **dict.fromkeys(
        ("kLoadError", "kModelError", "kPresolveError", "kSolveError", "kPostsolveError"),
        SolveStatus.ERROR,
    ),
}
_HIGHS_LIMIT = {"kTimeLimit": "time", "kIterationLimit": "iterations"}
_HIGHS: list[Any] = []


def _highs() -> Any:
    """This process's HiGHS instance for :func:`solve_lp`, made once: its constructor prints a
    banner on the process's stdout, captured here."""
    if not _HIGHS:
        import highspy
        from pyomo.common.tee import capture_output

        with capture_output(capture_fd=True):
            h = highspy.Highs()  # type: ignore[no-untyped-call]
        h.setOptionValue("output_flag", False)
        _HIGHS.append(h)
    return _HIGHS[0]


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _checked(res: SolveResult) -> SolveResult:
    """``ERROR`` for a solution with a non-finite objective or dual: no such number leaves."""
    if not res.status.has_solution:
        return res
    bad = None
    if res.objective is not None and not math.isfinite(res.objective):
        bad = f"objective {res.objective}"
    elif any(not math.isfinite(v) for v in res.duals.values()):
        bad = "a dual"
    if bad is None:
        return res
    return SolveResult(
        SolveStatus.ERROR,
        None,
        None,
        res.wall_s,
        res.solver,
        f"{res.message}; non-finite {bad} (the model's coefficients are out of range)",
        limit=res.limit,
    )


def _solve_legacy(
    model: pyo.ConcreteModel,
    solver: str,
    time_limit: float,
    mip_gap: float | None,
    duals: bool,
    options: dict[str, Any],
) -> SolveResult:
    from pyomo.opt import SolverStatus
    from pyomo.opt import TerminationCondition as LegacyTC

    if solver == "ripopt":
        try:  # the plugin registers the "ripopt" name with Pyomo on import
            import pyomo_ripopt  # noqa: F401
        except ImportError:
            return SolveResult(
                SolveStatus.ERROR, None, None, 0.0, solver, "pyomo-ripopt is not installed"
            )
    opt = pyo.SolverFactory(solver)
    if opt is None or not opt.available(exception_flag=False):
        return SolveResult(
            SolveStatus.ERROR, None, None, 0.0, solver, f"solver {solver!r} is not available"
        )
    opts = dict(options)
    if solver == "ripopt":  # an interior-point NLP solver: wall-clock limit, own iteration cap
        opts.setdefault("max_wall_time", float(time_limit))
        mip_gap = None
    elif "scip" in solver:
        opts.setdefault("limits/time", float(time_limit))
    else:
        opts.setdefault("time_limit", float(time_limit))
    if mip_gap is not None:
        opts.setdefault("limits/gap" if "scip" in solver else "mip_rel_gap", float(mip_gap))
    # no duals of a MIP/MINLP; Pyomo's SCIP interface cannot load duals at all
    start = time.perf_counter()
    try:  # the solve, loading the solution and reading the duals: one guard
        duals = duals and not _has_discrete(model) and "scip" not in solver
        if duals and not hasattr(model, "dual"):
            model.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        res = opt.solve(model, load_solutions=False, options=opts)
        tc = res.solver.termination_condition
        n_sol = len(res.solution) if res.solution is not None else 0
        limit = None
        if tc == LegacyTC.optimal:
            status = SolveStatus.OPTIMAL
        elif tc in (LegacyTC.infeasible, LegacyTC.infeasibleOrUnbounded):
            status = SolveStatus.INFEASIBLE
        elif tc == LegacyTC.unbounded:
            status = SolveStatus.UNBOUNDED
        elif res.solver.status == SolverStatus.error:
            status = SolveStatus.ERROR
        else:
            status = SolveStatus.FEASIBLE if n_sol else SolveStatus.NO_SOLUTION
            if tc == LegacyTC.maxTimeLimit:
                limit = "time"
            elif tc in (LegacyTC.maxIterations, LegacyTC.maxEvaluations):
                limit = "iterations"
        objective = bound = None
        dual_map: dict[Any, float] = {}
        if status.has_solution and n_sol:
            model.solutions.load_from(res)
            obj = next(model.component_data_objects(pyo.Objective, active=True))
            objective = float(pyo.value(obj))
            lb = res.problem.lower_bound
            bound = float(lb) if lb is not None and abs(float(lb)) != float("inf") else objective
            if duals and hasattr(model, "dual"):
                # ripopt reports Ipopt's multipliers, −∂objective/∂rhs: flip them to our convention
                sign = -1.0 if solver == "ripopt" else 1.0
                dual_map = {c: sign * v for c, v in model.dual.items()}
    except Exception as err:
        return SolveResult(
            SolveStatus.ERROR, None, None, time.perf_counter() - start, solver, _one_line(err)
        )
    wall = time.perf_counter() - start
    return _checked(SolveResult(status, objective, bound, wall, solver, str(tc), dual_map, limit))


def _has_discrete(model: pyo.ConcreteModel) -> bool:
    return any(not v.is_continuous() for v in model.component_data_objects(pyo.Var, active=True))
