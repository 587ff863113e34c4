"""The water-filling of (M3) (``models/local_market.md``) compiled with numba.

``Ū_{i,t} = min(P_{t,i}, θ_i s_t)`` with ``θ_i`` such that ``Σ_t min(P_{t,i}, θ_i s_t) = e_i``
(``θ_i = ∞`` when every hour at ``P`` uses less), then the weights ``s_t`` fitted to a target:
an hour left short has its weight raised by the ratio of target to capacity, at most 100
rounds. :func:`flexopt.dso.flexibility.flexibility_capacity` runs it once per DSO; when an
hour's target is beyond what raising its weight can give, the rounds converge only slowly and
often all 100 run, each a chain of ~30 numpy calls on arrays
of a few hours × a few dozen prosumers — milliseconds of call overhead with the GIL held,
which serialised the DSOs' threads. Here the rounds run in one compiled call without the GIL.

The floating-point operations are the numpy form's (:func:`flexopt.dso.flexibility._split`,
:func:`~flexopt.dso.flexibility._water_level`, :func:`~flexopt.dso.flexibility._capacity_numpy`)
in its order, so every number is equal bit for bit (``tests/dso/test_flexibility_kernel.py``):
the stable sort's order of ties with NaN last, the cumulative sums one by one (the free weight
from the last breakpoint back), ``np.minimum``'s choice between equal zeros, the sums over
prosumers and over hours as NumPy's pairwise sum — :func:`~flexopt.dso._kernels._pairwise_any` repeats its split
into halves (rounded down to a multiple of eight) above the 128 numbers it sums in one block,
so any number of prosumers takes this path.
"""

from __future__ import annotations

import numpy as np

from flexopt.dso._kernels import _compile, _pairwise_any

__all__ = ["water_fill"]

#: the numpy form's ``1 + 1e-9``: an hour is short beyond this relative margin
_GROW = 1 + 1e-9
#: weight-fitting rounds at most (M3)
_ROUNDS = 100


def _minimum_py(a: float, b: float) -> float:
    """``np.minimum`` of two floats: NaN propagates; of two equal values the second (equal
    zeros of opposite signs cannot occur here: ``P ≥ 0``, ``θ s ≥ 0``)."""
    return a if a < b or a != a else b


def _water_level_py(
    power: np.ndarray,
    share: np.ndarray,
    energy: np.ndarray,
    rows: np.ndarray,
    ratio: np.ndarray,
    order: np.ndarray,
    free: np.ndarray,
    theta: np.ndarray,
) -> None:
    """``θ_i`` into ``theta`` ``[n]``: per prosumer, the hours with ``s > 0`` sorted by
    breakpoint ``P/s`` (stable, NaN last), then the first breakpoint whose level
    ``Σ_{capped} P + r_k Σ_{free} s`` reaches ``e_i``; ``rows``, ``ratio``, ``order``,
    ``free`` ``[T]`` are scratch."""
    m = 0
    for t in range(share.shape[0]):
        if share[t] > 0:
            rows[m] = t
            m += 1
    if m == 0:
        raise ValueError("attempt to get argmax of an empty sequence")  # as np.argmax
    for i in range(power.shape[1]):
        for k in range(m):
            ratio[k] = power[rows[k], i] / share[rows[k]]
            order[k] = k
        for k in range(1, m):  # insertion sort: ties keep their order, NaN goes last
            o = order[k]
            key = ratio[o]
            j = k - 1
            while j >= 0 and (
                key < ratio[order[j]] or (ratio[order[j]] != ratio[order[j]] and key == key)
            ):
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = o
        free[m - 1] = share[rows[order[m - 1]]]
        for k in range(m - 2, -1, -1):
            free[k] = free[k + 1] + share[rows[order[k]]]
        level = np.inf
        acc = 0.0
        for k in range(m):
            p = power[rows[order[k]], i]
            acc = p if k == 0 else acc + p
            capped = acc - p
            if capped + ratio[order[k]] * free[k] >= energy[i]:
                level = (energy[i] - capped) / free[k]
                break
        theta[i] = level


