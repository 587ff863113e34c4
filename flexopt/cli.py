"""The ``flexopt`` command.

    flexopt validate INSTANCE
    flexopt run INSTANCE [--plf analytic|monte_carlo|pem] [--samples N] [--seed N] [--out DIR]

Bad input prints one line naming the file and field and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flexopt.errors import FlexoptError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + error)
        print(f"flexopt: error: {message} (see 'flexopt --help')", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="flexopt", description="Bilevel TSO–DSO flexibility market toolkit.")
    p.add_argument("--version", action="version", version=f"flexopt {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    v = sub.add_parser("validate", help="check an instance and print a short description")
    v.add_argument("instance", help="instance directory (holding instance.toml)")

    r = sub.add_parser("run", help="run the market stages on an instance")
    r.add_argument("instance", help="instance directory (holding instance.toml)")
    r.add_argument(
        "--plf",
        choices=("analytic", "monte_carlo", "pem"),
        default="analytic",
        help="probabilistic load flow method (default: analytic)",
    )
    r.add_argument("--samples", type=_positive_int, default=10_000, help="Monte Carlo samples")
    r.add_argument(
        "--loss-allocation",
        choices=("branch_current", "marginal", "pro_rata"),
        default="branch_current",
        help="feeder loss allocation method",
    )
    r.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    r.add_argument("--out", help="write CSV tables, summary.json and timings.json here")
    return p


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


def _run(args: argparse.Namespace) -> int:
    from flexopt.instance import load_instance
    from flexopt.pipeline import run_physics

    inst = load_instance(args.instance)
    print(
        f"flexopt: {inst.name}: day-ahead market, PLF ({args.plf}), loss allocation …",
        file=sys.stderr,
    )
    res = run_physics(
        inst,
        plf_method=args.plf,
        samples=args.samples,
        seed=args.seed,
        loss_method=args.loss_allocation,
        progress=args.plf == "monte_carlo",
    )
    s = res.summary
    print(f"instance            {s['instance']}")
    print(f"day-ahead cost      {s['day_ahead_cost_eur']:,.0f} EUR")
    print(
        f"congestion ({s['plf_method']})  {s['congested_line_hours_before']} line-hours on "
        f"{', '.join(s['congested_lines']) or 'no line'}; hours {s['congested_hours']}"
    )
    print(
        f"overload            {s['overload_mw_before']:.2f} MW·h in total, worst {s['max_overload_mw']:.2f} MW"
    )
    for dso_id, loss in s["dso_losses_mwh_before"].items():
        print(
            f"{dso_id:<19} feeder losses {loss:.3f} MWh/day, {s['participants'][dso_id]} participating prosumers"
        )
    print(f"time                {sum(res.timings.values()):.2f} s")
    if args.out:
        from flexopt.report import save_results

        path = save_results(args.out, res.tables, s, res.timings)
        print(f"wrote               {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
