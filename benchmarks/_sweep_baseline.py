"""Compiled backward/forward sweep (numba): O(n) per power flow, parallel over the batch.

Same fixed point and the same iterate sequence as the matrix form in ``feeder.py`` (F4): all
bus currents from the previous voltages, then ``V = V₀ − Z I``, evaluated here along the tree
— a backward pass accumulating branch currents from the leaves and a forward pass dropping the
voltage from the root. Each power flow stops on its own tolerance.

The compiled kernel is cached on disk where numba finds a writable place — beside this file,
in ``NUMBA_CACHE_DIR``, or in the user's cache directory — and compiled in memory on each
run when none is writable (a read-only install used by someone without a home directory).
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

__all__ = ["sweep"]


def _sweep_py(
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
    v_out: np.ndarray,
    ibus_out: np.ndarray,
    ibr_out: np.ndarray,
    iters: np.ndarray,
) -> None:
    n_batch, n_bus = p.shape
    n_br = child.shape[0]
    for b in numba.prange(n_batch):
        v = np.empty(n_bus, dtype=np.complex128)
        acc = np.empty(n_bus, dtype=np.complex128)
        sc = np.empty(n_bus, dtype=np.complex128)  # conj(S) in per unit
        for j in range(n_bus):
            v[j] = v0
            sc[j] = complex(p[b, j] / base_mva, -q[b, j] / base_mva)
        it = 0
        step = np.inf
        while it < max_iter and not step < tol:
            it += 1
            for j in range(n_bus):  # bus currents from the previous voltages
                vj = v[j]
                acc[j] = sc[j] * vj / (vj.real * vj.real + vj.imag * vj.imag) + y[j] * vj
            acc[root] = 0.0
            for k in range(
                n_br - 1, -1, -1
            ):  # backward: leaves to root (breadth-first order reversed)
                acc[parent[k]] += acc[child[k]]
            step = 0.0
            for k in range(n_br):  # forward: root to leaves
                c = child[k]
                new = v[parent[k]] - z[k] * acc[c]
                d = new - v[c]
                dd = d.real * d.real + d.imag * d.imag
                if not dd <= step:  # a NaN update is no convergence: it stops the sweep
                    step = dd
                v[c] = new
            step = np.sqrt(step)
        iters[b] = it if step < tol else -1
        for j in range(n_bus):
            vj = v[j]
            acc[j] = sc[j] * vj / (vj.real * vj.real + vj.imag * vj.imag) + y[j] * vj
        acc[root] = 0.0
        for j in range(n_bus):
            v_out[b, j] = v[j]
            ibus_out[b, j] = acc[j]
        for k in range(n_br - 1, -1, -1):
            acc[parent[k]] += acc[child[k]]
        for k in range(n_br):
            ibr_out[b, k] = acc[child[k]]


def _compile(fn: Callable[..., None], *, parallel: bool = True) -> Callable[..., None]:
    """``fn`` compiled with numba, cached on disk where a writable cache location exists."""
    try:
        kernel: Callable[..., None] = numba.njit(parallel=parallel, cache=True, nogil=True)(fn)
    except RuntimeError:  # "cannot cache function …: no locator available": nothing writable
        kernel = numba.njit(parallel=parallel, cache=False, nogil=True)(fn)
    return kernel


def _outputs(
    n_batch: int, n_bus: int, n_branch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The kernels' output buffers: voltages, bus currents, branch currents, iterations."""
    v = np.empty((n_batch, n_bus), dtype=np.complex128)
    return (
        v,
        np.empty_like(v),
        np.empty((n_batch, n_branch), dtype=np.complex128),
        np.empty(n_batch, dtype=np.int64),
    )


_kernel = _compile(_sweep_py)


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the compiled sweep on net loads ``p``, ``q`` (MW, Mvar; ``[batch, n_bus]``).

    Returns ``(v, i_bus, i_branch, iterations)``; iterations is -1 for a power flow that did
    not converge."""
    v, ibus, ibr, iters = _outputs(p.shape[0], p.shape[1], child.shape[0])
    _kernel(
        np.ascontiguousarray(p, dtype=np.float64),
        np.ascontiguousarray(q, dtype=np.float64),
        float(base_mva),
        y,
        parent,
        child,
        z,
        root,
        v0,
        tol,
        max_iter,
        v,
        ibus,
        ibr,
        iters,
    )
    return v, ibus, ibr, iters