def _split_py(
    power: np.ndarray,
    share: np.ndarray,
    energy: np.ndarray,
    rows: np.ndarray,
    ratio: np.ndarray,
    order: np.ndarray,
    free: np.ndarray,
    theta: np.ndarray,
    cap: np.ndarray,
) -> None:
    """``min(P_{t,i}, θ_i s_t)`` (``min(P_{t,i}, 0)`` where ``s_t ≤ 0``) into ``cap`` ``[T, n]``."""
    _water_level(power, share, energy, rows, ratio, order, free, theta)
    for t in range(power.shape[0]):
        on = share[t] > 0
        for i in range(power.shape[1]):
            cap[t, i] = _minimum(power[t, i], theta[i] * share[t] if on else 0.0)


def _fill_py(
    power: np.ndarray, share0: np.ndarray, energy: np.ndarray, target: np.ndarray, fit: bool
) -> np.ndarray:
    """The split, then — with ``fit`` — the weights fitted to ``target`` ``[T]``."""
    n_t, n = power.shape
    share = share0.copy()
    rows = np.empty(n_t, dtype=np.int64)
    order = np.empty(n_t, dtype=np.int64)
    ratio, free = np.empty(n_t), np.empty(n_t)
    theta = np.empty(n)
    cap = np.empty((n_t, n))
    _split(power, share, energy, rows, ratio, order, free, theta, cap)
    if not fit:
        return cap
    total, new = np.empty(n_t), np.empty(n_t)
    short = np.zeros(n_t, dtype=np.bool_)
    for _ in range(_ROUNDS):
        any_short = False
        for t in range(n_t):
            total[t] = 0.0 + _pairwise_any(cap[t])
            short[t] = target[t] > total[t] * _GROW + 1e-12 and share[t] > 0
            any_short = any_short or short[t]
        if not any_short:
            break
        for t in range(n_t):
            tot = total[t]
            floor = tot if tot > 1e-12 or tot != tot else 1e-12  # np.maximum(total, 1e-12)
            new[t] = share[t] * (target[t] / floor if short[t] else 1.0)
        norm = 0.0 + _pairwise_any(new)
        close = True
        for t in range(n_t):
            new[t] = new[t] / norm
            y = share[t]  # np.allclose(new, share, rtol=1e-12, atol=0.0)
            finite = y == y and abs(y) != np.inf
            close = close and ((abs(new[t] - y) <= 0.0 + 1e-12 * abs(y) and finite) or new[t] == y)
        if close:
            break  # the weights no longer move (every short hour raised by the same ratio)
        share[:] = new
        _split(power, share, energy, rows, ratio, order, free, theta, cap)
    return cap


_minimum = _compile(_minimum_py)
_water_level = _compile(_water_level_py)
_split = _compile(_split_py)
_fill = _compile(_fill_py)


def water_fill(
    power: np.ndarray, share: np.ndarray, energy: np.ndarray, target: np.ndarray | None = None
) -> np.ndarray:
    """Upward capacity ``Ū`` ``[T, n]`` of (M3), compiled; the GIL is released throughout.

    Parameters
    ----------
    power : ndarray
        ``[T, n]`` power headroom ``P_{t,i} ≥ 0`` (zero in hours without weight).
    share : ndarray
        ``[T]`` weights ``s_t`` summing to one.
    energy : ndarray
        ``[n]`` energy ``e_i`` to split (per ``Δt``).
    target : ndarray, optional
        ``[T]`` capacity wanted per hour: the weights are fitted to it.

    Returns
    -------
    ndarray
        ``[T, n]``, equal bit for bit to :func:`flexopt.dso.flexibility._capacity_numpy`.
    """
    power = np.ascontiguousarray(power, dtype=np.float64)
    share = np.ascontiguousarray(share, dtype=np.float64)
    energy = np.ascontiguousarray(energy, dtype=np.float64)
    fit = target is not None
    goal = np.ascontiguousarray(target if fit else share, dtype=np.float64)
    cap: np.ndarray = _fill(power, share, energy, goal, fit)
    return cap
