"""Problem / Algorithm / Termination / Result and :func:`minimize` (numpy only).

The shape follows pymoo: a problem evaluates a whole population ``X[n, d]`` in one call; an
algorithm proposes batches (``ask``) and learns their values (``tell``); termination and the
result are their own objects. Every random draw goes through the ``numpy.random.Generator``
handed to the algorithm, so a seed fixes the run bit for bit.
"""

from __future__ import annotations

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
    "check_bounds",
    "check_problem",
    "deb_better",
    "deb_bounds",
    "deb_order",
    "total_violation",
]


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Objective values ``F[n, m]`` and constraint values ``G[n, k]`` (feasible when ``G ≤ 0``).

    ``deferred`` (with ``G`` left ``None``): the constraints not computed yet, for a problem's
    :meth:`Problem.evaluate_deferred` — ``deferred(bound)`` returns the total violation of
    each row for which it is needed (:meth:`violation_within`).
    """

    F: np.ndarray
    G: np.ndarray | None = None
    deferred: Callable[[np.ndarray], np.ndarray] | None = None
    _whole: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    @property
    def violation(self) -> np.ndarray:
        """Total violation ``Σ_k max(0, G_k)`` per individual ``[n]`` (zero without constraints)."""
        if self.deferred is not None:  # computed once, on the first access
            if "v" not in self._whole:
                self._whole["v"] = self.deferred(np.full(self.F.shape[0], np.inf))
            return self._whole["v"]
        if self.G is None or self.G.shape[1] == 0:
            return (
                _ZEROS[: self.F.shape[0]]
                if self.F.shape[0] <= _ZEROS.size
                else np.zeros(self.F.shape[0])
            )
        return total_violation(self.G)

    def violation_within(self, bound: np.ndarray) -> np.ndarray:
        """Total violations where they are needed.

        Parameters
        ----------
        bound : numpy.ndarray
            ``[n]``: the largest violation that matters for each row — ``0`` asks only
            whether the row is feasible, ``inf`` for its violation whatever it is, ``-inf``
            for nothing.

        Returns
        -------
        numpy.ndarray
            ``[n]``: :attr:`violation`'s value, bit for bit, for every row whose violation
            is at most its bound; ``inf`` for the others — or their value too (always, when
            the evaluation is not deferred; a deferred one may return values a little above
            the bound). NaN for a row whose constraints it computed and found NaN; a row it
            did not compute is not checked.
        """
        return self.deferred(bound) if self.deferred is not None else self.violation


def total_violation(G: np.ndarray) -> np.ndarray:
    """``Σ_k max(0, G_k)`` of each row of ``G[n, k]``: each row's sum is the same whatever
    the other rows (a deferred evaluation computes some rows only)."""
    total: np.ndarray = np.clip(G, 0.0, None).sum(axis=1)
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
    #: integer variables (``[d]`` mask) or ``None``: evaluated and returned rounded
    integer: np.ndarray | None = None

    @property
    def n_var(self) -> int:
        return int(np.asarray(self.lower).size)

    @abstractmethod
    def evaluate(self, X: np.ndarray) -> Evaluation:
        """Objectives (and constraints) of every row of ``X[n, d]``."""

    def evaluate_deferred(self, X: np.ndarray) -> Evaluation:
        """:meth:`evaluate`, where the problem may leave the constraints to be computed only
        for the rows an algorithm asks for (:attr:`Evaluation.deferred`); the objectives and
        every violation asked for equal :meth:`evaluate`'s bit for bit. This default
        computes everything."""
        return self.evaluate(X)

    @staticmethod
    def from_function(
        f: Callable[[np.ndarray], ArrayLike],
        lower: ArrayLike,
        upper: ArrayLike,
        *,
        n_obj: int = 1,
        constraints: Callable[[np.ndarray], ArrayLike] | None = None,
        n_constr: int = 0,
        equalities: Callable[[np.ndarray], ArrayLike] | None = None,
        eq_tol: float = 1e-6,
        integer: ArrayLike | None = None,
    ) -> Problem:
        """Wrap a batched function ``f(X[n, d]) -> F[n]`` (or ``[n, m]``) as a :class:`Problem`.

        Parameters
        ----------
        constraints : callable, optional
            ``G(X) -> [n, k]``, feasible when ``G ≤ 0``.
        equalities : callable, optional
            ``H(X) -> [n, e]``, feasible when ``|H| ≤ eq_tol``: appended to ``G`` as
            ``|H| − eq_tol`` (W5 of ``models/wca.md``).
        eq_tol : float, ≥ 0
            Tolerance of the equalities.
        integer : array_like, optional
            Indices (or a ``[d]`` boolean mask) of integer variables: ``f`` and the
            constraints see them rounded, ``round(x)`` clipped into ``[⌈lower⌉, ⌊upper⌋]``,
            and :func:`minimize` returns them so.
        """
        return _FunctionProblem(
            f, lower, upper, n_obj, constraints, n_constr, equalities, eq_tol, integer
        )

    def round_integers(self, X: np.ndarray) -> np.ndarray:
        """``X`` with the integer variables rounded into the box, ``clip(round(x), ⌈lower⌉,
        ⌊upper⌋)`` (round half to even); ``X`` itself when there are none."""
        mask = self.integer
        if mask is None or not mask.any():
            return X
        out = np.array(X, dtype=float, copy=True)
        lo = np.ceil(np.asarray(self.lower, dtype=float)[mask])
        hi = np.floor(np.asarray(self.upper, dtype=float)[mask])
        out[..., mask] = np.clip(np.rint(out[..., mask]), lo, hi)
        return out


class _FunctionProblem(Problem):
    def __init__(
        self,
        f: Callable[[np.ndarray], ArrayLike],
        lower: ArrayLike,
        upper: ArrayLike,
        n_obj: int,
        constraints: Callable[[np.ndarray], ArrayLike] | None,
        n_constr: int,
        equalities: Callable[[np.ndarray], ArrayLike] | None = None,
        eq_tol: float = 1e-6,
        integer: ArrayLike | None = None,
    ) -> None:
        self.f = f
        self.lower = np.asarray(lower, dtype=float).ravel()
        self.upper = np.asarray(upper, dtype=float).ravel()
        check_bounds(self.lower, self.upper)
        self.n_obj = n_obj
        if not eq_tol >= 0:
            raise ValueError(f"eq_tol must be ≥ 0, got {eq_tol}")
        self.constraints, self.equalities, self.eq_tol = constraints, equalities, eq_tol
        self.n_constr = n_constr if constraints is None else max(n_constr, 1)
        self.n_constr += 0 if equalities is None else 1
        self.integer = _integer_mask(integer, self.lower, self.upper)

    def evaluate(self, X: np.ndarray) -> Evaluation:
        if self.integer is not None:
            X = self.round_integers(X)
        F = np.asarray(self.f(X), dtype=float).reshape(X.shape[0], -1)
        if self.constraints is None and self.equalities is None:
            return Evaluation(F)
        parts = []
        if self.constraints is not None:
            parts.append(np.asarray(self.constraints(X), dtype=float).reshape(X.shape[0], -1))
        if self.equalities is not None:
            H = np.asarray(self.equalities(X), dtype=float).reshape(X.shape[0], -1)
            parts.append(np.abs(H) - self.eq_tol)  # |h| ≤ tol as an inequality
        return Evaluation(F, np.hstack(parts) if len(parts) > 1 else parts[0])


def check_bounds(lower: np.ndarray, upper: np.ndarray) -> None:
    """Raise unless ``lower`` and ``upper`` are finite, of one shape, with ``lower ≤ upper``."""
    if lower.shape != upper.shape or np.any(lower > upper):
        raise ValueError("lower and upper must have the same shape with lower ≤ upper")
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
        raise ValueError("the bounds must be finite (the search draws uniformly in the box)")


def _integer_mask(
    integer: ArrayLike | None, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray | None:
    """A ``[d]`` boolean mask from indices or a mask; checks every integer variable's box
    holds an integer."""
    if integer is None:
        return None
    idx = np.asarray(integer)
    mask = np.zeros(lower.size, dtype=bool)
    if idx.dtype == bool:
        if idx.shape != lower.shape:
            raise ValueError(f"an integer mask needs {lower.size} entries, got {idx.size}")
        mask[:] = idx
    else:
        mask[idx.astype(int)] = True
    if np.any(np.ceil(lower[mask]) > np.floor(upper[mask])):
        raise ValueError("an integer variable's bounds hold no integer")
    return mask


def deb_order(f: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Indices from best to worst under Deb's feasibility rules (Deb 2000,
    doi:10.1016/S0045-7825(99)00389-8): feasible before infeasible, feasible by objective,
    infeasible by violation."""
    return np.lexsort((np.where(v > 0, 0.0, f), v))


