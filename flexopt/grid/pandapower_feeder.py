"""A radial feeder read from a pandapower net as pandapower models it (F1, F8–F10).

The network is pandapower's own internal case (:func:`flexopt.grid.ppc.pandapower_case`, the
one ``runpp`` solves): switches, out-of-service elements, transformer π-models with tap and
phase shift, line charging and conductance, and the bus sums of every load-like element are
pandapower's (F9). This module orients that case from its external grid, refers it to the
root through the transformers' complex ratios (F8, F3a) and returns the fields of a
:class:`~flexopt.grid.feeder.Feeder`. Elements the sweep cannot represent are refused with one
line naming them (F10). Equations are numbered in ``models/feeder.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from flexopt.errors import TopologyError
from flexopt.grid.ppc import PandapowerCase, idx_brch, idx_bus, pandapower_case
from flexopt.grid.tree import orient_tree, parallel_groups, parallel_impedance

if TYPE_CHECKING:
    import pandapower as pp

__all__ = ["feeder_fields"]

#: in-service elements a backward/forward sweep cannot represent, and why
_REFUSED = {
    "gen": "a voltage-controlled generator (a PV bus)",
    "xward": "an extended ward (an internal voltage source: a PV bus)",
    "dcline": "a DC line (pandapower models it as two PV generators)",
    "svc": "a static var compensator (voltage control)",
    "ssc": "a static synchronous compensator (voltage control)",
    "tcsc": "a thyristor-controlled series capacitor",
    "vsc": "a voltage source converter",
    "vsc_stacked": "a voltage source converter",
    "vsc_bipolar": "a voltage source converter",
}
_BUS_COLUMNS = ("bus", "from_bus", "to_bus")


def feeder_fields(net: pp.pandapowerNet, ext_grid: int | None = None) -> dict[str, Any]:
    """Fields of a :class:`~flexopt.grid.feeder.Feeder` for the island an ext_grid feeds (F9).

    Parameters
    ----------
    net : pandapowerNet
        Left unchanged.
    ext_grid : int, optional
        Index of the in-service external grid at the root; needed only when the net has
        several (each must feed its own island).

    Raises
    ------
    TopologyError
        No (or an ambiguous) in-service external grid, two sources in one island, a loop, an
        element the sweep cannot represent (named), or parallel branches with different
        ratios (F10).
    """
    name = str(net.name or "feeder")
    sources = _in_service_ext_grids(net)
    if ext_grid is None:
        if len(sources) != 1:
            raise TopologyError(
                f"net '{name}': a feeder is fed by exactly one in-service ext_grid, found "
                f"{len(sources)} {sources.tolist()}; pass ext_grid=<index> to read the "
                f"island one of them feeds"
            )
        ext_grid = int(sources[0])
    elif ext_grid not in sources:
        raise TopologyError(
            f"net '{name}': ext_grid {ext_grid} is not an in-service external grid at an "
            f"in-service bus (those are {sources.tolist()})"
        )
    case = pandapower_case(net)
    root = int(case.position[int(net.ext_grid.bus.at[ext_grid])])
    island = _island(case, root)
    for other in sources[sources != ext_grid]:
        bus = int(net.ext_grid.bus.at[other])
        if bus in case.position.index and island[int(case.position[bus])]:
            raise TopologyError(
                f"net '{name}': ext_grid {other} (bus {bus}) feeds the same island as "
                f"ext_grid {ext_grid}; a radial feeder has one source"
            )
    _refuse_elements(net, case, island, name)
    f, t = case.ends()
    keep = np.flatnonzero(island[f] & island[t])
    asym = (case.col(idx_brch.BR_R_ASYM) != 0) | (case.col(idx_brch.BR_X_ASYM) != 0)
    if asym[keep].any():
        bad = case.branch_name[keep[asym[keep]][0]]
        raise TopologyError(
            f"net '{name}': {bad.replace('_', ' ', 1)} is non-reciprocal (different impedance "
            f"from→to and to→from); a radial feeder's branches are reciprocal"
        )
    return _referred(case, keep, root, island, name)


def _in_service_ext_grids(net: pp.pandapowerNet) -> np.ndarray:
    eg = net.ext_grid
    bus_on = net.bus.in_service.reindex(eg.bus.to_numpy()).fillna(False).to_numpy(bool)
    on: np.ndarray = eg.index[eg.in_service.to_numpy(bool) & bus_on].to_numpy(np.int64)
    return on


def _island(case: PandapowerCase, root: int) -> np.ndarray:
    """Case buses connected to ``root`` (pandapower keeps every island with a source; F9)."""
    f, t = case.ends()
    n = case.bus.shape[0]
    graph = sp.coo_matrix((np.ones(len(f)), (f, t)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    island: np.ndarray = comp == comp[root]
    return island


def _refuse_elements(
    net: pp.pandapowerNet, case: PandapowerCase, island: np.ndarray, name: str
) -> None:
    """One line naming the first in-service element on the island the sweep cannot model
    (F10)."""
    for element, why in _REFUSED.items():
        tab = net.get(element)
        if not isinstance(tab, pd.DataFrame) or tab.empty or "in_service" not in tab:
            continue
        tab = tab[tab.in_service.to_numpy(bool)]
        for col in (c for c in _BUS_COLUMNS if c in tab.columns):
            pos = case.position.reindex(tab[col].to_numpy())
            hit = pos.notna().to_numpy() & island[pos.fillna(0).to_numpy(np.int64)]
            if hit.any():
                i = int(np.flatnonzero(hit)[0])
                raise TopologyError(
                    f"net '{name}': {element} {tab.index[i]} at bus {tab[col].iloc[i]} is {why}; "
                    f"a radial feeder's sweep models PQ loads, shunts and branches only"
                )


def _referred(
    case: PandapowerCase, keep: np.ndarray, root: int, island: np.ndarray, name: str
) -> dict[str, Any]:
    """Orient the island's branches from the root and refer them through the ratios (F8, F3a);
    parallel branches become one (their ratios must agree, F10)."""
    f_all, t_all = case.ends()
    f, t = f_all[keep], t_all[keep]
    first, group = parallel_groups(f, t)
    tree = orient_tree(case.label[f[first]], case.label[t[first]], int(case.label[root]), name=name)
    n, nb = len(tree.bus), len(tree.child)
    tpos = np.full(case.bus.shape[0], -1)
    tpos[island] = tree.bus.get_indexer(case.label[island])
    k_of_group = np.empty(len(first), dtype=np.int64)
    k_of_group[tree.branch] = np.arange(nb)
    k = k_of_group[group]  # oriented branch of every member
    forward = tpos[f] == tree.parent[k]  # pandapower's from end (the tap side) is upstream
    tap = case.col(idx_brch.TAP)[keep]
    ratio = np.where(tap == 0.0, 1.0, tap) * np.exp(1j * np.deg2rad(case.col(idx_brch.SHIFT)[keep]))
    step = np.where(forward, ratio, 1.0 / ratio)  # V_parent / V_child at no load
    lead = np.full(nb, len(k))
    np.minimum.at(lead, k, np.arange(len(k)))  # first member of each oriented branch
    off = np.abs(step - step[lead[k]]) > 1e-12 * np.abs(step[lead[k]])
    if off.any():
        m = int(np.flatnonzero(off)[0])
        raise TopologyError(
            f"feeder '{name}': parallel branches {case.branch_name[keep[lead[k[m]]]]} and "
            f"{case.branch_name[keep[m]]} have different ratios (a circulating current); "
            f"a radial feeder needs one ratio per pair of buses"
        )
    t_ratio = np.ones(n, dtype=complex)  # T_j: cumulative ratio from the root (F8)
    for kk in range(nb):  # breadth-first: the parent's ratio is known
        t_ratio[tree.child[kk]] = t_ratio[tree.parent[kk]] * step[lead[kk]]
    # pandapower's series impedance and both shunt halves sit on the to side of the ideal
    # transformer: refer them with that bus's ratio
    scale = np.abs(t_ratio[np.where(forward, tree.child[k], tree.parent[k])]) ** 2
    z = (case.col(idx_brch.BR_R)[keep] + 1j * case.col(idx_brch.BR_X)[keep]) * scale
    g, b = case.col(idx_brch.BR_G)[keep], case.col(idx_brch.BR_B)[keep]
    y_from = (g + 1j * b) / 2 / scale
    y_to = (
        (g + case.col(idx_brch.BR_G_ASYM)[keep] + 1j * (b + case.col(idx_brch.BR_B_ASYM)[keep]))
        / 2
        / scale
    )
    y_up, y_down = np.where(forward, y_from, y_to), np.where(forward, y_to, y_from)
    z_k = parallel_impedance(z, k, nb)
    y = np.zeros(n, dtype=complex)
    np.add.at(y, tree.parent[k], y_up)
    np.add.at(y, tree.child[k], y_down)
    g_end = np.zeros((2, nb))
    np.add.at(g_end[0], k, y_up.real)
    np.add.at(g_end[1], k, y_down.real)
    bus = case.bus[island]
    at = tpos[island]
    base = case.base_mva
    y[at] += (
        (bus[:, idx_bus.GS].real + 1j * bus[:, idx_bus.BS].real) / base / np.abs(t_ratio[at]) ** 2
    )
    fields: dict[str, Any] = {
        "bus": pd.Index(tree.bus, name="bus"),
        "root": tree.root,
        "parent": tree.parent,
        "child": tree.child,
        "r_pu": z_k.real.copy(),
        "x_pu": z_k.imag.copy(),
        "y_shunt_pu": y,
        "p_base_mw": _by_bus(bus[:, idx_bus.PD], at, n),
        "q_base_mvar": _by_bus(bus[:, idx_bus.QD], at, n),
        "vn_kv": float(case.bus[root, idx_bus.BASE_KV].real),
        "base_mva": base,
        "v_root_pu": float(case.bus[root, idx_bus.VM].real),
        "va_root_degree": float(case.bus[root, idx_bus.VA].real),
        "bus_vn_kv": _by_bus(bus[:, idx_bus.BASE_KV], at, n),
        "branch_label": pd.Index(_labels(case.branch_name[keep], k, nb), name="branch"),
    }
    if np.any(t_ratio != 1.0):
        fields["ratio"] = t_ratio
    if np.any(g_end != 0.0):
        fields["g_end_pu"] = g_end
    cz = np.stack([_by_bus(bus[:, idx_bus.CZD_P], at, n), _by_bus(bus[:, idx_bus.CZD_Q], at, n)])
    ci = np.stack([_by_bus(bus[:, idx_bus.CID_P], at, n), _by_bus(bus[:, idx_bus.CID_Q], at, n)])
    if np.any(cz != 0.0) or np.any(ci != 0.0):
        fields["const_z_share"], fields["const_i_share"] = cz, ci
    return fields


def _by_bus(values: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n)
    out[at] = values.real
    return out


def _labels(names: np.ndarray, k: np.ndarray, nb: int) -> list[str]:
    members: list[list[str]] = [[] for _ in range(nb)]
    for name, kk in zip(names, k, strict=True):
        members[kk].append(str(name))
    return ["|".join(m) for m in members]
