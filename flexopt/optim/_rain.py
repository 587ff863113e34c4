"""The end of a WCA iteration: evaporation and raining (W4 iii), the evaporation rate (W4c),
new water cycles (W4d) and the best point seen (W5a, W4d) of ``models/wca.md``.

A mixin of :class:`flexopt.optim.WCA`, separate so that ``wca.py`` keeps to the flow and
the swaps. Both engines call the same code here (the compiled one hands its rain decisions
back), so what runs here is bit-identical between them by construction.
"""

from __future__ import annotations

import math
from typing import Literal, Protocol

import numpy as np

from flexopt.optim.core import deb_better, deb_order

__all__ = [
    "CONSTRAINED_RESTART",
    "COORDINATE_SHARE",
    "RAIN_CHANCE",
    "STALL_TOL",
    "TRAJECTORY",
    "CycleState",
    "WaterCycle",
]

#: relative decrease of a feasible sea's objective that counts as progress for ``restart``
#: (W4d): smaller steps are the creeping of a sea along an active constraint, which the
#: measurements of ``models/wca.md`` show never reaches the optimum in the budget
STALL_TOL = 1e-6
#: share of a river's streams' coordinates re-drawn by ``river_rain="coordinates"`` (W4 iii,
#: deviation 9; at least one each): 0.2 measured best of 0, 0.1, 0.2, 0.4 (``models/wca.md``)
COORDINATE_SHARE = 0.2
#: ``restart`` on a problem with constraints unless given: with ``river_rain="coordinates"``
#: the best configuration measured on constrained problems (``models/wca.md``, W4d)
CONSTRAINED_RESTART = 30
#: seas of a cycle kept for ``trajectory_rain`` (deviation 11): the last 20 distinct ones
TRAJECTORY = 20
#: the reference's chance that a river's streams rain in an iteration (W4 iii); ``rain_chance``
#: sets another (opt-in)
RAIN_CHANCE = 0.1


def _share(x: object) -> bool:
    """Whether ``x`` is a real number (not a bool) in [0, 1]."""
    return not isinstance(x, bool) and isinstance(x, int | float) and 0 <= x <= 1


class CycleState(Protocol):
    """WCA's state that this module and the compiled rounds (``_wca_numba``) both use."""

    X: np.ndarray  # population [n_pop, d], as laid out by WCA._assign
    F: np.ndarray
    V: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    rng: np.random.Generator
    n_sr: int
    d_max: float
    river_rain: Literal["uniform", "coordinates"]
    rain_chance: float
    trajectory_rain: float
    exchange_rain: float
    exchange_copy: float
    _groups: list[np.ndarray]  # rows of each leader's streams
    _sea_stream: np.ndarray

    def _evaporate(self) -> None: ...

    def _rain(self, rain: list[bool], close: np.ndarray) -> None: ...

    def _close_iteration(self) -> None: ...


