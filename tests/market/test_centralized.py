"""The centralized (common TSO–DSO) market: hand-derived optima and duals, consistency with
the AC power flow, SCIP's global optimum, and first-best against every bilevel method."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
from pyomo.repn import generate_standard_repn

import flexopt as fx
import flexopt.market.centralized as central_mod
import flexopt.market.distflow as distflow_mod
from flexopt.dso.flexibility import energy_headroom_mwh
from flexopt.generate import generate
from flexopt.grid.lindistflow import LinDistFlow
from flexopt.market.centralized import (
    CentralizedData,
    DistributionArea,
    build_centralized,
    build_centralized_pricing,
    dispatch_cost,
    has_unresolved_overload,
    read_centralized,
)
from flexopt.market.distflow import dispatch_scale
from flexopt.market.lines import binding_candidates
from flexopt.market.pricing import read_supporting_duals
from flexopt.run.centralized import solve_centralized
from flexopt.run.options import CentralizedConfig
from flexopt.solve import solve
from tests.market.test_pricing import short_hour_leak


def _tiny(loss_price: float, n_feeders: int = 10) -> CentralizedData:
    """Root 0 – bus 1 – bus 2 (1 Ω each, 10 kV), loads 1 and 2 MW; a prosumer at buses 1 and
    2 (a = 1 €/MW²h, b = 10 €/MWh); one line at 110 MW with a 100 MW limit, −0.5 MW per MW."""
    feeder = fx.grid.Feeder.from_branches(
        [0, 1], [1, 2], [1.0, 1.0], [0.0, 0.0], vn_kv=10.0, root=0
    )
    area = DistributionArea(
        dso_id="D",
        bus=1,
        n_feeders=n_feeders,
        feeder=feeder,
        p_mw=np.array([[0.0, 1.0, 2.0]]),
        q_mvar=np.zeros((1, 3)),
        prosumer_id=pd.Index(["P1", "P2"]),
        bus_pos=np.array([1, 2]),
        a=np.array([1.0, 1.0]),
        b=np.array([10.0, 10.0]),
        u_max_mw=np.array([[5.0, 5.0]]),
        energy_mwh=np.array([[100.0, 100.0]]),
    )
    hours = pd.Index([14], name="hour")
    return CentralizedData(
        mean_flow_mw=pd.DataFrame([[110.0]], index=hours, columns=["L"]),
        limit_mw=pd.DataFrame([[100.0]], index=hours, columns=["L"]),
        sensitivity=np.array([[[-0.5]]]),
        areas=(area,),
        loss_price_eur_per_mwh=loss_price,
    )


def _solve(data: CentralizedData, ac: bool = False, solver: str = "highs"):
    """Solve and price as ``run/centralized.py::solve_centralized`` does: the solver's duals,
    or the least-payment supporting multipliers where overload is left unresolved (Z10)."""
    m = build_centralized(data, ac=ac)
    r = solve(m, solver)
    assert r.ok, r.message
    duals = r.duals
    if has_unresolved_overload(m):
        lp = build_centralized_pricing(m)
        assert solve(lp.model).ok
        duals = read_supporting_duals(lp)
    return read_centralized(m, data, duals), r


def test_without_loss_value_the_cheapest_offers_share_equally():
    """F ≥ 20 MW; identical offers split it, u = 1 MW per copy; λ = 2 a u + b = 12 €/MWh and
    the line's shadow price is λ / 0.5 = 24 €/MWh per MW."""
    res, _ = _solve(_tiny(0.0))
    np.testing.assert_allclose(res.u_mw["D"], [[1.0, 1.0]], atol=1e-6)
    assert res.accepted_mw.loc[14, "D"] == pytest.approx(20.0, abs=1e-6)
    assert res.price_eur_per_mwh.loc[14, "D"] == pytest.approx(12.0, abs=1e-5)
    assert res.line_price_eur_per_mwh.loc[14, "L"] == pytest.approx(24.0, abs=1e-4)
    assert res.flex_cost_eur == pytest.approx(10 * 2 * (1 + 10), abs=1e-5)


