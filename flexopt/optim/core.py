"""Problem / Algorithm / Termination / Result and :func:`minimize` (numpy only).

The shape follows pymoo: a problem evaluates a whole population ``X[n, d]`` in one call; an
algorithm proposes batches (``ask``) and learns their values (``tell``); termination and the
result are their own objects. Every random draw goes through the ``numpy.random.Generator``
handed to the algorithm, so a seed fixes the run bit for bit.
"""

from __future__ import annotations

import math
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "Algorithm",
    "Evaluation",
    "ExternalOptimizer",
    "Problem",
    "Result",
    "Termination",
    "deb_better",
    "deb_order",
    "minimize",
]


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Objective values ``F[n, m]`` and constraint values ``G[n, k]`` (feasible when ``G ≤ 0``)."""

    F: np.ndarray
    G: np.ndarray | None = None

    @property
    def violation(self) -> np.ndarray:
        """Total violation ``Σ_k max(0, G_k)`` per individual ``[n]`` (zero without constraints)."""
        if self.G is None or self.G.shape[1] == 0:
            return (
                _ZEROS[: self.F.shape[0]]
                if self.F.shape[0] <= _ZEROS.size
                else np.zeros(self.F.shape[0])
            )
        total: np.ndarray = np.clip(self.G, 0.0, None).sum(axis=1)
        return total


_ZEROS = np.zeros(4096)
_ZEROS.flags.writeable = False


class Problem(ABC):
    """A box-bounded problem evaluated in batches.

    Subclasses set ``lower``, ``upper`` (``[d]``), ``n_obj``, ``n_constr`` and implement
    :meth:`evaluate`. For a plain function use :meth:`from_function`.
    """

    lower: np.ndarray
    upper: np.ndarray
    n_obj: int = 1
    n_constr: int = 0

    @property
    def n_var(self) -> int:
        return int(np.asarray(self.lower).size)

    @abstractmethod
    def evaluate(self, X: np.ndarray) -> Evaluation:
        """Objectives (and constraints) of every row of ``X[n, d]``."""

    @staticmethod
    def from_function(
        f: Callable[[np.ndarray], ArrayLike],
        lower: ArrayLike,
        upper: ArrayLike,
        *,
        n_obj: int = 1,
        constraints: Callable[[np.ndarray], ArrayLike] | None = None,
        n_constr: int = 0,
    ) -> Problem:
        """Wrap a batched function ``f(X[n, d]) -> F[n]`` (or ``[n, m]``) as a :class:`Problem`.

        ``constraints(X) -> G[n, k]`` (feasible when ``G ≤ 0``) is optional.
        """
        return _FunctionProblem(f, lower, upper, n_obj, constraints, n_constr)


class _FunctionProblem(Problem):
    def __init__(
        self,
        f: Callable[[np.ndarray], ArrayLike],
        lower: ArrayLike,
        upper: ArrayLike,
        n_obj: int,
        constraints: Callable[[np.ndarray], ArrayLike] | None,
        n_constr: int,
    ) -> None:
        self.f = f
        self.lower = np.asarray(lower, dtype=float).ravel()
        self.upper = np.asarray(upper, dtype=float).ravel()
        if self.lower.shape != self.upper.shape or np.any(self.lower > self.upper):
            raise ValueError("lower and upper must have the same shape with lower ≤ upper")
        self.n_obj = n_obj
        self.constraints = constraints
        self.n_constr = n_constr if constraints is None else max(n_constr, 1)

    def evaluate(self, X: np.ndarray) -> Evaluation:
        F = np.asarray(self.f(X), dtype=float).reshape(X.shape[0], -1)
        G: np.ndarray | None = None
        if self.constraints is not None:
            G = np.asarray(self.constraints(X), dtype=float).reshape(X.shape[0], -1)
        return Evaluation(F, G)


def deb_order(f: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Indices from best to worst under Deb's feasibility rules (Deb 2000,
    doi:10.1016/S0045-7825(99)00389-8): feasible before infeasible, feasible by objective,
    infeasible by violation."""
    return np.lexsort((np.where(v > 0, 0.0, f), v))


