"""Short reprs: a result, an instance, a feeder or an optimizer's result prints in one line,
never a whole table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import flexopt as fx
from flexopt.run.compare import CompareResult


def test_instance_dso_and_feeder_data_print_one_line(rts):
    assert repr(rts) == "Instance('rts24-3dso': 24 buses, 3 DSOs, 24 h)"
    dso = rts.dsos[0]
    assert repr(dso.feeder) == "FeederData(case33bw: 32 branches, 12.66 kV)"
    assert repr(dso) == (
        f"DSOData('DSO1': bus {dso.bus}, {dso.n_feeders} × case33bw, "
        f"{len(dso.prosumers)} prosumers)"
    )


def test_feeder_prints_one_line(case33, case69):
    assert repr(case33) == "Feeder(case33bw: 33 buses, 32 branches, 12.66 kV)"
    assert repr(case69) == "Feeder(case69: 69 buses, 68 branches, 12.66 kV)"


def test_optimizer_result_prints_one_line():
    sphere = fx.optim.Problem.from_function(
        lambda X: (X**2).sum(1), -100 * np.ones(30), 100 * np.ones(30)
    )
    r = fx.optim.minimize(sphere, fx.optim.WCA(), max_iter=300, seed=0)
    text = repr(r)
    assert r.evaluations == 14_750
    assert text == (
        f"Result(WCA: x=[30 values], f={r.f:.6g}, feasible, 300 iterations, 14 750 evaluations)"
    )


def test_infeasible_and_multi_objective_results_print_one_line():
    r = fx.optim.Result(
        x=np.zeros(4),
        f=np.array([1.5, 2.25]),
        violation=0.5,
        history=np.zeros(3),
        evaluations=1200,
        iterations=3,
        time_s=0.1,
        algorithm="MOWCA",
        seed=0,
        message="",
    )
    assert repr(r) == (
        "Result(MOWCA: x=[4 values], f=[1.5, 2.25], infeasible (violation 0.5), "
        "3 iterations, 1 200 evaluations)"
    )


def test_market_result_prints_one_line(rts):
    res = fx.run_market(rts, method="none", seed=0)
    s = res.summary
    text = repr(res)
    assert text.startswith("MarketResult(method='none', instance='rts24-3dso', overload 26.39 → ")
    assert f"{s['overload_mw_after']:.2f} MW·h" in text
    assert f"social cost {s['social_cost_eur']:,.2f} €)".replace(",", " ") in text
    assert "\n" not in text
    assert len(text) < 150


def test_compare_result_prints_one_line(tmp_path: Path):
    res = CompareResult(
        out=tmp_path,
        runs=pd.DataFrame({"run": ["a", "b"]}),
        dso=pd.DataFrame(),
        summaries=[{}, {}],
        ran=["a"],
        skipped=["b"],
        figures=[tmp_path / "compare.png"],
    )
    assert repr(res) == f"CompareResult({str(tmp_path)!r}: 2 runs (1 ran, 1 skipped), 1 figure)"
