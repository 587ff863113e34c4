"""Quick start: run the bilevel flexibility market on the bundled instance, read the results,
save them and draw a figure.

    python examples/quickstart.py [--method mlf] [--out DIR] [--fast]

Without ``--out`` the results go to a new temporary folder. ``--fast`` skips the run's own
figures (the tables, the summary and one figure are still written).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import flexopt as fx

INSTANCE = Path(__file__).resolve().parents[1] / "instances" / "rts24-3dso"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="mlf", help="none, mlf, wca, exact or centralized")
    ap.add_argument("--out", type=Path, help="a new or empty folder (default: a temporary one)")
    ap.add_argument("--fast", action="store_true", help="skip the run's own figures")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="flexopt-quickstart-"))

    inst = fx.load_instance(INSTANCE)  # validated; raises fx.InstanceError naming file/field
    print(inst)
    res = fx.run_market(inst, method=args.method, seed=0)
    print(res)

    s = res.summary  # headline figures; every key is in docs/tables.md
    print(f"overload       {s['overload_mw_before']:.2f} → {s['overload_mw_after']:.2f} MW·h")
    print(f"TSO pays       {s['tso_cost_eur']:,.2f} €")
    print(f"social cost    {s['social_cost_eur']:,.2f} € (the figure to compare across methods)")
    for dso_id, d in s["dso"].items():
        print(f"  {dso_id}: accepted {d['accepted_mwh']:.3f} MWh, balance {d['balance_eur']:.2f} €")

    settlement = res.tables["settlement"]  # pandas DataFrames, one per CSV
    print(settlement.groupby("dso_id")[["accepted_mw", "tso_payment_eur"]].sum().round(2))

    folder = res.save(out / "results", figures=not args.fast)
    fig = fx.plot.line_loading(res)
    fig.savefig(folder.parent / "line_loading.png")
    print(f"wrote {folder} and {folder.parent / 'line_loading.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
