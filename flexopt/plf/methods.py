"""Three probabilistic load flow methods on the same :class:`PLFModel` (``models/plf.md``).

* ``analytic`` — exact mean and covariance of the linear DC flows (P3).
* ``monte_carlo`` — seeded, vectorized sampling in chunks (P4).
* ``pem`` — Hong's 2m+1 point estimate method (Hong 1998, "An efficient point estimate method
  for probabilistic analysis", Reliab. Eng. Syst. Saf. 59(3):261–267,
  doi:10.1016/S0951-8320(97)00071-9), exact for the first two moments of linear functions
  of normal inputs (P5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import ndtr

from flexopt.plf.model import PLFModel
from flexopt.progress import Progress

__all__ = ["PLF_METHODS", "PLFResult", "analytic", "monte_carlo", "point_estimate", "run_plf"]

PLFMethod = Literal["analytic", "monte_carlo", "pem"]
PLF_METHODS: tuple[str, ...] = ("analytic", "monte_carlo", "pem")


@dataclass(frozen=True, eq=False)
class PLFResult:
    """Moments of every branch flow per hour.

    Attributes
    ----------
    mean_mw, std_mw : numpy.ndarray
        ``[T, L]``; flow sign follows the branch orientation (from → to).
    prob_overload : numpy.ndarray
        ``P(|f| > F̄)`` ``[T, L]``: empirical for Monte Carlo, normal otherwise (exact for
        DC flows with normal errors).
    method : str
    samples : int
        Flow evaluations used (Monte Carlo draws, 2m+1 for the point estimate, 0 analytic).
    """

    mean_mw: np.ndarray
    std_mw: np.ndarray
    prob_overload: np.ndarray
    method: str
    samples: int


def _normal_overload(mean: np.ndarray, std: np.ndarray, rating: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(std > 0, ndtr((mean - rating) / std), (mean > rating).astype(float))
        dn = np.where(std > 0, ndtr((-rating - mean) / std), (mean < -rating).astype(float))
    return up + dn


def analytic(model: PLFModel) -> PLFResult:
    """Exact moments of the DC flows (P3).

    ``E f = f(E L̃)`` and ``Var f_l = Σ_{b,b'} H_{l,b} s_b C_{b,b'} s_{b'} H_{l,b'}``, with
    ``H`` the load-reduction sensitivity (T6) and ``s = L(1+Δ)σ``.
    """
    mean = model.flows_mw(model.expected_load_mw)
    u = model.uncertain
    hs = model.sensitivity[:, :, u] * model.load_std_mw[:, None, u]  # [T, L, U]
    hk = hs @ model.correlation_factor  # C = K Kᵀ, so Var f = ‖(H s) K‖² row by row
    std = np.sqrt(np.einsum("tlu,tlu->tl", hk, hk))
    return PLFResult(mean, std, _normal_overload(mean, std, model.network.rating_mw), "analytic", 0)


def monte_carlo(
    model: PLFModel,
    samples: int = 10_000,
    *,
    seed: int | np.random.Generator = 0,
    chunk: int = 2_000,
    progress: bool = False,
) -> PLFResult:
    """Monte Carlo PLF (P4): ``ξ = K z``, ``z ~ N(0, I)`` per hour, seeded.

    Sums are accumulated relative to the flow at the expected load, in chunks of ``chunk``
    samples, so memory stays ``O(chunk · T · (N + L))`` whatever ``samples`` is.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ref = model.flows_mw(model.expected_load_mw)
    rating = model.network.rating_mw
    k = model.correlation_factor
    s1 = np.zeros_like(ref)
    s2 = np.zeros_like(ref)
    over = np.zeros_like(ref)
    done = 0
    bar = Progress("plf monte carlo samples", samples, enabled=progress)
    while done < samples:
        n = min(chunk, samples - done)
        z = rng.standard_normal((n, model.n_hours, len(model.uncertain)))
        f = model.flows_mw(model.realize(z @ k.T))
        d = f - ref
        s1 += d.sum(axis=0)
        s2 += (d * d).sum(axis=0)
        over += (np.abs(f) > rating).sum(axis=0)
        done += n
        bar.update(n)
    bar.close()
    m1 = s1 / samples
    var = np.clip(s2 / samples - m1 * m1, 0.0, None) * samples / max(samples - 1, 1)
    return PLFResult(ref + m1, np.sqrt(var), over / samples, "monte_carlo", samples)


def point_estimate(model: PLFModel) -> PLFResult:
    """Hong's 2m+1 point estimate (P5) in the independent space ``z`` (``ξ = K z``).

    For standard normal ``z_k`` (skewness 0, kurtosis 3) the locations are ``0, ±√3`` with
    weights ``1/6`` for each ``±√3`` point and ``1 − m/3`` for the common centre point.
    """
    m = len(model.uncertain)
    k = model.correlation_factor
    z = np.zeros((2 * m + 1, m))
    z[1 : m + 1] = np.sqrt(3.0) * np.eye(m)
    z[m + 1 :] = -np.sqrt(3.0) * np.eye(m)
    w = np.r_[1.0 - m / 3.0, np.full(2 * m, 1.0 / 6.0)]
    xi = np.broadcast_to((z @ k.T)[:, None, :], (2 * m + 1, model.n_hours, m))
    f = model.flows_mw(model.realize(xi))  # [2m+1, T, L]
    d = f - f[0]
    m1 = np.tensordot(w, d, axes=1)
    var = np.clip(np.tensordot(w, d * d, axes=1) - m1 * m1, 0.0, None)
    mean = f[0] + m1
    std = np.sqrt(var)
    return PLFResult(
        mean, std, _normal_overload(mean, std, model.network.rating_mw), "pem", 2 * m + 1
    )


def run_plf(
    model: PLFModel,
    method: PLFMethod = "analytic",
    *,
    samples: int = 10_000,
    seed: int | np.random.Generator = 0,
    progress: bool = False,
) -> PLFResult:
    """Dispatch to one of :data:`PLF_METHODS`."""
    if method == "analytic":
        return analytic(model)
    if method == "monte_carlo":
        return monte_carlo(model, samples, seed=seed, progress=progress)
    if method == "pem":
        return point_estimate(model)
    raise ValueError(f"unknown PLF method {method!r}; use one of {PLF_METHODS}")
