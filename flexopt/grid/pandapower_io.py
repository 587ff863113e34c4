"""Conversion from pandapower nets to flexopt's arrays — the only module importing pandapower.

Follows pandapower's own ``_pd2ppc`` conventions: branch order lines then transformers, bus
lookups through ``net._pd2ppc_lookups``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from flexopt.errors import TopologyError
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

# pandapower ppc column indices (pandapower.pypower.idx_brch / idx_bus)
_F_BUS, _T_BUS, _BR_X, _TAP, _SHIFT, _BR_STATUS = 0, 1, 3, 8, 9, 10
_BUS_TYPE, _REF = 1, 3


def _quiet_rundcpp(net: pp.pandapowerNet) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcpp(net, check_connectivity=True)


def line_ratings_mw(net: pp.pandapowerNet) -> pd.Series:
    """Thermal ratings in MW (MVA): ``√3 V_n I_max · parallel`` for lines, ``S_n`` for trafos."""
    lines = net.line
    vn = net.bus.vn_kv.loc[lines.from_bus].to_numpy()
    r_line = np.sqrt(3) * vn * lines.max_i_ka.to_numpy() * lines.parallel.to_numpy()
    r_trafo = net.trafo.sn_mva.to_numpy() * net.trafo.get("parallel", pd.Series(1, net.trafo.index))
    names = [f"line_{i}" for i in lines.index] + [f"trafo_{i}" for i in net.trafo.index]
    return pd.Series(np.r_[r_line, np.asarray(r_trafo, float)], index=names, name="rating_mw")


def transmission_tables(net: pp.pandapowerNet) -> tuple[pd.DataFrame, pd.DataFrame, int, float]:
    """Bus and branch tables of the DC model, in pandapower's ``_ppc`` branch order.

    Returns
    -------
    buses : DataFrame indexed by pandapower bus (``name``, ``vn_kv``)
    branches : DataFrame indexed by ``line_<i>`` / ``trafo_<i>`` with ``from_bus``,
        ``to_bus`` (pandapower labels), ``x_pu``, ``tap``, ``rating_mw``
    slack_bus : pandapower label of the reference bus
    base_mva : the ppc base
    """
    _quiet_rundcpp(net)
    ppc = net._ppc
    lookup = net._pd2ppc_lookups["bus"]
    # ppc bus position -> pandapower bus label (fused buses map to their first label)
    ppc_to_pp = pd.Series(net.bus.index.to_numpy(), index=lookup[net.bus.index.to_numpy()])
    ppc_to_pp = ppc_to_pp[~ppc_to_pp.index.duplicated()]
    if len(ppc_to_pp) != len(net.bus):
        raise TopologyError("buses joined by bus-bus switches are not supported in the DC model")
    br = ppc["branch"]
    ranges = net._pd2ppc_lookups["branch"]
    names: list[str] = [""] * br.shape[0]
    for element in ("line", "trafo"):
        if element in ranges:
            start, stop = ranges[element]
            idx = net[element].index.to_numpy()
            names[start:stop] = [f"{element}_{i}" for i in idx]
    if any(n == "" for n in names) or np.any(np.real(br[:, _SHIFT]) != 0):
        raise TopologyError(
            "only lines and two-winding transformers without phase shift are supported"
        )
    in_service = np.real(br[:, _BR_STATUS]) > 0
    tap = np.real(br[:, _TAP]).copy()
    tap[tap == 0] = 1.0
    ratings = line_ratings_mw(net)
    branches = pd.DataFrame(
        {
            "from_bus": ppc_to_pp.loc[np.real(br[:, _F_BUS]).astype(int)].to_numpy(),
            "to_bus": ppc_to_pp.loc[np.real(br[:, _T_BUS]).astype(int)].to_numpy(),
            "x_pu": np.real(br[:, _BR_X]),
            "tap": tap,
        },
        index=pd.Index(names, name="branch"),
    )
    branches["rating_mw"] = ratings.reindex(branches.index).to_numpy()
    branches = branches[in_service]
    ref = np.flatnonzero(np.real(ppc["bus"][:, _BUS_TYPE]) == _REF)
    slack = int(ppc_to_pp.loc[int(ref[0])])
    buses = net.bus[["name", "vn_kv"]].copy()
    buses.index.name = "bus"
    return buses, branches, slack, float(ppc["baseMVA"])


def transmission_from_pandapower(net: pp.pandapowerNet) -> TransmissionModel:
    """DC model of a pandapower transmission net (ratings from ``max_i_ka``/``sn_mva``)."""
    buses, branches, slack, base_mva = transmission_tables(net)
    return model_from_tables(buses.index, branches, slack, base_mva)


def model_from_tables(
    bus: pd.Index, branches: pd.DataFrame, slack_bus: int, base_mva: float
) -> TransmissionModel:
    """Assemble a :class:`TransmissionModel` from label-based tables."""
    bus = pd.Index(bus, name="bus")
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
    )


def ptdf(net: pp.pandapowerNet) -> pd.DataFrame:
    """PTDF of a pandapower net as a DataFrame (branches × buses, MW per MW, eq. T3).

    The slack is the reference (external grid) bus; rows follow pandapower's ``_ppc`` order
    (lines, then transformers), so the values equal ``pandapower.pypower.makePTDF`` on
    ``net._ppc``.
    """
    model = transmission_from_pandapower(net)
    return pd.DataFrame(model.ptdf, index=model.branch, columns=model.bus)


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
    """Arguments of :meth:`Feeder.from_branches` read from a radial pandapower net."""
    if len(net.trafo) and net.trafo.in_service.any():
        raise TopologyError("feeders with transformers are not supported; model the LV side only")
    if len(net.ext_grid) != 1:
        raise TopologyError(f"a feeder needs exactly one ext_grid (found {len(net.ext_grid)})")
    lines = net.line[net.line.in_service].copy()
    sw = net.switch
    if len(sw):
        if ((sw.et == "b") & sw.closed).any():
            raise TopologyError("closed bus-bus switches are not supported in a feeder")
        open_lines = sw.loc[(sw.et == "l") & ~sw.closed, "element"].unique()
        lines = lines.drop(index=[i for i in open_lines if i in lines.index])
    length_par = lines.length_km / lines.parallel
    r_ohm = lines.r_ohm_per_km * length_par
    x_ohm = lines.x_ohm_per_km * length_par
    vn_kv = float(net.bus.vn_kv.loc[net.ext_grid.bus.iloc[0]])
    # π model: half the line charging at each end, Q = V² ω C (Mvar at 1 pu)
    b_half = (
        2 * np.pi * net.f_hz * lines.c_nf_per_km * 1e-9 * lines.length_km * lines.parallel
    ) / 2
    q_sh = vn_kv**2 * b_half
    shunt = pd.concat([q_sh.groupby(lines.from_bus).sum(), q_sh.groupby(lines.to_bus).sum()])
    if len(net.shunt):
        s = net.shunt[net.shunt.in_service]
        shunt = pd.concat([shunt, (-s.q_mvar * s.step).groupby(s.bus).sum()])
    loads = net.load[net.load.in_service]
    p = (loads.p_mw * loads.scaling).groupby(loads.bus).sum()
    q = (loads.q_mvar * loads.scaling).groupby(loads.bus).sum()
    if len(net.sgen):
        g = net.sgen[net.sgen.in_service]
        p = p.sub((g.p_mw * g.scaling).groupby(g.bus).sum(), fill_value=0.0)
        q = q.sub((g.q_mvar * g.scaling).groupby(g.bus).sum(), fill_value=0.0)
    return {
        "from_bus": lines.from_bus.to_numpy(),
        "to_bus": lines.to_bus.to_numpy(),
        "r_ohm": r_ohm.to_numpy(),
        "x_ohm": x_ohm.to_numpy(),
        "vn_kv": vn_kv,
        "root": int(net.ext_grid.bus.iloc[0]),
        "p_mw": p,
        "q_mvar": q,
        "shunt_mvar_at_1pu": shunt.groupby(level=0).sum() if len(shunt) else None,
        "v_root_pu": float(net.ext_grid.vm_pu.iloc[0]),
    }
