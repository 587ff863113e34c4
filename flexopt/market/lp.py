"""A linear program as arrays, for markets whose structure is known in advance.

    min  cᵀx + c₀   s.t.  r̲ ≤ A x ≤ r̄,   x̲ ≤ x ≤ x̄

``A`` is held row by row (CSR: ``starts``, ``index``, ``value``), each row's entries in the
order its builder wrote them. Pyomo builds the same LP term by term, which for the TSO market
(S7) at 100 DSOs costs ten times the solve; a builder that knows the structure writes the
arrays directly (``tso_lp.py``, ``requirement_lp.py``) and :func:`flexopt.solve.solve_lp`
hands them to HiGHS. This module builds, it never solves.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LinearProgram", "by_first_use", "csr"]


@dataclass(frozen=True, eq=False)
class LinearProgram:
    """``min cᵀx + c₀`` over ``r̲ ≤ A x ≤ r̄``, ``x̲ ≤ x ≤ x̄`` (``±inf`` where a side is open).

    Attributes
    ----------
    name : str
        The stage it belongs to, for messages.
    cost, col_lower, col_upper : ndarray
        ``[n]``.
    row_lower, row_upper : ndarray
        ``[m]``.
    starts, index, value : ndarray
        ``A`` by rows: row ``i``'s entries are ``index[starts[i]:starts[i+1]]`` with
        coefficients ``value[...]`` (``starts`` has ``m + 1`` entries).
    declared : int
        Variables of the model as formulated, those the LP leaves out (no entry, no cost)
        included: the iteration guard counts them, as it does for a Pyomo model.
    """

    name: str
    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    starts: np.ndarray
    index: np.ndarray
    value: np.ndarray
    declared: int

    @property
    def n_cols(self) -> int:
        return int(self.cost.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.row_lower.shape[0])

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ``i``'s columns and coefficients, in the builder's order."""
        a, b = int(self.starts[i]), int(self.starts[i + 1])
        return self.index[a:b], self.value[a:b]

    def not_finite(self) -> str:
        """The first number a solver cannot take — a NaN bound, a non-finite cost or
        coefficient — described with its row or column; ``""`` when there is none."""
        for what, bad in (
            ("a column bound is NaN", np.isnan(self.col_lower) | np.isnan(self.col_upper)),
            ("a row bound is NaN", np.isnan(self.row_lower) | np.isnan(self.row_upper)),
            ("a cost is not finite", ~np.isfinite(self.cost)),
            ("a coefficient is not finite", ~np.isfinite(self.value)),
        ):
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                if what.startswith("a coefficient"):
                    i = int(np.searchsorted(self.starts, i, side="right")) - 1
                where = "column" if "column" in what or "cost" in what else "row"
                return f"{what} ({where} {i})"
        return ""

    def activity(self, x: np.ndarray) -> np.ndarray:
        """``A x``, each row summed term by term in its order (as a model's expression is)."""
        out = np.zeros(self.n_rows)
        for i in range(self.n_rows):
            cols, coef = self.row(i)
            s = 0.0
            for j, a in zip(cols.tolist(), coef.tolist(), strict=True):
                s += a * x[j]
            out[i] = s
        return out


def csr(rows: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(starts, index, value)`` of rows given as lists of ``(column, coefficient)``."""
    starts = np.zeros(len(rows) + 1, dtype=np.int64)
    starts[1:] = np.cumsum([len(r) for r in rows])
    index = np.fromiter((j for r in rows for j, _ in r), dtype=np.int64, count=int(starts[-1]))
    value = np.fromiter((a for r in rows for _, a in r), dtype=float, count=int(starts[-1]))
    return starts, index, value


#: a row or an objective as ``(variable, coefficient)`` terms in the model's expression order
Terms = Sequence[tuple[Hashable, float]]


def by_first_use(
    rows: Sequence[Terms], objective: Terms
) -> tuple[dict[Hashable, int], tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Columns, ``A`` and costs of an LP numbered as Pyomo's HiGHS interface numbers a model.

    The interface adds a variable as a column where it first appears — the constraints in
    declaration order, each one's terms in expression order, then the objective — and writes
    each row's terms in that order, without those whose coefficient is zero (a ``0.0 * z``
    term still makes ``z`` a column). A builder that lists its rows and objective as the
    model states them gets the model's LP, column for column and entry for entry.

    Returns
    -------
    (columns, (starts, index, value), cost)
        ``columns`` maps each variable to its column; ``A`` by rows (:func:`csr`).
    """
    col: dict[Hashable, int] = {}
    written = []
    for terms in rows:
        row = []
        for var, coef in terms:
            j = col.setdefault(var, len(col))
            if coef != 0.0:
                row.append((j, float(coef)))
        written.append(row)
    for var, _ in objective:
        col.setdefault(var, len(col))
    cost = np.zeros(len(col))
    for var, coef in objective:
        cost[col[var]] += coef
    return col, csr(written), cost
