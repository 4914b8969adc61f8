"""configs/splunk (issue 10, section 4; issue 11): a scripted input per stream, the props of each
sourcetype (stream and format) read the time of the events the program really prints, search-time
extraction reaches the end of the longest line, CIM fields and tags (Change for the operation logs,
Authentication for sign-ins), and the wrapper's environment and stream."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agent_configs import (
    ACTIVITIES,
    CONSOLE_SCRIPT,
    METRICS_DIR,
    OPERATIONS,
    SPLUNK_INPUTS,
    SPLUNK_PROPS,
    emitted_lines,
    ini_value,
    read_ini,
    splunk_events,
    splunk_time_format,
    to_python_datetime,
)

from zoom_oplog_shipper.settings import DEFAULT_MAX_LINE_BYTES

HOURLY = 3600
SPLUNK = SPLUNK_INPUTS.parent
WRAPPER = SPLUNK / "bin" / "zoom_oplog_shipper.sh"
STREAMS = (OPERATIONS, ACTIVITIES)
FORMATS = ("ecs", "raw", "ocsf")
#: The sourcetype of each stream and output format (props.conf has one stanza each).
BASE_SOURCETYPES = {OPERATIONS: "zoom:operation", ACTIVITIES: "zoom:activity"}
SOURCETYPES = {
    (stream, fmt): BASE_SOURCETYPES[stream] + ("" if fmt == "ecs" else f":{fmt}")
    for stream in STREAMS
    for fmt in FORMATS
}
CASES = list(SOURCETYPES)
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
def all_lines() -> dict[tuple[str, str], list[bytes]]:
    return {(stream, fmt): emitted_lines(fmt, stream) for stream, fmt in SOURCETYPES}


@pytest.fixture(scope="module")
def lines(all_lines: dict[tuple[str, str], list[bytes]]) -> dict[str, list[bytes]]:
    """The operation logs' lines per format."""
    return {fmt: all_lines[(OPERATIONS, fmt)] for fmt in FORMATS}


@pytest.fixture(scope="module")
def activity_docs(all_lines: dict[tuple[str, str], list[bytes]]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in all_lines[(ACTIVITIES, "ecs")]]


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


#: The scripted input of each stream: the wrapper, with the stream as its argument.
INPUT_STANZAS = {
    OPERATIONS: "script://./bin/zoom_oplog_shipper.sh",
    ACTIVITIES: "script://./bin/zoom_oplog_shipper.sh activities",
}


@pytest.mark.parametrize("stream", STREAMS)
def test_scripted_input_runs_the_wrapper_hourly_into_an_index_with_a_disk_queue(stream: str) -> None:
    stanzas = read_ini(SPLUNK_INPUTS)
    assert set(stanzas) == set(INPUT_STANZAS.values())
    stanza = stanzas[INPUT_STANZAS[stream]]
    assert os.access(WRAPPER, os.X_OK)
    assert int(ini_value(stanza, "interval")) == HOURLY
    assert ini_value(stanza, "sourcetype") == SOURCETYPES[(stream, "ecs")]
    assert ini_value(stanza, "disabled") == "false"
    assert ini_value(stanza, "index")
    # persistentQueueSize must be larger than queueSize (inputs.conf.spec).
    assert size(ini_value(stanza, "persistentQueueSize")) > size(ini_value(stanza, "queueSize"))


def test_both_inputs_differ_only_in_the_stream() -> None:
    operations, activities = (dict(read_ini(SPLUNK_INPUTS)[INPUT_STANZAS[s]]) for s in STREAMS)
    assert {**activities, "sourcetype": operations["sourcetype"]} == operations


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


def test_props_has_a_sourcetype_per_stream_and_format() -> None:
    assert set(read_ini(SPLUNK_PROPS)) == set(SOURCETYPES.values())


