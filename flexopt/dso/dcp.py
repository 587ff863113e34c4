"""The DSO coefficient problem (DCP, stage S5) as a batched :class:`flexopt.optim.Problem`.

Equations C1–C8 in ``models/dcp.md``. For one DSO (per feeder copy; DSO-level figures are
``n_feeders ×``), decision ``x`` = modification factors of the *screened* prosumers (mode
``"ab"``: ``α, β``; mode ``"b"``: ``β``, ``α ≡ 1``); every other prosumer that offers keeps
factor 1. For a whole population ``X[P, d]`` and every design hour at once:

    a' = α a, b' = β b                                              (C1)
    u_t(x), λ_t(x) = local clearing (M4–M6) at Q_t = R_{d,t} / n      (C2)
    P^loss_t(x) = AC loss of the feeder with net load p_t − u_t(x)  (C3, batched F4)
    f_loss(x) = Σ_t Δt P^loss_t(x)                                  (C4)
    f_price(x) = Σ_t Δt λ_t Q_t   (or pay-as-bid Σ_t Δt Σ_i a' u² + b' u)   (C5)
    F(x) = w f_loss/f_loss(x⁰) + (1 − w) f_price/f_price(x⁰)        (C6)
    g_{t,k}(x) = λ'_t(Q_{t,k}) Q_{t,k} − D_t(Q_{t,k}) ≥ 0,  k = 1..K   (C7)
    e_{t,k}(x) = S_t(Q_{t,k}; x⁰) − S_t(Q_{t,k}; x) ≥ 0,  k = 1..K      (C8)

(C7) is the DSO's settled balance (S8 rules, ``flexopt.dso.budget``) at every quantity the TSO
may accept — the upper end ``Q_{t,k}`` of each block of its bid, priced at the modified
marginal cost there (M8) — not only at the design point. (C8) is the modification's
efficiency: at each of those quantities the social cost of the delivery — the prosumers'
original cost plus the value of the feeder losses, ``S = Σ_i C_i(u_i) + π_loss P^loss(u)`` —
is no higher than with the unmodified offers. A factor may then lower the price (a transfer
from the prosumers to the TSO, bounded by C7) and move dispatch where the avoided losses pay
for it, but not buy a lower price with a dearer dispatch.

No Python loop over individuals: one compiled call per evaluation where the kernels apply
(``flexopt.dso._fused``), else one clearing call and one power-flow call — the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from flexopt.dso._fused import FusedDCP, fusable
from flexopt.dso.budget import Delivery, block_edges, deliver, injection_plan, saving_slack
from flexopt.dso.context import DSOContext
from flexopt.dso.flexibility import flexibility_capacity
from flexopt.dso.modification import Factors
from flexopt.optim import Evaluation, Problem

__all__ = ["DCPBiObjective", "DCPOptions", "DCPProblem", "DCPScore", "DCPValues", "objective_scale"]


def objective_scale(value_at_x0: float) -> float:
    """The scale of an objective term: its value at ``x⁰``, or 1 where that is zero — a
    lossless feeder, offers at no cost — for the term is then zero for every factor (and
    ``0 / 0`` is no objective)."""
    return value_at_x0 if value_at_x0 != 0.0 else 1.0


MODES = ("ab", "b")
PRICE_RULES = ("uniform", "pay_as_bid")
#: The largest upper bound of a factor box (a factor scales an offer coefficient).
MAX_FACTOR = 100.0


@dataclass(frozen=True)
class DCPOptions:
    """Options of the DCP; unknown fields are rejected by the dataclass constructor.

    Attributes
    ----------
    mode : {"ab", "b"}
    bounds : (float, float)
        Box of every factor (default ``[0.5, 1.5]``).
    weight : float
        ``w`` of (C6), in [0, 1].
    price : {"uniform", "pay_as_bid"}
    budget : bool
        Impose the DSO budget balance (C7) at every block boundary of the bid (default on).
    efficiency : bool
        Impose (C8): at every block boundary the delivery's social cost is no higher than
        with the unmodified offers (default on).
    """

    mode: str = "ab"
    bounds: tuple[float, float] = (0.5, 1.5)
    weight: float = 0.5
    price: str = "uniform"
    budget: bool = True
    efficiency: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"DCPOptions.mode must be one of {MODES}, got {self.mode!r}")
        if self.price not in PRICE_RULES:
            raise ValueError(f"DCPOptions.price must be one of {PRICE_RULES}, got {self.price!r}")
        if not (isinstance(self.weight, int | float) and 0.0 <= self.weight <= 1.0):
            raise ValueError(f"DCPOptions.weight must be in [0, 1], got {self.weight!r}")
        try:
            lo, hi = (float(b) for b in self.bounds)
        except (TypeError, ValueError):
            raise ValueError(f"DCPOptions.bounds must be a pair, got {self.bounds!r}") from None
        if not 0 < lo <= 1 <= hi <= MAX_FACTOR:
            raise ValueError(
                f"DCPOptions.bounds must satisfy 0 < lo ≤ 1 ≤ hi ≤ {MAX_FACTOR:g}, got {self.bounds}"
            )
        for name in ("budget", "efficiency"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"DCPOptions.{name} must be True or False, got {getattr(self, name)!r}"
                )


@dataclass(frozen=True, eq=False)
class DCPValues:
    """Per-individual figures of the DCP (DSO level: all feeder copies)."""

    objective: np.ndarray  # [P]   (C6)
    f_loss_mwh: np.ndarray  # [P]  (C4) × n
    f_price_eur: np.ndarray  # [P] (C5) × n
    budget_eur: np.ndarray  # [P]  Δt Σ_t min_k g_{t,k} (C7) × n: the worst-case day balance
    balance_eur: np.ndarray  # [P, T, K]  Δt g_{t,k} × n at every block boundary (C7)
    efficiency_eur: np.ndarray  # [P]  Δt Σ_t min_k e_{t,k} (C8) × n: the worst-case saving
    saving_eur: np.ndarray  # [P, T, K]  Δt e_{t,k} × n at every block boundary (C8)
    u_mw: np.ndarray  # [P, T, n] per copy
    price_eur_per_mwh: np.ndarray  # [P, T]
    loss_mw: np.ndarray  # [P, T] per copy


@dataclass(frozen=True)
class DCPScore:
    """One set of factors on the DCP evaluator, DSO level (all feeder copies).

    ``objective`` (C6), ``f_loss_mwh`` (C4), ``f_price_eur`` (C5), ``budget_eur`` the
    worst-case day balance ``Δt Σ_t min_k g_{t,k}`` (C7), ``efficiency_eur`` the worst-case
    day saving of social cost against the unmodified offers ``Δt Σ_t min_k e_{t,k}`` (C8),
    ``feasible``: ``g_{t,k} ≥ 0`` and (when imposed) ``e_{t,k} ≥ 0`` at every block boundary,
    ``evaluations`` the method spent.
    """

    objective: float
    f_loss_mwh: float
    f_price_eur: float
    budget_eur: float
    efficiency_eur: float
    feasible: bool
    evaluations: int

    def as_dict(self) -> dict[str, float | bool | int]:
        return asdict(self)


class DCPProblem(Problem):
    """The DCP of one DSO at its design point (hours with ``R_{d,t} > 0``).

    Parameters
    ----------
    ctx : DSOContext
        The DSO after S4 (feeder, day-ahead net load, who offers, who is screened).
    requirement_mw : pandas.Series
        ``R_{d,t}`` per congested hour (DSO level).
    loss_price_eur_per_mwh : float
    options : DCPOptions
    blocks : int
        ``K``, blocks of the bid per hour (M8): the budget (C7) holds at each block's upper end.
    capacity_mw : pandas.DataFrame, optional
        ``Ū`` per copy given, not split by M3 (a microgrid's members, ``microgrid.md`` G4).

    Attributes
    ----------
    requirement_mw : pandas.Series
        As given: every congested hour.
    capacity_mw : pandas.DataFrame
        Congested hours × members, ``Ū_{i,t}`` per copy (M3, spare energy split in
        proportion to the requirement, evenly if the DSO was asked for nothing).
    hours : pandas.Index
        The design hours, ``R_{d,t} > 0``.
    n : int
        Prosumers that offer (the lower level's size).
    free : ndarray
        Positions (among them) of the screened prosumers, whose factors are the decision.
    edges_mw : ndarray
        ``[T, K]`` block upper ends per copy in the design hours (C7).
    social0_eur_per_h : ndarray
        ``[T, K]`` ``S_t(Q_{t,k}; x⁰)`` per copy, the unmodified offers' social cost (C8).
    """

    def __init__(
        self,
        ctx: DSOContext,
        requirement_mw: pd.Series,
        loss_price_eur_per_mwh: float,
        options: DCPOptions | None = None,
        blocks: int = 10,
        capacity_mw: pd.DataFrame | None = None,
    ) -> None:
        options = options or DCPOptions()
        if blocks < 1:
            raise ValueError(f"blocks must be ≥ 1, got {blocks}")
        self.ctx, self.options, self.loss_price = ctx, options, float(loss_price_eur_per_mwh)
        self.requirement_mw, self.blocks = requirement_mw, blocks
        members = ctx.members
        self.n = len(members)
        self.free = np.flatnonzero(ctx.screened)
        weight = (
            requirement_mw
            if requirement_mw.sum() > 0
            else pd.Series(1.0, index=requirement_mw.index)
        )
        u_max = capacity_mw
        if u_max is None:
            u_max = flexibility_capacity(
                members,
                ctx.dso.baseline_mw[members.index],
                weight,
                ctx.dt_h,
                target_mw=requirement_mw / ctx.dso.n_feeders,
            )
        self.capacity_mw = u_max.loc[requirement_mw.index]
        self.hours = requirement_mw.index[requirement_mw.to_numpy() > 0]
        self.u_max = u_max.loc[self.hours].to_numpy()  # [T, n]
        # [T] per copy, at most what the prosumers can give (a requirement the declaration
        # admits may still exceed it when spare energy is not proportional to power)
        self.q = np.minimum(
            requirement_mw.loc[self.hours].to_numpy() / ctx.dso.n_feeders,
            self.u_max.sum(axis=1),
        )
        self.a = members["a_eur_per_mw2h"].to_numpy()
        self.b = members["b_eur_per_mwh"].to_numpy()
        rows = ctx.hours.get_indexer(self.hours)
        self.p = ctx.p_mw[rows]  # [T, n_bus]
        self.q_mvar = ctx.q_mvar[rows]
        self.loss_da = ctx.loss_mw[rows]  # [T] per copy, the day-ahead point
        # prosumer → bus incidence: several prosumers may share a bus
        self.incidence = np.zeros((self.n, ctx.feeder.n_bus))
        at_bus = ctx.feeder.bus.get_indexer(members["bus"].to_numpy())
        self.incidence[np.arange(self.n), at_bus] = 1.0
        self._injection = injection_plan(self.incidence)
        self.edges_mw = block_edges(self.u_max, blocks)  # [T, K]
        lo, hi = options.bounds
        m = len(self.free)
        d = 2 * m if options.mode == "ab" else m
        self.lower, self.upper = np.full(d, lo), np.full(d, hi)
        self.n_obj = 1
        self.n_constr = len(self.hours) * blocks * (int(options.budget) + int(options.efficiency))
        self.x0 = np.ones(d)
        self.trivial = self.n == 0 or len(self.hours) == 0
        self.social0_eur_per_h = np.zeros_like(self.edges_mw)
        if not self.trivial:
            # x⁰ (every factor 1), kept: the offers of every DSO without decisions score it
            self._unit = base, at = self._delivered(*self.factors(self.x0[None, :]))
            self.loss0 = base["loss"][0]  # [T] at x⁰ and the design point
            self.f_loss0 = objective_scale(float(base["f_loss"][0]))
            self.f_price0 = objective_scale(float(base["f_price"][0]))
            self.social0_eur_per_h = at.social_cost_eur_per_h[0]
        self._fused = FusedDCP(self) if fusable(self) else None

    @property
    def has_decisions(self) -> bool:
        """Whether there is anything to optimize: design hours and screened prosumers."""
        return not self.trivial and len(self.free) > 0

    # ------------------------------------------------------------------ factors
    def factors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(α, β)`` ``[P, n]`` from decision vectors ``X[P, d]`` (C1): the screened
        prosumers' factors from ``X``, 1 for every other prosumer."""
        X = np.atleast_2d(X)
        m = len(self.free)
        alpha = np.ones((X.shape[0], self.n))
        beta = np.ones((X.shape[0], self.n))
        if self.options.mode == "ab":
            alpha[:, self.free], beta[:, self.free] = X[:, :m], X[:, m:]
        else:
            beta[:, self.free] = X
        return alpha, beta

    def vector(self, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """Decision vector of given factors ``[n]`` (inverse of :meth:`factors` on the
        screened prosumers)."""
        alpha, beta = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
        if self.options.mode == "ab":
            x: np.ndarray = np.r_[alpha[self.free], beta[self.free]]
            return x
        return beta[self.free]

    # ------------------------------------------------------------------ evaluation
    def _delivered(
        self, alpha: np.ndarray, beta: np.ndarray, edges: bool = True
    ) -> tuple[dict[str, np.ndarray], Delivery]:
        """Design-point figures (C1–C6) and, with ``edges``, the local market at the block
        boundaries (C7, C8) for factors ``[P, n]``: one clearing and one batched power flow
        for both, the design quantity beside the block ends (each market and each power flow
        of a batch is computed on its own, so the figures are those of separate calls)."""
        P, T = len(alpha), len(self.q)
        q = np.broadcast_to(self.q[None, :, None], (P, T, 1))
        if edges:
            q = np.concatenate([q, np.broadcast_to(self.edges_mw, (P, *self.edges_mw.shape))], -1)
        both = self.deliver(alpha, beta, q)
        at = both.columns(0)  # [P, T]: the design point
        dt = self.ctx.dt_h
        f_loss = dt * at.loss_mw.sum(-1)
        if self.options.price == "uniform":
            f_price = dt * (at.price_eur_per_mwh * at.quantity_mw).sum(-1)
        else:
            u, a_mod, b_mod = at.u_mw, (alpha * self.a)[:, None, :], (beta * self.b)[:, None, :]
            f_price = dt * (a_mod * u * u + b_mod * u).sum((-1, -2))
        raw = {"u": at.u_mw, "price": at.price_eur_per_mwh, "loss": at.loss_mw}
        return raw | {"f_loss": f_loss, "f_price": f_price}, both.columns(slice(1, None))

    def deliver(self, alpha: np.ndarray, beta: np.ndarray, q_mw: np.ndarray) -> Delivery:
        """The local market at quantities ``q_mw`` ``[P, T, J]`` per copy in the design hours,
        for factors ``[P, n]`` (C7a, ``flexopt.dso.budget``)."""
        return deliver(
            (alpha * self.a)[:, None, None, :],
            (beta * self.b)[:, None, None, :],
            self.a,
            self.b,
            self.u_max[None, :, None, :],
            q_mw,
            feeder=self.ctx.feeder,
            p_mw=self.p[None, :, None, :],
            q_mvar=self.q_mvar[None, :, None, :],
            incidence=self.incidence,
            loss_da_mw=self.loss_da[None, :, None],
            loss_price_eur_per_mwh=self.loss_price,
            injection=self._injection,
        )

    def _at_edges(self, alpha: np.ndarray, beta: np.ndarray) -> Delivery:
        return self.deliver(
            alpha, beta, np.broadcast_to(self.edges_mw, (len(alpha), *self.edges_mw.shape))
        )

    def boundary_balance(self, X: np.ndarray) -> np.ndarray:
        """``g_{t,k}`` (C7) ``[P, T, K]``, €/h per copy: the settled balance at each block's
        upper end when the TSO pays the block's price ``λ'(Q_{t,k})``."""
        at = self._at_edges(*self.factors(X))
        return at.balance_eur_per_h(at.price_eur_per_mwh)

    def boundary_saving(self, X: np.ndarray) -> np.ndarray:
        """``e_{t,k}`` (C8) ``[P, T, K]``, €/h per copy: the social cost of each block's
        upper end with the unmodified offers less that with these factors."""
        at = self._at_edges(*self.factors(X))
        e: np.ndarray = self.social0_eur_per_h - at.social_cost_eur_per_h
        return e

    def _constraints(self, at: Delivery) -> np.ndarray | None:
        """``G ≤ 0`` rows (€ per copy): ``−Δt g_{t,k}`` (C7) then ``−Δt e_{t,k}`` (C8), as
        imposed; a relative tolerance keeps ``x⁰`` feasible against rounding in (C8)."""
        dt, P = self.ctx.dt_h, len(at.quantity_mw)
        rows = []
        if self.options.budget:
            rows.append(-dt * at.balance_eur_per_h(at.price_eur_per_mwh).reshape(P, -1))
        if self.options.efficiency:
            e = self.social0_eur_per_h - at.social_cost_eur_per_h
            tol = saving_slack(self.social0_eur_per_h)
            rows.append(-dt * (e + tol).reshape(P, -1))
        return np.concatenate(rows, axis=-1) if rows else None

    def values(self, X: np.ndarray) -> DCPValues:
        """All figures of (C1)–(C8) for a population ``X[P, d]`` (DSO level)."""
        return self.values_of(*self.factors(np.atleast_2d(np.asarray(X, dtype=float))))

    def values_of(self, alpha: np.ndarray, beta: np.ndarray) -> DCPValues:
        """All figures of (C1)–(C8) for factors ``[P, n]`` of every prosumer that offers —
        the screened ones' or not (a registered method may set any)."""
        unit = len(alpha) == 1 and (alpha == 1.0).all() and (beta == 1.0).all()
        r, at = self._unit if unit else self._delivered(alpha, beta)
        dt, n = self.ctx.dt_h, self.ctx.dso.n_feeders
        w = self.options.weight
        objective = w * r["f_loss"] / self.f_loss0 + (1 - w) * r["f_price"] / self.f_price0
        balance = n * dt * at.balance_eur_per_h(at.price_eur_per_mwh)  # [P, T, K]
        saving = n * dt * (self.social0_eur_per_h - at.social_cost_eur_per_h)
        return DCPValues(
            objective=objective,
            f_loss_mwh=n * r["f_loss"],
            f_price_eur=n * r["f_price"],
            budget_eur=balance.min(-1).sum(-1),
            balance_eur=balance,
            efficiency_eur=saving.min(-1).sum(-1),
            saving_eur=saving,
            u_mw=r["u"],
            price_eur_per_mwh=r["price"],
            loss_mw=r["loss"],
        )

    def score(self, factors: Factors, evaluations: int = 0) -> DCPScore:
        """Given factors on the evaluator (C1–C8); the trivial problem scores 1 and zeros."""
        if self.trivial:
            return DCPScore(1.0, 0.0, 0.0, 0.0, 0.0, True, 0)
        # the factors as bid, every prosumer's (not only the screened ones')
        v = self.values_of(factors.alpha[None, :], factors.beta[None, :])
        n_dt = self.ctx.dso.n_feeders * self.ctx.dt_h
        tol = n_dt * saving_slack(self.social0_eur_per_h)
        efficient = not self.options.efficiency or bool((v.saving_eur[0] >= -tol).all())
        return DCPScore(
            objective=float(v.objective[0]),
            f_loss_mwh=float(v.f_loss_mwh[0]),
            f_price_eur=float(v.f_price_eur[0]),
            budget_eur=float(v.budget_eur[0]),
            efficiency_eur=float(v.efficiency_eur[0]),
            feasible=bool((v.balance_eur[0] >= -1e-9).all()) and efficient,
            evaluations=int(evaluations),
        )

    def evaluate(self, X: np.ndarray) -> Evaluation:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if self._fused is not None:
            return Evaluation(*self._fused(X))
        alpha, beta = self.factors(X)
        constrained = self.options.budget or self.options.efficiency
        r, at = self._delivered(alpha, beta, edges=constrained)
        w = self.options.weight
        objective = w * r["f_loss"] / self.f_loss0 + (1 - w) * r["f_price"] / self.f_price0
        G = self._constraints(at) if constrained else None  # per block boundary and hour
        return Evaluation(objective[:, None], G)

    def evaluate_deferred(self, X: np.ndarray) -> Evaluation:
        """:meth:`evaluate` with (C7, C8) deferred (compiled form; ``Problem.evaluate_deferred``)."""
        fused, X = self._fused, np.atleast_2d(np.asarray(X, dtype=float))
        return fused.deferred(X) if fused is not None and fused.n_constr else self.evaluate(X)

    def objectives(self, X: np.ndarray) -> np.ndarray:
        """``(f_loss, f_price)`` normalized by ``x⁰`` ``[P, 2]`` (the multi-objective form)."""
        v = self.values(X)
        n = self.ctx.dso.n_feeders
        F: np.ndarray = np.c_[
            v.f_loss_mwh / (n * self.f_loss0), v.f_price_eur / (n * self.f_price0)
        ]
        return F


class DCPBiObjective(Problem):
    """The multi-objective form of the DCP: ``(f_loss/f_loss(x⁰), f_price/f_price(x⁰))`` with
    the budget (C7) and the efficiency (C8), when on, as a penalty ``penalty · Σ_{t,k}
    (max(0, −g_{t,k}) + max(0, −e_{t,k})) / max(1, f_price(x⁰))`` on both objectives — the
    form the ``--pareto`` runs were measured with; MOWCA's constrained domination is the
    alternative, not compared on the DCP yet. One DCP evaluation per population."""

    def __init__(self, problem: DCPProblem, penalty: float = 1e3) -> None:
        self.problem, self.penalty = problem, penalty
        self.lower, self.upper = problem.lower, problem.upper
        self.n_obj, self.n_constr = 2, 0

    def evaluate(self, X: np.ndarray) -> Evaluation:
        pr = self.problem
        v = pr.values(X)
        n = pr.ctx.dso.n_feeders
        F = np.c_[v.f_loss_mwh / (n * pr.f_loss0), v.f_price_eur / (n * pr.f_price0)]
        deficit = np.zeros(len(F))
        if pr.options.budget:
            deficit += np.clip(-v.balance_eur, 0.0, None).sum((-1, -2))
        if pr.options.efficiency:
            deficit += np.clip(-v.saving_eur, 0.0, None).sum((-1, -2))
        F = F + self.penalty * deficit[:, None] / max(abs(pr.f_price0), 1.0)
        return Evaluation(F)
