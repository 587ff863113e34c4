"""Physics models from validated instance data (instance tables → arrays)."""

from __future__ import annotations

import pandas as pd

from flexopt.grid.feeder import Feeder
from flexopt.grid.transmission import TransmissionModel
from flexopt.instance import FeederData, Instance, TransmissionData

__all__ = ["feeder_from_data", "transmission_from_data"]


def transmission_from_data(data: TransmissionData | Instance) -> TransmissionModel:
    """DC model of the instance's transmission network (ratings from ``branches.rating_mw``)."""
    if isinstance(data, Instance):
        data = data.transmission
    bus = pd.Index(data.buses.index, name="bus")
    br = data.branches
    return TransmissionModel(
        bus=bus,
        branch=pd.Index(br.index, name="branch"),
        from_idx=bus.get_indexer(br["from_bus"]),
        to_idx=bus.get_indexer(br["to_bus"]),
        x_pu=br["x_pu"].to_numpy(float),
        tap=br["tap"].to_numpy(float),
        rating_mw=br["rating_mw"].to_numpy(float),
        slack_idx=int(bus.get_loc(data.slack_bus)),
        base_mva=data.base_mva,
    )


def feeder_from_data(data: FeederData) -> Feeder:
    """Feeder of a DSO with its peak loads as the base case."""
    br = data.branches
    return Feeder.from_branches(
        br["from_bus"],
        br["to_bus"],
        br["r_ohm"],
        br["x_ohm"],
        vn_kv=data.vn_kv,
        root=data.root,
        p_mw=pd.Series(br["p_mw"].to_numpy(), index=br["to_bus"].to_numpy()),
        q_mvar=pd.Series(br["q_mvar"].to_numpy(), index=br["to_bus"].to_numpy()),
        name=data.name,
    )
