"""Water Cycle Algorithm (Eskandar, Sadollah, Bahreininejad & Hamdi 2012).

H. Eskandar et al., "Water cycle algorithm – A novel metaheuristic optimization method for
solving constrained engineering optimization problems", Computers & Structures 110–111:
151–166, 2012, doi:10.1016/j.compstruc.2012.07.010; semantics of the authors' reference MATLAB
code ("WCA, standard version", rev. 4 April 2016). Documented in ``models/wca.md``.
"""

from __future__ import annotations

import itertools

import numpy as np

from flexopt.optim.core import Algorithm, Evaluation, deb_better, deb_order

__all__ = ["WCA", "allocate_streams", "flow"]


def allocate_streams(
    leader_costs: np.ndarray, best_stream_cost: float, n_stream: int
) -> np.ndarray:
    """Streams per leader (sea first, then rivers), eq. (W2) of ``models/wca.md``.

    ``NS_n = round(|CN_n / Σ CN| · N_stream)`` with ``CN_n = cost_n − cost_{Nsr+1}`` (the best
    stream's cost), repaired to sum exactly to ``N_stream`` — surplus taken from the last
    leaders that have more than one, deficit given to the sea — and sorted in descending
    order, so the sea gets the most. A leader left with none takes one from the leader with
    the most (the reference code's ``round(NS/6)`` transfer, simplified).

    >>> allocate_streams(np.array([1.0, 2.0, 3.0, 4.0]), 5.0, 46).tolist()
    [18, 14, 9, 5]
    """
    costs = np.asarray(leader_costs, dtype=float)
    n_sr = costs.size
    cn = costs - float(best_stream_cost)
    total = cn.sum()
    if n_stream < n_sr:
        raise ValueError(
            f"need at least one stream per leader: {n_stream} streams for {n_sr} leaders"
        )
    if total == 0 or not np.isfinite(total):
        ns = np.full(n_sr, n_stream // n_sr)
        ns[: n_stream - ns.sum()] += 1
        return ns
    ns = np.sort(np.round(np.abs(cn / total) * n_stream).astype(int))[::-1].copy()
    i = n_sr - 1
    while ns.sum() > n_stream:
        if ns[i] > 1:
            ns[i] -= 1
        else:
            i -= 1
    while ns.sum() < n_stream:
        ns[0] += 1
    while np.any(ns == 0):
        donor = int(np.argmax(ns))
        ns[donor] -= 1
        ns[int(np.flatnonzero(ns == 0)[0]) if ns[donor] > 0 else donor] += 1
    return np.sort(ns)[::-1].copy()


def flow(
    x: np.ndarray, target: np.ndarray, r: np.ndarray, c: float, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """``X ← clip(X + C · r ⊙ (X_target − X), lower, upper)`` (W3); ``r`` is injected."""
    out = target - x
    out *= r
    out *= c
    out += x
    np.maximum(out, lower, out=out)
    return np.minimum(out, upper, out=out)


class WCA(Algorithm):
    """Water Cycle Algorithm, faithful to Eskandar et al. (2012) and the authors' reference code.

    Parameters
    ----------
    n_pop : int, ≥ n_sr + n_sr
        Population size ``Npop`` (default 50).
    n_sr : int, ≥ 2
        Number of rivers + sea ``Nsr`` (default 4).
    d_max : float, > 0
        Evaporation distance; decays as ``d_max ← d_max − d_max / max_it`` (default 1e-16;
        the authors use 1e-5 for constrained problems).
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
    raining : {"uniform", "gaussian"}
        How streams that evaporate near the sea are re-drawn: uniformly in the box (standard
        version, default) or ``X_sea + √μ · N(0, I)`` (the authors' constrained variant).
    mu : float, > 0
        Variance ``μ`` of Gaussian raining (default 0.1).

    Semantics (reference code): the population is sorted once; the best is the sea, the next
    ``Nsr − 1`` rivers, the rest streams, assigned contiguously in cost order with the stream
    counts of :func:`allocate_streams` (the best leader gets the most). Every iteration:
    streams flow to their leader (W3), a stream better than its leader swaps with it, a river
    better than the sea swaps with it; rivers flow to the sea and swap if better; the streams
    of a river rain uniformly when ``‖X_sea − X_river‖ < d_max`` or ``rand < 0.1``; streams of
    the sea closer than ``d_max`` rain; ``d_max`` decays. Comparisons follow Deb's feasibility
    rules on the total violation. Evaluations per iteration: ``Npop − 1``.

    Deliberate deviations (``models/wca.md``):
    1. *Batched phases.* All streams move and are evaluated together, then swaps happen (the
       best stream of a group better than its leader swaps); then all rivers. The reference
       evaluates and swaps one stream at a time, so a later stream can already flow to a new
       sea. Same number of evaluations; the whole population is one problem call.
    2. *Zero-stream repair* moves single streams from the leader with the most (the reference
       transfers ``round(NS/6)`` using a loop index as the donor).
    3. With constraints, when an infeasible individual is among the leaders or the best stream,
       streams are split evenly over the leaders (the cost-proportional rule needs costs).
    4. Rained streams keep their previous cost until they next flow (as the reference code
       does): they are not evaluated when re-drawn.

    References
    ----------
    H. Eskandar, A. Sadollah, A. Bahreininejad, M. Hamdi, Computers & Structures 110–111 (2012)
    151–166, doi:10.1016/j.compstruc.2012.07.010.
    """

    name = "WCA"

    def __init__(
        self,
        n_pop: int = 50,
        n_sr: int = 4,
        d_max: float = 1e-16,
        c: float = 2.0,
        sea_stream_rand: str = "scalar",
        raining: str = "uniform",
        mu: float = 0.1,
        sea_chunks: int = 2,
    ) -> None:
        if n_sr < 2:
            raise ValueError(f"n_sr must be ≥ 2 (a sea and at least one river), got {n_sr}")
        if n_pop < 2 * n_sr:
            raise ValueError(
                f"n_pop must be ≥ 2·n_sr = {2 * n_sr} (one stream per leader), got {n_pop}"
            )
        if not d_max > 0:
            raise ValueError(f"d_max must be > 0, got {d_max}")
        if not 0 < c <= 2:
            raise ValueError(f"c must be in (0, 2], got {c}")
        if sea_stream_rand not in ("scalar", "vector"):
            raise ValueError(
                f"sea_stream_rand must be 'scalar' or 'vector', got {sea_stream_rand!r}"
            )
        if raining not in ("uniform", "gaussian"):
            raise ValueError(f"raining must be 'uniform' or 'gaussian', got {raining!r}")
        if not mu > 0:
            raise ValueError(f"mu must be > 0, got {mu}")
        if sea_chunks < 1:
            raise ValueError(f"sea_chunks must be ≥ 1, got {sea_chunks}")
        self.sea_chunks = sea_chunks
        self.n_pop, self.n_sr, self.d_max0, self.c = n_pop, n_sr, d_max, c
        self.sea_stream_rand, self.raining, self.mu = sea_stream_rand, raining, mu
        self.evals_per_iter = n_pop - 1
        self.initial_evals = n_pop

    # ------------------------------------------------------------------ ask / tell
    def _setup(self) -> None:
        d = self.lower.size
        self.X = self.lower + (self.upper - self.lower) * self.rng.random((self.n_pop, d))
        self.F = np.full(self.n_pop, np.inf)
        self.V = np.zeros(self.n_pop)
        self.d_max = self.d_max0
        self._constrained = self.problem.n_constr > 0
        self._rivers = slice(1, self.n_sr)
        budget = self.termination.iteration_budget(self.evals_per_iter, self.initial_evals)
        self.max_it = budget if budget else 1000
        self.phase = "init"

    @property
    def n_stream(self) -> int:
        return self.n_pop - self.n_sr

    @property
    def best_x(self) -> np.ndarray:
        return self.X[0]

    @property
    def best_f(self) -> float:
        return float(self.F[0])

    @property
    def best_v(self) -> float:
        return float(self.V[0])

    def _ask(self) -> np.ndarray:
        if self.phase == "init":
            return self.X
        if self.phase == "streams":
            rows = self._rounds[self._chunk]
            r = self.rng.random((rows.stop - rows.start, self.lower.size))
            if self.sea_stream_rand == "scalar":
                n_sea = self._n_sea_in_round[self._chunk]  # the sea's streams lead each round
                r[:n_sea] = r[:n_sea, :1]
            return flow(
                self.X[rows],
                self.X.take(self._round_target[self._chunk], axis=0),
                r,
                self.c,
                self.lower,
                self.upper,
            )
        r = self.rng.random((self.n_sr - 1, self.lower.size))
        return flow(self.X[1 : self.n_sr], self.X[0], r, self.c, self.lower, self.upper)

    def _tell(self, ev: Evaluation) -> None:
        f = ev.F[:, 0]
        if self.phase == "init":
            v = ev.violation
            order = deb_order(f, v)
            self.X, self.F, self.V = self.X[order], f[order], v[order]
            self.leader = self._assign()
            self.phase = "streams"
            self._chunk = 0
            return
        if self.phase == "streams":
            rows = self._rounds[self._chunk]
            self.X[rows], self.F[rows] = self._pending, f
            if self._constrained:
                self.V[rows] = ev.violation
                for k, group in self._round_groups[self._chunk]:
                    self._challenge(group, k)
            else:
                self._challenge_round(self._chunk)
            self._river_to_sea()
            self._chunk += 1
            if self._chunk == len(self._rounds):
                self._chunk = 0
                self.phase = "rivers"
            return
        self.X[1 : self.n_sr], self.F[1 : self.n_sr] = self._pending, f
        if self._constrained:
            self.V[1 : self.n_sr] = ev.violation
        self._river_to_sea()
        self._evaporate()
        self.d_max -= self.d_max / self.max_it
        self.n_iter += 1
        self.phase = "streams"

    def ask(self) -> np.ndarray:  # remember the batch so tell() can store it
        self._pending = self._ask()
        return self._pending

    # ------------------------------------------------------------------ pieces
    def _assign(self) -> np.ndarray:
        """Stream counts (W2) and the storage layout of the stream phase.

        Streams are stored as ``[sea chunk 0 | rivers' streams | sea chunk 1 | …]`` — a fixed
        permutation of the cost-sorted streams made once here — so that every round of the
        stream phase and every group within it is a contiguous slice (no fancy indexing on the
        hot path). The permutation changes no result: rounds, groups and random draws keep
        their order.
        """
        leaders = slice(0, self.n_sr)
        if np.any(self.V[: self.n_sr + 1] > 0):
            ns = allocate_streams(
                np.zeros(self.n_sr), 0.0, self.n_stream
            )  # even split (deviation 3)
        else:
            ns = allocate_streams(self.F[leaders], self.F[self.n_sr], self.n_stream)
        self.ns = ns
        sea = np.arange(ns[0])
        chunks = np.array_split(sea, min(self.sea_chunks, ns[0]))
        perm = np.concatenate([chunks[0], np.arange(ns[0], self.n_stream), *chunks[1:]]) + self.n_sr
        order = np.r_[np.arange(self.n_sr), perm]
        self.X, self.F, self.V = self.X[order], self.F[order], self.V[order]
        leader_sorted = np.repeat(np.arange(self.n_sr), ns)
        leader = leader_sorted[perm - self.n_sr]
        # rounds as slices of the population, and their groups as (leader, slice)
        sizes = [chunks[0].size + self.n_stream - ns[0], *(c.size for c in chunks[1:])]
        bounds = np.cumsum([self.n_sr, *sizes])
        self._rounds = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        self._round_groups = []
        for sl in self._rounds:
            lead = leader[sl.start - self.n_sr : sl.stop - self.n_sr]
            cuts = np.flatnonzero(np.r_[True, lead[1:] != lead[:-1], True])
            self._round_groups.append(
                [
                    (int(lead[a]), slice(sl.start + a, sl.start + b))
                    for a, b in itertools.pairwise(cuts)
                ]
            )
        self._round_starts = [
            np.array([g.start - sl.start for _, g in groups], dtype=np.intp)
            for sl, groups in zip(self._rounds, self._round_groups, strict=True)
        ]
        self._round_leaders = [
            np.array([k for k, _ in groups], dtype=np.intp) for groups in self._round_groups
        ]
        self._round_target = [
            leader[sl.start - self.n_sr : sl.stop - self.n_sr] for sl in self._rounds
        ]
        self._n_sea_in_round = [
            int(np.argmax(t != 0)) if t.any() else t.size for t in self._round_target
        ]
        self._sea_stream = np.zeros(self.n_stream, dtype=bool)
        self._sea_stream[leader == 0] = True
        self._groups = [np.flatnonzero(leader == k) + self.n_sr for k in range(self.n_sr)]
        return leader

    def _challenge(self, group, k: int) -> None:
        """The best of ``group`` (a slice or index array) swaps with leader ``k`` when it is
        better (Deb's rules)."""
        if isinstance(group, slice):
            if self._constrained:
                best = group.start + int(deb_order(self.F[group], self.V[group])[0])
            else:  # the common, unconstrained case on the hot path
                best = group.start + int(self.F[group].argmin())
        elif self._constrained:
            best = int(group[deb_order(self.F[group], self.V[group])[0]])
        else:
            best = int(group[self.F[group].argmin()])
        if self._constrained:
            better = bool(deb_better(self.F[best], self.V[best], self.F[k], self.V[k]))
        else:
            better = self.F[best] < self.F[k]
        if better:
            self._swap(best, k)

    def _challenge_round(self, chunk: int) -> None:
        """:meth:`_challenge` for every group of a stream round at once (no constraints): one
        segmented minimum finds the groups whose best stream beats its leader."""
        rows = self._rounds[chunk]
        groups = self._round_groups[chunk]
        best = np.minimum.reduceat(self.F[rows], self._round_starts[chunk])
        wins = (best < self.F.take(self._round_leaders[chunk])).tolist()
        for (k, group), win in zip(groups, wins, strict=True):
            if win:
                self._swap(group.start + int(self.F[group].argmin()), k)

    def _swap(self, i: int, j: int) -> None:
        row = self.X[i].copy()
        self.X[i] = self.X[j]
        self.X[j] = row
        self.F[i], self.F[j] = self.F[j], self.F[i]
        self.V[i], self.V[j] = self.V[j], self.V[i]

    def _river_to_sea(self) -> None:
        self._challenge(self._rivers, 0)

    def _evaporate(self) -> None:
        d = self.lower.size
        sea = self.X[0]
        chance = self.rng.random(self.n_sr - 1)
        gap = self.X[1:] - sea
        dist2 = np.einsum("ij,ij->i", gap, gap)
        d2 = self.d_max**2
        rain = ((chance < 0.1) | (dist2[: self.n_sr - 1] < d2)).tolist()
        for k in range(1, self.n_sr):  # rivers in order: draws keep their order
            if rain[k - 1]:
                idx = self._groups[k]
                self.X[idx] = self.lower + self.rng.random((idx.size, d)) * (
                    self.upper - self.lower
                )
        # the sea's own streams (disjoint from the rivers' streams that may have rained)
        close_mask = (dist2[self.n_sr - 1 :] < d2) & self._sea_stream
        if close_mask.any():
            close = np.flatnonzero(close_mask) + self.n_sr
            if self.raining == "uniform":
                self.X[close] = self.lower + self.rng.random((close.size, d)) * (
                    self.upper - self.lower
                )
            else:
                new = sea + np.sqrt(self.mu) * self.rng.standard_normal((close.size, d))
                self.X[close] = np.clip(new, self.lower, self.upper)
