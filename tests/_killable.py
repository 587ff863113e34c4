"""Child processes the kill test (``tests/test_kill.py``) starts and kills; forked from a
forkserver that has imported flexopt already, so that each one starts in milliseconds."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pandas as pd

N_TABLES = 8


def run_cli(argv: list[str]) -> None:
    """``flexopt`` itself (its SIGTERM handling included)."""
    from flexopt.cli import main

    sys.exit(main(argv))


def tables(version: int) -> dict[str, pd.DataFrame]:
    """Tables that say which save wrote them (every cell holds ``version``)."""
    return {
        f"t{k}": pd.DataFrame({"v": [version] * 2000, "k": range(2000)}) for k in range(N_TABLES)
    }


def save_loop(out: str) -> None:
    """Replace ``out`` with result after result, each one complete, until stopped; SIGTERM
    unwinds like Ctrl-C (as the CLI does).

    The loop also stops at its next save when the signal's exception was swallowed: raised
    while a finalizer ran (Python prints "Exception ignored in …" and goes on), it would
    otherwise leave this endless loop running (seen once in CI: the killed child ran on)."""
    from flexopt.report.save import save_results

    stopped: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopped.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    version = 0
    try:
        while not stopped:
            version += 1
            save_results(out, tables(version), {"version": version}, {"s": 0.0}, replace=True)
    except KeyboardInterrupt:
        pass
    sys.exit(143)


def version_of(folder: Path) -> int | None:
    """The version a folder written by :func:`save_loop` holds, or ``None`` when its files
    disagree or are incomplete."""
    import json

    try:
        version = json.loads((folder / "summary.json").read_text())["version"]
        for k in range(N_TABLES):
            v = pd.read_csv(folder / f"t{k}.csv")["v"]
            if len(v) != 2000 or (v != version).any():
                return None
    except (OSError, ValueError, KeyError):
        return None
    return int(version)
