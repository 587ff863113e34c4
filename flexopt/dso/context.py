"""One DSO at the day-ahead point: its feeder, net load, losses and participants (S4,
``models/loss_allocation.md`` L1–L5), and the capacity it declares to the TSO (M10).

Who takes part (``models/local_market.md``, "Participation"): with ``participation="all"``
(default) every prosumer offers in its DSO's local market, and the loss screening (L5) only
chooses whose coefficients the DSO modifies — the decision variables of the DSO coefficient
problem; the others keep factor 1. ``participation="screened"`` is the literal reading in
which the screening gates participation (only the screened prosumers offer at all): on the
case300 benchmark instances with case69 feeders only 0–3 of 10 prosumers per feeder pass
the 80 % screening, and the bilevel market then left 17.85 of 18.15 MW·h of overload where
the centralized market left 6.2.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal, SupportsIndex

import numpy as np
import pandas as pd

from flexopt.dso.flexibility import spare_energy
from flexopt.grid import (
    Feeder,
    allocate_losses,
    feeder_from_data,
    marginal_loss_factors,
    screen_buses,
)
from flexopt.grid.loss_allocation import LossAllocationMethod
from flexopt.instance import DSOData, Instance
from flexopt.pool_keep import reduce_kept

__all__ = [
    "PARTICIPATION",
    "DSOContext",
    "declaration",
    "declared_capacity",
    "declared_energy",
    "feeder_net_load",
    "prepare",
]

#: What :class:`DSOContext` derives from its fields and caches (not pickled).
_DERIVED = ("members", "screened")

#: Who offers in a DSO's local market: every prosumer, or the screened ones only.
PARTICIPATION = ("all", "screened")
Participation = Literal["all", "screened"]


def feeder_net_load(
    inst: Instance, dso: DSOData, feeder: Feeder | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Feeder net load ``[T, n_bus]`` at the day-ahead point (``models/loss_allocation.md`` S4.1):
    bus loads follow the instance's load profile, batteries run their baseline schedule.
    ``feeder``: the DSO's feeder when the caller has built it already (building one is S4's
    largest cost after the power flow)."""
    if feeder is None:
        feeder = feeder_from_data(dso.feeder)
    prof = inst.scenario.load_profile.to_numpy()[:, None]
    p = prof * feeder.p_base_mw
    q = prof * feeder.q_base_mvar
    pos = feeder.bus.get_indexer(dso.prosumers["bus"].to_numpy())
    np.add.at(p.T, pos, -dso.baseline_mw.to_numpy().T)
    return p, q


@dataclass(frozen=True, eq=False)
class DSOContext:
    """What a DSO knows about itself at the day-ahead point (after S4)."""

    dso: DSOData
    feeder: Feeder
    hours: pd.Index
    dt_h: float
    p_mw: np.ndarray
    q_mvar: np.ndarray
    loss_mw: np.ndarray  # per feeder, [T]
    allocation: pd.DataFrame  # hours × feeder buses
    participants: pd.DataFrame  # one row per prosumer: bus, loss_share, screened, offers
    mlf: pd.DataFrame  # hours × members, ∂P_loss/∂P at their bus
    microgrids: tuple[DSOContext, ...] = ()  # each microgrid as a DSO of one copy (G1)

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        # made in S4, read by S5–S6 and S8: a pool's worker keeps it (flexopt.pool_keep)
        return reduce_kept(self, int(protocol))

    def __getstate__(self) -> dict[str, Any]:
        # the fields only: what is derived from them is derived again where it lands
        return {k: v for k, v in self.__dict__.items() if k not in _DERIVED}

    # Derived once per context (~0.5 ms of pandas each, read several times a DSO); the
    # fields are never changed after S4 (a changed context is a new one, ``replace``), and
    # no reader writes into what these return.
    @cached_property
    def members(self) -> pd.DataFrame:
        """Offers and battery data of the prosumers that offer in the local market."""
        return self.dso.prosumers.loc[self.participants.index[self.participants["offers"]]]

    @cached_property
    def screened(self) -> np.ndarray:
        """``[len(members)]``: True for the members whose coefficients the DSO modifies (L5)."""
        part = self.participants
        mask: np.ndarray = part.loc[part["offers"], "screened"].to_numpy(dtype=bool)
        mask.flags.writeable = False
        return mask

    @property
    def bus_pos(self) -> np.ndarray:
        pos: np.ndarray = self.feeder.bus.get_indexer(self.members["bus"].to_numpy())
        return pos


