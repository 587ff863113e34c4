"""A seeded mutation fuzzer over the bundled instance (issue 17).

Each case copies ``instances/rts24-3dso`` into a fresh folder, applies one to three
mutations — to files (deleted, emptied, truncated, compressed, replaced by garbage, a folder
or a link out of the instance), columns (dropped, renamed, duplicated, scaled), rows, cells
(extreme, malformed or scaled values), keys and paths of ``instance.toml`` — and runs
``flexopt validate`` or ``flexopt run`` on it in-process. A case passes when the command ends

* with status 0 — for ``run`` with finite, sane results: every table finite (NaN only where
  a column means "not applicable"), the summary strict JSON, energies and overloads
  non-negative, the welfare terms adding up; a ``run`` case in five also writes its result
  (``--out``), which must be marked, hold strict JSON and no infinity, and leave no
  temporary behind — or
* with status 2 and exactly one ``flexopt: error:`` line on stderr,

within its time budget: never a traceback, a hang or a non-finite number. ``run`` cases lean
towards mutations that keep the instance valid (values scaled, ``dt_h`` and other manifest
values changed, other options), so that they reach the solvers.

    .venv/bin/python -m tests.fuzz --validate 2000 --run 300 --seed 0   # a long local run

and in the test suite ``tests/test_fuzz.py`` (``--fuzz-validate N --fuzz-run N``).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import math
import random
import re
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RTS = ROOT / "instances" / "rts24-3dso"
MANIFEST = "instance.toml"
#: Stands for a case's output folder (beside its instance folder) in its options.
OUT = "{out}"
#: Seconds a case may take before it counts as a hang.
BUDGET_S = {"validate": 20.0, "run": 90.0}

Tree = dict[str, Any]  # relative path → bytes | _DIR | ("link", target)
_DIR = "<dir>"


def base_tree() -> Tree:
    return {
        p.relative_to(RTS).as_posix(): p.read_bytes() for p in sorted(RTS.rglob("*")) if p.is_file()
    }


# ------------------------------------------------------------------------------- CSV helpers
def _csv_files(tree: Tree) -> list[str]:
    return [k for k, v in tree.items() if k.endswith(".csv") and isinstance(v, bytes)]


def _split(data: bytes) -> tuple[list[str], int]:
    """Lines of a CSV and the index of its header (first line that is not a comment)."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    head = next((i for i, ln in enumerate(lines) if not ln.lstrip().startswith("#")), 0)
    return lines, head


def _join(lines: list[str]) -> bytes:
    return "\n".join(lines).encode()


def _rows(lines: list[str], head: int) -> list[int]:
    return [i for i in range(head + 1, len(lines)) if lines[i].strip()]


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _fmt(x: float) -> str:
    return f"{x:.10g}"


