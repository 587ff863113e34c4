"""Rival DSOs: the Nash equilibrium of their markups against price taking, generated cases.

The game of ``models/competition.md`` on instances from ``flexopt generate``.

    python -m benchmarks.competition [--quick] [--report]

Instances: ``flexopt generate`` on case30 (3 DSOs: congestion outruns their flexibility, every
DSO-hour is pivotal), case118 (3, 10, 30 DSOs) and case300 (10, 30 DSOs), 8 prosumers per
feeder, seed 0; method ``mlf``, ``interface`` pricing, the default markup grid (0, 5, …,
200 €/MWh). Per instance: the price-taking market, ``--competition nash``, and — where a DSO is
pivotal — ``nash`` with the cap ``competition_cap = 20`` €/MWh. Each run is a child process
stopped after ``RUN_LIMIT_S``. ``--quick``: case30 and case118 with 3 DSOs, the grid 0, 10, …,
100 €/MWh.

Per run: the TSO's payment (S7) and its ratio to the price-taking one, the DSOs' S7 profits
(payment minus the cost their unmarked bids declare, N9) and their S8 balances, the Lerner
index (largest and mean over the accepted DSO-hours, and the mean when price taking), the
pivotal DSO-hours, how the game ended (status, rounds), the solver work (MILPs, S7 solves)
and the seconds of the game. Writes ``results/competition.csv`` after every run.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks._common import machine, run_child, sweep_main, write_csv

RUN_LIMIT_S = 3600.0
GRID = [("case30", (3,)), ("case118", (3, 10, 30)), ("case300", (10, 30))]
QUICK = [("case30", (3,)), ("case118", (3,))]
CAP_EUR_PER_MWH = 20.0


def child(instance: str, options: str) -> None:
    """Run one market in this process and print one JSON line (the parent's row)."""
    import flexopt as fx

    res = fx.run_market(fx.load_instance(instance), "mlf", seed=0, **json.loads(options))
    s = res.summary
    row = {
        "tso_payment_eur": s["tso_cost_eur"],
        "dso_balance_eur": s["dso_balance_eur"],
        "overload_after_mwh": s["overload_mw_after"],
        "time_s": sum(res.timings.values()),
    }
    if "competition" in s:
        c, table = s["competition"], res.tables["competition"]
        taken = table[table["accepted_mw"] > 0]
        taken_pt = table[table["price_taking_accepted_mw"] > 0]
        row.update(
            {
                "equilibrium": c["status"],
                "rounds": c["rounds"],
                "cycle_length": c["cycle_length"],
                "price_taking_payment_eur": c["tso_payment_price_taking_eur"],
                "payment_ratio": c["tso_payment_ratio_pu"],
                "profit_eur": sum(d["profit_eur"] for d in c["dso"].values()),
                "price_taking_profit_eur": sum(
                    d["profit_price_taking_eur"] for d in c["dso"].values()
                ),
                "lerner_max": c["lerner_max_pu"],
                "lerner_mean": float(taken["lerner_pu"].mean()) if len(taken) else None,
                "price_taking_lerner_mean": (
                    float(taken_pt["price_taking_lerner_pu"].mean()) if len(taken_pt) else None
                ),
                "markup_max_eur_per_mwh": float(table["markup_eur_per_mwh"].max()),
                "pivotal_dso_hours": c["pivotal_dso_hours"],
                "dso_hours": len(table),
                "mpec_solves": c["mpec_solves"],
                "cuts": c["cuts"],
                "mpec_failures": c["mpec_failures"],
                "clearings": c["clearings"],
                "competition_s": res.timings.get("competition_s", 0.0),
            }
        )
    print(json.dumps(row))


def _run(path: Path, options: dict) -> tuple[str, dict]:
    cmd = [sys.executable, "-m", "benchmarks.competition", "--child", str(path)]
    return run_child([*cmd, json.dumps(options)], RUN_LIMIT_S)


def sweep(quick: bool) -> pd.DataFrame:
    from flexopt.errors import FlexoptError
    from flexopt.generate import generate

    grid = {"competition_markups": (10.0, 100.0)} if quick else {}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case, sizes in QUICK if quick else GRID:
            for n_dsos in sizes:
                name = f"{case}-{n_dsos}x8"
                try:
                    path = generate(case, n_dsos, "case33bw", 8, 0, Path(tmp) / name)
                except FlexoptError as err:
                    print(f"{name}: not generated ({err})", file=sys.stderr)
                    continue
                runs = [("price taking", {}), ("nash", {"competition": "nash", **grid})]
                cap = {"competition": "nash", "competition_cap": CAP_EUR_PER_MWH, **grid}
                k = 0
                while k < len(runs):
                    label, options = runs[k]
                    status, row = _run(path, options)
                    rows.append(
                        {"case": case, "dsos": n_dsos, "run": label, "status": status, **row}
                    )
                    print(f"{name} {label}: {status}", file=sys.stderr, flush=True)
                    write_csv(pd.DataFrame(rows), "competition")
                    if label == "nash" and row.get("pivotal_dso_hours", 0) > 0:
                        runs.append((f"nash, cap {CAP_EUR_PER_MWH:g}", cap))
                    k += 1
    return pd.DataFrame(rows)


def _f(x: object, fmt: str) -> str:
    return "—" if x is None or (isinstance(x, float) and x != x) else format(x, fmt)


def report(df: pd.DataFrame) -> int:
    print(f"machine: {machine()}; {len(df)} runs, {int((df['status'] == 'ok').sum())} finished\n")
    print(
        "| instance | run | status (rounds) | TSO payment (€) | ratio | DSO S7 profit (€) | "
        "DSO S8 balance (€) | Lerner max / mean (price taking mean) | pivotal DSO-h | "
        "MILPs / cuts / S7 solves | game (s) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for _, r in df.iterrows():
        inst = f"{r['case']} × {r['dsos']}"
        if r["status"] != "ok":
            print(f"| {inst} | {r['run']} | {r['status']} | | | | | | | | |")
            continue
        if r["run"] == "price taking":
            print(
                f"| {inst} | price taking | — | {r['tso_payment_eur']:,.2f} | 1 | — | "
                f"{r['dso_balance_eur']:,.2f} | — | — | — | — |"
            )
            continue
        print(
            f"| {inst} | {r['run']} | {r['equilibrium']} ({r['rounds']:.0f}) | "
            f"{r['tso_payment_eur']:,.2f} | {_f(r['payment_ratio'], '.3f')} | "
            f"{r['profit_eur']:,.2f} (p.t. {r['price_taking_profit_eur']:,.2f}) | "
            f"{r['dso_balance_eur']:,.2f} | {_f(r['lerner_max'], '.2f')} / "
            f"{_f(r['lerner_mean'], '.2f')} ({_f(r['price_taking_lerner_mean'], '.2f')}) | "
            f"{r['pivotal_dso_hours']:.0f}/{r['dso_hours']:.0f} | "
            f"{r['mpec_solves']:.0f} / {r['cuts']:.0f} / {r['clearings']:.0f} | "
            f"{r['competition_s']:.1f} |"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    quick = "two small instances, a coarse grid"
    return sweep_main(argv, "competition", doc, child, sweep, report, quick)


if __name__ == "__main__":
    raise SystemExit(main())
