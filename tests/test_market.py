"""The bilevel market on the bundled instance: relief, settlement, methods, boundary."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from flexopt.market.tso import DSOBid, TSOMarketData
from flexopt.run.api import run_market
from flexopt.run.options import MarketOptions


@pytest.fixture(scope="module")
def none(rts):
    return run_market(rts, "none")


@pytest.fixture(scope="module")
def mlf(rts):
    return run_market(rts, "mlf")


@pytest.mark.parametrize("name", ["none", "mlf"])
def test_every_congestion_is_relieved(request, name):
    s = request.getfixturevalue(name).summary
    assert s["congested_line_hours_before"] > 0
    assert s["overload_mw_after"] == pytest.approx(0.0, abs=1e-6)
    assert s["congested_line_hours_after"] == 0


@pytest.mark.parametrize("name", ["none", "mlf"])
def test_settlement_is_make_whole_and_balances(request, name):
    res = request.getfixturevalue(name)
    d = res.tables["dispatch"]
    active = d[d["u_mw"] > 1e-9]
    assert (active["payment_eur"] >= active["original_cost_eur"] - 1e-9).all()  # nobody below cost
    st = res.tables["settlement"]
    np.testing.assert_allclose(
        st["balance_eur"],
        st["tso_payment_eur"] + st["loss_saving_eur"] - st["prosumer_payment_eur"],
    )
    # payments add up from the prosumer rows to the DSO
    pay = d.groupby(["dso_id", "hour"])["payment_eur"].sum()
    np.testing.assert_allclose(
        st.set_index(["dso_id", "hour"])["prosumer_payment_eur"], pay.loc[pay.index]
    )
    # the TSO pays the uniform price on what it accepted, and every accepted MW is served
    prices = res.tables["tso_prices"].fillna(0.0)
    assert res.summary["tso_cost_eur"] == pytest.approx(
        (prices["accepted_mw"] * prices["price_eur_per_mwh"]).sum()
    )
    np.testing.assert_allclose(st["served_mw"], st["accepted_mw"], atol=1e-9)
    assert res.summary["dso_balance_eur"] == pytest.approx(st["balance_eur"].sum())


def test_dispatch_respects_capacity_and_meets_accepted(none):
    d = none.tables["dispatch"]
    assert (d["u_mw"] <= d["u_max_mw"] + 1e-12).all()
    assert (d["u_mw"] >= 0).all()


def test_mlf_lowers_losses_at_the_same_accepted_flexibility(none, mlf):
    assert mlf.summary["flex_accepted_mwh"] == pytest.approx(
        none.summary["flex_accepted_mwh"], rel=1e-9
    )
    assert mlf.summary["dso_losses_mwh_after"] < none.summary["dso_losses_mwh_after"]
    assert mlf.summary["tso_cost_eur"] < none.summary["tso_cost_eur"]
    offers = mlf.tables["offers"].merge(
        mlf.tables["participants"][["screened"]], left_on="prosumer_id", right_index=True
    )
    # the screened prosumers' discharge saves losses here; the others keep their offers
    assert (offers.loc[offers["screened"], "beta_pu"] < 1).all()
    assert (offers.loc[~offers["screened"], "beta_pu"] == 1).all()


def test_social_cost_definition(none, rts):
    s = none.summary
    expected = (
        s["flex_original_cost_eur"] + rts.market.loss_price_eur_per_mwh * s["dso_losses_mwh_after"]
    )
    assert s["social_cost_eur"] == pytest.approx(expected)


def test_options_reject_unknown_fields(rts):
    with pytest.raises(TypeError, match="unknown market option"):
        run_market(rts, "none", colour="red")
    with pytest.raises(ValueError, match="method"):
        MarketOptions(method="magic")


def test_tso_side_sees_bids_only():
    """The information boundary: what the TSO market receives, and what its modules import."""
    assert {f.name for f in dataclasses.fields(DSOBid)} == {
        "dso_id",
        "bus",
        "q_mw",
        "price_eur_per_mwh",
    }
    assert {f.name for f in dataclasses.fields(TSOMarketData)} == {
        "mean_flow_mw",
        "limit_mw",
        "sensitivity",
        "bids",
        "dt_h",
    }
    root = Path(__file__).resolve().parents[1] / "flexopt" / "market"
    for name in ("tso.py", "requirement.py"):
        tree = ast.parse((root / name).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {
            m for m in imported if m.startswith(("flexopt.dso", "flexopt.grid", "flexopt.instance"))
        }, name
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        names |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
        assert not {x for x in names if "feeder" in x.lower() or "prosumer" in x.lower()}, name


@pytest.mark.parametrize("name", ["none", "mlf"])
def test_welfare_terms_add_up(request, name, rts):
    """(M13) the TSO's payment = DSO balance + prosumer surplus + social cost, with the social
    cost = the prosumers' original cost + the value of the feeder-loss change; per DSO and in
    total, and against the settlement and losses tables they come from."""
    res = request.getfixturevalue(name)
    w, s = res.summary["welfare"], res.summary
    assert w["tso_payment_eur"] == pytest.approx(
        w["dso_balance_eur"] + w["prosumer_surplus_eur"] + w["social_cost_eur"], abs=1e-5
    )
    assert w["tso_payment_eur"] == pytest.approx(s["tso_cost_eur"], abs=1e-5)
    assert w["dso_balance_eur"] == pytest.approx(s["dso_balance_eur"], abs=1e-5)
    assert w["social_cost_eur"] == pytest.approx(
        s["flex_original_cost_eur"] + w["loss_value_eur"], abs=1e-5
    )
    losses = res.tables["losses"]
    change = (losses["loss_mw_after"] - losses["loss_mw_before"]).sum() * rts.dt_h
    assert w["loss_value_eur"] == pytest.approx(
        rts.market.loss_price_eur_per_mwh * change, abs=1e-5
    )
    d = res.tables["dispatch"]
    assert w["prosumer_surplus_eur"] == pytest.approx(
        (d["payment_eur"] - d["original_cost_eur"]).sum(), abs=1e-5
    )
    table = res.tables["welfare"]
    for dso, v in s["dso"].items():
        for key, value in v["welfare"].items():
            assert table.loc[dso, key] == pytest.approx(value, abs=1e-5), (dso, key)