def test_loss_value_moves_dispatch_to_the_feeder_end():
    """π_loss = 100 €/MWh, losses (P₁² + P₂²)/100 MW: stationarity 2u₁ + 8 = 4u₂ + 4 = λ with
    u₁ + u₂ = 2 gives u = (2/3, 4/3) and λ = 28/3 €/MWh (hand-derived)."""
    data = _tiny(100.0)
    res, r = _solve(data)
    np.testing.assert_allclose(res.u_mw["D"], [[2 / 3, 4 / 3]], atol=1e-5)
    assert res.price_eur_per_mwh.loc[14, "D"] == pytest.approx(28 / 3, abs=1e-4)
    p1, p2 = 1.0, 2.0 - 4 / 3
    assert res.model_loss_mw["D"][0] == pytest.approx((p1**2 + p2**2) / 100, abs=1e-7)
    # the numpy scorer and the model agree on the model's own dispatch
    cost = dispatch_cost(data, res.u_mw)
    assert cost["social_cost_eur"] == pytest.approx(r.objective, rel=1e-9)


def test_insufficient_flexibility_is_reported_as_unresolved_overload():
    data = _tiny(0.0)
    area = replace(data.areas[0], u_max_mw=np.array([[0.5, 0.3]]))  # 8 MW of 20 MW
    res, r = _solve(replace(data, areas=(area,)))
    assert res.unresolved_mw.loc[14, "L"] == pytest.approx(110 - 100 - 0.5 * 8, abs=1e-6)
    # the solver's dual carries the 10⁵ €/MWh penalty; both prosumers are taken in full, so
    # the least supporting price is the dearer marginal offer, 2 · 0.5 + 10 = 11 €/MWh
    assert max(r.duals.values()) > 1e4
    assert res.price_eur_per_mwh.loc[14, "D"] == pytest.approx(11.0, abs=1e-4)
    assert res.line_price_eur_per_mwh.loc[14, "L"] == pytest.approx(22.0, abs=1e-3)


def test_short_hour_penalty_does_not_leak_through_the_energy_rows():
    """``short_hour_leak`` (tests/market/test_pricing.py): hour 1 is short, hour 2 is not
    but shares A's energy row with it. The solver's duals price hour 1 at 0.5 M and carry
    it into hour 2 through A's energy dual (λ_A2 = 11 + (0.5 M − 11) = 0.5 M), which a cap
    in the short hour alone would miss; the market pays the least supporting prices:
    hour 1 12 €/MWh (B's marginal cost, both DSOs at −0.5), hour 2 A's own 11 €/MWh."""
    data = short_hour_leak()
    m = build_centralized(data)
    r = solve(m)
    assert read_centralized(m, data, r.duals).price_eur_per_mwh.loc[2, "A"] == pytest.approx(
        5e4, rel=1e-6
    )
    res = solve_centralized(data, CentralizedConfig())
    np.testing.assert_allclose(res.u_mw["A"], [[0.5], [0.5]], atol=1e-6)
    np.testing.assert_allclose(res.u_mw["B"], [[1.0], [0.0]], atol=1e-6)
    assert res.price_eur_per_mwh.loc[1].tolist() == pytest.approx([12.0, 12.0], abs=1e-4)
    assert res.price_eur_per_mwh.loc[2, "A"] == pytest.approx(11.0, abs=1e-4)
    assert np.isnan(res.price_eur_per_mwh.loc[2, "B"])


def test_voltage_band_limits_the_withdrawals():
    """LinDistFlow voltages are v₁ = 1 − 0.02·3 = 0.94 and v₂ = 0.90 pu² without flexibility;
    a withdrawal u at either bus lifts v₁ by 0.02 u (Z7). With the band's top at 0.95 pu² the
    copy may withdraw 0.5 MW in all (not the 2 MW the line needs): 0.25 MW each, 5 MW of
    relief, 110 − 100 − 0.5 · 5 = 7.5 MW left unresolved, v₁ exactly at the top (Z8)."""
    data = replace(_tiny(0.0), vm_limits_pu=(0.9, np.sqrt(0.95)))
    res, _ = _solve(data)
    np.testing.assert_allclose(res.u_mw["D"], [[0.25, 0.25]], atol=1e-6)
    assert res.unresolved_mw.loc[14, "L"] == pytest.approx(7.5, abs=1e-6)
    area = data.areas[0]
    _, _, v = LinDistFlow(area.feeder).point(
        area.p_mw - res.u_mw["D"] @ area.incidence, area.q_mvar
    )
    np.testing.assert_allclose(v[0], [1.0, 0.95, 0.915], atol=1e-7)


