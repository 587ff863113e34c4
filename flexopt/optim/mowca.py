"""Multi-objective Water Cycle Algorithm (Sadollah, Eskandar, Bahreininejad & Kim 2015).

A. Sadollah et al., "Water cycle algorithm for solving multi-objective optimization
problems", Soft Computing 19:2587–2603, 2015, doi:10.1007/s00500-014-1424-4. Documented in
``models/wca.md`` (W6–W8); polynomial mutation: K. Deb & R. B. Agrawal, "Simulated binary
crossover for continuous search space", Complex Systems 9:115–148, 1995, in the bounded form
of K. Deb & D. Deb, Int. J. Artif. Intell. Soft Comput. 4(1):1–24, 2014,
doi:10.1504/IJAISC.2014.059280.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from flexopt.optim.core import Algorithm, Evaluation, check_values
from flexopt.optim.pareto import archive, compromise, crowding_distance, survive
from flexopt.optim.streams import allocate_streams, flow

__all__ = ["MOWCA", "polynomial_mutation"]


class MOWCA(Algorithm):
    """Multi-objective WCA: free-flowing streams led by a bounded Pareto archive.

    Every iteration (``models/wca.md``): the sea and the rivers are the ``Nsr`` archive
    members of largest crowding distance, which is also the flow intensity that shares the
    streams out (W6); streams flow to their leader and rivers to the sea (W3), evaporation
    and uniform raining as in WCA (W7); a share ``local_rain`` of the streams rains near its
    leader instead, by polynomial mutation (W7a); the streams *are* their children (the
    population moves, only the archive is elitist); the archive takes in every child and
    keeps its first front, without duplicates, at most ``archive_size`` points by crowding
    distance (W8). ``best_x``/``best_f`` report the fuzzy max–min compromise of the archive.

    Parameters
    ----------
    n_pop, n_sr, d_max, c : int, int, float, float
        As :class:`~flexopt.optim.WCA` (defaults 100, 4, 1e-5, 2); ``Npop − Nsr`` streams.
    archive_size : int, optional
        Bound of the Pareto archive (default ``n_pop``).
    local_rain : float, in [0, 1]
        Probability that a stream rains near its leader each iteration (W7a, a deviation;
        default 0.5). ``0`` is the paper's raining alone, which fails ZDT4.
    eta : float, > 0
        Distribution index ``η`` of the polynomial mutation of W7a (default 10).
    engine : {"numba", "numpy"}
        Non-dominated sorting compiled (default) or in numpy (the reference); the same
        ranks, so the same results bit for bit.
    initial : array_like, shape (d,) or (k, d), optional
        Warm start, as :class:`~flexopt.optim.WCA`'s: the points, clipped to the box, take
        the place of the first ``k ≤ Npop`` raindrops; every draw is still consumed.

    Notes
    -----
    Constraints (W6a): constrained domination (Deb et al. 2002) — feasible points before
    infeasible ones, infeasible ones by total violation; the archive is the first feasible
    front, or the least-violating points while none is feasible, and ``best_v``
    (``Result.violation``) is the reported point's violation.

    Deviations (measured in ``models/wca.md``): local raining (W7a); duplicates leave the
    archive; raining replaces a stream's flow *before* evaluation (the rained point is the
    child), so every iteration costs exactly ``Npop − 1`` evaluations.
    """

    name = "MOWCA"
    multi_objective = True
    X: np.ndarray  # streams [n_pop − n_sr, d]
    F: np.ndarray  # their objectives [n_pop − n_sr, m]
    V: np.ndarray  # their total violations (zeros without constraints)
    archive_x: np.ndarray  # the Pareto archive (W8)
    archive_f: np.ndarray
    archive_v: np.ndarray
    best_x: np.ndarray
    best_f: np.ndarray
    best_v: float

    def __init__(
        self,
        n_pop: int = 100,
        n_sr: int = 4,
        d_max: float = 1e-5,
        c: float = 2.0,
        archive_size: int | None = None,
        local_rain: float = 0.5,
        eta: float = 10.0,
        engine: Literal["numba", "numpy"] = "numba",
        initial: ArrayLike | None = None,
    ) -> None:
        if n_sr < 2 or n_pop < 2 * n_sr:
            raise ValueError(f"need n_sr ≥ 2 and n_pop ≥ 2·n_sr, got n_pop={n_pop}, n_sr={n_sr}")
        if not d_max > 0 or not 0 < c <= 2:
            raise ValueError("need d_max > 0 and c in (0, 2]")
        if engine not in ("numba", "numpy"):
            raise ValueError(f"engine must be 'numba' or 'numpy', got {engine!r}")
        if not 0 <= local_rain <= 1 or not eta > 0:
            raise ValueError("need local_rain in [0, 1] and eta > 0")
        size = n_pop if archive_size is None else archive_size
        if size < 1:
            raise ValueError(f"archive_size must be ≥ 1, got {archive_size}")
        self.n_pop, self.n_sr, self.d_max0, self.c = n_pop, n_sr, d_max, c
        self.archive_size, self.local_rain, self.eta = size, local_rain, eta
        self.engine: Literal["numba", "numpy"] = engine
        self.initial = None if initial is None else np.atleast_2d(np.asarray(initial, float))
        if self.initial is not None and len(self.initial) > n_pop:
            raise ValueError(f"{len(self.initial)} initial points for n_pop = {n_pop}")
        self.evals_per_iter = n_pop - 1
        self.initial_evals = n_pop

    def _setup(self) -> None:
        d = self.lower.size
        self.X = self.lower + (self.upper - self.lower) * self.rng.random((self.n_pop, d))
        if self.initial is not None:  # warm start: the first raindrops, draws consumed
            if self.initial.shape[1] != d:
                raise ValueError(f"initial points need {d} variables")
            self.X[: len(self.initial)] = np.clip(self.initial, self.lower, self.upper)
        self.F = np.empty((0, 0))
        self.V = np.zeros(self.n_pop)
        self._constrained = self.problem.n_constr > 0
        self.d_max = self.d_max0
        budget = self.termination.iteration_budget(self.evals_per_iter, self.initial_evals)
        self.max_it = budget if budget else 1000
        self.initialized = False

    def _leaders(self) -> tuple[np.ndarray, np.ndarray]:
        """Sea and rivers (W6): the ``Nsr`` archive members of largest crowding distance (the
        first of equals first), topped up, while the archive holds fewer, with the best
        streams (by rank, then crowding; intensity 0); and the flow intensities, infinite
        distances capped at twice the largest finite one."""
        cd = crowding_distance(self.archive_f)
        order = np.argsort(-cd, kind="stable")[: self.n_sr]
        finite = cd[np.isfinite(cd)]
        cap = 2.0 * finite.max() if finite.size and finite.max() > 0 else 1.0
        intensity = np.minimum(cd[order], cap)
        short = self.n_sr - order.size
        if short <= 0:
            return self.archive_x[order], intensity
        best, _, _ = survive(self.F, short, self.engine, self._v(self.V))
        return np.vstack([self.archive_x[order], self.X[best]]), np.r_[intensity, np.zeros(short)]

    def _ask(self) -> np.ndarray:
        if not self.initialized:
            return self.X
        d, lo, hi, rng = self.lower.size, self.lower, self.upper, self.rng
        lead_x, intensity = self._leaders()
        # W2 with CN = −intensity: the least crowded leaders get the most streams
        leader = np.repeat(np.arange(self.n_sr), allocate_streams(-intensity, 0.0, len(self.X)))
        kids_s = flow(self.X, lead_x[leader], rng.random(self.X.shape), self.c, lo, hi)
        kids_r = flow(lead_x[1:], lead_x[0], rng.random((self.n_sr - 1, d)), self.c, lo, hi)
        # W7: evaporation — a river's streams when it nears the sea or by chance (0.1), the
        # sea's own streams within d_max of it; they rain uniformly in the box
        chance = rng.random(self.n_sr - 1)
        near = np.linalg.norm(lead_x[1:] - lead_x[0], axis=1) < self.d_max
        rained = np.isin(leader, 1 + np.flatnonzero((chance < 0.1) | near))
        rained |= (leader == 0) & (np.linalg.norm(kids_s - lead_x[0], axis=1) < self.d_max)
        kids_s[rained] = lo + rng.random((int(rained.sum()), d)) * (hi - lo)
        # W7a (deviation): a share of the streams rains near its leader instead
        local = np.flatnonzero(rng.random(len(kids_s)) < self.local_rain)
        kids_s[local] = polynomial_mutation(lead_x[leader[local]], lo, hi, self.eta, rng)
        return np.vstack([kids_s, kids_r])

    def _tell(self, ev: Evaluation) -> None:
        check_values(ev)
        if not self.initialized:
            F, V = ev.F.copy(), ev.violation.copy()
            self._archive(self.X, F, V)
            # the first Nsr (by rank and crowding) would lead; the rest are the streams
            order, _, _ = survive(F, self.n_pop, self.engine, self._v(V))
            rest = order[self.n_sr :]
            self.X, self.F, self.V = self.X[rest], F[rest], V[rest]
            self.initialized = True
            return
        n = len(self.X)
        kids = self._pending
        self.X, self.F, self.V = kids[:n].copy(), ev.F[:n].copy(), ev.violation[:n].copy()
        self._archive(
            np.vstack([self.archive_x, kids]),
            np.vstack([self.archive_f, ev.F]),
            np.r_[self.archive_v, ev.violation],
        )
        self.d_max -= self.d_max / self.max_it
        self.n_iter += 1

    def ask(self) -> np.ndarray:
        self._pending = self._ask()
        return self._pending

    def _v(self, v: np.ndarray) -> np.ndarray | None:
        """Violations for the constrained ranking (W6a); ``None`` without constraints."""
        return v if self._constrained else None

    def _archive(self, X: np.ndarray, F: np.ndarray, V: np.ndarray) -> None:
        """The archive of W8 (older members first, so they win ties) and its fuzzy
        compromise as the reported best."""
        keep = archive(F, self.archive_size, self.engine, self._v(V))
        self.archive_x, self.archive_f, self.archive_v = X[keep], F[keep], V[keep]
        i = compromise(self.archive_f)
        self.best_x, self.best_f = self.archive_x[i], self.archive_f[i]
        self.best_v = float(self.archive_v[i])

    def absorb(self, X: np.ndarray, ev: Evaluation) -> None:
        """The budget's last, partial batch joins the archive (W8)."""
        if self.initialized:
            X, F = np.vstack([self.archive_x, X]), np.vstack([self.archive_f, ev.F])
            V = np.r_[self.archive_v, ev.violation]
        else:
            F, V = ev.F, ev.violation
        self._archive(X, F, V)

    def pareto(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.archive_f[:, 0], kind="stable")
        return self.archive_x[order], self.archive_f[order]


