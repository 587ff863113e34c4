"""The result of a batched feeder power flow and the quantities derived from it (F5–F7).

Voltages are reported per unit of each bus's own nominal voltage, as pandapower does;
currents and the sweep's voltages are referred to the root through the transformers (F3a),
where the branch-current sums of the loss allocation (L1) hold. Equations are numbered in
``models/feeder.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

__all__ = ["FeederLike", "FeederResult", "abs2"]

_SQRT3 = np.sqrt(3.0)


def abs2(z: np.ndarray) -> np.ndarray:
    """``|z|²`` as ``Re(z)² + Im(z)²``: no square root to square again, and the same number
    on every CPU (NumPy's ``abs`` of a complex takes a SIMD path that differs from ``hypot``
    in the last bit) and in the compiled DCP evaluation (``flexopt.dso._fused``)."""
    out: np.ndarray = z.real * z.real + z.imag * z.imag
    return out


class FeederLike(Protocol):
    """What a result reads from its feeder (:class:`flexopt.grid.feeder.Feeder`)."""

    @property
    def root(self) -> int: ...
    @property
    def parent(self) -> np.ndarray: ...
    @property
    def child(self) -> np.ndarray: ...
    @property
    def root_branches(self) -> np.ndarray: ...
    @property
    def r_pu(self) -> np.ndarray: ...
    @property
    def x_pu(self) -> np.ndarray: ...
    @property
    def g_end_pu(self) -> np.ndarray | None: ...
    @property
    def bus_shunt_g_pu(self) -> np.ndarray: ...
    @property
    def ratio(self) -> np.ndarray | None: ...
    @property
    def bus_vn_kv(self) -> np.ndarray | None: ...
    @property
    def vn_kv(self) -> float: ...
    @property
    def base_mva(self) -> float: ...
    @property
    def v_root_pu(self) -> float: ...
    def load_factors(self, vm_pu: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


FeederT = TypeVar("FeederT", bound=FeederLike)


@dataclass(frozen=True, eq=False)
class FeederResult(Generic[FeederT]):
    """Result of a batched feeder power flow; every array has the batch shape ``[...]`` first.

    Attributes
    ----------
    v_pu : numpy.ndarray
        Complex bus voltages ``[..., n_bus]`` in per unit of each bus's nominal voltage, angles
        as pandapower reports them (root angle and transformer phase shifts included).
    i_bus_pu : numpy.ndarray
        Complex current drawn at each bus (loads and shunts) ``[..., n_bus]``, referred to the
        root (F3a); zero at the root.
    i_branch_pu : numpy.ndarray
        Complex series current of each branch, from parent to child, ``[..., n_branch]``,
        referred to the root.
    p_mw, q_mvar : numpy.ndarray
        The nominal net loads solved for (at 1 pu voltage; F4a).
    iterations : int
        Sweeps until the largest voltage update fell below the tolerance.
    v_ref_pu : numpy.ndarray, optional
        The sweep's voltages referred to the root, ``Ṽ_j = T_j V_j`` (F3a); ``None`` when they
        equal ``v_pu`` (no transformer, root angle 0).
    """

    feeder: FeederT
    v_pu: np.ndarray
    i_bus_pu: np.ndarray
    i_branch_pu: np.ndarray
    p_mw: np.ndarray
    q_mvar: np.ndarray
    iterations: int
    v_ref_pu: np.ndarray | None = None

    @property
    def v_referred_pu(self) -> np.ndarray:
        """Voltages referred to the root ``Ṽ`` ``[..., n_bus]`` (F3a), the sweep's variable."""
        return self.v_pu if self.v_ref_pu is None else self.v_ref_pu

    @property
    def vm_pu(self) -> np.ndarray:
        """Voltage magnitude ``[..., n_bus]``."""
        vm: np.ndarray = np.abs(self.v_pu)
        return vm

    @property
    def va_degree(self) -> np.ndarray:
        """Voltage angle ``[..., n_bus]`` (degrees; the root's is ``va_root_degree``)."""
        va: np.ndarray = np.degrees(np.angle(self.v_pu))
        return va

    @property
    def i_ka(self) -> np.ndarray:
        """Series current magnitude of each branch in kA at its downstream bus ``[..., n_branch]``."""
        f = self.feeder
        scale = f.base_mva / (_SQRT3 * f.vn_kv)
        if f.ratio is not None or f.bus_vn_kv is not None:
            c = f.child
            t = 1.0 if f.ratio is None else np.abs(f.ratio[c])
            scale = t * f.base_mva / (_SQRT3 * (f.vn_kv if f.bus_vn_kv is None else f.bus_vn_kv[c]))
        i_ka: np.ndarray = np.abs(self.i_branch_pu) * scale
        return i_ka

    @property
    def loss_branch_mw(self) -> np.ndarray:
        """Active loss of each branch in MW ``[..., n_branch]`` (F6): ``r_k |I_k|²`` plus the
        conductance of its shunts (line ``g``, transformer iron losses) at both ends."""
        f = self.feeder
        loss: np.ndarray = f.r_pu * abs2(self.i_branch_pu) * f.base_mva
        if f.g_end_pu is not None:
            v2 = abs2(self.v_referred_pu)
            shunt = f.g_end_pu[0] * v2[..., f.parent] + f.g_end_pu[1] * v2[..., f.child]
            loss = loss + shunt * f.base_mva
        return loss

    @property
    def loss_mw(self) -> np.ndarray:
        """Total active feeder loss in MW ``[...]`` (F6)."""
        loss: np.ndarray = self.loss_branch_mw.sum(axis=-1)
        return loss

    @property
    def q_loss_mvar(self) -> np.ndarray:
        """Total reactive series loss ``Σ x_k |I_k|²`` in Mvar ``[...]``."""
        q_loss: np.ndarray = (self.feeder.x_pu * abs2(self.i_branch_pu)).sum(
            axis=-1
        ) * self.feeder.base_mva
        return q_loss

    @property
    def s_from_mva(self) -> np.ndarray:
        """Complex power entering each branch's series impedance from upstream ``[..., n_branch]``."""
        f = self.feeder
        v = self.v_referred_pu
        s_from: np.ndarray = v[..., f.parent] * np.conj(self.i_branch_pu) * f.base_mva
        return s_from

    @property
    def p_from_mw(self) -> np.ndarray:
        p_from: np.ndarray = self.s_from_mva.real
        return p_from

    @property
    def q_from_mvar(self) -> np.ndarray:
        q_from: np.ndarray = self.s_from_mva.imag
        return q_from

    @property
    def p_drawn_mw(self) -> np.ndarray:
        """Active power drawn at each bus by its loads (at their voltage, F4a) and bus shunts
        ``[..., n_bus]``; zero at the root. Equals ``p_mw`` for constant-power loads without
        shunt conductance."""
        f = self.feeder
        p = np.broadcast_to(self.p_mw, self.v_pu.shape) * f.load_factors(np.abs(self.v_pu))[0]
        g = f.bus_shunt_g_pu
        drawn: np.ndarray = p + g * np.abs(self.v_referred_pu) ** 2 * f.base_mva if np.any(g) else p
        drawn = np.array(drawn, dtype=float, copy=True)
        drawn[..., f.root] = 0.0
        return drawn

    @property
    def p_root_mw(self) -> np.ndarray:
        """Active power imported at the root ``[...]`` (F7): the power drawn below it plus
        the feeder loss (the root-end shunt losses of its branches included)."""
        f = self.feeder
        v_root = self.v_referred_pu[..., f.root]
        s_root = v_root * np.conj(self.i_branch_pu[..., f.root_branches]).sum(-1)
        p_root: np.ndarray = s_root.real * f.base_mva
        if f.g_end_pu is not None:
            p_root = p_root + f.g_end_pu[0, f.root_branches].sum() * f.v_root_pu**2 * f.base_mva
        return p_root
