"""The mealpy adapter returns flexopt's Result at the requested budget."""

from __future__ import annotations

import numpy as np
import pytest

from flexopt import optim

NAMES = ["OriginalWCA", "OriginalPSO", "BaseGA", "OriginalDE", "OriginalGWO", "OriginalICA"]


@pytest.mark.parametrize("name", NAMES)
def test_named_optimizers_run_on_a_flexopt_problem(name):
    p = optim.Problem.from_function(lambda X: ((X - 0.3) ** 2).sum(1), -np.ones(5), np.ones(5))
    r = optim.minimize(p, optim.Mealpy(name, pop_size=20), max_evals=1000, seed=3)
    assert isinstance(r, optim.Result)
    assert r.evaluations == 1000  # exact: the adapter stops mealpy at the budget
    assert r.f < p.evaluate(np.zeros((1, 5))).F[0, 0]  # better than the box centre
    assert r.algorithm == f"mealpy.{name}"
    again = optim.minimize(p, optim.Mealpy(name, pop_size=20), max_evals=1000, seed=3)
    np.testing.assert_array_equal(r.x, again.x)  # seeded


def test_constraints_become_a_penalty_and_are_scored_on_the_problem():
    p = optim.Problem.from_function(
        lambda X: X.sum(1), [0.0, 0.0], [1.0, 1.0], constraints=lambda X: 1 - X.sum(1)
    )
    r = optim.minimize(p, optim.Mealpy("OriginalDE", pop_size=20), max_evals=2000, seed=0)
    assert r.violation < 1e-3
    assert r.f == pytest.approx(1.0, abs=0.05)


def test_unknown_names_and_parameters_are_rejected():
    with pytest.raises(ValueError, match="unknown mealpy optimizer"):
        optim.Mealpy("NoSuchThing")
    with pytest.raises(TypeError, match="takes no parameter"):
        optim.Mealpy("OriginalWCA", colour=3)
