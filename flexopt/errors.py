"""Exception types shared across flexopt (imports nothing of ours), and the pending
``SIGTERM`` that a run raises again at its next stage."""

from __future__ import annotations

__all__ = [
    "FlexoptError",
    "InstanceError",
    "NonFiniteError",
    "OptionError",
    "OutputError",
    "PowerFlowError",
    "SolverError",
    "SolverLimitError",
    "Terminated",
    "TopologyError",
    "check_terminated",
    "clear_terminated",
    "terminate",
]

# a plain flag: a threading.Event's lock could deadlock a second SIGTERM's handler
_terminating = [False]


class Terminated(KeyboardInterrupt):
    """``SIGTERM``, raised where the run is, so that it unwinds like Ctrl-C."""


def terminate() -> None:
    """Raise :class:`Terminated` (a ``SIGTERM`` handler's body) and keep it pending: Python
    ignores an exception raised while a finalizer runs, so :func:`check_terminated` raises
    it again at the run's next stage."""
    _terminating[0] = True
    raise Terminated


def clear_terminated() -> None:
    """Forget a pending ``SIGTERM`` (its handler is gone)."""
    _terminating[0] = False


def check_terminated() -> None:
    """Raise :class:`Terminated` if a ``SIGTERM`` is pending (a stage boundary)."""
    if _terminating[0]:
        raise Terminated


class FlexoptError(Exception):
    """Base class of every error flexopt raises on purpose."""


class InstanceError(FlexoptError):
    """Invalid instance data.

    The message is one line naming the file and the field, e.g.
    ``instances/x/prosumers.csv: field 'efficiency' (row 3): must be in (0, 1], got 1.2``.
    """

    def __init__(self, file: str, field: str | None, message: str) -> None:
        self.file = str(file)
        self.field = field
        self.reason = message
        where = f"{self.file}: field '{field}'" if field else self.file
        super().__init__(f"{where}: {message}")


class OptionError(FlexoptError, ValueError):
    """An option that is invalid, or that does not apply to the chosen method; the message
    names the option and the method."""


class TopologyError(FlexoptError):
    """A network that is not what the model needs (meshed feeder, islanded bus, ...)."""


class PowerFlowError(FlexoptError):
    """The feeder power flow did not converge."""


class SolverError(FlexoptError):
    """A stage's model solved without an optimal solution: the message names the stage, the
    solver and its status."""

    def __init__(self, stage: str, solver: str, status: str, message: str) -> None:
        self.stage, self.solver, self.status = stage, solver, status
        super().__init__(message)


class SolverLimitError(SolverError):
    """A stage's solver stopped at its time limit or iteration guard (``limit``): the message
    names the stage, the solver, the limit and what to change."""

    def __init__(self, stage: str, solver: str, status: str, limit: str, message: str) -> None:
        self.limit = limit
        super().__init__(stage, solver, status, message)


class OutputError(FlexoptError):
    """An output path flexopt refuses to write (it would replace something that is not a
    previous flexopt result of the same kind, or it cannot be written)."""


class NonFiniteError(FlexoptError):
    """A result that is not a finite number (infinity or NaN); the message names the stage."""