def prepare(
    inst: Instance,
    dso: DSOData,
    loss_method: LossAllocationMethod = "branch_current",
    participation: Participation = "all",
    extra_load: tuple[np.ndarray, np.ndarray] | None = None,
    v_root_pu: float | None = None,
) -> DSOContext:
    """S4: AC power flow at the day-ahead point, loss allocation, screening (L1–L5).

    The screening marks the prosumers whose coefficients the DSO modifies (``screened``);
    ``participation`` says who offers in the local market (``offers``): everyone (``"all"``)
    or the screened prosumers only (``"screened"``). ``extra_load``: ``(p, q)`` ``[T, n_bus]``
    added to the net load (the microgrids' internal losses, ``models/microgrid.md`` G2);
    ``v_root_pu``: the root's voltage (a microgrid's, at its point of connection, G1).
    """
    if participation not in PARTICIPATION:
        raise ValueError(f"participation must be one of {PARTICIPATION}, got {participation!r}")
    feeder = feeder_from_data(dso.feeder)
    if v_root_pu is not None:
        feeder = replace(feeder, v_root_pu=float(v_root_pu))
    p, q = feeder_net_load(inst, dso, feeder)
    if extra_load is not None:
        p, q = p + extra_load[0], q + extra_load[1]
    pf = feeder.power_flow(p, q)
    alloc = allocate_losses(pf, loss_method)
    energy = alloc.sum(axis=0) * inst.dt_h
    chosen = set(feeder.bus[screen_buses(energy, inst.market.loss_coverage)])
    total = energy.clip(min=0).sum()
    share = pd.Series(energy / total if total > 0 else 0.0 * energy, index=feeder.bus)
    pros = dso.prosumers
    participants = pd.DataFrame(
        {
            "dso_id": dso.id,
            "bus": pros["bus"],
            "loss_share": share.reindex(pros["bus"]).to_numpy(),
            "screened": pros["bus"].isin(chosen).to_numpy(),
        },
        index=pros.index,
    )
    participants["offers"] = True if participation == "all" else participants["screened"]
    members = pros.loc[participants["offers"]]
    for arr in (p, q):  # the day-ahead point is shared by every later stage: freeze it
        arr.flags.writeable = False
    dl_dp, _ = marginal_loss_factors(pf)
    mlf = pd.DataFrame(
        dl_dp[:, feeder.bus.get_indexer(members["bus"].to_numpy())],
        index=inst.hour_index,
        columns=members.index,
    )
    return DSOContext(
        dso=dso,
        feeder=feeder,
        hours=inst.hour_index,
        dt_h=inst.dt_h,
        p_mw=p,
        q_mvar=q,
        loss_mw=pf.loss_mw,
        allocation=pd.DataFrame(
            alloc, index=inst.hour_index, columns=pd.Index(feeder.bus, name="bus")
        ),
        participants=participants,
        mlf=mlf,
    )


def declared_capacity(ctx: DSOContext, hours: pd.Index) -> pd.Series:
    """``R̄_{d,t}`` the DSO declares to the TSO for the congested ``hours`` (M10): the most
    its offering prosumers can give in each hour on its own, ``n Σ_i min(p̄_i − p^base_{i,t},
    η_i E^spare_i / Δt)`` — power headroom, and no more energy than a prosumer has spare."""
    return declaration(ctx, hours)[0]


def declared_energy(ctx: DSOContext, hours: pd.Index) -> float:
    """``Ē_d`` the DSO declares with its capacity (M10a): the energy its offering prosumers
    can release over the congested ``hours`` together, ``n Σ_i η_i E^spare_i`` (M2), MWh.

    With it the TSO's requirement (S3, R4a) places the DSO's energy in the hours that need it
    — as the centralized market does — instead of taking an even split of it. For prosumers
    whose spare energy is proportional to their power (the bundled and generated instances)
    every requirement within ``R̄`` and ``Ē`` is deliverable by the split of M3."""
    return declaration(ctx, hours)[1]


def declaration(ctx: DSOContext, hours: pd.Index) -> tuple[pd.Series, float]:
    """What the DSO declares with S3 (M10, M10a): :func:`declared_capacity` and
    :func:`declared_energy` from one look-up of its members (on numpy: the pandas look-ups
    of the two took ~3 ms a DSO, 0.3 s at 100 DSOs)."""
    part, pros, baseline = ctx.participants, ctx.dso.prosumers, ctx.dso.baseline_mw
    ids = part.index[part["offers"].to_numpy(dtype=bool)]  # the members (ctx.members)
    n = ctx.dso.n_feeders
    if len(hours) == 0 or len(ids) == 0:
        return pd.Series(0.0, index=hours), 0.0
    rows = pros.index.get_indexer(ids)
    p = baseline.to_numpy()[:, baseline.columns.get_indexer(ids)]
    eta = pros["efficiency"].to_numpy()[rows]
    e0 = pros["soc_init_pu"].to_numpy()[rows] * pros["e_max_mwh"].to_numpy()[rows]
    first = int(baseline.index.get_loc(hours[0]))
    spare = eta * spare_energy(p, eta, e0, first, ctx.dt_h)  # η_i E^spare_i (M2)
    power = (pros["p_max_mw"].to_numpy()[rows] - p[baseline.index.get_indexer(hours)]).clip(0.0)
    # summed as numpy sums pandas' column-major frames, member by member: the same bits as
    # M10 on the members' frames (a row-major sum rounds differently beyond eight members)
    cap = np.asfortranarray(np.minimum(power, (spare / ctx.dt_h)[None, :])).sum(axis=1)
    return pd.Series(n * cap, index=hours), float(n * spare.sum())
