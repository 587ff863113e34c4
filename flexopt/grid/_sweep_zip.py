"""Compiled backward/forward sweep with voltage-dependent loads (numba; F4, F4a).

The iterate of :mod:`flexopt.grid._sweep` with pandapower's load model: bus ``j`` draws
``P_j (c^p + c^i |V_j| + c^z |V_j|²) + j Q_j (…)`` at the magnitude of its own voltage,
``|V_j| = |Ṽ_j| / |T_j|`` where ``Ṽ`` is the voltage referred to the root (F3a). Used only
for feeders with constant-impedance or constant-current shares; the constant-power kernel
stays the default.
"""

from __future__ import annotations

import numba
import numpy as np

from flexopt.grid._sweep import _compile, _outputs

__all__ = ["sweep_zip"]


def _sweep_zip_py(
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
    cz: np.ndarray,
    ci: np.ndarray,
    inv_t: np.ndarray,
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
        for j in range(n_bus):
            v[j] = v0
        it = 0
        step = np.inf
        while it < max_iter and not step < tol:
            it += 1
            _currents(v, acc, p[b], q[b], base_mva, y, cz, ci, inv_t)
            acc[root] = 0.0
            for k in range(n_br - 1, -1, -1):  # backward: leaves to root
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
        _currents(v, acc, p[b], q[b], base_mva, y, cz, ci, inv_t)
        acc[root] = 0.0
        for j in range(n_bus):
            v_out[b, j] = v[j]
            ibus_out[b, j] = acc[j]
        for k in range(n_br - 1, -1, -1):
            acc[parent[k]] += acc[child[k]]
        for k in range(n_br):
            ibr_out[b, k] = acc[child[k]]


def _currents_py(
    v: np.ndarray,
    out: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    base_mva: float,
    y: np.ndarray,
    cz: np.ndarray,
    ci: np.ndarray,
    inv_t: np.ndarray,
) -> None:
    """Bus currents ``conj(S_j(|V_j|) / V_j) + y_j V_j`` (F4a) from the voltages ``v``."""
    for j in range(v.shape[0]):
        vj = v[j]
        v2 = vj.real * vj.real + vj.imag * vj.imag
        vm = np.sqrt(v2) * inv_t[j]
        fp = 1.0 - cz[0, j] - ci[0, j] + vm * (ci[0, j] + vm * cz[0, j])
        fq = 1.0 - cz[1, j] - ci[1, j] + vm * (ci[1, j] + vm * cz[1, j])
        sc = complex(p[j] * fp / base_mva, -q[j] * fq / base_mva)
        out[j] = sc * vj / v2 + y[j] * vj


_currents = _compile(_currents_py, parallel=False)
_kernel = _compile(_sweep_zip_py, parallel=True)
_kernel_serial = _compile(_sweep_zip_py, parallel=False)


def sweep_zip(
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
    cz: np.ndarray,
    ci: np.ndarray,
    inv_t: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the compiled sweep on nominal loads ``p``, ``q`` (MW, Mvar at 1 pu; ``[batch, n]``).

    ``cz``, ``ci``: ``[2, n_bus]`` constant-impedance and constant-current shares of P (row
    0) and Q (row 1); ``inv_t``: ``1/|T_j|``. Returns ``(v, i_bus, i_branch, iterations)``;
    iterations is -1 for a power flow that did not converge."""
    v, ibus, ibr, iters = _outputs(p.shape[0], p.shape[1], child.shape[0])
    # one numba thread (a pool thread of flexopt.executors): no parallel launch
    kernel = _kernel if numba.get_num_threads() > 1 else _kernel_serial
    kernel(
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
        np.ascontiguousarray(cz, dtype=np.float64),
        np.ascontiguousarray(ci, dtype=np.float64),
        np.ascontiguousarray(inv_t, dtype=np.float64),
        v,
        ibus,
        ibr,
        iters,
    )
    return v, ibus, ibr, iters
