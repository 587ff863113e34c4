"""Stage timing and progress lines of a market run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from flexopt.errors import check_terminated
from flexopt.progress import progress_log

__all__ = ["Clock"]


class Clock:
    """Times stages into ``timings`` (``<key>_s``, seconds) and, with ``progress``, logs a
    line per stage (logger ``flexopt.progress``, ``INFO``)."""

    def __init__(self, progress: bool = False) -> None:
        self.timings: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def __call__(self, key: str, label: str | None) -> Iterator[None]:
        """Time the block as ``<key>_s``; log ``label`` first unless it is ``None``."""
        check_terminated()  # a SIGTERM swallowed in a finalizer stops the run here
        if label is not None:
            self.say(f"{label} …")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[f"{key}_s"] = time.perf_counter() - start
        check_terminated()

    def say(self, line: str) -> None:
        """A progress line (only with ``progress``)."""
        if self.progress:
            progress_log.info(line)
