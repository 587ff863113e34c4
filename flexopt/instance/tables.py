"""CSV tables of an instance: column schemas, reading and validation.

Every cell is read as text and converted by the column's schema; the first problem raises
:class:`~flexopt.errors.InstanceError` naming the file, the column and the file line
(``#`` comment lines counted). Integers are parsed as integers (decimal digits, at most
:data:`MAX_INT` in magnitude: never through a float that could wrap around), numbers are
finite and within the physical plausibility ranges of the schemas (``instances/README.md``),
files are plain text (a compressed file is refused, never decompressed) of at most
:data:`MAX_TABLE_BYTES`.
"""

from __future__ import annotations

import re
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
    "MAX_INT",
    "MAX_TABLE_BYTES",
    "PROFILE",
    "PROSUMERS",
    "Column",
    "TableReader",
    "check_file",
    "check_refs",
    "file_line",
    "ge",
    "gt",
    "header_line",
    "in_closed_unit",
    "in_unit",
    "py_scalar",
    "within",
]

#: Largest table file read (bytes); a larger one is refused with its size.
MAX_TABLE_BYTES = 256 * 2**20
#: Largest magnitude of an integer cell (bus labels, hours).
MAX_INT = 10**9
_INT_TEXT = re.compile(r"[+-]?\d{1,10}(\.0*)?")
#: Leading bytes of the compressed formats pandas would otherwise decompress silently.
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"\xfd7zXZ\x00": "xz",
    b"PK\x03\x04": "zip",
    b"BZh": "bzip2",
    b"\x28\xb5\x2f\xfd": "zstd",
}


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


def within(kind: str, lo: float, hi: float, *, lo_open: bool = False, unit: str = "") -> Column:
    """A ``kind`` column whose values lie in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""

    def check(a: np.ndarray) -> np.ndarray:
        above = a > lo if lo_open else a >= lo
        bad: np.ndarray = ~(above & (a <= hi))
        return bad

    bracket = "(" if lo_open else "["
    return Column(kind, check, f"must be in {bracket}{lo:g}, {hi:g}]{unit}")


def check_file(path: Path, file: str, max_bytes: int) -> None:
    """A readable plain file of at most ``max_bytes``, not a compressed archive."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InstanceError(
                file, None, f"is {size:,} bytes, over the limit of {max_bytes:,} bytes of a file"
            )
        with path.open("rb") as fh:
            head = fh.read(8)
            for magic, fmt in _COMPRESSED.items():
                if head.startswith(magic):
                    raise InstanceError(
                        file,
                        None,
                        f"is a compressed file ({fmt}); flexopt reads plain-text files only "
                        "(decompress it first)",
                    )
            fh.seek(0)
            while chunk := fh.read(2**20):
                if b"\x00" in chunk:
                    raise InstanceError(file, None, "is not a text file (it holds NUL bytes)")
    except OSError as err:
        raise InstanceError(file, None, f"cannot be read ({err.strerror})") from None


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
        if not name.strip() or "\x00" in name or len(name) > 1024:
            raise InstanceError(manifest, field, f"must be a file name, got {name[:100]!r}")
        p = Path(name)
        if p.is_absolute():
            raise InstanceError(
                manifest, field, f"must be a path inside the instance, got {name!r}"
            )
        try:
            full = (self.root / p).resolve()
            if self.root not in full.parents:
                raise InstanceError(
                    manifest, field, f"must stay inside the instance directory, got {name!r}"
                )
            exists, is_file = full.exists(), full.is_file()
        except (OSError, RuntimeError) as err:  # a name too long, a symbolic-link loop, …
            raise InstanceError(manifest, field, f"cannot use {name!r} ({err})") from None
        if not is_file:
            what = "is not a file" if exists else "does not exist"
            raise InstanceError(manifest, field, f"{name!r} {what}")
        return full

    def table(
        self, path: Path, schema: dict[str, Column], key: str | tuple[str, ...] | None
    ) -> pd.DataFrame:
        file = self.rel(path)
        check_file(path, file, MAX_TABLE_BYTES)
        first = header_line(path)
        try:
            raw = pd.read_csv(
                path,
                dtype=str,
                comment="#",
                skipinitialspace=True,
                keep_default_na=False,
                compression=None,
                encoding="utf-8",
            )
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InstanceError(file, None, f"not a readable CSV table ({msg})") from None
        except OSError as err:
            raise InstanceError(file, None, f"cannot be read ({err.strerror})") from None

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
            if spec.kind == "int":
                num, bad = _integers(text)
            else:
                num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
                bad = ~np.isfinite(num)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                want = (
                    f"an integer within ±{MAX_INT:,}" if spec.kind == "int" else "a finite number"
                )
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
            out[col] = num
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


