"""Coefficient methods of the DSOs (stage S5), registered by name.

Built in: ``none`` (offers unchanged), ``mlf`` (loss-factor-adjusted bids), ``wca`` (the DSO
coefficient problem by the Water Cycle Algorithm or MOWCA) and ``exact`` (the problem as a
MILP / MINLP solved to proven optimality). Register another with :func:`register_method`;
the market and the CLI take their choices from this registry.
"""

from flexopt.methods import exact, mlf, none, wca
from flexopt.methods.registry import (
    CoefficientMethod,
    Modify,
    get_method,
    method_names,
    methods,
    register_method,
    unregister_method,
)

__all__ = [
    "CoefficientMethod",
    "Modify",
    "get_method",
    "method_names",
    "methods",
    "register_method",
    "unregister_method",
]

register_method("none", none.modify, description="offers unchanged")
register_method("mlf", mlf.modify, description="loss-factor-adjusted bids (β only)")
register_method(
    "wca",
    wca.modify,
    config=wca.WCAConfig,
    description="DSO coefficient problem by WCA (--pareto: MOWCA + fuzzy compromise)",
)
register_method(
    "exact",
    exact.modify,
    config=exact.ExactConfig,
    description="DSO coefficient problem as MILP (HiGHS) or MINLP (--solver scip)",
)
