"""Figures of the markets beyond the day-ahead one: the rival DSOs' markups at a Nash
equilibrium against price taking (``models/competition.md``), the intraday market over the
realizations of the load (``models/intraday.md``) and the microgrids inside the DSOs' feeders,
the market's third level (``models/microgrid.md``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from flexopt.market.equilibrium import CompetitionResult, EquilibriumStatus
from flexopt.report.canvas import Figure, RunView, bilevel, new_figure

__all__ = ["competition", "intraday", "microgrids"]

#: The three cases of the intraday figure: the table's column prefix and the label drawn.
INTRADAY_CASES = (
    ("no_market", "no market"),
    ("da_only", "day-ahead only"),
    ("da_id", "day-ahead + intraday"),
)

#: Colours of the price-taking market and of the final markups.
PRICE_TAKING, EQUILIBRIUM = "0.65", "C3"

#: The money of the microgrid figure: the table's column and the label drawn, in bar order.
MICROGRID_MONEY = (
    ("dso_payment_eur", "DSO payment (G7)"),
    ("prosumer_payment_eur", "member payments (G8)"),
    ("loss_saving_eur", "loss saving (G8)"),
    ("balance_eur", "balance (G8, G9)"),
)


def _room(ax: Axes, highest: float, factor: float, bottom: float | None = 0.0) -> None:
    """The y axis up to ``factor`` times the ``highest`` value drawn (room for labels and the
    legend); up to 1 when nothing is above zero."""
    ax.set_ylim(bottom, factor * highest if highest > 0.0 else 1.0)


def _game(result: RunView, figure: str) -> tuple[CompetitionResult, pd.DataFrame]:
    """The run's game and its table ``competition``, or a ``ValueError`` saying why."""
    game = bilevel(result, figure).competition
    if game is None or "competition" not in result.tables:
        raise ValueError(f"{figure}: the DSOs took prices (run with --competition nash)")
    return game, result.tables["competition"]


def _how_it_ended(game: CompetitionResult) -> str:
    """The status of the best-response iteration (N11) in words."""
    rounds = f"{game.rounds} round{'s' if game.rounds != 1 else ''}"
    if game.status is EquilibriumStatus.CONVERGED:
        return f"converged after {rounds}"
    if game.status is EquilibriumStatus.CYCLE:
        return f"a cycle of {game.cycle_length} after {rounds}; last markups"
    return f"not converged in {rounds}; last markups"


def _markup_panel(ax: Axes, table: pd.DataFrame) -> None:
    """Bars per DSO (groups) and congested hour (colours): the markup (N1), faded where
    nothing was accepted; a triangle over each pivotal DSO-hour (N12), filled where the cap
    limits its markups (visible at a markup of 0 too)."""
    dsos = list(dict.fromkeys(table["dso_id"]))
    hours = sorted(table["hour"].unique())
    rows = table.set_index(["dso_id", "hour"])
    width = 0.8 / len(hours)
    top = float(table["markup_eur_per_mwh"].max())
    _room(ax, top, 1.3)
    lift = 0.04 * ax.get_ylim()[1]  # the triangles sit just over their bar
    flagged: dict[str, tuple[list[float], list[float]]] = {"pivotal": ([], []), "capped": ([], [])}
    for j, h in enumerate(hours):
        for i, d in enumerate(dsos):
            if (d, h) not in rows.index:
                continue
            r = rows.loc[(d, h)]
            x, m = i - 0.4 + (j + 0.5) * width, float(r["markup_eur_per_mwh"])
            ax.bar(x, m, width, color=f"C{j % 10}", alpha=1.0 if r["accepted_mw"] > 0 else 0.35)
            if r["pivotal"] or r["capped"]:
                xs, ys = flagged["capped" if r["capped"] else "pivotal"]
                xs.append(x)
                ys.append(m + lift)
    marks = {
        "pivotal": Line2D([], [], marker="v", ls="", mfc="w", mec="k", label="pivotal (N12)"),
        "capped": Line2D([], [], marker="v", ls="", mfc="k", mec="k", label="pivotal, capped"),
    }
    for kind, (xs, ys) in flagged.items():
        if xs:
            ax.plot(xs, ys, ls="", marker="v", ms=5, mfc=marks[kind].get_markerfacecolor(),
                    mec="k", gid=kind)  # fmt: skip
    ax.set_xticks(np.arange(len(dsos)), dsos, rotation=30 if len(dsos) > 6 else 0)
    ax.set_ylabel("markup on every block price (€/MWh)")
    ax.set_title("Markups per DSO and congested hour (N1)", fontsize=10)
    by_hour = [Patch(facecolor=f"C{j % 10}", label=f"hour {h}") for j, h in enumerate(hours)]
    faded = Patch(facecolor="0.5", alpha=0.35, label="nothing accepted")
    ax.legend(
        handles=[*by_hour, *marks.values(), faded],
        fontsize=7,
        ncol=2 if len(hours) <= 8 else 4,
        frameon=False,
        loc="upper left",
    )


