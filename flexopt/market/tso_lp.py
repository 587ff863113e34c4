"""S7 — the TSO market's LP (K1–K4, K6) and its pricing LP (K5) as arrays.

The same LP as :func:`flexopt.market.tso.build_tso_market`, written straight into arrays in
the order a Pyomo model of it reaches HiGHS — per interface ``(d, t)`` its blocks
``q_{d,t,1..K}`` then ``F_{d,t}``; then ``s⁺``, ``s⁻`` of the kept line-hours; rows (K1a) per
``(d, t)``, then (K2) and (K3) per kept line-hour — so that both are solved to the same
vertex (``tests/market/test_tso.py`` checks it bit for bit). At 100 DSOs Pyomo spends ten
times the solve building the model, its pricing LP and the hand-over; the run clears S7
here; the Pyomo model stays what ``fx.models.tso_market`` returns, and the reference.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from flexopt.market.lines import binding_candidates
from flexopt.market.lp import LinearProgram, csr
from flexopt.market.pricing import MultiplierArrays, supporting_prices_lp
from flexopt.market.tso import (
    SLACK_PENALTY_EUR,
    Pricing,
    TSOMarketData,
    TSOMarketResult,
    market_result,
    per_block,
    sensitivity_at_dsos,
)

__all__ = ["TSOArrays", "build_tso_lp", "read_tso_lp", "tso_pricing_lp"]


@dataclass(frozen=True, eq=False)
class TSOArrays:
    """The S7 LP (:attr:`lp`) and where each of its symbols sits.

    Attributes
    ----------
    lp : LinearProgram
    hours, dsos, lines : list
    blocks : list of (dso_id, hour, k)
        Every block, DSO by DSO, hour by hour (``k`` from 0).
    q_col, size, price : ndarray
        ``[blocks]`` column of ``q``, block size (MW, ``≥ 0``) and price (€/MWh).
    eq_row, f_col : ndarray
        ``[D, T]`` row of (K1a) and column of ``F_{d,t}``.
    kept : ndarray
        ``[LT, 2]`` (hour, line) positions of the kept line-hours (K6), hour by hour.
    up_row, dn_row, up_col, dn_col : ndarray
        ``[LT]`` rows of (K2), (K3) and columns of ``s⁺``, ``s⁻``.
    dt_h : float
    """

    lp: LinearProgram
    hours: list[Hashable]
    dsos: list[str]
    lines: list[Hashable]
    blocks: list[tuple[str, Hashable, int]]
    q_col: np.ndarray
    size: np.ndarray
    price: np.ndarray
    eq_row: np.ndarray
    f_col: np.ndarray
    kept: np.ndarray
    up_row: np.ndarray
    dn_row: np.ndarray
    up_col: np.ndarray
    dn_col: np.ndarray
    dt_h: float


def build_tso_lp(data: TSOMarketData) -> TSOArrays:
    """The S7 LP (K1–K4) on the line-hours that can bind (K6), as arrays. Pure."""
    hours = list(data.mean_flow_mw.index)
    lines = list(data.mean_flow_mw.columns)
    dsos = [b.dso_id for b in data.bids]
    dt = float(data.dt_h)
    size_of = {i: max(v, 0.0) for i, v in per_block(data, hours, "q_mw").items()}
    price_of = per_block(data, hours, "price_eur_per_mwh")
    blocks = [(b.dso_id, t, k) for b in data.bids for t in hours for k in range(b.q_mw.shape[1])]
    lower: list[float] = []
    upper: list[float] = []
    cost: list[float] = []
    q_col = dict.fromkeys(blocks, 0)
    f_col = np.zeros((len(dsos), len(hours)), dtype=np.int64)
    rows: list[list[tuple[int, float]]] = []
    f_max = np.zeros((len(hours), len(dsos)))
    for i, b in enumerate(data.bids):
        for ti, t in enumerate(hours):
            row = []
            for k in range(b.q_mw.shape[1]):
                q_col[(b.dso_id, t, k)] = len(cost)
                row.append((len(cost), 1.0))
                lower.append(0.0)
                upper.append(size_of[(b.dso_id, t, k)])
                cost.append(dt * price_of[(b.dso_id, t, k)])
            f_col[i, ti] = len(cost)
            row.append((len(cost), -1.0))
            lower.append(0.0)
            upper.append(np.inf)
            cost.append(0.0)
            rows.append(row)
            f_max[ti, i] = sum(upper[c] for c, _ in row[:-1])  # in order, as the model sums
    mean = data.mean_flow_mw.to_numpy()
    limit = data.limit_mw.reindex_like(data.mean_flow_mw).to_numpy()
    sens = sensitivity_at_dsos(data)
    kept = np.argwhere(binding_candidates(mean, limit, sens, f_max))
    n_lt = len(kept)
    up_col = len(cost) + np.arange(n_lt)
    dn_col = up_col + n_lt
    row_lower = [0.0] * len(rows)
    row_upper = [0.0] * len(rows)
    change = [
        [(int(f_col[d, ti]), float(h)) for d, h in enumerate(sens[ti, j].tolist()) if h != 0.0]
        for ti, j in kept.tolist()
    ]
    for n, (ti, j) in enumerate(kept.tolist()):
        rows.append([*change[n], (int(up_col[n]), -1.0)])
        row_lower.append(-np.inf)
        row_upper.append(float(limit[ti, j] - mean[ti, j]))
    for n, (ti, j) in enumerate(kept.tolist()):
        rows.append([*change[n], (int(dn_col[n]), 1.0)])
        row_lower.append(float(-limit[ti, j] - mean[ti, j]))
        row_upper.append(np.inf)
    n_cols = len(cost) + 2 * n_lt
    starts, index, value = csr(rows)
    penalty = SLACK_PENALTY_EUR * dt
    lp = LinearProgram(
        name="tso_market",
        cost=np.concatenate([cost, np.full(2 * n_lt, penalty)]),
        col_lower=np.concatenate([lower, np.zeros(2 * n_lt)]),
        col_upper=np.concatenate([upper, np.full(2 * n_lt, np.inf)]),
        row_lower=np.asarray(row_lower),
        row_upper=np.asarray(row_upper),
        starts=starts,
        index=index,
        value=value,
        declared=n_cols,
    )
    n_eq = len(dsos) * len(hours)
    return TSOArrays(
        lp=lp,
        hours=hours,
        dsos=dsos,
        lines=lines,
        blocks=blocks,
        q_col=np.fromiter(q_col.values(), dtype=np.int64, count=len(blocks)),
        size=np.fromiter((size_of[i] for i in blocks), dtype=float, count=len(blocks)),
        price=np.fromiter((price_of[i] for i in blocks), dtype=float, count=len(blocks)),
        eq_row=np.arange(n_eq).reshape(len(dsos), len(hours)),
        f_col=f_col,
        kept=kept,
        up_row=n_eq + np.arange(n_lt),
        dn_row=n_eq + n_lt + np.arange(n_lt),
        up_col=up_col,
        dn_col=dn_col,
        dt_h=dt,
    )


def tso_pricing_lp(a: TSOArrays, x: np.ndarray, tol: float = 1e-7) -> MultiplierArrays:
    """The least-payment supporting multipliers of the solved S7 LP (K5a–K5c) —
    :func:`flexopt.market.tso.build_tso_pricing` on arrays: weights ``F`` on (K1a), the
    slacks held, every block of an hour left short of relief counted as taken in full."""
    lp = a.lp
    weights = np.zeros(lp.n_rows)
    weights[a.eq_row.ravel()] = np.maximum(x[a.f_col.ravel()], 0.0)
    fixed = np.zeros(lp.n_cols, dtype=bool)
    fixed[a.up_col] = fixed[a.dn_col] = True
    short_hours = {int(ti) for ti in a.kept[x[a.up_col] + x[a.dn_col] > tol, 0]}
    pos_t = {t: i for i, t in enumerate(a.hours)}
    saturated = np.zeros(lp.n_cols, dtype=bool)
    for col, (_, t, _) in zip(a.q_col.tolist(), a.blocks, strict=True):
        saturated[col] = pos_t[t] in short_hours
    return supporting_prices_lp(lp, x, weights, fixed, saturated)


def read_tso_lp(
    a: TSOArrays,
    data: TSOMarketData,
    x: np.ndarray,
    row_dual: np.ndarray,
    objective: float,
    pricing: Pricing = "interface",
) -> TSOMarketResult:
    """The market's result from the solved arrays — :func:`flexopt.market.tso.read_tso_market`
    on ``x`` and the rows' ``λ = ∂objective/∂rhs`` (``row_dual``)."""
    dt = a.dt_h
    lam = row_dual[a.eq_row].T / dt
    mu = np.zeros((len(a.hours), len(a.lines)))
    slack = np.zeros_like(mu)
    ti, j = a.kept[:, 0], a.kept[:, 1]
    mu[ti, j] = (np.abs(row_dual[a.up_row]) + np.abs(row_dual[a.dn_row])) / dt
    slack[ti, j] = x[a.up_col] + x[a.dn_col]
    return market_result(
        data,
        (a.hours, a.dsos, a.lines),
        a.blocks,
        a.size,
        np.maximum(x[a.q_col], 0.0),
        lam,
        (mu, np.where(slack > 1e-7, slack, 0.0)),
        objective,
        pricing,
    )