# ---------------------------------------------------------------------------------- pools
CELLS = [
    "", " ", "nan", "NaN", "inf", "-inf", "1e300", "-1e300", "1e-300", "0", "-0", "-1",
    "1e23", "abc", "1.5", "99999999999", "1e3", "0x10", "١٢", "True", "1" * 400, "3.0",
    "+7", "1,5", "\"12\"", "1e308", "-5e-324", "2e9", "DSO1", "DSO9", "line_10",
]  # fmt: skip
FACTORS = [0.0, -1.0, 0.5, 1.2, 3.0, 10.0, 1e6, 1e-6, 1e300]
MILD = [0.5, 0.8, 0.9, 1.1, 1.2, 1.5, 3.0, 10.0]
TOML_VALUES = [
    '""', '"x"', "0", "-1", "1", "2", "1e300", "-1e300", "1e-300", "nan", "inf", "-inf",
    "true", "[]", "[1, 2]", "{}", "99999999999999999999", "0.25", "24", "8784", "8785",
    '"../transmission/buses.csv"', '"/etc/passwd"', '"transmission"', '"."',
    '"distribution/case33bw.csv"', '"scenario/load_profile.csv"', '"nonexistent.csv"',
    '"\\u0000"', "1979-05-27", '"' + "a" * 3000 + '"', '"transmission/buses.csv/"',
    '"~/x"', '"transmission//buses.csv"', '"./transmission/../transmission/buses.csv"',
]  # fmt: skip
#: Plausible manifest values for ``run`` cases.
TOML_RUN = {
    "dt_h": ["0.1", "0.25", "0.3", "0.5", "2.0"],
    "risk_quantile": ["0.0", "1.0", "1.64", "3.0"],
    "correlation": ["0.0", "0.3", "0.9"],
    "balancing": ['"slack"', '"distributed"'],
    "loss_price_eur_per_mwh": ["0.0", "10.0", "500.0"],
    "loss_coverage": ["0.1", "0.5", "1.0"],
    "feeders": ["1", "5", "100"],
    "vn_kv": ["0.4", "11.0", "33.0"],
    "base_mva": ["10.0", "1000.0"],
}
#: Numeric columns a ``run`` case scales (file → columns).
RUN_COLUMNS = {
    "transmission/generators.csv": ["p_min_mw", "p_max_mw", "c1_eur_per_mwh", "c2_eur_per_mw2h"],
    "transmission/buses.csv": ["load_p_mw", "sigma_pu"],
    "transmission/branches.csv": ["x_pu", "rating_mw"],
    "scenario/load_profile.csv": ["load_pu"],
    "scenario/load_increase.csv": ["increase_pu"],
    "distribution/case33bw.csv": ["r_ohm", "x_ohm", "p_mw", "q_mvar"],
    "distribution/prosumers.csv": ["p_max_mw", "e_max_mwh", "a_eur_per_mw2h", "b_eur_per_mwh"],
    "distribution/baseline.csv": ["p_mw"],
}


#: The edges of the plausibility ranges (instances/README.md, "Bounds"): valid, extreme.
EDGES = {
    "transmission/generators.csv": {
        "p_max_mw": ["1e5"], "c1_eur_per_mwh": ["-1e5", "1e5", "0"], "c2_eur_per_mw2h": ["0", "1e5"],
        "c0_eur_per_h": ["1e7", "-1e7"],
    },
    "transmission/buses.csv": {"vn_kv": ["0.1", "1500"], "load_p_mw": ["0", "1e5"], "sigma_pu": ["0", "1"]},
    "transmission/branches.csv": {
        "x_pu": ["1e-6", "-1e-6", "100", "-100"], "tap": ["0.5", "2"], "rating_mw": ["1e-9", "1e5"],
    },
    "scenario/load_profile.csv": {"load_pu": ["0", "10"]},
    "scenario/load_increase.csv": {"increase_pu": ["-0.999999", "10"]},
    "distribution/case33bw.csv": {
        "r_ohm": ["0", "1000"], "x_ohm": ["0", "1000"], "p_mw": ["-1000", "1000", "0"],
        "q_mvar": ["-1000", "1000"],
    },
    "distribution/prosumers.csv": {
        "p_max_mw": ["1e-9", "100"], "e_max_mwh": ["1e-9", "1000"], "a_eur_per_mw2h": ["0", "1e7"],
        "b_eur_per_mwh": ["0", "1e5"], "efficiency": ["1e-9", "1"], "soc_init_pu": ["0", "1"],
    },
}  # fmt: skip
TOML_EDGES = {
    "dt_h": ["0.01", "24.0"], "base_mva": ["1.0", "10000.0"], "risk_quantile": ["10.0"],
    "correlation": ["0.999999"], "loss_price_eur_per_mwh": ["100000.0"], "feeders": ["10000"],
    "vn_kv": ["0.1", "1500.0"], "loss_coverage": ["1e-9"],
}  # fmt: skip


# ------------------------------------------------------------------------------ mutations
def m_cell_value(tree: Tree, rng: random.Random) -> str:
    f = rng.choice(_csv_files(tree))
    lines, head = _split(tree[f])
    rows = _rows(lines, head)
    if not rows:
        return f"{f}: no row"
    i = rng.choice(rows)
    cells = lines[i].split(",")
    j = rng.randrange(len(cells))
    value = rng.choice(CELLS)
    cells[j] = value
    lines[i] = ",".join(cells)
    tree[f] = _join(lines)
    return f"{f}: line {i + 1} cell {j} = {value[:20]!r}"


