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
import signal
import time
from pathlib import Path

import pytest

from flexopt.atomic import MARKER, clean_stale
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


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".flexopt-" in p.name)


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
    first = ctx.Process(target=_killable.run_cli, args=(_argv(out, 0),))
    start = time.perf_counter()
    first.start()
    first.join(timeout=300)
    full = time.perf_counter() - start
    assert first.exitcode == 0
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
            assert not _temporaries(tmp_path), "SIGTERM left a temporary behind"
        clean_stale(tmp_path)  # what the next run does first
        assert not _temporaries(tmp_path)


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
            assert not _temporaries(tmp_path), "SIGTERM left a temporary behind"
        clean_stale(tmp_path)
        assert not _temporaries(tmp_path)
    assert existed
