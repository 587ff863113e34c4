"""Compiled backward/forward sweep (numba), the batch in lockstep: O(n) per power flow.

Same fixed point and the same iterate sequence as the matrix form in ``engines.py`` (F4): all
bus currents from the previous voltages, then ``V = V₀ − Z I``, evaluated here along the tree
— a backward pass accumulating branch currents from the leaves (F5) and a forward pass
dropping the voltage from the root.

Lockstep (F4, numba engine): the batch is cut into equal blocks of up to ``_BLOCK`` power
flows, each block held as real and imaginary ``[n_bus, block]`` arrays. The tree is the outer
loop and the block's power flows the inner one: contiguous, branch-free real arithmetic that
LLVM vectorizes (SIMD), with no complex division (``conj(S/V) = conj(S) V / |V|²``). Each
power flow still stops on its own tolerance: one that has converged is frozen — its voltage
update is masked — while the rest of its block iterates, so its iterates, its iteration count
and its result are those of a sweep of it alone. A block narrower than two SIMD vectors (a batch
of fewer than ``_NARROW``, a short last block) runs one power flow at a time instead, where the
lockstep's per-row loop overhead would cost more than it saves. Both paths do the same
floating-point operations in the same order as the per-power-flow kernel they replace
(``benchmarks/_sweep_baseline.py``; equal bit for bit in ``tests/grid/test_sweep.py``).
Blocks run in parallel (``prange``) when numba has more than one thread and the batch holds
at least :data:`PARALLEL_MIN` power flows; the speed-up over
that kernel is single-threaded.

The compiled kernel is cached on disk where numba finds a writable place — beside this file,
in ``NUMBA_CACHE_DIR``, or in the user's cache directory — and compiled in memory on each
run when none is writable (a read-only install used by someone without a home directory).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar, cast

import numba
import numpy as np

__all__ = ["sweep"]

F = TypeVar("F", bound=Callable[..., object])
#: the feeder and the stopping rule as the kernels take them:
#: ``(base_mva, y, parent, child, z, root, v0, tol, max_iter)``
Net = tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, complex, float, int]
#: the outputs, batch-major: ``(v, i_bus, i_branch, iterations)``
Out = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

#: most power flows per lockstep block; block widths are whole SIMD vectors (float64 lanes of
#: AVX-512); a narrower block than ``_NARROW`` runs one power flow at a time (LLVM's vector
#: loops step two vectors: below that they fall back to their scalar remainder)
_BLOCK, _SIMD, _NARROW = 128, 8, 16
#: a block's six ``[n_bus, block]`` float64 arrays stay within this (an L2 cache's share):
#: feeders beyond ~170 buses get narrower blocks
_BLOCK_BYTES = 1 << 20


def _bus_current_py(
    a: float, b: float, sr: float, si: float, yr: float, yi: float
) -> tuple[float, float]:
    """``I = conj(S / V) + y V = conj(S) V / |V|² + y V`` (F4) at ``V = a + j b``.

    ``sr + j si = conj(S)`` per unit; real arithmetic in the order of numba's complex product
    and quotient, so results are bit-identical to the complex form."""
    d = a * a + b * b
    return (sr * a - si * b) / d + (yr * a - yi * b), (sr * b + si * a) / d + (yr * b + yi * a)


def _drop_py(
    ap: float, bp: float, ir: float, ii: float, zr: float, zi: float
) -> tuple[float, float]:
    """``V_{c(k)} = V_{π(k)} − z_k I_k`` (F4): the child's voltage from its parent's."""
    return ap - (zr * ir - zi * ii), bp - (zr * ii + zi * ir)


def _currents_py(
    vr: np.ndarray,
    vi: np.ndarray,
    sr: np.ndarray,
    si: np.ndarray,
    y: np.ndarray,
    root: int,
    ar: np.ndarray,
    ai: np.ndarray,
) -> None:
    """Bus currents (F4) of a block ``[n_bus, block]`` into ``ar + j ai``, zero at the root."""
    for j in range(vr.shape[0]):
        yr, yi = y[j].real, y[j].imag
        for s in range(vr.shape[1]):  # the block's power flows: the SIMD loop
            ar[j, s], ai[j, s] = _bus_current(vr[j, s], vi[j, s], sr[j, s], si[j, s], yr, yi)
    ar[root] = 0.0  # the root is the slack: it draws nothing from the feeder
    ai[root] = 0.0


def _backward_py(ar: np.ndarray, ai: np.ndarray, parent: np.ndarray, child: np.ndarray) -> None:
    """Branch currents ``I_k = I_{c(k)} + Σ I`` of the branches below (F5), in place.

    Breadth-first order reversed visits every child before its parent: afterwards row
    ``c(k)`` of ``[n_bus, block]`` holds branch ``k``'s current."""
    for k in range(child.shape[0] - 1, -1, -1):
        pk, ck = parent[k], child[k]
        for s in range(ar.shape[1]):
            ar[pk, s] += ar[ck, s]
            ai[pk, s] += ai[ck, s]