def _scale_cells(tree: Tree, f: str, col: str | None, factors: list[float], rng: random.Random, whole: bool) -> str:  # fmt: skip
    lines, head = _split(tree[f])
    header = lines[head].split(",")
    numeric = [j for j, c in enumerate(header) if col is None or c.strip() == col]
    rows = _rows(lines, head)
    if not rows or not numeric:
        return f"{f}: nothing to scale"
    j = rng.choice(numeric)
    k = rng.choice(factors)
    targets = rows if whole else [rng.choice(rows)]
    for i in targets:
        cells = lines[i].split(",")
        if j < len(cells) and _is_number(cells[j]):
            cells[j] = _fmt(float(cells[j]) * k)
            lines[i] = ",".join(cells)
    tree[f] = _join(lines)
    what = "column" if whole else "a cell of"
    return f"{f}: {what} {header[j].strip()} × {k:g}"


def m_cell_scale(tree: Tree, rng: random.Random) -> str:
    return _scale_cells(tree, rng.choice(_csv_files(tree)), None, FACTORS, rng, whole=False)


def m_column_scale(tree: Tree, rng: random.Random) -> str:
    return _scale_cells(tree, rng.choice(_csv_files(tree)), None, FACTORS, rng, whole=True)


def m_column(tree: Tree, rng: random.Random) -> str:
    f = rng.choice(_csv_files(tree))
    lines, head = _split(tree[f])
    table = [ln.split(",") for ln in lines[head:] if ln.strip()]
    width = len(table[0])
    j = rng.randrange(width)
    how = rng.choice(["drop", "rename", "duplicate", "add", "swap", "upper"])
    for r, cells in enumerate(table):
        if j >= len(cells):
            continue
        if how == "drop":
            del cells[j]
        elif how == "rename" and r == 0:
            cells[j] = cells[j] + "_x"
        elif how == "upper" and r == 0:
            cells[j] = cells[j].upper()
        elif how == "duplicate":
            cells.append(cells[j])
        elif how == "add":
            cells.append("extra" if r == 0 else "1")
        elif how == "swap" and r == 0 and width > 1:
            k = (j + 1) % width
            cells[j], cells[k] = cells[k], cells[j]
    lines[head:] = [",".join(c) for c in table]
    tree[f] = _join(lines)
    return f"{f}: column {j} {how}"


def m_rows(tree: Tree, rng: random.Random) -> str:
    f = rng.choice(_csv_files(tree))
    lines, head = _split(tree[f])
    rows = _rows(lines, head)
    how = rng.choice(["drop", "duplicate", "clear", "empty", "shuffle", "short", "long", "header"])
    if how == "drop" and rows:
        del lines[rng.choice(rows)]
    elif how == "duplicate" and rows:
        i = rng.choice(rows)
        lines.insert(i, lines[i])
    elif how == "clear":
        lines = lines[: head + 1]
    elif how == "empty" and rows:
        lines.insert(rng.choice(rows), ",,,")
    elif how == "shuffle":
        body = [lines[i] for i in rows]
        rng.shuffle(body)
        lines = lines[: head + 1] + body
    elif how == "short" and rows:
        i = rng.choice(rows)
        lines[i] = lines[i].rsplit(",", 1)[0]
    elif how == "long" and rows:
        i = rng.choice(rows)
        lines[i] = lines[i] + ",1"
    elif how == "header":
        del lines[head]
    tree[f] = _join(lines)
    return f"{f}: rows {how}"


