"""Exception types shared across flexopt (imports nothing of ours)."""

from __future__ import annotations

__all__ = ["FlexoptError", "InstanceError", "OptionError", "PowerFlowError", "TopologyError"]


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
