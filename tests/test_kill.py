"""Runs killed at random moments (issue 17, output safety): whatever the moment and the
signal (SIGKILL, SIGTERM), the target folder is absent, unchanged or complete, no user file
is lost, SIGTERM cleans up after itself, and no temporary survives the next run.

The children are forked from a forkserver that has imported flexopt, so each starts in
milliseconds: ``run_cli`` is ``flexopt run`` itself (S1 … S8, figures, the swap), killed
anywhere in its run; ``save_loop`` replaces a result folder over and over, so that its kills
land at many points of the write and the swap.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flexopt.atomic import MARKER
from tests import _killable
from tests.conftest import RTS

pytestmark = pytest.mark.slow  # run by CI (.ci/run runs every test)

RUN_KILLS = 6
SAVE_KILLS = 20


@pytest.fixture(scope="module")
def ctx():
    c = mp.get_context("forkserver")
    c.set_forkserver_preload(
        ["tests._killable", "flexopt.cli", "flexopt.run.api", "flexopt.report", "flexopt.atomic"]
    )
    return c


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _temporaries(folder: Path, pid: int | None = None) -> list[str]:
    """Temporaries in ``folder`` (of process ``pid`` only, when given)."""
    mine = re.compile(rf"\.flexopt-\w+-{pid}-") if pid is not None else re.compile(r"\.flexopt-")
    return sorted(p.name for p in folder.iterdir() if mine.search(p.name))


def _plant_stale(folder: Path) -> None:
    """Leftovers of a writer killed earlier (its process is gone): a half-written result
    folder and a probe of the output check."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (folder / f".res.flexopt-tmp-{proc.pid}-dead01").mkdir()
    (folder / f".res.flexopt-tmp-{proc.pid}-dead01" / "day_ahead.csv").write_text("half")
    (folder / f".probe.flexopt-tmp-{proc.pid}-dead02").mkdir()


def _user_files(parent: Path) -> dict[str, bytes]:
    (parent / "notes.txt").write_text("a user's file")
    (parent / ".res-old").mkdir()
    (parent / ".res-old" / "keep.txt").write_text("a user's folder named like a backup")
    return {"notes.txt": b"a user's file"}


def _check_user_files(parent: Path) -> None:
    assert (parent / "notes.txt").read_text() == "a user's file"
    assert (parent / ".res-old" / "keep.txt").exists()


def _kill(proc: mp.process.BaseProcess, delay: float, sig: int) -> None:
    time.sleep(delay)
    if proc.is_alive() and proc.pid is not None:
        os.kill(proc.pid, sig)
    proc.join(timeout=120)
    assert proc.exitcode is not None, "a killed run did not end"


def _argv(out: Path, seed: int) -> list[str]:
    return [
        "run", str(RTS), "--out", str(out), "--force", "--seed", str(seed),
        "--plf", "monte_carlo", "--samples", "200",
    ]  # fmt: skip


def test_killed_runs_leave_the_target_unchanged_or_complete(ctx, tmp_path):
    out = tmp_path / "res"
    _user_files(tmp_path)
    _plant_stale(tmp_path)
    first = ctx.Process(target=_killable.run_cli, args=(_argv(out, 0),))
    start = time.perf_counter()
    first.start()
    first.join(timeout=300)
    full = time.perf_counter() - start
    assert first.exitcode == 0
    assert not _temporaries(tmp_path), "a run left the stale temporaries beside its output"
    names = set(_files(out))
    assert {MARKER, "summary.json", "day_ahead.csv", "line_loading.png"} <= names
    before = _files(out)
    rng = random.Random(17)
    for k in range(RUN_KILLS):
        sig = (signal.SIGKILL, signal.SIGTERM)[k % 2]
        proc = ctx.Process(target=_killable.run_cli, args=(_argv(out, k + 1),))
        proc.start()
        _kill(proc, rng.uniform(0.0, 1.1 * full), sig)
        assert out.is_dir(), f"kill {k}: the previous result is gone"
        now = _files(out)
        if now != before:  # complete: every file, the new run's summary
            assert set(now) == names, f"kill {k}: incomplete folder {sorted(set(now) ^ names)}"
            assert json.loads(now["summary.json"])["seed"] == k + 1
            before = now
        _check_user_files(tmp_path)
        if sig == signal.SIGTERM:
            assert proc.exitcode in (0, 143, -signal.SIGTERM)
            assert proc.pid is not None
            assert not _temporaries(tmp_path, proc.pid), "SIGTERM left a temporary behind"
    # the next run cleans whatever the killed ones left (SIGKILL gives no chance to clean)
    _plant_stale(tmp_path)
    last = ctx.Process(target=_killable.run_cli, args=(_argv(out, 99),))
    last.start()
    last.join(timeout=300)
    assert last.exitcode == 0
    assert not _temporaries(tmp_path), "a temporary survived the next run"
    assert set(_files(out)) == names
    assert json.loads((out / "summary.json").read_text())["seed"] == 99
    _check_user_files(tmp_path)


def test_saves_killed_anywhere_leave_a_complete_folder(ctx, tmp_path):
    out = tmp_path / "res"
    _user_files(tmp_path)
    rng = random.Random(3)
    existed = False
    for k in range(SAVE_KILLS):
        sig = (signal.SIGKILL, signal.SIGTERM)[k % 2]
        proc = ctx.Process(target=_killable.save_loop, args=(str(out),))
        proc.start()
        _kill(proc, rng.uniform(0.05, 0.8), sig)
        if out.exists():
            existed = True
            assert _killable.version_of(out) is not None, f"kill {k}: a half-written folder"
            assert (out / MARKER).exists()
        else:
            assert not existed, f"kill {k}: the previous result is gone"
        _check_user_files(tmp_path)
        if sig == signal.SIGTERM:
            assert proc.exitcode in (143, -signal.SIGTERM)
            assert proc.pid is not None
            assert not _temporaries(tmp_path, proc.pid), "SIGTERM left a temporary behind"
    assert existed
    # the next save (in this process) cleans every leftover of the killed ones
    from flexopt.report.save import save_results

    save_results(out, _killable.tables(0), {"version": 0}, {"s": 0.0}, replace=True)
    assert _killable.version_of(out) == 0
    assert not _temporaries(tmp_path), "a temporary survived the next save"
    _check_user_files(tmp_path)
