"""Bundled feeder test cases as pandapower nets (the IEEE 69-bus feeder is not in pandapower)."""

from __future__ import annotations

import warnings
from importlib.resources import files

import pandas as pd

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandapower as pp
    import pandapower.networks as pn

__all__ = ["case33bw", "case69", "transmission_case"]

#: Published base case of the 69-bus feeder (Baran & Wu 1989; Das 2008): total active loss and
#: minimum voltage (at bus 65, 1-based; index 64 here). Reproduced by tests/grid/test_cases.py.
CASE69_PUBLISHED = {"loss_kw": 224.95, "vm_min_pu": 0.9092, "vm_min_bus": 64}


def case69() -> pp.pandapowerNet:
    """IEEE 69-bus radial distribution feeder (12.66 kV, 3.80 MW + 2.69 Mvar).

    Built like :func:`pandapower.networks.case33bw`: buses ``0..68`` (bus ``k`` is the
    published bus ``k + 1``), one line per branch with ``length_km = 1`` so that
    ``r_ohm_per_km`` is the branch resistance, one load per loaded bus, an external grid at
    bus 0 with ``vm_pu = 1``.

    References
    ----------
    M. E. Baran and F. F. Wu, "Optimal capacitor placement on radial distribution systems",
    IEEE Trans. Power Delivery 4(1):725-734, 1989, doi:10.1109/61.19265.
    D. Das, "Optimal placement of capacitors in radial distribution system using a Fuzzy-GA
    method", IJEPES 30(6-7):361-367, 2008, doi:10.1016/j.ijepes.2007.08.004.
    """
    data = pd.read_csv(files("flexopt.grid").joinpath("data/case69.csv"), comment="#")
    net = pp.create_empty_network(name="case69", f_hz=50.0, sn_mva=10.0)
    for k in range(69):
        pp.create_bus(net, vn_kv=12.66, name=str(k + 1), index=k, type="b")
    pp.create_ext_grid(net, bus=0, vm_pu=1.0, va_degree=0.0)
    for row in data.itertuples(index=False):
        pp.create_line_from_parameters(
            net,
            from_bus=int(row.from_bus) - 1,
            to_bus=int(row.to_bus) - 1,
            length_km=1.0,
            r_ohm_per_km=float(row.r_ohm),
            x_ohm_per_km=float(row.x_ohm),
            c_nf_per_km=0.0,
            max_i_ka=0.4,
        )
        if row.to_p_kw or row.to_q_kvar:
            pp.create_load(
                net, bus=int(row.to_bus) - 1, p_mw=row.to_p_kw / 1e3, q_mvar=row.to_q_kvar / 1e3
            )
    return net


def case33bw() -> pp.pandapowerNet:
    """pandapower's IEEE 33-bus feeder (Baran & Wu 1989), re-exported for symmetry."""
    return pn.case33bw()


def transmission_case(name: str) -> pp.pandapowerNet:
    """A pandapower transmission test case by name (``case30``, ``case118``, ``case300``, …)."""
    if not name.startswith("case") or not hasattr(pn, name):
        raise ValueError(f"no pandapower test case named {name!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(pn, name)()
