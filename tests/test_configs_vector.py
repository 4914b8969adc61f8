"""The shipped Vector configs (configs/vector/), checked against Vector v0.57.0's behaviour.

Every `remap`, `route` and `filter` program is compiled and run with the real VRL compiler
(vrl-python 0.1.0 bundles vectordotdev/vrl at dbfeee5, October 2025; Vector v0.57.0 pins
33fec9b of the same repository). The events fed to them are what the program really prints:
each source's exact argv and environment run against the simulator, stdout and stderr framed
and decoded as the exec source does, with the fields it adds (src/sources/exec/mod.rs,
handle_event: `stream`, `pid`, `host`, `command`, plus `source_type` and `timestamp`, each only
when absent). `timestamp` is a string here (vrl-python takes no timestamp values); every remap
deletes it. Deployment paths are moved under the test's directory; a source with
`clear_environment` gets the simulator's URLs and the venv's PATH added, nothing else.

Every config ships both streams (operations and activities), each to its own data stream,
sourcetype and Loki label. Event metadata (``%zoom_stream``, which the sinks' templates read) is
carried from remap to remap as Vector carries it, and the sinks' templates are rendered as
src/template.rs renders them (a literal prefix, the rendered value confined to it), so that the
test sees where each event lands.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from agent_configs import (
    ACTIVITIES,
    CONSOLE_SCRIPT,
    DATA_STREAMS,
    DATASETS,
    METRICS_DIR,
    OPERATIONS,
    SOURCETYPES,
    VECTOR_ADDED_FIELDS,
    VECTOR_CONFIGS,
    VECTOR_MULTI,
    VECTOR_TOML,
    VECTOR_YAML,
    VectorSource,
    Zoom,
    all_vector_sources,
    assert_metrics_of_a_success,
    base_env,
    console_script,
    credentials_env,
    iter_strings,
    newline_frames,
    program_settings,
    read_vector,
    relocate,
    served_accounts,
    vector_interpolate,
    vector_sources,
    zoom_env,
)

from zoom_oplog_shipper.settings import DEFAULT_MAX_LINE_BYTES

vrl_python = pytest.importorskip("vrl_python", reason="pip install -e '.[test]' (vrl-python)")

HOURLY = 3600
RUN_TIMEOUT = 120
EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
ENV_REFERENCE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(:[-?][^}]*)?\}$")
HOSTNAME = socket.gethostname()
EXIT_AUTH = 3


# ---------------------------------------------------------------------------------------------
# VRL, the real compiler.


_RUNTIMES: dict[str, Any] = {}


class Doc(dict[str, Any]):
    """An event and, beside it, its metadata (``%...`` in VRL and templates), as Vector keeps them."""

    def __init__(self, event: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        super().__init__(event)
        self.metadata: dict[str, Any] = dict(metadata or {})


def vrl(program: str, event: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Run a VRL program on an event: (the event afterwards, the value of the last expression)."""
    runtime = _RUNTIMES.setdefault(program, vrl_python.VRLRuntime())
    result = runtime.execute(program, event)
    return result.processed_event, result.runtime_result


def _with_metadata(program: str, event: dict[str, Any]) -> str:
    """The program preceded by the event's metadata (vrl-python starts every run with none)."""
    metadata = getattr(event, "metadata", None)
    return f"% = {json.dumps(metadata)}\n{program}" if metadata else program


def vrl_remap(program: str, event: dict[str, Any]) -> Doc:
    """A remap program on an event with its metadata: the event and the metadata afterwards."""
    processed, metadata = vrl(f"{_with_metadata(program, event)}\n%", dict(event))
    return Doc(processed, metadata)


