"""S7 — level-1 TSO flexibility market (``models/tso_market.md`` K1–K5).

Only DSOs bid. The TSO sees each DSO's interface bus and its block bids — never a feeder or a
prosumer: :class:`DSOBid` is everything that crosses the TSO–DSO boundary, and this module
imports nothing from the DSO side.

    min  Σ_{d,t,k} Δt π_{d,t,k} q_{d,t,k} + M Δt Σ_{l,t} (s⁺_{l,t} + s⁻_{l,t})               (K1)
    s.t. Σ_k q_{d,t,k} − F_{d,t} = 0                                      [λ_{d,t} Δt]       (K1a)
         E f_{l,t} + Σ_d H_{t,l,b(d)} F_{d,t} ≤ F̄_{l,t} + s⁺_{l,t}        [μ⁺_{l,t}]         (K2)
         E f_{l,t} + Σ_d H_{t,l,b(d)} F_{d,t} ≥ −F̄_{l,t} − s⁻_{l,t}       [μ⁻_{l,t}]         (K3)
         0 ≤ q_{d,t,k} ≤ Q̄_{d,t,k},  F, s ≥ 0                                                (K4)

Accepted flexibility ``F_{d,t}``. Its price (K5): ``pricing="interface"`` — the dual of (K1a)
over Δt from the least-payment supporting multipliers (:func:`build_tso_pricing`,
``flexopt/market/pricing.py``), the marginal value of relief at the DSO's interface;
``pricing="last_block"`` — the price of the DSO's highest-priced accepted block.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from flexopt.market.interface import DSOBid
from flexopt.market.lines import add_line_limits, read_line_limits
from flexopt.market.pricing import MultiplierLP, build_supporting_prices

__all__ = [
    "DSOBid",
    "Pricing",
    "TSOMarketData",
    "TSOMarketResult",
    "build_tso_market",
    "build_tso_pricing",
    "market_result",
    "per_block",
    "read_tso_market",
    "sensitivity_at_dsos",
]

#: How S7 prices the accepted relief (K5).
Pricing = Literal["interface", "last_block"]
PRICING_RULES: tuple[str, ...] = ("interface", "last_block")

#: The columns of :attr:`TSOMarketResult.blocks`.
_BLOCK_COLUMNS = ("dso_id", "hour", "block", "offered_mw", "accepted_mw", "price_eur_per_mwh")
#: Penalty on unresolved overload, €/MWh per MW — far above any flexibility price.
SLACK_PENALTY_EUR = 1e5


@dataclass(frozen=True, eq=False)
class TSOMarketData:
    """TSO-side inputs: PLF mean flows and limits (hours × branches), the TSO's sensitivity of
    flows to a load reduction per bus (hour → branches × buses) and the DSO bids."""

    mean_flow_mw: pd.DataFrame
    limit_mw: pd.DataFrame
    sensitivity: Mapping[Hashable, pd.DataFrame]
    bids: tuple[DSOBid, ...]
    dt_h: float = 1.0


@dataclass(frozen=True, eq=False)
class TSOMarketResult:
    """Accepted flexibility and prices.

    ``accepted_mw`` (hours × DSOs), ``price_eur_per_mwh`` (hours × DSOs, NaN where nothing
    was accepted), ``blocks`` (long table of accepted blocks), ``line_price_eur_per_mwh``
    (hours × branches, the shadow price ``μ⁺ + μ⁻ ≥ 0`` of the limits), ``unresolved_mw``
    (hours × branches, slack).
    """

    accepted_mw: pd.DataFrame
    price_eur_per_mwh: pd.DataFrame
    blocks: pd.DataFrame
    line_price_eur_per_mwh: pd.DataFrame
    unresolved_mw: pd.DataFrame
    cost_eur: float


def build_tso_market(data: TSOMarketData) -> pyo.ConcreteModel:
    """Build the S7 LP (K1–K4): accepted blocks ``q``, the relief ``F`` at each interface
    (K1a, ``eq_interface``) and only the line limits that can bind (K6). Pure: never
    solves."""
    m = pyo.ConcreteModel(name="tso_market")
    m.T = pyo.Set(initialize=list(data.mean_flow_mw.index), ordered=True)
    m.L = pyo.Set(initialize=list(data.mean_flow_mw.columns), ordered=True)
    m.D = pyo.Set(initialize=[b.dso_id for b in data.bids], ordered=True)
    m.DTK = pyo.Set(
        initialize=[
            (b.dso_id, t, k) for b in data.bids for t in m.T for k in range(b.q_mw.shape[1])
        ],
        dimen=3,
        ordered=True,
    )
    m.dt_h = pyo.Param(initialize=float(data.dt_h))
    add_blocks(m, data)
    add_eq_interface(m, data)
    add_ineq_line_limits(m, data)
    price = per_block(data, m.T, "price_eur_per_mwh")
    m.obj = pyo.Objective(
        expr=m.dt_h * pyo.quicksum(price[i] * m.q[i] for i in m.DTK)
        + SLACK_PENALTY_EUR * m.dt_h * pyo.quicksum(m.s_up[i] + m.s_dn[i] for i in m.LT)
    )
    return m


def per_block(
    data: TSOMarketData, hours: Iterable[Hashable], table: str
) -> dict[tuple[str, Hashable, int], float]:
    """``(d, t, k) → `` a bid table's entry (``q_mw`` or ``price_eur_per_mwh``), 0 in an hour
    the bid leaves out: each table read once, as floats."""
    hours = list(hours)
    out: dict[tuple[str, Hashable, int], float] = {}
    for b in data.bids:
        frame: pd.DataFrame = getattr(b, table)
        values = frame.to_numpy(dtype=float).tolist()
        row = {h: i for i, h in enumerate(frame.index.tolist())}  # a bid's hours are unique
        zeros = [0.0] * frame.shape[1]
        for t in hours:
            r = row.get(t, -1)
            for k, v in enumerate(values[r] if r >= 0 else zeros):
                out[(b.dso_id, t, k)] = v
    return out


def sensitivity_at_dsos(data: TSOMarketData) -> np.ndarray:
    """``H[t, l, d]``: flow change on ``l`` per MW of load reduction at DSO ``d``'s bus."""
    buses = [b.bus for b in data.bids]
    lines = data.mean_flow_mw.columns
    return np.stack(
        [data.sensitivity[t].loc[lines, buses].to_numpy() for t in data.mean_flow_mw.index]
    )


