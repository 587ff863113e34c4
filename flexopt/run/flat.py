"""Every flat option of a market run in one catalogue — its name, default, the methods it
applies to and its allowed values — and the check of one value on its own.

The CLI generates its run flags from :func:`flat_options` and ``--options FILE.toml`` is read
by :func:`read_options_file`, so that the command line, option files and
:func:`flexopt.run_market` accept the same names and refuse the same values with the
library's own checks.
"""

from __future__ import annotations

import tomllib
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from flexopt.dso.context import PARTICIPATION
from flexopt.dso.dcp import MODES, PRICE_RULES, DCPOptions
from flexopt.errors import OptionError
from flexopt.grid import LOSS_ALLOCATION_METHODS
from flexopt.market.equilibrium import (
    COMPETITION_MODES,
    COMPETITION_OPTIONS,
    check_competition_option,
)
from flexopt.methods import method_names, methods
from flexopt.plf import PLF_METHODS
from flexopt.run.intraday_config import INTRADAY_OPTIONS, check_intraday_option
from flexopt.run.options import (
    BILEVEL_OPTIONS,
    CENTRAL_MODELS,
    CENTRALIZED,
    DCP_OPTIONS,
    MARKET_OVERRIDES,
    RUN_OPTIONS,
    TSO_PRICING,
    CentralizedConfig,
    MarketOptions,
)

__all__ = ["FlatOption", "check_option", "flat_options", "read_options_file"]

#: Options whose default (``None``) does not tell their type.
_KIND = {
    "workers": "int",
    "threads": "int",
    "scheduler": "str",
    "loss_coverage": "float",
    "loss_price_eur_per_mwh": "float",
    "dayahead_prob": "float",
    "competition_cap": "float",
}
#: ``progress`` is how a run reports, not what it computes: no flag, no file key.
_NOT_FLAT = ("progress",)


def _choices() -> dict[str, tuple[str, ...]]:
    from flexopt.methods.exact import EXACT_SOLVERS
    from flexopt.methods.wca import STARTS

    return {
        "plf_method": tuple(PLF_METHODS),
        "loss_allocation": tuple(LOSS_ALLOCATION_METHODS),
        "participation": tuple(PARTICIPATION),
        "tso_pricing": TSO_PRICING,
        "dcp_mode": MODES,
        "dcp_price": PRICE_RULES,
        "solver": tuple(EXACT_SOLVERS),
        "central_model": CENTRAL_MODELS,
        "wca_start": STARTS,
        "competition": COMPETITION_MODES,
    }


@dataclass(frozen=True)
class FlatOption:
    """One flat option.

    Attributes
    ----------
    name : str
        The keyword of :func:`flexopt.run_market` (``dcp_weight``, ``wca_iter``, …).
    default : object
        Its default (``None``: the instance's value, or not used).
    owners : tuple of str
        The methods it applies to; empty for options of every method.
    layer : str
        ``run``, ``market`` (the instance's market settings), ``bilevel``, ``dcp``,
        ``intraday`` (the intraday market, ``models/intraday.md``), ``competition`` (rival
        DSOs, ``models/competition.md``) or ``config`` (a method's
        own option).
    choices : tuple of str, optional
        The allowed values of a text option.
    """

    name: str
    default: Any
    owners: tuple[str, ...]
    layer: str
    choices: tuple[str, ...] | None = None

    @property
    def kind(self) -> str:
        """``bool``, ``int``, ``float``, ``pair`` (two floats) or ``str``."""
        if self.name in _KIND:
            return _KIND[self.name]
        d = self.default
        if isinstance(d, bool):
            return "bool"
        if isinstance(d, int):
            return "int"
        if isinstance(d, float):
            return "float"
        if isinstance(d, tuple) and len(d) == 2:
            return "pair"
        return "str"