def deb_bounds(f: np.ndarray, f_lead: np.ndarray, v_lead: np.ndarray) -> np.ndarray:
    """The largest violation of each point ``f[n]`` that matters against its leader
    ``(f_lead, v_lead)`` (``[n]`` each) under Deb's rules — what
    :meth:`Evaluation.violation_within` is asked for.

    A feasible leader is beaten by a feasible point with a lower objective only: ``0`` (is
    it feasible?) where ``f < f_lead``, ``-inf`` (nothing) elsewhere. An infeasible leader is
    beaten by any point with a smaller violation: ``v_lead``. A point given ``inf`` for the
    rest cannot beat its leader, so that a group's swaps are those with every violation
    computed (``tests/optim/test_lazy_violation.py``)."""
    bound: np.ndarray = np.where(v_lead > 0, v_lead, np.where(f < f_lead, 0.0, -np.inf))
    return bound


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

    ``x``/``f``/``violation`` of the best individual (Deb's rules; ``f`` a float for a
    single objective, the compromise's ``[m]`` objectives for several); integer variables
    rounded (:meth:`Problem.round_integers`). ``history``, ``history_evaluations`` and
    ``history_violation``: after each iteration, the best objective, the evaluations so far
    and the best's violation. ``seed``: the seed given or drawn (``None`` when a Generator
    was given). For multi-objective algorithms ``pareto_x``/``pareto_f`` hold the final
    archive.
    """

    x: np.ndarray
    f: float | np.ndarray
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
    history_evaluations: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    history_violation: np.ndarray = field(default_factory=lambda: np.empty(0))
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def feasible(self) -> bool:
        return self.violation <= 0

    def __repr__(self) -> str:
        """One line: the algorithm, the size of ``x``, ``f``, feasibility and the effort."""
        f = np.atleast_1d(np.asarray(self.f, dtype=float))
        f_text = (
            f"{f[0]:.6g}" if np.ndim(self.f) == 0 else "[" + ", ".join(f"{v:.6g}" for v in f) + "]"
        )
        state = "feasible" if self.feasible else f"infeasible (violation {self.violation:.3g})"
        evals = f"{self.evaluations:,}".replace(",", " ")
        return (
            f"Result({self.algorithm}: x=[{np.size(self.x)} values], f={f_text}, {state}, "
            f"{self.iterations} iterations, {evals} evaluations)"
        )


class Algorithm(ABC):
    """Ask/tell population-based optimizer.

    Subclasses implement :meth:`_setup` (draw and return the initial population),
    :meth:`_ask` and :meth:`_tell`, and keep ``best_x``, ``best_f``, ``best_v``. One
    *iteration* may take several ask/tell rounds (WCA: streams, then rivers); the algorithm
    increments ``n_iter`` when one ends.
    """

    name = "algorithm"
    #: whether the algorithm takes several objectives (single-objective ones refuse them)
    multi_objective = False
    #: whether :func:`minimize` hands it :meth:`Problem.evaluate_deferred`'s evaluations, of
    #: which it asks for the violations it compares (set by :meth:`setup` where it does)
    defers_constraints = False

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

    def absorb(self, X: np.ndarray, ev: Evaluation) -> None:
        """Take points evaluated outside an iteration (the last, partial batch of a
        ``max_evals`` budget) into the reported result; single-objective algorithms leave
        this to :func:`minimize`."""
        return


class ExternalOptimizer(Protocol):
    """An optimizer that runs its own loop (the mealpy adapter): :func:`minimize` hands it the
    problem, the termination, the generator and the seed, and returns its :class:`Result`."""

    name: str

    def solve(
        self, problem: Problem, term: Termination, rng: np.random.Generator, seed: int | None
    ) -> Result: ...


def check_problem(problem: Problem, multi_objective: bool) -> None:
    """Raise on misuse: non-finite or crossed bounds, several objectives for a
    single-objective algorithm."""
    check_bounds(np.asarray(problem.lower, dtype=float), np.asarray(problem.upper, dtype=float))
    if problem.n_obj != 1 and not multi_objective:
        raise ValueError(
            f"the problem has {problem.n_obj} objectives; this algorithm minimizes one "
            "(use MOWCA, or combine them)"
        )


def check_values(ev: Evaluation) -> None:
    """Raise when an objective or constraint value is NaN."""
    bad = np.isnan(ev.F).any(axis=1)
    if ev.G is not None:
        bad |= np.isnan(ev.G).any(axis=1)
    if bad.any():
        raise ValueError(
            f"the problem returned NaN (objective or constraint) for {int(bad.sum())} of "
            f"{bad.size} points"
        )
