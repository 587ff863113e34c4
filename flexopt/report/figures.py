"""Figures a researcher would put in a paper, drawn from a :class:`~flexopt.pipeline.MarketResult`.

Written as PNG by :meth:`MarketResult.save`: line loading before/after (heatmaps), each DSO's
aggregated offer curve with the accepted point, feeder voltage profiles before/after, and
losses per DSO.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    from flexopt.pipeline import MarketResult

__all__ = ["make_figures"]

#: Per-DSO figures show at most this many DSOs (those that delivered the most).
MAX_PANELS = 6


def make_figures(result: MarketResult, folder: Path) -> list[Path]:
    """Draw every figure into ``folder``; returns the files written."""
    out = [
        _loading(result, folder / "line_loading.png"),
        _losses(result, folder / "losses_per_dso.png"),
    ]
    if result.detail.get("tso") is not None:
        if len(result.tables["bids"]):  # the centralized market has no bids
            out.append(_offer_curves(result, folder / "offer_curves.png"))
        out.append(_voltages(result, folder / "voltage_profiles.png"))
    offers = result.detail.get("offers", [])
    if any(o.history is not None and len(o.history) for o in offers):
        out.append(_convergence(offers, folder / "dcp_convergence.png"))
    if any(o.pareto_f is not None for o in offers):
        out.append(_pareto(offers, folder / "dcp_pareto.png"))
    return out


def _convergence(offers, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    for o in offers:
        if o.history is not None and len(o.history):
            ax.plot(np.arange(1, len(o.history) + 1), o.history, label=o.bid.dso_id)
    ax.set_xlabel("iteration")
    ax.set_ylabel("best objective (x⁰ = 1)" if offers[0].pareto_f is None else "compromise f_loss")
    ax.set_title("WCA convergence per DSO")
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pareto(offers, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.8), constrained_layout=True)
    for o in offers:
        if o.pareto_f is None:
            continue
        line = ax.plot(o.pareto_f[:, 0], o.pareto_f[:, 1], ".", label=f"{o.bid.dso_id} front")[0]
        ax.plot(
            *o.pareto_pick, "*", ms=12, color=line.get_color(), label=f"{o.bid.dso_id} compromise"
        )
    ax.set_xlabel("f_loss / f_loss(x⁰)")
    ax.set_ylabel("f_price / f_price(x⁰)")
    ax.set_title("MOWCA fronts of the DSO problems")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _loading(result: MarketResult, path: Path) -> Path:
    cong = result.tables["congestion"]
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


def _busiest(result: MarketResult, at_most: int = MAX_PANELS) -> list[str]:
    """The DSOs with the most accepted flexibility (one panel each), in instance order."""
    acc = result.detail["tso"].accepted_mw.sum()
    top = set(acc.sort_values(ascending=False, kind="stable").index[:at_most])
    return [d for d in acc.index if d in top]


def _offer_curves(result: MarketResult, path: Path) -> Path:
    bids = result.tables["bids"]
    prices = result.tables["tso_prices"]
    dsos = [d for d in _busiest(result) if d in set(bids["dso_id"])]
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
    fig.suptitle(f"aggregated offer curves ({result.method})")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _voltages(result: MarketResult, path: Path) -> Path:
    keep = set(_busiest(result))
    pairs = [
        (c, d)
        for c, d in zip(result.detail["contexts"], result.detail["dispatch"], strict=True)
        if c.dso.id in keep
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


def _losses(result: MarketResult, path: Path) -> Path:
    losses = result.tables["losses"].groupby("dso_id")[["loss_mw_before", "loss_mw_after"]].sum()
    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    x = np.arange(len(losses))
    ax.bar(x - 0.2, losses["loss_mw_before"], 0.4, label="before")
    ax.bar(x + 0.2, losses["loss_mw_after"], 0.4, label="after")
    ax.set_xticks(x, losses.index)
    ax.set_ylabel("feeder losses over the day (MWh)")
    lo = 0.98 * losses.to_numpy().min()
    ax.set_ylim(lo, 1.005 * losses.to_numpy().max())
    ax.set_title(f"DSO losses ({result.method})")
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