def test_loss_expression_equals_the_lindistflow_losses_at_any_dispatch():
    """Branches carrying the same prosumers share one flexible flow (Z6): with the dispatch
    fixed at random values, the model's loss expression (Z9) equals Σ r (P² + Q²)/V₀² from the
    flows of :meth:`LinDistFlow.point`, on case33bw with prosumers sharing buses."""
    feeder = fx.grid.Feeder.from_pandapower(fx.grid.case33bw())
    rng = np.random.default_rng(5)
    bus_pos = rng.choice(np.arange(1, feeder.n_bus), size=12)
    T = 3
    area = DistributionArea(
        dso_id="D",
        bus=1,
        n_feeders=1,
        feeder=feeder,
        p_mw=feeder.p_base_mw * rng.uniform(0.5, 1.5, (T, 1)),
        q_mvar=feeder.q_base_mvar * rng.uniform(0.5, 1.5, (T, 1)),
        prosumer_id=pd.Index([f"P{i}" for i in range(12)]),
        bus_pos=bus_pos,
        a=np.ones(12),
        b=np.ones(12),
        u_max_mw=np.full((T, 12), 0.1),
        energy_mwh=np.full((T, 12), 10.0),
    )
    hours = pd.Index([1, 2, 3], name="hour")
    data = CentralizedData(
        mean_flow_mw=pd.DataFrame(np.zeros((T, 1)), index=hours, columns=["L"]),
        limit_mw=pd.DataFrame(np.full((T, 1), 100.0), index=hours, columns=["L"]),
        sensitivity=np.zeros((T, 1, 1)),
        areas=(area,),
        loss_price_eur_per_mwh=50.0,
    )
    m = build_centralized(data)
    assert len(m.area["D"].Z) <= 2 * 12 - 1 < feeder.n_branch
    r_ohm = feeder.r_pu * feeder.vn_kv**2 / feeder.base_mva
    scale = dispatch_scale(area.u_max_mw)
    for _ in range(3):
        u = rng.uniform(0.0, 0.1, (T, 12))
        for (i, t), var in m.area["D"].u_share.items():
            var.fix(float(u[t, i] / scale[i]))
        assert solve(m).ok  # the flows follow from the fixed dispatch
        P, Q, _ = LinDistFlow(feeder).point(area.p_mw - u @ area.incidence, area.q_mvar)
        want = (r_ohm * (P**2 + Q**2)).sum(axis=1) / (feeder.vn_kv * feeder.v_root_pu) ** 2
        got = [pyo.value(m.area["D"].loss_mw[t]) for t in range(T)]
        np.testing.assert_allclose(got, want, rtol=1e-10)


