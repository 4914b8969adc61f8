"""The shipped Fluent Bit configs (configs/fluent-bit/), checked against Fluent Bit v5.1.1.

The exec input (plugins/in_exec/in_exec.c) runs the command with ``/bin/sh -c`` in its own
process group, reads only its stdout with ``fgets(buf, buf_size)`` and hands each piece to the
parser; stderr goes to Fluent Bit's own stderr. The tests run each input's exact command that way
against the simulator (deployment paths moved under the test's directory) and read stdout as
the input and the es output do.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock
import pytest
from agent_configs import (
    ACTIVITIES,
    DATA_STREAMS,
    DATASETS,
    ES_INDEX_TEMPLATES,
    FLUENT_BIT_CONF,
    FLUENT_BIT_CONFIGS,
    FLUENT_BIT_MULTI,
    FLUENT_BIT_PARSERS,
    FLUENT_BIT_YAML,
    METRICS_DIR,
    OPERATIONS,
    SOURCETYPES,
    SPLUNK_PROPS,
    Account,
    FluentBitInput,
    Zoom,
    assert_metrics_of_a_success,
    base_env,
    credentials_env,
    fgets_records,
    fluent_bit_inputs,
    fluent_bit_pipeline,
    fluent_bit_time_format,
    program_settings,
    read_fluent_bit_classic,
    read_ini,
    relocate,
    served_accounts,
    split_shell_command,
    to_python_datetime,
    zoom_env,
)

from zoom_oplog_shipper.settings import DEFAULT_MAX_LINE_BYTES
from zoom_oplog_shipper.state import state_file

HOURLY = 3600
RUN_TIMEOUT = 120
EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
ENV_REFERENCE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*\}$")
SECRET_KEY = re.compile(r"(password|passwd|token|secret)", re.IGNORECASE)

FB_INPUTS = [item for path in FLUENT_BIT_CONFIGS for item in fluent_bit_inputs(path)]


def _fb_id(item: FluentBitInput) -> str:
    return f"{item.path.name}:{item.settings.get('tag')}" + (":oneshot" if item.oneshot else "")


def _fb_settings(item: FluentBitInput) -> Any:
    assignments, argv = split_shell_command(item.command)
    placeholders = {k: "2026-06-01" if k == "ZOOM_BACKFILL_START" else "x" for k in assignments}
    return program_settings(argv, placeholders)


def _index_template_matches(name: str) -> bool:
    for path in ES_INDEX_TEMPLATES:
        template = json.loads(path.read_text(encoding="utf-8"))
        if any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), name) for p in template["index_patterns"]):
            return True
    return False


def _stream(item: FluentBitInput) -> str:
    """The stream an input's command runs (operations or activities)."""
    return str(_fb_settings(item).stream)


# ---------------------------------------------------------------------------------------------
# The inputs.


def test_fluent_bit_configs_have_their_inputs() -> None:
    # Per account and stream an hourly input and its twin that runs once at start.
    tags = {
        "zoom-oplog.yaml": ("zoom.operation", "zoom.activity"),
        "zoom-oplog.conf": ("zoom.operation", "zoom.activity"),
        "zoom-oplog-multi-account.yaml": tuple(
            f"zoom.{stream}.{account}" for stream in ("operation", "activity") for account in ("acme", "globex")
        ),
    }
    expected = [f"{name}:{tag}{kind}" for name, ts in tags.items() for tag in ts for kind in ("", ":oneshot")]
    assert sorted(_fb_id(i) for i in FB_INPUTS) == sorted(expected)


@pytest.mark.parametrize("path", FLUENT_BIT_CONFIGS, ids=lambda p: p.name)
def test_every_config_ships_both_streams_with_the_same_settings(path: Path) -> None:
    # Per account one input per stream, tagged by its dataset; the activities input is the
    # operations one with `--stream activities` and its own tag.
    items = fluent_bit_inputs(path)
    streams = [_stream(i) for i in items]
    assert streams.count(OPERATIONS) == streams.count(ACTIVITIES) >= 1
    for item, stream in zip(items, streams, strict=True):
        assert item.settings["tag"].startswith(DATASETS[stream])
    for item in [i for i, s in zip(items, streams, strict=True) if s == ACTIVITIES]:
        account = item.settings["tag"].removeprefix(DATASETS[ACTIVITIES])
        (twin,) = [
            i for i in items if i.settings["tag"] == DATASETS[OPERATIONS] + account and i.oneshot == item.oneshot
        ]
        # The same command with the stream, and its own metrics file.
        assert item.command == twin.command.replace(" run ", f" run --stream {ACTIVITIES} ").replace(
            f"_{OPERATIONS}.prom", f"_{ACTIVITIES}.prom"
        )
        assert {k: v for k, v in item.settings.items() if k not in ("tag", "command")} == {
            k: v for k, v in twin.settings.items() if k not in ("tag", "command")
        }
        assert item.parser == twin.parser


