"""End to end: run the exact command line of each shipped config against the simulator, read its
stdout the way that agent reads it, and check that every record arrives whole with its event.id,
for both streams (admin operation logs and sign-in/sign-out activity logs) where a config ships both.

The deployment paths in the configs (/var/lib/..., /etc/zoom-oplog-shipper, /var/log/...) are moved
under the test's temporary directory; the console script is the installed one (the venv's bin is
first on PATH, and an absolute ExecStart is mapped to it by name). Nothing else is changed.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from agent_configs import (
    ACTIVITIES,
    CONSOLE_SCRIPT,
    CRON_FILE,
    DATASETS,
    ENV_EXAMPLE,
    K8S_CRONJOB,
    LONG_DETAILS,
    OPERATIONS,
    SPLUNK_INPUTS,
    SPLUNK_PROPS,
    SYSTEMD_SERVICE,
    Account,
    Zoom,
    assert_metrics_of_a_success,
    base_env,
    console_script,
    credentials_env,
    fgets_records,
    ini_value,
    newline_frames,
    read_cron_d,
    read_env_file,
    read_ini,
    read_yaml_all,
    relocate,
    served_accounts,
    splunk_events,
    splunk_time_format,
    to_python_datetime,
    zoom_env,
)

from zoom_oplog_shipper.state import state_file

RUN_TIMEOUT = 120
CRI_LINE_LIMIT = 16384
EVENT_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def zoom() -> Iterator[Zoom]:
    with served_accounts({"single": 7}) as served:
        yield served["single"]


@pytest.fixture(scope="module")
def accounts() -> Iterator[dict[str, Zoom]]:
    """Two accounts, each on its own simulator: the wrong credentials fail against the other."""
    with served_accounts({"acme": 8, "globex": 9}) as served:
        yield served


def agent_env(zoom: Zoom, home: Path, credentials: bool = True) -> dict[str, str]:
    """The environment the agent runs with: the simulator's URLs, and the credentials when asked."""
    env = {**base_env(home), **zoom_env(zoom.base_url, zoom.now)}
    if credentials:
        env.update(credentials_env(zoom.account))
    return env


