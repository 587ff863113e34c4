"""What a result was computed from, recorded in ``summary.json``: every option (resolved), a
content hash of the instance, and the versions of flexopt, Python and the key packages — so
that two result folders can be told apart."""

from __future__ import annotations

import hashlib
import platform
import tempfile
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

from flexopt.instance import Instance
from flexopt.instance.schema import MarketData
from flexopt.run.options import MARKET_OVERRIDES, MarketOptions

__all__ = [
    "KEY_PACKAGES",
    "instance_sha256",
    "options_record",
    "provenance",
    "versions",
    "with_market_overrides",
]

#: The packages whose version can change a result (solvers, numerics, the feeder models).
KEY_PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "pyomo",
    "highspy",
    "pandapower",
    "numba",
    "matplotlib",
    "pyscipopt",
    "pyomo-ripopt",
    "mealpy",
)
_MANIFEST = "instance.toml"


def versions() -> dict[str, str | None]:
    """flexopt's, Python's and :data:`KEY_PACKAGES`' versions (``None``: not installed;
    flexopt's is its installed distribution's, as ``flexopt.__version__``)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("flexopt", *KEY_PACKAGES):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return {"flexopt": out.pop("flexopt"), **out}


def _hash_files(root: Path) -> str:
    """SHA-256 over the instance's files in sorted order: each file's path relative to
    ``root`` (POSIX form), its size and its bytes — the same on every machine. Hidden files
    (flexopt's output marker, temporaries) are not part of the instance."""
    h = hashlib.sha256()
    files = sorted(
        (p for p in root.rglob("*") if p.is_file()),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    for p in files:
        rel = p.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        data = p.read_bytes()
        h.update(f"{rel.as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def instance_sha256(inst: Instance) -> str:
    """A content hash of the instance: of its folder's files when it was read from one,
    otherwise of the files :meth:`Instance.save` would write (an instance built in Python)."""
    root = Path(inst.path)
    if (root / _MANIFEST).is_file():
        return _hash_files(root)
    with tempfile.TemporaryDirectory(prefix="flexopt-hash-") as tmp:
        folder = Path(tmp)
        for sub in ("transmission", "scenario", "distribution"):
            (folder / sub).mkdir()
        inst.write_files(folder)
        return _hash_files(folder)


def with_market_overrides(inst: Instance, opt: MarketOptions) -> Instance:
    """``inst`` with the run's overrides of its market settings (``loss_coverage``, …)."""
    given = {k: v for k in MARKET_OVERRIDES if (v := getattr(opt, k)) is not None}
    if not given:
        return inst
    m = inst.market
    market = MarketData(
        loss_price_eur_per_mwh=float(given.get("loss_price_eur_per_mwh", m.loss_price_eur_per_mwh)),
        loss_coverage=float(given.get("loss_coverage", m.loss_coverage)),
    )
    return replace(inst, market=market)


def options_record(inst: Instance, opt: MarketOptions) -> dict[str, Any]:
    """Every option that shapes the result, resolved: the method's, the DSO problem's, the
    time limit of the TSO stages, and the market settings in effect (the instance's unless
    overridden). Where the work ran (``workers``, ``threads``, ``scheduler``) does not change a result and
    is left out, so that ``summary.json`` stays byte-identical across executors."""
    out = opt.flat()
    out["stage_time_limit_s"] = opt.stage_time_limit_s
    m = with_market_overrides(inst, opt).market
    out["loss_coverage"] = m.loss_coverage
    out["loss_price_eur_per_mwh"] = m.loss_price_eur_per_mwh
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(out.items())}


def provenance(inst: Instance, opt: MarketOptions) -> dict[str, Any]:
    """The summary keys ``options``, ``instance_sha256`` and ``versions`` of a run of
    ``inst`` (as read, before any override) with ``opt``."""
    return {
        "options": options_record(inst, opt),
        "instance_sha256": instance_sha256(inst),
        "versions": versions(),
    }
