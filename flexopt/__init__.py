"""flexopt — bilevel TSO–DSO flexibility market toolkit.

>>> import flexopt as fx
>>> inst = fx.load_instance("instances/rts24-3dso")      # doctest: +SKIP
"""

from flexopt import grid
from flexopt.errors import FlexoptError, InstanceError, PowerFlowError, TopologyError
from flexopt.instance import Instance, load_instance

__version__ = "0.1.0"

__all__ = [
    "FlexoptError",
    "Instance",
    "InstanceError",
    "MarketOptions",
    "MarketResult",
    "PowerFlowError",
    "TopologyError",
    "__version__",
    "grid",
    "load_instance",
    "optim",
    "run_market",
]


def __getattr__(name: str):  # the market pulls in Pyomo: load it on first use
    if name in ("run_market", "MarketOptions", "MarketResult"):
        from flexopt import pipeline

        return getattr(pipeline, name)
    if name == "optim":
        import importlib

        return importlib.import_module("flexopt.optim")
    raise AttributeError(f"module 'flexopt' has no attribute {name!r}")
