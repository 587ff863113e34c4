"""Pareto tools on hand cases; MOWCA on ZDT1."""

from __future__ import annotations

import numpy as np
import pytest

from flexopt import optim


def test_non_dominated_sort_hand_case():
    F = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [4, 4], [6, 6], [2, 2]], dtype=float)
    # (3,3) is dominated by (2,2) only; (4,4) by (2,2) and (3,3); (6,6) by all others
    assert optim.non_dominated_sort(F).tolist() == [0, 0, 0, 1, 2, 3, 0]


def test_crowding_distance_hand_case():
    F = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    cd = optim.crowding_distance(F)
    assert np.isinf(cd[0])
    assert np.isinf(cd[3])
    assert cd[1] == pytest.approx((3 - 0) / 4 + (4 - 1) / 4)
    assert cd[2] == pytest.approx((4 - 1) / 4 + (2 - 0) / 4)


def test_hypervolume_2d_hand_case():
    F = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.5, 3.5], [5.0, 0.5]])  # last: outside ref
    # staircase to ref (4, 4): (2−1)·(4−3) + (3−2)·(4−2) + (4−3)·(4−1) = 1 + 2 + 3
    assert optim.hypervolume_2d(F, [4.0, 4.0]) == pytest.approx(6.0)
    assert optim.hypervolume_2d(np.array([[5.0, 5.0]]), [4.0, 4.0]) == 0.0


def test_fuzzy_compromise_picks_the_balanced_point():
    F = np.array([[0.0, 10.0], [4.0, 4.0], [10.0, 0.0], [6.0, 5.0]])
    assert optim.compromise(F) == 1  # memberships (0, 0.6, 0, 0.4)


def test_mowca_reaches_zdt1_front():
    n = 30

    def zdt1(X):
        f1 = X[:, 0]
        g = 1 + 9 * X[:, 1:].sum(1) / (n - 1)
        return np.c_[f1, g * (1 - np.sqrt(f1 / g))]

    p = optim.Problem.from_function(zdt1, np.zeros(n), np.ones(n), n_obj=2)
    res = optim.minimize(p, optim.MOWCA(), max_iter=200, seed=0)
    x = np.linspace(0, 1, 2001)
    true = optim.hypervolume_2d(np.c_[x, 1 - np.sqrt(x)], [1.1, 1.1])
    assert optim.hypervolume_2d(res.pareto_f, [1.1, 1.1]) >= 0.98 * true
    assert res.evaluations == 100 + 200 * 99
    assert (optim.non_dominated_sort(res.pareto_f) == 0).all()


def test_mowca_respects_a_constraint():
    """Constrained domination (W6a): min (x0, x1) on [0, 1]² s.t. x0 + x1 ≥ 1. Unconstrained
    the front is the single point (0, 0); constrained, it is the line x0 + x1 = 1."""
    p = optim.Problem.from_function(
        lambda X: X.copy(), [0.0, 0.0], [1.0, 1.0], n_obj=2, constraints=lambda X: 1 - X.sum(1)
    )
    res = optim.minimize(p, optim.MOWCA(n_pop=40), max_iter=100, seed=0)
    assert res.feasible
    assert res.violation == 0.0
    assert (res.pareto_f.sum(1) >= 1 - 1e-12).all()  # every archive member is feasible
    assert (res.pareto_f.sum(1) <= 1.1).all()  # and close to the constrained front
    assert np.median(res.pareto_f.sum(1)) <= 1.02
    assert len(res.pareto_f) >= 20
    assert np.ptp(res.pareto_f[:, 0]) > 0.9  # spread along it


def test_mowca_reports_the_violation_when_nothing_is_feasible():
    # x0 + x1 ≥ 3 cannot hold on [0, 1]²: the least violation is 1, at (1, 1)
    p = optim.Problem.from_function(
        lambda X: X.copy(), [0.0, 0.0], [1.0, 1.0], n_obj=2, constraints=lambda X: 3 - X.sum(1)
    )
    res = optim.minimize(p, optim.MOWCA(n_pop=20), max_iter=50, seed=1)
    assert not res.feasible
    assert res.violation == pytest.approx(1.0, abs=1e-3)


def test_constrained_ranks_put_feasible_fronts_first():
    F = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0], [3.0, 3.0], [0.5, 0.5]])
    v = np.array([2.0, 0.0, 0.0, 0.0, 1.0])
    assert optim.constrained_ranks(F, v).tolist() == [3, 0, 0, 1, 2]
