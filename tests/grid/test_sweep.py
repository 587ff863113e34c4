"""The lockstep numba sweep (``flexopt/grid/_sweep.py``) against the per-power-flow kernel it
replaced, kept unchanged as ``benchmarks/_sweep_baseline.py`` (the benchmark's baseline).

Each power flow stops on its own tolerance in both (F4): same iteration counts, results
within 1e-12 pu (bit-identical on x86-64), whatever the batch size — the single-power-flow
path below 16, one lockstep block, several blocks — and whatever its neighbours in the block
do (one converging at once, one not converging at all).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandapower.networks as pn
import pytest

import flexopt as fx
from benchmarks._sweep_baseline import sweep as sweep_baseline
from flexopt.grid._sweep import sweep

TOL = 1e-12


def _args(f: fx.grid.Feeder, *, tol: float = 1e-10, max_iter: int = 100) -> tuple:
    """The kernels' arguments after the loads, as ``Feeder.power_flow`` passes them."""
    y = f.y_shunt_pu.copy()
    y[f.root] = 0.0
    v0 = complex(f.v_root_pu)
    return (f.base_mva, y, f.parent, f.child, f.z_branch_pu, f.root, v0, tol, max_iter)


def _loads(f: fx.grid.Feeder, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    scale = np.random.default_rng(seed).uniform(0.0, 1.5, (batch, f.n_bus))
    return f.p_base_mw * scale, f.q_base_mvar * scale


def _assert_same(new: tuple, old: tuple, rows: np.ndarray | slice = slice(None)) -> None:
    """Same iteration counts; voltages, bus and branch currents within ``TOL`` pu."""
    np.testing.assert_array_equal(new[3], old[3])
    for a, b in zip(new[:3], old[:3], strict=True):
        assert a.shape == b.shape
        assert np.abs(a[rows] - b[rows]).max(initial=0.0) <= TOL


def _cigre_mv_der() -> fx.grid.Feeder:
    """CIGRE MV with all its DER: two 110/20 kV transformers (F3a), magnetization shunts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fx.grid.Feeder.from_pandapower(pn.create_cigre_network_mv(with_der="all"))


@pytest.fixture(scope="module")
def feeders(case33: fx.grid.Feeder, case69: fx.grid.Feeder) -> dict[str, fx.grid.Feeder]:
    return {"case33bw": case33, "case69": case69, "cigre_mv_der": _cigre_mv_der()}


def test_the_transformer_feeder_runs_the_constant_power_kernel(feeders):
    f = feeders["cigre_mv_der"]
    assert f.ratio is not None  # referred to the root through its transformers
    assert f._zip_data is None  # constant power: this kernel, not _sweep_zip
    assert np.any(f.y_shunt_pu)


@pytest.mark.parametrize("name", ["case33bw", "case69", "cigre_mv_der"])
@pytest.mark.parametrize("batch", [1, 5, 15, 16, 100, 300, 1000])
def test_lockstep_equals_the_per_power_flow_kernel(feeders, name, batch):
    f = feeders[name]
    p, q = _loads(f, batch, seed=batch)
    _assert_same(sweep(p, q, *_args(f)), sweep_baseline(p, q, *_args(f)))


def test_each_power_flow_stops_on_its_own_tolerance(case69):
    """No load (converged after one sweep) beside loads needing 6–11 sweeps in one block:
    each power flow equals itself solved alone, with its own iteration count."""
    p, q = _loads(case69, 64, seed=1)
    p[::3] = q[::3] = 0.0
    batch = sweep(p, q, *_args(case69))
    assert np.all(batch[3][::3] == 1)
    assert len(np.unique(batch[3])) > 3
    for i in range(0, 64, 7):
        alone = sweep(p[i : i + 1], q[i : i + 1], *_args(case69))
        _assert_same(tuple(x[i : i + 1] for x in batch), alone)


def test_a_diverging_power_flow_leaves_its_block_unchanged(case33):
    """One load beyond the feeder's loadability: only its power flow reports -1."""
    p, q = _loads(case33, 40, seed=2)
    p[17] *= 40.0
    q[17] *= 40.0
    new, old = sweep(p, q, *_args(case33)), sweep_baseline(p, q, *_args(case33))
    assert new[3][17] == -1
    assert np.all(np.delete(new[3], 17) > 0)
    _assert_same(new, old, rows=np.arange(40) != 17)


@pytest.mark.parametrize("batch", [3, 40])
def test_iteration_limit_and_empty_batch(case33, batch):
    p, q = _loads(case33, batch, seed=3)
    for max_iter in (0, 3):  # no power flow converges within 3 sweeps from a flat start
        new = sweep(p, q, *_args(case33, max_iter=max_iter))
        old = sweep_baseline(p, q, *_args(case33, max_iter=max_iter))
        assert np.all(new[3] == -1)
        _assert_same(new, old)
    empty = sweep(p[:0], q[:0], *_args(case33))
    assert [x.shape for x in empty] == [(0, 33), (0, 33), (0, 32), (0,)]


def test_feeder_power_flow_runs_the_lockstep_kernel(case69):
    """``Feeder.power_flow`` (numba engine) gives the baseline kernel's voltages."""
    p, q = _loads(case69, 50, seed=4)
    pf = case69.power_flow(p, q, engine="numba")
    old = sweep_baseline(p, q, *_args(case69))
    assert np.abs(pf.v_pu - old[0]).max() <= TOL
    assert pf.iterations == old[3].max()


def test_batches_from_the_parallel_threshold_on_equal_the_serial_kernel(case33):
    """From ``PARALLEL_MIN`` power flows the blocks run on numba's threads: the same numbers
    as one thread, block for block."""
    from flexopt.grid import _sweep

    f = case33
    p, q = _loads(f, _sweep.PARALLEL_MIN, seed=7)
    threaded = sweep(p, q, *_args(f))
    serial = _sweep._outputs(p.shape[0], f.n_bus, f.n_branch)
    _sweep._kernel_serial(p, q, _args(f), serial)
    for a, b in zip(threaded, serial, strict=True):
        np.testing.assert_array_equal(a, b)
    _assert_same(threaded, sweep_baseline(p, q, *_args(f)))
