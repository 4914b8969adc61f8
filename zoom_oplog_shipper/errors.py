"""The package's own exceptions and the exit code each one maps to."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes."""

    OK = 0
    FAILURE = 1
    CONFIG = 2
    AUTH = 3
    DAILY_LIMIT = 4
    STATE = 5


class ShipperError(Exception):
    """Base class: every subclass carries the exit code the CLI returns for it."""

    exit_code: ExitCode = ExitCode.FAILURE


class ConfigError(ShipperError):
    """A setting is missing or invalid (usage or configuration error)."""

    exit_code = ExitCode.CONFIG


class AuthError(ShipperError):
    """Credentials, scopes, plan or role do not allow reading the report."""

    exit_code = ExitCode.AUTH


class ApiError(ShipperError):
    """The API kept failing after the bounded retries, or answered something unusable."""

    exit_code = ExitCode.FAILURE


class DailyLimitError(ShipperError):
    """Zoom's daily request quota for the account is spent; progress is kept."""

    exit_code = ExitCode.DAILY_LIMIT


class StateError(ShipperError):
    """The state store is unusable (corrupt, unreadable, unwritable)."""

    exit_code = ExitCode.STATE


class OutputError(ShipperError):
    """stdout cannot take the events (missing, a full disk, /dev/full); nothing more can be delivered."""

    exit_code = ExitCode.FAILURE


class OutputClosedError(OutputError):
    """stdout was closed by the reader (the agent went away); nothing more can be delivered."""
