"""S8 on one DSO: dispatch of the accepted quantity, AC power flow after it, and the money
flows between TSO, DSO and prosumers (``models/local_market.md`` M11–M12)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flexopt.dso.clearing import clear
from flexopt.dso.context import DSOContext
from flexopt.dso.offer import DSOOffer

__all__ = ["DSODispatch", "dispatch", "loss_relief", "settle"]


@dataclass(frozen=True, eq=False)
class DSODispatch:
    """S8 results of one DSO (DSO-level quantities include all feeder copies)."""

    dispatch: pd.DataFrame  # long: hour, prosumer_id, u_mw (per copy), ...
    losses: pd.DataFrame  # per hour: loss before/after (feeder and DSO)
    settlement: pd.DataFrame  # per hour: money flows
    vm_before: np.ndarray  # [T, n_bus]
    vm_after: np.ndarray
    microgrids: tuple[DSODispatch, ...] = ()  # S8 inside each microgrid, per copy (G8)

    def loss_reduction_mw(self, hours: pd.Index) -> pd.Series:
        """``n (P^loss_before − P^loss_after)`` per hour of ``hours``: by how much the DSO's
        import at its interface falls because its feeders — and the microgrids in them, whose
        losses ``loss_mw_*`` include (``models/microgrid.md`` G9) — lose less (M11): relief
        the TSO gets on top of the accepted flexibility."""
        by_hour = self.losses.set_index("hour")
        saved = (by_hour["loss_mw_before"] - by_hour["loss_mw_after"]).reindex(hours)
        return saved.fillna(0.0)


def dispatch(
    ctx: DSOContext,
    offer: DSOOffer,
    accepted_mw: pd.Series,
    price_eur_per_mwh: pd.Series,
    loss_price_eur_per_mwh: float,
) -> DSODispatch:
    """S8: dispatch the accepted quantity with the modified offers, AC power flow after,
    settlement (M11–M12).

    Each copy supplies ``F_{d,t} / n``. The TSO pays the DSO ``π_{d,t} F_{d,t} Δt``; the DSO
    pays every prosumer ``max(λ'_t u_i, C_i(u_i)) Δt`` — the local uniform price of the
    modified offers, but never below its *original* cost (make-whole) — and keeps the value
    of the losses it avoids, ``π_loss ΔP_loss Δt``.
    """
    hours = offer.u_max_mw.index
    f = accepted_mw.reindex(hours, fill_value=0.0).to_numpy()
    cl = clear(offer.a_mod, offer.b_mod, offer.u_max_mw.to_numpy(), f / ctx.dso.n_feeders)
    return settle(
        ctx,
        ctx.members,
        offer.u_max_mw,
        cl.u_mw,
        cl.price,
        accepted_mw,
        price_eur_per_mwh,
        loss_price_eur_per_mwh,
    )


def settle(
    ctx: DSOContext,
    members: pd.DataFrame,
    u_max_mw: pd.DataFrame,
    u: np.ndarray,
    local_price: np.ndarray,
    accepted_mw: pd.Series,
    price_eur_per_mwh: pd.Series,
    loss_price_eur_per_mwh: float,
) -> DSODispatch:
    """AC power flow after a dispatch and the money flows (M11–M12).

    ``u`` (``[T_c, n]`` MW per copy, hours of ``u_max_mw``) is the extra discharge of the
    prosumers in ``members``; each is paid ``max(local_price · u, C_i(u)) Δt``. Used by
    :func:`dispatch` and by the centralized market, which dispatches every prosumer itself.
    """
    n = ctx.dso.n_feeders
    hours = u_max_mw.index
    f = accepted_mw.reindex(hours, fill_value=0.0).to_numpy()
    a, b = members["a_eur_per_mw2h"].to_numpy(), members["b_eur_per_mwh"].to_numpy()
    cost = (a * u * u + b * u) * ctx.dt_h
    pay = np.maximum(local_price[:, None] * u * ctx.dt_h, cost)
    pay = np.where(u > 1e-12, pay, 0.0)
    bus_pos = ctx.feeder.bus.get_indexer(members["bus"].to_numpy())

    p_after = ctx.p_mw.copy()
    rows = ctx.hours.get_indexer(hours)
    np.add.at(p_after, (rows[:, None], bus_pos[None, :]), -u)
    before = ctx.feeder.power_flow(ctx.p_mw, ctx.q_mvar)
    after = ctx.feeder.power_flow(p_after, ctx.q_mvar)

    dispatch_tab = pd.DataFrame(
        {
            "dso_id": ctx.dso.id,
            "hour": np.repeat(hours.to_numpy(), u.shape[1]),
            "prosumer_id": np.tile(members.index.to_numpy(), len(hours)),
            "bus": np.tile(members["bus"].to_numpy(), len(hours)),
            "u_max_mw": u_max_mw.to_numpy().ravel(),
            "u_mw": u.ravel(),
            "dso_u_mw": n * u.ravel(),
            "local_price_eur_per_mwh": np.repeat(local_price, u.shape[1]),
            "original_cost_eur": n * cost.ravel(),
            "payment_eur": n * pay.ravel(),
        }
    )
    losses = pd.DataFrame(
        {
            "dso_id": ctx.dso.id,
            "hour": ctx.hours.to_numpy(),
            "n_feeders": n,
            "feeder_loss_mw_before": before.loss_mw,
            "feeder_loss_mw_after": after.loss_mw,
            "loss_mw_before": n * before.loss_mw,
            "loss_mw_after": n * after.loss_mw,
            "vm_min_pu_before": before.vm_pu.min(axis=1),
            "vm_min_pu_after": after.vm_pu.min(axis=1),
        }
    )
    saved = (n * before.loss_mw - n * after.loss_mw)[rows]  # the columns of `losses`
    tso_price = price_eur_per_mwh.reindex(hours).to_numpy(dtype=float)
    tso_pay = np.where(np.isnan(tso_price), 0.0, tso_price) * f * ctx.dt_h
    prosumer_pay = n * pay.sum(axis=1)
    loss_saving = loss_price_eur_per_mwh * saved * ctx.dt_h
    settlement = pd.DataFrame(
        {
            "dso_id": ctx.dso.id,
            "hour": hours.to_numpy(),
            "accepted_mw": f,
            "served_mw": n * u.sum(axis=1),
            "tso_price_eur_per_mwh": tso_price,
            "tso_payment_eur": tso_pay,
            "prosumer_payment_eur": prosumer_pay,
            "original_cost_eur": n * cost.sum(axis=1),
            "loss_saving_eur": loss_saving,
            "balance_eur": tso_pay + loss_saving - prosumer_pay,
        }
    )
    return DSODispatch(dispatch_tab, losses, settlement, before.vm_pu, after.vm_pu)


def loss_relief(
    dispatch: Sequence[DSODispatch], dso_ids: Sequence[str], hours: pd.Index
) -> pd.DataFrame:
    """Hours × DSOs, the fall of every DSO's import from its lower feeder losses
    (:meth:`DSODispatch.loss_reduction_mw`; zeros where nothing was dispatched)."""
    if not dispatch:
        return pd.DataFrame(0.0, index=hours, columns=list(dso_ids))
    return pd.DataFrame(
        {d: r.loss_reduction_mw(hours) for d, r in zip(dso_ids, dispatch, strict=True)},
        index=hours,
    )
