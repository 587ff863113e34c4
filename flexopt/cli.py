"""The ``flexopt`` command.

    flexopt validate INSTANCE
    flexopt export INSTANCE --dso ID --format mps|lp|nl --out FILE [--mode b|ab]
    flexopt generate --transmission CASE|FILE --dsos N --feeder FEEDER[,FEEDER…]
                     --prosumers M --seed S --out DIR
    flexopt run INSTANCE [--method METHOD] [--plf analytic|monte_carlo|pem] [--samples N]
                         [--seed N] [--out DIR] [--workers N | --scheduler ADDR] [method options]

``--method`` takes every registered coefficient method (``flexopt.methods``: none, mlf, wca,
exact, …) and ``centralized``. Options are passed on only when given, so an option that does
not apply to the chosen method is refused with one line naming the method. Bad input prints
one line naming the file and field and exits with status 2.

Every option and the output path are checked before any work starts. ``--out`` writes a new
folder (or file), or replaces a previous flexopt output of the same kind with ``--force``;
it never replaces anything else, and never writes into the instance directory. ``SIGTERM``
is handled like Ctrl-C: the run stops, nothing half written is left (status 143; 130 for
Ctrl-C).
"""

from __future__ import annotations

import argparse
import math
import re
import signal
import sys
from argparse import SUPPRESS
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from flexopt.errors import FlexoptError, OutputError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage + error)
        print(f"flexopt: error: {message} (see 'flexopt --help')", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    from flexopt.generate import FEEDER_HELP, MAX_PROSUMERS, TRANSMISSION_HELP
    from flexopt.methods.exact import MAX_SEGMENTS
    from flexopt.methods.wca import MAX_ITER
    from flexopt.run.options import MAX_BLOCKS, MAX_SAMPLES, MAX_WORKERS, MarketOptions

    p = _Parser(prog="flexopt", description="Bilevel TSO–DSO flexibility market toolkit.")
    p.add_argument("--version", action="version", version=f"flexopt {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    v = sub.add_parser("validate", help="check an instance and print a short description")
    v.add_argument("instance", help="instance directory (holding instance.toml)")

    g = sub.add_parser(
        "generate", help="write a synthetic instance with congestion by construction"
    )
    g.add_argument("--transmission", required=True, metavar="CASE|FILE", help=TRANSMISSION_HELP)
    g.add_argument("--dsos", type=_int_in(1, 10_000), required=True, help="number of DSOs")
    g.add_argument("--feeder", default="case33bw", metavar="FEEDER[,FEEDER…]", help=FEEDER_HELP)
    g.add_argument(
        "--prosumers",
        type=_int_in(1, MAX_PROSUMERS),
        default=12,
        help="battery prosumers per feeder",
    )
    g.add_argument("--seed", type=_int_in(0, None), default=0)
    g.add_argument("--out", required=True, help="instance directory to write")
    g.add_argument("--force", action="store_true", help="replace a previous generated instance")

    e = sub.add_parser(
        "export", help="write one DSO's exact coefficient problem for an external solver"
    )
    e.add_argument("instance", help="instance directory (holding instance.toml)")
    e.add_argument("--dso", required=True, help="DSO id")
    e.add_argument("--format", choices=("mps", "lp", "nl"), required=True, help="file format")
    e.add_argument("--out", required=True, help="output file")
    e.add_argument("--force", action="store_true", help="replace an existing file")
    e.add_argument(
        "--mode",
        choices=("b", "ab"),
        default="b",
        help="b: MILP (β only); ab: MINLP with bilinear stationarity (nl only)",
    )
    for flag, text in (
        ("--budget", "the DSO budget (C7) at every block boundary of the bid (default on)"),
        ("--efficiency", "no dearer delivery than unmodified offers' (C8), ditto (default on)"),
    ):
        e.add_argument(flag, action=argparse.BooleanOptionalAction, default=True, help=text)
    e.add_argument(
        "--participation",
        choices=("all", "screened"),
        default="all",
        help="who offers in the DSO's market (default all; the screened ones are the decisions)",
    )
    e.add_argument(
        "--blocks",
        type=_int_in(1, MAX_BLOCKS),
        default=10,
        help="blocks of the DSO's bid per hour",
    )
    e.add_argument(
        "--segments",
        type=_int_in(2, MAX_SEGMENTS),
        default=16,
        help="tangent points of the loss approximation",
    )

    r = sub.add_parser("run", help="run the market on an instance", argument_default=SUPPRESS)
    r.add_argument("instance", help="instance directory (holding instance.toml)")
    r.add_argument(
        "--method",
        choices=_market_methods(),
        default="none",
        help="how DSOs modify their prosumers' offers (default: none), or 'centralized': "
        "the common TSO–DSO market baseline",
    )
    r.add_argument("--seed", type=_int_in(0, None), help="seed of every random draw (default 0)")
    r.add_argument(
        "--plf",
        dest="plf_method",
        choices=("analytic", "monte_carlo", "pem"),
        help="probabilistic load flow method (default: analytic)",
    )
    r.add_argument(
        "--samples",
        type=_int_in(1, MAX_SAMPLES),
        help=f"Monte Carlo samples (default 10000, at most {MAX_SAMPLES:_})",
    )
    r.add_argument(
        "--loss-allocation",
        choices=("branch_current", "marginal", "pro_rata"),
        help="feeder loss allocation method (default: branch_current)",
    )
    r.add_argument(
        "--blocks",
        type=_int_in(1, MAX_BLOCKS),
        help="bilevel: blocks per DSO bid and hour (default 10)",
    )
    r.add_argument(
        "--participation",
        choices=("all", "screened"),
        help="bilevel: who offers in a DSO's market — every prosumer (default; the loss "
        "screening picks whose coefficients change) or the screened ones only",
    )
    r.add_argument(
        "--tso-pricing",
        choices=("interface", "last_block"),
        help="bilevel: what the TSO pays a DSO — the marginal value of relief at its "
        "interface (default) or its own last accepted block's price",
    )
    r.add_argument(
        "--pareto",
        action="store_true",
        help="wca: solve the DSO problem with MOWCA and take the fuzzy compromise",
    )
    r.add_argument(
        "--wca-iter",
        type=_int_in(1, MAX_ITER),
        help="wca: iterations per DSO (default 300)",
    )
    r.add_argument(
        "--solver",
        choices=("highs", "scip"),
        help="exact: highs — MILP (β only, default); scip — MINLP (α and β), global",
    )
    r.add_argument(
        "--time-limit",
        dest="time_limit_s",
        type=_seconds,
        help="exact: seconds per DSO (default 60)",
    )
    r.add_argument(
        "--mip-gap", type=_fraction, help="exact: relative MIP gap in [0, 1) (default 1e-6)"
    )
    r.add_argument(
        "--central-model",
        choices=("qp", "ac"),
        help="centralized: feeders as LinDistFlow QP (HiGHS, default) or AC NLP (ripopt)",
    )
    r.add_argument(
        "--workers",
        type=_int_in(1, MAX_WORKERS),
        help="run the DSO-level stages in a local process pool of N workers",
    )
    r.add_argument(
        "--scheduler",
        help="run the DSO-level stages on a Dask cluster (tcp://host:port, or 'local')",
    )
    r.add_argument(
        "--stage-time-limit",
        dest="stage_time_limit_s",
        type=_seconds,
        help="seconds per solver call of the TSO stages and the centralized market "
        f"(default {MarketOptions.stage_time_limit_s:g})",
    )
    r.add_argument(
        "--out", default=None, help="write CSV tables, summary.json and timings.json here"
    )
    r.add_argument(
        "--force",
        action="store_true",
        default=False,
        help="replace a previous result folder (never anything else)",
    )
    return p


def _market_methods() -> tuple[str, ...]:
    from flexopt.run.options import market_methods

    return market_methods()


def _int_in(lo: int, hi: int | None) -> Callable[[str], int]:
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


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _seconds(text: str) -> float:
    from flexopt.run.options import MAX_TIME_LIMIT_S

    value = _number(text)
    if not 0 < value <= MAX_TIME_LIMIT_S:
        raise argparse.ArgumentTypeError(
            f"expected seconds in (0, {MAX_TIME_LIMIT_S:g}], got {text!r}"
        )
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _version() -> str:
    from flexopt import __version__

    return __version__


class Terminated(KeyboardInterrupt):
    """``SIGTERM``, raised where the run is, so that it unwinds like Ctrl-C."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """``SIGTERM`` raises :class:`Terminated` while ``main`` runs (main thread only)."""

    def stop(signum: int, frame: Any) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(text: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def _fail(message: str) -> int:
    print(f"flexopt: error: {_one_line(message)}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with _sigterm_as_interrupt():
        try:
            if args.command == "validate":
                return _validate(args)
            if args.command == "export":
                return _export(args)
            if args.command == "generate":
                return _generate(args)
            return _run(args)
        except FlexoptError as err:
            return _fail(str(err))
        except Terminated:
            print("flexopt: terminated", file=sys.stderr)
            return EXIT_TERMINATED
        except KeyboardInterrupt:
            print("flexopt: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except MemoryError:
            return _fail("out of memory")
        except OSError as err:  # a file system or network fault: the path and the reason
            return _fail(str(err) or type(err).__name__)


def _check_output(check: Callable[..., Path], *args: Any, **kwargs: Any) -> Path:
    """An output path checked before any work: refused paths are one-line errors."""
    from flexopt.atomic import OutputRefusedError

    try:
        return check(*args, **kwargs)
    except OutputRefusedError as err:
        raise OutputError(str(err)) from None


def _validate(args: argparse.Namespace) -> int:
    from flexopt.instance import load_instance

    inst = load_instance(args.instance)
    tr = inst.transmission
    n_pros = sum(len(d.prosumers) for d in inst.dsos)
    print(
        f"{inst.name}: valid — {len(tr.buses)} buses, {len(tr.branches)} branches, "
        f"{len(tr.generators)} generators, {inst.hours} hours, {len(inst.dsos)} DSOs, "
        f"{n_pros} prosumers"
    )
    return 0


def _generate(args: argparse.Namespace) -> int:
    from flexopt.generate import generate
    from flexopt.instance import load_instance

    out = generate(
        args.transmission,
        args.dsos,
        args.feeder,
        args.prosumers,
        args.seed,
        args.out,
        replace=args.force,
    )
    print(f"wrote {out}: {load_instance(out).description}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from flexopt.atomic import atomic_file, check_output_file
    from flexopt.dso.dcp import DCPOptions
    from flexopt.dso.exact import ApproxModel, build_dcp_exact
    from flexopt.instance import load_instance
    from flexopt.instance.loader import instance_root
    from flexopt.outcome import BilevelOutcome
    from flexopt.run.api import run_market

    if args.mode == "ab" and args.format != "nl":
        raise FlexoptError("--mode ab is a nonlinear model: export it with --format nl")
    # the nl writer puts .row/.col name maps beside the file
    siblings = (".row", ".col") if args.format == "nl" else ()
    place = {
        "replace": args.force,
        "siblings": siblings,
        "protect": (instance_root(args.instance),),
    }
    _check_output(check_output_file, args.out, **place)
    inst = load_instance(args.instance)
    ids = [d.id for d in inst.dsos]
    if args.dso not in ids:
        raise FlexoptError(
            f"{inst.path / 'instance.toml'}: no DSO {args.dso!r} (DSOs: {', '.join(ids)})"
        )
    # S1–S4 and the requirement S3: the design point of the DSO
    res = run_market(inst, "none", participation=args.participation, blocks=args.blocks)
    outcome = res.outcome
    assert isinstance(outcome, BilevelOutcome)  # "none" is a bilevel method
    opts = DCPOptions(mode=args.mode, budget=args.budget, efficiency=args.efficiency)
    problem = outcome.dcp(args.dso, opts)
    if problem.trivial:
        raise FlexoptError(
            f"{args.dso}: the TSO asks this DSO for nothing; there is no problem to export"
        )
    model = build_dcp_exact(ApproxModel(problem, args.segments))
    _check_output(check_output_file, args.out, **place)  # again: the run took time
    with atomic_file(args.out, siblings=siblings) as tmp:
        model.write(str(tmp), format=args.format, io_options={"symbolic_solver_labels": True})
    n_var = model.nvariables()
    print(
        f"wrote {Path(args.out).resolve()} ({args.format}, mode {args.mode}, {n_var} variables, "
        f"hours {list(problem.hours)})"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from flexopt.atomic import check_output_dir
    from flexopt.instance import load_instance
    from flexopt.instance.loader import instance_root
    from flexopt.report import summary_text
    from flexopt.report.save import RUN_KIND
    from flexopt.run.api import run
    from flexopt.run.options import MarketOptions

    skip = ("command", "instance", "out", "force")
    options = {k: v for k, v in vars(args).items() if k not in skip}
    opt = MarketOptions.from_kwargs(progress=True, **options)  # every option, before any work
    if opt.scheduler is not None:
        _check_dask()
    root = instance_root(args.instance)
    if args.out is not None:
        _check_output(check_output_dir, args.out, RUN_KIND, replace=args.force, protect=(root,))
    inst = load_instance(args.instance)
    res = run(inst, opt)
    print(summary_text(res.summary, sum(res.timings.values())))
    if args.out is not None:
        print(f"wrote                {res.save(args.out, replace=args.force)}")
    return 0


def _check_dask() -> None:
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise FlexoptError("--scheduler needs the 'dask' extra: pip install 'flexopt[dask]'")


if __name__ == "__main__":
    sys.exit(main())
