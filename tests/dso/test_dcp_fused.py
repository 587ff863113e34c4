"""The compiled DCP evaluation (``flexopt.dso._fused``) equals the numpy form bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from flexopt.dso._fused import FusedDCP, fusable
from flexopt.dso.context import prepare
from flexopt.dso.dcp import DCPOptions, DCPProblem
from flexopt.errors import PowerFlowError


def _problem(rts, seed: int, shared_bus: bool = False, **opts) -> DCPProblem:
    rng = np.random.default_rng(seed)
    dso = rts.dsos[seed % len(rts.dsos)]
    pros = dso.prosumers.copy()
    pros["b_eur_per_mwh"] = rng.uniform(20, 90, len(pros)).round(2)
    pros["a_eur_per_mw2h"] = rng.choice([0.0, 0.5, 2.0], len(pros))  # steps and slopes
    if shared_bus:  # four prosumers at one bus: the injection adds three terms there
        pros.loc[pros.index[:4], "bus"] = pros["bus"].iloc[0]
    dso = replace(dso, prosumers=pros)
    ctx = prepare(replace(rts, dsos=(dso,)), dso, participation="all")
    hours = pd.Index([12, 13, 14, 15, 16, 17, 18, 19, 20], name="hour")  # nine: pairwise sums
    req = pd.Series(rng.uniform(0.1, 1.0, len(hours)) * dso.n_feeders * 0.5, index=hours)
    return DCPProblem(ctx, req, 50.0, DCPOptions(**opts), blocks=6)


def _numpy(pr: DCPProblem, X: np.ndarray):
    fused, pr._fused = pr._fused, None
    try:
        return pr.evaluate(X)
    finally:
        pr._fused = fused


@pytest.mark.parametrize(
    ("seed", "shared_bus", "opts"),
    [
        (0, False, {}),
        (1, True, {}),
        (2, False, {"mode": "b"}),
        (3, False, {"budget": False}),
        (4, True, {"efficiency": False}),
        (5, False, {"budget": False, "efficiency": False}),
        (6, False, {"weight": 0.0, "bounds": (0.2, 3.0)}),
    ],
)
def test_fused_evaluation_equals_the_numpy_form(rts, seed, shared_bus, opts):
    pr = _problem(rts, seed, shared_bus, **opts)
    assert pr.has_decisions
    assert fusable(pr)
    assert pr._fused is not None
    rng = np.random.default_rng(seed)
    X = rng.uniform(pr.lower, pr.upper, (37, len(pr.lower)))
    X[0] = pr.x0
    X[1] = X[2]  # a repeated individual: its loads are solved once
    X[3, : len(X[3]) // 2] = 1.0  # some factors at 1: block ends repeat across individuals
    ref = _numpy(pr, X)
    F, G = pr._fused(X)
    assert F.tobytes() == ref.F.tobytes()
    if ref.G is None:
        assert G is None
    else:
        assert G is not None
        assert G.tobytes() == ref.G.tobytes()
    one = pr.evaluate(X[4])  # a single vector, as minimize may pass
    assert one.F.tobytes() == ref.F[4:5].tobytes()


def test_other_problems_take_the_numpy_form(rts):
    pr = _problem(rts, 0, price="pay_as_bid")
    assert not fusable(pr)
    assert pr._fused is None
    assert pr.evaluate(pr.x0).F.shape == (1, 1)


def test_a_power_flow_that_does_not_converge_raises(rts):
    pr = _problem(rts, 0)
    crushing = FusedDCP(_scaled_loads(pr, 1e4))
    with pytest.raises(PowerFlowError, match="did not converge"):
        crushing(pr.x0[None, :])


def _scaled_loads(pr: DCPProblem, factor: float) -> DCPProblem:
    """``pr`` with its day-ahead loads scaled (beyond the feeder's loadability)."""
    pr.p = pr.p * factor
    return pr
