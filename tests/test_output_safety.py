"""Output safety (issue 17, items 2, 3 and 11): ``--out`` never deletes or replaces anything
that is not a previous flexopt output of the same kind, never writes into the instance, is
checked before any work, and leaves no temporary folder behind — even when the run is killed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import flexopt.run.api
from flexopt.atomic import (
    MARKER,
    OutputRefusedError,
    atomic_directory,
    check_output_dir,
    clean_stale,
)
from flexopt.cli import main
from flexopt.errors import NonFiniteError, OutputError
from flexopt.report.save import save_results
from tests.conftest import RTS, exit_code, one_error_line


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a command starts any work (loading the instance, running)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the output path was checked")

    monkeypatch.setattr("flexopt.instance.load_instance", forbidden)
    monkeypatch.setattr(flexopt.run.api, "run", forbidden)
    monkeypatch.setattr(flexopt.run.api, "run_market", forbidden)
    monkeypatch.setattr("flexopt.generate._generate", forbidden)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(folder.rglob("*"))
    }


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".flexopt-" in p.name]


# ----------------------------------------------------------------- item 2: no data loss
@pytest.mark.parametrize("command", ["run", "generate"])
def test_out_over_a_user_folder_is_refused_and_the_folder_kept(tmp_path, capsys, no_work, command):
    out = tmp_path / "d"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    argv = (
        ["run", str(RTS)]
        if command == "run"
        else ["generate", "--transmission", "case30", "--dsos", "1"]
    )
    for force in ([], ["--force"]):  # --force replaces flexopt outputs only
        assert exit_code([*argv, "--out", str(out), *force]) == 2
        assert "not a flexopt" in one_error_line(capsys)
    assert (out / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_out_dot_and_the_instance_directory_are_refused(tmp_path, capsys, no_work, monkeypatch):
    inst = tmp_path / "inst"
    shutil.copytree(RTS, inst)
    before = _snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    for out in (".", str(tmp_path), str(inst), str(inst / "results"), str(inst / "transmission")):
        assert exit_code(["run", str(inst), "--out", out, "--force"]) == 2, out
        one_error_line(capsys)
    monkeypatch.chdir(inst)  # "." is the instance itself
    assert exit_code(["run", ".", "--out", ".", "--force"]) == 2
    assert "instance directory" in one_error_line(capsys)
    assert (
        exit_code(["export", str(inst), "--dso", "DSO1", "--format", "mps", "--out", "x.mps"]) == 2
    )
    assert "inside the instance directory" in one_error_line(capsys)
    assert _snapshot(tmp_path) == before


def test_a_previous_result_needs_force_and_siblings_survive(tmp_path, capsys):
    """A previous run is replaced with --force only; a user's ``.d-old`` beside it survives."""
    out = tmp_path / "d"
    sibling = tmp_path / ".d-old"
    sibling.mkdir()
    (sibling / "keep.txt").write_text("mine")
    argv = ["run", str(RTS), "--out", str(out)]
    assert main(argv) == 0
    assert (out / MARKER).read_text() == "flexopt-output: run\n"
    first = (out / "summary.json").read_bytes()
    capsys.readouterr()
    assert exit_code(argv) == 2
    assert "pass --force" in one_error_line(capsys)
    assert main([*argv, "--seed", "1", "--plf", "monte_carlo", "--samples", "200", "--force"]) == 0
    assert (out / "summary.json").read_bytes() != first
    assert (sibling / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".d-old", "d"]


def test_generate_replaces_only_a_generated_instance(tmp_path, capsys, no_work):
    out = tmp_path / "g"
    out.mkdir()
    (out / MARKER).write_text("flexopt-output: run\n")  # a run result is not an instance
    (out / "summary.json").write_text("{}")
    argv = ["generate", "--transmission", "case30", "--dsos", "1", "--out", str(out), "--force"]
    assert exit_code(argv) == 2
    assert "not a instance" not in (line := one_error_line(capsys))
    assert "holds a flexopt run output" in line


