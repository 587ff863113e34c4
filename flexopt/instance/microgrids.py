"""The microgrids of an instance's manifest (``[[distribution.microgrid]]``,
``instances/README.md``): read, checked against their DSO, and their members split off the
DSO's own prosumers (``models/microgrid.md``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from flexopt.errors import InstanceError
from flexopt.instance.manifest import Section
from flexopt.instance.schema import FeederData, MicrogridData
from flexopt.instance.tables import TableReader

__all__ = ["MicrogridEntry", "check_buses", "read_microgrids", "split_members"]

#: Reads a feeder table: ``(name, path, reader, vn_kv) -> FeederData`` (the loader's).
FeederReader = Callable[[str, Path, TableReader, float], FeederData]


@dataclass(frozen=True)
class MicrogridEntry:
    """One ``[[distribution.microgrid]]`` table, read and checked on its own."""

    index: int
    id: str
    dso: str
    bus: int
    network: FeederData
    members: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"distribution.microgrid[{self.index}]"


def read_microgrids(
    entries: Sequence[Any],
    manifest: str,
    reader: TableReader,
    read_feeder: FeederReader,
    check_name: Callable[[str], str | None],
    check_voltage: Callable[[float], str | None],
) -> list[MicrogridEntry]:
    """Every microgrid table: id (unique), owning DSO, point of connection, network file,
    voltage and members (a non-empty list of distinct prosumer ids, each in one microgrid)."""
    out: list[MicrogridEntry] = []
    seen: set[str] = set()
    taken: dict[str, str] = {}
    for k, raw in enumerate(entries):
        where = f"distribution.microgrid[{k}]"
        sec = Section(raw, manifest, where)
        mg_id = sec.get("id", str, check=check_name)
        if mg_id in seen:
            raise InstanceError(manifest, f"{where}.id", f"duplicate microgrid id {mg_id!r}")
        seen.add(mg_id)
        dso = sec.get("dso", str, check=check_name)
        bus = sec.get("bus", int)
        path = reader.resolve(sec.get("network", str), manifest, f"{where}.network")
        vn_kv = sec.get("vn_kv", float, check=check_voltage)
        members = sec.get("members", list)
        sec.close()
        if not members:
            raise InstanceError(manifest, f"{where}.members", "a microgrid needs a member")
        for m in members:
            if not isinstance(m, str):
                raise InstanceError(
                    manifest, f"{where}.members", f"must list prosumer ids, got {m!r}"
                )
            if m in taken:
                raise InstanceError(
                    manifest,
                    f"{where}.members",
                    f"prosumer {m!r} is already a member of microgrid {taken[m]!r}",
                )
            taken[m] = mg_id
        network = read_feeder(path.stem, path, reader, vn_kv)
        out.append(MicrogridEntry(k, mg_id, dso, bus, network, tuple(members)))
    return out


def split_members(
    grids: Sequence[MicrogridEntry],
    dso_id: str,
    feeder: FeederData,
    own: pd.DataFrame,
    baseline: pd.DataFrame,
    manifest: str,
    prosumers_file: str,
) -> tuple[pd.DataFrame, tuple[MicrogridData, ...]]:
    """The DSO's direct prosumers and its microgrids: each microgrid's point of connection is
    a bus of the DSO's feeder other than its root, and each member is a prosumer of this DSO
    at a bus of the microgrid's network other than its root."""
    mine = [g for g in grids if g.dso == dso_id]
    out = []
    for g in mine:
        if g.bus not in set(feeder.branches["to_bus"]):
            raise InstanceError(
                manifest,
                f"{g.where}.bus",
                f"the point of connection must be a bus of DSO {dso_id!r}'s feeder other "
                f"than its root, got {g.bus}",
            )
        missing = [m for m in g.members if m not in own.index]
        if missing:
            raise InstanceError(
                manifest,
                f"{g.where}.members",
                f"{missing[0]!r} is not a prosumer of DSO {dso_id!r} in {prosumers_file}",
            )
        members = own.loc[list(g.members)]
        check_buses(prosumers_file, members, g.network, f"the network of microgrid {g.id!r}", g.id)
        out.append(MicrogridData(g.id, g.bus, g.network, members, baseline[members.index]))
    inside = {m for g in mine for m in g.members}
    return own.loc[[p for p in own.index if p not in inside]], tuple(out)


def check_buses(
    file: str, pros: pd.DataFrame, network: FeederData, what: str, microgrid: str = ""
) -> None:
    """Every prosumer of ``pros`` sits at a bus of ``network`` other than its root."""
    bad = ~pros["bus"].isin(set(network.branches["to_bus"]))
    if bad.any():
        pid = pros.index[bad.to_numpy()][0]
        member = f" (member of microgrid {microgrid!r})" if microgrid else ""
        raise InstanceError(
            file,
            "bus",
            f"prosumer {pid!r}{member}: bus {pros.at[pid, 'bus']} is not a load bus of "
            f"{what} (root excluded)",
        )
