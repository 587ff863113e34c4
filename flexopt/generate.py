"""Synthetic instances with congestion by construction (``flexopt generate``).

    flexopt generate --transmission case30|case118|case300 --dsos N --feeder case33bw|case69
                     --prosumers M --seed S --out DIR

The recipe of ``instances/rts24-3dso`` (``instances/README.md``) applied to any pandapower
transmission case: the IEEE RTS hourly load shape; a +8 % unforecast load in hours 13–15 on every load bus, or on a
seeded 30 % (then 50 %) of them when a uniform surge shifts no flow enough; the operating limit of the two lines that surge stresses most set 2 % above their
own day-long base-case maximum, so the day-ahead point is secure and the surge congests them;
N DSOs at the load buses where a load reduction relieves those lines most, each with
``round(0.6 · bus load / feeder peak)`` (at least one) copies of its feeder and M battery
prosumers per copy. Deterministic for a seed; written atomically and validated by the loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flexopt.atomic import OutputRefusedError, atomic_directory, check_output_dir
from flexopt.errors import FlexoptError, OutputError

__all__ = [
    "FEEDER_CASES",
    "INSTANCE_KIND",
    "MAX_PROSUMERS",
    "TRANSMISSION_CASES",
    "feeder_table",
    "generate",
    "make_prosumers",
    "manifest_text",
    "write_table",
]

TRANSMISSION_CASES = ("case30", "case118", "case300")
#: The kind of an instance folder (its marker, ``flexopt.atomic.MARKER``).
INSTANCE_KIND = "instance"
#: Prosumers per feeder copy, at most.
MAX_PROSUMERS = 1_000
FEEDER_CASES = ("case33bw", "case69")
#: IEEE RTS 1979, Table 4: hourly load, winter weekday, % of the daily peak.
# fmt: off
RTS_HOURLY_PCT = (67, 63, 60, 59, 59, 60, 74, 86, 95, 96, 96, 95, 95, 95, 93, 94, 99, 100, 100, 96, 91, 83, 73, 63)
# fmt: on
SURGE_PU, SURGE_HOURS, SURGE_SHARE, DERATE_MARGIN, FEEDER_SHARE = 0.08, (13, 14, 15), 0.3, 1.02, 0.6


def _is_int(x: object) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def write_table(df: pd.DataFrame, path: Path, header_comment: str | None = None) -> None:
    """One instance CSV, with an optional ``#`` comment line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        if header_comment:
            fh.write(f"# {header_comment}\n")
        df.to_csv(fh, index=False, float_format="%.10g")


