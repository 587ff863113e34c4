"""Marginal loss factors (L2a) by an adjoint solved along the tree (numba): O(n) per state.

The dense form (:func:`flexopt.grid.loss_allocation._marginal_dense`) builds the real
Jacobian ``J`` ``[2m, 2m]`` of the power flow over the ``m`` non-root buses and solves
``Jᵀ λ = g`` — ``O(m³)`` per state and memory-bound. On a radial feeder the same system is a
linear circuit on the tree, solved exactly here with one pass from the leaves and one from
the root; the results equal the dense form's to rounding (``tests/grid/test_mlf_adjoint.py``).

Derivation (all quantities referred to the root, F3a). The linearised power flow (F4, F4a)
is ``dV + Z (a ⊙ dV + b ⊙ conj(dV)) = −Z c dp`` with ``Z = Aᵀ diag(z) A`` (F2, F3),
``a_j = ∂I_j/∂V_j``, ``b_j = ∂I_j/∂conj(V_j)``. Under the real inner product
``⟨x, y⟩ = Re(x^H y)`` (that of ``[Re; Im]``, in which ``Jᵀ`` is taken) the adjoint of
``ψ ↦ M ψ`` is ``χ ↦ M^H χ`` and that of ``ψ ↦ N conj(ψ)`` is ``χ ↦ Nᵀ conj(χ)``; with
``Z = Zᵀ`` the conjugate of ``Jᵀ λ = g`` reads, for ``μ = λ_re − i λ_im`` and ``φ = Z μ``,

    μ + a ⊙ φ + conj(b) ⊙ conj(φ) = h,      h = conj(g_re + i g_im)          (adjoint)

and the dense form's ``μᵀ Z`` is ``φ``. So ``φ = Z s`` with bus "injections"
``s_j = h_j − a_j φ_j − conj(b_j φ_j)``: ``φ`` is zero at the root and drops
``φ_c = φ_π + z_k S_k`` along branch ``k`` (parent ``π``, child ``c``), ``S_k`` the sum of
``s`` below ``k`` (F5). Each subtree's ``S`` is an affine, real-linear function of the
voltage at its top, ``S_c = α_c(φ_c) + β_c``; a real-linear map ``ψ ↦ p ψ + q conj(ψ)``
is held as the complex pair ``(p, q)``. From the leaves (``α_j = (−a_j, −conj(b_j))``,
``β_j = h_j``): ``φ_c = M_c(φ_π) + e_c`` with ``M_c = (1 − z_k α_c)⁻¹``,
``e_c = M_c(z_k β_c)``, and the parent gathers ``α_π += α_c ∘ M_c``,
``β_π += α_c(e_c) + β_c``. From the root, ``φ_c = M_c(φ_π) + e_c``. Then (L2a)

    ∂L/∂p_j = S_b [2 Re(w_j c_j) − Re(φ_j c_j)],   ∂L/∂q_j: the same with c_j → c^q_j.

``(P, Q)⁻¹ = (conj(P), −Q) / (|P|² − |Q|²)`` in closed form. The elimination runs from the
leaves without pivoting: ``1 − z_k α_c`` is the identity plus a branch impedance times the
admittance of the subtree below it, far from singular on a feeder whose power flow converges
(a singular one gives inf/NaN where the dense solve raised). ``w_j = Σ_{k ∈ path(j)} r_k
conj(I_k)`` (L1) accumulates down the tree in the same kernel. The kernel holds no GIL and
runs one state after another: threads come from the caller (``flexopt.executors``).
"""

from __future__ import annotations

import numpy as np

from flexopt.grid._sweep import _compile

__all__ = ["adjoint_factors"]


def _compose_py(p1: complex, q1: complex, p2: complex, q2: complex) -> tuple[complex, complex]:
    """``(p1, q1) ∘ (p2, q2)``: ``ψ ↦ p1 χ + q1 conj(χ)`` after ``χ = p2 ψ + q2 conj(ψ)``."""
    return p1 * p2 + q1 * np.conj(q2), p1 * q2 + q1 * np.conj(p2)


