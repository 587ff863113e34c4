"""flexopt from an install its user cannot write to (issue 17, item 5): run as the
unprivileged user ``nobody`` against this checkout (owned by root), numba's cache goes to the
user's cache directory when there is one and is off when there is none; an output path the
user cannot write is one line before any work (item 3)."""

from __future__ import annotations

import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, RTS


def _nobody() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


NOBODY = _nobody()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or NOBODY is None, reason="needs root to run as the user 'nobody'"
    ),
]


def _as_nobody(
    argv: list[str], home: str, timeout: float = 300, **extra_env: str
) -> subprocess.CompletedProcess:
    assert NOBODY is not None
    paths = [str(ROOT), *site.getsitepackages()]
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "PYTHONPATH": os.pathsep.join(paths)}
    env.update(extra_env)
    return subprocess.run(
        argv,
        env=env,
        cwd="/",
        user=NOBODY.pw_uid,
        group=NOBODY.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def python() -> str:
    """An interpreter of this Python version that ``nobody`` may execute (a virtual
    environment under root's home is not one)."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [os.path.realpath(sys.executable), f"/usr/bin/python{version}"]
    candidates.append(shutil.which(f"python{version}") or "")
    for exe in candidates:
        if not exe or not os.path.exists(exe):
            continue
        try:
            out = _as_nobody([exe, "-c", "import sys; print(sys.version_info[:2])"], "/", 30)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout.strip() == str(sys.version_info[:2]):
            return exe
    pytest.skip(f"no Python {version} that the user 'nobody' may run")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder ``nobody`` may write in (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="flexopt-ro-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_install_is_read_only_for_nobody(python):
    code = "import os, flexopt.grid as g; print(os.access(os.path.dirname(g.__file__), os.W_OK))"
    out = _as_nobody([python, "-c", code], "/nonexistent", 60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_run_without_a_writable_cache_directory(python, shared_dir):
    """HOME does not exist: numba has nowhere to cache and compiles in memory."""
    out = _as_nobody(
        [python, "-m", "flexopt.cli", "run", str(RTS), "--out", str(shared_dir / "r")],
        "/nonexistent",
    )
    assert out.returncode == 0, out.stderr
    assert all(line.startswith("flexopt: ") for line in out.stderr.splitlines()), out.stderr
    assert (shared_dir / "r" / "summary.json").is_file()


POWER_FLOW = (
    "import numpy as np, pandas as pd, flexopt as fx\n"
    "f = fx.grid.Feeder.from_branches([0, 1], [1, 2], [0.1, 0.1], [0.1, 0.1], vn_kv=12.66,"
    " root=0, p_mw=pd.Series([0.1, 0.1], index=[1, 2]))\n"
    "print(f.power_flow().loss_mw > 0)\n"
)


def test_numba_caches_in_the_users_cache_directory(python, shared_dir):
    out = _as_nobody([python, "-c", POWER_FLOW], str(shared_dir), 300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
    cached = list((shared_dir / ".cache" / "numba").rglob("*.nbi"))  # the sweep kernel
    assert cached, sorted(str(p) for p in shared_dir.rglob("*"))


def test_an_unwritable_numba_cache_dir_compiles_in_memory(python):
    """``NUMBA_CACHE_DIR`` names a folder the user cannot write (root's) and there is no home
    to fall back on: no cache, no error, not a word on stderr."""
    out = _as_nobody([python, "-c", POWER_FLOW], "/nonexistent", 300, NUMBA_CACHE_DIR="/root/x")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
    assert not out.stderr.strip(), out.stderr


def test_an_output_path_the_user_cannot_write_is_one_line(python):
    out = _as_nobody(
        [python, "-m", "flexopt.cli", "run", str(RTS), "--out", str(ROOT / "not-mine")],
        "/nonexistent",
        120,
    )
    assert out.returncode == 2, out.stderr
    want = f"flexopt: error: {ROOT / 'not-mine'}: cannot write in {ROOT} (Permission denied)"
    assert out.stderr.strip().splitlines() == [want]
    assert not (ROOT / "not-mine").exists()
