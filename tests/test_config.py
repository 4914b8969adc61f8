from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import platformdirs  # imported here, before any fork: an unprivileged child cannot read root's install
import pytest
from unprivileged import open_directory, run_unprivileged

from zoom_oplog_shipper.config import Config, load_config
from zoom_oplog_shipper.errors import ConfigError
from zoom_oplog_shipper.settings import (
    DEFAULT_API_URL,
    DEFAULT_LOOKBACK,
    DEFAULT_MAX_RPS,
    check_url,
    parse_duration,
    parse_instant,
)

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
ENV = {"ZOOM_ACCOUNT_ID": "acct", "ZOOM_CLIENT_ID": "cid", "ZOOM_CLIENT_SECRET": "S3CRET-xyz"}


def load(flags: dict[str, Any] | None = None, env: dict[str, str] | None = None, **kw: Any) -> Config:
    return load_config(flags or {}, {**ENV, **(env or {})}, NOW, **kw)


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    cfg = load()
    assert cfg.category_type == "all"
    assert cfg.api_url == DEFAULT_API_URL
    assert cfg.lookback == DEFAULT_LOOKBACK
    assert cfg.max_rps == DEFAULT_MAX_RPS
    assert cfg.backfill_start is None
    assert cfg.output_format == "ecs"
    assert "S3CRET" not in repr(cfg)


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('category_type = "user"\nlookback = "2h"\nmax_rps = 3\n')
    path.chmod(0o600)
    cfg = load({"config": str(path)})
    assert (cfg.category_type, cfg.lookback, cfg.max_rps) == ("user", timedelta(hours=2), 3.0)
    cfg = load({"config": str(path)}, {"ZOOM_CATEGORY_TYPE": "account"})
    assert cfg.category_type == "account"
    cfg = load({"config": str(path), "category_type": "role"}, {"ZOOM_CATEGORY_TYPE": "account"})
    assert cfg.category_type == "role"


