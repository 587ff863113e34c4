"""S3 — the flexibility requirement's LP (R1–R4a) and its tie-break (R5) as arrays.

The same LPs as :func:`flexopt.market.requirement.build_requirement` and
:func:`~flexopt.market.requirement.build_requirement_tiebreak`, their rows and objectives
listed as those models state them and numbered by :func:`flexopt.market.lp.by_first_use`,
as Pyomo's HiGHS interface numbers the models — so HiGHS is handed the same LP and reaches
the same vertex (``tests/market/test_requirement.py`` compares the LPs HiGHS holds, entry for
entry, and the results bit for bit). At 100 DSOs Pyomo spends most of the stage building the
two models term by term; the run solves these; the Pyomo models stay the reference.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flexopt.market.lines import binding_candidates
from flexopt.market.lp import LinearProgram, Terms, by_first_use
from flexopt.market.requirement import SLACK_PENALTY, RequirementData

__all__ = [
    "RequirementArrays",
    "build_requirement_lp",
    "read_requirement_lp",
    "requirement_tiebreak_lp",
]

#: hours, DSOs, lines (the frames' labels, in their order)
Axes = tuple[list[Hashable], list[Hashable], list[Hashable]]
#: the tie-break's tolerance on the first stage's optimum (R5), as its Pyomo model's
TIEBREAK_TOL = 1e-7


@dataclass(frozen=True)
class _Rows:
    """The rows (R2, R3, R4a) both stages share, as :func:`by_first_use` takes them."""

    rows: list[Terms]
    lower: list[float]
    upper: list[float]
    kept: np.ndarray
    cap: np.ndarray  # [T, D]


@dataclass(frozen=True, eq=False)
class RequirementArrays:
    """An S3 LP (:attr:`lp`) and where its variables sit.

    Attributes
    ----------
    lp : LinearProgram
    hours, dsos, lines : list
    r_col : ndarray
        ``[D, T]`` column of ``R_{d,t}``.
    kept : ndarray
        ``[LT, 2]`` (hour, line) positions of the kept line-hours (K6), hour by hour.
    up_col, dn_col : ndarray
        ``[LT]`` columns of ``s⁺``, ``s⁻``.
    shared : _Rows
        The rows (R2, R3, R4a) both stages share: the tie-break reuses them.
    """

    lp: LinearProgram
    hours: list[Hashable]
    dsos: list[Hashable]
    lines: list[Hashable]
    r_col: np.ndarray
    kept: np.ndarray
    up_col: np.ndarray
    dn_col: np.ndarray
    shared: _Rows


def _shared_rows(
    data: RequirementData, hours: list[Hashable], lines: list[Hashable], dsos: list[Hashable]
) -> _Rows:
    """(R2) and (R3) on the line-hours that can bind (K6), then (R4a) — in the order and
    with the terms of ``add_ineq_line_limits`` and ``add_ineq_energy``."""
    sens = np.stack(
        [data.sensitivity[t].reindex(index=lines, columns=dsos).to_numpy(float) for t in hours]
    )
    mean = data.mean_flow_mw.loc[hours, lines].to_numpy(float)
    limit = data.limit_mw.loc[hours, lines].to_numpy(float)
    cap = data.capacity_mw.loc[hours, dsos].to_numpy(float)
    kept = np.argwhere(binding_candidates(mean, limit, sens, cap))
    change = [
        [(("R", d, i), float(h)) for d, h in enumerate(sens[i, j].tolist()) if h != 0.0]
        for i, j in kept.tolist()
    ]
    rows: list[Terms] = []
    lower: list[float] = []
    upper: list[float] = []
    for n, (i, j) in enumerate(kept.tolist()):
        rows.append([*change[n], (("up", n), -1.0)])
        lower.append(-np.inf)
        upper.append(float(limit[i, j] - mean[i, j]))
    for n, (i, j) in enumerate(kept.tolist()):
        rows.append([*change[n], (("dn", n), 1.0)])
        lower.append(float(-limit[i, j] - mean[i, j]))
        upper.append(np.inf)
    if data.energy_mwh is not None:
        dt = float(data.dt_h)
        for d, dso in enumerate(dsos):
            rows.append([(("R", d, i), dt) for i in range(len(hours))])
            lower.append(-np.inf)
            upper.append(float(data.energy_mwh.loc[dso]))
    return _Rows(rows, lower, upper, kept, cap)


def _arrays(
    name: str,
    shared: _Rows,
    extra: tuple[list[Terms], list[float], list[float]],
    objective: Terms,
    bounds: dict[Hashable, tuple[float, float]],
    axes: Axes,
) -> RequirementArrays:
    """The LP of rows ``shared`` then ``extra``, numbered as the Pyomo model's hand-over;
    ``bounds`` per variable, every ``R`` and slack declared."""
    hours, dsos, lines = axes
    rows = [*shared.rows, *extra[0]]
    col, (starts, index, value), cost = by_first_use(rows, objective)
    lo, hi = np.zeros(len(col)), np.full(len(col), np.inf)
    for var, j in col.items():
        lo[j], hi[j] = bounds[var]
    n_lt = len(shared.kept)
    return RequirementArrays(
        lp=LinearProgram(
            name=name,
            cost=cost,
            col_lower=lo,
            col_upper=hi,
            row_lower=np.asarray([*shared.lower, *extra[1]], dtype=float),
            row_upper=np.asarray([*shared.upper, *extra[2]], dtype=float),
            starts=starts,
            index=index,
            value=value,
            declared=len(bounds),
        ),
        hours=hours,
        dsos=dsos,
        lines=lines,
        r_col=np.array(
            [[col[("R", d, i)] for i in range(len(hours))] for d in range(len(dsos))],
            dtype=np.int64,
        ).reshape(len(dsos), len(hours)),
        kept=shared.kept,
        up_col=np.array([col[("up", n)] for n in range(n_lt)], dtype=np.int64),
        dn_col=np.array([col[("dn", n)] for n in range(n_lt)], dtype=np.int64),
        shared=shared,
    )


def _axes(data: RequirementData) -> Axes:
    return (
        list(data.mean_flow_mw.index),
        list(data.capacity_mw.columns),
        list(data.mean_flow_mw.columns),
    )


def _r_bounds(cap: np.ndarray) -> dict[Hashable, tuple[float, float]]:
    T, D = cap.shape
    return {("R", d, i): (0.0, float(cap[i, d])) for d in range(D) for i in range(T)}


def build_requirement_lp(data: RequirementData) -> RequirementArrays:
    """The S3 LP (R1–R4a) as arrays — :func:`~flexopt.market.requirement.build_requirement`.

    min Σ_{d,t} R_{d,t} + M Σ_{l,t} (s⁺_{l,t} + s⁻_{l,t})   s.t. (R2)–(R4a)      (R1)
    """
    hours, dsos, lines = axes = _axes(data)
    shared = _shared_rows(data, hours, lines, dsos)
    n_lt = len(shared.kept)
    objective: list[tuple[Hashable, float]] = [
        (("R", d, i), 1.0) for d in range(len(dsos)) for i in range(len(hours))
    ]
    for n in range(n_lt):
        objective += [(("up", n), SLACK_PENALTY), (("dn", n), SLACK_PENALTY)]
    bounds = _r_bounds(shared.cap)
    bounds |= {(side, n): (0.0, np.inf) for side in ("up", "dn") for n in range(n_lt)}
    return _arrays("requirement", shared, ([], [], []), objective, bounds, axes)


def requirement_tiebreak_lp(first: RequirementArrays, x: np.ndarray) -> RequirementArrays:
    """The tie-break (R5) of the solved first stage ``x`` as arrays —
    :func:`~flexopt.market.requirement.build_requirement_tiebreak`:

        min Σ_t z_t   s.t. (R2)–(R4a),  R_{d,t} ≤ z_t R̄_{d,t},  s ≤ s* (1 + ε) + ε,
                           Σ_d R_{d,t} ≤ Σ_d R*_{d,t} (1 + ε) + ε,   ε = 1e-7
    """
    axes = (first.hours, first.dsos, first.lines)
    shared = first.shared  # the first stage's rows: built once
    T, D, n_lt = len(first.hours), len(first.dsos), len(shared.kept)
    tol = TIEBREAK_TOL
    rows: list[Terms] = []
    upper: list[float] = []
    for i in range(T):
        total = 0.0  # summed as the model sums the solved values: in DSO order
        for d in range(D):
            total += float(x[first.r_col[d, i]])
        rows.append([(("R", d, i), 1.0) for d in range(D)])
        upper.append(total * (1 + tol) + tol)
    for d in range(D):
        for i in range(T):
            rows.append([(("R", d, i), 1.0), (("z", i), -float(shared.cap[i, d]))])
            upper.append(0.0)
    bounds = _r_bounds(shared.cap)
    for n in range(n_lt):
        bounds[("up", n)] = (0.0, float(x[first.up_col[n]]) * (1 + tol) + tol)
        bounds[("dn", n)] = (0.0, float(x[first.dn_col[n]]) * (1 + tol) + tol)
    bounds |= {("z", i): (0.0, np.inf) for i in range(T)}
    extra = (rows, [-np.inf] * len(rows), upper)
    objective = [(("z", i), 1.0) for i in range(T)]
    return _arrays("requirement_tiebreak", shared, extra, objective, bounds, axes)


def read_requirement_lp(a: RequirementArrays, x: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Requirement (hours × DSOs) and unresolved overload (hours × branches) of solved
    arrays — :func:`~flexopt.market.requirement.read_requirement` on ``x``."""
    r = pd.DataFrame(x[a.r_col].T, index=a.hours, columns=a.dsos)
    slack = np.zeros((len(a.hours), len(a.lines)))
    if len(a.kept):
        slack[a.kept[:, 0], a.kept[:, 1]] = x[a.up_col] + x[a.dn_col]
    overload = pd.DataFrame(np.where(slack > 1e-7, slack, 0.0), index=a.hours, columns=a.lines)
    return r.clip(lower=0.0), overload
