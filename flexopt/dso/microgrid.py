"""The third level: microgrids inside a DSO's feeder (``models/microgrid.md`` G1–G9).

A microgrid is a DSO in miniature — its own radial network, its member prosumers, its own
loss allocation and coefficient problem — whose aggregated offer is one participant of its
DSO's local market, at the point of connection. The functions here build and evaluate; the
run (``flexopt.run.microgrids``) chooses the microgrid's factors with the run's coefficient
method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from flexopt.dso.clearing import clear
from flexopt.dso.context import DSOContext, Participation, feeder_net_load, prepare
from flexopt.dso.dcp import DCPProblem
from flexopt.dso.offer import DSOOffer
from flexopt.dso.settlement import DSODispatch, settle
from flexopt.grid import feeder_from_data
from flexopt.grid.loss_allocation import LossAllocationMethod
from flexopt.instance import DSOData, Instance, MicrogridData

__all__ = [
    "as_dso",
    "dispatch_microgrid",
    "dso_view",
    "fold_microgrids",
    "microgrid_requirement",
    "prepare_with_microgrids",
    "with_microgrid_offers",
]


def prepare_with_microgrids(
    inst: Instance,
    dso: DSOData,
    loss_method: LossAllocationMethod = "branch_current",
    participation: Participation = "all",
) -> DSOContext:
    """S4 of a DSO and of its microgrids (G1–G2): the DSO's view (:func:`dso_view`) gives
    the voltage at each point of connection; each microgrid is prepared on its own network
    with its root at the day's mean of that voltage (every member offers; its screening
    picks the factors it modifies); then the DSO on its view with the microgrids' internal
    losses at the day-ahead point drawn at their points of connection. Without microgrids,
    :func:`prepare`."""
    if not dso.microgrids:
        return prepare(inst, dso, loss_method, participation)
    view = dso_view(dso)
    feeder = feeder_from_data(view.feeder)
    vm = feeder.power_flow(*feeder_net_load(inst, view, feeder)).vm_pu  # [T, n_bus]
    buses = feeder.bus
    inner = tuple(
        prepare(inst, as_dso(g), loss_method, v_root_pu=float(vm[:, buses.get_loc(g.bus)].mean()))
        for g in dso.microgrids
    )
    p = np.zeros((inst.hours, len(buses)))
    q = np.zeros_like(p)
    for g, c in zip(dso.microgrids, inner, strict=True):
        pf = c.feeder.power_flow(c.p_mw, c.q_mvar)
        at = buses.get_loc(g.bus)
        p[:, at] += pf.loss_mw
        q[:, at] += pf.q_loss_mvar
    ctx = prepare(inst, view, loss_method, participation, extra_load=(p, q))
    return replace(ctx, microgrids=inner)


def as_dso(mg: MicrogridData) -> DSOData:
    """The microgrid as a DSO of one feeder copy: its network and its members (G1)."""
    return DSOData(
        id=mg.id,
        bus=mg.bus,
        feeder=mg.network,
        n_feeders=1,
        prosumers=mg.prosumers,
        baseline_mw=mg.baseline_mw,
    )


def dso_view(dso: DSOData) -> DSOData:
    """What the DSO's market sees of its feeder (G2): its own prosumers and every microgrid's
    members at the microgrid's point of connection, and the microgrid's loads there.

    The point of connection's peak load grows by the microgrid's internal peak loads (they
    follow the same profile); the members' baselines are subtracted there as the members'
    own rows. The internal losses at the day-ahead point are added by
    :func:`flexopt.dso.context.prepare` (they do not follow the profile). Returns a DSO
    without microgrids."""
    if not dso.microgrids:
        return dso
    branches = dso.feeder.branches.copy()
    for g in dso.microgrids:
        at = branches["to_bus"].to_numpy() == g.bus
        branches.loc[at, "p_mw"] += float(g.network.branches["p_mw"].sum())
        branches.loc[at, "q_mvar"] += float(g.network.branches["q_mvar"].sum())
    pros = pd.concat([dso.prosumers, *(g.prosumers.assign(bus=g.bus) for g in dso.microgrids)])
    base = pd.concat([dso.baseline_mw, *(g.baseline_mw for g in dso.microgrids)], axis=1)
    return replace(
        dso,
        feeder=replace(dso.feeder, branches=branches),
        prosumers=pros,
        baseline_mw=base,
        microgrids=(),
    )


def microgrid_requirement(problem: DCPProblem, members: pd.Index) -> tuple[pd.Series, pd.DataFrame]:
    """The microgrid's design point and capacity in its DSO's market (G3–G4).

    ``R_{g,t} = Σ_{i ∈ g} u_{i,t}(x⁰)``: what the DSO's local clearing (M4) takes from the
    microgrid's members at the DSO's design point ``R_{d,t} / n`` with the unmodified offers
    (per copy; 0 outside the design hours), and ``Ū_{i,t}`` of the members as the DSO's
    split (M3) gives it — the capacity the microgrid offers.

    Parameters
    ----------
    problem : DCPProblem
        The DSO's coefficient problem with the members' original offers.
    members : pandas.Index
        The microgrid's member ids (offering in the DSO's market).
    """
    pos = problem.ctx.members.index.get_indexer(members)
    req = pd.Series(0.0, index=problem.requirement_mw.index)
    if len(problem.hours) and problem.n:
        cl = clear(problem.a, problem.b, problem.u_max, problem.q)  # [T, n]
        req.loc[problem.hours] = cl.u_mw[:, pos].sum(axis=1)
    return req, problem.capacity_mw[members]


def with_microgrid_offers(ctx: DSOContext, offers: Sequence[DSOOffer]) -> DSOContext:
    """The DSO's context with each microgrid's members offering the microgrid's modified
    coefficients (G5): the microgrid's one offer ``C_g(Q) = min Σ a'_i u_i² + b'_i u_i``
    (M7) enters the DSO's market exactly, as its pieces at the point of connection."""
    if not offers:
        return ctx
    pros = ctx.dso.prosumers.copy()
    for o in offers:
        ids = o.u_max_mw.columns
        pros.loc[ids, "a_eur_per_mw2h"] = o.a_mod
        pros.loc[ids, "b_eur_per_mwh"] = o.b_mod
    return replace(ctx, dso=replace(ctx.dso, prosumers=pros))


