"""`flexopt generate`: valid, deterministic instances with congestion by construction."""

from __future__ import annotations

import filecmp

import pytest

from flexopt import load_instance
from flexopt.cli import main
from flexopt.errors import FlexoptError
from flexopt.generate import generate
from flexopt.run.api import run_market


@pytest.fixture(scope="module")
def case30(tmp_path_factory):
    return generate("case30", 3, "case33bw", 6, 1, tmp_path_factory.mktemp("g") / "case30-3")


def test_generated_instance_loads_and_is_congested_by_construction(case30):
    inst = load_instance(case30)
    assert len(inst.dsos) == 3
    assert all(len(d.prosumers) == 6 for d in inst.dsos)
    res = run_market(inst, "none")
    s = res.summary
    assert len(s["congested_lines_before"]) == 2  # the two derated lines
    assert s["congested_hours"] == [13, 14, 15]
    assert s["overload_mw_after"] < s["overload_mw_before"]  # the DSOs relieve part of it at least


def test_same_seed_same_files(case30, tmp_path):
    again = generate(
        "case30", 3, "case33bw", 6, 1, tmp_path / case30.name
    )  # the name comes from the folder
    cmp = filecmp.dircmp(case30, again)
    assert not cmp.diff_files
    for sub in cmp.subdirs.values():
        assert not sub.diff_files


def test_cli_and_bad_requests(tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "--transmission",
                "case300",
                "--dsos",
                "4",
                "--feeder",
                "case69",
                "--prosumers",
                "5",
                "--seed",
                "2",
                "--out",
                str(tmp_path / "c300"),
            ]
        )
        == 0
    )
    assert "case300, 4 DSOs on case69 feeders" in capsys.readouterr().out
    with pytest.raises(FlexoptError, match="load buses"):
        generate("case30", 500, "case33bw", 4, 0, tmp_path / "x")
    # more prosumers than loaded buses (32 on case33bw): the extra ones share buses
    crowded = load_instance(generate("case30", 2, "case33bw", 40, 0, tmp_path / "y"))
    pros = crowded.dsos[0].prosumers
    assert len(pros) == 40
    assert pros["bus"].nunique() == 32
    assert not (tmp_path / "x").exists()
