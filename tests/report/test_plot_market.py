"""The market figures: offer curves original vs modified in every congested hour, loss bars
from zero, the coefficient search."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle, StepPatch

import flexopt as fx
from flexopt.dso.clearing import clear

OFFER_LEGEND = {
    "marginal cost, original offers",
    "block bid to the TSO",
    "accepted by the TSO",
}


def _legend_texts(fig: Figure) -> set[str]:
    texts = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    texts += [
        t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()
    ]
    return set(texts)


def _panels(fig: Figure) -> dict[tuple[str, int], object]:
    out = {}
    for ax in fig.axes:
        if ax.get_title():
            dso, hour = ax.get_title().split(", hour ")
            out[dso, int(hour)] = ax
    return out


def test_offer_curves_every_dso_and_congested_hour(mlf_run):
    fig = fx.plot.offer_curves(mlf_run)
    o = mlf_run.outcome
    panels = _panels(fig)
    assert set(panels) == {(d, h) for d in o.dso_ids for h in o.hours}
    assert OFFER_LEGEND | {"marginal cost, modified offers (mlf)"} == _legend_texts(fig)
    accepted, price = o.accepted_mw, o.price_eur_per_mwh
    for offer in o.offers:
        for h in o.hours:
            ax = panels[offer.dso_id, h]
            if offer.u_max_mw.loc[h].sum() == 0:  # DSO3 in hour 15: no requirement, no bid
                assert [t.get_text() for t in ax.texts] == ["no flexibility\noffered"]
                continue
            (stairs,) = [p for p in ax.patches if isinstance(p, StepPatch)]
            values, edges = stairs.get_data()[:2]
            np.testing.assert_allclose(values, offer.bid.price_eur_per_mwh.loc[h])
            np.testing.assert_allclose(np.diff(edges), offer.bid.q_mw.loc[h])
            marks = [ln for ln in ax.lines if ln.get_marker() == "o"]
            if accepted.loc[h, offer.dso_id] > 1e-9:
                (mark,) = marks
                assert mark.get_xdata()[0] == pytest.approx(accepted.loc[h, offer.dso_id])
                assert mark.get_ydata()[0] == pytest.approx(price.loc[h, offer.dso_id])
            else:
                assert not marks
                assert "nothing accepted" in [t.get_text() for t in ax.texts]


def _curves(ax):
    modified, original = (ln for ln in ax.lines if ln.get_marker() in ("None", None, ""))
    return original, modified


def test_offer_curves_original_vs_modified(none_run, mlf_run):
    """``none`` leaves the offers as they are; ``mlf`` moves the screened prosumers' costs."""
    for run, same in ((none_run, True), (mlf_run, False)):
        panels = _panels(fx.plot.offer_curves(run, dso="DSO1"))
        assert {d for d, _ in panels} == {"DSO1"}
        assert {h for _, h in panels} == set(run.outcome.hours)
        h = run.outcome.hours[0]
        original, modified = _curves(panels["DSO1", h])
        assert original.get_linestyle() == "--"
        ctx = run.outcome.context("DSO1")
        offer = run.outcome.offers[0]
        u_max = offer.u_max_mw.loc[h].to_numpy()
        q = np.asarray(original.get_xdata()) / ctx.dso.n_feeders
        a, b = ctx.members["a_eur_per_mw2h"].to_numpy(), ctx.members["b_eur_per_mwh"].to_numpy()
        np.testing.assert_allclose(original.get_ydata(), clear(a, b, u_max, q).price)
        np.testing.assert_allclose(
            modified.get_ydata(), clear(offer.a_mod, offer.b_mod, u_max, q).price
        )
        assert np.allclose(original.get_ydata(), modified.get_ydata()) == same


def test_offer_curves_need_bids(central_run, mlf_run):
    with pytest.raises(ValueError, match="no DSO bids"):
        fx.plot.offer_curves(central_run)
    with pytest.raises(ValueError, match="no DSO 'DSO9'; DSOs: DSO1, DSO2, DSO3"):
        fx.plot.offer_curves(mlf_run, dso="DSO9")


def test_loss_bars_start_at_zero(mlf_run):
    fig = fx.plot.losses(mlf_run)
    (ax,) = fig.axes
    assert ax.get_ylim()[0] == 0.0
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 2 * len(mlf_run.outcome.dso_ids)
    assert all(b.get_y() == 0.0 for b in bars)
    day = mlf_run.tables["losses"].groupby("dso_id")[["loss_mw_before", "loss_mw_after"]].sum()
    heights = sorted(b.get_height() for b in bars)
    np.testing.assert_allclose(heights, sorted(day.to_numpy().ravel()))
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert labels == {"before flexibility", "after flexibility"}
    assert "(MWh)" in ax.get_ylabel()
    changes = [t.get_text() for t in ax.texts]
    change = day["loss_mw_after"] - day["loss_mw_before"]
    pct = (100 * change / day["loss_mw_before"]).round(1)
    assert changes == [
        f"{c:+.2f} MWh\n" + (f"{p:+.1f} %" if p else "0.0 %")
        for c, p in zip(change, pct, strict=True)
    ]


def test_convergence_one_line_per_searching_dso(wca_run, mlf_run):
    fig = fx.plot.convergence(wca_run)
    (ax,) = fig.axes
    offers = wca_run.outcome.offers
    searched = [
        o for o in offers if o.modification.history is not None and len(o.modification.history)
    ]
    assert searched  # the short search still reports a history
    assert [ln.get_label() for ln in ax.lines] == [o.dso_id for o in searched]
    for ln, o in zip(ax.lines, searched, strict=True):
        np.testing.assert_array_equal(ln.get_ydata(), o.modification.history)
    assert ax.get_xlabel() == "iteration"
    assert "offers unchanged" in ax.get_ylabel()
    with pytest.raises(ValueError, match="mlf method reports no history"):
        fx.plot.convergence(mlf_run)
    with pytest.raises(ValueError, match="no pareto front"):
        fx.plot.pareto(wca_run)


def test_pareto_front_and_compromise(rts):
    res = fx.run_market(rts, "wca", pareto=True, wca_iter=10, seed=0)
    fig = fx.plot.pareto(res)
    searched = [o for o in res.outcome.offers if o.modification.pareto_f is not None]
    panels = {ax.get_title(): ax for ax in fig.axes}
    assert list(panels) == [o.dso_id for o in searched]
    assert _legend_texts(fig) == {"offers unchanged (x⁰)", "compromise chosen", "Pareto front"}
    for o in searched:
        ax = panels[o.dso_id]
        lines = {ln.get_label(): ln for ln in ax.lines}
        np.testing.assert_array_equal(
            lines["Pareto front"].get_xdata(), o.modification.pareto_f[:, 0]
        )
        np.testing.assert_array_equal(
            lines["Pareto front"].get_ydata(), o.modification.pareto_f[:, 1]
        )
        pick = lines["compromise chosen"]
        assert (pick.get_xdata()[0], pick.get_ydata()[0]) == tuple(o.modification.pareto_pick)
        assert "f_loss" in ax.get_xlabel()
    assert "f_price" in fig.axes[0].get_ylabel()
