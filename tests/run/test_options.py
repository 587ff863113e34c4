"""Options in layers: flat names sorted into the run, the DSO problem and the method's config;
options that do not apply to the method are refused, naming it."""

from __future__ import annotations

import pytest

import flexopt as fx
from flexopt.cli import main
from flexopt.dso.dcp import DCPOptions
from flexopt.errors import OptionError
from flexopt.methods.exact import ExactConfig
from flexopt.methods.wca import WCAConfig
from flexopt.run.options import CentralizedConfig, MarketOptions
from tests.conftest import RTS


def test_flat_names_go_to_their_layer():
    opt = MarketOptions.from_kwargs(
        method="wca", wca_iter=40, pareto=True, dcp_weight=0.8, factor_bounds=(0.7, 1.3), seed=4
    )
    assert opt.config == WCAConfig(wca_iter=40, pareto=True)
    assert opt.dcp == DCPOptions(weight=0.8, bounds=(0.7, 1.3))
    assert opt.seed == 4
    assert MarketOptions.from_kwargs(**opt.flat()) == opt
    assert MarketOptions(method="exact").config == ExactConfig()
    assert MarketOptions(method="centralized").config == CentralizedConfig()
    assert MarketOptions(method="mlf").config is None


def test_top_level_exports():
    assert fx.MarketOptions is MarketOptions
    assert fx.OptionError is OptionError


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"method": "mlf", "pareto": True}, "'pareto' does not apply to method 'mlf'"),
        ({"method": "none", "solver": "scip"}, "'solver' does not apply to method 'none'"),
        ({"method": "wca", "central_model": "ac"}, "it is an option of centralized"),
        ({"method": "centralized", "blocks": 4}, "do not apply to method 'centralized'"),
        ({"method": "centralized", "dcp_weight": 0.2}, "do not apply to method 'centralized'"),
        ({"method": "exact", "dcp_mode": "b"}, "'dcp_mode' does not apply to method 'exact'"),
        ({"method": "wca", "wca_pop": 3}, "wca_pop must be an integer in 8.."),
        ({"method": "exact", "mip_gap": 2.0}, "mip_gap must be in [0, 1)"),
        ({"method": "none", "dcp_weight": 2.0}, "weight must be in [0, 1]"),
        ({"method": "none", "seed": -1}, "seed must be a non-negative integer"),
        ({"method": "magic"}, "method must be one of"),
    ],
)
def test_options_that_do_not_apply_or_are_invalid_are_refused(kwargs, needle):
    with pytest.raises(OptionError) as err:
        MarketOptions.from_kwargs(**kwargs)
    assert needle in str(err.value)


def test_layered_constructor_checks_the_config_type():
    with pytest.raises(OptionError, match="options of method 'wca' are a WCAConfig"):
        MarketOptions(method="wca", config=ExactConfig())
    with pytest.raises(OptionError, match="has no options"):
        MarketOptions(method="mlf", config=WCAConfig())
    with pytest.raises(OptionError, match="centralized"):
        MarketOptions(method="centralized", dcp=DCPOptions(weight=0.2))


def test_unknown_option_is_a_type_error(rts):
    with pytest.raises(TypeError, match="unknown market option"):
        fx.run_market(rts, "none", colour="red")


def test_cli_refuses_an_option_of_another_method_in_one_line(capsys):
    assert main(["run", str(RTS), "--method", "mlf", "--pareto"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "'pareto' does not apply to method 'mlf'" in err[0]
