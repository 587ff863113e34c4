"""Transmission DC model: PTDF, balancing sensitivities and ratings (T1–T6).

Equations are numbered in ``models/transmission.md``. Arrays in, arrays out; the pandapower
conversion lives in :mod:`flexopt.grid.pandapower_io`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike
from scipy.sparse.csgraph import connected_components

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
        injected at the bus and withdrawn at the slack.
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


#: right-hand sides per sparse solve: SuperLU's solve slows down sharply for wide blocks
_BLOCK = 8


def _compute_ptdf(model: TransmissionModel) -> np.ndarray:
    """(T1)–(T3) with one sparse LU of ``B_bus[n, n]`` and narrow blocks of ``B_f`` rows."""
    n, nl = model.n_bus, model.n_branch
    bad = np.flatnonzero(~np.isfinite(model.x_pu) | (model.x_pu * model.tap == 0))
    if bad.size:
        raise TopologyError(
            f"transmission branch {model.branch[bad[0]]} has zero reactance (x_pu = "
            f"{model.x_pu[bad[0]]:g}); the DC model needs x ≠ 0 (fuse its buses with a closed "
            f"bus-bus switch instead)"
        )
    rows = np.arange(nl)
    incidence = sp.csr_matrix(
        (
            np.r_[np.ones(nl), -np.ones(nl)],
            (np.r_[rows, rows], np.r_[model.from_idx, model.to_idx]),
        ),
        shape=(nl, n),
    )
    _, comp = connected_components(incidence.T @ incidence, directed=False)
    apart = np.flatnonzero(comp != comp[model.slack_idx])
    if apart.size:
        raise TopologyError(
            f"the transmission network is not connected: {apart.size} of its {n} buses "
            f"(e.g. {list(model.bus[apart[:5]])}) have no path to the slack bus "
            f"{model.bus[model.slack_idx]}"
        )
    bf = sp.diags(1.0 / (model.x_pu * model.tap)) @ incidence
    bbus = (incidence.T @ bf).tocsc()
    keep = np.flatnonzero(np.arange(n) != model.slack_idx)
    try:
        lu = spla.splu(bbus[keep][:, keep].tocsc())
    except RuntimeError as err:  # connected yet singular: reactances that cancel
        raise TopologyError("the transmission network's B matrix is singular") from err
    # Φ[:, keep] = B_f[:, keep] B⁻¹  ⇔  B Φ[:, keep]ᵀ = B_f[:, keep]ᵀ (B symmetric)
    rhs = bf[:, keep].T.tocsc()
    phi = np.zeros((nl, n))
    for lo in range(0, nl, _BLOCK):
        hi = min(lo + _BLOCK, nl)
        phi[lo:hi, keep] = lu.solve(rhs[:, lo:hi].toarray()).T
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
