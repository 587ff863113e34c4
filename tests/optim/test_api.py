"""minimize's API: callback stop, exact max_evals, history, equality constraints, integer
variables, misuse errors, drawn seeds, a float objective; the mealpy adapter on constrained
problems."""

from __future__ import annotations

import numpy as np
import pytest

from flexopt import optim
from flexopt.optim import MOWCA, WCA, Problem, _kernels, minimize

SPHERE = Problem.from_function(lambda X: (X**2).sum(1), -5 * np.ones(4), 5 * np.ones(4))
ZDT1 = Problem.from_function(
    lambda X: np.c_[X[:, 0], 1 - np.sqrt(X[:, 0])], np.zeros(3), np.ones(3), n_obj=2
)


def test_a_callback_returning_true_stops_the_run():
    seen = []

    def stop_at_five(alg):
        seen.append(alg.n_iter)
        return alg.n_iter >= 5

    r = minimize(SPHERE, WCA(), max_iter=100, seed=0, callback=stop_at_five)
    assert seen == [1, 2, 3, 4, 5]
    assert r.iterations == 5
    assert r.message == "stopped by the callback"
    # a callback returning None (most) does not stop it
    assert minimize(SPHERE, WCA(), max_iter=7, seed=0, callback=lambda a: None).iterations == 7


@pytest.mark.parametrize("budget", [1, 30, 50, 51, 99, 1000, 1001])
@pytest.mark.parametrize("make", [WCA, lambda: WCA(engine="numpy"), lambda: WCA(n_pop=12, n_sr=3)])
def test_max_evals_is_exact_for_wca(budget, make):
    calls = []

    def f(X):
        calls.append(len(X))
        return (X**2).sum(1)

    r = minimize(
        Problem.from_function(f, -np.ones(3), np.ones(3)), make(), max_evals=budget, seed=1
    )
    assert r.evaluations == sum(calls) == budget
    assert r.f == (r.x**2).sum()  # an evaluated point, with its own value


def test_max_evals_is_exact_for_mowca():
    r = minimize(ZDT1, MOWCA(n_pop=20), max_evals=333, seed=0)
    assert r.evaluations == 333
    assert r.pareto_f is not None
    assert len(r.pareto_f) >= 1


@pytest.mark.parametrize("budget", [7, 1000, 2000])
def test_max_evals_is_exact_for_the_mealpy_adapter(budget):
    r = minimize(SPHERE, optim.Mealpy("OriginalWCA", pop_size=20), max_evals=budget, seed=0)
    assert r.evaluations == budget
    assert r.history_evaluations.size == r.history.size == r.iterations
    assert np.all(np.diff(r.history_evaluations) > 0)


def test_history_records_evaluations_best_and_violation():
    p = Problem.from_function(
        lambda X: X.sum(1), [0.0, 0.0], [1.0, 1.0], constraints=lambda X: 1 - X.sum(1)
    )
    r = minimize(p, WCA(d_max=1e-5), max_iter=40, seed=3)
    assert len(r.history) == len(r.history_evaluations) == len(r.history_violation) == 40
    np.testing.assert_array_equal(r.history_evaluations, 50 + 49 * np.arange(1, 41))
    assert r.history_violation[-1] == r.violation == 0.0
    assert np.all(np.diff(r.history_violation) <= 0)  # Deb's rules: never more violated


def test_equality_constraints_with_a_tolerance():
    # min x0² + x1² s.t. x0 + x1 = 1: optimum (0.5, 0.5), value 0.5
    p = Problem.from_function(
        lambda X: (X**2).sum(1),
        [-2.0, -2.0],
        [2.0, 2.0],
        equalities=lambda X: X.sum(1) - 1,
        eq_tol=1e-4,
    )
    assert p.n_constr == 1
    r = minimize(p, WCA(d_max=1e-5, raining="gaussian"), max_iter=400, seed=0)
    assert r.feasible
    assert abs(r.x.sum() - 1) <= 1e-4
    assert r.f == pytest.approx(0.5, abs=1e-3)
    # the tolerance enters the violation: |h| − tol
    ev = p.evaluate(np.array([[0.5, 0.5], [1.0, 0.5]]))
    np.testing.assert_allclose(ev.violation, [0.0, 0.5 - 1e-4])


