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
    FLUENT_BIT_CONF,
    FLUENT_BIT_CONFIGS,
    FLUENT_BIT_MULTI,
    FLUENT_BIT_YAML,
    K8S_CRONJOB,
    SPLUNK_INPUTS,
    SPLUNK_PROPS,
    SYSTEMD_SERVICE,
    SYSTEMD_TIMER,
    VECTOR_ADDED_FIELDS,
    VECTOR_CONFIGS,
    VECTOR_MULTI,
    VECTOR_TOML,
    VECTOR_YAML,
    FluentBitInput,
    VectorSource,
    all_vector_sources,
    chrono_time_format,
    console_script,
    credentials_env,
    fluent_bit_inputs,
    fluent_bit_pipeline,
    fluent_bit_time_format,
    iter_strings,
    make_account,
    program_settings,
    read_cron_d,
    read_env_file,
    read_fluent_bit_classic,
    read_ini,
    read_vector,
    read_yaml_all,
    split_shell_command,
    start_simulator,
    to_python_datetime,
    zoom_env,
)

from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.config import DEFAULT_MAX_LINE_BYTES

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
    ".logrotate": lambda p: re.search(r"^/\S+( /\S+)* \{$.*^\}$", p.read_text(encoding="utf-8"), re.M | re.S),
    ".sysusers": lambda p: _content_lines(p),
    ".tmpfiles": lambda p: _content_lines(p),
    ".txt": lambda p: _content_lines(p),
}


def _content_lines(path: Path) -> list[str]:
    """Line-based files (sysusers.d, tmpfiles.d, requirements): the lines that are not comments."""
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]


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
# Vector.

VECTOR_SOURCES = all_vector_sources()


def _source_id(source: VectorSource) -> str:
    return f"{source.path.name}:{source.name}"


def _source_env(source: VectorSource) -> dict[str, str]:
    """The source's environment with its ${...} references filled in (the values do not matter here)."""
    return {k: re.sub(r"\$\{[^}]*\}", "x", v) for k, v in source.environment.items()}


def test_vector_configs_have_their_sources() -> None:
    assert {_source_id(s) for s in VECTOR_SOURCES} == {
        "zoom-oplog.yaml:zoom_oplog",
        "zoom-oplog-source.toml:zoom_oplog",
        "zoom-oplog-multi-account.yaml:zoom_oplog_acme",
        "zoom-oplog-multi-account.yaml:zoom_oplog_globex",
        "zoom-oplog-with-logs.yaml:zoom_oplog",
    }


@pytest.mark.parametrize("source", VECTOR_SOURCES, ids=_source_id)
def test_vector_source_runs_the_program_hourly(source: VectorSource) -> None:
    spec = source.spec
    assert spec["mode"] == "scheduled"
    assert source.command[:2] == [CONSOLE_SCRIPT, "run"]
    settings = program_settings(source.command, _source_env(source))
    interval = spec["scheduled"]["exec_interval_secs"]
    assert interval == HOURLY
    # Vector kills a run at the interval: the program must stop itself well before.
    assert settings.max_runtime.total_seconds() <= interval / 2
    assert settings.output_format == "ecs"
    assert str(settings.state_dir).startswith("/var/lib/vector/")


@pytest.mark.parametrize("source", VECTOR_SOURCES, ids=_source_id)
def test_vector_source_decodes_json_lines_with_room_for_the_longest(source: VectorSource) -> None:
    spec = source.spec
    assert spec["decoding"]["codec"] == "json"
    assert spec["framing"]["method"] == "newline_delimited"
    settings = program_settings(source.command, _source_env(source))
    assert settings.max_line_bytes <= source.max_length
    assert source.max_length >= 2 * DEFAULT_MAX_LINE_BYTES


@pytest.mark.parametrize("source", VECTOR_SOURCES, ids=_source_id)
def test_vector_source_keeps_stderr_out_of_the_events(source: VectorSource) -> None:
    if source.spec["include_stderr"] is False:
        return
    # Only with JSON logs and a route on Vector's `stream` field.
    assert source.environment.get("ZOOM_OPLOG_LOG_FORMAT") == "json"
    transforms = read_vector(source.path)["transforms"]
    routes = [t for t in transforms.values() if t["type"] == "route" and source.name in t["inputs"]]
    assert len(routes) == 1
    conditions = sorted(routes[0]["route"].values())
    assert conditions == ['.stream == "stderr"', '.stream == "stdout"']
    # The events side of the route is the one that reaches the event remaps, the other never does.
    (events_key,) = [k for k, v in routes[0]["route"].items() if v == '.stream == "stdout"']
    consumers = {name for name, t in transforms.items() if t.get("inputs") == [f"{_route_name(source)}.{events_key}"]}
    assert "zoom_oplog_clean" in consumers