class WaterCycle(CycleState):
    """Evaporation, raining, the evaporation rate, new cycles and the best seen, on WCA's
    state."""

    #: cycles started after the first (W4d)
    cycles: int = 0
    _reference: tuple[float, float] = (math.inf, math.inf)  # the sea at its last progress
    _stall: int = 0  # iterations since
    _seas: list[np.ndarray]  # the cycle's last distinct seas, oldest first (deviation 11)
    _pairs: np.ndarray  # [2, n] coordinates with the same bounds, i < j (deviation 12)

    n_pop: int
    ns: np.ndarray
    mu: float
    max_it: int
    n_iter: int
    phase: str
    restart: int
    evaporation_rate: bool
    _given: tuple[int | None, Literal["uniform", "coordinates"] | None]  # as constructed
    _constrained: bool
    _raining: str
    _eps: bool
    _track: bool
    _best: tuple[np.ndarray, float, float]
    _chance: np.ndarray
    _x_below_sea: np.ndarray
    _gap: np.ndarray
    _dist2: np.ndarray

    def _cycle_options(
        self,
        restart: int | None,
        river_rain: Literal["uniform", "coordinates"] | None,
        evaporation_rate: bool,
        rain_chance: float = RAIN_CHANCE,
        trajectory_rain: float = 0.0,
        exchange_rain: float = 0.0,
        exchange_copy: float = 0.0,
    ) -> None:
        """Check and keep the options of this module as given (``None``: by the problem, in
        :meth:`_cycle_defaults`)."""
        if not (_share(rain_chance) and rain_chance != 0):
            raise ValueError(f"rain_chance must be in (0, 1], got {rain_chance!r}")
        if not _share(trajectory_rain):
            raise ValueError(f"trajectory_rain must be in [0, 1], got {trajectory_rain!r}")
        if not _share(exchange_rain):
            raise ValueError(f"exchange_rain must be in [0, 1], got {exchange_rain!r}")
        self.rain_chance, self.trajectory_rain = float(rain_chance), float(trajectory_rain)
        if not _share(exchange_copy) or (exchange_copy and not exchange_rain):
            raise ValueError(
                f"exchange_copy must be in [0, 1], with exchange_rain > 0: {exchange_copy!r}"
            )
        self.exchange_rain, self.exchange_copy = float(exchange_rain), float(exchange_copy)
        if restart is not None and not (
            isinstance(restart, int) and not isinstance(restart, bool) and restart >= 0
        ):
            raise ValueError(f"restart must be an integer ≥ 0, got {restart!r}")
        if river_rain not in (None, "uniform", "coordinates"):
            raise ValueError(f"river_rain must be 'uniform' or 'coordinates', got {river_rain!r}")
        self._given = (restart, river_rain)
        self.restart, self.river_rain = restart or 0, river_rain or "uniform"
        self.evaporation_rate = bool(evaporation_rate)

    def _cycle_defaults(self, stall_iter: int | None) -> None:
        """New cycles with rain on some coordinates on a problem with constraints, unless
        given (deviations 8–9); neither without, nor when the run stops after fewer stalled
        iterations (``stall_iter``) than a cycle waits — no new cycle could start. Rain on some
        coordinates only with new cycles: alone it was worse on every engineering problem
        (``models/wca.md``)."""
        restart, river_rain = self._given
        if restart is None:
            waits = stall_iter is not None and stall_iter <= CONSTRAINED_RESTART
            self.restart = CONSTRAINED_RESTART if self._constrained and not waits else 0
        if river_rain is None:
            self.river_rain = "coordinates" if self._constrained and self.restart else "uniform"
        # the pairs of coordinates with the same bounds, i < j, row-major (deviation 12);
        # none looked for when off (d² comparisons)
        lo, hi = self.lower, self.upper
        same = np.equal.outer(lo, lo) & np.equal.outer(hi, hi) if self.exchange_rain else [[]]
        self._pairs = np.array(np.nonzero(np.triu(same, 1)), dtype=np.intp).reshape(2, -1)

    @property
    def best_x(self) -> np.ndarray:
        sea: np.ndarray = self._best[0] if self._track else self.X[0]
        return sea

    @property
    def best_f(self) -> float:
        return self._best[1] if self._track else float(self.F[0])

    @property
    def best_v(self) -> float:
        return self._best[2] if self._track else float(self.V[0])

    def _keep_best(self, x: np.ndarray, f: np.ndarray, v: np.ndarray) -> None:
        """Keep the best of the points ``x`` just evaluated when it beats the best seen so
        far under Deb's rules (W5a: the sea itself may be only ε-feasible; W4d: it rains
        away with its cycle)."""
        i = int(deb_order(f, v)[0])
        if deb_better(f[i], v[i], self._best[1], self._best[2]):
            self._best = (x[i].copy(), float(f[i]), float(v[i]))

    def _evaporate(self) -> None:
        """Evaporation and raining (W4 iii): rivers' streams rain when the river is within
        ``d_max`` of the sea or by chance (``rain_chance``, the reference's 0.1); the sea's
        streams rain when within ``d_max``."""
        sea = self.X[0]
        p = self.rain_chance
        rain = [u < p for u in self._chance.tolist()]
        gap = np.subtract(self._x_below_sea, sea, out=self._gap)
        dist2 = np.einsum("ij,ij->i", gap, gap, out=self._dist2)
        d2 = self.d_max**2
        close = np.empty(0, dtype=np.intp)
        if dist2.min() < d2:  # rare: something sits on the sea
            near = dist2 < d2
            rain = [a or b for a, b in zip(rain, near[: self.n_sr - 1].tolist(), strict=True)]
            close = np.flatnonzero(near[self.n_sr - 1 :] & self._sea_stream) + self.n_sr
        self._rain(rain, close)

    def _rain(self, rain: list[bool], close: np.ndarray) -> None:
        """Re-draw the streams of the rivers ``k`` with ``rain[k − 1]``, in order, then the
        sea's streams at rows ``close`` (W4 iii); shared by both engines."""
        d = self.lower.size
        sea = self.X[0]
        for k in range(1, self.n_sr):  # rivers in order: draws keep their order
            if rain[k - 1]:
                idx = self._groups[k]
                if self.river_rain == "coordinates":
                    self.X[idx] = self._rain_coordinates(self.X[k], idx.size)
                else:
                    self.X[idx] = self.lower + self.rng.random((idx.size, d)) * (
                        self.upper - self.lower
                    )
        # the sea's own streams (disjoint from the rivers' streams that may have rained)
        if close.size:
            if self._raining == "uniform":
                self.X[close] = self.lower + self.rng.random((close.size, d)) * (
                    self.upper - self.lower
                )
            else:
                new = sea + np.sqrt(self.mu) * self.rng.standard_normal((close.size, d))
                self.X[close] = np.clip(new, self.lower, self.upper)

    def _rain_coordinates(self, river: np.ndarray, n: int) -> np.ndarray:
        """``n`` copies of ``river`` with a random share of their coordinates (at least one)
        re-drawn uniformly in the box (deviation 9): the streams then flow back along those
        coordinates only, a search of a few coordinates at a time around the river, where
        a point drawn in the whole box is almost never better in more than a few dimensions."""
        d = self.lower.size
        values = self.lower + self.rng.random((n, d)) * (self.upper - self.lower)
        redraw = self.rng.random((n, d)) < COORDINATE_SHARE
        redraw[np.arange(n), self.rng.integers(0, d, size=n)] = True
        out: np.ndarray = np.where(redraw, values, river)
        return out

    def _close_iteration(self) -> None:
        """After the iteration's rain, both engines: the evaporation rate's rain (W4c),
        ``d_max``'s decay, the iteration count, then the best seen and a new cycle (W4d);
        first the rain along the seas' trajectory (deviation 11), then the exchange rain
        (deviation 12)."""
        if self.trajectory_rain:
            self._rain_on_trajectory()
        if self.exchange_rain and self._pairs.shape[1]:
            self._rain_exchanged()
        if self.evaporation_rate:
            self._evaporate_by_rate()
        self.d_max -= self.d_max / self.max_it
        self.n_iter += 1
        if self.restart:
            self._watch_the_sea()

    def _rain_on_trajectory(self) -> None:
        """Deviation 11: the sea joins the cycle's last :data:`TRAJECTORY` distinct seas
        ``H``; then each stream of the sea rains with chance ``trajectory_rain`` at
        ``clip(X_sea + H_a − H_b)``, ``a ≠ b`` drawn uniformly — steps along the directions
        and at the scales in which the sea has been moving (on an active constraint: along
        it). Needs two seas; the generator is called as ``random(NS_sea)``, then, when a
        stream rains, ``integers`` for ``a`` and for ``b``."""
        sea = self.X[0]
        if not self._seas or not np.array_equal(self._seas[-1], sea):
            self._seas.append(sea.copy())
            del self._seas[:-TRAJECTORY]
        n = len(self._seas)
        if n < 2:
            return
        rows = self.n_sr + np.flatnonzero(self._sea_stream)
        rows = rows[self.rng.random(rows.size) < self.trajectory_rain]
        if rows.size:
            a = self.rng.integers(0, n, size=rows.size)
            b = self.rng.integers(0, n - 1, size=rows.size)
            b += b >= a  # a ≠ b
            seas = np.array(self._seas)
            self.X[rows] = np.clip(sea + (seas[a] - seas[b]), self.lower, self.upper)

    def _rain_exchanged(self) -> None:
        """Deviation 12: each stream of the sea rains with chance ``exchange_rain`` at the sea
        with the values ``a, b`` of two coordinates exchanged, a pair drawn uniformly from
        those with the same bounds (so it stays in the box). Flowing back through the sea
        (W3) it moves the pair to ``(a, b) + t (b − a, a − b)``, ``t ∈ [−1, 1]``: their sum
        stays, their product changes by ``t (1 − t)(a − b)²``, their squares' sum by
        ``−2 t (1 − t)(a − b)²`` — along constraints symmetric in the coordinates where the
        pair differs little, a reassignment of values where it differs a lot.

        Deviation 13 (``exchange_copy``): a share of those streams rains with one coordinate of
        the pair, either, given the other's value instead: the number of coordinates near
        each value changes, which an exchange never does (g02's seas hold ten coordinates
        near 3 where the optimum has eight).

        Draws: ``random(NS_sea)``, then, when a stream rains, ``integers`` for the pairs, and
        with ``exchange_copy`` ``random`` for the copies and for their direction; nothing
        without a pair."""
        sea = self.X[0]
        rows = self.n_sr + np.flatnonzero(self._sea_stream)
        rows = rows[self.rng.random(rows.size) < self.exchange_rain]
        if rows.size:
            i, j = self._pairs[:, self.rng.integers(0, self._pairs.shape[1], size=rows.size)]
            swap = np.ones(rows.size, dtype=bool)
            if self.exchange_copy:
                swap = self.rng.random(rows.size) >= self.exchange_copy
                back = self.rng.random(rows.size) < 0.5
                i, j = np.where(back, j, i), np.where(back, i, j)
            new = np.repeat(sea[np.newaxis], rows.size, axis=0)
            k = np.arange(rows.size)
            new[k, i] = sea[j]
            new[k[swap], j[swap]] = sea[i[swap]]
            self.X[rows] = new

    def _evaporate_by_rate(self) -> None:
        """The authors' evaporation rate (ER-WCA, W4c): ``ER = mean(NS_rivers) · rand``; the
        streams of river ``k`` also rain when ``exp(−t / max_it) < rand_k`` and
        ``NS_k < ER`` — rivers with few streams, more often as the run goes on."""
        u = self.rng.random(self.n_sr)
        rate = float(self.ns[1:].mean()) * float(u[0])
        threshold = math.exp(-(self.n_iter + 1) / self.max_it)  # t counts from 1
        rain = [bool(threshold < u[k] and self.ns[k] < rate) for k in range(1, self.n_sr)]
        if any(rain):
            self._rain(rain, np.empty(0, dtype=np.intp))

    def _watch_the_sea(self) -> None:
        """Keep the best point seen (Deb's rules) and start a new cycle when the sea has not
        improved for ``restart`` iterations and as many remain in the budget (W4d)."""
        f, v = float(self.F[0]), float(self.V[0])
        if not self._eps and deb_better(f, v, self._best[1], self._best[2]):
            self._best = (self.X[0].copy(), f, v)
        ref_f, ref_v = self._reference
        if (v < ref_v) if (v > 0 or ref_v > 0) else (f < ref_f - STALL_TOL * abs(ref_f)):
            self._reference, self._stall = (f, v), 0
            return
        self._stall += 1
        if self._stall >= self.restart and self.max_it - self.n_iter >= self.restart:
            self._new_cycle()

    def _new_cycle(self) -> None:
        """Rain the whole population, the sea included, uniformly in the box; the next
        :meth:`ask` evaluates it as a first population (``Npop`` evaluations) and the cycle
        starts over (W1–W2) with the run's clock, ``d_max`` and ε level as they are."""
        d = self.lower.size
        self.X = self.lower + (self.upper - self.lower) * self.rng.random((self.n_pop, d))
        self.F = np.full(self.n_pop, np.inf)
        self.V = np.zeros(self.n_pop)
        self.phase = "init"
        self._seas = []
        self.cycles += 1
        self._reference, self._stall = (math.inf, math.inf), 0