@pytest.mark.parametrize("item", FB_INPUTS, ids=_fb_id)
def test_exec_runs_the_program_hourly_or_once_in_its_own_thread(item: FluentBitInput) -> None:
    # An hourly input, or its twin that runs once at start (which has no interval: oneshot ignores it).
    if item.oneshot:
        assert "interval_sec" not in item.settings and "interval_nsec" not in item.settings
    else:
        assert int(item.settings["interval_sec"]) == HOURLY
    assert item.settings["threaded"].lower() == "on"
    settings = _fb_settings(item)
    assert settings.max_runtime.total_seconds() <= HOURLY / 2
    assert str(settings.state_dir).startswith("/var/lib/fluent-bit/")
    # stderr is not read by Fluent Bit (it goes to the journal for people): text, the default.
    assert settings.log_format == "text"


@pytest.mark.parametrize("item", FB_INPUTS, ids=_fb_id)
def test_buf_size_is_well_above_the_longest_line(item: FluentBitInput) -> None:
    settings = _fb_settings(item)
    # fgets keeps buf_size - 1 bytes, the newline included.
    assert settings.max_line_bytes + 2 <= item.buf_size
    assert item.buf_size >= 2 * DEFAULT_MAX_LINE_BYTES


@pytest.mark.parametrize("item", FB_INPUTS, ids=_fb_id)
def test_parser_reads_the_programs_timestamp(item: FluentBitInput) -> None:
    parser = item.parser
    assert parser["format"] == "json"
    assert parser["time_key"] == "@timestamp"
    assert parser["time_format"] == "%Y-%m-%dT%H:%M:%S.%L%z"
    # Off: the es output writes its own @timestamp from the record time.
    assert parser["time_keep"].lower() == "off"
    stamp = "2026-11-30T12:34:56.789Z"  # the program's format: milliseconds, Z
    parsed = to_python_datetime(stamp, fluent_bit_time_format(parser["time_format"]))
    assert parsed == datetime(2026, 11, 30, 12, 34, 56, 789000, tzinfo=UTC)


@pytest.mark.parametrize("item", [i for i in FB_INPUTS if i.path == FLUENT_BIT_MULTI], ids=_fb_id)
def test_multi_account_commands_take_their_values_from_the_environment(item: FluentBitInput) -> None:
    assignments, _ = split_shell_command(item.command)
    assert set(assignments) == {"ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_CLIENT_SECRET", "ZOOM_BACKFILL_START"}
    for name in assignments:
        # "$NAME" for the shell: "${NAME}" would be replaced by Fluent Bit, secret in the argv.
        assert re.search(rf'{name}="\$[A-Z][A-Z0-9_]*" ', item.command), item.command
    assert "${" not in item.command


def test_multi_account_inputs_are_separate() -> None:
    # One state directory and one set of variables per account, shared by its two streams
    # (each stream keeps its own state file and lock there).
    items = [i for i in FB_INPUTS if i.path == FLUENT_BIT_MULTI and not i.oneshot]
    assert len({i.settings["tag"] for i in items}) == len(items)
    accounts = {i.settings["tag"].rsplit(".", 1)[-1] for i in items}
    assert len({(str(_fb_settings(i).state_dir), _stream(i)) for i in items}) == len(items)
    assert len({str(_fb_settings(i).state_dir) for i in items}) == len(accounts)
    for name in ("ZOOM_CLIENT_SECRET", "ZOOM_BACKFILL_START"):
        assert len({split_shell_command(i.command)[0][name] for i in items}) == len(accounts), name


@pytest.mark.parametrize("path", FLUENT_BIT_CONFIGS, ids=lambda p: p.name)
def test_every_command_runs_when_fluent_bit_starts_and_then_hourly(path: Path) -> None:
    # An interval input's first run is one interval after the start (an hour: a wrong secret would
    # show an hour after deploy); a oneshot twin of each runs the same command at once. When each
    # input runs is in_exec's own rule (FluentBitInput.run_times, from in_exec.c v5.1.1).
    runs: dict[tuple[str, str], list[int]] = {}
    for item in fluent_bit_inputs(path):
        runs.setdefault((item.settings["tag"], item.command), []).extend(item.run_times(3 * HOURLY))
    assert runs
    for (tag, _), times in runs.items():
        assert sorted(times) == [0, HOURLY, 2 * HOURLY, 3 * HOURLY], tag