@pytest.mark.parametrize("stream,fmt", CASES, ids=[SOURCETYPES[c] for c in CASES])
def test_props_break_lines_and_read_each_events_time(
    stream: str, fmt: str, all_lines: dict[tuple[str, str], list[bytes]]
) -> None:
    lines = all_lines[(stream, fmt)]
    props = read_ini(SPLUNK_PROPS)[SOURCETYPES[(stream, fmt)]]
    assert ini_value(props, "SHOULD_LINEMERGE") == "false"
    assert ini_value(props, "LINE_BREAKER") == r"([\r\n]+)"
    assert ini_value(props, "TZ") == "UTC"
    assert ini_value(props, "KV_MODE") == "json"
    truncate = int(ini_value(props, "TRUNCATE"))
    assert truncate >= 2 * DEFAULT_MAX_LINE_BYTES
    data = b"\n".join(lines) + b"\n"
    events = splunk_events(data, truncate)
    assert len(events) == len(lines)
    for event in events:
        doc = json.loads(event)
        assert splunk_time(event, props) == event_time(doc, fmt)


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("fmt", ["raw", "ocsf"])
def test_the_ecs_time_prefix_would_not_read_the_other_formats(
    stream: str, fmt: str, all_lines: dict[tuple[str, str], list[bytes]]
) -> None:
    ecs = read_ini(SPLUNK_PROPS)[SOURCETYPES[(stream, "ecs")]]
    assert not re.search(ini_value(ecs, "TIME_PREFIX").encode(), all_lines[(stream, fmt)][0])


# ---------------------------------------------------------------------------------------------
# limits.conf: search-time extraction reaches the end of every event.


def test_limits_let_json_extraction_reach_the_end_of_the_longest_event(lines: dict[str, list[bytes]]) -> None:
    limits = read_ini(SPLUNK / "limits.conf")
    cutoff = int(ini_value(limits["spath"], "extraction_cutoff"))
    maxchars = int(ini_value(limits["kv"], "maxchars"))
    for sourcetype in SOURCETYPES.values():
        truncate = int(ini_value(read_ini(SPLUNK_PROPS)[sourcetype], "TRUNCATE"))
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


@pytest.mark.parametrize("stream", STREAMS)
def test_events_stay_under_the_default_auto_kv_field_limit(
    stream: str, all_lines: dict[tuple[str, str], list[bytes]]
) -> None:
    for line in all_lines[(stream, "ecs")]:
        assert len(_leaves(json.loads(line))) < DEFAULT_KV_LIMIT


# ---------------------------------------------------------------------------------------------
# CIM: the Change data model.

CIM_CHANGE_FIELDS = {"action", "change_type", "command", "dest", "object", "object_category", "status", "user"}
#: The Authentication data model's required fields (pytest-splunk-addon), and its action values.
CIM_AUTHENTICATION_FIELDS = {"action", "app", "dest", "src", "user"}
CIM_AUTHENTICATION_ACTIONS = {"success", "failure", "unknown"}


def evals(sourcetype: str) -> dict[str, str]:
    """The EVAL-<field> expressions of one props.conf stanza."""
    return {k.removeprefix("EVAL-"): v for k, v in read_ini(SPLUNK_PROPS)[sourcetype] if k.startswith("EVAL-")}


def test_cim_change_fields_are_calculated_from_fields_the_program_emits(lines: dict[str, list[bytes]]) -> None:
    found = evals(SOURCETYPES[(OPERATIONS, "ecs")])
    assert set(found) >= CIM_CHANGE_FIELDS
    emitted = set().union(*(_leaves(json.loads(line)) for line in lines["ecs"]))
    referenced = {name for expr in found.values() for name in re.findall(r"'([^']+)'", expr)}
    assert referenced
    for name in referenced:
        assert name in emitted, f"props.conf reads {name}, which the program never emits"


def test_cim_action_values_are_the_ones_the_change_model_allows() -> None:
    action = evals(SOURCETYPES[(OPERATIONS, "ecs")])["action"]
    values = set(re.findall(r'"(\w+)"\)?(?:,|\s*\)$)', action)) - {"creation", "deletion", "info"}
    assert values <= {"acl_modified", "cleared", "created", "deleted", "modified", "read", "stopped", "updated"}
    assert {"created", "deleted", "modified"} <= values


def field(doc: dict[str, Any], name: str) -> Any:
    """A dotted JSON field of an event as search-time extraction names it (None when absent)."""
    value: Any = doc
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


_IF = re.compile(r"""^if\('([^']+)'=="([^"]*)", "([^"]*)", "([^"]*)"\)$""")


def splunk_eval(expression: str, doc: dict[str, Any]) -> Any:
    """The eval forms the activity stanza uses: 'field', "text", if('field'=="x", "a", "b")."""
    if match := re.fullmatch(r"'([^']+)'", expression):
        return field(doc, match.group(1))
    if match := re.fullmatch(r'"([^"]*)"', expression):
        return match.group(1)
    match = _IF.fullmatch(expression)
    assert match, f"the test does not evaluate {expression!r}"
    name, value, then, otherwise = match.groups()
    return then if field(doc, name) == value else otherwise


