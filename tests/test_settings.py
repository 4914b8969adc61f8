"""The settings table is the one place a setting is named: flags, variables, file keys, --help, README."""

from __future__ import annotations

import argparse
import dataclasses
import io
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from zoom_oplog_shipper.cli import COMMANDS, _normalize_argv, build_parser, main
from zoom_oplog_shipper.config import Config, load_config
from zoom_oplog_shipper.errors import ConfigError
from zoom_oplog_shipper.settings import (
    BY_NAME,
    FILE_KEYS,
    README_END,
    README_START,
    SETTINGS,
    readme_table,
    replace_readme_table,
    windows_at_once,
)

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
CREDENTIALS = {"ZOOM_ACCOUNT_ID": "acct", "ZOOM_CLIENT_ID": "cid", "ZOOM_CLIENT_SECRET": "S3CRET-xyz"}

#: Three different valid values per setting (flag text, variable text, TOML value) and what each becomes.
#: A new setting needs a row here: the precedence test below covers every setting.
SAMPLES: dict[str, tuple[tuple[Any, Any], tuple[Any, Any], tuple[Any, Any]]] = {
    "account_id": (("a-flag", "a-flag"), ("a-env", "a-env"), ("a-file", "a-file")),
    "client_id": ((None, None), ("c-env", "c-env"), ("c-file", "c-file")),
    "client_secret": ((None, None), ("s-env", "s-env"), ("s-file", "s-file")),
    "category_type": (("role", "role"), ("USER", "user"), ("account", "account")),
    "backfill_start": (
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-10-01T06:00:00Z", datetime(2026, 10, 1, 6, tzinfo=UTC)),
        ("2026-09-01", datetime(2026, 9, 1, tzinfo=UTC)),
    ),
    "api_url": (("https://a.example/v2/", "https://a.example/v2"), ("https://b.example/v2", "https://b.example/v2"),
                ("https://c.example/v2", "https://c.example/v2")),
    "oauth_url": (("https://a.example/t", "https://a.example/t"), ("https://b.example/t", "https://b.example/t"),
                  ("https://c.example/t", "https://c.example/t")),
    "state_dir": (("/tmp/a", Path("/tmp/a")), ("/tmp/b", Path("/tmp/b")), ("/tmp/c", Path("/tmp/c"))),
    "lookback": (("2h", timedelta(hours=2)), ("90m", timedelta(minutes=90)), (60, timedelta(minutes=1))),
    "max_runtime": (("1h", timedelta(hours=1)), ("30s", timedelta(seconds=30)), ("2m", timedelta(minutes=2))),
    "max_rps": (("1.5", 1.5), ("0", 0.0), (3, 3.0)),
    "max_line_bytes": (("4096", 4096), ("8192", 8192), (65536, 65536)),
    "stream": (("activities", "activities"), ("operations", "operations"), ("activities", "activities")),
    "concurrency": (("5", 5), ("auto", 0), (4, 4)),
    "max_records": (("100", 100), ("0", 0), (5000, 5000)),
    "metrics_file": (("/tmp/a.prom", Path("/tmp/a.prom")), ("/tmp/b.prom", Path("/tmp/b.prom")),
                     ("/tmp/c.prom", Path("/tmp/c.prom"))),
    "format": (("raw", "raw"), ("OCSF", "ocsf"), ("ecs", "ecs")),
    "include_original": ((True, True), ("false", False), (True, True)),
    "log_level": (("debug", "debug"), ("warning", "warning"), ("error", "error")),
    "log_format": (("json", "json"), ("text", "text"), ("json", "json")),
}  # fmt: skip


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else f'"{value}"'


def _field(config: Config, name: str) -> Any:
    setting = next(s for s in SETTINGS if s.name == name)
    return getattr(config, setting.config_field)