def _pair(ax: Axes, x: np.ndarray, before: np.ndarray, after: np.ndarray) -> None:
    """Price taking and final markups side by side at ``x``."""
    ax.bar(x - 0.2, before, 0.4, color=PRICE_TAKING, label="price taking (markups 0)")
    ax.bar(x + 0.2, after, 0.4, color=EQUILIBRIUM, label="at the final markups")


def _tso_payment(table: pd.DataFrame, dt_h: float, prefix: str = "") -> float:
    """The TSO's payment over the day from the table ``competition`` (``prefix``
    ``"price_taking_"`` for the market on the S6 bids): ``Δt Σ p F`` (K5)."""
    price = table[f"{prefix}price_eur_per_mwh"].fillna(0.0)
    return float((price * table[f"{prefix}accepted_mw"]).sum() * dt_h)


def competition(result: RunView) -> Figure:
    """The rival DSOs' game (``models/competition.md``): each DSO's markup (N1) in every
    congested hour at the final markups (the Nash equilibrium when converged, N11), the
    pivotal DSO-hours (N12) and those the cap limits; beside it the TSO's payment (K5) and each
    DSO's profit over the day (N9) at the final markups against the price-taking market
    (N13). Read from the table ``competition``.

    Parameters
    ----------
    result : MarketResult
        A bilevel run with ``competition="nash"`` and congestion.
    """
    game, table = _game(result, "competition")
    o = result.outcome
    dsos = list(dict.fromkeys(table["dso_id"]))
    n_hours = table["hour"].nunique()
    widths = [max(2.0, 0.3 * len(dsos) * n_hours), 0.9, max(2.0, 0.5 * len(dsos))]
    fig = new_figure(min(18.0, 3.0 + sum(widths)), 4.4)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": widths})
    _markup_panel(axes[0], table)
    dt_h = o.instance.dt_h
    pay = [_tso_payment(table, dt_h, "price_taking_"), _tso_payment(table, dt_h)]
    ax = axes[1]
    _pair(ax, np.zeros(1), np.array(pay[:1]), np.array(pay[1:]))
    if pay[0] > 0:
        ax.annotate(f"× {pay[1] / pay[0]:.2f}", (0.2, pay[1]), ha="center", va="bottom",
                    fontsize=8, xytext=(0, 2), textcoords="offset points")  # fmt: skip
    ax.set_xticks([0], ["TSO"])
    _room(ax, max(pay), 1.2)
    ax.set_ylabel("payment over the day (€)")
    ax.set_title("TSO payment (K5)", fontsize=10)
    profit = table.groupby("dso_id", sort=False)[["price_taking_profit_eur", "profit_eur"]].sum()
    profit = profit.reindex(dsos)
    ax = axes[2]
    x = np.arange(len(dsos))
    _pair(ax, x, profit["price_taking_profit_eur"].to_numpy(), profit["profit_eur"].to_numpy())
    ax.set_xticks(x, dsos, rotation=30 if len(dsos) > 6 else 0)
    ax.set_ylabel("profit over the day (€)")
    ax.set_title("DSO profits (N9)", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    _room(ax, float(profit.to_numpy().max()), 1.25, None)
    for a in axes:
        a.tick_params(labelsize=8)
    fig.suptitle(
        f"Rival DSOs ({o.method}): {_how_it_ended(game)}, against price taking", fontsize=11
    )
    return fig


def _intraday_table(result: RunView) -> pd.DataFrame:
    """The run's table ``intraday`` (a row per realization), or a ``ValueError`` saying why."""
    table = result.tables.get("intraday")
    if table is None:
        raise ValueError("intraday: the run had no intraday market (run with --intraday)")
    if table.empty:
        raise ValueError("intraday: no realization finished")
    return table


def _intraday_costs(result: RunView) -> pd.DataFrame:
    """The TSO's expected cost (J11) of the day-ahead market alone and with the intraday
    market, split into the day-ahead payment ``P^DA``, the mean intraday payment ``P^ID`` and
    the mean overload penalty (J10); rows ``da_only``, ``da_id``, columns ``dayahead``,
    ``intraday``, ``penalty`` (€). ``P^DA`` is the TSO's payment in the table ``welfare``."""
    table = _intraday_table(result)
    welfare = result.tables.get("welfare")
    p_da = 0.0 if welfare is None else float(welfare["tso_payment_eur"].sum())
    p_id = float(table["intraday_payment_eur"].mean())
    cost = {c: float(table[f"{c}_cost_eur"].mean()) for c in ("da_only", "da_id")}
    return pd.DataFrame(
        {
            "dayahead": [p_da, p_da],
            "intraday": [0.0, p_id],
            "penalty": [max(cost["da_only"] - p_da, 0.0), max(cost["da_id"] - p_da - p_id, 0.0)],
        },
        index=pd.Index(["da_only", "da_id"], name="case"),
    )


def _overload_panel(ax: Axes, table: pd.DataFrame) -> None:
    """Per case: the expected residual overload (a bar, J11), each realization's overload
    (a dot, J10) and the share of realizations with any overload written on top."""
    n = len(table)
    spread = np.linspace(-0.25, 0.25, n) if n > 1 else np.zeros(1)
    for i, (case, _) in enumerate(INTRADAY_CASES):
        over = table[f"{case}_overload_mwh"].to_numpy(dtype=float)
        mean = float(over.mean())
        ax.bar(i, mean, 0.7, color=f"C{i}", alpha=0.45)
        ax.plot(i + spread, over, ".", color=f"C{i}", ms=5, mec="k", mew=0.3)
        prob = float(np.mean(over > 0.0))
        ax.annotate(f"P(overload) = {100.0 * prob:.0f} %", (i, max(mean, over.max())),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 3),
                    textcoords="offset points")  # fmt: skip
    ax.set_xticks(np.arange(len(INTRADAY_CASES)), [label for _, label in INTRADAY_CASES])
    _room(ax, float(table[[f"{c}_overload_mwh" for c, _ in INTRADAY_CASES]].max().max()), 1.25)
    ax.set_ylabel("residual overload (MW·h over the day)")
    ax.set_title("Residual overload per realization (J10) and expected (J11)", fontsize=10)
    ax.legend(
        handles=[
            Patch(facecolor="0.5", alpha=0.45, label="expected (mean)"),
            Line2D([], [], marker=".", ls="", color="0.3", label="one realization"),
        ],
        fontsize=8,
        frameon=False,
        loc="upper right",
    )


