"""Shared fixtures. pandapower is imported quietly (it warns about numba at import)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandapower  # noqa: F401
    import pandapower.networks as pn

import flexopt as fx

ROOT = Path(__file__).resolve().parents[1]
RTS = ROOT / "instances" / "rts24-3dso"


def wait_for_run_pool(workers: int) -> None:
    """Wait until the idle pool a ``run_market(..., workers=workers)`` left behind has
    warmed up, so that the next run ships tasks to its workers too."""
    import concurrent.futures

    from flexopt import executors
    from flexopt.run.tasks import warm_worker
    from flexopt.run.warmup import warm_dso_stages

    pool = executors._IDLE[(workers, warm_worker, warm_dso_stages)]
    concurrent.futures.wait(pool.ready)


def run_script(folder: Path, text: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``text`` as a script in a fresh interpreter (this checkout importable), its output
    captured."""
    script = folder / "script.py"
    script.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=timeout
    )


def exit_code(argv: list[str]) -> int:
    """``flexopt`` with ``argv`` in this process: its exit code."""
    from flexopt.cli import main

    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one ``flexopt: error:`` line on stderr (progress lines ending in "…" aside)."""
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.endswith("…")]
    assert len(err) == 1, err
    assert err[0].startswith("flexopt: error: ")
    assert "Traceback" not in err[0]
    return err[0]


@pytest.fixture(scope="session")
def rts() -> fx.Instance:
    return fx.load_instance(RTS)


@pytest.fixture(scope="session")
def case33() -> fx.grid.Feeder:
    return fx.grid.Feeder.from_pandapower(pn.case33bw())


@pytest.fixture(scope="session")
def case69() -> fx.grid.Feeder:
    return fx.grid.Feeder.from_pandapower(fx.grid.case69())


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fuzz", "the mutation fuzzer (tests/fuzz.py)")
    group.addoption("--fuzz-validate", type=int, default=300, help="validate cases (CI: 300)")
    group.addoption("--fuzz-run", type=int, default=50, help="run cases (CI: 50)")
    group.addoption("--fuzz-seed", type=int, default=0, help="seed of the cases")
