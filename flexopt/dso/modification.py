"""Cost-coefficient modification of the DSO (stage S5; ``models/local_market.md`` M9).

A method returns the factors ``α_i, β_i`` that turn an offer ``C_i(u) = a_i u² + b_i u`` into
the modified offer ``a'_i = α_i a_i``, ``b'_i = β_i b_i`` that the DSO dispatches and bids with.
The optimizing methods (WCA, exact) plug into the same place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Factors", "mlf_factors", "unit_factors"]


@dataclass(frozen=True, eq=False)
class Factors:
    """Modification factors per participating prosumer (``[n]`` each)."""

    alpha: np.ndarray
    beta: np.ndarray

    def apply(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.alpha * a, self.beta * b


def unit_factors(n: int) -> Factors:
    """``x⁰``: the offers unchanged (method ``none``)."""
    return Factors(np.ones(n), np.ones(n))


def mlf_factors(
    b: np.ndarray,
    mlf: np.ndarray,
    loss_price_eur_per_mwh: float,
    bounds: tuple[float, float] = (0.5, 1.5),
) -> Factors:
    """Loss-factor-adjusted bids (method ``mlf``, M9).

    One MW of extra discharge at a bus with marginal loss factor ``MLF_i = ∂P_loss/∂P_i``
    also saves ``MLF_i`` MW of feeder losses, worth ``π_loss MLF_i`` €/MWh to the DSO. The
    DSO lowers the linear coefficient by that value,

        b'_i = b_i − π_loss MLF_i   ⇔   β_i = 1 − π_loss MLF_i / b_i,

    so ``1 − β_i`` is proportional to the prosumer's loss factor; β is clipped to ``bounds``
    and ``α ≡ 1``. A prosumer whose discharge would raise losses (``MLF < 0``) gets ``β > 1``.
    """
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(b > 0, 1.0 - loss_price_eur_per_mwh * np.asarray(mlf) / b, 1.0)
    return Factors(np.ones_like(b), np.clip(beta, *bounds))
