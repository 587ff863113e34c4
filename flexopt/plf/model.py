"""The DC flow model of the probabilistic load flow (stage S2; equations P1–P4 in
``models/plf.md``).

Realized load ``L̃_{b,t} = L_{b,t}(1+Δ_{b,t})(1+σ_b ξ_{b,t})`` with ``ξ_{·,t} ~ N(0, C)``.
Generators keep their day-ahead schedule ``g_t`` and take the imbalance with weights ``w_t``
(distributed: in proportion to the schedule; slack: all at the reference bus).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from flexopt.grid.transmission import TransmissionModel, load_reduction_sensitivity

__all__ = ["PLFModel"]


@dataclass(frozen=True, eq=False)
class PLFModel:
    """Inputs of the probabilistic load flow, as arrays over hours × buses.

    Attributes
    ----------
    network : TransmissionModel
    hours : pandas.Index
    load_mw : numpy.ndarray
        Day-ahead forecast ``L`` ``[T, N]``.
    increase_pu : numpy.ndarray
        Sudden relative increase ``Δ`` ``[T, N]``.
    sigma_pu : numpy.ndarray
        Relative forecast error std ``σ`` ``[N]``.
    correlation : numpy.ndarray
        Correlation matrix ``C`` of ``ξ`` ``[N, N]``.
    gen_injection_mw : numpy.ndarray
        Day-ahead generation per bus ``g`` ``[T, N]`` (balances ``L`` hour by hour).
    weights : numpy.ndarray
        Balancing weights ``w`` ``[T, N]`` or ``[1, N]``; rows sum to 1.
    reduction_mw : numpy.ndarray or None
        Deterministic load reduction ``F`` ``[T, N]`` bought as flexibility (S8 re-check);
        it lowers the realized load and leaves the forecast error unchanged (P1').
    """

    network: TransmissionModel
    hours: pd.Index
    load_mw: np.ndarray
    increase_pu: np.ndarray
    sigma_pu: np.ndarray
    correlation: np.ndarray
    gen_injection_mw: np.ndarray
    weights: np.ndarray
    reduction_mw: np.ndarray | None = None

    @property
    def n_hours(self) -> int:
        return int(self.load_mw.shape[0])

    @cached_property
    def sensitivity(self) -> np.ndarray:
        """``H`` ``[T, L, N]``: flow change per MW of load reduction (eq. T6)."""
        h = load_reduction_sensitivity(self.network.ptdf, self.weights)
        return np.broadcast_to(h, (self.n_hours, *h.shape[1:]))

    @cached_property
    def expected_load_mw(self) -> np.ndarray:
        """``E[L̃] = L(1+Δ) − F`` ``[T, N]``."""
        expected = self.load_mw * (1.0 + self.increase_pu)
        return expected if self.reduction_mw is None else expected - self.reduction_mw

    @cached_property
    def load_std_mw(self) -> np.ndarray:
        """``s = L(1+Δ)σ`` ``[T, N]``: the MW standard deviation of each load (P1)."""
        std: np.ndarray = self.load_mw * (1.0 + self.increase_pu) * self.sigma_pu
        return std

    @cached_property
    def uncertain(self) -> np.ndarray:
        """Positions of the buses whose load is random in some hour."""
        return np.flatnonzero((self.load_std_mw > 0).any(axis=0))

    @cached_property
    def correlation_factor(self) -> np.ndarray:
        """Cholesky factor of ``C`` restricted to the uncertain buses."""
        idx = self.uncertain
        return np.linalg.cholesky(self.correlation[np.ix_(idx, idx)])

    def flows_mw(self, realized_load_mw: np.ndarray) -> np.ndarray:
        """DC flows for realized loads ``[..., T, N]`` → ``[..., T, L]`` (P2).

        The imbalance ``Σ_b (L̃ − L)`` is shared by the balancing weights; no linearization
        beyond the DC model itself, so Monte Carlo and the point estimate use this directly.
        """
        imbalance = (realized_load_mw - self.load_mw).sum(axis=-1, keepdims=True)
        w = self.weights if self.weights.shape[0] == self.n_hours else self.weights[0]
        injection = self.gen_injection_mw + w * imbalance - realized_load_mw
        flows: np.ndarray = injection @ self.network.ptdf.T
        return flows

    def realize(self, xi: np.ndarray) -> np.ndarray:
        """Loads for standardized errors ``ξ`` over the uncertain buses ``[..., T, U]``."""
        out = np.broadcast_to(self.expected_load_mw, (*xi.shape[:-1], self.load_mw.shape[1])).copy()
        out[..., self.uncertain] += self.load_std_mw[:, self.uncertain] * xi
        return out
