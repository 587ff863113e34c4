"""Every market option is a flag and a key of ``--options FILE.toml``; bad values are one line
naming the flag or the file and key; ``summary.json`` records the options, the versions and a
content hash of the instance; the instance's market settings can be overridden per run."""

from __future__ import annotations

import json
import shutil

import pytest

import flexopt as fx
import flexopt.run.api
from flexopt.cli import main
from flexopt.cli._args import flag_of
from flexopt.errors import FlexoptError, OptionError
from flexopt.run.flat import check_option, flat_options, read_options_file
from flexopt.run.options import MarketOptions
from flexopt.run.provenance import instance_sha256, options_record
from tests.conftest import RTS, exit_code, one_error_line

WCA_FLAGS = [
    "--method",
    "wca",
    "--dcp-weight",
    "0.25",
    "--factor-bounds",
    "0.8,1.2",
    "--dcp-mode",
    "b",
    "--dcp-price",
    "pay_as_bid",
    "--no-dcp-budget",
    "--no-dcp-efficiency",
    "--wca-pop",
    "20",
    "--wca-iter",
    "5",
    "--loss-coverage",
    "0.6",
    "--loss-price",
    "40",
    "--blocks",
    "4",
]
WCA_TOML = """
method = "wca"
dcp_weight = 0.25
factor_bounds = [0.8, 1.2]
dcp_mode = "b"
dcp_price = "pay_as_bid"
dcp_budget = false
dcp_efficiency = false
wca_pop = 20
wca_iter = 5
loss_coverage = 0.6
loss_price_eur_per_mwh = 40
blocks = 4
"""


class _StopError(FlexoptError):
    pass


@pytest.fixture
def options_of(monkeypatch):
    """``flexopt`` with ``argv`` up to the run: the MarketOptions it would run with."""
    seen: list[MarketOptions] = []

    def fake_run(inst, opt):
        seen.append(opt)
        raise _StopError("stopped before the run")

    monkeypatch.setattr(flexopt.run.api, "run", fake_run)

    def get(argv: list[str]) -> MarketOptions:
        assert main(["run", str(RTS), *argv]) == 2
        assert seen, "the run was not reached"
        return seen.pop()

    return get


def _parser_flags(command: str) -> set[str]:
    from flexopt.cli import _parser

    sub = next(a for a in _parser()._actions if a.dest == "command")
    parser = sub.choices[command]
    return {s for a in parser._actions for s in a.option_strings}


@pytest.mark.parametrize("command", ["run", "compare"])
def test_every_option_is_a_flag(command):
    flags = _parser_flags(command)
    missing = [n for n in flat_options() if flag_of(n) not in flags and n != "seed"]
    assert not missing
    assert "--options" in flags
    assert ("--seed" in flags) == (command == "run")  # compare takes --seeds
    if command == "compare":
        assert {"--seeds", "--set", "--methods", "--workers", "--scheduler"} <= flags


def test_the_catalogue_is_every_option_of_run_market():
    """The catalogue's names are what run_market accepts, and their defaults are its own."""
    cat = flat_options()
    opt = MarketOptions.from_kwargs(method="wca")
    for name in opt.flat():
        assert name in cat or name == "method", name
    assert cat["dcp_weight"].default == 0.5
    assert cat["factor_bounds"].kind == "pair"
    assert cat["dcp_budget"].kind == "bool"
    assert cat["wca_iter"].owners == ("wca",)
    assert cat["vm_limits_pu"].owners == ("centralized",)
    assert cat["loss_coverage"].layer == "market"


def test_new_flags_reach_the_options(options_of):
    opt = options_of(WCA_FLAGS)
    assert opt.method == "wca"
    assert opt.dcp.weight == 0.25
    assert opt.dcp.bounds == (0.8, 1.2)
    assert opt.dcp.mode == "b"
    assert opt.dcp.price == "pay_as_bid"
    assert opt.dcp.budget is False
    assert opt.dcp.efficiency is False
    assert (opt.config.wca_pop, opt.config.wca_iter) == (20, 5)
    assert (opt.loss_coverage, opt.loss_price_eur_per_mwh, opt.blocks) == (0.6, 40.0, 4)
    central = options_of(["--method", "centralized", "--vm-limits", "0.9,1.1"])
    assert central.config.vm_limits_pu == (0.9, 1.1)
    exact = options_of(["--method", "exact", "--segments", "8"])
    assert exact.config.segments == 8


