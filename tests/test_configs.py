"""The shipped agent configs under configs/: every file parses, and the facts that silently lose or
corrupt events when wrong hold in each (issue 4; docs/agents.md explains every trap)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_configs import (
    CONFIGS,
    CONSOLE_SCRIPT,
    CRON_FILE,
    ENV_EXAMPLE,
    ES_COMPONENT,
    ES_INDEX_TEMPLATE,
    FLUENT_BIT_CONFIGS,
    FLUENT_BIT_MULTI,
    FLUENT_BIT_YAML,
    K8S_CRONJOB,
    SPLUNK_INPUTS,
    SPLUNK_PROPS,
    SYSTEMD_SERVICE,
    SYSTEMD_TIMER,
    VECTOR_CONFIGS,
    VECTOR_TOML,
    console_script,
    iter_strings,
    read_cron_d,
    read_env_file,
    read_fluent_bit_classic,
    read_ini,
    read_vector,
    read_yaml_all,
)

SECRET_KEY = re.compile(r"(password|passwd|token|secret)", re.IGNORECASE)
ENV_REFERENCE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(:[-?][^}]*)?\}$")


# ---------------------------------------------------------------------------------------------
# Every file parses.


def _check_shell_syntax(path: Path) -> None:
    subprocess.run(["/bin/sh", "-n", str(path)], check=True, timeout=10)


def _content_lines(path: Path) -> list[str]:
    """Line-based files (sysusers.d, tmpfiles.d, requirements): the lines that are not comments."""
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]


PARSERS: dict[str, Any] = {
    ".yaml": read_yaml_all,
    ".toml": lambda p: tomllib.loads(p.read_text(encoding="utf-8")),
    ".json": lambda p: json.loads(p.read_text(encoding="utf-8")),
    ".service": read_ini,
    ".timer": read_ini,
    ".sh": _check_shell_syntax,
    ".example": read_env_file,
    ".logrotate": lambda p: re.search(r"^/\S+( /\S+)* \{$.*^\}$", p.read_text(encoding="utf-8"), re.M | re.S),
    ".sysusers": _content_lines,
    ".tmpfiles": _content_lines,
    ".txt": _content_lines,
}


def _parse_any(path: Path) -> Any:
    if path.suffix == ".conf":
        if path.parent.name == "fluent-bit":
            return read_fluent_bit_classic(path)
        return read_ini(path)
    if path.name == "Dockerfile":
        text = path.read_text(encoding="utf-8")
        return re.search(r"^ENTRYPOINT \[\"zoom-oplog-shipper\"\]$", text, re.M)
    if path.parent.name == "cron":
        return read_cron_d(path)
    return PARSERS[path.suffix](path)


CONFIG_FILES = sorted(p for p in CONFIGS.rglob("*") if p.is_file())


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_config_file_parses(path: Path) -> None:
    parsed = _parse_any(path)
    if path.suffix != ".sh":
        assert parsed, f"{path} parsed to nothing"


def test_the_expected_configs_are_shipped() -> None:
    for path in (*VECTOR_CONFIGS, *FLUENT_BIT_CONFIGS, ES_COMPONENT, ES_INDEX_TEMPLATE, SPLUNK_INPUTS, SPLUNK_PROPS):
        assert path.is_file(), path
    for path in (SYSTEMD_SERVICE, SYSTEMD_TIMER, CRON_FILE, ENV_EXAMPLE, K8S_CRONJOB):
        assert path.is_file(), path


def test_the_console_script_is_the_installed_entry_point() -> None:
    (entry,) = entry_points(group="console_scripts", name=CONSOLE_SCRIPT)
    assert entry.value == "zoom_oplog_shipper._entry:entry"
    assert os.access(console_script(), os.X_OK)


# ---------------------------------------------------------------------------------------------
# Elasticsearch, Splunk, systemd, cron and Kubernetes: tests/test_configs_{elasticsearch,splunk,
# systemd,kubernetes}.py; the backfill path: tests/test_backfill_path.py.


# ---------------------------------------------------------------------------------------------
# Secrets only through the environment.


STRUCTURED = [
    *VECTOR_CONFIGS,
    FLUENT_BIT_YAML,
    FLUENT_BIT_MULTI,
    K8S_CRONJOB,
]


@pytest.mark.parametrize("path", STRUCTURED, ids=lambda p: p.name)
def test_secrets_come_from_the_environment(path: Path) -> None:
    data: Any = read_vector(path) if path.parent.name == "vector" else read_yaml_all(path)
    checked = 0
    for where, value in iter_strings(data):
        key = where.rsplit(".", 1)[-1]
        if (
            where.endswith("<key>")
            or not SECRET_KEY.search(key)
            or key.endswith(("_FILE", "secretKeyRef", "secretName"))
        ):
            continue
        checked += 1
        assert ENV_REFERENCE.match(value), f"{path.name}: {where} = {value!r} is not an environment reference"
    if path.parent.name in ("vector", "fluent-bit") and path != VECTOR_TOML:
        assert checked, f"{path.name}: no secret setting found to check"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_no_literal_credentials_anywhere(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    for match in re.finditer(
        r"(ZOOM_CLIENT_SECRET|SPLUNK_HEC_TOKEN|ELASTICSEARCH_PASSWORD)[ \t]*[=:][ \t]*(\S*)", text
    ):
        value = match.group(2).strip("\"'")
        assert value == "" or value.startswith(("$", "/", "%")), f"{path.name}: {match.group(0)!r}"


def test_yaml_configs_are_plain_yaml() -> None:
    # Fluent Bit and Vector read YAML 1.2-ish scalars; nothing in the shipped files relies on tags.
    for path in CONFIGS.rglob("*.yaml"):
        assert "!!" not in path.read_text(encoding="utf-8"), path
        yaml.safe_load_all(path.read_text(encoding="utf-8"))
