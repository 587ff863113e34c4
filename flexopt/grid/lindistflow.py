"""LinDistFlow of a radial feeder in numpy: branch flows, squared voltages and losses of any
batch of bus loads (``models/centralized.md`` Z6–Z9, ``models/dcp_exact.md`` X2–X3).

LinDistFlow (Baran & Wu 1989) drops the loss terms from the branch flow equations, so the
flows are linear in the bus loads and the squared voltages affine in the flows::

    P = p Aᵀ,   Q = q Aᵀ                                             (Z6)
    v_j = v_root² − (2 / S_b) Σ_k A_{k,j} (r_k P_k + x_k Q_k)        (Z7)
    P^loss = Σ_k r_k (P_k² + Q_k²) / V₀²                             (Z9)

with ``A`` the path matrix (F2), ``r_k`` in ohm and ``V₀`` the root voltage in kV. This is
the one implementation of these formulas: the centralized market's Pyomo families
(``flexopt.market.distflow``), its scoring of any dispatch, and the exact DSO models'
approximate evaluator all call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from flexopt.grid.feeder import Feeder

__all__ = ["LinDistFlow"]


@dataclass(frozen=True, eq=False)
class LinDistFlow:
    """LinDistFlow model of one feeder; every method takes any leading batch shape.

    Parameters
    ----------
    feeder : Feeder
    """

    feeder: Feeder

    @cached_property
    def r_ohm(self) -> np.ndarray:
        """Branch resistance ``r_k`` in ohm ``[K]``."""
        f = self.feeder
        r: np.ndarray = f.r_pu * f.vn_kv**2 / f.base_mva
        return r

    @cached_property
    def v0_kv2(self) -> float:
        """Squared root voltage ``V₀²`` in kV²."""
        f = self.feeder
        return float((f.vn_kv * f.v_root_pu) ** 2)

    def flows(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Branch flows ``P = p Aᵀ``, ``Q = q Aᵀ`` ``[..., K]`` of bus loads ``[..., n_bus]`` (Z6)."""
        a = self.feeder.path
        P: np.ndarray = p_mw @ a.T
        Q: np.ndarray = q_mvar @ a.T
        return P, Q

    def squared_voltages(self, P_mw: np.ndarray, Q_mvar: np.ndarray) -> np.ndarray:
        """``v_j = v_root² − 2 Σ_k A_{k,j} (r_k P_k + x_k Q_k) / S_b`` ``[..., n_bus]`` (Z7)."""
        f = self.feeder
        drop = 2 * (f.r_pu * P_mw + f.x_pu * Q_mvar) / f.base_mva
        v: np.ndarray = f.v_root_pu**2 - drop @ f.path
        return v

    def point(
        self, p_mw: np.ndarray, q_mvar: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flows and squared voltages of given bus loads (Z6–Z7).

        Returns
        -------
        P_mw, Q_mvar : ndarray ``[..., K]``
        v_pu2 : ndarray ``[..., n_bus]``
        """
        P, Q = self.flows(p_mw, q_mvar)
        return P, Q, self.squared_voltages(P, Q)

    def loss_mw(self, P_sq: np.ndarray, Q_sq: np.ndarray) -> np.ndarray:
        """``Σ_k r_k (P_k² + Q_k²) / V₀²`` ``[...]`` from squared flows ``[..., K]`` (Z9).

        Takes the squares so that an outer approximation of ``P_k²`` (tangent cuts, X9) goes
        through the same formula as the flows themselves.
        """
        loss: np.ndarray = (self.r_ohm * (P_sq + Q_sq)).sum(-1) / self.v0_kv2
        return loss

    def loss_of_loads_mw(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> np.ndarray:
        """LinDistFlow losses ``[...]`` of bus loads ``[..., n_bus]`` (Z6, Z9)."""
        P, Q = self.flows(p_mw, q_mvar)
        return self.loss_mw(P**2, Q**2)

    def flow_sensitivity(self, incidence: np.ndarray) -> np.ndarray:
        """``s_{i,k}``: drop of ``P_k`` per MW withdrawn by prosumer ``i`` ``[n, K]`` (X3),
        ``incidence`` ``[n, n_bus]`` placing each prosumer at its bus."""
        s: np.ndarray = incidence @ self.feeder.path.T
        return s
