"""Progress of long steps, through ``logging``.

The library never prints: stage lines and progress go to the logger ``flexopt.progress`` at
``INFO``, which is silent unless the application shows it (the ``flexopt`` command does by
default; ``-q`` hides it). A :class:`Progress` counter redraws one bar line on stderr when
stderr is a terminal and the logger is enabled; otherwise it stays quiet, or — with
``lines`` — logs one line per step (``flexopt compare``: one line per finished run).
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

__all__ = ["PROGRESS_LOGGER", "Progress", "progress_log"]

PROGRESS_LOGGER = "flexopt.progress"
progress_log = logging.getLogger(PROGRESS_LOGGER)
#: Seconds between two redraws of a bar.
_REDRAW_S = 0.1
_WIDTH = 24


class Progress:
    """A counter of ``total`` steps shown as a bar on a terminal.

    Parameters
    ----------
    label : str
        What is counted (``"plf monte carlo"``, ``"compare"``).
    total : int
    enabled : bool
        ``False``: the counter does nothing (a run without ``progress``).
    lines : bool
        Off a terminal, log one ``INFO`` line per :meth:`update` (on a terminal the bar
        replaces them).
    """

    def __init__(
        self, label: str, total: int, *, enabled: bool = True, lines: bool = False
    ) -> None:
        self.label, self.total, self.done = label, max(int(total), 0), 0
        shown = enabled and progress_log.isEnabledFor(logging.INFO)
        self.bar = shown and _on_terminal()
        self.lines = shown and lines and not self.bar
        self._drawn = 0.0

    def update(self, n: int = 1, note: str = "") -> None:
        """``n`` more steps done; ``note`` says which (shown with the count)."""
        self.done += n
        if self.lines:
            progress_log.info(f"{self.label}: {self.done}/{self.total} {note}".rstrip())
        elif self.bar:
            now = time.monotonic()
            if now - self._drawn >= _REDRAW_S or self.done >= self.total:
                self._drawn = now
                self._draw(note)

    def _draw(self, note: str) -> None:
        filled = _WIDTH * self.done // self.total if self.total else _WIDTH
        bar = "#" * filled + "." * (_WIDTH - filled)
        text = f"\rflexopt: {self.label} [{bar}] {self.done}/{self.total} {note}"
        sys.stderr.write(text[:160].ljust(80))
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.bar and self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.bar = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _on_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False
