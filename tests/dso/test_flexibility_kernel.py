"""The compiled water-filling of (M3) equals its numpy form bit for bit: random cases (ties,
hours without weight, no or unbounded energy, targets the prosumers meet and ones beyond them,
more than 128 prosumers) and the calls of a market run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import flexopt as fx
from flexopt.dso import dcp, flexibility
from flexopt.dso._flex_kernel import water_fill
from flexopt.dso._kernels import _pairwise_any
from flexopt.dso.flexibility import _capacity_numpy, flexibility_capacity

ROOT = Path(__file__).resolve().parents[2]


def _same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert a.dtype == b.dtype == np.float64
    assert np.array_equal(a, b, equal_nan=True)
    assert (np.isnan(a) == np.isnan(b)).all()
    assert (np.isinf(a) == np.isinf(b)).all()
    assert (a.view(np.int64) == b.view(np.int64)).all()  # signed zeros too


def _case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``power [T, n]``, ``share [T]``, ``energy [n]``, ``target [T]`` or None as
    :func:`flexibility_capacity` builds them."""
    n_t = int(rng.integers(1, 25))
    n = int(rng.choice([rng.integers(1, 12), rng.integers(1, 60), rng.integers(100, 301)]))
    w = rng.choice([rng.uniform(0.0, 1.0, n_t), rng.integers(0, 3, n_t).astype(float)])
    w[rng.random(n_t) < 0.4] = 0.0
    if w.sum() <= 0:
        w[rng.integers(n_t)] = 1.0
    share = w / w.sum()
    if rng.random() < 0.5:  # few distinct values: ties among the breakpoints P / s
        power = rng.integers(0, 4, (n_t, n)) * 0.5
    else:
        power = rng.uniform(0.0, 2.0, (n_t, n))
        power[rng.random((n_t, n)) < 0.2] = 0.0
    power = np.where(share[:, None] > 0, power, 0.0)
    energy = rng.uniform(0.0, 1.5 * n_t, n) * rng.choice([0.1, 1.0], n)
    energy[rng.random(n) < 0.15] = 0.0
    energy[rng.random(n) < 0.15] = 1e9  # beyond every hour's power: θ = ∞
    if rng.random() < 0.05:
        energy[0] = -0.0
    kind = rng.integers(4)
    if kind == 0:
        return power, share, energy, None
    if kind == 1:  # about what the first split gives: fitted in a few rounds, or not
        with np.errstate(over="ignore", invalid="ignore"):
            total = flexibility._split(power, share, energy).sum(axis=1)
        return power, share, energy, total * rng.uniform(0.9, 1.3, n_t)
    scale = (0.2, 5.0)[kind - 2]  # mostly met; beyond the prosumers
    target = scale * rng.uniform(0.5, 1.5, n_t) * power.sum(axis=1).max() * (share > 0)
    return power, share, energy, target


def _rounds(monkeypatch, *args) -> tuple[np.ndarray, int]:
    """The numpy form's result and how many splits it made."""
    calls = [0]
    split = flexibility._split

    def counted(*a):
        calls[0] += 1
        return split(*a)

    # a weight fitted down to a subnormal overflows P / s to inf: numpy warns, the kernel not
    with monkeypatch.context() as m, np.errstate(over="ignore", invalid="ignore"):
        m.setattr(flexibility, "_split", counted)
        cap = _capacity_numpy(*args)
    return cap, calls[0]


def test_pairwise_sums_as_numpy_at_any_length():
    rng = np.random.default_rng(7)
    for n in [*range(0, 140), 255, 256, 257, 300, 517, 1000, 4099]:
        x = rng.normal(size=n) * 10.0 ** rng.integers(-6, 6, n)
        assert x.sum() == 0.0 + _pairwise_any(x), n
        rows = x[None, :] * rng.uniform(0.5, 2.0, (3, 1))
        assert (rows.sum(axis=1) == [0.0 + _pairwise_any(r) for r in rows]).all(), n


def test_random_cases_equal_bit_for_bit(monkeypatch):
    rng = np.random.default_rng(20240611)
    splits = []
    for _ in range(600):
        power, share, energy, target = _case(rng)
        ref, count = _rounds(monkeypatch, power, share, energy, target)
        _same_bits(water_fill(power, share, energy, target), ref)
        splits.append(count)
    splits = np.array(splits)
    assert (splits == 101).sum() >= 50  # targets beyond the prosumers: every round runs
    assert ((splits > 1) & (splits < 101)).sum() >= 15  # weights fitted, then stopped
    assert (splits == 1).sum() >= 50


def test_no_hour_with_weight_raises_as_numpy():
    power, share, energy = np.zeros((3, 2)), np.zeros(3), np.ones(2)
    with pytest.raises(ValueError, match="argmax of an empty sequence"):
        _capacity_numpy(power, share, energy, None)
    with pytest.raises(ValueError, match="argmax of an empty sequence"):
        water_fill(power, share, energy, None)


def test_market_run_calls_equal_bit_for_bit(monkeypatch):
    calls = []

    def capture(*args, **kw):
        calls.append((args, kw))
        return flexibility_capacity(*args, **kw)

    with monkeypatch.context() as m:
        m.setattr(dcp, "flexibility_capacity", capture)
        fx.run_market(fx.load_instance(ROOT / "instances" / "rts24-3dso"), "wca", seed=0)
    assert calls
    for args, kw in calls:
        compiled = flexibility_capacity(*args, **kw)
        with monkeypatch.context() as m:
            m.setattr(flexibility, "water_fill", _capacity_numpy)
            ref = flexibility_capacity(*args, **kw)
        assert compiled.index.equals(ref.index)
        assert compiled.columns.equals(ref.columns)
        _same_bits(compiled.to_numpy(), ref.to_numpy())
