"""Multi-objective Water Cycle Algorithm (Sadollah, Eskandar, Bahreininejad & Kim 2015).

A. Sadollah et al., "Water cycle algorithm for solving multi-objective optimization
problems", Soft Computing 19:2587–2603, 2015, doi:10.1007/s00500-014-1424-4. Documented in
``models/wca.md`` (W6–W8).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from flexopt.optim.core import Algorithm, Evaluation, check_values
from flexopt.optim.pareto import compromise, constrained_ranks, non_dominated_sort, survive
from flexopt.optim.wca import allocate_streams, flow

__all__ = ["MOWCA"]


class MOWCA(Algorithm):
    """Multi-objective WCA with a non-dominated archive.

    Every iteration: the population is ranked by non-dominated sorting and crowding distance
    (NSGA-II); the sea and the rivers are the least crowded members of the best fronts; their
    crowding distance is the flow intensity that shares the streams out (infinite distances —
    the front's extremes — capped at twice the largest finite one); streams flow to their
    leader and rivers to the sea (W3); evaporation and raining as in WCA; parents and the
    ``Npop − 1`` children are merged and truncated to ``Npop`` by NSGA-II survival (W7). The
    archive is the first front of the population (W8). ``best_x``/``best_f`` report the fuzzy
    max–min compromise of the archive.

    Parameters
    ----------
    n_pop, n_sr, d_max, c : int, int, float, float
        As :class:`~flexopt.optim.WCA` (defaults 100, 4, 1e-5, 2).
    engine : {"numba", "numpy"}
        Non-dominated sorting compiled (default) or in numpy (the reference); the same
        ranks, so the same results bit for bit.

    Notes
    -----
    Constraints (W6a): constrained domination (Deb et al. 2002) — feasible points before
    infeasible ones, infeasible ones by total violation; the archive is the first feasible
    front, or the least-violating points while none is feasible, and ``best_v``
    (``Result.violation``) is the reported point's violation. Without constraints the run is
    the unconstrained algorithm's, bit for bit.

    Deviations: raining replaces a stream's flow *before* evaluation (the rained point is the
    child), so every iteration costs exactly ``Npop − 1`` evaluations.
    """

    name = "MOWCA"
    multi_objective = True
    X: np.ndarray  # population [n_pop, d], best first after each survival
    F: np.ndarray  # objectives [n_pop, m]
    V: np.ndarray  # total violation [n_pop] (zeros without constraints)
    best_x: np.ndarray
    best_f: np.ndarray
    best_v: float

    def __init__(
        self,
        n_pop: int = 100,
        n_sr: int = 4,
        d_max: float = 1e-5,
        c: float = 2.0,
        engine: Literal["numba", "numpy"] = "numba",
    ) -> None:
        if n_sr < 2 or n_pop < 2 * n_sr:
            raise ValueError(f"need n_sr ≥ 2 and n_pop ≥ 2·n_sr, got n_pop={n_pop}, n_sr={n_sr}")
        if not d_max > 0 or not 0 < c <= 2:
            raise ValueError("need d_max > 0 and c in (0, 2]")
        if engine not in ("numba", "numpy"):
            raise ValueError(f"engine must be 'numba' or 'numpy', got {engine!r}")
        self.n_pop, self.n_sr, self.d_max0, self.c = n_pop, n_sr, d_max, c
        self.engine: Literal["numba", "numpy"] = engine
        self.evals_per_iter = n_pop - 1
        self.initial_evals = n_pop

    def _setup(self) -> None:
        d = self.lower.size
        self.X = self.lower + (self.upper - self.lower) * self.rng.random((self.n_pop, d))
        self.F = np.empty((0, 0))
        self.V = np.zeros(self.n_pop)
        self._constrained = self.problem.n_constr > 0
        self.d_max = self.d_max0
        budget = self.termination.iteration_budget(self.evals_per_iter, self.initial_evals)
        self.max_it = budget if budget else 1000
        self.initialized = False

    def _ask(self) -> np.ndarray:
        if not self.initialized:
            return self.X
        d = self.lower.size
        # population sorted best first
        order, _, cd = survive(self.F, self.n_pop, self.engine, self._v(self.V))
        self.X, self.F, self.V = self.X[order], self.F[order], self.V[order]
        n_stream = self.n_pop - self.n_sr
        finite = cd[np.isfinite(cd)]
        cap = 2.0 * finite.max() if finite.size and finite.max() > 0 else 1.0
        intensity = np.minimum(cd[: self.n_sr], cap)
        ns = allocate_streams(-intensity, 0.0, n_stream)
        leader = np.repeat(np.arange(self.n_sr), ns)
        streams = self.X[self.n_sr :]
        kids_s = flow(
            streams, self.X[leader], self.rng.random(streams.shape), self.c, self.lower, self.upper
        )
        kids_r = flow(
            self.X[1 : self.n_sr],
            self.X[0],
            self.rng.random((self.n_sr - 1, d)),
            self.c,
            self.lower,
            self.upper,
        )
        chance = self.rng.random(self.n_sr - 1)
        for k in range(1, self.n_sr):
            if chance[k - 1] < 0.1 or np.linalg.norm(self.X[k] - self.X[0]) < self.d_max:
                idx = np.flatnonzero(leader == k)
                kids_s[idx] = self.lower + self.rng.random((idx.size, d)) * (
                    self.upper - self.lower
                )
        own = np.flatnonzero(leader == 0)
        close = own[np.linalg.norm(kids_s[own] - self.X[0], axis=1) < self.d_max]
        kids_s[close] = self.lower + self.rng.random((close.size, d)) * (self.upper - self.lower)
        return np.vstack([kids_s, kids_r])

    def _tell(self, ev: Evaluation) -> None:
        check_values(ev)
        if not self.initialized:
            self.F = ev.F.copy()
            self.V = ev.violation.copy()
            self.initialized = True
            self._update_best()
            return
        X = np.vstack([self.X, self._pending])
        F = np.vstack([self.F, ev.F])
        V = np.r_[self.V, ev.violation]
        keep, _, _ = survive(F, self.n_pop, self.engine, self._v(V))
        self.X, self.F, self.V = X[keep], F[keep], V[keep]
        self.d_max -= self.d_max / self.max_it
        self.n_iter += 1
        self._update_best()

    def ask(self) -> np.ndarray:
        self._pending = self._ask()
        return self._pending

    def _v(self, v: np.ndarray) -> np.ndarray | None:
        """Violations for the constrained ranking (W6a); ``None`` without constraints."""
        return v if self._constrained else None

    def _update_best(self) -> None:
        self._archive(self.X, self.F, self.V)

    def _archive(self, X: np.ndarray, F: np.ndarray, V: np.ndarray) -> None:
        """The first front (constrained domination with constraints, W6a, W8) and its fuzzy
        compromise as the reported best."""
        if self._constrained:
            front = constrained_ranks(F, V, self.engine) == 0
        else:
            front = non_dominated_sort(F, self.engine) == 0
        self.archive_x, self.archive_f, self.archive_v = X[front], F[front], V[front]
        i = compromise(self.archive_f)
        self.best_x, self.best_f = self.archive_x[i], self.archive_f[i]
        self.best_v = float(self.archive_v[i])

    def absorb(self, X: np.ndarray, ev: Evaluation) -> None:
        """The budget's last, partial batch joins the archive (its first front is kept, W8)."""
        if self.initialized:
            X, F = np.vstack([self.archive_x, X]), np.vstack([self.archive_f, ev.F])
            V = np.r_[self.archive_v, ev.violation]
        else:
            F, V = ev.F, ev.violation
        self._archive(X, F, V)

    def pareto(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.archive_f[:, 0])
        return self.archive_x[order], self.archive_f[order]