def m_file(tree: Tree, rng: random.Random) -> str:
    f = rng.choice([k for k, v in tree.items() if isinstance(v, bytes)])
    data = tree[f]
    how = rng.choice(
        ["delete", "empty", "truncate", "garbage", "gzip", "bom", "crlf", "dir", "link_out",
         "link_in", "nul", "latin1", "huge_line", "only_comments"]
    )  # fmt: skip
    if how == "delete":
        del tree[f]
    elif how == "empty":
        tree[f] = b""
    elif how == "truncate":
        tree[f] = data[: rng.randrange(max(len(data), 1))]
    elif how == "garbage":
        tree[f] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))
    elif how == "gzip":
        tree[f] = gzip.compress(data)
    elif how == "bom":
        tree[f] = b"\xef\xbb\xbf" + data
    elif how == "crlf":
        tree[f] = data.replace(b"\n", b"\r\n")
    elif how == "dir":
        tree[f] = _DIR
    elif how == "link_out":
        tree[f] = ("link", "/etc/hostname")
    elif how == "link_in":
        tree[f] = ("link", rng.choice([k for k in tree if k != f]).split("/")[-1])
    elif how == "nul":
        i = rng.randrange(max(len(data), 1))
        tree[f] = data[:i] + b"\x00" + data[i:]
    elif how == "latin1":
        tree[f] = data + "é,ü\n".encode("latin-1")
    elif how == "huge_line":
        tree[f] = data + b"9" * 200_000 + b"\n"
    elif how == "only_comments":
        tree[f] = b"# nothing\n"
    return f"{f}: file {how}"


def _toml_lines(tree: Tree) -> list[str]:
    data = tree.get(MANIFEST)
    return data.decode("utf-8", errors="replace").split("\n") if isinstance(data, bytes) else []


def _key_lines(lines: list[str]) -> list[int]:
    return [i for i, ln in enumerate(lines) if re.match(r"\s*[A-Za-z_]+\s*=", ln)]


def m_toml(tree: Tree, rng: random.Random) -> str:
    lines = _toml_lines(tree)
    keys = _key_lines(lines)
    if not keys:
        return "no manifest"
    how = rng.choice(
        ["value", "value", "value", "drop", "duplicate", "unknown", "truncate", "dso_drop",
         "dso_dup", "section_drop", "path_swap"]
    )  # fmt: skip
    i = rng.choice(keys)
    key = lines[i].split("=")[0].strip()
    if how == "value":
        value = rng.choice(TOML_VALUES)
        lines[i] = f"{key} = {value}"
        what = f"{key} = {value[:30]}"
    elif how == "drop":
        del lines[i]
        what = f"{key} dropped"
    elif how == "duplicate":
        lines.insert(i, lines[i])
        what = f"{key} twice"
    elif how == "unknown":
        lines.insert(i, "unknown_key = 1")
        what = "unknown key"
    elif how == "truncate":
        text = "\n".join(lines)
        lines = text[: rng.randrange(len(text))].split("\n")
        what = "truncated"
    elif how in ("dso_drop", "dso_dup"):
        starts = [j for j, ln in enumerate(lines) if ln.strip() == "[[distribution.dso]]"]
        j = rng.choice(starts)
        block = lines[j : j + 6]
        if how == "dso_drop":
            del lines[j : j + 6]
        else:
            lines.extend(block)
        what = how
    elif how == "section_drop":
        heads = [j for j, ln in enumerate(lines) if ln.startswith("[") and "dso" not in ln]
        j = rng.choice(heads)
        lines[j] = "[unknown_section]"
        what = "section renamed"
    else:
        paths = [j for j in keys if '"' in lines[j] and "/" in lines[j]]
        j, k = rng.choice(paths), rng.choice(paths)
        key = lines[j].split("=")[0].strip()
        lines[j] = f"{key} = {lines[k].split('=', 1)[1].strip()}"
        what = f"{key} → another table"
    tree[MANIFEST] = "\n".join(lines).encode()
    return f"{MANIFEST}: {what}"


# ----------------------------------------------------------------- mutations of run cases
def m_run_scale(tree: Tree, rng: random.Random) -> str:
    f = rng.choice(list(RUN_COLUMNS))
    return _scale_cells(tree, f, rng.choice(RUN_COLUMNS[f]), MILD, rng, whole=rng.random() < 0.7)


def m_run_toml(tree: Tree, rng: random.Random) -> str:
    lines = _toml_lines(tree)
    keys = [i for i in _key_lines(lines) if lines[i].split("=")[0].strip() in TOML_RUN]
    i = rng.choice(keys)
    key = lines[i].split("=")[0].strip()
    value = rng.choice(TOML_RUN[key])
    lines[i] = f"{key} = {value}"
    tree[MANIFEST] = "\n".join(lines).encode()
    return f"{MANIFEST}: {key} = {value}"


