"""The feeder's power-flow engines behind one call (F4, F4a).

``numba``: the compiled tree sweep (:mod:`flexopt.grid._sweep` for constant-power loads,
:mod:`flexopt.grid._sweep_zip` with pandapower's voltage-dependent loads), O(n) per power
flow, parallel over the batch. ``numpy``: the matrix form, one complex matrix product per
iteration for a whole batch — the reference both iterate the same fixed point against.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flexopt.errors import PowerFlowError
from flexopt.grid._sweep import sweep
from flexopt.grid._sweep_zip import sweep_zip

__all__ = ["bus_current", "load_factors", "run_sweep", "sweep_numpy"]

#: constant-impedance shares, constant-current shares and 1/|T_j| (F4a)
ZipData = tuple[np.ndarray, np.ndarray, np.ndarray]


def load_factors(
    cz: np.ndarray, ci: np.ndarray, vm_pu: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``c^p + c^i |V| + c^z |V|²`` for P (row 0 of the shares) and Q (row 1) (F4a).

    ``c^p = 1 − c^z − c^i``: pandapower's voltage-dependent load model (``makeSbus``)."""
    fp = 1.0 - cz[0] - ci[0] + vm_pu * (ci[0] + vm_pu * cz[0])
    fq = 1.0 - cz[1] - ci[1] + vm_pu * (ci[1] + vm_pu * cz[1])
    return fp, fq


def run_sweep(
    p2: np.ndarray,
    q2: np.ndarray,
    *,
    base_mva: float,
    y: np.ndarray,
    parent: np.ndarray,
    child: np.ndarray,
    z: np.ndarray,
    root: int,
    v0: complex,
    tol_pu: float,
    max_iter: int,
    engine: str,
    matrices: Callable[[], tuple[np.ndarray, np.ndarray]],
    zip_data: ZipData | None,
    name: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Solve a flat batch ``[batch, n_bus]`` of nominal loads (MW, Mvar) with one engine.

    ``matrices`` gives ``(Zᵀ, A)`` (F2, F3) for the numpy engine. Returns ``(v, i_bus,
    i_branch, iterations)`` referred to the root.

    Raises
    ------
    PowerFlowError
        If a power flow has not converged after ``max_iter`` sweeps.
    """
    if engine not in ("auto", "numba", "numpy"):
        raise ValueError(f"engine must be 'auto', 'numba' or 'numpy', got {engine!r}")
    if engine != "numpy":
        args = (p2, q2, base_mva, y, parent, child, z, root, v0, tol_pu, max_iter)
        if zip_data is None:
            v, i_bus, i_branch, iters = sweep(*args)
        else:
            v, i_bus, i_branch, iters = sweep_zip(*args, *zip_data)
        if np.any(iters < 0):
            bad = int(np.sum(iters < 0))
            raise PowerFlowError(
                f"feeder '{name}': power flow did not converge in {max_iter} sweeps "
                f"({bad} of {len(iters)} cases); the load is probably beyond the feeder's "
                f"loadability"
            )
        return v, i_bus, i_branch, int(iters.max(initial=0))
    s_conj = (p2 - 1j * q2) / base_mva
    s_conj[:, root] = 0.0
    load = None if zip_data is None else _zip_load(p2, q2, base_mva, root, zip_data)
    zt, path = matrices()
    v, i_bus, i_branch, it, step = sweep_numpy(s_conj, y, zt, path, v0, tol_pu, max_iter, load)
    if not step < tol_pu:
        raise PowerFlowError(
            f"feeder '{name}': power flow did not converge in {max_iter} sweeps "
            f"(last voltage update {step:.3g} pu); the load is probably beyond the "
            f"feeder's loadability"
        )
    return v, i_bus, i_branch, it


def _zip_load(
    p2: np.ndarray, q2: np.ndarray, base_mva: float, root: int, zip_data: ZipData
) -> Callable[[np.ndarray], np.ndarray]:
    """``Ṽ ↦ conj(S(|V|))`` per unit of the voltage-dependent loads (F4a), root zeroed."""
    cz, ci, inv_t = zip_data

    def load(v: np.ndarray) -> np.ndarray:
        fp, fq = load_factors(cz, ci, np.abs(v) * inv_t)
        s_conj: np.ndarray = (p2 * fp - 1j * q2 * fq) / base_mva
        s_conj[:, root] = 0.0
        return s_conj

    return load


def sweep_numpy(
    s_conj: np.ndarray,
    y: np.ndarray,
    zt: np.ndarray,
    path: np.ndarray,
    v0: complex,
    tol_pu: float,
    max_iter: int,
    load: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float]:
    """Fixed point ``V ← V₀ − Z I(V)`` (F4) over a flat batch ``[batch, n_bus]``.

    Parameters
    ----------
    s_conj : numpy.ndarray
        ``conj(S)`` per unit, zero at the root (constant-power loads).
    y, zt, path : numpy.ndarray
        Bus shunt admittance (zero at the root), ``Zᵀ`` (F3) and the path matrix (F2).
    load : callable, optional
        ``V ↦ conj(S(|V|))`` for voltage-dependent loads (F4a), evaluated every sweep in place
        of ``s_conj``.

    Returns
    -------
    (v, i_bus, i_branch, iterations, last_step)
        ``last_step ≥ tol_pu`` means no convergence within ``max_iter`` sweeps.
    """
    # preallocated buffers: the loop allocates only the |ΔV| array of the stopping test
    v = np.full(s_conj.shape, v0, dtype=complex)
    v_new = np.empty_like(v)
    i_bus = np.empty_like(v)
    scratch = (np.empty(s_conj.shape), np.empty(s_conj.shape))
    step = float("inf")
    it = 0
    while it < max_iter:
        it += 1
        bus_current(s_conj if load is None else load(v), v, y, i_bus, scratch)
        np.matmul(i_bus, zt, out=v_new)
        np.subtract(v0, v_new, out=v_new)
        np.subtract(v_new, v, out=i_bus)  # i_bus is recomputed next sweep: reuse it for ΔV
        step = float(np.abs(i_bus).max(initial=0.0))
        v, v_new = v_new, v
        if step < tol_pu:
            break
    bus_current(s_conj if load is None else load(v), v, y, i_bus, scratch)
    i_branch = i_bus @ path.T  # backward sweep: I_k = Σ_{j downstream of k} I_j (F5)
    return v, i_bus, i_branch, it, step


def bus_current(
    s_conj: np.ndarray,
    v: np.ndarray,
    y: np.ndarray,
    out: np.ndarray,
    scratch: tuple[np.ndarray, np.ndarray],
) -> None:
    """``I = conj(S/V) + y V = conj(S)·V/|V|² + y V`` in place (real ops beat complex division)."""
    inv_v2, im2 = scratch
    np.multiply(v.real, v.real, out=inv_v2)
    np.multiply(v.imag, v.imag, out=im2)
    inv_v2 += im2
    np.reciprocal(inv_v2, out=inv_v2)
    np.multiply(s_conj, v, out=out)
    out *= inv_v2
    if np.any(y):
        out += y * v
