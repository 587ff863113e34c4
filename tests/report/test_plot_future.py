"""The figures of the rival DSOs' game (``--competition nash``) and of the intraday market
(``--intraday``): listed only for runs that have them, drawn from the run's tables (each bar
checked against the summary the same run wrote), written by ``flexopt run --out``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

import flexopt as fx
from flexopt.outcome import MarketOutcome
from flexopt.run.result import MarketResult
from tests.conftest import RTS, exit_code

CASES = ("no_market", "da_only", "da_id")


@pytest.fixture(scope="module")
def nash_run(rts: fx.Instance) -> MarketResult:
    return fx.run_market(rts, "none", competition="nash")


@pytest.fixture(scope="module")
def intraday_run(rts: fx.Instance) -> MarketResult:
    return fx.run_market(rts, "none", intraday=True, scenarios=3)


@dataclass(frozen=True)
class _View:
    """A run view with tables of our own (``flexopt.report.canvas.RunView``)."""

    outcome: MarketOutcome
    tables: dict[str, pd.DataFrame]


def _bars(ax: Axes) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def _heights(ax: Axes) -> np.ndarray:
    return np.array([b.get_height() for b in _bars(ax)])


def test_the_figures_are_listed_only_for_runs_with_the_feature(
    nash_run, intraday_run, none_run, central_run
):
    assert "competition" in fx.plot.figures_of(nash_run)
    assert "intraday" not in fx.plot.figures_of(nash_run)
    assert "intraday" in fx.plot.figures_of(intraday_run)
    assert "competition" not in fx.plot.figures_of(intraday_run)
    for run in (none_run, central_run):
        assert not {"competition", "intraday"} & set(fx.plot.figures_of(run))
    with pytest.raises(ValueError, match="--competition nash"):
        fx.plot.competition(none_run)
    with pytest.raises(ValueError, match="--intraday"):
        fx.plot.intraday(none_run)
    with pytest.raises(ValueError, match="no DSO bids"):
        fx.plot.competition(central_run)


def test_competition_markups_per_dso_and_hour(nash_run):
    """A bar per DSO and congested hour (hours outer, DSOs in instance order) at the table's
    markup; faded where S7 accepted nothing."""
    table = nash_run.tables["competition"]
    fig = fx.plot.competition(nash_run)
    assert [ax.get_title() for ax in fig.axes] == [
        "Markups per DSO and congested hour (N1)",
        "TSO payment (K5)",
        "DSO profits (N9)",
    ]
    markups = fig.axes[0]
    order = table.sort_values(["hour"], kind="stable")  # the table is DSO-major
    bars = _bars(markups)
    assert len(bars) == len(table) == 9  # 3 DSOs × 3 congested hours
    np.testing.assert_allclose(_heights(markups), order["markup_eur_per_mwh"])
    faded = [b.get_alpha() == pytest.approx(0.35) for b in bars]
    assert faded == list(order["accepted_mw"] <= 0.0)
    assert any(faded)  # DSO3 sells nothing in hour 15
    assert [t.get_text() for t in markups.get_xticklabels()] == nash_run.outcome.dso_ids
    s = nash_run.summary["competition"]
    assert f"{s['status']} after {s['rounds']} rounds" in fig.get_suptitle()


def test_competition_payment_and_profits_against_price_taking(nash_run):
    """The TSO's payment and each DSO's profit, price taking beside the final markups: the
    summary's ``competition`` figures."""
    s = nash_run.summary["competition"]
    _, payment, profits = fx.plot.competition(nash_run).axes[:3]
    np.testing.assert_allclose(
        _heights(payment), [s["tso_payment_price_taking_eur"], s["tso_payment_eur"]], atol=1e-4
    )
    assert payment.texts[0].get_text() == f"× {s['tso_payment_ratio_pu']:.2f}"
    dsos = nash_run.outcome.dso_ids
    expected = [s["dso"][d]["profit_price_taking_eur"] for d in dsos]
    expected += [s["dso"][d]["profit_eur"] for d in dsos]
    np.testing.assert_allclose(_heights(profits), expected, atol=1e-4)
    assert s["tso_payment_eur"] > s["tso_payment_price_taking_eur"]  # the markups cost the TSO