def m_run_edge(tree: Tree, rng: random.Random) -> str:
    """A value at an edge of its plausibility range: a cell, a whole column or a key."""
    if rng.random() < 0.25:
        lines = _toml_lines(tree)
        keys = [i for i in _key_lines(lines) if lines[i].split("=")[0].strip() in TOML_EDGES]
        i = rng.choice(keys)
        key = lines[i].split("=")[0].strip()
        value = rng.choice(TOML_EDGES[key])
        lines[i] = f"{key} = {value}"
        tree[MANIFEST] = "\n".join(lines).encode()
        return f"{MANIFEST}: {key} = {value} (edge)"
    f = rng.choice(list(EDGES))
    col = rng.choice(list(EDGES[f]))
    value = rng.choice(EDGES[f][col])
    lines, head = _split(tree[f])
    j = [c.strip() for c in lines[head].split(",")].index(col)
    rows = _rows(lines, head)
    whole = rng.random() < 0.5
    for i in rows if whole else [rng.choice(rows)]:
        cells = lines[i].split(",")
        cells[j] = value
        lines[i] = ",".join(cells)
    tree[f] = _join(lines)
    return f"{f}: {'column' if whole else 'a cell of'} {col} = {value} (edge)"


def run_options(rng: random.Random) -> list[str]:
    """Options of a ``run`` case (cheap ones: few samples and iterations)."""
    method = rng.choices(["none", "mlf", "wca", "centralized", "exact"], [8, 6, 4, 4, 1])[0]
    argv = ["--method", method, "--seed", str(rng.randrange(1000))]
    if method == "wca":
        argv += ["--wca-iter", str(rng.choice([3, 10]))]
        argv += ["--pareto"] if rng.random() < 0.3 else []  # MOWCA
    if method == "exact":  # a MILP (or with SCIP a MINLP) per DSO: the time limit bounds it
        argv += ["--time-limit", "1"]
        argv += ["--solver", "scip"] if rng.random() < 0.3 else []
    if method == "centralized" and rng.random() < 0.3:
        argv += ["--central-model", "ac"]  # the AC NLP (ripopt)
    plf = rng.choices(["analytic", "pem", "monte_carlo"], [5, 2, 1])[0]
    argv += ["--plf", plf] + (
        ["--samples", str(rng.choice([50, 500]))] if plf == "monte_carlo" else []
    )
    argv += ["--loss-allocation", rng.choice(["branch_current", "marginal", "pro_rata"])]
    if method != "centralized":
        argv += ["--blocks", str(rng.choice([1, 3, 10]))]
        argv += ["--participation", rng.choice(["all", "screened"])]
        argv += ["--tso-pricing", rng.choice(["interface", "last_block"])]
    return argv


VALIDATE_OPS: list[tuple[Callable[[Tree, random.Random], str], int]] = [
    (m_cell_value, 6),
    (m_cell_scale, 3),
    (m_column_scale, 3),
    (m_column, 3),
    (m_rows, 3),
    (m_file, 3),
    (m_toml, 6),
]
RUN_OPS: list[tuple[Callable[[Tree, random.Random], str], int]] = [
    (m_run_scale, 6),
    (m_run_toml, 3),
    (m_run_edge, 4),
    (m_cell_value, 1),
    (m_toml, 1),
]


# ----------------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One fuzz case: its command, mutations and extra options."""

    index: int
    command: str
    mutations: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    case: Case
    status: int | None
    seconds: float
    failure: str | None = None  # why the case fails (a traceback, a hang, a bad result)
    message: str = ""  # the error line of an exit 2