def deb_better(
    f1: np.ndarray | float, v1: np.ndarray | float, f2: np.ndarray | float, v2: np.ndarray | float
) -> np.ndarray:
    """Elementwise: is (f1, v1) strictly better than (f2, v2) under Deb's rules?"""
    return np.where((v1 <= 0) & (v2 <= 0), f1 < f2, v1 < v2)


@dataclass(frozen=True)
class Termination:
    """Stop at ``max_evals`` evaluations, ``max_iter`` iterations, or after ``stall_iter``
    iterations whose best improved by less than ``stall_tol`` (relative), whichever first."""

    max_evals: int | None = None
    max_iter: int | None = None
    stall_iter: int | None = None
    stall_tol: float = 0.0

    def __post_init__(self) -> None:
        if self.max_evals is None and self.max_iter is None and self.stall_iter is None:
            raise ValueError("Termination needs max_evals, max_iter or stall_iter")

    def iteration_budget(self, evals_per_iter: int, initial_evals: int) -> int | None:
        """Iterations the budget allows (used by schedules such as WCA's d_max decay)."""
        budgets = []
        if self.max_iter is not None:
            budgets.append(self.max_iter)
        if self.max_evals is not None:
            budgets.append(max(0, (self.max_evals - initial_evals) // max(evals_per_iter, 1)))
        return min(budgets) if budgets else None


@dataclass(frozen=True, eq=False)
class Result:
    """Outcome of :func:`minimize`.

    ``x``/``f``/``violation`` of the best individual (Deb's rules); ``history`` the best
    objective after each iteration; for multi-objective algorithms ``pareto_x``/``pareto_f``
    hold the final archive.
    """

    x: np.ndarray
    f: np.ndarray
    violation: float
    history: np.ndarray
    evaluations: int
    iterations: int
    time_s: float
    algorithm: str
    seed: int | None
    message: str
    pareto_x: np.ndarray | None = None
    pareto_f: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def feasible(self) -> bool:
        return self.violation <= 0


class Algorithm(ABC):
    """Ask/tell population-based optimizer.

    Subclasses implement :meth:`_setup` (draw and return the initial population),
    :meth:`_ask` and :meth:`_tell`, and keep ``best_x``, ``best_f``, ``best_v``. One
    *iteration* may take several ask/tell rounds (WCA: streams, then rivers); the algorithm
    increments ``n_iter`` when one ends.
    """

    name = "algorithm"

    if TYPE_CHECKING:  # kept by every subclass, as attributes or properties; read by minimize

        @property
        def best_x(self) -> np.ndarray: ...

        @property
        def best_f(self) -> float | np.ndarray: ...

        @property
        def best_v(self) -> float: ...

    def setup(self, problem: Problem, rng: np.random.Generator, termination: Termination) -> None:
        self.problem, self.rng, self.termination = problem, rng, termination
        self.n_iter = 0
        self.lower = np.asarray(problem.lower, dtype=float)
        self.upper = np.asarray(problem.upper, dtype=float)
        self._setup()

    def ask(self) -> np.ndarray:
        return self._ask()

    def tell(self, ev: Evaluation) -> None:
        self._tell(ev)

    @abstractmethod
    def _setup(self) -> None:
        """Draw the initial population."""

    @abstractmethod
    def _ask(self) -> np.ndarray:
        """The next batch to evaluate."""

    @abstractmethod
    def _tell(self, ev: Evaluation) -> None:
        """Learn the values of the last batch."""

    def pareto(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None


class ExternalOptimizer(Protocol):
    """An optimizer that runs its own loop (the mealpy adapter): :func:`minimize` hands it the
    problem, the termination, the generator and the seed, and returns its :class:`Result`."""

    name: str

    def solve(
        self, problem: Problem, term: Termination, rng: np.random.Generator, seed: int | None
    ) -> Result: ...


def minimize(
    problem: Problem,
    algorithm: Algorithm | ExternalOptimizer,
    *,
    max_evals: int | None = None,
    max_iter: int | None = None,
    stall_iter: int | None = None,
    termination: Termination | None = None,
    seed: int | np.random.Generator | None = 0,
    callback: Callable[[Algorithm], None] | None = None,
    progress: bool = False,
) -> Result:
    """Minimize ``problem`` with ``algorithm`` until the termination criterion holds.

    Parameters
    ----------
    problem : Problem
    algorithm : Algorithm or ExternalOptimizer
        E.g. :class:`flexopt.optim.WCA`. External optimizers (anything with a ``solve``
        method, such as the mealpy adapter) run their own loop and return the same
        :class:`Result`.
    max_evals, max_iter, stall_iter : int, optional
        Shorthand for a :class:`Termination` (ignored when ``termination`` is given).
    seed : int or numpy.random.Generator
        The same seed gives the same result, bit for bit.
    callback : callable, optional
        Called with the algorithm after every iteration.
    progress : bool
        A line on stderr every 10 % of the iteration budget.
    """
    term = termination or Termination(max_evals=max_evals, max_iter=max_iter, stall_iter=stall_iter)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    seed_value = None if isinstance(seed, np.random.Generator) else seed
    if hasattr(algorithm, "solve"):  # external optimizer with its own loop
        return algorithm.solve(problem, term, rng, seed_value)
    start = time.perf_counter()
    algorithm.setup(problem, rng, term)
    evals = 0
    history: list[float] = []
    best_seen = math.inf
    stall = 0
    message = ""
    last_iter = 0
    budget = term.iteration_budget(
        getattr(algorithm, "evals_per_iter", 1), getattr(algorithm, "initial_evals", 0)
    )
    report_every = max(1, budget // 10) if progress and budget else 0
    max_evals, max_iter, stall_iter = term.max_evals, term.max_iter, term.stall_iter
    ask, tell, evaluate = algorithm.ask, algorithm.tell, problem.evaluate
    while True:
        X = ask()
        n = len(X)
        if max_evals is not None and evals + n > max_evals:
            message = f"max_evals={max_evals} reached"
            break
        tell(evaluate(X))
        evals += n
        if algorithm.n_iter == last_iter:  # an iteration can take several ask/tell rounds
            continue
        last_iter = algorithm.n_iter
        best = algorithm.best_f
        f = best if type(best) is float else float(np.min(best))
        history.append(f)
        if callback is not None:
            callback(algorithm)
        if report_every and last_iter % report_every == 0:
            print(
                f"{algorithm.name}: iteration {last_iter}/{budget}, best {f:.6g}", file=sys.stderr
            )
        if max_iter is not None and last_iter >= max_iter:
            message = f"max_iter={max_iter} reached"
            break
        if stall_iter is not None:
            improved = (
                best_seen - f > term.stall_tol * max(abs(best_seen), 1e-300)
                if math.isfinite(best_seen)
                else True
            )
            stall = 0 if improved else stall + 1
            best_seen = min(best_seen, f)
            if stall >= stall_iter:
                message = f"no improvement in {stall_iter} iterations"
                break
    pareto = algorithm.pareto()
    return Result(
        x=np.array(algorithm.best_x, copy=True),
        f=np.atleast_1d(np.array(algorithm.best_f, dtype=np.float64)),
        violation=float(algorithm.best_v),
        history=np.array(history),
        evaluations=evals,
        iterations=algorithm.n_iter,
        time_s=time.perf_counter() - start,
        algorithm=algorithm.name,
        seed=seed_value,
        message=message,
        pareto_x=None if pareto is None else pareto[0],
        pareto_f=None if pareto is None else pareto[1],
    )
