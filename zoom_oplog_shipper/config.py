"""Settings: one frozen dataclass, built once from flags, environment, a TOML file and defaults."""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from zoom_oplog_shipper.errors import ConfigError
from zoom_oplog_shipper.windows import retention_floor

log = logging.getLogger(__name__)

APP_NAME = "zoom-oplog-shipper"

#: Zoom's documented values plus ``admin``, which the connector documentation lists.
CATEGORY_TYPES = (
    "all",
    "user",
    "user_settings",
    "account",
    "billing",
    "im",
    "recording",
    "phone_contacts",
    "webinar",
    "sub_account",
    "role",
    "zoom_rooms",
    "admin",
)
OUTPUT_FORMATS = ("ecs", "raw", "ocsf")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")

DEFAULT_API_URL = "https://api.zoom.us/v2"
DEFAULT_OAUTH_URL = "https://zoom.us/oauth/token"
DEFAULT_LOOKBACK = timedelta(hours=24)
DEFAULT_MAX_RUNTIME = timedelta(minutes=5)
#: Half of the Pro plan's 10 Heavy requests per second: the quota is shared by every app on the account.
DEFAULT_MAX_RPS = 5.0
#: Longest line printed on stdout; the shipped agent configs allow well above this.
DEFAULT_MAX_LINE_BYTES = 16384
MIN_MAX_LINE_BYTES = 2048

#: (setting, environment variable, TOML key) for the settings that come from all three places.
_ENV = {
    "account_id": "ZOOM_ACCOUNT_ID",
    "client_id": "ZOOM_CLIENT_ID",
    "client_secret": "ZOOM_CLIENT_SECRET",
    "client_secret_file": "ZOOM_CLIENT_SECRET_FILE",
    "category_type": "ZOOM_CATEGORY_TYPE",
    "backfill_start": "ZOOM_BACKFILL_START",
    "api_url": "ZOOM_API_URL",
    "oauth_url": "ZOOM_OAUTH_URL",
    "state_dir": "ZOOM_OPLOG_STATE_DIR",
    "lookback": "ZOOM_OPLOG_LOOKBACK",
    "max_runtime": "ZOOM_OPLOG_MAX_RUNTIME",
    "max_rps": "ZOOM_OPLOG_MAX_RPS",
    "max_line_bytes": "ZOOM_OPLOG_MAX_LINE_BYTES",
    "max_records": "ZOOM_OPLOG_MAX_RECORDS",
    "metrics_file": "ZOOM_OPLOG_METRICS_FILE",
    "format": "ZOOM_OPLOG_FORMAT",
    "include_original": "ZOOM_OPLOG_INCLUDE_ORIGINAL",
    "log_level": "ZOOM_OPLOG_LOG_LEVEL",
    "log_format": "ZOOM_OPLOG_LOG_FORMAT",
}
FILE_KEYS = frozenset(_ENV)


@dataclass(frozen=True)
class Config:
    """Every setting of a run, validated."""

    account_id: str
    client_id: str
    client_secret: str = field(repr=False)
    state_dir: Path
    category_type: str = "all"
    backfill_start: datetime | None = None
    api_url: str = DEFAULT_API_URL
    oauth_url: str = DEFAULT_OAUTH_URL
    lookback: timedelta = DEFAULT_LOOKBACK
    max_runtime: timedelta = DEFAULT_MAX_RUNTIME
    max_rps: float = DEFAULT_MAX_RPS
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_records: int = 0
    metrics_file: Path | None = None
    output_format: str = "ecs"
    include_original: bool = False
    log_level: str = "info"
    log_format: str = "text"
    config_file: Path | None = None

    def secrets(self) -> tuple[str, ...]:
        """Values that must never be printed (used by the log redaction filter)."""
        return tuple(s for s in (self.client_secret,) if s)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, setting: str) -> timedelta:
    """Parse ``90s``, ``5m``, ``24h``, ``2d``, ``1h30m`` or plain seconds."""
    value = text.strip().lower()
    try:
        return timedelta(seconds=float(value))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        msg = f"{setting}: {text!r} is not a duration; use a number with s, m, h or d, e.g. 24h or 90m"
        raise ConfigError(msg)
    return timedelta(seconds=sum(float(n) * _DURATION_UNITS[u] for n, u in parts))


