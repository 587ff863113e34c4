"""The DSO coefficient problem on the exact AC model of the radial feeder, as an NLP for a
local solver (``models/dcp_exact.md`` X13–X16). A pure builder: never solves
(``flexopt.methods.exact.solve_dcp_nlp`` does)."""

from __future__ import annotations

import pyomo.environ as pyo

from flexopt.dso.dcp import DCPProblem
from flexopt.dso.exact import add_factors, add_lower_level_kkt
from flexopt.market.distflow import add_branch_flow

__all__ = ["build_dcp_nlp"]


def build_dcp_nlp(problem: DCPProblem, eps: float = 1e-7) -> pyo.ConcreteModel:
    """The DCP on the exact AC model of the radial feeder, as an NLP for a local solver (X13–X16).

    Branch-flow (DistFlow) equations in per unit — exact for a radial feeder without shunts
    (Baran & Wu 1989; Farivar & Low 2013, doi:10.1109/TPWRS.2013.2255317) — with branch flows
    ``P_k, Q_k``, squared currents ``ℓ_k`` and squared voltages ``v_j``::

        P_k = p_c − Σ_{i at c} u_i + Σ_{m child of c} P_m + r_k ℓ_k                  (X13)
        Q_k = q_c + Σ_{m child of c} Q_m + x_k ℓ_k
        v_c = v_π − 2 (r_k P_k + x_k Q_k) + (r_k² + x_k²) ℓ_k                         (X14)
        ℓ_k v_π = P_k² + Q_k²                                                        (X15)

    the lower level by its KKT conditions with the bilinear stationarity of mode ``"ab"``, and
    complementarity by the Scholtes relaxation ``μ⁻ u ≤ ε``, ``μ⁺ (Ū − u) ≤ ε`` (X16). Losses
    ``Σ_k r_k ℓ_k`` are the AC losses; the objective (C6) uses the AC evaluator's
    normalizations. The budget (C7) is imposed at the design point only (one AC feeder model
    per block boundary would multiply the model's size by ``K``); the AC evaluator checks the
    result at every boundary. Nonconvex: a local solver returns a local optimum, started from
    the AC power flow at ``x⁰``.
    """
    pr = problem
    f = pr.ctx.feeder
    m = pyo.ConcreteModel(name="dcp_nlp")
    T, n = len(pr.hours), pr.n
    m.T, m.I = pyo.RangeSet(0, T - 1), pyo.RangeSet(0, n - 1)
    a, b = pr.a, pr.b
    bus_of = pr.ctx.bus_pos
    # start: the AC power flow at x⁰
    x0 = pr.values(pr.x0[None, :])
    u0 = x0.u_mw[0]
    pf = f.power_flow(pr.p - u0 @ pr.incidence, pr.q_mvar)

    add_factors(m, pr)  # (X1): the screened prosumers' factors, 1 for the others
    m.u = pyo.Var(
        m.I,
        m.T,
        bounds=lambda _m, i, t: (0.0, float(pr.u_max[t, i])),
        initialize=lambda _m, i, t: float(u0[t, i]),
    )
    m.lam = pyo.Var(m.T, initialize=lambda _m, t: float(x0.price_eur_per_mwh[0, t]))
    m.mu_lo = pyo.Var(m.I, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.mu_hi = pyo.Var(m.I, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    at_bus = {j: [i for i in range(n) if bus_of[i] == j] for j in range(f.n_bus)}
    add_branch_flow(
        m, f, pr.p, pr.q_mvar, lambda j, t: sum(m.u[i, t] for i in at_bus[j]), start=pf
    )  # (X13–X15)
    add_lower_level_kkt(m, pr, pr.q)  # (X4–X5), bilinear in mode "ab"
    m.eps = pyo.Param(initialize=eps, mutable=True, doc="Scholtes relaxation")
    m.ineq_comp_lo = pyo.Constraint(
        m.I, m.T, rule=lambda _m, i, t: m.mu_lo[i, t] * m.u[i, t] <= m.eps
    )  # (X16)
    m.ineq_comp_hi = pyo.Constraint(
        m.I, m.T, rule=lambda _m, i, t: m.mu_hi[i, t] * (float(pr.u_max[t, i]) - m.u[i, t]) <= m.eps
    )
    dt, w = pr.ctx.dt_h, pr.options.weight
    f_loss = dt * sum(m.loss_mw[t] for t in m.T)
    f_price = dt * sum(float(pr.q[t]) * m.lam[t] for t in m.T)
    m.obj = pyo.Objective(expr=w * f_loss / pr.f_loss0 + (1 - w) * f_price / pr.f_price0)
    if pr.options.budget:  # (C7) at the design point, with the settlement's payments
        m.pay = pyo.Var(m.I, m.T, domain=pyo.NonNegativeReals)
        m.ineq_pay_cost = pyo.Constraint(
            m.I, m.T, rule=lambda _m, i, t: m.pay[i, t] >= a[i] * m.u[i, t] ** 2 + b[i] * m.u[i, t]
        )
        m.ineq_pay_price = pyo.Constraint(
            m.I, m.T, rule=lambda _m, i, t: m.pay[i, t] >= m.lam[t] * m.u[i, t]
        )
        m.ineq_budget = pyo.Constraint(
            m.T,
            rule=lambda _m, t: (
                float(pr.q[t]) * m.lam[t]
                + pr.loss_price * (float(pr.loss_da[t]) - m.loss_mw[t])
                - sum(m.pay[i, t] for i in m.I)
                >= 0
            ),
        )
    return m
