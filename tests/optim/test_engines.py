"""WCA's compiled engine (numba) against the numpy reference: same seed, same draws → the same
x, f, history and population, bit for bit, with and without constraints."""

from __future__ import annotations

import numpy as np
import pytest

from flexopt import optim
from flexopt.optim import WCA, Problem, minimize

D = 10
SPHERE = Problem.from_function(lambda X: (X**2).sum(1), -100 * np.ones(D), 100 * np.ones(D))
RASTRIGIN = Problem.from_function(
    lambda X: (X**2 - 10 * np.cos(2 * np.pi * X)).sum(1), -5.12 * np.ones(D), 5.12 * np.ones(D)
)
# min Σx s.t. Σx ≥ 1 on [0, 1]^4 (most draws infeasible early on: Deb's rules decide)
CONSTRAINED = Problem.from_function(
    lambda X: X.sum(1), np.zeros(4), np.ones(4), constraints=lambda X: 1 - X.sum(1)
)
# a point near the sea within d_max: raining of the sea's streams happens (1-D, coarse)
NARROW = Problem.from_function(lambda X: np.abs(X[:, 0] - 0.3), [0.0], [1.0])

OPTIONS = [
    {},
    {"d_max": 1e-5, "raining": "gaussian"},  # constrained: new cycles, coordinates (defaults)
    {"d_max": 1e-5, "raining": "gaussian", "restart": 0, "river_rain": "uniform"},  # the market
    {"sea_stream_rand": "vector", "sea_chunks": 3},
    {"n_pop": 12, "n_sr": 3, "sea_chunks": 1},
    {"d_max": 0.05},  # evaporation by distance fires often
    {"epsilon": 0.5},  # ε-level comparisons: the compiled engine runs the numpy one
    {"restart": 10},  # new cycles (W4d): the compiled rounds are rebuilt for each
    {"river_rain": "coordinates", "d_max": 0.05},  # deviation 9, rivers near the sea too
    {"evaporation_rate": True},  # W4c
    {"restart": 10, "river_rain": "coordinates", "epsilon": 0.5},
    {"rain_chance": 0.5},  # deviation 10: rivers rain more often
    {"restart": 10, "river_rain": "coordinates", "rain_chance": 0.2},
    {"trajectory_rain": 0.3},  # deviation 11
    {"restart": 10, "river_rain": "coordinates", "trajectory_rain": 0.3, "epsilon": 0.5},
    {"restart": 10, "river_rain": "coordinates", "trajectory_rain": 1.0, "d_max": 0.05},
    {"exchange_rain": 0.3},  # deviation 12
    {"restart": 10, "river_rain": "coordinates", "exchange_rain": 0.05, "epsilon": 0.5},
    {"restart": 10, "river_rain": "coordinates", "exchange_rain": 1.0, "d_max": 0.05},
    {"exchange_rain": 0.5, "exchange_copy": 0.5},  # deviation 13
]


def _both(problem, options, seed, **run):
    a = minimize(problem, WCA(engine="numpy", **options), seed=seed, **run)
    b = minimize(problem, WCA(engine="numba", **options), seed=seed, **run)
    return a, b


def _assert_same(a, b):
    np.testing.assert_array_equal(a.x, b.x)
    assert a.f == b.f
    assert a.violation == b.violation
    np.testing.assert_array_equal(a.history, b.history)
    np.testing.assert_array_equal(a.history_violation, b.history_violation)
    assert a.evaluations == b.evaluations


@pytest.mark.parametrize("problem", [SPHERE, RASTRIGIN, CONSTRAINED, NARROW])
@pytest.mark.parametrize("options", OPTIONS)
def test_compiled_engine_equals_the_numpy_reference(problem, options):
    for seed in range(3):
        _assert_same(*_both(problem, options, seed, max_iter=150))


@pytest.mark.parametrize(
    "options",
    [
        {"d_max": 1e-5},
        {"restart": 15, "river_rain": "coordinates", "evaporation_rate": True},
        {"restart": 15, "river_rain": "coordinates", "rain_chance": 0.3},
        {"restart": 15, "river_rain": "coordinates", "trajectory_rain": 0.3},
        {"restart": 15, "river_rain": "coordinates", "exchange_rain": 0.3},
        {"restart": 15, "river_rain": "coordinates", "exchange_rain": 0.8, "exchange_copy": 0.5},
    ],
)
def test_equal_state_and_generator_after_a_run(options):
    """Not only the best: the whole population, its costs and what is left of the generator."""
    algs = {}
    for engine in ("numpy", "numba"):
        rng = np.random.default_rng(7)
        alg = WCA(engine=engine, **options)
        minimize(CONSTRAINED, alg, max_iter=200, seed=rng)
        algs[engine] = (alg, rng.random())
    (a, ra), (b, rb) = algs["numpy"], algs["numba"]
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.F, b.F)
    np.testing.assert_array_equal(a.V, b.V)
    assert a.d_max == b.d_max
    assert a.cycles == b.cycles
    assert a.cycles > 0 or "restart" not in options  # the cycles did run
    assert ra == rb  # the same number of draws


def test_equal_when_stopped_mid_iteration():
    _assert_same(*_both(RASTRIGIN, {}, 1, max_evals=1234))


def test_engine_is_checked():
    with pytest.raises(ValueError, match="engine"):
        WCA(engine="cuda")


def test_compiled_non_dominated_sort_equals_numpy():
    rng = np.random.default_rng(0)
    for n, m in [(1, 2), (7, 2), (60, 2), (60, 3), (199, 2)]:
        F = rng.integers(0, 6, size=(n, m)).astype(float)  # many ties and duplicates
        np.testing.assert_array_equal(
            optim.non_dominated_sort(F, "numba"), optim.non_dominated_sort(F, "numpy")
        )
        G = rng.random((n, m))
        np.testing.assert_array_equal(
            optim.non_dominated_sort(G, "numba"), optim.non_dominated_sort(G, "numpy")
        )


def test_mowca_engines_agree():
    zdt1 = Problem.from_function(
        lambda X: np.c_[X[:, 0], 1 + 9 * X[:, 1:].mean(1) - np.sqrt(X[:, 0])],
        np.zeros(6),
        np.ones(6),
        n_obj=2,
    )
    a = minimize(zdt1, optim.MOWCA(n_pop=30, engine="numpy"), max_iter=60, seed=5)
    b = minimize(zdt1, optim.MOWCA(n_pop=30, engine="numba"), max_iter=60, seed=5)
    np.testing.assert_array_equal(a.pareto_x, b.pareto_x)
    np.testing.assert_array_equal(a.pareto_f, b.pareto_f)
    np.testing.assert_array_equal(a.history, b.history)