def add_blocks(m: pyo.ConcreteModel, data: TSOMarketData) -> None:
    """Accepted share of each block (K4)."""
    size = {i: max(v, 0.0) for i, v in per_block(data, m.T, "q_mw").items()}
    m.q = pyo.Var(m.DTK, bounds=lambda _m, d, t, k: (0.0, size[(d, t, k)]), doc="accepted, MW")


def add_eq_interface(m: pyo.ConcreteModel, data: TSOMarketData) -> None:
    """The relief at each interface, ``Σ_k q_{d,t,k} − F_{d,t} = 0`` (K1a): its dual is the
    marginal value of relief there (€/MWh · Δt, positive)."""
    n_blocks = {b.dso_id: b.q_mw.shape[1] for b in data.bids}
    m.F = pyo.Var(m.D, m.T, domain=pyo.NonNegativeReals, doc="relief at the interface, MW")
    m.eq_interface = pyo.Constraint(
        m.D,
        m.T,
        rule=lambda _m, d, t: (
            pyo.quicksum(m.q[d, t, k] for k in range(n_blocks[d])) - m.F[d, t] == 0
        ),
    )


def add_ineq_line_limits(m: pyo.ConcreteModel, data: TSOMarketData) -> None:
    """Flow limits after the accepted load reductions (K2, K3) on the line-hours that can
    bind (K6), with the unresolved-overload slacks."""
    hours, dsos = list(m.T), list(m.D)
    n_blocks = [b.q_mw.shape[1] for b in data.bids]
    relief = {(i, t): m.F[d, t] for i, d in enumerate(dsos) for t in hours}
    f_max = np.array(
        [
            [sum(m.q[d, t, k].ub for k in range(n_blocks[i])) for i, d in enumerate(dsos)]
            for t in hours
        ]
    ).reshape(len(hours), len(dsos))
    add_line_limits(
        m,
        hours,
        list(m.L),
        data.mean_flow_mw.to_numpy(),
        data.limit_mw.reindex_like(data.mean_flow_mw).to_numpy(),
        sensitivity_at_dsos(data),
        f_max,
        relief,
    )


def build_tso_pricing(m: pyo.ConcreteModel, tol: float = 1e-7) -> MultiplierLP:
    """The least-payment supporting multipliers of the solved S7 LP (K5a–K5c): minimize
    ``Σ_{d,t} λ_{d,t} F_{d,t} Δt`` (weights ``F`` on the duals ``λ Δt`` of K1a) with the
    unresolved-overload slacks held at their solved values and, in an hour with unresolved
    overload (a slack above ``tol``), every accepted block counted as taken in full. A
    builder: solve the returned :attr:`~flexopt.market.pricing.MultiplierLP.model` and read
    it with :func:`~flexopt.market.pricing.read_supporting_duals`."""
    weights = {m.eq_interface[d, t]: max(float(pyo.value(m.F[d, t])), 0.0) for d, t in m.F}
    slacks = [*m.s_up.values(), *m.s_dn.values()]
    short = {t for (l, t) in m.LT if pyo.value(m.s_up[l, t]) + pyo.value(m.s_dn[l, t]) > tol}
    taken = [m.q[d, t, k] for (d, t, k) in m.DTK if t in short]
    return build_supporting_prices(m, weights, fixed=slacks, saturated=taken)


