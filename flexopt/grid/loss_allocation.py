"""Allocation of feeder losses to bus loads and screening of prosumers (stage S4).

Every method returns allocations ``[..., n_bus]`` (MW; zero at the root) that sum exactly to
the total active loss of the power flow in every state — no load, losses from line charging
or transformer magnetization only, net load near zero, reverse flow. Equations L1–L5 in
``models/loss_allocation.md``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from flexopt.errors import PowerFlowError
from flexopt.grid._mlf import adjoint_factors
from flexopt.grid.engines import load_factors
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
        The shunt losses of the branches (line conductance, transformer iron losses) go to
        each branch's downstream bus, eq. (L1a).
        ``marginal`` — marginal loss charges ``m_j`` corrected to the total in proportion to
        ``|m_j|``, eq. (L3) (the classic normalization ``m_j P_loss / Σ m`` whenever the
        charges share a sign; bounded where that one explodes).
        ``pro_rata`` — in proportion to each bus's active power ``|P_j|``, eq. (L4).
        Where the weights of ``marginal`` or ``pro_rata`` all vanish (no load), the
        allocation is the branch-current one (L1).
    step_mw : float, optional
        ``marginal`` only: central differences with this step (MW) instead of the exact
        derivatives (L2a); see :func:`marginal_loss_factors`.

    Returns
    -------
    numpy.ndarray
        ``[..., n_bus]`` MW, summing to ``pf.loss_mw``.
    """
    if method not in LOSS_ALLOCATION_METHODS:
        raise ValueError(
            f"unknown loss allocation method {method!r}; use one of {LOSS_ALLOCATION_METHODS}"
        )
    f = pf.feeder
    alloc: np.ndarray = np.real(pf.i_bus_pu * _path_weighted_current(pf)) * f.base_mva
    if f.g_end_pu is not None:  # (L1a) a branch's shunt losses go to its downstream bus
        v2 = np.abs(pf.v_referred_pu) ** 2
        shunt = f.g_end_pu[0] * v2[..., f.parent] + f.g_end_pu[1] * v2[..., f.child]
        np.add.at(alloc.T, f.child, (shunt * f.base_mva).T)
    if method == "branch_current":
        return alloc
    shape = pf.v_pu.shape
    loss = np.broadcast_to(pf.loss_mw[..., None], shape)
    if method == "marginal":
        dl_dp, dl_dq = marginal_loss_factors(pf, step_mw=step_mw)
        m = dl_dp * pf.p_mw + dl_dq * pf.q_mvar  # (L3) marginal charges
        weight = np.abs(m)
        base = m
    else:
        weight = np.abs(np.broadcast_to(pf.p_mw, shape))  # (L4)
        base = np.zeros(shape)
    weight = np.array(weight, dtype=float, copy=True)
    weight[..., f.root] = 0.0
    base = np.where(np.arange(f.n_bus) == f.root, 0.0, base)
    total = weight.sum(axis=-1, keepdims=True)
    none = total == 0.0  # no load at all: fall back to (L1), exact in every state
    gap = loss - base.sum(axis=-1, keepdims=True)
    share = weight / np.where(none, 1.0, total)
    out: np.ndarray = np.where(none, alloc, base + share * gap)
    return out


