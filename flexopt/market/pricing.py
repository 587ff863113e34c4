"""Supporting prices: the least-payment KKT multipliers of a solved model
(``models/tso_market.md`` K5, ``models/centralized.md`` Z10).

A solved LP, QP or NLP ``min f(x) s.t. lb_c ≤ g_c(x) ≤ ub_c, x̲ ≤ x ≤ x̄`` with its variable
values loaded is supported at its point ``x*`` by every multiplier vector ``y`` of the
Lagrangian ``L = f + Σ_c y_c (g_c − rhs_c)`` that satisfies, for each variable ``v`` that is
active (in the objective or in an active constraint) and not held fixed,

    ∂f/∂v + Σ_c y_c ∂g_c/∂v − ν⁻_v + ν⁺_v = 0,   ν⁻_v ≥ 0 at x̲_v only, ν⁺_v ≥ 0 at x̄_v only   (K5a)

with ``y_c`` free for an equality, ``y_c ≥ 0`` for an inequality active at its upper bound,
``y_c ≤ 0`` at its lower bound and ``y_c = 0`` when it is inactive (activity within a
relative tolerance). The bound multipliers are folded into the rows: a variable at its lower
bound only gives ``∂f/∂v + Σ y ∂g/∂v ≥ 0``, at its upper bound only ``≤ 0``, at both none.
The price of a constraint is ``λ_c = ∂f/∂rhs_c = −y_c`` — the convention of
:attr:`flexopt.solve.SolveResult.duals` ("λ = ∂objective/∂rhs with constants on the
right-hand side"). Among the supporting multipliers the LP built here chooses

    min Σ_c w_c λ_c                                                                          (K5b)

(to minimize a payment ``Σ price · F · Δt`` with ``price = λ / Δt``, weigh ``λ_c`` by
``w_c = F``). Variables in ``fixed`` — the unresolved-overload slacks — get no row (K5a): they
are held at their solved values, so their penalty ``M`` is no multiplier's value. Variables
in ``saturated`` — the quantities dispatched in an hour left short of relief — are treated as
at an upper bound wherever they are above their lower bound:

    ∂f/∂v + Σ_c y_c ∂g_c/∂v ≤ 0    (taken in full: ν⁺_v ≥ 0 allowed)                       (K5c)

Without (K5c) a constraint that ties a short hour to others (a battery's energy, Z3) would
keep the short hour's penalty in the multipliers: the dispatch itself was chosen by it.

This module builds, it never solves; ``flexopt.run`` solves the LP with ``flexopt.solve``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap, ComponentSet
from pyomo.core.base.var import VarData
from pyomo.core.expr.calculus.derivatives import Modes, differentiate
from pyomo.repn import generate_standard_repn

from flexopt.market.lp import LinearProgram, csr

__all__ = [
    "MultiplierArrays",
    "MultiplierLP",
    "build_supporting_prices",
    "read_supporting_duals",
    "supporting_prices_lp",
]


@dataclass(frozen=True, eq=False)
class MultiplierLP:
    """The LP over the multipliers of a solved model (K5a–K5b).

    Attributes
    ----------
    model : ConcreteModel
        ``model.y[j]`` the Lagrange multiplier of ``constraints[active[j]]`` (``y`` in the
        convention ``L = f + Σ y (g − rhs)``), ``model.stationarity`` one row per free
        variable, ``model.obj`` (K5b).
    constraints : tuple
        Every active constraint data object of the solved model, in model order.
    column : tuple of int or None
        Position in ``model.y`` of each of ``constraints``; ``None`` for an inactive
        inequality (its multiplier is zero).
    """

    model: pyo.ConcreteModel
    constraints: tuple[Any, ...]
    column: tuple[int | None, ...]


def _near(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def _gradient(expr: Any) -> list[tuple[VarData, float]]:
    """``(variable, ∂expr/∂variable)`` at the current point over the expression's free
    variables: the standard representation when linear, reverse-mode numeric otherwise."""
    repn = generate_standard_repn(expr, compute_values=True, quadratic=False)
    if repn.nonlinear_expr is None:
        return [(v, float(a)) for v, a in zip(repn.linear_vars, repn.linear_coefs, strict=True)]
    grad = differentiate(expr, mode=Modes.reverse_numeric)
    return [(v, float(a)) for v, a in grad.items() if isinstance(v, VarData) and not v.fixed]


def _objective(model: pyo.ConcreteModel) -> Any:
    objs = list(model.component_data_objects(pyo.Objective, active=True))
    if len(objs) != 1:
        raise ValueError(f"expected one active objective, found {len(objs)}")
    if objs[0].sense != pyo.minimize:
        raise ValueError("supporting prices are defined for a minimization")
    return objs[0]


def build_supporting_prices(
    model: pyo.ConcreteModel,
    weights: Mapping[Any, float],
    fixed: Iterable[VarData] = (),
    saturated: Iterable[VarData] = (),
    tol: float = 1e-6,
    stationarity_tol: float = 1e-9,
) -> MultiplierLP:
    """Build the LP (K5a–K5c) over the KKT multipliers that support ``model``'s loaded point.

    Parameters
    ----------
    model : ConcreteModel
        A solved minimization (LP, QP or NLP) with its variable values loaded.
    weights : mapping
        Constraint data object → ``w_c``; the LP minimizes ``Σ_c w_c λ_c`` with
        ``λ_c = ∂f/∂rhs_c = −y_c`` (K5b).
    fixed : iterable of VarData
        Variables held at their solved values: no stationarity row (the slacks).
    saturated : iterable of VarData
        Variables whose stationarity is one-sided as at an upper bound wherever they are
        above their lower bound (``ν⁺ ≥ 0`` allowed, K5c): quantities taken in full because
        the hour is short of relief, whatever else limits them.
    tol : float
        Relative tolerance of activity, for constraints and variable bounds alike.
    stationarity_tol : float
        Each row (K5a) holds to ``± stationarity_tol · max(1, |∂f/∂v|)``. The default suits
        a simplex vertex; a QP or NLP point is stationary to its solver's tolerance only,
        and with more rows than free multipliers (a relief row per DSO, a price per line)
        the exact system is then inconsistent by that much: use ~1e-6. The least payment
        can undercut the exact one by as much.

    Returns
    -------
    MultiplierLP
        To be solved by :func:`flexopt.solve.solve` and read by :func:`read_supporting_duals`.
    """
    held = ComponentSet(fixed)
    full = ComponentSet(saturated)
    f_grad = _gradient(_objective(model).expr)
    constraints = tuple(model.component_data_objects(pyo.Constraint, active=True))
    column: list[int | None] = []
    y_bounds: list[tuple[float | None, float | None]] = []
    rows: ComponentMap = ComponentMap()  # variable → [(column, ∂g/∂v)]
    for c in constraints:
        lb, ub = c.lb, c.ub
        if c.equality:
            sign: tuple[float | None, float | None] = (None, None)
        else:
            body = float(pyo.value(c.body))
            at_lb = lb is not None and _near(body, float(lb), tol)
            at_ub = ub is not None and _near(body, float(ub), tol)
            if not (at_lb or at_ub):
                column.append(None)
                continue
            sign = (None, None) if at_lb and at_ub else ((0.0, None) if at_ub else (None, 0.0))
        j = len(y_bounds)
        column.append(j)
        y_bounds.append(sign)
        for v, a in _gradient(c.body):
            if a != 0.0 and v not in held:
                rows.setdefault(v, []).append((j, a))
    grad: ComponentMap = ComponentMap()
    for v, a in f_grad:
        if v not in held:
            grad[v] = grad.get(v, 0.0) + a
            rows.setdefault(v, [])
    lp = pyo.ConcreteModel(name=f"supporting_prices_{model.name}")
    lp.J = pyo.RangeSet(0, len(y_bounds) - 1)
    lp.y = pyo.Var(lp.J, bounds=lambda _m, j: y_bounds[j], initialize=0.0)
    specs: list[tuple[list[tuple[int, float]], float, float, int]] = []  # terms, −∂f/∂v, ε, ≤=≥
    for v, terms in rows.items():
        lo, hi, x = v.lb, v.ub, v.value
        at_lo = lo is not None and x is not None and _near(float(x), float(lo), tol)
        at_hi = hi is not None and x is not None and _near(float(x), float(hi), tol)
        at_hi = at_hi or (v in full and not at_lo)
        if at_lo and at_hi:
            continue
        rhs = -float(grad.get(v, 0.0))
        eps = stationarity_tol * max(1.0, abs(rhs))
        kind = 1 if at_lo else (-1 if at_hi else 0)  # Σ y ∂g/∂v ≥, ≤, = −∂f/∂v
        if not terms:  # the row reads 0 (≥, ≤, =) rhs
            if (kind >= 0 and rhs > eps) or (kind <= 0 and rhs < -eps):
                raise ValueError(f"no multiplier supports {v.name}: the point is not a KKT point")
            continue
        specs.append((terms, rhs, eps, kind))

    def stationarity(_m: pyo.ConcreteModel, r: int) -> Any:  # (K5a)
        terms, rhs, eps, kind = specs[r]
        expr = pyo.quicksum(a * lp.y[j] for j, a in terms)
        return (
            None if kind < 0 else rhs - eps,
            expr,
            None if kind > 0 else rhs + eps,
        )

    lp.R = pyo.RangeSet(0, len(specs) - 1)
    lp.stationarity = pyo.Constraint(lp.R, rule=stationarity)
    pos = {id(c): j for c, j in zip(constraints, column, strict=True) if j is not None}
    lp.obj = pyo.Objective(  # (K5b), λ = −y; an inactive constraint's λ is 0
        expr=pyo.quicksum(-float(w) * lp.y[pos[id(c)]] for c, w in weights.items() if id(c) in pos)
    )
    return MultiplierLP(model=lp, constraints=constraints, column=tuple(column))


def read_supporting_duals(lp: MultiplierLP) -> dict[Any, float]:
    """The chosen multipliers as ``λ_c = ∂f/∂rhs_c = −y_c`` for every active constraint of
    the solved model (``0`` for an inactive inequality) — the convention of
    :attr:`flexopt.solve.SolveResult.duals`, so that its readers consume them unchanged."""
    y = lp.model.y
    return {
        c: 0.0 if j is None else -float(y[j].value or 0.0)
        for c, j in zip(lp.constraints, lp.column, strict=True)
    }


@dataclass(frozen=True, eq=False)
class MultiplierArrays:
    """The LP (K5a–K5b) over the multipliers of a solved :class:`LinearProgram`.

    Attributes
    ----------
    lp : LinearProgram
        Its columns are the multipliers ``y`` of the active rows, in the order a Pyomo model
        of the same LP would hand them to the solver (first use in the stationarity rows,
        then the objective), so that both reach the same vertex.
    column : ndarray of int
        ``[m]``: for each row of the solved LP, the column of its ``y`` in :attr:`lp`; ``-1``
        for an inactive inequality or a multiplier no row or cost uses (``y = 0``).
    """

    lp: LinearProgram
    column: np.ndarray


def supporting_prices_lp(
    lp: LinearProgram,
    x: np.ndarray,
    weights: np.ndarray,
    fixed: np.ndarray,
    saturated: np.ndarray,
    tol: float = 1e-6,
    stationarity_tol: float = 1e-9,
) -> MultiplierArrays:
    """(K5a–K5c) of a solved LP given as arrays — :func:`build_supporting_prices` row for row.

    Parameters
    ----------
    lp : LinearProgram
        The solved minimization; ``x`` its solution.
    weights : ndarray
        ``[m]`` ``w_c`` per row; the LP minimizes ``Σ_c w_c λ_c`` with ``λ_c = −y_c`` (K5b).
    fixed, saturated : ndarray of bool
        ``[n]`` columns held at their values (no row) and columns taken in full (K5c).
    tol, stationarity_tol : float
        As in :func:`build_supporting_prices`.

    Returns
    -------
    MultiplierArrays
        Solve :attr:`MultiplierArrays.lp`; ``λ_c = −y[column[c]]`` (``0`` where ``-1``).
    """
    body = lp.activity(x)
    y_lo: list[float] = []
    y_hi: list[float] = []
    row_y = np.full(lp.n_rows, -1, dtype=np.int64)
    terms: dict[int, list[tuple[int, float]]] = {}  # column of x → [(y, ∂g/∂x)], first use
    for i in range(lp.n_rows):
        lb, ub = float(lp.row_lower[i]), float(lp.row_upper[i])
        if lb == ub:
            sign = (-np.inf, np.inf)
        else:
            at_lb = np.isfinite(lb) and _near(float(body[i]), lb, tol)
            at_ub = np.isfinite(ub) and _near(float(body[i]), ub, tol)
            if not (at_lb or at_ub):
                continue
            sign = (
                (-np.inf, np.inf)
                if at_lb and at_ub
                else ((0.0, np.inf) if at_ub else (-np.inf, 0.0))
            )
        row_y[i] = j = len(y_lo)
        y_lo.append(sign[0])
        y_hi.append(sign[1])
        for v, a in zip(*(t.tolist() for t in lp.row(i)), strict=True):
            if a != 0.0 and not fixed[v]:
                terms.setdefault(v, []).append((j, a))
    for v in np.flatnonzero((lp.cost != 0.0) & ~fixed).tolist():
        terms.setdefault(v, [])
    rows: list[list[tuple[int, float]]] = []
    r_lo: list[float] = []
    r_hi: list[float] = []
    for v, row in terms.items():
        lo, hi, xv = float(lp.col_lower[v]), float(lp.col_upper[v]), float(x[v])
        at_lo = np.isfinite(lo) and _near(xv, lo, tol)
        at_hi = (np.isfinite(hi) and _near(xv, hi, tol)) or (bool(saturated[v]) and not at_lo)
        if at_lo and at_hi:
            continue
        rhs = -float(lp.cost[v])
        eps = stationarity_tol * max(1.0, abs(rhs))
        kind = 1 if at_lo else (-1 if at_hi else 0)
        if not row:
            if (kind >= 0 and rhs > eps) or (kind <= 0 and rhs < -eps):
                raise ValueError(f"no multiplier supports column {v}: the point is not a KKT point")
            continue
        rows.append(row)
        r_lo.append(-np.inf if kind < 0 else rhs - eps)
        r_hi.append(np.inf if kind > 0 else rhs + eps)
    w = np.asarray(weights, dtype=float)
    order: dict[int, int] = {}  # y → column, by first use as the solver is handed them
    for row in rows:
        for j, _ in row:
            order.setdefault(j, len(order))
    for i in np.flatnonzero((row_y >= 0) & (w != 0.0)).tolist():
        order.setdefault(int(row_y[i]), len(order))
    ys = np.fromiter(order, dtype=np.int64, count=len(order))
    cost = np.zeros(len(order))
    has_y = row_y >= 0
    col_of = np.full(len(y_lo), -1, dtype=np.int64)
    col_of[ys] = np.arange(len(order))
    col = np.full(lp.n_rows, -1, dtype=np.int64)
    col[has_y] = col_of[row_y[has_y]]
    weighted = (col >= 0) & (w != 0.0)
    cost[col[weighted]] = -w[weighted]
    starts, index, value = csr([[(int(col_of[j]), a) for j, a in row] for row in rows])
    return MultiplierArrays(
        lp=LinearProgram(
            name=f"supporting_prices_{lp.name}",
            cost=cost,
            col_lower=np.asarray(y_lo)[ys],
            col_upper=np.asarray(y_hi)[ys],
            row_lower=np.asarray(r_lo),
            row_upper=np.asarray(r_hi),
            starts=starts,
            index=index,
            value=value,
            declared=len(y_lo),
        ),
        column=col,
    )
