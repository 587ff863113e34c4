"""Exact speed-ups of market stages, each against its previous form in the same run.

    python -m benchmarks.stages [--dsos 100] [--prosumers 10] [--seed 0]

On ``flexopt generate --transmission case300 --feeder case69 --seed 0`` (100 DSOs × 10 by
default; ``--seed`` picks another generated instance):

- S1 (``models/day_ahead.md``): the 24-hour QP in one HiGHS call vs one QP per hour (what
  ``flexopt.run.tso.day_ahead`` does); largest dispatch difference.
- S3 (``models/requirement.md``, K6): the requirement LP with every line-hour row vs only the
  rows some declared capacity can reach; largest requirement difference.
- S4 (``models/loss_allocation.md``, L2/L2a): marginal loss coefficients of every DSO's
  day-ahead power flow by central differences (step 1e-4 MW) vs the implicit-function form;
  largest difference. And the implicit form's adjoint by the dense real solve (the form
  before, kept as the tests' reference) vs the solve along the tree (``grid/_mlf.py``).
- The run summary's dispatch on the centralized model (Z1, ``dispatch_by_dso``): a
  ``pivot_table`` per DSO vs the numpy scatter, on the centralized QP's dispatch; largest
  difference.
- Centralized market (``models/centralized.md``, Z6–Z9): build + HiGHS solve of the common
  QP with a LinDistFlow flow variable per branch and voltage variables (the previous form,
  kept below) vs one flexible flow per group of branches carrying the same prosumers
  (``add_lindistflow``); largest dispatch difference.

Each timing is the best of 3 calls. Prints a Markdown table; writes ``results/stages.csv``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from benchmarks._common import machine, write_csv


def _best(fn: Callable[[], object], repeats: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _lindistflow_with_flows(b, feeder, p_mw, q_mvar, incidence, vm_limits_pu, u_max_mw):
    """The centralized QP's feeder in its previous form (Z6–Z9 with flow and voltage
    variables and equality rows), kept here as the baseline of the grouped form."""
    import pyomo.environ as pyo

    from flexopt.grid.lindistflow import LinDistFlow

    K, n = feeder.n_branch, incidence.shape[0]
    kids = {j: [k for k, par in enumerate(feeder.parent) if par == j] for j in range(feeder.n_bus)}
    at_bus = {j: [i for i in range(n) if incidence[i, j]] for j in range(feeder.n_bus)}
    _, Q, v0 = LinDistFlow(feeder).point(p_mw, q_mvar)
    r_ohm = feeder.r_pu * feeder.vn_kv**2 / feeder.base_mva
    v0_kv2 = (feeder.vn_kv * feeder.v_root_pu) ** 2
    lo2, hi2 = vm_limits_pu[0] ** 2, vm_limits_pu[1] ** 2
    b.K = pyo.RangeSet(0, K - 1)
    b.P = pyo.Var(b.K, b.T)

    def eq_flow(_b, k, t):
        c = int(feeder.child[k])
        out = b.P[k, t] - sum(b.P[m, t] for m in kids[c]) + sum(b.u[i, t] for i in at_bus[c])
        return out == float(p_mw[t, c])

    b.eq_flow = pyo.Constraint(b.K, b.T, rule=eq_flow)
    b.loss_mw = pyo.Expression(
        b.T,
        rule=lambda _b, t: (
            sum(float(r_ohm[k]) * (b.P[k, t] ** 2 + float(Q[t, k]) ** 2) for k in range(K)) / v0_kv2
        ),
    )
    _, _, v_top = LinDistFlow(feeder).point(p_mw - u_max_mw @ incidence, q_mvar)
    if (v_top <= np.maximum(hi2, v0) + 1e-12).all():
        return
    b.v = pyo.Var(
        range(feeder.n_bus),
        b.T,
        bounds=lambda _b, j, t: (min(lo2, v0[t, j]), max(hi2, v0[t, j])),
    )
    for t in b.T:
        b.v[feeder.root, t].fix(feeder.v_root_pu**2)

    def eq_voltage(_b, k, t):
        r, x, s = float(feeder.r_pu[k]), float(feeder.x_pu[k]), feeder.base_mva
        c, par = int(feeder.child[k]), int(feeder.parent[k])
        return b.v[c, t] - b.v[par, t] + 2 * r / s * b.P[k, t] == -2 * x / s * float(Q[t, k])

    b.eq_voltage = pyo.Constraint(b.K, b.T, rule=eq_voltage)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsos", type=int, default=100)
    ap.add_argument("--prosumers", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0, help="generator seed")
    args = ap.parse_args(argv)

    import flexopt as fx
    import flexopt.market.lines as lines_mod
    import flexopt.market.requirement_lp as requirement_lp_mod
    from flexopt.dso.context import declared_capacity, feeder_net_load, prepare
    from flexopt.generate import generate
    from flexopt.grid.build import feeder_from_data
    from flexopt.grid.loss_allocation import _marginal_dense_factors, marginal_loss_factors
    from flexopt.market.day_ahead import DayAheadData, build_day_ahead, read_day_ahead
    from flexopt.outcome import MarketBase
    from flexopt.run import tso as pl
    from flexopt.run.centralized import centralized_data
    from flexopt.solve import solve

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = generate(
            "case300", args.dsos, "case69", args.prosumers, args.seed, Path(tmp) / "inst"
        )
        inst = fx.load_instance(path)

    # S1
    gens, demand = inst.transmission.generators, inst.forecast_load_mw().sum(axis=1)

    def whole_day():
        m = build_day_ahead(DayAheadData(gens, demand, inst.dt_h))
        return read_day_ahead(m, solve(m).duals)

    t_old, old = _best(whole_day)
    t_new, new = _best(lambda: pl.day_ahead(inst))
    rows.append(
        (
            "S1 day-ahead",
            "24-hour QP",
            "24 hourly QPs",
            t_old,
            t_new,
            float(np.abs(old.p_mw.to_numpy() - new.p_mw.to_numpy()).max()),
            "MW",
        )
    )

    # S3, at the run's own congested hours and declared capacities
    da = new
    model = pl.plf_model(inst, da)
    plf, cong = pl.congestion(inst, model, "analytic")
    hours = pd.Index(sorted(cong.loc[cong["congested"], "hour"].unique()), name="hour")
    ctxs = [prepare(inst, d) for d in inst.dsos]
    capacity = pd.concat({c.dso.id: declared_capacity(c, hours) for c in ctxs}, axis=1)
    dso_bus = {d.id: d.bus for d in inst.dsos}

    def requirement():
        return pl.requirement(inst, model, plf, hours, capacity, dso_bus)[0]

    def keep_all(mean, *_):
        return np.ones_like(mean, dtype=bool)

    # the run builds S3 as arrays (market/requirement_lp.py), the models through lines.py
    with (
        mock.patch.object(lines_mod, "binding_candidates", keep_all),
        mock.patch.object(requirement_lp_mod, "binding_candidates", keep_all),
    ):
        t_old, old = _best(requirement)
    t_new, new = _best(requirement)
    rows.append(
        (
            "S3 requirement",
            "every line-hour row",
            "K6 presolve",
            t_old,
            t_new,
            float(np.abs(old.to_numpy() - new.to_numpy()).max()),
            "MW",
        )
    )

    # S4
    pfs = []
    for d in inst.dsos:
        feeder = feeder_from_data(d.feeder)
        p, q = feeder_net_load(inst, d)
        pfs.append(feeder.power_flow(p, q))
    t_old, old = _best(lambda: [marginal_loss_factors(pf, step_mw=1e-4)[0] for pf in pfs])
    t_new, new = _best(lambda: [marginal_loss_factors(pf)[0] for pf in pfs])
    diff = max(float(np.abs(a - b).max()) for a, b in zip(old, new, strict=True))
    rows.append(
        (
            "S4 marginal loss factors",
            "central differences",
            "implicit (L2a)",
            t_old,
            t_new,
            diff,
            "MW/MW",
        )
    )

    t_dense, dense = _best(lambda: [_marginal_dense_factors(pf)[0] for pf in pfs])
    diff = max(float(np.abs(a - b).max()) for a, b in zip(dense, new, strict=True))
    rows.append(
        (
            "S4 marginal loss factors",
            "implicit, dense solve",
            "implicit, along the tree",
            t_dense,
            t_new,
            diff,
            "MW/MW",
        )
    )

    # centralized market (the QP only), at the run's congested hours
    import flexopt.market.centralized as central_mod

    base = MarketBase(inst, da, model, plf, cong, hours, tuple(ctxs))
    cdata = centralized_data(base)

    def central_qp():
        m = central_mod.build_centralized(cdata)
        r = solve(m)
        if not r.ok:
            raise RuntimeError(f"centralized QP: {r.status.value} ({r.message})")
        return central_mod.read_centralized(m, cdata, r.duals)

    t_new, new = _best(central_qp)
    before = "one flow per branch"
    with mock.patch.object(central_mod, "add_lindistflow", _lindistflow_with_flows):
        try:
            t_old, old = _best(central_qp)
            diff = max(float(np.abs(old.u_mw[d] - new.u_mw[d]).max()) for d in new.u_mw)
        except RuntimeError as err:  # HiGHS's QP solver can fail on the flow form
            t_old, diff = np.nan, np.nan
            before = f"one flow per branch — failed: {err}"
    rows.append(("centralized QP", before, "one flow per prosumer group", t_old, t_new, diff, "MW"))

    # the run summary's dispatch on the centralized model (Z1), here of the QP's dispatch
    from types import SimpleNamespace

    from flexopt.run.centralized import dispatch_by_dso

    dispatch = []
    for area in cdata.areas:
        u = new.u_mw[area.dso_id]
        tab = pd.DataFrame(
            {
                "hour": np.repeat(cdata.hours.to_numpy(), u.shape[1]),
                "prosumer_id": np.tile(area.prosumer_id.to_numpy(), len(cdata.hours)),
                "u_mw": u.ravel(),
            }
        )
        dispatch.append(SimpleNamespace(dispatch=tab))

    def pivoted():  # the form before: a pivot table per DSO
        out = {}
        for area, r in zip(cdata.areas, dispatch, strict=True):
            tab = r.dispatch.pivot_table(index="hour", columns="prosumer_id", values="u_mw")
            u = tab.reindex(index=cdata.hours, columns=area.prosumer_id, fill_value=0.0)
            out[area.dso_id] = u.fillna(0.0).to_numpy()
        return out

    t_old, old = _best(pivoted)
    t_new, new_u = _best(lambda: dispatch_by_dso(cdata, tuple(dispatch)))
    diff = max(float(np.abs(old[d] - new_u[d]).max()) for d in old)
    rows.append(
        ("summary: dispatch on Z1", "pivot per DSO", "numpy scatter", t_old, t_new, diff, "MW")
    )

    df = pd.DataFrame(
        rows, columns=["stage", "before", "after", "before_s", "after_s", "max_difference", "unit"]
    )
    write_csv(df, "stages")
    print(
        f"# Stage speed-ups, {machine()}, case300, {args.dsos} DSOs × {args.prosumers} "
        f"prosumers, seed {args.seed}, {len(hours)} congested hours\n"
    )
    print("| stage | before | after | before (s) | after (s) | speed-up | max difference |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in df.itertuples():
        ok = np.isfinite(r.before_s)
        before_s = f"{r.before_s:.3f}" if ok else "—"
        ratio = f"{r.before_s / r.after_s:.1f}×" if ok else "—"
        diff = f"{r.max_difference:.1e} {r.unit}" if ok else "—"
        print(
            f"| {r.stage} | {r.before} | {r.after} | {before_s} | {r.after_s:.3f} | {ratio} | "
            f"{diff} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
