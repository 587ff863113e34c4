"""``flexopt export``: one DSO's exact coefficient problem for an external solver."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flexopt.cli._args import add_verbosity, int_in
from flexopt.cli.run import check_output
from flexopt.errors import FlexoptError

__all__ = ["add_parser", "export"]


def add_parser(sub: Any) -> None:
    from flexopt.methods.exact import MAX_SEGMENTS
    from flexopt.run.options import MAX_BLOCKS

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
        type=int_in(1, MAX_BLOCKS),
        default=10,
        help="blocks of the DSO's bid per hour",
    )
    e.add_argument(
        "--segments",
        type=int_in(2, MAX_SEGMENTS),
        default=16,
        help="tangent points of the loss approximation",
    )
    add_verbosity(e)


def export(args: argparse.Namespace) -> int:
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
    check_output(check_output_file, args.out, **place)
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
    check_output(check_output_file, args.out, **place)  # again: the run took time
    with atomic_file(args.out, siblings=siblings) as tmp:
        model.write(str(tmp), format=args.format, io_options={"symbolic_solver_labels": True})
    n_var = model.nvariables()
    print(
        f"wrote {Path(args.out).resolve()} ({args.format}, mode {args.mode}, {n_var} variables, "
        f"hours {list(problem.hours)})"
    )
    return 0
