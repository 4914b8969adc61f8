"""History reaches the SIEM through the agent (issue 10, section 1): the documented path, followed as
far as it goes without a real agent.

Install where the agent finds it, put ZOOM_BACKFILL_START in the agent's settings, run `check` as
the agent with the agent's state directory, then let the agent run: each run is bounded, and the
runs together deliver the whole history exactly once into what the agent collects. The agent here
is each of the shipped cron lines, one per stream (their settings file is the one systemd and Splunk
read too), so the events file each appends to is what a SIEM's reader sees.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from agent_configs import (
    ACTIVITIES,
    CONSOLE_SCRIPT,
    CRON_FILE,
    DATASETS,
    ENV_EXAMPLE,
    OPERATIONS,
    Account,
    console_script,
    make_account,
    read_cron_d,
    relocate,
    start_simulator,
)

RUN_TIMEOUT = 120
#: Small enough that the history needs several runs.
MAX_RECORDS = 40
PAGE_SIZE = 30


@pytest.fixture
def zoom() -> Any:
    now = datetime.now(UTC)
    made = make_account("backfill", 11, now)
    # Small pages (Zoom may return fewer records than asked), so that --max-records bounds runs.
    account = Account(
        replace(made.config, max_page_size=PAGE_SIZE, page_size_over_max="clamp"), made.records, made.activities
    )
    server = start_simulator(account)
    try:
        yield account, server.base_url, now
    finally:
        server.shutdown()


def write_settings(root: Path, account: Account, base_url: str, now: datetime, secret: str) -> Path:
    """The shipped env example filled in as the docs say: ids, secret file, backfill start."""
    secret_file = Path(relocate("/etc/zoom-oplog-shipper/client-secret", root))
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    secret_file.write_text(secret + "\n", encoding="utf-8")
    secret_file.chmod(0o600)
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    values = {
        "ZOOM_ACCOUNT_ID": account.config.account_id,
        "ZOOM_CLIENT_ID": account.config.client_id,
        "ZOOM_BACKFILL_START": (now - timedelta(days=5)).strftime("%Y-%m-%d"),
    }
    for name, value in values.items():
        text, count = re.subn(rf"^{name}=$", f"{name}={value}", text, flags=re.M)
        assert count == 1, f"the env example has no empty {name}= line"
    text, count = re.subn(r"^# (ZOOM_CLIENT_SECRET_FILE=)\S+$", rf"\g<1>{secret_file}", text, flags=re.M)
    assert count == 1
    # The simulator, and the bound that makes the backfill take several runs.
    text += f"ZOOM_API_URL={base_url}/v2\nZOOM_OAUTH_URL={base_url}/oauth/token\nZOOM_OPLOG_MAX_RPS=0\n"
    text += f"ZOOM_OPLOG_MAX_RECORDS={MAX_RECORDS}\n"
    path = Path(relocate("/etc/zoom-oplog-shipper/env", root))
    path.write_text(text, encoding="utf-8")
    path.chmod(0o640)
    return path


def agent_shell(root: Path, command: str) -> subprocess.CompletedProcess[bytes]:
    """A command as cron runs it: the cron file's variables, /bin/sh, the program on PATH."""
    variables, _ = read_cron_d(CRON_FILE)
    env = {
        **{k: relocate(v, root) for k, v in variables.items()},
        "HOME": str(root),
        "PATH": f"{console_script().parent}:{variables['PATH']}",
    }
    return subprocess.run([variables["SHELL"], "-c", command], env=env, capture_output=True, timeout=RUN_TIMEOUT)


def cron_command(stream: str) -> str:
    """The shipped cron line of a stream."""
    (job,) = [j for j in read_cron_d(CRON_FILE)[1] if f" run --stream {stream} " in j.command]
    return job.command


def check_command(root: Path, stream: str) -> str:
    """`check` with exactly the agent's settings: the cron line up to its exec, then check."""
    prefix = relocate(cron_command(stream), root).split(f"exec {CONSOLE_SCRIPT} run")[0]
    return f"{prefix}{CONSOLE_SCRIPT} check --stream {stream}"


def record_keys(stream: str, records: list[dict[str, Any]], docs: list[dict[str, Any]]) -> tuple[Counter[Any], ...]:
    """What identifies each record, from Zoom's side and from the delivered events."""
    if stream == ACTIVITIES:
        fields = ("email", "type", "ip_address", "client_type", "version")
        return (
            Counter((r["time"].replace("Z", ".000Z"), *(r.get(f) for f in fields)) for r in records),
            Counter((d["@timestamp"], *(d["zoom"]["activity"].get(f) for f in fields)) for d in docs),
        )
    return (
        Counter((r["time"].replace("Z", ".000Z"), r["action"], r["operator"]) for r in records),
        Counter((d["@timestamp"], d["zoom"]["operation"]["action"], d["zoom"]["operation"]["operator"]) for d in docs),
    )


def delivered(events_file: Path) -> list[dict[str, Any]]:
    data = events_file.read_bytes() if events_file.exists() else b""
    assert not data or data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


@pytest.mark.parametrize("stream", [OPERATIONS, ACTIVITIES])
def test_history_reaches_the_agent_exactly_once_in_bounded_runs(stream: str, zoom: Any, tmp_path: Path) -> None:
    account, base_url, now = zoom
    records = account.served(stream)
    command = relocate(cron_command(stream), tmp_path)
    events_file, log_file = (Path(p) for p in re.findall(r"2?>>(/\S+)", command))
    events_file.parent.mkdir(parents=True)

    # A wrong secret first: the agent's first run fails and delivers nothing; that must not pin
    # the backfill start (the history must still come once the secret is fixed).
    write_settings(tmp_path, account, base_url, now, secret="wrong-secret")
    failed = agent_shell(tmp_path, command)
    assert failed.returncode == 3
    assert delivered(events_file) == []

    write_settings(tmp_path, account, base_url, now, secret=account.config.client_secret)
    checked = agent_shell(tmp_path, check_command(tmp_path, stream))
    assert checked.returncode == 0, checked.stderr.decode()
    assert checked.stdout == b""

    counts = []
    for _ in range(40):
        before = len(delivered(events_file))
        result = agent_shell(tmp_path, command)
        assert result.returncode == 0, log_file.read_text(encoding="utf-8")[-2000:]
        counts.append(len(delivered(events_file)) - before)
        if counts[-1] == 0:
            break
    docs = delivered(events_file)

    # Several bounded runs, each stopping after the page that reached the limit.
    assert len([c for c in counts if c]) >= 3, counts
    assert max(counts) < MAX_RECORDS + PAGE_SIZE
    # The whole history, each record once.
    assert len(docs) == len(records)
    ids = [doc["event"]["id"] for doc in docs]
    assert len(set(ids)) == len(ids)
    expected, got = record_keys(stream, records, docs)
    assert got == expected
    assert {d["data_stream"]["dataset"] for d in docs} == {DATASETS[stream]}
    oldest = min(r["time"] for r in records)
    assert min(d["@timestamp"] for d in docs).startswith(oldest[:19])
    # The agent's state directory holds the progress.
    state_dir = Path(relocate("/var/lib/zoom-oplog-shipper", tmp_path))
    assert any(state_dir.iterdir())
