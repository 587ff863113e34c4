"""The seeded mutation fuzzer (``tests/fuzz.py``) over the bundled instance: every case ends
in exit 0 with finite, sane results or in exit 2 with one line — never a traceback, a hang
or a non-finite number. CI runs 300 ``validate`` and 50 ``run`` cases; a longer run:

    .venv/bin/python -m pytest tests/test_fuzz.py --fuzz-validate 2000 --fuzz-run 300 --fuzz-seed 1
"""

from __future__ import annotations

import pytest

from tests import fuzz


@pytest.mark.parametrize("command", ["validate", "run"])
def test_fuzz(request, tmp_path, command):
    cases = request.config.getoption(f"--fuzz-{command}")
    seed = request.config.getoption("--fuzz-seed")
    outcomes = fuzz.fuzz(command, cases, seed, tmp_path)
    text = fuzz.report(outcomes)
    print(text)
    assert len(outcomes) == cases
    assert not [o for o in outcomes if o.failure], text
    # the cases reach both ends: some pass, some are refused
    assert {o.status for o in outcomes} == ({0, 2} if cases >= 50 else {o.status for o in outcomes})


def test_cases_are_reproducible():
    tree = fuzz.base_tree()
    a = fuzz.make_case(7, "run", 3, tree)
    b = fuzz.make_case(7, "run", 3, tree)
    assert a[0] == b[0]
    assert a[1] == b[1]
    assert a[1] != tree