def read_tso_market(
    m: pyo.ConcreteModel,
    data: TSOMarketData,
    duals: Mapping[Any, float],
    objective: float,
    pricing: Pricing = "interface",
) -> TSOMarketResult:
    """Accepted quantities, uniform DSO prices (K5), line shadow prices, unresolved overload.

    Parameters
    ----------
    m : ConcreteModel
        The solved S7 LP (:func:`build_tso_market`).
    data : TSOMarketData
    duals : mapping
        Constraint → ``∂objective/∂rhs``: with ``pricing="interface"`` the least-payment
        supporting multipliers (:func:`build_tso_pricing`); with ``"last_block"`` the
        solver's duals.
    objective : float
        The LP's optimum (K1), reported as ``cost_eur``.
    pricing : {"interface", "last_block"}
        ``"interface"``: ``λ_{d,t}`` = dual of (K1a) / Δt, NaN where nothing was accepted.
        ``"last_block"``: the price of the DSO's highest-priced accepted block.
        Line prices come from ``duals`` either way.
    """
    hours, dsos, lines = list(m.T), list(m.D), list(m.L)
    dt = float(pyo.value(m.dt_h))
    blocks = list(m.DTK)
    size = [float(m.q[i].ub or 0.0) for i in blocks]
    taken = [max(float(pyo.value(m.q[i])), 0.0) for i in blocks]
    lam = [[duals.get(m.eq_interface[d, t], np.nan) / dt for d in dsos] for t in hours]
    limits = read_line_limits(m, hours, lines, duals, dt)
    return market_result(
        data, (hours, dsos, lines), blocks, size, taken, lam, limits, objective, pricing
    )


def market_result(
    data: TSOMarketData,
    axes: tuple[list[Hashable], list[str], list[Hashable]],
    blocks: Sequence[tuple[str, Hashable, int]],
    size_mw: Sequence[float] | np.ndarray,
    accepted_mw: Sequence[float] | np.ndarray,
    interface_dual: Any,
    limits: tuple[np.ndarray, np.ndarray],
    objective: float,
    pricing: Pricing = "interface",
) -> TSOMarketResult:
    """The result of a solved S7 LP, however it was built (Pyomo or arrays).

    Parameters
    ----------
    data : TSOMarketData
    axes : (hours, dsos, lines)
    blocks : sequence of (dso_id, hour, k)
        Every block, with its size, the accepted share (``≥ 0``) in ``size_mw``,
        ``accepted_mw``.
    interface_dual : array-like
        ``[T, D]`` the dual of (K1a) over ``Δt`` (``λ_{d,t}``, NaN where none was reported).
    limits : (ndarray, ndarray)
        ``[T, L]`` line shadow prices and unresolved overload (:func:`read_line_limits`).
    objective, pricing
        As in :func:`read_tso_market`.
    """
    if pricing not in PRICING_RULES:
        raise ValueError(f"pricing must be one of {PRICING_RULES}, not {pricing!r}")
    hours, dsos, lines = axes
    price_of = per_block(data, hours, "price_eur_per_mwh")
    rows = [
        (d, t, k + 1, s, q, price_of[d, t, k])
        for (d, t, k), s, q in zip(blocks, list(size_mw), list(accepted_mw), strict=True)
    ]
    blocks_df = pd.DataFrame(rows, columns=list(_BLOCK_COLUMNS))
    taken = blocks_df[blocks_df["accepted_mw"] > 1e-7]
    accepted = blocks_df.pivot_table(
        index="hour", columns="dso_id", values="accepted_mw", aggfunc="sum"
    )
    accepted = accepted.reindex(index=hours, columns=dsos, fill_value=0.0).where(
        lambda x: x > 1e-7, 0.0
    )
    if pricing == "last_block":
        price = taken.pivot_table(
            index="hour", columns="dso_id", values="price_eur_per_mwh", aggfunc="max"
        ).reindex(index=hours, columns=dsos)
    else:
        price = pd.DataFrame(interface_dual, index=hours, columns=dsos, dtype=float)
        # never below an accepted block's price: the multiplier LP's tolerance could undercut
        # it by ~1e-8 €/MWh, and a DSO whose floor binds exactly would then settle at −1e-7 €
        floor = taken.pivot_table(
            index="hour", columns="dso_id", values="price_eur_per_mwh", aggfunc="max"
        ).reindex(index=hours, columns=dsos)
        price = pd.DataFrame(
            np.fmax(price.where(accepted > 0.0).to_numpy(), floor.to_numpy()),
            index=price.index,
            columns=price.columns,
        ).where(accepted > 0.0)
    mu, slack = limits
    return TSOMarketResult(
        accepted_mw=accepted,
        price_eur_per_mwh=price,
        blocks=blocks_df,
        line_price_eur_per_mwh=pd.DataFrame(mu, index=hours, columns=lines),
        unresolved_mw=pd.DataFrame(slack, index=hours, columns=lines),
        cost_eur=float(objective),
    )