@pytest.mark.parametrize("path", FLUENT_BIT_CONFIGS, ids=lambda p: p.name)
def test_the_run_at_start_is_its_hourly_inputs_twin_and_fluent_bit_keeps_running(path: Path) -> None:
    items = fluent_bit_inputs(path)
    hourly = [i for i in items if not i.oneshot]
    at_start = [i for i in items if i.oneshot]
    assert len(hourly) == len(at_start) >= 2
    for item in items:
        # exit_after_oneshot stops Fluent Bit once the command exits (in_exec_collect calls
        # flb_engine_exit), and propagate_exit_code needs it: neither belongs here.
        assert "exit_after_oneshot" not in item.settings and "propagate_exit_code" not in item.settings
    for twin in at_start:
        (item,) = [i for i in hourly if (i.settings["tag"], i.command) == (twin.settings["tag"], twin.command)]
        assert {k: v for k, v in twin.settings.items() if k != "oneshot"} == {
            k: v for k, v in item.settings.items() if k != "interval_sec"
        }
        assert twin.parser == item.parser
    text = path.read_text(encoding="utf-8")
    assert "oneshot" in text.lower() and "lock" in text


@pytest.mark.parametrize("path", FLUENT_BIT_CONFIGS, ids=lambda p: p.name)
def test_every_config_shows_the_backfill_setting(path: Path) -> None:
    assert "ZOOM_BACKFILL_START" in path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The outputs and the files.


@pytest.mark.parametrize("path", FLUENT_BIT_CONFIGS, ids=lambda p: p.name)
def test_outputs(path: Path) -> None:
    _, outputs, _ = fluent_bit_pipeline(path)
    items = fluent_bit_inputs(path)
    for output in outputs:
        # Every output takes one stream's tags only, and lands where that stream belongs.
        streams = {_stream(i) for i in items if _fluent_bit_match(output["match"], i.settings["tag"])}
        assert len(streams) == 1, output
        (stream,) = streams
        if output["name"] == "es":
            assert output["id_key"] == "$event['id']"
            assert output["write_operation"] == "create"
            assert output["suppress_type_name"].lower() == "on"
            # A re-sent chunk answers with one 409 item per event: the whole response must be read.
            assert output["buffer_size"].lower() in ("false", "off")
            assert output["index"] == DATA_STREAMS[stream]
            assert _index_template_matches(output["index"])
            assert output["http_passwd"] == "${ELASTICSEARCH_PASSWORD}"
        elif output["name"] == "splunk":
            assert output["splunk_token"] == "${SPLUNK_HEC_TOKEN}"
            assert output["event_sourcetype"] == SOURCETYPES[stream]
            assert SOURCETYPES[stream] in read_ini(SPLUNK_PROPS)
        elif output["name"] == "loki":
            assert output["line_format"] == "json"
            labels = output["labels"]
            assert "$" not in labels and len(labels.split(",")) <= 4
            assert f"dataset={DATASETS[stream]}" in [label.strip() for label in labels.split(",")]
        else:
            pytest.fail(f"output {output['name']} is not checked by these tests")
        # Bounded (an all-409 chunk is retried until the limit), but more than the default 1.
        assert 1 < int(output["retry_limit"]) <= 30
    # Each stream reaches Elasticsearch.
    assert {
        _stream(i)
        for o in outputs
        if o["name"] == "es"
        for i in items
        if _fluent_bit_match(o["match"], i.settings["tag"])
    } == {OPERATIONS, ACTIVITIES}


def _fluent_bit_match(pattern: str, tag: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), tag) is not None


def test_yaml_and_classic_describe_the_same_pipeline() -> None:
    yaml_in, yaml_out, yaml_parsers = fluent_bit_pipeline(FLUENT_BIT_YAML)
    conf_in, conf_out, conf_parsers = fluent_bit_pipeline(FLUENT_BIT_CONF)

    # Fluent Bit reads on/true and off/false alike.
    booleans = {"on": "on", "true": "on", "off": "off", "false": "off"}

    def norm(items: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: booleans.get(v.lower(), v) for k, v in i.items()} for i in items]

    assert norm(yaml_in) == norm(conf_in)
    assert norm(yaml_out) == norm(conf_out)
    assert norm(yaml_parsers) == norm(conf_parsers)


