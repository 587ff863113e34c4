"""Networks by name or file, and their conversion to the instance's tables.

Transmission: a pandapower case name (``case118``), a pandapower JSON file or a MATPOWER
case file (``.mat``, or ``.m`` with the package ``matpowercaseframes``; pandapower's
``converter.from_mpc``). Feeders: ``case33bw``, ``case69``, any ``pandapower.networks``
function without arguments, a SimBench code (``simbench:1-LV-rural1--0-sw``; the optional
extra ``simbench``) or a pandapower JSON file. Every problem is one
:class:`~flexopt.errors.FlexoptError` line naming the option (or DSO) and the source.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flexopt.errors import FlexoptError, TopologyError
from flexopt.instance.schema import FEEDER_COLUMNS

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandapower as pp

__all__ = [
    "SIMBENCH",
    "FeederTable",
    "TransmissionTables",
    "bus_load_mw",
    "feeder_net",
    "feeder_source_name",
    "feeder_table",
    "transmission_net",
    "transmission_tables_of",
]

SIMBENCH = "simbench:"
_MATPOWER = (".mat", ".m")


@contextmanager
def _quiet() -> Iterator[None]:
    """pandapower's converters warn and log freely: keep the console to flexopt's lines."""
    log = logging.getLogger("pandapower")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def _file(source: str, field: str) -> Path:
    path = Path(source)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise FlexoptError(f"{field}: {source!r} {what}")
    return path


def _from_json(source: str, field: str) -> pp.pandapowerNet:
    path = _file(source, field)
    try:
        with _quiet():
            net = pp.from_json(str(path))
    except Exception as err:  # pandapower raises anything from json to KeyError
        raise FlexoptError(
            f"{field}: {source!r} is not a pandapower JSON net ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:200]})"
        ) from None
    if not isinstance(net, pp.pandapowerNet):
        raise FlexoptError(f"{field}: {source!r} does not hold a pandapower net")
    return net


def transmission_net(source: str, field: str = "--transmission") -> pp.pandapowerNet:
    """The transmission net ``source`` names: a pandapower case, a JSON or MATPOWER file.

    Raises
    ------
    FlexoptError
        One line naming ``field`` and the source.
    """
    suffix = Path(source).suffix.lower()
    if suffix == ".json":
        return _from_json(source, field)
    if suffix in _MATPOWER:
        path = _file(source, field)
        from pandapower.converter.matpower import from_mpc

        try:
            with _quiet():
                net = from_mpc(str(path), f_hz=50)
        except NotImplementedError:
            raise FlexoptError(
                f"{field}: {source!r}: reading a MATPOWER .m file needs the package "
                f"matpowercaseframes (pip install 'flexopt[matpower]'), or save the case as .mat"
            ) from None
        except Exception as err:
            raise FlexoptError(
                f"{field}: {source!r} is not a MATPOWER case pandapower can convert "
                f"({type(err).__name__}: {' '.join(str(err).split())[:200]})"
            ) from None
        net.name = net.name or path.stem
        return net
    from flexopt.grid.cases import transmission_case

    try:
        return transmission_case(source)
    except ValueError:
        raise FlexoptError(
            f"{field}: {source!r} is neither a pandapower case (case30, case118, case300, …) "
            "nor a .json or MATPOWER (.mat, .m) file"
        ) from None


def feeder_net(source: str, field: str = "--feeder") -> pp.pandapowerNet:
    """The feeder net ``source`` names (module docstring).

    Raises
    ------
    FlexoptError
        One line naming ``field`` and the source (an unknown name, a missing file, SimBench
        not installed or an unknown SimBench code).
    """
    from flexopt.grid.cases import case33bw, case69

    if source.startswith(SIMBENCH):
        return _simbench(source[len(SIMBENCH) :], field)
    if Path(source).suffix.lower() == ".json":
        return _from_json(source, field)
    if source in ("case33bw", "case69"):
        return case33bw() if source == "case33bw" else case69()
    import pandapower.networks as pn

    make = getattr(pn, source, None) if source.isidentifier() else None
    if callable(make):
        try:
            with _quiet():
                net = make()
        except Exception as err:
            raise FlexoptError(
                f"{field}: pandapower.networks.{source}() failed ({type(err).__name__}: "
                f"{' '.join(str(err).split())[:200]})"
            ) from None
        if isinstance(net, pp.pandapowerNet):
            return net
    raise FlexoptError(
        f"{field}: {source!r} is neither case33bw, case69, a pandapower network, "
        f"'{SIMBENCH}<code>' nor a .json file"
    )


def _simbench(code: str, field: str) -> pp.pandapowerNet:
    try:
        with _quiet():
            import simbench
    except ImportError:
        raise FlexoptError(
            f"{field}: {SIMBENCH}{code} needs the optional package simbench "
            "(pip install 'flexopt[simbench]')"
        ) from None
    try:
        with _quiet():
            net = simbench.get_simbench_net(code)
    except Exception as err:
        raise FlexoptError(
            f"{field}: {code!r} is not a SimBench code simbench can build "
            f"({type(err).__name__}: {' '.join(str(err).split())[:200]})"
        ) from None
    net.name = f"{SIMBENCH}{code}"
    return net


def feeder_source_name(source: str) -> str:
    """A file-safe name of a feeder source: ``simbench_1-LV-rural1--0-sw``, the stem of a
    JSON file, or the name itself."""
    if source.startswith(SIMBENCH):
        return "simbench_" + source[len(SIMBENCH) :]
    return Path(source).stem if Path(source).suffix.lower() == ".json" else source


def bus_load_mw(net: pp.pandapowerNet, buses: pd.Index) -> pd.Series:
    """Peak load per bus label: the sum of the in-service loads (``p_mw · scaling``), ≥ 0."""
    load = net.load[net.load.in_service.to_numpy(bool)]
    p = load.p_mw * load.scaling if "scaling" in load else load.p_mw
    return p.groupby(load.bus).sum().reindex(buses, fill_value=0.0).clip(lower=0.0)


@dataclass(frozen=True)
class TransmissionTables:
    """The transmission tables of an instance (columns of ``instances/README.md``)."""

    buses: pd.DataFrame
    branches: pd.DataFrame
    generators: pd.DataFrame
    slack_bus: int
    base_mva: float


def transmission_tables_of(net: pp.pandapowerNet, sigma_pu: float = 0.03) -> TransmissionTables:
    """The transmission tables of a net, as the instance files hold them.

    Parameters
    ----------
    net : pandapowerNet
        The transmission net (left unchanged).
    sigma_pu : float, default 0.03
        Standard deviation of the relative forecast error at every bus with load.

    Returns
    -------
    TransmissionTables
        ``buses`` (``bus``, ``name``, ``vn_kv``, ``load_p_mw`` = :func:`bus_load_mw`,
        ``sigma_pu``), ``branches`` (pandapower's DC model with thermal ratings,
        :func:`flexopt.grid.pandapower_io.transmission_tables`), ``generators`` (``gen`` =
        ``<element>_<index>``, limits and ``poly_cost``), the slack bus and the base.

    Raises
    ------
    TopologyError
        No dispatchable unit, a negative generator limit (beyond a converter's −1e-6), or what
        ``transmission_tables`` refuses (a phase shifter).
    """
    from flexopt.grid.pandapower_io import generator_table, transmission_tables

    buses, branches, slack, base_mva = transmission_tables(net)
    gens = generator_table(net)
    if gens.empty:
        raise TopologyError(f"net '{net.name}': no dispatchable unit (gen, sgen, ext_grid)")
    gens.insert(
        0, "gen", [f"{e}_{i}" for e, i in zip(gens.element, gens.element_index, strict=True)]
    )
    gens = gens.drop(columns=["element", "element_index"])
    for col in ("p_min_mw", "p_max_mw"):  # converters leave −1e-10 for a zero limit
        tiny = (gens[col] < 0) & (gens[col] > -1e-6)
        if tiny.any():
            gens.loc[tiny, col] = 0.0
        if (gens[col] < 0).any():
            i = int(np.flatnonzero(gens[col].to_numpy() < 0)[0])
            raise TopologyError(
                f"net '{net.name}': {gens.gen.iloc[i]} has {col} = {gens[col].iloc[i]:g}; the "
                "instance's generators produce only (limits ≥ 0)"
            )
    load = bus_load_mw(net, buses.index)
    bus_tab = pd.DataFrame(
        {
            "bus": buses.index,
            "name": buses["name"].astype(str).to_numpy(),
            "vn_kv": buses["vn_kv"].to_numpy(),
            "load_p_mw": load.to_numpy(),
            "sigma_pu": np.where(load.to_numpy() > 0, sigma_pu, 0.0),
        }
    )
    return TransmissionTables(bus_tab, branches.reset_index(), gens, slack, base_mva)


@dataclass(frozen=True)
class FeederTable:
    """A feeder as the instance's branch table holds it, and what the table leaves out."""

    branches: pd.DataFrame
    vn_kv: float
    root: int
    notes: tuple[str, ...]


def feeder_table(net: pp.pandapowerNet, vn_kv: float | None = None) -> FeederTable:
    """The instance feeder table of a pandapower feeder (branches from the root in
    pandapower's line order, ohms at ``vn_kv``, peak load at ``to_bus``).

    The feeder is read as :meth:`flexopt.grid.Feeder.from_pandapower` reads it. What a branch
    list in ohms cannot carry is approximated and listed in ``notes``: static generators are
    left out (the table holds the peak load), transformers at nominal ratio are series
    branches (their phase shift, a rotation of the angles below them, dropped), shunts, line
    charging and conductance are dropped, voltage-dependent loads are taken at constant
    power, the root at 1 pu. ``vn_kv`` defaults to the nominal voltage of the loaded buses.

    Raises
    ------
    TopologyError
        What is not a radial feeder (see ``Feeder.from_pandapower``), or a transformer with
        an off-nominal ratio (the table has one voltage level).
    """
    from flexopt.grid.pandapower_feeder import feeder_fields

    notes: list[str] = []
    name = str(net.name or "feeder")
    sgen = net.get("sgen")
    if isinstance(sgen, pd.DataFrame) and sgen.in_service.to_numpy(bool).any():
        on = sgen.in_service.to_numpy(bool)
        notes.append(f"{int(on.sum())} static generators ({sgen.p_mw[on].sum():.4g} MW) left out")
        net = copy.deepcopy(net)
        net.sgen["in_service"] = False
    f = feeder_fields(net)
    bus, root, p, q = f["bus"], int(f["root"]), f["p_base_mw"], f["q_base_mvar"]
    ratio = f.get("ratio")
    if ratio is not None:
        off = np.abs(np.abs(ratio) - 1.0) > 1e-9
        if off.any():
            raise TopologyError(
                f"feeder '{name}': bus {bus[int(np.flatnonzero(off)[0])]} sits behind a "
                f"transformer ratio of {abs(ratio[off][0]):.6g} pu (an off-nominal tap or "
                "rated voltages unlike the buses'); the instance's feeder table has one "
                "voltage level"
            )
        shift = np.rad2deg(np.angle(ratio))
        if np.any(np.abs(shift) > 1e-9):
            notes.append(f"transformer phase shift ({shift[np.argmax(np.abs(shift))]:g}°) dropped")
    loaded = (p > 0) & (np.arange(len(bus)) != root)
    levels = np.unique(f["bus_vn_kv"][loaded]) if loaded.any() else np.array([f["vn_kv"]])
    if vn_kv is None:
        vn_kv = float(levels[0]) if len(levels) == 1 else float(f["vn_kv"])
    if np.unique(f["bus_vn_kv"]).size > 1:
        notes.append(f"transformers referred to {vn_kv:g} kV as series branches")
    y = f["y_shunt_pu"].copy()
    y[root] = 0.0
    if np.any(y != 0.0):
        notes.append(
            f"shunts and line charging dropped ({np.sum(y.real) * f['base_mva'] * 1e3:.4g} kW "
            f"consumed, {np.sum(y.imag) * f['base_mva'] * 1e3:.4g} kvar generated at 1 pu)"
        )
    if "const_z_share" in f:
        notes.append("voltage-dependent loads taken at constant power")
    if abs(f["v_root_pu"] - 1.0) > 1e-12:
        notes.append(f"root voltage {f['v_root_pu']:g} pu taken as 1 pu")
    if p[root] != 0 or q[root] != 0:
        notes.append(f"load at the root ({p[root]:.4g} MW) left out")
    first = [str(label).split("|")[0] for label in f["branch_label"]]
    order = np.argsort([_line_position(net, n) for n in first], kind="stable")
    z_base = vn_kv**2 / f["base_mva"]
    child = f["child"][order]
    table = pd.DataFrame(
        {
            "from_bus": bus[f["parent"][order]].to_numpy(),
            "to_bus": bus[child].to_numpy(),
            "r_ohm": f["r_pu"][order] * z_base,
            "x_ohm": f["x_pu"][order] * z_base,
            "p_mw": p[child],
            "q_mvar": q[child],
        }
    )
    return FeederTable(table[list(FEEDER_COLUMNS)], float(vn_kv), int(bus[root]), tuple(notes))


def _line_position(net: pp.pandapowerNet, name: str) -> int:
    """Position of a line in the net's table (branch lists keep pandapower's order)."""
    element, _, idx = name.partition("_")
    return int(net.line.index.get_loc(int(idx))) if element == "line" else len(net.line)
