"""The microgrids' level of a DSO's stages (``models/microgrid.md``): each microgrid's offer
made by the run's coefficient method on its own coefficient problem before its DSO's (S5 of
the third level), and its dispatch after its DSO's (S8); the tables and summary of each
microgrid."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flexopt.dso.context import DSOContext
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.dso.microgrid import dispatch_microgrid, microgrid_requirement
from flexopt.dso.offer import DSOOffer, build_offer
from flexopt.dso.settlement import DSODispatch
from flexopt.methods import CoefficientMethod

__all__ = ["microgrid_dispatch", "microgrid_offers", "microgrid_summary", "microgrid_tables"]


def microgrid_offers(
    ctx: DSOContext,
    requirement_mw: pd.Series,
    method: CoefficientMethod,
    config: Any,
    dcp: DCPOptions,
    loss_price_eur_per_mwh: float,
    blocks: int,
    seed: tuple[int, int],
) -> tuple[DSOOffer, ...]:
    """S5 of every microgrid of one DSO (G3–G5): its design point and capacity in the DSO's
    market, then ``method`` on its coefficient problem, then its offer.

    A microgrid whose members do not offer in the DSO's market (``participation =
    "screened"`` and its point of connection not screened) makes no offer. Microgrid ``j``
    draws from ``numpy.random.default_rng([*seed, j + 1])``: its DSO's stream is untouched.
    """
    if not ctx.microgrids:
        return ()
    dso_problem = DCPProblem(ctx, requirement_mw, loss_price_eur_per_mwh, dcp, blocks)
    offers = []
    for j, inner in enumerate(ctx.microgrids):
        members = inner.members.index
        if not members.isin(ctx.members.index).all():
            continue
        req, capacity = microgrid_requirement(dso_problem, members)
        problem = DCPProblem(inner, req, loss_price_eur_per_mwh, dcp, blocks, capacity)
        rng = np.random.default_rng([*seed, j + 1])
        offers.append(build_offer(problem, method.name, method.modify(problem, config, rng)))
    return tuple(offers)


def microgrid_dispatch(
    ctx: DSOContext, offer: DSOOffer, dso: DSODispatch, loss_price_eur_per_mwh: float
) -> tuple[DSODispatch, ...]:
    """S8 of every microgrid that made an offer (G7–G8), after its DSO's dispatch."""
    inner = {c.dso.id: c for c in ctx.microgrids}
    return tuple(
        dispatch_microgrid(
            inner[o.dso_id], o, dso.dispatch, ctx.dso.n_feeders, loss_price_eur_per_mwh
        )
        for o in offer.microgrids
    )


def microgrid_tables(
    dso_ids: list[str], offers: list[DSOOffer], dispatch: list[DSODispatch]
) -> dict[str, pd.DataFrame]:
    """``microgrids`` (one row per microgrid and congested hour: what it delivered to its
    DSO, what it was paid and paid its members, its internal losses, its balance; per
    copy of the DSO's feeder) and ``microgrid_dispatch`` (its members' dispatch); empty
    dict without microgrids."""
    settle, members = [], []
    if not dispatch:
        return {}
    for d, o, r in zip(dso_ids, offers, dispatch, strict=True):
        for k, g in enumerate(o.microgrids):
            own = r.microgrids[k]
            s = own.settlement.rename(
                columns={
                    "dso_id": "microgrid_id",
                    "tso_payment_eur": "dso_payment_eur",
                    "tso_price_eur_per_mwh": "dso_price_eur_per_mwh",
                    "accepted_mw": "delivered_mw",
                }
            ).drop(columns=["served_mw"])
            losses = own.losses.set_index("hour")[["loss_mw_before", "loss_mw_after"]]
            s = s.join(losses, on="hour")
            s.insert(0, "dso_id", d)
            s.insert(3, "design_mw", g.design_q_mw.reindex(s["hour"]).to_numpy())
            settle.append(s)
            m = own.dispatch.rename(columns={"dso_id": "microgrid_id"}).drop(columns=["dso_u_mw"])
            m.insert(0, "dso_id", d)
            members.append(m)
    if not settle:
        return {}
    return {
        "microgrids": pd.concat(settle, ignore_index=True),
        "microgrid_dispatch": pd.concat(members, ignore_index=True),
    }


def microgrid_summary(
    dso_ids: list[str], offers: list[DSOOffer], dispatch: list[DSODispatch], dt_h: float
) -> dict[str, dict[str, Any]]:
    """Per microgrid: its DSO, members, its coefficient problem's score (``dcp``), and —
    after a dispatch — energy delivered, money in and out, internal losses avoided (per
    copy of its DSO's feeder)."""
    out: dict[str, dict[str, Any]] = {}
    for k, (d, o) in enumerate(zip(dso_ids, offers, strict=True)):
        for j, g in enumerate(o.microgrids):
            entry: dict[str, Any] = {
                "dso_id": d,
                "members": len(g.u_max_mw.columns),
                "dcp": g.summary(),
            }
            if dispatch:
                st = dispatch[k].microgrids[j].settlement
                lo = dispatch[k].microgrids[j].losses
                entry.update(
                    delivered_mwh=float(st["accepted_mw"].sum() * dt_h),
                    dso_payment_eur=float(st["tso_payment_eur"].sum()),
                    member_payment_eur=float(st["prosumer_payment_eur"].sum()),
                    loss_saving_eur=float(st["loss_saving_eur"].sum()),
                    balance_eur=float(st["balance_eur"].sum()),
                    internal_loss_saved_mwh=float(
                        (lo["loss_mw_before"] - lo["loss_mw_after"]).sum() * dt_h
                    ),
                )
            out[g.dso_id] = entry
    return out
