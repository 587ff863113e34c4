"""Rival DSOs at a Nash equilibrium (``models/competition.md`` N10–N12): best responses by the
MPEC of ``flexopt/market/competition.py`` checked against S7 itself, Gauss–Seidel over the
DSOs until no markup changes, a cycle of markups repeats, or the rounds run out.

Runs between S6 and S7 (``run/bilevel.py``) on the TSO's view only: S7's data with the bids.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from flexopt.market.competition import HourMarket, build_best_response, chosen_markup, hour_market
from flexopt.market.equilibrium import (
    CompetitionOptions,
    CompetitionResult,
    EquilibriumStatus,
    realized_profit,
    with_markups,
)
from flexopt.market.tso import Pricing, TSOMarketData, TSOMarketResult
from flexopt.run.tso import clear_tso_market
from flexopt.solve import DEFAULT_TIME_LIMIT_S, SolveStatus, solve

__all__ = ["nash_equilibrium", "pivotal_dsos"]

#: A profit must beat the best one found by this much (€, plus 1e-7 relative) to count as
#: better: ties keep the current markup, so a DSO indifferent between markups stays put.
PROFIT_TOL_EUR = 1e-4
#: HiGHS's default MIP feasibility tolerance (1e-6) would let an hour look short (K5c) on
#: 1e-6 MW of slack that a binary at 0 forbids, and the bound run to the penalty; at 1e-9
#: its presolve declared feasible MPECs infeasible. The MPEC is feasible by construction (the
#: S7 point at any markup): "infeasible" is numerics, retried once without presolve.
MPEC_SOLVER_OPTIONS: dict[str, Any] = {"mip_feasibility_tolerance": 1e-7}
#: MILP bounds an hour may leave above S7's best profit before its open markups are cleared
#: one by one without a MILP (N10).
ENUMERATE_AFTER = 3
#: Unresolved overload (MW, summed over an hour's lines) that makes a DSO pivotal.
PIVOTAL_TOL_MW = 1e-6


class _Clearing:
    """S7 on marked-up bids, counted."""

    def __init__(self, data: TSOMarketData, pricing: Pricing, time_limit_s: float) -> None:
        self.data, self.pricing, self.time_limit_s = data, pricing, time_limit_s
        self.count = 0
        self._last: dict[bytes, TSOMarketResult] = {}

    def __call__(self, markups: pd.DataFrame) -> TSOMarketResult:
        key = markups.to_numpy().tobytes()
        if key in self._last:  # S7 is deterministic: the state a best response ended in
            return self._last[key]
        self.count += 1
        data = with_markups(self.data, markups)
        res = clear_tso_market(data, self.pricing, time_limit_s=self.time_limit_s)
        self._last = {key: res}
        return res

    def profit(self, res: TSOMarketResult, markups: pd.DataFrame) -> pd.DataFrame:
        return realized_profit(res, markups, self.data.dt_h)


#: Markups are grid points: two states are equal when no markup differs by more than this.
_SAME = 1e-9


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return bool(np.allclose(a.to_numpy(), b.to_numpy(), rtol=0.0, atol=_SAME))


def _answered(before: np.ndarray | None, now: pd.Series) -> bool:
    return before is not None and bool(np.allclose(before, now.to_numpy(), rtol=0.0, atol=_SAME))


def _better(new: float, old: float) -> bool:
    return new > old + PROFIT_TOL_EUR + 1e-7 * abs(old)


def _best_response(
    dso: str,
    markups: pd.DataFrame,
    current: TSOMarketResult,
    grids: dict[Hashable, np.ndarray],
    markets: dict[Hashable, HourMarket],
    clear: _Clearing,
    counts: Counter[str],
    hours: list[Hashable],
) -> pd.Series:
    """DSO ``dso``'s best markups in ``hours`` (N10; its current ones elsewhere), given the
    others' in ``markups`` and S7's clearing ``current`` of them.

    Per hour, the MILP's bound ``B`` (N2–N8) bounds the profit S7 pays at every markup not yet
    evaluated; its choice is cleared by S7 and excluded (``z_j = 0``), until ``B`` does not
    beat the best evaluated profit. What is returned is a markup S7 was seen to pay, the
    best on the grid — exact, not the MILP's estimate. A failed MILP (no bound within the
    time limit), or one whose bound stayed above what S7 paid ``ENUMERATE_AFTER`` times
    (several multipliers positive in a short hour, N6a), leaves the hour to enumeration: its
    next grid point is cleared each pass, without a MILP — S7 solves are the cheaper check.
    """
    now = clear.profit(current, markups)[dso]
    best = {t: (float(markups.at[t, dso]), float(now[t])) for t in markups.index}
    models, open_ = {}, {}
    bound: dict[Hashable, float] = {}
    misses: Counter[Hashable] = Counter()
    for t in hours:
        # the accepted quantity never rises with the DSO's own price (the LP's value is
        # concave in it): unaccepted at the lowest markup, unaccepted at every markup
        idle = best[t][0] == grids[t][0] and current.accepted_mw.at[t, dso] <= 0.0
        if markets[t].capacity_mw(dso) > 0 and grids[t].size > 1 and not idle:
            others = {e: float(markups.at[t, e]) for e in markups.columns if e != dso}
            models[t] = build_best_response(markets[t], dso, others, grids[t], clear.pricing)
            # the current markup was evaluated: never a candidate again
            open_[t] = set(range(grids[t].size)) - set(np.flatnonzero(grids[t] == best[t][0]))
            for done in set(range(grids[t].size)) - open_[t]:
                models[t].z[done].fix(0)
    while True:
        trial = markups.copy()
        pending = []
        for t, model in models.items():
            if not open_[t]:
                continue
            j: int | None
            if misses[t] >= ENUMERATE_AFTER:
                j = max(open_[t])  # the bound stays valid for what is left
                counts["enumerated"] += 1
            else:
                j, bound[t] = _candidate(model, best[t][1], open_[t], clear.time_limit_s, counts)
            if j is None:
                open_[t] = set()
                continue
            open_[t].discard(j)
            model.z[j].fix(0)
            trial.at[t, dso] = grids[t][j]
            pending.append(t)
        if not pending:
            break
        res = clear(trial)
        got = clear.profit(res, trial)[dso]
        for t in pending:
            if _better(float(got[t]), best[t][1]):
                best[t] = (float(trial.at[t, dso]), float(got[t]))
            else:
                counts["cuts"] += 1
            if not _better(bound[t], best[t][1]):
                open_[t] = set()  # S7 paid what the bound promised: no open markup beats it
            else:
                misses[t] += 1
    return pd.Series({t: best[t][0] for t in markups.index}, name=dso, dtype=float)


def _candidate(
    model: pyo.ConcreteModel,
    best: float,
    open_: set[int],
    time_limit_s: float,
    counts: Counter[str],
) -> tuple[int | None, float]:
    """The next grid point to clear and the MILP's bound on the open points' profits, or
    ``None`` when the bound shows none is better than ``best``; with a failed MILP, the
    lowest open point (enumeration) and no bound (infinity)."""
    counts["mpec_solves"] += 1
    res = solve(model, time_limit=time_limit_s, mip_gap=1e-9, options=MPEC_SOLVER_OPTIONS)
    if res.status is SolveStatus.INFEASIBLE:
        counts["mpec_retries"] += 1
        retry = {**MPEC_SOLVER_OPTIONS, "presolve": "off"}
        res = solve(model, time_limit=time_limit_s, mip_gap=1e-9, options=retry)
    if res.status.has_solution and res.bound is not None:
        bound = float(res.bound)
        if not _better(bound, best):
            return None, bound
        j = chosen_markup(model)
        return (j if j in open_ else min(open_)), bound
    counts["mpec_failures"] += 1
    counts["enumerated"] += 1
    return min(open_), math.inf


def pivotal_dsos(data: TSOMarketData, base: TSOMarketResult, time_limit_s: float) -> pd.DataFrame:
    """Hours × DSOs (bool): the DSO is pivotal when S7 without its bid leaves more overload
    unresolved than with it (N12) — the others' residual supply falls short of what the
    lines need."""
    hours = base.accepted_mw.index
    with_all = base.unresolved_mw.sum(axis=1)
    out = pd.DataFrame(False, index=hours, columns=base.accepted_mw.columns)
    for b in data.bids:
        rest = tuple(x for x in data.bids if x is not b)
        if rest:
            without = clear_tso_market(
                TSOMarketData(data.mean_flow_mw, data.limit_mw, data.sensitivity, rest, data.dt_h),
                "last_block",
                time_limit_s=time_limit_s,
            ).unresolved_mw.sum(axis=1)
        else:  # no one left: all of the overload stays
            need = data.mean_flow_mw.abs() - data.limit_mw.reindex_like(data.mean_flow_mw)
            without = need.clip(lower=0.0).sum(axis=1)
        offers = base.blocks[base.blocks["dso_id"] == b.dso_id].groupby("hour")["offered_mw"].sum()
        out[b.dso_id] = (without > with_all + PIVOTAL_TOL_MW) & (offers.reindex(hours) > 0)
    return out


def nash_equilibrium(
    data: TSOMarketData,
    options: CompetitionOptions,
    pricing: Pricing = "interface",
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> CompetitionResult:
    """Markups at a Nash equilibrium of the DSOs' best responses (N10–N12).

    Starts from the price-taking bids (every markup 0); in each round every DSO in turn
    (Gauss–Seidel) takes its best response to the others' current markups. Stops when a
    round changes no markup (``converged``; markups are grid points, so a change is a step),
    when the markups after a round equal those after an earlier one (``cycle``, never
    looping forever on it), or after ``options.rounds`` rounds (``max_rounds``). Hours are
    independent in S7: a DSO answers an hour again only when its markups changed since.

    Parameters
    ----------
    data : TSOMarketData
        S7's data with the DSOs' S6 bids (``run/tso.py::tso_market_data``).
    options : CompetitionOptions
    pricing : {"interface", "last_block"}
        S7's price rule (K5): the game is played against it.
    time_limit_s : float
        Seconds per solver call (each MILP and each S7 LP).
    """
    hours = data.mean_flow_mw.index
    dsos = [b.dso_id for b in data.bids]
    clear = _Clearing(data, pricing, time_limit_s)
    zero = pd.DataFrame(0.0, index=hours, columns=dsos)
    base = clear(zero)
    pivotal = pivotal_dsos(data, base, time_limit_s)
    cap = options.cap_eur_per_mwh
    capped = pivotal & (cap is not None)
    markets = {t: hour_market(data, t) for t in hours}
    grids = {(t, d): options.grid(cap if capped.at[t, d] else None) for t in hours for d in dsos}
    counts: Counter[str] = Counter()
    markups, current = zero.copy(), base
    history = [zero.copy()]
    status, cycle = EquilibriumStatus.MAX_ROUNDS, 0
    # the markups of an hour when a DSO last answered them: its answer stands while they do
    seen: dict[tuple[str, Hashable], np.ndarray] = {}
    for _ in range(options.rounds):
        moved = False
        for d in dsos:
            todo = [t for t in hours if not _answered(seen.get((d, t)), markups.loc[t])]
            new = _best_response(
                d, markups, current, {t: grids[t, d] for t in hours}, markets, clear, counts, todo
            )
            if (new - markups[d]).abs().max() > _SAME:
                moved = True
                markups[d] = new
                current = clear(markups)
            seen.update({(d, t): markups.loc[t].to_numpy() for t in todo})
        state = markups.copy()
        earlier = [k for k, h in enumerate(history) if _same(h, state)]
        history.append(state)
        if not moved:
            status = EquilibriumStatus.CONVERGED
            break
        if earlier:
            status, cycle = EquilibriumStatus.CYCLE, len(history) - 1 - earlier[-1]
            break
    counts["clearings"] = clear.count
    return CompetitionResult(
        status=status,
        rounds=len(history) - 1,
        cycle_length=cycle,
        markup_eur_per_mwh=markups,
        pivotal=pivotal,
        capped=capped,
        price_taking=base,
        clearing=current,
        profit_eur=clear.profit(current, markups),
        price_taking_profit_eur=clear.profit(base, zero),
        bids=with_markups(data, markups).bids,
        history=tuple(history),
        counts=dict(counts),
    )