def _adjoint_py(
    v: np.ndarray,
    i_branch: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    y: np.ndarray,
    gl: np.ndarray,
    cz: np.ndarray,
    ci: np.ndarray,
    tau: np.ndarray,
    parent: np.ndarray,
    child: np.ndarray,
    z: np.ndarray,
    root: int,
    s_b: float,
    dl_dp: np.ndarray,
    dl_dq: np.ndarray,
) -> None:
    """(L2a) for a flat batch ``[batch, n_bus]`` into ``dl_dp``, ``dl_dq`` (zero at the root).

    ``v``, ``i_branch``: referred voltages and branch currents (F3a, F5); ``gl``: the
    branches' shunt conductance gathered per bus (F6); ``cz``, ``ci``, ``tau``: ZIP shares
    and ``|T_j|`` (F4a; zero shares and ones give constant power: the extra terms are exact
    zeros)."""
    n_batch, n = v.shape
    n_br = child.shape[0]
    w = np.empty(n, dtype=np.complex128)  # w_j = Σ_{k ∈ path(j)} r_k conj(I_k) (L1, F2)
    ap = np.empty(n, dtype=np.complex128)  # α_j = (ap, aq): subtree current vs φ_j
    aq = np.empty(n, dtype=np.complex128)
    beta = np.empty(n, dtype=np.complex128)
    mp = np.empty(n, dtype=np.complex128)  # M_c = (mp, mq), e_c: φ_c = M_c(φ_π) + e_c
    mq = np.empty(n, dtype=np.complex128)
    e = np.empty(n, dtype=np.complex128)
    phi = np.empty(n, dtype=np.complex128)
    cp = np.empty(n, dtype=np.complex128)
    cq = np.empty(n, dtype=np.complex128)
    inv_sb = 1.0 / s_b
    for s in range(n_batch):
        w[root] = 0.0
        for k in range(n_br):  # root to leaves: w accumulates down the path
            w[child[k]] = w[parent[k]] + z[k].real * np.conj(i_branch[s, k])
        for j in range(n):
            if j == root:
                continue
            vj = v[s, j]
            vc = np.conj(vj)
            vm2 = vj.real * vj.real + vj.imag * vj.imag
            vm = np.sqrt(vm2)
            ivc = vj / vm2  # 1/conj(V): products below, no complex division
            ivc2 = ivc * ivc
            it = 1.0 / tau[j]
            pj, qj = p[s, j] * inv_sb, q[s, j] * inv_sb
            # I_j = (A + B|V|/τ + C|V|²/τ²)/conj(V) + y V (F4a): a = ∂I/∂V, b = ∂I/∂conj(V)
            coef_a = complex(pj * (1 - cz[0, j] - ci[0, j]), -qj * (1 - cz[1, j] - ci[1, j]))
            coef_b = complex(pj * ci[0, j], -qj * ci[1, j]) * it
            coef_c = complex(pj * cz[0, j], -qj * cz[1, j]) * (it * it)
            a = y[j] + coef_c + coef_b * (0.5 / vm)
            b = -(coef_a + coef_b * (0.5 * vm)) * ivc2
            vt = vm * it
            fp = 1.0 - cz[0, j] - ci[0, j] + vt * (ci[0, j] + vt * cz[0, j])
            fq = 1.0 - cz[1, j] - ci[1, j] + vt * (ci[1, j] + vt * cz[1, j])
            c0 = ivc * inv_sb  # ∂I_j/∂p_j of a constant-power load, scaled by f(|V|)
            cp[j] = c0 * fp
            cq[j] = -1j * c0 * fq
            wj = w[j]
            # h = conj(g): the loss gradient 2(conj(u) + t) + 2 g|V|² terms, conjugated
            beta[j] = 2.0 * (a * wj + np.conj(b * wj)) + 2.0 * gl[j] * vc
            ap[j] = -a
            aq[j] = -np.conj(b)
        for k in range(n_br - 1, -1, -1):  # leaves to root: children before their parent
            c, par, zk = child[k], parent[k], z[k]
            big_p = 1.0 - zk * ap[c]  # 1 − z α_c as a pair (P, Q), inverted in closed form
            big_q = -zk * aq[c]
            d = (big_p.real * big_p.real + big_p.imag * big_p.imag) - (
                big_q.real * big_q.real + big_q.imag * big_q.imag
            )
            mp[c] = np.conj(big_p) * (1.0 / d)
            mq[c] = -big_q * (1.0 / d)
            zb = zk * beta[c]
            e[c] = mp[c] * zb + mq[c] * np.conj(zb)
            if par != root:  # the root's φ is fixed: its subtree map is never needed
                np_, nq = _compose(ap[c], aq[c], mp[c], mq[c])
                ap[par] += np_
                aq[par] += nq
                beta[par] += ap[c] * e[c] + aq[c] * np.conj(e[c]) + beta[c]
        phi[root] = 0.0
        for k in range(n_br):  # root to leaves
            c, par = child[k], parent[k]
            phi[c] = mp[c] * phi[par] + mq[c] * np.conj(phi[par]) + e[c]
        for j in range(n):
            if j == root:
                dl_dp[s, j] = 0.0
                dl_dq[s, j] = 0.0
                continue
            wj = w[j]
            dl_dp[s, j] = s_b * (2.0 * (wj * cp[j]).real - (phi[j] * cp[j]).real)
            dl_dq[s, j] = s_b * (2.0 * (wj * cq[j]).real - (phi[j] * cq[j]).real)


