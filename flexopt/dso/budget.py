"""What a DSO pays and saves when it delivers a quantity, under the settlement rules of S8
(``models/local_market.md`` M12, ``models/dcp.md`` C7).

Delivering ``Q`` (per feeder copy and hour) with modified offers ``a'``, ``b'``: the local
market clears (M4–M6) at ``λ'(Q)`` with dispatch ``u(Q)``; every dispatched prosumer is paid
``max(λ'(Q) u_i, C_i(u_i))`` — the local uniform price, but never below its *original* cost
``C_i(u) = a_i u² + b_i u`` (make-whole); the DSO keeps the value of the feeder losses it
avoids against the day-ahead point, ``π_loss (P^loss_DA − P^loss(u))`` (AC power flow, F4).
Its net cost of delivery is

    D(Q) = Σ_i max(λ'(Q) u_i, C_i(u_i)) − π_loss (P^loss_DA − P^loss(u(Q)))          (C7a)

and its balance when the TSO pays ``p`` per MWh is ``p Q − D(Q)`` (per hour, Δt = 1).

Between consecutive breakpoints of the clearing (a prosumer entering at ``λ' = b'_i`` or
reaching its capacity at ``λ' = b'_i + 2 a'_i Ū_i``) the dispatch and the price are affine in
``Q``, every payment term is convex in ``Q`` and so are the losses (exactly under LinDistFlow,
to within the curvature of the AC losses otherwise): ``D`` is convex on each such segment and
``p Q − D(Q)`` reaches its minimum over a segment at an end. Checking the balance at the
block boundaries and at the breakpoints — and just above them, where the supply curve is
flat and the price jumps on the same dispatch — therefore checks it at every quantity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flexopt.dso._kernels import MAX_OFFERS, first_equal_rows, settle_rows
from flexopt.dso.clearing import clear
from flexopt.grid import Feeder

__all__ = [
    "SAVING_TOL",
    "Delivery",
    "Injection",
    "block_edges",
    "break_even_prices",
    "breakpoint_quantities",
    "bus_injection",
    "deliver",
    "feeder_loss",
    "injection_plan",
    "saving_slack",
]

#: Relative slack of (C8): the unmodified offers' own social cost, recomputed in another
#: batch, must not read as a violation.
SAVING_TOL = 1e-9


def saving_slack(social0: np.ndarray | float) -> np.ndarray:
    """The slack (C8) allows against the unmodified offers' social cost ``S(x⁰)`` (same
    units): ``SAVING_TOL · max(1, |S(x⁰)|)``."""
    slack: np.ndarray = SAVING_TOL * np.maximum(1.0, np.abs(social0))
    return slack


def block_edges(u_max_mw: np.ndarray, blocks: int) -> np.ndarray:
    """Upper ends ``Q_k = k Σ_i Ū_i / K``, ``k = 1..K``, of the bid's blocks ``[..., K]``
    (M8), from capacities ``[..., n]``."""
    total = np.asarray(u_max_mw, dtype=float).sum(-1)
    edges: np.ndarray = total[..., None] * (np.arange(1, blocks + 1) / blocks)
    return edges


def breakpoint_quantities(a: np.ndarray, b: np.ndarray, u_max_mw: np.ndarray) -> np.ndarray:
    """``S(λ)`` at every breakpoint ``b_i`` and ``b_i + 2 a_i Ū_i`` of the clearing (M6): the
    quantities where a prosumer enters or saturates ``[..., 4n]`` (unsorted; just below and at
    each breakpoint, which differ where a linear offer, ``a_i = 0``, switches on at once)."""
    a, b, umax = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (a, b, u_max_mw)))
    lam = np.concatenate([b, b + 2.0 * a * umax], axis=-1)[..., :, None]  # [..., 2n, 1]
    a_, b_, u_ = a[..., None, :], b[..., None, :], umax[..., None, :]
    safe = np.where(a_ > 0, 2.0 * a_, 1.0)
    sloped = np.where(a_ > 0, np.clip((lam - b_) / safe, 0.0, u_), 0.0)
    below = np.where((a_ == 0) & (lam > b_), u_, sloped).sum(-1)
    at = np.where((a_ == 0) & (lam >= b_), u_, sloped).sum(-1)
    q: np.ndarray = np.concatenate([below, at], axis=-1)
    return q


@dataclass(frozen=True, eq=False)
class Delivery:
    """The local market at given quantities, per feeder copy; batch shape ``[...]``.

    Attributes
    ----------
    quantity_mw : ndarray
        ``Q`` ``[...]`` (served: at most the capacity).
    price_eur_per_mwh : ndarray
        ``λ'(Q)`` ``[...]``, the local uniform price of the modified offers.
    u_mw : ndarray
        ``[..., n]`` dispatch.
    payment_eur_per_h : ndarray
        ``Σ_i max(λ' u_i, C_i(u_i))`` ``[...]``.
    original_cost_eur_per_h : ndarray
        ``Σ_i C_i(u_i)`` ``[...]``.
    loss_saving_mw : ndarray
        ``P^loss_DA − P^loss(u)`` ``[...]``.
    net_cost_eur_per_h : ndarray
        ``D(Q)`` of (C7a) ``[...]``.
    loss_price : float
        ``π_loss``, €/MWh.
    loss_mw : ndarray
        ``P^loss(u)`` ``[...]``, the AC feeder loss of the dispatch.
    """

    quantity_mw: np.ndarray
    price_eur_per_mwh: np.ndarray
    u_mw: np.ndarray
    payment_eur_per_h: np.ndarray
    original_cost_eur_per_h: np.ndarray
    loss_saving_mw: np.ndarray
    net_cost_eur_per_h: np.ndarray
    loss_price: float
    loss_mw: np.ndarray

    @property
    def social_cost_eur_per_h(self) -> np.ndarray:
        """``S(Q) = Σ_i C_i(u_i) − π_loss (P^loss_DA − P^loss(u))`` ``[...]`` (C8): the
        prosumers' original cost plus the value of the loss change (€/h per copy)."""
        s: np.ndarray = self.original_cost_eur_per_h - self.loss_price * self.loss_saving_mw
        return s

    def balance_eur_per_h(self, price_eur_per_mwh: np.ndarray) -> np.ndarray:
        """The DSO's balance ``p Q − D(Q)`` when the TSO pays ``p`` ``[...]`` (€/h per copy)."""
        bal: np.ndarray = price_eur_per_mwh * self.quantity_mw - self.net_cost_eur_per_h
        return bal

    def columns(self, cols: int | slice) -> Delivery:
        """The quantities ``cols`` of the batch's last axis (an index drops the axis), as
        contiguous copies: one market delivered at several sets of quantities in one call,
        split again."""

        def take(x: np.ndarray, tail: int = 0) -> np.ndarray:
            return np.ascontiguousarray(x[(..., cols, *(slice(None),) * tail)])

        return Delivery(
            quantity_mw=take(self.quantity_mw),
            price_eur_per_mwh=take(self.price_eur_per_mwh),
            u_mw=take(self.u_mw, 1),
            payment_eur_per_h=take(self.payment_eur_per_h),
            original_cost_eur_per_h=take(self.original_cost_eur_per_h),
            loss_saving_mw=take(self.loss_saving_mw),
            net_cost_eur_per_h=take(self.net_cost_eur_per_h),
            loss_price=self.loss_price,
            loss_mw=take(self.loss_mw),
        )


def deliver(
    a_mod: np.ndarray,
    b_mod: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    u_max_mw: np.ndarray,
    q_mw: np.ndarray,
    *,
    feeder: Feeder,
    p_mw: np.ndarray,
    q_mvar: np.ndarray,
    incidence: np.ndarray,
    loss_da_mw: np.ndarray,
    loss_price_eur_per_mwh: float,
    injection: Injection | None = None,
) -> Delivery:
    """Clear, settle and run the AC power flow for quantities ``q_mw`` (C7a).

    Parameters
    ----------
    a_mod, b_mod : ndarray
        Modified offers ``[..., n]`` (the batch broadcasts against ``q_mw``'s batch).
    a, b : ndarray
        Original offers ``[n]``.
    u_max_mw : ndarray
        Capacity ``[..., n]``.
    q_mw : ndarray
        Quantities ``[...]`` per copy.
    feeder : Feeder
    p_mw, q_mvar : ndarray
        Day-ahead net load ``[..., n_bus]`` matching the batch (hours).
    incidence : ndarray
        ``[n, n_bus]``, each prosumer at its bus.
    loss_da_mw : ndarray
        Feeder loss at the day-ahead point, broadcasting against the batch.
    loss_price_eur_per_mwh : float
    injection : Injection, optional
        :func:`injection_plan` of ``incidence``, when the caller keeps it.
    """
    cl = clear(a_mod, b_mod, u_max_mw, q_mw)
    u = cl.u_mw
    if np.ndim(a) == np.ndim(b) == 1 and 0 < u.shape[-1] <= MAX_OFFERS:  # compiled, same sums
        pay, original = (
            x.reshape(cl.price.shape)
            for x in settle_rows(u.reshape(-1, u.shape[-1]), cl.price.ravel(), a, b)
        )
    else:
        cost_i = a * u * u + b * u
        pay = np.where(u > 1e-12, np.maximum(cl.price[..., None] * u, cost_i), 0.0).sum(-1)
        original = cost_i.sum(-1)
    loss = feeder_loss(feeder, p_mw - bus_injection(u, incidence, injection), q_mvar)
    saving = loss_da_mw - loss
    return Delivery(
        quantity_mw=cl.served_mw,
        price_eur_per_mwh=cl.price,
        u_mw=u,
        payment_eur_per_h=pay,
        original_cost_eur_per_h=original,
        loss_saving_mw=saving,
        net_cost_eur_per_h=pay - loss_price_eur_per_mwh * saving,
        loss_price=float(loss_price_eur_per_mwh),
        loss_mw=loss,
    )


@dataclass(frozen=True, eq=False)
class Injection:
    """Where each prosumer's dispatch goes in :func:`bus_injection`: ``bus[k]``, ``who[k]``
    the buses and prosumers of the ``k``-th prosumer at each bus (in prosumer order), added
    round by round — or, ``product``, the matrix product (a prosumer not at exactly one bus
    with weight 1)."""

    product: bool
    bus: tuple[np.ndarray, ...]
    who: tuple[np.ndarray, ...]


def injection_plan(incidence: np.ndarray) -> Injection:
    """The :class:`Injection` of ``incidence`` ``[n, n_bus]``."""
    n, _ = incidence.shape
    bus = incidence.argmax(axis=1) if n else np.zeros(0, dtype=np.intp)
    simple = np.count_nonzero(incidence) == n and (incidence[np.arange(n), bus] == 1.0).all()
    # each prosumer's rank among those at its bus, in prosumer order
    rank = np.empty(n, dtype=np.intp)
    count: dict[int, int] = {}
    for i, j in enumerate(bus.tolist()):
        rank[i] = count.get(j, 0)
        count[j] = int(rank[i]) + 1
    who = tuple(np.flatnonzero(rank == k) for k in range(int(rank.max(initial=-1)) + 1))
    return Injection(not bool(simple), tuple(bus[w] for w in who), who)


def bus_injection(
    u: np.ndarray, incidence: np.ndarray, plan: Injection | None = None
) -> np.ndarray:
    """``u @ incidence`` ``[..., n_bus]``: each prosumer's dispatch ``u`` ``[..., n]`` at its
    bus (``incidence`` ``[n, n_bus]``; ``plan`` its :func:`injection_plan`, made here when
    not given). Where every prosumer sits at one bus, the sums are written directly, the
    prosumers at a bus added in their order (the compiled DCP evaluation adds them so), with
    exact zeros elsewhere, without the matrix product's cost per stacked matrix."""
    plan = plan or injection_plan(incidence)
    if plan.product:
        product: np.ndarray = u @ incidence
        return product
    out = np.zeros((*u.shape[:-1], incidence.shape[1]))
    for k, (bus, who) in enumerate(zip(plan.bus, plan.who, strict=True)):
        if k == 0:
            out[..., bus] = u[..., who]
        else:
            out[..., bus] += u[..., who]
    return out


def feeder_loss(feeder: Feeder, p_mw: np.ndarray, q_mvar: np.ndarray) -> np.ndarray:
    """AC feeder loss (F4, F6) for net loads ``p_mw``, ``q_mvar`` ``[..., n_bus]`` (broadcast
    together) ``[...]``, each distinct load of the batch solved once.

    A DCP population's deliveries repeat many dispatches exactly — the block boundaries
    that the screened prosumers' factors do not reach, the full capacity — about half the
    power flows of a wca search. Each power flow of a batch is solved on its own (F4,
    ``flexopt.grid._sweep``), so a repeated load's loss is the very number its own power
    flow would give; loads count as equal when their bytes are."""
    p, q = np.broadcast_arrays(np.asarray(p_mw, dtype=float), np.asarray(q_mvar, dtype=float))
    n_bus, shape = p.shape[-1], p.shape[:-1]
    p2 = np.ascontiguousarray(p.reshape(-1, n_bus))
    q2 = np.ascontiguousarray(q.reshape(-1, n_bus))
    first = first_equal_rows(p2, q2)
    solve = np.flatnonzero(first == np.arange(len(first)))
    if len(solve) == len(first):
        loss: np.ndarray = feeder.power_flow(p2, q2).loss_mw
        return loss.reshape(shape)
    at = np.empty(len(first), dtype=np.intp)
    at[solve] = np.arange(len(solve))
    loss = feeder.power_flow(p2[solve], q2[solve]).loss_mw[at[first]]
    return loss.reshape(shape)


def break_even_prices(
    a_mod: np.ndarray,
    b_mod: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    u_max_mw: np.ndarray,
    blocks: int,
    *,
    feeder: Feeder,
    p_mw: np.ndarray,
    q_mvar: np.ndarray,
    incidence: np.ndarray,
    loss_da_mw: np.ndarray,
    loss_price_eur_per_mwh: float,
) -> np.ndarray:
    """The lowest price of each block at which the DSO breaks even on every quantity in it
    (C7b) ``[T, K]``.

    ``max_F D(F) / F`` over the block boundaries and clearing breakpoints ``F`` in
    ``(Q_{k−1}, Q_k]``, and over their right-hand limits ``D(F⁺) / F`` for ``F`` in
    ``[Q_{k−1}, Q_k)`` — where the supply curve is flat at ``F`` the price jumps just above it,
    on the same dispatch (C7a–C7b). By the convexity of ``D`` between breakpoints, a block
    priced at least this high leaves the DSO a non-negative balance at every accepted
    quantity in it, whatever the factors. Zero where a block is empty.

    Parameters
    ----------
    a_mod, b_mod : ndarray
        Modified offers ``[n]``.
    a, b : ndarray
        Original offers ``[n]``.
    u_max_mw : ndarray
        ``[T, n]`` capacity per copy in the bid's hours.
    blocks : int
    feeder, p_mw, q_mvar, incidence, loss_da_mw, loss_price_eur_per_mwh
        As :func:`deliver`, with ``p_mw``, ``q_mvar`` ``[T, n_bus]`` and ``loss_da_mw`` ``[T]``.
    """
    edges = block_edges(u_max_mw, blocks)  # [T, K]
    kinks = breakpoint_quantities(a_mod, b_mod, u_max_mw)  # [T, 4n]
    points = np.concatenate([edges, kinks], axis=-1)  # [T, J]
    umax = u_max_mw[:, None, :]
    at = deliver(
        a_mod,
        b_mod,
        a,
        b,
        umax,
        points,
        feeder=feeder,
        p_mw=p_mw[:, None, :],
        q_mvar=q_mvar[:, None, :],
        incidence=incidence,
        loss_da_mw=loss_da_mw[:, None],
        loss_price_eur_per_mwh=loss_price_eur_per_mwh,
    )
    f = at.quantity_mw  # [T, J]
    # where the supply curve is flat at F (every dispatched prosumer full, the next one not
    # started) the price jumps just above F: the same dispatch paid the higher price is the
    # segment's right-hand end, D(F⁺)
    eps = 1e-9 * np.maximum(edges[:, -1:], 1e-12)
    above = clear(a_mod, b_mod, umax, f + eps).price  # [T, J]
    u = at.u_mw
    pay_above = np.where(u > 1e-12, np.maximum(above[..., None] * u, a * u * u + b * u), 0.0)
    net_above = pay_above.sum(-1) - loss_price_eur_per_mwh * at.loss_saving_mw
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = f > 1e-12
        per_mw = np.where(pos, at.net_cost_eur_per_h / np.where(pos, f, 1.0), -np.inf)
        per_mw_above = np.where(pos, net_above / np.where(pos, f, 1.0), -np.inf)
    lower = np.concatenate([np.zeros_like(edges[:, :1]), edges[:, :-1]], axis=-1)  # [T, K]
    tol = (1e-12 * np.maximum(1.0, edges[:, -1:]))[:, :, None]
    fj, lo, hi = f[:, None, :], lower[:, :, None], edges[:, :, None]
    left = (fj > lo + tol) & (fj <= hi + tol)  # D(F) for F in (Q_{k−1}, Q_k]
    right = (fj >= lo - tol) & (fj < hi - tol)  # D(F⁺) for F in [Q_{k−1}, Q_k)
    floor: np.ndarray = np.maximum(
        np.where(left, per_mw[:, None, :], -np.inf).max(-1),
        np.where(right, per_mw_above[:, None, :], -np.inf).max(-1),
    )
    return np.where(np.isfinite(floor), floor, 0.0)
