"""The market run: S1–S8 end to end, in one module per concern.

* ``options`` — :class:`MarketOptions` (common options, the DSO coefficient problem, one
  config per method; flat keyword arguments sorted into their layer).
* ``tso`` — the TSO stages: S1 day-ahead, S2 PLF and its re-check, S3 requirement, S7 TSO
  market, and the one "solve or raise" helper.
* ``tasks`` — the DSO-level stages (S4, S5–S6, S8) as frozen, picklable tasks.
* ``bilevel``, ``centralized`` — the two frameworks, each returning its own typed outcome
  (``flexopt.outcome``).
* ``assemble`` — tables and summary from an outcome; ``result`` — :class:`MarketResult`;
  ``api`` — :func:`run_market`.
* ``intraday_config``, ``intraday``, ``intraday_report`` — the intraday market on
  realizations of the load after the day-ahead market (``models/intraday.md``).

Import what you need from the modules (``from flexopt.run.api import run_market``) or use the
top-level ``flexopt.run_market`` / ``flexopt.MarketOptions``.
"""
