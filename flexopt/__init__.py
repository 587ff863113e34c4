"""flexopt — bilevel TSO–DSO flexibility market toolkit.

>>> import flexopt as fx
>>> inst = fx.load_instance("instances/rts24-3dso")      # doctest: +SKIP
>>> res = fx.run_market(inst, method="mlf", seed=0)      # doctest: +SKIP
>>> cmp = fx.compare(inst, ["none", "mlf"], set={"dcp_weight": [0, 1]}, out="cmp")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from flexopt import grid, instance
from flexopt.errors import FlexoptError, InstanceError, OptionError, PowerFlowError, TopologyError
from flexopt.instance import Instance, load_instance

__version__ = "0.1.0"

__all__ = [
    "FlexoptError",
    "Instance",
    "InstanceError",
    "MarketOptions",
    "MarketResult",
    "OptionError",
    "PowerFlowError",
    "TopologyError",
    "__version__",
    "compare",
    "grid",
    "instance",
    "load_instance",
    "models",
    "optim",
    "plot",
    "register_method",
    "run_market",
]

# the market pulls in Pyomo: load it on first use
_LAZY = {
    "run_market": "flexopt.run.api",
    "compare": "flexopt.run.compare",
    "MarketOptions": "flexopt.run.options",
    "MarketResult": "flexopt.run.result",
    "register_method": "flexopt.methods",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "optim":
        return importlib.import_module("flexopt.optim")
    if name == "models":  # the Pyomo models of the market's stages
        return importlib.import_module("flexopt.run.models")
    if name == "plot":  # the figures: matplotlib loads only when one is drawn
        return importlib.import_module("flexopt.report.plot")
    raise AttributeError(f"module 'flexopt' has no attribute {name!r}")