def make_case(index: int, command: str, seed: int, tree: Tree) -> tuple[Case, Tree]:
    rng = random.Random(f"{seed}:{command}:{index}")
    case = Case(index, command)
    tree = dict(tree)
    ops = VALIDATE_OPS if command == "validate" else RUN_OPS
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        op = rng.choices([o for o, _ in ops], [w for _, w in ops])[0]
        try:
            case.mutations.append(op(tree, rng))
        except (IndexError, ValueError, KeyError) as err:  # a mutation that does not apply
            case.mutations.append(f"{op.__name__}: skipped ({type(err).__name__})")
    if command == "run":
        case.options = run_options(rng)
        if rng.random() < 0.2:  # write the result too: figures, strict JSON, the swap
            case.options += ["--out", OUT]
    return case, tree


def materialize(tree: Tree, folder: Path) -> None:
    folder.mkdir(parents=True)
    for rel, value in tree.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if value == _DIR:
            p.mkdir(exist_ok=True)
        elif isinstance(value, tuple):
            p.symlink_to(value[1])
        else:
            p.write_bytes(value)


class CaseTimeout(BaseException):
    """A case over its time budget: a hang."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _capture_result(box: list[Any]) -> Iterator[None]:
    """Keep the MarketResult the CLI's run returns (to check its tables and summary)."""
    import flexopt.run.api as api

    original = api.run

    def run(*args: Any, **kwargs: Any) -> Any:
        res = original(*args, **kwargs)
        box.append(res)
        return res

    api.run = run
    try:
        yield
    finally:
        api.run = original


def check_result(res: Any) -> str | None:
    """Why a run's result is not finite and sane, or ``None``."""
    from flexopt.run.finite import NAN_ALLOWED

    for name, df in res.tables.items():
        for col in df.columns:
            s = df[col]
            if s.dtype.kind not in "fiu":
                continue
            a = s.to_numpy(dtype=float)
            bad = np.isinf(a) if (name, col) in NAN_ALLOWED else ~np.isfinite(a)
            if bad.any():
                return f"non-finite value in table {name}.{col}"
    try:
        json.dumps(res.summary, allow_nan=False)
    except ValueError:
        return "summary is not strict JSON"
    s = res.summary
    for key in ("overload_mw_before", "overload_mw_after", "flex_accepted_mwh",
                "dso_losses_mwh_before", "dso_losses_mwh_after", "congested_line_hours_before",
                "congested_line_hours_after"):  # fmt: skip
        if s[key] < -1e-6:
            return f"summary {key} = {s[key]} < 0"
    w = s["welfare"]
    parts = w["dso_balance_eur"] + w["prosumer_surplus_eur"] + w["social_cost_eur"]
    if not math.isclose(w["tso_payment_eur"], parts, rel_tol=1e-6, abs_tol=1e-3):
        return f"welfare terms do not add up: {w}"
    return None


def run_case(case: Case, folder: Path) -> Outcome:
    """Run one materialized case in-process and judge it."""
    from flexopt.cli import main

    out_dir = _out_dir(folder)
    argv = [case.command, str(folder), *(str(out_dir) if o == OUT else o for o in case.options)]
    if case.command == "run":
        argv += ["--stage-time-limit", "30"]
    out, err, box = io.StringIO(), io.StringIO(), []
    start = time.perf_counter()
    status: int | None = None
    failure = None
    try:
        with (
            _deadline(BUDGET_S[case.command]),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            _capture_result(box),
        ):
            try:
                status = main(argv)
            except SystemExit as stop:  # argparse
                status = int(stop.code or 0)
    except CaseTimeout:
        failure = f"hang: over {BUDGET_S[case.command]:g} s"
    except BaseException:  # a traceback is what the fuzzer looks for
        failure = "traceback:\n" + traceback.format_exc()
    seconds = time.perf_counter() - start
    if failure is None:
        failure = _judge(case, status, out.getvalue(), err.getvalue(), box)
    if failure is None and OUT in case.options:
        failure = _judge_folder(out_dir, status)
    errors = [ln for ln in err.getvalue().splitlines() if ln.startswith("flexopt: error:")]
    return Outcome(case, status, seconds, failure, errors[-1] if errors else "")