_compose = _compile(_compose_py, parallel=False)
_adjoint = _compile(_adjoint_py, parallel=False, error_model="numpy")


def adjoint_factors(
    v: np.ndarray,
    i_branch: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    *,
    y: np.ndarray,
    gl: np.ndarray,
    zip_shares: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    parent: np.ndarray,
    child: np.ndarray,
    z: np.ndarray,
    root: int,
    base_mva: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``∂P_loss/∂P_j``, ``∂P_loss/∂Q_j`` (L2a) of a flat batch ``[batch, n_bus]``.

    Parameters
    ----------
    v, i_branch : numpy.ndarray
        Referred voltages ``[batch, n_bus]`` and branch currents ``[batch, n_branch]`` of the
        converged power flow (F3a, F5).
    p, q : numpy.ndarray
        Nominal loads (MW, Mvar).
    y, gl : numpy.ndarray
        Bus shunt admittance ``[n_bus]`` and the branches' shunt conductance per bus (F6).
    zip_shares : tuple, optional
        ``(const_z_share, const_i_share, |T|)`` (F4a); ``None``: constant power.
    parent, child, z, root, base_mva
        The tree (F1, branches breadth-first) and its referred branch impedances (F3a).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Each ``[batch, n_bus]``, zero at the root.
    """
    n = v.shape[1]
    if zip_shares is None:
        cz = ci = np.zeros((2, n))
        tau = np.ones(n)
    else:
        cz, ci, tau = zip_shares
    dl_dp = np.empty(v.shape)
    dl_dq = np.empty(v.shape)
    _adjoint(
        np.ascontiguousarray(v, dtype=np.complex128),
        np.ascontiguousarray(i_branch, dtype=np.complex128),
        np.array(p, dtype=np.float64, order="C"),  # a writable copy: one compiled signature
        np.array(q, dtype=np.float64, order="C"),
        np.ascontiguousarray(y, dtype=np.complex128),
        np.ascontiguousarray(gl, dtype=np.float64),
        np.ascontiguousarray(cz, dtype=np.float64),
        np.ascontiguousarray(ci, dtype=np.float64),
        np.ascontiguousarray(tau, dtype=np.float64),
        np.ascontiguousarray(parent, dtype=np.int64),
        np.ascontiguousarray(child, dtype=np.int64),
        np.ascontiguousarray(z, dtype=np.complex128),
        int(root),
        float(base_mva),
        dl_dp,
        dl_dq,
    )
    return dl_dp, dl_dq
