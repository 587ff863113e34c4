"""Building an :class:`~flexopt.instance.Instance` from pandapower nets
(:meth:`flexopt.Instance.from_pandapower`, documented there).

Registered with the instance layer on import (:func:`flexopt.instance.spec.register_builder`);
pandapower is imported only when a builder runs.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flexopt.errors import FlexoptError, InstanceError
from flexopt.instance.loader import load_instance
from flexopt.instance.prosumers import PROSUMER_COLUMNS, make_prosumers
from flexopt.instance.schema import (
    DSOData,
    FeederData,
    Instance,
    MarketData,
    ScenarioData,
    TransmissionData,
)
from flexopt.instance.spec import DSOSpec, register_builder

__all__ = ["LV_P_MAX_MW", "MV_P_MAX_MW", "RTS_HOURLY_PCT", "battery_range", "build_instance"]

#: IEEE RTS 1979, Table 4: hourly load, winter weekday, % of the daily peak.
# fmt: off
RTS_HOURLY_PCT = (67, 63, 60, 59, 59, 60, 74, 86, 95, 96, 96, 95, 95, 95, 93, 94, 99, 100, 100, 96, 91, 83, 73, 63)
# fmt: on
#: Battery power ranges of drawn prosumers (MW): medium-voltage feeders, low-voltage feeders
#: (home batteries, nominal voltage below 1 kV).
MV_P_MAX_MW, LV_P_MAX_MW = (0.05, 0.15), (0.005, 0.015)


def battery_range(vn_kv: float) -> tuple[float, float]:
    """Battery power range of drawn prosumers on a feeder of nominal voltage ``vn_kv``."""
    return LV_P_MAX_MW if vn_kv < 1.0 else MV_P_MAX_MW


def build_instance(
    transmission: Any,
    dsos: Sequence[DSOSpec],
    *,
    name: str | None = None,
    description: str | None = None,
    load_profile: Sequence[float] | pd.Series | None = None,
    load_increase: pd.DataFrame | None = None,
    sigma_pu: float = 0.03,
    ratings_mw: Mapping[str, float] | None = None,
    balancing: str = "distributed",
    risk_quantile: float = 0.0,
    correlation: float = 0.0,
    loss_price_eur_per_mwh: float = 50.0,
    loss_coverage: float = 0.8,
    dt_h: float = 1.0,
    seed: int = 0,
    p_max_mw: tuple[float, float] | None = None,
) -> Instance:
    """See :meth:`flexopt.Instance.from_pandapower`."""
    from flexopt.grid.sources import feeder_net, transmission_net, transmission_tables_of

    if not dsos:
        raise FlexoptError("Instance.from_pandapower: dsos: at least one DSOSpec is required")
    if not all(isinstance(d, DSOSpec) for d in dsos):
        raise FlexoptError("Instance.from_pandapower: dsos: every entry must be a DSOSpec")
    net = (
        transmission_net(transmission, "transmission")
        if isinstance(transmission, str)
        else transmission
    )
    tt = transmission_tables_of(net, sigma_pu)
    branches = tt.branches.set_index("branch")
    for br, limit in (ratings_mw or {}).items():
        if br not in branches.index:
            raise FlexoptError(f"Instance.from_pandapower: ratings_mw: no branch {br!r}")
        branches.loc[br, "rating_mw"] = float(limit)
    profile = pd.Series(
        np.array(RTS_HOURLY_PCT) / 100 if load_profile is None else np.asarray(load_profile, float)
    )
    hours = len(profile)
    hour_index = pd.RangeIndex(1, hours + 1, name="hour")
    buses = tt.buses.set_index("bus")
    increase = _increase(load_increase, hour_index, buses.index)

    draw = np.random.default_rng(seed)
    feeders: dict[int | str, tuple[FeederData, tuple[str, ...]]] = {}
    at_voltage: dict[tuple[int | str, float], FeederData] = {}
    names: set[str] = set()
    dso_data: list[DSOData] = []
    users: dict[str, list[str]] = {}  # feeder name → the DSOs on it
    for spec in dsos:
        field = f"DSOSpec {spec.id!r} feeder"
        key = spec.feeder if isinstance(spec.feeder, str) else id(spec.feeder)
        if key not in feeders:
            feeders[key] = _feeder(spec, field, names, feeder_net)
        feeder = feeders[key][0]
        if spec.vn_kv is not None and spec.vn_kv != feeder.vn_kv:  # its ohms at another voltage
            feeder = at_voltage.setdefault(
                (key, float(spec.vn_kv)), dataclasses.replace(feeder, vn_kv=float(spec.vn_kv))
            )
        users.setdefault(feeder.name, []).append(spec.id)
        pros, base = _prosumers(spec, feeder, hours, draw, p_max_mw)
        dso_data.append(
            DSOData(spec.id, int(spec.bus), feeder, int(spec.copies), pros, base.loc[:, pros.index])
        )
    source = Path(transmission).name if isinstance(transmission, str) else str(net.name or "net")
    if description is None:
        description = f"{source} with {len(dsos)} DSOs (flexopt Instance.from_pandapower)"
        for fdata, fnotes in feeders.values():
            if fnotes:
                who = ", ".join(users[fdata.name])
                description += f"; feeder {fdata.name} ({who}): {', '.join(fnotes)}"
    inst = Instance(
        name=name or Path(str(net.name or "instance")).name or "instance",
        description=description,
        path=Path("<in memory>"),
        hours=hours,
        dt_h=float(dt_h),
        transmission=TransmissionData(
            buses, branches, tt.generators.set_index("gen"), tt.slack_bus, float(tt.base_mva)
        ),
        scenario=ScenarioData(
            profile.set_axis(hour_index).rename("load_pu"),
            increase,
            balancing,
            float(risk_quantile),
            float(correlation),
        ),
        market=MarketData(float(loss_price_eur_per_mwh), float(loss_coverage)),
        dsos=tuple(dso_data),
    )
    return _validated(inst)


def _feeder(
    spec: DSOSpec, field: str, names: set[str], feeder_net: Any
) -> tuple[FeederData, tuple[str, ...]]:
    from flexopt.grid.sources import feeder_source_name, feeder_table

    if isinstance(spec.feeder, str):
        net, stem = feeder_net(spec.feeder, field), feeder_source_name(spec.feeder)
    else:
        net, stem = spec.feeder, str(getattr(spec.feeder, "name", "") or f"feeder_{spec.id}")
    table = feeder_table(net)
    name, k = stem, 1
    while name in names:  # one file per feeder: distinct names
        k += 1
        name = f"{stem}-{k}"
    names.add(name)
    return FeederData(name, table.branches, table.vn_kv, table.root), table.notes


def _prosumers(
    spec: DSOSpec,
    feeder: FeederData,
    hours: int,
    draw: np.random.Generator,
    p_max_mw: tuple[float, float] | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The DSO's prosumers (index ``prosumer_id``) and baseline (hours × prosumers)."""
    from flexopt.grid.build import feeder_from_data

    hour_index = pd.RangeIndex(1, hours + 1, name="hour")
    where = f"DSOSpec {spec.id!r}"
    if isinstance(spec.prosumers, pd.DataFrame):
        pros = spec.prosumers.copy()
        if "prosumer_id" not in pros.columns:
            pros = pros.rename_axis("prosumer_id").reset_index()
        if "dso_id" in pros.columns:
            other = pros["dso_id"].astype(str) != spec.id
            if other.any():
                raise InstanceError(
                    where,
                    "prosumers.dso_id",
                    f"{pros['dso_id'][other].iloc[0]!r} is not {spec.id!r}",
                )
        pros["dso_id"] = spec.id
        missing = [c for c in PROSUMER_COLUMNS if c not in pros.columns]
        if missing:
            raise InstanceError(where, f"prosumers.{missing[0]}", "column is missing")
        base = _baseline(spec.baseline, pros["prosumer_id"], hour_index, where)
    else:
        rng = p_max_mw or battery_range(feeder.vn_kv)
        pros, long = make_prosumers(
            feeder_from_data(feeder),
            spec.prosumers,
            seed=draw,
            dso_id=spec.id,
            p_max_mw=rng,
            hours=hours,
        )
        base = _baseline(long, pros["prosumer_id"], hour_index, where)
    pros = pros[list(PROSUMER_COLUMNS)].set_index("prosumer_id").drop(columns="dso_id")
    return pros, base


