"""Bilevel (none, mlf, wca) vs the centralized TSO–DSO market as the system grows.

    python -m benchmarks.clearing_time [--quick] [--report] [--sizes 100x10,100x50]
        [--methods none,wca,centralized] [--repeat 5]

Instances: ``flexopt generate --transmission case300 --feeder case69 --seed 0`` with
DSOs ∈ {3, 10, 30, 100} and prosumers per DSO (per feeder copy) ∈ {10, 50}; 24 hours, the
congested hours chosen by S2. Methods: the bilevel scheme with ``none``, ``mlf`` and ``wca``
(the shipped defaults: 50 × at most 300, stopped after 50 iterations without progress,
from x⁰ and the mlf point), ``wca-300`` (the previous defaults, 50 × 300 from x⁰: the
reference for the DCP objectives), the centralized market on LinDistFlow (QP, HiGHS) and —
up to 10 DSOs — on the AC branch flow equations (NLP, ripopt). ``wca`` runs twice more for
the speed-up from 1 to 2 cores: in one process with numba pinned to one thread (the 1-core
baseline), and with a two-worker process pool (one numba thread per worker, pool start-up
included and timed apart, ``pool_start_s``: this process runs the worker's warm-up before
forking it; the DSO stages S4, S5–S6 and S8 are timed apart). Every other run leaves numba its
default, all cores, for the feeder sweeps.

Every run is a fresh child process (so its peak RSS is its own) and reports the wall time
of each stage, the *clearing time* (the stages that differ: S3 + S5–S6 + S7 + S8 for the
bilevel scheme; the centralized market + S8 for the baseline — S1, S2 and the feeders' S4
power flows are shared and reported apart), the social cost on the AC evaluator and on the
centralized model (Z1), the TSO's cost, feeder losses, residual overload and the numbers
crossing the TSO–DSO boundary. Ratios (bilevel / centralized) are taken within one size of
one run. ``--repeat N`` runs every setting N times, the rounds interleaved (a shared machine's
slow spells then fall on every method), and reports medians, with each round's ratio to the
QP of its round (median and range). Writes ``results/clearing_time.csv`` after every run (an interrupted sweep keeps
what finished), prints the Markdown table and saves ``results/clearing_time.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import RESULTS, machine, run_child, save_figure, sizes_arg, write_csv

DSOS = (3, 10, 30, 100)
PROSUMERS = (10, 50)
AC_MAX_DSOS = 10
RUN_LIMIT_S = 900.0  # per run; the AC NLP and wca on 100 DSOs × 50 can run long
BILEVEL_STAGES = ("requirement_s", "dso_bids_s", "tso_market_s", "dispatch_s")
CENTRAL_STAGES = ("central_market_s", "dispatch_s")
SHARED_STAGES = ("day_ahead_s", "plf_s", "loss_allocation_s")


#: Options of the method labels that are not a method's name.
VARIANTS = {"wca-300": ("wca", {"wca_stall": 0, "wca_start": "x0"})}
DSO_STAGES = ("loss_allocation_s", "dso_bids_s", "dispatch_s")


def child(instance: str, method: str, central_model: str, workers: int, threads: int) -> None:
    """Run one market in this process and print one JSON line (the parent's row)."""
    import resource

    import flexopt as fx
    import flexopt.run.api  # run_market's modules: their import is not the run's time

    inst = fx.load_instance(instance)
    start = time.perf_counter()
    method, own = VARIANTS.get(method, (method, {}))
    if method == "centralized":
        own = {"central_model": central_model}
    pools = {
        "workers": workers if workers > 1 else None,
        "threads": threads if threads > 1 else None,
    }
    res = fx.run_market(inst, method, seed=0, **pools, **own)
    wall = time.perf_counter() - start
    s, t = res.summary, res.timings
    stages = CENTRAL_STAGES if method == "centralized" else BILEVEL_STAGES
    row = {
        "total_s": wall,
        "shared_s": sum(t.get(k, 0.0) for k in SHARED_STAGES),
        "clearing_s": sum(t.get(k, 0.0) for k in stages),
        **{
            k: t.get(k, 0.0)
            for k in ("pool_start_s", *SHARED_STAGES, *BILEVEL_STAGES, "central_market_s")
        },
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "congested_hours": len(s["congested_hours"]),
        "overload_before_mwh": s["overload_mw_before"],
        "overload_after_mwh": s["overload_mw_after"],
        "accepted_mwh": s["flex_accepted_mwh"],
        "tso_cost_eur": s["tso_cost_eur"],
        "losses_after_mwh": s["dso_losses_mwh_after"],
        "social_cost_eur": s["social_cost_eur"],
        "social_cost_model_eur": s["social_cost_lindistflow_eur"],
        "info_floats": s["information_exchanged_floats"],
        "dso_stages_s": sum(t.get(k, 0.0) for k in DSO_STAGES),
        "dcp_objectives": json.dumps(
            {o.dso_id: o.score.objective for o in getattr(res.outcome, "offers", ())}
        ),
        "dcp_evaluations": sum(
            o.modification.evaluations for o in getattr(res.outcome, "offers", ())
        ),
    }
    print(json.dumps(row))


#: ``--methods`` labels of the runs of a size: (method, central model, workers, numba
#: threads — 0 = numba's default, all cores —, threads of the DSO stages)
RUNS = {
    "none": ("none", "qp", 1, 0, 0),
    "mlf": ("mlf", "qp", 1, 0, 0),
    "wca": ("wca", "qp", 1, 0, 0),
    "wca-300": ("wca-300", "qp", 1, 0, 0),
    "wca-1core": ("wca", "qp", 1, 1, 0),
    "wca-2workers": ("wca", "qp", 2, 0, 0),
    "wca-2threads": ("wca", "qp", 1, 0, 2),
    "centralized": ("centralized", "qp", 1, 0, 0),
    "centralized-ac": ("centralized", "ac", 1, 0, 0),
}


def methods_arg(text: str) -> list[str]:
    labels = text.split(",")
    if unknown := set(labels) - set(RUNS):
        raise argparse.ArgumentTypeError(f"unknown runs {sorted(unknown)}; known: {list(RUNS)}")
    return labels


def runs(quick: bool, sizes: list[tuple[int, int]] | None = None, methods: list[str] | None = None):
    dsos, pros = ((3, 10), (10,)) if quick else (DSOS, PROSUMERS)
    grid = sizes or [(d, p) for p in pros for d in dsos]
    for n_dsos, n_pros in grid:
        labels = methods or [m for m in RUNS if m != "centralized-ac" or n_dsos <= AC_MAX_DSOS]
        yield n_dsos, n_pros, [RUNS[m] for m in labels]


def sweep(
    quick: bool,
    sizes: list[tuple[int, int]] | None = None,
    methods: list[str] | None = None,
    name: str = "clearing_time",
    repeat: int = 1,
) -> pd.DataFrame:
    from flexopt.generate import generate

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_dsos, n_pros, cfg in runs(quick, sizes, methods):
            inst = generate(
                "case300", n_dsos, "case69", n_pros, 0, Path(tmp) / f"d{n_dsos}p{n_pros}"
            )
            # rounds interleaved: every method of a size once per round, so that a slow
            # spell of a shared machine falls on all of them
            for rnd, (method, cm, workers, threads, pool_threads) in (
                (r, c) for r in range(1, repeat + 1) for c in cfg
            ):
                label = "centralized-ac" if cm == "ac" else method
                env = dict(os.environ)
                if threads:
                    env["NUMBA_NUM_THREADS"] = str(threads)
                print(
                    f"clearing_time: {n_dsos} DSOs × {n_pros} prosumers: {label}, "
                    f"{workers} worker(s), {pool_threads or 1} thread(s), "
                    f"numba threads {threads or 'default'} …",
                    file=sys.stderr,
                    flush=True,
                )
                status, row = run_child(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.clearing_time",
                        "--child",
                        str(inst),
                        method,
                        cm,
                        str(workers),
                        str(pool_threads),
                    ],
                    RUN_LIMIT_S,
                    env,
                )
                if status != "ok":
                    print(f"clearing_time: {label}: {status}", file=sys.stderr, flush=True)
                rows.append(
                    {
                        "dsos": n_dsos,
                        "prosumers": n_pros,
                        "method": label,
                        "workers": workers,
                        "numba_threads": threads,
                        "threads": pool_threads,
                        "status": status,
                        "round": rnd,
                    }
                    | row
                )
                write_csv(pd.DataFrame(rows), name)
    return pd.DataFrame(rows)


