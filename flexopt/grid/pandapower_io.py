"""Conversion from pandapower nets to flexopt's arrays (the DC model, generators, ratings).

The DC model follows pandapower's own conversion (:func:`flexopt.grid.ppc.pandapower_case`,
the case ``rundcpp`` solves): branch order lines, transformers, three-winding transformers,
impedances (``_ppc`` order); switches, out-of-service and unsupplied elements handled as
pandapower does (T3a in ``models/transmission.md``). Feeders are read by
:mod:`flexopt.grid.pandapower_feeder`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from flexopt.errors import TopologyError
from flexopt.grid.pandapower_feeder import feeder_fields
from flexopt.grid.ppc import idx_brch, idx_bus, pandapower_case
from flexopt.grid.transmission import TransmissionModel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandapower as pp

__all__ = [
    "feeder_arrays",
    "generator_table",
    "line_ratings_mw",
    "ptdf",
    "transmission_from_pandapower",
    "transmission_tables",
]


def line_ratings_mw(net: pp.pandapowerNet) -> pd.Series:
    """Thermal ratings in MW (MVA): ``√3 V_n I_max · parallel`` for lines, ``S_n`` for trafos."""
    lines = net.line
    vn = net.bus.vn_kv.loc[lines.from_bus].to_numpy()
    r_line = np.sqrt(3) * vn * lines.max_i_ka.to_numpy() * lines.parallel.to_numpy()
    r_trafo = net.trafo.sn_mva.to_numpy() * net.trafo.get("parallel", pd.Series(1, net.trafo.index))
    names = [f"line_{i}" for i in lines.index] + [f"trafo_{i}" for i in net.trafo.index]
    return pd.Series(np.r_[r_line, np.asarray(r_trafo, float)], index=names, name="rating_mw")


def _dc_tables(
    net: pp.pandapowerNet,
) -> tuple[pd.DataFrame, pd.DataFrame, int, float, pd.Series]:
    """Buses, branches (with ``shift_degree``), slack label, base and the label of every
    energized pandapower bus's case bus, from the case ``rundcpp`` solves."""
    case = pandapower_case(net, dc=True)
    f, t = case.ends()
    tap = case.col(idx_brch.TAP)
    ratings = line_ratings_mw(net)
    branches = pd.DataFrame(
        {
            "from_bus": case.label[f],
            "to_bus": case.label[t],
            "x_pu": case.col(idx_brch.BR_X),
            "tap": np.where(tap == 0.0, 1.0, tap),
            "rating_mw": [_rating(net, ratings, str(n)) for n in case.branch_name],
            "shift_degree": case.col(idx_brch.SHIFT),
        },
        index=pd.Index(case.branch_name.astype(str), name="branch"),
    )
    names = net.bus.name.reindex(case.label[~case.aux])
    buses = pd.DataFrame(
        {
            "name": np.full(len(case.label), None, dtype=object),
            "vn_kv": case.bus[:, idx_bus.BASE_KV].real,
        },
        index=pd.Index(case.label, name="bus"),
    )
    buses.loc[case.label[~case.aux], "name"] = names.to_numpy()
    buses.loc[case.label[case.aux], "name"] = [f"open end {b}" for b in case.label[case.aux]]
    if len(case.ref) == 0:
        raise TopologyError(f"net '{net.name}': no reference bus (an ext_grid or a slack gen)")
    slack = int(case.label[case.ref[0]])
    labels = pd.Series(case.label[case.position.to_numpy()], index=case.position.index)
    return buses, branches, slack, case.base_mva, labels


def _rating(net: pp.pandapowerNet, ratings: pd.Series, name: str) -> float:
    """Thermal rating (MW, MVA taken as MW) of a case branch; NaN where pandapower has none."""
    if name in ratings.index:
        return float(ratings[name])
    element, _, rest = name.partition("_")
    if element == "trafo3w":
        idx, _, side = rest.partition("_")
        return float(net.trafo3w[f"sn_{side}_mva"].at[int(idx)])
    if element == "impedance":
        return float(net.impedance.sn_mva.at[int(rest)])
    return float("nan")


