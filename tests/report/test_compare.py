"""The method-comparison figure and the figures a saved run writes."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

import flexopt as fx
from flexopt.atomic import MARKER
from flexopt.report.figures import make_figures
from flexopt.report.plot_compare import WELFARE_TERMS


def _axis(fig: Figure, title: str):
    (ax,) = [ax for ax in fig.axes if ax.get_title().startswith(title)]
    return ax


def _heights(ax) -> list[float]:
    return [float(v) for c in ax.containers for v in c.datavalues]


def test_compare_methods_side_by_side(none_run, mlf_run, central_run):
    runs = [none_run, mlf_run, central_run]
    fig = fx.plot.compare(runs)
    methods = ["none", "mlf", "centralized"]
    for title in ("Relief", "Overload", "TSO payment", "Change of DSO", "Social cost"):
        ax = _axis(fig, title)
        assert [t.get_text() for t in ax.get_xticklabels()] == methods
        assert ax.get_ylabel() in {"€", "MWh over the day", "MW·h"}
    s = [r.summary for r in runs]
    np.testing.assert_allclose(_heights(_axis(fig, "TSO payment")), [x["tso_cost_eur"] for x in s])
    np.testing.assert_allclose(
        _heights(_axis(fig, "Relief")),
        [x["flex_accepted_mwh"] for x in s] + [x["relief_losses_mwh"] for x in s],
    )
    np.testing.assert_allclose(
        _heights(_axis(fig, "Change of DSO")),
        [x["dso_losses_mwh_after"] - x["dso_losses_mwh_before"] for x in s],
    )
    np.testing.assert_allclose(
        _heights(_axis(fig, "Social cost")), [x["social_cost_eur"] for x in s]
    )
    welfare = _axis(fig, "Welfare")
    assert [c.get_label() for c in welfare.containers] == methods
    for c, x in zip(welfare.containers, s, strict=True):
        np.testing.assert_allclose(c.datavalues, [x["welfare"][t] for t in WELFARE_TERMS])
    # payment = balance + surplus + social cost, as the title says
    for x in s:
        w = x["welfare"]
        assert w["tso_payment_eur"] == pytest.approx(
            w["dso_balance_eur"] + w["prosumer_surplus_eur"] + w["social_cost_eur"], abs=0.01
        )
    # summaries compare the same way
    again = fx.plot.compare([r.summary for r in runs])
    assert _heights(_axis(again, "TSO payment")) == _heights(_axis(fig, "TSO payment"))


def test_compare_refuses_mixed_instances_and_tells_repeats_apart(mlf_run):
    other = {**mlf_run.summary, "instance": "elsewhere"}
    with pytest.raises(ValueError, match="different instances: elsewhere, rts24-3dso"):
        fx.plot.compare([mlf_run, other])
    with pytest.raises(ValueError, match="no results"):
        fx.plot.compare([])
    fig = fx.plot.compare([mlf_run, mlf_run.summary])
    ticks = [t.get_text() for t in _axis(fig, "TSO payment").get_xticklabels()]
    assert ticks == ["mlf #1", "mlf #2"]


@pytest.mark.parametrize(
    ("run", "names"),
    [
        ("mlf_run", {"line_loading", "losses_per_dso", "offer_curves", "voltage_profiles"}),
        ("central_run", {"line_loading", "losses_per_dso", "voltage_profiles"}),
        (
            "wca_run",
            {
                "line_loading",
                "losses_per_dso",
                "offer_curves",
                "voltage_profiles",
                "dcp_convergence",
            },
        ),
    ],
)
def test_make_figures_writes_each_figure_that_applies(request, tmp_path, run, names):
    res = request.getfixturevalue(run)
    assert set(fx.plot.figures_of(res)) == names
    written = make_figures(res.outcome, res.tables, tmp_path)
    assert {p.name for p in written} == {f"{n}.png" for n in names}
    assert {p.name for p in tmp_path.iterdir()} == {f"{n}.png" for n in names}  # no temporary
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_saved_run_has_the_figures(mlf_run, tmp_path):
    out = mlf_run.save(tmp_path / "r")
    names = {p.name for p in out.iterdir()}
    assert MARKER in names
    assert {f"{n}.png" for n in fx.plot.figures_of(mlf_run)} <= names
