"""The DSO-level work of a market run as frozen, picklable tasks.

Each task holds one DSO's inputs and nothing of the other DSOs; calling it runs the stage.
The run maps :func:`run_task` over a list of tasks with any executor (serial, process pool,
Dask — ``flexopt.executors``), so every executor returns the same numbers: the only random
input, a coefficient method's generator, is seeded from the run's seed and the DSO's position.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import pandas as pd

from flexopt.dso.context import DSOContext, Participation
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.dso.microgrid import (
    fold_microgrids,
    prepare_with_microgrids,
    with_microgrid_offers,
)
from flexopt.dso.offer import DSOOffer, build_offer
from flexopt.dso.settlement import DSODispatch, dispatch, settle
from flexopt.errors import PowerFlowError
from flexopt.grid.loss_allocation import LossAllocationMethod
from flexopt.instance import DSOData, Instance
from flexopt.market.interface import DistributionArea
from flexopt.methods import CoefficientMethod
from flexopt.run.microgrids import microgrid_dispatch, microgrid_offers

__all__ = ["BidTask", "DispatchTask", "PrepareTask", "SettleTask", "run_task", "warm_worker"]

T_co = TypeVar("T_co", covariant=True)


def warm_worker() -> None:
    """What a fresh pool worker loads before its first task, while the parent runs S1–S2:
    this module (and with it the DSO stages and the methods) and the compiled feeder
    sweep, from numba's disk cache or compiled once (``flexopt.executors``)."""
    from flexopt.grid import Feeder

    two_bus = Feeder.from_branches([0], [1], [0.01], [0.01], vn_kv=10.0, root=0)
    two_bus.power_flow(np.zeros((1, 2)), np.zeros((1, 2)))


class Task(Protocol[T_co]):
    def __call__(self) -> T_co: ...


def run_task(task: Task[T_co]) -> T_co:
    """Run one task (a module-level function, so that every executor can ship it)."""
    return task()


@contextmanager
def _stage(label: str) -> Iterator[None]:
    """A feeder power flow that fails names the stage and the DSO it failed in."""
    try:
        yield
    except PowerFlowError as err:
        raise PowerFlowError(f"{label}: {err}") from None


@dataclass(frozen=True, eq=False)
class PrepareTask:
    """S4 of one DSO (and of its microgrids): AC power flow at the day-ahead point, loss
    allocation, screening.

    ``instance`` carries this DSO only (the rest of the instance is other DSOs' data);
    :meth:`of` builds the task from the whole instance.
    """

    gil_bound: ClassVar[bool] = True  # pandas and Python: threads run it in the caller

    instance: Instance
    dso: DSOData
    loss_allocation: LossAllocationMethod
    participation: Participation = "all"

    @classmethod
    def of(
        cls,
        inst: Instance,
        dso: DSOData,
        loss_allocation: LossAllocationMethod,
        participation: Participation = "all",
    ) -> PrepareTask:
        """The task of ``dso``, whose instance keeps what S4 reads: the hours, the load
        profile and the market's parameters. The transmission grid and the load increase
        per transmission bus are left out (at case300, 104 kB → 9 kB of a task pickled for
        a pool worker, which S1 paid for beside it)."""
        empty = pd.DataFrame()
        grid = replace(inst.transmission, buses=empty, branches=empty, generators=empty)
        scenario = replace(inst.scenario, load_increase=inst.scenario.load_increase.iloc[:, :0])
        return cls(
            replace(inst, dsos=(dso,), transmission=grid, scenario=scenario),
            dso,
            loss_allocation,
            participation,
        )

    def __call__(self) -> DSOContext:
        with _stage(f"S4 loss allocation ({self.dso.id})"):
            return prepare_with_microgrids(
                self.instance, self.dso, self.loss_allocation, self.participation
            )