def test_every_file_setting_has_samples() -> None:
    assert set(SAMPLES) == FILE_KEYS - {"client_secret_file"}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_precedence_flag_over_env_over_file_over_default(name: str, tmp_path: Path) -> None:
    setting = next(s for s in SETTINGS if s.name == name)
    (flag_in, flag_out), (env_in, env_out), (file_in, file_out) = SAMPLES[name]
    path = tmp_path / "c.toml"
    path.write_text(f"{name} = {_toml(file_in)}\n")
    path.chmod(0o600)
    base = {k: v for k, v in CREDENTIALS.items() if k != setting.env}
    base["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env = {**base, setting.env: str(env_in)}

    def load(flags: dict[str, Any], environment: dict[str, str]) -> Any:
        return _field(load_config({"config": str(path), **flags}, environment, NOW), name)

    assert load({}, base) == file_out
    assert load({}, env) == env_out
    if setting.flag:
        assert load({name: flag_in}, env) == flag_out


def test_defaults_are_the_declared_defaults(tmp_path: Path) -> None:
    config = load_config({}, {**CREDENTIALS, "XDG_CONFIG_HOME": str(tmp_path)}, NOW)
    for s in SETTINGS:
        if s.toml and s.config_field and not s.required and not callable(s.default):
            assert getattr(config, s.config_field) == s.default, s.name


def test_config_fields_are_the_declared_settings() -> None:
    declared = {s.config_field for s in SETTINGS if s.config_field}
    assert declared == {f.name for f in dataclasses.fields(Config)}


def test_file_keys_are_the_declared_names(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('acount_id = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_config({"config": str(path)}, CREDENTIALS, NOW)
    listed = set(re.search(r"known settings are (.*)$", str(info.value)).group(1).split(", "))  # type: ignore[union-attr]
    assert listed == FILE_KEYS == {s.name for s in SETTINGS} - {"config"}


# -- --help ---------------------------------------------------------------------------------------------
def _settings_group(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    return next(g for g in parser._action_groups if (g.title or "").startswith("settings"))


def _account_commands() -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command whose parser has the settings group, by its words (e.g. "state show")."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        if any((g.title or "").startswith("settings") for g in parser._action_groups):
            found[" ".join(words)] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for word, sub in action.choices.items():
                    walk(sub, [*words, word])

    walk(build_parser(simulator_options=False), [])
    return found


def test_account_commands_take_the_settings() -> None:
    assert {"run", "check", "state show", "state reset", "state path"} <= set(_account_commands())


@pytest.mark.parametrize("command", sorted(_account_commands()))
def test_help_flags_are_exactly_the_declared_flags(command: str) -> None:
    group = _settings_group(_account_commands()[command])
    shown = {o for a in group._group_actions for o in a.option_strings}
    assert shown == {s.flag for s in SETTINGS if s.flag}


def test_help_names_every_setting_with_its_variable_and_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: each help line whole
    with pytest.raises(SystemExit):
        build_parser(simulator_options=False).parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for s in SETTINGS:
        assert s.env in text
        if s.flag:
            assert " ".join(s.help_text().split()) in text, s.name
            assert "[env " + s.env + "]" in text
    assert "never flags: ZOOM_CLIENT_ID, ZOOM_CLIENT_SECRET, ZOOM_CLIENT_SECRET_FILE" in text


# -- README ---------------------------------------------------------------------------------------------
def test_readme_settings_table_is_generated_from_the_declarations() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(README_START) == 1 and readme.count(README_END) == 1
    region = readme.split(README_START, 1)[1].split(README_END, 1)[0].strip()
    assert region == readme_table(), (
        "README.md's settings table differs from zoom_oplog_shipper/settings.py; run "
        "`python -m zoom_oplog_shipper.settings --update-readme README.md`"
    )


def test_readme_table_has_a_row_per_setting() -> None:
    rows = readme_table().splitlines()[2:]
    assert len(rows) == len(SETTINGS)
    for s, row in zip(SETTINGS, rows, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == f"`{s.env}`" and cells[1] == (f"`{s.flag}`" if s.flag else "")


def test_update_readme_rewrites_only_the_table(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text(f"# Title\n\nbefore\n\n{README_START}\n| old | table |\n{README_END}\n\nafter\n")
    subprocess.run(
        [sys.executable, "-m", "zoom_oplog_shipper.settings", "--update-readme", str(path)], check=True, cwd=ROOT
    )
    text = path.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith(f"{README_END}\n\nafter\n")
    assert "| old | table |" not in text and readme_table() in text
    assert replace_readme_table(text) == text


def test_update_readme_without_markers_says_what_to_add() -> None:
    with pytest.raises(ConfigError, match="settings markers"):
        replace_readme_table("# no table here\n")


# -- the command line: secrets, unknown commands ----------------------------------------------------
def _cli(argv: list[str], tmp_path: Path) -> tuple[int, str, bytes]:
    out, err = io.BytesIO(), io.StringIO()
    env = {**CREDENTIALS, "ZOOM_OPLOG_STATE_DIR": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "x")}
    code = main(argv, env=env, stdout=out, stderr=err)
    return code, err.getvalue(), out.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["--client-secret", "hunter2-value"],
        ["--client-secret=hunter2-value"],
        ["run", "--lookback", "2h", "--client-secret", "hunter2-value"],
        ["check", "--client-secret=hunter2-value"],
        ["state", "show", "--client-secret", "hunter2-value"],
    ],
)
def test_secret_flag_is_refused_without_echoing_it(argv: list[str], tmp_path: Path) -> None:
    code, err, out = _cli(argv, tmp_path)
    assert code == 2 and out == b""
    assert "secrets are never flags" in err
    assert "ZOOM_CLIENT_SECRET " in err and "ZOOM_CLIENT_SECRET_FILE" in err
    assert "hunter2" not in err


@pytest.mark.parametrize(
    ("argv", "variable"),
    [(["--client-id", "abc"], "ZOOM_CLIENT_ID"), (["run", "--client-secret-file=/x"], "ZOOM_CLIENT_SECRET_FILE")],
)
def test_other_non_flag_settings_name_their_variable(argv: list[str], variable: str, tmp_path: Path) -> None:
    code, err, _ = _cli(argv, tmp_path)
    assert code == 2
    assert f"is not a flag; set {variable}" in err


@pytest.mark.parametrize("argv", [["rn"], ["chek", "--lookback", "2h"], ["stat"]])
def test_unknown_command_lists_the_commands(argv: list[str], tmp_path: Path) -> None:
    code, err, out = _cli(argv, tmp_path)
    assert code == 2 and out == b""
    assert repr(argv[0]) in err
    assert all(repr(command) in err for command in COMMANDS)
    assert "Traceback" not in err


def test_settings_module_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "zoom_oplog_shipper.settings", "--readme"], capture_output=True, text=True, check=True
    )
    assert done.stdout == readme_table() + "\n"


@pytest.mark.parametrize(
    ("argv", "normalized"),
    [
        ([], ["run"]),
        (["--lookback", "2h"], ["run", "--lookback", "2h"]),
        (["--look", "2h"], ["run", "--look", "2h"]),  # an unknown option's value is not a command (refused later)
        (["--max-record", "5"], ["run", "--max-record", "5"]),
        (["--log-format", "json", "check"], ["check", "--log-format", "json"]),
        (["--account-id", "a", "state", "show"], ["state", "show", "--account-id", "a"]),
        (["--include-original", "run"], ["run", "--include-original"]),
        (["--client-secret", "hunter2", "check"], ["check", "--client-secret", "hunter2"]),
        (["--client-secret", "hunter2"], ["run", "--client-secret", "hunter2"]),
        (["--lookback=2h", "rn"], ["rn", "--lookback=2h"]),
        (["-h"], ["-h"]),
        (["state", "show"], ["state", "show"]),
    ],
)
def test_the_command_goes_first(argv: list[str], normalized: list[str]) -> None:
    assert _normalize_argv(argv) == normalized


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["--log-format", "json", "--lookback", "2h", "rn"], 2, "invalid choice: 'rn'"),
        (["--client-secret", "hunter2-value", "check"], 2, "secrets are never flags"),
        (["--log-level", "warning", "state", "path"], 0, ""),
    ],
)
def test_options_before_the_command(argv: list[str], code: int, needle: str, tmp_path: Path) -> None:
    result, err, out = _cli(argv, tmp_path)
    assert result == code and needle in err and "hunter2" not in err
    assert (out != b"") == (code == 0)