def _forward_py(
    vr: np.ndarray,
    vi: np.ndarray,
    ar: np.ndarray,
    ai: np.ndarray,
    parent: np.ndarray,
    child: np.ndarray,
    z: np.ndarray,
    active: np.ndarray,
    step: np.ndarray,
) -> None:
    """Voltage drops from the root (F4) for the ``active`` power flows of a block.

    ``step`` receives each power flow's largest ``|ΔV|²``; a NaN update is kept (not
    ``≤``): no convergence, it stops that power flow's sweep."""
    step[:] = 0.0
    for k in range(child.shape[0]):
        zr, zi = z[k].real, z[k].imag
        pk, ck = parent[k], child[k]
        for s in range(vr.shape[1]):  # the block's power flows: the SIMD loop
            a, b = _drop(vr[pk, s], vi[pk, s], ar[ck, s], ai[ck, s], zr, zi)
            dr, di = a - vr[ck, s], b - vi[ck, s]
            dd = dr * dr + di * di
            st = step[s]
            step[s] = st if dd <= st else dd
            on = active[s]  # a converged power flow keeps its voltages: a select, no branch
            vr[ck, s] = a if on else vr[ck, s]
            vi[ck, s] = b if on else vi[ck, s]


def _outputs_py(
    vr: np.ndarray,
    vi: np.ndarray,
    ar: np.ndarray,
    ai: np.ndarray,
    parent: np.ndarray,
    child: np.ndarray,
    out: Out,
) -> None:
    """Voltages, bus currents (``ar + j ai``, root zeroed) and branch currents (F5) of a
    solved block ``[n_bus, block]`` into the batch-major outputs ``[block, ·]``; voltages and
    bus currents only when their outputs have columns (a caller of the branch currents alone
    passes ``[block, 0]``)."""
    v_out, ibus_out, ibr_out = out[0], out[1], out[2]
    if v_out.shape[1] > 0:
        for s in range(vr.shape[1]):
            for j in range(vr.shape[0]):
                v_out[s, j] = complex(vr[j, s], vi[j, s])
                ibus_out[s, j] = complex(ar[j, s], ai[j, s])
    _backward(ar, ai, parent, child)
    for s in range(vr.shape[1]):
        for k in range(child.shape[0]):
            ibr_out[s, k] = complex(ar[child[k], s], ai[child[k], s])


