"""Figures a researcher would put in a paper, drawn from a run's typed outcome and tables.

Written as PNG by ``MarketResult.save``: line loading before/after (heatmaps), each DSO's
aggregated offer curve with the accepted point, feeder voltage profiles before/after, and
losses per DSO; with an iterative coefficient method its convergence, with a multi-objective
one its Pareto fronts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from flexopt.dso.offer import DSOOffer
from flexopt.outcome import BilevelOutcome, MarketOutcome

# a user whose home is not writable (a read-only install run by a service user) costs
# matplotlib its font cache, not two lines of warnings on every run
_mpl_log = logging.getLogger("matplotlib")
_level = _mpl_log.level
_mpl_log.setLevel(logging.ERROR)
try:
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt
finally:
    _mpl_log.setLevel(_level)

__all__ = ["make_figures"]

#: Per-DSO figures show at most this many DSOs (those that delivered the most).
MAX_PANELS = 6


def make_figures(
    outcome: MarketOutcome, tables: dict[str, pd.DataFrame], folder: Path
) -> list[Path]:
    """Draw every figure into ``folder``; returns the files written."""
    out = [
        _loading(tables, folder / "line_loading.png"),
        _losses(tables, outcome.method, folder / "losses_per_dso.png"),
    ]
    offers: tuple[DSOOffer, ...] = ()
    if outcome.accepted_mw is not None:
        if isinstance(outcome, BilevelOutcome):  # the centralized market has no bids
            offers = outcome.offers
            out.append(_offer_curves(outcome, tables, folder / "offer_curves.png"))
        out.append(_voltages(outcome, folder / "voltage_profiles.png"))
    mods = [o.modification for o in offers]
    if any(m.history is not None and len(m.history) for m in mods):
        out.append(_convergence(offers, folder / "dcp_convergence.png"))
    if any(m.pareto_f is not None for m in mods):
        out.append(_pareto(offers, folder / "dcp_pareto.png"))
    return out


def _convergence(offers: tuple[DSOOffer, ...], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    for o in offers:
        h = o.modification.history
        if h is not None and len(h):
            ax.plot(np.arange(1, len(h) + 1), h, label=o.dso_id)
    ax.set_xlabel("iteration")
    pareto = offers[0].modification.pareto_f is not None
    ax.set_ylabel("compromise f_loss" if pareto else "best objective (x⁰ = 1)")
    ax.set_title("WCA convergence per DSO")
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pareto(offers: tuple[DSOOffer, ...], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.8), constrained_layout=True)
    for o in offers:
        front, pick = o.modification.pareto_f, o.modification.pareto_pick
        if front is None or pick is None:
            continue
        line = ax.plot(front[:, 0], front[:, 1], ".", label=f"{o.dso_id} front")[0]
        ax.plot(*pick, "*", ms=12, color=line.get_color(), label=f"{o.dso_id} compromise")
    ax.set_xlabel("f_loss / f_loss(x⁰)")
    ax.set_ylabel("f_price / f_price(x⁰)")
    ax.set_title("MOWCA fronts of the DSO problems")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _loading(tables: dict[str, pd.DataFrame], path: Path) -> Path:
    cong = tables["congestion"]
    before = cong.pivot(index="branch", columns="hour", values="loading_percent")
    after_mean = cong.pivot(index="branch", columns="hour", values="mean_mw_after").abs()
    rating = cong.pivot(index="branch", columns="hour", values="rating_mw")
    after = 100 * after_mean / rating
    order = (
        before.max(axis=1).sort_values(ascending=False).index[:15]
    )  # the 15 most loaded branches
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True, constrained_layout=True)
    for ax, data, title in (
        (axes[0], before, "before flexibility"),
        (axes[1], after, "after flexibility"),
    ):
        im = ax.imshow(data.loc[order].to_numpy(), aspect="auto", cmap="RdYlGn_r", vmin=0, vmax=120)
        ax.set_title(f"line loading, % of limit — {title}")
        ax.set_xticks(range(0, data.shape[1], 2), data.columns[::2])
        ax.set_xlabel("hour")
        over = data.loc[order].to_numpy() > 100 + 1e-6
        for i, j in zip(*np.nonzero(over), strict=True):
            ax.text(j, i, "×", ha="center", va="center", fontsize=8)
    axes[0].set_yticks(range(len(order)), order)
    fig.colorbar(im, ax=axes, label="|E f| / F̄ (%)")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _busiest(outcome: MarketOutcome, at_most: int = MAX_PANELS) -> list[str]:
    """The DSOs with the most accepted flexibility (one panel each), in instance order."""
    accepted = outcome.accepted_mw
    if accepted is None:
        return []
    acc = accepted.sum()
    top = set(acc.sort_values(ascending=False, kind="stable").index[:at_most])
    return [d for d in acc.index if d in top]


def _offer_curves(outcome: BilevelOutcome, tables: dict[str, pd.DataFrame], path: Path) -> Path:
    bids = tables["bids"]
    prices = tables["tso_prices"]
    dsos = [d for d in _busiest(outcome) if d in set(bids["dso_id"])]
    fig, axes = plt.subplots(
        1, len(dsos), figsize=(4.2 * len(dsos), 3.6), squeeze=False, constrained_layout=True
    )
    for ax, d in zip(axes[0], dsos, strict=True):
        acc = prices[prices["dso_id"] == d].set_index("hour")["accepted_mw"]
        hour = int(acc.idxmax()) if acc.max() > 0 else int(acc.index[0])
        b = bids[(bids["dso_id"] == d) & (bids["hour"] == hour)]
        edges = np.concatenate([[0.0], np.cumsum(b["q_mw"].to_numpy())])
        ax.stairs(b["price_eur_per_mwh"].to_numpy(), edges, baseline=None, label="block bid")
        a = acc.loc[hour]
        p = prices[(prices["dso_id"] == d) & (prices["hour"] == hour)]["price_eur_per_mwh"].iloc[0]
        if a > 0:
            ax.plot([a], [p], "o", color="C3", label=f"accepted {a:.2f} MW @ {p:.1f} €/MWh")
        ax.set_title(f"{d}, hour {hour}")
        ax.set_xlabel("flexibility (MW)")
        ax.set_ylabel("price (€/MWh)")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"aggregated offer curves ({outcome.method})")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _voltages(outcome: MarketOutcome, path: Path) -> Path:
    keep = set(_busiest(outcome))
    pairs = [
        (c, d) for c, d in zip(outcome.contexts, outcome.dispatch, strict=True) if c.dso.id in keep
    ]
    ctxs, dispatch = [c for c, _ in pairs], [d for _, d in pairs]
    fig, axes = plt.subplots(
        1, len(ctxs), figsize=(4.2 * len(ctxs), 3.6), squeeze=False, constrained_layout=True
    )
    for ax, ctx, dsp in zip(axes[0], ctxs, dispatch, strict=True):
        moved = dsp.dispatch.groupby("hour")["u_mw"].sum()
        hour = int(moved.idxmax()) if len(moved) else int(ctx.hours[0])
        t = ctx.hours.get_loc(hour)
        ax.plot(dsp.vm_before[t], ".-", label="before")
        ax.plot(dsp.vm_after[t], ".-", label="after")
        ax.set_title(f"{ctx.dso.id} feeder, hour {hour}")
        ax.set_xlabel("bus (position)")
        ax.set_ylabel("|V| (pu)")
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _losses(tables: dict[str, pd.DataFrame], method: str, path: Path) -> Path:
    losses = tables["losses"].groupby("dso_id")[["loss_mw_before", "loss_mw_after"]].sum()
    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    x = np.arange(len(losses))
    ax.bar(x - 0.2, losses["loss_mw_before"], 0.4, label="before")
    ax.bar(x + 0.2, losses["loss_mw_after"], 0.4, label="after")
    ax.set_xticks(x, losses.index)
    ax.set_ylabel("feeder losses over the day (MWh)")
    lo = 0.98 * losses.to_numpy().min()
    ax.set_ylim(lo, 1.005 * losses.to_numpy().max())
    ax.set_title(f"DSO losses ({method})")
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
