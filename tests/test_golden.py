"""Golden summaries of the bundled instance (update: ``.venv/bin/python -m tests.golden.update``)."""

from __future__ import annotations

import json
import math

import pytest

from tests.golden.update import CASES, golden_summary, path_of

PARAMS = [(i, m) for i, methods in CASES.items() for m in methods]


def _compare(got, want, where="summary"):
    if isinstance(want, dict):
        assert set(got) == set(want), f"{where}: keys differ: {set(got) ^ set(want)}"
        for k in want:
            _compare(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, float):
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6), f"{where}: {got} != {want}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize(("instance", "method"), PARAMS)
def test_summary_matches_golden(instance, method):
    want = json.loads(path_of(instance, method).read_text())
    _compare(golden_summary(instance, method), want)