def _lockstep_py(p: np.ndarray, q: np.ndarray, net: Net, out: Out) -> None:
    """One block ``[block, n_bus]`` of power flows in lockstep: ``V ← V₀ − Z I(V)`` along the
    tree (F4, F5) until each power flow's own ``max_j |ΔV_j| < tol``, the converged ones
    frozen while the rest iterate; ``iterations`` -1 for one still moving after ``max_iter``."""
    base_mva, y, parent, child, z, root, v0, tol, max_iter = net
    iters = out[3]
    nb, n_bus = p.shape
    vr = np.full((n_bus, nb), v0.real)
    vi = np.full((n_bus, nb), v0.imag)
    sr = np.empty((n_bus, nb))  # conj(S) per unit, transposed to [n_bus, block]
    si = np.empty((n_bus, nb))
    for s in range(nb):
        for j in range(n_bus):
            sr[j, s] = p[s, j] / base_mva
            si[j, s] = -q[s, j] / base_mva
    ar = np.empty((n_bus, nb))
    ai = np.empty((n_bus, nb))
    step = np.empty(nb)
    active = np.ones(nb, dtype=np.bool_)
    it = 0
    n_active = nb
    while n_active > 0 and it < max_iter:
        it += 1
        _currents(vr, vi, sr, si, y, root, ar, ai)
        _backward(ar, ai, parent, child)
        _forward(vr, vi, ar, ai, parent, child, z, active, step)
        n_active = 0
        for s in range(nb):
            if active[s]:
                if np.sqrt(step[s]) < tol:  # converged in this sweep: its update was kept
                    active[s] = False
                    iters[s] = it
                else:
                    n_active += 1
    for s in range(nb):
        if active[s]:
            iters[s] = -1
    _currents(vr, vi, sr, si, y, root, ar, ai)
    _outputs_block(vr, vi, ar, ai, parent, child, out)


def _single_py(p: np.ndarray, q: np.ndarray, net: Net, out: Out) -> None:
    """One power flow (loads ``[n_bus]``, outputs ``[1, ·]``): the sweep of
    :func:`_lockstep_py` (F4, F5) with scalar loops, no block and no mask."""
    base_mva, y, parent, child, z, root, v0, tol, max_iter = net
    n_bus = p.shape[0]
    vr = np.full((n_bus, 1), v0.real)
    vi = np.full((n_bus, 1), v0.imag)
    sr = p / base_mva
    si = -q / base_mva
    ar = np.empty((n_bus, 1))
    ai = np.empty((n_bus, 1))
    it = 0
    step = np.inf
    while it < max_iter and not step < tol:
        it += 1
        for j in range(n_bus):
            ar[j, 0], ai[j, 0] = _bus_current(
                vr[j, 0], vi[j, 0], sr[j], si[j], y[j].real, y[j].imag
            )
        ar[root, 0] = 0.0
        ai[root, 0] = 0.0
        for k in range(child.shape[0] - 1, -1, -1):
            ar[parent[k], 0] += ar[child[k], 0]
            ai[parent[k], 0] += ai[child[k], 0]
        step = 0.0
        for k in range(child.shape[0]):
            pk, ck = parent[k], child[k]
            a, b = _drop(vr[pk, 0], vi[pk, 0], ar[ck, 0], ai[ck, 0], z[k].real, z[k].imag)
            dr, di = a - vr[ck, 0], b - vi[ck, 0]
            dd = dr * dr + di * di
            if not dd <= step:  # a NaN update is no convergence: it stops the sweep
                step = dd
            vr[ck, 0], vi[ck, 0] = a, b
        step = np.sqrt(step)
    out[3][0] = it if step < tol else -1
    _currents(vr, vi, sr.reshape(n_bus, 1), si.reshape(n_bus, 1), y, root, ar, ai)
    _outputs_block(vr, vi, ar, ai, parent, child, out)


