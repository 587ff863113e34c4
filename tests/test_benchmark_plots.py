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