def dispatch_microgrid(
    ctx: DSOContext,
    offer: DSOOffer,
    dso_dispatch: pd.DataFrame,
    n_feeders: int,
    loss_price_eur_per_mwh: float,
) -> DSODispatch:
    """S8 inside a microgrid (G7–G8): it delivers what its DSO dispatched from its pieces,
    split among its members by its own market, and passes the DSO's payment on.

    ``Q_{g,t} = Σ_{i ∈ g} u^DSO_{i,t}`` per copy; members dispatched by the local clearing of
    the microgrid's modified offers at ``Q_{g,t}`` (M4); revenue ``Π_{g,t} = Σ_{i ∈ g}
    pay^DSO_{i,t}``, passed on at its average price ``ρ_{g,t} = Π_{g,t} / (Q_{g,t} Δt)``:
    each member is paid ``max(ρ_{g,t} u_i, C_i(u_i)) Δt``; the microgrid keeps the value of
    the internal losses it avoids. Figures per copy (the microgrid is one network); the
    settlement's ``tso_payment_eur`` is the DSO's payment to the microgrid.
    """
    hours = offer.u_max_mw.index
    ids = offer.u_max_mw.columns
    rows = dso_dispatch[dso_dispatch["prosumer_id"].isin(ids)]
    by_hour = rows.groupby("hour")[["u_mw", "payment_eur"]].sum().reindex(hours, fill_value=0.0)
    q = by_hour["u_mw"].to_numpy()
    paid = by_hour["payment_eur"].to_numpy() / n_feeders  # per copy
    cl = clear(offer.a_mod, offer.b_mod, offer.u_max_mw.to_numpy(), q)
    dt = ctx.dt_h
    price = np.divide(paid, q * dt, out=np.zeros_like(paid), where=q * dt > 1e-12)
    return settle(
        ctx,
        ctx.members,
        offer.u_max_mw,
        cl.u_mw,
        price,
        pd.Series(q, index=hours),
        pd.Series(price, index=hours),
        loss_price_eur_per_mwh,
    )


def fold_microgrids(out: DSODispatch, inner: Sequence[DSODispatch]) -> DSODispatch:
    """The DSO's S8 with its microgrids' folded in (G9), DSO level (× ``n`` copies).

    ``losses``: ``microgrid_loss_mw_before/after`` (the microgrids' internal losses) are
    added to ``loss_mw_before/after``, so that the DSO's import and the relief from lower
    losses count them. ``settlement``: ``original_cost_eur`` becomes the cost of the energy
    delivered to the physical prosumers — the DSO's own and the microgrids' members — and
    ``microgrid_payment_eur`` (the DSO's payment to its microgrids, part of
    ``prosumer_payment_eur``), ``member_payment_eur``, ``microgrid_loss_saving_eur`` and
    ``microgrid_balance_eur`` are added; the DSO's own balance is unchanged.
    """
    if not inner:
        return out
    n = int(out.losses["n_feeders"].iloc[0])
    losses = out.losses.copy()
    for when in ("before", "after"):
        mg = n * np.sum([g.losses[f"loss_mw_{when}"].to_numpy() for g in inner], axis=0)
        losses[f"microgrid_loss_mw_{when}"] = mg
        losses[f"loss_mw_{when}"] = losses[f"loss_mw_{when}"] + mg
    st = out.settlement.copy()

    def total(col: str) -> np.ndarray:
        summed: np.ndarray = n * np.sum([g.settlement[col].to_numpy() for g in inner], axis=0)
        return summed

    pieces = out.dispatch[out.dispatch["prosumer_id"].isin({p for g in inner for p in _ids(g)})]
    piece_cost = (
        pieces.groupby("hour")["original_cost_eur"].sum().reindex(st["hour"], fill_value=0.0)
    )
    st["original_cost_eur"] = (
        st["original_cost_eur"] - piece_cost.to_numpy() + total("original_cost_eur")
    )
    st["microgrid_payment_eur"] = total("tso_payment_eur")
    st["member_payment_eur"] = total("prosumer_payment_eur")
    st["microgrid_loss_saving_eur"] = total("loss_saving_eur")
    st["microgrid_balance_eur"] = total("balance_eur")
    return replace(out, losses=losses, settlement=st, microgrids=tuple(inner))


def _ids(g: DSODispatch) -> set[str]:
    return set(g.dispatch["prosumer_id"])