def make_prosumers(
    fa: dict[str, Any], dso_ids: list[str], draw: np.random.Generator, per_feeder: int = 12
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Battery prosumers of one representative feeder per DSO and their baseline schedule.

    ``per_feeder`` distinct loaded buses drawn at random (beyond the number of loaded buses,
    the extra prosumers share buses drawn with replacement); ``p_max`` 50–150 kW, 4 h of energy,
    half charged, one-way efficiency 0.92–0.97; offers ``b`` 40–80 €/MWh with ``a`` making the
    marginal cost at full power 20–60 % above ``b``; baseline: charge at 25 % in hours 1–5,
    discharge at 20 % in hours 19–20 (``instances/README.md``).
    """
    loaded = [
        int(b)
        for b, p in zip(
            fa["to_bus"], fa["p_mw"].reindex(fa["to_bus"], fill_value=0).to_numpy(), strict=True
        )
        if p > 0
    ]
    rows, base_rows = [], []
    for dso_id in dso_ids:
        # distinct loaded buses first; beyond that number, several prosumers share a bus
        extra = max(per_feeder - len(loaded), 0)
        chosen = draw.choice(loaded, size=per_feeder - extra, replace=False).tolist()
        chosen = sorted(chosen + (draw.choice(loaded, size=extra).tolist() if extra else []))
        for k, bus in enumerate(chosen):
            pid = f"{dso_id}-P{k + 1:02d}"
            p_max = round(float(draw.uniform(0.05, 0.15)), 4)
            b = round(float(draw.uniform(40.0, 80.0)), 2)
            a = round(
                float(draw.uniform(0.10, 0.30)) * b / p_max, 2
            )  # marginal cost +20…60 % at p_max
            eta = round(float(draw.uniform(0.92, 0.97)), 3)
            rows.append((pid, dso_id, bus, p_max, round(4.0 * p_max, 4), 0.5, eta, a, b))
            for hour in range(1, 25):  # self-consumption: charge at night, shave the evening peak
                p = -0.25 * p_max if 1 <= hour <= 5 else (0.2 * p_max if 19 <= hour <= 20 else 0.0)
                base_rows.append((hour, pid, round(p, 6)))
    cols = [
        "prosumer_id",
        "dso_id",
        "bus",
        "p_max_mw",
        "e_max_mwh",
        "soc_init_pu",
        "efficiency",
        "a_eur_per_mw2h",
        "b_eur_per_mwh",
    ]
    return pd.DataFrame(rows, columns=cols), pd.DataFrame(
        base_rows, columns=["hour", "prosumer_id", "p_mw"]
    )


def feeder_table(name: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """Feeder arrays and the instance feeder table (branches with the peak load at ``to_bus``)."""
    from flexopt.grid.cases import case33bw, case69
    from flexopt.grid.pandapower_io import feeder_arrays

    fa = feeder_arrays(case33bw() if name == "case33bw" else case69())
    p = fa["p_mw"].reindex(fa["to_bus"], fill_value=0.0).to_numpy()
    q = fa["q_mvar"].reindex(fa["to_bus"], fill_value=0.0).to_numpy()
    tab = pd.DataFrame(
        {
            "from_bus": fa["from_bus"],
            "to_bus": fa["to_bus"],
            "r_ohm": fa["r_ohm"],
            "x_ohm": fa["x_ohm"],
            "p_mw": p,
            "q_mvar": q,
        }
    )
    return fa, tab


def manifest_text(
    name: str,
    description: str,
    slack: int,
    base_mva: float,
    dsos: list[dict[str, Any]],
    feeder_file: str,
    vn_kv: float,
    *,
    loss_price: float = 50.0,
    header: tuple[str, ...] = (
        "# flexopt instance manifest (format: instances/README.md), written by `flexopt generate`.",
    ),
) -> str:
    """``instance.toml`` of a generated instance (``dsos``: ``id``, ``bus``, ``feeders``)."""
    lines = [
        *header,
        "[instance]",
        f'name = "{name}"',
        f'description = "{description}"',
        "hours = 24",
        "dt_h = 1.0",
        "",
        "[transmission]",
        'buses = "transmission/buses.csv"',
        'branches = "transmission/branches.csv"',
        'generators = "transmission/generators.csv"',
        f"slack_bus = {slack}",
        f"base_mva = {base_mva}",
        "",
        "[scenario]",
        'load_profile = "scenario/load_profile.csv"',
        'load_increase = "scenario/load_increase.csv"',
        'balancing = "distributed"',
        "risk_quantile = 0.0",
        "correlation = 0.0",
        "",
        "[market]",
        f"loss_price_eur_per_mwh = {loss_price}",
        "loss_coverage = 0.8",
        "",
        "[distribution]",
        'prosumers = "distribution/prosumers.csv"',
        'baseline = "distribution/baseline.csv"',
    ]
    for d in dsos:
        lines += [
            "",
            "[[distribution.dso]]",
            f'id = "{d["id"]}"',
            f"bus = {d['bus']}",
            f'feeder = "{feeder_file}"',
            f"vn_kv = {vn_kv}",
            f"feeders = {d['feeders']}",
        ]
    return "\n".join(lines) + "\n"


def generate(
    transmission: str,
    dsos: int,
    feeder: str,
    prosumers: int,
    seed: int,
    out: str | Path,
    *,
    replace: bool = False,
) -> Path:
    """Write a synthetic instance (see the module docstring) and return its directory.

    ``out`` must not exist, be empty, or — with ``replace`` — hold an instance flexopt
    wrote (its marker says so); anything else is an :class:`~flexopt.errors.OutputError`,
    raised before any work.
    """
    try:
        check_output_dir(out, INSTANCE_KIND, replace=replace)
        return _generate(transmission, dsos, feeder, prosumers, seed, out, replace)
    except OutputRefusedError as err:
        raise OutputError(str(err)) from None


def _generate(
    transmission: str,
    dsos: int,
    feeder: str,
    prosumers: int,
    seed: int,
    out: str | Path,
    replace: bool,
) -> Path:
    if transmission not in TRANSMISSION_CASES:
        raise FlexoptError(
            f"--transmission must be one of {TRANSMISSION_CASES}, got {transmission!r}"
        )
    if feeder not in FEEDER_CASES:
        raise FlexoptError(f"--feeder must be one of {FEEDER_CASES}, got {feeder!r}")
    if not (_is_int(dsos) and _is_int(prosumers) and dsos >= 1 and 1 <= prosumers <= MAX_PROSUMERS):
        raise FlexoptError(
            f"--dsos must be at least 1 and --prosumers in 1..{MAX_PROSUMERS}, "
            f"got {dsos!r} and {prosumers!r}"
        )
    if not (_is_int(seed) and seed >= 0):
        raise FlexoptError(f"--seed must be a non-negative integer, got {seed!r}")
    from flexopt.grid.cases import transmission_case
    from flexopt.grid.pandapower_io import generator_table, transmission_tables
    from flexopt.instance import load_instance
    from flexopt.run.tso import day_ahead_flows

    rng = np.random.default_rng([seed, dsos, prosumers])
    net = transmission_case(transmission)
    buses, branches, slack, base_mva = transmission_tables(net)
    gens = generator_table(net)
    gens.insert(
        0, "gen", [f"{e}_{i}" for e, i in zip(gens.element, gens.element_index, strict=True)]
    )
    gens = gens.drop(columns=["element", "element_index"])
    load = net.load.groupby("bus").p_mw.sum().reindex(buses.index, fill_value=0.0).clip(lower=0.0)
    load_buses = load.index[load > 0]
    if dsos > len(load_buses):
        raise FlexoptError(f"--dsos {dsos}: {transmission} has only {len(load_buses)} load buses")
    bus_tab = pd.DataFrame(
        {
            "bus": buses.index,
            "name": buses["name"].astype(str).to_numpy(),
            "vn_kv": buses["vn_kv"].to_numpy(),
            "load_p_mw": load.to_numpy(),
            "sigma_pu": np.where(load.to_numpy() > 0, 0.03, 0.0),
        }
    )
    br_tab = branches.reset_index()
    fa, feeder_tab = feeder_table(feeder)
    feeder_peak = float(feeder_tab["p_mw"].sum())
    out = Path(out).resolve()
    name = out.name
    with atomic_directory(out, INSTANCE_KIND, replace=replace) as work:
        write_table(
            bus_tab, work / "transmission/buses.csv", f"pandapower {transmission}; load_p_mw = peak"
        )
        write_table(gens, work / "transmission/generators.csv")
        write_table(
            pd.DataFrame({"hour": np.arange(1, 25), "load_pu": np.array(RTS_HOURLY_PCT) / 100}),
            work / "scenario/load_profile.csv",
            "IEEE RTS 1979 Table 4",
        )
        write_table(
            pd.DataFrame(
                [(h, int(b), SURGE_PU) for h in SURGE_HOURS for b in load_buses],
                columns=["hour", "bus", "increase_pu"],
            ),
            work / "scenario/load_increase.csv",
        )
        write_table(br_tab, work / "transmission/branches.csv")
        write_table(
            feeder_tab, work / f"distribution/{feeder}.csv", f"{feeder}; p/q = peak load at to_bus"
        )
        # provisional distribution (one DSO, one prosumer) so the loader can run the day-ahead market
        tmp_pros, tmp_base = make_prosumers(fa, ["tmp"], np.random.default_rng(0), per_feeder=1)
        write_table(tmp_pros, work / "distribution/prosumers.csv")
        write_table(tmp_base, work / "distribution/baseline.csv")
        (work / "instance.toml").write_text(
            manifest_text(
                name,
                "",
                slack,
                base_mva,
                [{"id": "tmp", "bus": int(load_buses[0]), "feeders": 1}],
                f"distribution/{feeder}.csv",
                fa["vn_kv"],
            )
        )
        flows = day_ahead_flows(load_instance(work))
        model, lf, f0, h = flows.network, flows.load_mw, flows.flow_mw, flows.sensitivity
        base_max = np.abs(f0).max(axis=0)
        real = base_max >= 0.05 * base_max.max()  # lines that carry a real share of the flow
        hours_on = np.isin(np.arange(1, 25), SURGE_HOURS)[:, None]
        # surge regions in order: every load bus, then seeded 30 % and 50 % subsets; the first
        # that raises two real lines ≥ 3 % above their day-long base maximum is kept
        regions = [load_buses.to_numpy()]
        for share in (SURGE_SHARE, 0.5):
            k = min(len(load_buses), max(2, round(share * len(load_buses))))
            regions.append(np.sort(rng.choice(load_buses.to_numpy(), size=k, replace=False)))
        for surge_buses in regions:
            delta = np.zeros_like(lf)
            delta[:, model.bus_pos(surge_buses)] = SURGE_PU
            f1 = f0 - np.einsum("tlb,tb->tl", h, lf * delta * hours_on)
            stress = np.where(real, np.abs(f1).max(axis=0) / np.maximum(base_max, 1e-9), 0.0)
            # ranked on values rounded to 1e-9: lines (and buses below) with equal ratios
            # tie and go to the lower index, instead of being ordered by a solver's last digits
            derated = np.argsort(-np.round(stress, 9), kind="stable")[:2]
            if stress[derated].min() >= DERATE_MARGIN + 0.01:
                break
        else:
            raise FlexoptError(
                f"{transmission}: no load-surge region raises two line flows 3 % above their daily "
                f"maximum — no congestion by construction (try another --seed)"
            )
        write_table(
            pd.DataFrame(
                [(h_, int(b), SURGE_PU) for h_ in SURGE_HOURS for b in surge_buses],
                columns=["hour", "bus", "increase_pu"],
            ),
            work / "scenario/load_increase.csv",
        )
        br_tab.loc[derated, "rating_mw"] = np.round(DERATE_MARGIN * base_max[derated], 3)
        write_table(
            br_tab,
            work / "transmission/branches.csv",
            "rating_mw = thermal rating, except the two derated lines (flexopt generate)",
        )
        t_mid = SURGE_HOURS[1] - 1  # hours are 1..24
        sign = np.sign(f1[t_mid, derated])
        relief = -(h[t_mid][derated] * sign[:, None]).sum(axis=0)  # per bus, both lines
        pos = model.bus_pos(load_buses.to_numpy())
        ranked = load_buses.to_numpy()[np.argsort(-np.round(relief[pos], 9), kind="stable")][:dsos]
        dso_ids = [f"DSO{k + 1}" for k in range(dsos)]
        pros, base = make_prosumers(fa, dso_ids, rng, per_feeder=prosumers)
        entries = [
            {
                "id": i,
                "bus": int(b),
                "feeders": max(1, round(FEEDER_SHARE * load.loc[b] / feeder_peak)),
            }
            for i, b in zip(dso_ids, ranked, strict=True)
        ]
        write_table(pros, work / "distribution/prosumers.csv")
        write_table(base, work / "distribution/baseline.csv")
        desc = (
            f"{transmission}, {dsos} DSOs on {feeder} feeders, {prosumers} prosumers per feeder, seed {seed}; "
            f"derated {', '.join(model.branch[derated])}"
        )
        (work / "instance.toml").write_text(
            manifest_text(
                name, desc, slack, base_mva, entries, f"distribution/{feeder}.csv", fa["vn_kv"]
            )
        )
        load_instance(work)  # what is written must load
    return out
