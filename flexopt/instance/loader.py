"""Read and validate an instance directory (TOML manifest + CSV tables).

Loading never executes code from the instance: TOML and CSV are parsed as data, file names
are resolved inside the instance directory, and every value is checked before it reaches a
model. The first problem found raises :class:`~flexopt.errors.InstanceError` naming the file,
the field and, for tables, the line.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flexopt.errors import InstanceError
from flexopt.instance.schema import (
    DSOData,
    FeederData,
    Instance,
    MarketData,
    ScenarioData,
    TransmissionData,
)

__all__ = ["MANIFEST", "load_instance"]

MANIFEST = "instance.toml"
_REQUIRED = object()
BALANCING_RULES = ("distributed", "slack")


# ---------------------------------------------------------------------------- TOML fields
class _Section:
    """Typed access to one TOML table that rejects unknown keys when closed."""

    def __init__(self, data: Any, file: str, where: str) -> None:
        if not isinstance(data, dict):
            raise InstanceError(file, where, f"must be a table, got {type(data).__name__}")
        self.data, self.file, self.where, self.used = data, file, where, set()

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = _REQUIRED,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is _REQUIRED:
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

    def section(self, key: str, required: bool = True) -> _Section:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise InstanceError(self.file, self._name(key), "section is required but missing")
            return _Section({}, self.file, self._name(key))
        return _Section(self.data[key], self.file, self._name(key))

    def close(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise InstanceError(
                self.file,
                self._name(unknown[0]),
                "is not a known field (check the spelling; see instances/README.md)",
            )


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def _nonneg(v: float) -> str | None:
    return None if v >= 0 else "must be ≥ 0"


def _share(v: float) -> str | None:
    return None if 0 < v <= 1 else "must be in (0, 1]"


# ---------------------------------------------------------------------------- CSV tables
@dataclass(frozen=True)
class _Col:
    kind: str  # "int" | "float" | "str"
    check: Callable[[np.ndarray], np.ndarray] | None = None  # returns a mask of bad rows
    rule: str = ""


def _ge(lo: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: ~(a >= lo)


def _gt(lo: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: ~(a > lo)


def _in_unit(a: np.ndarray) -> np.ndarray:
    return ~((a > 0) & (a <= 1))


def _in_closed_unit(a: np.ndarray) -> np.ndarray:
    return ~((a >= 0) & (a <= 1))


class _Reader:
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
        self, path: Path, schema: dict[str, _Col], key: str | tuple[str, ...] | None
    ) -> pd.DataFrame:
        file = self.rel(path)
        first = _header_line(path)
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
                    f"line {_line(df, i)}: duplicate entry {', '.join(str(_py(df[c].iloc[i])) for c in cols)}",
                )
        if df.empty:
            raise InstanceError(file, None, "table has no rows")
        return df


def _header_line(path: Path) -> int:
    """1-based line number of the CSV header (after leading ``#`` comment lines)."""
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.lstrip().startswith("#"):
                    return n
    except UnicodeDecodeError:
        pass
    return 1


def _line(df: pd.DataFrame, row: int) -> int:
    """File line of data row ``row`` of a table read by :meth:`_Reader.table`."""
    return int(df.attrs.get("header_line", 1)) + 1 + row


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _bad_ref(file: str, field: str, df: pd.DataFrame, col: str, allowed, what: str) -> None:
    mask = ~df[col].isin(pd.Index(allowed))
    if mask.any():
        i = int(np.flatnonzero(mask.to_numpy())[0])
        raise InstanceError(
            file,
            col if field is None else field,
            f"line {_line(df, i)}: unknown {what} {_py(df[col].iloc[i])!r}",
        )


# ---------------------------------------------------------------------------- the loader
_BUSES = {
    "bus": _Col("int", _ge(0), "must be ≥ 0"),
    "name": _Col("str"),
    "vn_kv": _Col("float", _gt(0), "must be > 0"),
    "load_p_mw": _Col("float", _ge(0), "must be ≥ 0"),
    "sigma_pu": _Col("float", _ge(0), "must be ≥ 0"),
}
_BRANCHES = {
    "branch": _Col("str"),
    "from_bus": _Col("int"),
    "to_bus": _Col("int"),
    "x_pu": _Col("float", lambda a: a == 0, "must be non-zero"),
    "tap": _Col("float", _gt(0), "must be > 0"),
    "rating_mw": _Col("float", _gt(0), "must be > 0"),
}
_GENERATORS = {
    "gen": _Col("str"),
    "bus": _Col("int"),
    "p_min_mw": _Col("float", _ge(0), "must be ≥ 0"),
    "p_max_mw": _Col("float", _ge(0), "must be ≥ 0"),
    "c0_eur_per_h": _Col("float"),
    "c1_eur_per_mwh": _Col("float"),
    "c2_eur_per_mw2h": _Col("float", _ge(0), "must be ≥ 0 (convex cost)"),
}
_PROFILE = {"hour": _Col("int"), "load_pu": _Col("float", _ge(0), "must be ≥ 0")}
_INCREASE = {
    "hour": _Col("int"),
    "bus": _Col("int"),
    "increase_pu": _Col("float", _gt(-1), "must be > -1 (a load cannot fall below zero)"),
}
_FEEDER = {
    "from_bus": _Col("int", _ge(0), "must be ≥ 0"),
    "to_bus": _Col("int", _ge(0), "must be ≥ 0"),
    "r_ohm": _Col("float", _ge(0), "must be ≥ 0"),
    "x_ohm": _Col("float", _ge(0), "must be ≥ 0"),
    "p_mw": _Col("float"),
    "q_mvar": _Col("float"),
}
_PROSUMERS = {
    "prosumer_id": _Col("str"),
    "dso_id": _Col("str"),
    "bus": _Col("int"),
    "p_max_mw": _Col("float", _gt(0), "must be > 0"),
    "e_max_mwh": _Col("float", _gt(0), "must be > 0"),
    "soc_init_pu": _Col("float", _in_closed_unit, "must be in [0, 1]"),
    "efficiency": _Col("float", _in_unit, "must be in (0, 1]"),
    "a_eur_per_mw2h": _Col("float", _ge(0), "must be ≥ 0 (convex cost)"),
    "b_eur_per_mwh": _Col("float", _ge(0), "must be ≥ 0"),
}
_BASELINE = {"hour": _Col("int"), "prosumer_id": _Col("str"), "p_mw": _Col("float")}


def load_instance(path: str | Path) -> Instance:
    """Read and validate an instance directory.

    Parameters
    ----------
    path : str or pathlib.Path
        The instance directory (holding ``instance.toml``) or the manifest itself.

    Returns
    -------
    Instance

    Raises
    ------
    flexopt.InstanceError
        One line naming the file and the field of the first problem found.
    """
    path = Path(path)
    root = path.parent if path.name == MANIFEST else path
    manifest_path = root / MANIFEST
    if not root.exists():
        raise InstanceError(str(root), None, "instance directory does not exist")
    if not manifest_path.is_file():
        raise InstanceError(
            str(manifest_path), None, f"no {MANIFEST} manifest in the instance directory"
        )
    reader = _Reader(root)
    manifest = reader.rel(manifest_path.resolve())
    try:
        doc = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InstanceError(manifest, None, f"invalid TOML ({err})") from None
    top = _Section(doc, manifest, "")

    meta = top.section("instance")
    name = meta.get("name", str)
    description = meta.get("description", str, "")
    hours = meta.get("hours", int, check=lambda v: None if 1 <= v <= 8784 else "must be in 1..8784")
    dt_h = meta.get("dt_h", float, 1.0, check=_positive)
    meta.close()

    transmission = _load_transmission(top.section("transmission"), reader)
    scenario = _load_scenario(top.section("scenario"), reader, hours, transmission)

    mk = top.section("market")
    market = MarketData(
        loss_price_eur_per_mwh=mk.get("loss_price_eur_per_mwh", float, check=_nonneg),
        loss_coverage=mk.get("loss_coverage", float, 0.8, check=_share),
    )
    mk.close()

    dsos = _load_distribution(top.section("distribution"), reader, hours, dt_h, transmission)
    top.close()
    return Instance(
        name=name,
        description=description,
        path=root.resolve(),
        hours=hours,
        dt_h=dt_h,
        transmission=transmission,
        scenario=scenario,
        market=market,
        dsos=dsos,
    )


def _load_transmission(sec: _Section, reader: _Reader) -> TransmissionData:
    m = sec.file
    buses_p = reader.resolve(sec.get("buses", str), m, "transmission.buses")
    branches_p = reader.resolve(sec.get("branches", str), m, "transmission.branches")
    gens_p = reader.resolve(sec.get("generators", str), m, "transmission.generators")
    slack = sec.get("slack_bus", int)
    base_mva = sec.get("base_mva", float, 100.0, check=_positive)
    sec.close()

    buses = reader.table(buses_p, _BUSES, "bus")
    fb = reader.rel(buses_p)
    if slack not in set(buses["bus"]):
        raise InstanceError(m, "transmission.slack_bus", f"bus {slack} is not in {fb}")
    branches = reader.table(branches_p, _BRANCHES, "branch")
    fbr = reader.rel(branches_p)
    _bad_ref(fbr, None, branches, "from_bus", buses["bus"], "bus")
    _bad_ref(fbr, None, branches, "to_bus", buses["bus"], "bus")
    loops = branches["from_bus"] == branches["to_bus"]
    if loops.any():
        i = int(np.flatnonzero(loops.to_numpy())[0])
        raise InstanceError(
            fbr, "to_bus", f"line {_line(branches, i)}: a branch must join two different buses"
        )
    _check_connected(
        fbr, buses["bus"].to_numpy(), branches["from_bus"].to_numpy(), branches["to_bus"].to_numpy()
    )
    gens = reader.table(gens_p, _GENERATORS, "gen")
    fg = reader.rel(gens_p)
    _bad_ref(fg, None, gens, "bus", buses["bus"], "bus")
    inverted = gens["p_min_mw"] > gens["p_max_mw"]
    if inverted.any():
        i = int(np.flatnonzero(inverted.to_numpy())[0])
        raise InstanceError(fg, "p_min_mw", f"line {_line(gens, i)}: exceeds p_max_mw")
    return TransmissionData(
        buses=buses.set_index("bus"),
        branches=branches.set_index("branch"),
        generators=gens.set_index("gen"),
        slack_bus=slack,
        base_mva=base_mva,
    )


def _check_connected(file: str, nodes: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    pos = pd.Index(nodes)
    n = len(nodes)
    g = sp.coo_matrix((np.ones(len(a)), (pos.get_indexer(a), pos.get_indexer(b))), shape=(n, n))
    count, labels = connected_components(g, directed=False)
    if count > 1:
        lonely = nodes[labels != labels[0]][:5]
        raise InstanceError(
            file,
            "from_bus,to_bus",
            f"the network is not connected: buses {list(lonely)} are islanded",
        )


def _load_scenario(
    sec: _Section, reader: _Reader, hours: int, tr: TransmissionData
) -> ScenarioData:
    m = sec.file
    prof_p = reader.resolve(sec.get("load_profile", str), m, "scenario.load_profile")
    inc_name = sec.get("load_increase", str, None)
    balancing = sec.get(
        "balancing",
        str,
        "distributed",
        check=lambda v: None if v in BALANCING_RULES else f"must be one of {BALANCING_RULES}",
    )
    z = sec.get("risk_quantile", float, 0.0, check=_nonneg)
    rho = sec.get(
        "correlation", float, 0.0, check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)"
    )
    sec.close()

    prof = reader.table(prof_p, _PROFILE, "hour")
    fp = reader.rel(prof_p)
    expected = np.arange(1, hours + 1)
    if len(prof) != hours or not np.array_equal(np.sort(prof["hour"].to_numpy()), expected):
        raise InstanceError(
            fp,
            "hour",
            f"must list hours 1..{hours} once each (instance.hours = {hours}), "
            f"got {len(prof)} rows",
        )
    profile = prof.set_index("hour")["load_pu"].sort_index()
    increase = pd.DataFrame(
        0.0, index=pd.RangeIndex(1, hours + 1, name="hour"), columns=tr.buses.index
    )
    if inc_name is not None:
        inc_p = reader.resolve(inc_name, m, "scenario.load_increase")
        inc = reader.table(inc_p, _INCREASE, ("hour", "bus"))
        fi = reader.rel(inc_p)
        _bad_ref(fi, None, inc, "bus", tr.buses.index, "bus")
        _bad_ref(fi, None, inc, "hour", expected, "hour")
        for row in inc.itertuples(index=False):
            increase.loc[row.hour, row.bus] = row.increase_pu
    return ScenarioData(
        load_profile=profile,
        load_increase=increase,
        balancing=balancing,
        risk_quantile=z,
        correlation=rho,
    )


def _load_feeder(name: str, path: Path, reader: _Reader, vn_kv: float) -> FeederData:
    tab = reader.table(path, _FEEDER, None)
    f = reader.rel(path)
    twice = tab["to_bus"].duplicated()
    if twice.any():
        i = int(np.flatnonzero(twice.to_numpy())[0])
        raise InstanceError(
            f,
            "to_bus",
            f"line {_line(tab, i)}: bus {tab['to_bus'].iloc[i]} is fed by two "
            "branches: the feeder is meshed (a radial feeder lists each bus once as to_bus)",
        )
    to_set = set(tab["to_bus"])
    roots = sorted(set(tab["from_bus"]) - to_set)
    if len(roots) != 1:
        raise InstanceError(
            f,
            "from_bus",
            f"a radial feeder has exactly one root (a bus never listed as "
            f"to_bus), found {roots[:5]}",
        )
    parent = dict(zip(tab["to_bus"], tab["from_bus"], strict=True))
    root = roots[0]
    for start in parent:  # every bus must climb to the root without meeting itself
        seen, node = set(), start
        while node != root:
            if node in seen:
                raise InstanceError(
                    f, "to_bus", f"the feeder is meshed: bus {start} lies on a loop"
                )
            seen.add(node)
            if node not in parent:
                raise InstanceError(
                    f, "from_bus", f"bus {node} is not connected to the root {root}"
                )
            node = parent[node]
    return FeederData(name=name, branches=tab, vn_kv=vn_kv, root=int(root))


def _load_distribution(
    sec: _Section, reader: _Reader, hours: int, dt_h: float, tr: TransmissionData
) -> tuple[DSOData, ...]:
    m = sec.file
    pros_p = reader.resolve(sec.get("prosumers", str), m, "distribution.prosumers")
    base_p = reader.resolve(sec.get("baseline", str), m, "distribution.baseline")
    entries = sec.get("dso", list)
    sec.close()
    if not entries:
        raise InstanceError(m, "distribution.dso", "at least one DSO is required")

    pros = reader.table(pros_p, _PROSUMERS, "prosumer_id")
    fp = reader.rel(pros_p)
    base = reader.table(base_p, _BASELINE, ("hour", "prosumer_id"))
    fbase = reader.rel(base_p)
    _bad_ref(fbase, None, base, "prosumer_id", pros["prosumer_id"], "prosumer")
    _bad_ref(fbase, None, base, "hour", np.arange(1, hours + 1), "hour")
    baseline = (
        base.pivot(index="hour", columns="prosumer_id", values="p_mw")
        .reindex(index=pd.RangeIndex(1, hours + 1, name="hour"), columns=pros["prosumer_id"])
        .fillna(0.0)
    )
    pros = pros.set_index("prosumer_id")
    _check_baseline(fbase, pros, baseline, dt_h)

    feeders: dict[Path, FeederData] = {}
    dsos: list[DSOData] = []
    seen_ids: set[str] = set()
    load_buses = set(tr.buses.index[tr.buses["load_p_mw"] > 0])
    for k, raw in enumerate(entries):
        d = _Section(raw, m, f"distribution.dso[{k}]")
        dso_id = d.get("id", str, check=lambda v: None if v.strip() else "must not be empty")
        if dso_id in seen_ids:
            raise InstanceError(m, f"distribution.dso[{k}].id", f"duplicate DSO id {dso_id!r}")
        seen_ids.add(dso_id)
        bus = d.get("bus", int)
        if bus not in load_buses:
            raise InstanceError(
                m,
                f"distribution.dso[{k}].bus",
                f"must be a transmission bus with load > 0, got {bus}",
            )
        fpath = reader.resolve(d.get("feeder", str), m, f"distribution.dso[{k}].feeder")
        vn_kv = d.get("vn_kv", float, check=_positive)
        n_feeders = d.get("feeders", int, 1, check=lambda v: None if v >= 1 else "must be ≥ 1")
        d.close()
        if fpath not in feeders:
            feeders[fpath] = _load_feeder(fpath.stem, fpath, reader, vn_kv)
        feeder = feeders[fpath]
        own = pros[pros["dso_id"] == dso_id].drop(columns="dso_id")
        if own.empty:
            raise InstanceError(fp, "dso_id", f"DSO {dso_id!r} has no prosumers")
        valid_buses = set(feeder.branches["to_bus"])
        bad = ~own["bus"].isin(valid_buses)
        if bad.any():
            pid = own.index[bad.to_numpy()][0]
            raise InstanceError(
                fp,
                "bus",
                f"prosumer {pid!r}: bus {own.at[pid, 'bus']} is not a load bus of "
                f"feeder {reader.rel(fpath)} (root excluded)",
            )
        dsos.append(
            DSOData(
                id=dso_id,
                bus=bus,
                feeder=feeder,
                n_feeders=n_feeders,
                prosumers=own,
                baseline_mw=baseline[own.index],
            )
        )
    orphan = ~pros["dso_id"].isin(seen_ids)
    if orphan.any():
        pid = pros.index[orphan.to_numpy()][0]
        raise InstanceError(
            fp, "dso_id", f"prosumer {pid!r}: unknown DSO {pros.at[pid, 'dso_id']!r}"
        )
    return tuple(dsos)


def _check_baseline(file: str, pros: pd.DataFrame, baseline: pd.DataFrame, dt_h: float) -> None:
    """Power within ±p_max and state of charge within [0, E] along the baseline (eq. I1)."""
    pmax = pros["p_max_mw"]
    over = baseline.abs().gt(pmax + 1e-9, axis=1)
    if over.to_numpy().any():
        t, pid = next((t, c) for t in baseline.index for c in baseline.columns if over.at[t, c])
        raise InstanceError(
            file,
            "p_mw",
            f"prosumer {pid!r} hour {t}: |p| {baseline.at[t, pid]} exceeds p_max_mw {pmax[pid]}",
        )
    eta = pros["efficiency"].to_numpy()
    p = baseline.to_numpy()
    # discharge draws p/η from storage, charge stores |p|·η (one-way efficiency)
    draw = np.where(p > 0, p / eta, p * eta) * dt_h
    soc = pros["soc_init_pu"].to_numpy() * pros["e_max_mwh"].to_numpy() - np.cumsum(draw, axis=0)
    emax = pros["e_max_mwh"].to_numpy()
    bad = (soc < -1e-9) | (soc > emax + 1e-9)
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise InstanceError(
            file,
            "p_mw",
            f"prosumer {baseline.columns[j]!r}: the baseline leaves the "
            f"battery at {soc[t, j]:.4g} MWh after hour {baseline.index[t]}, outside "
            f"[0, {emax[j]:g}]",
        )
