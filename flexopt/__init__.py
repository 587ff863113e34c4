"""flexopt — bilevel TSO–DSO flexibility market toolkit.

>>> import flexopt as fx
>>> inst = fx.load_instance("instances/rts24-3dso")      # doctest: +SKIP
"""

from flexopt import grid
from flexopt.errors import FlexoptError, InstanceError, PowerFlowError, TopologyError
from flexopt.instance import Instance, load_instance
from flexopt.pipeline import MarketOptions, MarketResult, run_market

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
    "run_market",
]
