"""S7 on a one-line system: optimum, uniform prices and line duals derived by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flexopt.market.tso import DSOBid, TSOMarketData, build_tso_market, read_tso_market
from flexopt.solve import SolveStatus, solve


def _bid(dso: str, bus: int, blocks: list[tuple[float, float]]) -> DSOBid:
    q = pd.DataFrame([[b[0] for b in blocks]], index=[1], columns=range(1, len(blocks) + 1))
    p = pd.DataFrame([[b[1] for b in blocks]], index=[1], columns=range(1, len(blocks) + 1))
    return DSOBid(dso_id=dso, bus=bus, q_mw=q, price_eur_per_mwh=p)


def _market(bids, flow=110.0, limit=100.0):
    data = TSOMarketData(
        mean_flow_mw=pd.DataFrame({"l": [flow]}, index=[1]),
        limit_mw=pd.DataFrame({"l": [limit]}, index=[1]),
        sensitivity={1: pd.DataFrame({0: [-0.5], 1: [-0.25]}, index=["l"])},  # bus 0 (A), bus 1 (B)
        bids=tuple(bids),
    )
    m = build_tso_market(data)
    res = solve(m)
    assert res.status is SolveStatus.OPTIMAL
    return read_tso_market(m, data, res.duals, res.objective)


def test_cheapest_relief_per_mw_of_flow_wins():
    """A: 60 €/MWh at 0.5 MW relief per MW → 120 €/MW of relief; B: 20 €/MWh at 0.25 → 80.
    B takes the whole 10 MW: q_B = 40 MW, cost 800 €, line shadow price 80 €/MWh."""
    r = _market([_bid("A", 0, [(30.0, 60.0)]), _bid("B", 1, [(50.0, 20.0)])])
    assert r.accepted_mw.loc[1, "B"] == pytest.approx(40.0)
    assert r.accepted_mw.loc[1, "A"] == pytest.approx(0.0)
    assert r.cost_eur == pytest.approx(800.0)
    assert r.price_eur_per_mwh.loc[1, "B"] == 20.0
    assert np.isnan(r.price_eur_per_mwh.loc[1, "A"])
    assert r.line_price_eur_per_mwh.loc[1, "l"] == pytest.approx(80.0)
    assert r.unresolved_mw.to_numpy().sum() == 0.0


def test_second_dso_marginal_sets_the_line_price():
    """B capped at 20 MW relieves 5 MW; A supplies the other 5 MW of relief with 10 MW:
    cost 20·20 + 60·10 = 1000 €; the marginal MW of relief costs A's 120 €/MWh."""
    r = _market([_bid("A", 0, [(30.0, 60.0)]), _bid("B", 1, [(20.0, 20.0)])])
    assert r.accepted_mw.loc[1, "B"] == pytest.approx(20.0)
    assert r.accepted_mw.loc[1, "A"] == pytest.approx(10.0)
    assert r.cost_eur == pytest.approx(1000.0)
    assert r.price_eur_per_mwh.loc[1, "A"] == 60.0
    assert r.line_price_eur_per_mwh.loc[1, "l"] == pytest.approx(120.0)


def test_blocks_fill_in_price_order_and_marginal_block_sets_the_price():
    r = _market([_bid("A", 0, [(8.0, 30.0), (8.0, 45.0), (8.0, 70.0)])])
    # 20 MW needed: blocks 1 and 2 full, 4 MW of block 3 → uniform price 70 €/MWh
    assert r.accepted_mw.loc[1, "A"] == pytest.approx(20.0)
    assert r.price_eur_per_mwh.loc[1, "A"] == 70.0
    taken = r.blocks.set_index("block")["accepted_mw"]
    np.testing.assert_allclose(taken.to_numpy(), [8.0, 8.0, 4.0], atol=1e-7)


def test_insufficient_bids_leave_reported_overload():
    r = _market([_bid("A", 0, [(6.0, 30.0)])])
    assert r.accepted_mw.loc[1, "A"] == pytest.approx(6.0)
    assert r.unresolved_mw.loc[1, "l"] == pytest.approx(7.0)  # 10 − 0.5·6