def intraday(result: RunView) -> Figure:
    """The intraday market (``models/intraday.md``) over the realizations that finished: the
    TSO's expected cost (J11) of the day-ahead market alone and with the intraday market,
    split into the day-ahead payment, the intraday payment and the overload penalty (J10), and
    the residual overload (J5, J9) of every realization without any market, after the
    day-ahead market alone and after both, with its expectation and probability (J11). Read
    from the tables ``intraday`` and ``welfare``.

    Parameters
    ----------
    result : MarketResult
        A bilevel run with ``intraday=True``.
    """
    table = _intraday_table(result)
    costs = _intraday_costs(result)
    fig = new_figure(10.5, 4.4)
    ax_cost, ax_over = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.0, 3.0]})
    x = np.arange(len(costs))
    bottom = np.zeros(len(costs))
    parts = {"dayahead": "day-ahead payment", "intraday": "intraday payment",
             "penalty": "overload penalty"}  # fmt: skip
    for (part, label), color in zip(parts.items(), ("C0", "C2", "C3"), strict=True):
        ax_cost.bar(x, costs[part].to_numpy(), 0.6, bottom=bottom, color=color, label=label)
        bottom += costs[part].to_numpy()
    for xi, total in zip(x, bottom, strict=True):
        ax_cost.annotate(f"{total:,.0f} €".replace(",", " "), (xi, total), ha="center",
                         va="bottom", fontsize=8, xytext=(0, 2),
                         textcoords="offset points")  # fmt: skip
    ax_cost.set_xticks(x, [dict(INTRADAY_CASES)[c] for c in costs.index])
    _room(ax_cost, float(bottom.max()), 1.35)
    ax_cost.set_ylabel("expected TSO cost (€)")
    saving = bottom[0] - bottom[1]  # value_of_intraday_eur (J11)
    verdict = f"saves {saving:,.0f} €" if saving >= 0 else f"costs {-saving:,.0f} € more"
    ax_cost.set_title(f"Expected cost (J11); intraday {verdict}".replace(",", " "), fontsize=10)
    ax_cost.legend(fontsize=8, frameon=False, loc="upper right")
    _overload_panel(ax_over, table)
    for a in (ax_cost, ax_over):
        a.tick_params(labelsize=8)
    n = len(table)
    fig.suptitle(
        f"Intraday market over {n} realization{'s' if n != 1 else ''} ({result.outcome.method})",
        fontsize=11,
    )
    return fig


