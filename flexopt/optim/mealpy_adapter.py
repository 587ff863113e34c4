"""Run any mealpy optimizer by class name on a flexopt :class:`Problem` (extra ``compare``).

mealpy (Van Thieu & Mirjalili 2023, doi:10.1016/j.sysarc.2023.102871) evaluates one solution
at a time; the adapter wraps the batched problem, counts the evaluations itself and stops
mealpy at ``max_evals`` exactly, passes constraints as a penalty (mealpy has no feasibility
rules), reports the best point seen under Deb's rules and returns the same :class:`Result`
as :func:`flexopt.optim.minimize`. mealpy 3.0.2 is pinned: 3.0.3 caps numpy
below 2.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import numpy as np

from flexopt.optim.core import Problem, Result, Termination, check_values, deb_better

__all__ = ["Mealpy"]


class Mealpy:
    """A mealpy optimizer, by class name (``"OriginalWCA"``, ``"OriginalPSO"``, ``"BaseGA"``,
    ``"OriginalDE"``, ``"OriginalGWO"``, ``"OriginalICA"``, …).

    Parameters
    ----------
    name : str
        mealpy class name.
    pop_size : int
    penalty : float
        Objective penalty per unit of constraint violation.
    **params
        The optimizer's own parameters; names it does not take are rejected (mealpy itself
        would accept and ignore them).
    """

    def __init__(self, name: str, pop_size: int = 50, penalty: float = 1e6, **params: Any) -> None:
        try:
            import mealpy
        except ImportError as err:  # pragma: no cover - depends on the extra
            raise ImportError(
                "the mealpy adapter needs the 'compare' extra: pip install 'flexopt[compare]'"
            ) from err
        registry = mealpy.get_all_optimizers(verbose=False)
        if name not in registry:
            raise ValueError(f"unknown mealpy optimizer {name!r}")
        self.cls = registry[name]
        accepted = set(inspect.signature(self.cls.__init__).parameters) - {"self", "args", "kwargs"}
        unknown = sorted(set(params) - accepted)
        if unknown:
            raise TypeError(f"{name} takes no parameter(s) {unknown}; it takes {sorted(accepted)}")
        self.name = f"mealpy.{name}"
        self.pop_size, self.penalty, self.params = pop_size, penalty, params

    def solve(
        self, problem: Problem, term: Termination, rng: np.random.Generator, seed: int | None
    ) -> Result:
        from mealpy import FloatVar

        tracker = _Tracker(problem, self.penalty, term.max_evals)
        if term.max_evals is not None:
            # mealpy's own count overshoots (it checks after whole epochs): the tracker stops
            # the run at the budget's last evaluation, so epochs and max_fe are only a cap
            epochs = max(1, term.max_evals)
            mealpy_term = {"max_fe": 2 * term.max_evals + 2 * self.pop_size}
        else:
            epochs = term.max_iter or 1000
            mealpy_term = None
        opt = _tracked(self.cls)(epoch=epochs, pop_size=self.pop_size, **self.params)
        opt.flexopt_tracker = tracker
        task = {
            "obj_func": tracker.objective,
            "bounds": FloatVar(
                lb=np.asarray(problem.lower, float), ub=np.asarray(problem.upper, float)
            ),
            "minmax": "min",
            "log_to": None,
        }
        seed_int = int(seed) if seed is not None else int(rng.integers(2**31 - 1))
        start = time.perf_counter()
        message = "mealpy"
        try:
            opt.solve(task, seed=seed_int, termination=mealpy_term)
        except _BudgetSpentError:
            message = f"max_evals={term.max_evals} reached"
        elapsed = time.perf_counter() - start
        if tracker.best_x is None:  # pragma: no cover - mealpy evaluates before stopping
            raise RuntimeError("mealpy evaluated nothing")
        history = np.asarray(tracker.history, dtype=float).reshape(-1, 3)
        return Result(
            x=problem.round_integers(tracker.best_x),
            f=float(tracker.best_f),
            violation=tracker.best_v,
            history=history[:, 1],
            evaluations=tracker.n,
            iterations=len(history),
            time_s=elapsed,
            algorithm=self.name,
            seed=seed_int,
            message=message,
            history_evaluations=history[:, 0].astype(int),
            history_violation=history[:, 2],
        )


class _BudgetSpentError(Exception):
    """Raised by the objective to stop mealpy at the budget's last evaluation."""


class _Tracker:
    """mealpy's objective: one point at a time through the batched problem, the evaluation
    count (the run stops at ``max_evals`` exactly), the best point under Deb's rules (what
    is reported — scored on the problem, not the penalty) and the history per epoch."""

    def __init__(self, problem: Problem, penalty: float, max_evals: int | None) -> None:
        self.problem, self.penalty, self.max_evals = problem, penalty, max_evals
        self.n = 0
        self.best_x: np.ndarray | None = None
        self.best_f, self.best_v = np.inf, np.inf
        self.history: list[tuple[float, float, float]] = []

    def objective(self, x: np.ndarray) -> float:
        if self.max_evals is not None and self.n >= self.max_evals:
            raise _BudgetSpentError
        self.n += 1
        point = np.asarray(x, dtype=float).reshape(1, -1)
        ev = self.problem.evaluate(point)
        check_values(ev)
        f, v = float(ev.F[0, 0]), float(ev.violation[0])
        if self.best_x is None or deb_better(f, v, self.best_f, self.best_v):
            self.best_x, self.best_f, self.best_v = self.problem.round_integers(point[0]), f, v
        return f if ev.G is None else f + self.penalty * v

    def epoch_done(self) -> None:
        self.history.append((self.n, self.best_f, self.best_v))


def _tracked(cls: type) -> type:
    """``cls`` recording the history after each epoch; for ``OriginalWCA``, every leader
    keeps at least one stream: mealpy's stream counts, ``round(|cost / Σ cost| · N)``, leave
    a river with none (an ``IndexError`` in its next epoch) or ask for more streams than
    there are (a ``ValueError``) when costs differ by orders of magnitude or in sign, as
    penalized constraints make them."""

    class Tracked(cls):  # type: ignore[misc]
        flexopt_tracker: _Tracker

        def track_optimize_step(self, *args: Any, **kwargs: Any) -> None:
            super().track_optimize_step(*args, **kwargs)
            self.flexopt_tracker.epoch_done()

        if cls.__name__ == "OriginalWCA":

            def initialization(self) -> None:
                try:
                    super().initialization()
                except ValueError:  # counts beyond the streams: split them evenly
                    order = self.generator.permutation(self.pop_size - self.nsr)
                    stream = self.pop[self.nsr :]
                    self.streams = {
                        i: [stream[j] for j in order[i :: self.nsr]] for i in range(self.nsr)
                    }
                streams = self.streams
                for i in streams:
                    if not streams[i]:  # one stream from the leader with the most
                        donor = max(streams, key=lambda k: len(streams[k]))
                        streams[i].append(streams[donor].pop())

    Tracked.__name__ = Tracked.__qualname__ = cls.__name__
    return Tracked
