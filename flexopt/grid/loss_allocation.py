"""Allocation of feeder losses to bus loads and screening of prosumers (stage S4).

Every method returns allocations ``[..., n_bus]`` (MW; zero at the root) that sum exactly to
the total active loss of the power flow. Equations L1–L5 in ``models/loss_allocation.md``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from flexopt.grid.feeder import Feeder, PowerFlowResult

__all__ = ["LOSS_ALLOCATION_METHODS", "allocate_losses", "marginal_loss_factors", "screen_buses"]

LossAllocationMethod = Literal["branch_current", "marginal", "pro_rata"]
LOSS_ALLOCATION_METHODS: tuple[str, ...] = ("branch_current", "marginal", "pro_rata")


def allocate_losses(
    pf: PowerFlowResult,
    method: LossAllocationMethod = "branch_current",
    *,
    step_mw: float | None = None,
) -> np.ndarray:
    """Share the active feeder loss among the buses (loads and injections).

    Parameters
    ----------
    pf : PowerFlowResult
        A converged power flow (any batch shape).
    method : {"branch_current", "marginal", "pro_rata"}
        ``branch_current`` — branch-current decomposition (Carpaneto, Chicco & Sumaili Akilimali
        2006, doi:10.1109/TPWRS.2006.873115), eq. (L1)::

            L_j = S_base Σ_{k ∈ path(j)} r_k Re(I_j conj(I_k))

        Exact by construction, since ``Σ_j I_j = I_k`` over the buses below branch ``k``
        gives ``Σ_j L_j = Σ_k r_k |I_k|²``; equal to Z-bus loss allocation on a radial feeder.
        ``marginal`` — marginal loss coefficients normalized to the total, eq. (L3).
        ``pro_rata`` — in proportion to active load, eq. (L4).
    step_mw : float, optional
        ``marginal`` only: central differences with this step (MW) instead of the exact
        derivatives (L2a); see :func:`marginal_loss_factors`.

    Returns
    -------
    numpy.ndarray
        ``[..., n_bus]`` MW, summing to ``pf.loss_mw``.
    """
    f = pf.feeder
    if method == "branch_current":
        alloc: np.ndarray = np.real(pf.i_bus_pu * _path_weighted_current(pf)) * f.base_mva
        return alloc
    loss = pf.loss_mw[..., None]
    if method == "marginal":
        dl_dp, dl_dq = marginal_loss_factors(pf, step_mw=step_mw)
        raw = dl_dp * pf.p_mw + dl_dq * pf.q_mvar
        return _normalize(raw, loss)
    if method == "pro_rata":
        p = np.array(pf.p_mw, dtype=float, copy=True)
        p[..., f.root] = 0.0
        return _normalize(p, loss)
    raise ValueError(
        f"unknown loss allocation method {method!r}; use one of {LOSS_ALLOCATION_METHODS}"
    )


def _normalize(raw: np.ndarray, loss: np.ndarray) -> np.ndarray:
    total = raw.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total != 0, raw * (loss / np.where(total != 0, total, 1.0)), 0.0)


def marginal_loss_factors(
    pf: PowerFlowResult, *, step_mw: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Marginal loss coefficients ``∂P_loss/∂P_j`` and ``∂P_loss/∂Q_j`` (eq. L2).

    Exact derivatives of the converged power flow by the implicit function theorem (adjoint
    form, eq. L2a): one real ``2(n−1)`` linear solve per batch element instead of ``4n``
    perturbed power flows. With ``step_mw`` given, central differences of the AC power flow
    instead (the reference the tests compare against; all ``4n`` perturbed cases in one
    batched call). MW of loss per MW (Mvar) of extra load at bus ``j``; zero at the root.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Each ``[..., n_bus]``.
    """
    if step_mw is not None:
        return _marginal_differences(pf, step_mw)
    n = pf.feeder.n_bus
    shape = pf.v_pu.shape
    v = pf.v_pu.reshape(-1, n)
    s_conj = (np.broadcast_to(pf.p_mw, shape) - 1j * np.broadcast_to(pf.q_mvar, shape)).reshape(
        -1, n
    )
    w = _path_weighted_current(pf).reshape(-1, n)
    dl_dp = np.zeros(v.shape)
    dl_dq = np.zeros(v.shape)
    for lo in range(0, v.shape[0], _CHUNK):  # J is [chunk, 2n, 2n]: bound the memory
        sl = slice(lo, lo + _CHUNK)
        dl_dp[sl], dl_dq[sl] = _marginal_implicit(pf.feeder, v[sl], s_conj[sl], w[sl])
    return dl_dp.reshape(shape), dl_dq.reshape(shape)


_CHUNK = 256


def _path_weighted_current(pf: PowerFlowResult) -> np.ndarray:
    """``w_j = Σ_k A[k, j] r_k conj(I_k)``: the loss-weighted current seen along bus j's path
    (L1; half the derivative of ``Σ r_k |I_k|²`` with respect to ``I_j``, L2a)."""
    f = pf.feeder
    w: np.ndarray = (np.conj(pf.i_branch_pu) * f.r_pu) @ f.path
    return w


