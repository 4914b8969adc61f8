"""The shipped agent configs under configs/: every file parses, and the facts that silently lose or
corrupt events when wrong hold in each (issue 4; docs/agents.md explains every trap)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
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
    credentials_env,
    cron_period_seconds,
    duration_seconds,
    ini_value,
    iter_strings,
    make_account,
    program_settings,
    read_cron_d,
    read_env_file,
    read_fluent_bit_classic,
    read_ini,
    read_vector,
    read_yaml_all,
    splunk_time_format,
    start_simulator,
    to_python_datetime,
    zoom_env,
)

from zoom_oplog_shipper.cli import build_parser, main
from zoom_oplog_shipper.config import DEFAULT_MAX_LINE_BYTES, load_config

HOURLY = 3600
#: Container runtimes (containerd's max_container_log_line_size, Docker's json-file) split longer lines.
CRI_LINE_LIMIT = 16384
SECRET_KEY = re.compile(r"(password|passwd|token|secret)", re.IGNORECASE)
LITERAL_CREDENTIAL = re.compile(r"(ZOOM_CLIENT_SECRET|SPLUNK_HEC_TOKEN|ELASTICSEARCH_PASSWORD)[ \t]*[=:][ \t]*(\S*)")
ENV_REFERENCE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(:[-?][^}]*)?\}$")


# ---------------------------------------------------------------------------------------------
# A real run of the program, for the values the configs must handle.


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The ECS documents one `run` prints against the simulator (long records included)."""
    now = datetime.now(UTC)
    account = make_account("configs", 5, now)
    server = start_simulator(account)
    state = tmp_path_factory.mktemp("state")
    env = {**zoom_env(server.base_url, now), **credentials_env(account), "ZOOM_OPLOG_STATE_DIR": str(state)}
    out = io.BytesIO()
    err = io.StringIO()
    try:
        code = main(["run"], env=env, stdout=out, stderr=err)
    finally:
        server.shutdown()
    assert code == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert len(lines) == len(account.records)
    assert max(len(line) for line in lines) <= DEFAULT_MAX_LINE_BYTES
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def emitted_timestamp(emitted: list[dict[str, Any]]) -> str:
    """A real `@timestamp` as the program prints it."""
    stamp = emitted[0]["@timestamp"]
    assert isinstance(stamp, str)
    return stamp


