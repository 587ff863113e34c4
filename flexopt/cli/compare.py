"""``flexopt compare``: methods side by side, options swept, seeds repeated — the command form
of :func:`flexopt.compare` (one implementation: ``flexopt.run.compare``)."""

from __future__ import annotations

import argparse
import re
from argparse import SUPPRESS
from typing import Any

from flexopt.cli._args import add_option_flags, add_verbosity, int_in, option_type
from flexopt.cli.run import check_dask, given_options, market_methods

__all__ = ["add_parser", "compare", "parse_seeds", "parse_set"]

_TRUE = {"true": True, "on": True, "yes": True, "1": True}
_FALSE = {"false": False, "off": False, "no": False, "0": False}


def _methods(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    known = market_methods()
    for m in names:
        if m not in known:
            raise argparse.ArgumentTypeError(f"unknown method {m!r} (methods: {', '.join(known)})")
    if not names:
        raise argparse.ArgumentTypeError("expected methods M1,M2,…")
    return names


def parse_seeds(text: str) -> list[int]:
    """``0-4`` (a range, both ends included), ``0,2,5`` or ``3``."""
    seed = int_in(0, None)
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d{1,19})\s*-\s*(\d{1,19})\s*", part)
        if m:
            lo, hi = seed(m.group(1)), seed(m.group(2))
            if hi < lo or hi - lo >= 10_000:
                raise argparse.ArgumentTypeError(f"expected a range LO-HI of seeds, got {part!r}")
            out.extend(range(lo, hi + 1))
        else:
            out.append(seed(part))
    return list(dict.fromkeys(out))


def parse_set(text: str) -> tuple[str, list[Any]]:
    """``NAME=V1,V2,…`` (a pair as ``LO:HI``, a switch as ``on``/``off``): the option's flat
    name (or its flag's) and its values, each checked like the option's flag."""
    from flexopt.run.flat import flat_options

    name, sep, values = text.partition("=")
    name = name.strip().lstrip("-").replace("-", "_")
    catalogue = flat_options()
    aliases = {"plf": "plf_method", "time_limit": "time_limit_s", "vm_limits": "vm_limits_pu"}
    name = aliases.get(name, name)
    if not sep or name not in catalogue:
        raise argparse.ArgumentTypeError(
            f"expected NAME=V1,V2,… with NAME a market option, got {text!r}"
        )
    opt = catalogue[name]
    out: list[Any] = []
    for piece in values.split(","):
        piece = piece.strip()
        if opt.kind == "bool":
            flag = piece.lower()
            if flag not in _TRUE and flag not in _FALSE:
                raise argparse.ArgumentTypeError(f"{name}: expected on or off, got {piece!r}")
            out.append(_TRUE.get(flag, False))
        else:
            if opt.kind == "pair" and ":" not in piece:
                raise argparse.ArgumentTypeError(f"{name}: expected pairs LO:HI, got {piece!r}")
            if opt.choices is not None and piece not in opt.choices:
                raise argparse.ArgumentTypeError(
                    f"{name}: invalid choice {piece!r} (choose from {', '.join(opt.choices)})"
                )
            try:
                out.append(option_type(name, opt.kind)(piece))
            except argparse.ArgumentTypeError as err:
                raise argparse.ArgumentTypeError(f"{name}: {err}") from None
    return name, out


def add_parser(sub: Any) -> None:
    c = sub.add_parser(
        "compare",
        help="run methods side by side, sweep options and seeds: one table, the figures",
        argument_default=SUPPRESS,
    )
    c.add_argument("instance", help="instance directory (holding instance.toml)")
    c.add_argument(
        "--methods",
        type=_methods,
        required=True,
        metavar="M1,M2,…",
        help=f"methods to compare ({', '.join(market_methods())})",
    )
    c.add_argument(
        "--set",
        dest="vary",
        type=parse_set,
        action="append",
        metavar="NAME=V1,V2,…",
        help="an option to sweep (repeat for more: every combination runs), e.g. "
        "dcp_weight=0,0.5,1 or factor_bounds=0.5:1.5,0.8:1.2",
    )
    c.add_argument(
        "--seeds", type=parse_seeds, metavar="0-4", help="seeds: a range 0-4 or a list 0,2,5"
    )
    c.add_argument(
        "--workers",
        type=option_type("workers", "int"),
        help="run the runs on N processes: this one and N-1 started for them",
    )
    c.add_argument(
        "--scheduler",
        type=option_type("scheduler", "str"),
        help="run the runs on a Dask cluster (tcp://host:port, or 'local')",
    )
    add_option_flags(c, skip=("seed", "workers", "scheduler"))
    c.add_argument("--out", required=True, help="the comparison folder (a rerun resumes it)")
    c.add_argument(
        "--force",
        action="store_true",
        default=False,
        help="replace runs found with other options (finished matching runs are kept)",
    )
    c.add_argument(
        "--run-figures",
        action="store_true",
        default=False,
        help="draw each run's own figures into its folder too",
    )
    add_verbosity(c)


def compare(args: argparse.Namespace) -> int:
    from flexopt.errors import OptionError
    from flexopt.run.compare import compare

    shared = given_options(args)
    file_seed = shared.pop("seed", None)
    seeds = getattr(args, "seeds", None) or ([file_seed] if file_seed is not None else [0])
    workers = shared.pop("workers", None)
    scheduler = shared.pop("scheduler", None)
    if scheduler is not None:
        check_dask()
    vary: dict[str, list[Any]] = {}
    for name, values in getattr(args, "vary", None) or []:
        if name in vary:
            raise OptionError(f"--set {name}: given twice")
        vary[name] = values
    res = compare(
        args.instance,
        args.methods,
        set=vary,
        seeds=seeds,
        out=args.out,
        options=shared,
        workers=workers,
        scheduler=scheduler,
        force=args.force,
        run_figures=args.run_figures,
    )
    figures = ", ".join(p.name for p in res.figures)
    print(
        f"wrote {res.out}: {len(res.runs)} runs ({len(res.ran)} ran, {len(res.skipped)} "
        f"done before), runs.csv, dso.csv, {figures}"
    )
    return 0