def _judge(case: Case, status: int | None, out: str, err: str, box: list[Any]) -> str | None:
    if "Traceback" in err:
        return f"traceback on stderr:\n{err}"
    errors = [ln for ln in err.splitlines() if ln.startswith("flexopt: error:")]
    progress = ("flexopt: ", "plf monte carlo: ")  # stage lines, the sampling counter
    other = [
        ln
        for ln in err.replace("\r", "\n").splitlines()
        if ln.strip() and (not ln.startswith(progress) or ln.startswith("flexopt: error:"))
    ]
    if status == 2:
        if len(errors) != 1 or len(other) != 1:
            return f"exit 2 without exactly one error line:\n{err}"
        return None
    if status != 0:
        return f"exit {status}:\n{err}"
    if other:
        return f"exit 0 with unexpected stderr:\n{err}"
    if case.command == "validate":
        return None if ": valid — " in out else f"validate printed {out!r}"
    if not box:
        return "run returned 0 without a result"
    return check_result(box[0])


def _out_dir(folder: Path) -> Path:
    return folder.with_name(folder.name + "-out")


def _strict(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


def _judge_folder(out_dir: Path, status: int | None) -> str | None:
    """A written result: complete, marked, its summary strict JSON, its tables finite."""
    from flexopt.atomic import MARKER

    if status != 0:
        return None if not out_dir.exists() else f"exit {status} left {out_dir.name}"
    try:
        json.loads((out_dir / "summary.json").read_text(), parse_constant=_strict)
        if not (out_dir / MARKER).is_file():
            return f"{out_dir.name} has no {MARKER}"
        for csv in out_dir.glob("*.csv"):
            text = csv.read_text().lower()
            if re.search(r"(^|,)[+-]?inf(inity)?(,|$)", text, re.MULTILINE):
                return f"{csv.name} holds an infinity"
    except (OSError, ValueError) as err:
        return f"written result: {err}"
    stray = [p.name for p in out_dir.parent.iterdir() if ".flexopt-" in p.name]
    return f"temporaries left: {stray}" if stray else None


def fuzz(command: str, cases: int, seed: int, workdir: Path, first: int = 0) -> list[Outcome]:
    """``cases`` cases of ``command`` (indices ``first…``), each in its own folder."""
    tree = base_tree()
    outcomes = []
    for index in range(first, first + cases):
        case, mutated = make_case(index, command, seed, tree)
        folder = workdir / f"{command}-{index}"
        materialize(mutated, folder)
        try:
            outcomes.append(run_case(case, folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(_out_dir(folder), ignore_errors=True)
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    """A table of what the cases ended in, and every failure with its mutations."""
    lines = []
    for command in ("validate", "run"):
        mine = [o for o in outcomes if o.case.command == command]
        if not mine:
            continue
        ok = sum(o.status == 0 and o.failure is None for o in mine)
        refused = sum(o.status == 2 and o.failure is None for o in mine)
        failed = [o for o in mine if o.failure is not None]
        wall = sum(o.seconds for o in mine)
        slowest = max(mine, key=lambda o: o.seconds)
        lines.append(
            f"{command}: {len(mine)} cases — {ok} exit 0, {refused} exit 2 (one line), "
            f"{len(failed)} failures; {wall:.1f} s in all, slowest {slowest.seconds:.2f} s "
            f"(#{slowest.case.index} {slowest.case.mutations} {' '.join(slowest.case.options)})"
        )
    for o in outcomes:
        if o.failure is not None:
            lines.append(
                f"  case {o.case.command} #{o.case.index} {o.case.mutations} "
                f"{' '.join(o.case.options)}: {o.failure}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import tempfile
    import warnings

    ap = argparse.ArgumentParser(description="flexopt's mutation fuzzer (tests/fuzz.py)")
    ap.add_argument("--validate", type=int, default=300)
    ap.add_argument("--run", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    # as under pytest (pyproject): a RuntimeWarning raised in flexopt is an error
    warnings.filterwarnings("error", category=RuntimeWarning, module=r"flexopt\..*")
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = fuzz("validate", args.validate, args.seed, Path(tmp))
        outcomes += fuzz("run", args.run, args.seed, Path(tmp))
    print(report(outcomes))
    return 1 if any(o.failure for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