def polynomial_mutation(
    X: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    eta: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Polynomial mutation of the rows of ``X`` (W7a of ``models/wca.md``), bounded form.

    Each variable mutates with probability ``1/d``; a row with none mutates one drawn
    uniformly (an unchanged row would waste an evaluation):
    ``x' = clip(x + δ_q (hi − lo), lo, hi)``, with ``δ₁ = (x − lo)/(hi − lo)``,
    ``δ₂ = (hi − x)/(hi − lo)``, ``u ~ U(0, 1)`` and

    ``δ_q = [2u + (1 − 2u)(1 − δ₁)^(η+1)]^(1/(η+1)) − 1`` for ``u ≤ 0.5``,
    ``δ_q = 1 − [2(1 − u) + 2(u − 0.5)(1 − δ₂)^(η+1)]^(1/(η+1))`` otherwise.

    Draws: the ``[n, d]`` mask uniforms, one index per row, the ``[n, d]`` ``u``.
    """
    n, d = X.shape
    mask = rng.random((n, d)) < 1.0 / d
    one = rng.integers(0, d, size=(n,))
    none = np.flatnonzero(~mask.any(1))
    mask[none, one[none]] = True
    u = rng.random((n, d))
    span = upper - lower
    width = np.where(span > 0, span, 1.0)  # a fixed variable does not move
    d1, d2 = (X - lower) / width, (upper - X) / width  # in [0, 1]: both bases stay ≥ 0
    p = eta + 1.0
    left = (2 * u + (1 - 2 * u) * (1 - d1) ** p) ** (1 / p) - 1
    right = 1 - (2 * (1 - u) + 2 * (u - 0.5) * (1 - d2) ** p) ** (1 / p)
    step = np.where(u <= 0.5, left, right) * span
    out: np.ndarray = np.clip(np.where(mask, X + step, X), lower, upper)
    return out
