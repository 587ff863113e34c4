"""Transmission DC model: PTDF, balancing sensitivities and ratings (T1–T6).

Equations are numbered in ``models/transmission.md``. Arrays in, arrays out; the pandapower
conversion lives in :mod:`flexopt.grid.pandapower_io`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike
from scipy.sparse.csgraph import connected_components
from threadpoolctl import ThreadpoolController

from flexopt.errors import TopologyError

__all__ = ["TransmissionModel", "balancing_weights", "load_reduction_sensitivity"]


@dataclass(frozen=True, eq=False)
class TransmissionModel:
    """DC transmission network as arrays.

    Attributes
    ----------
    bus : pandas.Index
        Bus labels (pandapower bus indices for networks read from pandapower).
    branch : pandas.Index
        Branch labels, ``line_<i>`` then ``trafo_<i>`` (pandapower ``_ppc`` order).
    from_idx, to_idx : numpy.ndarray
        Positional bus index of each branch end.
    x_pu : numpy.ndarray
        Series reactance on ``base_mva``.
    tap : numpy.ndarray
        Off-nominal tap ratio (1 for lines).
    rating_mw : numpy.ndarray
        Thermal rating used as the DC flow limit ``F̄_l`` (MVA taken as MW).
    slack_idx : int
        Positional index of the reference bus (PTDF column of zeros).
    base_mva : float
        System base.
    shift_deg : numpy.ndarray, optional
        Phase shift of each branch (degrees, phase-shifting transformers); it leaves the PTDF
        unchanged and adds the constant flows of (T4a). ``None``: no shift.
    """

    bus: pd.Index
    branch: pd.Index
    from_idx: np.ndarray
    to_idx: np.ndarray
    x_pu: np.ndarray
    tap: np.ndarray
    rating_mw: np.ndarray
    slack_idx: int
    base_mva: float = 100.0
    shift_deg: np.ndarray | None = None

    @property
    def n_bus(self) -> int:
        return len(self.bus)

    @property
    def n_branch(self) -> int:
        return len(self.branch)

    def bus_pos(self, labels: ArrayLike) -> np.ndarray:
        """Positional indices of bus labels; raises ``KeyError`` for unknown labels."""
        pos: np.ndarray = self.bus.get_indexer(pd.Index(np.atleast_1d(labels)))
        if (pos < 0).any():
            bad = np.atleast_1d(labels)[pos < 0]
            raise KeyError(f"unknown transmission bus(es): {list(bad)}")
        return pos

    @cached_property
    def ptdf(self) -> np.ndarray:
        """Power transfer distribution factors ``Φ`` (branches × buses), eq. (T3).

        ``Φ = B_f[:, n] B_bus[n, n]^{-1}`` over the non-slack buses ``n`` with
        ``b_l = 1 / (x_l τ_l)`` (T1–T2); the slack column is zero. MW of branch flow per MW
        injected at the bus and withdrawn at the slack. Phase shifts do not enter it (T3a).

        Raises
        ------
        TopologyError
            A branch with zero (or non-finite) reactance, a bus without a path to the slack,
            or a singular ``B_bus`` (T3a).
        """
        phi = _compute_ptdf(self)
        phi.flags.writeable = False
        return phi

    @cached_property
    def flow_offset_mw(self) -> np.ndarray:
        """Flows the phase shifters drive at zero injection ``f⁰`` (T4a), ``[n_branch]``.

        ``f⁰ = S_b (P_f − Φ Aᵀ P_f)`` with ``P_f,l = −b_l θ_l`` (``makeBdc``'s ``Pfinj``);
        zero without phase shift.
        """
        if self.shift_deg is None:
            return np.zeros(self.n_branch)
        p_f = -np.deg2rad(self.shift_deg) / (self.x_pu * self.tap)
        p_bus = np.zeros(self.n_bus)
        np.add.at(p_bus, self.from_idx, p_f)
        np.subtract.at(p_bus, self.to_idx, p_f)
        offset: np.ndarray = self.base_mva * (p_f - self.ptdf @ p_bus)
        offset.flags.writeable = False
        return offset

    def flows_mw(self, injection_mw: np.ndarray) -> np.ndarray:
        """DC branch flows ``f = Φ p + f⁰`` for net injections ``[..., n_bus]`` (T4, T4a)."""
        flows: np.ndarray = np.asarray(injection_mw) @ self.ptdf.T
        if self.shift_deg is not None:
            flows = flows + self.flow_offset_mw
        return flows


#: right-hand sides per sparse solve (16–64 measured alike on case3120sp; benchmarks/ptdf.py)
_BLOCK = 16


@cache
def _blas() -> ThreadpoolController:
    """The process's BLAS libraries, scanned once (``threadpool_limits`` rescans: ~6 ms)."""
    return ThreadpoolController()


def _compute_ptdf(model: TransmissionModel) -> np.ndarray:
    """(T1)–(T3): one sparse LU of ``B_bus[n, n]``, solved against narrow blocks of ``B_fᵀ``.

    ``B_bus`` is symmetric, so ``Φ[:, n] = B_f[:, n] B⁻¹`` is ``(B⁻¹ B_f[:, n]ᵀ)ᵀ``: each
    block of 16 branches is a dense right-hand side with two entries per column (``±b_l``
    at the branch's ends), built in place rather than sliced from a sparse matrix. The LU
    uses a minimum-degree ordering of ``B + Bᵀ`` with diagonal pivots (SuperLU's symmetric
    mode: ~20 % less fill than COLAMD on case3120sp) under one BLAS thread: SuperLU's solves
    call BLAS on tiny supernode blocks, where a second thread only adds contention (on a
    busy 2-core machine, blocks of 32–512 columns ran 7–30× slower with two threads).
    """
    n, nl = model.n_bus, model.n_branch
    bad = np.flatnonzero(~np.isfinite(model.x_pu) | (model.x_pu * model.tap == 0))
    if bad.size:
        raise TopologyError(
            f"transmission branch {model.branch[bad[0]]} has zero reactance (x_pu = "
            f"{model.x_pu[bad[0]]:g}); the DC model needs x ≠ 0 (fuse its buses with a closed "
            f"bus-bus switch instead)"
        )
    f, t, s = model.from_idx, model.to_idx, model.slack_idx
    graph = sp.coo_matrix((np.ones(nl), (f, t)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    apart = np.flatnonzero(comp != comp[s])
    if apart.size:
        raise TopologyError(
            f"the transmission network is not connected: {apart.size} of its {n} buses "
            f"(e.g. {list(model.bus[apart[:5]])}) have no path to the slack bus "
            f"{model.bus[s]}"
        )
    b = 1.0 / (model.x_pu * model.tap)  # (T1)
    pos = np.arange(n) - (np.arange(n) > s)  # position in the system without the slack
    fp, tp = pos[f], pos[t]
    f_on, t_on = f != s, t != s
    # (T2) B_bus = Aᵀ diag(b) A over the non-slack buses (duplicates add up)
    rows = np.r_[fp[f_on], tp[t_on], fp[f_on & t_on], tp[f_on & t_on]]
    cols = np.r_[fp[f_on], tp[t_on], tp[f_on & t_on], fp[f_on & t_on]]
    vals = np.r_[b[f_on], b[t_on], -b[f_on & t_on], -b[f_on & t_on]]
    m = n - 1
    phi = np.zeros((nl, n))
    if m == 0:
        return phi
    bbus = sp.csc_matrix((vals, (rows, cols)), shape=(m, m))
    rhs = np.zeros((m, _BLOCK), order="F")
    with _blas().limit(limits=1, user_api="blas"):
        try:
            lu = spla.splu(bbus, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
        except RuntimeError as err:  # connected yet singular: reactances that cancel
            raise TopologyError("the transmission network's B matrix is singular") from err
        for lo in range(0, nl, _BLOCK):
            hi = min(lo + _BLOCK, nl)
            col = np.arange(hi - lo)
            block = slice(lo, hi)
            rhs[:] = 0.0
            on = f_on[block]
            rhs[fp[block][on], col[on]] = b[block][on]
            on = t_on[block]
            rhs[tp[block][on], col[on]] = -b[block][on]
            x = lu.solve(rhs[:, : hi - lo])  # Φ[block, n]ᵀ (B symmetric)
            phi[lo:hi, :s] = x[:s].T
            phi[lo:hi, s + 1 :] = x[s:].T
    return phi


def balancing_weights(
    n_bus: int, gen_bus_idx: np.ndarray, p_da_mw: np.ndarray | None, slack_idx: int
) -> np.ndarray:
    """Bus weights ``w_{t,b}`` of the rule that takes an imbalance (eq. T5).

    Parameters
    ----------
    n_bus : int
        Number of buses.
    gen_bus_idx : numpy.ndarray
        Positional bus index of each generator, shape ``[G]``.
    p_da_mw : numpy.ndarray or None
        Day-ahead schedule ``[T, G]``: generators share the imbalance in proportion to it
        (distributed slack). ``None`` selects the slack-bus rule (all at ``slack_idx``).
    slack_idx : int
        Reference bus position.

    Returns
    -------
    numpy.ndarray
        ``[T, n_bus]`` (or ``[1, n_bus]`` for the slack rule); every row sums to one.
    """
    if p_da_mw is None:
        w = np.zeros((1, n_bus))
        w[0, slack_idx] = 1.0
        return w
    p = np.clip(np.asarray(p_da_mw, dtype=float), 0.0, None)
    total = p.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("distributed balancing needs a positive day-ahead output in every hour")
    w = np.zeros((p.shape[0], n_bus))
    np.add.at(w.T, gen_bus_idx, (p / total).T)
    return w


def load_reduction_sensitivity(ptdf: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Flow change per MW of load *reduction* at each bus, ``H`` (eq. T6).

    A 1 MW reduction at bus b injects +1 MW there and the balancing units lower their
    output by ``w`` in total: ``H_{t,l,b} = Φ_{l,b} − Σ_k w_{t,k} Φ_{l,k}``.

    Parameters
    ----------
    ptdf : numpy.ndarray
        ``[L, N]``.
    weights : numpy.ndarray
        ``[T, N]`` from :func:`balancing_weights`.

    Returns
    -------
    numpy.ndarray
        ``[T, L, N]``.
    """
    h: np.ndarray = ptdf[None, :, :] - (weights @ ptdf.T)[:, :, None]
    return h
