"""The value of waiting: the intraday market against the day-ahead congestion-probability
threshold (``models/intraday.md``).

    python -m benchmarks.intraday [--quick] [--report]

For each day-ahead threshold ``p_DA`` (``dayahead_prob``; 0.5 is the paper's mean-flow rule,
the default) the bilevel market with ``mlf`` runs day ahead, then ``N`` realizations of the
load (the same ones for every threshold: they depend on the seed and their number only), each
with the intraday market (``intraday_min_prob`` 0.05, penalty 1 000 €/MWh of overload left).
Per threshold: the day-ahead payment, the expected cost, payment and residual overload and
the probability of any residual overload — for the day-ahead market alone and with the
intraday market. Instances: the bundled ``rts24-3dso`` and ``flexopt generate case30 --dsos 3
--feeder case33bw --prosumers 12 --seed 1``. Writes ``results/intraday.csv`` after every run
(an interrupted sweep keeps what finished).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from benchmarks._common import RESULTS, machine, write_csv

if TYPE_CHECKING:
    from flexopt import Instance

THRESHOLDS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95)
QUICK_THRESHOLDS = (0.05, 0.2, 0.5, 0.8)
SCENARIOS, QUICK_SCENARIOS = 40, 8
METHOD = "mlf"


def _row(name: str, inst: Instance, p_da: float, n: int) -> dict[str, object]:
    import flexopt as fx

    start = time.perf_counter()
    res = fx.run_market(inst, METHOD, seed=0, intraday=True, scenarios=n, dayahead_prob=p_da)
    s = res.summary["intraday"]
    da, both = s["da_only"], s["da_id"]
    return {
        "instance": name,
        "dayahead_prob": p_da,
        "dayahead_quantile": s["dayahead_quantile"],
        "scenarios": s["scenarios_done"],
        "dayahead_line_hours": s["dayahead_line_hours"],
        "watched_line_hours": s["watched_line_hours"],
        "dayahead_accepted_mwh": res.summary["flex_accepted_mwh"],
        "dayahead_payment_eur": s["dayahead_payment_eur"],
        "da_only_cost_eur": da["expected_cost_eur"],
        "da_only_overload_mwh": da["expected_overload_mwh"],
        "da_only_overload_prob": da["overload_prob_pu"],
        "da_id_cost_eur": both["expected_cost_eur"],
        "da_id_payment_eur": both["expected_payment_eur"],
        "intraday_accepted_mwh": both["expected_intraday_accepted_mwh"],
        "da_id_overload_mwh": both["expected_overload_mwh"],
        "da_id_overload_prob": both["overload_prob_pu"],
        "value_of_intraday_eur": s["value_of_intraday_eur"],
        "time_s": time.perf_counter() - start,
    }


def sweep(quick: bool) -> pd.DataFrame:
    import flexopt as fx
    from flexopt.generate import generate

    thresholds = QUICK_THRESHOLDS if quick else THRESHOLDS
    n = QUICK_SCENARIOS if quick else SCENARIOS
    root = Path(__file__).resolve().parents[1]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("rts24-3dso", fx.load_instance(root / "instances" / "rts24-3dso")),
            (
                "case30 3x12 s1",
                fx.load_instance(generate("case30", 3, "case33bw", 12, 1, Path(tmp) / "c30")),
            ),
        ]
        for name, inst in cases:
            for p_da in thresholds:
                rows.append(_row(name, inst, p_da, n))
                print(f"{name} p_DA={p_da}: {rows[-1]['time_s']:.1f} s", file=sys.stderr)
                write_csv(pd.DataFrame(rows), "intraday")
    return pd.DataFrame(rows)


def report(df: pd.DataFrame) -> int:
    n = sorted(df["scenarios"].unique())
    print(f"machine: {machine()}; method {METHOD}; {', '.join(map(str, n))} realizations\n")
    print(
        "| instance | p_DA | z_DA | line-hours DA / wait | DA payment (€) | E cost DA only (€) | "
        "E cost DA+ID (€) | E overload DA only / DA+ID (MW·h) | P(overload) DA only / DA+ID "
        "| value of ID (€) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for _, r in df.iterrows():
        same = df[df["instance"] == r["instance"]]
        bold = "**" if r["da_id_cost_eur"] == same["da_id_cost_eur"].min() else ""
        print(
            f"| {r['instance']} | {r['dayahead_prob']:g} | {r['dayahead_quantile']:+.2f} | "
            f"{r['dayahead_line_hours']} / {r['watched_line_hours']} | "
            f"{r['dayahead_payment_eur']:,.0f} | {r['da_only_cost_eur']:,.0f} | "
            f"{bold}{r['da_id_cost_eur']:,.0f}{bold} | "
            f"{r['da_only_overload_mwh']:.2f} / {r['da_id_overload_mwh']:.2f} | "
            f"{r['da_only_overload_prob']:.2f} / {r['da_id_overload_prob']:.2f} | "
            f"{r['value_of_intraday_eur']:,.0f} |"
        )
    print(f"\ntotal time {df['time_s'].sum():.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help=f"4 thresholds, {QUICK_SCENARIOS} realizations"
    )
    ap.add_argument("--report", action="store_true", help="only print results/intraday.csv")
    args = ap.parse_args(argv)
    df = pd.read_csv(RESULTS / "intraday.csv") if args.report else sweep(args.quick)
    return report(df)


if __name__ == "__main__":
    sys.exit(main())
