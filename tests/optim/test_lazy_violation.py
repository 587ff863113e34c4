"""WCA asks a problem that defers its constraints only for the violations its comparisons
need (``lazy_violation``): the run is the same bit for bit, with fewer constraint rows
computed."""

from __future__ import annotations

import numpy as np
import pytest

from flexopt.optim import WCA, Evaluation, Problem, minimize
from flexopt.optim.core import total_violation


class _Deferring(Problem):
    """min Σx s.t. Σx ≥ 1 and x₀ ≤ 0.6 on [0, 1]^4, counting the points whose constraints
    are computed."""

    lower, upper, n_constr = np.zeros(4), np.ones(4), 2

    def __init__(self) -> None:
        self.computed = 0

    def _g(self, X: np.ndarray) -> np.ndarray:
        self.computed += len(X)
        return np.c_[1 - X.sum(1), X[:, 0] - 0.6]

    def evaluate(self, X: np.ndarray) -> Evaluation:
        X = np.atleast_2d(X)
        return Evaluation(X.sum(1)[:, None], self._g(X))

    def evaluate_deferred(self, X: np.ndarray) -> Evaluation:
        X = np.atleast_2d(X)

        def violation(bound: np.ndarray) -> np.ndarray:
            out = np.full(len(X), np.inf)
            rows = bound >= 0
            v = total_violation(self._g(X[rows]))
            out[rows] = np.where(v <= bound[rows], v, np.inf)
            return out

        return Evaluation(X.sum(1)[:, None], deferred=violation)


@pytest.mark.parametrize("engine", ["numba", "numpy"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"restart": 0, "river_rain": "uniform"},  # the market's settings
        {"restart": 10, "river_rain": "coordinates", "d_max": 0.05},
        {"n_pop": 12, "n_sr": 3, "sea_chunks": 1},
    ],
)
def test_lazy_violations_give_the_same_run(engine, options):
    runs = {}
    for lazy in (True, False):
        problem = _Deferring()
        alg = WCA(engine=engine, lazy_violation=lazy, **options)
        res = minimize(problem, alg, max_evals=3000, seed=3)
        runs[lazy] = (res, alg, problem.computed)
    (a, alg_a, n_a), (b, alg_b, n_b) = runs[True], runs[False]
    np.testing.assert_array_equal(a.x, b.x)
    assert a.f == b.f
    assert a.violation == b.violation
    np.testing.assert_array_equal(a.history, b.history)
    np.testing.assert_array_equal(a.history_violation, b.history_violation)
    assert a.evaluations == b.evaluations == 3000
    np.testing.assert_array_equal(alg_a.X, alg_b.X)
    np.testing.assert_array_equal(alg_a.F, alg_b.F)
    assert a.feasible
    assert n_b == 3000
    assert n_a < 0.9 * n_b  # the streams no comparison needed were not computed


def test_an_unaware_problem_and_epsilon_compute_everything():
    problem = _Deferring()
    minimize(problem, WCA(epsilon=0.5), max_evals=500, seed=0)
    assert problem.computed == 500
    ev = problem.evaluate_deferred(np.full((3, 4), 0.1))
    np.testing.assert_array_equal(ev.violation, problem.evaluate(np.full((3, 4), 0.1)).violation)
