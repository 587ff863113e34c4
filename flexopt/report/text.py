"""The short summary ``flexopt run`` prints: headline figures of a run's summary."""

from __future__ import annotations

from typing import Any

__all__ = ["summary_text"]


def _mwh(value: float | None) -> str:
    """An energy for the summary; ``—`` where the method has no such stage."""
    return "—" if value is None else f"{value:.3f}"


def summary_text(s: dict[str, Any], total_s: float) -> str:
    """The lines ``flexopt run`` prints for the summary ``s`` of a run that took ``total_s``."""
    lines: list[str] = []
    lines.append(
        f"instance             {s['instance']}  (method {s['method']}, PLF {s['plf_method']}, seed {s['seed']})"
    )
    lines.append(
        f"congestion before    {s['congested_line_hours_before']} line-hours on "
        f"{', '.join(s['congested_lines_before']) or 'no line'}, hours {s['congested_hours']}; "
        f"overload {s['overload_mw_before']:.2f} MW·h"
    )
    lines.append(
        f"congestion after     {s['congested_line_hours_after']} line-hours; overload {s['overload_mw_after']:.2f} MW·h"
    )
    req = s["flex_requested_mwh"]
    lines.append(
        f"flexibility          requested {_mwh(req)} MWh, accepted {s['flex_accepted_mwh']:.3f} MWh; "
        f"{s['relief_losses_mwh']:.3f} MWh more relief from lower feeder losses"
    )
    lines.append(f"TSO cost             {s['tso_cost_eur']:,.2f} EUR")
    lines.append(
        f"DSO losses           {s['dso_losses_mwh_before']:.3f} → {s['dso_losses_mwh_after']:.3f} MWh/day"
    )
    lines.append(f"DSO balance          {s['dso_balance_eur']:,.2f} EUR")
    lines.append(
        f"social cost          {s['social_cost_eur']:,.2f} EUR (offer cost + AC feeder losses, "
        "day: compare this one across methods)"
    )
    lines.append(
        f"                     {s['social_cost_lindistflow_eur']:,.2f} EUR on the centralized "
        "model's LinDistFlow objective (congested hours; a check, docs/tables.md)"
    )
    w = s["welfare"]
    lines.append(
        f"welfare              TSO pays {w['tso_payment_eur']:,.2f} = DSO balance "
        f"{w['dso_balance_eur']:,.2f} + prosumer surplus {w['prosumer_surplus_eur']:,.2f} + "
        f"social cost {w['social_cost_eur']:,.2f} EUR (loss value {w['loss_value_eur']:+,.2f}: "
        "the change from the losses before)"
    )
    lines.append(
        f"information exchanged {s['information_exchanged_floats']:,} numbers across TSO–DSO"
    )
    for dso_id, d in s["dso"].items():
        screened = f" ({d['screened']} screened)" if "screened" in d else ""
        lines.append(
            f"  {dso_id:<18} {d['participants']} participants{screened}, "
            f"requested {_mwh(d['requested_mwh'])} MWh, "
            f"accepted {d['accepted_mwh']:.3f} MWh, losses {d['losses_mwh_after'] - d['losses_mwh_before']:+.3f} MWh, "
            f"balance {d['balance_eur']:,.2f} EUR"
        )
        if "dcp" in d:
            c = d["dcp"]
            lines.append(
                f"  {'':<18} DSO problem: objective {c['objective']:.4f}, f_loss {c['f_loss_mwh']:.4f} MWh, "
                f"f_price {c['f_price_eur']:,.2f} EUR, budget {c['budget_eur']:,.2f} EUR"
                f"{'' if c['feasible'] else ' (infeasible)'}"
            )
    lines.append(f"time                 {total_s:.2f} s")
    return "\n".join(lines)