def _two_voltage_levels() -> CentralizedData:
    """An MV feeder (12.66 kV, 12 copies, 0.1 MW batteries at ~10² €/MW²h) and an LV one
    (0.4 kV, 69 copies) with a microgrid lumped at its point of connection: five ~10 kW
    batteries at ~10³ €/MW²h on one bus — DSO2's view on the instance of
    :func:`test_lv_microgrid_instance_solves`. The line wants ~3.3 MW in each hour."""

    def area(dso_id, vn_kv, r_ohm, bus_pos, a, u_max, n, load):
        nb, k = len(r_ohm) + 1, len(a)
        feeder = fx.grid.Feeder.from_branches(
            range(nb - 1), range(1, nb), r_ohm, [0.0] * len(r_ohm), vn_kv=vn_kv, root=0
        )
        return DistributionArea(
            dso_id=dso_id,
            bus=1,
            n_feeders=n,
            feeder=feeder,
            p_mw=np.tile([0.0] + [load] * (nb - 1), (2, 1)),
            q_mvar=np.zeros((2, nb)),
            prosumer_id=pd.Index([f"{dso_id}{i}" for i in range(k)]),
            bus_pos=np.array(bus_pos),
            a=np.array(a),
            b=np.linspace(45.0, 65.0, k),
            u_max_mw=np.tile(u_max, (2, 1)),
            energy_mwh=np.tile(1.5 * np.array(u_max), (2, 1)),  # binds in hour 2
        )

    mv = area("MV", 12.66, [0.001, 0.5, 0.5], [2, 3], [100.0, 60.0], [0.12, 0.1], 12, 0.5)
    lv = area(
        "LV",
        0.4,
        [0.05, 0.1],
        [1, 2, 2, 2, 2, 2],
        [1500.0, 900.0, 1100.0, 1800.0, 1000.0, 1600.0],
        [0.014, 0.006, 0.01, 0.012, 0.008, 0.013],
        69,
        0.01,
    )
    hours = pd.Index([13, 14], name="hour")
    return CentralizedData(
        mean_flow_mw=pd.DataFrame([[101.5], [101.0]], index=hours, columns=["L"]),
        limit_mw=pd.DataFrame([[100.0], [100.0]], index=hours, columns=["L"]),
        sensitivity=np.full((2, 1, 2), [-0.5, -0.4]),
        areas=(mv, lv),
        loss_price_eur_per_mwh=50.0,
    )


def _spread(m: pyo.ConcreteModel) -> tuple[float, float]:
    """max / min of the nonzero |coefficients| of the objective's quadratic terms and of the
    constraint rows."""
    h = np.abs(generate_standard_repn(m.obj.expr, quadratic=True).quadratic_coefs)
    a = np.abs(
        [
            c
            for con in m.component_data_objects(pyo.Constraint, active=True)
            for c in generate_standard_repn(con.body).linear_coefs
        ]
    )
    h, a = h[h > 0], a[a > 0]
    return float(h.max() / h.min()), float(a.max() / a.min())


def test_dispatch_in_shares_of_headroom_conditions_the_qp(monkeypatch):
    """In MW the LV batteries' offers (2 n a ~ 10⁵) and the MV feeder's losses put the QP's
    Hessian over 5 orders of magnitude and its rows over ~400 (n_d = 69 on the interface) —
    on such a QP HiGHS's active-set solver stopped "optimal" with primal infeasibilities
    (:func:`test_lv_microgrid_instance_solves`). In shares of each prosumer's headroom the
    variables lie in [0, 1], the Hessian spans ~10³, the rows ~10, and the dispatch and the
    prices are those of the MW model."""
    data = _two_voltage_levels()
    m = build_centralized(data)
    for d in m.D:
        bounds = np.array([v.bounds for v in m.area[d].u_share.values()])
        assert bounds.min() == 0.0
        assert bounds.max() == 1.0
        rows = m.area[d].eq_flow.values()
        coefs = [c for r in rows for c in generate_standard_repn(r.body).linear_coefs]
        assert max(np.abs(coefs)) == pytest.approx(1.0)  # the flow's own share
    hessian, matrix = _spread(m)
    assert hessian < 1e4
    assert matrix < 1e2
    res = solve_centralized(data, CentralizedConfig())

    for mod in (central_mod, distflow_mod):  # the same model in MW
        monkeypatch.setattr(mod, "dispatch_scale", lambda u: np.ones(u.shape[1]))
    hessian_mw, matrix_mw = _spread(build_centralized(data))
    assert hessian_mw > 1e4
    assert matrix_mw > 1e2
    mw = solve_centralized(data, CentralizedConfig())
    for d in res.u_mw:
        np.testing.assert_allclose(res.u_mw[d], mw.u_mw[d], atol=1e-8)
    lv = res.u_mw["LV"] / data.areas[1].u_max_mw
    assert ((lv > 0.01) & (lv < 0.99)).any()  # batteries between their bounds
    np.testing.assert_allclose(res.price_eur_per_mwh, mw.price_eur_per_mwh, rtol=1e-7)
    np.testing.assert_allclose(res.line_price_eur_per_mwh, mw.line_price_eur_per_mwh, rtol=1e-7)


