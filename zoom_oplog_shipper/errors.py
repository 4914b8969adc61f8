"""The package's own exceptions and the exit code each one maps to."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Documented process exit codes."""

    OK = 0
    FAILURE = 1
    CONFIG = 2
    AUTH = 3
    DAILY_LIMIT = 4
    STATE = 5


class ShipperError(Exception):
    """Base class: every subclass carries the exit code the CLI returns for it, named on its class line
    (``class ConfigError(ShipperError, exit_code=ExitCode.CONFIG)``); a subclass that names none keeps
    its parent's."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init_subclass__(cls, exit_code: ExitCode | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code


class ConfigError(ShipperError, exit_code=ExitCode.CONFIG):
    """A setting is missing or invalid (usage or configuration error)."""


class AuthError(ShipperError, exit_code=ExitCode.AUTH):
    """Credentials, scopes, plan or role do not allow reading the report."""


class DailyLimitError(ShipperError, exit_code=ExitCode.DAILY_LIMIT):
    """Zoom's daily request quota for the account is spent; progress is kept."""


class StateError(ShipperError, exit_code=ExitCode.STATE):
    """The state store is unusable (corrupt, unreadable, unwritable)."""


class ApiError(ShipperError):
    """The API kept failing after the bounded retries, or answered something unusable."""


class OutputError(ShipperError):
    """stdout cannot take the events (missing, a full disk, /dev/full); nothing more can be delivered."""


class OutputClosedError(OutputError):
    """stdout was closed by the reader (the agent went away); nothing more can be delivered."""