def instant(stamp: str) -> datetime:
    """The reference reading of an RFC 3339 time."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------------------
# Every file parses.


def _check_shell_syntax(path: Path) -> None:
    subprocess.run(["/bin/sh", "-n", str(path)], check=True, timeout=10)


PARSERS: dict[str, Any] = {
    ".yaml": read_yaml_all,
    ".toml": lambda p: tomllib.loads(p.read_text(encoding="utf-8")),
    ".json": lambda p: json.loads(p.read_text(encoding="utf-8")),
    ".service": read_ini,
    ".timer": read_ini,
    ".sh": _check_shell_syntax,
    ".example": read_env_file,
    ".logrotate": lambda p: re.search(r"^/\S+ \{$.*^\}$", p.read_text(encoding="utf-8"), re.M | re.S),
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
# Elasticsearch templates.


def _index_template_matches(name: str) -> bool:
    template = json.loads(ES_INDEX_TEMPLATE.read_text(encoding="utf-8"))
    return any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), name) for p in template["index_patterns"])


def _leaves(doc: Any, path: str = "") -> Iterator[str]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(doc, list):
        for v in doc:
            yield from _leaves(v, path)
    else:
        yield path


def _mapped(properties: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = {"properties": properties}
    for part in path.split("."):
        node = (node or {}).get("properties", {}).get(part)
    return node


def test_index_template_composes_the_zoom_mappings_into_the_data_stream() -> None:
    template = json.loads(ES_INDEX_TEMPLATE.read_text(encoding="utf-8"))
    assert template["data_stream"] == {}
    assert template["priority"] > 100  # above Elastic's built-in logs-*-* template
    assert ES_COMPONENT.stem in template["composed_of"]
    assert "ecs@mappings" in template["composed_of"]
    assert set(template["ignore_missing_component_templates"]) <= {c for c in template["composed_of"] if "@custom" in c}
    assert _index_template_matches("logs-zoom.operation-default")


def test_component_template_maps_every_zoom_field_the_program_emits(emitted: list[dict[str, Any]]) -> None:
    properties = json.loads(ES_COMPONENT.read_text(encoding="utf-8"))["template"]["mappings"]["properties"]
    assert set(properties) == {"zoom"}  # ECS fields come from ecs@mappings
    zoom_fields = {leaf for doc in emitted for leaf in _leaves(doc) if leaf.startswith("zoom.")}
    assert {"zoom.operation.action", "zoom.operation.operation_detail"} <= zoom_fields
    for leaf in sorted(zoom_fields):
        mapping = _mapped(properties, leaf)
        assert mapping is not None, f"{leaf} is not mapped in {ES_COMPONENT.name}"
        assert mapping["type"] == "keyword"
        assert mapping["ignore_above"] <= 8191  # Lucene's term limit is 32766 bytes


# ---------------------------------------------------------------------------------------------
# Splunk.


def _props_sourcetype() -> str:
    (stanza,) = read_ini(SPLUNK_PROPS)
    return stanza


def test_splunk_scripted_input_runs_the_wrapper_hourly() -> None:
    stanzas = read_ini(SPLUNK_INPUTS)
    (name,) = stanzas
    assert name.startswith("script://./bin/")
    script = SPLUNK_INPUTS.parent / name.removeprefix("script://./")
    assert os.access(script, os.X_OK)
    lines = [ln.strip() for ln in script.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert lines[-1] == f"exec {CONSOLE_SCRIPT} run"
    assert int(ini_value(stanzas[name], "interval")) == HOURLY
    assert ini_value(stanzas[name], "sourcetype") == _props_sourcetype()
    assert ini_value(stanzas[name], "disabled") == "false"


def test_splunk_props_break_lines_and_read_the_emitted_timestamp(emitted: list[dict[str, Any]]) -> None:
    props = read_ini(SPLUNK_PROPS)[_props_sourcetype()]
    assert ini_value(props, "SHOULD_LINEMERGE") == "false"
    assert ini_value(props, "LINE_BREAKER") == r"([\r\n]+)"
    assert int(ini_value(props, "TRUNCATE")) >= 2 * DEFAULT_MAX_LINE_BYTES
    assert ini_value(props, "TZ") == "UTC"
    line = json.dumps(emitted[0], separators=(",", ":"), ensure_ascii=False)
    prefix = re.search(ini_value(props, "TIME_PREFIX"), line)
    assert prefix
    lookahead = int(ini_value(props, "MAX_TIMESTAMP_LOOKAHEAD"))
    text = line[prefix.end() : prefix.end() + lookahead].split('"')[0]
    parsed = to_python_datetime(text, splunk_time_format(ini_value(props, "TIME_FORMAT")))
    assert parsed == instant(emitted[0]["@timestamp"])


# ---------------------------------------------------------------------------------------------
# systemd, cron and the settings file.


def _example_settings(extra: dict[str, str] | None = None) -> Any:
    env = read_env_file(ENV_EXAMPLE)
    env.update({"ZOOM_ACCOUNT_ID": "a", "ZOOM_CLIENT_ID": "b", "ZOOM_CLIENT_SECRET": "c", **(extra or {})})
    return load_config({}, env, datetime.now(UTC))


def test_env_example_names_only_the_programs_settings(capsys: pytest.CaptureFixture[str]) -> None:
    env = read_env_file(ENV_EXAMPLE)
    assert {"ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_CLIENT_SECRET"} <= set(env)
    assert env["ZOOM_CLIENT_SECRET"] == "", "the example must not carry a secret"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    help_text = capsys.readouterr().out
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in set(re.findall(r"^#? ?(ZOOM_[A-Z_]+)=", text, re.M)):
        assert name in help_text, f"{name} is not a setting of `zoom-oplog-shipper run`"
    settings = _example_settings()
    assert settings.max_runtime.total_seconds() <= HOURLY / 2


def test_systemd_service_is_a_oneshot_bounded_below_the_timer() -> None:
    service = read_ini(SYSTEMD_SERVICE)["Service"]
    assert ini_value(service, "Type") == "oneshot"
    argv = ini_value(service, "ExecStart").split()
    assert Path(argv[0]).is_absolute() and Path(argv[0]).name == CONSOLE_SCRIPT and argv[1:] == ["run"]
    env = dict(v.split("=", 1) for k, v in service if k == "Environment")
    # EnvironmentFile= overrides Environment=: the example file must agree with the unit.
    settings = _example_settings()
    unit_runtime = load_config({}, {**env, "ZOOM_ACCOUNT_ID": "a"}, datetime.now(UTC), need_credentials=False)
    assert unit_runtime.max_runtime == settings.max_runtime
    timeout = duration_seconds(ini_value(service, "TimeoutStartSec"))
    assert settings.max_runtime.total_seconds() < timeout < HOURLY
    assert ini_value(service, "StandardOutput").startswith("append:/")
    assert ini_value(service, "StandardError") == "journal"
    assert ini_value(service, "EnvironmentFile") == "/etc/zoom-oplog-shipper/env"
    timer = read_ini(SYSTEMD_TIMER)
    assert ini_value(timer["Timer"], "OnCalendar") == "hourly"
    assert ini_value(timer["Install"], "WantedBy") == "timers.target"


def test_cron_line_runs_hourly_with_separate_outputs() -> None:
    variables, jobs = read_cron_d(CRON_FILE)
    (job,) = jobs
    assert cron_period_seconds(job.minute, job.hour, job.day, job.month, job.weekday) == HOURLY
    assert "/usr/local/bin" in variables["PATH"].split(":")
    assert job.user != "root"
    assert "%" not in job.command  # cron turns % into a newline
    assert re.search(rf"\bexec {CONSOLE_SCRIPT} run >>(/\S+) 2>>(/\S+)$", job.command)
    out, err = re.findall(r"2?>>(/\S+)", job.command)
    assert out != err
    assert "set -a; . /etc/zoom-oplog-shipper/env; set +a;" in job.command


# ---------------------------------------------------------------------------------------------
# Kubernetes.


def _k8s() -> tuple[dict[str, Any], dict[str, Any]]:
    docs = read_yaml_all(K8S_CRONJOB)
    by_kind = {d["kind"]: d for d in docs}
    assert set(by_kind) == {"PersistentVolumeClaim", "CronJob"}
    return by_kind["PersistentVolumeClaim"], by_kind["CronJob"]


def test_kubernetes_cronjob() -> None:
    pvc, cron = _k8s()
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    period = cron_period_seconds(*spec["schedule"].split())
    job = spec["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == [CONSOLE_SCRIPT, "run"]
    env = {e["name"]: e for e in container["env"]}
    for name in ("ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_CLIENT_SECRET"):
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"]["name"]
    values = {k: e["value"] for k, e in env.items() if "value" in e}
    settings = program_settings(container["command"], values)
    # The program stops itself first; Kubernetes' deadline only catches a hang; the next run waits.
    assert settings.max_runtime.total_seconds() < job["activeDeadlineSeconds"] < period
    assert settings.max_line_bytes < CRI_LINE_LIMIT
    assert settings.log_format == "json"
    (mount,) = container["volumeMounts"]
    assert str(settings.state_dir) == mount["mountPath"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True


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
        if where.endswith("<key>") or not SECRET_KEY.search(key) or key.endswith(("_FILE", "secretKeyRef")):
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
