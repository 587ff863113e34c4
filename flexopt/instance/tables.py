"""CSV tables of an instance: column schemas, reading and validation.

Every cell is read as text and converted by the column's schema; the first problem raises
:class:`~flexopt.errors.InstanceError` naming the file, the column and the file line
(``#`` comment lines counted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from flexopt.errors import InstanceError

__all__ = [
    "BASELINE",
    "BRANCHES",
    "BUSES",
    "FEEDER",
    "GENERATORS",
    "INCREASE",
    "PROFILE",
    "PROSUMERS",
    "Column",
    "TableReader",
    "check_refs",
    "file_line",
    "ge",
    "gt",
    "header_line",
    "in_closed_unit",
    "in_unit",
    "py_scalar",
]


@dataclass(frozen=True)
class Column:
    """Schema of one CSV column: its kind, an optional range check and the rule it states."""

    kind: str  # "int" | "float" | "str"
    check: Callable[[np.ndarray], np.ndarray] | None = None  # returns a mask of bad rows
    rule: str = ""


def ge(lo: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: ~(a >= lo)


def gt(lo: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: ~(a > lo)


def in_unit(a: np.ndarray) -> np.ndarray:
    return ~((a > 0) & (a <= 1))


def in_closed_unit(a: np.ndarray) -> np.ndarray:
    return ~((a >= 0) & (a <= 1))


class TableReader:
    """Reads the CSV tables of one instance directory; file names resolve inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, pd.DataFrame] = {}

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    def resolve(self, name: str, manifest: str, field: str) -> Path:
        p = Path(name)
        if p.is_absolute():
            raise InstanceError(
                manifest, field, f"must be a path inside the instance, got {name!r}"
            )
        full = (self.root / p).resolve()
        if self.root not in full.parents:
            raise InstanceError(
                manifest, field, f"must stay inside the instance directory, got {name!r}"
            )
        if not full.is_file():
            raise InstanceError(manifest, field, f"file {name!r} does not exist")
        return full

    def table(
        self, path: Path, schema: dict[str, Column], key: str | tuple[str, ...] | None
    ) -> pd.DataFrame:
        file = self.rel(path)
        first = header_line(path)
        try:
            raw = pd.read_csv(
                path, dtype=str, comment="#", skipinitialspace=True, keep_default_na=False
            )
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InstanceError(file, None, f"not a readable CSV table ({msg})") from None
        raw.columns = [c.strip() for c in raw.columns]
        for col in schema:
            if col not in raw.columns:
                raise InstanceError(
                    file, col, f"column is missing (expected columns: {', '.join(schema)})"
                )
        extra = [c for c in raw.columns if c not in schema]
        if extra:
            raise InstanceError(
                file, extra[0], f"is not a known column (expected: {', '.join(schema)})"
            )
        out = {}
        for col, spec in schema.items():
            text = raw[col].str.strip()
            empty = text == ""
            if empty.any():
                raise InstanceError(
                    file, col, f"line {first + 1 + int(np.flatnonzero(empty)[0])}: value is missing"
                )
            if spec.kind == "str":
                out[col] = text.to_numpy(dtype=object)
                continue
            num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(num)
            if spec.kind == "int":
                bad |= np.isfinite(num) & (num != np.round(num))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                want = "an integer" if spec.kind == "int" else "a finite number"
                raise InstanceError(
                    file, col, f"line {first + 1 + i}: must be {want}, got {text.iloc[i]!r}"
                )
            if spec.check is not None:
                viol = spec.check(num)
                if viol.any():
                    i = int(np.flatnonzero(viol)[0])
                    raise InstanceError(
                        file, col, f"line {first + 1 + i}: {spec.rule}, got {text.iloc[i]}"
                    )
            out[col] = num.astype(np.int64) if spec.kind == "int" else num
        df = pd.DataFrame(out)
        df.attrs["header_line"] = first
        if key is not None:
            cols = [key] if isinstance(key, str) else list(key)
            dup = df.duplicated(subset=cols)
            if dup.any():
                i = int(np.flatnonzero(dup.to_numpy())[0])
                raise InstanceError(
                    file,
                    ",".join(cols),
                    f"line {file_line(df, i)}: duplicate entry {', '.join(str(py_scalar(df[c].iloc[i])) for c in cols)}",
                )
        if df.empty:
            raise InstanceError(file, None, "table has no rows")
        return df


