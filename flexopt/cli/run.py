"""``flexopt validate`` and ``flexopt run``, and what the commands share: the market options
from flags and ``--options FILE.toml``, the output check, the Dask check."""

from __future__ import annotations

import argparse
from argparse import SUPPRESS
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flexopt.cli._args import add_option_flags, add_verbosity
from flexopt.errors import FlexoptError, OptionError, OutputError

__all__ = [
    "add_parser",
    "add_validate_parser",
    "check_dask",
    "check_output",
    "given_options",
    "market_methods",
    "run",
    "validate",
]


def market_methods() -> tuple[str, ...]:
    from flexopt.run.options import market_methods

    return market_methods()


def add_validate_parser(sub: Any) -> None:
    v = sub.add_parser("validate", help="check an instance and print a short description")
    v.add_argument("instance", help="instance directory (holding instance.toml)")
    add_verbosity(v)


def add_parser(sub: Any) -> None:
    r = sub.add_parser("run", help="run the market on an instance", argument_default=SUPPRESS)
    r.add_argument("instance", help="instance directory (holding instance.toml)")
    r.add_argument(
        "--method",
        choices=market_methods(),
        help="how DSOs modify their prosumers' offers (default: none), or 'centralized': "
        "the common TSO–DSO market baseline",
    )
    add_option_flags(r)
    r.add_argument(
        "--out", default=None, help="write CSV tables, summary.json and timings.json here"
    )
    r.add_argument(
        "--force",
        action="store_true",
        default=False,
        help="replace a previous result folder (never anything else)",
    )
    add_verbosity(r)


def given_options(args: argparse.Namespace, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The flat options given: those of ``--options FILE.toml``, overridden by the flags
    (only flags given are in ``args``); ``extra`` keys of the file are passed on unchecked."""
    from flexopt.run.flat import flat_options, read_options_file

    names = flat_options()
    out: dict[str, Any] = {}
    file = getattr(args, "options_file", None)
    if file is not None:
        out.update(read_options_file(file, extra=extra))
    out.update({k: v for k, v in vars(args).items() if k in names})
    return out


def check_output(check: Callable[..., Path], *args: Any, **kwargs: Any) -> Path:
    """An output path checked before any work: refused paths are one-line errors."""
    from flexopt.atomic import OutputRefusedError

    try:
        return check(*args, **kwargs)
    except OutputRefusedError as err:
        raise OutputError(str(err)) from None


def check_dask() -> None:
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise FlexoptError("--scheduler needs the 'dask' extra: pip install 'flexopt[dask]'")


def validate(args: argparse.Namespace) -> int:
    from flexopt.instance import load_instance

    inst = load_instance(args.instance)
    tr = inst.transmission
    grids = [g for d in inst.dsos for g in d.microgrids]
    members = sum(len(g.prosumers) for g in grids)
    n_pros = sum(len(d.prosumers) for d in inst.dsos) + members
    inside = f" ({members} in {len(grids)} microgrids)" if grids else ""
    print(
        f"{inst.name}: valid — {len(tr.buses)} buses, {len(tr.branches)} branches, "
        f"{len(tr.generators)} generators, {inst.hours} hours, {len(inst.dsos)} DSOs, "
        f"{n_pros} prosumers{inside}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    import flexopt.run.api
    from flexopt.atomic import check_output_dir
    from flexopt.instance import load_instance
    from flexopt.instance.loader import instance_root
    from flexopt.report import summary_text
    from flexopt.report.save import RUN_KIND
    from flexopt.run.intraday import IntradayInterrupted
    from flexopt.run.options import MarketOptions

    options = given_options(args, extra=("method",))
    method = getattr(args, "method", None) or options.pop("method", "none")
    options.pop("method", None)
    if method not in market_methods():
        raise OptionError(
            f"{args.options_file}: method: must be one of {market_methods()}, got {method!r}"
        )
    # every option, before any work
    opt = MarketOptions.from_kwargs(method=method, progress=True, **options)
    if opt.scheduler is not None:
        check_dask()
    root = instance_root(args.instance)
    if args.out is not None:
        check_output(check_output_dir, args.out, RUN_KIND, replace=args.force, protect=(root,))
    inst = load_instance(args.instance)
    cut = None
    try:
        res = flexopt.run.api.run(inst, opt)
    except IntradayInterrupted as stop:  # report and save the realizations that finished
        if stop.result is None:
            raise
        res, cut = stop.result, stop
    print(summary_text(res.summary, sum(res.timings.values())))
    if args.out is not None:
        print(f"wrote                {res.save(args.out, replace=args.force)}")
    if cut is not None:
        raise cut.interrupt  # then stop as interrupted (Ctrl-C: 130, SIGTERM: 143)
    return 0