@pytest.mark.skipif(
    importlib.util.find_spec("simbench") is None, reason="simbench (optional extra) not installed"
)
def test_lv_microgrid_instance_solves(tmp_path):
    """``flexopt generate --transmission case118 --dsos 4 --feeder
    case69,simbench:1-LV-semiurb4--0-sw --prosumers 8 --seed 3 --microgrids 1``: with the
    dispatch in MW (Hessian 7e-3 … 5e5) HiGHS 1.16 stopped with "QP solver claims
    optimality, but with primal infeasibilities" (5.7e-3 MW on DSO2's interface) and the
    centralized run failed."""
    feeders = "case69,simbench:1-LV-semiurb4--0-sw"
    inst = fx.load_instance(generate("case118", 4, feeders, 8, 3, tmp_path / "i", microgrids=1))
    assert any(len(d.microgrids) for d in inst.dsos)
    res = fx.run_market(inst, "centralized", seed=0)
    central = res.outcome.result
    assert central.accepted_mw.to_numpy().sum() > 0
    s = res.summary
    assert s["social_cost_lindistflow_eur"] == pytest.approx(
        central.flex_cost_eur + central.loss_value_eur, rel=1e-8
    )


def test_energy_headroom_is_the_lowest_later_level():
    """E₀ = 1 MWh, η = 0.9, baseline discharges 0.18 MW in hour 2 (0.2 MWh drawn), so the
    level is 1, 0.8, 0.8, 0.8 at the ends of hours 1–4; with flexibility wanted in hours 2 and
    4, at most 0.9 · 0.8 MWh can be delivered by hour 2 and by hour 4."""
    pros = pd.DataFrame(
        {"e_max_mwh": [2.0], "soc_init_pu": [0.5], "efficiency": [0.9]}, index=["P"]
    )
    base = pd.DataFrame({"P": [0.0, 0.18, 0.0, 0.0]}, index=pd.Index([1, 2, 3, 4], name="hour"))
    cap = energy_headroom_mwh(pros, base, pd.Index([2, 4]), 1.0)
    np.testing.assert_allclose(cap, [[0.72], [0.72]])
    base2 = base.assign(P=[0.0, 0.0, 0.45, 0.0])  # 0.5 MWh drawn in hour 3
    np.testing.assert_allclose(
        energy_headroom_mwh(pros, base2, pd.Index([2, 4]), 1.0), [[0.45], [0.45]]
    )
    with pytest.raises(ValueError, match="sorted"):
        energy_headroom_mwh(pros, base, pd.Index([4, 2]), 1.0)


def test_binding_candidates_drop_only_limits_no_flexibility_can_reach():
    mean = np.array([[50.0, 95.0, -95.0]])
    limit = np.full((1, 3), 100.0)
    h = np.array([[[0.1], [0.1], [-0.1]]])  # MW of flow per MW of flexibility
    # 10 MW moves the flows to 51, 96, −96 at most: no limit can bind
    assert not binding_candidates(mean, limit, h, np.array([[10.0]])).any()
    # 60 MW could push the second to 101 and the third to −101
    keep = binding_candidates(mean, limit, h, np.array([[60.0]]))
    assert keep.tolist() == [[False, True, True]]


# --------------------------------------------------------------------- bundled instance
@pytest.fixture(scope="module")
def runs():
    inst = fx.load_instance("instances/rts24-3dso")
    out = {m: fx.run_market(inst, m, seed=0) for m in ("none", "mlf", "wca", "centralized")}
    out["centralized_ac"] = fx.run_market(inst, "centralized", seed=0, central_model="ac")
    return out


