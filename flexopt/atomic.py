"""Writing files and folders so that nothing half done is ever visible and nothing that is not
flexopt's own is ever replaced (imports nothing of flexopt). The one mechanism behind result
folders, instance generators, exported models, benchmark tables and golden files.

An output folder carries a marker file (:data:`MARKER`, naming its kind: ``run``,
``instance``). :func:`check_output_dir` accepts a folder that does not exist, an empty one, or
— only when asked to replace — one whose marker names the same kind; anything else is
refused with :class:`OutputRefusedError`, a one-line ``OSError``. The new folder is filled under a
temporary name and swapped in by one atomic exchange (``renameat2``; two renames where the
file system has no exchange), so the target is at every moment either the previous result or
the new one. Temporary names carry the writer's process id; :func:`clean_stale` removes those
whose process is gone (a run killed by ``SIGKILL``), and every writer calls it first.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "MARKER",
    "OutputRefusedError",
    "atomic_directory",
    "atomic_file",
    "check_output_dir",
    "check_output_file",
    "clean_stale",
    "open_output_dir",
    "output_path",
    "write_text_atomic",
]

#: The file that marks a folder as flexopt's output; its one line names the kind.
MARKER = ".flexopt-output"
_MARK_PREFIX = "flexopt-output: "
#: ``.<name>.flexopt-<role>-<pid>-<random>[<suffix>]``: a writer's temporary (``tmp``) or the
#: previous result it is replacing (``old``).
_TEMP = re.compile(
    r"\.(?P<name>.+)\.flexopt-(?P<role>tmp|old)-(?P<pid>\d{1,10})-(?P<rand>[A-Za-z0-9_]+)"
    r"(?P<ext>\.[^/]*)?"
)


class OutputRefusedError(OSError):
    """An output path flexopt will not write; the message is one line naming it and why."""


def output_path(out: str | Path) -> Path:
    """``out`` made absolute, with symbolic links resolved in its parent but not in itself."""
    p = Path(os.path.abspath(os.fspath(out)))
    return p if p.parent == p else p.parent.resolve() / p.name


def _kind_of(folder: Path) -> str | None:
    """The kind a folder's marker names, or ``None`` without a (regular-file) marker."""
    mark = folder / MARKER
    if mark.is_symlink() or not mark.is_file():
        return None
    try:
        with mark.open(encoding="utf-8") as fh:
            line = fh.readline(200).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return line[len(_MARK_PREFIX) :] if line.startswith(_MARK_PREFIX) else None


def _check_place(out: Path, protect: Iterable[str | Path]) -> None:
    if out.parent == out or not out.name:
        raise OutputRefusedError(f"{out}: refusing to write over the file system root")
    for q in protect:
        q = Path(q).resolve()
        if out == q or q in out.parents:
            where = "is" if out == q else "is inside"
            raise OutputRefusedError(
                f"{out}: {where} the instance directory {q}; choose an output path outside it"
            )
        if out in q.parents:
            raise OutputRefusedError(
                f"{out}: contains the instance directory {q}; choose an output path outside it"
            )
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise OutputRefusedError(f"{out}: is the current directory or contains it")
    if out.is_symlink():
        raise OutputRefusedError(f"{out}: is a symbolic link; give the path itself")


def _check_writable(out: Path) -> None:
    """The nearest existing ancestor of ``out`` is a folder this process can create in."""
    base = out.parent
    while not base.exists() and base.parent != base:
        base = base.parent
    if not base.is_dir():
        raise OutputRefusedError(f"{out}: {base} is not a folder")
    # named like a temporary so that clean_stale removes it after a SIGKILL; signals held so
    # that SIGINT/SIGTERM cannot land between its creation and its removal
    try:
        with _signals_deferred():
            os.rmdir(tempfile.mkdtemp(prefix=f".probe.flexopt-tmp-{os.getpid()}-", dir=base))
    except OSError as err:
        raise OutputRefusedError(
            f"{out}: cannot write in {base} ({err.strerror or type(err).__name__})"
        ) from None


def check_output_dir(
    out: str | Path, kind: str, *, replace: bool = False, protect: Iterable[str | Path] = ()
) -> Path:
    """Check that a ``kind`` output folder may be written at ``out``; returns its absolute path.

    Accepted: a path that does not exist under a writable folder, an empty folder, and — with
    ``replace`` — a folder whose :data:`MARKER` names ``kind``. Refused (:class:`OutputRefusedError`):
    anything else, the file system root, the current directory or one containing it, a
    symbolic link, and a path that is, lies inside or contains one of ``protect`` (the
    instance directory).
    """
    out = output_path(out)
    _check_place(out, protect)
    if out.exists():
        if not out.is_dir():
            raise OutputRefusedError(f"{out}: exists and is not a folder; refusing to replace it")
        try:
            empty = not any(os.scandir(out))
        except OSError as err:
            raise OutputRefusedError(f"{out}: cannot read it ({err.strerror})") from None
        if not empty:
            found = _kind_of(out)
            if found is None:
                raise OutputRefusedError(
                    f"{out}: exists and is not a flexopt {kind} output (no {MARKER} marker); "
                    "refusing to replace it — choose a new folder"
                )
            if found != kind:
                article = "an" if kind[:1] in "aeiou" else "a"
                raise OutputRefusedError(
                    f"{out}: holds a flexopt {found} output, not {article} {kind} output; "
                    "refusing to replace it"
                )
            if not replace:
                raise OutputRefusedError(
                    f"{out}: holds a previous flexopt {kind} output; pass --force to replace it"
                )
    _check_writable(out)
    return out


