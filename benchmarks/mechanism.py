"""The market mechanism on generated instances: budgets, residual overload and social cost of
the bilevel market against the centralized market.

    python -m benchmarks.mechanism [--quick] [--report]

Instances: ``flexopt generate`` on case30, case118 and case300 with 3–100 DSOs, 8 or 50
prosumers per feeder and seeds 0–1 (case30 has 20 load buses: at most 10 DSOs there), plus
the bundled ``rts24-3dso``. Methods: the bilevel market with ``none``, ``mlf``, ``wca``
(50 × 300; 50 × 60 from 30 DSOs on, to bound the sweep's time) and — up to 10 DSOs with 8
prosumers — ``exact`` (MILP, 10 s per DSO); ``wca`` once more without the DSO budget (C7)
to measure what the constraint costs the TSO, and — up to 10 DSOs — without the efficiency
(C8) to measure what it changes; and the centralized market (QP). Each run is a
child process stopped after ``RUN_LIMIT_S``.

Per run: the lowest settled DSO balance, the residual overload after the re-check, the
social cost on the AC evaluator, the TSO's payment and the welfare split. The checks the
mechanism must pass are printed at the end: no negative DSO balance (none, mlf, wca, exact);
the bilevel residual equal to the centralized one within 1 % or 0.01 MW·h; where both
relieve everything, the bilevel social cost within 2 % of the centralized one. Writes
``results/mechanism.csv`` after every run (an interrupted sweep keeps what finished).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks._common import RESULTS, machine, run_child, write_csv

RUN_LIMIT_S = 900.0
GRID = [
    ("case30", (3, 10), (8, 50)),
    ("case118", (3, 10, 30), (8, 50)),
    ("case300", (3, 10, 30, 100), (8, 50)),
]
SEEDS = (0, 1)
EXACT_MAX = (10, 8)  # DSOs, prosumers
EFFICIENCY_MAX = 10  # DSOs: wca without (C8) as well, to measure what it changes


def child(instance: str, method: str, options: str) -> None:
    """Run one market in this process and print one JSON line (the parent's row)."""
    import flexopt as fx

    inst = fx.load_instance(instance)
    res = fx.run_market(inst, method, seed=0, **json.loads(options))
    s = res.summary
    balances = [d["balance_eur"] for d in s["dso"].values()]
    w = s["welfare"]
    print(
        json.dumps(
            {
                "overload_before_mwh": s["overload_mw_before"],
                "overload_after_mwh": s["overload_mw_after"],
                "accepted_mwh": s["flex_accepted_mwh"],
                "relief_losses_mwh": s["relief_losses_mwh"],
                "min_dso_balance_eur": min(balances) if balances else 0.0,
                "negative_balances": sum(b < -1e-6 for b in balances),
                "tso_payment_eur": w["tso_payment_eur"],
                "dso_balance_eur": w["dso_balance_eur"],
                "prosumer_surplus_eur": w["prosumer_surplus_eur"],
                "loss_value_eur": w["loss_value_eur"],
                "social_cost_eur": s["social_cost_eur"],
                "infeasible_dcps": sum(
                    not d["dcp"]["feasible"] for d in s["dso"].values() if "dcp" in d
                ),
                "time_s": sum(res.timings.values()),
            }
        )
    )


def _methods(n_dsos: int, n_pros: int) -> list[tuple[str, str, dict]]:
    """(label, method, options) for one instance."""
    wca = {"wca_iter": 60} if n_dsos >= 30 else {}
    out = [
        ("none", "none", {}),
        ("mlf", "mlf", {}),
        ("wca", "wca", wca),
        ("wca (no budget)", "wca", {**wca, "dcp_budget": False}),
        ("centralized", "centralized", {}),
    ]
    if n_dsos <= EFFICIENCY_MAX:
        out.insert(4, ("wca (no efficiency)", "wca", {**wca, "dcp_efficiency": False}))
    if n_dsos <= EXACT_MAX[0] and n_pros <= EXACT_MAX[1]:
        out.insert(3, ("exact", "exact", {"time_limit_s": 10.0}))
    return out


def sweep(quick: bool) -> pd.DataFrame:
    from flexopt.errors import FlexoptError
    from flexopt.generate import generate

    grid = [("case118", (3,), (8,))] if quick else GRID
    seeds = (0,) if quick else SEEDS
    rows: list[dict] = []
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        cases: list[tuple[str, Path, int, int, int]] = [
            ("rts24-3dso", root / "instances" / "rts24-3dso", 3, 12, 0)
        ]
        for case, dsos, prosumers in grid:
            for n_pros in prosumers:
                for n_dsos in dsos:
                    for seed in seeds:
                        name = f"{case}-{n_dsos}x{n_pros}-s{seed}"
                        try:
                            path = generate(
                                case, n_dsos, "case33bw", n_pros, seed, Path(tmp) / name
                            )
                        except FlexoptError as err:
                            print(f"{name}: not generated ({err})", file=sys.stderr)
                            continue
                        cases.append((case, path, n_dsos, n_pros, seed))
        for case, path, n_dsos, n_pros, seed in cases:
            for label, method, options in _methods(n_dsos, n_pros):
                cmd = [sys.executable, "-m", "benchmarks.mechanism", "--child", str(path)]
                status, row = run_child([*cmd, method, json.dumps(options)], RUN_LIMIT_S)
                rows.append(
                    {
                        "case": case,
                        "dsos": n_dsos,
                        "prosumers": n_pros,
                        "seed": seed,
                        "method": label,
                        "status": status,
                        **row,
                    }
                )
                print(f"{path.name} {label}: {status}", file=sys.stderr, flush=True)
                write_csv(pd.DataFrame(rows), "mechanism")
    return pd.DataFrame(rows)


def report(df: pd.DataFrame) -> int:
    ok = df[df["status"] == "ok"]
    keys = ["case", "dsos", "prosumers", "seed"]
    central = ok[ok["method"] == "centralized"].set_index(keys)
    print(f"machine: {machine()}; {len(df)} runs, {len(ok)} finished\n")
    print(
        "| method | runs | DSOs with a negative balance | lowest balance (€) | DCP answers outside C7/C8 |"
    )
    print("|---|---:|---:|---:|---:|")
    for method, g in ok.groupby("method", sort=False):
        if method == "centralized":
            continue
        print(
            f"| {method} | {len(g)} | {int(g['negative_balances'].sum())} | "
            f"{g['min_dso_balance_eur'].min():.2f} | {int(g['infeasible_dcps'].sum())} |"
        )
    print(
        "\n| method | residual = centralized (±1 % or 0.01 MW·h) | both relieve all | "
        "social cost vs centralized: median / worst |"
    )
    print("|---|---:|---:|---:|")
    for method, g in ok.groupby("method", sort=False):
        if method == "centralized":
            continue
        g = g.set_index(keys).join(central, rsuffix="_c", how="inner")
        res, res_c = g["overload_after_mwh"], g["overload_after_mwh_c"]
        same = ((res - res_c).abs() <= (0.01 * res_c).clip(lower=0.01)).sum()
        both = g[(res < 1e-6) & (res_c < 1e-6)]
        gap = 100 * (both["social_cost_eur"] / both["social_cost_eur_c"] - 1)
        print(
            f"| {method} | {same}/{len(g)} | {len(both)} | "
            f"{gap.median():+.2f} % / {gap.max():+.2f} % |"
        )
    for other, what in (("wca (no budget)", "DSO budget (C7)"), ("wca (no efficiency)", "(C8)")):
        pay = ok[ok["method"].isin(["wca", other])].pivot_table(
            index=keys, columns="method", values="tso_payment_eur"
        )
        if other not in pay or not len(pay := pay.dropna()):
            continue
        cost = 100 * (pay["wca"] / pay[other] - 1)
        print(
            f"\nWhat {what} costs the TSO under wca: median {cost.median():+.2f} %, "
            f"range {cost.min():+.2f} % … {cost.max():+.2f} % over {len(cost)} instances"
        )
    stopped = df[df["status"] != "ok"]
    for _, r in stopped.iterrows():
        print(
            f"- {r['case']} {r['dsos']}×{r['prosumers']} s{r['seed']} {r['method']}: {r['status']}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(*argv[1:4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small instance")
    ap.add_argument("--report", action="store_true", help="only print results/mechanism.csv")
    args = ap.parse_args(argv)
    df = pd.read_csv(RESULTS / "mechanism.csv") if args.report else sweep(args.quick)
    return report(df)


if __name__ == "__main__":
    sys.exit(main())