def test_config_file_from_env_variable(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('account_id = "from-file"\n')
    cfg = load_config({}, {"ZOOM_OPLOG_CONFIG": str(path), "ZOOM_CLIENT_ID": "c", "ZOOM_CLIENT_SECRET": "s"}, NOW)
    assert cfg.account_id == "from-file"


def test_secret_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-file-secret\n")
    secret.chmod(0o644)
    env = {"ZOOM_ACCOUNT_ID": "a", "ZOOM_CLIENT_ID": "c", "ZOOM_CLIENT_SECRET_FILE": str(secret)}
    with caplog.at_level(logging.WARNING):
        cfg = load_config({}, env, NOW)
    assert cfg.client_secret == "from-file-secret"
    assert "chmod 600" in caplog.text
    assert "from-file-secret" not in caplog.text


def test_world_readable_config_with_secret_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.toml"
    path.write_text('client_secret = "file-secret"\n')
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        cfg = load_config({"config": str(path)}, {"ZOOM_ACCOUNT_ID": "a", "ZOOM_CLIENT_ID": "c"}, NOW)
    assert cfg.client_secret == "file-secret"
    assert "readable by group or others" in caplog.text and "file-secret" not in caplog.text


def test_backfill_clamped_to_retention(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = load({"backfill_start": "2025-01-01"})
    assert cfg.backfill_start == datetime(2026, 5, 28, tzinfo=UTC)
    assert "oldest day Zoom serves" in caplog.text


def test_backfill_forms() -> None:
    assert load({"backfill_start": "2026-11-01"}).backfill_start == datetime(2026, 11, 1, tzinfo=UTC)
    cfg = load({"backfill_start": "2026-11-01T10:00:00+02:00"})
    assert cfg.backfill_start == datetime(2026, 11, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("flags", "env", "needle"),
    [
        ({}, {"ZOOM_ACCOUNT_ID": ""}, "missing ZOOM_ACCOUNT_ID"),
        ({}, {"ZOOM_CLIENT_ID": ""}, "missing ZOOM_CLIENT_ID"),
        ({}, {"ZOOM_CLIENT_SECRET": ""}, "missing ZOOM_CLIENT_SECRET"),
        ({"category_type": "users"}, {}, "--category-type: 'users' is not one of: all, user,"),
        ({}, {"ZOOM_CATEGORY_TYPE": "nope"}, "ZOOM_CATEGORY_TYPE: 'nope' is not one of"),
        ({"backfill_start": "2027-01-01"}, {}, "is in the future"),
        ({"backfill_start": "last tuesday"}, {}, "is not a date or datetime"),
        ({"api_url": "http://api.zoom.us/v2"}, {}, "uses plain http"),
        ({"oauth_url": "ftp://x"}, {}, "--oauth-url: 'ftp://x' is not an https URL"),
        ({"lookback": "forever"}, {}, "--lookback: 'forever' is not a duration"),
        ({"lookback": "60d"}, {}, "out of range"),
        ({"max_runtime": "0"}, {}, "must be positive"),
        ({"max_rps": "fast"}, {}, "--max-rps: 'fast' must be a number"),
        ({"max_rps": "-1"}, {}, "--max-rps: '-1' must be a number"),
        ({"max_line_bytes": "100"}, {}, "--max-line-bytes: '100' must be a whole number >= 2048"),
        ({"format": "xml"}, {}, "--format: 'xml' is not one of"),
        ({}, {"ZOOM_OPLOG_INCLUDE_ORIGINAL": "maybe"}, "is not a boolean"),
        ({}, {"ZOOM_OPLOG_LOG_LEVEL": "loud"}, "ZOOM_OPLOG_LOG_LEVEL: 'loud' is not one of"),
        ({"config": "/nonexistent/c.toml"}, {}, "config file /nonexistent/c.toml does not exist"),
        ({}, {"ZOOM_CLIENT_SECRET": "", "ZOOM_CLIENT_SECRET_FILE": "/nonexistent/s"}, "cannot read /nonexistent/s"),
    ],
)
def test_config_errors(flags: dict[str, Any], env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(flags, env)
    assert needle in str(info.value)
    assert "S3CRET" not in str(info.value)


def test_bad_toml_and_unknown_keys(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("account_id = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load({"config": str(bad)})
    typo = tmp_path / "typo.toml"
    typo.write_text('acount_id = "x"\n')
    with pytest.raises(ConfigError, match=r"unknown setting.*acount_id"):
        load({"config": str(typo)})
    wrong_type = tmp_path / "type.toml"
    wrong_type.write_text("account_id = [1]\n")
    with pytest.raises(ConfigError, match="expected a string"):
        load_config({"config": str(wrong_type)}, {}, NOW)


def test_credentials_not_needed_for_state_commands() -> None:
    cfg = load_config({}, {"ZOOM_ACCOUNT_ID": "a"}, NOW, need_credentials=False)
    assert cfg.client_secret == ""


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("90m", 5400), ("1h30m", 5400), ("2d", 172800), ("45", 45), ("1.5h", 5400)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text, "x") == timedelta(seconds=seconds)


def test_parse_instant_naive_is_utc() -> None:
    assert parse_instant("2026-01-01T00:00:00", "x") == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://api.zoom.us/v2/", True),
        ("http://127.0.0.1:8080/v2", True),
        ("http://localhost:1/v2", True),
        ("http://[::1]:9/v2", True),
        ("http://10.0.0.1/v2", False),
        ("https://", False),
        ("api.zoom.us", False),
    ],
)
def test_check_url(url: str, ok: bool) -> None:
    if ok:
        assert not check_url(url, "x").endswith("/")
    else:
        with pytest.raises(ConfigError):
            check_url(url, "x")


@pytest.mark.parametrize(
    ("env", "toml", "named"),
    [
        ({"ZOOM_CLIENT_SECRET_FILE": "{secret}"}, "", ("ZOOM_CLIENT_SECRET", "ZOOM_CLIENT_SECRET_FILE")),
        ({}, 'client_secret_file = "{secret}"\n', ("ZOOM_CLIENT_SECRET", "client_secret_file in")),
        (
            {"ZOOM_CLIENT_SECRET": ""},
            'client_secret = "x"\nclient_secret_file = "{secret}"\n',
            ("client_secret in", "client_secret_file in"),
        ),
    ],
)
def test_secret_and_secret_file_both_set_are_refused(
    tmp_path: Path, env: dict[str, str], toml: str, named: tuple[str, str]
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-file-secret\n")
    secret.chmod(0o600)
    path = tmp_path / "c.toml"
    path.write_text(toml.replace("{secret}", str(secret)))
    path.chmod(0o600)
    environment = {k: v.replace("{secret}", str(secret)) for k, v in env.items()}
    with pytest.raises(ConfigError) as info:
        load({"config": str(path)}, environment)
    text = str(info.value)
    assert info.value.exit_code == 2
    assert all(name in text for name in named)
    assert "ZOOM_CLIENT_SECRET and ZOOM_CLIENT_SECRET_FILE" in text
    assert "S3CRET" not in text and "from-file-secret" not in text and '"x"' not in text


def test_max_records_and_metrics_file(tmp_path: Path) -> None:
    cfg = load({}, {"XDG_CONFIG_HOME": str(tmp_path)})
    assert (cfg.max_records, cfg.metrics_file) == (0, None)
    cfg = load({"max_records": "500", "metrics_file": "~/m/zoom.prom"})
    assert cfg.max_records == 500 and cfg.metrics_file == Path("~/m/zoom.prom").expanduser()
    cfg = load({}, {"ZOOM_OPLOG_MAX_RECORDS": "7", "ZOOM_OPLOG_METRICS_FILE": "/var/tmp/z.prom"})
    assert (cfg.max_records, cfg.metrics_file) == (7, Path("/var/tmp/z.prom"))
    path = tmp_path / "c.toml"
    path.write_text('max_records = 9\nmetrics_file = "/x/y.prom"\n')
    cfg = load({"config": str(path)})
    assert (cfg.max_records, cfg.metrics_file) == (9, Path("/x/y.prom"))


@pytest.mark.parametrize(
    ("flags", "env", "needle"),
    [
        ({"max_records": "-1"}, {}, "--max-records: '-1' must be a whole number of records >= 0 (0: no limit)"),
        ({}, {"ZOOM_OPLOG_MAX_RECORDS": "1e3"}, "ZOOM_OPLOG_MAX_RECORDS: '1e3' must be a whole number"),
        ({"backfill_start": "2027-01-01"}, {}, "--backfill-start: '2027-01-01' is in the future"),
    ],
)
def test_new_and_reworked_setting_errors(flags: dict[str, Any], env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(flags, env)
    assert needle in str(info.value)


def test_a_default_config_file_that_cannot_be_looked_for_is_one_clear_error(tmp_path: Path) -> None:
    """`sudo -u agent ...` without -H leaves HOME at root's: the default file there cannot even be
    stat'ed. That is an exit-2 line naming the fix, never an unexpected failure nor a skipped file."""
    with open_directory() as base:
        home = base / "root-home"
        (home / "zoom-oplog-shipper").mkdir(parents=True)
        (home / "zoom-oplog-shipper" / "config.toml").write_text('max_rps = "1"\n')
        home.chmod(0o700)
        env = {"ZOOM_ACCOUNT_ID": "a", "ZOOM_CLIENT_ID": "c", "ZOOM_CLIENT_SECRET": "s"}

        def step() -> str:
            os.environ["XDG_CONFIG_HOME"] = str(home)
            assert platformdirs.user_config_dir("x")  # the real lookup the program does
            try:
                load_config({}, env, NOW)
            except ConfigError as exc:
                return str(exc)
            return "no error"

        message = run_unprivileged(step) if os.geteuid() == 0 else "skipped: not root"
    if message.startswith("skipped"):
        pytest.skip("needs root to drop to another user")
    assert message.startswith(f"cannot look for the default config file {home}/zoom-oplog-shipper/config.toml")
    assert "ZOOM_OPLOG_CONFIG" in message and "HOME" in message