def check_output_file(
    out: str | Path,
    *,
    replace: bool = False,
    siblings: Sequence[str] = (),
    protect: Iterable[str | Path] = (),
) -> Path:
    """Check that a file may be written at ``out`` (and its ``siblings``: the same path with
    these suffixes); returns its absolute path. An existing file is replaced only with
    ``replace``; a folder, the root, a symbolic link or a path in ``protect`` never."""
    out = output_path(out)
    _check_place(out, protect)
    for p in (out, *(out.with_suffix(s) for s in siblings)):
        if p.is_symlink() or (p.exists() and not p.is_file()):
            raise OutputRefusedError(
                f"{p}: exists and is not a regular file; refusing to replace it"
            )
        if p.exists() and not replace:
            raise OutputRefusedError(f"{p}: exists; pass --force to replace it")
    _check_writable(out)
    return out


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not; another user's process does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError, OSError):
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rpartition(")")[2].split()[:1] != ["Z"]
    except OSError:
        return True


def clean_stale(folder: str | Path) -> list[Path]:
    """Remove the temporaries that writers killed before they could clean up left in
    ``folder`` (only those whose process is gone). A previous result caught in the middle of
    a two-rename swap is moved back when its target is missing. Returns what was removed."""
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.fullmatch(entry.name)
        if m is None or _alive(int(m["pid"])):
            continue
        path = Path(entry.path)
        target = folder / m["name"]
        with contextlib.suppress(OSError):
            if m["role"] == "old" and m["ext"] is None and not os.path.lexists(target):
                os.rename(path, target)
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold ``SIGINT``/``SIGTERM`` while a result is swapped in: they arrive just after."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "pthread_sigmask"
    ):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


_AT_FDCWD, _RENAME_NOREPLACE, _RENAME_EXCHANGE = -100, 1, 2


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; ``False`` where the system or file system lacks it."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def _commit(work: Path, out: Path) -> None:
    """Put the finished ``work`` at ``out``; a previous folder there ends up deleted."""
    if not os.path.lexists(out):
        try:
            if not _renameat2(work, out, _RENAME_NOREPLACE):
                os.rename(work, out)
        except OSError as err:
            if err.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise OutputRefusedError(f"{out}: appeared while flexopt was writing it") from None
            raise
        return
    if _renameat2(work, out, _RENAME_EXCHANGE):
        shutil.rmtree(work)  # it now holds the previous folder
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.flexopt-old-{os.getpid()}-", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    os.rename(work, out)
    shutil.rmtree(old)


@contextmanager
def atomic_directory(
    out: str | Path,
    kind: str,
    *,
    replace: bool = False,
    protect: Iterable[str | Path] = (),
) -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to fill; on success it is marked as a ``kind``
    output and swapped in atomically, on any error removed and ``out`` left as it was.

    ``out`` is checked (:func:`check_output_dir`) before anything is written and again
    just before the swap; stale temporaries of killed writers beside it are removed first.
    """
    protect = tuple(protect)
    out = check_output_dir(out, kind, replace=replace, protect=protect)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out.parent)
    # a signal between mkdtemp creating the folder and the try below would leave it behind:
    # hold signals until the folder is named, so that they land inside the try
    prefix = f".{out.name}.flexopt-tmp-{os.getpid()}-"
    work: Path | None = None
    try:
        with _signals_deferred():
            work = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
        yield work
        (work / MARKER).write_text(f"{_MARK_PREFIX}{kind}\n", encoding="utf-8")
        os.chmod(work, 0o755)  # mkdtemp creates 0700; a written folder is an ordinary one
        with _signals_deferred():
            check_output_dir(out, kind, replace=replace, protect=protect)
            _commit(work, out)
    except BaseException:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        raise


@contextmanager
def atomic_file(out: str | Path, siblings: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``out`` (same suffix) to write; on success it is renamed
    to ``out``, on any error removed and ``out`` left as it was. (It replaces an existing
    file: callers that must not check first with :func:`check_output_file`.)

    ``siblings``: suffixes of companion files a writer may put beside the temporary path
    (e.g. ``(".row", ".col")`` of an NL file); each one that exists is renamed beside ``out``
    too.
    """
    out = output_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out.parent)
    prefix = f".{out.stem}.flexopt-tmp-{os.getpid()}-"
    tmp: Path | None = None
    companions: list[tuple[Path, Path]] = []
    try:
        with _signals_deferred():  # as in atomic_directory: a signal lands inside the try
            fd, name = tempfile.mkstemp(dir=out.parent, prefix=prefix, suffix=out.suffix)
            os.close(fd)
            tmp = Path(name)
        companions = [(tmp.with_suffix(s), out.with_suffix(s)) for s in siblings]
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a written result is an ordinary file
        with _signals_deferred():
            for src, dst in companions:
                if src.exists():
                    os.replace(src, dst)
            os.replace(tmp, out)
    finally:
        for leftover in (tmp, *(src for src, _ in companions)):
            if leftover is not None and leftover.exists():
                leftover.unlink()


def write_text_atomic(out: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``out`` atomically; returns the absolute path."""
    with atomic_file(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return output_path(out)


def open_output_dir(out: str | Path, kind: str, *, protect: Iterable[str | Path] = ()) -> Path:
    """A ``kind`` output folder filled over several sessions (``flexopt compare``: each run
    is written atomically into it, and a rerun resumes): created and marked if new or empty,
    taken as it is if its marker names ``kind``, refused otherwise (as
    :func:`check_output_dir`). Returns its absolute path."""
    out = check_output_dir(out, kind, replace=True, protect=protect)
    out.mkdir(parents=True, exist_ok=True)
    if _kind_of(out) != kind:
        write_text_atomic(out / MARKER, f"{_MARK_PREFIX}{kind}\n")
    return out
