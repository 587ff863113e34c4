"""Synthetic instances with congestion by construction (``flexopt generate``).

    flexopt generate --transmission CASE|FILE --dsos N --feeder FEEDER[,FEEDER…]
                     --prosumers M --seed S --out DIR

The recipe of ``instances/rts24-3dso`` (``instances/README.md``) applied to any transmission
net (a pandapower case name, a pandapower JSON file or a MATPOWER case file): the IEEE RTS
hourly load shape; a +8 % unforecast load in hours 13–15 on every load bus, or on a seeded
30 % (then 50 %) of them when a uniform surge shifts no flow enough; the operating limit of
the two lines that surge stresses most set 2 % above their own day-long base-case maximum,
so the day-ahead point is secure and the surge congests them; N DSOs at the load buses where
a load reduction relieves those lines most, DSO k on the k-th feeder of the list (cycling),
each with ``round(0.6 · bus load / feeder peak)`` (at least one, at most 10 000) copies of its
feeder and M battery prosumers per copy (50–150 kW; 5–15 kW on feeders below 1 kV).
Feeders: ``case33bw``, ``case69``, a pandapower network name, ``simbench:<code>`` or a
pandapower JSON file, read as pandapower models them (:func:`flexopt.grid.sources.feeder_table`
states what the instance's feeder table approximates; the manifest lists it). Deterministic
for a seed; written atomically and validated by the loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flexopt.atomic import OutputRefusedError, atomic_directory, check_output_dir
from flexopt.errors import FlexoptError, OutputError
from flexopt.instance.prosumers import make_prosumers
from flexopt.instance.writer import GENERATED_HEADER, INSTANCE_KIND, feeder_file_name, write_table
from flexopt.instance.writer import manifest_text as _manifest

__all__ = [
    "FEEDER_CASES",
    "FEEDER_HELP",
    "INSTANCE_KIND",
    "MAX_PROSUMERS",
    "TRANSMISSION_CASES",
    "TRANSMISSION_HELP",
    "generate",
    "manifest_text",
    "write_table",
]

#: The transmission cases of the benchmarks (any pandapower case name or file is accepted).
TRANSMISSION_CASES = ("case30", "case118", "case300")
#: ``flexopt generate --help`` of the two network options.
TRANSMISSION_HELP = (
    "pandapower case name (case30, case118, case300, …), pandapower JSON file or MATPOWER "
    "case file (.mat; .m needs matpowercaseframes)"
)
FEEDER_HELP = (
    "case33bw (default), case69, a pandapower network name, simbench:<code> or a pandapower "
    "JSON file; a comma-separated list cycles over the DSOs (DSO k gets the k-th, cycling)"
)
#: Prosumers per feeder copy, at most.
MAX_PROSUMERS = 1_000
#: Feeder copies per DSO, at most (the loader's bound).
MAX_COPIES = 10_000
#: Microgrids per DSO, at most.
MAX_MICROGRIDS = 10
#: The bundled feeders (pandapower names, ``simbench:<code>`` and JSON files are accepted too).
FEEDER_CASES = ("case33bw", "case69")
SURGE_PU, SURGE_HOURS, SURGE_SHARE, DERATE_MARGIN, FEEDER_SHARE = 0.08, (13, 14, 15), 0.3, 1.02, 0.6


def _is_int(x: object) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


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
    header: tuple[str, ...] = GENERATED_HEADER,
) -> str:
    """``instance.toml`` of a generated instance whose DSOs share one feeder file
    (``dsos``: ``id``, ``bus``, ``feeders``); see :func:`flexopt.instance.writer.manifest_text`."""
    entries = [{**d, "feeder": feeder_file, "vn_kv": vn_kv} for d in dsos]
    return _manifest(
        name=name,
        description=description,
        slack_bus=slack,
        base_mva=base_mva,
        dsos=entries,
        loss_price=loss_price,
        header=header,
    )


def generate(
    transmission: str,
    dsos: int,
    feeder: str,
    prosumers: int,
    seed: int,
    out: str | Path,
    *,
    replace: bool = False,
    microgrids: int = 0,
) -> Path:
    """Write a synthetic instance (see the module docstring) and return its directory.

    ``microgrids`` laterals of every DSO's feeder are run as microgrids
    (:func:`flexopt.instance.laterals.lateral_microgrids`, ``models/microgrid.md``).

    ``out`` must not exist, be empty, or — with ``replace`` — hold an instance flexopt
    wrote (its marker says so); anything else is an :class:`~flexopt.errors.OutputError`,
    raised before any work.
    """
    try:
        check_output_dir(out, INSTANCE_KIND, replace=replace)
        return _generate(transmission, dsos, feeder, prosumers, seed, out, replace, microgrids)
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
    microgrids: int = 0,
) -> Path:
    if not (_is_int(microgrids) and 0 <= microgrids <= MAX_MICROGRIDS):
        raise FlexoptError(f"--microgrids must be in 0..{MAX_MICROGRIDS}, got {microgrids!r}")
    if not (_is_int(dsos) and _is_int(prosumers) and dsos >= 1 and 1 <= prosumers <= MAX_PROSUMERS):
        raise FlexoptError(
            f"--dsos must be at least 1 and --prosumers in 1..{MAX_PROSUMERS}, "
            f"got {dsos!r} and {prosumers!r}"
        )
    if not (_is_int(seed) and seed >= 0):
        raise FlexoptError(f"--seed must be a non-negative integer, got {seed!r}")
    kinds = [f.strip() for f in str(feeder).split(",")]
    if not all(kinds):
        raise FlexoptError(f"--feeder: an empty feeder name in {feeder!r}")
    from flexopt.grid.instance_builder import RTS_HOURLY_PCT, battery_range
    from flexopt.grid.sources import feeder_net, transmission_net, transmission_tables_of
    from flexopt.instance import load_instance
    from flexopt.run.tso import day_ahead_flows

    rng = np.random.default_rng([seed, dsos, prosumers])
    net = transmission_net(str(transmission))
    tt = transmission_tables_of(net)
    is_file = Path(str(transmission)).suffix.lower() in (".json", ".mat", ".m")
    tname = Path(str(transmission)).name if is_file else str(transmission)
    bus_tab, br_tab, gens = tt.buses, tt.branches, tt.generators
    load = pd.Series(bus_tab["load_p_mw"].to_numpy(), index=pd.Index(bus_tab["bus"], name="bus"))
    load_buses = load.index[load > 0]
    if dsos > len(load_buses):
        raise FlexoptError(f"--dsos {dsos}: {tname} has only {len(load_buses)} load buses")
    used = list(dict.fromkeys(kinds[k % len(kinds)] for k in range(dsos)))
    feeders = {src: _feeder(src, feeder_net) for src in used}
    taken: set[str] = set()
    files = {src: feeder_file_name(feeders[src][0], taken) for src in used}
    out = Path(out).resolve()
    name = out.name
    with atomic_directory(out, INSTANCE_KIND, replace=replace) as work:
        write_table(
            bus_tab,
            work / "transmission/buses.csv",
            f"pandapower {tname}; load_p_mw = peak",
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
        for src in used:
            table = feeders[src][1]
            write_table(
                table.branches,
                work / files[src],
                f"{src}; p/q = peak load at to_bus" + "".join(f"; {n}" for n in table.notes),
            )
        first = feeders[used[0]][2]
        # provisional distribution (one DSO, one prosumer) so the loader can run the day-ahead market
        tmp_pros, tmp_base = make_prosumers(
            first,
            1,
            seed=np.random.default_rng(0),
            dso_id="tmp",
            p_max_mw=battery_range(feeders[used[0]][1].vn_kv),
        )
        write_table(tmp_pros, work / "distribution/prosumers.csv")
        write_table(tmp_base, work / "distribution/baseline.csv")
        tmp_entry = {"id": "tmp", "bus": int(load_buses[0]), "feeders": 1}
        (work / "instance.toml").write_text(
            _manifest(
                name=name,
                description="",
                slack_bus=tt.slack_bus,
                base_mva=tt.base_mva,
                dsos=[{**tmp_entry, "feeder": files[used[0]], "vn_kv": feeders[used[0]][1].vn_kv}],
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
                f"{tname}: no load-surge region raises two line flows 3 % above their daily "
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
        source_of = [kinds[k % len(kinds)] for k in range(dsos)]
        drawn = [
            make_prosumers(
                feeders[src][2],
                prosumers,
                seed=rng,
                dso_id=i,
                p_max_mw=battery_range(feeders[src][1].vn_kv),
            )
            for i, src in zip(dso_ids, source_of, strict=True)
        ]
        pros = pd.concat([p for p, _ in drawn], ignore_index=True)
        base = pd.concat([b for _, b in drawn], ignore_index=True)
        entries = []
        for i, b, src in zip(dso_ids, ranked, source_of, strict=True):
            peak = feeders[src][3]
            entries.append(
                {
                    "id": i,
                    "bus": int(b),
                    "feeder": files[src],
                    "vn_kv": feeders[src][1].vn_kv,
                    "feeders": min(MAX_COPIES, max(1, round(FEEDER_SHARE * load.loc[b] / peak))),
                }
            )
        write_table(pros, work / "distribution/prosumers.csv")
        write_table(base, work / "distribution/baseline.csv")
        on = " and ".join(kinds) if len(kinds) > 1 else kinds[0]
        desc = (
            f"{tname}, {dsos} DSOs on {on} feeders, {prosumers} prosumers per feeder, seed {seed}; "
            f"derated {', '.join(model.branch[derated])}"
        )
        notes: list[str] = []
        if is_file or len(kinds) > 1 or any(k not in FEEDER_CASES for k in kinds):
            notes = _choices(tname, is_file, kinds, used, feeders, files, entries)
        (work / "instance.toml").write_text(
            _manifest(
                name=name,
                description=desc,
                slack_bus=tt.slack_bus,
                base_mva=tt.base_mva,
                dsos=entries,
                header=(*GENERATED_HEADER, *notes),
            )
        )
        inst = load_instance(work)  # what is written must load
        if microgrids:
            _with_microgrids(inst, microgrids, work, (*GENERATED_HEADER, *notes))
    return out


def _with_microgrids(inst: Any, per_dso: int, work: Path, header: tuple[str, ...]) -> None:
    """Rewrite the instance in ``work`` with ``per_dso`` laterals per DSO as microgrids."""
    import shutil
    from dataclasses import replace as _replace

    from flexopt.instance import load_instance
    from flexopt.instance.laterals import lateral_microgrids

    grid = lateral_microgrids(inst, per_dso)
    count = sum(len(d.microgrids) for d in grid.dsos)
    grid = _replace(grid, description=f"{inst.description}; {count} microgrids on laterals")
    shutil.rmtree(work / "distribution")
    grid.write_files(work, (*header, f"# microgrids: {per_dso} lateral(s) per DSO's feeder"))
    load_instance(work)


def _feeder(src: str, feeder_net: Any) -> tuple[str, Any, Any, float]:
    """A feeder source: its file-safe name, table, :class:`~flexopt.grid.Feeder` and peak."""
    from flexopt.grid.build import feeder_from_data
    from flexopt.grid.sources import feeder_source_name, feeder_table
    from flexopt.instance import FeederData

    table = feeder_table(feeder_net(src, "--feeder"))
    fname = feeder_source_name(src)
    peak = float(table.branches["p_mw"].sum())
    if not peak > 0:
        raise FlexoptError(f"--feeder: {src!r} carries no load (peak {peak:g} MW)")
    data = FeederData(fname, table.branches, table.vn_kv, table.root)
    return fname, table, feeder_from_data(data), peak


def _choices(
    tname: str,
    is_file: bool,
    kinds: list[str],
    used: list[str],
    feeders: dict[str, Any],
    files: dict[str, str],
    entries: list[dict[str, Any]],
) -> list[str]:
    """Manifest comment lines stating the modelling choices beyond the bundled cases."""
    from flexopt.grid.instance_builder import battery_range

    lines = ["#", "# Modelling choices of this instance (flexopt generate):"]
    if is_file:
        how = (
            "pandapower.from_json"
            if tname.lower().endswith(".json")
            else "pandapower.converter.from_mpc (f_hz = 50)"
        )
        lines.append(
            f"# - transmission: {tname} read by {how}; ratings as pandapower converts them"
        )
    if len(kinds) > 1:
        lines.append(
            f"# - feeders cycle over the DSOs: DSO k gets feeder (k - 1) mod {len(kinds)} of {', '.join(kinds)}"
        )
    for src in used:
        _, table, _, peak = feeders[src]
        who = ", ".join(e["id"] for e in entries if e["feeder"] == files[src])
        lines.append(
            f"# - {src} ({files[src]}, {table.vn_kv:g} kV, peak {peak:.4g} MW) for {who}: "
            + (", ".join(table.notes) if table.notes else "as pandapower models it")
        )
        lo, hi = battery_range(table.vn_kv)
        lines.append(f"#   batteries {1e3 * lo:g}–{1e3 * hi:g} kW ({table.vn_kv:g} kV feeder)")
    capped = [e["id"] for e in entries if e["feeders"] == MAX_COPIES]
    if capped:
        lines.append(
            f"# - feeder copies capped at {MAX_COPIES} for {', '.join(capped)} (cover less than 60 % of the bus load)"
        )
    return lines
