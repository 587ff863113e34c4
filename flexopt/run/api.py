"""``run_market``: the market end to end — S1, S2 and S4, then the framework the method
belongs to (bilevel or centralized), then tables and summary."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from flexopt.executors import Executor, executor
from flexopt.instance import Instance
from flexopt.outcome import MarketBase, MarketOutcome
from flexopt.run import assemble
from flexopt.run.bilevel import run_bilevel
from flexopt.run.centralized import run_centralized
from flexopt.run.clock import Clock
from flexopt.run.finite import check_finite
from flexopt.run.gc_pause import frozen_before
from flexopt.run.intraday import IntradayInterrupted, run_intraday
from flexopt.run.intraday_config import with_dayahead_threshold
from flexopt.run.intraday_report import intraday_summary, intraday_table
from flexopt.run.options import MarketOptions
from flexopt.run.provenance import provenance, with_market_overrides
from flexopt.run.result import MarketResult
from flexopt.run.tasks import PrepareTask, run_task, warm_worker
from flexopt.run.tso import congestion, day_ahead, plf_model
from flexopt.run.warmup import warm_dso_stages

__all__ = ["prepare_market", "run", "run_market"]


def run_market(
    inst: Instance, method: str = "none", *, seed: int = 0, **options: Any
) -> MarketResult:
    """Run the market on an instance.

    Parameters
    ----------
    inst : Instance
    method : str
        A registered coefficient method (``none``, ``mlf``, ``wca``, ``exact``, …) for the
        bilevel market, or ``"centralized"`` for the common TSO–DSO market.
    seed : int
        Seed of every random draw (Monte Carlo PLF; per DSO ``(seed, k)`` for the methods).
    **options
        Flat options (:class:`MarketOptions`, the method's config, the DSO coefficient problem),
        e.g. ``wca_iter=100``, ``dcp_weight=0.8``, ``workers=2`` (this process and one worker), ``threads=2`` or
        ``scheduler="tcp://…"`` (Dask). Unknown names raise ``TypeError``; an option that does
        not apply to ``method`` raises :class:`~flexopt.errors.OptionError`.

    Returns
    -------
    MarketResult

    Raises
    ------
    FlexoptError
        For a stage that fails (a :class:`~flexopt.errors.SolverError` naming it), a
        non-finite result (:class:`~flexopt.errors.NonFiniteError`), an invalid option
        (:class:`~flexopt.errors.OptionError`).
    """
    return run(inst, MarketOptions.from_kwargs(method=method, seed=seed, **options))


def run(inst: Instance, opt: MarketOptions) -> MarketResult:
    """Run the market with layered options (the form :func:`run_market` builds).

    The summary records what the result was computed from (``options``,
    ``instance_sha256``, ``versions``: :mod:`flexopt.run.provenance`). An intraday market
    interrupted after some realizations raises
    :class:`~flexopt.run.intraday.IntradayInterrupted` with the result over those."""
    with frozen_before():  # no full garbage collection over the modules and the instance
        return _run(inst, opt)


def _starting(opt: MarketOptions) -> str | None:
    """The progress line of the executor's start; none for a run in this process alone."""
    if opt.scheduler:
        return f"connecting to the Dask scheduler {opt.scheduler}"
    workers = opt.workers or 1
    if workers > 1:
        return f"starting {workers} worker processes (this one and {workers - 1})"
    if (opt.threads or 1) > 1:
        return f"starting {opt.threads} threads"
    return None


def _run(inst: Instance, opt: MarketOptions) -> MarketResult:
    clock = Clock(opt.progress)
    cut: IntradayInterrupted | None = None
    record = provenance(inst, opt)
    inst = with_dayahead_threshold(with_market_overrides(inst, opt), opt.intraday_config)
    with ExitStack() as stack:
        # BLAS on one thread: the run's matrices are small (feeders, the PLF's buses), and two
        # OpenBLAS threads on a busy two-core machine made S4's solves 30× slower, S2's 10×
        stack.enter_context(threadpool_limits(1, user_api="blas"))
        with clock("pool_start", _starting(opt)):
            pool = executor(
                opt.workers,
                opt.scheduler,
                warm=warm_worker,
                threads=opt.threads,
                warm_later=warm_dso_stages,
            )
            ex = stack.enter_context(pool)
        base = prepare_market(inst, opt, ex, clock)
        framework = run_bilevel if opt.bilevel else run_centralized
        outcome: MarketOutcome = framework(base, opt, ex, clock)
        try:
            intraday = (
                run_intraday(outcome, opt, ex, clock) if opt.intraday_config.intraday else None
            )
        except IntradayInterrupted as stop:  # the result over what finished, then stop
            intraday, cut = stop.outcome, stop
    timings = dict(clock.timings)
    tables = assemble.tables(outcome)
    summary = assemble.summary(outcome, opt, timings)
    if intraday is not None:  # models/intraday.md
        tables["intraday"] = intraday_table(intraday)
        summary["intraday"] = intraday_summary(intraday)
    summary.update(record)
    check_finite(tables, summary, opt.bilevel)  # no infinity or NaN leaves a run
    result = MarketResult(
        options=opt,
        outcome=outcome,
        tables=tables,
        summary=summary,
        timings=timings,
        intraday=intraday,
    )
    if cut is not None:
        cut.result = result
        raise cut
    return result


def prepare_market(inst: Instance, opt: MarketOptions, ex: Executor, clock: Clock) -> MarketBase:
    """S1 day-ahead market, S2 probabilistic load flow, S4 loss allocation and screening.

    S4 needs the instance only, not S1–S2: its tasks are handed out first, so that a process
    pool's workers run them beside S1–S2 (the serial and threaded executors run them after
    S2, as before); the stage's time is then what the run waits for them after S2."""
    tasks = [PrepareTask.of(inst, d, opt.loss_allocation, opt.participation) for d in inst.dsos]
    s4 = ex.start(run_task, tasks)
    try:
        with clock("day_ahead", "S1 day-ahead market"):
            da = day_ahead(inst, time_limit_s=opt.stage_time_limit_s)
        with clock("plf", f"S2 probabilistic load flow ({opt.plf_method})"):
            model = plf_model(inst, da)
            plf_before, cong_before = congestion(
                inst,
                model,
                opt.plf_method,
                samples=opt.samples,
                seed=opt.seed,
                progress=opt.progress,
            )
    except BaseException:
        s4.cancel()
        raise
    hours = pd.Index(
        sorted(cong_before.loc[cong_before["congested"], "hour"].unique()), name="hour"
    )
    with clock("loss_allocation", "S4 loss allocation and screening"):
        contexts = s4.result()
    return MarketBase(
        instance=inst,
        day_ahead=da,
        plf_model=model,
        plf_before=plf_before,
        congestion_before=cong_before,
        hours=hours,
        contexts=tuple(contexts),
    )
