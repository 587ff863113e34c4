"""Frozen dataclasses of a validated instance (the on-disk format is in instances/README.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flexopt.instance.prosumers import BASELINE_COLUMNS
from flexopt.instance.spec import DSOSpec, builder
from flexopt.instance.writer import INSTANCE_KIND, feeder_file_name, manifest_text, write_table

__all__ = [
    "FEEDER_COLUMNS",
    "DSOData",
    "FeederData",
    "Instance",
    "MarketData",
    "MicrogridData",
    "ScenarioData",
    "TransmissionData",
]


#: Columns of a feeder table (``instances/README.md``).
FEEDER_COLUMNS = ("from_bus", "to_bus", "r_ohm", "x_ohm", "p_mw", "q_mvar")


@dataclass(frozen=True, eq=False)
class TransmissionData:
    """Transmission network tables.

    ``buses``: index ``bus``; ``name``, ``vn_kv``, ``load_p_mw`` (peak forecast),
    ``sigma_pu`` (std of the relative load forecast error).
    ``branches``: index ``branch``; ``from_bus``, ``to_bus``, ``x_pu``, ``tap``, ``rating_mw``.
    ``generators``: index ``gen``; ``bus``, ``p_min_mw``, ``p_max_mw``, ``c0_eur_per_h``,
    ``c1_eur_per_mwh``, ``c2_eur_per_mw2h``.
    """

    buses: pd.DataFrame
    branches: pd.DataFrame
    generators: pd.DataFrame
    slack_bus: int
    base_mva: float


@dataclass(frozen=True, eq=False)
class FeederData:
    """A radial feeder: ``branches`` (``from_bus`` → ``to_bus``, ``r_ohm``, ``x_ohm``, and the
    peak load ``p_mw``/``q_mvar`` at ``to_bus``), its nominal voltage and its root bus."""

    name: str
    branches: pd.DataFrame
    vn_kv: float
    root: int

    def __repr__(self) -> str:
        """One line: name, branches and nominal voltage (the table is an attribute)."""
        return f"FeederData({self.name}: {len(self.branches)} branches, {self.vn_kv:g} kV)"


@dataclass(frozen=True, eq=False)
class MicrogridData:
    """A microgrid inside a DSO's feeder (``models/microgrid.md``): its own radial network,
    whose root is joined to the DSO's feeder at ``bus`` (the point of connection), and its
    member prosumers, which offer in the microgrid's market, not in the DSO's.

    ``prosumers`` and ``baseline_mw`` as in :class:`DSOData`; a member's ``bus`` is a bus of
    ``network`` (not its root). The microgrid exists in every copy of the DSO's feeder.
    """

    id: str
    bus: int
    network: FeederData
    prosumers: pd.DataFrame
    baseline_mw: pd.DataFrame

    def __repr__(self) -> str:
        """One line: id, point of connection, network and members."""
        return (
            f"MicrogridData({self.id!r}: at bus {self.bus}, {self.network.name}, "
            f"{len(self.prosumers)} members)"
        )


@dataclass(frozen=True, eq=False)
class DSOData:
    """One DSO: its interface bus on the transmission side, its feeder and its prosumers.

    The DSO operates ``n_feeders`` identical copies of ``feeder`` with its prosumers (a
    representative feeder): each prosumer row stands for ``n_feeders`` identical prosumers, one
    per copy, and DSO-level quantities (flexibility, losses) are ``n_feeders`` × the feeder's.

    ``prosumers``: index ``prosumer_id``; ``bus`` (feeder bus), ``p_max_mw``, ``e_max_mwh``,
    ``soc_init_pu``, ``efficiency``, ``a_eur_per_mw2h``, ``b_eur_per_mwh``.
    ``baseline_mw``: hours × prosumers, battery discharge (+) / charge (−) before the market.
    ``microgrids``: microgrids inside the feeder (the third level); their members are not in
    ``prosumers``.
    """

    id: str
    bus: int
    feeder: FeederData
    n_feeders: int
    prosumers: pd.DataFrame
    baseline_mw: pd.DataFrame
    microgrids: tuple[MicrogridData, ...] = ()

    def __repr__(self) -> str:
        """One line: id, interface bus, feeder and prosumers (the tables are attributes)."""
        mg = f", {len(self.microgrids)} microgrids" if self.microgrids else ""
        return (
            f"DSOData({self.id!r}: bus {self.bus}, {self.n_feeders} × {self.feeder.name}, "
            f"{len(self.prosumers)} prosumers{mg})"
        )


@dataclass(frozen=True, eq=False)
class ScenarioData:
    """Load profile, sudden load increase and forecast uncertainty (``models/plf.md``, P1).

    ``load_profile``: hour → share of the peak load. ``load_increase``: hours × buses, the
    relative increase ``Δ_{b,t}`` over the forecast that the day-ahead market did not see.
    """

    load_profile: pd.Series
    load_increase: pd.DataFrame
    balancing: str
    risk_quantile: float
    correlation: float


@dataclass(frozen=True, eq=False)
class MarketData:
    """Market parameters shared by the stages."""

    loss_price_eur_per_mwh: float
    loss_coverage: float


@dataclass(frozen=True, eq=False)
class Instance:
    """A validated flexopt instance.

    Read one with :func:`flexopt.load_instance`, build one from pandapower nets with
    :meth:`from_pandapower`, write one with :meth:`save`.
    """

    name: str
    description: str
    path: Path
    hours: int
    dt_h: float
    transmission: TransmissionData
    scenario: ScenarioData
    market: MarketData
    dsos: tuple[DSOData, ...]

    def __repr__(self) -> str:
        """One line: name, buses, DSOs and hours (the tables are attributes)."""
        return (
            f"Instance({self.name!r}: {len(self.transmission.buses)} buses, "
            f"{len(self.dsos)} DSOs, {self.hours} h)"
        )

    @property
    def hour_index(self) -> pd.Index:
        return pd.RangeIndex(1, self.hours + 1, name="hour")

    def forecast_load_mw(self) -> pd.DataFrame:
        """Day-ahead forecast ``L_{b,t}`` (hours × buses) = peak × profile."""
        peak = self.transmission.buses["load_p_mw"]
        values = np.outer(self.scenario.load_profile.to_numpy(), peak.to_numpy())
        return pd.DataFrame(values, index=self.hour_index, columns=peak.index)

    def dso(self, dso_id: str) -> DSOData:
        for d in self.dsos:
            if d.id == dso_id:
                return d
        raise KeyError(f"no DSO {dso_id!r} in instance {self.name!r}")

    def save(self, path: str | Path, *, replace: bool = False) -> Path:
        """Write the instance in the on-disk format (``instances/README.md``).

        The folder is written atomically and marked as an instance (``flexopt.atomic``);
        floats are written with the shortest text that reads back to the same value, so
        :func:`flexopt.load_instance` returns an equal instance. Feeders shared by several
        DSOs are written once, as ``distribution/<feeder name>.csv``.

        Parameters
        ----------
        path : str or pathlib.Path
            The folder: it must not exist, be empty, or — with ``replace`` — hold an
            instance flexopt wrote.
        replace : bool, default False
            Replace a previous instance folder.

        Returns
        -------
        pathlib.Path
            The folder, absolute.

        Raises
        ------
        flexopt.errors.OutputError
            If ``path`` may not be written (before anything is written).
        """
        from flexopt.atomic import OutputRefusedError, atomic_directory, check_output_dir
        from flexopt.errors import OutputError

        try:
            out = check_output_dir(path, INSTANCE_KIND, replace=replace)
            with atomic_directory(out, INSTANCE_KIND, replace=replace) as work:
                self.write_files(work)
        except OutputRefusedError as err:
            raise OutputError(str(err)) from None
        return out

    def write_files(self, folder: Path, header: Sequence[str] = ()) -> None:
        """Write the manifest and tables into an existing ``folder``, not atomically (use
        :meth:`save`); ``header``: comment lines at the top of the manifest."""
        tr, sc = self.transmission, self.scenario

        def table(df: pd.DataFrame, name: str) -> None:
            write_table(df, folder / name, float_format=None)

        table(tr.buses.reset_index(), "transmission/buses.csv")
        table(tr.branches.reset_index(), "transmission/branches.csv")
        table(tr.generators.reset_index(), "transmission/generators.csv")
        table(
            pd.DataFrame({"hour": sc.load_profile.index, "load_pu": sc.load_profile.to_numpy()}),
            "scenario/load_profile.csv",
        )
        inc = sc.load_increase.rename_axis(index="hour", columns="bus").stack(future_stack=True)
        inc = inc[inc != 0].rename("increase_pu").reset_index()
        if len(inc):
            table(inc, "scenario/load_increase.csv")
        files: dict[int, str] = {}
        taken: set[str] = set()
        entries, grids, pros, base = [], [], [], []
        written: list[FeederData] = []

        def feeder_file(feeder: FeederData) -> str:
            if id(feeder) not in files:  # one file per feeder table (DSOs set their vn_kv)
                same = [f for f in written if _same_table(f, feeder)]
                if same:
                    files[id(feeder)] = files[id(same[0])]
                else:
                    files[id(feeder)] = feeder_file_name(feeder.name, taken)
                    table(feeder.branches[list(FEEDER_COLUMNS)], files[id(feeder)])
                    written.append(feeder)
            return files[id(feeder)]

        for d in self.dsos:
            entries.append(
                {
                    "id": d.id,
                    "bus": d.bus,
                    "feeder": feeder_file(d.feeder),
                    "vn_kv": d.feeder.vn_kv,
                    "feeders": d.n_feeders,
                }
            )
            owners: list[DSOData | MicrogridData] = [d, *d.microgrids]
            for owner in owners:
                p = owner.prosumers.rename_axis("prosumer_id").reset_index()
                p.insert(1, "dso_id", d.id)
                pros.append(p)
                b = owner.baseline_mw.rename_axis(index="hour", columns="prosumer_id")
                base.append(
                    b.T.stack(future_stack=True)
                    .rename("p_mw")
                    .reset_index()[list(BASELINE_COLUMNS)]
                )
            grids += [
                {
                    "id": g.id,
                    "dso": d.id,
                    "bus": g.bus,
                    "network": feeder_file(g.network),
                    "vn_kv": g.network.vn_kv,
                    "members": list(g.prosumers.index),
                }
                for g in d.microgrids
            ]
        table(pd.concat(pros, ignore_index=True), "distribution/prosumers.csv")
        table(pd.concat(base, ignore_index=True), "distribution/baseline.csv")
        text = manifest_text(
            name=self.name,
            description=self.description,
            slack_bus=tr.slack_bus,
            base_mva=tr.base_mva,
            dsos=entries,
            microgrids=grids,
            hours=self.hours,
            dt_h=self.dt_h,
            load_increase=bool(len(inc)),
            balancing=sc.balancing,
            risk_quantile=sc.risk_quantile,
            correlation=sc.correlation,
            loss_price=self.market.loss_price_eur_per_mwh,
            loss_coverage=self.market.loss_coverage,
            header=header or ("# flexopt instance manifest (format: instances/README.md)",),
        )
        (folder / "instance.toml").write_text(text, encoding="utf-8")

    @classmethod
    def from_pandapower(
        cls,
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
        """Build an instance from a pandapower transmission net and one feeder per DSO.

        The transmission tables are pandapower's DC model of the net
        (:func:`flexopt.grid.pandapower_io.transmission_tables`: buses, branches with their
        thermal ratings, dispatchable units with their ``poly_cost``); the peak load of a bus
        is the sum of its in-service loads. Each DSO's feeder is read as pandapower models it
        (:meth:`flexopt.grid.Feeder.from_pandapower`) and written as the instance's feeder
        table: what a branch list in ohms cannot carry is approximated and stated in the
        description (transformers at nominal ratio become series branches, their phase shift
        dropped; shunts and line charging dropped; the root at 1 pu; static generators left
        out: the table holds the peak load); an off-nominal transformer ratio is refused. The
        result is validated by the loader (written to a temporary folder and read back).

        Parameters
        ----------
        transmission : pandapowerNet or str
            The net, a pandapower case name (``case118``), a pandapower JSON file or a
            MATPOWER case file (``.mat``; ``.m`` with the package ``matpowercaseframes``).
        dsos : sequence of DSOSpec
            One per DSO (:class:`flexopt.instance.DSOSpec`).
        name : str, optional
            Instance name (default: the net's name).
        description : str, optional
            Default: the sources and the approximations made.
        load_profile : sequence of float or pandas.Series, optional
            Hourly share of the peak load (its length is the number of hours); default the
            IEEE RTS 1979 winter weekday (24 h).
        load_increase : pandas.DataFrame, optional
            The sudden load increase: hours × buses, or long (``hour``, ``bus``,
            ``increase_pu``); default none.
        sigma_pu : float, default 0.03
            Standard deviation of the relative forecast error at every load bus.
        ratings_mw : mapping of str to float, optional
            TSO operating limits replacing the thermal rating of the named branches
            (``{"line_7": 120.0}``).
        balancing, risk_quantile, correlation, loss_price_eur_per_mwh, loss_coverage, dt_h
            The manifest's fields (``instances/README.md``).
        seed : int, default 0
            Seed of the prosumers drawn by :func:`flexopt.instance.make_prosumers` (one
            stream over the DSOs in order).
        p_max_mw : (float, float), optional
            Battery power range of drawn prosumers; default 5–15 kW on feeders below 1 kV,
            50–150 kW above.

        Returns
        -------
        Instance

        Raises
        ------
        flexopt.FlexoptError
            One line naming the DSO, file or field at fault (an
            :class:`~flexopt.errors.InstanceError` for what the loader refuses, a
            :class:`~flexopt.errors.TopologyError` for a feeder that is not radial).
        """
        build = builder("pandapower")
        inst: Instance = build(
            transmission,
            dsos,
            name=name,
            description=description,
            load_profile=load_profile,
            load_increase=load_increase,
            sigma_pu=sigma_pu,
            ratings_mw=ratings_mw,
            balancing=balancing,
            risk_quantile=risk_quantile,
            correlation=correlation,
            loss_price_eur_per_mwh=loss_price_eur_per_mwh,
            loss_coverage=loss_coverage,
            dt_h=dt_h,
            seed=seed,
            p_max_mw=p_max_mw,
        )
        return inst


def _same_table(a: FeederData, b: FeederData) -> bool:
    """Feeders the loader reads from one file (the same name and branch table)."""
    cols = list(FEEDER_COLUMNS)
    return a.name == b.name and a.branches[cols].reset_index(drop=True).equals(
        b.branches[cols].reset_index(drop=True)
    )