def test_cim_authentication_fields_are_calculated_from_what_the_program_emits(
    activity_docs: list[dict[str, Any]],
) -> None:
    found = evals(SOURCETYPES[(ACTIVITIES, "ecs")])
    assert set(found) >= CIM_AUTHENTICATION_FIELDS
    emitted = set().union(*(_leaves(doc) for doc in activity_docs))
    for name in {n for expr in found.values() for n in re.findall(r"'([^']+)'", expr)}:
        assert name in emitted, f"props.conf reads {name}, which the program never emits"
    sign_ins = [doc for doc in activity_docs if doc["event"].get("action") == "sign-in"]
    assert sign_ins
    for doc in activity_docs:
        cim = {name: splunk_eval(expr, doc) for name, expr in found.items()}
        assert cim["action"] in CIM_AUTHENTICATION_ACTIONS
        assert cim["app"] == "zoom" and cim["user"] == doc["zoom"]["activity"].get("email")
        # src is an address or nothing: "unknown" in ip_address never becomes a source.
        assert cim["src"] == doc.get("source", {}).get("ip")
        if doc in sign_ins:
            assert cim["action"] == "success" and cim["signature"] == doc["zoom"]["activity"]["type"]
    assert any(splunk_eval(found["src"], d) is None for d in activity_docs)  # the odd "unknown" address


def search_matches(search: str, sourcetype: str, doc: dict[str, Any]) -> bool:
    """An eventtype's search (``key=value`` terms, AND) on one event of a sourcetype."""
    leaves: dict[str, set[str]] = {}
    for name in _leaves(doc):
        values = field(doc, name.replace("{}", ""))
        leaves[name] = {str(v) for v in (values if isinstance(values, list) else [values])}
    for term in shlex.split(search):
        key, _, value = term.partition("=")
        if key == "sourcetype":
            if value != sourcetype:
                return False
        elif value not in leaves.get(key, set()):
            return False
    return True


def test_eventtypes_are_tagged_for_their_cim_models(
    lines: dict[str, list[bytes]], activity_docs: list[dict[str, Any]]
) -> None:
    eventtypes = read_ini(SPLUNK / "eventtypes.conf")
    tags = read_ini(SPLUNK / "tags.conf")

    def enabled(name: str) -> set[str]:
        return {k for k, v in tags.get(f"eventtype={name}", []) if v == "enabled"}

    operation_types = [n for n, s in eventtypes.items() if "sourcetype=zoom:operation" in ini_value(s, "search")]
    activity_types = [n for n, s in eventtypes.items() if "sourcetype=zoom:activity" in ini_value(s, "search")]
    assert sorted(operation_types + activity_types) == sorted(eventtypes)
    for name in operation_types:
        assert "change" in enabled(name)
    assert enabled("zoom_operation_account_management") == {"change", "account"}
    # Every sign-in is an authentication, no sign-out is (the model describes login activities).
    st = SOURCETYPES[(ACTIVITIES, "ecs")]
    for doc in activity_docs:
        matched = {n for n in activity_types if search_matches(ini_value(eventtypes[n], "search"), st, doc)}
        tagged = set().union(*(enabled(n) for n in matched))
        assert ("authentication" in tagged) is (doc["event"].get("action") == "sign-in"), doc["event"]
        assert len(matched) == (doc["event"].get("action") in ("sign-in", "sign-out"))
    # The operation log's events are never taken for authentications.
    for line in lines["ecs"][:50]:
        doc = json.loads(line)
        assert not {
            n for n in activity_types if search_matches(ini_value(eventtypes[n], "search"), "zoom:operation", doc)
        }


# ---------------------------------------------------------------------------------------------
# The wrapper.


def stanza_arguments(stream: str) -> list[str]:
    """What Splunk runs for a stream's input: the stanza's arguments, then "-index NAME"."""
    return [*INPUT_STANZAS[stream].split()[1:], "-index", "zoom"]


def run_wrapper(
    tmp_path: Path, env_file_text: str, extra_env: dict[str, str] | None = None, arguments: list[str] | None = None
) -> dict[str, str]:
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
        [str(WRAPPER), *(arguments or stanza_arguments(OPERATIONS))],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stderr == ""
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_wrapper_logs_only_warnings_by_default(tmp_path: Path) -> None:
    seen = run_wrapper(tmp_path, "ZOOM_ACCOUNT_ID=abc\n")
    assert seen["ZOOM_OPLOG_LOG_LEVEL"] == "warning"
    assert seen["ZOOM_ACCOUNT_ID"] == "abc"
    assert seen["ZOOM_OPLOG_STATE_DIR"] == "/var/lib/zoom-oplog-shipper"
    # Splunk's "-index zoom" is not passed on; each stream has its own metrics file.
    assert seen["ARGV"] == f"run --stream operations --metrics-file {METRICS_DIR}/zoom_oplog_operations.prom"
    assert "LD_LIBRARY_PATH" not in seen and "PYTHONHOME" not in seen


