"""Settings: one frozen dataclass, built once from flags, environment, a TOML file and defaults.

What each setting is (flag, variable, parser, default) is declared in ``settings.SETTINGS``; this module
reads the config file, applies the table and checks what involves more than one setting.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from zoom_oplog_shipper.errors import ConfigError
from zoom_oplog_shipper.settings import (
    APP_NAME,
    BY_NAME,
    CATEGORY_TYPES,
    DEFAULT_API_URL,
    DEFAULT_LOOKBACK,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_RPS,
    DEFAULT_MAX_RUNTIME,
    DEFAULT_OAUTH_URL,
    FILE_KEYS,
    LOG_FORMATS,
    LOG_LEVELS,
    MIN_MAX_LINE_BYTES,
    OUTPUT_FORMATS,
    SETTINGS,
    Found,
    check_url,
    default_config_path,
    default_state_dir,
    lookup,
    parse_bool,
    parse_duration,
    parse_instant,
    read_setting,
    read_settings,
)
from zoom_oplog_shipper.windows import retention_floor

__all__ = [
    "APP_NAME",
    "CATEGORY_TYPES",
    "DEFAULT_API_URL",
    "DEFAULT_LOOKBACK",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_RPS",
    "DEFAULT_MAX_RUNTIME",
    "DEFAULT_OAUTH_URL",
    "FILE_KEYS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MIN_MAX_LINE_BYTES",
    "OUTPUT_FORMATS",
    "Config",
    "check_url",
    "default_config_path",
    "default_state_dir",
    "environ",
    "load_config",
    "parse_bool",
    "parse_duration",
    "parse_instant",
    "read_config_file",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Every setting of a run, validated."""

    account_id: str
    client_id: str
    client_secret: str = field(repr=False)
    state_dir: Path
    stream: str = "operations"
    category_type: str = "all"
    backfill_start: datetime | None = None
    api_url: str = DEFAULT_API_URL
    oauth_url: str = DEFAULT_OAUTH_URL
    lookback: timedelta = DEFAULT_LOOKBACK
    max_runtime: timedelta = DEFAULT_MAX_RUNTIME
    max_rps: float = DEFAULT_MAX_RPS
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_records: int = 0
    concurrency: int = 0  # auto: settings.windows_at_once
    metrics_file: Path | None = None
    output_format: str = "ecs"
    include_original: bool = False
    log_level: str = "info"
    log_format: str = "text"
    config_file: Path | None = None

    def secrets(self) -> tuple[str, ...]:
        """Values that must never be printed (used by the log redaction filter)."""
        return tuple(s for s in (self.client_secret,) if s)


def read_config_file(path: Path) -> dict[str, Any]:
    """Read the TOML settings file; unknown keys are an error so typos do not pass silently."""
    import tomllib  # here, not at the top: `--version` and `--help` need none of this

    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        msg = f"config file {path} does not exist; create it or drop --config/ZOOM_OPLOG_CONFIG"
        raise ConfigError(msg) from None
    except OSError as exc:
        msg = f"config file {path} cannot be read ({exc.strerror}); fix its permissions"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"config file {path} is not valid TOML ({exc}); fix the syntax"
        raise ConfigError(msg) from None
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        msg = (
            f"config file {path}: unknown setting(s) {', '.join(unknown)}; "
            f"known settings are {', '.join(sorted(FILE_KEYS))}"
        )
        raise ConfigError(msg)
    if ("client_secret" in data) and (path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)):
        log.warning(
            "config file %s holds client_secret and is readable by group or others; run: chmod 600 %s",
            path,
            path,
        )
    return data


def _read_secret_file(path_text: str, setting: str) -> str:
    path = Path(path_text).expanduser()
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        msg = f"{setting}: cannot read {path} ({exc.strerror}); point it at a readable file"
        raise ConfigError(msg) from None
    if not secret:
        msg = f"{setting}: {path} is empty; write the client secret into it"
        raise ConfigError(msg)
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("secret file %s is readable by group or others; run: chmod 600 %s", path, path)
    return secret


def _config_path(flags: Mapping[str, Any], env: Mapping[str, str]) -> Path | None:
    """The config file named by --config or ZOOM_OPLOG_CONFIG, else the default one when it exists."""
    path: Path | None = read_setting(BY_NAME["config"], lookup(BY_NAME["config"], flags, env, {}, None)).value
    if path is None and default_config_path().is_file():
        path = default_config_path()
    return path


def _client_secret(found: Mapping[str, Found]) -> str:
    """The secret itself, or read from the secret file; both set is refused (which one is meant?)."""
    secret, secret_file = found["client_secret"], found["client_secret_file"]
    if secret.value and secret_file.value:
        msg = (
            f"both a client secret ({secret.where}) and a secret file ({secret_file.where}) are set; "
            "keep only one of ZOOM_CLIENT_SECRET and ZOOM_CLIENT_SECRET_FILE "
            "(client_secret / client_secret_file in the config file)"
        )
        raise ConfigError(msg)
    if secret_file.value:
        return _read_secret_file(secret_file.value, secret_file.where)
    return str(secret.value)


def _require_credentials(values: Mapping[str, Any]) -> None:
    """Refuse to go on without the settings marked required, naming every one that is missing."""
    missing = []
    for s in SETTINGS:
        if s.required and not str(values[s.name]).strip():
            alternative = BY_NAME[s.alternative].env if s.alternative else s.flag
            missing.append(f"{s.env} (or {alternative})" if alternative else s.env)
    if missing:
        msg = (
            f"missing {', '.join(missing)}: set them from your Zoom Server-to-Server OAuth app "
            "(environment or config file); see `zoom-oplog-shipper --help`"
        )
        raise ConfigError(msg)


def _check_backfill(found: Found, now: datetime) -> datetime | None:
    """Refuse a start in the future; clamp one older than Zoom keeps, with a warning."""
    backfill: datetime | None = found.value
    where = found.where
    if backfill is None:
        return None
    if backfill > now:
        msg = f"{where}: {found.text!r} is in the future; use a past date, or leave it unset to start at the first run"
        raise ConfigError(msg)
    oldest = retention_floor(now.date())
    oldest_dt = datetime(oldest.year, oldest.month, oldest.day, tzinfo=UTC)
    if backfill < oldest_dt:
        log.warning(
            "%s %s is older than Zoom keeps operation logs (about 6 months); "
            "starting at %s, the oldest day Zoom serves",
            where,
            found.text,
            oldest.isoformat(),
        )
        return oldest_dt
    return backfill


def load_config(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    now: datetime,
    *,
    need_credentials: bool = True,
) -> Config:
    """Merge flags > environment > config file > defaults into a validated Config.

    ``flags`` holds the command-line values (None when not given) keyed by setting name, plus
    ``config`` for ``--config``.
    """
    file_path = _config_path(flags, env)
    file_values = read_config_file(file_path) if file_path else {}
    found = read_settings(flags, env, file_values, file_path)
    values = {name: f.value for name, f in found.items()}
    values["client_secret"] = _client_secret(found)
    if need_credentials:
        _require_credentials(values)
    values["backfill_start"] = _check_backfill(found["backfill_start"], now)
    fields = {s.config_field: values[s.name] for s in SETTINGS if s.toml and s.config_field}
    return Config(**fields, config_file=file_path)


def environ() -> Mapping[str, str]:
    """The process environment (an edge function, so tests can pass their own mapping)."""
    return os.environ
