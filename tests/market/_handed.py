"""What HiGHS is handed: a Pyomo model through Pyomo's HiGHS interface, or a
:class:`~flexopt.market.lp.LinearProgram` through :func:`flexopt.solve.hand_over`."""

from __future__ import annotations

from typing import Any

import highspy
import numpy as np
from pyomo.contrib.solver.solvers.highs import Highs

from flexopt.market.lp import LinearProgram
from flexopt.solve import hand_over


def handed_by_pyomo(model: Any) -> Any:
    """The ``HighsLp`` Pyomo's HiGHS interface builds for ``model``."""
    interface = Highs()
    interface.set_instance(model)
    return interface._solver_model.getLp()


def handed_as_arrays(lp: LinearProgram) -> Any:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    hand_over(h, lp)
    return h.getLp()


def assert_same_lp(model: Any, lp: LinearProgram) -> None:
    """Column for column, row for row, entry for entry, the same LP reaches HiGHS; and the
    same size for the iteration guard (declared variables, constraints)."""
    want, got = handed_by_pyomo(model), handed_as_arrays(lp)
    assert (got.num_col_, got.num_row_) == (want.num_col_, want.num_row_)
    for name in ("col_cost_", "col_lower_", "col_upper_", "row_lower_", "row_upper_"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    a, b = got.a_matrix_, want.a_matrix_
    assert a.format_ == b.format_
    for name in ("start_", "index_", "value_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (lp.declared, lp.n_rows) == (model.nvariables(), model.nconstraints())
