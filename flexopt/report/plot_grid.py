"""Figures of the networks: transmission line loading before/after, feeder voltage profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from flexopt.grid import Feeder
from flexopt.outcome import BilevelOutcome
from flexopt.report.canvas import Figure, RunView, busiest, new_figure

__all__ = ["electrical_distance_ohm", "line_loading", "loading_rows", "voltage_profiles"]

#: Colour scale of the loading heatmaps (% of the limit); above it the colour saturates.
LOADING_MAX_PERCENT = 120.0


def loading_rows(
    congestion: pd.DataFrame, rows: int = 15, min_percent: float = 50.0
) -> tuple[list[str], str]:
    """The branches a line-loading figure shows, and the rule that chose them, in words.

    The lines congested in some hour before or after flexibility come first; the other
    lines whose expected flow reaches ``min_percent`` of their limit in some hour fill the
    figure up to ``rows``. Either group is taken by its peak loading (before or after),
    highest first, and the rows are sorted that way.
    """
    loading = congestion.assign(
        after_percent=100.0 * congestion["mean_mw_after"].abs() / congestion["rating_mw"]
    )
    by_branch = loading.groupby("branch", sort=False)
    peak = by_branch[["loading_percent", "after_percent"]].max().max(axis=1)
    congested = by_branch[["congested", "congested_after"]].any().any(axis=1)
    peak = peak.sort_values(ascending=False, kind="stable")
    over = [b for b in peak.index if congested[b]]
    rest = [b for b in peak.index if not congested[b] and peak[b] >= min_percent]
    chosen = set((over + rest)[:rows])
    order = [b for b in peak.index if b in chosen]
    n_over = min(len(over), rows)
    more = len(order) - n_over
    rule = (
        f"Rows: the {n_over} line{'s' if n_over != 1 else ''} congested in some hour "
        f"(before or after)"
        + (f" of {len(over)}, the most loaded" if len(over) > rows else "")
        + (
            f", then the {more} other{'s' if more != 1 else ''} with the highest peak loading "
            f"≥ {min_percent:g} % (at most {rows} rows)"
            if more
            else f"; no other line reaches {min_percent:g} % of its limit"
        )
        + "; sorted by peak loading."
    )
    return order, rule


def line_loading(result: RunView, *, rows: int = 15, min_percent: float = 50.0) -> Figure:
    """Heatmaps of the transmission line loading before and after flexibility.

    Colour: the expected flow ``|E f|`` as % of the line limit per line and hour; ``×``:
    the line-hours congested by (P6). The rows are chosen by :func:`loading_rows` (the rule
    is printed under the figure).

    Parameters
    ----------
    result : MarketResult
    rows : int
        At most this many lines.
    min_percent : float
        Lines that are never congested are shown only from this peak loading on.
    """
    cong = result.tables["congestion"]
    order, rule = loading_rows(cong, rows, min_percent)
    if not order:  # nothing near its limit: still show the most loaded line
        order = [str(cong.loc[cong["loading_percent"].idxmax(), "branch"])]
        rule = f"No line reaches {min_percent:g} % of its limit; the most loaded line."

    def grid(column: str) -> pd.DataFrame:
        return cong.pivot(index="branch", columns="hour", values=column).loc[order]

    rating = grid("rating_mw")
    panels = (
        ("before flexibility", grid("loading_percent"), grid("congested")),
        (
            "after flexibility (re-check with the relief)",
            100.0 * grid("mean_mw_after").abs() / rating,
            grid("congested_after"),
        ),
    )
    fig = new_figure(12, max(3.8, 2.5 + 0.28 * len(order)))
    axes = fig.subplots(1, 2, sharey=True)
    hours = panels[0][1].columns
    for ax, (title, data, flag) in zip(axes, panels, strict=True):
        im = ax.imshow(
            data.to_numpy(dtype=float),
            aspect="auto",
            cmap="RdYlGn_r",
            vmin=0.0,
            vmax=LOADING_MAX_PERCENT,
            interpolation="nearest",
        )
        ax.set_title(title)
        step = max(1, len(hours) // 12)
        ax.set_xticks(range(0, len(hours), step), [str(h) for h in hours[::step]])
        ax.set_xlabel("hour of the day")
        i, j = np.nonzero(flag.to_numpy(dtype=bool))
        ax.scatter(j, i, marker="x", s=28, color="black", linewidths=1.2)
    axes[0].set_yticks(range(len(order)), order)
    axes[0].set_ylabel("transmission line")
    fig.colorbar(im, ax=axes, label="expected flow (% of the line limit)", extend="max", shrink=0.9)
    mark = Line2D([], [], marker="x", color="black", linestyle="", markersize=7)
    fig.legend(
        [mark],
        ["congested line-hour (expected flow + risk margin above the limit)"],
        loc="outside lower left",
        frameon=False,
    )
    fig.suptitle(f"Transmission line loading ({result.outcome.method})\n{rule}", fontsize=10)
    return fig


def electrical_distance_ohm(feeder: Feeder) -> np.ndarray:
    """``[n_bus]``: the summed branch impedance ``Σ|z|`` from the root to each bus, in Ω at
    the root's nominal voltage (impedances are referred to the root, F3a)."""
    z_ohm = np.hypot(feeder.r_pu, feeder.x_pu) * feeder.vn_kv**2 / feeder.base_mva
    children: dict[int, list[int]] = {}
    for k, p in enumerate(feeder.parent):
        children.setdefault(int(p), []).append(k)
    dist = np.zeros(len(feeder.bus))
    stack = [int(feeder.root)]
    while stack:  # depth first from the root: a bus is reached after its parent
        p = stack.pop()
        for k in children.get(p, ()):
            c = int(feeder.child[k])
            dist[c] = dist[p] + z_ohm[k]
            stack.append(c)
    return dist


