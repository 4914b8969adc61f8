"""configs/splunk (issue 10, section 4): the scripted input, the props of each sourcetype read the
time of the events the program really prints, search-time extraction reaches the end of the
longest line, CIM fields and tags, and the wrapper's environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agent_configs import (
    CONSOLE_SCRIPT,
    SPLUNK_INPUTS,
    SPLUNK_PROPS,
    emitted_lines,
    ini_value,
    read_ini,
    splunk_events,
    splunk_time_format,
    to_python_datetime,
)

from zoom_oplog_shipper.config import DEFAULT_MAX_LINE_BYTES

HOURLY = 3600
SPLUNK = SPLUNK_INPUTS.parent
WRAPPER = SPLUNK / "bin" / "zoom_oplog_shipper.sh"
#: The sourcetype of each output format (props.conf has one stanza each).
SOURCETYPES = {"ecs": "zoom:operation", "raw": "zoom:operation:raw", "ocsf": "zoom:operation:ocsf"}
#: Splunk's defaults (limits.conf.spec): [spath] extraction_cutoff, [kv] maxchars, [kv] limit.
DEFAULT_EXTRACTION_CUTOFF = 5000
DEFAULT_KV_MAXCHARS = 10240
DEFAULT_KV_LIMIT = 100


def size(text: str) -> int:
    """Splunk's size values: 500KB, 100MB."""
    match = re.fullmatch(r"(\d+)(KB|MB|GB)", text)
    assert match, text
    return int(match.group(1)) * {"KB": 1024, "MB": 1024**2, "GB": 1024**3}[match.group(2)]


@pytest.fixture(scope="module")
def lines() -> dict[str, list[bytes]]:
    return {fmt: emitted_lines(fmt) for fmt in SOURCETYPES}


def event_time(doc: dict[str, Any], fmt: str) -> float:
    """The instant each format carries, as epoch seconds."""
    from datetime import datetime

    if fmt == "ecs":
        return datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00")).timestamp()
    if fmt == "raw":
        return datetime.fromisoformat(doc["record"]["time"].replace("Z", "+00:00")).timestamp()
    return float(doc["time"]) / 1000


def splunk_time(event: bytes, props: list[tuple[str, str]]) -> float:
    """TIME_PREFIX, MAX_TIMESTAMP_LOOKAHEAD and TIME_FORMAT as Splunk applies them to one event."""
    match = re.search(ini_value(props, "TIME_PREFIX").encode(), event)
    assert match, event[:200]
    lookahead = int(ini_value(props, "MAX_TIMESTAMP_LOOKAHEAD"))
    text = event[match.end() : match.end() + lookahead].decode()
    fmt = ini_value(props, "TIME_FORMAT")
    if fmt == "%s%3N":
        assert re.fullmatch(r"\d{13}", text), text
        return int(text) / 1000
    text = text.split('"')[0]
    return to_python_datetime(text, splunk_time_format(fmt)).timestamp()


# ---------------------------------------------------------------------------------------------
# inputs.conf and outputs.conf.


def test_scripted_input_runs_the_wrapper_hourly_into_an_index_with_a_disk_queue() -> None:
    stanzas = read_ini(SPLUNK_INPUTS)
    (name,) = stanzas
    stanza = stanzas[name]
    assert name == "script://./bin/zoom_oplog_shipper.sh"
    assert os.access(WRAPPER, os.X_OK)
    assert int(ini_value(stanza, "interval")) == HOURLY
    assert ini_value(stanza, "sourcetype") == SOURCETYPES["ecs"]
    assert ini_value(stanza, "disabled") == "false"
    assert ini_value(stanza, "index")
    # persistentQueueSize must be larger than queueSize (inputs.conf.spec).
    assert size(ini_value(stanza, "persistentQueueSize")) > size(ini_value(stanza, "queueSize"))


