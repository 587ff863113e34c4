"""The rounds of a WCA iteration on the compiled kernels (``engine="numba"``).

Same state, same layout, same draws as the numpy engine of :class:`flexopt.optim.WCA`
(W4b of ``models/wca.md``); the bookkeeping of a round — flow (W3), swaps (W4 i–ii), the
evaporation test and the placement of the rivers' rained streams (W4 iii) — runs in
:mod:`flexopt.optim._kernels`. The generator calls stay here, in the numpy engine's order;
the rare cases — a stream of the sea raining, a distance within rounding of ``d_max`` — take
the numpy engine's own code.
"""

from __future__ import annotations

from typing import NoReturn, Protocol

import numpy as np

from flexopt.optim import _kernels as k
from flexopt.optim._rain import CycleState
from flexopt.optim.core import Evaluation

__all__ = ["CompiledRounds"]


class _WCA(CycleState, Protocol):
    """What the compiled rounds use of :class:`flexopt.optim.WCA` (a protocol, so that this
    module need not import it: ``wca`` imports this one)."""

    c: float
    _constrained: bool
    _draws: np.ndarray
    _moves_rivers: list[bool]
    _pieces: list[tuple[int, int, int, int, int]]
    _round_groups: list[list[tuple[int, slice]]]
    _rows: list[slice]
    _x: list[np.ndarray]

    def _raise_nan(self, ev: Evaluation) -> NoReturn: ...

    def _round_violation(self, i: int, ev: Evaluation) -> np.ndarray: ...


class CompiledRounds:
    """Per-round index arrays of ``wca``'s layout and the ``ask``/``tell`` of its rounds.

    Parameters
    ----------
    wca : WCA
        After :meth:`WCA._assign`: the layout (``_rows``, ``_round_groups``, ``_moves_rivers``)
        and the plan of the draws (``_pieces``) are read from it, once.
    target : numpy.ndarray
        Row each row flows to (``[n_pop]``; rivers to the sea).
    """

    def __init__(self, wca: _WCA, target: np.ndarray) -> None:
        self.wca = wca
        n_pop = wca.X.shape[0]
        # per row: target, first factor, factor stride (0: one factor for the row), sea stream
        plan = self.plan = np.zeros((4, n_pop), dtype=np.intp)
        plan[0] = target
        for i, a, b, per_row, first in wca._pieces:
            rows = np.arange(a, b)
            start = wca._rows[i].start
            plan[1, start + rows] = first + (rows - a) * per_row
            plan[2, start + rows] = 1 if per_row > 1 else 0
        plan[3, wca.n_sr + np.flatnonzero(wca._sea_stream)] = 1
        self.box = np.stack([wca.lower, wca.upper]).astype(np.float64)
        # per round: first row, end row, whether the river ↔ sea test runs after it, and its
        # groups of streams — rows g0:g1 of ``groups``, each (leader, first row, end row)
        groups = [[(lead, g.start, g.stop) for lead, g in gs] for gs in wca._round_groups]
        ends = np.cumsum([0, *map(len, groups)])
        self.rounds = np.array(
            [
                [r.start, r.stop, m, g0, g1]
                for r, m, g0, g1 in zip(
                    wca._rows, wca._moves_rivers, ends[:-1], ends[1:], strict=True
                )
            ],
            dtype=np.intp,
        )
        self.groups = np.array([g for gs in groups for g in gs], dtype=np.intp).reshape(-1, 3)
        self.rain = np.zeros(n_pop, dtype=np.bool_)
        # each river's streams are contiguous rows (the layout of _assign): they rain as a block
        self.river_streams = []
        for r in range(1, wca.n_sr):
            rows = wca._groups[r]
            if rows.size and not np.array_equal(rows, np.arange(rows[0], rows[0] + rows.size)):
                raise AssertionError("a river's streams must be contiguous rows")
            self.river_streams.append((r, (int(rows[0]), int(rows[0]) + rows.size)))
        self.zero_v = np.zeros(n_pop)
        self.last = len(wca._rows) - 1
        self.i = 0  # the round under way
        # X, F, V and the draws are only changed in place from here on
        self.X, self.F, self.V, self.draws = wca.X, wca.F, wca.V, wca._draws
        self.x = wca._x  # each round's rows of X
        self.c, self.n_sr = float(wca.c), wca.n_sr
        self.constrained = wca._constrained
        self.d2 = wca.d_max**2
        self.rain_chance = float(wca.rain_chance)
        self.tell_round = k.tell_round

    def ask(self) -> np.ndarray:
        """Round ``i``'s points; the first round draws the iteration's uniforms and flows here
        (W3), the others flowed at the end of the previous :meth:`tell`."""
        i = self.i
        if i == 0:
            self.wca.rng.random(out=self.draws)
            rounds = self.rounds
            k.flow_rows(self.X, self.box, self.draws, self.c, rounds[0, 0], rounds[0, 1], self.plan)
        x: np.ndarray = self.x[i]
        return x

    def tell(self, ev: Evaluation) -> None:
        """Swaps after round ``i`` (W4 i–ii) and the next round's flow; after the last,
        evaporation (W4 iii)."""
        i = self.i
        constrained = self.constrained
        status = self.tell_round(
            self.X,
            self.F,
            self.V,
            ev.F,
            self.wca._round_violation(i, ev) if constrained else self.zero_v,
            self.groups,
            self.plan,
            self.box,
            self.draws,
            self.rain,
            self.rounds,
            i,
            self.n_sr,
            self.c,
            self.d2,
            constrained,
            self.rain_chance,
        )
        if status == k.NAN_OBJECTIVE:
            self.wca._raise_nan(ev)
        if i < self.last:
            self.i = i + 1
            return
        self.i = 0
        self._end_iteration(status)

    def _end_iteration(self, status: int) -> None:
        """Raining as :func:`~flexopt.optim._kernels.evaporation` decided, then the shared
        end of an iteration (``d_max``'s decay and W4c–W4d)."""
        w = self.wca
        if status == k.AMBIGUOUS:  # a distance within rounding of d_max: numpy decides
            w._evaporate()
        elif status:
            rain, n_sr, d = self.rain, self.n_sr, self.X.shape[1]
            if w.river_rain == "uniform":
                for r, (a, b) in self.river_streams:  # in order: the draws keep their order
                    if rain[r]:
                        k.rain_rows(self.X, self.box, w.rng.random((b - a, d)), a)
                rivers = [False] * (n_sr - 1)
            else:  # rain on some coordinates (deviation 9): the numpy engine's code
                rivers = rain[1:n_sr].tolist()
            # the sea's streams near it (rare), and with deviation 9 the rivers' streams
            if rain[n_sr:].any() or any(rivers):
                w._rain(rivers, np.flatnonzero(rain[n_sr:]) + n_sr)
        w._close_iteration()  # may start a new cycle (W4d): this object is then dropped
        self.d2 = w.d_max**2
