"""Microgrids as the third level (``models/microgrid.md``): ``rts24-3dso-mg`` — one lateral of
every DSO's feeder run as a microgrid — against ``rts24-3dso``, the same electrical system with
every prosumer bidding to its DSO, for each coefficient method.

    python -m benchmarks.microgrids            # ~1 min

Prints one row per method and instance: distribution losses before the market (feeders and
microgrids), TSO payment, relief, social cost, the DSOs' and microgrids' balances, and the
time of the run relative to the flat instance's in the same process.
"""

from __future__ import annotations

import time
from pathlib import Path

import flexopt as fx

ROOT = Path(__file__).resolve().parents[1] / "instances"
METHODS = ("none", "mlf", "wca", "centralized")


def main() -> None:
    flat, grid = (fx.load_instance(ROOT / n) for n in ("rts24-3dso", "rts24-3dso-mg"))
    fx.run_market(flat, "none")  # compile the sweep before timing anything
    print(
        "| method | instance | losses before (MWh/day) | TSO pays (€) | accepted (MWh) | "
        "relief from losses (MWh) | social cost (€) | DSO balance (€) | microgrid balance (€) "
        "| time × flat |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for method in METHODS:
        times = {}
        for name, inst in (("rts24-3dso", flat), ("rts24-3dso-mg", grid)):
            t0 = time.perf_counter()
            s = fx.run_market(inst, method, seed=0).summary
            times[name] = time.perf_counter() - t0
            w = s["welfare"]
            print(
                f"| {method} | {name} | {s['dso_losses_mwh_before']:.2f} | "
                f"{s['tso_cost_eur']:,.2f} | {s['flex_accepted_mwh']:.3f} | "
                f"{s['relief_losses_mwh']:.3f} | {s['social_cost_eur']:,.2f} | "
                f"{w['dso_balance_eur']:,.2f} | {w.get('microgrid_balance_eur', 0.0):,.2f} | "
                f"{times[name] / times['rts24-3dso']:.2f} |"
            )


if __name__ == "__main__":
    main()