def _baseline(
    table: pd.DataFrame | None, ids: pd.Series, hour_index: pd.RangeIndex, where: str
) -> pd.DataFrame:
    cols = pd.Index(ids.astype(str), name="prosumer_id")
    if table is None:
        return pd.DataFrame(0.0, index=hour_index, columns=cols)
    if {"hour", "prosumer_id", "p_mw"} <= set(table.columns):
        table = table.pivot(index="hour", columns="prosumer_id", values="p_mw")
    unknown = table.columns.difference(cols)
    if len(unknown):
        raise InstanceError(where, "baseline", f"unknown prosumer {unknown[0]!r}")
    return table.reindex(index=hour_index, columns=cols).fillna(0.0).astype(float)


def _increase(
    table: pd.DataFrame | None, hour_index: pd.RangeIndex, buses: pd.Index
) -> pd.DataFrame:
    out = pd.DataFrame(0.0, index=hour_index, columns=buses)
    if table is None:
        return out
    if {"hour", "bus", "increase_pu"} <= set(table.columns):
        table = table.pivot_table(index="hour", columns="bus", values="increase_pu", aggfunc="sum")
    bad_h, bad_b = table.index.difference(hour_index), table.columns.difference(buses)
    if len(bad_h) or len(bad_b):
        what = f"hour {bad_h[0]!r}" if len(bad_h) else f"bus {bad_b[0]!r}"
        raise FlexoptError(f"Instance.from_pandapower: load_increase: unknown {what}")
    out.loc[table.index, table.columns] = table.to_numpy(float)
    return out


def _validated(inst: Instance) -> Instance:
    """The instance as the loader reads it back (every check of the on-disk format)."""
    with tempfile.TemporaryDirectory(prefix="flexopt-build-") as tmp:
        folder = Path(tmp) / "instance"
        folder.mkdir()
        inst.write_files(folder)
        try:
            loaded = load_instance(folder)
        except InstanceError as err:
            raise InstanceError(
                f"{inst.name}/{Path(err.file).relative_to('instance')}"
                if err.file.startswith("instance/")
                else err.file,
                err.field,
                err.reason,
            ) from None
    return dataclasses.replace(loaded, path=inst.path)


register_builder("pandapower", build_instance)