def test_centralized_is_first_best_on_its_own_model(runs):
    """No bilevel dispatch beats the common market on the common market's objective, and
    both relieve the same overload."""
    central = runs["centralized"].summary
    for m in ("none", "mlf", "wca"):
        s = runs[m].summary
        assert central["social_cost_lindistflow_eur"] <= s["social_cost_lindistflow_eur"] + 1e-6, m
        assert s["overload_mw_before"] == central["overload_mw_before"] > 0
        assert s["overload_mw_after"] == central["overload_mw_after"] == 0.0
    cres = runs["centralized"].outcome.result
    assert cres.flex_cost_eur + cres.loss_value_eur == pytest.approx(
        central["social_cost_lindistflow_eur"], rel=1e-8
    )


def test_day_ahead_voltages_outside_the_band_do_not_make_the_market_infeasible(runs):
    """case33bw sits at 0.91 pu at peak: the band (Z8) only forbids getting worse."""
    losses = runs["centralized"].tables["losses"]
    assert losses["vm_min_pu_before"].min() < 0.95
    assert (losses["vm_min_pu_after"] >= losses["vm_min_pu_before"] - 1e-12).all()


def test_ac_variant_matches_the_ac_power_flow_and_improves_the_ac_social_cost(runs):
    qp, ac = runs["centralized"], runs["centralized_ac"]
    cres = ac.outcome.result
    hours = ac.outcome.hours
    losses = ac.tables["losses"].set_index(["dso_id", "hour"])
    for d, model_loss in cres.model_loss_mw.items():
        pf_loss = losses.loc[d].loc[hours, "feeder_loss_mw_after"].to_numpy()
        np.testing.assert_allclose(model_loss, pf_loss, atol=1e-7)  # branch flow = our PF
    assert ac.summary["social_cost_eur"] <= qp.summary["social_cost_eur"] + 1e-6
    assert ac.summary["overload_mw_after"] == 0.0


def test_scip_certifies_the_local_ac_optimum(runs):
    """On one DSO and one hour, SCIP's global optimum of the AC model equals ripopt's."""
    data = runs["centralized_ac"].outcome.data
    area = data.areas[0]
    one = replace(
        data,
        mean_flow_mw=data.mean_flow_mw.iloc[:1],
        limit_mw=data.limit_mw.iloc[:1],
        sensitivity=data.sensitivity[:1, :, :1],
        areas=(
            replace(
                area,
                p_mw=area.p_mw[:1],
                q_mvar=area.q_mvar[:1],
                u_max_mw=area.u_max_mw[:1],
                energy_mwh=area.energy_mwh[:1],
            ),
        ),
    )
    _, local = _solve(one, ac=True, solver="ripopt")
    m = build_centralized(one, ac=True)
    glob = solve(m, "scip_direct", time_limit=120)
    assert glob.status.value == "optimal", glob.message
    assert local.objective == pytest.approx(glob.objective, rel=1e-5)


