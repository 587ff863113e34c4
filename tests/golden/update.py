"""Rewrite the golden summaries after a deliberate change of results.

    .venv/bin/python -m tests.golden.update

Review the diff (``git diff tests/golden``) before committing: every changed figure needs a
reason in the commit message.
"""

from __future__ import annotations

import json
from pathlib import Path

import flexopt as fx
from flexopt.atomic import write_text_atomic
from flexopt.run.api import run_market

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CASES = {"rts24-3dso": ("none", "mlf", "wca", "centralized")}


def golden_summary(instance: str, method: str) -> dict:
    res = run_market(fx.load_instance(ROOT / "instances" / instance), method, seed=0)
    # timings and the versions of the packages differ between machines
    return {k: v for k, v in res.summary.items() if k not in ("clearing_time_s", "versions")}


def path_of(instance: str, method: str) -> Path:
    return HERE / f"{instance}_{method}.json"


def main() -> None:
    for instance, methods in CASES.items():
        for method in methods:
            path = path_of(instance, method)
            text = json.dumps(golden_summary(instance, method), indent=2, sort_keys=True) + "\n"
            write_text_atomic(path, text)
            print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