def header_line(path: Path) -> int:
    """1-based line number of the CSV header (after leading ``#`` comment lines)."""
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.lstrip().startswith("#"):
                    return n
    except UnicodeDecodeError:
        pass
    return 1


def file_line(df: pd.DataFrame, row: int) -> int:
    """File line of data row ``row`` of a table read by :meth:`TableReader.table`."""
    return int(df.attrs.get("header_line", 1)) + 1 + row


def py_scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def check_refs(
    file: str, field: str | None, df: pd.DataFrame, col: str, allowed: ArrayLike, what: str
) -> None:
    mask = ~df[col].isin(pd.Index(allowed))
    if mask.any():
        i = int(np.flatnonzero(mask.to_numpy())[0])
        raise InstanceError(
            file,
            col if field is None else field,
            f"line {file_line(df, i)}: unknown {what} {py_scalar(df[col].iloc[i])!r}",
        )


# ---------------------------------------------------------------------------- column schemas
BUSES = {
    "bus": Column("int", ge(0), "must be ≥ 0"),
    "name": Column("str"),
    "vn_kv": Column("float", gt(0), "must be > 0"),
    "load_p_mw": Column("float", ge(0), "must be ≥ 0"),
    "sigma_pu": Column("float", ge(0), "must be ≥ 0"),
}
BRANCHES = {
    "branch": Column("str"),
    "from_bus": Column("int"),
    "to_bus": Column("int"),
    "x_pu": Column("float", lambda a: a == 0, "must be non-zero"),
    "tap": Column("float", gt(0), "must be > 0"),
    "rating_mw": Column("float", gt(0), "must be > 0"),
}
GENERATORS = {
    "gen": Column("str"),
    "bus": Column("int"),
    "p_min_mw": Column("float", ge(0), "must be ≥ 0"),
    "p_max_mw": Column("float", ge(0), "must be ≥ 0"),
    "c0_eur_per_h": Column("float"),
    "c1_eur_per_mwh": Column("float"),
    "c2_eur_per_mw2h": Column("float", ge(0), "must be ≥ 0 (convex cost)"),
}
PROFILE = {"hour": Column("int"), "load_pu": Column("float", ge(0), "must be ≥ 0")}
INCREASE = {
    "hour": Column("int"),
    "bus": Column("int"),
    "increase_pu": Column("float", gt(-1), "must be > -1 (a load cannot fall below zero)"),
}
FEEDER = {
    "from_bus": Column("int", ge(0), "must be ≥ 0"),
    "to_bus": Column("int", ge(0), "must be ≥ 0"),
    "r_ohm": Column("float", ge(0), "must be ≥ 0"),
    "x_ohm": Column("float", ge(0), "must be ≥ 0"),
    "p_mw": Column("float"),
    "q_mvar": Column("float"),
}
PROSUMERS = {
    "prosumer_id": Column("str"),
    "dso_id": Column("str"),
    "bus": Column("int"),
    "p_max_mw": Column("float", gt(0), "must be > 0"),
    "e_max_mwh": Column("float", gt(0), "must be > 0"),
    "soc_init_pu": Column("float", in_closed_unit, "must be in [0, 1]"),
    "efficiency": Column("float", in_unit, "must be in (0, 1]"),
    "a_eur_per_mw2h": Column("float", ge(0), "must be ≥ 0 (convex cost)"),
    "b_eur_per_mwh": Column("float", ge(0), "must be ≥ 0"),
}
BASELINE = {"hour": Column("int"), "prosumer_id": Column("str"), "p_mw": Column("float")}
