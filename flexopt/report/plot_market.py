"""Figures of the markets: the DSOs' offer curves, feeder losses, and the coefficient search
(convergence, Pareto fronts)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from flexopt.dso.clearing import clear
from flexopt.dso.offer import DSOOffer
from flexopt.outcome import BilevelOutcome
from flexopt.report.canvas import Figure, RunView, bilevel, busiest, new_figure

__all__ = ["convergence", "losses", "offer_curves", "pareto"]

#: Offer-curve panels per row when one DSO's hours are wrapped.
HOURS_PER_ROW = 6


def _offer_panel(
    ax: Axes, outcome: BilevelOutcome, offer: DSOOffer, hour: int, accepted: float
) -> None:
    """One DSO and hour: marginal cost of the original and the modified offers, the block
    bid the TSO saw, and the accepted point."""
    ctx = outcome.context(offer.dso_id)
    n = ctx.dso.n_feeders
    members = ctx.members
    a, b = members["a_eur_per_mw2h"].to_numpy(), members["b_eur_per_mwh"].to_numpy()
    u_max = offer.u_max_mw.loc[hour].to_numpy()  # per feeder copy
    ax.set_title(f"{offer.dso_id}, hour {hour}", fontsize=9)
    ax.tick_params(labelsize=8)
    if u_max.sum() <= 0:  # no requirement in this hour: the DSO offered nothing
        ax.text(0.5, 0.5, "no flexibility\noffered", ha="center", va="center",
                transform=ax.transAxes, fontsize=9, color="0.4")  # fmt: skip
        ax.set_xticks([])
        return
    q = np.linspace(0.0, u_max.sum(), 201)
    total = n * q  # the DSO's n identical copies: the same price at n times the quantity
    # the original dashed over the modified: where a method leaves the offers, both show
    ax.plot(total, clear(offer.a_mod, offer.b_mod, u_max, q).price, color="C0", lw=1.5)
    ax.plot(total, clear(a, b, u_max, q).price, "--", color="0.3", lw=1.2, zorder=3)
    q_bid = offer.bid.q_mw.loc[hour].to_numpy()
    p_bid = offer.bid.price_eur_per_mwh.loc[hour].to_numpy()
    ax.stairs(p_bid, np.concatenate([[0.0], np.cumsum(q_bid)]), baseline=None, color="C1")
    if accepted > 1e-9:
        price = outcome.price_eur_per_mwh
        assert price is not None
        ax.plot([accepted], [price.loc[hour, offer.dso_id]], "o", color="C3", ms=6)
    else:
        ax.text(0.04, 0.94, "nothing accepted", transform=ax.transAxes, va="top", fontsize=8,
                color="C3")  # fmt: skip


def offer_curves(result: RunView, dso: str | None = None) -> Figure:
    """Each DSO's offer curves in every congested hour (small multiples): the marginal cost
    of the original offers, of the modified ones (the coefficient method's), the block bid
    sent to the TSO (never below the DSO's break-even) and the accepted point.

    Parameters
    ----------
    result : MarketResult
        A bilevel run with congestion.
    dso : str, optional
        One DSO (its hours wrapped in rows of :data:`HOURS_PER_ROW`); default: one row per
        DSO, the most active ones (at most :data:`~flexopt.report.canvas.MAX_PANELS`).
    """
    o = bilevel(result, "offer_curves")
    offers = {of.dso_id: of for of in o.offers}
    if dso is not None and dso not in offers:
        raise ValueError(f"offer_curves: no DSO {dso!r}; DSOs: {', '.join(offers)}")
    ids = [dso] if dso is not None else [d for d in busiest(o) if d in offers]
    hours = list(o.hours)
    accepted = o.accepted_mw
    assert accepted is not None
    cells = [(d, h) for d in ids for h in hours]
    ncol = min(len(hours), HOURS_PER_ROW) if dso is not None else len(hours)
    nrow = math.ceil(len(cells) / ncol)
    fig = new_figure(0.6 + 2.7 * ncol, 1.2 + 2.3 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for ax, (d, h) in zip(axes.flat, cells, strict=False):
        _offer_panel(ax, o, offers[d], h, float(accepted.loc[h, d]))
    for ax in axes.flat[len(cells) :]:
        ax.set_axis_off()
    for i in range(max(0, len(cells) - ncol), len(cells)):  # the lowest panel of each column
        axes.flat[i].set_xlabel("flexibility at the DSO interface (MW)", fontsize=9)
    if dso is None:  # one row per DSO: its hours share a price scale, to compare at a glance
        for row in axes:
            lo = min(ax.get_ylim()[0] for ax in row)
            hi = max(ax.get_ylim()[1] for ax in row)
            for ax in row:
                ax.set_ylim(lo, hi)
    fig.supylabel("price (€/MWh)", fontsize=10)
    handles = [
        Line2D([], [], ls="--", color="0.3", label="marginal cost, original offers"),
        Line2D([], [], color="C0", label=f"marginal cost, modified offers ({o.method})"),
        Line2D([], [], color="C1", drawstyle="steps-post", label="block bid to the TSO"),
        Line2D([], [], marker="o", ls="", color="C3", label="accepted by the TSO"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False, fontsize=9)
    fig.suptitle(f"DSO offer curves in the congested hours ({o.method})", fontsize=11)
    return fig


def losses(result: RunView) -> Figure:
    """Feeder losses of each DSO over the day before and after flexibility (bars from zero,
    the relative change written over each pair)."""
    table = result.tables["losses"]
    day = table.groupby("dso_id", sort=False)[["loss_mw_before", "loss_mw_after"]].sum()
    dt_h = result.outcome.instance.dt_h
    before, after = dt_h * day["loss_mw_before"], dt_h * day["loss_mw_after"]
    fig = new_figure(max(4.5, 1.2 + 1.1 * len(day)), 3.8)
    ax = fig.subplots()
    x = np.arange(len(day))
    ax.bar(x - 0.2, before, 0.4, label="before flexibility")
    ax.bar(x + 0.2, after, 0.4, label="after flexibility")
    for xi, b, a in zip(x, before, after, strict=True):
        pct = round(100.0 * (a - b) / b, 1) if b > 0 else 0.0
        label = f"{a - b:+.2f} MWh\n" + (f"{pct:+.1f} %" if pct else "0.0 %")
        ax.annotate(label, (xi, max(a, b)), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")  # fmt: skip
    ax.set_xticks(x, list(day.index), rotation=30 if len(day) > 6 else 0)
    ax.set_ylim(0.0, 1.35 * max(before.max(), after.max(), 1e-9))  # room for the legend
    ax.set_ylabel("feeder losses over the day (MWh)")
    ax.set_title(f"DSO feeder losses ({result.outcome.method}); change written on top", fontsize=10)
    ax.legend(loc="upper center", ncol=2, fontsize=8, frameon=False)
    return fig


def _searched(result: RunView, figure: str, what: str) -> list[DSOOffer]:
    """The offers whose method reports a ``history`` (non-empty) or a ``pareto front``."""

    def reports(of: DSOOffer) -> bool:
        m = of.modification
        if what == "history":
            return m.history is not None and len(m.history) > 0
        return m.pareto_f is not None

    offers = [of for of in bilevel(result, figure).offers if reports(of)]
    if not offers:
        raise ValueError(f"{figure}: the {result.outcome.method} method reports no {what}")
    return offers


def convergence(result: RunView) -> Figure:
    """The best objective of the DSO coefficient problem per iteration, one line per DSO
    (an iterative method, e.g. ``wca``)."""
    offers = _searched(result, "convergence", "history")
    pareto_run = offers[0].modification.pareto_f is not None
    fig = new_figure(6.0, 3.8)
    ax = fig.subplots()
    for of in offers:
        h = of.modification.history
        assert h is not None
        ax.plot(np.arange(1, len(h) + 1), h, label=of.dso_id)
    ax.set_xlabel("iteration")
    ax.set_ylabel(
        "compromise f_loss (1 = offers unchanged)"
        if pareto_run
        else "best objective (1 = offers unchanged)"
    )
    ax.set_title(
        f"Convergence of the DSO coefficient problem ({result.outcome.method})", fontsize=10
    )
    ax.legend(fontsize=8, title="DSO", title_fontsize=8)
    return fig


def pareto(result: RunView) -> Figure:
    """The Pareto front of each DSO's coefficient problem (losses vs price, both relative to
    the unchanged offers) and the compromise the method chose; one panel per DSO, each on its
    own scale (the fronts of different DSOs lie far apart)."""
    offers = _searched(result, "pareto", "pareto front")
    fig = new_figure(0.6 + 3.6 * len(offers), 3.9)
    axes = fig.subplots(1, len(offers), squeeze=False)[0]
    for ax, of in zip(axes, offers, strict=True):
        front, pick = of.modification.pareto_f, of.modification.pareto_pick
        assert front is not None
        ax.plot([1.0], [1.0], "P", color="0.5", ms=8, label="offers unchanged (x⁰)")
        if pick is not None:  # under the front: a front of one point stays visible on it
            ax.plot(*pick, "*", ms=15, color="C1", mec="k", mew=0.5, label="compromise chosen")
        ax.plot(front[:, 0], front[:, 1], ".", color="C0", ms=6, label="Pareto front", zorder=3)
        ax.set_title(of.dso_id, fontsize=10)
        ax.set_xlabel("feeder losses f_loss (1 = x⁰)")
        ax.margins(0.12)
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel("price f_price (1 = x⁰)")
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False
    )
    fig.suptitle(
        f"Pareto fronts of the DSO coefficient problems ({result.outcome.method})", fontsize=10
    )
    return fig