def test_classic_config_names_the_parsers_file_by_its_absolute_path() -> None:
    (service,) = [s for name, s in read_fluent_bit_classic(FLUENT_BIT_CONF) if name == "SERVICE"]
    parsers_file = Path(service["parsers_file"])
    assert parsers_file.is_absolute() and parsers_file.name == FLUENT_BIT_PARSERS.name
    # Both files say so, so that the parsers file is copied to exactly that path.
    for path in (FLUENT_BIT_CONF, FLUENT_BIT_PARSERS):
        text = path.read_text(encoding="utf-8")
        assert str(parsers_file) in text and "absolute path" in text, path.name


def test_classic_secrets_come_from_the_environment() -> None:
    secrets = [
        (k, v) for _, s in read_fluent_bit_classic(FLUENT_BIT_CONF) for k, v in s.items() if SECRET_KEY.search(k)
    ]
    assert secrets
    for key, value in secrets:
        assert ENV_REFERENCE.match(value), f"{key} {value}"


# ---------------------------------------------------------------------------------------------
# End to end: the exact command through /bin/sh -c, stdout read as Fluent Bit reads it.


@pytest.fixture(scope="module")
def accounts() -> Iterator[dict[str, Zoom]]:
    """One simulator per account name the configs use; the wrong credentials fail on the others."""
    with served_accounts({"single": 21, "acme": 22, "globex": 23}) as served:
        yield served


