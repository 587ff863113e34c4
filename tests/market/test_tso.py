"""S7 on a one-line system: optimum, uniform prices and line duals derived by hand, under the
supporting-price rule (K5, default) and the last-block rule kept for comparison. Every case
is solved twice — the Pyomo model and the arrays the run clears (``flexopt.market.tso_lp``) —
and the two must agree bit for bit; so must they on larger random markets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flexopt.market.pricing import read_supporting_duals
from flexopt.market.tso import (
    DSOBid,
    TSOMarketData,
    build_tso_market,
    build_tso_pricing,
    read_tso_market,
)
from flexopt.market.tso_lp import build_tso_lp
from flexopt.run.tso import clear_tso_market
from flexopt.solve import SolveStatus, solve
from tests.market._handed import assert_same_lp

RESULT_FRAMES = (
    "accepted_mw",
    "price_eur_per_mwh",
    "blocks",
    "line_price_eur_per_mwh",
    "unresolved_mw",
)


def _bid(dso: str, bus: int, blocks: list[tuple[float, float]]) -> DSOBid:
    q = pd.DataFrame([[b[0] for b in blocks]], index=[1], columns=range(1, len(blocks) + 1))
    p = pd.DataFrame([[b[1] for b in blocks]], index=[1], columns=range(1, len(blocks) + 1))
    return DSOBid(dso_id=dso, bus=bus, q_mw=q, price_eur_per_mwh=p)


def _market(bids, flow=110.0, limit=100.0, pricing="interface", h_b=-0.25):
    """One line, A at bus 0 (−0.5 MW of flow per MW), B at bus 1 (``h_b``), solved as
    ``run/tso.py::tso_market`` does: the LP, then (interface pricing) the least-payment
    supporting multipliers with the slacks held fixed."""
    data = TSOMarketData(
        mean_flow_mw=pd.DataFrame({"l": [flow]}, index=[1]),
        limit_mw=pd.DataFrame({"l": [limit]}, index=[1]),
        sensitivity={1: pd.DataFrame({0: [-0.5], 1: [h_b]}, index=["l"])},
        bids=tuple(bids),
    )
    return _both(data, pricing)


def _pyomo(data: TSOMarketData, pricing: str):
    m = build_tso_market(data)
    res = solve(m)
    assert res.status is SolveStatus.OPTIMAL
    duals = res.duals
    if pricing == "interface":
        lp = build_tso_pricing(m)
        assert solve(lp.model).status is SolveStatus.OPTIMAL
        duals = read_supporting_duals(lp)
    return read_tso_market(m, data, duals, res.objective, pricing)


def _both(data: TSOMarketData, pricing: str):
    """The Pyomo model's result, after checking that the arrays hand HiGHS the same LP and
    give the same result bit for bit."""
    assert_same_lp(build_tso_market(data), build_tso_lp(data).lp)
    ref = _pyomo(data, pricing)
    got = clear_tso_market(data, pricing)
    for name in RESULT_FRAMES:
        pd.testing.assert_frame_equal(getattr(got, name), getattr(ref, name), check_exact=True)
    assert got.cost_eur == ref.cost_eur
    return ref


@pytest.fixture(params=["interface", "last_block"])
def pricing(request):
    return request.param


def test_cheapest_relief_per_mw_of_flow_wins(pricing):
    """A: 60 €/MWh at 0.5 MW relief per MW → 120 €/MW of relief; B: 20 €/MWh at 0.25 → 80.
    B takes the whole 10 MW: q_B = 40 MW, cost 800 €, line shadow price 80 €/MWh. B's block
    is marginal (partly taken), so both rules pay it 20 €/MWh."""
    r = _market([_bid("A", 0, [(30.0, 60.0)]), _bid("B", 1, [(50.0, 20.0)])], pricing=pricing)
    assert r.accepted_mw.loc[1, "B"] == pytest.approx(40.0)
    assert r.accepted_mw.loc[1, "A"] == pytest.approx(0.0)
    assert r.cost_eur == pytest.approx(800.0)
    assert r.price_eur_per_mwh.loc[1, "B"] == pytest.approx(20.0, abs=1e-4)
    assert np.isnan(r.price_eur_per_mwh.loc[1, "A"])
    assert r.line_price_eur_per_mwh.loc[1, "l"] == pytest.approx(80.0)
    assert r.unresolved_mw.to_numpy().sum() == 0.0


def test_second_dso_marginal_sets_the_line_price(pricing):
    """B capped at 20 MW relieves 5 MW; A supplies the other 5 MW of relief with 10 MW:
    cost 20·20 + 60·10 = 1000 €; the marginal MW of relief costs A's 120 €/MWh. The
    supporting price pays B what its relief is worth, 0.25 · 120 = 30 €/MWh; the last-block
    rule pays it its own 20 €/MWh."""
    r = _market([_bid("A", 0, [(30.0, 60.0)]), _bid("B", 1, [(20.0, 20.0)])], pricing=pricing)
    assert r.accepted_mw.loc[1, "B"] == pytest.approx(20.0)
    assert r.accepted_mw.loc[1, "A"] == pytest.approx(10.0)
    assert r.cost_eur == pytest.approx(1000.0)
    assert r.price_eur_per_mwh.loc[1, "A"] == pytest.approx(60.0, abs=1e-4)
    want_b = 30.0 if pricing == "interface" else 20.0
    assert r.price_eur_per_mwh.loc[1, "B"] == pytest.approx(want_b, abs=1e-4)
    assert r.line_price_eur_per_mwh.loc[1, "l"] == pytest.approx(120.0, abs=1e-3)


def test_blocks_fill_in_price_order_and_marginal_block_sets_the_price(pricing):
    r = _market([_bid("A", 0, [(8.0, 30.0), (8.0, 45.0), (8.0, 70.0)])], pricing=pricing)
    # 20 MW needed: blocks 1 and 2 full, 4 MW of block 3 → uniform price 70 €/MWh
    assert r.accepted_mw.loc[1, "A"] == pytest.approx(20.0)
    assert r.price_eur_per_mwh.loc[1, "A"] == pytest.approx(70.0, abs=1e-4)
    taken = r.blocks.set_index("block")["accepted_mw"]
    np.testing.assert_allclose(taken.to_numpy(), [8.0, 8.0, 4.0], atol=1e-7)


def test_insufficient_bids_leave_reported_overload(pricing):
    """The last-block rule pays the block's 30 €/MWh; so does the supporting price (the
    block is taken in full and its 30 €/MWh is the least that supports it), and the line
    price is 30 / 0.5 = 60 €/MWh, not the penalty."""
    r = _market([_bid("A", 0, [(6.0, 30.0)])], pricing=pricing)
    assert r.accepted_mw.loc[1, "A"] == pytest.approx(6.0)
    assert r.unresolved_mw.loc[1, "l"] == pytest.approx(7.0)  # 10 − 0.5·6
    assert r.price_eur_per_mwh.loc[1, "A"] == pytest.approx(30.0, abs=1e-4)
    if pricing == "interface":
        assert r.line_price_eur_per_mwh.loc[1, "l"] == pytest.approx(60.0, abs=1e-3)
    else:  # the solver's dual carries the penalty
        assert r.line_price_eur_per_mwh.loc[1, "l"] == pytest.approx(1e5)


def test_last_block_rule_reproduces_k5():
    """The pre-supporting-price numbers of this module, kept as the ``last_block`` option:
    each DSO is paid its highest accepted block."""
    r = _market([_bid("A", 0, [(30.0, 60.0)]), _bid("B", 1, [(20.0, 20.0)])], pricing="last_block")
    assert r.price_eur_per_mwh.loc[1].tolist() == [60.0, 20.0]
    r = _market([_bid("A", 0, [(8.0, 30.0), (8.0, 45.0), (8.0, 70.0)])], pricing="last_block")
    assert r.price_eur_per_mwh.loc[1, "A"] == 70.0
    with pytest.raises(ValueError, match="pricing"):
        _market([_bid("A", 0, [(6.0, 30.0)])], pricing="pay_as_bid")


def _same_sensitivity(last_a: float, flow: float):
    """A and B both at −0.5 MW of flow per MW (``h_b = −0.5``); A bids 10 MW at 30, 10 at 50
    and 10 at ``last_a``; B 10 at 40 and 10 at 60 (€/MWh)."""
    bids = [
        _bid("A", 0, [(10.0, 30.0), (10.0, 50.0), (10.0, last_a)]),
        _bid("B", 1, [(10.0, 40.0), (10.0, 60.0)]),
    ]
    return {p: _market(bids, flow=flow, pricing=p, h_b=-0.5) for p in ("interface", "last_block")}


def test_equal_sensitivities_are_paid_equally():
    """12.5 MW of relief = 25 MW from either DSO. Merit order A1 (30), B1 (40), A2 (50, 5 of
    10 MW): A2 is marginal, the line price is 50 / 0.5 = 100 €/MWh and both DSOs are paid
    50 €/MWh; the last-block rule pays B its own 40."""
    r = _same_sensitivity(70.0, 112.5)
    sup, last = r["interface"], r["last_block"]
    assert sup.accepted_mw.loc[1].tolist() == pytest.approx([15.0, 10.0])
    assert sup.price_eur_per_mwh.loc[1].tolist() == pytest.approx([50.0, 50.0], abs=1e-4)
    assert sup.line_price_eur_per_mwh.loc[1, "l"] == pytest.approx(100.0, abs=1e-3)
    assert last.price_eur_per_mwh.loc[1].tolist() == [50.0, 40.0]


def test_a_dear_block_sets_the_price_only_when_marginal():
    """A's third block at 2 000 €/MWh instead of 70: with 25 MW needed it is not taken and
    nothing changes (50 €/MWh for both). With 45 MW needed (flow 122.5) the merit order is
    A1, B1, A2, B2 (40 MW), then 5 of A3's 10 MW: A3 is marginal and sets 2 000 €/MWh for
    both DSOs; with A3 at 70 €/MWh the same dispatch is paid 70."""
    cheap, dear = _same_sensitivity(70.0, 112.5), _same_sensitivity(2000.0, 112.5)
    for p in ("interface", "last_block"):
        pd.testing.assert_frame_equal(cheap[p].price_eur_per_mwh, dear[p].price_eur_per_mwh)
    assert dear["interface"].price_eur_per_mwh.loc[1].tolist() == pytest.approx([50.0, 50.0])
    marginal = _same_sensitivity(2000.0, 122.5)["interface"]
    assert marginal.accepted_mw.loc[1].tolist() == pytest.approx([25.0, 20.0])
    assert marginal.price_eur_per_mwh.loc[1].tolist() == pytest.approx([2000.0, 2000.0], abs=1e-2)
    at_70 = _same_sensitivity(70.0, 122.5)["interface"]
    assert at_70.price_eur_per_mwh.loc[1].tolist() == pytest.approx([70.0, 70.0], abs=1e-4)


def test_scarcity_is_priced_by_the_dearest_offer_per_mw_of_relief():
    """A: 6 MW at 30 €/MWh and −0.5; B: 10 MW at 20 €/MWh and −0.25: 5.5 of the 10 MW of
    relief, 4.5 MW left unresolved. Both are taken in full, so any line price μ with
    0.5 μ ≥ 30 and 0.25 μ ≥ 20 supports the dispatch; the least is μ = max(60, 80) = 80 €/MWh
    per MW, so A is paid 40 and B 20 €/MWh (TSO pays 440 €), not the 10⁵ €/MWh penalty the
    LP's dual carries."""
    bids = [_bid("A", 0, [(6.0, 30.0)]), _bid("B", 1, [(10.0, 20.0)])]
    r = _market(bids)
    assert r.unresolved_mw.loc[1, "l"] == pytest.approx(4.5)
    assert r.line_price_eur_per_mwh.loc[1, "l"] == pytest.approx(80.0, abs=1e-3)
    assert r.price_eur_per_mwh.loc[1].tolist() == pytest.approx([40.0, 20.0], abs=1e-4)
    paid = (r.price_eur_per_mwh * r.accepted_mw).to_numpy().sum()
    assert paid == pytest.approx(440.0, abs=1e-2)
    assert _market(bids, pricing="last_block").line_price_eur_per_mwh.loc[1, "l"] == 1e5