def _route_name(source: VectorSource) -> str:
    transforms = read_vector(source.path)["transforms"]
    (name,) = [n for n, t in transforms.items() if t["type"] == "route" and source.name in t["inputs"]]
    return str(name)


def test_vector_multi_account_sources_have_their_own_credentials_and_state() -> None:
    sources = [s for s in VECTOR_SOURCES if s.path == VECTOR_MULTI]
    assert len(sources) >= 2
    state_dirs = {s.environment["ZOOM_OPLOG_STATE_DIR"] for s in sources}
    assert len(state_dirs) == len(sources)
    for name in ("ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_CLIENT_SECRET"):
        refs = [s.environment[name] for s in sources]
        assert all(ENV_REFERENCE.match(r) for r in refs), refs
        variables = {r[2:].split(":")[0].rstrip("}") for r in refs}
        assert len(variables) == len(sources), f"{name} comes from the same variable for two accounts"


def test_vector_toml_source_matches_the_yaml_one() -> None:
    toml = read_vector(VECTOR_TOML)
    yml = read_vector(VECTOR_YAML)
    assert toml["sources"] == yml["sources"]
    assert toml["transforms"]["zoom_oplog_clean"] == yml["transforms"]["zoom_oplog_clean"]


def _upstream(config: dict[str, Any], component: str) -> Iterator[str]:
    """Every transform on the way from the sources to ``component`` (a sink or transform)."""
    transforms = config.get("transforms", {})
    spec = config.get("sinks", {}).get(component) or transforms[component]
    for name in spec["inputs"]:
        base = name.split(".")[0]
        if base in transforms:
            yield base
            yield from _upstream(config, base)


def _remap_sources(config: dict[str, Any], component: str) -> list[str]:
    transforms = config.get("transforms", {})
    return [transforms[t]["source"] for t in _upstream(config, component) if transforms[t]["type"] == "remap"]


VECTOR_SINKS = [
    (path, name) for path in VECTOR_CONFIGS for name in read_vector(path).get("sinks", {}) if "zoom_oplog" in name
]


@pytest.mark.parametrize("path,sink", VECTOR_SINKS, ids=lambda v: v.name if isinstance(v, Path) else v)
def test_vector_sinks_receive_events_without_vectors_fields(path: Path, sink: str) -> None:
    config = read_vector(path)
    programs = _remap_sources(config, sink)
    assert programs, f"{sink} reads the exec source without a remap"
    joined = "\n".join(programs)
    for field in VECTOR_ADDED_FIELDS:
        assert re.search(rf"del\(\.{field}\)", joined), f"{sink}: Vector's `{field}` is not removed or moved"
    assert not re.search(r'del\(\."@timestamp"\)', joined), f"{sink}: the program's @timestamp is dropped"


def test_the_program_emits_none_of_vectors_fields(emitted: list[dict[str, Any]]) -> None:
    # Vector adds them only when absent, and the remap deletes them: an event field of the same
    # name would be deleted along with them.
    for doc in emitted:
        assert not set(VECTOR_ADDED_FIELDS) & set(doc)


def test_vector_elasticsearch_sink_uses_a_data_stream_and_a_scratch_id(emitted: list[dict[str, Any]]) -> None:
    for path in (VECTOR_YAML, VECTOR_MULTI):
        config = read_vector(path)
        sink = config["sinks"]["zoom_oplog_elasticsearch"]
        assert sink["mode"] == "data_stream"
        assert sink["data_stream"] == emitted[0]["data_stream"]
        id_key = sink["id_key"]
        # id_key removes the field it reads: it must be a copy, never event.id itself.
        assert id_key not in ("event.id", ".event.id")
        programs = "\n".join(_remap_sources(config, "zoom_oplog_elasticsearch"))
        assert re.search(rf"^\s*\.{re.escape(id_key)} = \.event\.id\s*$", programs, re.M), programs
        stream = "-".join(sink["data_stream"][k] for k in ("type", "dataset", "namespace"))
        assert _index_template_matches(stream)
        assert sink["auth"]["password"] == "${ELASTICSEARCH_PASSWORD}"


