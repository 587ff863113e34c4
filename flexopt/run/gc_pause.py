"""The cyclic garbage collector during a run: it leaves alone what was alive before.

A full (generation 2) collection traverses every container object of the process: the
imported modules of pandapower, Pyomo, numba and pandas, the instance. With those loaded one
took 80–115 ms, and it came every few stages, at random, and on threads it stops every DSO
task at once (``benchmarks/executors.py``). :func:`frozen_before` moves the objects alive at
the start of a run to the collector's permanent generation (:func:`gc.freeze`) for the run and
back afterwards (:func:`gc.unfreeze`): what the run creates is collected as usual, and
reference counting frees everything else at once as always. Nested or concurrent runs freeze
once; a caller that froze objects itself is left alone. Two consequences: garbage cycles alive
at a run's start (a previous run's Pyomo model in a loop of runs) are collected only after the
run, and a ``gc.freeze()`` made by other code during a run is undone at its end.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["frozen_before"]

_LOCK = threading.Lock()
_DEPTH = 0  # runs inside the outermost freeze
_OURS = False  # whether that freeze is this module's (undone when the last run ends)


@contextmanager
def frozen_before() -> Iterator[None]:
    """Objects alive now are not traversed by the cyclic collector until the block ends."""
    global _DEPTH, _OURS
    with _LOCK:
        if _DEPTH == 0:
            _OURS = gc.get_freeze_count() == 0
            if _OURS:
                gc.freeze()
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0 and _OURS:
                gc.unfreeze()
