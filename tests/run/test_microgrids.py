"""Microgrids, the third level (``models/microgrid.md``): hand-built identities, the settled
money and energy, the instance format."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import flexopt as fx
from flexopt.errors import InstanceError
from flexopt.instance import FeederData, MicrogridData
from flexopt.instance.laterals import lateral_microgrids
from tests.conftest import exit_code

#: Tables the DSO and TSO levels write, compared between an instance and its microgrid twin.
LEVELS = ("requirement", "bids", "tso_prices", "line_prices", "congestion")


def _lossless_microgrid(inst: fx.Instance, dso_id: str, members: list[str]) -> fx.Instance:
    """``members`` of ``dso_id`` moved into a microgrid whose network joins each of them to
    the point of connection — the last member's bus — by a branch without impedance, and
    the twin without it: the same prosumers at that bus, bidding directly."""
    dso = inst.dso(dso_id)
    poc = int(dso.prosumers.at[members[-1], "bus"])
    pros = dso.prosumers.copy()
    pros.loc[members, "bus"] = poc
    direct = replace(dso, prosumers=pros)
    labels = [10_000 + k for k in range(len(members))]
    network = FeederData(
        name=f"{dso_id}-star",
        branches=pd.DataFrame(
            {
                "from_bus": poc,
                "to_bus": labels,
                "r_ohm": 0.0,
                "x_ohm": 0.0,
                "p_mw": 0.0,
                "q_mvar": 0.0,
            }
        ),
        vn_kv=dso.feeder.vn_kv,
        root=poc,
    )
    inner = pros.loc[members].assign(bus=labels)
    grid = MicrogridData(f"{dso_id}-MG", poc, network, inner, dso.baseline_mw[members])
    keep = [p for p in pros.index if p not in members]
    with_grid = replace(
        dso, prosumers=pros.loc[keep], baseline_mw=dso.baseline_mw[keep], microgrids=(grid,)
    )

    def swap(d: fx.instance.DSOData) -> fx.Instance:
        return replace(inst, dsos=tuple(d if x.id == dso_id else x for x in inst.dsos))

    return swap(direct), swap(with_grid)


def _same(a: fx.MarketResult, b: fx.MarketResult) -> None:
    for name in LEVELS:
        pd.testing.assert_frame_equal(
            a.tables[name].reset_index(drop=True), b.tables[name].reset_index(drop=True)
        )
    da, db = (r.tables["dispatch"].sort_values(["hour", "prosumer_id"]) for r in (a, b))
    for col in ("u_mw", "payment_eur", "original_cost_eur"):
        np.testing.assert_allclose(da[col], db[col], rtol=1e-12, atol=1e-12)
    for key in ("tso_cost_eur", "social_cost_eur", "flex_accepted_mwh", "dso_balance_eur"):
        assert a.summary[key] == pytest.approx(b.summary[key], rel=1e-12, abs=1e-9), key


@pytest.mark.parametrize("method", ["none", "mlf", "wca"])
def test_one_member_microgrid_is_the_member_bidding_directly(rts, method):
    direct, grid = _lossless_microgrid(rts, "DSO1", ["DSO1-P12"])
    kw = {"wca_iter": 30, "wca_pop": 12} if method == "wca" else {}
    a, b = fx.run_market(direct, method, **kw), fx.run_market(grid, method, **kw)
    _same(a, b)
    mg = b.summary["microgrids"]["DSO1-MG"]
    assert mg["members"] == 1
    assert mg["balance_eur"] == pytest.approx(0.0, abs=1e-9)
    # the member is paid by its microgrid what the DSO paid it directly
    paid = a.tables["dispatch"].query("prosumer_id == 'DSO1-P12'")["payment_eur"].sum()
    assert mg["member_payment_eur"] * direct.dso("DSO1").n_feeders == pytest.approx(paid)


@pytest.mark.parametrize("method", ["mlf", "wca"])
def test_lossless_unmodified_microgrid_changes_nothing(rts, method):
    members = ["DSO1-P10", "DSO1-P11", "DSO1-P12"]
    direct, grid = _lossless_microgrid(rts, "DSO1", members)
    kw = {"wca_iter": 30, "wca_pop": 12} if method == "wca" else {}
    a, b = fx.run_market(direct, method, **kw), fx.run_market(grid, method, **kw)
    mg_offer = next(o for o in b.outcome.offers if o.dso_id == "DSO1").microgrids[0]
    # no internal losses: nothing is screened, the microgrid passes its members' offers on
    np.testing.assert_array_equal(mg_offer.factors.alpha, 1.0)
    np.testing.assert_array_equal(mg_offer.factors.beta, 1.0)
    _same(a, b)


def test_microgrid_levels_settle_and_balance(rts):
    inst = lateral_microgrids(rts, 1)
    res = fx.run_market(inst, "mlf")
    w = res.summary["welfare"]
    parts = sum(w[k] for k in ("dso_balance_eur", "microgrid_balance_eur", "prosumer_surplus_eur"))
    assert w["tso_payment_eur"] == pytest.approx(parts + w["social_cost_eur"], abs=1e-6)
    grids, members = res.tables["microgrids"], res.tables["microgrid_dispatch"]
    assert set(grids["microgrid_id"]) == {"DSO1-MG1", "DSO2-MG1", "DSO3-MG1"}
    # each microgrid delivers what its DSO took from its pieces, split among its members
    pieces = res.tables["dispatch"].merge(
        members[["prosumer_id"]].drop_duplicates(), on="prosumer_id"
    )
    took = pieces.groupby(["dso_id", "hour"])["u_mw"].sum()
    got = grids.set_index(["dso_id", "hour"])["delivered_mw"]
    pd.testing.assert_series_equal(took.sort_index(), got.sort_index(), check_names=False)
    split = members.groupby(["dso_id", "hour"])["u_mw"].sum()
    np.testing.assert_allclose(split.sort_index(), got.sort_index(), atol=1e-9)
    assert (members["payment_eur"] >= members["original_cost_eur"] - 1e-9).all()
    # the microgrids' internal losses count in the DSOs' losses and in the relief
    losses = res.tables["losses"]
    assert (losses["microgrid_loss_mw_before"] > 0).any()
    assert res.summary["microgrids"]["DSO1-MG1"]["internal_loss_saved_mwh"] > 0


def test_microgrid_instance_round_trip_and_view(rts, tmp_path):
    inst = lateral_microgrids(rts, 1)
    back = fx.load_instance(inst.save(tmp_path / "mg"))
    for a, b in zip(inst.dsos, back.dsos, strict=True):
        assert [g.id for g in a.microgrids] == [g.id for g in b.microgrids]
        for g, h in zip(a.microgrids, b.microgrids, strict=True):
            assert g.bus == h.bus
            assert list(g.prosumers.index) == list(h.prosumers.index)
            pd.testing.assert_frame_equal(
                g.network.branches.reset_index(drop=True),
                h.network.branches.reset_index(drop=True),
                check_dtype=False,
            )
    # the lateral moved, not the load: peak load of feeder + microgrid = the original's
    d0, d1 = rts.dso("DSO1"), back.dso("DSO1")
    total = d1.feeder.branches["p_mw"].sum() + sum(
        g.network.branches["p_mw"].sum() for g in d1.microgrids
    )
    assert total == pytest.approx(d0.feeder.branches["p_mw"].sum())
    assert len(d1.prosumers) + sum(len(g.prosumers) for g in d1.microgrids) == 12


def _write(tmp_path: Path, rts: fx.Instance, edit: str, old: str) -> Path:
    folder = lateral_microgrids(rts, 1).save(tmp_path / "bad")
    manifest = folder / "instance.toml"
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, edit, 1))
    return folder


@pytest.mark.parametrize(
    ("old", "new", "field", "says"),
    [
        ('dso = "DSO1"', 'dso = "DSO9"', "microgrid[0].dso", "unknown DSO"),
        ('id = "DSO1-MG1"', 'id = "DSO2"', "microgrid[0].id", "DSO"),
        ("bus = 25\n", "bus = 0\n", "microgrid[0].bus", "point of connection"),
        ('members = ["DSO1-P09"', 'members = ["DSO2-P01"', "microgrid[0].members", "DSO1"),
        ('members = ["DSO1-P09", ', "members = [", "microgrid[0].members", None),
        ('members = ["DSO2-P03"', 'members = ["DSO1-P09"', "microgrid[1].members", "already"),
        ("vn_kv = 12.66\nmembers", "vn_kv = -1.0\nmembers", "microgrid[0].vn_kv", "must"),
    ],
)
def test_loader_refuses_bad_microgrids(rts, tmp_path, old, new, field, says):
    folder = _write(tmp_path, rts, new, old)
    if says is None:  # a member left out of its microgrid is at a bus the DSO's feeder lacks
        with pytest.raises(InstanceError, match=r"prosumers\.csv.*bus"):
            fx.load_instance(folder)
        return
    with pytest.raises(InstanceError, match=field.replace("[", r"\[").replace("]", r"\]")) as e:
        fx.load_instance(folder)
    assert says in str(e.value)


def _saved(out: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    summary = json.loads((out / "summary.json").read_text())
    grids = pd.read_csv(out / "microgrids.csv")
    for mg_id, g in summary["microgrids"].items():
        rows = grids[grids["microgrid_id"] == mg_id]
        assert g["delivered_mwh"] == pytest.approx(rows["delivered_mw"].sum(), abs=1e-6)
        assert g["balance_eur"] == pytest.approx(rows["balance_eur"].sum(), abs=1e-6)
    w = summary["welfare"]
    parts = w["dso_balance_eur"] + w["microgrid_balance_eur"] + w["prosumer_surplus_eur"]
    assert w["tso_payment_eur"] == pytest.approx(parts + w["social_cost_eur"], abs=1e-5)
    return summary, grids


def test_cli_end_to_end_on_the_bundled_instance(tmp_path, capsys):
    """``flexopt run instances/rts24-3dso-mg --method wca``: every level reported."""
    out = tmp_path / "mg"
    mg = Path(__file__).resolve().parents[2] / "instances" / "rts24-3dso-mg"
    assert exit_code(["validate", str(mg)]) == 0
    assert "36 prosumers (13 in 3 microgrids)" in capsys.readouterr().out
    argv = ["run", str(mg), "--method", "wca", "--wca-iter", "40", "--out", str(out)]
    assert exit_code(argv) == 0
    summary, _ = _saved(out)
    assert set(summary["microgrids"]) == {"DSO1-MG1", "DSO2-MG1", "DSO3-MG1"}
    assert (out / "microgrid_dispatch.csv").is_file()
    assert summary["overload_mw_after"] == pytest.approx(0.0, abs=1e-6)
    # a microgrid whose network has losses modifies its offer like a DSO (G5)
    assert any(g["dcp"]["evaluations"] > 0 for g in summary["microgrids"].values())


def test_cli_end_to_end_on_a_generated_instance(tmp_path):
    """``flexopt generate --microgrids 1`` then ``flexopt run --method mlf``."""
    folder = tmp_path / "case30-mg"
    argv = ["generate", "--transmission", "case30", "--dsos", "3", "--feeder", "case33bw"]
    argv += ["--prosumers", "8", "--microgrids", "1", "--out", str(folder)]
    assert exit_code(argv) == 0
    inst = fx.load_instance(folder)
    assert all(len(d.microgrids) == 1 for d in inst.dsos)
    out = tmp_path / "run"
    assert exit_code(["run", str(folder), "--method", "mlf", "--out", str(out)]) == 0
    summary, _ = _saved(out)
    assert len(summary["microgrids"]) == 3


def test_the_centralized_market_counts_the_microgrids_losses(rts):
    """The common market dispatches the members itself; their networks' losses count in its
    social cost as in the bilevel market's (G9), so the first-best comparison holds."""
    inst = lateral_microgrids(rts, 1)
    central, bilevel = (fx.run_market(inst, m) for m in ("centralized", "mlf"))
    for res in (central, bilevel):
        assert (res.tables["losses"]["microgrid_loss_mw_before"] > 0).any()
        # the unrounded table: the summary's four 6-decimal figures may miss it by 2e-6
        w = res.tables["welfare"].sum(numeric_only=True)
        parts = w["dso_balance_eur"] + w["microgrid_balance_eur"] + w["prosumer_surplus_eur"]
        assert w["tso_payment_eur"] == pytest.approx(parts + w["social_cost_eur"], abs=1e-6)
    assert central.summary["dso_losses_mwh_before"] == pytest.approx(
        bilevel.summary["dso_losses_mwh_before"], rel=1e-12
    )
    assert central.summary["social_cost_eur"] <= bilevel.summary["social_cost_eur"]
