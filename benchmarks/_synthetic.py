"""Synthetic DSO coefficient problems of any size on the IEEE 33-bus feeder (benchmarks only)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flexopt.dso.context import DSOContext
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.grid import Feeder, case33bw
from flexopt.instance.schema import DSOData, FeederData


def _profile() -> np.ndarray:
    """The IEEE RTS 1979 hourly shape of the bundled instance, from hour 9 on (short cases sit
    at the day's plateau)."""
    from flexopt import load_instance

    return np.roll(load_instance("instances/rts24-3dso").scenario.load_profile.to_numpy(), -8)


def synthetic_problem(
    n_prosumers: int, hours: int, seed: int = 0, mode: str = "b", loss_price: float = 50.0
) -> DCPProblem:
    """A DCP with ``n_prosumers`` batteries (on distinct loaded buses while they last) and a
    requirement of 40 % of their capacity in each of ``hours`` hours. Deterministic per seed."""
    rng = np.random.default_rng([seed, n_prosumers, hours])
    feeder = Feeder.from_pandapower(case33bw())
    loaded = np.flatnonzero(feeder.p_base_mw > 0)
    buses = np.r_[rng.permutation(loaded), rng.choice(loaded, max(0, n_prosumers - loaded.size))][
        :n_prosumers
    ]
    p_max = 1.2 / n_prosumers * rng.uniform(0.5, 1.5, n_prosumers)  # ≈ 1.2 MW in total
    b = rng.uniform(40.0, 80.0, n_prosumers)
    pros = pd.DataFrame(
        {
            "bus": feeder.bus[buses],
            "p_max_mw": p_max,
            "e_max_mwh": 4 * p_max,
            "soc_init_pu": 0.9,
            "efficiency": rng.uniform(0.92, 0.97, n_prosumers),
            "a_eur_per_mw2h": rng.uniform(0.1, 0.3, n_prosumers) * b / p_max,
            "b_eur_per_mwh": b,
        },
        index=[f"P{k:03d}" for k in range(n_prosumers)],
    )
    idx = pd.RangeIndex(1, hours + 1, name="hour")
    baseline = pd.DataFrame(0.0, index=idx, columns=pros.index)
    br = feeder.branch_table()
    data = FeederData(
        "case33bw", br.assign(p_mw=0.0, q_mvar=0.0), feeder.vn_kv, int(feeder.bus[feeder.root])
    )
    dso = DSOData(
        id=f"syn{n_prosumers}x{hours}",
        bus=0,
        feeder=data,
        n_feeders=1,
        prosumers=pros,
        baseline_mw=baseline,
    )
    prof = _profile()[:hours, None]
    p, q = prof * feeder.p_base_mw, prof * feeder.q_base_mvar
    pf = feeder.power_flow(p, q)
    participants = pd.DataFrame(
        {
            "dso_id": dso.id,
            "bus": pros["bus"],
            "loss_share": 0.0,
            "screened": True,  # every prosumer's factors are decision variables
            "offers": True,
        },
        index=pros.index,
    )
    ctx = DSOContext(
        dso=dso,
        feeder=feeder,
        hours=idx,
        dt_h=1.0,
        p_mw=p,
        q_mvar=q,
        loss_mw=pf.loss_mw,
        allocation=pd.DataFrame(0.0, index=idx, columns=feeder.bus),
        participants=participants,
        mlf=pd.DataFrame(0.0, index=idx, columns=pros.index),
    )
    from flexopt.dso.flexibility import flexibility_capacity

    cap = flexibility_capacity(pros, baseline, pd.Series(1.0, index=idx), 1.0).sum(axis=1)
    return DCPProblem(ctx, 0.4 * cap, loss_price, DCPOptions(mode=mode))