# ------------------------------------------------- a generated instance with a shortage
def _marginal_cost(data: CentralizedData, u_mw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``[T, n]`` per DSO: offer ``2 a u + b`` plus the loss value ``π_loss ∂P^loss/∂u`` of each
    prosumer at the dispatch, the LinDistFlow losses (Z9) differentiated by central
    differences (exact for a quadratic)."""
    out, h = {}, 1e-4
    for a in data.areas:
        ldf, u = LinDistFlow(a.feeder), u_mw[a.dso_id]
        ml = np.zeros_like(u)
        for i in range(u.shape[1]):
            step = np.zeros_like(u)
            step[:, i] = h
            up = ldf.loss_of_loads_mw(a.p_mw - (u + step) @ a.incidence, a.q_mvar)
            dn = ldf.loss_of_loads_mw(a.p_mw - (u - step) @ a.incidence, a.q_mvar)
            ml[:, i] = (up - dn) / (2 * h)
        out[a.dso_id] = 2 * a.a * u + a.b + data.loss_price_eur_per_mwh * ml
    return out


@pytest.fixture(scope="module")
def case30_short(tmp_path_factory):
    """``flexopt generate --transmission case30 --dsos 4 --feeder case33bw --prosumers 8
    --seed 0``: line_2 is left 0.155 MW over its limit in hours 13–14, and the batteries'
    energy rows (Z3) tie hour 15 to them."""
    inst = fx.load_instance(generate("case30", 4, "case33bw", 8, 0, tmp_path_factory.mktemp("c30")))
    return fx.run_market(inst, "centralized", seed=0)


def test_shortage_is_priced_by_the_dearest_offer_per_mw_of_relief(case30_short):
    """Only line_2 is priced. Hour 15 (resolved): every dispatched prosumer is limited by its
    energy row, so the least supporting line price is the dearest marginal cost, loss value
    included, per MW of relief, μ = max_{d,i} (2 a u + b + π_loss ∂P^loss/∂u)_i / |H_d|, and
    DSO d is paid |H_d| μ. Hours 13–14 (short, everything taken in full): the same with each
    prosumer's energy rent r_i = λ_{d,15} − c_{i,15} ≥ 0 added, what its energy earns in
    hour 15. The penalty sets nothing: the TSO pays ~1 100 € instead of ~54 000 €."""
    out = case30_short.outcome
    data, res = out.data, out.result
    short = res.unresolved_mw.sum(axis=1) > 0
    assert short.tolist() == [True, True, False]
    priced = res.line_price_eur_per_mwh.loc[:, res.line_price_eur_per_mwh.max() > 0]
    assert list(priced.columns) == ["line_2"]
    j = list(data.mean_flow_mw.columns).index("line_2")
    cost = _marginal_cost(data, res.u_mw)
    dsos = list(res.price_eur_per_mwh.columns)
    lam = res.price_eur_per_mwh.to_numpy()
    rent = {d: lam[2, k] - cost[d][2] for k, d in enumerate(dsos)}
    assert all((rent[d] >= -1e-5 * np.nanmax(lam)).all() for d in dsos)  # 1e-6 rows (K5a)
    for t in range(3):
        relief = -data.sensitivity[t, j, :]
        extra = {d: rent[d] if short.iloc[t] else 0.0 for d in dsos}
        mu = max(
            ((cost[d][t] + extra[d])[res.u_mw[d][t] > 1e-7]).max() / relief[k]
            for k, d in enumerate(dsos)
        )
        assert priced.iloc[t, 0] == pytest.approx(mu, rel=1e-5)
        np.testing.assert_allclose(lam[t], relief * mu, rtol=1e-5)
    offers = max(float((a.a * 2 * a.u_max_mw.max() + a.b).max()) for a in data.areas)
    assert np.nanmax(lam) < 1.5 * offers  # nothing near the 10⁵ €/MWh penalty
    s = case30_short.summary
    assert s["tso_cost_eur"] == pytest.approx(np.nansum(lam * res.accepted_mw.to_numpy()), rel=1e-6)
    assert s["tso_cost_eur"] < 1200.0


def test_dispatch_by_dso_scatters_each_hour_and_prosumer_like_a_pivot():
    """Any framework's dispatch on the centralized model's grid: the mean ``u_mw`` of each
    (hour, prosumer), 0 where none, rows of other hours or prosumers and NaN ignored —
    what ``pivot_table`` + ``reindex`` gave."""
    from types import SimpleNamespace

    from flexopt.run.centralized import dispatch_by_dso

    hours = pd.Index([3, 4, 5], name="hour")
    area = SimpleNamespace(dso_id="D", prosumer_id=pd.Index(["a", "b", "c"]))
    tab = pd.DataFrame(
        {
            "hour": [3, 3, 4, 4, 5, 9, 5],
            "prosumer_id": ["a", "b", "b", "b", "zz", "a", "c"],
            "u_mw": [0.1, 0.2, 0.3, 0.5, 9.0, 9.0, np.nan],
        }
    )
    data = SimpleNamespace(areas=(area,), hours=hours)
    got = dispatch_by_dso(data, (SimpleNamespace(dispatch=tab),))
    pivot = tab.pivot_table(index="hour", columns="prosumer_id", values="u_mw")
    want = pivot.reindex(index=hours, columns=area.prosumer_id, fill_value=0.0).fillna(0.0)
    np.testing.assert_array_equal(got["D"], want.to_numpy())
    np.testing.assert_array_equal(got["D"], [[0.1, 0.2, 0.0], [0.0, 0.4, 0.0], [0.0, 0.0, 0.0]])