def run(argv: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run a command as the agent would, failing the test on a non-zero exit with its stderr."""
    result = subprocess.run(argv, env=env, capture_output="stdout" not in kwargs, timeout=RUN_TIMEOUT, **kwargs)
    if result.returncode != 0:
        stderr = (result.stderr or b"").decode(errors="replace")
        pytest.fail(f"{argv} exited {result.returncode}:\n{stderr}")
    return result


def settings_file(zoom: Zoom, root: Path, secret_setting: bool = True) -> Path:
    """The shipped settings example, filled in for the simulator, where the configs expect it.

    The secret goes to /etc/zoom-oplog-shipper/client-secret; the settings name it
    (ZOOM_CLIENT_SECRET_FILE) unless ``secret_setting`` is false (systemd passes it as a credential).
    The state directory the wrappers and units default to is set, moved under ``root``.
    """
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    cfg = zoom.account.config
    for name, value in (("ZOOM_ACCOUNT_ID", cfg.account_id), ("ZOOM_CLIENT_ID", cfg.client_id)):
        text, count = re.subn(rf"^{name}=$", f"{name}={value}", text, flags=re.M)
        assert count == 1, name
    secret = Path(relocate("/etc/zoom-oplog-shipper/client-secret", root))
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(cfg.client_secret + "\n", encoding="utf-8")
    secret.chmod(0o600)
    if secret_setting:
        text, count = re.subn(r"^# (ZOOM_CLIENT_SECRET_FILE=\S+)$", r"\1", text, flags=re.M)
        assert count == 1
    text = relocate(text, root)
    text += relocate("ZOOM_OPLOG_STATE_DIR=/var/lib/zoom-oplog-shipper\n", root)
    text += "".join(f"{k}={v}\n" for k, v in zoom_env(zoom.base_url, zoom.now).items())
    path = Path(relocate("/etc/zoom-oplog-shipper/env", root))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


# ---------------------------------------------------------------------------------------------
# What must arrive.


def record_key(time: str | None, fields: dict[str, Any]) -> tuple[Any, ...]:
    detail = fields.get("operation_detail")
    return (time, fields.get("action"), fields.get("category_type"), fields.get("operator"), (detail or "")[:300])


ACTIVITY_FIELDS = ("email", "type", "ip_address", "client_type", "version")


def assert_delivered(docs: list[dict[str, Any]], account: Account, stream: str = OPERATIONS) -> None:
    """Every simulator record of the stream exactly once, whole, with a unique deterministic-looking
    event.id and the stream's dataset."""
    assert len(docs) == len(account.served(stream))
    ids = [doc["event"]["id"] for doc in docs]
    assert all(EVENT_ID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert {doc["organization"]["id"] for doc in docs} == {account.config.account_id}
    assert {doc["data_stream"]["dataset"] for doc in docs} == {DATASETS[stream]}
    if stream == ACTIVITIES:
        want = Counter(
            (r["time"].replace("Z", ".000Z"), *(r.get(f) for f in ACTIVITY_FIELDS)) for r in account.activities
        )
        have = Counter((d["@timestamp"], *(d["zoom"]["activity"].get(f) for f in ACTIVITY_FIELDS)) for d in docs)
        assert have == want
        return
    expected = Counter(record_key(r["time"].replace("Z", ".000Z"), r) for r in account.records)
    got = Counter(record_key(doc["@timestamp"], doc["zoom"]["operation"]) for doc in docs)
    assert got == expected
    originals = {r["operation_detail"] for r in account.records}
    long_ones = {o for o in originals if len(o) >= min(size for _, size, _ in LONG_DETAILS)}
    for doc in docs:
        detail = doc["zoom"]["operation"]["operation_detail"]
        if "truncated" in doc.get("tags", []):
            # Only the records made long, and only their free text, cut to fit the line limit.
            assert detail.endswith("…")
            (original,) = [o for o in long_ones if o.startswith(detail[:-1])]
            assert doc["message"].endswith("…") and original.startswith(doc["message"][:-1])
        else:
            assert detail in originals
            assert doc["message"] == detail
    assert any("truncated" in doc.get("tags", []) for doc in docs)


#: The state partition of each stream (the operations one keeps its category's name).
STATE_KEYS = {OPERATIONS: "all", ACTIVITIES: ACTIVITIES}


def assert_state_in(state_dir: Path, account: Account, stream: str = OPERATIONS) -> None:
    """The run kept its progress in the directory the config names (moved under the test's root)."""
    path = state_file(state_dir, account.config.account_id, STATE_KEYS[stream])
    assert path.is_file(), sorted(state_dir.parent.rglob("*"))


# ---------------------------------------------------------------------------------------------
# Vector and Fluent Bit: tests/test_configs_vector.py and tests/test_configs_fluent_bit.py.


# ---------------------------------------------------------------------------------------------
# Splunk scripted input.


SPLUNK_STANZAS = list(read_ini(SPLUNK_INPUTS))


@pytest.mark.parametrize("stanza_name", SPLUNK_STANZAS)
def test_splunk_scripted_input(stanza_name: str, zoom: Zoom, tmp_path: Path) -> None:
    # The stanza's name is the script and its arguments (the stream), as Splunk runs them.
    script, *arguments = stanza_name.removeprefix("script://./").split()
    stream = arguments[0] if arguments else OPERATIONS
    env_file = settings_file(zoom, tmp_path)
    # Splunk's own environment: its library path and Python, which the wrapper must drop
    # (a Python started with this PYTHONHOME cannot even import its encodings).
    env = {
        **base_env(tmp_path),
        "SPLUNK_HOME": str(tmp_path / "splunk"),
        "LD_LIBRARY_PATH": str(tmp_path / "splunk/lib"),
        "PYTHONHOME": str(tmp_path / "splunk"),
        "PYTHONPATH": str(tmp_path / "splunk/lib/python3/site-packages"),
        "ZOOM_OPLOG_ENV_FILE": str(env_file),
    }
    result = run([str(SPLUNK_INPUTS.parent / script), *arguments, "-index", "zoom"], env)
    props = read_ini(SPLUNK_PROPS)[ini_value(read_ini(SPLUNK_INPUTS)[stanza_name], "sourcetype")]
    truncate = int(ini_value(props, "TRUNCATE"))
    prefix = re.compile(ini_value(props, "TIME_PREFIX").encode())
    python_format = splunk_time_format(ini_value(props, "TIME_FORMAT"))
    docs = []
    for event in splunk_events(result.stdout, truncate):
        doc = json.loads(event)
        match = prefix.search(event)
        assert match
        when = to_python_datetime(event[match.end() :].split(b'"')[0].decode(), python_format)
        assert when == datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))
        docs.append(doc)
    assert_delivered(docs, zoom.account, stream)
    assert_state_in(tmp_path / "var/lib/zoom-oplog-shipper", zoom.account, stream)