def _marginal_implicit(
    f: Feeder, v: np.ndarray, s_conj_mva: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(L2a) on a flat batch. With ``x = [Re V; Im V]`` of the non-root buses, the power flow
    ``V − V₀ + Z I(V, p, q) = 0`` (F4) has the real Jacobian ``J = 1 + R(Z diag y) +
    R̄(Z diag b)``, ``b_j = ∂I_j/∂conj(V_j) = −conj(S_j)/conj(V_j)²``; the loss
    ``L = S_b Σ r_k |I_k|²`` has gradient ``g`` in ``x`` and a direct term through
    ``∂I_j/∂p_j = 1/(S_b conj V_j)`` (``−i`` times that for ``q_j``). Then
    ``dL/dp_j = S_b [2 Re(w_j c_j) − Re((μᵀ Z)_j c_j)]`` with ``Jᵀ λ = g``,
    ``μ = λ_re − i λ_im``."""
    n = f.n_bus
    nr = np.flatnonzero(np.arange(n) != f.root)
    m = nr.size
    v, w = v[:, nr], w[:, nr]
    z = f.z_pu[np.ix_(nr, nr)]
    y = f.y_shunt_pu[nr]
    vc = np.conj(v)
    b = -(s_conj_mva[:, nr] / f.base_mva) / vc**2
    za = z * y  # Z diag(y), holomorphic in dV
    zb = z[None] * b[:, None, :]  # Z diag(b), acts on conj(dV)
    jac = np.empty((v.shape[0], 2 * m, 2 * m))
    eye = np.eye(m)
    jac[:, :m, :m] = eye + za.real + zb.real
    jac[:, :m, m:] = -za.imag + zb.imag
    jac[:, m:, :m] = za.imag + zb.imag
    jac[:, m:, m:] = eye + za.real - zb.real
    u, t = y * w, b * w
    g = 2.0 * np.concatenate([u.real + t.real, t.imag - u.imag], axis=1)
    lam = np.linalg.solve(np.swapaxes(jac, 1, 2), g[..., None])[..., 0]
    muz = (lam[:, :m] - 1j * lam[:, m:]) @ z
    c = 1.0 / (f.base_mva * vc)
    dl_dp = np.zeros((v.shape[0], n))
    dl_dq = np.zeros_like(dl_dp)
    dl_dp[:, nr] = f.base_mva * (2.0 * (w * c).real - (muz * c).real)
    cq = -1j * c
    dl_dq[:, nr] = f.base_mva * (2.0 * (w * cq).real - (muz * cq).real)
    return dl_dp, dl_dq


def _marginal_differences(pf: PowerFlowResult, step_mw: float) -> tuple[np.ndarray, np.ndarray]:
    """(L2) by central differences: all ``4n`` perturbed cases in one batched power flow."""
    f = pf.feeder
    n = f.n_bus
    eye = np.eye(n) * step_mw
    p = pf.p_mw[..., None, :]
    q = pf.q_mvar[..., None, :]
    zero = np.zeros_like(eye)
    dp = np.concatenate([eye, -eye, zero, zero])  # [4n, n]
    dq = np.concatenate([zero, zero, eye, -eye])
    loss = f.power_flow(p + dp, q + dq).loss_mw  # [..., 4n]
    dl_dp = (loss[..., :n] - loss[..., n : 2 * n]) / (2 * step_mw)
    dl_dq = (loss[..., 2 * n : 3 * n] - loss[..., 3 * n :]) / (2 * step_mw)
    dl_dp[..., f.root] = 0.0
    dl_dq[..., f.root] = 0.0
    return dl_dp, dl_dq


def screen_buses(allocation: np.ndarray, coverage: float = 0.8) -> np.ndarray:
    """Positions of the buses that together carry ``coverage`` of the allocated losses (L5).

    Buses are ranked by allocated loss (descending); the smallest leading set whose
    cumulative share reaches ``coverage`` is returned (ties keep bus order). Buses with a
    non-positive allocation never qualify.

    Parameters
    ----------
    allocation : numpy.ndarray
        ``[n_bus]`` allocated loss (sum over hours first for energy-based screening).
    coverage : float
        Share in ``(0, 1]``.

    Returns
    -------
    numpy.ndarray
        Sorted bus positions.
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    a = np.asarray(allocation, dtype=float)
    positive = np.clip(a, 0.0, None)
    total = positive.sum()
    if total <= 0:
        return np.array([], dtype=int)
    order = np.argsort(-positive, kind="stable")
    share = np.cumsum(positive[order]) / total
    count = int(np.searchsorted(share, coverage - 1e-12) + 1)
    chosen = order[:count]
    return np.sort(chosen[positive[chosen] > 0])
