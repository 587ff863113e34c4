"""``fx.compare`` and ``flexopt compare``: every combination of methods, varied options and
seeds on one instance, resumable, with one tidy table and the comparison figures.

Layout of the output folder ``DIR``::

    runs/<name>/     one result folder per run (MarketResult.save, atomic); a complete one
                     is skipped on a rerun
    runs.csv         a row per run: method, seed, the varied options, headline figures
    dso.csv          a row per run and DSO
    compare*.png     fx.plot.compare per set of the varied options (first seed)
    tradeoff.png     fx.plot.tradeoff across a dcp_weight sweep, one line per method

A run's name is its method, its varied options and its seed (``wca-dcp_weight=0.5-seed=0``);
the options every run shares are not in the name, so a folder found with other options (or
another instance) is an error unless ``force`` replaces it.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from flexopt.atomic import atomic_file, open_output_dir, write_text_atomic
from flexopt.errors import FlexoptError, OptionError
from flexopt.executors import executor
from flexopt.instance import Instance, load_instance
from flexopt.progress import Progress, progress_log
from flexopt.report.compare_tables import dso_table, runs_table
from flexopt.run.flat import check_option, flat_options
from flexopt.run.options import MarketOptions, market_methods
from flexopt.run.provenance import instance_sha256, options_record

__all__ = ["COMPARE_KIND", "CompareResult", "RunSpec", "compare", "plan"]

#: The kind of a comparison folder (its marker, ``flexopt.atomic.MARKER``).
COMPARE_KIND = "compare"
_SAFE = re.compile(r"[^A-Za-z0-9_.:=+-]")


@dataclass(frozen=True, eq=False)
class RunSpec:
    """One run of a comparison.

    Attributes
    ----------
    name : str
        Its folder under ``runs/``.
    method : str
    seed : int
    varied : dict
        The varied options that apply to the method, with this run's values.
    options : MarketOptions
        Everything the run is given (the shared options that apply to the method, too).
    """

    name: str
    method: str
    seed: int
    varied: dict[str, Any]
    options: MarketOptions


@dataclass(frozen=True, eq=False)
class CompareResult:
    """What :func:`compare` wrote.

    Attributes
    ----------
    out : pathlib.Path
        The comparison folder.
    runs : DataFrame
        ``runs.csv``: a row per run.
    dso : DataFrame
        ``dso.csv``: a row per run and DSO.
    summaries : list of dict
        Each run's ``summary.json``, in the order of ``runs``.
    ran, skipped : list of str
        The runs computed now, and those found complete and skipped.
    figures : list of pathlib.Path
    """

    out: Path
    runs: pd.DataFrame
    dso: pd.DataFrame
    summaries: list[dict[str, Any]]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    def __repr__(self) -> str:
        """One line: the folder, the runs and the figures (the tables are attributes)."""
        return (
            f"CompareResult({str(self.out)!r}: {len(self.runs)} runs ({len(self.ran)} ran, "
            f"{len(self.skipped)} skipped), {len(self.figures)} "
            f"figure{'' if len(self.figures) == 1 else 's'})"
        )


def _applies(name: str, method: str) -> bool:
    owners = flat_options()[name].owners
    return not owners or method in owners


def _text(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ":".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def plan(
    methods: Sequence[str],
    varied: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
    common: Mapping[str, Any],
) -> list[RunSpec]:
    """The runs of a comparison, every option checked before any work.

    Each method runs once per seed and per combination of the varied options that apply to
    it (``dcp_weight`` does not apply to ``centralized``: it runs once per seed). A shared
    option is given to the methods it applies to.

    Raises
    ------
    OptionError
        For an unknown method or option, a bad value, an option that applies to none of the
        methods, or one that is both shared and varied.
    """
    if not methods:
        raise OptionError("compare: no methods given")
    for m in methods:
        if m not in market_methods():
            raise OptionError(f"compare: unknown method {m!r} (methods: {market_methods()})")
    if len(set(methods)) != len(methods):
        raise OptionError(f"compare: a method is listed twice in {list(methods)}")
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise OptionError(f"compare: seeds must be integers ≥ 0, got {list(seeds)}")
    catalogue = flat_options()
    checked: dict[str, list[Any]] = {}
    for name, values in varied.items():
        if name not in catalogue:
            raise OptionError(f"compare: unknown option {name!r} to vary")
        if name in common:
            raise OptionError(f"compare: option {name!r} is both shared and varied")
        if not values:
            raise OptionError(f"compare: no values given for {name!r}")
        checked[name] = [check_option(name, v) for v in values]
    shared = {k: check_option(k, v) for k, v in common.items()}
    for name in [*checked, *shared]:
        if not any(_applies(name, m) for m in methods):
            owners = ", ".join(catalogue[name].owners)
            raise OptionError(
                f"compare: option {name!r} applies to none of the methods (it is an option "
                f"of {owners})"
            )
    specs: list[RunSpec] = []
    for method in methods:
        mine = {k: v for k, v in checked.items() if _applies(k, method)}
        given = {k: v for k, v in shared.items() if _applies(k, method)}
        for seed in seeds:
            for combo in itertools.product(*mine.values()):
                chosen = dict(zip(mine, combo, strict=True))
                parts = [method, *(f"{k}={_text(v)}" for k, v in chosen.items()), f"seed={seed}"]
                name = _SAFE.sub("_", "-".join(parts))
                opt = MarketOptions.from_kwargs(method=method, seed=seed, **given, **chosen)
                specs.append(RunSpec(name, method, seed, chosen, opt))
    return specs


@dataclass(frozen=True)
class _Job:
    """One run for an executor (picklable): the instance, the options, where to save."""

    instance: Instance
    options: MarketOptions
    folder: Path
    replace: bool
    figures: bool


def _run_job(job: _Job) -> float:
    """Run and save one run; returns its clearing time (seconds)."""
    from flexopt.run.api import run

    res = run(job.instance, job.options)
    res.save(job.folder, figures=job.figures, replace=job.replace)
    return sum(res.timings.values())


def _finished(folder: Path, spec: RunSpec, inst: Instance, digest: str) -> dict[str, Any] | None:
    """The summary of a complete run found in ``folder`` (``None``: there is none); a run with
    other options or of another instance is an error."""
    path = folder / "summary.json"
    if not path.is_file():
        return None
    try:
        summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FlexoptError(f"{path}: cannot read it ({err})") from None
    want = json.loads(json.dumps(options_record(inst, spec.options)))
    got = summary.get("options", {})
    if got != want:
        diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        raise FlexoptError(
            f"{folder}: holds a run with other options ({', '.join(diff[:4])}); pass "
            "--force (force=True) to replace it, or choose another output folder"
        )
    if summary.get("instance_sha256") != digest:
        raise FlexoptError(
            f"{folder}: holds a run of another instance (instance_sha256 differs); pass "
            "--force (force=True) to replace it, or choose another output folder"
        )
    return summary


def _clearing_time(folder: Path) -> float:
    try:
        timings = json.loads((folder / "timings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return float("nan")
    return float(sum(timings.values()))


def compare(
    instance: Instance | str | Path,
    methods: Sequence[str] = ("none", "mlf", "wca", "exact", "centralized"),
    *,
    set: Mapping[str, Sequence[Any]] | None = None,
    seeds: Sequence[int] = (0,),
    out: str | Path,
    options: Mapping[str, Any] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    run_figures: bool = False,
    progress: bool = True,
) -> CompareResult:
    """Run every combination of ``methods``, the varied options ``set`` and ``seeds`` on one
    instance, and write the tables and figures of the comparison into ``out``.

    Parameters
    ----------
    instance : Instance, str or pathlib.Path
        An instance, or its folder.
    methods : sequence of str
        Registered coefficient methods and ``centralized``.
    set : mapping of str to sequence, optional
        Options to vary, flat names to values, e.g. ``{"dcp_weight": [0, 0.5, 1]}``; a run per
        combination (for each method, of those that apply to it).
    seeds : sequence of int
    out : str or pathlib.Path
        The comparison folder: new, empty, or a previous comparison (resumed: a run whose
        folder is complete is skipped).
    options : mapping, optional
        Options shared by every run they apply to (``wca_iter=20``).
    workers, scheduler : optional
        Run the runs on ``workers`` processes (this one and ``workers − 1`` started), or on
        a Dask cluster.
    force : bool
        Replace a run folder holding a run with other options or of another instance
        (otherwise an error, before any work).
    run_figures : bool
        Draw each run's own figures into its folder (slower).
    progress : bool
        A line per finished run (logger ``flexopt.progress``), a bar on a terminal.

    Returns
    -------
    CompareResult

    Raises
    ------
    FlexoptError
        For a bad option (:class:`~flexopt.errors.OptionError`), a refused output folder
        (:class:`~flexopt.errors.OutputError`) or a run that fails.
    """
    from flexopt.run.compare_figures import draw_figures

    varied = dict(set or {})
    specs = plan(methods, varied, seeds, dict(options or {}))
    MarketOptions(workers=workers, scheduler=scheduler)  # checked before any work
    inst = instance if isinstance(instance, Instance) else load_instance(instance)
    root = open_output_dir(out, COMPARE_KIND, protect=(inst.path,))
    digest = instance_sha256(inst)
    found: dict[str, dict[str, Any]] = {}
    jobs: list[tuple[RunSpec, _Job]] = []
    for spec in specs:
        folder = root / "runs" / spec.name
        try:
            summary = _finished(folder, spec, inst, digest)
        except FlexoptError:
            if not force:
                raise
            summary = None  # another run's folder: replaced
        if summary is not None:
            found[spec.name] = summary
        else:
            replace = (folder / "summary.json").is_file()
            jobs.append((spec, _Job(inst, spec.options, folder, replace, run_figures)))
    for name in found:
        progress_log.debug(f"compare: {name} done before, skipped")
    if progress and found:
        progress_log.info(f"compare: {len(found)} of {len(specs)} runs done before, skipped")
    ran: list[str] = []
    with (
        executor(workers, scheduler) as ex,
        Progress("compare", len(jobs), enabled=progress, lines=True) as bar,
    ):
        for k, seconds in ex.as_completed(_run_job, [job for _, job in jobs]):
            spec = jobs[k][0]
            ran.append(spec.name)
            bar.update(note=f"{spec.name} ({seconds:.1f} s)")
    rows: list[dict[str, Any]] = []
    for spec in specs:
        folder = root / "runs" / spec.name
        summary = found.get(spec.name) or json.loads((folder / "summary.json").read_text())
        rows.append(
            {
                "name": spec.name,
                "method": spec.method,
                "seed": spec.seed,
                "varied": spec.varied,
                "summary": summary,
                "clearing_time_s": _clearing_time(folder),
            }
        )
    names = list(varied)
    runs, dso = runs_table(rows, names), dso_table(rows, names)
    for table, file in ((runs, "runs.csv"), (dso, "dso.csv")):
        with atomic_file(root / file) as tmp:
            table.to_csv(tmp, index=False, float_format="%.10g")
    figures = draw_figures(rows, names, root, seeds[0])
    write_text_atomic(root / "README.txt", _readme(inst, methods, varied, seeds))
    return CompareResult(
        out=root,
        runs=runs,
        dso=dso,
        summaries=[r["summary"] for r in rows],
        ran=ran,
        skipped=list(found),
        figures=figures,
    )


def _readme(
    inst: Instance,
    methods: Sequence[str],
    varied: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
) -> str:
    lines = [
        f"flexopt comparison on {inst.name} ({inst.path})",
        f"methods: {', '.join(methods)}",
        *(f"varied: {k} = {', '.join(_text(v) for v in vs)}" for k, vs in varied.items()),
        f"seeds: {', '.join(str(s) for s in seeds)}",
        "runs.csv: a row per run; dso.csv: a row per run and DSO; runs/<name>: each run's "
        "result folder (summary.json records its options, versions and instance hash)",
    ]
    return "\n".join(lines) + "\n"