def test_equalities_and_inequalities_together():
    p = Problem.from_function(
        lambda X: X[:, 0],
        [0.0, 0.0],
        [1.0, 1.0],
        constraints=lambda X: 0.3 - X[:, 0],  # x0 ≥ 0.3
        equalities=lambda X: X[:, 0] - X[:, 1],  # x0 = x1
        eq_tol=1e-6,
    )
    assert p.evaluate(np.zeros((1, 2))).G.shape == (1, 2)
    for seed in range(3):
        r = minimize(p, WCA(), max_iter=600, seed=seed)
        assert r.feasible
        assert r.f == pytest.approx(0.3, abs=1e-3)


def test_integer_variables_are_evaluated_and_returned_rounded():
    seen = []

    def f(X):
        seen.append(X[:, :2].copy())
        return ((X - np.array([2.4, -1.6, 0.25])) ** 2).sum(1)

    p = Problem.from_function(f, [-5.0, -5.2, -1.0], [5.0, 4.7, 1.0], integer=[0, 1])
    r = minimize(p, WCA(), max_iter=100, seed=0)
    allx = np.concatenate(seen)
    assert np.array_equal(allx, np.round(allx))  # f only ever sees integers there
    assert allx[:, 1].min() >= -5
    assert allx[:, 1].max() <= 4
    np.testing.assert_array_equal(r.x[:2], [2.0, -2.0])
    assert r.x[2] == pytest.approx(0.25, abs=1e-6)
    assert r.f == pytest.approx(f(r.x[None, :])[0])
    mask = Problem.from_function(f, -np.ones(3), np.ones(3), integer=[True, True, False])
    np.testing.assert_array_equal(mask.integer, [True, True, False])
    with pytest.raises(ValueError, match="no integer"):
        Problem.from_function(f, [0.2, 0.0, 0.0], [0.8, 1.0, 1.0], integer=[0])


class _RawProblem(Problem):
    """A Problem subclass that bypasses from_function's checks."""

    def __init__(self, lower, upper, value=0.0, n_obj=1):
        self.lower, self.upper, self.value, self.n_obj = lower, upper, value, n_obj

    def evaluate(self, X):
        return optim.Evaluation(np.full((len(X), self.n_obj), self.value))


class _TwoColumns(_RawProblem):
    def evaluate(self, X):
        return optim.Evaluation(np.zeros((len(X), 2)))


def test_misuse_is_an_error():
    with pytest.raises(ValueError, match="2 objectives"):
        minimize(ZDT1, WCA(), max_iter=5)
    with pytest.raises(ValueError, match="2 objectives"):
        minimize(ZDT1, optim.Mealpy("OriginalWCA"), max_evals=100)
    with pytest.raises(ValueError, match="finite"):
        Problem.from_function(lambda X: X.sum(1), [-np.inf], [1.0])
    for lower, upper in [([-np.inf], [1.0]), ([0.0], [np.nan])]:
        with pytest.raises(ValueError, match="finite"):
            minimize(_RawProblem(np.array(lower), np.array(upper)), WCA(), max_iter=5)
    with pytest.raises(ValueError, match="one objective"):  # declares 1, returns 2
        minimize(_TwoColumns(np.zeros(2), np.ones(2)), WCA(), max_iter=2)
    for engine in ("numba", "numpy"):
        with pytest.raises(ValueError, match="NaN"):
            minimize(_RawProblem(np.zeros(2), np.ones(2), np.nan), WCA(engine=engine), max_iter=5)
    nan_later = Problem.from_function(
        lambda X: np.where(X[:, 0] < 0.01, np.nan, X[:, 0]), np.zeros(3), np.ones(3)
    )
    for engine in ("numba", "numpy"):  # NaN in a round, not in the initial population
        with pytest.raises(ValueError, match="NaN"):
            minimize(nan_later, WCA(engine=engine), max_iter=500, seed=0)
    with pytest.raises(ValueError, match="NaN"):
        minimize(
            _RawProblem(np.zeros(2), np.ones(2), np.nan), optim.Mealpy("OriginalDE"), max_evals=50
        )
    with pytest.raises(ValueError, match="max_evals"):
        minimize(SPHERE, WCA(), max_evals=0)