def test_inputs_says_first_that_the_index_must_exist() -> None:
    text = SPLUNK_INPUTS.read_text(encoding="utf-8")
    first_paragraph = text.split("\n#\n")[1]
    assert "must exist" in first_paragraph and "lastChanceIndex" in first_paragraph


def test_outputs_waits_for_the_indexers_acknowledgement() -> None:
    groups = {k: v for k, v in read_ini(SPLUNK / "outputs.conf").items() if k.startswith("tcpout:")}
    assert groups
    for stanza in groups.values():
        assert ini_value(stanza, "useACK") == "true"


# ---------------------------------------------------------------------------------------------
# props.conf: one sourcetype per format, each reading its own time.


def test_props_has_a_sourcetype_per_format() -> None:
    assert set(read_ini(SPLUNK_PROPS)) == set(SOURCETYPES.values())


@pytest.mark.parametrize("fmt", SOURCETYPES)
def test_props_break_lines_and_read_each_events_time(fmt: str, lines: dict[str, list[bytes]]) -> None:
    props = read_ini(SPLUNK_PROPS)[SOURCETYPES[fmt]]
    assert ini_value(props, "SHOULD_LINEMERGE") == "false"
    assert ini_value(props, "LINE_BREAKER") == r"([\r\n]+)"
    assert ini_value(props, "TZ") == "UTC"
    assert ini_value(props, "KV_MODE") == "json"
    truncate = int(ini_value(props, "TRUNCATE"))
    assert truncate >= 2 * DEFAULT_MAX_LINE_BYTES
    data = b"\n".join(lines[fmt]) + b"\n"
    events = splunk_events(data, truncate)
    assert len(events) == len(lines[fmt])
    for event in events:
        doc = json.loads(event)
        assert splunk_time(event, props) == event_time(doc, fmt)


@pytest.mark.parametrize("fmt", ["raw", "ocsf"])
def test_the_ecs_time_prefix_would_not_read_the_other_formats(fmt: str, lines: dict[str, list[bytes]]) -> None:
    ecs = read_ini(SPLUNK_PROPS)[SOURCETYPES["ecs"]]
    assert not re.search(ini_value(ecs, "TIME_PREFIX").encode(), lines[fmt][0])


# ---------------------------------------------------------------------------------------------
# limits.conf: search-time extraction reaches the end of every event.


def test_limits_let_json_extraction_reach_the_end_of_the_longest_event(lines: dict[str, list[bytes]]) -> None:
    limits = read_ini(SPLUNK / "limits.conf")
    cutoff = int(ini_value(limits["spath"], "extraction_cutoff"))
    maxchars = int(ini_value(limits["kv"], "maxchars"))
    truncate = int(ini_value(read_ini(SPLUNK_PROPS)[SOURCETYPES["ecs"]], "TRUNCATE"))
    assert cutoff >= truncate and maxchars >= truncate
    longest = max(len(line) for line in lines["ecs"])
    # The defaults would have cut the long events (the fields after operation_detail vanish).
    assert longest > DEFAULT_KV_MAXCHARS > DEFAULT_EXTRACTION_CUTOFF


def _leaves(doc: Any, path: str = "") -> set[str]:
    if isinstance(doc, dict):
        return {leaf for k, v in doc.items() for leaf in _leaves(v, f"{path}.{k}" if path else k)}
    if isinstance(doc, list):
        return {leaf for v in doc for leaf in _leaves(v, path + "{}")}
    return {path}


def test_events_stay_under_the_default_auto_kv_field_limit(lines: dict[str, list[bytes]]) -> None:
    for line in lines["ecs"]:
        assert len(_leaves(json.loads(line))) < DEFAULT_KV_LIMIT


# ---------------------------------------------------------------------------------------------
# CIM: the Change data model.

EVAL = re.compile(r"^EVAL-(\w+) = (.+)$", re.M)
CIM_CHANGE_FIELDS = {"action", "change_type", "command", "dest", "object", "object_category", "status", "user"}


