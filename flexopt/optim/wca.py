"""Water Cycle Algorithm (Eskandar, Sadollah, Bahreininejad & Hamdi 2012).

H. Eskandar et al., "Water cycle algorithm – A novel metaheuristic optimization method for
solving constrained engineering optimization problems", Computers & Structures 110–111:
151–166, 2012, doi:10.1016/j.compstruc.2012.07.010; semantics of the authors' reference MATLAB
code ("WCA, standard version", rev. 4 April 2016). Documented in ``models/wca.md``.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Literal, NoReturn

import numpy as np

from flexopt.optim._rain import CONSTRAINED_RESTART, RAIN_CHANCE, WaterCycle
from flexopt.optim.core import (
    Algorithm,
    Evaluation,
    check_values,
    deb_better,
    deb_bounds,
    deb_order,
)
from flexopt.optim.streams import allocate_streams, flow, plan_draws

if TYPE_CHECKING:
    from flexopt.optim._wca_numba import CompiledRounds

__all__ = ["CONSTRAINED_RESTART", "WCA", "allocate_streams", "flow"]


class WCA(WaterCycle, Algorithm):
    """Water Cycle Algorithm, faithful to Eskandar et al. (2012) and the authors' reference code;
    on constrained problems new cycles and rain on some coordinates by default (deviations 8–9).

    Parameters
    ----------
    n_pop : int, ≥ n_sr + n_sr
        Population size ``Npop`` (default 50).
    n_sr : int, ≥ 2
        Number of rivers + sea ``Nsr`` (default 4).
    d_max : float, > 0, optional
        Evaporation distance; decays as ``d_max ← d_max − d_max / max_it``. Default: 1e-16,
        or the authors' 1e-5 when the problem has constraints (W4).
    c : float, in (1, 2]
        Flow coefficient ``C`` (default 2).
    sea_stream_rand : {"scalar", "vector"}
        Streams of the sea move with one random number per stream (the reference code,
        default) or one per dimension (as streams of rivers and rivers do).
    sea_chunks : int, ≥ 1
        The sea's streams flow in this many sequential rounds, each toward the sea as it stands
        after the previous round (W4); the first round also moves every river's streams.
        ``1`` batches them all (fewest problem calls); the reference code is the limit
        ``sea_chunks = NS_sea`` (one stream at a time). Default 2 — see the table below.
    raining : {"uniform", "gaussian"}, optional
        How streams that evaporate near the sea are re-drawn: uniformly in the box (standard
        version) or ``X_sea + √μ · N(0, I)`` (the authors' constrained variant). Default:
        ``"uniform"``, or ``"gaussian"`` when the problem has constraints (W4).
    mu : float, > 0
        Variance ``μ`` of Gaussian raining (default 0.1).
    engine : {"numba", "numpy"}
        Where an iteration's bookkeeping runs: compiled kernels (default) or numpy, the
        reference implementation. Same draws, same operations: the results are identical bit
        for bit (``tests/optim/test_engines.py``). With ``epsilon > 0`` the numpy engine
        runs (the ε-level comparisons are not compiled).
    epsilon : float, in [0, 1)
        ε-constrained comparisons (W5a, deviation 6; Takahama & Sakai 2006): violations up to
        ``ε_t = ε_0 (1 − t / (epsilon · max_it))^5`` count as feasible, ``ε_0`` the violation
        of the 20th-percentile initial point, ``ε_t = 0`` from ``t = epsilon · max_it`` on;
        the reported best is the best point under Deb's rules seen in the run. ``0``
        (default) is off: Deb's rules throughout, as the reference. Numpy engine only.
    initial : array_like, shape (d,) or (k, d), optional
        Starting points (warm start, deviation 7): they replace the first ``k`` raindrops of
        the random population (clipped to the box); every draw is still consumed, so the rest
        of the population and the run's draws are those of a cold start.
    restart : int, ≥ 0, optional
        New water cycles (W4d, deviation 8): when the sea has not improved — a feasible sea by
        more than a relative 1e-6, else its violation — for ``restart`` iterations, and as
        many remain in the budget, the whole population rains uniformly in the box and is
        evaluated as a first population (``Npop`` evaluations); the best point seen is kept
        and reported. ``0`` is off. Default: off, or :data:`CONSTRAINED_RESTART` (30) when
        the problem has constraints (with ``river_rain="coordinates"`` the best configuration
        ``models/wca.md`` measured on them, at budgets of 1 000 iterations) and the run does
        not stop after ``stall_iter ≤ 30`` stalled iterations; resolved when a run starts.
    river_rain : {"uniform", "coordinates"}, optional
        How a river's streams rain (W4 iii): uniformly in the box (the reference), or as
        copies of their river with a fifth of their coordinates, at least one, re-drawn
        uniformly (deviation 9). Default: ``"coordinates"`` when new cycles run on a problem
        with constraints, ``"uniform"`` otherwise.
    evaporation_rate : bool
        The authors' evaporation rate (ER-WCA, Sadollah et al. 2015; W4c): a river with
        fewer streams than ``mean(NS) · rand`` also rains when ``exp(−t/max_it) < rand``.
        Default off (the standard version). Shared code runs it and the options above and
        below in both engines: their runs stay identical.
    rain_chance : float, in (0, 1]
        Chance that a river's streams rain in an iteration (W4 iii; deviation 10 when not the
        reference's 0.1, the default).
    trajectory_rain, exchange_rain, exchange_copy : float, in [0, 1]
        Chance that a stream of the sea rains after each iteration at ``X_sea + H_a − H_b``,
        ``H`` the cycle's last 20 distinct seas (deviation 11), or at the sea with two
        coordinates of the same bounds exchanged (deviation 12) — of those, the share whose
        one coordinate takes the other's value instead (deviation 13). ``0`` (default): off.
    lazy_violation : bool
        Ask a problem that defers its constraints (:meth:`Problem.evaluate_deferred`) only
        for the violations a comparison needs (W4b; :func:`deb_bounds`): the same run bit for
        bit, but a point left uncomputed is not checked for NaN. Ignored with ``epsilon > 0``.

    Notes
    -----
    Semantics (reference code): the population is sorted once; the best is the sea, the next
    ``Nsr − 1`` rivers, the rest streams, assigned contiguously in cost order with the stream
    counts of :func:`allocate_streams` (the best leader gets the most). Every iteration:
    streams flow to their leader (W3), a stream better than its leader swaps with it, a river
    better than the sea swaps with it; rivers flow to the sea and swap if better; the streams
    of a river rain uniformly when ``‖X_sea − X_river‖ < d_max`` or ``rand < 0.1``; streams of
    the sea closer than ``d_max`` rain; ``d_max`` decays. Comparisons follow Deb's feasibility
    rules on the total violation. Evaluations per iteration: ``Npop − 1``. One generator call
    per iteration draws its uniforms in the order they are used (W4a): the rounds' factors,
    then the rivers' rain chances; points that rain draw afterwards.

    Deliberate deviations (numbered and measured in ``models/wca.md``): 1 *batched phases* —
    all streams move and are evaluated together (one problem call), then the swaps (the best
    stream of a group better than its leader), then all rivers; the reference evaluates and
    swaps one stream at a time; 2 *zero-stream repair* by single streams from the leader with
    the most; 3 streams split evenly while an infeasible point is among the leaders; 4 rained
    streams keep their cost until they next flow (as the reference); 5–7 the budget's last
    batch, ε-levels (opt-in), the warm start; 8–9 *new cycles* and *rain on some coordinates*
    (on constrained problems by default); 10–13 rain chance, trajectory and exchange rain,
    copies (opt-in).

    References
    ----------
    H. Eskandar, A. Sadollah, A. Bahreininejad, M. Hamdi, Computers & Structures 110–111 (2012)
    151–166, doi:10.1016/j.compstruc.2012.07.010. A. Sadollah, H. Eskandar,
    A. Bahreininejad, J. H. Kim, Applied Soft Computing 30 (2015) 58–71 (ER-WCA).
    """

    name = "WCA"
    X: np.ndarray  # population [n_pop, d], stored as laid out by _assign
    F: np.ndarray  # objective [n_pop]
    V: np.ndarray  # total constraint violation [n_pop]
    # set by Algorithm.setup; declared here because WaterCycle's protocol names them too
    lower: np.ndarray
    upper: np.ndarray
    rng: np.random.Generator

    def __init__(
        self,
        n_pop: int = 50,
        n_sr: int = 4,
        d_max: float | None = None,
        c: float = 2.0,
        sea_stream_rand: Literal["scalar", "vector"] = "scalar",
        raining: Literal["uniform", "gaussian"] | None = None,
        mu: float = 0.1,
        sea_chunks: int = 2,
        engine: Literal["numba", "numpy"] = "numba",
        epsilon: float = 0.0,
        initial: np.ndarray | None = None,
        restart: int | None = None,
        river_rain: Literal["uniform", "coordinates"] | None = None,
        evaporation_rate: bool = False,
        rain_chance: float = RAIN_CHANCE,
        trajectory_rain: float = 0.0,
        exchange_rain: float = 0.0,
        exchange_copy: float = 0.0,
        lazy_violation: bool = True,
    ) -> None:
        if n_sr < 2:
            raise ValueError(f"n_sr must be ≥ 2 (a sea and at least one river), got {n_sr}")
        if n_pop < 2 * n_sr:
            raise ValueError(f"n_pop must be ≥ 2·n_sr = {2 * n_sr}, got {n_pop}")
        if d_max is not None and not d_max > 0:
            raise ValueError(f"d_max must be > 0, got {d_max}")
        if not 0 < c <= 2:
            raise ValueError(f"c must be in (0, 2], got {c}")
        if sea_stream_rand not in ("scalar", "vector"):
            raise ValueError(f"sea_stream_rand must be 'scalar' or 'vector': {sea_stream_rand!r}")
        if raining not in (None, "uniform", "gaussian"):
            raise ValueError(f"raining must be 'uniform' or 'gaussian', got {raining!r}")
        if not mu > 0:
            raise ValueError(f"mu must be > 0, got {mu}")
        if sea_chunks < 1:
            raise ValueError(f"sea_chunks must be ≥ 1, got {sea_chunks}")
        if engine not in ("numba", "numpy"):
            raise ValueError(f"engine must be 'numba' or 'numpy', got {engine!r}")
        if not 0 <= epsilon < 1:
            raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
        rains = (rain_chance, trajectory_rain, exchange_rain, exchange_copy)
        self._cycle_options(restart, river_rain, evaporation_rate, *rains)
        self.engine, self.epsilon, self.lazy_violation = engine, epsilon, lazy_violation
        self.initial = None if initial is None else np.atleast_2d(np.asarray(initial, float))
        if self.initial is not None and (k := self.initial.shape[0]) > n_pop:
            raise ValueError(f"initial holds {k} points, more than n_pop = {n_pop}")
        self.sea_chunks = sea_chunks
        self.n_pop, self.n_sr, self.d_max0, self.c = n_pop, n_sr, d_max, c
        self.sea_stream_rand, self.raining, self.mu = sea_stream_rand, raining, mu
        self.evals_per_iter = n_pop - 1
        self.initial_evals = n_pop

    # ------------------------------------------------------------------ ask / tell
    def _setup(self) -> None:
        d = self.lower.size
        self.X = self.lower + (self.upper - self.lower) * self.rng.random((self.n_pop, d))
        if self.initial is not None:  # warm start (deviation 7): the draws stay consumed
            if self.initial.shape[1] != d:
                raise ValueError(
                    f"initial points have {self.initial.shape[1]} variables, the problem {d}"
                )
            k = self.initial.shape[0]
            self.X[:k] = np.clip(self.initial, self.lower, self.upper)
        self.F = np.full(self.n_pop, np.inf)
        self.V = np.zeros(self.n_pop)
        self._constrained = self.problem.n_constr > 0
        # the authors' constrained settings unless given (W4)
        self.d_max = self.d_max0 or (1e-5 if self._constrained else 1e-16)
        self._raining = self.raining or ("gaussian" if self._constrained else "uniform")
        self._cycle_defaults(self.termination.stall_iter)
        self._eps = self._constrained and self.epsilon > 0  # ε-level comparisons (W5a)
        #: read by :func:`~flexopt.optim.minimize`: evaluations may come with deferred
        #: constraints, of which the rounds ask for what they compare
        self.defers_constraints = self._constrained and not self._eps and self.lazy_violation
        # the best seen is kept apart from the sea when the sea may be ε-feasible only or
        # may rain away with its population (W5a, W4d)
        self._track = self._eps or self.restart > 0
        self.cycles, self._reference, self._stall, self._seas = 0, (np.inf, np.inf), 0, []
        self._rivers = slice(1, self.n_sr)
        budget = self.termination.iteration_budget(self.evals_per_iter, self.initial_evals)
        self.max_it = budget if budget else 1000
        self.phase = "init"
        self._compiled: CompiledRounds | None = None

    @property
    def n_stream(self) -> int:
        return self.n_pop - self.n_sr

    def ask(self) -> np.ndarray:
        if self._compiled is not None:  # the hot path: no further dispatch
            return self._compiled.ask()
        return self._ask()

    def tell(self, ev: Evaluation) -> None:
        if self._compiled is not None:
            self._compiled.tell(ev)
        else:
            self._tell(ev)

    def _ask(self) -> np.ndarray:
        if self.phase == "init":
            return self.X
        # round i: streams (or, last, the rivers) move in place toward their leader — the
        # kernel of :func:`flow` (W3) with each segment of rows taking its own factors
        i = self._round
        if i == 0:  # one draw per iteration, C folded into the factors
            self.rng.random(out=self._draws)
            self._factors *= self.c
        x = self._x[i]
        step = self.X.take(self._round_target[i], axis=0, out=self._work[i])
        np.subtract(step, x, out=step)
        for rows, factor in self._segments[i]:
            rows *= factor
        np.add(x, step, out=x)
        np.maximum(x, self._lo[i], out=x)
        clipped: np.ndarray = np.minimum(x, self._hi[i], out=x)
        return clipped

    def _tell(self, ev: Evaluation) -> None:
        f = ev.F[:, 0]
        if self.phase == "init":
            v = ev.violation  # every point's (computed once when deferred)
            if np.isnan(f).any() or (self._constrained and np.isnan(v).any()):
                self._raise_nan(ev)
            if ev.F.shape[1] != 1:
                raise ValueError(f"WCA minimizes one objective, the problem gave {ev.F.shape[1]}")
            first = self.cycles == 0  # a new cycle (W4d) keeps the run's ε_0 and best
            if self._eps and first:  # ε_0: the violation of the 20th-percentile point (W5a)
                self._eps0 = float(np.sort(v)[self.n_pop // 5])
            if self._track and first:
                self._best = (self.X[0].copy(), np.inf, np.inf)
            if self._track:
                self._keep_best(self.X, f, v)
            order = deb_order(f, self._level(v) if self._eps else v)
            self.X, self.F, self.V = self.X[order], f[order], v[order]
            self._assign()
            self.phase = "rounds"
            self._round = 0
            if self.engine == "numba" and not self._eps:
                from flexopt.optim._wca_numba import CompiledRounds  # numba loads on first use

                self._compiled = CompiledRounds(self, self._target)
            return
        i = self._round
        rv = self._round_violation(i, ev) if self._constrained else None
        if np.isnan(f).any() or (rv is not None and np.isnan(rv).any()):
            self._raise_nan(ev)
        self._f[i][:] = f
        if rv is not None:
            self.V[self._rows[i]] = rv
            if self._eps:
                self._keep_best(self._x[i], f, rv)
            for k, group in self._round_groups[i]:
                self._challenge(group, k)
        elif self._round_groups[i]:
            self._challenge_round(i)
        if self._moves_rivers[i]:
            self._river_to_sea()
        if i + 1 < len(self._rows):
            self._round = i + 1
            return
        self._round = 0
        self._evaporate()
        self._close_iteration()

    def _round_violation(self, i: int, ev: Evaluation) -> np.ndarray:
        """Round ``i``'s violations as far as its comparisons need them (W4b): the streams'
        against their leaders (:func:`deb_bounds`), the rivers' all (they lead streams)."""
        if ev.deferred is None or not self.defers_constraints or self._rows[i] is self._rivers:
            return ev.violation
        lead = self._round_target[i]
        return ev.violation_within(deb_bounds(ev.F[:, 0], self.F[lead], self.V[lead]))

    # ------------------------------------------------------------------ pieces
    def _assign(self) -> None:
        """Stream counts (W2) and the storage layout of the rounds of an iteration.

        Rounds: the sea's first chunk with every river's streams, then the sea's other chunks,
        then the rivers. The population is stored as
        ``[sea | rivers | sea chunk 0 | rivers' streams | sea chunk 1 | …]`` so that every
        round and every group of streams within it is a contiguous slice (no fancy indexing
        on the hot path). The permutation is made once here and changes no result.
        """
        n_sr = self.n_sr
        if np.any(self.V[: n_sr + 1] > 0):
            ns = allocate_streams(np.zeros(n_sr), 0.0, self.n_stream)  # even split (dev. 3)
        else:
            ns = allocate_streams(self.F[:n_sr], self.F[n_sr], self.n_stream)
        self.ns = ns
        chunks = np.array_split(np.arange(ns[0]), min(self.sea_chunks, ns[0]))
        perm = np.concatenate([chunks[0], np.arange(ns[0], self.n_stream), *chunks[1:]])
        order = np.r_[np.arange(n_sr), perm + n_sr]
        self.X, self.F, self.V = self.X[order], self.F[order], self.V[order]
        leader = np.repeat(np.arange(n_sr), ns)[perm]  # of the stream stored at row n_sr + j
        # rounds as slices of the population, the rivers' round last
        sizes = [chunks[0].size + self.n_stream - ns[0], *(c.size for c in chunks[1:])]
        self._rows = [slice(a, b) for a, b in itertools.pairwise(np.cumsum([n_sr, *sizes]))]
        self._rows.append(self._rivers)
        # per round: each row's target (rivers flow to the sea), the groups of streams as
        # (leader, slice), and the rows of the sea's streams (one random factor each)
        target = self._target = np.r_[np.zeros(n_sr, dtype=np.intp), leader]
        is_stream = np.arange(self.n_pop) >= n_sr
        self._round_target, self._round_groups, self._round_starts = [], [], []
        sea_rows: list[tuple[int, int] | None] = []
        for rows in self._rows:
            lead = np.where(is_stream[rows], target[rows], -1)
            cuts = np.flatnonzero(np.r_[True, lead[1:] != lead[:-1], True])
            runs = [(int(lead[a]), a, b) for a, b in itertools.pairwise(cuts) if lead[a] >= 0]
            if [k for k, _, _ in runs] != list(range(len(runs))):
                raise AssertionError("a round must hold its groups in leader order")
            self._round_target.append(target[rows])
            self._round_groups.append(
                [(k, slice(rows.start + a, rows.start + b)) for k, a, b in runs]
            )
            self._round_starts.append(np.array([a for _, a, _ in runs], dtype=np.intp))
            sea_rows.append(next(((int(a), int(b)) for k, a, b in runs if k == 0), None))
        self._round_leaders = [slice(0, len(groups)) for groups in self._round_groups]
        # a round of the sea's streams alone leaves the rivers as they were and the sea no
        # worse: no river can beat the sea after it, so the river ↔ sea test is skipped
        self._moves_rivers = [
            rows is self._rivers or len(groups) > 1
            for rows, groups in zip(self._rows, self._round_groups, strict=True)
        ]
        # full-shape bounds and work buffers per round: on arrays this small, broadcasting a
        # [d] bound costs more than the elementwise operation itself
        self._shape = [(rows.stop - rows.start, self.lower.size) for rows in self._rows]
        self._lo = [np.broadcast_to(self.lower, shape).copy() for shape in self._shape]
        self._hi = [np.broadcast_to(self.upper, shape).copy() for shape in self._shape]
        self._work = [np.empty(shape) for shape in self._shape]
        # the rounds' positions and costs are fixed views: X and F are only changed in place
        # from here on (swaps, rain)
        self._x = [self.X[rows] for rows in self._rows]
        self._f = [self.F[rows] for rows in self._rows]
        plan = plan_draws(self._rows, sea_rows, self._work, self.sea_stream_rand, self.n_sr)
        self._pieces, self._draws, self._segments, n_factors = plan
        self._factors, self._chance = self._draws[:n_factors], self._draws[n_factors:]
        self._sea_stream = leader == 0
        self._x_below_sea = self.X[1:]
        self._gap = np.empty_like(self._x_below_sea)
        self._dist2 = np.empty(self.n_pop - 1)
        self._groups = [np.flatnonzero(leader == k) + n_sr for k in range(n_sr)]

    def _challenge(self, group: slice, k: int) -> None:
        """The best of ``group`` (rows of the population) swaps with leader ``k`` when it is
        better (Deb's rules)."""
        F = self.F
        if not self._constrained:  # the common case on the hot path
            best = group.start + int(F[group].argmin())
            if F[best] < F[k]:
                self._swap(best, k)
            return
        V = self._level(self.V) if self._eps else self.V
        best = group.start + int(deb_order(F[group], V[group])[0])
        if deb_better(F[best], V[best], F[k], V[k]):
            self._swap(best, k)

    def _level(self, v: np.ndarray) -> np.ndarray:
        """Violations as the ε-level comparisons see them (W5a): zero up to ``ε_t``."""
        t = self.n_iter / (self.epsilon * self.max_it)
        eps = self._eps0 * (1.0 - t) ** 5 if t < 1 else 0.0
        level: np.ndarray = np.where(v <= eps, 0.0, v)
        return level

    def _challenge_round(self, i: int) -> None:
        """:meth:`_challenge` for every group of streams of round ``i`` at once (no
        constraints): one segmented minimum finds the groups whose best stream beats its
        leader."""
        groups = self._round_groups[i]
        if len(groups) == 1:  # a round of the sea's streams only
            self._challenge(groups[0][1], groups[0][0])
            return
        best = np.minimum.reduceat(self._f[i], self._round_starts[i])
        wins = (best < self.F[self._round_leaders[i]]).tolist()
        for (k, group), win in zip(groups, wins, strict=True):
            if win:
                self._swap(group.start + int(self.F[group].argmin()), k)

    def _swap(self, i: int, j: int) -> None:
        X, F = self.X, self.F
        row = X[i].copy()
        X[i] = X[j]
        X[j] = row
        F[i], F[j] = F[j], F[i]
        if self._constrained:  # without constraints every violation is zero
            V = self.V
            V[i], V[j] = V[j], V[i]

    def _river_to_sea(self) -> None:
        self._challenge(self._rivers, 0)

    def _new_cycle(self) -> None:
        super()._new_cycle()
        self._compiled = None  # the next layout gets its own compiled rounds (W4d)

    def _raise_nan(self, ev: Evaluation) -> NoReturn:
        check_values(ev)
        raise ValueError("the problem returned NaN (objective or constraint)")