def test_vector_splunk_sink_gets_the_event_time(emitted_timestamp: str) -> None:
    config = read_vector(VECTOR_YAML)
    sink = config["sinks"]["zoom_oplog_splunk_hec"]
    assert sink["sourcetype"] == _props_sourcetype()
    assert sink["encoding"]["codec"] == "json"
    timestamp_key = sink["timestamp_key"]
    programs = "\n".join(_remap_sources(config, "zoom_oplog_splunk_hec"))
    match = re.search(
        r'(\w+), err = parse_timestamp\(\."@timestamp", format: "([^"]+)", timezone: "UTC"\)\s*'
        rf"if err == null \{{ \.{timestamp_key} = \1 \}}",
        programs,
    )
    assert match, programs
    parsed = to_python_datetime(emitted_timestamp, chrono_time_format(match.group(2)))
    assert parsed == instant(emitted_timestamp)


def test_vector_loki_labels_are_static_and_few() -> None:
    sink = read_vector(VECTOR_YAML)["sinks"]["zoom_oplog_loki"]
    labels = sink["labels"]
    assert 1 <= len(labels) <= 4
    for key, value in labels.items():
        assert "{{" not in key and "{{" not in value, f"label {key}: {value} is not static"
    assert sink["encoding"]["codec"] == "json"


@pytest.mark.parametrize("path", VECTOR_CONFIGS, ids=lambda p: p.name)
def test_vector_dollar_signs_are_only_intended_references(path: Path) -> None:
    # Vector replaces $NAME and ${NAME} anywhere in the file, comments included, before parsing.
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("#"):
            assert "$" not in line, f"{path.name}:{number}: Vector would substitute in this comment"
        else:
            rest = re.sub(r"\$\{[A-Z][A-Z0-9_]*(:[-?][^}]*)?\}", "", line)
            assert "$" not in rest, f"{path.name}:{number}: unintended substitution"


@pytest.mark.parametrize("path", VECTOR_CONFIGS, ids=lambda p: p.name)
def test_vector_has_no_template_without_a_literal_prefix(path: Path) -> None:
    # Vector v0.57 refuses "{{ field }}" alone in index, sourcetype or label fields at startup.
    for where, value in iter_strings(read_vector(path)):
        if "{{" in value:
            assert not value.strip().startswith("{{"), f"{path.name}: {where} = {value!r}"


# ---------------------------------------------------------------------------------------------
# Fluent Bit.

FB_INPUTS = [item for path in FLUENT_BIT_CONFIGS for item in fluent_bit_inputs(path)]


def _fb_id(item: FluentBitInput) -> str:
    return f"{item.path.name}:{item.settings.get('tag')}"


def _fb_settings(item: FluentBitInput) -> Any:
    assignments, argv = split_shell_command(item.command)
    return program_settings(argv, {k: "x" for k in assignments})


def test_fluent_bit_configs_have_their_inputs() -> None:
    assert {_fb_id(i) for i in FB_INPUTS} == {
        "zoom-oplog.yaml:zoom.operation",
        "zoom-oplog.conf:zoom.operation",
        "zoom-oplog-multi-account.yaml:zoom.operation.acme",
        "zoom-oplog-multi-account.yaml:zoom.operation.globex",
    }


@pytest.mark.parametrize("item", FB_INPUTS, ids=_fb_id)
def test_fluent_bit_exec_runs_the_program_hourly_in_its_own_thread(item: FluentBitInput) -> None:
    assert int(item.settings["interval_sec"]) == HOURLY
    assert item.settings["threaded"].lower() == "on"
    settings = _fb_settings(item)
    assert settings.max_runtime.total_seconds() <= HOURLY / 2
    assert str(settings.state_dir).startswith("/var/lib/fluent-bit/")


@pytest.mark.parametrize("item", FB_INPUTS, ids=_fb_id)
def test_fluent_bit_buf_size_is_well_above_the_longest_line(item: FluentBitInput) -> None:
    settings = _fb_settings(item)
    # fgets keeps buf_size - 1 bytes, the newline included.
    assert settings.max_line_bytes + 2 <= item.buf_size
    assert item.buf_size >= 2 * DEFAULT_MAX_LINE_BYTES


@pytest.mark.parametrize("item", FB_INPUTS, ids=_fb_id)
def test_fluent_bit_parser_reads_the_emitted_timestamp(item: FluentBitInput, emitted_timestamp: str) -> None:
    parser = item.parser
    assert parser["format"] == "json"
    assert parser["time_key"] == "@timestamp"
    assert parser["time_format"] == "%Y-%m-%dT%H:%M:%S.%L%z"
    # Off: the es output writes its own @timestamp from the record time.
    assert parser["time_keep"].lower() == "off"
    parsed = to_python_datetime(emitted_timestamp, fluent_bit_time_format(parser["time_format"]))
    assert parsed == instant(emitted_timestamp)