def test_an_options_file_equals_the_flags_and_flags_override_it(options_of, tmp_path):
    file = tmp_path / "opts.toml"
    file.write_text(WCA_TOML)
    assert options_of(["--options", str(file)]) == options_of(WCA_FLAGS)
    over = options_of(["--options", str(file), "--dcp-weight", "0.75", "--dcp-budget"])
    assert over.dcp.weight == 0.75
    assert over.dcp.budget is True
    assert over.dcp.mode == "b"  # the rest from the file
    assert read_options_file(file, extra=("method",))["factor_bounds"] == (0.8, 1.2)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("colour = 'red'\n", "unknown option 'colour'"),
        ("dcp_weight = 1.5\n", "dcp_weight: dcp_weight: DCPOptions.weight must be in [0, 1]"),
        ("factor_bounds = [2, 3]\n", "factor_bounds"),
        ("wca_iter = 'many'\n", "wca_iter: wca_iter must be an integer"),
        ("samples = 1e3\n", "samples: MarketOptions.samples must be an integer"),
        ("dcp_weight = [\n", "not valid TOML"),
        ("method = 'magic'\n", "method: must be one of"),
        ("[dcp]\nweight = 0.2\n", "unknown option 'dcp'"),
    ],
)
def test_a_bad_options_file_is_one_line_naming_file_and_key(tmp_path, capsys, text, needle):
    file = tmp_path / "bad.toml"
    file.write_text(text)
    assert exit_code(["run", str(RTS), "--options", str(file)]) == 2
    line = one_error_line(capsys)
    assert str(file) in line
    assert needle in line


def test_a_missing_options_file_is_one_line(tmp_path, capsys):
    assert exit_code(["run", str(RTS), "--options", str(tmp_path / "none.toml")]) == 2
    assert "no such options file" in one_error_line(capsys)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--dcp-weight", "1.5"], "--dcp-weight: dcp_weight: DCPOptions.weight must be in [0, 1]"),
        (["--dcp-weight", "nan"], "--dcp-weight: expected a finite number"),
        (["--factor-bounds", "2,3"], "--factor-bounds: factor_bounds: DCPOptions.bounds"),
        (["--factor-bounds", "0.5"], "--factor-bounds: expected two numbers LO,HI"),
        (["--dcp-mode", "c"], "--dcp-mode: invalid choice"),
        (["--method", "wca", "--wca-pop", "3"], "--wca-pop: expected an integer in 8..10000"),
        (["--method", "centralized", "--vm-limits", "1,2"], "--vm-limits: vm_limits_pu"),
        (["--loss-coverage", "0"], "--loss-coverage: MarketOptions.loss_coverage must be"),
        (["--loss-price", "-1"], "--loss-price: MarketOptions.loss_price_eur_per_mwh"),
        (["--method", "centralized", "--dcp-weight", "0.2"], "do not apply to method"),
        (["--method", "mlf", "--segments", "4"], "'segments' does not apply to method 'mlf'"),
    ],
)
def test_bad_flag_values_are_one_line_naming_the_flag(capsys, argv, needle):
    assert exit_code(["run", str(RTS), *argv]) == 2
    assert needle in one_error_line(capsys)


def test_check_option_uses_the_owning_class():
    assert check_option("factor_bounds", [0.8, 1.2]) == (0.8, 1.2)
    assert check_option("dcp_weight", 1) == 1.0
    with pytest.raises(OptionError, match="unknown option"):
        check_option("colour", 1)
    with pytest.raises(OptionError, match="wca_pop"):
        check_option("wca_pop", 2)


def test_instance_hash_is_stable_and_follows_the_content(rts, tmp_path):
    a = instance_sha256(rts)
    assert len(a) == 64
    copy = tmp_path / "elsewhere" / "rts"
    shutil.copytree(RTS, copy)
    (copy / ".some-hidden-file").write_text("not part of the instance")
    assert instance_sha256(fx.load_instance(copy)) == a  # another place, same content
    base = copy / "distribution" / "baseline.csv"
    base.write_bytes(base.read_bytes().replace(b"\n", b"\n", 1) + b"\n")
    assert instance_sha256(fx.load_instance(copy)) != a
    golden = json.loads((RTS.parents[1] / "tests/golden/rts24-3dso_none.json").read_text())
    assert golden["instance_sha256"] == a  # the goldens pin it across machines


def test_summary_records_options_versions_and_the_instance(rts):
    res = fx.run_market(rts, "none", loss_coverage=1.0, blocks=5)
    s = res.summary
    assert s["instance_sha256"] == instance_sha256(rts)
    assert {"flexopt", "python", "numpy", "pandas", "pyomo", "pandapower", "highspy"} <= set(
        s["versions"]
    )
    assert s["versions"]["flexopt"] == fx.__version__
    opts = s["options"]
    assert opts == options_record(rts, res.options)
    assert (opts["loss_coverage"], opts["blocks"], opts["method"]) == (1.0, 5, "none")
    assert opts["loss_price_eur_per_mwh"] == rts.market.loss_price_eur_per_mwh  # the instance's
    assert opts["factor_bounds"] == [0.5, 1.5]
    assert "workers" not in opts  # where the work ran does not change the result
    # coverage 1: every prosumer with a loss share is screened — more than at the default 0.8
    golden = json.loads((RTS.parents[1] / "tests/golden/rts24-3dso_none.json").read_text())
    assert golden["options"]["loss_coverage"] == 0.8
    for d, per in s["dso"].items():
        assert per["screened"] >= golden["dso"][d]["screened"]
    assert sum(p["screened"] for p in s["dso"].values()) > sum(
        p["screened"] for p in golden["dso"].values()
    )
