"""The DSO stages of a tiny in-memory DSO, run once by a pool worker that has nothing to do
yet (``warm_later`` of ``flexopt.executors``): they load every compiled kernel that S4,
S5–S6 (``wca``) and S8 call, from numba's disk cache or compiled once (~0.6 s cold, 25 ms
warm on the machine of ``benchmarks/README.md``).

In a run, the worker takes S4's tasks while this process runs S1–S2 and then runs this while
this process finishes S2–S3, so that its first tasks of S5–S6 and S8 do not load their
kernels in the stage (at 30 DSOs × 10 the DSO stages ran 1.37× → 1.58× faster than on one
core, medians of three single runs, ``benchmarks/README.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from flexopt.dso.context import prepare
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.dso.offer import build_offer
from flexopt.dso.settlement import dispatch
from flexopt.instance import DSOData, Instance
from flexopt.instance.schema import FeederData, MarketData, ScenarioData, TransmissionData
from flexopt.methods import get_method
from flexopt.methods.wca import WCAConfig

__all__ = ["tiny_instance", "warm_dso_stages"]

_HOURS = 2


def tiny_instance() -> Instance:
    """One DSO on a three-bus feeder with two prosumers, two hours; no transmission grid
    (the DSO stages never read it)."""
    hours = pd.RangeIndex(1, _HOURS + 1, name="hour")
    branches = pd.DataFrame(
        {
            "from_bus": [0, 1],
            "to_bus": [1, 2],
            "r_ohm": [0.5, 0.4],
            "x_ohm": [0.3, 0.2],
            "p_mw": [0.4, 0.3],
            "q_mvar": [0.1, 0.1],
        }
    )
    prosumers = pd.DataFrame(
        {
            "bus": [1, 2],
            "p_max_mw": [0.1, 0.08],
            "e_max_mwh": [0.2, 0.16],
            "soc_init_pu": [0.8, 0.7],
            "efficiency": [0.95, 0.9],
            "a_eur_per_mw2h": [20.0, 30.0],
            "b_eur_per_mwh": [40.0, 35.0],
        },
        index=pd.Index(["p1", "p2"], name="prosumer_id"),
    )
    dso = DSOData(
        id="warm",
        bus=0,
        feeder=FeederData("warm", branches, vn_kv=10.0, root=0),
        n_feeders=2,
        prosumers=prosumers,
        baseline_mw=pd.DataFrame(0.0, index=hours, columns=prosumers.index),
    )
    empty = pd.DataFrame()
    return Instance(
        name="warm",
        description="",
        path=Path("."),
        hours=_HOURS,
        dt_h=1.0,
        transmission=TransmissionData(empty, empty, empty, slack_bus=0, base_mva=100.0),
        scenario=ScenarioData(
            load_profile=pd.Series([0.8, 1.0], index=hours),
            load_increase=pd.DataFrame(index=hours),
            balancing="slack",
            risk_quantile=0.95,
            correlation=0.0,
        ),
        market=MarketData(loss_price_eur_per_mwh=50.0, loss_coverage=0.9),
        dsos=(dso,),
    )


def warm_dso_stages() -> None:
    """S4 (``prepare``), S5–S6 with ``wca`` (a few iterations: every kernel of the DCP's
    evaluation and of the block bid) and S8 (dispatch, AC power flow, settlement) on
    :func:`tiny_instance`."""
    inst = tiny_instance()
    ctx = prepare(inst, inst.dsos[0])
    req = pd.Series([0.1, 0.2], index=inst.hour_index)
    method = get_method("wca")
    config = WCAConfig(wca_pop=8, wca_iter=3)
    problem = DCPProblem(ctx, req, inst.market.loss_price_eur_per_mwh, DCPOptions(), 3)
    modification = method.modify(problem, config, np.random.default_rng(0))
    offer = build_offer(problem, method.name, modification)
    accepted = req * 0.5
    dispatch(ctx, offer, accepted, pd.Series(60.0, index=req.index), 50.0)
