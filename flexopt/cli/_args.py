"""Argument parsing shared by the commands: the one-line parser, value types, and the market
option flags — generated from the library's catalogue of flat options
(:func:`flexopt.run.flat.flat_options`), so that every option of
:func:`flexopt.run_market` is a flag and each value is checked by the class that owns it."""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = [
    "EXIT_BAD_INPUT",
    "OPTION_HELP",
    "Parser",
    "add_option_flags",
    "add_verbosity",
    "flag_of",
    "fraction",
    "int_in",
    "number",
    "option_type",
    "seconds",
]

EXIT_BAD_INPUT = 2

#: Flags whose name is not the option's name with dashes.
_FLAG_NAMES = {
    "plf_method": "--plf",
    "time_limit_s": "--time-limit",
    "stage_time_limit_s": "--stage-time-limit",
    "vm_limits_pu": "--vm-limits",
    "loss_price_eur_per_mwh": "--loss-price",
    "overload_penalty_eur_per_mwh": "--overload-penalty",
}
#: What each option does (the layer and the default are added to the help).
OPTION_HELP = {
    "seed": "seed of every random draw",
    "plf_method": "probabilistic load flow method",
    "samples": "Monte Carlo samples",
    "loss_allocation": "feeder loss allocation method",
    "workers": "run the DSO-level stages on N processes: this one and N-1 started for them, "
    "each taking tasks once it has loaded (~0.6 s; until then this one runs them)",
    "threads": "run the DSO-level stages on N threads of this process (no start-up, no "
    "copies; gains where the work is compiled: the wca search)",
    "scheduler": "run the DSO-level stages on a Dask cluster (tcp://host:port, or 'local')",
    "stage_time_limit_s": "seconds per solver call of the TSO stages and the centralized market",
    "loss_coverage": "share of the allocated feeder losses the screened prosumers carry "
    "(overrides the instance's [market] loss_coverage)",
    "loss_price_eur_per_mwh": "value of feeder losses, €/MWh (overrides the instance's "
    "[market] loss_price_eur_per_mwh)",
    "blocks": "blocks per DSO bid and hour",
    "participation": "who offers in a DSO's market — every prosumer (the loss screening "
    "picks whose coefficients change) or the screened ones only",
    "tso_pricing": "what the TSO pays a DSO — the marginal value of relief at its interface "
    "or its own last accepted block's price",
    "factor_bounds": "box LO,HI of every modification factor (0 < LO ≤ 1 ≤ HI)",
    "dcp_mode": "DSO problem decisions: ab — α and β; b — β only",
    "dcp_weight": "w of the DSO objective: w·losses + (1 − w)·price, in [0, 1]",
    "dcp_price": "what the DSO pays its prosumers in the DSO problem",
    "dcp_budget": "the DSO budget (C7) at every block boundary of the bid",
    "dcp_efficiency": "no dearer delivery than the unmodified offers' (C8)",
    "intraday": "after the day-ahead market, an intraday market on each of --scenarios "
    "realizations of the load (models/intraday.md)",
    "scenarios": "realizations of the load for the intraday market",
    "dayahead_prob": "buy relief day ahead for line-hours whose overload probability exceeds "
    "P (default: the instance's risk quantile, the mean-flow rule)",
    "intraday_min_prob": "line-hours below the day-ahead threshold but above P wait for "
    "the intraday market",
    "overload_penalty_eur_per_mwh": "€/MWh of overload left after the markets in the expected cost",
    "competition": "price_taking — each DSO bids its S6 bid; nash — rival DSOs mark their bids "
    "up to a Nash equilibrium of best responses (models/competition.md)",
    "competition_cap": "with --competition nash, mitigation: the highest markup, €/MWh, a "
    "pivotal DSO may add",
    "competition_markups": "with --competition nash: the markup grid STEP,MAX in €/MWh",
    "competition_rounds": "with --competition nash: the most rounds of best responses",
    "wca_pop": "population of WCA/MOWCA",
    "wca_iter": "iterations per DSO at most",
    "wca_stall": "stop a DSO's search after N iterations without progress (0: run --wca-iter)",
    "wca_stall_tol": "relative improvement that counts as progress",
    "wca_start": "first raindrops: x0 (unmodified offers), or x0 and the mlf point",
    "pareto": "solve the DSO problem with MOWCA and take the fuzzy compromise",
    "solver": "highs — MILP (β only); scip — MINLP (α and β), global",
    "time_limit_s": "seconds per DSO",
    "mip_gap": "relative MIP gap in [0, 1)",
    "segments": "tangent points of the loss approximation",
    "central_model": "feeders as LinDistFlow QP (HiGHS) or AC NLP (ripopt)",
    "vm_limits_pu": "feeder voltage band LO,HI in p.u.",
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit status 2."""

    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage + error)
        print(f"flexopt: error: {message} (see 'flexopt --help')", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def int_in(lo: int, hi: int | None) -> Callable[[str], int]:
    """An argparse type: a decimal integer in ``lo..hi`` (no upper bound for ``None``)."""
    want = f"an integer in {lo}..{hi}" if hi is not None else f"an integer ≥ {lo}"

    def parse(text: str) -> int:
        if not re.fullmatch(r"\s*[+-]?\d{1,19}\s*", text):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        value = int(text)
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return value

    return parse


def _integer(text: str) -> int:
    if not re.fullmatch(r"\s*[+-]?\d{1,19}\s*", text):
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(text)


def number(text: str) -> float:
    """An argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def seconds(text: str) -> float:
    """An argparse type: seconds in ``(0, MAX_TIME_LIMIT_S]``."""
    from flexopt.run.options import MAX_TIME_LIMIT_S

    value = number(text)
    if not 0 < value <= MAX_TIME_LIMIT_S:
        raise argparse.ArgumentTypeError(
            f"expected seconds in (0, {MAX_TIME_LIMIT_S:g}], got {text!r}"
        )
    return value


def fraction(text: str) -> float:
    """An argparse type: a number in ``[0, 1)``."""
    value = number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _pair(text: str) -> tuple[float, float]:
    """Two numbers ``LO,HI`` (or ``LO:HI``, the form ``--set`` takes)."""
    parts = re.split(r"[,:]", text)
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers LO,HI, got {text!r}")
    lo, hi = (number(p) for p in parts)
    return (lo, hi)


def _bounded_types() -> dict[str, Callable[[str], Any]]:
    """The types of the options with a bound known here (their errors say ``expected …``)."""
    from flexopt.methods.exact import MAX_SEGMENTS
    from flexopt.methods.wca import MAX_ITER, MAX_POP
    from flexopt.run.intraday_config import MAX_SCENARIOS
    from flexopt.run.options import MAX_BLOCKS, MAX_SAMPLES, MAX_WORKERS

    return {
        "seed": int_in(0, None),
        "samples": int_in(1, MAX_SAMPLES),
        "blocks": int_in(1, MAX_BLOCKS),
        "workers": int_in(1, MAX_WORKERS),
        "threads": int_in(1, MAX_WORKERS),
        "scenarios": int_in(1, MAX_SCENARIOS),
        "wca_iter": int_in(1, MAX_ITER),
        "wca_pop": int_in(8, MAX_POP),
        "wca_stall": int_in(0, MAX_ITER),
        "segments": int_in(2, MAX_SEGMENTS),
        "time_limit_s": seconds,
        "stage_time_limit_s": seconds,
        "mip_gap": fraction,
    }


def flag_of(name: str) -> str:
    """The flag of a flat option (``dcp_weight`` → ``--dcp-weight``)."""
    return _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def option_type(name: str, kind: str) -> Callable[[str], Any]:
    """The text → value parser of a flat option: its bound or kind, then the library's own
    check of the value (:func:`flexopt.run.flat.check_option`)."""
    kinds: dict[str, Callable[[str], Any]] = {"int": _integer, "float": number, "pair": _pair}
    base = _bounded_types().get(name) or kinds.get(kind, str)

    def parse(text: str) -> Any:
        from flexopt.errors import OptionError
        from flexopt.run.flat import check_option

        value = base(text)
        try:
            return check_option(name, value)
        except OptionError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def _layer_prefix(layer: str, owners: tuple[str, ...]) -> str:
    if layer in ("bilevel", "dcp"):
        return "bilevel: "
    if layer == "intraday":
        return "bilevel, intraday: "
    if layer == "competition":
        return "bilevel: "
    if layer == "config":
        return f"{', '.join(owners)}: "
    return ""


def add_option_flags(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """A flag for every flat market option (their destinations are the option names; with
    ``argument_default=SUPPRESS`` only the given ones reach the namespace)."""
    from flexopt.run.flat import flat_options

    for name, opt in flat_options().items():
        if name in skip:
            continue
        text = OPTION_HELP.get(name, name.replace("_", " "))
        default = opt.default
        if isinstance(default, tuple):
            default = ",".join(f"{v:g}" for v in default)
        elif isinstance(default, bool):
            default = "on" if default else "off"
        shown = "the instance's" if opt.layer == "market" else default
        help_ = f"{_layer_prefix(opt.layer, opt.owners)}{text} (default {shown})"
        flag = flag_of(name)
        if opt.kind == "bool":
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=help_)
        elif opt.choices is not None:
            parser.add_argument(flag, dest=name, choices=opt.choices, help=help_)
        else:
            metavar = "LO,HI" if opt.kind == "pair" else flag[2:].upper().replace("-", "_")
            metavar = "STEP,MAX" if name == "competition_markups" else metavar
            parser.add_argument(
                flag, dest=name, type=option_type(name, opt.kind), metavar=metavar, help=help_
            )
    parser.add_argument(
        "--options",
        dest="options_file",
        metavar="FILE.toml",
        help="options from a TOML file of name = value lines (dcp_weight = 0.25, "
        "factor_bounds = [0.8, 1.2]); flags override it",
    )


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-q`` after the command too (``flexopt run … -v``); unset unless given, so
    that the top-level flags stand."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more log: -v info, -vv debug",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="errors only"
    )