@pytest.mark.parametrize(
    ("concurrency", "max_rps", "windows"),
    [(0, 5.0, 3), (0, 10.0, 5), (0, 0.0, 3), (0, 1000.0, 16), (1, 10.0, 1), (7, 1.0, 7)],
)
def test_auto_concurrency_uses_the_allowed_request_rate(concurrency: int, max_rps: float, windows: int) -> None:
    assert windows_at_once(concurrency, max_rps) == windows


@pytest.mark.parametrize("text", ["0", "17", "two", "-1"])
def test_concurrency_outside_its_range_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"ZOOM_OPLOG_CONCURRENCY: .* must be `auto` or a whole number from 1 to 16"):
        BY_NAME["concurrency"].parse(text, "ZOOM_OPLOG_CONCURRENCY")


@pytest.mark.parametrize(
    ("env", "warned"),
    [
        ({"ZOOM_OPLOG_MAX_RPS": "0"}, "ZOOM_OPLOG_MAX_RPS '0' turns a safety net off: no request rate limit"),
        ({"ZOOM_OPLOG_MAX_RPS": "0", "ZOOM_API_URL": "http://127.0.0.1:8080/v2"}, None),  # the simulator: no quota
        ({"ZOOM_OPLOG_LOOKBACK": "0s"}, "ZOOM_OPLOG_LOOKBACK '0s' turns a safety net off: late records are lost"),
        ({"ZOOM_OPLOG_MAX_RPS": "2", "ZOOM_OPLOG_LOOKBACK": "2h"}, None),
    ],
)
def test_values_that_turn_a_safety_net_off_are_warned(env: dict[str, str], warned: str | None) -> None:
    from zoom_oplog_shipper.config import read_settings_once

    settings = read_settings_once({}, {**CREDENTIALS, **env}, NOW)
    assert settings.error is None
    nets = [w for w in settings.warnings if "safety net" in w]
    assert len(nets) == (warned is not None) and all(w.startswith(str(warned)) for w in nets)


def test_the_settings_table_shows_the_line_limits_minimum() -> None:
    row = next(line for line in readme_table().splitlines() if "`max_line_bytes`" in line)
    assert "at least 2048" in row
    assert row in (ROOT / "README.md").read_text(encoding="utf-8")