def _sweep_py(p: np.ndarray, q: np.ndarray, net: Net, out: Out) -> None:
    """The batch ``[batch, n_bus]`` in equal blocks, in parallel over the blocks."""
    n_batch, n_bus = p.shape
    cap = max(_NARROW, min(_BLOCK, _BLOCK_BYTES // (48 * n_bus)) // _SIMD * _SIMD)
    # equal blocks in whole SIMD vectors: 100 is one block, 200 two of 104 and 96
    n_blocks = max((n_batch + cap - 1) // cap, 1)
    width = max(((n_batch + n_blocks - 1) // n_blocks + _SIMD - 1) // _SIMD * _SIMD, _SIMD)
    n_blocks = (n_batch + width - 1) // width
    v, i_bus, i_branch, iters = out
    for b in numba.prange(n_blocks):
        lo = b * width
        hi = min(lo + width, n_batch)
        if hi - lo >= _NARROW:
            _lockstep(
                p[lo:hi], q[lo:hi], net, (v[lo:hi], i_bus[lo:hi], i_branch[lo:hi], iters[lo:hi])
            )
        else:
            for s in range(lo, hi):
                one = (v[s : s + 1], i_bus[s : s + 1], i_branch[s : s + 1], iters[s : s + 1])
                _single(p[s], q[s], net, one)


def _compile(
    fn: F, *, parallel: bool = True, error_model: Literal["python", "numpy"] = "python"
) -> F:
    """``fn`` compiled with numba, cached on disk where a writable cache location exists.

    ``error_model="numpy"``: a division by zero gives inf/NaN instead of raising, which lets
    LLVM vectorize a loop that divides (a raising division is an exit from the loop); a
    collapsed voltage (``|V| = 0``) then gives NaN: no convergence, ``PowerFlowError``."""
    try:
        kernel = numba.njit(fn, cache=True, parallel=parallel, nogil=True, error_model=error_model)
    except RuntimeError:  # "cannot cache function …: no locator available": nothing writable
        kernel = numba.njit(fn, cache=False, parallel=parallel, nogil=True, error_model=error_model)
    return cast(F, kernel)


def _outputs(n_batch: int, n_bus: int, n_branch: int) -> Out:
    """The kernels' output buffers: voltages, bus currents, branch currents, iterations."""
    v = np.empty((n_batch, n_bus), dtype=np.complex128)
    return (
        v,
        np.empty_like(v),
        np.empty((n_batch, n_branch), dtype=np.complex128),
        np.empty(n_batch, dtype=np.int64),
    )


_bus_current = _compile(_bus_current_py, parallel=False, error_model="numpy")
_drop = _compile(_drop_py, parallel=False)
_currents = _compile(_currents_py, parallel=False, error_model="numpy")
_backward = _compile(_backward_py, parallel=False)
_forward = _compile(_forward_py, parallel=False)
_outputs_block = _compile(_outputs_py, parallel=False)
_lockstep = _compile(_lockstep_py, parallel=False, error_model="numpy")
_single = _compile(_single_py, parallel=False, error_model="numpy")
_kernel = _compile(_sweep_py)
_kernel_serial = _compile(_sweep_py, parallel=False)
#: Power flows per call from which the blocks run on numba's threads. Below it one thread:
#: a DCP evaluation (~1 000 power flows, a few ms) ran 4–6× slower on two threads than on
#: one on a loaded two-core machine (the threads wait for each other at every call).
PARALLEL_MIN = 8192


def sweep(
    p: np.ndarray,
    q: np.ndarray,
    base_mva: float,
    y: np.ndarray,
    parent: np.ndarray,
    child: np.ndarray,
    z: np.ndarray,
    root: int,
    v0: complex,
    tol: float,
    max_iter: int,
) -> Out:
    """Run the compiled sweep on net loads ``p``, ``q`` (MW, Mvar; ``[batch, n_bus]``).

    Solves ``V ← V₀ − Z I(V)`` (F4) along the tree for every power flow of the batch until
    its own largest update ``max_j |ΔV_j|`` is below ``tol``, then the bus and branch
    currents at the solution (F4, F5). Returns ``(v, i_bus, i_branch, iterations)``;
    iterations is -1 for a power flow that did not converge within ``max_iter`` sweeps."""
    out = _outputs(p.shape[0], p.shape[1], child.shape[0])
    p, q = np.ascontiguousarray(p, dtype=np.float64), np.ascontiguousarray(q, dtype=np.float64)
    # one thread (a pool thread of flexopt.executors, NUMBA_NUM_THREADS=1): no parallel launch
    parallel = p.shape[0] >= PARALLEL_MIN and numba.get_num_threads() > 1
    kernel = _kernel if parallel else _kernel_serial
    kernel(p, q, (float(base_mva), y, parent, child, z, root, v0, tol, max_iter), out)
    return out
