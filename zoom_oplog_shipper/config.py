"""Settings: one frozen dataclass, built once from flags, environment, a TOML file and defaults.

What each setting is (flag, variable, parser, default) is declared in ``settings.SETTINGS``; this module
reads the config file, applies the table and checks what involves more than one setting.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict, Unpack

from zoom_oplog_shipper.errors import ConfigError
from zoom_oplog_shipper.settings import (
    BY_NAME,
    DEFAULT_API_URL,
    DEFAULT_LOOKBACK,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_RPS,
    DEFAULT_MAX_RUNTIME,
    DEFAULT_OAUTH_URL,
    FILE_KEYS,
    SETTINGS,
    Found,
    default_config_path,
    is_loopback_url,
    lookup,
    read_setting,
)
from zoom_oplog_shipper.windows import retention_floor

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

    def secrets(self) -> tuple[str, ...]:
        """Values that must never be printed (used by the log redaction filter)."""
        return tuple(s for s in (self.client_secret,) if s)


@dataclass(frozen=True)
class Settings:
    """The settings of one command, read once: what the run uses, or the first problem and a best effort.

    ``best`` holds every setting that could be read, and the default in place of each one that could
    not, so that a run whose settings fail still reports under the account, stream, category and
    metrics file it was given, wherever they came from. ``warnings`` are to be logged once logging is
    set up as the settings ask.
    """

    best: Config
    error: ConfigError | None
    warnings: tuple[str, ...]

    @property
    def config(self) -> Config:
        """The validated settings; the first problem is raised when there is one."""
        if self.error is not None:
            raise self.error
        return self.best


def _file_warning(path: Path, data: Mapping[str, Any]) -> str | None:
    """A warning for a config file that holds the secret and others may read."""
    if "client_secret" in data and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"config file {path} holds client_secret and is readable by group or others; run: chmod 600 {path}"
    return None


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
    return data


def _read_secret_file(path_text: str, setting: str, warnings: list[str]) -> str:
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
        warnings.append(f"secret file {path} is readable by group or others; run: chmod 600 {path}")
    return secret


def _config_path(flags: Mapping[str, Any], env: Mapping[str, str]) -> Path | None:
    """The config file named by --config or ZOOM_OPLOG_CONFIG, else the default one when it exists."""
    path: Path | None = read_setting(BY_NAME["config"], lookup(BY_NAME["config"], flags, env, {}, None)).value
    if path is None and _default_config_exists(default_config_path()):
        path = default_config_path()
    return path


def _default_config_exists(path: Path) -> bool:
    """Whether the default config file is there; one that cannot even be looked for is an error,
    never skipped (its settings would silently not apply)."""
    try:
        return path.is_file()
    except OSError as exc:
        msg = (
            f"cannot look for the default config file {path} ({exc.strerror}): it is under a home "
            "directory this user cannot enter (HOME left from another user, e.g. by `sudo -u` without -H?); "
            f"run with this user's own HOME, or name the config file with {BY_NAME['config'].env} or "
            f"{BY_NAME['config'].flag}"
        )
        raise ConfigError(msg) from None


def _client_secret(found: Mapping[str, Found], warnings: list[str]) -> str:
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
        return _read_secret_file(secret_file.value, secret_file.where, warnings)
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


def _check_backfill(found: Found, now: datetime, warnings: list[str]) -> datetime | None:
    """Refuse a start in the future; clamp one older than Zoom keeps, with a warning."""
    backfill: datetime | None = found.value
    if backfill is None:
        return None
    if backfill > now:
        msg = (
            f"{found.where}: {found.text!r} is in the future; "
            "use a past date, or leave it unset to start at the first run"
        )
        raise ConfigError(msg)
    oldest = retention_floor(now.date())
    oldest_dt = datetime(oldest.year, oldest.month, oldest.day, tzinfo=UTC)
    if backfill < oldest_dt:
        warnings.append(
            f"{found.where} {found.text} is older than Zoom keeps operation logs (about 6 months); "
            f"starting at {oldest.isoformat()}, the oldest day Zoom serves"
        )
        return oldest_dt
    return backfill


def _check_category(found: Mapping[str, Found]) -> None:
    """`--category-type` with the activity logs is a contradiction on one command line: refuse it.

    From the environment or the config file, which both streams may share, it is the operation
    logs' setting and the activity logs do without it.
    """
    category, stream = found["category_type"], found["stream"]
    if stream.value != "operations" and category.where == BY_NAME["category_type"].flag:
        msg = (
            f"--category-type applies to the operation logs only; the {stream.value} stream has no categories: "
            "drop --category-type, or use --stream operations"
        )
        raise ConfigError(msg)


#: (setting, whether a value turns off a safety net, what is lost): accepted, with a warning.
_SAFETY_NETS: tuple[tuple[str, Callable[[Any, Mapping[str, Any]], bool], str], ...] = (
    (
        "lookback",
        lambda value, _values: value == timedelta(0),
        "late records are lost: a record Zoom shows after a run has passed its time is never sent "
        "(the default 24h re-reads the last day)",
    ),
    (
        "max_rps",
        # The request limit shares the account's quota with its other apps; a loopback API (the
        # simulator) has no such quota to protect.
        lambda value, values: value == 0 and not is_loopback_url(str(values["api_url"])),
        "no request rate limit: a backfill may spend the whole account's per-second quota, which its "
        "other apps share, and be answered HTTP 429 (the default is 5 requests a second)",
    ),
)


def _safety_warnings(found: Mapping[str, Found], values: Mapping[str, Any]) -> list[str]:
    """A warning for each setting whose value turns off a safety net, saying what is lost."""
    return [
        f"{found[name].where} {found[name].text!r} turns a safety net off: {lost}"
        for name, turns_off, lost in _SAFETY_NETS
        if found[name].text and turns_off(values[name], values)
    ]


def _read_all(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    problems: list[ConfigError],
    warnings: list[str],
    use_file: bool = True,
) -> dict[str, Found]:
    """Every file setting looked up and parsed; one that fails takes its default, its problem noted."""
    file_path: Path | None = None
    file_values: dict[str, Any] = {}
    try:
        file_path = _config_path(flags, env) if use_file else None
        file_values = read_config_file(file_path) if file_path else {}
    except ConfigError as exc:
        problems.append(exc)
    note = _file_warning(file_path, file_values) if file_path and file_values else None
    warnings += [note] if note else []
    found = {}
    for s in SETTINGS:
        if not s.toml:
            continue
        try:
            found[s.name] = read_setting(s, lookup(s, flags, env, file_values, file_path))
        except ConfigError as exc:
            problems.append(exc)
            found[s.name] = read_setting(s, None)
    return found


def _checked(step: Callable[[], Any], problems: list[ConfigError], fallback: Any) -> Any:
    """``step()``, or ``fallback`` with its problem noted."""
    try:
        return step()
    except ConfigError as exc:
        problems.append(exc)
        return fallback


def read_settings_once(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    now: datetime,
    *,
    need_credentials: bool = True,
    use_file: bool = True,
) -> Settings:
    """Merge flags > environment > config file > defaults, once: the settings, or their first problem.

    ``flags`` holds the command-line values (None when not given) keyed by setting name, plus
    ``config`` for ``--config``; ``use_file=False`` reads no config file. Nothing is logged here: the
    warnings come back with the settings.
    """
    problems: list[ConfigError] = []
    warnings: list[str] = []
    found = _read_all(flags, env, problems, warnings, use_file)
    values = {name: f.value for name, f in found.items()}
    values["client_secret"] = _checked(lambda: _client_secret(found, warnings), problems, "")
    if need_credentials:
        _checked(lambda: _require_credentials(values), problems, None)
    values["backfill_start"] = _checked(lambda: _check_backfill(found["backfill_start"], now, warnings), problems, None)
    _checked(lambda: _check_category(found), problems, None)
    if not problems:
        warnings += _safety_warnings(found, values)
    fields = {s.config_field: values[s.name] for s in SETTINGS if s.toml and s.config_field}
    best = Config(**fields)
    return Settings(best, problems[0] if problems else None, tuple(warnings))


class ReadOptions(TypedDict, total=False):
    """How :func:`read_settings_once` reads (its keyword arguments)."""

    need_credentials: bool
    use_file: bool


def load_config(
    flags: Mapping[str, Any], env: Mapping[str, str], now: datetime, **options: Unpack[ReadOptions]
) -> Config:
    """The validated settings (see :func:`read_settings_once`), their warnings logged; ConfigError otherwise."""
    settings = read_settings_once(flags, env, now, **options)
    for warning in settings.warnings:
        log.warning("%s", warning)
    return settings.config