def test_seed_none_is_drawn_and_recorded():
    a = minimize(SPHERE, WCA(), max_iter=20, seed=None)
    b = minimize(SPHERE, WCA(), max_iter=20, seed=None)
    assert isinstance(a.seed, int)
    assert a.seed != b.seed
    again = minimize(SPHERE, WCA(), max_iter=20, seed=a.seed)  # repeatable from the result
    np.testing.assert_array_equal(again.x, a.x)
    assert minimize(SPHERE, WCA(), max_iter=2, seed=np.random.default_rng(0)).seed is None


def test_the_objective_is_a_float():
    r = minimize(SPHERE, WCA(), max_iter=20, seed=0)
    assert type(r.f) is float
    m = minimize(ZDT1, MOWCA(n_pop=20), max_iter=5, seed=0)
    assert m.f.shape == (2,)  # several objectives: the compromise's values


def test_the_mealpy_adapter_survives_constrained_runs():
    """OriginalWCA with penalized constraints used to crash in ~7 % of runs (a river left
    with no streams); 60 runs over three problem sizes now all finish."""
    for d in (2, 5, 10):
        p = Problem.from_function(
            lambda X: X.sum(1),
            np.zeros(d),
            np.ones(d),
            constraints=lambda X: 1 - X.sum(1) + 0.5 * X[:, 0],
        )
        for seed in range(20):
            r = minimize(p, optim.Mealpy("OriginalWCA", pop_size=20), max_evals=1000, seed=seed)
            assert r.evaluations == 1000
            assert r.violation == p.evaluate(r.x[None, :]).violation[0]


def test_evaporation_defers_to_numpy_within_rounding_of_d_max():
    X = np.array([[0.0, 0.0], [3e-3, 4e-3], [1.0, 1.0]])  # row 1 at distance 5e-3 of the sea
    plan = np.zeros((4, 3), dtype=np.intp)
    rain = np.zeros(3, dtype=bool)
    chance = np.array([0.5])
    assert _kernels.evaporation(X, chance, (5e-3) ** 2, plan, rain, 0.1) == _kernels.AMBIGUOUS
    assert _kernels.evaporation(X, chance, 1e-2**2, plan, rain, 0.1) == 1  # the river is near
    assert rain.tolist() == [False, True, False]
    assert _kernels.evaporation(X, chance, 1e-32, plan, rain, 0.1) == 0


def test_initial_points_replace_the_first_raindrops_and_nothing_else():
    """A warm start puts the given points first and consumes the cold start's draws: the
    other raindrops and every later draw are the cold start's."""
    x0 = np.full(4, 1.5)
    seen: list[np.ndarray] = []

    class Spy(WCA):
        def _setup(self) -> None:
            super()._setup()
            seen.append(self.X.copy())

    minimize(SPHERE, Spy(), max_iter=1, seed=3)
    minimize(SPHERE, Spy(initial=np.stack([x0, 2 * x0])), max_iter=1, seed=3)
    cold, warm = seen
    np.testing.assert_array_equal(warm[:2], [x0, 2 * x0])
    np.testing.assert_array_equal(warm[2:], cold[2:])
    r = minimize(SPHERE, WCA(initial=np.zeros(4)), max_iter=1, seed=3)
    assert r.f == 0.0  # the optimum given as the start is kept
    clipped = minimize(SPHERE, WCA(initial=np.full(4, 1e9)), max_iter=1, seed=3)
    assert np.all(np.abs(clipped.x) <= 5)
    with pytest.raises(ValueError, match="variables"):
        minimize(SPHERE, WCA(initial=np.zeros(3)), max_iter=1, seed=0)
    with pytest.raises(ValueError, match="more than n_pop"):
        WCA(n_pop=8, initial=np.zeros((9, 4)))
