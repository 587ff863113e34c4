"""What the bundled scenario promises (instances/README.md), checked on the real stages."""

from __future__ import annotations

import numpy as np
import pytest

from flexopt.grid import feeder_from_data
from flexopt.pipeline import dso_loss_allocation, run_physics


@pytest.fixture(scope="module")
def physics(rts):
    return run_physics(rts)


def test_congests_two_lines_in_three_peak_hours(physics):
    cong = physics.tables["congestion"]
    hit = cong[cong["congested"]]
    assert hit["branch"].nunique() >= 2
    per_hour = hit.groupby("hour")["branch"].nunique()
    assert (per_hour >= 2).sum() >= 3  # at least three hours with two congested lines each


def test_day_ahead_point_is_secure(rts, physics):
    """Congestion comes from the sudden load increase, not from the day-ahead dispatch."""
    from dataclasses import replace

    calm = replace(
        rts, scenario=replace(rts.scenario, load_increase=rts.scenario.load_increase * 0)
    )
    assert run_physics(calm).summary["congested_line_hours_before"] == 0


def test_overload_is_of_the_order_of_dso_flexibility(rts, physics):
    flex = sum(d.n_feeders * d.prosumers["p_max_mw"].sum() for d in rts.dsos)
    worst = physics.tables["congestion"].groupby("hour")["overload_mw"].sum().max()
    assert 1.0 < flex / worst < 10.0


def test_losses_scale_with_feeder_copies(rts, physics):
    losses = physics.tables["losses"]
    for dso in rts.dsos:
        one = losses[losses["dso_id"] == dso.id]
        np.testing.assert_allclose(one["loss_mw"], dso.n_feeders * one["feeder_loss_mw"])


def test_screening_keeps_the_loss_heavy_prosumers(rts):
    dso = rts.dsos[0]
    alloc, part = dso_loss_allocation(rts, dso)
    np.testing.assert_allclose(alloc.sum(axis=1), _feeder_losses(rts, dso), rtol=1e-12)
    kept = part[part["participates"]]["loss_share"]
    dropped = part[~part["participates"]]["loss_share"]
    assert len(kept) > 0
    assert kept.min() >= dropped.max()


def _feeder_losses(rts, dso):
    from flexopt.pipeline import feeder_net_load

    p, q = feeder_net_load(rts, dso)
    return feeder_from_data(dso.feeder).power_flow(p, q).loss_mw