# ---------------------------------------------------------------------------------------------
# systemd and cron: events to a file.


def read_file_lines(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


@pytest.mark.parametrize("unit", [SYSTEMD_SERVICE, SYSTEMD_SERVICE.with_name("zoom-oplog-shipper-activities.service")])
def test_systemd_service(unit: Path, zoom: Zoom, tmp_path: Path) -> None:
    service = read_ini(unit)["Service"]
    argv = [relocate(word, tmp_path) for word in ini_value(service, "ExecStart").split()]
    stream = argv[argv.index("--stream") + 1]
    assert Path(argv[0]).name == CONSOLE_SCRIPT
    argv[0] = str(console_script())
    # systemd's own clean environment, Environment= lines (%S is /var/lib), then EnvironmentFile=,
    # whose values win.
    # LoadCredential=: systemd copies the secret file into the credentials directory (%d).
    credentials = tmp_path / "run/credentials" / unit.name
    credentials.mkdir(parents=True)
    env = base_env(tmp_path)
    for key, value in service:
        if key == "Environment":
            name, _, val = value.partition("=")
            env[name] = relocate(val.replace("%S", "/var/lib").replace("%d", str(credentials)), tmp_path)
    env_file = Path(relocate(ini_value(service, "EnvironmentFile"), tmp_path))
    assert env_file == settings_file(zoom, tmp_path, secret_setting=False)
    name, _, source = ini_value(service, "LoadCredential").partition(":")
    (credentials / name).write_bytes(Path(relocate(source, tmp_path)).read_bytes())
    (credentials / name).chmod(0o400)
    env.update(read_env_file(env_file))
    output = Path(relocate(ini_value(service, "StandardOutput").removeprefix("append:"), tmp_path))
    output.parent.mkdir(parents=True)
    metrics = Path(argv[argv.index("--metrics-file") + 1])
    metrics.parent.mkdir(parents=True)  # the tmpfiles snippet's directory
    for _ in range(2):
        with output.open("ab") as out:
            result = run(argv, env, stdout=out, stderr=subprocess.PIPE)
        assert b"complete" in result.stderr  # the journal gets the summary
        assert b"metrics" not in result.stderr  # no warning: the file was written
    assert_delivered(read_file_lines(output), zoom.account, stream)
    assert_state_in(tmp_path / "var/lib/zoom-oplog-shipper", zoom.account, stream)
    assert_metrics_of_a_success(metrics, zoom.account.config.account_id, stream)


@pytest.mark.parametrize("stream", [OPERATIONS, ACTIVITIES])
def test_cron_line(stream: str, zoom: Zoom, tmp_path: Path) -> None:
    variables, jobs = read_cron_d(CRON_FILE)
    (job,) = [j for j in jobs if f" run --stream {stream} " in j.command]
    settings_file(zoom, tmp_path)
    logs = Path(relocate("/var/log/zoom-oplog-shipper", tmp_path))
    logs.mkdir(parents=True)
    (metrics,) = [Path(relocate(p, tmp_path)) for p in re.findall(r"--metrics-file (/\S+)", job.command)]
    metrics.parent.mkdir(parents=True)
    # cron's environment: the file's variables, HOME of the user; the venv's bin stands in for
    # /usr/local/bin.
    env = {
        **{k: relocate(v, tmp_path) for k, v in variables.items()},
        "HOME": str(tmp_path),
        "PATH": f"{console_script().parent}:{variables['PATH']}",
    }
    for _ in range(2):
        result = run([variables["SHELL"], "-c", relocate(job.command, tmp_path)], env)
        assert result.stdout == b"" and result.stderr == b""
    out, err = re.findall(r"2?>>(/\S+)", job.command)
    assert_delivered(read_file_lines(Path(relocate(out, tmp_path))), zoom.account, stream)
    assert b"complete" in Path(relocate(err, tmp_path)).read_bytes()
    assert b"metrics" not in Path(relocate(err, tmp_path)).read_bytes()
    assert_metrics_of_a_success(metrics, zoom.account.config.account_id, stream)


# ---------------------------------------------------------------------------------------------
# Kubernetes: stdout to the container log.


@pytest.mark.parametrize("stream", [OPERATIONS, ACTIVITIES])
def test_kubernetes_cronjob_container(stream: str, zoom: Zoom, tmp_path: Path) -> None:
    crons = [d for d in read_yaml_all(K8S_CRONJOB) if d["kind"] == "CronJob"]
    containers = [c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0] for c in crons]
    # The first account's CronJob of this stream.
    cron, container = next(
        (c, k) for c, k in zip(crons, containers, strict=True) if ("--stream" in k["command"]) is (stream == ACTIVITIES)
    )
    secret = {
        "account-id": zoom.account.config.account_id,
        "client-id": zoom.account.config.client_id,
        "client-secret": zoom.account.config.client_secret,
    }
    env = agent_env(zoom, tmp_path, credentials=False)
    for item in container["env"]:
        if item["name"] == "ZOOM_BACKFILL_START" and not item.get("value"):
            continue  # the user fills in a date (agent_env has one)
        if "value" in item:
            env[item["name"]] = relocate(str(item["value"]), tmp_path)
        else:
            env[item["name"]] = secret[item["valueFrom"]["secretKeyRef"]["key"]]
    # The Secret's volume: each item as a file under the mount.
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    for mount in container["volumeMounts"]:
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        for item in volume.get("secret", {}).get("items", []):
            path = Path(relocate(mount["mountPath"], tmp_path)) / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secret[item["key"]], encoding="utf-8")
            path.chmod(0o400)
    mount = Path(relocate(container["volumeMounts"][0]["mountPath"], tmp_path))
    mount.mkdir(parents=True)
    command = [relocate(word, tmp_path) for word in container["command"]]
    result = run(command, env)
    lines = result.stdout.splitlines()
    # The container runtime would split anything longer into partial lines.
    assert max(len(line) for line in lines) < CRI_LINE_LIMIT
    assert_delivered([json.loads(line) for line in lines], zoom.account, stream)
    # stderr shares the container log: JSON lines the cluster's agent can tell apart.
    for line in result.stderr.splitlines():
        assert "log" in json.loads(line) and json.loads(line)["log"]["level"] != "warning"
    assert_state_in(mount, zoom.account, stream)
    # The metrics file sits on the claim, beside the state.
    (metrics,) = [Path(command[i + 1]) for i, word in enumerate(command) if word == "--metrics-file"]
    assert metrics.parent == mount
    assert_metrics_of_a_success(metrics, zoom.account.config.account_id, stream)


