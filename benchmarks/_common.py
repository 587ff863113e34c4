"""Helpers shared by the benchmark scripts (never imported by flexopt or its tests)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from flexopt.atomic import atomic_file

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RESULTS = Path(__file__).resolve().parent / "results"


def best_time(
    fn: Callable[[], object], min_seconds: float = 0.5, repeats: int = 3
) -> tuple[float, int]:
    """Best-of-``repeats`` mean seconds per call, each repeat running ≥ ``min_seconds``."""
    fn()  # warm-up (imports, caches, JIT)
    best = float("inf")
    calls = 0
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / n)
        calls += n
    return best, calls


def machine() -> str:
    """The machine as the tables record it: architecture, CPU model and its widest SIMD (the
    compiled kernels' speed, and a ratio's, depend on it), cores, Python."""
    return (
        f"{platform.processor() or platform.machine()}, {_cpu()}{os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def _cpu() -> str:
    """``"<model>, <SIMD>, "`` from ``/proc/cpuinfo`` (Linux), else nothing."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    fields: dict[str, str] = {}
    for line in info.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    model = fields.get("model name", "")
    flags = set(fields.get("flags", "").split())
    simd = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), "")
    return "".join(f"{x}, " for x in (model, simd.upper()) if x)


def write_csv(df: pd.DataFrame, name: str) -> Path:
    """Write ``results/<name>.csv`` atomically."""
    out = RESULTS / f"{name}.csv"
    with atomic_file(out) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return out


def save_figure(fig: Figure, name: str) -> Path:
    """Save a matplotlib figure as ``results/<name>.png`` atomically."""
    out = RESULTS / f"{name}.png"
    with atomic_file(out) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return out


def run_child(
    cmd: list[str], limit_s: float, env: dict[str, str] | None = None
) -> tuple[str, dict]:
    """One run in its own process group, stopped (with any solver it started) after
    ``limit_s``; returns its status and its row (the last stdout line, JSON; empty unless it
    finished)."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"stopped at the {limit_s:.0f} s limit", {}
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["no message"])[-1]
        return f"failed: {last}", {}
    return "ok", json.loads(out.strip().splitlines()[-1])


def sweep_main(
    argv: list[str] | None,
    name: str,
    doc: str,
    child: Callable[..., None],
    sweep: Callable[[bool], pd.DataFrame],
    report: Callable[[pd.DataFrame], int],
    quick_help: str,
) -> int:
    """The command line of a sweep run as child processes: ``--child ARGS…`` runs one case in
    this process (``child(*ARGS)``), ``--report`` prints ``results/<name>.csv``, otherwise
    the sweep (``--quick``: its short form), then the report."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(*argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--report", action="store_true", help=f"only print results/{name}.csv")
    args = ap.parse_args(argv)
    df = pd.read_csv(RESULTS / f"{name}.csv") if args.report else sweep(args.quick)
    return report(df)


def sizes_arg(text: str) -> list[tuple[int, int]]:
    """``"100x10,100x50"`` → ``[(100, 10), (100, 50)]`` (DSOs × prosumers per DSO)."""
    try:
        return [(int(d), int(p)) for d, p in (s.split("x") for s in text.split(","))]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"sizes must read like 100x10,100x50, got {text!r}"
        ) from None
