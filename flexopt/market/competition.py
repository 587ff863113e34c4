"""One DSO's best response to S7 as an MPEC (``models/competition.md`` N2–N8): the S7 LP of one
hour, with the other DSOs' markups fixed, replaced by its KKT conditions — complementarity by
binaries with derived big-M bounds — and S7's pricing rule (K5) linked to the same activity
pattern, so that the leader's profit is linear. A MILP for HiGHS; a builder, never solves.

One hour of S7 (K1–K4 with ``F_e = Σ_k q_{e,k}`` substituted and Δt divided out), on the rows
``r`` the presolve (K6) keeps — each kept line twice, ``(l, +)`` and ``(l, −)``:

    min  Σ_{e,k} π̃_{e,k} q_{e,k} + M Σ_r s_r                                                (N2)
    s.t. Σ_e A_{r,e} F_e + s_r ≥ b_r   [μ_r ≥ 0],   0 ≤ q_{e,k} ≤ Q̄_{e,k},  s_r ≥ 0

with ``A_{(l,+),e} = −H_{l,e}``, ``b_{(l,+)} = E f_l − F̄_l`` (relief needed above the limit),
``A_{(l,−),e} = H_{l,e}``, ``b_{(l,−)} = −F̄_l − E f_l``. The interface price of DSO ``e`` is
``λ_e(μ) = Σ_r A_{r,e} μ_r`` (K5: the dual of K1a when ``F_e > 0``).

The leader ``d`` picks its markup on a grid (N7): ``m = Σ_j g_j z_j``, ``Σ_j z_j = 1``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo

from flexopt.market.lines import binding_candidates
from flexopt.market.tso import SLACK_PENALTY_EUR, Pricing, TSOMarketData

__all__ = ["HourMarket", "build_best_response", "chosen_markup", "hour_market"]

#: Blocks smaller than this (MW) are left out: a variable with equal bounds has no KKT row.
_TINY_MW = 1e-9
#: Unresolved overload (MW, summed over an hour's rows) from which the MPEC treats an hour as
#: short (K5c); S7 itself does from 1e-7 MW on a line.
_SHORT_MW = 1e-5


@dataclass(frozen=True, eq=False)
class HourMarket:
    """One hour of S7 as the MPEC sees it (N2).

    Attributes
    ----------
    hour : hashable
    dsos : tuple of str
    q_mw, price_eur_per_mwh : tuple of ndarray
        Per DSO, its blocks' sizes ``Q̄`` and unmarked prices ``π`` in this hour.
    relief : ndarray
        ``A[r, e]``: MW of relief on row ``r`` per MW from DSO ``e``.
    need_mw : ndarray
        ``b[r]``: the relief row ``r`` needs (negative: headroom).
    rows : tuple
        ``(line, +1 | −1)`` of each row.
    dt_h : float
    """

    hour: Hashable
    dsos: tuple[str, ...]
    q_mw: tuple[np.ndarray, ...]
    price_eur_per_mwh: tuple[np.ndarray, ...]
    relief: np.ndarray
    need_mw: np.ndarray
    rows: tuple[tuple[Hashable, int], ...]
    dt_h: float

    def capacity_mw(self, dso: str) -> float:
        return float(self.q_mw[self.dsos.index(dso)].sum())


def hour_market(data: TSOMarketData, hour: Hashable) -> HourMarket:
    """Hour ``hour`` of S7's data: the bids' blocks (a DSO without the hour offers nothing)
    and the rows of the lines that can bind (K6, as S7 keeps them)."""
    sizes, prices = [], []
    for b in data.bids:
        if hour in b.q_mw.index:
            sizes.append(np.clip(b.q_mw.loc[hour].to_numpy(dtype=float), 0.0, None))
            prices.append(b.price_eur_per_mwh.loc[hour].to_numpy(dtype=float))
        else:
            sizes.append(np.zeros(b.q_mw.shape[1]))
            prices.append(np.zeros(b.q_mw.shape[1]))
    lines = data.mean_flow_mw.columns
    flow = data.mean_flow_mw.loc[hour].to_numpy(dtype=float)
    limit = data.limit_mw.reindex_like(data.mean_flow_mw).loc[hour].to_numpy(dtype=float)
    h = data.sensitivity[hour].loc[lines, [b.bus for b in data.bids]].to_numpy(dtype=float)
    f_max = np.array([s.sum() for s in sizes])
    keep = binding_candidates(flow[None], limit[None], h[None], f_max[None])[0]
    rel, need, rows = [], [], []
    for j in np.flatnonzero(keep):
        rel += [-h[j], h[j]]
        need += [flow[j] - limit[j], -limit[j] - flow[j]]
        rows += [(lines[j], 1), (lines[j], -1)]
    return HourMarket(
        hour=hour,
        dsos=tuple(b.dso_id for b in data.bids),
        q_mw=tuple(sizes),
        price_eur_per_mwh=tuple(prices),
        relief=np.array(rel, dtype=float).reshape(len(rows), len(data.bids)),
        need_mw=np.array(need, dtype=float),
        rows=tuple(rows),
        dt_h=float(data.dt_h),
    )


def build_best_response(
    hm: HourMarket,
    leader: str,
    markups: Mapping[str, float],
    grid: Sequence[float] | np.ndarray,
    pricing: Pricing = "interface",
) -> pyo.ConcreteModel:
    """The leader's best-response MILP in one hour (N2–N8); maximize ``m.obj``.

    Parameters
    ----------
    hm : HourMarket
    leader : str
        The DSO choosing its markup; the others bid ``π + markups[e]``.
    markups : mapping
        The other DSOs' markups (€/MWh; missing: 0).
    grid : sequence of float
        The leader's markups to choose from (``≥ 0``, N7): ``m.z[j]`` selects ``grid[j]``.
    pricing : {"interface", "last_block"}
        What S7 pays the leader (K5): its profit (N8) is built for that rule.

    Returns
    -------
    ConcreteModel
        ``m.z`` (grid choice), ``m.q`` (accepted), ``m.obj`` — for ``interface`` an upper
        bound on the profit S7 pays (its multipliers range over K5's polyhedron, N6), for
        ``last_block`` the profit itself (N8b); both exact for the S7 point that the LP and
        K5 choose when that point is unique.
    """
    if leader not in hm.dsos:
        raise ValueError(f"no DSO {leader!r} in hour {hm.hour!r}; DSOs: {', '.join(hm.dsos)}")
    if pricing not in ("interface", "last_block"):
        raise ValueError(f"pricing must be 'interface' or 'last_block', not {pricing!r}")
    g = np.asarray(grid, dtype=float)
    if g.size == 0 or (g < 0).any():
        raise ValueError(f"the markup grid must be non-empty and ≥ 0, got {list(grid)}")
    big = SLACK_PENALTY_EUR
    ld = hm.dsos.index(leader)
    blocks = [(e, k) for e, q in enumerate(hm.q_mw) for k in range(q.size) if q[k] > _TINY_MW]
    q_max = {(e, k): float(hm.q_mw[e][k]) for e, k in blocks}
    pi = {(e, k): float(hm.price_eur_per_mwh[e][k]) for e, k in blocks}
    fixed = {e: float(markups.get(hm.dsos[e], 0.0)) for e in range(len(hm.dsos)) if e != ld}
    a = hm.relief
    rows = range(len(hm.rows))
    f_max = np.array([q.sum() for q in hm.q_mw])
    # (N5) λ_e ∈ [λ̲_e, λ̄_e] from μ ∈ [0, M]; π̃ over the grid for the leader
    lam_hi = big * np.clip(a, 0.0, None).sum(axis=0)
    lam_lo = big * np.clip(a, None, 0.0).sum(axis=0)
    p_lo = {i: pi[i] + (float(g.min()) if i[0] == ld else fixed[i[0]]) for i in blocks}
    p_hi = {i: pi[i] + (float(g.max()) if i[0] == ld else fixed[i[0]]) for i in blocks}
    big_a = {i: max(0.0, p_hi[i] - lam_lo[i[0]]) for i in blocks}
    big_b = {i: max(0.0, lam_hi[i[0]] - p_lo[i]) for i in blocks}
    s_max = np.clip(hm.need_mw - (np.clip(a, None, 0.0) * f_max).sum(axis=1), 0.0, None)
    slack_max = np.clip((np.clip(a, 0.0, None) * f_max).sum(axis=1) - hm.need_mw, 0.0, None)

    m = pyo.ConcreteModel(name=f"best_response_{leader}_{hm.hour}")
    m.B = pyo.Set(initialize=blocks, dimen=2, ordered=True)
    m.R = pyo.Set(initialize=list(rows), ordered=True)
    m.J = pyo.Set(initialize=range(g.size), ordered=True)
    m.z = pyo.Var(m.J, domain=pyo.Binary, doc="grid choice of the leader's markup")
    m.eq_grid = pyo.Constraint(expr=pyo.quicksum(m.z[j] for j in m.J) == 1)
    markup = pyo.quicksum(float(g[j]) * m.z[j] for j in m.J)

    def price(e: int, k: int) -> Any:
        return pi[e, k] + (markup if e == ld else fixed[e])

    # (N2) primal feasibility
    m.q = pyo.Var(m.B, bounds=lambda _m, e, k: (0.0, q_max[e, k]), doc="accepted, MW")
    m.s = pyo.Var(m.R, bounds=lambda _m, r: (0.0, float(s_max[r])), doc="unresolved, MW")
    flex = {
        e: pyo.quicksum(m.q[e, k] for k in range(q.size) if (e, k) in q_max)
        for e, q in enumerate(hm.q_mw)
    }

    def row_slack(r: int) -> Any:
        relief = pyo.quicksum(float(a[r, e]) * flex[e] for e in flex if a[r, e] != 0.0)
        return relief + m.s[r] - float(hm.need_mw[r])

    m.ineq_row = pyo.Constraint(m.R, rule=lambda _m, r: row_slack(r) >= 0)
    # (N3) dual feasibility and stationarity
    m.mu = pyo.Var(m.R, bounds=(0.0, big), doc="line multiplier, € per MWh of relief")
    m.alpha = pyo.Var(m.B, domain=pyo.NonNegativeReals)
    m.beta = pyo.Var(m.B, domain=pyo.NonNegativeReals)

    def lam(mu: Any, e: int) -> Any:
        return pyo.quicksum(float(a[r, e]) * mu[r] for r in rows if a[r, e] != 0.0)

    m.eq_stationarity = pyo.Constraint(
        m.B, rule=lambda _m, e, k: price(e, k) - lam(m.mu, e) - m.alpha[e, k] + m.beta[e, k] == 0
    )
    # (N4) complementarity: u at the lower bound, v at the upper bound, a row active, g slack
    m.u = pyo.Var(m.B, domain=pyo.Binary)
    m.v = pyo.Var(m.B, domain=pyo.Binary)
    m.act = pyo.Var(m.R, domain=pyo.Binary)
    m.short = pyo.Var(m.R, domain=pyo.Binary)
    m.c_q_lo = pyo.Constraint(m.B, rule=lambda _m, e, k: m.q[e, k] <= q_max[e, k] * (1 - m.u[e, k]))
    m.c_alpha = pyo.Constraint(m.B, rule=lambda _m, *i: m.alpha[i] <= big_a[i] * m.u[i])
    m.c_q_hi = pyo.Constraint(m.B, rule=lambda _m, e, k: m.q[e, k] >= q_max[e, k] * m.v[e, k])
    m.c_beta = pyo.Constraint(m.B, rule=lambda _m, *i: m.beta[i] <= big_b[i] * m.v[i])
    m.c_row = pyo.Constraint(
        m.R, rule=lambda _m, r: row_slack(r) <= float(slack_max[r]) * (1 - m.act[r])
    )
    m.c_mu = pyo.Constraint(m.R, rule=lambda _m, r: m.mu[r] <= big * m.act[r])
    m.c_s = pyo.Constraint(m.R, rule=lambda _m, r: m.s[r] <= float(s_max[r]) * m.short[r])
    m.c_gamma = pyo.Constraint(m.R, rule=lambda _m, r: m.mu[r] >= big * m.short[r])
    # (N7) m·F_d by the grid: y_j = z_j F_d (exact for binary z_j and 0 ≤ F_d ≤ F̄_d)
    f_d, f_bar = flex[ld], float(f_max[ld])
    m.y = pyo.Var(m.J, domain=pyo.NonNegativeReals)
    m.c_y_z = pyo.Constraint(m.J, rule=lambda _m, j: m.y[j] <= f_bar * m.z[j])
    m.c_y_f = pyo.Constraint(m.J, rule=lambda _m, j: m.y[j] <= f_d)
    m.c_y_lo = pyo.Constraint(m.J, rule=lambda _m, j: m.y[j] >= f_d - f_bar * (1 - m.z[j]))
    markup_revenue = pyo.quicksum(float(g[j]) * m.y[j] for j in m.J)
    own = [i for i in blocks if i[0] == ld]
    if pricing == "interface":
        rent = _add_pricing(m, ld, own, price, lam, (big_a, big_b), a, s_max)
        profit = markup_revenue + rent
    else:
        profit = markup_revenue + _add_last_block(m, own, pi, f_d, f_bar)
    m.obj = pyo.Objective(expr=hm.dt_h * profit, sense=pyo.maximize)
    return m


def _add_pricing(
    m: pyo.ConcreteModel,
    ld: int,
    own: list[tuple[int, int]],
    price: Any,
    lam: Any,
    bounds: tuple[dict[tuple[int, int], float], dict[tuple[int, int], float]],
    a: np.ndarray,
    s_max: np.ndarray,
) -> Any:
    """(N6) K5's supporting multipliers on the pattern of (N4) — slacks held (no row), an
    accepted block (``u = 0``) priced at least at its bid, a block not at its upper bound and
    not accepted in a short hour at most at it, the positive multipliers fixed by tight rows
    (N6a) — and (N8a) the leader's rents ``Σ_k Q̄_k ρ_k`` with ``ρ_k = λ^P_d − π̃_{d,k}`` on its
    accepted blocks. ``bounds``: the big-M of the rows below and above (N5)."""
    big = SLACK_PENALTY_EUR
    big_a, big_b = bounds
    m.mup = pyo.Var(m.R, bounds=(0.0, big), doc="K5 line multiplier")
    m.c_mup = pyo.Constraint(m.R, rule=lambda _m, r: m.mup[r] <= big * m.act[r])
    m.sigma = pyo.Var(domain=pyo.Binary, doc="an hour with unresolved overload (K5c)")
    # σ = 1 exactly where overload stays (within _SHORT_MW): K5c's relaxed rows elsewhere
    # would let the multipliers, and the bound, run to M in every hour
    m.c_sigma = pyo.Constraint(m.R, rule=lambda _m, r: m.s[r] <= float(s_max[r]) * m.sigma)
    m.c_sigma_s = pyo.Constraint(expr=m.sigma <= pyo.quicksum(m.s[r] for r in m.R) / _SHORT_MW)
    m.w = pyo.Var(m.B, bounds=(0.0, 1.0), doc="accepted in a short hour: taken in full")
    m.c_w_sigma = pyo.Constraint(m.B, rule=lambda _m, *i: m.w[i] <= m.sigma)
    m.c_w_u = pyo.Constraint(m.B, rule=lambda _m, *i: m.w[i] <= 1 - m.u[i])
    m.c_price_lo = pyo.Constraint(
        m.B, rule=lambda _m, e, k: lam(m.mup, e) >= price(e, k) - big_a[e, k] * m.u[e, k]
    )
    m.c_price_hi = pyo.Constraint(
        m.B,
        rule=lambda _m, e, k: lam(m.mup, e) <= price(e, k) + big_b[e, k] * (m.v[e, k] + m.w[e, k]),
    )
    # (N6a) K5's least payment is a vertex: its positive multipliers are fixed by as many
    # tight block rows, linearly independent on them — so each can be matched to a tight row
    # of its own, of a DSO with relief on it (a nonzero term of the determinant). Without it
    # a multiplier held by no partial block (every block of a short hour is taken in full)
    # would be free up to M, and the bound useless there
    m.tau = pyo.Var(m.B, domain=pyo.Binary, doc="the block's row is tight: λ^P_e = π̃")
    m.c_tau_lo = pyo.Constraint(
        m.B, rule=lambda _m, e, k: lam(m.mup, e) - price(e, k) <= big_b[e, k] * (1 - m.tau[e, k])
    )
    m.c_tau_hi = pyo.Constraint(
        m.B, rule=lambda _m, e, k: price(e, k) - lam(m.mup, e) <= big_a[e, k] * (1 - m.tau[e, k])
    )
    m.kappa = pyo.Var(m.R, domain=pyo.Binary, doc="the row's K5 multiplier is positive")
    m.c_kappa = pyo.Constraint(m.R, rule=lambda _m, r: m.mup[r] <= big * m.kappa[r])
    # a fractional matching suffices: the bipartite matching polytope is integral
    pairs = [(r, e, k) for r in m.R for e, k in m.B if a[r, e] != 0.0]
    m.x = pyo.Var(pairs, bounds=(0.0, 1.0), doc="row r matched to the block's tight row")
    by_row: dict[int, list[Any]] = {r: [] for r in m.R}
    by_block: dict[tuple[int, int], list[Any]] = {i: [] for i in m.B}
    for r, e, k in pairs:
        by_row[r].append(m.x[r, e, k])
        by_block[e, k].append(m.x[r, e, k])
    m.c_match_row = pyo.Constraint(m.R, rule=lambda _m, r: pyo.quicksum(by_row[r]) >= m.kappa[r])
    m.c_match_block = pyo.Constraint(m.B, rule=lambda _m, *i: pyo.quicksum(by_block[i]) <= m.tau[i])
    m.OWN = pyo.Set(initialize=own, dimen=2, ordered=True)
    rent_max = {i: max(big_a[i], big_b[i]) for i in own}
    m.rho = pyo.Var(m.OWN, domain=pyo.NonNegativeReals, doc="rent per MW of an accepted block")
    m.c_rho = pyo.Constraint(
        m.OWN,
        rule=lambda _m, e, k: (
            m.rho[e, k] <= lam(m.mup, ld) - price(e, k) + rent_max[e, k] * m.u[e, k]
        ),
    )
    m.c_rho_u = pyo.Constraint(m.OWN, rule=lambda _m, *i: m.rho[i] <= rent_max[i] * (1 - m.u[i]))
    return pyo.quicksum(float(m.q[i].ub) * m.rho[i] for i in own)


def _add_last_block(
    m: pyo.ConcreteModel,
    own: list[tuple[int, int]],
    pi: dict[tuple[int, int], float],
    f_d: Any,
    f_bar: float,
) -> Any:
    """(N8b) the price of the leader's highest accepted block: ``h_k`` marks it (one, among
    the accepted blocks, when any is), ``r_k = h_k F_d``; the rent ``Σ_k π_k r_k − Σ_k π_k q_k``
    is what the uniform last-block price adds to the unmarked bid's cost."""
    m.OWN = pyo.Set(initialize=own, dimen=2, ordered=True)
    m.h = pyo.Var(m.OWN, domain=pyo.Binary, doc="the highest accepted own block")
    m.r = pyo.Var(m.OWN, domain=pyo.NonNegativeReals)
    m.c_h_one = pyo.Constraint(expr=pyo.quicksum(m.h[i] for i in own) <= 1)
    m.c_h_some = pyo.Constraint(
        m.OWN, rule=lambda _m, *i: pyo.quicksum(m.h[j] for j in own) >= 1 - m.u[i]
    )
    m.c_h_u = pyo.Constraint(m.OWN, rule=lambda _m, *i: m.h[i] <= 1 - m.u[i])
    m.c_r_h = pyo.Constraint(m.OWN, rule=lambda _m, *i: m.r[i] <= f_bar * m.h[i])
    m.c_r_f = pyo.Constraint(m.OWN, rule=lambda _m, *i: m.r[i] <= f_d)
    m.c_r_lo = pyo.Constraint(m.OWN, rule=lambda _m, *i: m.r[i] >= f_d - f_bar * (1 - m.h[i]))
    return pyo.quicksum(pi[i] * (m.r[i] - m.q[i]) for i in own)


def chosen_markup(m: pyo.ConcreteModel) -> int:
    """Index in the grid of the markup the solved model chose."""
    return int(max(m.J, key=lambda j: pyo.value(m.z[j])))
