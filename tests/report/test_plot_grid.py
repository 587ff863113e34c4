"""The network figures: line loading rows by a stated rule, voltage profiles along the tree."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import flexopt as fx
from flexopt.report.plot_grid import loading_rows


def _legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def _congestion(peaks: dict[str, tuple[float, bool]]) -> pd.DataFrame:
    """Two hours per branch: the peak loading (hour 2) and a quarter of it (hour 1)."""
    rows = []
    for branch, (peak, congested) in peaks.items():
        for hour, share in ((1, 0.25), (2, 1.0)):
            rows.append(
                {
                    "hour": hour,
                    "branch": branch,
                    "rating_mw": 100.0,
                    "loading_percent": peak * share,
                    "mean_mw_after": -0.5 * peak * share,  # the sign of a flow is no loading
                    "congested": congested and hour == 2,
                    "congested_after": False,
                }
            )
    return pd.DataFrame(rows)


def test_loading_rows_congested_first_then_the_most_loaded_above_the_floor():
    cong = _congestion(
        {"low": (10.0, False), "a": (90.0, False), "over": (40.0, True), "b": (60.0, False)}
    )
    # "over" is congested by the risk margin while its expected flow is only at 40 %
    order, rule = loading_rows(cong, rows=15, min_percent=50.0)
    assert set(order) == {"over", "a", "b"}  # "low" never reaches 50 %
    assert order == ["a", "b", "over"]  # sorted by peak loading
    assert "the 1 line congested" in rule
    assert "the 2 others" in rule
    assert "≥ 50 %" in rule
    order, rule = loading_rows(cong, rows=2, min_percent=50.0)
    assert order == ["a", "over"]  # the congested line is kept, the cap takes "b"
    order, rule = loading_rows(cong, rows=15, min_percent=95.0)
    assert order == ["over"]
    assert "no other line reaches 95 %" in rule


def test_loading_rows_use_the_after_loading_too():
    cong = _congestion({"x": (30.0, False)})
    cong.loc[cong["hour"] == 2, "mean_mw_after"] = 70.0  # loaded only after the relief
    cong.loc[cong["hour"] == 2, "congested_after"] = True
    order, _ = loading_rows(cong, min_percent=50.0)
    assert order == ["x"]


def test_line_loading_marks_labels_and_rows(mlf_run):
    fig = fx.plot.line_loading(mlf_run)
    assert isinstance(fig, Figure)
    before, after, bar = fig.axes
    cong = mlf_run.tables["congestion"]
    order, rule = loading_rows(cong)
    assert [t.get_text() for t in before.get_yticklabels()] == order
    assert set(order[:2]) == set(mlf_run.summary["congested_lines_before"])  # congested first
    peak = cong.groupby("branch")["loading_percent"].max()
    assert all(peak[b] >= 50.0 for b in order[2:])
    assert rule in fig.get_suptitle()
    assert "% of the line limit" in bar.get_ylabel()
    assert any("congested line-hour" in t for t in _legend_texts(fig))
    # one × per congested line-hour of the shown rows, in its cell
    marks = [c for c in before.collections if isinstance(c, PathCollection)]
    xy = marks[0].get_offsets()
    hours = sorted(cong["hour"].unique())
    flagged = cong[cong["congested"] & cong["branch"].isin(order)]
    assert len(xy) == len(flagged) == mlf_run.summary["congested_line_hours_before"]
    cells = {(hours[int(j)], order[int(i)]) for j, i in np.asarray(xy)}
    assert cells == set(zip(flagged["hour"], flagged["branch"], strict=True))
    after_marks = [c for c in after.collections if isinstance(c, PathCollection)]
    assert len(after_marks[0].get_offsets()) == mlf_run.summary["congested_line_hours_after"]


def test_electrical_distance_adds_each_branch_impedance(case33):
    dist = fx.plot.electrical_distance_ohm(case33)
    z_ohm = np.hypot(case33.r_pu, case33.x_pu) * case33.vn_kv**2 / case33.base_mva
    assert dist[case33.root] == 0.0
    np.testing.assert_allclose(dist[case33.child] - dist[case33.parent], z_ohm, rtol=1e-12)
    # case33bw bus 18 (position 17), the end of the main trunk, is ~ 1 + 3.7 Ω away
    assert 4.0 < dist.max() < 20.0


def test_voltage_profiles_join_only_parent_and_child(mlf_run):
    fig = fx.plot.voltage_profiles(mlf_run)
    o = mlf_run.outcome
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split(":")[0] for ax in panels] == o.dso_ids
    for ax, ctx, dsp in zip(panels, o.contexts, o.dispatch, strict=True):
        feeder = ctx.feeder
        dist = fx.plot.electrical_distance_ohm(feeder)
        t = ctx.hours.get_loc(int(ax.get_title().split("hour ")[1].split()[0]))
        lines = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(lines) == 2  # before, after
        branches = {(int(p), int(c)) for p, c in zip(feeder.parent, feeder.child, strict=True)}
        for coll, vm in zip(lines, (dsp.vm_before[t], dsp.vm_after[t]), strict=True):
            segs = coll.get_segments()
            assert len(segs) == feeder.n_branch
            for seg in segs:
                ends = []
                for x, y in seg:
                    hit = np.flatnonzero(np.isclose(dist, x) & np.isclose(vm, y))
                    assert len(hit) >= 1
                    ends.append(int(hit[0]))
                assert (ends[0], ends[1]) in branches, "a segment joins two buses not parent/child"
        # drawn in bus order the lines would join buses that are no branch's ends
        assert any((i, i + 1) not in branches for i in range(feeder.n_bus - 1))
        (band,) = ax.patches  # the shaded voltage band, in data coordinates along y
        assert isinstance(band, Rectangle)
        assert np.isclose(band.get_y(), 0.95)
        assert np.isclose(band.get_y() + band.get_height(), 1.05)
        assert "Ω" in ax.get_xlabel()
        assert "(pu)" in ax.get_ylabel()
    labels = _legend_texts(fig)
    assert {"before flexibility", "after flexibility", "root (TSO interface)"} <= set(labels)
    assert "voltage band 0.95–1.05 pu" in labels


def test_voltage_profiles_band_of_the_run(rts):
    res = fx.run_market(rts, "centralized", vm_limits_pu=(0.9, 1.1))
    fig = fx.plot.voltage_profiles(res, hour=14)
    assert "voltage band 0.9–1.1 pu" in _legend_texts(fig)
    assert all("hour 14" in ax.get_title() for ax in fig.axes if ax.get_title())


def test_figures_leave_no_pyplot_state(mlf_run):
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    fx.plot.line_loading(mlf_run)
    fx.plot.voltage_profiles(mlf_run)
    assert plt.get_fignums() == open_before
