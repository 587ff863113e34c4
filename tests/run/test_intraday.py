"""The intraday market (``models/intraday.md``, J1–J11): options and thresholds, a realization
equal to the forecast, a watched line-hour relieved intraday, the commitments carried to the
DSOs, determinism, interruption, and the command end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import flexopt as fx
import flexopt.run.intraday as intraday_mod
from flexopt.cli import Terminated
from flexopt.dso.flexibility import soc_trajectory_mwh
from flexopt.errors import OptionError
from flexopt.executors import executor
from flexopt.generate import generate
from flexopt.run.flat import check_option, flat_options
from flexopt.run.intraday import (
    IntradayInterrupted,
    committed_instance,
    draw_realization,
    intraday_scenario,
    plan_intraday,
)
from flexopt.run.intraday_config import IntradayConfig, probability_quantile
from flexopt.run.options import MarketOptions
from tests.conftest import RTS, exit_code, one_error_line
from tests.test_tables_doc import _has_unit_or_is_key, _undocumented


@pytest.fixture(scope="module")
def plain(rts):
    return fx.run_market(rts, "mlf", seed=0)


@pytest.fixture(scope="module")
def with_id(rts):
    return fx.run_market(rts, "mlf", seed=0, intraday=True, scenarios=3)


@pytest.fixture(scope="module")
def plan(with_id):
    with executor(None, None) as ex:
        return plan_intraday(with_id.outcome, with_id.options, ex)


def _scenario(plan, opt, xi, k=0):
    with executor(None, None) as ex:
        return intraday_scenario(plan, xi, k, opt, ex)


# --- options -----------------------------------------------------------------------------


def test_thresholds_are_quantiles_of_the_congestion_rule():
    assert probability_quantile(0.5) == 0.0  # the mean-flow rule
    assert probability_quantile(0.05) == pytest.approx(1.6448536, abs=1e-6)
    assert probability_quantile(0.9) == pytest.approx(-1.2815516, abs=1e-6)
    cfg = IntradayConfig(intraday=True)
    assert cfg.dayahead_quantile(0.0) == 0.0  # default: the instance's risk quantile
    assert cfg.monitor_quantile(0.0) == pytest.approx(1.6448536, abs=1e-6)
    strict = IntradayConfig(intraday=True, dayahead_prob=0.01)  # p_DA below p_ID
    z_da = strict.dayahead_quantile(0.0)
    assert strict.monitor_quantile(z_da) == z_da


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"scenarios": 5}, "apply to the intraday market only"),
        ({"intraday": True, "scenarios": 0}, "'scenarios' must be an integer in 1..100_000"),
        ({"intraday": True, "dayahead_prob": 1.0}, "'dayahead_prob' must be a probability"),
        ({"intraday": True, "intraday_min_prob": 0}, "'intraday_min_prob' must be"),
        ({"intraday": True, "overload_penalty_eur_per_mwh": -1}, "overload_penalty_eur_per_mwh"),
        ({"intraday": 1}, "'intraday' must be true or false"),
    ],
)
def test_bad_intraday_options_name_the_option(kwargs, needle):
    with pytest.raises(OptionError, match=needle):
        MarketOptions.from_kwargs(method="mlf", **kwargs)


def test_the_intraday_market_is_for_bilevel_methods_only(capsys):
    with pytest.raises(OptionError, match="do not apply to method 'centralized'"):
        MarketOptions.from_kwargs(method="centralized", intraday=True)
    with pytest.raises(OptionError, match="intraday_config"):
        MarketOptions(method="centralized", intraday_config=IntradayConfig(intraday=True))
    assert exit_code(["run", str(RTS), "--method", "centralized", "--intraday"]) == 2
    assert "['intraday'] do not apply to method 'centralized'" in one_error_line(capsys)
    assert exit_code(["run", str(RTS), "--intraday", "--scenarios", "0"]) == 2
    assert "--scenarios: expected an integer in 1..100000" in one_error_line(capsys)
    assert exit_code(["run", str(RTS), "--intraday", "--dayahead-prob", "1.5"]) == 2
    assert "--dayahead-prob: option 'dayahead_prob' must be" in one_error_line(capsys)


def test_the_options_are_flat_options_recorded_only_with_the_market():
    cat = flat_options()
    assert (cat["intraday"].kind, cat["intraday"].layer) == ("bool", "intraday")
    assert (cat["dayahead_prob"].kind, cat["dayahead_prob"].default) == ("float", None)
    assert "centralized" not in cat["scenarios"].owners
    assert check_option("overload_penalty_eur_per_mwh", 500) == 500.0
    assert "intraday" not in MarketOptions.from_kwargs(method="mlf").flat()
    flat = MarketOptions.from_kwargs(method="mlf", intraday=True, scenarios=7).flat()
    assert (flat["intraday"], flat["scenarios"], flat["dayahead_prob"]) == (True, 7, None)


# --- the day-ahead market at the default threshold ----------------------------------------


def test_the_default_threshold_is_todays_day_ahead_market(plain, with_id):
    a = {k: v for k, v in plain.summary.items() if k not in ("clearing_time_s", "options")}
    b = {k: v for k, v in with_id.summary.items() if k not in ("clearing_time_s", "options")}
    assert b.pop("intraday")["scenarios_done"] == 3
    assert a == b
    assert set(with_id.tables) - set(plain.tables) == {"intraday"}
    for name, table in plain.tables.items():
        pd.testing.assert_frame_equal(table, with_id.tables[name])


def test_a_day_ahead_threshold_of_one_half_is_the_mean_flow_rule(rts, with_id):
    half = fx.run_market(rts, "mlf", seed=0, intraday=True, scenarios=1, dayahead_prob=0.5)
    assert half.summary["tso_cost_eur"] == with_id.summary["tso_cost_eur"]
    assert half.summary["congested_line_hours_before"] == 6
    # a stricter threshold buys more day ahead and leaves fewer line-hours to wait
    strict = fx.run_market(rts, "mlf", seed=0, intraday=True, scenarios=1, dayahead_prob=0.2)
    assert strict.summary["flex_accepted_mwh"] > half.summary["flex_accepted_mwh"]
    assert strict.summary["congested_line_hours_before"] > 6
    assert (
        strict.summary["intraday"]["watched_line_hours"]
        < half.summary["intraday"]["watched_line_hours"]
    )


# --- realizations ---------------------------------------------------------------------------


def test_a_realization_equal_to_the_forecast_buys_nothing_more(plan, with_id):
    m = with_id.outcome.plf_model
    s = _scenario(plan, with_id.options, np.zeros((m.n_hours, len(m.uncertain))))
    # rts24: the day-ahead market relieves every line-hour at the forecast, so no monitored
    # hour overloads and no market is held (J6)
    assert s.market is None
    assert (s.accepted_mwh, s.payment_eur) == (0.0, 0.0)
    assert s.overload_dayahead_mwh == s.overload_intraday_mwh == 0.0
    assert s.overload_none_mwh == pytest.approx(with_id.summary["overload_mw_before"], abs=1e-6)


def test_a_forecast_realization_after_a_short_day_ahead_market_buys_nothing_more(tmp_path):
    # case30: the DSOs' batteries cannot relieve everything day ahead (0.84 MW·h left); at the
    # forecast the intraday market is held in those hours but the commitments used up the
    # energy, so it buys nothing and leaves exactly the day-ahead residual
    inst = fx.load_instance(generate("case30", 3, "case33bw", 6, 1, tmp_path / "case30"))
    res = fx.run_market(inst, "mlf", seed=0, intraday=True, scenarios=1)
    assert res.summary["overload_mw_after"] > 0
    with executor(None, None) as ex:
        plan = plan_intraday(res.outcome, res.options, ex)
        m = res.outcome.plf_model
        s = intraday_scenario(plan, np.zeros((m.n_hours, len(m.uncertain))), 0, res.options, ex)
    assert s.market is not None
    assert list(s.hours) == res.summary["congested_hours"]
    assert s.accepted_mwh == pytest.approx(0.0, abs=1e-9)
    assert s.overload_intraday_mwh == pytest.approx(s.overload_dayahead_mwh, abs=1e-9)
    assert s.overload_dayahead_mwh == pytest.approx(res.summary["overload_mw_after"], abs=1e-6)


def _watched_realization(model, hour, branch, c):
    """``ξ`` that moves the flow of ``branch`` in ``hour`` by ``+c σ`` and leaves the other
    hours at the forecast: ``ξ_u = −c (H s)_u / σ`` with ``σ = ‖H s‖`` (P3, independent
    errors), since a load increase ``s ξ`` changes the flows by ``−H s ξ`` (T6, P2)."""
    t = model.hours.get_loc(hour)
    l = model.network.branch.get_loc(branch)
    u = model.uncertain
    hs = model.sensitivity[t, :, u].T * model.load_std_mw[t, u]  # [L, U]
    sigma = float(np.linalg.norm(hs[l]))
    xi = np.zeros((model.n_hours, len(u)))
    xi[t] = -c * hs[l] / sigma
    return xi, t, l, hs, sigma


def test_the_intraday_market_relieves_a_watched_line_hour_the_day_ahead_left(plan, with_id):
    o = with_id.outcome
    m = o.plf_model
    # hour 10, line_5: E f = 41.148 MW, σ = 2.425 MW, rating 42 MW → π = 0.36: watched, not
    # bought day ahead (the day-ahead hours are 13–15)
    row = plan.monitored.set_index(["hour", "branch"]).loc[(10, "line_5")]
    assert not row["dayahead"]
    assert 0.05 < row["prob_overload"] < 0.5
    assert 10 not in o.hours
    xi, t, l, hs, sigma = _watched_realization(m, 10, "line_5", 2.0)
    assert sigma == pytest.approx(o.plf_before.std_mw[t, l], rel=1e-12)
    s = _scenario(plan, with_id.options, xi, k=1)
    # hand: the flows of hour 10 move by 2 (H s)·(H s)_l / σ, the other hours stay at the
    # day-ahead re-check's flows (all within their ratings)
    f = o.plf_after.mean_mw[t] + 2.0 * hs @ hs[l] / sigma
    rating = m.network.rating_mw
    hand = np.clip(np.abs(f) - rating, 0.0, None).sum()
    assert f[l] == pytest.approx(41.148102 + 2 * 2.425183, abs=1e-5)  # 46.0 MW: 4.0 MW over
    assert s.overload_dayahead_mwh == pytest.approx(hand, abs=1e-9)
    assert hand == pytest.approx(f[l] - 42.0, abs=1e-9)  # line_5 only
    assert list(s.hours) == [10]
    assert s.accepted_mwh > 0
    assert s.payment_eur > 0
    assert s.overload_intraday_mwh == 0.0
    # the relief reaches line_5 through the sensitivities at the DSOs' buses (J9, linear)
    relief = s.market.accepted_mw + s.market.loss_relief_mw
    h = m.sensitivity[t, l, m.network.bus_pos([o.dso_bus[d] for d in relief.columns])]
    after = s.market.plf_after.mean_mw[t, l]
    assert after == pytest.approx(f[l] + h @ relief.loc[10].to_numpy(), abs=1e-6)  # H < 0 here
    assert after <= 42.0 + 1e-6


def test_the_commitments_carry_to_the_intraday_offers(plan, with_id):
    o = with_id.outcome
    inst = committed_instance(o)
    xi, *_ = _watched_realization(o.plf_model, 10, "line_5", 2.0)
    s = _scenario(plan, with_id.options, xi, k=1)
    for c, d0, d1, r_da, r_id in zip(
        o.contexts, o.instance.dsos, inst.dsos, o.dispatch, s.market.dispatch, strict=True
    ):
        u_da = r_da.dispatch.pivot(index="hour", columns="prosumer_id", values="u_mw")
        u_da = u_da.reindex(index=d0.baseline_mw.index, columns=d0.baseline_mw.columns)
        # J7: the baseline becomes the committed schedule
        np.testing.assert_allclose(d1.baseline_mw - d0.baseline_mw, u_da.fillna(0.0), atol=0)
        # the day-ahead and intraday deliveries together keep every battery within its power
        # and its stored energy (I1): the intraday offers hold what the commitments left
        u_id = r_id.dispatch.pivot(index="hour", columns="prosumer_id", values="u_mw")
        u_id = u_id.reindex(index=d0.baseline_mw.index, columns=d0.baseline_mw.columns)
        total = d1.baseline_mw + u_id.fillna(0.0)
        pros = c.dso.prosumers
        assert (total.abs() <= pros["p_max_mw"] + 1e-9).all().all()
        levels = soc_trajectory_mwh(pros, total, o.instance.dt_h)
        assert levels.min() >= -1e-9
        assert (levels <= pros["e_max_mwh"].to_numpy() + 1e-9).all()


def test_same_seed_same_numbers_and_realizations_do_not_depend_on_n(rts, with_id):
    again = fx.run_market(rts, "mlf", seed=0, intraday=True, scenarios=3)
    pd.testing.assert_frame_equal(again.tables["intraday"], with_id.tables["intraday"])
    assert again.summary["intraday"] == with_id.summary["intraday"]
    m = with_id.outcome.plf_model
    np.testing.assert_array_equal(draw_realization(m, 0, 2), draw_realization(m, 0, 2))
    assert not np.array_equal(draw_realization(m, 0, 2), draw_realization(m, 1, 2))
    one = fx.run_market(rts, "mlf", seed=0, intraday=True, scenarios=1)
    pd.testing.assert_frame_equal(one.tables["intraday"], with_id.tables["intraday"].iloc[:1])


def test_the_realizations_have_the_plf_distribution(with_id):
    m = with_id.outcome.plf_model
    xi = np.stack([draw_realization(m, 3, k) for k in range(1, 2001)])
    flows = m.flows_mw(m.realize(xi))
    std = with_id.outcome.plf_before.std_mw
    big = std > 1.0
    assert np.abs(flows.std(axis=0)[big] / std[big] - 1).max() < 0.1  # P3's std, sampled


def test_the_summary_is_the_mean_of_the_table(with_id):
    table, s = with_id.tables["intraday"], with_id.summary["intraday"]
    assert list(table["scenario_id"]) == [1, 2, 3]
    penalty = s["overload_penalty_eur_per_mwh"]
    assert s["dayahead_payment_eur"] == pytest.approx(with_id.summary["tso_cost_eur"], abs=1e-6)
    cost = s["dayahead_payment_eur"] + penalty * table["da_only_overload_mwh"]
    np.testing.assert_allclose(table["da_only_cost_eur"], cost, atol=1e-6)
    assert s["da_only"]["expected_cost_eur"] == pytest.approx(cost.mean(), abs=1e-6)
    assert s["da_id"]["overload_prob_pu"] == pytest.approx(table["da_id_overloaded"].mean())
    assert s["value_of_intraday_eur"] == pytest.approx(
        table["da_only_cost_eur"].mean() - table["da_id_cost_eur"].mean(), abs=1e-6
    )
    assert (table["da_id_overload_mwh"] <= table["da_only_overload_mwh"] + 1e-9).all()


# --- interruption -------------------------------------------------------------------------


def _stop_at(monkeypatch, k_stop, interrupt=KeyboardInterrupt):
    real = intraday_mod.intraday_scenario

    def stop(plan, xi, k, opt, ex):
        if k == k_stop:
            raise interrupt
        return real(plan, xi, k, opt, ex)

    monkeypatch.setattr(intraday_mod, "intraday_scenario", stop)


def test_an_interrupt_stops_the_run_and_keeps_the_finished_realizations(rts, monkeypatch):
    _stop_at(monkeypatch, 3)
    with pytest.raises(IntradayInterrupted, match="after 2 of 10 realizations") as cut:
        fx.run_market(rts, "mlf", intraday=True, scenarios=10)
    assert isinstance(cut.value, KeyboardInterrupt)  # a run stops as on any Ctrl-C
    res = cut.value.result
    s = res.summary["intraday"]
    assert (s["scenarios"], s["scenarios_done"], s["interrupted"]) == (10, 2, True)
    assert len(res.tables["intraday"]) == 2
    assert res.intraday is cut.value.outcome
    _stop_at(monkeypatch, 1)  # nothing finished: the interrupt itself
    with pytest.raises(KeyboardInterrupt) as bare:
        fx.run_market(rts, "mlf", intraday=True, scenarios=10)
    assert not isinstance(bare.value, IntradayInterrupted)


@pytest.mark.parametrize(
    ("interrupt", "status", "said"),
    [(KeyboardInterrupt, 130, "interrupted"), (Terminated, 143, "terminated")],
)
def test_an_interrupted_command_saves_what_finished_and_stops(
    monkeypatch, tmp_path, capsys, interrupt, status, said
):
    _stop_at(monkeypatch, 2, interrupt)
    out = tmp_path / "cut"
    argv = ["run", str(RTS), "--method", "mlf", "--intraday", "--scenarios", "4", "--out"]
    assert exit_code([*argv, str(out)]) == status
    err = capsys.readouterr().err
    assert f"flexopt: {said}" in err
    assert "interrupted after 1 of 4 realizations" in err
    assert len(pd.read_csv(out / "intraday.csv")) == 1
    assert json.loads((out / "summary.json").read_text())["intraday"]["interrupted"] is True


# --- end to end -----------------------------------------------------------------------------


def _check_saved(folder, n):
    table = pd.read_csv(folder / "intraday.csv")
    assert len(table) == n
    columns = [str(c) for c in table.columns]
    assert _undocumented("intraday.csv", columns) == []
    assert [c for c in columns if not _has_unit_or_is_key(c, table[c])] == []
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["intraday"]["scenarios_done"] == n
    assert summary["options"]["intraday"] is True
    timings = json.loads((folder / "timings.json").read_text())
    assert timings["intraday_s"] > 0
    return summary


def test_the_command_on_rts24(tmp_path, capsys):
    out = tmp_path / "rts"
    argv = ["run", str(RTS), "--method", "mlf", "--intraday", "--scenarios", "5"]
    assert exit_code([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "intraday             5 realizations" in printed
    assert "value of intraday" in printed
    s = _check_saved(out, 5)["intraday"]
    assert s["monitored_hours"] == [9, 10, 11, 12, 13, 14, 15, 16, 20, 21]
    assert (s["dayahead_line_hours"], s["watched_line_hours"]) == (6, 13)
    # the intraday market never leaves more than the day-ahead market alone
    assert s["da_id"]["expected_overload_mwh"] <= s["da_only"]["expected_overload_mwh"]


def test_the_command_on_a_generated_instance(tmp_path):
    inst = generate("case30", 3, "case33bw", 6, 2, tmp_path / "g")
    out = tmp_path / "out"
    argv = ["run", str(inst), "--method", "mlf", "--intraday", "--scenarios", "3"]
    assert exit_code([*argv, "--dayahead-prob", "0.8", "--out", str(out)]) == 0
    s = _check_saved(out, 3)
    assert s["options"]["dayahead_prob"] == 0.8
    assert s["intraday"]["dayahead_quantile"] == pytest.approx(-0.841621234, abs=1e-9)