def flat_options() -> dict[str, FlatOption]:
    """Every flat option of every registered method and of the centralized market, in the
    order run options, market settings, bilevel layer, DSO coefficient problem, intraday
    market, rival DSOs, method configs (methods in registration order, then ``centralized``)."""
    choices = _choices()
    base = MarketOptions()
    bilevel = method_names()
    out: dict[str, FlatOption] = {}

    def add(name: str, default: Any, owners: tuple[str, ...], layer: str) -> None:
        if name in out:  # two methods sharing an option name: it applies to both
            old = out[name]
            out[name] = FlatOption(
                name, old.default, (*old.owners, *owners), old.layer, old.choices
            )
        else:
            out[name] = FlatOption(name, default, owners, layer, choices.get(name))

    for name in RUN_OPTIONS:
        if name not in _NOT_FLAT:
            add(name, getattr(base, name), (), "run")
    for name in MARKET_OVERRIDES:
        add(name, None, (), "market")
    for name in BILEVEL_OPTIONS:
        add(name, getattr(base, name), bilevel, "bilevel")
    for name, field in DCP_OPTIONS.items():
        add(name, getattr(base.dcp, field), bilevel, "dcp")
    for name in INTRADAY_OPTIONS:
        add(name, getattr(base.intraday_config, name), bilevel, "intraday")
    for name, field in COMPETITION_OPTIONS.items():
        add(name, getattr(base.competition_config, field), bilevel, "competition")
    configs: list[tuple[str, type]] = [(m.name, m.config) for m in methods() if m.config]
    for owner, cls in [*configs, (CENTRALIZED, CentralizedConfig)]:
        for f in fields(cls):
            default = f.default if f.default is not MISSING else None
            add(f.name, default, (owner,), "config")
    return out


def check_option(name: str, value: Any) -> Any:
    """``value`` checked as option ``name`` on its own (by the class that owns it), returned
    normalised (a pair as a tuple).

    Raises
    ------
    OptionError
        For an unknown name or a value that class refuses, naming the option.
    """
    catalogue = flat_options()
    if name not in catalogue:
        raise OptionError(f"unknown option {name!r}")
    opt = catalogue[name]
    if opt.kind == "pair" and isinstance(value, list):
        value = tuple(value)
    try:
        if opt.layer == "dcp":
            DCPOptions(**{DCP_OPTIONS[name]: value})
        elif opt.layer == "intraday":
            check_intraday_option(name, value)
        elif opt.layer == "competition":
            check_competition_option(name, value)
        elif opt.layer == "config":
            owner = opt.owners[0]
            cls = CentralizedConfig if owner == CENTRALIZED else _config_of(owner)
            cls(**{name: value})
        else:
            MarketOptions(**{name: value})
    except OptionError as err:
        raise OptionError(str(err)) from None
    except (ValueError, TypeError) as err:
        raise OptionError(f"{name}: {err}") from None
    if opt.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # TOML and the CLI write 1 for 1.0
    return value


def _config_of(method: str) -> type:
    for m in methods():
        if m.name == method and m.config is not None:
            return m.config
    raise OptionError(f"method {method!r} has no options")  # pragma: no cover - by catalogue


def read_options_file(path: str | Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Flat options from a TOML file of ``name = value`` lines (``dcp_weight = 0.25``,
    ``factor_bounds = [0.8, 1.2]``), each checked on its own.

    Parameters
    ----------
    path : str or pathlib.Path
    extra : tuple of str
        Further keys accepted unchecked (``method`` for ``flexopt run``).

    Raises
    ------
    OptionError
        One line naming the file and the key: an unreadable file, invalid TOML, an unknown
        key or a bad value.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptionError(f"{path}: no such options file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise OptionError(f"{path}: cannot read the options file ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise OptionError(f"{path}: not valid TOML: {err}") from None
    catalogue = flat_options()
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in extra:
            out[key] = value
            continue
        if key not in catalogue:
            known = ", ".join(sorted(catalogue))
            raise OptionError(f"{path}: unknown option {key!r} (known: {known})")
        if isinstance(value, dict):
            raise OptionError(f"{path}: {key}: expected a value, got a table")
        try:
            out[key] = check_option(key, value)
        except OptionError as err:
            raise OptionError(f"{path}: {key}: {err}") from None
    return out