@pytest.mark.parametrize("stream", STREAMS)
def test_wrapper_runs_the_stream_its_input_names(stream: str, tmp_path: Path) -> None:
    # The flag wins over a ZOOM_OPLOG_STREAM in the shared env file: each input runs its own stream.
    seen = run_wrapper(tmp_path, "ZOOM_OPLOG_STREAM=operations\n", arguments=stanza_arguments(stream))
    assert seen["ARGV"] == f"run --stream {stream} --metrics-file {METRICS_DIR}/zoom_oplog_{stream}.prom"


def test_wrapper_refuses_a_stream_it_does_not_know(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(WRAPPER), "activity", "-index", "zoom"],
        env={"PATH": "/usr/bin:/bin", "ZOOM_OPLOG_ENV_FILE": str(tmp_path / "none")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "unknown stream 'activity'" in result.stderr and "operations or activities" in result.stderr


def test_wrapper_keeps_a_log_level_set_in_the_env_file(tmp_path: Path) -> None:
    seen = run_wrapper(tmp_path, "ZOOM_OPLOG_LOG_LEVEL=info\n")
    assert seen["ZOOM_OPLOG_LOG_LEVEL"] == "info"


def test_wrapper_says_how_to_protect_the_file_it_executes() -> None:
    text = WRAPPER.read_text(encoding="utf-8")
    assert "owned by root, mode 0640" in text
    assert "CAP_DAC_READ_SEARCH" in text
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    assert lines[-1] == (
        f'exec {CONSOLE_SCRIPT} run --stream "$stream" --metrics-file "{METRICS_DIR}/zoom_oplog_$stream.prom"'
    )


# ---------------------------------------------------------------------------------------------
# macros.conf: where each sign-in came from (issue 15, part 8).

MACROS = SPLUNK / "macros.conf"
#: iplocation's options (Splunk's search reference: iplocation [prefix=] [allfields=] [lang=] <field>)
#: and the fields it adds with allfields=true.
IPLOCATION_OPTIONS = {"prefix", "allfields", "lang"}
IPLOCATION_FIELDS = {"City", "Continent", "Country", "MetroCode", "Region", "Timezone", "lat", "lon"}


def macros() -> dict[str, str]:
    return {name: ini_value(stanza, "definition") for name, stanza in read_ini(MACROS).items()}


def test_iplocation_macro_locates_the_activity_address(activity_docs: list[dict[str, Any]]) -> None:
    definition = macros()["zoom_activity_iplocation"]
    command, *words = shlex.split(definition)
    assert command == "iplocation"
    options = dict(word.split("=", 1) for word in words if "=" in word)
    (field_name,) = [word for word in words if "=" not in word]
    assert set(options) <= IPLOCATION_OPTIONS
    assert options["allfields"] == "true"
    # The address props.conf calculates for zoom:activity: source.ip, which the program sets only
    # for a valid address (Zoom's "unknown" is never looked up).
    assert evals(SOURCETYPES[(ACTIVITIES, "ecs")])[field_name] == "'source.ip'"
    assert any(field(doc, "source.ip") for doc in activity_docs)
    assert all(
        field(doc, "source.ip") is None
        for doc in activity_docs
        if doc["zoom"]["activity"].get("ip_address") == "unknown"
    )
    # The fields it adds, named as the macros file says.
    text = MACROS.read_text(encoding="utf-8")
    for name in IPLOCATION_FIELDS - {"MetroCode"}:
        assert options["prefix"] + name in text, name


def test_located_sign_ins_macro_searches_the_sign_in_event_type() -> None:
    definition = macros()["zoom_activity_sign_ins_located"]
    search, _, rest = definition.partition("|")
    terms = shlex.split(search)
    eventtype = [t.split("=", 1)[1] for t in terms if t.startswith("eventtype=")]
    assert eventtype == ["zoom_activity_sign_in"] and eventtype[0] in read_ini(SPLUNK / "eventtypes.conf")
    assert "src=*" in terms  # only events that carry an address
    assert rest.strip() == "`zoom_activity_iplocation`"