def parse_instant(text: str, setting: str) -> datetime:
    """Parse a date (midnight UTC) or an ISO 8601 datetime (UTC when it names no offset)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        msg = (
            f"{setting}: {text!r} is not a date or datetime; "
            "use YYYY-MM-DD or an ISO 8601 time such as 2026-06-01T00:00:00Z"
        )
        raise ConfigError(msg) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_bool(text: str, setting: str) -> bool:
    """Parse the usual spellings of true and false."""
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    msg = f"{setting}: {text!r} is not a boolean; use true or false"
    raise ConfigError(msg)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, setting: str) -> str:
    """Accept https URLs, and plain http only for loopback hosts (tests and the simulator)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.rstrip("/")
    if parts.scheme == "http" and _is_loopback(host):
        return url.rstrip("/")
    if parts.scheme == "http" and host:
        msg = f"{setting}: {url!r} uses plain http; use https (plain http is allowed only on loopback)"
    else:
        msg = f"{setting}: {url!r} is not an https URL, e.g. {DEFAULT_API_URL}"
    raise ConfigError(msg)


def _choice(value: str, setting: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        msg = f"{setting}: {value!r} is not one of: {', '.join(allowed)}"
        raise ConfigError(msg)
    return value


def _number(value: str, where: str, kind: type[float] | type[int], minimum: float, default: float, what: str) -> float:
    """A number setting of at least ``minimum``; ``default`` when it is not set."""
    if not value:
        return default
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not number >= minimum:
        msg = f"{where}: {value!r} must be {what}"
        raise ConfigError(msg)
    return number


def default_config_path() -> Path:
    """``config.toml`` in the platform's user config directory."""
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_state_dir() -> Path:
    """The platform's user data directory for this program."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


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
    file_path: Path | None = None
    if flags.get("config"):
        file_path = Path(str(flags["config"])).expanduser()
    elif env.get("ZOOM_OPLOG_CONFIG"):
        file_path = Path(env["ZOOM_OPLOG_CONFIG"]).expanduser()
    elif default_config_path().is_file():
        file_path = default_config_path()
    file_values = read_config_file(file_path) if file_path else {}

    def source(name: str) -> tuple[Any, str] | None:
        """The value for a setting and where it came from (used in error messages)."""
        if flags.get(name) is not None:
            return flags[name], f"--{name.replace('_', '-')}"
        env_name = _ENV.get(name)
        if env_name and env.get(env_name, "") != "":
            return env[env_name], env_name
        if name in file_values:
            return file_values[name], f"{name} in {file_path}"
        return None

    def text(name: str, default: str = "") -> tuple[str, str]:
        found = source(name)
        if found is None:
            return default, name
        value, where = found
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            msg = f"{where}: expected a string, got {type(value).__name__}"
            raise ConfigError(msg)
        return str(value), where

    account_id, _ = text("account_id")
    client_id, _ = text("client_id")
    client_secret, _ = text("client_secret")
    secret_file, secret_file_where = text("client_secret_file")
    if not client_secret and secret_file:
        client_secret = _read_secret_file(secret_file, secret_file_where)
    if need_credentials:
        missing = [
            label
            for label, value in (
                ("ZOOM_ACCOUNT_ID (or --account-id)", account_id),
                ("ZOOM_CLIENT_ID", client_id),
                ("ZOOM_CLIENT_SECRET (or ZOOM_CLIENT_SECRET_FILE)", client_secret),
            )
            if not value.strip()
        ]
        if missing:
            msg = (
                f"missing {', '.join(missing)}: set them from your Zoom Server-to-Server OAuth app "
                "(environment or config file); see `zoom-oplog-shipper --help`"
            )
            raise ConfigError(msg)

    category, where = text("category_type", "all")
    category = _choice(category.strip().lower(), where, CATEGORY_TYPES)

    backfill: datetime | None = None
    backfill_text, where = text("backfill_start")
    if backfill_text.strip():
        backfill = parse_instant(backfill_text, where)
        if backfill > now:
            msg = (
                f"{where}: {backfill_text!r} is in the future; use a past date, "
                "or leave it unset to start at the first run"
            )
            raise ConfigError(msg)
        oldest = retention_floor(now.date())
        oldest_dt = datetime(oldest.year, oldest.month, oldest.day, tzinfo=UTC)
        if backfill < oldest_dt:
            log.warning(
                "%s %s is older than Zoom keeps operation logs (about 6 months); "
                "starting at %s, the oldest day Zoom serves",
                where,
                backfill_text,
                oldest.isoformat(),
            )
            backfill = oldest_dt

    api_url, where = text("api_url", DEFAULT_API_URL)
    api_url = check_url(api_url, where)
    oauth_url, where = text("oauth_url", DEFAULT_OAUTH_URL)
    oauth_url = check_url(oauth_url, where)

    state_text, _ = text("state_dir")
    state_dir = Path(state_text).expanduser() if state_text else default_state_dir()

    lookback_text, where = text("lookback")
    lookback = parse_duration(lookback_text, where) if lookback_text else DEFAULT_LOOKBACK
    if lookback < timedelta(0) or lookback > timedelta(days=31):
        msg = f"{where}: {lookback_text!r} is out of range; use 0 to 31 days (default 24h)"
        raise ConfigError(msg)

    runtime_text, where = text("max_runtime")
    max_runtime = parse_duration(runtime_text, where) if runtime_text else DEFAULT_MAX_RUNTIME
    if max_runtime <= timedelta(0):
        msg = f"{where}: {runtime_text!r} must be positive, e.g. 5m"
        raise ConfigError(msg)

    max_rps = _number(*text("max_rps"), float, 0, DEFAULT_MAX_RPS, "a number of requests per second >= 0 (0: no limit)")
    max_line = int(
        _number(
            *text("max_line_bytes"),
            int,
            MIN_MAX_LINE_BYTES,
            DEFAULT_MAX_LINE_BYTES,
            f"a whole number >= {MIN_MAX_LINE_BYTES}",
        )
    )

    max_records = int(_number(*text("max_records"), int, 0, 0, "a whole number of records >= 0 (0: no limit)"))
    metrics_text, _ = text("metrics_file")
    metrics_file = Path(metrics_text).expanduser() if metrics_text.strip() else None

    fmt, where = text("format", "ecs")
    fmt = _choice(fmt.strip().lower(), where, OUTPUT_FORMATS)

    found = source("include_original")
    include_original = False
    if found is not None:
        value, where = found
        include_original = value if isinstance(value, bool) else parse_bool(str(value), where)

    level, where = text("log_level", "info")
    level = _choice(level.strip().lower(), where, LOG_LEVELS)
    log_format, where = text("log_format", "text")
    log_format = _choice(log_format.strip().lower(), where, LOG_FORMATS)

    return Config(
        account_id=account_id.strip(),
        client_id=client_id.strip(),
        client_secret=client_secret.strip(),
        state_dir=state_dir,
        category_type=category,
        backfill_start=backfill,
        api_url=api_url,
        oauth_url=oauth_url,
        lookback=lookback,
        max_runtime=max_runtime,
        max_rps=max_rps,
        max_line_bytes=max_line,
        max_records=max_records,
        metrics_file=metrics_file,
        output_format=fmt,
        include_original=include_original,
        log_level=level,
        log_format=log_format,
        config_file=file_path,
    )


def environ() -> Mapping[str, str]:
    """The process environment (an edge function, so tests can pass their own mapping)."""
    return os.environ
