"""Options of a market run, in layers: the options every run has, the DSO coefficient problem
and block bids of the bilevel methods, and one config per method.

All of them are also accepted flat — as keyword arguments of :func:`flexopt.run_market` and
as CLI flags — and :meth:`MarketOptions.from_kwargs` sorts them into their layer. An option
that does not apply to the chosen method is an :class:`~flexopt.errors.OptionError` naming the
method (``pareto`` with ``mlf``, ``blocks`` with ``centralized``, ``dcp_mode`` with ``exact``).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from flexopt.dso.context import PARTICIPATION, Participation
from flexopt.dso.dcp import DCPOptions
from flexopt.errors import OptionError
from flexopt.grid import LOSS_ALLOCATION_METHODS
from flexopt.grid.loss_allocation import LossAllocationMethod
from flexopt.market.equilibrium import (
    COMPETITION_OPTIONS,
    CompetitionOptions,
    competition_from_kwargs,
)
from flexopt.market.tso import Pricing
from flexopt.methods import get_method, method_names, methods
from flexopt.plf import PLF_METHODS
from flexopt.plf.methods import PLFMethod
from flexopt.run.intraday_config import INTRADAY_OPTIONS, IntradayConfig, intraday_from_kwargs
from flexopt.solve import DEFAULT_TIME_LIMIT_S

__all__ = [
    "BILEVEL_OPTIONS",
    "CENTRALIZED",
    "CENTRAL_MODELS",
    "DCP_OPTIONS",
    "MARKET_OVERRIDES",
    "MAX_BLOCKS",
    "MAX_LOSS_PRICE",
    "MAX_SAMPLES",
    "MAX_TIME_LIMIT_S",
    "MAX_WORKERS",
    "RUN_OPTIONS",
    "TSO_PRICING",
    "CentralizedConfig",
    "MarketOptions",
    "market_methods",
]

#: The common TSO–DSO market: a framework of its own, not a coefficient method.
CENTRALIZED = "centralized"
CENTRAL_MODELS = ("qp", "ac")
#: Flat option name → field of :class:`~flexopt.dso.dcp.DCPOptions` (bilevel methods only).
DCP_OPTIONS = {
    "factor_bounds": "bounds",
    "dcp_mode": "mode",
    "dcp_weight": "weight",
    "dcp_price": "price",
    "dcp_budget": "budget",
    "dcp_efficiency": "efficiency",
}
RUN_OPTIONS = (
    "seed",
    "plf_method",
    "samples",
    "loss_allocation",
    "workers",
    "threads",
    "scheduler",
    "progress",
    "stage_time_limit_s",
)
#: The instance's market settings (``[market]`` of ``instance.toml``), overridable per run;
#: ``None`` keeps the instance's value.
MARKET_OVERRIDES = ("loss_coverage", "loss_price_eur_per_mwh")
MAX_LOSS_PRICE = 1e5
#: Bounds on the run's length: Monte Carlo samples per PLF (memory stays bounded by the
#: chunks, time does not), blocks per bid and hour, pool workers, seconds per solver call.
MAX_SAMPLES = 1_000_000
MAX_BLOCKS = 1_000
MAX_WORKERS = 256
MAX_TIME_LIMIT_S = 1e6
#: ``local``, or a Dask scheduler address: ``[scheme://]host:port``.
_SCHEDULER = re.compile(
    r"((tcp|tls|ws|wss|ucx)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(\d{1,5})"
)
#: The bilevel layer: options of every coefficient method, none of the centralized market.
BILEVEL_OPTIONS = ("blocks", "participation", "tso_pricing")
TSO_PRICING: tuple[Pricing, ...] = ("interface", "last_block")


@dataclass(frozen=True)
class CentralizedConfig:
    """Options of the centralized market (``models/centralized.md``).

    Attributes
    ----------
    central_model : {"qp", "ac"}
        Feeders as LinDistFlow (a convex QP, HiGHS) or as the exact branch flow equations (an
        NLP solved locally by ripopt from the QP's dispatch; small cases). SCIP certifies the
        AC optimum in the tests but returns no duals, hence no interface prices, so it is not
        offered here.
    vm_limits_pu : (float, float)
        Feeder voltage band (Z8).
    """

    central_model: str = "qp"
    vm_limits_pu: tuple[float, float] = (0.95, 1.05)

    def __post_init__(self) -> None:
        if self.central_model not in CENTRAL_MODELS:
            raise ValueError(
                f"central_model must be one of {CENTRAL_MODELS}, got {self.central_model!r}"
            )
        lo_hi = tuple(self.vm_limits_pu)
        if not (len(lo_hi) == 2 and 0.5 <= lo_hi[0] < 1 < lo_hi[1] <= 1.5):
            raise ValueError(
                f"vm_limits_pu must be (lo, hi) with 0.5 ≤ lo < 1 < hi ≤ 1.5, got "
                f"{self.vm_limits_pu!r}"
            )


def market_methods() -> tuple[str, ...]:
    """What ``method`` accepts: every registered coefficient method, then ``centralized``."""
    return (*method_names(), CENTRALIZED)


def _config_class(method: str) -> type | None:
    return CentralizedConfig if method == CENTRALIZED else get_method(method).config


def _owners(name: str) -> list[str]:
    """The methods that have an option of this flat name."""
    owners = [m.name for m in methods() if name in m.option_names]
    if name in {f.name for f in fields(CentralizedConfig)}:
        owners.append(CENTRALIZED)
    return owners


@dataclass(frozen=True)
class MarketOptions:
    """Options of :func:`flexopt.run_market`; unknown fields are rejected.

    Attributes
    ----------
    method : str
        A registered coefficient method (``none``, ``mlf``, ``wca``, ``exact``, …: how the
        DSOs modify their prosumers' offers, S5) or ``"centralized"``: the common TSO–DSO
        market baseline (``models/centralized.md``) in place of S3 and S5–S7.
    seed : int
        Seed of every random draw (``≥ 0``): Monte Carlo PLF; per DSO ``(seed, k)`` for the
        coefficient methods.
    plf_method : {"analytic", "monte_carlo", "pem"}
    samples : int
        Monte Carlo samples.
    loss_allocation : {"branch_current", "marginal", "pro_rata"}
    blocks : int
        Blocks per DSO bid and hour (S6). Bilevel methods only.
    participation : {"all", "screened"}
        Who offers in a DSO's local market: every prosumer (the loss screening chooses whose
        coefficients are modified), or only the screened ones (the literal reading, kept for
        comparison). Bilevel methods only.
    tso_pricing : {"interface", "last_block"}
        What the TSO pays a DSO-hour (S7, ``models/tso_market.md`` K5): the marginal value of
        relief at its interface (supporting prices), or the price of the DSO's own last
        accepted block (the first wave's rule, kept for comparison). Bilevel methods only.
    dcp : DCPOptions
        The DSO coefficient problem every bilevel method's factors are scored on (and the
        optimizing methods solve): ``factor_bounds``, ``dcp_mode``, ``dcp_weight``,
        ``dcp_price``, ``dcp_budget``, ``dcp_efficiency`` when given flat. Bilevel methods only; ``exact`` takes
        its mode from its solver.
    config : object, optional
        The method's own options — an instance of its registered config class
        (``WCAConfig``, ``ExactConfig``, :class:`CentralizedConfig`); ``None`` takes the
        method's defaults.
    workers : int, optional
        Run the DSO-level stages on this many processes (this one and ``workers − 1``).
    threads : int, optional
        Run them on this many threads of this process instead (not with ``workers``).
    scheduler : str, optional
        Run them on a Dask cluster (``tcp://host:port``, or ``"local"``; extra ``dask``).
    progress : bool
        Stage lines on stderr.
    stage_time_limit_s : float
        Seconds per solver call of the TSO stages and the centralized market (S1, S3, S7, Z);
        a stage that hits it stops with a :class:`~flexopt.errors.SolverLimitError`.
    loss_coverage : float, optional
        Overrides the instance's screening coverage (``[market] loss_coverage``, L5): the
        share of the allocated feeder losses the screened prosumers carry, in ``(0, 1]``.
    loss_price_eur_per_mwh : float, optional
        Overrides the instance's loss price (``[market] loss_price_eur_per_mwh``).
    intraday_config : IntradayConfig
        The intraday market (``models/intraday.md``; ``intraday``, ``scenarios``,
        ``dayahead_prob``, … when given flat). Bilevel methods only.
    competition_config : CompetitionOptions
        Price-taking or rival DSOs (``models/competition.md``; ``competition``,
        ``competition_cap``, … when given flat). Bilevel methods only.
    """

    method: str = "none"
    seed: int = 0
    plf_method: PLFMethod = "analytic"
    samples: int = 10_000
    loss_allocation: LossAllocationMethod = "branch_current"
    blocks: int = 10
    participation: Participation = "all"
    tso_pricing: Pricing = "interface"
    dcp: DCPOptions = field(default_factory=DCPOptions)
    config: Any = None
    workers: int | None = None
    threads: int | None = None
    scheduler: str | None = None
    progress: bool = False
    stage_time_limit_s: float = DEFAULT_TIME_LIMIT_S
    loss_coverage: float | None = None
    loss_price_eur_per_mwh: float | None = None
    intraday_config: IntradayConfig = field(default_factory=IntradayConfig)
    competition_config: CompetitionOptions = field(default_factory=CompetitionOptions)

    def __post_init__(self) -> None:
        if self.method not in market_methods():
            raise OptionError(
                f"MarketOptions.method must be one of {market_methods()}, got {self.method!r}"
            )
        checks = [
            ("plf_method", self.plf_method in PLF_METHODS, f"one of {PLF_METHODS}"),
            (
                "loss_allocation",
                self.loss_allocation in LOSS_ALLOCATION_METHODS,
                f"one of {LOSS_ALLOCATION_METHODS}",
            ),
            ("seed", _is_int(self.seed) and self.seed >= 0, "a non-negative integer"),
            (
                "samples",
                _is_int(self.samples) and 0 < self.samples <= MAX_SAMPLES,
                f"an integer in 1..{MAX_SAMPLES:_}",
            ),
            (
                "blocks",
                _is_int(self.blocks) and 0 < self.blocks <= MAX_BLOCKS,
                f"an integer in 1..{MAX_BLOCKS}",
            ),
            ("participation", self.participation in PARTICIPATION, f"one of {PARTICIPATION}"),
            ("tso_pricing", self.tso_pricing in TSO_PRICING, f"one of {TSO_PRICING}"),
            (
                "workers",
                self.workers is None or (_is_int(self.workers) and 0 < self.workers <= MAX_WORKERS),
                f"an integer in 1..{MAX_WORKERS} or None",
            ),
            (
                "threads",
                self.threads is None
                or (
                    (_is_int(self.threads) and 0 < self.threads <= MAX_WORKERS)
                    and not (self.workers or 0) > 1
                ),
                f"an integer in 1..{MAX_WORKERS} or None, and not with workers > 1",
            ),
            (
                "scheduler",
                self.scheduler is None or scheduler_ok(self.scheduler),
                "'local', an address [tcp://]host:port, or None",
            ),
            (
                "stage_time_limit_s",
                seconds_ok(self.stage_time_limit_s),
                f"a number of seconds in (0, {MAX_TIME_LIMIT_S:g}]",
            ),
            ("dcp", isinstance(self.dcp, DCPOptions), "a DCPOptions"),
            (
                "intraday_config",
                isinstance(self.intraday_config, IntradayConfig)
                and (self.bilevel or not self.intraday_config.intraday),
                "an IntradayConfig, without the intraday market for 'centralized'",
            ),
            (
                "competition_config",
                isinstance(self.competition_config, CompetitionOptions)
                and (self.bilevel or not self.competition_config.strategic),
                "a CompetitionOptions, price taking for 'centralized'",
            ),
            (
                "loss_coverage",
                self.loss_coverage is None or _number_in(self.loss_coverage, 0.0, 1.0, False),
                "a share in (0, 1] or None",
            ),
            (
                "loss_price_eur_per_mwh",
                self.loss_price_eur_per_mwh is None
                or _number_in(self.loss_price_eur_per_mwh, 0.0, MAX_LOSS_PRICE, True),
                f"a price in [0, {MAX_LOSS_PRICE:g}] or None",
            ),
        ]
        for name, ok, want in checks:
            if not ok:
                raise OptionError(
                    f"MarketOptions.{name} must be {want}, got {getattr(self, name)!r}"
                )
        cls = _config_class(self.method)
        if self.config is None and cls is not None:
            object.__setattr__(self, "config", cls())
        elif cls is None and self.config is not None:
            raise OptionError(f"method {self.method!r} has no options, got {self.config!r}")
        elif cls is not None and not isinstance(self.config, cls):
            raise OptionError(
                f"the options of method {self.method!r} are a {cls.__name__}, "
                f"got {type(self.config).__name__}"
            )
        if self.method == CENTRALIZED:
            default = MarketOptions()
            moved = [
                n for n in (*BILEVEL_OPTIONS, "dcp") if getattr(self, n) != getattr(default, n)
            ]
            if moved:
                raise OptionError(
                    f"option(s) {moved} do not apply to method 'centralized' "
                    f"(it has no bids and no DSO coefficient problem)"
                )
        if self.method == "exact" and self.dcp.mode != DCPOptions().mode:
            raise OptionError(
                "option 'dcp_mode' does not apply to method 'exact': its mode follows "
                "'solver' (highs: the mode-b MILP, scip: the mode-ab MINLP)"
            )

    @property
    def bilevel(self) -> bool:
        return self.method != CENTRALIZED

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> MarketOptions:
        """Options from flat keyword arguments (the names of ``run_market`` and the CLI).

        Raises
        ------
        TypeError
            For a name that is no option of any method.
        OptionError
            For an invalid value, or an option of another method than ``method``.
        """
        method = kwargs.pop("method", "none")
        if method not in market_methods():
            raise OptionError(
                f"MarketOptions.method must be one of {market_methods()}, got {method!r}"
            )
        own = _config_class(method)
        own_names = {f.name for f in fields(own)} if own is not None else set()
        common = {
            k: kwargs.pop(k)
            for k in list(kwargs)
            if k in (*RUN_OPTIONS, *BILEVEL_OPTIONS, *MARKET_OVERRIDES)
        }
        dcp = {DCP_OPTIONS[k]: kwargs.pop(k) for k in list(kwargs) if k in DCP_OPTIONS}
        config = {k: kwargs.pop(k) for k in list(kwargs) if k in own_names}
        intraday = intraday_from_kwargs(kwargs, method, method != CENTRALIZED)
        competition = competition_from_kwargs(kwargs, method, method != CENTRALIZED)
        foreign = {k: _owners(k) for k in kwargs if _owners(k)}
        if foreign:
            name, owners = next(iter(foreign.items()))
            raise OptionError(
                f"option {name!r} does not apply to method {method!r} "
                f"(it is an option of {', '.join(owners)})"
            )
        if kwargs:
            known = sorted(
                {
                    *RUN_OPTIONS,
                    *BILEVEL_OPTIONS,
                    *MARKET_OVERRIDES,
                    *DCP_OPTIONS,
                    *INTRADAY_OPTIONS,
                    *COMPETITION_OPTIONS,
                    *(n for m in methods() for n in m.option_names),
                    *(f.name for f in fields(CentralizedConfig)),
                }
            )
            raise TypeError(f"unknown market option(s) {sorted(kwargs)}; known: {known}")
        if method == CENTRALIZED and (dcp or set(BILEVEL_OPTIONS) & set(common)):
            names = [
                *(k for k in BILEVEL_OPTIONS if k in common),
                *(k for k, v in DCP_OPTIONS.items() if v in dcp),
            ]
            raise OptionError(
                f"option(s) {names} do not apply to method 'centralized' "
                f"(it has no bids and no DSO coefficient problem)"
            )
        try:
            dcp_options = DCPOptions(**dcp)
            own_config = own(**config) if own is not None else None
        except ValueError as err:
            raise OptionError(f"method {method!r}: {err}") from None
        return cls(
            method=method,
            dcp=dcp_options,
            config=own_config,
            intraday_config=intraday,
            competition_config=competition,
            **common,
        )

    def flat(self) -> dict[str, Any]:
        """The options that shape the result, flat (executor and progress left out)."""
        out: dict[str, Any] = {
            "method": self.method,
            "seed": self.seed,
            "plf_method": self.plf_method,
            "samples": self.samples,
            "loss_allocation": self.loss_allocation,
        }
        if self.bilevel:
            out.update({k: getattr(self, k) for k in BILEVEL_OPTIONS})
            out.update({k: getattr(self.dcp, v) for k, v in DCP_OPTIONS.items()})
            if self.method == "exact":  # its mode follows its solver
                del out["dcp_mode"]
            out.update(self.intraday_config.flat())
            out.update(self.competition_config.flat())
        if self.config is not None:
            out.update(asdict(self.config))
        out.update({k: v for k in MARKET_OVERRIDES if (v := getattr(self, k)) is not None})
        return out


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _number_in(x: object, lo: float, hi: float, closed_lo: bool) -> bool:
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` unless ``closed_lo``)."""
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x):
        return False
    return (lo <= x if closed_lo else lo < x) and x <= hi


def seconds_ok(x: object) -> bool:
    """A time limit: a finite number of seconds in ``(0, MAX_TIME_LIMIT_S]``."""
    return (
        isinstance(x, int | float)
        and not isinstance(x, bool)
        and math.isfinite(x)
        and 0 < x <= MAX_TIME_LIMIT_S
    )


def scheduler_ok(address: object) -> bool:
    """``local`` or a Dask scheduler address ``[scheme://]host:port`` (checked, not dialled)."""
    if address == "local":
        return True
    m = _SCHEDULER.fullmatch(address) if isinstance(address, str) else None
    return m is not None and 0 < int(m.group(4)) <= 65535
