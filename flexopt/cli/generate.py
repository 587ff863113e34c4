"""``flexopt generate``: a synthetic instance with congestion by construction."""

from __future__ import annotations

import argparse
from typing import Any

from flexopt.cli._args import add_verbosity, int_in

__all__ = ["add_parser", "generate"]


def add_parser(sub: Any) -> None:
    from flexopt.generate import FEEDER_HELP, MAX_PROSUMERS, TRANSMISSION_HELP

    g = sub.add_parser(
        "generate", help="write a synthetic instance with congestion by construction"
    )
    g.add_argument("--transmission", required=True, metavar="CASE|FILE", help=TRANSMISSION_HELP)
    g.add_argument("--dsos", type=int_in(1, 10_000), required=True, help="number of DSOs")
    g.add_argument("--feeder", default="case33bw", metavar="FEEDER[,FEEDER…]", help=FEEDER_HELP)
    g.add_argument(
        "--prosumers",
        type=int_in(1, MAX_PROSUMERS),
        default=12,
        help="battery prosumers per feeder",
    )
    g.add_argument("--seed", type=int_in(0, None), default=0)
    g.add_argument(
        "--microgrids",
        type=int_in(0, 10),
        default=0,
        metavar="K",
        help="laterals of every DSO's feeder run as microgrids (models/microgrid.md)",
    )
    g.add_argument("--out", required=True, help="instance directory to write")
    g.add_argument("--force", action="store_true", help="replace a previous generated instance")
    add_verbosity(g)


def generate(args: argparse.Namespace) -> int:
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
        microgrids=args.microgrids,
    )
    print(f"wrote {out}: {load_instance(out).description}")
    return 0
