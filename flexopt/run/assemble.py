"""Tables and the summary of a market run, assembled from its typed outcome.

Result tables carry unit-suffixed columns (an id, a count or a flag otherwise); a table's
index is either a default range (dropped when saved) or named (``hour``, ``prosumer_id``,
``dso_id``: saved as leading columns). The summary holds JSON-ready headline figures. Every
column and key is in the data dictionary, ``docs/tables.md``. Figures shared by both frameworks
come from the same code; each framework adds what only it has (bids and the requirement for
the bilevel market, the common model's own figures for the centralized one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flexopt.dso.context import DSOContext
from flexopt.dso.settlement import DSODispatch
from flexopt.market.centralized import CentralizedData, dispatch_cost
from flexopt.outcome import BilevelOutcome, CentralizedOutcome, MarketOutcome
from flexopt.run.centralized import dispatch_by_dso
from flexopt.run.competition_report import competition_summary, competition_table
from flexopt.run.microgrids import microgrid_summary, microgrid_tables
from flexopt.run.options import MarketOptions

__all__ = ["summary", "tables"]

_SETTLEMENT_COLUMNS = [
    "dso_id",
    "tso_payment_eur",
    "prosumer_payment_eur",
    "original_cost_eur",
    "loss_saving_eur",
    "balance_eur",
    "accepted_mw",
]


def tables(o: MarketOutcome) -> dict[str, pd.DataFrame]:
    """Every result table of a run (one CSV each in ``MarketResult.save``)."""
    da = o.day_ahead
    price = da.price_eur_per_mwh.rename("price_eur_per_mwh").to_frame()
    cong = o.congestion_before.merge(
        o.congestion_after[["hour", "branch", "mean_mw", "overload_mw", "congested"]],
        on=["hour", "branch"],
        suffixes=("", "_after"),
    ).rename(columns={"prob_overload": "overload_prob_pu"})
    dispatch_mw = da.p_mw.rename(columns=lambda g: f"{g}_mw")
    dispatch_mw.index.name = "hour"
    out = {
        "day_ahead": dispatch_mw.join(price),
        "congestion": cong,
        "participants": pd.concat([c.participants for c in o.contexts]).rename(
            columns={"loss_share": "loss_share_pu"}
        ),
    }
    if isinstance(o, BilevelOutcome):
        out.update(_bilevel_tables(o))
        if o.competition is not None:
            out["competition"] = competition_table(o.competition)
        ids = [c.dso.id for c in o.contexts]
        out.update(microgrid_tables(ids, list(o.offers), list(o.dispatch)))
    out["losses"] = _losses(o)
    if o.dispatch:
        out["welfare"] = welfare_table(o)
    accepted, price_dso, line_price = o.accepted_mw, o.price_eur_per_mwh, o.line_price_eur_per_mwh
    if accepted is not None and price_dso is not None and line_price is not None:
        if isinstance(o, BilevelOutcome) and o.tso is not None:
            out["tso_clearing"] = o.tso.blocks
        out["tso_prices"] = (
            pd.concat({"accepted_mw": accepted, "price_eur_per_mwh": price_dso}, axis=1)
            .stack(future_stack=True)
            .reset_index()
            .rename(columns={"level_0": "hour", "level_1": "dso_id"})
        )
        out["line_prices"] = (
            line_price.stack()
            .rename("price_eur_per_mwh")
            .reset_index()
            .rename(columns={"level_0": "hour", "level_1": "branch"})
        )
        out["dispatch"] = pd.concat([r.dispatch for r in o.dispatch], ignore_index=True)
        out["settlement"] = _concat([r.settlement for r in o.dispatch])
        if isinstance(o, BilevelOutcome) and len(o.unresolved_requirement_mw.columns):
            out["unresolved_requirement"] = (
                o.unresolved_requirement_mw.stack()
                .rename("unresolved_mw")
                .rename_axis(["hour", "branch"])
                .reset_index()
            )
    return out


def _bilevel_tables(o: BilevelOutcome) -> dict[str, pd.DataFrame]:
    """The requirement with the declared capacity (S3), offers (S5) and block bids (S6)."""
    req = o.requirement_mw.stack().rename("requirement_mw").to_frame()
    req["capacity_mw"] = o.capacity_mw.stack()
    req.index.names = ["hour", "dso_id"]
    offer_rows = []
    for c, off in zip(o.contexts, o.offers, strict=False):
        mem = c.members
        offer_rows.append(
            pd.DataFrame(
                {
                    "dso_id": c.dso.id,
                    "prosumer_id": mem.index,
                    "bus": mem["bus"].to_numpy(),
                    "a_eur_per_mw2h": mem["a_eur_per_mw2h"].to_numpy(),
                    "b_eur_per_mwh": mem["b_eur_per_mwh"].to_numpy(),
                    "alpha_pu": off.factors.alpha,
                    "beta_pu": off.factors.beta,
                    "a_mod_eur_per_mw2h": off.a_mod,
                    "b_mod_eur_per_mwh": off.b_mod,
                }
            )
        )
    bid_rows = [
        pd.DataFrame(
            {
                "dso_id": off.bid.dso_id,
                "hour": np.repeat(off.bid.q_mw.index.to_numpy(), off.bid.q_mw.shape[1]),
                "block": np.tile(off.bid.q_mw.columns.to_numpy(), len(off.bid.q_mw)),
                "q_mw": off.bid.q_mw.to_numpy().ravel(),
                "price_eur_per_mwh": off.bid.price_eur_per_mwh.to_numpy().ravel(),
            }
        )
        for off in o.offers
    ]
    return {
        "requirement": req.reset_index(),
        "offers": pd.concat(offer_rows, ignore_index=True) if offer_rows else pd.DataFrame(),
        "bids": pd.concat(bid_rows, ignore_index=True) if bid_rows else pd.DataFrame(),
    }


def welfare_table(o: MarketOutcome) -> pd.DataFrame:
    """Who gains what, per DSO (``models/local_market.md`` M13): the TSO's payment splits
    into the DSO's balance, the prosumers' surplus and the social cost,
    ``tso_payment = dso_balance + prosumer_surplus + social_cost`` with
    ``social_cost = original cost + loss value`` and ``loss_value = π_loss ΔP^loss Δt`` the
    value of the feeder-loss change (negative when losses fall)."""
    settle = pd.concat([r.settlement for r in o.dispatch]).groupby("dso_id", sort=False).sum()
    paid, saved = settle["prosumer_payment_eur"], settle["loss_saving_eur"]
    grids = "microgrid_balance_eur" in settle  # models/microgrid.md G9
    if grids:  # the prosumers are the DSOs' own and the microgrids' members
        settle = settle.fillna(0.0)
        paid = paid - settle["microgrid_payment_eur"] + settle["member_payment_eur"]
        saved = saved + settle["microgrid_loss_saving_eur"]
    tab = pd.DataFrame(
        {
            "tso_payment_eur": settle["tso_payment_eur"],
            "dso_balance_eur": settle["balance_eur"],
            "prosumer_surplus_eur": paid - settle["original_cost_eur"],
            "original_cost_eur": settle["original_cost_eur"],
            "loss_value_eur": -saved,
        }
    )
    if grids:
        tab.insert(2, "microgrid_balance_eur", settle["microgrid_balance_eur"])
    tab["social_cost_eur"] = tab["original_cost_eur"] + tab["loss_value_eur"]
    tab.index.name = "dso_id"
    return tab.reindex([c.dso.id for c in o.contexts]).fillna(0.0)


_WELFARE = (
    "tso_payment_eur",
    "dso_balance_eur",
    "prosumer_surplus_eur",
    "loss_value_eur",
    "social_cost_eur",
)
#: With microgrids, their balance too (in this order).
_WELFARE_ALL = (*_WELFARE[:2], "microgrid_balance_eur", *_WELFARE[2:])


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """DSOs' tables one under the other; a DSO without microgrids has none of their
    columns, which read 0 for it."""
    out = pd.concat(frames, ignore_index=True)
    grid_cols = [c for c in out.columns if c.startswith(("microgrid_", "member_"))]
    out[grid_cols] = out[grid_cols].fillna(0.0)
    return out


def _losses(o: MarketOutcome) -> pd.DataFrame:
    if o.dispatch:
        return _concat([r.losses for r in o.dispatch])
    return pd.concat([_losses_no_market(c) for c in o.contexts], ignore_index=True)


def _losses_no_market(c: DSOContext) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dso_id": c.dso.id,
            "hour": c.hours.to_numpy(),
            "n_feeders": c.dso.n_feeders,
            "loss_mw_before": c.dso.n_feeders * c.loss_mw,
            "loss_mw_after": c.dso.n_feeders * c.loss_mw,
        }
    )


def _r(x: float, nd: int = 9) -> float:
    return round(float(x), nd)


def summary(o: MarketOutcome, opt: MarketOptions, timings: dict[str, float]) -> dict[str, Any]:
    """Headline figures of a run (JSON-ready; ``clearing_time_s`` is the only part that
    changes between identical runs)."""
    inst = o.instance
    dt = inst.dt_h
    losses = _losses(o)
    settle = (
        pd.concat([r.settlement for r in o.dispatch])
        if o.dispatch
        else pd.DataFrame(columns=_SETTLEMENT_COLUMNS)
    )
    lpe = inst.market.loss_price_eur_per_mwh
    loss_before = losses.groupby("dso_id")["loss_mw_before"].sum() * dt
    loss_after = losses.groupby("dso_id")["loss_mw_after"].sum() * dt
    accepted = o.accepted_mw
    per_dso = {}
    for c in o.contexts:
        d = c.dso.id
        s = settle[settle["dso_id"] == d]
        per_dso[d] = {
            "accepted_mwh": _r(accepted[d].sum() * dt) if accepted is not None else 0.0,
            "losses_mwh_before": _r(loss_before[d]),
            "losses_mwh_after": _r(loss_after[d]),
            "tso_payment_eur": _r(s["tso_payment_eur"].sum(), 6),
            "prosumer_payment_eur": _r(s["prosumer_payment_eur"].sum(), 6),
            "balance_eur": _r(s["balance_eur"].sum(), 6),
        }
    before = o.congestion_before[o.congestion_before["congested"]]
    after = o.congestion_after[o.congestion_after["congested"]]
    out: dict[str, Any] = {
        "instance": inst.name,
        "method": opt.method,
        "plf_method": opt.plf_method,
        "seed": opt.seed,
        "day_ahead_cost_eur": _r(o.day_ahead.cost_eur, 6),
        "congested_line_hours_before": len(before),
        "congested_lines_before": sorted(before["branch"].unique().tolist()),
        "congested_hours": sorted(int(h) for h in before["hour"].unique()),
        "overload_mw_before": _r(before["overload_mw"].sum(), 6),
        "congested_line_hours_after": len(after),
        "overload_mw_after": _r(after["overload_mw"].sum(), 6),
        "flex_accepted_mwh": _r(accepted.to_numpy().sum() * dt, 6) if accepted is not None else 0.0,
        "tso_cost_eur": _r(settle["tso_payment_eur"].sum(), 6),
        "dso_losses_mwh_before": _r(loss_before.sum()),
        "dso_losses_mwh_after": _r(loss_after.sum()),
        "dso_balance_eur": _r(settle["balance_eur"].sum(), 6),
        "flex_original_cost_eur": _r(settle["original_cost_eur"].sum(), 6),
        "social_cost_eur": _r(settle["original_cost_eur"].sum() + lpe * loss_after.sum(), 6),
        "dso": per_dso,
        "clearing_time_s": {k: _r(v, 6) for k, v in timings.items()},
    }
    # the relief the TSO got at the interfaces: accepted flexibility and lower feeder losses
    relief = o.loss_relief_mw
    out["relief_losses_mwh"] = _r(relief.to_numpy().sum() * dt, 9)
    for c in o.contexts:
        d = c.dso.id
        out["dso"][d]["relief_losses_mwh"] = _r(relief[d].sum() * dt, 9) if d in relief else 0.0
    welfare = welfare_table(o) if o.dispatch else None
    keys = [k for k in _WELFARE_ALL if k in _WELFARE or (welfare is not None and k in welfare)]
    out["welfare"] = {k: _r(welfare[k].sum(), 6) if welfare is not None else 0.0 for k in keys}
    for c in o.contexts:
        d = c.dso.id
        out["dso"][d]["welfare"] = {
            k: _r(welfare.loc[d, k], 6) if welfare is not None else 0.0 for k in keys
        }
    # the common market's view of the congested hours, and the numbers crossing the boundary
    view, info = _add_bilevel(out, o) if isinstance(o, BilevelOutcome) else _add_centralized(out, o)
    out["information_exchanged_floats"] = info
    out["social_cost_lindistflow_eur"] = (
        0.0 if view is None else _lindistflow_cost(view, o.dispatch)
    )
    return out


def _add_bilevel(out: dict[str, Any], o: BilevelOutcome) -> tuple[CentralizedData | None, int]:
    """Requirement, participants after screening and each DSO's coefficient problem; returns
    the common market's view and the numbers crossing the TSO–DSO boundary (Z11): block bids,
    declared capacity, requirement, accepted quantities and prices per hour, and the declared
    energy."""
    dt = o.instance.dt_h
    out["flex_requested_mwh"] = _r(o.requirement_mw.to_numpy().sum() * dt, 6)
    if o.competition is not None:
        out["competition"] = competition_summary(o.competition, dt)
    if any(off.microgrids for off in o.offers):
        ids = [c.dso.id for c in o.contexts]
        out["microgrids"] = microgrid_summary(ids, list(o.offers), list(o.dispatch), dt)
    offers = {off.dso_id: off for off in o.offers}
    for c in o.contexts:
        d = out["dso"][c.dso.id]
        d["participants"] = int(c.participants["offers"].sum())
        d["screened"] = int(c.participants["screened"].sum())
        d["requested_mwh"] = (
            _r(o.requirement_mw[c.dso.id].sum() * dt) if c.dso.id in o.requirement_mw else 0.0
        )
        if c.dso.id in offers:
            d["dcp"] = {
                k: (_r(v, 9) if isinstance(v, float) else v)
                for k, v in offers[c.dso.id].summary().items()
            }
    view = o.common_view
    if view is None:
        return None, 0
    T = len(view.hours)
    return view, int(sum(2 * off.bid.q_mw.size + 4 * T + 1 for off in o.offers))


def _add_centralized(
    out: dict[str, Any], o: CentralizedOutcome
) -> tuple[CentralizedData | None, int]:
    """The common market screens no one and has no requirement stage (S3); returns what it
    saw and the numbers crossing the boundary (Z11): every prosumer's offer and flexibility,
    the feeders and their loads, and the dispatch sent back."""
    out["central_model"] = o.central_model
    out["flex_requested_mwh"] = None
    for c in o.contexts:
        out["dso"][c.dso.id]["participants"] = len(c.dso.prosumers)
        out["dso"][c.dso.id]["requested_mwh"] = None
    data = o.data
    if data is None:
        return None, 0
    T = len(data.hours)
    return data, int(data.information_floats() + T * sum(len(a.a) for a in data.areas))


def _lindistflow_cost(view: CentralizedData, dispatch: tuple[DSODispatch, ...]) -> float:
    """The dispatch scored on the centralized model's own objective (Z1 without slack,
    congested hours) — the first-best comparison."""
    if not dispatch:
        return 0.0
    cost = dispatch_cost(view, dispatch_by_dso(view, dispatch))
    return _r(cost["social_cost_eur"], 6)
