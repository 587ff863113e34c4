"""A pandapower net as pandapower itself models it: the energized part of its internal case.

pandapower converts a net to a MATPOWER-style case (``ppc``) before every power flow: bus-bus
switches fused, an open line or transformer switch turned into an auxiliary bus at the open
end (the branch stays energized from its closed end), out-of-service and unsupplied buses
dropped, transformers reduced to π-branches with an off-nominal complex ratio, loads and
shunts of every element summed per bus. :func:`pandapower_case` runs that conversion with the
options of ``runpp`` (or ``rundcpp``) on a copy of the net and returns the energized part
(``ppci``), so that the feeder and the DC model see exactly the network ``runpp`` solves.

This is the one module that calls pandapower's private conversion (``_pd2ppc``). The rules
are written out as (F9) in ``models/feeder.md`` (the AC case a feeder is read from) and
(T3a) in ``models/transmission.md`` (the DC case of the PTDF).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flexopt.errors import TopologyError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandapower as pp
    from pandapower.auxiliary import _init_rundcpp_options, _init_runpp_options
    from pandapower.pd2ppc import _pd2ppc
    from pandapower.pypower import idx_brch, idx_bus

__all__ = ["PandapowerCase", "idx_brch", "idx_bus", "pandapower_case"]

#: ppc branch blocks in pandapower's order (``build_branch._initialize_branch_lookup``)
_BRANCH_ELEMENTS = ("line", "trafo", "trafo3w", "impedance", "xward", "switch")


@dataclass(frozen=True, eq=False)
class PandapowerCase:
    """The energized network of a pandapower net, in pandapower's internal case format.

    Attributes
    ----------
    bus, branch : numpy.ndarray
        pandapower's ``ppci`` bus and branch matrices (``idx_bus`` / ``idx_brch`` columns):
        energized buses only, in-service branches between them only.
    base_mva : float
        The case's power base (``net.sn_mva``).
    label : numpy.ndarray
        ``[n_bus]`` integer label of each case bus: the smallest pandapower bus fused into it;
        auxiliary buses (the open end of a switched-off branch, a three-winding transformer's
        star point) are numbered after the net's largest bus index.
    aux : numpy.ndarray
        ``[n_bus]`` True for auxiliary buses.
    branch_name : numpy.ndarray
        ``[n_branch]`` ``line_<i>``, ``trafo_<i>``, ``trafo3w_<i>_<hv|mv|lv>``,
        ``impedance_<i>``, ``xward_<i>`` or ``switch_<i>`` (a closed bus-bus switch with
        ``z_ohm > 0``).
    position : pandas.Series
        Case bus position of every energized pandapower bus (fused buses share one).
    """

    bus: np.ndarray
    branch: np.ndarray
    base_mva: float
    label: np.ndarray
    aux: np.ndarray
    branch_name: np.ndarray
    position: pd.Series

    @property
    def ref(self) -> np.ndarray:
        """Positions of the reference buses (one per external grid or slack generator)."""
        return np.flatnonzero(self.bus[:, idx_bus.BUS_TYPE].real == idx_bus.REF)

    def col(self, column: int) -> np.ndarray:
        """A real branch column; zeros where this pandapower version has no such column."""
        if column >= self.branch.shape[1]:
            return np.zeros(self.branch.shape[0])
        out: np.ndarray = self.branch[:, column].real.astype(float)
        return out

    def ends(self) -> tuple[np.ndarray, np.ndarray]:
        """Case bus positions of each branch's from and to end."""
        return (
            self.branch[:, idx_brch.F_BUS].real.astype(np.int64),
            self.branch[:, idx_brch.T_BUS].real.astype(np.int64),
        )


def pandapower_case(net: pp.pandapowerNet, *, dc: bool = False) -> PandapowerCase:
    """The energized network that ``runpp`` (``dc=False``) or ``rundcpp`` solves.

    Runs pandapower's own conversion with the default options of ``runpp`` / ``rundcpp``
    (overruled by ``net.user_pf_options`` as in those functions) on a copy of ``net``.

    Raises
    ------
    TopologyError
        If pandapower refuses the net (no reference bus, invalid element data); the message
        is pandapower's first line.
    """
    net = copy.deepcopy(net)  # the conversion writes options, lookups and defaults into the net
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if dc:
                _init_rundcpp_options(
                    net,
                    trafo_model="t",
                    trafo_loading="current",
                    recycle=None,
                    check_connectivity=True,
                    switch_rx_ratio=2,
                    trafo3w_losses="hv",
                )
            else:
                _init_runpp_options(
                    net,
                    algorithm="nr",
                    calculate_voltage_angles=True,
                    init="auto",
                    max_iteration="auto",
                    tolerance_mva=1e-8,
                    trafo_model="t",
                    trafo_loading="current",
                    enforce_p_lims=False,
                    enforce_q_lims=False,
                    check_connectivity=True,
                    voltage_depend_loads=True,
                    passed_parameters={},
                )
            empty = np.array([], dtype=np.int64)
            net._pd2ppc_lookups = dict.fromkeys(
                ("bus", "bus_dc", "ext_grid", "gen", "branch", "branch_dc"), empty
            )
            ppc, ppci = _pd2ppc(net)
    except (UserWarning, ValueError, KeyError, NotImplementedError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TopologyError(f"pandapower cannot convert net '{net.name}': {first}") from None
    n = ppci["bus"].shape[0]
    pp_bus = net.bus.index.to_numpy(np.int64)
    pos = np.asarray(net._pd2ppc_lookups["bus"])[pp_bus]  # energized buses come first (ppci)
    on = pos < n
    label = np.full(n, -1, dtype=np.int64)
    desc = np.argsort(-pp_bus[on], kind="stable")  # assign the largest first: the smallest wins
    label[pos[on][desc]] = pp_bus[on][desc]
    aux = label < 0
    top = int(pp_bus.max(initial=-1))
    label[aux] = top + 1 + np.arange(int(aux.sum()))
    names = _branch_names(net, ppc["branch"].shape[0])
    return PandapowerCase(
        bus=ppci["bus"],
        branch=ppci["branch"],
        base_mva=float(ppci["baseMVA"]),
        label=label,
        aux=aux,
        branch_name=names[ppci["internal"]["branch_is"]],
        position=pd.Series(pos[on], index=pd.Index(pp_bus[on], name="bus")),
    )


def _branch_names(net: pp.pandapowerNet, n_branch: int) -> np.ndarray:
    """Element name of every ppc branch (pandapower's branch lookup ranges)."""
    names = np.full(n_branch, "", dtype=object)
    ranges = net._pd2ppc_lookups["branch"]
    for element in _BRANCH_ELEMENTS:
        if element not in ranges:
            continue
        start, stop = ranges[element]
        if element == "switch":
            idx = net.switch.index[np.asarray(net._impedance_bb_switches, dtype=bool)]
        else:
            idx = net[element].index
        if element == "trafo3w":
            names[start:stop] = [f"trafo3w_{i}_{side}" for side in ("hv", "mv", "lv") for i in idx]
        else:
            names[start:stop] = [f"{element}_{i}" for i in idx]
    return names