def read_like_fluent_bit(stdout: bytes, item: FluentBitInput) -> list[dict[str, Any]]:
    """fgets with buf_size, the json parser, @timestamp into the record time, es's @timestamp back."""
    python_format = fluent_bit_time_format(item.parser["time_format"])
    docs = []
    for chunk in fgets_records(stdout, item.buf_size):
        record = json.loads(chunk)  # a piece of a split line fails here, as the parser would
        assert isinstance(record, dict)
        stamp = record.pop(item.parser["time_key"])  # time_keep off
        when = to_python_datetime(stamp, python_format)
        # The es output writes @timestamp from the record time, milliseconds, UTC.
        record["@timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        assert record["@timestamp"] == stamp
        docs.append(record)
    return docs


def run_input(item: FluentBitInput, env: dict[str, str], root: Path) -> subprocess.CompletedProcess[bytes]:
    """The command through /bin/sh -c, as in_exec runs it (it holds no ${...} to substitute)."""
    assert "${" not in item.command
    return subprocess.run(
        ["/bin/sh", "-c", relocate(item.command, root)], env=env, capture_output=True, timeout=RUN_TIMEOUT, check=False
    )


#: The state partition of each stream: the operations one keeps its category's name.
STATE_KEYS = {OPERATIONS: "all", ACTIVITIES: ACTIVITIES}


def assert_delivered(docs: list[dict[str, Any]], account: Account, stream: str) -> None:
    """Every simulator record of the stream once, with a unique event.id, the account's
    organization and the stream's dataset."""
    assert len(docs) == len(account.served(stream))
    ids = [doc["event"]["id"] for doc in docs]
    assert all(EVENT_ID.match(i) for i in ids) and len(set(ids)) == len(ids)
    assert {doc["organization"]["id"] for doc in docs} == {account.config.account_id}
    assert {doc["data_stream"]["dataset"] for doc in docs} == {DATASETS[stream]}
    if stream == OPERATIONS:
        assert max(len(json.dumps(d)) for d in docs) > 10_000  # long lines were exercised


@pytest.mark.parametrize("path", [FLUENT_BIT_YAML, FLUENT_BIT_CONF], ids=lambda p: p.name)
def test_single_account_delivers_every_record_once(path: Path, accounts: dict[str, Zoom], tmp_path: Path) -> None:
    zoom = accounts["single"]
    env = {**base_env(tmp_path), **zoom_env(zoom.base_url, zoom.now), **credentials_env(zoom.account)}
    state_dir = tmp_path / "var/lib/fluent-bit/zoom-oplog-shipper"
    Path(relocate(METRICS_DIR, tmp_path)).mkdir(parents=True)  # made once at install
    items = fluent_bit_inputs(path)
    # Fluent Bit starts: the oneshot inputs run at once and deliver everything.
    at_start = [i for i in items if i.oneshot]
    assert sorted(_stream(i) for i in at_start) == [ACTIVITIES, OPERATIONS]
    for item in at_start:
        stream = _stream(item)
        result = run_input(item, env, tmp_path)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert_delivered(read_like_fluent_bit(result.stdout, item), zoom.account, stream)
        assert state_file(state_dir, zoom.account.config.account_id, STATE_KEYS[stream]).is_file()
        # stderr is for people: text lines ending with the summary (what lands in the journal).
        last = result.stderr.decode().splitlines()[-1]
        assert "exit code 0" in last and not last.startswith("{")
        assert "metrics" not in result.stderr.decode()  # no warning: the file was written
        metrics = Path(relocate(str(_fb_settings(item).metrics_file), tmp_path))
        assert_metrics_of_a_success(metrics, zoom.account.config.account_id, stream)
    # An hour later the interval inputs run: nothing is sent twice.
    hourly = [i for i in items if not i.oneshot]
    assert sorted(_stream(i) for i in hourly) == [ACTIVITIES, OPERATIONS]
    for item in hourly:
        again = run_input(item, env, tmp_path)
        assert again.returncode == 0 and again.stdout == b""


def test_a_run_that_overlaps_another_of_its_stream_exits_at_once(accounts: dict[str, Zoom], tmp_path: Path) -> None:
    # The oneshot run and the hourly one could overlap (a restart during an hourly run, a second
    # Fluent Bit): the one that finds the stream's lock held prints nothing and exits 0, and the
    # next run delivers everything once.
    zoom = accounts["single"]
    env = {**base_env(tmp_path), **zoom_env(zoom.base_url, zoom.now), **credentials_env(zoom.account)}
    state_dir = tmp_path / "var/lib/fluent-bit/zoom-oplog-shipper"
    state_dir.mkdir(parents=True)
    (item,) = [i for i in fluent_bit_inputs(FLUENT_BIT_YAML) if i.oneshot and _stream(i) == OPERATIONS]
    lock = filelock.FileLock(str(state_file(state_dir, zoom.account.config.account_id, "all").with_suffix(".lock")))
    with lock:
        held = run_input(item, env, tmp_path)
    assert held.returncode == 0 and held.stdout == b"", held.stderr.decode(errors="replace")
    result = run_input(item, env, tmp_path)
    assert result.returncode == 0
    assert_delivered(read_like_fluent_bit(result.stdout, item), zoom.account, OPERATIONS)


@pytest.mark.parametrize("index", [0, 1], ids=["operations", "activities"])
def test_a_failed_run_leaves_nothing_on_stdout_and_its_reason_on_stderr(
    index: int, accounts: dict[str, Zoom], tmp_path: Path
) -> None:
    # The run at start: the one that shows a wrong secret at deploy time.
    (item,) = [
        i for i in fluent_bit_inputs(FLUENT_BIT_YAML) if i.oneshot and _stream(i) == (OPERATIONS, ACTIVITIES)[index]
    ]
    zoom = accounts["single"]
    env = {**base_env(tmp_path), **zoom_env(zoom.base_url, zoom.now), **credentials_env(zoom.account)}
    env["ZOOM_CLIENT_SECRET"] = "not-the-right-secret-value"
    result = run_input(item, env, tmp_path)
    assert result.returncode == 3
    assert result.stdout == b""  # nothing for the parser to choke on
    err = result.stderr.decode()
    assert "exit code 3" in err.splitlines()[-1] and "not-the-right-secret-value" not in err


def test_multi_account_each_input_delivers_its_own_account(accounts: dict[str, Zoom], tmp_path: Path) -> None:
    items = [i for i in fluent_bit_inputs(FLUENT_BIT_MULTI) if i.oneshot]
    names = {i.settings["tag"].rsplit(".", 1)[-1] for i in items}
    assert names == {"acme", "globex"}
    assert len(items) == 2 * len(names)
    for item in items:
        zoom = accounts[item.settings["tag"].rsplit(".", 1)[-1]]
        env = {**base_env(tmp_path), **zoom_env(zoom.base_url, zoom.now)}
        backfill = env.pop("ZOOM_BACKFILL_START")
        for name in names:
            env.update(credentials_env(accounts[name].account, f"ZOOM_{name.upper()}_"))
            env[f"ZOOM_{name.upper()}_BACKFILL_START"] = backfill
        result = run_input(item, env, tmp_path)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert_delivered(read_like_fluent_bit(result.stdout, item), zoom.account, _stream(item))
        assert zoom.account.config.client_secret.encode() not in result.stderr
    for name in names:
        state_dir = tmp_path / "var/lib/fluent-bit/zoom-oplog-shipper" / name
        for key in STATE_KEYS.values():
            assert state_file(state_dir, accounts[name].account.config.account_id, key).is_file()