@pytest.mark.parametrize("item", [i for i in FB_INPUTS if i.path == FLUENT_BIT_MULTI], ids=_fb_id)
def test_fluent_bit_multi_account_commands_take_secrets_from_the_environment(item: FluentBitInput) -> None:
    assignments, _ = split_shell_command(item.command)
    assert set(assignments) == {"ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_CLIENT_SECRET"}
    for name in assignments:
        # "$NAME" for the shell: "${NAME}" would be replaced by Fluent Bit, secret in the argv.
        assert re.search(rf'{name}="\$[A-Z][A-Z0-9_]*" ', item.command), item.command
    assert "${" not in item.command


def test_fluent_bit_multi_account_inputs_are_separate() -> None:
    items = [i for i in FB_INPUTS if i.path == FLUENT_BIT_MULTI]
    assert len({i.settings["tag"] for i in items}) == len(items)
    assert len({str(_fb_settings(i).state_dir) for i in items}) == len(items)
    assert len({split_shell_command(i.command)[0]["ZOOM_CLIENT_SECRET"] for i in items}) == len(items)


@pytest.mark.parametrize("path", FLUENT_BIT_CONFIGS, ids=lambda p: p.name)
def test_fluent_bit_outputs(path: Path) -> None:
    _, outputs, _ = fluent_bit_pipeline(path)
    tags = [i.settings["tag"] for i in fluent_bit_inputs(path)]
    by_name = {o["name"]: o for o in outputs}
    es = by_name["es"]
    assert es["id_key"] == "$event['id']"
    assert es["write_operation"] == "create"
    assert es["suppress_type_name"].lower() == "on"
    assert _index_template_matches(es["index"])
    assert es["http_passwd"] == "${ELASTICSEARCH_PASSWORD}"
    if "splunk" in by_name:
        splunk = by_name["splunk"]
        assert splunk["splunk_token"] == "${SPLUNK_HEC_TOKEN}"
        assert splunk["event_sourcetype"] == _props_sourcetype()
    if "loki" in by_name:
        loki = by_name["loki"]
        assert loki["line_format"] == "json"
        assert "$" not in loki["labels"] and len(loki["labels"].split(",")) <= 4
    for output in outputs:
        assert any(_fluent_bit_match(output["match"], tag) for tag in tags), output
        assert int(output["retry_limit"]) > 1


def _fluent_bit_match(pattern: str, tag: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), tag) is not None


def test_fluent_bit_yaml_and_classic_describe_the_same_pipeline() -> None:
    yaml_in, yaml_out, yaml_parsers = fluent_bit_pipeline(FLUENT_BIT_YAML)
    conf_in, conf_out, conf_parsers = fluent_bit_pipeline(FLUENT_BIT_CONF)

    # Fluent Bit reads on/true and off/false alike.
    booleans = {"on": "on", "true": "on", "off": "off", "false": "off"}

    def norm(items: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: booleans.get(v.lower(), v) for k, v in i.items()} for i in items]

    assert norm(yaml_in) == norm(conf_in)
    assert norm(yaml_out) == norm(conf_out)
    assert norm(yaml_parsers) == norm(conf_parsers)


# ---------------------------------------------------------------------------------------------
# Elasticsearch, Splunk, systemd, cron and Kubernetes: tests/test_configs_{elasticsearch,splunk,
# systemd,kubernetes}.py; the backfill path: tests/test_backfill_path.py.


def _index_template_matches(name: str) -> bool:
    template = json.loads(ES_INDEX_TEMPLATE.read_text(encoding="utf-8"))
    return any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), name) for p in template["index_patterns"])


def _props_sourcetype() -> str:
    """The sourcetype of the program's default (ECS) output; props.conf has one per format."""
    assert "zoom:operation" in read_ini(SPLUNK_PROPS)
    return "zoom:operation"


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


def test_fluent_bit_classic_secrets_come_from_the_environment() -> None:
    secrets = [
        (k, v) for _, s in read_fluent_bit_classic(FLUENT_BIT_CONF) for k, v in s.items() if SECRET_KEY.search(k)
    ]
    assert secrets
    for key, value in secrets:
        assert ENV_REFERENCE.match(value), f"{key} {value}"


def test_yaml_configs_are_plain_yaml() -> None:
    # Fluent Bit and Vector read YAML 1.2-ish scalars; nothing in the shipped files relies on tags.
    for path in CONFIGS.rglob("*.yaml"):
        assert "!!" not in path.read_text(encoding="utf-8"), path
        yaml.safe_load_all(path.read_text(encoding="utf-8"))
