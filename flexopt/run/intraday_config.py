"""Options of the intraday flexibility market (``models/intraday.md``, J1–J3, J10): whether it
runs, over how many realizations, the two overload-probability thresholds and the penalty on
the overload left over.

The thresholds are probabilities turned into risk quantiles of the congestion rule (P6),
``z(p) = Φ⁻¹(1 − p)`` (J1): a line-hour whose flow exceeds its rating with a probability above
``p`` (in the flow's direction, normal) is exactly one with ``|E f| + z(p) σ > F̄``. The
default day-ahead threshold is no probability at all: the instance's risk quantile, the
paper's mean-flow rule on the bundled instances — today's run, number for number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from scipy.special import ndtri

from flexopt.errors import OptionError
from flexopt.instance import Instance

__all__ = [
    "INTRADAY_OPTIONS",
    "MAX_PENALTY",
    "MAX_SCENARIOS",
    "IntradayConfig",
    "check_intraday_option",
    "intraday_from_kwargs",
    "probability_quantile",
    "with_dayahead_threshold",
]

#: The flat options of the intraday market (``run_market`` keywords, ``flexopt run`` flags).
INTRADAY_OPTIONS = (
    "intraday",
    "scenarios",
    "dayahead_prob",
    "intraday_min_prob",
    "overload_penalty_eur_per_mwh",
)
#: Bounds on the length of the scenario loop and on the penalty (€/MWh).
MAX_SCENARIOS = 100_000
MAX_PENALTY = 1e7


def _probability(x: object) -> bool:
    """A finite number strictly between 0 and 1 (``z(p)`` is infinite at either end)."""
    return (
        isinstance(x, int | float)
        and not isinstance(x, bool)
        and math.isfinite(x)
        and 0.0 < x < 1.0
    )


def _checks(name: str, value: Any) -> tuple[bool, str]:
    """Whether ``value`` is a valid ``name``, and what is wanted."""
    if name == "intraday":
        return isinstance(value, bool), "true or false"
    if name == "scenarios":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_SCENARIOS
        return ok, f"an integer in 1..{MAX_SCENARIOS:_}"
    if name == "dayahead_prob":
        return value is None or _probability(value), "a probability in (0, 1) or None"
    if name == "intraday_min_prob":
        return _probability(value), "a probability in (0, 1)"
    if name == "overload_penalty_eur_per_mwh":
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and 0.0 <= value <= MAX_PENALTY
        )
        return ok, f"a price in [0, {MAX_PENALTY:g}] €/MWh"
    raise OptionError(f"unknown intraday option {name!r}; known: {INTRADAY_OPTIONS}")


def check_intraday_option(name: str, value: Any) -> None:
    """``value`` checked as the intraday option ``name`` on its own.

    Raises
    ------
    OptionError
        Naming the option, what it must be and what it got.
    """
    ok, want = _checks(name, value)
    if not ok:
        raise OptionError(f"option {name!r} must be {want}, got {value!r}")


def probability_quantile(p: float) -> float:
    """``z(p) = Φ⁻¹(1 − p)`` (J1): the risk quantile at which the congestion rule (P6) flags
    exactly the line-hours whose overload probability exceeds ``p`` (``p = 0.5``: ``z = 0``,
    the mean-flow rule; ``p > 0.5``: ``z < 0``)."""
    return float(ndtri(1.0 - p))


@dataclass(frozen=True)
class IntradayConfig:
    """The intraday market of a bilevel run (``models/intraday.md``).

    Attributes
    ----------
    intraday : bool
        Run it: after the day-ahead market, ``scenarios`` realizations of the load, each with
        an intraday market on its realized flows (J4–J9), and the expected figures of the
        day-ahead market alone and with the intraday market (J10–J11).
    scenarios : int
        Realizations ``N`` (J11).
    dayahead_prob : float, optional
        Day-ahead threshold ``p_DA`` (J2): the TSO buys relief day ahead for the line-hours
        whose overload probability exceeds it, down to it. ``None`` (default): the instance's
        risk quantile, the paper's mean-flow rule (P6) — today's day-ahead market exactly.
    intraday_min_prob : float
        Intraday threshold ``p_ID`` (J3): line-hours below the day-ahead threshold but with an
        overload probability above this one wait for the intraday market; those below both
        are negligible (no market is held for them).
    overload_penalty_eur_per_mwh : float
        ``π_pen`` (J10): what an MW·h of overload left after the markets costs the TSO
        (emergency measures), added to its payments in the expected cost. A value of the
        analysis, not a market price.
    """

    intraday: bool = False
    scenarios: int = 20
    dayahead_prob: float | None = None
    intraday_min_prob: float = 0.05
    overload_penalty_eur_per_mwh: float = 1000.0

    def __post_init__(self) -> None:
        for f in fields(self):
            check_intraday_option(f.name, getattr(self, f.name))
        if not self.intraday:
            given = [n for n, d in _DEFAULTS.items() if n != "intraday" and getattr(self, n) != d]
            if given:
                raise OptionError(
                    f"option(s) {given} apply to the intraday market only: add intraday=True "
                    "(--intraday)"
                )

    def dayahead_quantile(self, instance_quantile: float) -> float:
        """``z_DA`` (J2): ``z(p_DA)``, or the instance's risk quantile without ``p_DA``."""
        if self.dayahead_prob is None:
            return float(instance_quantile)
        return probability_quantile(self.dayahead_prob)

    def monitor_quantile(self, dayahead_quantile: float) -> float:
        """``z_mon = max(z_DA, z(p_ID))`` (J3): the day-ahead line-hours and the watched ones."""
        return max(dayahead_quantile, probability_quantile(self.intraday_min_prob))

    def flat(self) -> dict[str, Any]:
        """The options as recorded in a run's summary: none without the intraday market (a
        run without it records what it recorded before the market existed)."""
        if not self.intraday:
            return {}
        return {f.name: getattr(self, f.name) for f in fields(self)}


_DEFAULTS = {f.name: f.default for f in fields(IntradayConfig)}


def intraday_from_kwargs(kwargs: dict[str, Any], method: str, bilevel: bool) -> IntradayConfig:
    """Pop the intraday options out of flat ``kwargs`` into their config.

    Raises
    ------
    OptionError
        For a bad value, an option without ``intraday=True``, or any of them with a method
        that is not a bilevel one (the intraday market reruns the bilevel market).
    """
    given = {k: kwargs.pop(k) for k in list(kwargs) if k in INTRADAY_OPTIONS}
    if given and not bilevel:
        raise OptionError(
            f"option(s) {sorted(given)} do not apply to method {method!r}: the intraday "
            "market reruns the bilevel market (methods none, mlf, wca, exact, …)"
        )
    return IntradayConfig(**given)


def with_dayahead_threshold(inst: Instance, config: IntradayConfig) -> Instance:
    """``inst`` with ``z_DA`` (J2) as its risk quantile when ``p_DA`` is given: the whole
    day-ahead market (S2's verdict, the limits ``F̄ − z σ`` of S3 and S7, the re-check) then
    works to the threshold. Unchanged otherwise."""
    if not config.intraday or config.dayahead_prob is None:
        return inst
    z = config.dayahead_quantile(inst.scenario.risk_quantile)
    return replace(inst, scenario=replace(inst.scenario, risk_quantile=z))