# ------------------------------------------------------- item 3: checked before any work
@pytest.mark.parametrize(
    ("out", "needle"),
    [
        ("file", "is not a folder"),
        ("file/sub", "is not a folder"),
        ("/proc/flexopt-x", "cannot write in /proc"),
        ("link", "symbolic link"),
    ],
)
def test_bad_output_paths_fail_before_any_work(tmp_path, capsys, no_work, out, needle):
    (tmp_path / "file").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    path = out if out.startswith("/") else str(tmp_path / out)
    assert exit_code(["run", str(RTS), "--out", path]) == 2
    assert needle in one_error_line(capsys)
    assert (tmp_path / "file").read_text() == "mine"
    assert not _leftovers(tmp_path)


@pytest.mark.parametrize(
    ("name", "extra", "needle"),
    [
        ("model.mps", [], "pass --force"),  # an existing file needs --force
        ("folder", ["--force"], "not a regular file"),  # a folder never
        ("model.nl", ["--format", "nl"], "model.row: exists"),  # nor a name map beside it
    ],
)
def test_export_refuses_before_any_work(tmp_path, capsys, no_work, name, extra, needle):
    (tmp_path / "model.mps").write_text("mine")
    (tmp_path / "model.row").write_text("mine")
    (tmp_path / "folder").mkdir()
    fmt = [] if "--format" in extra else ["--format", "mps"]
    argv = ["export", str(RTS), "--dso", "DSO1", *fmt, *extra, "--out", str(tmp_path / name)]
    assert exit_code(argv) == 2
    assert needle in one_error_line(capsys)
    assert (tmp_path / "model.mps").read_text() == "mine"


def test_library_save_refuses_too(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    table = {"t": pd.DataFrame({"a": [1.0]})}
    with pytest.raises(OutputError, match="not a flexopt run output"):
        save_results(out, table, {"x": 1.0}, {"s": 1.0})
    with pytest.raises(NonFiniteError, match="x = inf"):
        save_results(tmp_path / "n", table, {"x": float("inf")}, {})
    assert not (tmp_path / "n").exists()
    assert save_results(tmp_path / "p", table, {"x": 1.0}, {}).is_dir()
    with pytest.raises(OutputRefusedError):
        check_output_dir(tmp_path / "p", "run")  # a previous result, replace not asked
    assert check_output_dir(tmp_path / "p", "run", replace=True) == tmp_path / "p"


# --------------------------------------------------------------------- item 11: leftovers
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_killed_writers_are_cleaned(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".r.flexopt-tmp-{dead}-abc123"
    stale.mkdir()
    (stale / "day_ahead.csv").write_text("half")
    stale_file = tmp_path / f".m.flexopt-tmp-{dead}-x_1.mps"
    stale_file.write_text("half")
    moved = tmp_path / f".prev.flexopt-old-{dead}-zz9"  # a result caught between two renames
    moved.mkdir()
    (moved / "summary.json").write_text("{}")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f".r.flexopt-tmp-{sleeper.pid}-live01"  # a writer still at work
        busy.mkdir()
        user = tmp_path / ".r-old"
        user.mkdir()
        with atomic_directory(tmp_path / "r", "run") as work:
            (work / "a.txt").write_text("new")
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == sorted([".r-old", busy.name, "prev", "r"])
        assert (tmp_path / "prev" / "summary.json").exists()  # moved back, not deleted
        assert clean_stale(tmp_path) == []
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_failed_write_leaves_the_previous_result(tmp_path):
    out = tmp_path / "r"
    with atomic_directory(out, "run") as work:
        (work / "v.txt").write_text("1")

    def fail() -> None:
        with atomic_directory(out, "run", replace=True) as work:
            (work / "v.txt").write_text("2")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        fail()
    assert (out / "v.txt").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_written_folder_is_readable_by_others(tmp_path):
    """``tempfile.mkdtemp`` makes 0700 folders; a finished result or instance is an ordinary
    folder (0755), as its files are ordinary files (0644)."""
    with atomic_directory(tmp_path / "out", "result") as work:
        (work / "a.csv").write_text("x\n")
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