def _random_market(seed: int, short: bool) -> TSOMarketData:
    """Six DSOs with 1–4 blocks (some of them equal in price: ties), three hours, five lines
    (two overloaded, one loaded only by the flexibility), sensitivities of both signs; with
    ``short`` the bids cover only part of the relief."""
    rng = np.random.default_rng(seed)
    hours, lines, buses = [3, 4, 5], [f"l{i}" for i in range(5)], list(range(8))
    bids = []
    for d in range(6):
        k = int(rng.integers(1, 5))
        q = rng.uniform(0.5, 4.0 if short else 30.0, (3, k))
        price = np.sort(rng.choice([20.0, 35.0, 50.0, 80.0], (3, k)), axis=1)
        hours_d = hours if d else hours[:2]  # one DSO leaves an hour out
        bids.append(
            DSOBid(
                dso_id=f"D{d}",
                bus=int(rng.choice(buses)),
                q_mw=pd.DataFrame(q[: len(hours_d)], index=hours_d, columns=range(1, k + 1)),
                price_eur_per_mwh=pd.DataFrame(
                    price[: len(hours_d)], index=hours_d, columns=range(1, k + 1)
                ),
            )
        )
    limit = pd.DataFrame(100.0, index=hours, columns=lines)
    mean = pd.DataFrame(rng.uniform(20.0, 90.0, (3, 5)), index=hours, columns=lines)
    mean["l0"] = [112.0, 108.0, 104.0]
    mean["l1"] = [-104.0, -103.0, -102.0]
    mean["l2"] = 99.0
    sens = {
        t: pd.DataFrame(rng.uniform(-0.6, 0.2, (5, 8)), index=lines, columns=buses).mask(
            lambda f: f.abs() < 0.05, 0.0
        )
        for t in hours
    }
    for t in hours:
        sens[t].loc["l1"] = sens[t].loc["l1"].abs() + 0.1
    return TSOMarketData(mean_flow_mw=mean, limit_mw=limit, sensitivity=sens, bids=tuple(bids))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("short", [False, True])
def test_the_arrays_clear_as_the_pyomo_model_does(seed, short, pricing):
    """The LP written as arrays in the Pyomo model's order reaches the same vertex, prices,
    line prices and slacks, to the last bit, with ties, a DSO missing an hour, line-hours
    left out by (K6) and — with ``short`` — hours left short of relief (K5c)."""
    data = _random_market(seed, short)
    r = _both(data, pricing)
    assert r.accepted_mw.to_numpy().sum() > 0.0
    if short:
        assert r.unresolved_mw.to_numpy().sum() > 0.0
    a = build_tso_lp(data)
    assert a.lp.n_rows == len(a.dsos) * len(a.hours) + 2 * len(a.kept)
    assert len(a.kept) < len(a.hours) * len(a.lines)  # K6 left some line-hours out