def marginal_loss_factors(
    pf: PowerFlowResult, *, step_mw: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Marginal loss coefficients ``∂P_loss/∂P_j`` and ``∂P_loss/∂Q_j`` (eq. L2).

    Exact derivatives of the converged power flow by the implicit function theorem (adjoint
    form, eq. L2a): one adjoint system per batch element instead of ``4n`` perturbed power
    flows, solved along the tree in ``O(n)`` — a pass from the leaves and one from the root,
    compiled (:mod:`flexopt.grid._mlf`) — equal to the dense ``2(n−1)`` real solve
    (:func:`_marginal_dense`) to rounding. With ``step_mw`` given, central differences of the AC power flow
    instead (the reference the tests compare against; all ``4n`` perturbed cases in one
    batched call). MW of loss per MW (Mvar) of extra load at bus ``j``; zero at the root.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Each ``[..., n_bus]``.

    Raises
    ------
    PowerFlowError
        When the adjoint system is singular (a non-finite factor).
    """
    if step_mw is not None:
        return _marginal_differences(pf, step_mw)
    f = pf.feeder
    n = f.n_bus
    shape = pf.v_pu.shape
    v, p, q = _flat_state(pf)
    zip_shares = None
    if f.const_z_share is not None and f.const_i_share is not None:
        tau = np.ones(n) if f.ratio is None else np.abs(f.ratio)
        zip_shares = (f.const_z_share, f.const_i_share, tau)
    dl_dp, dl_dq = adjoint_factors(
        v,
        pf.i_branch_pu.reshape(-1, f.n_branch),
        p,
        q,
        y=f.y_shunt_pu,
        gl=_branch_shunt_g(f),
        zip_shares=zip_shares,
        parent=f.parent,
        child=f.child,
        z=f.z_branch_pu,
        root=f.root,
        base_mva=f.base_mva,
    )
    if not (np.isfinite(dl_dp).all() and np.isfinite(dl_dq).all()):  # no pivoting on the tree
        raise PowerFlowError(
            "marginal loss factors: the adjoint system is singular at this operating point "
            "(the power flow is at or beyond its nose point)"
        )
    return dl_dp.reshape(shape), dl_dq.reshape(shape)


def _marginal_dense_factors(pf: PowerFlowResult) -> tuple[np.ndarray, np.ndarray]:
    """(L2a) by the dense real Jacobian (:func:`_marginal_dense`) in chunks of the batch: the
    reference the tree adjoint of :func:`marginal_loss_factors` is tested against."""
    n = pf.feeder.n_bus
    shape = pf.v_pu.shape
    v, p, q = _flat_state(pf)
    w = _path_weighted_current(pf).reshape(-1, n)
    dl_dp = np.zeros(v.shape)
    dl_dq = np.zeros(v.shape)
    for lo in range(0, v.shape[0], _CHUNK):  # J is [chunk, 2n, 2n]: bound the memory
        sl = slice(lo, lo + _CHUNK)
        dl_dp[sl], dl_dq[sl] = _marginal_dense(pf.feeder, v[sl], p[sl], q[sl], w[sl])
    return dl_dp.reshape(shape), dl_dq.reshape(shape)


_CHUNK = 256


def _flat_state(pf: PowerFlowResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Referred voltages and nominal loads of the batch, flattened to ``[batch, n_bus]``."""
    n, shape = pf.feeder.n_bus, pf.v_pu.shape
    v = pf.v_referred_pu.reshape(-1, n)
    p = np.broadcast_to(pf.p_mw, shape).reshape(-1, n)
    q = np.broadcast_to(pf.q_mvar, shape).reshape(-1, n)
    return v, p, q


def _branch_shunt_g(f: Feeder) -> np.ndarray:
    """The branches' shunt conductance gathered at the buses they hang at (F6), ``[n_bus]``."""
    gl = np.zeros(f.n_bus)
    if f.g_end_pu is not None:
        np.add.at(gl, f.parent, f.g_end_pu[0])
        np.add.at(gl, f.child, f.g_end_pu[1])
    return gl


def _path_weighted_current(pf: PowerFlowResult) -> np.ndarray:
    """``w_j = Σ_k A[k, j] r_k conj(I_k)``: the loss-weighted current seen along bus j's path
    (L1; half the derivative of ``Σ r_k |I_k|²`` with respect to ``I_j``, L2a)."""
    f = pf.feeder
    w: np.ndarray = (np.conj(pf.i_branch_pu) * f.r_pu) @ f.path
    return w


def _marginal_dense(
    f: Feeder, v: np.ndarray, p: np.ndarray, q: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(L2a) on a flat batch. With ``x = [Re V; Im V]`` of the non-root buses (referred to
    the root, F3a), the power flow ``V − V₀ + Z I(V, p, q) = 0`` (F4) has the real Jacobian
    ``J = 1 + R(Z diag a) + R̄(Z diag b)`` with ``a_j = ∂I_j/∂V_j``, ``b_j = ∂I_j/∂conj(V_j)``
    (shunts and the voltage-dependent loads of F4a). The loss (F6) has gradient ``g`` in
    ``x`` and a direct term through ``c_j = ∂I_j/∂p_j``. Then
    ``dL/dp_j = S_b [2 Re(w_j c_j) − Re((μᵀ Z)_j c_j)]`` with ``Jᵀ λ = g``,
    ``μ = λ_re − i λ_im``."""
    n = f.n_bus
    nr = np.flatnonzero(np.arange(n) != f.root)
    m = nr.size
    v, w, p, q = v[:, nr], w[:, nr], p[:, nr], q[:, nr]
    z = f.z_pu[np.ix_(nr, nr)]
    vc = np.conj(v)
    s_b = f.base_mva
    fp: np.ndarray | None = None
    fq: np.ndarray | None = None
    # I_j = (A + B |V|/τ + C |V|²/τ²)/conj(V) + y V with conj(S(|V|)) = A + B m + C m² (F4a)
    if f.const_z_share is not None and f.const_i_share is not None:
        cz, ci = f.const_z_share[:, nr], f.const_i_share[:, nr]
        tau = np.ones(m) if f.ratio is None else np.abs(f.ratio[nr])
        coef_a = (p * (1 - cz[0] - ci[0]) - 1j * q * (1 - cz[1] - ci[1])) / s_b
        coef_b = (p * ci[0] - 1j * q * ci[1]) / s_b / tau
        coef_c = (p * cz[0] - 1j * q * cz[1]) / s_b / tau**2
        vm = np.abs(v)
        a = f.y_shunt_pu[nr] + coef_c + coef_b / (2 * vm)
        b = -coef_a / vc**2 - coef_b * vm / (2 * vc**2)
        fp, fq = load_factors(cz, ci, vm / tau)
        za = z[None] * a[:, None, :]
    else:
        a = f.y_shunt_pu[nr]
        b = -((p - 1j * q) / s_b) / vc**2
        za = z * a  # Z diag(a), holomorphic in dV
    zb = z[None] * b[:, None, :]  # Z diag(b), acts on conj(dV)
    jac = np.empty((v.shape[0], 2 * m, 2 * m))
    eye = np.eye(m)
    jac[:, :m, :m] = eye + za.real + zb.real
    jac[:, :m, m:] = -za.imag + zb.imag
    jac[:, m:, :m] = za.imag + zb.imag
    jac[:, m:, m:] = eye + za.real - zb.real
    u, t = a * w, b * w
    g = 2.0 * np.concatenate([u.real + t.real, t.imag - u.imag], axis=1)
    if f.g_end_pu is not None:  # the branches' shunt conductance losses g|V|² (F6)
        gl = _branch_shunt_g(f)
        g += 2.0 * np.concatenate([gl[nr] * v.real, gl[nr] * v.imag], axis=1)
    lam = np.linalg.solve(np.swapaxes(jac, 1, 2), g[..., None])[..., 0]
    muz = (lam[:, :m] - 1j * lam[:, m:]) @ z
    c = 1.0 / (s_b * vc)  # ∂I_j/∂p_j of a constant-power load; F4a scales it by f^p(|V|)
    cq = -1j * c if fq is None else -1j * c * fq
    if fp is not None:
        c = c * fp
    dl_dp = np.zeros((v.shape[0], n))
    dl_dq = np.zeros_like(dl_dp)
    dl_dp[:, nr] = s_b * (2.0 * (w * c).real - (muz * c).real)
    dl_dq[:, nr] = s_b * (2.0 * (w * cq).real - (muz * cq).real)
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
