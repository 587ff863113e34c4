"""Rival DSOs (``models/competition.md``): hand-derived equilibria of tiny S7 markets, the MPEC
against them, a Bertrand–Edgeworth cycle, a pivotal DSO and the cap, the options, and the
market end to end (``--competition nash``) on the bundled and a generated instance.

Every hand case has one hour and one line carrying 110 MW against a 100 MW limit: 10 MW of
relief are needed, and each DSO relieves 1 MW per MW (``H = −1``)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import flexopt as fx
from flexopt.errors import OptionError
from flexopt.generate import generate
from flexopt.market.competition import build_best_response, chosen_markup, hour_market
from flexopt.market.equilibrium import CompetitionOptions, EquilibriumStatus
from flexopt.market.tso import DSOBid, TSOMarketData
from flexopt.run.competition import nash_equilibrium
from flexopt.run.options import MarketOptions
from flexopt.solve import SolveStatus, solve
from tests.conftest import RTS, exit_code
from tests.test_tables_doc import _key_paths, _undocumented


def _bid(dso: str, bus: int, q_mw: float, price: float) -> DSOBid:
    frame = pd.DataFrame  # one hour (1), one block (1)
    return DSOBid(dso, bus, frame([[q_mw]], index=[1], columns=[1]), frame([[price]], [1], [1]))


def _market(*bids: DSOBid) -> TSOMarketData:
    return TSOMarketData(
        mean_flow_mw=pd.DataFrame({"l": [110.0]}, index=[1]),
        limit_mw=pd.DataFrame({"l": [100.0]}, index=[1]),
        sensitivity={1: pd.DataFrame({b.bus: [-1.0] for b in bids}, index=["l"])},
        bids=bids,
    )


#: A can cover the need alone and B cannot: A is pivotal, B is not.
DUOPOLY = _market(_bid("A", 0, 12.0, 20.0), _bid("B", 1, 6.0, 30.5))
GRID = CompetitionOptions("nash", None, (1.0, 50.0))


def _nash(data, options=GRID, pricing="interface"):
    return nash_equilibrium(data, options, pricing)


def _row(frame: pd.DataFrame) -> dict[str, float]:
    return {k: float(v) for k, v in frame.loc[1].items()}


def test_duopoly_equilibrium_by_hand():
    """Interface pricing: the line's price is set by the partly accepted (marginal) block.

    Price taking: A fills 10 of its 12 MW at 20 €/MWh (marginal): TSO pays 200 €, profits 0.
    A's best response to ``m_B = 0``: undercut B — ``m_A = 10`` (30 < 30.5): A sells all
    10 MW at 30, profit 10 · 10 = 100 € — or price above B: B takes its 6 MW, A sells the
    other 4 MW as the marginal block at ``20 + m_A``: ``4 m_A``, best at the top of the grid,
    ``m_A = 50``: 200 € > 100 €. B's best response to ``m_A = 50``: as long as it is cheaper
    than A (``m_B ≤ 39``) it sells 6 MW at A's 70 €/MWh: 6 · (70 − 30.5) = 237 €, whatever
    its markup; it keeps 0. Round 2 changes nothing: converged after 2 rounds at (50, 0),
    price 70 for both, TSO payment 700 € = 3.5 × 200 €."""
    r = _nash(DUOPOLY)
    assert r.status is EquilibriumStatus.CONVERGED
    assert (r.rounds, r.cycle_length) == (2, 0)
    assert _row(r.markup_eur_per_mwh) == {"A": 50.0, "B": 0.0}
    assert _row(r.clearing.accepted_mw) == pytest.approx({"A": 4.0, "B": 6.0})
    assert _row(r.clearing.price_eur_per_mwh) == pytest.approx({"A": 70.0, "B": 70.0}, abs=1e-5)
    assert _row(r.profit_eur) == pytest.approx({"A": 200.0, "B": 237.0}, abs=1e-4)
    assert _row(r.price_taking_profit_eur) == pytest.approx({"A": 0.0, "B": 0.0}, abs=1e-6)
    assert _row(r.pivotal) == {"A": True, "B": False}
    assert r.counts.get("cuts", 0) == 0  # the MILP's value was S7's profit every time
    # S7 clears the equilibrium bids: A's block at 70, B's at 30.5
    prices = {b.dso_id: float(b.price_eur_per_mwh.iloc[0, 0]) for b in r.bids}
    assert prices == {"A": 70.0, "B": 30.5}


def test_the_mpec_is_the_hand_best_response():
    """(N2–N8) directly: A against ``m_B = 0`` on the full grid (200 € at 50) and on the
    grid up to 15 (100 € at 10: undercutting beats 4 · 15 = 60 €); B against ``m_A = 50``
    (237 €, any markup ≤ 39). Last-block pricing pays each its own price: A against
    ``m_B = 0`` undercuts at 10 (100 €) or sells 4 MW at 70 (200 €)."""
    hm = hour_market(DUOPOLY, 1)
    cases = [
        ("A", {"B": 0.0}, np.arange(51.0), "interface", 200.0, 50.0),
        ("A", {"B": 0.0}, np.arange(16.0), "interface", 100.0, 10.0),
        ("B", {"A": 50.0}, np.arange(51.0), "interface", 237.0, None),
        ("A", {"B": 0.0}, np.arange(51.0), "last_block", 200.0, 50.0),
    ]
    for leader, others, grid, pricing, profit, markup in cases:
        m = build_best_response(hm, leader, others, grid, pricing)
        res = solve(m, mip_gap=1e-9, options={"mip_feasibility_tolerance": 1e-7})
        assert res.status is SolveStatus.OPTIMAL
        assert res.objective == pytest.approx(profit, abs=1e-5), (leader, pricing)
        if markup is not None:
            assert grid[chosen_markup(m)] == markup
        else:
            assert grid[chosen_markup(m)] <= 39.0


def test_the_cap_limits_the_pivotal_dso():
    """``competition_cap = 15``: only A is pivotal, its grid ends at 15. Its best response to
    ``m_B = 0`` is now to undercut B at 10 (100 € against 4 · 15 = 60 €); B cannot sell below
    30 at a profit: (10, 0), A sells 10 MW at 30 €/MWh, the TSO pays 300 €."""
    r = _nash(DUOPOLY, CompetitionOptions("nash", 15.0, (1.0, 50.0)))
    assert r.status is EquilibriumStatus.CONVERGED
    assert _row(r.capped) == {"A": True, "B": False}
    assert _row(r.markup_eur_per_mwh) == {"A": 10.0, "B": 0.0}
    assert _row(r.clearing.accepted_mw) == pytest.approx({"A": 10.0, "B": 0.0})
    assert r.clearing.price_eur_per_mwh.at[1, "A"] == pytest.approx(30.0, abs=1e-5)
    assert _row(r.profit_eur) == pytest.approx({"A": 100.0, "B": 0.0}, abs=1e-4)


@pytest.mark.parametrize("pricing", ["interface", "last_block"])
def test_a_monopoly_in_a_short_hour_marks_up_to_the_grid_or_the_cap(pricing):
    """A alone with 6 MW: 4 MW stay unresolved whatever it bids (short hour, K5c), and it is
    pivotal. S7 pays its own block's price (the least price that supports taking it in full),
    so its profit is ``6 m``: the top of the grid (300 €), or the cap (15: 90 €). The MILP
    knows it at once: the short line's multiplier is held by A's row (N6a)."""
    data = _market(_bid("A", 0, 6.0, 20.0))
    for cap, markup in ((None, 50.0), (15.0, 15.0)):
        r = _nash(data, CompetitionOptions("nash", cap, (1.0, 50.0)), pricing)
        assert r.status is EquilibriumStatus.CONVERGED
        assert bool(r.pivotal.at[1, "A"])
        assert r.markup_eur_per_mwh.at[1, "A"] == markup
        assert r.profit_eur.at[1, "A"] == pytest.approx(6 * markup, abs=1e-4)
        assert r.clearing.unresolved_mw.to_numpy().sum() == pytest.approx(4.0)
        assert r.counts["mpec_solves"] == 1


def test_bertrand_edgeworth_cycle_is_reported_not_looped():
    """Last-block pricing (each DSO paid its own price), A 12 MW at 20, B 6 MW at 20.5,
    markups 0, 1, …, 11. A's best response to ``m_B``: undercut (``m_A = m_B``, 10 MW:
    ``10 m_B``) or jump to 11 and sell the 4 MW B cannot (``4 · 11 = 44``): it undercuts
    while ``m_B ≥ 5``. B's: undercut A by one step (``m_B = m_A − 1``, 6 MW). From (0, 0):
    A jumps (11), B undercuts (10); then (10, 9), (9, 8), …, (5, 4); at ``m_B = 4`` A jumps
    back to 11 and B to 10: the state after round 1 returns after round 8 — a cycle of
    length 7. With 5 rounds allowed the run stops at ``max_rounds``."""
    data = _market(_bid("A", 0, 12.0, 20.0), _bid("B", 1, 6.0, 20.5))
    r = _nash(data, CompetitionOptions("nash", None, (1.0, 11.0)), "last_block")
    assert r.status is EquilibriumStatus.CYCLE
    assert (r.rounds, r.cycle_length) == (8, 7)
    states = [(h.at[1, "A"], h.at[1, "B"]) for h in r.history]
    assert states == [(0, 0), (11, 10), (10, 9), (9, 8), (8, 7), (7, 6), (6, 5), (5, 4), (11, 10)]
    short = _nash(data, CompetitionOptions("nash", None, (1.0, 11.0), rounds=5), "last_block")
    assert short.status is EquilibriumStatus.MAX_ROUNDS
    assert short.rounds == 5


def test_options_are_checked_and_recorded_only_when_nash():
    opt = MarketOptions.from_kwargs(method="mlf", competition="nash", competition_cap=10)
    assert opt.competition_config == CompetitionOptions("nash", 10.0)
    assert MarketOptions.from_kwargs(**opt.flat()) == opt
    assert opt.flat()["competition_markups"] == (5.0, 200.0)
    assert not {k for k in MarketOptions(method="mlf").flat() if k.startswith("competition")}
    assert CompetitionOptions("nash", None, (5.0, 12.0)).grid().tolist() == [0, 5, 10, 12]
    assert CompetitionOptions("nash").grid(cap=12.0).tolist() == [0, 5, 10, 12]
    bad = [
        ({"competition_cap": 10}, "apply to rival DSOs only"),
        ({"competition": "cournot"}, "'competition' must be one of"),
        ({"competition": "nash", "competition_cap": -1}, "'competition_cap' must be"),
        ({"competition": "nash", "competition_markups": (0, 5)}, "'competition_markups'"),
        ({"competition": "nash", "competition_rounds": 0}, "'competition_rounds'"),
    ]
    for kwargs, needle in bad:
        with pytest.raises(OptionError, match=needle):
            MarketOptions.from_kwargs(method="mlf", **kwargs)
    with pytest.raises(OptionError, match="do not apply to method 'centralized'"):
        MarketOptions.from_kwargs(method="centralized", competition="nash")


def test_price_taking_is_todays_market(rts):
    """``competition="price_taking"`` is the default: the same summary, no new table."""
    a = fx.run_market(rts, "mlf")
    b = fx.run_market(rts, "mlf", competition="price_taking")
    drop = {"clearing_time_s"}
    assert {k: v for k, v in a.summary.items() if k not in drop} == {
        k: v for k, v in b.summary.items() if k not in drop
    }
    assert "competition" not in a.tables
    assert "competition" not in a.summary
    assert a.outcome.competition is None


def _check_run(folder, status=("converged",)):
    summary = json.loads((folder / "summary.json").read_text())
    c = summary["competition"]
    assert c["status"] in status
    assert c["tso_payment_eur"] == pytest.approx(summary["tso_cost_eur"], abs=1e-4)
    assert c["tso_payment_ratio_pu"] >= 1.0 - 1e-9
    assert c["mpec_failures"] == 0
    table = pd.read_csv(folder / "competition.csv")
    assert _undocumented("competition.csv", list(table.columns)) == []
    assert _undocumented("summary.json", _key_paths(summary)) == []
    assert (table["markup_eur_per_mwh"] >= 0).all()
    taken = table[table["accepted_mw"] > 0]
    assert (taken["lerner_pu"] >= -1e-9).all()
    assert (taken["lerner_pu"] < 1).all()
    for d, per in c["dso"].items():
        rows = table[table["dso_id"] == d]
        assert per["profit_eur"] == pytest.approx(rows["profit_eur"].sum(), abs=1e-4)
        assert per["profit_eur"] >= per["profit_price_taking_eur"] - 1e-6  # it can stay put
    return summary, table


def test_cli_end_to_end_on_the_bundled_instance(tmp_path):
    """``flexopt run instances/rts24-3dso --method mlf --competition nash``: the game
    converges, S7 clears the equilibrium bids (its payment is the summary's TSO cost) and S8
    settles them; every DSO earns at least its price-taking profit."""
    out = tmp_path / "nash"
    assert (
        exit_code(["run", str(RTS), "--method", "mlf", "--competition", "nash", "--out", str(out)])
        == 0
    )
    summary, table = _check_run(out)
    assert summary["options"]["competition"] == "nash"
    assert len(table) == 9  # 3 DSOs × 3 congested hours
    assert summary["competition"]["tso_payment_ratio_pu"] > 1.0
    assert summary["overload_mw_after"] == pytest.approx(0.0, abs=1e-6)


def test_cli_end_to_end_on_a_generated_instance(tmp_path):
    """A generated case30 instance (3 DSOs, `none`), a coarse grid and the cap of 20 €/MWh."""
    folder = generate("case30", 3, "case33bw", 6, 1, tmp_path / "case30-3")
    out = tmp_path / "nash"
    argv = ["run", str(folder), "--method", "none", "--competition", "nash"]
    argv += ["--competition-markups", "10,100", "--competition-cap", "20", "--out", str(out)]
    assert exit_code(argv) == 0
    summary, table = _check_run(out)
    assert summary["options"]["competition_markups"] == [10.0, 100.0]
    # congestion by construction outruns the DSOs here: every DSO-hour is short and pivotal,
    # and the cap is what holds the markups
    assert summary["competition"]["pivotal_dso_hours"] == len(table)
    capped = table[table["capped"]]
    assert (capped["pivotal"]).all()
    assert (capped["markup_eur_per_mwh"] <= 20.0).all()
    assert (capped["markup_eur_per_mwh"] == 20.0).any()


def test_the_models_handle_shows_the_market_s7_cleared(rts):
    """``fx.models.tso_market`` of a nash run is the LP on the equilibrium's marked-up bids:
    its optimum is S7's objective of the run (the marked-up pay-as-bid value)."""
    res = fx.run_market(rts, "mlf", competition="nash", competition_markups=(20.0, 100.0))
    assert res.outcome.competition is not None
    model = fx.models.tso_market(res)
    solved = solve(model)
    assert solved.status is SolveStatus.OPTIMAL
    assert solved.objective == pytest.approx(res.outcome.tso.cost_eur, rel=1e-9)
    price_taking = res.outcome.competition.price_taking.cost_eur
    assert solved.objective > price_taking  # the markups are in the bids S7 saw


def test_the_game_sees_bids_only():
    """The TSO–DSO information boundary (``tests/test_market.py``): the game's modules import
    nothing of the DSO side and name no feeder or prosumer — they see S7's data only."""
    root = Path(__file__).resolve().parents[2] / "flexopt"
    for path in ("market/competition.py", "market/equilibrium.py", "run/competition.py"):
        tree = ast.parse((root / path).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m.startswith(("flexopt.dso", "flexopt.grid"))}, path
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not {x for x in names if "feeder" in x.lower() or "prosumer" in x.lower()}, path


def test_compare_sets_the_competition(tmp_path):
    """``fx.compare(..., set={"competition": [...]})``: one run per mode, side by side; the
    game's markups raise what the TSO pays over price taking."""
    cmp = fx.compare(
        RTS, ["none"], set={"competition": ["price_taking", "nash"]}, out=tmp_path / "cmp"
    )
    runs = pd.read_csv(tmp_path / "cmp" / "runs.csv").set_index("competition")
    assert set(runs.index) == {"price_taking", "nash"}
    assert runs.at["nash", "tso_cost_eur"] > runs.at["price_taking", "tso_cost_eur"]
    assert len(cmp.summaries) == 2
