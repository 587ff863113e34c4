"""The ``flexopt`` command.

    flexopt validate INSTANCE
    flexopt export INSTANCE --dso ID --format mps|lp|nl --out FILE [--mode b|ab]
    flexopt generate --transmission case30|case118|case300 --dsos N --feeder case33bw|case69
                     --prosumers M --seed S --out DIR
    flexopt run INSTANCE [--method METHOD] [--plf analytic|monte_carlo|pem] [--samples N]
                         [--seed N] [--out DIR] [--workers N | --scheduler ADDR] [method options]

``--method`` takes every registered coefficient method (``flexopt.methods``: none, mlf, wca,
exact, …) and ``centralized``. Options are passed on only when given, so an option that does
not apply to the chosen method is refused with one line naming the method. Bad input prints
one line naming the file and field and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from argparse import SUPPRESS
from collections.abc import Sequence
from typing import NoReturn

from flexopt.errors import FlexoptError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage + error)
        print(f"flexopt: error: {message} (see 'flexopt --help')", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="flexopt", description="Bilevel TSO–DSO flexibility market toolkit.")
    p.add_argument("--version", action="version", version=f"flexopt {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    v = sub.add_parser("validate", help="check an instance and print a short description")
    v.add_argument("instance", help="instance directory (holding instance.toml)")

    g = sub.add_parser(
        "generate", help="write a synthetic instance with congestion by construction"
    )
    g.add_argument("--transmission", choices=("case30", "case118", "case300"), required=True)
    g.add_argument("--dsos", type=_positive_int, required=True, help="number of DSOs")
    g.add_argument("--feeder", choices=("case33bw", "case69"), default="case33bw")
    g.add_argument(
        "--prosumers", type=_positive_int, default=12, help="battery prosumers per feeder"
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True, help="instance directory to write")

    e = sub.add_parser(
        "export", help="write one DSO's exact coefficient problem for an external solver"
    )
    e.add_argument("instance", help="instance directory (holding instance.toml)")
    e.add_argument("--dso", required=True, help="DSO id")
    e.add_argument("--format", choices=("mps", "lp", "nl"), required=True, help="file format")
    e.add_argument("--out", required=True, help="output file")
    e.add_argument(
        "--mode",
        choices=("b", "ab"),
        default="b",
        help="b: MILP (β only); ab: MINLP with bilinear stationarity (nl only)",
    )
    e.add_argument(
        "--budget",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the DSO budget (C7) at every block boundary of the bid (default on)",
    )
    e.add_argument(
        "--participation",
        choices=("all", "screened"),
        default="all",
        help="who offers in the DSO's market (default all; the screened ones are the decisions)",
    )
    e.add_argument(
        "--blocks", type=_positive_int, default=10, help="blocks of the DSO's bid per hour"
    )
    e.add_argument(
        "--segments",
        type=_positive_int,
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
    r.add_argument("--seed", type=int, help="seed of every random draw (default 0)")
    r.add_argument(
        "--plf",
        dest="plf_method",
        choices=("analytic", "monte_carlo", "pem"),
        help="probabilistic load flow method (default: analytic)",
    )
    r.add_argument("--samples", type=_positive_int, help="Monte Carlo samples (default 10000)")
    r.add_argument(
        "--loss-allocation",
        choices=("branch_current", "marginal", "pro_rata"),
        help="feeder loss allocation method (default: branch_current)",
    )
    r.add_argument(
        "--blocks", type=_positive_int, help="bilevel: blocks per DSO bid and hour (default 10)"
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
    r.add_argument("--wca-iter", type=_positive_int, help="wca: iterations per DSO (default 300)")
    r.add_argument(
        "--solver",
        choices=("highs", "scip"),
        help="exact: highs — MILP (β only, default); scip — MINLP (α and β), global",
    )
    r.add_argument(
        "--time-limit", dest="time_limit_s", type=float, help="exact: seconds per DSO (default 60)"
    )
    r.add_argument("--mip-gap", type=float, help="exact: relative MIP gap (default 1e-6)")
    r.add_argument(
        "--central-model",
        choices=("qp", "ac"),
        help="centralized: feeders as LinDistFlow QP (HiGHS, default) or AC NLP (ripopt)",
    )
    r.add_argument(
        "--workers",
        type=_positive_int,
        help="run the DSO-level stages in a local process pool of N workers",
    )
    r.add_argument(
        "--scheduler",
        help="run the DSO-level stages on a Dask cluster (tcp://host:port, or 'local')",
    )
    r.add_argument(
        "--out", default=None, help="write CSV tables, summary.json and timings.json here"
    )
    return p


def _market_methods() -> tuple[str, ...]:
    from flexopt.run.options import market_methods

    return market_methods()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _version() -> str:
    from flexopt import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args)
        if args.command == "export":
            return _export(args)
        if args.command == "generate":
            return _generate(args)
        return _run(args)
    except FlexoptError as err:
        print(f"flexopt: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("flexopt: interrupted", file=sys.stderr)
        return 130


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

    out = generate(args.transmission, args.dsos, args.feeder, args.prosumers, args.seed, args.out)
    print(f"wrote {out}: {load_instance(out).description}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from flexopt.atomic import atomic_file
    from flexopt.dso.dcp import DCPOptions
    from flexopt.dso.exact import ApproxModel, build_dcp_exact
    from flexopt.instance import load_instance
    from flexopt.outcome import BilevelOutcome
    from flexopt.run.api import run_market

    if args.mode == "ab" and args.format != "nl":
        raise FlexoptError("--mode ab is a nonlinear model: export it with --format nl")
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
    problem = outcome.dcp(args.dso, DCPOptions(mode=args.mode, budget=args.budget))
    if problem.trivial:
        raise FlexoptError(
            f"{args.dso}: the TSO asks this DSO for nothing; there is no problem to export"
        )
    model = build_dcp_exact(ApproxModel(problem, args.segments))
    # the nl writer puts .row/.col name maps beside the file
    with atomic_file(args.out, siblings=(".row", ".col")) as tmp:
        model.write(str(tmp), format=args.format, io_options={"symbolic_solver_labels": True})
    n_var = model.nvariables()
    print(
        f"wrote {Path(args.out).resolve()} ({args.format}, mode {args.mode}, {n_var} variables, "
        f"hours {list(problem.hours)})"
    )
    return 0


def _mwh(value: float | None) -> str:
    """An energy for the summary; ``—`` where the method has no such stage."""
    return "—" if value is None else f"{value:.3f}"


def _run(args: argparse.Namespace) -> int:
    from flexopt.instance import load_instance
    from flexopt.run.api import run_market

    options = {k: v for k, v in vars(args).items() if k not in ("command", "instance", "out")}
    inst = load_instance(args.instance)
    res = run_market(inst, progress=True, **options)
    s = res.summary
    print(
        f"instance             {s['instance']}  (method {s['method']}, PLF {s['plf_method']}, seed {s['seed']})"
    )
    print(
        f"congestion before    {s['congested_line_hours_before']} line-hours on "
        f"{', '.join(s['congested_lines_before']) or 'no line'}, hours {s['congested_hours']}; "
        f"overload {s['overload_mw_before']:.2f} MW·h"
    )
    print(
        f"congestion after     {s['congested_line_hours_after']} line-hours; overload {s['overload_mw_after']:.2f} MW·h"
    )
    req = s["flex_requested_mwh"]
    print(
        f"flexibility          requested {_mwh(req)} MWh, accepted {s['flex_accepted_mwh']:.3f} MWh; "
        f"{s['relief_losses_mwh']:.3f} MWh more relief from lower feeder losses"
    )
    print(f"TSO cost             {s['tso_cost_eur']:,.2f} EUR")
    print(
        f"DSO losses           {s['dso_losses_mwh_before']:.3f} → {s['dso_losses_mwh_after']:.3f} MWh/day"
    )
    print(f"DSO balance          {s['dso_balance_eur']:,.2f} EUR")
    print(
        f"social cost          {s['social_cost_eur']:,.2f} EUR (AC losses, day); "
        f"{s['social_cost_lindistflow_eur']:,.2f} EUR on the centralized model"
    )
    w = s["welfare"]
    print(
        f"welfare              TSO pays {w['tso_payment_eur']:,.2f} = DSO balance "
        f"{w['dso_balance_eur']:,.2f} + prosumer surplus {w['prosumer_surplus_eur']:,.2f} + "
        f"social cost {w['social_cost_eur']:,.2f} EUR (loss value {w['loss_value_eur']:+,.2f})"
    )
    print(f"information exchanged {s['information_exchanged_floats']:,} numbers across TSO–DSO")
    for dso_id, d in s["dso"].items():
        screened = f" ({d['screened']} screened)" if "screened" in d else ""
        print(
            f"  {dso_id:<18} {d['participants']} participants{screened}, "
            f"requested {_mwh(d['requested_mwh'])} MWh, "
            f"accepted {d['accepted_mwh']:.3f} MWh, losses {d['losses_mwh_after'] - d['losses_mwh_before']:+.3f} MWh, "
            f"balance {d['balance_eur']:,.2f} EUR"
        )
        if "dcp" in d:
            c = d["dcp"]
            print(
                f"  {'':<18} DSO problem: objective {c['objective']:.4f}, f_loss {c['f_loss_mwh']:.4f} MWh, "
                f"f_price {c['f_price_eur']:,.2f} EUR, budget {c['budget_eur']:,.2f} EUR"
                f"{'' if c['feasible'] else ' (infeasible)'}"
            )
    print(f"time                 {sum(res.timings.values()):.2f} s")
    if args.out:
        print(f"wrote                {res.save(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
