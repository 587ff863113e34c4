"""Every equation the grid code cites is defined in its models/ document.

``flexopt/grid`` cites feeder (F), transmission (T) and loss-allocation (L) equations in
parentheses — ``(F3a)``, ``(F4, F4a)``, ``(F1, F8–F10)`` — and the documents define them as
bold numbered equations, ``**(F3a)**``. A citation without a definition is a broken link.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = {"F": "feeder.md", "T": "transmission.md", "L": "loss_allocation.md"}
_GROUP = re.compile(r"\(([^()]*)\)")
_RANGE = re.compile(r"\b([FTL])(\d+)\s*[–-]\s*\1(\d+)\b")
_REF = re.compile(r"\b([FTL]\d+[a-z]?)\b")
_DEFINED = re.compile(r"\*\*\(([FTL]\d+[a-z]?)")


def _cited() -> dict[str, set[str]]:
    """Equation labels cited in parentheses in flexopt/grid, with the files citing them."""
    cited: dict[str, set[str]] = {}
    for path in sorted((ROOT / "flexopt" / "grid").glob("*.py")):
        for group in _GROUP.findall(path.read_text()):
            labels = set(_REF.findall(group))
            for kind, lo, hi in _RANGE.findall(group):
                labels |= {f"{kind}{i}" for i in range(int(lo), int(hi) + 1)}
            for label in labels:
                cited.setdefault(label, set()).add(path.name)
    return cited


def _defined() -> set[str]:
    found: set[str] = set()
    for doc in DOCS.values():
        found |= set(_DEFINED.findall((ROOT / "models" / doc).read_text()))
    return found


def test_every_cited_equation_is_defined():
    cited, defined = _cited(), _defined()
    missing = {label: sorted(files) for label, files in cited.items() if label not in defined}
    assert not missing, f"cited in flexopt/grid but not defined in models/: {missing}"


def test_the_issue_14_equations_are_cited_and_defined():
    cited, defined = _cited(), _defined()
    for label in ("F3a", "F4a", "F8", "F9", "F10", "L1a", "T3a", "T4a"):
        assert label in cited, label
        assert label in defined, label


def test_the_index_lists_the_feeder_range():
    index = (ROOT / "models" / "README.md").read_text()
    assert "| F1–F10 |" in index
