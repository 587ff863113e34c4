"""The bilevel framework: S3 requirement → S5–S6 DSO offers and bids → (rival DSOs: their
markups at a Nash equilibrium, ``models/competition.md``) → S7 TSO market → S8 local dispatch
and settlement → S2 re-check (``models/README.md``, stage map).

Only aggregated block bids (:class:`~flexopt.market.tso.DSOBid`), declared capacities and
accepted quantities cross the TSO–DSO boundary: the TSO stages (``flexopt.run.tso``) never
receive a DSO's context.
"""

from __future__ import annotations

import pandas as pd

from flexopt.dso.context import declaration
from flexopt.dso.offer import DSOOffer
from flexopt.dso.settlement import loss_relief
from flexopt.executors import Executor
from flexopt.methods import get_method
from flexopt.outcome import BilevelOutcome, MarketBase
from flexopt.progress import Progress
from flexopt.run.centralized import centralized_data
from flexopt.run.clock import Clock
from flexopt.run.competition import nash_equilibrium
from flexopt.run.options import MarketOptions
from flexopt.run.tasks import BidTask, DispatchTask, run_task
from flexopt.run.tso import recheck_market, requirement, tso_market, tso_market_data

__all__ = ["run_bilevel"]


def run_bilevel(base: MarketBase, opt: MarketOptions, ex: Executor, clock: Clock) -> BilevelOutcome:
    """The bilevel market on ``base`` (S1, S2, S4 done) with the DSOs' coefficient method
    ``opt.method``."""
    inst, hours, ctxs = base.instance, base.hours, base.contexts
    method = get_method(opt.method)
    loss_price = inst.market.loss_price_eur_per_mwh
    dso_ids = base.dso_ids
    common_view = centralized_data(base) if len(hours) else None
    offers, dispatch, tso = [], [], None
    competition = None
    if len(hours) == 0:
        capacity = req = pd.DataFrame(0.0, index=hours, columns=dso_ids)
        unresolved = pd.DataFrame(index=hours)
    else:
        with clock("requirement", "S3 the DSOs' declarations and the requirement"):
            declared = {c.dso.id: declaration(c, hours) for c in ctxs}  # M10, M10a
            capacity = pd.concat({d: cap for d, (cap, _) in declared.items()}, axis=1)
            energy = pd.Series({d: e for d, (_, e) in declared.items()})
            req, unresolved = requirement(
                inst,
                base.plf_model,
                base.plf_before,
                hours,
                capacity,
                base.dso_bus,
                energy,
                time_limit_s=opt.stage_time_limit_s,
            )
        with clock("dso_bids", f"S5–S6 offers ({opt.method}) and block bids"):
            tasks = [
                BidTask(
                    c,
                    _own_index(req[c.dso.id]),
                    method,
                    opt.config,
                    opt.dcp,
                    loss_price,
                    opt.blocks,
                    (opt.seed, k),
                )
                for k, c in enumerate(ctxs)
            ]
            # the largest searches first, so that the processes finish together (each task
            # has its own seed: the order changes no result); as each DSO finishes: a bar on
            # a terminal (wca takes a while per DSO)
            first = sorted(range(len(tasks)), key=lambda k: -tasks[k].weight)
            done: dict[int, DSOOffer] = {}
            with Progress(f"S5 {opt.method} per DSO", len(tasks), enabled=opt.progress) as bar:
                for j, offer in ex.as_completed(run_task, [tasks[k] for k in first]):
                    done[first[j]] = offer
                    bar.update(note=offer.dso_id)
            offers = [done[k] for k in range(len(tasks))]
            for o in offers:
                if o.modification.evaluations:
                    clock.say(
                        f"  {o.dso_id}: {o.modification.evaluations} evaluations, "
                        f"DSO problem objective {o.score.objective:.4f}"
                    )
        bids = [o.bid for o in offers]
        if opt.competition_config.strategic:
            with clock("competition", "rival DSOs: Nash equilibrium of their markups"):
                data = tso_market_data(inst, base.plf_model, base.plf_before, hours, bids)
                competition = nash_equilibrium(
                    data,
                    opt.competition_config,
                    opt.tso_pricing,
                    time_limit_s=opt.stage_time_limit_s,
                )
                bids = list(competition.bids)  # S7 clears the equilibrium bids
        with clock("tso_market", "S7 TSO flexibility market"):
            tso = tso_market(
                inst,
                base.plf_model,
                base.plf_before,
                hours,
                bids,
                pricing=opt.tso_pricing,
                time_limit_s=opt.stage_time_limit_s,
            )
    with clock("dispatch", "S8 local dispatch and settlement"):
        if tso is not None:
            dispatch = ex.map(
                run_task,
                [
                    DispatchTask(
                        c,
                        o,
                        tso.accepted_mw[c.dso.id],
                        tso.price_eur_per_mwh[c.dso.id],
                        loss_price,
                    )
                    for c, o in zip(ctxs, offers, strict=True)
                ],
            )
    with clock("verification", "S2 re-check with the accepted flexibility"):
        relief = loss_relief(dispatch, dso_ids, hours)
        accepted = None if tso is None else tso.accepted_mw + relief
        plf_after, cong_after = recheck_market(
            inst, base.plf_model, hours, accepted, base.dso_bus, opt
        )
    return BilevelOutcome(
        **base.base_fields(),
        method=opt.method,
        blocks=opt.blocks,
        capacity_mw=capacity,
        requirement_mw=req,
        unresolved_requirement_mw=unresolved,
        offers=tuple(offers),
        tso=tso,
        dispatch=tuple(dispatch),
        loss_relief_mw=relief,
        plf_after=plf_after,
        congestion_after=cong_after,
        common_view=common_view,
        competition=competition,
    )


def _own_index(s: pd.Series) -> pd.Series:
    """``s`` on an index of its own: pandas fills an index's lookup table lazily and not
    thread-safely, and the DSOs' tasks on threads would share the requirement's hours (with
    ``threads=2``, 3 of 40 runs raised "cannot reindex on an axis with duplicate labels");
    ``Series.copy`` and ``Index.copy`` share that table."""
    return pd.Series(
        s.to_numpy(), index=pd.Index(s.index.to_numpy(), name=s.index.name), name=s.name
    )