def table(df: pd.DataFrame) -> str:
    """One row per size × method with the ratios against the centralized QP of that size."""
    if "status" not in df:
        df = df.assign(status="ok")
    if "threads" not in df:  # a table from before the thread runs
        df = df.assign(threads=0)
    df = df.fillna({"threads": 0})
    stopped = df[df["status"] != "ok"]
    df = df[df["status"] == "ok"]
    one = df[(df["workers"] == 1) & (df["numba_threads"] == 0) & (df["threads"] == 0)].copy()
    ref = one[one["method"] == "centralized"].set_index(["dsos", "prosumers"])
    # an interrupted sweep: sizes whose centralized reference did not run are left out
    one = one[pd.MultiIndex.from_frame(one[["dsos", "prosumers"]]).isin(ref.index)]
    wca = df[df["method"] == "wca"]
    lines = [
        "| DSOs | prosumers/DSO | method | clearing (s) | × centralized | shared S1–S2–S4 (s) | "
        "total (s) | peak RSS (MB) | social cost AC (€) | gap | social cost on Z1 (€) | gap | "
        "TSO pays (€) | losses after (MWh) | relieved overload (MW·h) | residual (MW·h) | numbers exchanged |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, r in one.iterrows():
        c = ref.loc[(r["dsos"], r["prosumers"])]
        gap = 100 * (r["social_cost_eur"] / c["social_cost_eur"] - 1)
        gap_m = 100 * (r["social_cost_model_eur"] / c["social_cost_model_eur"] - 1)
        lines.append(
            f"| {r['dsos']} | {r['prosumers']} | {r['method']} | {r['clearing_s']:.2f} | "
            f"{r['clearing_s'] / c['clearing_s']:.2f} | {r['shared_s']:.1f} | {r['total_s']:.1f} | "
            f"{r['peak_rss_mb']:.0f} | {r['social_cost_eur']:,.0f} | {gap:+.2f} % | "
            f"{r['social_cost_model_eur']:,.0f} | {gap_m:+.2f} % | {r['tso_cost_eur']:,.0f} | "
            f"{r['losses_after_mwh']:.2f} | "
            f"{r['overload_before_mwh'] - r['overload_after_mwh']:.2f} | "
            f"{r['overload_after_mwh']:.2f} | {int(r['info_floats']):,} |"
        )
    lines += ["", *objective_table(one)]
    header = [
        "",
        "| DSOs | prosumers/DSO | wca total, 1 core (s) | 1 process, numba on all cores (s) | "
        "speed-up | 2 worker processes (s) | speed-up | 2 threads (s) | speed-up | "
        "DSO stages, 1 core (s) | 2 workers (s) | speed-up | 2 threads (s) | speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += header
    key = ["dsos", "prosumers"]
    runs = {
        "core1": wca[wca["numba_threads"] == 1],
        "numba": wca[(wca["workers"] == 1) & (wca["numba_threads"] == 0) & (wca["threads"] == 0)],
        "procs": wca[wca["workers"] == 2],
        "threads": wca[wca["threads"] == 2],
    }
    total = {k: v.set_index(key)["total_s"] for k, v in runs.items()}
    stages = {k: v.set_index(key).get("dso_stages_s") for k, v in runs.items()}

    def cell(what: dict, run: str, k: tuple, base: float) -> str:
        col = what[run]
        if col is None or k not in col.index:
            return "| — | — "
        return f"| {col[k]:.1f} | {base / col[k]:.2f} "

    for k, t1 in total["core1"].items():
        d1 = stages["core1"][k] if stages["core1"] is not None else float("nan")
        lines.append(
            f"| {k[0]} | {k[1]} | {t1:.1f} "
            + "".join(cell(total, r, k, t1) for r in ("numba", "procs", "threads"))
            + f"| {d1:.1f} "
            + "".join(cell(stages, r, k, d1) for r in ("procs", "threads"))
            + "|"
        )
    if lines[-1] == header[-1]:  # no size ran the three wca settings (--methods)
        del lines[-len(header) :]
    for r in stopped.itertuples():
        lines.append(
            f"\n{r.dsos} DSOs × {r.prosumers} prosumers, {r.method} ({r.workers} worker(s)): "
            f"{r.status}"
        )
    return "\n".join(lines)


#: What identifies one run's setting; the other columns are its figures.
SETTING = ["dsos", "prosumers", "method", "workers", "numba_threads", "threads"]


def medians(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Runs repeated in rounds (``--repeat``) as one row per setting — each timing the median
    over the rounds, every other figure the first round's (the same numbers each round) —
    and the lines of a table of each round's clearing time against the centralized QP of
    that round: median and range of the ratio."""
    if "round" not in df or df["round"].nunique() < 2:
        return df, []
    ok = df[df["status"] == "ok"] if "status" in df else df
    timed = [c for c in df.columns if c.endswith("_s")]
    med = ok.groupby(SETTING, sort=False)[timed].median()
    first = ok.drop_duplicates(SETTING).set_index(SETTING).drop(columns=timed)
    out = first.join(med).reset_index()[[c for c in df.columns if c != "round"]]
    one = ok[(ok["workers"] == 1) & (ok["numba_threads"] == 0)]
    qp = one[one["method"] == "centralized"].set_index(["dsos", "prosumers", "round"])
    lines = [
        "| DSOs | prosumers/DSO | method | rounds | clearing, median (s) | × QP, median | "
        "× QP, range |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for (d, p, m, t), g in one.groupby(["dsos", "prosumers", "method", "threads"], sort=False):
        if m == "centralized":
            continue
        keys = [(d, p, r) for r in g["round"]]
        if not all(k in qp.index for k in keys):
            continue
        ratio = g["clearing_s"].to_numpy() / qp.loc[keys, "clearing_s"].to_numpy()
        label = f"{m}, {int(t)} threads" if t else m
        lines.append(
            f"| {d} | {p} | {label} | {len(g)} | {g['clearing_s'].median():.2f} | "
            f"{np.median(ratio):.2f} | {ratio.min():.2f}–{ratio.max():.2f} |"
        )
    return out, lines


def cores_rounds(df: pd.DataFrame) -> list[str]:
    """Each round's two-worker and two-thread ``wca`` runs against the one-core run of that
    round (``--repeat`` ≥ 2): median and range of the speed-up in total, on the DSO stages,
    and on the DSO stages with the executor's start (``pool_start_s``: a new pool's, in
    which this process runs the worker's warm-up before forking it)."""
    if "round" not in df or df["round"].nunique() < 2 or "pool_start_s" not in df:
        return []
    ok = df[(df["status"] == "ok") & (df["method"] == "wca")].copy()
    ok["dso_start_s"] = ok["dso_stages_s"] + ok["pool_start_s"]
    key = ["dsos", "prosumers", "round"]
    core1 = ok[ok["numba_threads"] == 1].set_index(key)
    lines = [
        "| DSOs | prosumers/DSO | run | rounds | total | DSO stages | DSO stages + start |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for label, run in (("2 workers", ok["workers"] == 2), ("2 threads", ok["threads"] == 2)):
        for (d, p), g in ok[run].groupby(["dsos", "prosumers"], sort=False):
            g = g.set_index(key)
            both = g.index.intersection(core1.index)
            if len(both) < 2:
                continue
            cells = []
            for col in ("total_s", "dso_stages_s", "dso_start_s"):
                r = core1.loc[both, col].to_numpy() / g.loc[both, col].to_numpy()
                cells.append(f"{np.median(r):.2f} ({r.min():.2f}–{r.max():.2f})")
            lines.append(f"| {d} | {p} | {label} | {len(both)} | " + " | ".join(cells) + " |")
    return lines if len(lines) > 2 else []


def objective_table(one: pd.DataFrame) -> list[str]:
    """``wca`` (stall termination, warm starts) against ``wca-300`` (50 × 300 from x⁰) of
    the same size and run: evaluations, DCP objectives per DSO, clearing time against the
    centralized QP."""
    if "dcp_objectives" not in one or not (one["method"] == "wca-300").any():
        return []
    lines = [
        "| DSOs | prosumers/DSO | DSOs off x⁰ | evaluations wca / wca-300 | ratio | "
        "DCP objective gap: max | median | wca better on | clearing wca / wca-300 / "
        "centralized (s) | wca × centralized |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (d, p), g in one.groupby(["dsos", "prosumers"], sort=False):
        by = g.set_index("method")
        if not {"wca", "wca-300", "centralized"} <= set(by.index):
            continue
        new = json.loads(by.loc["wca", "dcp_objectives"])
        ref = json.loads(by.loc["wca-300", "dcp_objectives"])
        moved = [k for k in ref if ref[k] != 1.0 or new[k] != 1.0]  # x⁰ scores 1
        gap = np.array([new[k] / ref[k] - 1 for k in moved]) if moved else np.zeros(1)
        ev, ev0 = by.loc["wca", "dcp_evaluations"], by.loc["wca-300", "dcp_evaluations"]
        c = by.loc[["wca", "wca-300", "centralized"], "clearing_s"].to_numpy()
        lines.append(
            f"| {d} | {p} | {len(moved)} | {int(ev):,} / {int(ev0):,} | "
            f"{ev / ev0:.3f} | {100 * gap.max():+.4f} % | {100 * np.median(gap):+.5f} % | "
            f"{int((gap < 0).sum())} | {c[0]:.2f} / {c[1]:.2f} / {c[2]:.2f} | {c[0] / c[2]:.2f} |"
        )
    return lines


def plot(df: pd.DataFrame, name: str = "clearing_time") -> Path | None:
    """Clearing time against the number of DSOs, one panel per feeder size, of the runs with
    numba's default threads in one process; ``None`` when ``--methods`` chose none of them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = df["status"] == "ok" if "status" in df else np.ones(len(df), bool)
    pool = df["threads"].fillna(0) if "threads" in df else 0
    one = df[ok & (df["workers"] == 1) & (df["numba_threads"] == 0) & (pool == 0)]
    pros = sorted(one["prosumers"].unique())
    if not pros:
        return None
    fig, axes = plt.subplots(
        1, len(pros), figsize=(5.2 * len(pros), 3.8), squeeze=False, constrained_layout=True
    )
    for ax, p in zip(axes[0], pros, strict=True):
        sub = one[one["prosumers"] == p]
        for method, g in sub.groupby("method", sort=False):
            ax.plot(g["dsos"], g["clearing_s"], "o-", label=method)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sorted(sub["dsos"].unique()), [str(v) for v in sorted(sub["dsos"].unique())])
        ax.set_xlabel("DSOs")
        ax.set_ylabel("clearing time (s)")
        ax.set_title(f"{p} prosumers per DSO (case300, case69 feeders)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    out = save_figure(fig, name)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 and 10 DSOs × 10 prosumers only")
    ap.add_argument(
        "--report", action="store_true", help="table and plot from the saved CSV, no runs"
    )
    ap.add_argument("--sizes", type=sizes_arg, help="DSOs x prosumers per DSO, e.g. 100x10,100x50")
    ap.add_argument(
        "--methods", type=methods_arg, help=f"runs per size among {','.join(RUNS)} (default all)"
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of every run, interleaved; the tables give medians over them",
    )
    ap.add_argument(
        "--child", nargs=5, metavar=("INSTANCE", "METHOD", "MODEL", "WORKERS", "THREADS")
    )
    args = ap.parse_args(argv)
    if args.child:
        inst, method, cm, workers, threads = args.child
        child(inst, method, cm, int(workers), int(threads))
        return
    # a chosen subset of sizes or runs keeps the full sweep's table: results/clearing_time_subset
    name = "clearing_time_subset" if args.sizes or args.methods else "clearing_time"
    if args.report:
        df = pd.read_csv(RESULTS / f"{name}.csv")
    else:
        if args.repeat < 1:
            ap.error("--repeat must be ≥ 1")
        df = sweep(args.quick, args.sizes, args.methods, name, args.repeat)
    print(f"machine: {machine()}")
    cores = cores_rounds(df)
    df, rounds = medians(df)
    print(table(df))
    if rounds:
        print("\nEach round against the QP of the same round:\n" + "\n".join(rounds))
    if cores:
        print("\nEach round against the one-core run of the same round:\n" + "\n".join(cores))
    drawn = plot(df, name)
    print(f"plot: {drawn or 'none (no run with numba on its default threads)'}")
    finished = df if "status" not in df else df[df["status"] == "ok"]
    if not np.isfinite(finished["clearing_s"]).all():
        raise SystemExit("non-finite timings")


if __name__ == "__main__":
    main()