def _band(result: RunView) -> tuple[float, float]:
    """The voltage band of the run: the common market's (the bilevel run keeps the same
    view, ``common_view``, to score its dispatch on it)."""
    o = result.outcome
    data = o.common_view if isinstance(o, BilevelOutcome) else o.data
    if data is None:  # no market held: the common market's default band
        return 0.95, 1.05
    return float(data.vm_limits_pu[0]), float(data.vm_limits_pu[1])


def voltage_profiles(result: RunView, *, hour: int | None = None) -> Figure:
    """Feeder voltages before and after the dispatch along the feeder, one panel per DSO
    (the most active, at most :data:`~flexopt.report.canvas.MAX_PANELS`).

    Each bus is drawn at its electrical distance from the root (:func:`electrical_distance_ohm`)
    and each branch as a segment from its parent bus to its child, so laterals are never
    joined; the voltage band of the run is shaded.

    Parameters
    ----------
    result : MarketResult
    hour : int, optional
        The hour to show; default: each DSO's hour with the most dispatched flexibility.
    """
    o = result.outcome
    if o.accepted_mw is None:
        raise ValueError("voltage_profiles: no congestion, nothing was dispatched")
    keep = set(busiest(o))
    pairs = [(c, d) for c, d in zip(o.contexts, o.dispatch, strict=True) if c.dso.id in keep]
    lo, hi = _band(result)
    fig = new_figure(0.4 + 4.8 * len(pairs), 4.4)
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    for ax, (ctx, dsp) in zip(axes, pairs, strict=True):
        moved = dsp.dispatch.groupby("hour")["u_mw"].sum()
        h = hour if hour is not None else (int(moved.idxmax()) if len(moved) else int(ctx.hours[0]))
        t = ctx.hours.get_loc(h)
        idle = " (nothing dispatched)" if moved.get(h, 0.0) <= 0 else ""
        feeder = ctx.feeder
        dist = electrical_distance_ohm(feeder)
        ax.axhspan(lo, hi, color="0.92", zorder=0)
        for vm, colour in ((dsp.vm_before[t], "C0"), (dsp.vm_after[t], "C1")):
            seg = np.stack(
                [
                    np.column_stack([dist[feeder.parent], vm[feeder.parent]]),
                    np.column_stack([dist[feeder.child], vm[feeder.child]]),
                ],
                axis=1,
            )
            ax.add_collection(LineCollection(list(seg), colors=colour, linewidths=1.2))
            ax.plot(dist, vm, ".", color=colour, ms=3)
        ax.plot([0.0], [dsp.vm_before[t][feeder.root]], "k^", ms=7)
        ax.autoscale_view()
        ax.set_title(f"{ctx.dso.id}: {feeder.name}\nhour {h}{idle}", fontsize=9)
        ax.set_xlabel(f"electrical distance from the root, Σ|z| (Ω at {feeder.vn_kv:g} kV)")
        ax.set_ylabel("voltage magnitude (pu)")
    handles = [
        Line2D([], [], color="C0", marker=".", label="before flexibility"),
        Line2D([], [], color="C1", marker=".", label="after flexibility"),
        Line2D([], [], color="k", marker="^", linestyle="", label="root (TSO interface)"),
        Patch(color="0.92", label=f"voltage band {lo:g}–{hi:g} pu"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False)
    when = f"hour {hour}" if hour is not None else "each DSO's hour with the most dispatch"
    fig.suptitle(
        f"Feeder voltage profiles ({o.method}) at {when}; one segment per branch",
        fontsize=10,
    )
    return fig
