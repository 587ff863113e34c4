"""The benchmark scripts' reports on the subsets their options select."""

from __future__ import annotations

import pandas as pd

from benchmarks import clearing_time


def test_clearing_time_plots_nothing_without_default_thread_runs(monkeypatch, tmp_path):
    """``--methods wca-1core,wca-2workers`` has no run on numba's default threads in one
    process: no plot, where the script used to end in a matplotlib traceback."""
    monkeypatch.setattr(clearing_time, "save_figure", lambda fig, name: tmp_path / name)
    runs = pd.DataFrame(
        {
            "dsos": [10, 10],
            "prosumers": [10, 10],
            "method": ["wca", "wca"],
            "workers": [1, 2],
            "numba_threads": [1, 0],
            "threads": [0, 0],
            "status": ["ok", "ok"],
            "clearing_s": [1.0, 0.8],
        }
    )
    assert clearing_time.plot(runs) is None
    runs.loc[1, "workers"] = 1  # numba's default threads, one process: plotted
    assert clearing_time.plot(runs) == tmp_path / "clearing_time"


def test_clearing_time_repeats_are_medians_and_each_round_against_its_own_qp():
    """``--repeat 3``: the tables take each setting's median time; the ratio to the QP is
    taken round by round (median and range), not between medians."""
    rows = []
    for rnd, (wca, qp) in enumerate([(1.0, 2.0), (3.0, 2.0), (2.0, 1.0)], start=1):
        for method, t in (("wca", wca), ("centralized", qp)):
            rows.append(
                {
                    "dsos": 100,
                    "prosumers": 10,
                    "method": method,
                    "workers": 1,
                    "numba_threads": 0,
                    "threads": 0,
                    "status": "ok",
                    "round": rnd,
                    "clearing_s": t,
                    "social_cost_eur": 5.0,
                }
            )
    one, lines = clearing_time.medians(pd.DataFrame(rows))
    assert one.set_index("method")["clearing_s"].to_dict() == {"wca": 2.0, "centralized": 2.0}
    assert "round" not in one
    assert one["social_cost_eur"].tolist() == [5.0, 5.0]
    assert lines[-1] == "| 100 | 10 | wca | 3 | 2.00 | 1.50 | 0.50–2.00 |"
    single, none = clearing_time.medians(pd.DataFrame(rows[:2]))
    assert none == []
    assert len(single) == 2


def test_wca_stall_sets_each_window_against_the_longest_from_the_same_seed():
    """``--seeds 2``: the window table pools both seeds, each search against the longest
    window's search from its own seed (a stopped search is a prefix of a longer one)."""
    from benchmarks import wca_stall

    rows = []
    for k, (short, long) in enumerate([((1.00, 100), (1.00, 150)), ((1.02, 90), (1.00, 120))]):
        tail = f", seed +{k}" if k else ""
        for stall, (obj, ev) in ((50, short), (75, long)):
            setting = f"stall {stall} by factors, x0 + mlf{tail}"
            rows.append(
                {
                    "instance": "i",
                    "dso": "D1",
                    "setting": setting,
                    "objective": obj,
                    "evaluations": ev,
                }
            )
    table = wca_stall.window_table(pd.DataFrame(rows), [50, 75], 2)
    row = table.splitlines()[-1]
    assert row == "| i | stall 50 | 2 | 0.70 | +2.0000 % | +1.0000 % | 1 | 1 |"
    assert [s[0] for s in wca_stall.settings([50, 75], 2)][-2:] == [
        "stall 50 by factors, x0 + mlf, seed +1",
        "stall 75 by factors, x0 + mlf, seed +1",
    ]