def transmission_tables(net: pp.pandapowerNet) -> tuple[pd.DataFrame, pd.DataFrame, int, float]:
    """Bus and branch tables of the DC model, in pandapower's ``_ppc`` branch order.

    The energized network ``rundcpp`` solves: buses fused by closed bus-bus switches appear
    once (under their smallest index), out-of-service and unsupplied buses and branches are
    left out, and a branch switched open at one end keeps an auxiliary bus at its open end
    (labelled after the largest bus index, named ``open end <label>``; it carries no flow).

    Returns
    -------
    buses : DataFrame indexed by bus label (``name``, ``vn_kv``)
    branches : DataFrame indexed by ``line_<i>`` / ``trafo_<i>`` / … with ``from_bus``,
        ``to_bus`` (bus labels), ``x_pu``, ``tap``, ``rating_mw``
    slack_bus : label of the reference bus
    base_mva : the case's base

    Raises
    ------
    TopologyError
        For a phase-shifting transformer: the instance tables have no column for the shift
        (use :func:`transmission_from_pandapower`, which models it).
    """
    buses, branches, slack, base_mva, _ = _dc_tables(net)
    shifted = branches.index[branches.shift_degree != 0]
    if len(shifted):
        shift = branches.shift_degree.at[shifted[0]]
        raise TopologyError(
            f"net '{net.name}': {shifted[0].replace('_', ' ', 1)} shifts the phase by {shift:g}°; "
            f"the instance branches table has no phase-shift column (the PTDF does not depend "
            f"on it, the base-case flows do)"
        )
    return buses, branches.drop(columns="shift_degree"), slack, base_mva


def transmission_from_pandapower(net: pp.pandapowerNet) -> TransmissionModel:
    """DC model of a pandapower transmission net (ratings from ``max_i_ka``/``sn_mva``),
    phase shifts included (T4a)."""
    buses, branches, slack, base_mva, _ = _dc_tables(net)
    return model_from_tables(buses.index, branches, slack, base_mva)


def model_from_tables(
    bus: pd.Index, branches: pd.DataFrame, slack_bus: int, base_mva: float
) -> TransmissionModel:
    """Assemble a :class:`TransmissionModel` from label-based tables (an optional
    ``shift_degree`` column gives the phase shifts)."""
    bus = pd.Index(bus, name="bus")
    shift = branches["shift_degree"].to_numpy(float) if "shift_degree" in branches else None
    return TransmissionModel(
        bus=bus,
        branch=pd.Index(branches.index, name="branch"),
        from_idx=bus.get_indexer(branches["from_bus"]),
        to_idx=bus.get_indexer(branches["to_bus"]),
        x_pu=branches["x_pu"].to_numpy(float),
        tap=branches["tap"].to_numpy(float),
        rating_mw=branches["rating_mw"].to_numpy(float),
        slack_idx=int(bus.get_loc(slack_bus)),
        base_mva=base_mva,
        shift_deg=shift if shift is not None and np.any(shift != 0) else None,
    )


def ptdf(net: pp.pandapowerNet) -> pd.DataFrame:
    """PTDF of a pandapower net as a DataFrame (branches × buses, MW per MW, eq. T3).

    Rows: the energized branches in pandapower's ``_ppc`` order (lines, transformers, …);
    columns: every energized pandapower bus (buses fused by a closed bus-bus switch share one
    column's values). The slack is the reference (external grid) bus. The values equal
    ``pandapower.pypower.makePTDF`` on the case ``rundcpp`` solves; phase shifters do not
    change them.
    """
    buses, branches, slack, base_mva, labels = _dc_tables(net)
    model = model_from_tables(buses.index, branches, slack, base_mva)
    phi = model.ptdf[:, model.bus.get_indexer(labels.to_numpy())]
    return pd.DataFrame(phi, index=model.branch, columns=labels.index)


