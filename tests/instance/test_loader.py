"""Instance loading: the bundled instance, and one clear line for every malformed input."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import flexopt as fx
from flexopt.cli import main
from tests.conftest import RTS


def test_bundled_instance_contents(rts):
    assert rts.name == "rts24-3dso"
    assert rts.hours == 24
    assert len(rts.transmission.buses) == 24
    assert len(rts.transmission.branches) == 38
    assert len(rts.dsos) == 3
    for dso in rts.dsos:
        assert len(dso.prosumers) >= 10
        assert dso.feeder.branches.shape[0] == 32
        assert dso.n_feeders >= 1
        assert dso.baseline_mw.shape == (24, len(dso.prosumers))
    assert rts.scenario.load_profile.loc[18] == 1.0  # RTS 1979 Table 4 peak at 18:00
    assert rts.forecast_load_mw().loc[18].sum() == pytest.approx(2850.0)


# --------------------------------------------------------------------------- mutations
def _edit(rel: str, old: str, new: str, count: int = 1) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        p = root / rel
        text = p.read_text()
        assert old in text, f"test setup: {old!r} not in {rel}"
        p.write_text(text.replace(old, new, count))

    return mutate


def _csv(rel: str, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        p = root / rel
        df = pd.read_csv(p, comment="#", dtype=str)
        fn(df).to_csv(p, index=False)

    return mutate


def _set(col: str, row: int, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[row, col] = value
        return df

    return fn


def _delete(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).unlink()


def _drain(df: pd.DataFrame) -> pd.DataFrame:
    pros = pd.read_csv(RTS / "distribution/prosumers.csv", comment="#")
    pid = pros.prosumer_id.iloc[0]
    df.loc[df.prosumer_id == pid, "p_mw"] = str(
        pros.p_max_mw.iloc[0]
    )  # discharge at full power all day
    return df


def _loop(df: pd.DataFrame) -> pd.DataFrame:
    extra = df.iloc[[5]].copy()
    extra["from_bus"], extra["to_bus"] = "17", "3"  # 3 becomes a to_bus twice → loop
    return pd.concat([df, extra])


M = "instance.toml"
CASES = [
    # (id, mutation, file in the message, field in the message)
    ("no-manifest", _delete(M), "instance.toml", "no instance.toml"),
    ("toml-syntax", _edit(M, "hours = 24", "hours = = 24"), M, "invalid TOML"),
    ("unknown-field", _edit(M, "hours = 24", 'hours = 24\ncolour = "red"'), M, "instance.colour"),
    ("missing-field", _edit(M, "hours = 24\n", ""), M, "instance.hours"),
    ("wrong-type", _edit(M, "hours = 24", 'hours = "24"'), M, "instance.hours"),
    ("out-of-range", _edit(M, "hours = 24", "hours = 0"), M, "instance.hours"),
    (
        "bad-choice",
        _edit(M, 'balancing = "distributed"', 'balancing = "magic"'),
        M,
        "scenario.balancing",
    ),
    (
        "missing-file",
        _edit(M, "transmission/buses.csv", "transmission/nope.csv"),
        M,
        "transmission.buses",
    ),
    (
        "path-escape",
        _edit(M, '"transmission/buses.csv"', '"../../../etc/passwd"'),
        M,
        "transmission.buses",
    ),
    (
        "missing-column",
        _csv("transmission/buses.csv", lambda d: d.drop(columns="sigma_pu")),
        "buses.csv",
        "sigma_pu",
    ),
    (
        "unknown-column",
        _csv("distribution/prosumers.csv", lambda d: d.assign(colour="red")),
        "prosumers.csv",
        "colour",
    ),
    (
        "not-a-number",
        _csv("transmission/branches.csv", _set("x_pu", 3, "abc")),
        "branches.csv",
        "x_pu",
    ),
    (
        "short-profile",
        _csv("scenario/load_profile.csv", lambda d: d.iloc[:-1]),
        "load_profile.csv",
        "hour",
    ),
    (
        "negative-profile",
        _csv("scenario/load_profile.csv", _set("load_pu", 2, "-0.1")),
        "load_profile.csv",
        "load_pu",
    ),
    (
        "unknown-bus-ref",
        _csv("scenario/load_increase.csv", _set("bus", 0, "99")),
        "load_increase.csv",
        "bus",
    ),
    (
        "branch-bus-ref",
        _csv("transmission/branches.csv", _set("from_bus", 0, "99")),
        "branches.csv",
        "from_bus",
    ),
    ("slack-not-a-bus", _edit(M, "slack_bus = 12", "slack_bus = 77"), M, "transmission.slack_bus"),
    ("dso-not-load-bus", _edit(M, "bus = 6\n", "bus = 10\n"), M, "distribution.dso[0].bus"),
    ("duplicate-dso", _edit(M, 'id = "DSO2"', 'id = "DSO1"'), M, "distribution.dso[1].id"),
    (
        "unknown-dso",
        _csv("distribution/prosumers.csv", _set("dso_id", 0, "DSO9")),
        "prosumers.csv",
        "dso_id",
    ),
    (
        "bus-off-feeder",
        _csv("distribution/prosumers.csv", _set("bus", 0, "77")),
        "prosumers.csv",
        "bus",
    ),
    (
        "efficiency",
        _csv("distribution/prosumers.csv", _set("efficiency", 1, "1.2")),
        "prosumers.csv",
        "efficiency",
    ),
    (
        "duplicate-prosumer",
        _csv("distribution/prosumers.csv", lambda d: pd.concat([d, d.iloc[[0]]])),
        "prosumers.csv",
        "prosumer_id",
    ),
    (
        "baseline-power",
        _csv("distribution/baseline.csv", _set("p_mw", 0, "5.0")),
        "baseline.csv",
        "p_mw",
    ),
    ("baseline-soc", _csv("distribution/baseline.csv", _drain), "baseline.csv", "p_mw"),
    ("meshed-feeder", _csv("distribution/case33bw.csv", _loop), "case33bw.csv", "meshed"),
    (
        "pmin-above-pmax",
        _csv("transmission/generators.csv", _set("p_min_mw", 4, "1000")),
        "generators.csv",
        "p_min_mw",
    ),
    (
        "concave-cost",
        _csv("transmission/generators.csv", _set("c2_eur_per_mw2h", 2, "-1")),
        "generators.csv",
        "c2_eur_per_mw2h",
    ),
    (
        "empty-table",
        lambda root: (root / "scenario/load_increase.csv").write_text(""),
        "load_increase.csv",
        "not a readable CSV",
    ),
]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    dst = tmp_path / "inst"
    shutil.copytree(RTS, dst)
    return dst


@pytest.mark.parametrize(
    ("mutate", "file", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_instance_gives_one_clear_line(copy, capsys, mutate, file, field):
    mutate(copy)
    with pytest.raises(fx.InstanceError) as info:
        fx.load_instance(copy)
    msg = str(info.value)
    assert "\n" not in msg
    assert file in msg, msg
    assert field in msg, msg
    # the command line says the same in one line and exits 2, never a traceback
    assert main(["validate", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert file in err[0]
    assert "Traceback" not in err[0]


def test_at_least_fifteen_malformed_cases():
    assert len(CASES) >= 15


def test_manifest_path_is_accepted(copy):
    assert fx.load_instance(copy / "instance.toml").name == "rts24-3dso"


def test_loader_executes_nothing(copy):
    """A TOML string that looks like code stays a string."""
    _edit(M, 'description = "', "description = \"__import__('os').system('false') ")(copy)
    inst = fx.load_instance(copy)
    assert inst.description.startswith("__import__")


def test_baseline_defaults_to_zero_where_missing(copy):
    _csv("distribution/baseline.csv", lambda d: d.iloc[10:])(copy)
    inst = fx.load_instance(copy)
    first = inst.dsos[0].baseline_mw.iloc[:, 0]
    assert np.all(first.loc[1:10] == 0.0)


def test_line_numbers_count_comment_lines(copy):
    """The bundled CSVs start with a ``#`` comment: line numbers must match the file."""
    _csv("transmission/branches.csv", _set("x_pu", 3, "abc"))(copy)
    p = copy / "transmission/branches.csv"
    p.write_text("# a comment\n" + p.read_text())
    with pytest.raises(fx.InstanceError, match="line 6:"):  # comment, header, rows 0..3
        fx.load_instance(copy)
