"""Radial distribution feeder with a batched AC power flow (F1–F7; stages S4, S5, S8).

The power flow is the backward/forward sweep in its matrix form (Teng 2003, "A direct
approach for distribution system load flow solutions", IEEE TPWRD 18(3), doi:
10.1109/TPWRD.2003.813818): with branch ``k`` named after its downstream bus, the
branch-injection-to-branch-current matrix ``BIBC`` and the branch-current-to-bus-voltage
matrix ``BCBV`` multiply to the bus impedance matrix seen from the root,
``Z = BCBV · BIBC`` (eq. F3 in ``models/feeder.md``). One sweep is then

    V ← V₀ − Z I(V),   I_j(V) = conj(S_j / V_j) + y_j V_j        (F4)

evaluated for a whole batch at once: one complex matrix product per iteration for every
power flow of the batch. Equations are numbered in ``models/feeder.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from flexopt.errors import PowerFlowError
from flexopt.grid._sweep import sweep
from flexopt.grid.tree import orient_tree

if TYPE_CHECKING:  # pandapower is imported lazily, only by from_pandapower
    import pandapower as pp

__all__ = ["Feeder", "PowerFlowResult"]

PowerFlowEngine = Literal["auto", "numba", "numpy"]

_SQRT3 = np.sqrt(3.0)


@dataclass(frozen=True, eq=False)
class PowerFlowResult:
    """Result of a batched feeder power flow; every array has the batch shape ``[...]`` first.

    Attributes
    ----------
    v_pu : numpy.ndarray
        Complex bus voltages ``[..., n_bus]``.
    i_bus_pu : numpy.ndarray
        Complex current drawn at each bus (loads and shunts) ``[..., n_bus]``; zero at the root.
    i_branch_pu : numpy.ndarray
        Complex current of each branch, from parent to child, ``[..., n_branch]``.
    iterations : int
        Sweeps until the largest voltage update fell below the tolerance.
    """

    feeder: Feeder
    v_pu: np.ndarray
    i_bus_pu: np.ndarray
    i_branch_pu: np.ndarray
    p_mw: np.ndarray
    q_mvar: np.ndarray
    iterations: int

    @property
    def vm_pu(self) -> np.ndarray:
        """Voltage magnitude ``[..., n_bus]``."""
        vm: np.ndarray = np.abs(self.v_pu)
        return vm

    @property
    def va_degree(self) -> np.ndarray:
        """Voltage angle relative to the root ``[..., n_bus]``."""
        va: np.ndarray = np.degrees(np.angle(self.v_pu))
        return va

    @property
    def i_ka(self) -> np.ndarray:
        """Branch current magnitude in kA ``[..., n_branch]``."""
        i_ka: np.ndarray = (
            np.abs(self.i_branch_pu) * self.feeder.base_mva / (_SQRT3 * self.feeder.vn_kv)
        )
        return i_ka

    @property
    def loss_branch_mw(self) -> np.ndarray:
        """Active loss of each branch ``r_k |I_k|²`` in MW ``[..., n_branch]`` (F6)."""
        loss: np.ndarray = self.feeder.r_pu * np.abs(self.i_branch_pu) ** 2 * self.feeder.base_mva
        return loss

    @property
    def loss_mw(self) -> np.ndarray:
        """Total active feeder loss in MW ``[...]`` (F6)."""
        loss: np.ndarray = self.loss_branch_mw.sum(axis=-1)
        return loss

    @property
    def q_loss_mvar(self) -> np.ndarray:
        """Total reactive series loss ``Σ x_k |I_k|²`` in Mvar ``[...]``."""
        q_loss: np.ndarray = (self.feeder.x_pu * np.abs(self.i_branch_pu) ** 2).sum(
            axis=-1
        ) * self.feeder.base_mva
        return q_loss

    @property
    def s_from_mva(self) -> np.ndarray:
        """Complex power entering each branch at its upstream end ``[..., n_branch]``."""
        f = self.feeder
        s_from: np.ndarray = self.v_pu[..., f.parent] * np.conj(self.i_branch_pu) * f.base_mva
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
    def p_root_mw(self) -> np.ndarray:
        """Active power imported at the root (load + losses) ``[...]`` (F7)."""
        f = self.feeder
        s_root = self.v_pu[..., f.root] * np.conj(self.i_branch_pu[..., f.root_branches]).sum(-1)
        p_root: np.ndarray = s_root.real * f.base_mva
        return p_root


@dataclass(frozen=True, eq=False)
class Feeder:
    """A radial feeder, oriented from its root (the DSO's interface with the TSO).

    Buses are positional ``0..n_bus-1`` with ``bus`` holding their labels; branch ``k`` ends
    at child bus ``child[k]`` and starts at ``parent[k]``. Impedances are in per unit of
    ``base_mva`` and ``vn_kv``.

    Build one with :meth:`from_pandapower` or :meth:`from_branches`.
    """

    bus: pd.Index
    root: int
    parent: np.ndarray
    child: np.ndarray
    r_pu: np.ndarray
    x_pu: np.ndarray
    y_shunt_pu: np.ndarray
    p_base_mw: np.ndarray
    q_base_mvar: np.ndarray
    vn_kv: float
    base_mva: float = 1.0
    v_root_pu: float = 1.0
    name: str = "feeder"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_branches(
        cls,
        from_bus: Sequence[int],
        to_bus: Sequence[int],
        r_ohm: Sequence[float],
        x_ohm: Sequence[float],
        *,
        vn_kv: float,
        root: int,
        p_mw: pd.Series | None = None,
        q_mvar: pd.Series | None = None,
        shunt_mvar_at_1pu: pd.Series | None = None,
        base_mva: float = 1.0,
        v_root_pu: float = 1.0,
        name: str = "feeder",
    ) -> Feeder:
        """Build a feeder from an unoriented branch list in ohms.

        Parameters
        ----------
        from_bus, to_bus : sequence of int
            Bus labels of the branch ends (any orientation).
        r_ohm, x_ohm : sequence of float
            Series impedance of each branch.
        vn_kv : float
            Nominal line-to-line voltage.
        root : int
            Label of the supply bus (fixed voltage ``v_root_pu``).
        p_mw, q_mvar : pandas.Series, optional
            Base-case net load per bus label (consumption positive); missing buses are 0.
        shunt_mvar_at_1pu : pandas.Series, optional
            Shunt reactive *generation* at 1 pu per bus label (capacitive positive).

        Raises
        ------
        TopologyError
            If the branches do not form a tree spanning every bus from ``root`` (see
            :func:`flexopt.grid.tree.orient_tree`, which orients them breadth-first, F1).
        """
        tree = orient_tree(
            np.asarray(from_bus, dtype=np.int64),
            np.asarray(to_bus, dtype=np.int64),
            root,
            name=name,
        )
        labels, n, k_idx = tree.bus, len(tree.bus), tree.branch
        z_base = vn_kv**2 / base_mva
        p = np.zeros(n) if p_mw is None else p_mw.reindex(labels, fill_value=0.0).to_numpy(float)
        q = (
            np.zeros(n)
            if q_mvar is None
            else q_mvar.reindex(labels, fill_value=0.0).to_numpy(float)
        )
        y = np.zeros(n, dtype=complex)
        if shunt_mvar_at_1pu is not None:
            y += 1j * shunt_mvar_at_1pu.reindex(labels, fill_value=0.0).to_numpy(float) / base_mva
        return cls(
            bus=labels,
            root=tree.root,
            parent=tree.parent,
            child=tree.child,
            r_pu=np.asarray(r_ohm, float)[k_idx] / z_base,
            x_pu=np.asarray(x_ohm, float)[k_idx] / z_base,
            y_shunt_pu=y,
            p_base_mw=p,
            q_base_mvar=q,
            vn_kv=float(vn_kv),
            base_mva=float(base_mva),
            v_root_pu=float(v_root_pu),
            name=name,
        )

    @classmethod
    def from_pandapower(cls, net: pp.pandapowerNet, name: str | None = None) -> Feeder:
        """Read a radial feeder from a pandapower net (in-service lines, loads, sgens, shunts).

        Line charging ``c_nf_per_km`` is split to both ends as a shunt susceptance, as in
        pandapower's π model. Transformers and bus-bus switches are rejected with a
        :class:`~flexopt.errors.TopologyError`.
        """
        from flexopt.grid.pandapower_io import feeder_arrays  # the only pandapower user

        return cls.from_branches(**feeder_arrays(net), name=name or str(net.name or "feeder"))

    # ------------------------------------------------------------------ structure
    @property
    def n_bus(self) -> int:
        return len(self.bus)

    @property
    def n_branch(self) -> int:
        return len(self.child)

    @cached_property
    def root_branches(self) -> np.ndarray:
        return np.flatnonzero(self.parent == self.root)

    @cached_property
    def z_branch_pu(self) -> np.ndarray:
        """Series impedance ``z_k = r_k + j x_k`` of each branch."""
        return self.r_pu + 1j * self.x_pu

    @cached_property
    def path(self) -> np.ndarray:
        """``A[k, j] = 1`` when branch ``k`` lies on the path from the root to bus ``j`` (F2)."""
        a = np.zeros((self.n_branch, self.n_bus))
        branch_at = np.full(self.n_bus, -1)
        branch_at[self.child] = np.arange(self.n_branch)
        for k, j in enumerate(self.child):  # breadth-first order: parent rows are complete
            p = self.parent[k]
            if p != self.root:
                a[:, j] = a[:, p]
            a[k, j] = 1.0
        a.flags.writeable = False
        return a

    @cached_property
    def z_pu(self) -> np.ndarray:
        """Root-referenced bus impedance ``Z = BCBV · BIBC = Aᵀ diag(z) A`` (F3), ``[n, n]``."""
        m: np.ndarray = (self.path.T * self.z_branch_pu) @ self.path
        m.flags.writeable = False
        return m

    def branch_table(self) -> pd.DataFrame:
        """Branches as a table (``from_bus``, ``to_bus`` labels, ``r_ohm``, ``x_ohm``)."""
        z_base = self.vn_kv**2 / self.base_mva
        return pd.DataFrame(
            {
                "from_bus": self.bus[self.parent],
                "to_bus": self.bus[self.child],
                "r_ohm": self.r_pu * z_base,
                "x_ohm": self.x_pu * z_base,
            }
        )

    # ------------------------------------------------------------------ power flow
    def power_flow(
        self,
        p_mw: np.ndarray | None = None,
        q_mvar: np.ndarray | None = None,
        *,
        tol_pu: float = 1e-10,
        max_iter: int = 100,
        engine: PowerFlowEngine = "auto",
    ) -> PowerFlowResult:
        """Batched AC power flow by backward/forward sweep (F4–F7).

        Parameters
        ----------
        p_mw, q_mvar : array_like, optional
            Net load per bus (consumption positive, injection negative) with any leading
            batch shape ``[..., n_bus]``; the base case when omitted. The root's entry is
            ignored (the root is the slack).
        tol_pu : float
            Stop when the largest voltage update of the whole batch is below this.
        max_iter : int
            Raise :class:`~flexopt.errors.PowerFlowError` beyond this many sweeps.
        engine : {"auto", "numba", "numpy"}
            ``numba``: compiled tree sweep, O(n) per power flow, parallel over the batch, each
            power flow stopping on its own tolerance. ``numpy``: the matrix form (F4), one
            complex matrix product per sweep for the whole batch. ``auto`` is numba. Both
            iterate the same fixed point (tests hold them to 1e-12 pu).

        Returns
        -------
        PowerFlowResult
        """
        p = self.p_base_mw if p_mw is None else np.asarray(p_mw, dtype=float)
        q = self.q_base_mvar if q_mvar is None else np.asarray(q_mvar, dtype=float)
        p, q = np.broadcast_arrays(p, q)
        if p.shape[-1] != self.n_bus:
            raise ValueError(
                f"expected loads with last axis {self.n_bus} buses, got shape {p.shape}"
            )
        batch = p.shape[:-1]
        p2 = p.reshape(-1, self.n_bus)
        q2 = q.reshape(-1, self.n_bus)
        y = self.y_shunt_pu.copy()
        y[self.root] = 0.0
        if engine not in ("auto", "numba", "numpy"):
            raise ValueError(f"engine must be 'auto', 'numba' or 'numpy', got {engine!r}")
        if engine != "numpy":
            v, i_bus, i_branch, iters = sweep(
                p2,
                q2,
                self.base_mva,
                y,
                self.parent,
                self.child,
                self.z_branch_pu,
                self.root,
                complex(self.v_root_pu),
                float(tol_pu),
                int(max_iter),
            )
            if np.any(iters < 0):
                bad = int(np.sum(iters < 0))
                raise PowerFlowError(
                    f"feeder '{self.name}': power flow did not converge in {max_iter} sweeps "
                    f"({bad} of {len(iters)} cases); the load is probably beyond the feeder's "
                    f"loadability"
                )
            it = int(iters.max(initial=0))
        else:
            s_conj = (p2 - 1j * q2) / self.base_mva
            s_conj[:, self.root] = 0.0
            v, i_bus, i_branch, it = self._sweep_numpy(s_conj, y, tol_pu, max_iter)
        shape_bus = (*batch, self.n_bus)
        return PowerFlowResult(
            feeder=self,
            v_pu=v.reshape(shape_bus),
            i_bus_pu=i_bus.reshape(shape_bus),
            i_branch_pu=i_branch.reshape(*batch, self.n_branch),
            p_mw=p,
            q_mvar=q,
            iterations=it,
        )

    def _sweep_numpy(
        self, s_conj: np.ndarray, y: np.ndarray, tol_pu: float, max_iter: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Matrix-form sweep (F4) over the whole batch at once."""
        zt = self.z_pu.T.copy()
        v0 = complex(self.v_root_pu)
        # preallocated buffers: the loop allocates only the |ΔV| array of the stopping test
        v = np.full(s_conj.shape, v0, dtype=complex)
        v_new = np.empty_like(v)
        i_bus = np.empty_like(v)
        scratch = (np.empty(s_conj.shape), np.empty(s_conj.shape))
        step = float("inf")
        it = 0
        while it < max_iter:
            it += 1
            _bus_current(s_conj, v, y, i_bus, scratch)
            np.matmul(i_bus, zt, out=v_new)
            np.subtract(v0, v_new, out=v_new)
            np.subtract(v_new, v, out=i_bus)  # i_bus is recomputed next sweep: reuse it for ΔV
            step = float(np.abs(i_bus).max(initial=0.0))
            v, v_new = v_new, v
            if step < tol_pu:
                break
        if not step < tol_pu:
            raise PowerFlowError(
                f"feeder '{self.name}': power flow did not converge in {max_iter} sweeps "
                f"(last voltage update {step:.3g} pu); the load is probably beyond the "
                f"feeder's loadability"
            )
        _bus_current(s_conj, v, y, i_bus, scratch)
        i_branch = i_bus @ self.path.T  # backward sweep: I_k = Σ_{j downstream of k} I_j (F5)
        return v, i_bus, i_branch, it


def _bus_current(
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
