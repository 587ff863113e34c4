"""Compare the coefficient methods and the centralized market on the bundled instance.

    python examples/compare_methods.py [--out DIR] [--fast]

Runs ``none``, ``mlf``, ``wca`` and ``centralized`` with ``fx.compare`` (each run saved under
``DIR/runs/<name>``; rerunning skips the finished runs), prints the headline table and writes
the comparison figure. ``social_cost_eur`` is the social cost to compare across methods
(``docs/tables.md``). ``--fast`` gives WCA few iterations and a small population.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import flexopt as fx

INSTANCE = Path(__file__).resolve().parents[1] / "instances" / "rts24-3dso"
COLUMNS = [
    "method",
    "relief_mwh",
    "overload_mw_after",
    "tso_cost_eur",
    "dso_balance_eur",
    "social_cost_eur",
    "clearing_time_s",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="the comparison folder (default: a temporary one)")
    ap.add_argument("--fast", action="store_true", help="a short WCA run")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="flexopt-compare-")) / "cmp"
    wca = {"wca_iter": 5, "wca_pop": 10} if args.fast else {"wca_iter": 300}

    cmp = fx.compare(
        INSTANCE,
        ["none", "mlf", "wca", "centralized"],
        options=wca,
        out=out,
        progress=False,
    )
    print(cmp)
    table = cmp.runs[COLUMNS].set_index("method")
    print(table.round(2).to_string())
    best = table["social_cost_eur"].idxmin()
    print(f"lowest social cost: {best} ({table.loc[best, 'social_cost_eur']:,.2f} €)")
    print(f"figures: {', '.join(p.name for p in cmp.figures)} in {cmp.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
