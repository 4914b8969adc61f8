"""Every documented failure speaks in one line per record: JSON when asked, never a traceback or a class name."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SECRET, FakeClock, FakeZoom, simulator_env

from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.state import state_file

#: A traceback, or an exception's class name (ours or Python's), in a message.
LEAK = re.compile(r"Traceback|File \"|\b[A-Z][A-Za-z]*(Error|Exception|Interrupt|Exit)\b|\bsqlite3\.")
#: A log line, or a line of `check`'s report (its text form).
TEXT_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z zoom-oplog-shipper (DEBUG|INFO|WARNING|ERROR): "
    r"|\[( ok |FAIL|WARN|info)\] )\S"
)


def assert_clean(err: str, fmt: str) -> list[dict[str, Any]]:
    """Every stderr line is one record in ``fmt``, without a traceback, class name or secret."""
    lines = err.splitlines()
    assert lines, "a failure must say something"
    docs = []
    for line in lines:
        assert not LEAK.search(line), line
        assert SECRET not in line
        if fmt == "json":
            doc = orjson.loads(line)
            assert {"@timestamp", "log", "message", "process"} <= set(doc), line
            docs.append(doc)
        else:
            assert TEXT_LINE.match(line), line
    return docs


Prepare = Callable[[FakeZoom, dict[str, str], Path], None]


def _set(**values: str) -> Prepare:
    def prepare(zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> None:
        env.update({k: v.replace("{tmp}", str(tmp_path)) for k, v in values.items()})

    return prepare


def _zoom_fails(status: int, body: Any, times: int = 1) -> Prepare:
    def prepare(zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> None:
        zoom.fail(status, body, times=times)

    return prepare


def _store_bytes(data: bytes) -> Prepare:
    def prepare(zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> None:
        path = state_file(tmp_path / "state", "acct-1", "all")
        path.parent.mkdir(parents=True)
        path.write_bytes(data)

    return prepare


def _state_dir_is_a_file(zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory")


def _nothing(zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> None:
    pass


DAILY = {"code": 429, "message": "You have reached the maximum daily rate limit for this API."}
#: (name, argv, prepare, documented exit codes): every bad input the README and --help document.
BAD_INPUTS: list[tuple[str, list[str], Prepare, set[int]]] = [
    ("unknown option", ["run", "--bogus"], _nothing, {2}),
    ("unknown command", ["rn"], _nothing, {2}),
    ("option without value", ["run", "--lookback"], _nothing, {2}),
    ("bad category", ["run", "--category-type", "nope"], _nothing, {2}),
    ("bad duration", ["run", "--lookback", "soon"], _nothing, {2}),
    ("backfill in the future", ["run", "--backfill-start", "2099-01-01"], _nothing, {2}),
    ("bad max-records", ["run", "--max-records", "-3"], _nothing, {2}),
    ("tiny max-line-bytes", ["run", "--max-line-bytes", "10"], _nothing, {2}),
    ("secret as a flag", ["run", "--client-secret", SECRET], _nothing, {2}),
    ("missing account", ["run"], _set(ZOOM_ACCOUNT_ID=""), {2}),
    ("missing secret file", ["run"], _set(ZOOM_CLIENT_SECRET="", ZOOM_CLIENT_SECRET_FILE="{tmp}/nope"), {2}),
    ("both secrets", ["run"], _set(ZOOM_CLIENT_SECRET_FILE="{tmp}/nope"), {2}),
    ("bad config file", ["run", "--config", "{tmp}/missing.toml"], _nothing, {2}),
    ("state dir is a file", ["run"], _state_dir_is_a_file, {2, 5}),
    ("wrong secret", ["run"], _set(ZOOM_CLIENT_SECRET="wrong"), {3}),
    ("wrong account", ["run"], _set(ZOOM_ACCOUNT_ID="other"), {3}),
    ("no permission", ["run"], _zoom_fails(400, {"code": 200, "message": "No permission."}), {3}),
    ("daily limit", ["run"], _zoom_fails(429, DAILY), {4}),
    ("server errors", ["run"], _zoom_fails(503, None, times=6), {1}),
    ("html answers", ["run"], _zoom_fails(200, b"<html>maintenance</html>", times=6), {1}),
    ("unreachable API", ["run"], _set(ZOOM_API_URL="http://127.0.0.1:9/v2"), {1, 2}),
    ("unreachable token URL", ["run"], _set(ZOOM_OAUTH_URL="http://127.0.0.1:9/oauth/token"), {1, 2, 3}),
    ("API URL without /v2", ["run"], _set(ZOOM_API_URL="{zoom}/api"), {1, 2}),
    ("corrupt store", ["run"], _store_bytes(b"garbage" * 1000), {5}),
    ("empty store", ["run"], _store_bytes(b""), {0, 5}),
    ("state show of a corrupt store", ["state", "show"], _store_bytes(b"garbage" * 1000), {5}),
    ("state reset without --yes", ["state", "reset"], _nothing, {2}),
    ("check with a wrong secret", ["check"], _set(ZOOM_CLIENT_SECRET="wrong"), {3}),
]


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(("name", "argv", "prepare", "codes"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gives_clean_lines_and_a_documented_code(
    env: dict[str, str],
    zoom: FakeZoom,
    tmp_path: Path,
    fmt: str,
    name: str,
    argv: list[str],
    prepare: Prepare,
    codes: set[int],
) -> None:
    prepare(zoom, env, tmp_path)
    env = {k: v.replace("{zoom}", zoom.base) for k, v in env.items()}
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out, err = io.BytesIO(), io.StringIO()
    code = main(argv, env={**env, "ZOOM_OPLOG_LOG_FORMAT": fmt}, stdout=out, stderr=err, clock=FakeClock())
    assert code in codes, err.getvalue()
    assert out.getvalue() == b""
    docs = assert_clean(err.getvalue(), fmt)
    if fmt == "json" and argv[0] == "run":
        assert docs[-1]["log"]["logger"] == "zoom_oplog_shipper.summary" and docs[-1]["exit_code"] == code


def test_an_unexpected_failure_is_one_line_and_exit_1(
    env: dict[str, str], zoom: FakeZoom, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoom_oplog_shipper import sync

    def broken(self: Any, t0: datetime) -> None:
        raise KeyError("zoom.operation")

    monkeypatch.setattr(sync.SyncEngine, "_run", broken)
    err = io.StringIO()
    argv = ["run", "--log-format", "json", "--log-level", "debug"]
    code = main(argv, env=env, stdout=io.BytesIO(), stderr=err, clock=FakeClock())
    docs = assert_clean(err.getvalue(), "json")
    errors = [d for d in docs if d["log"]["level"] == "error" and d["log"]["logger"] == "zoom_oplog_shipper"]
    assert code == 1 and len(errors) == 1
    assert errors[0]["message"].startswith("unexpected failure: 'zoom.operation'; committed progress is kept")
    where = [d["message"] for d in docs if d["message"].startswith("where it happened")]
    assert len(where) == 1 and "test_failures_json.py" in where[0] and "broken" in where[0]
    assert docs[-1]["outcome"] == "failed" and docs[-1]["exit_code"] == 1


def test_python_warnings_and_library_logs_come_out_as_json(
    env: dict[str, str], zoom: FakeZoom, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging
    import warnings

    from zoom_oplog_shipper import sync

    real = sync.SyncEngine._run

    def noisy(self: Any, t0: datetime) -> None:
        warnings.warn("a deprecated thing\nspanning two lines", DeprecationWarning, stacklevel=1)
        logging.getLogger("urllib3.connectionpool").warning("Retrying after connection broken")
        logging.getLogger("some.library").error("a library complains")
        real(self, t0)

    monkeypatch.setattr(sync.SyncEngine, "_run", noisy)
    err = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        code = main(["run", "--log-format", "json"], env=env, stdout=io.BytesIO(), stderr=err, clock=FakeClock())
    docs = assert_clean(err.getvalue(), "json")
    by_logger = {d["log"]["logger"]: d for d in docs}
    assert code == 0
    assert "a deprecated thing spanning two lines" in by_logger["py.warnings"]["message"]
    assert by_logger["urllib3.connectionpool"]["log"]["level"] == "warning"
    assert by_logger["some.library"]["message"] == "a library complains"


# -- real processes: exit codes 1-5 and signals against the simulator ------------------------------


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    from zoom_oplog_shipper.simulator import Simulator, SimulatorConfig, serve_in_thread

    simulator = Simulator(SimulatorConfig(seed=3, days=20, records_per_day=300))
    server = serve_in_thread(simulator)
    env = {
        **os.environ,
        **simulator_env(simulator, server.base_url, tmp_path),
        "ZOOM_OPLOG_LOG_FORMAT": "json",
        "ZOOM_BACKFILL_START": (datetime.now(UTC) - timedelta(days=15)).isoformat(),
    }
    yield simulator, env
    server.shutdown()


def shipper(*args: str) -> list[str]:
    return [sys.executable, "-m", "zoom_oplog_shipper", *args]


def _failing(sim: Any, env: dict[str, str], tmp_path: Path, code: int) -> list[str]:
    """Set up the failure for ``code``; returns the arguments of the run."""
    if code == 1:
        sim.set_faults("logs:1-1000=503", relative=True)
        return ["run", "--max-runtime", "3s"]
    if code == 2:
        return ["run", "--lookback", "soon"]
    if code == 3:
        env["ZOOM_CLIENT_SECRET"] = "wrong"
        return ["run"]
    if code == 4:
        sim.set_faults("logs:1=daily", relative=True)
        return ["run"]
    path = state_file(tmp_path / "state", "demo-account", "all")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage" * 1000)
    return ["run"]


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5])
def test_each_failing_process_writes_only_json_and_ends_with_the_summary(
    sim: tuple[Any, dict[str, str]], tmp_path: Path, code: int
) -> None:
    simulator, env = sim
    args = _failing(simulator, env, tmp_path, code)
    proc = subprocess.run(shipper(*args), env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    docs = assert_clean(proc.stderr, "json")
    assert docs[-1]["log"]["logger"] == "zoom_oplog_shipper.summary" and docs[-1]["exit_code"] == code
    assert proc.stdout == ""


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], bytes]:
    proc = subprocess.Popen(shipper("run"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    return proc, proc.stdout.readline()  # the first page is out


def _finish(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """The rest of stdout, then stderr (read through the same buffered files as the first line)."""
    assert proc.stdout is not None and proc.stderr is not None
    rest, err = proc.stdout.read(), proc.stderr.read()
    proc.wait(timeout=60)
    return rest, err


def test_sigterm_in_json_stops_cleanly(sim: tuple[Any, dict[str, str]]) -> None:
    simulator, env = sim
    simulator.set_faults(slow_rate=1.0, slow_seconds=0.3)
    proc, first = _start(env)
    proc.send_signal(signal.SIGTERM)
    rest, err = _finish(proc)
    assert proc.returncode == 0
    docs = assert_clean(err.decode(), "json")
    assert any(d["message"].startswith("received SIGTERM") for d in docs)
    assert docs[-1]["outcome"] == "stopped by signal" and docs[-1]["exit_code"] == 0
    assert docs[-1]["emitted"] == len((first + rest).splitlines())


def test_a_second_ctrl_c_exits_130_quietly_losing_nothing(sim: tuple[Any, dict[str, str]], tmp_path: Path) -> None:
    simulator, env = sim
    simulator.set_faults(slow_rate=1.0, slow_seconds=1.0)
    proc, first = _start(env)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)  # a real process: let it take the first one
    proc.send_signal(signal.SIGINT)
    rest, err = _finish(proc)
    assert proc.returncode == 130, err
    docs = assert_clean(err.decode(), "json")
    assert any("press Ctrl-C again to stop at once" in d["message"] for d in docs)
    assert docs[-1]["outcome"] == "interrupted" and docs[-1]["exit_code"] == 130
    # the next run sends the rest: every record at least once, repeats only from the page in flight
    simulator.set_faults(slow_rate=0.0)
    again = subprocess.run(shipper("run"), env=env, capture_output=True, timeout=120)
    reference = subprocess.run(
        shipper("run"), env={**env, "ZOOM_OPLOG_STATE_DIR": str(tmp_path / "fresh")}, capture_output=True, timeout=120
    )
    assert again.returncode == reference.returncode == 0, again.stderr
    ids = Counter(orjson.loads(line)["event"]["id"] for line in (first + rest + again.stdout).splitlines())
    expected = {orjson.loads(line)["event"]["id"] for line in reference.stdout.splitlines()}
    assert set(ids) == expected and sum(n - 1 for n in ids.values()) <= 300


def test_demo_into_head_ends_quietly_with_exit_0() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_", "XDG_"))}
    proc = subprocess.Popen(shipper("demo", "--days", "10"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    lines = [proc.stdout.readline() for _ in range(3)]  # like `| head -n 3`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode == 0, err
    assert all(orjson.loads(line)["event"]["id"] for line in lines)
    assert_clean(err, "text")
    assert " ERROR: " not in err and " WARNING: " not in err and "stdout" not in err


# -- a user's mistake is a documented exit code and one line naming the fix (issue 15, part 4) ----------

MISTAKES = [
    ("stdout closed", "run >&-", 1, "stdout is closed (started with `>&-`?)"),
    ("stdout full", "run > /dev/full", 1, "cannot write the events to stdout (No space left on device)"),
    ("demo days", "demo --days -1", 2, "argument --days: '-1' must be a whole number from 1 to 180"),
    ("simulate port", "simulate --port 99999", 2, "argument --port: '99999' must be a port; use 0-65535"),
    ("simulate limit", "simulate --qps-limit 0", 2, "argument --qps-limit: '0' must be a whole number from 1"),
]


@pytest.mark.parametrize(("name", "command", "code", "needle"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_users_mistake_is_a_documented_code_and_one_line(
    sim: tuple[Any, dict[str, str]], name: str, command: str, code: int, needle: str
) -> None:
    _, env = sim
    shell = f"{' '.join(shipper())} {command}"
    proc = subprocess.run(["bash", "-c", shell], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    docs = assert_clean(proc.stderr, "json")
    errors = [d for d in docs if d["log"]["level"] == "error" and d["log"]["logger"] == "zoom_oplog_shipper"]
    assert len(errors) == 1 and errors[0]["message"].startswith(needle), proc.stderr
    assert "unexpected" not in proc.stderr and "state" not in errors[0]["message"]
    if command.startswith("run"):  # the run still ends with its summary, naming stdout
        assert docs[-1]["log"]["logger"] == "zoom_oplog_shipper.summary" and docs[-1]["exit_code"] == code
        assert docs[-1]["outcome"] == "stdout not writable"
