"""Read and validate an instance directory (TOML manifest + CSV tables).

Loading never executes code from the instance: TOML and CSV are parsed as data, file names
are resolved inside the instance directory, and every value is checked before it reaches a
model. The first problem found raises :class:`~flexopt.errors.InstanceError` naming the file,
the field and, for tables, the line.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from flexopt.errors import InstanceError
from flexopt.instance.manifest import Section, between, share
from flexopt.instance.microgrids import check_buses, read_microgrids, split_members
from flexopt.instance.schema import (
    DSOData,
    FeederData,
    Instance,
    MarketData,
    ScenarioData,
    TransmissionData,
)
from flexopt.instance.tables import (
    BASELINE,
    BRANCHES,
    BUSES,
    FEEDER,
    GENERATORS,
    INCREASE,
    PROFILE,
    PROSUMERS,
    VOLTAGE_KV,
    TableReader,
    check_file,
    check_refs,
    file_line,
)

__all__ = ["MANIFEST", "instance_root", "load_instance"]

MANIFEST = "instance.toml"
BALANCING_RULES = ("distributed", "slack")
#: Largest manifest read (bytes).
MAX_MANIFEST_BYTES = 2**20
#: Plausibility ranges of manifest values (instances/README.md, "Bounds").
DT_H = between(0.01, 24.0)
BASE_MVA = between(1.0, 1e4)
RISK_QUANTILE = between(0.0, 10.0)
LOSS_PRICE = between(0.0, 1e5)
MAX_FEEDERS = 10_000


def instance_root(path: str | Path) -> Path:
    """The instance directory of ``path`` (the directory itself, or its manifest)."""
    path = Path(path)
    return path.parent if path.name == MANIFEST else path


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
    root = instance_root(path)
    manifest_path = root / MANIFEST
    if not root.exists():
        raise InstanceError(str(root), None, "instance directory does not exist")
    if not manifest_path.is_file():
        raise InstanceError(
            str(manifest_path), None, f"no {MANIFEST} manifest in the instance directory"
        )
    reader = TableReader(root)
    manifest = reader.rel(manifest_path.resolve())
    check_file(manifest_path, manifest, MAX_MANIFEST_BYTES)
    try:  # utf-8-sig: a byte-order mark is accepted, as in the CSV tables
        doc = tomllib.loads(manifest_path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InstanceError(
            manifest, None, f"invalid TOML ({' '.join(str(err).split())})"
        ) from None
    except OSError as err:
        raise InstanceError(manifest, None, f"cannot be read ({err.strerror})") from None
    top = Section(doc, manifest, "")

    meta = top.section("instance")
    name = meta.get("name", str, check=_name)
    description = meta.get("description", str, "")
    hours = meta.get("hours", int, check=lambda v: None if 1 <= v <= 8784 else "must be in 1..8784")
    dt_h = meta.get("dt_h", float, 1.0, check=DT_H)
    meta.close()

    transmission = _load_transmission(top.section("transmission"), reader)
    scenario = _load_scenario(top.section("scenario"), reader, hours, transmission)

    mk = top.section("market")
    market = MarketData(
        loss_price_eur_per_mwh=mk.get("loss_price_eur_per_mwh", float, check=LOSS_PRICE),
        loss_coverage=mk.get("loss_coverage", float, 0.8, check=share),
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


def _load_transmission(sec: Section, reader: TableReader) -> TransmissionData:
    m = sec.file
    buses_p = reader.resolve(sec.get("buses", str), m, "transmission.buses")
    branches_p = reader.resolve(sec.get("branches", str), m, "transmission.branches")
    gens_p = reader.resolve(sec.get("generators", str), m, "transmission.generators")
    slack = sec.get("slack_bus", int)
    base_mva = sec.get("base_mva", float, 100.0, check=BASE_MVA)
    sec.close()

    buses = reader.table(buses_p, BUSES, "bus")
    fb = reader.rel(buses_p)
    if slack not in set(buses["bus"]):
        raise InstanceError(m, "transmission.slack_bus", f"bus {slack} is not in {fb}")
    branches = reader.table(branches_p, BRANCHES, "branch")
    fbr = reader.rel(branches_p)
    check_refs(fbr, None, branches, "from_bus", buses["bus"], "bus")
    check_refs(fbr, None, branches, "to_bus", buses["bus"], "bus")
    loops = branches["from_bus"] == branches["to_bus"]
    if loops.any():
        i = int(np.flatnonzero(loops.to_numpy())[0])
        raise InstanceError(
            fbr, "to_bus", f"line {file_line(branches, i)}: a branch must join two different buses"
        )
    _check_connected(
        fbr, buses["bus"].to_numpy(), branches["from_bus"].to_numpy(), branches["to_bus"].to_numpy()
    )
    gens = reader.table(gens_p, GENERATORS, "gen")
    fg = reader.rel(gens_p)
    check_refs(fg, None, gens, "bus", buses["bus"], "bus")
    inverted = gens["p_min_mw"] > gens["p_max_mw"]
    if inverted.any():
        i = int(np.flatnonzero(inverted.to_numpy())[0])
        raise InstanceError(fg, "p_min_mw", f"line {file_line(gens, i)}: exceeds p_max_mw")
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
    sec: Section, reader: TableReader, hours: int, tr: TransmissionData
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
    z = sec.get("risk_quantile", float, 0.0, check=RISK_QUANTILE)
    rho = sec.get(
        "correlation", float, 0.0, check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)"
    )
    sec.close()

    prof = reader.table(prof_p, PROFILE, "hour")
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
        inc = reader.table(inc_p, INCREASE, ("hour", "bus"))
        fi = reader.rel(inc_p)
        check_refs(fi, None, inc, "bus", tr.buses.index, "bus")
        check_refs(fi, None, inc, "hour", expected, "hour")
        for row in inc.itertuples(index=False):
            increase.loc[row.hour, row.bus] = row.increase_pu
    return ScenarioData(
        load_profile=profile,
        load_increase=increase,
        balancing=balancing,
        risk_quantile=z,
        correlation=rho,
    )


def _load_feeder(name: str, path: Path, reader: TableReader, vn_kv: float) -> FeederData:
    tab = reader.table(path, FEEDER, None)
    f = reader.rel(path)
    twice = tab["to_bus"].duplicated()
    if twice.any():
        i = int(np.flatnonzero(twice.to_numpy())[0])
        raise InstanceError(
            f,
            "to_bus",
            f"line {file_line(tab, i)}: bus {tab['to_bus'].iloc[i]} is fed by two "
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
    sec: Section, reader: TableReader, hours: int, dt_h: float, tr: TransmissionData
) -> tuple[DSOData, ...]:
    m = sec.file
    pros_p = reader.resolve(sec.get("prosumers", str), m, "distribution.prosumers")
    base_p = reader.resolve(sec.get("baseline", str), m, "distribution.baseline")
    entries = sec.get("dso", list)
    grids = read_microgrids(
        sec.get("microgrid", list, []), m, reader, _load_feeder, _name, _voltage
    )
    sec.close()
    if not entries:
        raise InstanceError(m, "distribution.dso", "at least one DSO is required")
    declared = {e.get("id") for e in entries if isinstance(e, dict)}
    for g in grids:
        if g.dso not in declared:
            raise InstanceError(m, f"{g.where}.dso", f"unknown DSO {g.dso!r}")
        if g.id in declared:
            raise InstanceError(m, f"{g.where}.id", f"{g.id!r} is a DSO's id too")

    pros = reader.table(pros_p, PROSUMERS, "prosumer_id")
    fp = reader.rel(pros_p)
    base = reader.table(base_p, BASELINE, ("hour", "prosumer_id"))
    fbase = reader.rel(base_p)
    check_refs(fbase, None, base, "prosumer_id", pros["prosumer_id"], "prosumer")
    check_refs(fbase, None, base, "hour", np.arange(1, hours + 1), "hour")
    baseline = (
        base.pivot(index="hour", columns="prosumer_id", values="p_mw")
        .reindex(index=pd.RangeIndex(1, hours + 1, name="hour"), columns=pros["prosumer_id"])
        .fillna(0.0)
    )
    pros = pros.set_index("prosumer_id")
    _check_baseline(fbase, pros, baseline, dt_h)

    feeders: dict[tuple[Path, float], FeederData] = {}
    dsos: list[DSOData] = []
    seen_ids: set[str] = set()
    load_buses = set(tr.buses.index[tr.buses["load_p_mw"] > 0])
    for k, raw in enumerate(entries):
        d = Section(raw, m, f"distribution.dso[{k}]")
        dso_id = d.get("id", str, check=_name)
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
        vn_kv = d.get("vn_kv", float, check=_voltage)
        n_feeders = d.get(
            "feeders",
            int,
            1,
            check=lambda v: None if 1 <= v <= MAX_FEEDERS else f"must be in 1..{MAX_FEEDERS}",
        )
        d.close()
        # DSOs may share a feeder file with their own voltage: one feeder per (file, vn_kv)
        if (fpath, vn_kv) not in feeders:
            feeders[fpath, vn_kv] = _load_feeder(fpath.stem, fpath, reader, vn_kv)
        feeder = feeders[fpath, vn_kv]
        own = pros[pros["dso_id"] == dso_id].drop(columns="dso_id")
        if own.empty:
            raise InstanceError(fp, "dso_id", f"DSO {dso_id!r} has no prosumers")
        own, microgrids = split_members(grids, dso_id, feeder, own, baseline, m, fp)
        check_buses(fp, own, feeder, f"feeder {reader.rel(fpath)}")
        dsos.append(
            DSOData(
                id=dso_id,
                bus=bus,
                feeder=feeder,
                n_feeders=n_feeders,
                prosumers=own,
                baseline_mw=baseline[own.index],
                microgrids=microgrids,
            )
        )
    orphan = ~pros["dso_id"].isin(seen_ids)
    if orphan.any():
        pid = pros.index[orphan.to_numpy()][0]
        raise InstanceError(
            fp, "dso_id", f"prosumer {pid!r}: unknown DSO {pros.at[pid, 'dso_id']!r}"
        )
    return tuple(dsos)


def _name(v: str) -> str | None:
    """A name: not empty, one line, at most 200 characters."""
    if not v.strip():
        return "must not be empty"
    if len(v) > 200 or any(c in v for c in "\r\n\x00"):
        return "must be one line of at most 200 characters"
    return None


def _voltage(v: float) -> str | None:
    """The plausibility range of a nominal voltage (the tables' ``vn_kv``)."""
    bad = VOLTAGE_KV.check(np.array([v])) if VOLTAGE_KV.check is not None else [False]
    return VOLTAGE_KV.rule if bad[0] else None


def _check_baseline(file: str, pros: pd.DataFrame, baseline: pd.DataFrame, dt_h: float) -> None:
    """Power within ±p_max and state of charge within [0, E] along the baseline (eq. I1)."""
    pmax = pros["p_max_mw"]
    over = baseline.abs().gt(pmax + 1e-9, axis=1)
    if over.to_numpy().any():
        t, pid = next((t, c) for t in baseline.index for c in baseline.columns if over.at[t, c])
        raise InstanceError(
            file,
            "p_mw",
            f"prosumer {pid!r} hour {t}: |p| = {abs(baseline.at[t, pid]):g} exceeds p_max_mw "
            f"{pmax[pid]:g}",
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
