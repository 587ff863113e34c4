"""The figure of the microgrids (the market's third level, ``models/microgrid.md``): listed only
for runs of an instance with microgrids, its bars drawn from the run's table ``microgrids``."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

import flexopt as fx
from flexopt.report.plot_future import MICROGRID_MONEY
from flexopt.run.result import MarketResult
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def mg_run() -> MarketResult:
    return fx.run_market(fx.load_instance(ROOT / "instances" / "rts24-3dso-mg"), "mlf")


def _heights(ax: Axes) -> np.ndarray:
    return np.array([p.get_height() for p in ax.patches if isinstance(p, Rectangle)])


def test_the_figure_is_listed_only_for_runs_with_microgrids(mg_run, mlf_run, central_run):
    assert "microgrids" in fx.plot.figures_of(mg_run)
    assert fx.plot.figures_of(mg_run)["microgrids"] is fx.plot.microgrids
    for run in (mlf_run, central_run):
        assert "microgrids" not in fx.plot.figures_of(run)
        with pytest.raises(ValueError, match="no microgrids"):
            fx.plot.microgrids(run)


def test_design_point_and_delivery_per_microgrid_and_hour(mg_run):
    """A pair of bars per microgrid and congested hour (hours outer, microgrids in the table's
    order): the design point (G3), then the delivery (G7)."""
    table = mg_run.tables["microgrids"]
    fig = fx.plot.microgrids(mg_run)
    assert [ax.get_title() for ax in fig.axes] == [
        "Design point (G3) and delivery (G7) per congested hour",
        "Money per microgrid (G7, G8)",
    ]
    order = table.sort_values(["hour"], kind="stable")  # the table is microgrid-major
    heights = _heights(fig.axes[0])
    assert len(heights) == 2 * len(table) == 18  # 3 microgrids × 3 congested hours
    np.testing.assert_allclose(heights[0::2], order["design_mw"])
    np.testing.assert_allclose(heights[1::2], order["delivered_mw"])
    assert order["delivered_mw"].gt(0.0).any()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == list(dict.fromkeys(table["microgrid_id"]))


def test_money_per_microgrid_over_the_day(mg_run):
    """Per microgrid, the DSO payment, member payments, loss saving and balance summed over
    the congested hours; the balance is payment + saving − member payments (G8)."""
    table = mg_run.tables["microgrids"]
    money = table.groupby("microgrid_id", sort=False)[[c for c, _ in MICROGRID_MONEY]].sum()
    ax = fx.plot.microgrids(mg_run).axes[1]
    heights = _heights(ax)
    assert len(heights) == 4 * len(money) == 12
    expected = np.concatenate([money[c].to_numpy() for c, _ in MICROGRID_MONEY])
    np.testing.assert_allclose(heights, expected)
    np.testing.assert_allclose(
        money["balance_eur"],
        money["dso_payment_eur"] + money["loss_saving_eur"] - money["prosumer_payment_eur"],
        atol=1e-9,
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        label for _, label in MICROGRID_MONEY
    ]