def _microgrid_table(result: RunView) -> pd.DataFrame:
    """The run's table ``microgrids`` (a row per microgrid and congested hour), or a
    ``ValueError`` saying why."""
    table = result.tables.get("microgrids")
    if table is None:
        raise ValueError(
            "microgrids: the run had no microgrids (a bilevel run of an instance with "
            "microgrids, e.g. instances/rts24-3dso-mg)"
        )
    if table.empty:
        raise ValueError("microgrids: no microgrid-hour (no congestion, no market was held)")
    return table


def _microgrid_labels(keys: list[tuple[str, str]]) -> list[str]:
    """The tick label of each (DSO, microgrid): the microgrid's id, prefixed with its DSO's
    where two DSOs use the same id."""
    ids = [g for _, g in keys]
    return [g if ids.count(g) == 1 else f"{d}/{g}" for d, g in keys]


def _delivery_panel(ax: Axes, table: pd.DataFrame, keys: list[tuple[str, str]]) -> None:
    """Bars per microgrid (groups) and congested hour (colours): the design point ``R`` (G3,
    hatched, faded) beside the delivery ``Q`` (G7, solid), hours outer, each pair design
    first."""
    hours = sorted(table["hour"].unique())
    rows = table.set_index(["dso_id", "microgrid_id", "hour"])
    width = 0.8 / len(hours)
    for j, h in enumerate(hours):
        for i, (d, g) in enumerate(keys):
            if (d, g, h) not in rows.index:
                continue
            r = rows.loc[(d, g, h)]
            x = i - 0.4 + (j + 0.5) * width
            ax.bar(x - width / 4, float(r["design_mw"]), width / 2, color=f"C{j % 10}",
                   alpha=0.45, hatch="//", edgecolor="k", linewidth=0.3)  # fmt: skip
            ax.bar(x + width / 4, float(r["delivered_mw"]), width / 2, color=f"C{j % 10}")
    top = float(table[["design_mw", "delivered_mw"]].max().max())
    _room(ax, top, 1.35)
    ax.set_xticks(np.arange(len(keys)), _microgrid_labels(keys),
                  rotation=30 if len(keys) > 6 else 0)  # fmt: skip
    ax.set_ylabel("flexibility (MW)")
    ax.set_title("Design point (G3) and delivery (G7) per congested hour", fontsize=10)
    by_hour = [Patch(facecolor=f"C{j % 10}", label=f"hour {h}") for j, h in enumerate(hours)]
    kinds = [
        Patch(facecolor="0.5", alpha=0.45, hatch="//", edgecolor="k", label="design point"),
        Patch(facecolor="0.5", label="delivered"),
    ]
    ax.legend(handles=[*by_hour, *kinds], fontsize=7, ncol=2 if len(hours) <= 8 else 4,
              frameon=False, loc="upper left")  # fmt: skip


