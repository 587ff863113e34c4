"""Typed access to the tables of an instance's TOML manifest.

Every value is checked (type, finiteness, range) before it is returned, and a closed section
rejects the keys that were never read. A problem raises :class:`~flexopt.errors.InstanceError`
naming the manifest and the dotted field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flexopt.errors import InstanceError

__all__ = ["REQUIRED", "Section", "between", "nonneg", "positive", "share"]

REQUIRED = object()


class Section:
    """Typed access to one TOML table that rejects unknown keys when closed."""

    def __init__(self, data: Any, file: str, where: str) -> None:
        if not isinstance(data, dict):
            raise InstanceError(file, where, f"must be a table, got {type(data).__name__}")
        self.data, self.file, self.where = data, file, where
        self.used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = REQUIRED,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is REQUIRED:
                raise InstanceError(self.file, self._name(key), "is required but missing")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise InstanceError(self.file, self._name(key), f"must be {names}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InstanceError(self.file, self._name(key), f"must be finite, got {value!r}")
        if check is not None and (msg := check(value)):
            raise InstanceError(self.file, self._name(key), f"{msg}, got {value!r}")
        return value

    def section(self, key: str, required: bool = True) -> Section:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise InstanceError(self.file, self._name(key), "section is required but missing")
            return Section({}, self.file, self._name(key))
        return Section(self.data[key], self.file, self._name(key))

    def close(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise InstanceError(
                self.file,
                self._name(unknown[0]),
                "is not a known field (check the spelling; see instances/README.md)",
            )


def positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def nonneg(v: float) -> str | None:
    return None if v >= 0 else "must be ≥ 0"


def share(v: float) -> str | None:
    return None if 0 < v <= 1 else "must be in (0, 1]"


def between(lo: float, hi: float, *, lo_open: bool = False) -> Callable[[float], str | None]:
    """A check: the value lies in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""

    def check(v: float) -> str | None:
        ok = (v > lo if lo_open else v >= lo) and v <= hi
        return None if ok else f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}]"

    return check