def _integers(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer cells parsed as integers: ``(values, bad)``, bad where a cell is not decimal
    digits (an optional ``.0`` tail allowed) or exceeds :data:`MAX_INT` in magnitude."""
    ok = text.str.fullmatch(_INT_TEXT.pattern).fillna(False).to_numpy(dtype=bool)
    digits = text.where(ok, "0").str.replace(r"\.0*$", "", regex=True)
    values = np.asarray([int(d) for d in digits], dtype=np.int64)  # ≤ 10 digits: no overflow
    return values, ~ok | (np.abs(values) > MAX_INT)


def header_line(path: Path) -> int:
    """1-based line number of the CSV header (after leading ``#`` comment lines)."""
    try:
        with path.open(encoding="utf-8-sig") as fh:
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
# Physical plausibility ranges (instances/README.md, "Bounds"): wide enough for any real
# system, narrow enough that no product of them overflows or loses every digit.
MAX_MW = 1e5  # a bus load, a generator, a line rating
MAX_EUR_PER_MWH = 1e5
VOLTAGE_KV = within("float", 0.1, 1500.0)
BUSES = {
    "bus": Column("int", ge(0), "must be ≥ 0"),
    "name": Column("str"),
    "vn_kv": VOLTAGE_KV,
    "load_p_mw": within("float", 0.0, MAX_MW),
    "sigma_pu": within("float", 0.0, 1.0),
}
BRANCHES = {
    "branch": Column("str"),
    "from_bus": Column("int"),
    "to_bus": Column("int"),
    "x_pu": Column(
        "float",
        lambda a: ~((np.abs(a) >= 1e-6) & (np.abs(a) <= 100.0)),
        "must be non-zero with |x_pu| in [1e-06, 100]",
    ),
    "tap": within("float", 0.5, 2.0),
    "rating_mw": within("float", 0.0, MAX_MW, lo_open=True),
}
GENERATORS = {
    "gen": Column("str"),
    "bus": Column("int"),
    "p_min_mw": within("float", 0.0, MAX_MW),
    "p_max_mw": within("float", 0.0, MAX_MW),
    "c0_eur_per_h": within("float", -1e7, 1e7),
    "c1_eur_per_mwh": within("float", -MAX_EUR_PER_MWH, MAX_EUR_PER_MWH),
    "c2_eur_per_mw2h": within("float", 0.0, MAX_EUR_PER_MWH, unit=" (convex cost)"),
}
PROFILE = {"hour": Column("int"), "load_pu": within("float", 0.0, 10.0)}
INCREASE = {
    "hour": Column("int"),
    "bus": Column("int"),
    "increase_pu": within(
        "float", -1.0, 10.0, lo_open=True, unit=" (a load cannot fall below zero)"
    ),
}
FEEDER = {
    "from_bus": Column("int", ge(0), "must be ≥ 0"),
    "to_bus": Column("int", ge(0), "must be ≥ 0"),
    "r_ohm": within("float", 0.0, 1000.0),
    "x_ohm": within("float", 0.0, 1000.0),
    "p_mw": within("float", -1000.0, 1000.0),
    "q_mvar": within("float", -1000.0, 1000.0),
}
PROSUMERS = {
    "prosumer_id": Column("str"),
    "dso_id": Column("str"),
    "bus": Column("int"),
    "p_max_mw": within("float", 0.0, 100.0, lo_open=True),
    "e_max_mwh": within("float", 0.0, 1000.0, lo_open=True),
    "soc_init_pu": Column("float", in_closed_unit, "must be in [0, 1]"),
    "efficiency": Column("float", in_unit, "must be in (0, 1]"),
    "a_eur_per_mw2h": within("float", 0.0, 1e7, unit=" (convex cost)"),
    "b_eur_per_mwh": within("float", 0.0, MAX_EUR_PER_MWH),
}
BASELINE = {"hour": Column("int"), "prosumer_id": Column("str"), "p_mw": Column("float")}