def test_pivotal_and_capped_dso_hours_are_marked(nash_run):
    """A triangle over each pivotal DSO-hour, filled where the cap limits it — over a markup
    of 0 too (the bundled case has neither: the flags are set on a copy of the table)."""
    table = nash_run.tables["competition"].copy()
    table["pivotal"] = table["dso_id"].isin(["DSO1", "DSO3"])
    table["capped"] = (table["dso_id"] == "DSO1") & (table["hour"] == table["hour"].min())
    view = _View(nash_run.outcome, {**nash_run.tables, "competition": table})
    ax = fx.plot.competition(view).axes[0]
    order = table.sort_values(["hour"], kind="stable").reset_index(drop=True)
    centres = np.array([b.get_x() + b.get_width() / 2 for b in _bars(ax)])
    marks = {ln.get_gid(): ln for ln in ax.lines}
    assert set(marks) == {"pivotal", "capped"}
    open_ = order.index[order["pivotal"] & ~order["capped"]]
    np.testing.assert_allclose(marks["pivotal"].get_xdata(), centres[open_])
    np.testing.assert_allclose(marks["capped"].get_xdata(), centres[order.index[order["capped"]]])
    assert len(marks["capped"].get_xdata()) == 1
    assert marks["capped"].get_markerfacecolor() != marks["pivotal"].get_markerfacecolor()
    heights = order.loc[open_, "markup_eur_per_mwh"].to_numpy()
    assert (np.asarray(marks["pivotal"].get_ydata()) > heights).all()  # over their bars
    assert (heights == 0.0).any()  # DSO3 in hour 15: marked over a bar of height 0
    assert not fx.plot.competition(nash_run).axes[0].lines  # no DSO-hour is pivotal


def test_intraday_expected_cost_split(intraday_run):
    """Two stacked bars, day-ahead only and with the intraday market: the day-ahead payment,
    the intraday payment and the penalty add up to the summary's expected costs."""
    s = intraday_run.summary["intraday"]
    fig = fx.plot.intraday(intraday_run)
    assert len(fig.axes) == 2
    cost = fig.axes[0]
    bars = _bars(cost)
    assert len(bars) == 6  # 3 parts × 2 cases
    totals = {}
    for b in bars:
        x = round(b.get_x() + b.get_width() / 2)
        totals[x] = totals.get(x, 0.0) + b.get_height()
    expected = [s["da_only"]["expected_cost_eur"], s["da_id"]["expected_cost_eur"]]
    np.testing.assert_allclose([totals[0], totals[1]], expected, atol=1e-4)
    np.testing.assert_allclose(
        [b.get_height() for b in bars[:2]], [s["dayahead_payment_eur"]] * 2, atol=1e-4
    )
    intraday_part = [b.get_height() for b in bars[2:4]]
    assert intraday_part == pytest.approx([0.0, s["da_id"]["expected_intraday_payment_eur"]])
    assert f"{s['value_of_intraday_eur']:,.0f}".replace(",", " ") in cost.get_title()


def test_intraday_residual_overload_per_realization(intraday_run):
    """A bar per case at the expected overload, a dot per realization at its overload, and the
    probability of any overload written over each."""
    s = intraday_run.summary["intraday"]
    table = intraday_run.tables["intraday"]
    _, over = fx.plot.intraday(intraday_run).axes
    np.testing.assert_allclose(
        _heights(over), [s[c]["expected_overload_mwh"] for c in CASES], atol=1e-6
    )
    dots = [ln for ln in over.lines if ln.get_marker() == "."]
    assert len(dots) == 3
    for ln, case in zip(dots, CASES, strict=True):
        assert len(ln.get_ydata()) == len(table) == 3
        np.testing.assert_allclose(ln.get_ydata(), table[f"{case}_overload_mwh"])
    probs = [f"P(overload) = {100.0 * s[c]['overload_prob_pu']:.0f} %" for c in CASES]
    assert [t.get_text() for t in over.texts] == probs


def test_saved_runs_write_the_figures(nash_run, tmp_path):
    """``MarketResult.save`` (``make_figures``) and ``flexopt run --out`` write the PNGs."""
    folder = nash_run.save(tmp_path / "nash")
    assert (folder / "competition.png").stat().st_size > 10_000
    assert not (folder / "intraday.png").exists()
    out = tmp_path / "intraday"
    argv = ["run", str(RTS), "--method", "none", "--intraday", "--scenarios", "3"]
    assert exit_code([*argv, "--out", str(out)]) == 0
    assert (out / "intraday.png").stat().st_size > 10_000
    assert not (out / "competition.png").exists()
