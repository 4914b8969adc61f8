"""The summary that ends every run, the summary kept in the store, progress lines and --max-records."""

from __future__ import annotations

import io
import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import FakeClock, FakeZoom, record, simulator_env

from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.state import RunLock, state_file

SUMMARY_KEYS = {
    "outcome": str,
    "exit_code": int,
    "emitted": int,
    "pages": int,
    "requests": int,
    "retries": int,
    "duration_s": float,
    "account": str,
    "stream": str,
    "category": str,
}


def run(argv: list[str], env: dict[str, str], clock: Clock | None = None) -> tuple[int, bytes, list[str]]:
    out, err = io.BytesIO(), io.StringIO()
    code = main(argv, env=env, stdout=out, stderr=err, clock=clock or FakeClock())
    return code, out.getvalue(), err.getvalue().splitlines()


def _daily_limit(zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> None:
    zoom.fail(429, {"code": 429, "message": "You have reached the maximum daily rate limit for this API."})


def _server_errors(zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> None:
    zoom.fail(503, None, times=6)


def _bad_secret(zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> None:
    env["ZOOM_CLIENT_SECRET"] = "wrong"


def _no_account(zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> None:
    env["ZOOM_ACCOUNT_ID"] = ""


def _corrupt_store(zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> None:
    path = state_file(tmp_path / "state", "acct-1", "all")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage" * 1000)


def _records(zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> None:
    zoom.records = [record("2026-11-26T10:00:00Z", f"r{i}") for i in range(3)]


SCENARIOS: list[tuple[str, Callable[[FakeZoom, dict[str, str], Path], None], list[str], int, str]] = [
    ("success", _records, ["--backfill-start", "2026-11-25"], 0, "complete"),
    ("server errors", _server_errors, [], 1, "failed"),
    ("usage error", _records, ["--bogus"], 2, "configuration error"),
    ("missing setting", _no_account, [], 2, "configuration error"),
    ("wrong secret", _bad_secret, [], 3, "authentication or permission error"),
    ("daily limit", _daily_limit, [], 4, "daily request limit reached"),
    ("corrupt store", _corrupt_store, [], 5, "state store unusable"),
]


@pytest.mark.parametrize(("name", "prepare", "argv", "code", "outcome"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_the_last_json_line_is_the_summary_for_every_exit_code(
    env: dict[str, str],
    zoom: FakeZoom,
    tmp_path: Path,
    name: str,
    prepare: Callable[[FakeZoom, dict[str, str], Path], None],
    argv: list[str],
    code: int,
    outcome: str,
) -> None:
    prepare(zoom, env, tmp_path)
    got, _, lines = run(["run", "--log-format", "json", *argv], env)
    assert got == code, lines
    docs = [orjson.loads(line) for line in lines]
    last = docs[-1]
    assert last["log"]["logger"] == "zoom_oplog_shipper.summary"
    assert [d for d in docs if d["log"]["logger"] == "zoom_oplog_shipper.summary"] == [last]
    for key, kind in SUMMARY_KEYS.items():
        assert isinstance(last[key], kind), key
    assert last["exit_code"] == code and last["outcome"] == outcome
    assert last["message"].startswith(outcome)
    assert last["log"]["level"] == ("info" if code == 0 else "warning" if code == 4 else "error")
    assert last["stream"] == "operations" and last["category"] == "all"
    assert last["account"] == ("" if name == "missing setting" else "acct-1")
    if code == 0:
        assert last["emitted"] == 3 and last["pages"] >= 1 and last["requests"] >= 1
        assert last["watermark"] == "2026-11-26T12:00:00.000Z" and last["lag_s"] == 0.0
    if code in (2, 5):  # nothing ran: zeros, and no watermark
        assert (last["emitted"], last["requests"], last["watermark"], last["lag_s"]) == (0, 0, None, None)
    if code == 1:
        assert last["retries"] >= 5


def test_text_summary_is_one_line_starting_with_the_outcome(env: dict[str, str], zoom: FakeZoom) -> None:
    zoom.records = [record("2026-11-26T10:00:00Z")]
    clock = FakeClock()
    code, _, lines = run(["run", "--backfill-start", "2026-11-25"], env, clock)
    assert code == 0
    assert "INFO: complete: 1 records emitted" in lines[-1] and "exit code 0" in lines[-1]
    clock.advance(7200)
    zoom.fail(429, {"code": 429, "message": "You have reached the maximum daily rate limit for this API."})
    code, _, lines = run(["run", "--log-level", "error"], env, clock)
    # the summary ends the run even when info lines are turned off; the watermark is two hours old
    assert code == 4 and len(lines) == 2 and "daily request limit" in lines[0]
    assert "WARNING: daily request limit reached: 0 records emitted" in lines[1] and "lag 7200s" in lines[1]


def test_a_held_lock_still_ends_with_a_summary(env: dict[str, str], tmp_path: Path) -> None:
    path = state_file(tmp_path / "state", "acct-1", "all")
    path.parent.mkdir(parents=True)
    lock = RunLock(path)
    assert lock.acquire()
    try:
        code, _, lines = run(["run", "--log-format", "json"], env)
    finally:
        lock.release()
    last = orjson.loads(lines[-1])
    assert code == 0 and last["exit_code"] == 0 and last["outcome"] == "skipped"


def _stored(tmp_path: Path, key: str) -> Any:
    path = state_file(tmp_path / "state", "acct-1", "all")
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return orjson.loads(row[0]) if row else None


def test_the_store_keeps_the_summary_with_its_exit_code(env: dict[str, str], zoom: FakeZoom, tmp_path: Path) -> None:
    zoom.records = [record("2026-11-26T10:00:00Z")]
    assert run(["run", "--backfill-start", "2026-11-25"], env)[0] == 0
    ok = _stored(tmp_path, "last_run")
    assert ok["exit_code"] == 0 and ok["outcome"] == "complete" and ok["emitted"] == 1
    assert ok["finished"] == "2026-11-26T12:00:00.000Z" and ok["lag_s"] == 0.0
    zoom.fail(429, {"code": 429, "message": "You have reached the maximum daily rate limit for this API."})
    assert run(["run"], env)[0] == 4
    failed = _stored(tmp_path, "last_run")
    assert failed["exit_code"] == 4 and failed["outcome"] == "daily request limit reached"


# -- progress ------------------------------------------------------------------------------------


def test_a_long_run_says_how_far_it_got_at_most_every_ten_seconds(env: dict[str, str], zoom: FakeZoom) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    zoom.records = [
        record((start + timedelta(minutes=20 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"), f"r{i}") for i in range(1800)
    ]
    clock = FakeClock()
    zoom.on_page = lambda args: clock.advance(4)  # every page takes 4 s
    code, out, lines = run(["run", "--backfill-start", "2026-11-01", "--max-runtime", "1h"], env, clock)
    assert code == 0 and len(out.splitlines()) == 1800
    progress = [line for line in lines if "progress:" in line]
    requests = len(zoom.requests)
    # about one line per 10 s of a (4 s x requests) run, never more often
    assert requests * 4 // 12 <= len(progress) <= requests * 4 // 10
    assert "records so far" in progress[0] and "/s)" in progress[0] and "days still to read" in progress[0]


def test_a_short_run_prints_no_progress(env: dict[str, str], zoom: FakeZoom) -> None:
    zoom.records = [record("2026-11-26T10:00:00Z", f"r{i}") for i in range(700)]
    clock = FakeClock()
    zoom.on_page = lambda args: clock.advance(3)
    code, _, lines = run(["run", "--backfill-start", "2026-11-25"], env, clock)
    assert code == 0 and not [line for line in lines if "progress:" in line]


# -- --max-records ---------------------------------------------------------------------------


def test_max_records_splits_a_backfill_into_runs_that_lose_and_repeat_nothing(tmp_path: Path) -> None:
    from zoom_oplog_shipper.simulator import Simulator, SimulatorConfig, serve_in_thread

    sim = Simulator(SimulatorConfig(seed=5, days=3, records_per_day=400))
    total = len(sim.records())
    with serve_in_thread(sim) as server:
        env = {
            **simulator_env(sim, server.base_url, tmp_path),
            "ZOOM_OPLOG_MAX_RECORDS": str(total // 2),
            "ZOOM_BACKFILL_START": (datetime.now(UTC) - timedelta(days=4)).isoformat(),
        }
        first = run(["run", "--log-format", "json"], env, Clock())
        second = run(["run", "--log-format", "json"], env, Clock())
        third = run(["run", "--log-format", "json", "--max-records", "0"], env, Clock())
    summaries = [orjson.loads(r[2][-1]) for r in (first, second, third)]
    assert [r[0] for r in (first, second, third)] == [0, 0, 0]
    assert summaries[0]["outcome"] == "stopped at --max-records"
    # the page that reaches the limit is finished: at most one page (300) past it
    assert total // 2 <= summaries[0]["emitted"] < total // 2 + 300
    ids = Counter(orjson.loads(line)["event"]["id"] for r in (first, second, third) for line in r[1].splitlines())
    assert len(ids) == total and set(ids.values()) == {1}
    assert summaries[-1]["outcome"] == "complete" and summaries[-1]["emitted"] == 0


def test_max_records_holds_with_several_windows_in_flight(tmp_path: Path) -> None:
    """Three windows at once: the pages the others fetched after the limit was reached are not sent."""
    from zoom_oplog_shipper.simulator import Simulator, SimulatorConfig, serve_in_thread

    sim = Simulator(SimulatorConfig(seed=6, days=80, records_per_day=120, slow_rate=1.0, slow_seconds=0.01))
    total = len(sim.records())
    with serve_in_thread(sim) as server:
        env = {
            **simulator_env(sim, server.base_url, tmp_path),
            "ZOOM_OPLOG_CONCURRENCY": "3",
            "ZOOM_OPLOG_MAX_RECORDS": "1000",
            "ZOOM_BACKFILL_START": (datetime.now(UTC) - timedelta(days=81)).isoformat(),
        }
        runs = [run(["run", "--log-format", "json"], env, Clock()) for _ in range(12)]
    summaries = [orjson.loads(r[2][-1]) for r in runs]
    assert all(r[0] == 0 for r in runs)
    limited = [s for s in summaries if s["outcome"] == "stopped at --max-records"]
    assert limited and all(1000 <= s["emitted"] < 1000 + 300 for s in limited), [s["emitted"] for s in limited]
    ids = Counter(orjson.loads(line)["event"]["id"] for r in runs for line in r[1].splitlines())
    assert len(ids) == total and set(ids.values()) == {1}
