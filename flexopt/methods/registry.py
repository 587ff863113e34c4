"""The registry of coefficient methods: a name mapped to the callable that modifies one DSO's
offers (stage S5), and the options it accepts.

A method is a function ``modify(problem, config, rng) -> Modification``: it receives the DSO's
coefficient problem — the DSO after S4 (``problem.ctx``) at its design point (the requirement
``problem.requirement_mw``, the loss price, the problem's options) — its own configuration
(an instance of the registered ``config`` class, or ``None``) and a seeded generator, and
returns the factors ``α_i, β_i`` with whatever it reports about its search. The market builds
the offer, the block bid and the score from that answer (:func:`flexopt.dso.offer.build_offer`),
the same way for every method. Adding a method is one module and one call::

    register_method("beta09", lambda pr, cfg, rng: Modification(Factors(np.ones(pr.n), np.full(pr.n, 0.9))))

after which ``run_market(inst, "beta09")`` and ``flexopt run INSTANCE --method beta09`` use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from flexopt.dso.dcp import DCPProblem
from flexopt.dso.offer import Modification

__all__ = [
    "CoefficientMethod",
    "Modify",
    "get_method",
    "method_names",
    "methods",
    "register_method",
    "unregister_method",
]

Modify = Callable[[DCPProblem, Any, np.random.Generator], Modification]

_REGISTRY: dict[str, CoefficientMethod] = {}


@dataclass(frozen=True)
class CoefficientMethod:
    """A registered coefficient method.

    Attributes
    ----------
    name : str
        What ``run_market(method=...)`` and ``flexopt run --method`` accept.
    modify : callable
        ``modify(problem, config, rng) -> Modification``. A module-level function, so that
        process-pool and Dask workers can receive it.
    config : type, optional
        A frozen dataclass of the method's own options; its field names are the flat option
        names (keyword arguments of ``run_market``). ``None``: the method has no options.
    description : str
        One line for ``flexopt run --help``.
    """

    name: str
    modify: Modify
    config: type | None = None
    description: str = ""

    @property
    def option_names(self) -> tuple[str, ...]:
        """The flat names of the method's own options."""
        return tuple(f.name for f in fields(self.config)) if self.config is not None else ()

    def default_config(self) -> Any:
        return self.config() if self.config is not None else None


def register_method(
    name: str,
    modify: Modify,
    *,
    config: type | None = None,
    description: str = "",
    replace: bool = False,
) -> CoefficientMethod:
    """Register a coefficient method under ``name`` and return its entry.

    Raises
    ------
    ValueError
        If ``name`` is taken (unless ``replace``), is ``"centralized"`` (a framework, not a
        coefficient method), or its options clash with another method's option names.
    """
    if not name.isidentifier():
        raise ValueError(f"method name must be an identifier, got {name!r}")
    if name == "centralized":
        raise ValueError("'centralized' is the common-market framework, not a coefficient method")
    if name in _REGISTRY and not replace:
        raise ValueError(f"method {name!r} is registered already (pass replace=True)")
    entry = CoefficientMethod(name, modify, config, description)
    for other in _REGISTRY.values():
        clash = set(entry.option_names) & set(other.option_names)
        if other.name != name and clash and other.config is not config:
            raise ValueError(
                f"method {name!r}: option name(s) {sorted(clash)} belong to method {other.name!r}"
            )
    _REGISTRY[name] = entry
    return entry


def unregister_method(name: str) -> None:
    """Remove a registered method (``KeyError`` if there is none of that name)."""
    del _REGISTRY[name]


def get_method(name: str) -> CoefficientMethod:
    """The registered method ``name``.

    Raises
    ------
    ValueError
        Naming the registered methods, if there is none of that name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown coefficient method {name!r}; registered: {', '.join(_REGISTRY)}"
        ) from None


def method_names() -> tuple[str, ...]:
    """Registered method names, in registration order."""
    return tuple(_REGISTRY)


def methods() -> tuple[CoefficientMethod, ...]:
    """Every registered method, in registration order."""
    return tuple(_REGISTRY.values())
