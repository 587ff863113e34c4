"""Writing files and folders so that nothing half done is ever visible (imports nothing of
flexopt). The one mechanism behind result folders, instance generators, exported models,
benchmark tables and golden files."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_directory", "atomic_file", "write_text_atomic"]


@contextmanager
def atomic_directory(out: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to fill; on success it replaces ``out`` by renames,
    on any error it is removed and ``out`` is left as it was."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        yield work
        if out.exists():
            old = out.with_name(f".{out.name}-old")
            if old.exists():
                shutil.rmtree(old)
            out.rename(old)
            work.rename(out)
            shutil.rmtree(old)
        else:
            work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


@contextmanager
def atomic_file(out: str | Path, siblings: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``out`` (same suffix) to write; on success it is renamed
    to ``out``, on any error removed and ``out`` left as it was.

    ``siblings``: suffixes of companion files a writer may put beside the temporary path
    (e.g. ``(".row", ".col")`` of an NL file); each one that exists is renamed beside ``out``
    too.
    """
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}-", suffix=out.suffix)
    os.close(fd)
    tmp = Path(name)
    companions = [(tmp.with_suffix(s), out.with_suffix(s)) for s in siblings]
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a written result is an ordinary file
        for src, dst in companions:
            if src.exists():
                os.replace(src, dst)
        os.replace(tmp, out)
    finally:
        for leftover in (tmp, *(src for src, _ in companions)):
            if leftover.exists():
                leftover.unlink()


def write_text_atomic(out: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``out`` atomically; returns the resolved path."""
    with atomic_file(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(out).resolve()
