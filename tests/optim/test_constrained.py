"""WCA's mechanisms for constrained problems (``models/wca.md`` W4c, W4d, deviations 8 and 9;
new cycles and rain on some coordinates are the defaults there, the market keeps one cycle):
each does what it claims on a small problem, deterministically."""

from __future__ import annotations

import numpy as np
import pytest

from flexopt.optim import WCA, Problem, minimize
from flexopt.optim._rain import COORDINATE_SHARE

PV_BEST = {False: 5885.3328, True: 6059.714335}  # continuous, discrete (benchmarks/constrained)


def _pressure_vessel(discrete: bool) -> Problem:
    """The pressure vessel of ``benchmarks/constrained.py`` (thicknesses on a 0.0625 grid
    when discrete): its optimum sits where three constraints meet."""
    step = 0.0625 if discrete else 1.0

    def parts(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ts, th, r, length = X[:, 0] * step, X[:, 1] * step, X[:, 2], X[:, 3]
        f = 0.6224 * ts * r * length + 1.7781 * th * r**2 + 3.1661 * ts**2 * length
        f = f + 19.84 * ts**2 * r
        volume = np.pi * r**2 * length + 4 / 3 * np.pi * r**3
        g = np.c_[-ts + 0.0193 * r, -th + 0.00954 * r, 1_296_000 - volume, length - 240]
        return f, g

    return Problem.from_function(
        lambda X: parts(X)[0],
        [1, 1, 10, 10] if discrete else [0, 0, 10, 10],
        [99, 99, 200, 200],
        constraints=lambda X: parts(X)[1],
        integer=[0, 1] if discrete else None,
    )


def _median_gap(discrete: bool, seeds: int, evals: int, **options: object) -> float:
    p = _pressure_vessel(discrete)
    best = PV_BEST[discrete]
    gaps = []
    for seed in range(seeds):
        r = minimize(p, WCA(**options), max_evals=evals, seed=seed)  # type: ignore[arg-type]
        assert r.feasible
        gaps.append((r.f - best) / best * 100)
    return float(np.median(gaps))


@pytest.mark.parametrize("discrete", [False, True])
def test_new_cycles_bring_the_pressure_vessel_within_one_percent(discrete):
    """W4d: the sea of one cycle stalls on the ridge of active constraints or on a
    thickness pair; new cycles — the defaults on constrained problems — sample several.
    9 seeds, 20 000 evaluations."""
    one_cycle = _median_gap(discrete, 9, 20_000, restart=0, river_rain="uniform")
    cycles = _median_gap(discrete, 9, 20_000)
    assert one_cycle > 1.5
    assert cycles < 1.0


def test_a_new_cycle_rains_everything_and_keeps_the_best():
    """A plateau stalls the sea at once: cycles follow each other every ``restart``
    iterations; the reported best never worsens and is a point evaluated with its value,
    and ``max_evals`` stays exact with the cycles' first populations (``Npop`` each)."""
    calls: list[int] = []

    def f(X: np.ndarray) -> np.ndarray:
        calls.append(len(X))
        return np.floor(4 * X).sum(1)  # steps: the sea improves rarely

    p = Problem.from_function(f, -np.ones(3), np.ones(3))
    alg = WCA(n_pop=12, n_sr=3, restart=5)
    r = minimize(p, alg, max_evals=3001, seed=0)
    assert r.evaluations == sum(calls) == 3001
    assert alg.cycles >= 3
    assert calls.count(12) == alg.cycles + 1  # a first population per cycle
    assert np.all(np.diff(r.history) <= 0)
    assert r.f == f(r.x[None, :])[0] == -12.0  # all three at the top step


def test_no_new_cycle_when_fewer_iterations_remain_than_it_waits():
    p = Problem.from_function(lambda X: np.floor(X).sum(1), -np.ones(2), np.ones(2))
    alg = WCA(n_pop=12, n_sr=3, restart=30)
    minimize(p, alg, max_iter=40, seed=0)
    assert alg.cycles == 0  # the sea stalls at once, but only 10 iterations would be left
    minimize(p, alg, max_iter=100, seed=0)
    assert alg.cycles == 2  # every 31 iterations (one to settle, 30 stalled), not at 93


def test_rain_on_some_coordinates_keeps_the_others_of_the_river():
    """Deviation 9: a rained stream is its river with a share of its coordinates (at
    least one) drawn uniformly in the box."""
    d = 40
    p = Problem.from_function(lambda X: X.sum(1), -np.ones(d), np.ones(d))
    alg = WCA(river_rain="coordinates")
    minimize(p, alg, max_iter=1, seed=0)
    river = np.full(d, 0.5)
    new = alg._rain_coordinates(river, 500)
    changed = new != river
    assert changed.any(axis=1).all()  # at least one coordinate each
    forced = (1 - COORDINATE_SHARE) / d  # the one coordinate drawn for every stream
    assert abs(changed.mean() - COORDINATE_SHARE - forced) < 0.01
    assert np.all(np.abs(new) <= 1)


class _Stub:
    """A generator whose first ``random`` call returns ``first``; later calls draw."""

    def __init__(self, first: list[float]) -> None:
        self.first: list[float] | None = first
        self.rng = np.random.default_rng(0)

    def random(self, size: object = None) -> np.ndarray:
        if self.first is not None:
            out, self.first = np.array(self.first), None
            return out
        return self.rng.random(size)  # type: ignore[arg-type]


def test_the_evaporation_rate_rains_rivers_with_few_streams():
    """W4c: ``ER = mean(NS_rivers) · rand``; a river rains when ``NS_k < ER`` and
    ``exp(−t/max_it) < rand_k``."""
    p = Problem.from_function(lambda X: (X**2).sum(1), -np.ones(2), np.ones(2))
    alg = WCA(n_pop=20, n_sr=4, evaporation_rate=True, engine="numpy")
    minimize(p, alg, max_iter=1, seed=0)
    alg.ns = np.array([8, 4, 3, 1])  # rivers 4, 3, 1: mean 8/3
    rained: list[list[bool]] = []
    alg._rain = lambda rain, close: rained.append(rain)  # type: ignore[method-assign]
    alg.n_iter = alg.max_it - 1  # exp(−1) ≈ 0.37
    alg.rng = _Stub([0.9, 0.5, 0.5, 0.1])  # ER = 2.4; rivers' chances 0.5, 0.5, 0.1
    alg._evaporate_by_rate()
    assert rained == []  # river 3 (NS 1) is the one below ER, but its 0.1 < exp(−1)
    alg.rng = _Stub([0.9, 0.5, 0.5, 0.5])
    alg._evaporate_by_rate()
    assert rained[-1] == [False, False, True]  # only the river with fewer than 2.4 streams


def test_new_cycles_by_default_on_constrained_problems_only():
    """W4d and deviation 9 unless given, on a problem with constraints; W4c never."""
    p = _pressure_vessel(False)
    alg = WCA(d_max=1e-5, raining="gaussian")
    minimize(p, alg, max_iter=2, seed=0)
    assert (alg.restart, alg.river_rain, alg.evaporation_rate) == (30, "coordinates", False)
    alg = WCA(restart=0, river_rain="uniform")  # the market's search (one cycle)
    minimize(p, alg, max_iter=2, seed=0)
    assert (alg.restart, alg.river_rain) == (0, "uniform")
    assert (alg.rain_chance, alg.trajectory_rain) == (0.1, 0.0)  # the reference's
    with pytest.raises(ValueError, match="restart"):
        WCA(restart=-1)
    with pytest.raises(ValueError, match="river_rain"):
        WCA(river_rain="gaussian")  # type: ignore[arg-type]
    for bad in (0, -0.1, 1.5, float("nan"), True, "0.2"):
        with pytest.raises(ValueError, match="rain_chance"):
            WCA(rain_chance=bad)  # type: ignore[arg-type]
    for bad in (-0.1, 1.5, float("nan"), True, "0.2"):
        with pytest.raises(ValueError, match="trajectory_rain"):
            WCA(trajectory_rain=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="exchange_rain"):
            WCA(exchange_rain=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="exchange_copy"):
            WCA(exchange_rain=0.5, exchange_copy=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exchange_copy"):
        WCA(exchange_copy=0.5)  # no exchange rain to take a share of


def test_the_rain_chance_decides_which_rivers_rain():
    """Deviation 10: a river's streams rain when its uniform is below ``rain_chance``."""
    p = Problem.from_function(lambda X: (X**2).sum(1), -np.ones(3), np.ones(3))
    alg = WCA(n_pop=12, n_sr=3, rain_chance=0.5, d_max=1e-300, engine="numpy")
    rained: list[list[bool]] = []
    chances: list[list[float]] = []

    def rain(r: list[bool], close: np.ndarray) -> None:
        rained.append(list(r))
        chances.append(alg._chance.tolist())

    minimize(p, alg, max_iter=1, seed=0)
    alg._rain = rain  # type: ignore[method-assign]
    for _ in range(20):
        alg.ask()
        alg.tell(p.evaluate(alg._x[alg._round]))
    assert len(rained) > 0
    assert len(rained) == len(chances)
    for r, u in zip(rained, chances, strict=True):
        assert r == [x < 0.5 for x in u]
    assert any(any(r) for r in rained)
    assert not all(all(r) for r in rained)


def test_trajectory_rain_steps_along_differences_of_the_last_seas():
    """Deviation 11: the sea joins the cycle's last distinct seas; a stream of the sea rains
    at ``X_sea + H_a − H_b`` (clipped), ``a ≠ b``."""
    p = Problem.from_function(lambda X: (X**2).sum(1), -np.ones(2), np.ones(2))
    alg = WCA(n_pop=12, n_sr=3, trajectory_rain=1.0, engine="numpy")
    minimize(p, alg, max_iter=1, seed=0)
    alg._seas = [np.array([0.5, 0.5]), np.array([0.4, 0.5])]
    alg.X[0] = [0.3, 0.5]
    alg._rain_on_trajectory()
    assert len(alg._seas) == 3  # the sea joined
    seas = np.array(alg._seas)
    steps = {tuple(np.round(a - b, 12)) for a in seas for b in seas if not np.array_equal(a, b)}
    rows = alg.n_sr + np.flatnonzero(alg._sea_stream)
    for x in alg.X[rows]:
        assert tuple(np.round(x - alg.X[0], 12)) in steps
    alg._rain_on_trajectory()  # the same sea: not added twice
    assert len(alg._seas) == 3
    alg._new_cycle()
    assert alg._seas == []


def test_exchange_rain_exchanges_two_coordinates_with_the_same_bounds():
    """Deviation 12: a stream of the sea rains at the sea with the values of two coordinates
    of the same bounds exchanged; pairs of other bounds never; no pair, no draw."""
    lower, upper = np.array([0.0, -1.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0, 2.0])
    p = Problem.from_function(lambda X: (X**2).sum(1), lower, upper)
    alg = WCA(n_pop=12, n_sr=3, exchange_rain=1.0, engine="numpy")
    minimize(p, alg, max_iter=1, seed=0)
    assert alg._pairs.tolist() == [[0], [2]]  # only x0 and x2 share their bounds
    alg.X[0] = [0.1, 0.2, 0.3, 0.4]
    alg._rain_exchanged()
    rows = alg.n_sr + np.flatnonzero(alg._sea_stream)
    assert (alg.X[rows] == [0.3, 0.2, 0.1, 0.4]).all()
    q = Problem.from_function(lambda X: (X**2).sum(1), [0.0, -1.0], [1.0, 1.0])
    alg = WCA(n_pop=12, n_sr=3, exchange_rain=1.0, engine="numpy")
    minimize(q, alg, max_iter=1, seed=0)
    state = alg.rng.bit_generator.state
    X = alg.X.copy()
    alg._close_iteration()  # no pair: neither a change nor a draw
    assert alg.rng.bit_generator.state == state
    assert (alg.X == X).all()


def test_exchange_copy_gives_one_coordinate_the_others_value():
    """Deviation 13: with ``exchange_copy=1`` every rained stream of the sea is the sea with
    one coordinate of a same-bounds pair set to the other's value (either way); with 0 the
    draws and points are those of plain exchanges."""
    p = Problem.from_function(lambda X: (X**2).sum(1), np.zeros(3), np.ones(3))
    alg = WCA(n_pop=20, n_sr=3, exchange_rain=1.0, exchange_copy=1.0, engine="numpy")
    minimize(p, alg, max_iter=1, seed=0)
    sea = np.array([0.1, 0.2, 0.3])
    alg.X[0] = sea
    alg._rain_exchanged()
    rows = alg.n_sr + np.flatnonzero(alg._sea_stream)
    for x in alg.X[rows]:
        changed = np.flatnonzero(x != sea)
        assert changed.size == 1  # one coordinate moved, onto another's value
        assert x[changed[0]] in np.delete(sea, changed[0])
    runs = []
    for copy in (0.0, None):
        options = {"exchange_rain": 0.5} | ({} if copy is None else {"exchange_copy": copy})
        runs.append(minimize(p, WCA(**options), max_iter=40, seed=3))
    np.testing.assert_array_equal(runs[0].history, runs[1].history)


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_exchange_rain_runs_in_both_engines(engine):
    """The option reaches the end of each iteration in both engines (their equality is
    ``tests/optim/test_engines.py``): the run differs from one without it."""
    p = _pressure_vessel(False)  # pairs (T_s, T_h) and (R, L)
    runs = [minimize(p, WCA(engine=engine, exchange_rain=q), max_iter=60, seed=1) for q in (0, 0.3)]
    assert not np.array_equal(runs[0].history, runs[1].history)


G02_BEST = -0.803619  # CEC2006 g02, 20 variables (benchmarks/constrained.py)


def _g02() -> Problem:
    """CEC2006 g02: ``f = −|Σcos⁴x − 2Πcos²x| / √(Σ i·x_i²)`` on ``[0, 10]²⁰`` with
    ``Πx ≥ 0.75`` (active at the optimum) and ``Σx ≤ 150``; its cos⁴ terms give every
    coordinate its own basins."""
    i = np.arange(1, 21)

    def f(X: np.ndarray) -> np.ndarray:
        c = np.cos(X)
        num = np.abs((c**4).sum(axis=1) - 2 * (c**2).prod(axis=1))
        return -num / np.sqrt((i * X**2).sum(axis=1))

    def g(X: np.ndarray) -> np.ndarray:
        return np.c_[0.75 - X.prod(axis=1), X.sum(axis=1) - 7.5 * 20]

    return Problem.from_function(f, np.zeros(20), np.full(20, 10.0), constraints=g)


def test_the_seas_streams_moving_per_coordinate_close_g02():
    """g02's recipe (``models/wca.md``, deviation 13): with one random factor per coordinate
    the sea's streams recombine its basins with theirs; with the reference's one factor per
    stream they keep their own. Five seeds at 50 000 evaluations."""
    recipe = {"exchange_rain": 0.8, "n_pop": 150, "restart": 15}
    gaps = {}
    for rand in ("scalar", "vector"):
        runs = [
            minimize(_g02(), WCA(**recipe, sea_stream_rand=rand), max_evals=50_000, seed=s)
            for s in range(5)
        ]
        assert all(r.feasible for r in runs)
        gaps[rand] = float(np.median([(r.f - G02_BEST) / abs(G02_BEST) * 100 for r in runs]))
    assert gaps["vector"] < 3.5 < gaps["scalar"], gaps