def generator_table(net: pp.pandapowerNet) -> pd.DataFrame:
    """Dispatchable units (``gen``, controllable ``sgen``, ``ext_grid``) with polynomial costs.

    Columns: ``element``, ``element_index``, ``bus``, ``p_min_mw``, ``p_max_mw``,
    ``c0_eur_per_h``, ``c1_eur_per_mwh``, ``c2_eur_per_mw2h``.
    """
    rows = []
    costs = net.poly_cost.set_index(["et", "element"])
    for et in ("ext_grid", "gen", "sgen"):
        tab = net[et]
        for idx, row in tab.iterrows():
            if not bool(row.get("in_service", True)):
                continue
            if et == "sgen" and not bool(row.get("controllable", False)):
                continue
            c = costs.loc[(et, idx)] if (et, idx) in costs.index else None
            rows.append(
                {
                    "element": et,
                    "element_index": int(idx),
                    "bus": int(row.bus),
                    "p_min_mw": float(row.get("min_p_mw", 0.0)),
                    "p_max_mw": float(row.get("max_p_mw", row.get("p_mw", 0.0))),
                    "c0_eur_per_h": 0.0 if c is None else float(c.cp0_eur),
                    "c1_eur_per_mwh": 0.0 if c is None else float(c.cp1_eur_per_mw),
                    "c2_eur_per_mw2h": 0.0 if c is None else float(c.cp2_eur_per_mw2),
                }
            )
    return pd.DataFrame(rows)


def feeder_arrays(net: pp.pandapowerNet) -> dict[str, Any]:
    """Arguments of :meth:`Feeder.from_branches` for a feeder that a branch list can carry.

    The feeder read by :meth:`Feeder.from_pandapower` (branches in pandapower's order,
    oriented from the root; ohms at the root's voltage).

    Raises
    ------
    TopologyError
        If the feeder has what a branch list in ohms cannot carry: a transformer, shunt or
        line conductance, voltage-dependent loads.
    """
    fields = feeder_fields(net)
    name = str(net.name or "feeder")
    cannot = [
        what
        for what, present in (
            ("transformers", "ratio" in fields),
            ("shunt conductance", "g_end_pu" in fields or np.any(fields["y_shunt_pu"].real)),
            ("voltage-dependent loads", "const_z_share" in fields),
        )
        if present
    ]
    if cannot:
        raise TopologyError(
            f"net '{name}': a branch list in ohms cannot carry its {', '.join(cannot)}; "
            f"use Feeder.from_pandapower"
        )
    bus = fields["bus"]
    parent, child = fields["parent"], fields["child"]
    first = [str(label).split("|")[0] for label in fields["branch_label"]]
    order = np.argsort([_line_position(net, n) for n in first], kind="stable")
    z_base = fields["vn_kv"] ** 2 / fields["base_mva"]
    shunt = pd.Series(fields["y_shunt_pu"].imag * fields["base_mva"], index=bus)
    return {
        "from_bus": bus[parent[order]].to_numpy(),
        "to_bus": bus[child[order]].to_numpy(),
        "r_ohm": fields["r_pu"][order] * z_base,
        "x_ohm": fields["x_pu"][order] * z_base,
        "vn_kv": fields["vn_kv"],
        "root": int(bus[fields["root"]]),
        "p_mw": pd.Series(fields["p_base_mw"], index=bus),
        "q_mvar": pd.Series(fields["q_base_mvar"], index=bus),
        "shunt_mvar_at_1pu": shunt[shunt != 0] if np.any(shunt != 0) else None,
        "v_root_pu": fields["v_root_pu"],
        "base_mva": fields["base_mva"],
    }


def _line_position(net: pp.pandapowerNet, name: str) -> int:
    """Position of a line in the net's table (branch lists keep pandapower's order)."""
    element, _, idx = name.partition("_")
    return int(net.line.index.get_loc(int(idx))) if element == "line" else len(net.line)
