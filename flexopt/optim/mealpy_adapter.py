"""Run any mealpy optimizer by class name on a flexopt :class:`Problem` (extra ``compare``).

mealpy (Van Thieu & Mirjalili 2023, doi:10.1016/j.sysarc.2023.102871) evaluates one solution
at a time; the adapter wraps the batched problem, counts the evaluations itself, passes
constraints as a penalty (mealpy has no feasibility rules) and returns the same
:class:`Result` as :func:`flexopt.optim.minimize`. mealpy 3.0.2 is pinned: 3.0.3 caps numpy
below 2.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import numpy as np

from flexopt.optim.core import Problem, Result, Termination

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

        counter = {"n": 0}
        evaluate, penalty = problem.evaluate, self.penalty

        def objective(x: np.ndarray) -> float:
            counter["n"] += 1
            ev = evaluate(np.asarray(x, dtype=float).reshape(1, -1))
            if ev.G is None:  # unconstrained: no penalty term to add
                return float(ev.F[0, 0])
            return float(ev.F[0, 0] + penalty * ev.violation[0])

        if term.max_evals is not None:
            epochs = max(1, term.max_evals // self.pop_size)
            mealpy_term = {"max_fe": term.max_evals}
        else:
            epochs = term.max_iter or 1000
            mealpy_term = None
        opt = self.cls(epoch=epochs, pop_size=self.pop_size, **self.params)
        task = {
            "obj_func": objective,
            "bounds": FloatVar(
                lb=np.asarray(problem.lower, float), ub=np.asarray(problem.upper, float)
            ),
            "minmax": "min",
            "log_to": None,
        }
        seed_int = int(seed) if seed is not None else int(rng.integers(2**31 - 1))
        start = time.perf_counter()
        best = opt.solve(task, seed=seed_int, termination=mealpy_term)
        elapsed = time.perf_counter() - start
        x = np.asarray(best.solution, dtype=float)
        ev = problem.evaluate(x[None, :])  # scored on the problem itself, not the penalty
        return Result(
            x=x,
            f=ev.F[0],
            violation=float(ev.violation[0]),
            history=np.asarray(opt.history.list_global_best_fit, dtype=float),
            evaluations=counter["n"],
            iterations=len(opt.history.list_global_best_fit),
            time_s=elapsed,
            algorithm=self.name,
            seed=seed_int,
            message="mealpy",
        )