def test_cim_change_fields_are_calculated_from_fields_the_program_emits(lines: dict[str, list[bytes]]) -> None:
    text = SPLUNK_PROPS.read_text(encoding="utf-8").split("[zoom:operation:raw]")[0]
    evals = dict(EVAL.findall(text))
    assert set(evals) >= CIM_CHANGE_FIELDS
    emitted = set().union(*(_leaves(json.loads(line)) for line in lines["ecs"]))
    referenced = {name for expr in evals.values() for name in re.findall(r"'([^']+)'", expr)}
    assert referenced
    for name in referenced:
        assert name in emitted, f"props.conf reads {name}, which the program never emits"


def test_cim_action_values_are_the_ones_the_change_model_allows() -> None:
    text = SPLUNK_PROPS.read_text(encoding="utf-8")
    action = dict(EVAL.findall(text))["action"]
    values = set(re.findall(r'"(\w+)"\)?(?:,|\s*\)$)', action)) - {"creation", "deletion", "info"}
    assert values <= {"acl_modified", "cleared", "created", "deleted", "modified", "read", "stopped", "updated"}
    assert {"created", "deleted", "modified"} <= values


def test_eventtypes_are_tagged_for_the_change_model() -> None:
    eventtypes = read_ini(SPLUNK / "eventtypes.conf")
    tags = read_ini(SPLUNK / "tags.conf")
    for name, stanza in eventtypes.items():
        assert f"sourcetype={SOURCETYPES['ecs']}" in ini_value(stanza, "search")
        enabled = {k for k, v in tags[f"eventtype={name}"] if v == "enabled"}
        assert "change" in enabled
    account = {k for k, v in tags["eventtype=zoom_operation_account_management"] if v == "enabled"}
    assert account == {"change", "account"}


# ---------------------------------------------------------------------------------------------
# The wrapper.


def run_wrapper(tmp_path: Path, env_file_text: str, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """Run the wrapper with a stand-in program that prints its argv and environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / CONSOLE_SCRIPT
    stub.write_text('#!/bin/sh\nprintf "ARGV=%s\\n" "$*"; env\n', encoding="utf-8")
    stub.chmod(0o755)
    env_file = tmp_path / "env"
    env_file.write_text(env_file_text, encoding="utf-8")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "LD_LIBRARY_PATH": "/opt/splunkforwarder/lib",
        "PYTHONHOME": "/opt/splunkforwarder",
        "ZOOM_OPLOG_ENV_FILE": str(env_file),
        **(extra_env or {}),
    }
    result = subprocess.run(
        [str(WRAPPER), "-index", "zoom"], env=env, capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stderr == ""
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_wrapper_logs_only_warnings_by_default(tmp_path: Path) -> None:
    seen = run_wrapper(tmp_path, "ZOOM_ACCOUNT_ID=abc\n")
    assert seen["ZOOM_OPLOG_LOG_LEVEL"] == "warning"
    assert seen["ZOOM_ACCOUNT_ID"] == "abc"
    assert seen["ZOOM_OPLOG_STATE_DIR"] == "/var/lib/zoom-oplog-shipper"
    assert seen["ARGV"] == "run"  # Splunk's "-index zoom" is not passed on
    assert "LD_LIBRARY_PATH" not in seen and "PYTHONHOME" not in seen


def test_wrapper_keeps_a_log_level_set_in_the_env_file(tmp_path: Path) -> None:
    seen = run_wrapper(tmp_path, "ZOOM_OPLOG_LOG_LEVEL=info\n")
    assert seen["ZOOM_OPLOG_LOG_LEVEL"] == "info"


def test_wrapper_says_how_to_protect_the_file_it_executes() -> None:
    text = WRAPPER.read_text(encoding="utf-8")
    assert "owned by root, mode 0640" in text
    assert "CAP_DAC_READ_SEARCH" in text
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    assert lines[-1] == f"exec {CONSOLE_SCRIPT} run"