def vrl_programs(config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(component[.route], program) for every remap, route condition and filter condition."""
    for name, spec in config.get("transforms", {}).items():
        kind = spec["type"]
        if kind == "remap":
            yield name, spec["source"]
        elif kind == "route":
            for output, condition in spec["route"].items():
                yield f"{name}.{output}", _condition_source(condition)
        elif kind == "filter":
            yield name, _condition_source(spec["condition"])
        else:
            pytest.fail(f"transform {name} of type {kind} is not evaluated by these tests")


def _condition_source(condition: Any) -> str:
    """A condition as Vector reads it: a VRL string, or ``{type: vrl, source: ...}``."""
    if isinstance(condition, str):
        return condition
    assert condition.get("type", "vrl") == "vrl", condition
    return str(condition["source"])


def _condition(program: str, event: dict[str, Any]) -> bool:
    """A VRL condition: true only when it returns the boolean true (a runtime error is false)."""
    try:
        _, value = vrl(_with_metadata(program, event), dict(event))
    except RuntimeError:
        return False
    assert isinstance(value, bool), f"condition {program!r} returned {value!r}, not a boolean"
    return value


def _remap(spec: dict[str, Any], event: dict[str, Any]) -> list[dict[str, Any]]:
    """Vector's remap: an aborted event is dropped (drop_on_abort), a failed one passes unchanged."""
    try:
        processed = vrl_remap(spec["source"], event)
    except RuntimeError as exc:
        if "aborted" in str(exc):
            return [] if spec.get("drop_on_abort", True) else [event]
        return [] if spec.get("drop_on_error", False) else [event]
    return [processed]


_TEMPLATE_PART = re.compile(r"\{\{(.*?)\}\}")


def render_template(template: str, doc: dict[str, Any]) -> str:
    """A Vector template for one event (src/template.rs): ``{{ path }}`` from the event,
    ``{{ %path }}`` from its metadata; a missing field drops the event (an assertion here); a
    dynamic template must have a literal prefix and its value must start with it (``confine``)."""
    parts = _TEMPLATE_PART.split(template)
    if len(parts) == 1:
        return template
    prefix = parts[0]
    assert prefix, f"{template!r}: Vector v0.57 refuses a template without a literal prefix"
    rendered = []
    for n, part in enumerate(parts):
        if n % 2 == 0:
            rendered.append(part)
            continue
        path = part.strip()
        value: Any = getattr(doc, "metadata", {}) if path.startswith("%") else doc
        for key in path.lstrip("%").split("."):
            assert isinstance(value, dict) and key in value, f"{template!r}: {path} is missing, the event is dropped"
            value = value[key]
        rendered.append(str(value))
    text = "".join(rendered)
    assert text.startswith(prefix) and ".." not in text.split("/"), f"{template!r} -> {text!r} is not confined"
    return text


def destination(sink: dict[str, Any], doc: dict[str, Any]) -> str:
    """Where a sink puts one event: the data stream, the Splunk sourcetype, the Loki dataset label."""
    kind = sink["type"]
    if kind == "elasticsearch":
        config = sink["data_stream"]
        own = doc.get("data_stream") if config.get("auto_routing", True) else None
        own = own if isinstance(own, dict) else {}
        parts = [
            str(own[k]) if k in own else render_template(str(config[k]), doc) for k in ("type", "dataset", "namespace")
        ]
        return "-".join(parts)
    if kind == "splunk_hec_logs":
        return render_template(sink["sourcetype"], doc)
    if kind == "loki":
        return render_template(sink["labels"]["dataset"], doc)
    pytest.fail(f"no destination known for a {kind} sink")


def run_topology(config: dict[str, Any], sources: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Push the sources' events through the config's transforms; what each sink receives (each a
    Doc, with the metadata the transforms set)."""
    transforms = config.get("transforms", {})
    unknown = set(sources) - set(config["sources"])
    assert not unknown, f"not sources of this config: {sorted(unknown)}"
    outputs: dict[str, list[dict[str, Any]]] = {name: [] for name in config["sources"]}  # not run: nothing
    outputs.update({name: [Doc(e) for e in events] for name, events in sources.items()})
    pending = dict(transforms)
    while pending:
        ready = [n for n, s in pending.items() if all(_output_known(i, outputs, transforms) for i in s["inputs"])]
        assert ready, f"transforms never fed: {sorted(pending)}"
        for name in ready:
            spec = pending.pop(name)
            events = [e for i in spec["inputs"] for e in outputs[i]]
            if spec["type"] == "remap":
                outputs[name] = [out for e in events for out in _remap(spec, e)]
            elif spec["type"] == "filter":
                outputs[name] = [e for e in events if _condition(_condition_source(spec["condition"]), e)]
            elif spec["type"] == "route":
                matched: set[int] = set()
                for output, condition in spec["route"].items():
                    hits = [i for i, e in enumerate(events) if _condition(_condition_source(condition), e)]
                    matched.update(hits)
                    outputs[f"{name}.{output}"] = [events[i] for i in hits]
                if spec.get("reroute_unmatched", True):
                    outputs[f"{name}._unmatched"] = [e for i, e in enumerate(events) if i not in matched]
    return {name: [e for i in spec["inputs"] for e in outputs[i]] for name, spec in config["sinks"].items()}


def _output_known(name: str, outputs: dict[str, Any], transforms: dict[str, Any]) -> bool:
    if name in outputs:
        return True
    assert name.split(".", maxsplit=1)[0] in transforms, f"input {name} names no source or transform"
    return False


def _upstream(config: dict[str, Any], component: str) -> set[str]:
    """Every component on the way from the sources to ``component``."""
    spec = config.get("sinks", {}).get(component) or config["transforms"][component]
    found: set[str] = set()
    for name in spec["inputs"]:
        base = name.split(".")[0]
        found.add(base)
        if base in config.get("transforms", {}):
            found |= _upstream(config, base)
    return found


def event_sinks(config: dict[str, Any]) -> list[str]:
    """Sinks that receive Zoom's events, both streams (fed from zoom_oplog_clean)."""
    return [s for s in config["sinks"] if "zoom_oplog_clean" in _upstream(config, s)]


def log_sinks(config: dict[str, Any]) -> list[str]:
    """Sinks that receive the program's own log lines (fed from zoom_oplog_program_logs)."""
    return [s for s in config["sinks"] if "zoom_oplog_program_logs" in _upstream(config, s)]


# ---------------------------------------------------------------------------------------------
# A run of a source's command, read as the exec source reads it.


@dataclass(frozen=True)
class SourceRun:
    """One exec of a source: exit code, the decoded events as Vector makes them (and the pipe each
    came from: a summary line keeps its own `stream`), raw stdout and stderr."""

    returncode: int
    events: list[dict[str, Any]]
    pipes: list[str]
    stdout: bytes
    stderr: bytes

    def from_stream(self, pipe: str) -> list[dict[str, Any]]:
        return [e for e, p in zip(self.events, self.pipes, strict=True) if p == pipe]


def child_environment(source: VectorSource, vector_env: dict[str, str], root: Path) -> dict[str, str]:
    """The child's environment as build_command makes it: Vector's own (unless clear_environment),
    then the source's `environment` with ${...} filled in from Vector's environment."""
    child = {} if source.spec.get("clear_environment", False) else dict(vector_env)
    for name, value in source.environment.items():
        child[name] = relocate(vector_interpolate(value, vector_env), root)
    return child


def exec_like_vector(source: VectorSource, child_env: dict[str, str]) -> SourceRun:
    """Run the argv without a shell, frame stdout and stderr by newline with max_length, decode
    each frame as JSON (a frame that does not decode is dropped, as Vector drops it), add the fields."""
    result = subprocess.run(source.command, env=child_env, capture_output=True, timeout=RUN_TIMEOUT, check=False)
    events: list[dict[str, Any]] = []
    pipes: list[str] = []
    for stream, data in (("stdout", result.stdout), ("stderr", result.stderr)):
        frames, discarded = newline_frames(data, source.max_length)
        assert discarded == 0, f"{discarded} {stream} lines over max_length"
        for frame in frames:
            decoded = json.loads(frame)  # a text line would be "Failed deserializing frame."
            assert isinstance(decoded, dict)
            added = {
                "stream": stream,
                "pid": 4242,
                "host": HOSTNAME,
                "command": source.command,
                "source_type": "exec",
                "timestamp": datetime.now(UTC).isoformat(),
            }
            events.append({**added, **decoded})  # inserted only when absent (InsertIfEmpty)
            pipes.append(stream)
    return SourceRun(result.returncode, events, pipes, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def accounts() -> Iterator[dict[str, Zoom]]:
    """One simulator per account name the configs use; the wrong credentials fail on the others."""
    with served_accounts({"single": 11, "acme": 12, "globex": 13}) as served:
        yield served


def vector_env(zoom: Zoom, home: Path, secret: str | None = None) -> dict[str, str]:
    """Vector's own environment for a single-account config: simulator URLs, credentials."""
    env = {**base_env(home), **zoom_env(zoom.base_url, zoom.now), **credentials_env(zoom.account)}
    if secret is not None:
        env["ZOOM_CLIENT_SECRET"] = secret
    return env


def multi_vector_env(accounts: dict[str, Zoom], home: Path) -> dict[str, str]:
    """Vector's environment for the multi-account config: every account's values, own names."""
    env = base_env(home)
    for name, zoom in accounts.items():
        if name == "single":
            continue
        env.update(credentials_env(zoom.account, f"ZOOM_{name.upper()}_"))
        env[f"ZOOM_{name.upper()}_BACKFILL_START"] = zoom_env(zoom.base_url, zoom.now)["ZOOM_BACKFILL_START"]
    return env


def with_test_environment(source: VectorSource, child: dict[str, str], zoom: Zoom) -> dict[str, str]:
    """What the test adds to a cleared environment: the simulator and the venv's PATH."""
    if not source.spec.get("clear_environment", False):
        return child
    sim = zoom_env(zoom.base_url, zoom.now)
    return {
        **child,
        "ZOOM_API_URL": sim["ZOOM_API_URL"],
        "ZOOM_OAUTH_URL": sim["ZOOM_OAUTH_URL"],
        "ZOOM_OPLOG_MAX_RPS": "0",
        "PATH": f"{console_script().parent}:{child['PATH']}",
    }


def source_stream(source: VectorSource) -> str:
    """The stream a source's command runs (operations or activities)."""
    return program_settings(source.command, _placeholder_env(source)).stream


def source_account(source: VectorSource) -> str:
    """The account a multi-account source serves (zoom_activity_acme: acme); "" in a single-account config."""
    return re.sub(r"^zoom_(oplog|activity)_?", "", source.name)


@pytest.fixture(scope="module")
def single_runs(
    accounts: dict[str, Zoom], tmp_path_factory: pytest.TempPathFactory
) -> dict[Path, dict[str, SourceRun]]:
    """A successful first run of each source (both streams, one after the other in one state
    directory) of the YAML and the TOML config."""
    runs: dict[Path, dict[str, SourceRun]] = {}
    for path in (VECTOR_YAML, VECTOR_TOML):
        root = tmp_path_factory.mktemp(path.stem)
        Path(relocate(METRICS_DIR, root)).mkdir(parents=True)  # made once at install
        env = vector_env(accounts["single"], root)
        runs[path] = {s.name: exec_like_vector(s, child_environment(s, env, root)) for s in vector_sources(path)}
        METRICS_ROOTS[path] = root
    return runs


#: The directory each config's single_runs ran under (its metrics files are there).
METRICS_ROOTS: dict[Path, Path] = {}


@pytest.fixture(scope="module")
def failed_runs(accounts: dict[str, Zoom], tmp_path_factory: pytest.TempPathFactory) -> dict[str, SourceRun]:
    """The primary config's sources with a wrong client secret."""
    root = tmp_path_factory.mktemp("wrong-secret")
    env = vector_env(accounts["single"], root, secret="not-the-right-secret-value")
    return {s.name: exec_like_vector(s, child_environment(s, env, root)) for s in vector_sources(VECTOR_YAML)}


# ---------------------------------------------------------------------------------------------
# Every VRL program compiles.


VRL_PROGRAMS = [(path, name, program) for path in VECTOR_CONFIGS for name, program in vrl_programs(read_vector(path))]


@pytest.mark.parametrize("path,component,program", VRL_PROGRAMS, ids=[f"{p.name}:{n}" for p, n, _ in VRL_PROGRAMS])
def test_every_vrl_program_compiles(path: Path, component: str, program: str) -> None:
    diagnostic = vrl_python.VRLRuntime.check_syntax(program)
    assert diagnostic is None, f"{path.name} {component}:\n{diagnostic}"


def test_the_vrl_compiler_rejects_what_vector_rejects() -> None:
    # So that the test above can fail: an unhandled fallible call is E103 in Vector too.
    assert vrl_python.VRLRuntime.check_syntax(".x = parse_json(.message)") is not None


# ---------------------------------------------------------------------------------------------
# The sources.


VECTOR_SOURCES = all_vector_sources()


def _source_id(source: VectorSource) -> str:
    return f"{source.path.name}:{source.name}"


def _placeholder_env(source: VectorSource) -> dict[str, str]:
    """The source's environment with its ${...} references filled in: a default where one is
    given, else "x" (the values do not matter here)."""

    def fill(match: re.Match[str]) -> str:
        return "x" if match.group(1) is None else match.group(1)

    return {k: re.sub(r"\$\{[^}:]*(?::-([^}]*))?[^}]*\}", fill, v) for k, v in source.environment.items()}


def test_vector_configs_have_their_sources() -> None:
    assert {_source_id(s) for s in VECTOR_SOURCES} == {
        "zoom-oplog.yaml:zoom_oplog",
        "zoom-oplog.yaml:zoom_activity",
        "zoom-oplog-source.toml:zoom_oplog",
        "zoom-oplog-source.toml:zoom_activity",
        "zoom-oplog-multi-account.yaml:zoom_oplog_acme",
        "zoom-oplog-multi-account.yaml:zoom_oplog_globex",
        "zoom-oplog-multi-account.yaml:zoom_activity_acme",
        "zoom-oplog-multi-account.yaml:zoom_activity_globex",
    }


@pytest.mark.parametrize("path", VECTOR_CONFIGS, ids=lambda p: p.name)
def test_every_config_ships_both_streams_with_the_same_hardening(path: Path) -> None:
    # Per account (a multi-account config) one source per stream, the activities one the
    # operations one with `--stream activities`: same interval, environment, stderr and framing.
    sources = vector_sources(path)
    by_stream: dict[str, list[VectorSource]] = {OPERATIONS: [], ACTIVITIES: []}
    for source in sources:
        by_stream[source_stream(source)].append(source)
        assert source.name.startswith("zoom_activity" if source_stream(source) == ACTIVITIES else "zoom_oplog")
    assert len(by_stream[OPERATIONS]) == len(by_stream[ACTIVITIES]) >= 1
    for activities in by_stream[ACTIVITIES]:
        (operations,) = [s for s in by_stream[OPERATIONS] if source_account(s) == source_account(activities)]
        assert activities.command == [CONSOLE_SCRIPT, "run", "--stream", ACTIVITIES, *operations.command[2:]]
        # The same but for the metrics file: one per stream (a shared one would be overwritten).
        metrics = activities.environment["ZOOM_OPLOG_METRICS_FILE"]
        assert metrics == operations.environment["ZOOM_OPLOG_METRICS_FILE"].replace(OPERATIONS, ACTIVITIES)
        assert metrics != operations.environment["ZOOM_OPLOG_METRICS_FILE"]

        def same_part(spec: dict[str, Any]) -> dict[str, Any]:
            environment = {k: v for k, v in spec["environment"].items() if k != "ZOOM_OPLOG_METRICS_FILE"}
            return {**{k: v for k, v in spec.items() if k != "command"}, "environment": environment}

        assert same_part(activities.spec) == same_part(operations.spec)
    # Each stream keeps its own state file and lock, so the two share a state directory.
    assert len({s.environment["ZOOM_OPLOG_STATE_DIR"] for s in sources}) == len(by_stream[OPERATIONS])


@pytest.mark.parametrize("source", VECTOR_SOURCES, ids=_source_id)
def test_source_runs_the_program_hourly_with_json_logs_on_stderr(source: VectorSource) -> None:
    spec = source.spec
    assert spec["mode"] == "scheduled"
    assert source.command[:2] == [CONSOLE_SCRIPT, "run"]
    settings = program_settings(source.command, _placeholder_env(source))
    interval = spec["scheduled"]["exec_interval_secs"]
    assert interval == HOURLY
    # Vector kills a run at the interval: the program must stop itself well before.
    assert settings.max_runtime.total_seconds() <= interval / 2
    assert settings.output_format == "ecs"
    assert str(settings.state_dir).startswith("/var/lib/vector/")
    # stderr is read (false: /dev/null, every failure hidden), through the JSON decoder.
    assert spec["include_stderr"] is True
    assert settings.log_format == "json"


@pytest.mark.parametrize("source", VECTOR_SOURCES, ids=_source_id)
def test_source_decodes_json_lines_with_room_for_the_longest(source: VectorSource) -> None:
    spec = source.spec
    assert spec["decoding"]["codec"] == "json"
    assert spec["framing"]["method"] == "newline_delimited"
    settings = program_settings(source.command, _placeholder_env(source))
    assert settings.max_line_bytes <= source.max_length
    assert source.max_length >= 2 * DEFAULT_MAX_LINE_BYTES


@pytest.mark.parametrize("path", VECTOR_CONFIGS, ids=lambda p: p.name)
def test_every_source_goes_through_the_stream_route_only(path: Path) -> None:
    config = read_vector(path)
    sources = set(config["sources"])
    for kind in ("transforms", "sinks"):
        for name, spec in config.get(kind, {}).items():
            if set(spec["inputs"]) & sources:
                assert spec["type"] == "route", f"{name} reads a source directly"
                assert all(".stream" in _condition_source(c) for c in spec["route"].values())


@pytest.mark.parametrize("path", VECTOR_CONFIGS, ids=lambda p: p.name)
def test_every_config_sends_the_program_logs_to_vectors_stderr(path: Path) -> None:
    config = read_vector(path)
    consoles = [s for s in log_sinks(config) if config["sinks"][s]["type"] == "console"]
    assert consoles
    for name in consoles:
        assert config["sinks"][name]["target"] == "stderr"
    assert not set(log_sinks(config)) & set(event_sinks(config))


@pytest.mark.parametrize("path", VECTOR_CONFIGS, ids=lambda p: p.name)
def test_every_config_shows_the_backfill_setting(path: Path) -> None:
    # Single-account sources inherit it from Vector's environment; multi-account ones name it.
    assert "ZOOM_BACKFILL_START" in path.read_text(encoding="utf-8")
    for source in vector_sources(path):
        if source.spec.get("clear_environment"):
            assert ENV_REFERENCE.match(source.environment["ZOOM_BACKFILL_START"])


@pytest.mark.parametrize("path", VECTOR_CONFIGS, ids=lambda p: p.name)
def test_config_says_the_packaged_service_reads_only_vector_yaml(path: Path) -> None:
    assert "/etc/vector/vector.yaml" in path.read_text(encoding="utf-8")


def test_toml_matches_the_yaml_source_and_log_handling() -> None:
    toml = read_vector(VECTOR_TOML)
    yml = read_vector(VECTOR_YAML)
    assert toml["sources"] == yml["sources"]
    for name in ("zoom_oplog_split", "zoom_oplog_clean", "zoom_oplog_program_logs"):
        assert toml["transforms"][name] == yml["transforms"][name], name
    assert toml["sinks"]["zoom_oplog_program_log_console"] == yml["sinks"]["zoom_oplog_program_log_console"]


# ---------------------------------------------------------------------------------------------
# The topology, run on real output with the real VRL.


def assert_event_doc(doc: dict[str, Any], sink: dict[str, Any]) -> None:
    """A Zoom event as a sink receives it: the program's fields, none of Vector's (but the HEC
    sink's own `timestamp`, which its remap sets from @timestamp), and landing where its stream
    belongs: its own data stream, sourcetype or Loki label."""
    assert EVENT_ID.match(doc["event"]["id"])
    stream = {dataset: stream for stream, dataset in DATASETS.items()}[doc["data_stream"]["dataset"]]
    assert doc["event"]["dataset"] == DATASETS[stream]
    assert "log" not in doc or "logger" not in doc["log"]
    leftover = set(VECTOR_ADDED_FIELDS) & set(doc) - {sink.get("timestamp_key")}
    assert not leftover, sorted(doc)
    assert doc["agent"] == {"type": "vector", "name": HOSTNAME}
    expected = {"elasticsearch": DATA_STREAMS, "splunk_hec_logs": SOURCETYPES, "loki": DATASETS}[sink["type"]]
    assert destination(sink, doc) == expected[stream]


@pytest.mark.parametrize("path", [VECTOR_YAML, VECTOR_TOML], ids=lambda p: p.name)
def test_a_successful_run_reaches_every_sink_it_should(
    path: Path, single_runs: dict[Path, dict[str, SourceRun]], accounts: dict[str, Zoom]
) -> None:
    runs = single_runs[path]
    sources = {s.name: s for s in vector_sources(path)}
    stdout_events: dict[str, list[dict[str, Any]]] = {}
    for name, run in runs.items():
        assert run.returncode == 0, run.stderr.decode(errors="replace")
        stdout_events[DATASETS[source_stream(sources[name])]] = run.from_stream("stdout")
    account = accounts["single"].account
    assert {dataset: len(events) for dataset, events in stdout_events.items()} == {
        DATASETS[OPERATIONS]: len(account.records),
        DATASETS[ACTIVITIES]: len(account.activities),
    }
    config = read_vector(path)
    delivered = run_topology(config, {name: run.events for name, run in runs.items()})
    for sink in event_sinks(config):
        docs = delivered[sink]
        assert len(docs) == sum(len(events) for events in stdout_events.values()), sink
        for doc in docs:
            assert_event_doc(doc, config["sinks"][sink])
        for dataset, events in stdout_events.items():
            mine = [d for d in docs if d["event"]["dataset"] == dataset]
            assert [d["event"]["id"] for d in mine] == [e["event"]["id"] for e in events], (sink, dataset)
            assert [d["@timestamp"] for d in mine] == [e["@timestamp"] for e in events], (sink, dataset)
    log_lines = [line for run in runs.values() for line in run.from_stream("stderr")]
    for sink in log_sinks(config):
        docs = delivered[sink]
        assert len(docs) == len(log_lines) >= 2, sink
        assert not any("event" in d and "id" in d["event"] for d in docs)
        summaries = [d for d in docs if d["log"]["logger"] == "zoom_oplog_shipper.summary"]
        # One summary per run, naming its stream (the program's `stream`, not Vector's).
        assert {d["stream"]: d["emitted"] for d in summaries} == {
            OPERATIONS: len(account.records),
            ACTIVITIES: len(account.activities),
        }
        for summary in summaries:
            assert summary["exit_code"] == 0
            assert summary["event"]["outcome"] == "success"
            assert summary["service"]["name"] == CONSOLE_SCRIPT
            assert not set(VECTOR_ADDED_FIELDS) - {"stream"} & set(summary)
        assert not any("stream" in d for d in docs if d not in summaries)
        if config["sinks"][sink]["type"] == "elasticsearch":
            assert {destination(config["sinks"][sink], d) for d in docs} == {"logs-zoom_oplog_shipper.log-default"}
    # No warning about the metrics file (it was written), and each source's metrics file.
    assert not [line for line in log_lines if "metrics" in line["message"]]
    for name in runs:
        source = sources[name]
        metrics = Path(relocate(source.environment["ZOOM_OPLOG_METRICS_FILE"], METRICS_ROOTS[path]))
        assert_metrics_of_a_success(metrics, account.config.account_id, source_stream(source))


def test_activity_events_keep_what_is_not_an_address(single_runs: dict[Path, dict[str, SourceRun]]) -> None:
    # "unknown" stays in zoom.activity.ip_address (a keyword), with no source.ip; IPv6 is an ip.
    config = read_vector(VECTOR_YAML)
    feeds = {name: run.events for name, run in single_runs[VECTOR_YAML].items()}
    docs = run_topology(config, feeds)["zoom_oplog_elasticsearch"]
    by_user = {d["zoom"]["activity"].get("email"): d for d in docs if d["event"]["dataset"] == DATASETS[ACTIVITIES]}
    unknown, ipv6 = by_user["odd.one@example.com"], by_user["odd.two@example.com"]
    assert unknown["zoom"]["activity"]["ip_address"] == "unknown" and "source" not in unknown
    assert ipv6["source"]["ip"] == "2001:db8::7" and ipv6["related"]["ip"] == ["2001:db8::7"]
    assert by_user["odd.one@example.com"]["event"]["action"] == "sign-in"
    assert destination(config["sinks"]["zoom_oplog_elasticsearch"], unknown) == DATA_STREAMS[ACTIVITIES]


def _yaml_feeds(single_runs: dict[Path, dict[str, SourceRun]]) -> dict[str, list[dict[str, Any]]]:
    return {name: run.events for name, run in single_runs[VECTOR_YAML].items()}


def test_elasticsearch_sink_gets_a_scratch_id_equal_to_event_id(single_runs: dict[Path, dict[str, SourceRun]]) -> None:
    config = read_vector(VECTOR_YAML)
    sink = config["sinks"]["zoom_oplog_elasticsearch"]
    id_key = sink["id_key"]
    # id_key removes the field it reads: it must be a copy, never event.id itself.
    assert id_key not in ("event.id", ".event.id")
    docs = run_topology(config, _yaml_feeds(single_runs))["zoom_oplog_elasticsearch"]
    assert {d["event"]["dataset"] for d in docs} == set(DATASETS.values())
    assert docs and all(d[id_key] == d["event"]["id"] for d in docs)
    # Without `timestamp` the data-stream rename cannot overwrite the event's @timestamp.
    assert all("timestamp" not in d for d in docs)


def test_splunk_sink_gets_the_event_time_as_a_timestamp_value(single_runs: dict[Path, dict[str, SourceRun]]) -> None:
    config = read_vector(VECTOR_YAML)
    sink = config["sinks"]["zoom_oplog_splunk_hec"]
    key = sink["timestamp_key"]
    (remap,) = sink["inputs"]
    docs = run_topology(config, _yaml_feeds(single_runs))["zoom_oplog_splunk_hec"]
    assert docs
    program = config["transforms"][remap]["source"]
    for doc in docs[:10] + docs[-10:]:
        # vrl-python renders a timestamp value as "YYYY-MM-DD HH:MM:SS[.fff] UTC".
        assert doc[key].endswith(" UTC"), doc[key]
        when = datetime.fromisoformat(doc[key].removesuffix(" UTC") + "+00:00")
        assert when == datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))
        _, is_timestamp = vrl(f"{program}\nis_timestamp(.{key})", {k: v for k, v in doc.items() if k != key})
        assert is_timestamp is True


@pytest.mark.parametrize("name", ["zoom_oplog", "zoom_activity"])
def test_a_failed_run_shows_in_the_log_sinks_and_never_in_an_event_sink(
    name: str, failed_runs: dict[str, SourceRun]
) -> None:
    failed_run = failed_runs[name]
    assert failed_run.returncode == EXIT_AUTH, failed_run.stderr.decode(errors="replace")
    assert failed_run.stdout == b""
    assert b"not-the-right-secret-value" not in failed_run.stderr
    config = read_vector(VECTOR_YAML)
    delivered = run_topology(config, {name: failed_run.events})
    for sink in event_sinks(config):
        assert delivered[sink] == [], f"{sink} received the program's log lines"
    for sink in log_sinks(config):
        docs = delivered[sink]
        errors = [d for d in docs if d["log"]["level"] == "error"]
        assert errors and all(d["event"]["outcome"] == "failure" for d in errors), sink
        summary = docs[-1]
        assert summary["log"]["logger"] == "zoom_oplog_shipper.summary"
        assert summary["exit_code"] == EXIT_AUTH
        assert summary["event"]["outcome"] == "failure"
        assert summary["emitted"] == 0
        assert summary["stream"] == (ACTIVITIES if name == "zoom_activity" else OPERATIONS)


def test_a_log_line_never_reaches_an_event_sink_whatever_it_holds() -> None:
    # Even a log line shaped like an event (an event.id, a data_stream) stays on the logs side.
    config = read_vector(VECTOR_YAML)
    line = {
        "@timestamp": "2026-11-30T00:00:00.000Z",
        "log": {"level": "info", "logger": "zoom_oplog_shipper"},
        "message": "x",
        "event": {"id": "0" * 32},
        "data_stream": {"type": "logs", "dataset": "zoom.operation", "namespace": "default"},
    }
    event = {"stream": "stderr", "pid": 1, "host": HOSTNAME, "command": ["x"], "source_type": "exec", **line}
    summary = {**event, "stream": ACTIVITIES, "log": {"level": "info", "logger": "zoom_oplog_shipper.summary"}}
    delivered = run_topology(config, {"zoom_oplog": [event], "zoom_activity": [summary]})
    assert all(delivered[s] == [] for s in event_sinks(config))
    assert all(len(delivered[s]) == 2 for s in log_sinks(config))


# ---------------------------------------------------------------------------------------------
# Many accounts.


def test_multi_account_children_see_only_their_own_account(accounts: dict[str, Zoom], tmp_path: Path) -> None:
    env = multi_vector_env(accounts, tmp_path)
    sources = vector_sources(VECTOR_MULTI)
    assert len(sources) >= 4
    for source in sources:
        name = source_account(source)
        assert source.spec["clear_environment"] is True
        child = child_environment(source, env, tmp_path)
        own = accounts[name].account.config
        assert child["ZOOM_CLIENT_SECRET"] == own.client_secret
        others = [z.account.config.client_secret for n, z in accounts.items() if n not in (name, "single")]
        assert others and not set(others) & set(child.values())
        assert not any(k.startswith(f"ZOOM_{n.upper()}_") for k in child for n in accounts)
        assert "PATH" in child and "ZOOM_OPLOG_STATE_DIR" in child
        assert "ZOOM_CLIENT_SECRET_FILE" not in child


def test_multi_account_sources_have_their_own_state(accounts: dict[str, Zoom], tmp_path: Path) -> None:
    sources = vector_sources(VECTOR_MULTI)
    # One state directory per account; its two streams keep their own files in it.
    state_dirs = {source_account(s): s.environment["ZOOM_OPLOG_STATE_DIR"] for s in sources}
    assert len(set(state_dirs.values())) == len(state_dirs) == len(sources) // 2
    env = multi_vector_env(accounts, tmp_path)
    config = read_vector(VECTOR_MULTI)
    feeds: dict[str, list[dict[str, Any]]] = {}
    for source in sources:
        zoom = accounts[source_account(source)]
        child = with_test_environment(source, child_environment(source, env, tmp_path), zoom)
        assert child["ZOOM_OPLOG_STATE_DIR"].endswith(state_dirs[source_account(source)])
        run = exec_like_vector(source, child)
        assert run.returncode == 0, run.stderr.decode(errors="replace")
        assert len(run.from_stream("stdout")) == len(zoom.account.served(source_stream(source)))
        feeds[source.name] = run.events
    delivered = run_topology(config, feeds)
    (es,) = [s for s in event_sinks(config) if config["sinks"][s]["type"] == "elasticsearch"]
    landed: dict[tuple[str, str], int] = {}
    for doc in delivered[es]:
        assert_event_doc(doc, config["sinks"][es])
        key = (doc["organization"]["id"], destination(config["sinks"][es], doc))
        landed[key] = landed.get(key, 0) + 1
    assert landed == {
        (zoom.account.config.account_id, DATA_STREAMS[stream]): len(zoom.account.served(stream))
        for zoom in (accounts[source_account(s)] for s in sources)
        for stream in (OPERATIONS, ACTIVITIES)
    }
    summaries = [d for s in log_sinks(config) for d in delivered[s] if d["log"]["logger"].endswith(".summary")]
    assert sorted((d["account"], d["stream"]) for d in summaries) == sorted(
        (accounts[source_account(s)].account.config.account_id, source_stream(s)) for s in sources
    )


def test_multi_account_refuses_a_missing_account_variable(accounts: dict[str, Zoom], tmp_path: Path) -> None:
    source = vector_sources(VECTOR_MULTI)[0]
    with pytest.raises(KeyError, match="not set"):
        child_environment(source, base_env(tmp_path), tmp_path)


# ---------------------------------------------------------------------------------------------
# Sinks and the file's text.


def test_elasticsearch_sinks_use_data_streams() -> None:
    for path in (VECTOR_YAML, VECTOR_MULTI):
        config = read_vector(path)
        sink = config["sinks"]["zoom_oplog_elasticsearch"]
        assert sink["mode"] == "data_stream"
        # Each event's own data_stream.* fields name its data stream (both streams, one sink).
        assert sink["data_stream"]["auto_routing"] is True
        assert {k: sink["data_stream"][k] for k in ("type", "namespace")} == {"type": "logs", "namespace": "default"}
        assert sink["auth"]["password"] == "${ELASTICSEARCH_PASSWORD}"
        assert sink["buffer"]["type"] == "disk"


def test_loki_labels_are_few_and_of_low_cardinality() -> None:
    # Static, or the stream from metadata (two values): never an event's own field.
    sink = read_vector(VECTOR_YAML)["sinks"]["zoom_oplog_loki"]
    labels = sink["labels"]
    assert 1 <= len(labels) <= 4
    for key, value in labels.items():
        assert "{{" not in key, f"label {key} is not static"
        fields = [f.strip() for f in _TEMPLATE_PART.findall(value)]
        assert set(fields) <= {"%zoom_stream"}, f"label {key}: {value} reads an event field"
    assert sink["encoding"]["codec"] == "json"


@pytest.mark.parametrize("path", VECTOR_CONFIGS, ids=lambda p: p.name)
def test_the_stream_metadata_is_set_before_any_sink_reads_it(path: Path) -> None:
    config = read_vector(path)
    for where, value in iter_strings(config.get("sinks", {})):
        if "%zoom_stream" in value:
            sink = where.split(".")[0]
            assert "zoom_oplog_clean" in _upstream(config, sink), f"{sink} reads %zoom_stream that nothing set"
    _, metadata = vrl(f"{config['transforms']['zoom_oplog_clean']['source']}\n%", {"event": {"dataset": "x"}})
    assert metadata == {"zoom_stream": "operation"}


@pytest.mark.parametrize("path", VECTOR_CONFIGS, ids=lambda p: p.name)
def test_dollar_signs_are_only_intended_references(path: Path) -> None:
    # Vector replaces $NAME and ${NAME} anywhere in the file, comments included, before parsing.
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("#"):
            assert "$" not in line, f"{path.name}:{number}: Vector would substitute in this comment"
        else:
            rest = re.sub(r"\$\{[A-Z][A-Z0-9_]*(:[-?][^}]*)?\}", "", line)
            assert "$" not in rest, f"{path.name}:{number}: unintended substitution"


@pytest.mark.parametrize("path", VECTOR_CONFIGS, ids=lambda p: p.name)
def test_no_template_without_a_literal_prefix(path: Path) -> None:
    # Vector v0.57 refuses "{{ field }}" alone in index, sourcetype or label fields at startup.
    for where, value in iter_strings(read_vector(path)):
        if "{{" in value:
            assert not value.strip().startswith("{{"), f"{path.name}: {where} = {value!r}"