@dataclass(frozen=True, eq=False)
class BidTask:
    """S5–S6 of one DSO: its coefficient method on the DSO coefficient problem at the
    requirement, then the block bid.

    ``seed`` is ``(run seed, DSO position)``.
    """

    context: DSOContext
    requirement_mw: pd.Series
    method: CoefficientMethod
    config: Any
    dcp: DCPOptions
    loss_price_eur_per_mwh: float
    blocks: int
    seed: tuple[int, int]

    @property
    def weight(self) -> float:
        """Its share of S5–S6's work, for a process pool's chunks (``flexopt.pool_feed``):
        what a search grows with — the factors × the market's offers × the hours with a
        requirement — beside a DSO's fixed cost (its problem and bid, about a search of 25
        such units)."""
        hours = int((self.requirement_mw.to_numpy() > 0).sum())
        return 25.0 + float(self.context.screened.sum()) * len(self.context.members) * hours

    def __call__(self) -> DSOOffer:
        with _stage(f"S5–S6 offers ({self.context.dso.id})"):
            inner = microgrid_offers(  # the third level first (models/microgrid.md)
                self.context,
                self.requirement_mw,
                self.method,
                self.config,
                self.dcp,
                self.loss_price_eur_per_mwh,
                self.blocks,
                self.seed,
            )
            problem = DCPProblem(
                with_microgrid_offers(self.context, inner),
                self.requirement_mw,
                self.loss_price_eur_per_mwh,
                self.dcp,
                self.blocks,
            )
            rng = np.random.default_rng(list(self.seed))
            modification = self.method.modify(problem, self.config, rng)
            offer = build_offer(problem, self.method.name, modification)
        return replace(offer, microgrids=inner) if inner else offer


@dataclass(frozen=True, eq=False)
class DispatchTask:
    """S8 of one DSO in the bilevel market: dispatch the accepted relief with the modified
    offers, AC power flow, settlement at the TSO's price."""

    gil_bound: ClassVar[bool] = True  # pandas and Python: threads run it in the caller

    context: DSOContext
    offer: DSOOffer
    accepted_mw: pd.Series
    price_eur_per_mwh: pd.Series
    loss_price_eur_per_mwh: float

    def __call__(self) -> DSODispatch:
        ctx = with_microgrid_offers(self.context, self.offer.microgrids)
        with _stage(f"S8 local dispatch ({ctx.dso.id})"):
            out = dispatch(
                ctx,
                self.offer,
                self.accepted_mw,
                self.price_eur_per_mwh,
                self.loss_price_eur_per_mwh,
            )
            if not self.offer.microgrids:
                return out
            inner = microgrid_dispatch(ctx, self.offer, out, self.loss_price_eur_per_mwh)
        return fold_microgrids(out, inner)


@dataclass(frozen=True, eq=False)
class SettleTask:
    """S8 of one DSO after the centralized market: the common market dispatched every
    prosumer (``u_mw`` ``[T, n]`` per copy); each is paid the interface price ``λ_{d,t}``
    (Z10), never below its original cost."""

    gil_bound: ClassVar[bool] = True  # pandas and Python: threads run it in the caller

    context: DSOContext
    area: DistributionArea
    u_mw: np.ndarray
    price_eur_per_mwh: pd.Series
    accepted_mw: pd.Series
    loss_price_eur_per_mwh: float

    def __call__(self) -> DSODispatch:
        ctx, accepted = self.context, self.accepted_mw
        u_max = pd.DataFrame(
            self.area.u_max_mw, index=accepted.index, columns=self.area.prosumer_id
        )
        local_price = np.nan_to_num(self.price_eur_per_mwh.to_numpy(), nan=0.0)
        with _stage(f"S8 local dispatch ({ctx.dso.id})"):
            out = settle(
                ctx,
                ctx.dso.prosumers,
                u_max,
                self.u_mw,
                local_price,
                accepted,
                self.price_eur_per_mwh,
                self.loss_price_eur_per_mwh,
            )
            # the common market dispatched the members itself: their networks' losses
            # count as in the bilevel market (models/microgrid.md G9)
            inner = []
            for g in ctx.microgrids:
                cols = u_max.columns.get_indexer(g.members.index)
                u = self.u_mw[:, cols]
                inner.append(
                    settle(
                        g,
                        g.members,
                        u_max.iloc[:, cols],
                        u,
                        local_price,
                        pd.Series(u.sum(axis=1), index=u_max.index),
                        pd.Series(local_price, index=u_max.index),
                        self.loss_price_eur_per_mwh,
                    )
                )
        return fold_microgrids(out, inner)
