"""The ``flexopt`` command.

    flexopt validate INSTANCE
    flexopt run INSTANCE [--method none|mlf|wca] [--pareto] [--plf analytic|monte_carlo|pem]
                         [--samples N] [--seed N] [--out DIR]

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

    r = sub.add_parser("run", help="run the bilevel market on an instance")
    r.add_argument("instance", help="instance directory (holding instance.toml)")
    r.add_argument(
        "--method",
        choices=("none", "mlf", "wca", "exact"),
        default="none",
        help="how DSOs modify their prosumers' offers (default: none)",
    )
    r.add_argument(
        "--pareto",
        action="store_true",
        help="wca: solve the DSO problem with MOWCA and take the fuzzy compromise",
    )
    r.add_argument("--wca-iter", type=_positive_int, default=300, help="wca: iterations per DSO")
    r.add_argument("--solver", choices=("highs",), default="highs", help="exact: MILP solver")
    r.add_argument("--time-limit", type=float, default=60.0, help="exact: seconds per DSO")
    r.add_argument("--mip-gap", type=float, default=1e-6, help="exact: relative MIP gap")
    r.add_argument("--blocks", type=_positive_int, default=10, help="blocks per DSO bid and hour")
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
    from flexopt.pipeline import run_market

    inst = load_instance(args.instance)
    res = run_market(
        inst,
        args.method,
        seed=args.seed,
        plf_method=args.plf,
        samples=args.samples,
        blocks=args.blocks,
        loss_allocation=args.loss_allocation,
        progress=True,
        pareto=args.pareto,
        wca_iter=args.wca_iter,
        solver=args.solver,
        time_limit_s=args.time_limit,
        mip_gap=args.mip_gap,
    )
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
    print(
        f"flexibility          requested {s['flex_requested_mwh']:.3f} MWh, accepted {s['flex_accepted_mwh']:.3f} MWh"
    )
    print(f"TSO cost             {s['tso_cost_eur']:,.2f} EUR")
    print(
        f"DSO losses           {s['dso_losses_mwh_before']:.3f} → {s['dso_losses_mwh_after']:.3f} MWh/day"
    )
    print(f"DSO balance          {s['dso_balance_eur']:,.2f} EUR")
    print(f"social cost          {s['social_cost_eur']:,.2f} EUR")
    for dso_id, d in s["dso"].items():
        print(
            f"  {dso_id:<18} {d['participants']} participants, requested {d['requested_mwh']:.3f} MWh, "
            f"accepted {d['accepted_mwh']:.3f} MWh, losses −{d['losses_mwh_before'] - d['losses_mwh_after']:.3f} MWh, "
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
