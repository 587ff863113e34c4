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
    mg = (
        f" + microgrid balance {w['microgrid_balance_eur']:,.2f}"
        if "microgrid_balance_eur" in w
        else ""
    )
    lines.append(
        f"welfare              TSO pays {w['tso_payment_eur']:,.2f} = DSO balance "
        f"{w['dso_balance_eur']:,.2f}{mg} + prosumer surplus {w['prosumer_surplus_eur']:,.2f} + "
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
    for mg_id, g in s.get("microgrids", {}).items():  # the third level (models/microgrid.md)
        c = g["dcp"]
        lines.append(
            f"  {mg_id:<18} microgrid of {g['dso_id']}, {g['members']} members: problem "
            f"objective {c['objective']:.4f}"
            + (
                f"; per feeder copy delivered {g['delivered_mwh']:.3f} MWh, paid "
                f"{g['dso_payment_eur']:,.2f} EUR, balance {g['balance_eur']:,.2f} EUR, "
                f"internal losses -{g['internal_loss_saved_mwh']:.4f} MWh"
                if "delivered_mwh" in g
                else ""
            )
        )
    if "intraday" in s:
        lines.extend(_intraday_lines(s["intraday"]))
    if "competition" in s:  # rival DSOs (models/competition.md)
        c = s["competition"]
        ratio = "—" if c["tso_payment_ratio_pu"] is None else f"{c['tso_payment_ratio_pu']:.3f}×"
        lines.append(
            f"rival DSOs           {c['status']} after {c['rounds']} rounds; TSO pays "
            f"{c['tso_payment_eur']:,.2f} EUR ({ratio} price taking), Lerner index up to "
            f"{c['lerner_max_pu'] or 0:.2f}, {c['pivotal_dso_hours']} pivotal DSO-hours"
        )
    lines.append(f"time                 {total_s:.2f} s")
    return "\n".join(lines)


def _intraday_lines(i: dict[str, Any]) -> list[str]:
    """The intraday market's expected figures (``models/intraday.md`` J11)."""
    done = f"{i['scenarios_done']} of {i['scenarios']}" if i["interrupted"] else i["scenarios"]
    out = [
        f"intraday             {done} realizations; {i['dayahead_line_hours']} line-hours bought "
        f"day ahead, {i['watched_line_hours']} wait (hours {i['monitored_hours']}); "
        f"penalty {i['overload_penalty_eur_per_mwh']:,.0f} EUR/MWh of overload left"
    ]
    for key, label in (("da_only", "day-ahead only"), ("da_id", "with intraday")):
        c = i[key]
        out.append(
            f"  {label:<18} expected cost {c['expected_cost_eur']:,.2f} EUR (payments "
            f"{c['expected_payment_eur']:,.2f}), overload {c['expected_overload_mwh']:.3f} MW·h, "
            f"P(overload) {c['overload_prob_pu']:.2f}"
        )
    out.append(f"  value of intraday  {i['value_of_intraday_eur']:,.2f} EUR")
    return out
