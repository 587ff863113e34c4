"""What the bundled scenario promises (instances/README.md), checked on the real stages."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flexopt.dso.context import prepare
from flexopt.run.api import run_market


@pytest.fixture(scope="module")
def market(rts):
    return run_market(rts, "none")


def test_congests_two_lines_in_three_peak_hours(market):
    cong = market.tables["congestion"]
    hit = cong[cong["congested"]]
    assert hit["branch"].nunique() >= 2
    per_hour = hit.groupby("hour")["branch"].nunique()
    assert (per_hour >= 2).sum() >= 3  # at least three hours with two congested lines each


def test_day_ahead_point_is_secure(rts):
    """Congestion comes from the sudden load increase, not from the day-ahead dispatch."""
    calm = replace(
        rts, scenario=replace(rts.scenario, load_increase=rts.scenario.load_increase * 0)
    )
    res = run_market(calm, "none")
    assert res.summary["congested_line_hours_before"] == 0
    assert res.summary["flex_accepted_mwh"] == 0.0


def test_overload_is_of_the_order_of_dso_flexibility(rts, market):
    flex = sum(d.n_feeders * d.prosumers["p_max_mw"].sum() for d in rts.dsos)
    worst = market.tables["congestion"].groupby("hour")["overload_mw"].sum().max()
    assert 1.0 < flex / worst < 20.0


def test_losses_scale_with_feeder_copies(rts, market):
    losses = market.tables["losses"]
    for dso in rts.dsos:
        one = losses[losses["dso_id"] == dso.id]
        np.testing.assert_allclose(
            one["loss_mw_before"], dso.n_feeders * one["feeder_loss_mw_before"]
        )


def test_screening_keeps_the_loss_heavy_prosumers(rts):
    ctx = prepare(rts, rts.dsos[0])
    np.testing.assert_allclose(ctx.allocation.sum(axis=1), ctx.loss_mw, rtol=1e-12)
    part = ctx.participants
    kept = part[part["screened"]]["loss_share"]
    dropped = part[~part["screened"]]["loss_share"]
    assert part["offers"].all()  # everyone offers; the screening picks whose factors change
    assert len(kept) > 0
    assert kept.min() >= dropped.max()
