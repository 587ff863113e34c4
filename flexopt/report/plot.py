"""``fx.plot``: the figures of a run as a library. Every function takes a
:class:`~flexopt.MarketResult` (``compare`` several, or their summaries) and returns a
:class:`matplotlib.figure.Figure` that it neither saves nor shows — ``fig.savefig(path)``,
or let a notebook display it.

>>> import flexopt as fx
>>> res = fx.run_market(fx.load_instance("instances/rts24-3dso"), "mlf")   # doctest: +SKIP
>>> fx.plot.offer_curves(res, dso="DSO1").savefig("dso1.png")              # doctest: +SKIP
>>> fx.plot.compare([res, fx.run_market(res.outcome.instance, "none")])    # doctest: +SKIP
>>> fx.plot.tradeoff(fx.compare("instances/rts24-3dso", ["mlf", "wca"],   # doctest: +SKIP
...     set={"dcp_weight": [0, 0.5, 1]}, out="cmp").summaries)

The figures are built on :class:`~matplotlib.figure.Figure` directly, not through pyplot: no
global state, nothing to close, any backend.
"""

from __future__ import annotations

from collections.abc import Callable

from flexopt.outcome import BilevelOutcome
from flexopt.report.canvas import Figure, RunView
from flexopt.report.plot_compare import compare
from flexopt.report.plot_future import competition, intraday, microgrids
from flexopt.report.plot_grid import electrical_distance_ohm, line_loading, voltage_profiles
from flexopt.report.plot_market import convergence, losses, offer_curves, pareto
from flexopt.report.plot_tradeoff import tradeoff

__all__ = [
    "compare",
    "competition",
    "convergence",
    "electrical_distance_ohm",
    "figures_of",
    "intraday",
    "line_loading",
    "losses",
    "microgrids",
    "offer_curves",
    "pareto",
    "tradeoff",
    "voltage_profiles",
]


def figures_of(result: RunView) -> dict[str, Callable[[RunView], Figure]]:
    """The figures that apply to ``result``, by the file name ``flexopt run`` writes each to
    (without ``.png``): line loading and losses always; with a market held, the voltage
    profiles and — bilevel — the offer curves; the convergence of an iterative method and
    the Pareto fronts of a multi-objective one; the rival DSOs' game (``--competition nash``),
    the intraday market (``--intraday``) and the microgrids (an instance with microgrids) when
    the run has their tables."""
    o = result.outcome
    out: dict[str, Callable[[RunView], Figure]] = {
        "line_loading": line_loading,
        "losses_per_dso": losses,
    }
    extra = (("competition", competition), ("intraday", intraday), ("microgrids", microgrids))
    for name, draw in extra:
        if name in result.tables and not result.tables[name].empty:
            out[name] = draw
    if o.accepted_mw is None:
        return out
    if isinstance(o, BilevelOutcome):  # the centralized market has no bids
        out["offer_curves"] = offer_curves
    out["voltage_profiles"] = voltage_profiles
    mods = [of.modification for of in o.offers] if isinstance(o, BilevelOutcome) else []
    if any(m.history is not None and len(m.history) for m in mods):
        out["dcp_convergence"] = convergence
    if any(m.pareto_f is not None for m in mods):
        out["dcp_pareto"] = pareto
    return out
