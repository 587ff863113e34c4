"""Radial distribution feeder with a batched AC power flow (F1–F7; stages S4, S5, S8).

The power flow is the backward/forward sweep in its matrix form (Teng 2003, "A direct
approach for distribution system load flow solutions", IEEE TPWRD 18(3), doi:
10.1109/TPWRD.2003.813818): with branch ``k`` named after its downstream bus, the
branch-injection-to-branch-current matrix ``BIBC`` and the branch-current-to-bus-voltage
matrix ``BCBV`` multiply to the bus impedance matrix seen from the root,
``Z = BCBV · BIBC`` (eq. F3 in ``models/feeder.md``). One sweep is then

    V ← V₀ − Z I(V),   I_j(V) = conj(S_j(|V_j|) / V_j) + y_j V_j        (F4, F4a)

evaluated for a whole batch at once. A feeder with transformers is held referred to its root
through their complex ratios (F3a): impedances, shunts, currents and the sweep's voltages are
those of an equivalent feeder without transformers, and the bus voltages are recovered as
``V_j = Ṽ_j / T_j``. Equations are numbered in ``models/feeder.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from flexopt.errors import FlexoptError
from flexopt.grid.engines import ZipData, load_factors, run_sweep
from flexopt.grid.result import FeederResult
from flexopt.grid.tree import orient_tree, parallel_groups, parallel_impedance

if TYPE_CHECKING:  # pandapower is imported lazily, only by from_pandapower
    import pandapower as pp

__all__ = ["Feeder", "PowerFlowResult"]

PowerFlowEngine = Literal["auto", "numba", "numpy"]


@dataclass(frozen=True, eq=False)
class Feeder:
    """A radial feeder, oriented from its root (the DSO's interface with the TSO).

    Buses are positional ``0..n_bus-1`` with ``bus`` holding their labels; branch ``k`` ends
    at child bus ``child[k]`` and starts at ``parent[k]``. Impedances and shunts are in per
    unit of ``base_mva`` and the root's ``vn_kv``, referred to the root through the
    transformers (F3a; the branch's own per unit on a feeder without transformers).

    Build one with :meth:`from_pandapower` or :meth:`from_branches`.

    Attributes
    ----------
    y_shunt_pu : numpy.ndarray
        Shunt admittance at each bus ``[n_bus]`` (bus shunts and the branches' π-model
        halves; the root's is not used: the root is the slack).
    p_base_mw, q_base_mvar : numpy.ndarray
        Base-case nominal net load per bus (at 1 pu voltage; consumption positive).
    ratio : numpy.ndarray, optional
        Complex cumulative off-nominal ratio ``T_j`` from the root (F3a); ``None``: all 1.
    bus_vn_kv : numpy.ndarray, optional
        Nominal voltage of each bus; ``None``: ``vn_kv`` everywhere.
    g_end_pu : numpy.ndarray, optional
        ``[2, n_branch]`` shunt conductance of each branch at its parent (row 0) and child end
        (row 1), part of ``y_shunt_pu``: a branch loss (F6), not a load.
    const_z_share, const_i_share : numpy.ndarray, optional
        ``[2, n_bus]`` constant-impedance and constant-current shares of each bus's P (row 0)
        and Q (row 1), pandapower's voltage-dependent load model (F4a); ``None``: constant
        power.
    va_root_degree : float
        Voltage angle of the root (the external grid's ``va_degree``).
    branch_label : pandas.Index, optional
        Element names of each branch (``line_3``; parallel elements joined by ``|``).
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
    ratio: np.ndarray | None = None
    bus_vn_kv: np.ndarray | None = None
    g_end_pu: np.ndarray | None = None
    const_z_share: np.ndarray | None = None
    const_i_share: np.ndarray | None = None
    va_root_degree: float = 0.0
    branch_label: pd.Index | None = None

    def __repr__(self) -> str:
        """One line: name, buses, branches and the root's nominal voltage."""
        return (
            f"Feeder({self.name}: {self.n_bus} buses, {self.n_branch} branches, {self.vn_kv:g} kV)"
        )

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

        Notes
        -----
        Rows joining the same two buses are parallel branches: they become one branch of their
        parallel impedance. Entries of ``p_mw``, ``q_mvar``, ``shunt_mvar_at_1pu`` with the
        same label add up.

        Raises
        ------
        TopologyError
            If the branches do not form a tree spanning every bus from ``root`` (see
            :func:`flexopt.grid.tree.orient_tree`, which orients them breadth-first, F1).
        FlexoptError
            If ``vn_kv`` and ``base_mva`` give no finite, positive impedance base.
        """
        try:
            z_base = float(vn_kv) ** 2 / float(base_mva)
        except (OverflowError, ZeroDivisionError):
            z_base = math.nan
        if not (vn_kv > 0 and math.isfinite(z_base) and z_base > 0):
            raise FlexoptError(
                f"feeder {name!r}: vn_kv = {vn_kv!r} kV and base_mva = {base_mva!r} give no "
                "finite, positive impedance base"
            )
        fb = np.asarray(from_bus, dtype=np.int64)
        tb = np.asarray(to_bus, dtype=np.int64)
        r = np.asarray(r_ohm, float)
        x = np.asarray(x_ohm, float)
        first, group = parallel_groups(fb, tb)
        if len(first) < len(fb):  # parallel rows: one branch of their parallel impedance
            z = parallel_impedance(r + 1j * x, group, len(first))
            fb, tb, r, x = fb[first], tb[first], z.real, z.imag
        tree = orient_tree(fb, tb, root, name=name)
        labels, n, k_idx = tree.bus, len(tree.bus), tree.branch
        y = np.zeros(n, dtype=complex)
        if shunt_mvar_at_1pu is not None:
            y += 1j * _per_bus(shunt_mvar_at_1pu, labels) / base_mva
        return cls(
            bus=labels,
            root=tree.root,
            parent=tree.parent,
            child=tree.child,
            r_pu=r[k_idx] / z_base,
            x_pu=x[k_idx] / z_base,
            y_shunt_pu=y,
            p_base_mw=np.zeros(n) if p_mw is None else _per_bus(p_mw, labels),
            q_base_mvar=np.zeros(n) if q_mvar is None else _per_bus(q_mvar, labels),
            vn_kv=float(vn_kv),
            base_mva=float(base_mva),
            v_root_pu=float(v_root_pu),
            name=name,
        )

    @classmethod
    def from_pandapower(
        cls, net: pp.pandapowerNet, name: str | None = None, *, ext_grid: int | None = None
    ) -> Feeder:
        """Read a radial feeder from a pandapower net, exactly as ``runpp`` models it.

        The network is pandapower's own conversion of the net (switches, out-of-service and
        unsupplied elements, transformer models with tap and phase shift, line charging and
        conductance, loads of every kind summed per bus with their voltage dependence), fed by
        one in-service external grid. Elements a sweep cannot represent (``gen``, ``xward``,
        ``dcline``, FACTS devices) are refused; see ``models/feeder.md`` (reading pandapower).

        Parameters
        ----------
        net : pandapowerNet
            A radial net (after bus fusion and open switches); left unchanged.
        name : str, optional
            Feeder name (default: the net's name).
        ext_grid : int, optional
            The external grid at the root, when the net has several in service (each feeding
            its own island, e.g. ``lv_schutterwald``): the feeder is the island it feeds.

        Raises
        ------
        TopologyError
            One line naming what is not a radial feeder of PQ buses.
        """
        from flexopt.grid.pandapower_feeder import feeder_fields  # imports pandapower

        fields = feeder_fields(net, ext_grid)
        return cls(**fields, name=name or str(net.name or "feeder"))

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

    @cached_property
    def bus_shunt_g_pu(self) -> np.ndarray:
        """Shunt conductance of the bus elements (not the branches' ``g_end_pu``) ``[n_bus]``."""
        g = self.y_shunt_pu.real.copy()
        if self.g_end_pu is not None:
            np.subtract.at(g, self.parent, self.g_end_pu[0])
            np.subtract.at(g, self.child, self.g_end_pu[1])
            g[np.abs(g) <= 1e-12 * np.abs(self.y_shunt_pu.real)] = 0.0  # the branches' own
        g[self.root] = 0.0
        return g

    def load_factors(self, vm_pu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``c^p + c^i |V| + c^z |V|²`` for P and for Q at bus voltages ``[..., n_bus]`` (F4a)."""
        if self.const_z_share is None or self.const_i_share is None:
            one = np.ones_like(vm_pu)
            return one, one
        return load_factors(self.const_z_share, self.const_i_share, vm_pu)

    def branch_table(self) -> pd.DataFrame:
        """Branches as a table (``from_bus``, ``to_bus`` labels, ``r_ohm``, ``x_ohm``; ohms at
        the root's voltage, F3a)."""
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
        v, i_bus, i_branch, it = run_sweep(
            p2,
            q2,
            base_mva=self.base_mva,
            y=y,
            parent=self.parent,
            child=self.child,
            z=self.z_branch_pu,
            root=self.root,
            v0=complex(self.v_root_pu),
            tol_pu=float(tol_pu),
            max_iter=int(max_iter),
            engine=engine,
            matrices=lambda: (self.z_pu.T.copy(), self.path),
            zip_data=self._zip_data,
            name=self.name,
        )
        shape_bus = (*batch, self.n_bus)
        v_ref = v.reshape(shape_bus)
        return PowerFlowResult(
            feeder=self,
            v_pu=v_ref if self._unreferred else v_ref * self._v_factor,
            i_bus_pu=i_bus.reshape(shape_bus),
            i_branch_pu=i_branch.reshape(*batch, self.n_branch),
            p_mw=p,
            q_mvar=q,
            iterations=it,
            v_ref_pu=None if self._unreferred else v_ref,
        )

    @cached_property
    def _unreferred(self) -> bool:
        """No transformer and a zero root angle: the sweep's voltages are the bus voltages."""
        return self.ratio is None and self.va_root_degree == 0.0

    @cached_property
    def _v_factor(self) -> np.ndarray:
        """``e^{jθ₀} / T_j``: sweep voltage → bus voltage (F3a)."""
        t = np.ones(self.n_bus) if self.ratio is None else self.ratio
        f: np.ndarray = np.exp(1j * np.deg2rad(self.va_root_degree)) / t
        return f

    @cached_property
    def _zip_data(self) -> ZipData | None:
        if self.const_z_share is None or self.const_i_share is None:
            return None
        inv_t = np.ones(self.n_bus) if self.ratio is None else 1.0 / np.abs(self.ratio)
        return self.const_z_share, self.const_i_share, inv_t


def _per_bus(values: pd.Series, labels: pd.Index) -> np.ndarray:
    """Values per bus label in ``labels`` order; repeated labels add up, missing ones are 0."""
    if values.index.has_duplicates:
        values = values.groupby(level=0).sum()
    out: np.ndarray = values.reindex(labels, fill_value=0.0).to_numpy(float)
    return out


#: The result of :meth:`Feeder.power_flow` (``pf.feeder`` is the :class:`Feeder`).
PowerFlowResult = FeederResult[Feeder]