# ---------------------------------------------------------------------------------------------
# The defaults the configs override would lose events (so the readers above can fail).


@pytest.fixture(scope="module")
def program_stdout(zoom: Zoom, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    home = tmp_path_factory.mktemp("defaults")
    env = {**agent_env(zoom, home), "ZOOM_OPLOG_STATE_DIR": str(home / "state")}
    return run([CONSOLE_SCRIPT, "run"], env).stdout


READERS: dict[str, Callable[[bytes], int]] = {
    # Fluent Bit's default buf_size 4096: pieces of long lines fail the json parser.
    "fluent-bit buf_size 4096": lambda out: sum(_decodes(c) for c in fgets_records(out, 4096)),
    # Splunk's default TRUNCATE 10000: long events are cut into invalid JSON.
    "splunk TRUNCATE 10000": lambda out: sum(_decodes(e) for e in splunk_events(out, 10_000)),
    # A Vector max_length below the program's limit: long lines are discarded.
    "vector max_length 8192": lambda out: len(newline_frames(out, 8192)[0]),
}


def _decodes(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


@pytest.mark.parametrize("reader", READERS, ids=str)
def test_agent_defaults_would_lose_long_events(reader: str, program_stdout: bytes, zoom: Zoom) -> None:
    assert len(program_stdout.splitlines()) == len(zoom.account.records)
    assert READERS[reader](program_stdout) < len(zoom.account.records)
