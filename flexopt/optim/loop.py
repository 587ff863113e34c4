""":func:`minimize`: the ask/tell loop, termination, callback, history and the result."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

import numpy as np

from flexopt.optim.core import (
    Algorithm,
    Evaluation,
    ExternalOptimizer,
    Problem,
    Result,
    Termination,
    check_problem,
    check_values,
    deb_better,
    deb_order,
)

__all__ = ["minimize"]


def minimize(
    problem: Problem,
    algorithm: Algorithm | ExternalOptimizer,
    *,
    max_evals: int | None = None,
    max_iter: int | None = None,
    stall_iter: int | None = None,
    termination: Termination | None = None,
    seed: int | np.random.Generator | None = 0,
    callback: Callable[[Algorithm], bool | None] | None = None,
    progress: bool = False,
) -> Result:
    """Minimize ``problem`` with ``algorithm`` until the termination criterion holds.

    Parameters
    ----------
    problem : Problem
        Finite bounds; one objective unless the algorithm is multi-objective. An algorithm
        that asks for the violations it compares (``defers_constraints``: :class:`WCA` on a
        constrained problem, unless ``lazy_violation=False`` or ``epsilon > 0``) gets
        :meth:`Problem.evaluate_deferred`'s evaluations.
    algorithm : Algorithm or ExternalOptimizer
        E.g. :class:`flexopt.optim.WCA`. External optimizers (anything with a ``solve``
        method, such as the mealpy adapter) run their own loop and return the same
        :class:`Result`.
    max_evals, max_iter, stall_iter : int, optional
        Shorthand for a :class:`Termination` (ignored when ``termination`` is given).
        ``max_evals`` is exact: when the next batch would exceed it, only its first points
        are evaluated, and the best of them is reported if it beats the algorithm's best.
    seed : int, numpy.random.Generator or None
        The same seed gives the same result, bit for bit. ``None`` draws a seed from the
        operating system's entropy and records it in :attr:`Result.seed`.
    callback : callable, optional
        Called with the algorithm after every iteration; returning a true value stops the
        run (message ``"stopped by the callback"``).
    progress : bool
        A line on stderr every 10 % of the iteration budget.

    Raises
    ------
    ValueError
        Non-finite bounds, several objectives for a single-objective algorithm, a NaN
        objective or constraint value, ``max_evals < 1``.
    """
    term = termination or Termination(max_evals=max_evals, max_iter=max_iter, stall_iter=stall_iter)
    if term.max_evals is not None and term.max_evals < 1:
        raise ValueError(f"max_evals must be ≥ 1, got {term.max_evals}")
    check_problem(problem, getattr(algorithm, "multi_objective", False))
    if seed is None:  # drawn, so that the run can be repeated from the result
        seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    seed_value = None if isinstance(seed, np.random.Generator) else seed
    if hasattr(algorithm, "solve"):  # external optimizer with its own loop
        return algorithm.solve(problem, term, rng, seed_value)
    start = time.perf_counter()
    algorithm.setup(problem, rng, term)
    evals = 0
    history: list[tuple[float, int, float]] = []  # best f, evaluations, best's violation
    best_seen = math.inf
    stall = 0
    message = ""
    last_iter = 0
    partial: tuple[np.ndarray, Evaluation] | None = None
    budget = term.iteration_budget(
        getattr(algorithm, "evals_per_iter", 1), getattr(algorithm, "initial_evals", 0)
    )
    report_every = max(1, budget // 10) if progress and budget else 0
    max_iter, stall_iter = term.max_iter, term.stall_iter
    cap = sys.maxsize if term.max_evals is None else term.max_evals
    # an algorithm that asks for the violations it compares takes deferred constraints
    defers = getattr(algorithm, "defers_constraints", False)  # external optimizers: no
    evaluate = problem.evaluate_deferred if defers else problem.evaluate
    ask, tell, record = algorithm.ask, algorithm.tell, history.append
    while True:
        X = ask()
        n = len(X)
        if evals + n > cap:
            if cap > evals:  # the budget's last points: evaluated, they may hold the best
                part = np.array(X[: cap - evals])
                ev = problem.evaluate(part)  # its best is reported: every violation
                check_values(ev)
                partial = (part, ev)
                evals = cap
            message = f"max_evals={cap} reached"
            break
        tell(evaluate(X))
        evals += n
        if algorithm.n_iter == last_iter:  # an iteration can take several ask/tell rounds
            continue
        last_iter = algorithm.n_iter
        best = algorithm.best_f
        f = best if type(best) is float else float(np.min(best))
        record((f, evals, algorithm.best_v))
        if callback is not None and callback(algorithm):
            message = "stopped by the callback"
            break
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
    x, f_best, v_best = _best(problem, algorithm, partial, evals)
    pareto = algorithm.pareto()
    return Result(
        x=problem.round_integers(x),
        f=f_best,
        violation=v_best,
        history=np.array([h[0] for h in history], dtype=float),
        evaluations=evals,
        iterations=algorithm.n_iter,
        time_s=time.perf_counter() - start,
        algorithm=algorithm.name,
        seed=seed_value,
        message=message,
        pareto_x=None if pareto is None else problem.round_integers(pareto[0]),
        pareto_f=None if pareto is None else pareto[1],
        history_evaluations=np.array([h[1] for h in history], dtype=int),
        history_violation=np.array([h[2] for h in history], dtype=float),
    )


def _best(
    problem: Problem,
    algorithm: Algorithm,
    partial: tuple[np.ndarray, Evaluation] | None,
    evals: int,
) -> tuple[np.ndarray, float | np.ndarray, float]:
    """The reported point: the algorithm's best, or the best of the budget's last, partial
    batch when it is better (Deb's rules) or nothing else was evaluated."""
    if partial is not None and algorithm.multi_objective:
        algorithm.absorb(*partial)
        partial = None
    if partial is not None:
        part, ev = partial
        f, v = ev.F[:, 0], ev.violation
        i = int(deb_order(f, v)[0])
        told = evals > len(part)  # something before the partial batch was told
        if not told or deb_better(f[i], v[i], algorithm.best_f, algorithm.best_v):
            return part[i].copy(), float(f[i]), float(v[i])
    x = np.array(algorithm.best_x, copy=True)
    best = algorithm.best_f
    if algorithm.multi_objective:
        return x, np.atleast_1d(np.array(best, dtype=np.float64)), float(algorithm.best_v)
    return x, float(best), float(algorithm.best_v)