def microgrids(result: RunView) -> Figure:
    """The microgrids inside the DSOs' feeders (``models/microgrid.md``): per microgrid and
    congested hour, its design point ``R`` (G3) beside what its DSO dispatched from it ``Q``
    (G7); beside it, per microgrid over the day, the DSO's payment ``Π`` (G7), its payments to
    its members and the value of its lower internal losses (G8), and its balance (G8), the
    term the welfare identity of G9 adds. Read from the table ``microgrids``: per copy of its
    DSO's feeder.

    Parameters
    ----------
    result : MarketResult
        A bilevel run of an instance with microgrids.
    """
    table = _microgrid_table(result)
    keys = list(dict.fromkeys(zip(table["dso_id"], table["microgrid_id"], strict=True)))
    n_hours = table["hour"].nunique()
    widths = [max(2.5, 0.45 * len(keys) * n_hours), max(2.5, 0.9 * len(keys))]
    fig = new_figure(min(18.0, 3.0 + sum(widths)), 4.4)
    ax_mw, ax_eur = fig.subplots(1, 2, gridspec_kw={"width_ratios": widths})
    _delivery_panel(ax_mw, table, keys)
    money = table.groupby(["dso_id", "microgrid_id"], sort=False)[
        [c for c, _ in MICROGRID_MONEY]
    ].sum()
    money = money.reindex(pd.MultiIndex.from_tuples(keys))
    x = np.arange(len(keys))
    width = 0.8 / len(MICROGRID_MONEY)
    for k, (column, label) in enumerate(MICROGRID_MONEY):
        ax_eur.bar(x - 0.4 + (k + 0.5) * width, money[column].to_numpy(), width,
                   color=f"C{k}", label=label)  # fmt: skip
    ax_eur.axhline(0.0, color="k", lw=0.5)
    ax_eur.set_xticks(x, _microgrid_labels(keys), rotation=30 if len(keys) > 6 else 0)
    _room(ax_eur, float(money.to_numpy().max()), 1.45, min(0.0, 1.1 * float(money.min().min())))
    ax_eur.set_ylabel("over the day (€)")
    ax_eur.set_title("Money per microgrid (G7, G8)", fontsize=10)
    ax_eur.legend(fontsize=7, ncol=2, frameon=False, loc="upper left")
    for a in (ax_mw, ax_eur):
        a.tick_params(labelsize=8)
    n = len(keys)
    fig.suptitle(
        f"Microgrids ({result.outcome.method}): {n} microgrid{'s' if n != 1 else ''}, "
        "per copy of its DSO's feeder",
        fontsize=11,
    )
    return fig
