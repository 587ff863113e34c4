"""The ``flexopt`` command.

    flexopt validate INSTANCE
    flexopt export INSTANCE --dso ID --format mps|lp|nl --out FILE [--mode b|ab]
    flexopt generate --transmission CASE|FILE --dsos N --feeder FEEDER[,FEEDER…]
                     --prosumers M --seed S --out DIR
    flexopt run INSTANCE [--method METHOD] [--options FILE.toml] [option flags] [--out DIR]
    flexopt compare INSTANCE --methods M1,M2,… [--set NAME=V1,V2,…] [--seeds 0-4]
                    [--workers N | --scheduler ADDR] [option flags] --out DIR

``--method`` takes every registered coefficient method (``flexopt.methods``: none, mlf, wca,
exact, …) and ``centralized``. Every market option is a flag (``flexopt run --help``), or a
key of ``--options FILE.toml``; flags override the file. Options are passed on only when
given, so an option that does not apply to the chosen method is refused with one line naming
the method. Bad input prints one line naming the file or flag and the field and exits with
status 2.

Every option and the output path are checked before any work starts. ``--out`` writes a new
folder (or file), or replaces a previous flexopt output of the same kind with ``--force``;
it never replaces anything else, and never writes into the instance directory. ``SIGTERM``
is handled like Ctrl-C: the run stops, nothing half written is left (status 143; 130 for
Ctrl-C). ``-v`` shows the library's log (``-vv`` debug), ``-q`` errors only.

The commands live in one module each (``run``, ``compare``, ``generate``, ``export``); the
parser helpers and the option flags in ``_args``.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from flexopt.cli._args import EXIT_BAD_INPUT, Parser
from flexopt.errors import (
    FlexoptError,
    Terminated,
    check_terminated,
    clear_terminated,
    terminate,
)

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "EXIT_TERMINATED", "Terminated", "main"]

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def _parser() -> argparse.ArgumentParser:
    from flexopt.cli import compare, export, generate, run

    p = Parser(prog="flexopt", description="Bilevel TSO–DSO flexibility market toolkit.")
    p.add_argument("--version", action="version", version=f"flexopt {_version()}")
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show the library's log: -v info, -vv debug",
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", help="errors only: no progress, no warnings"
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    run.add_validate_parser(sub)
    generate.add_parser(sub)
    export.add_parser(sub)
    run.add_parser(sub)
    compare.add_parser(sub)
    return p


def _version() -> str:
    from flexopt import __version__

    return __version__


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """``SIGTERM`` raises :class:`Terminated` while ``main`` runs (main thread only)."""

    def stop(signum: int, frame: Any) -> None:
        terminate()  # raised here, and again at the next stage if a finalizer swallows it

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        clear_terminated()


class _Stderr(logging.Handler):
    """Log records as ``flexopt: <message>`` lines on the current ``sys.stderr`` (looked up
    at each record: tests and callers replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"flexopt: {_one_line(record.getMessage())}\n")
            sys.stderr.flush()
        except Exception:  # a closed stream must not end the run
            self.handleError(record)


_handler = _Stderr()


def _configure_logging(verbose: int, quiet: bool) -> None:
    """Default: warnings and progress lines; ``-v`` info, ``-vv`` debug; ``-q`` errors only."""
    from flexopt.progress import PROGRESS_LOGGER

    root = logging.getLogger("flexopt")
    if _handler not in root.handlers:
        root.addHandler(_handler)
    root.propagate = False
    if quiet:
        level, progress = logging.ERROR, logging.ERROR
    else:
        level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
        progress = min(level, logging.INFO)
    root.setLevel(level)
    logging.getLogger(PROGRESS_LOGGER).setLevel(progress)


def _one_line(text: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def _fail(message: str) -> int:
    print(f"flexopt: error: {_one_line(message)}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    """``flexopt`` with ``argv`` (default: the process's arguments); returns the exit status."""
    from flexopt.cli import compare, export, generate, run

    args = _parser().parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "validate": run.validate,
        "export": export.export,
        "generate": generate.generate,
        "run": run.run,
        "compare": compare.compare,
    }
    with _sigterm_as_interrupt():
        code = _dispatch(commands[args.command], args)
        try:
            check_terminated()  # a SIGTERM that a finalizer swallowed after the last stage
        except Terminated:
            if code != EXIT_TERMINATED:
                print("flexopt: terminated", file=sys.stderr)
            return EXIT_TERMINATED
        return code


def _dispatch(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run ``command``: its exit code, or the one of the error or interrupt that ended it."""
    try:
        return command(args)
    except FlexoptError as err:
        return _fail(str(err))
    except Terminated:
        print("flexopt: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("flexopt: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        return _fail("out of memory")
    except OSError as err:  # a file system or network fault: the path and the reason
        return _fail(str(err) or type(err).__name__)
