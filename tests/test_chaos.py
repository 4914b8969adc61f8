"""Chaos suite: the shipper against the simulator under every undocumented behaviour and fault.

Property, for every scenario: the multiset of records the simulator holds in the collected range
equals the multiset of records that appear on stdout across all runs, with no duplicate `event.id`
when no run was killed, and at most one page of duplicates per SIGKILL.
"""

from __future__ import annotations

import io
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import FakeClock
from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.records import canonical, record_time
from zoom_oplog_shipper.simulator import RunningServer, Simulator, SimulatorConfig, serve_in_thread

pytestmark = pytest.mark.chaos

START = datetime(2026, 11, 26, 9, 17, 23, tzinfo=UTC)
PAGE = 300
REPORT: list[str] = []


class World:
    """A simulator on a fake clock shared with in-process shipper runs; collects every line printed."""

    def __init__(
        self, tmp_path: Path, name: str, stream: str = "operations", concurrency: str = "3", **sim: Any
    ) -> None:
        self.name = name
        self.stream = stream
        self.clock = FakeClock(START)
        config = SimulatorConfig(account_id="chaos-acct", client_id="chaos-client", client_secret="chaos-secret", **sim)
        self.sim = Simulator(config, now=self.clock.now, sleep=self.clock.sleep)
        self.server: RunningServer = serve_in_thread(self.sim)
        self.env = {
            "ZOOM_ACCOUNT_ID": "chaos-acct",
            "ZOOM_CLIENT_ID": "chaos-client",
            "ZOOM_CLIENT_SECRET": "chaos-secret",
            "ZOOM_API_URL": f"{self.server.base_url}/v2",
            "ZOOM_OAUTH_URL": f"{self.server.base_url}/oauth/token",
            "ZOOM_OPLOG_STATE_DIR": str(tmp_path / "state"),
            "ZOOM_OPLOG_MAX_RPS": "0",
            "ZOOM_OPLOG_INCLUDE_ORIGINAL": "true",
            "ZOOM_OPLOG_MAX_LINE_BYTES": "1000000",
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "ZOOM_OPLOG_STREAM": stream,
            "ZOOM_OPLOG_CONCURRENCY": concurrency,
        }
        self.docs: list[dict[str, Any]] = []
        self.runs = 0
        self.codes: Counter[int] = Counter()
        self.kills = 0

    def run(self, *args: str, **env: str) -> int:
        out, err = io.BytesIO(), io.StringIO()
        code = main(["run", *args], env={**self.env, **env}, stdout=out, stderr=err, clock=self.clock)
        self.runs += 1
        self.codes[code] += 1
        self.docs += [orjson.loads(line) for line in out.getvalue().splitlines()]
        self.last_err = err.getvalue()
        return code

    def run_until_complete(self, *args: str, limit: int = 200, between: float = 0.0, **env: str) -> None:
        for _ in range(limit):
            code = self.run(*args, **env)
            if code == 0 and "complete:" in self.last_err:
                return
            assert code in (0, 1, 4), self.last_err
            self.clock.advance(between)
        pytest.fail(f"{self.name}: no complete run in {limit} runs; last stderr:\n{self.last_err}")

    def expected(self, since: datetime, until: datetime) -> Counter[bytes]:
        held = self.sim.records(visible_only=True, stream=self.stream)
        return Counter(canonical(r) for r in held if (t := record_time(r)) is not None and since <= t < until)

    def verify(self, since: datetime, until: datetime, *, max_duplicates: int = 0) -> None:
        ids = Counter(d["event"]["id"] for d in self.docs)
        duplicates = sum(ids.values()) - len(ids)
        by_id = {d["event"]["id"]: canonical(orjson.loads(d["event"]["original"])) for d in self.docs}
        got = Counter(by_id.values())
        want = self.expected(since, until)
        missing = want - got
        extra = got - want
        REPORT.append(
            f"{self.name}: {sum(want.values())} records, {self.runs} runs {dict(self.codes)}, "
            f"{self.kills} kills, {duplicates} duplicates"
        )
        assert not missing, f"{self.name}: {sum(missing.values())} records lost, e.g. {next(iter(missing))!r}"
        assert not extra, f"{self.name}: {sum(extra.values())} records not in the simulator, e.g. {next(iter(extra))!r}"
        assert duplicates <= max_duplicates, f"{self.name}: {duplicates} duplicates"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest, concurrency: str) -> Iterator[Any]:
    made: list[World] = []

    def make(**sim: Any) -> World:
        w = World(tmp_path, request.node.name, concurrency=concurrency, **sim)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def add_recent(w: World, rng: random.Random, count: int, span: timedelta, late_by: float | None = None) -> None:
    """Records in the last ``span`` before now, with same-second twins."""
    now = w.clock.now()
    recs = []
    for i in range(count):
        t = now - timedelta(seconds=rng.randrange(1, int(span.total_seconds())))
        rec = {
            "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "operator": rng.choice(["admin@example.com", "owner@example.io"]),
            "category_type": rng.choice(["User", "Account", "User Group", "Role"]),
            "action": rng.choice(["Add", "Update", "Delete", "Batch Update"]),
            "operation_detail": f"Update User u{rng.randrange(50)}@example.com  - Department: set to D{i % 7}",
        }
        recs.append(rec)
        if rng.random() < 0.1:
            recs.append(dict(rec))  # an identical twin
    w.sim.add_records(recs, late_by=late_by)


TZS = [-12 * 60, -5 * 60 - 30, 0, 5 * 60 + 45, 14 * 60]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("tz", TZS)
def test_backfill_then_hourly(world: Any, seed: int, order: str, tz: int) -> None:
    w = world(seed=seed, days=120, records_per_day=30, order=order, tz_offset_minutes=tz,
              future_to="reject" if seed == 2 else "accept",
              to_day="exclusive" if seed == 1 else "inclusive")  # fmt: skip
    since = START - timedelta(days=100)
    rng = random.Random(seed)
    assert w.run("--backfill-start", since.isoformat()) == 0
    for _ in range(6):
        w.clock.advance(3600)
        add_recent(w, rng, 40, timedelta(hours=1))
        assert w.run() == 0
    w.verify(since, w.clock.now())


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_exclusive_to_that_cannot_be_after_today_delivers_today_tomorrow(world: Any, order: str) -> None:
    """An API whose `to` is exclusive and may not be after its today never serves today's records
    today: they must arrive the next day, once, and nothing before today may be missing."""
    w = world(seed=22, days=60, records_per_day=40, order=order, future_to="reject", to_day="exclusive")
    since = START - timedelta(days=40)
    rng = random.Random(22)
    assert w.run("--backfill-start", since.isoformat()) == 0
    for _ in range(4):
        w.clock.advance(3600)
        add_recent(w, rng, 20, timedelta(hours=1))
        assert w.run() == 0
    today = datetime.combine(w.clock.now().date(), datetime.min.time(), tzinfo=UTC)
    w.verify(since, today)  # everything before the API's today is out; today's records are not yet
    w.clock.advance(86_400)
    assert w.run() == 0
    w.verify(since, today + timedelta(days=1))


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_hourly_runs_with_late_records(world: Any, seed: int) -> None:
    w = world(seed=seed, days=3, records_per_day=400, late_fraction=0.3, late_by=5 * 3600)
    since = START - timedelta(days=2)
    rng = random.Random(seed)
    assert w.run("--backfill-start", since.isoformat()) == 0
    for _ in range(30):
        w.clock.advance(3600)
        add_recent(w, rng, 25, timedelta(hours=1))
        add_recent(w, rng, 5, timedelta(hours=1), late_by=rng.choice([1800.0, 4 * 3600.0, 20 * 3600.0]))
        assert w.run() == 0
    w.clock.advance(21 * 3600)  # every late record is visible now, still inside the lookback
    assert w.run() == 0
    w.verify(since, w.clock.now())


@pytest.mark.parametrize("seed", [6, 7])
def test_same_second_bursts_and_twins_across_page_edges(world: Any, seed: int) -> None:
    w = world(seed=seed, days=2, records_per_day=100)
    rng = random.Random(seed)
    second = (START - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    burst = []
    for i in range(2 * PAGE + 37):
        rec = {"time": second, "operator": "admin@example.com", "category_type": "User", "action": "Batch Update",
               "operation_detail": f"Change Role  - u{i % 97}@example.com: from Member to Admin"}  # fmt: skip
        burst.append(rec)
        if rng.random() < 0.3:
            burst.append(dict(rec))
    w.sim.add_records(burst, late_by=0)
    since = START - timedelta(days=2)
    assert w.run("--backfill-start", since.isoformat()) == 0
    w.clock.advance(3600)
    assert w.run() == 0
    w.verify(since, w.clock.now())


@pytest.mark.parametrize("seed", [8, 9])
def test_page_tokens_expire_between_pages(world: Any, seed: int) -> None:
    # a third of the pages take 100 s of the simulator's time, and page tokens live 90 s
    w = world(seed=seed, days=30, records_per_day=200, page_token_ttl=90, slow_rate=0.3, slow_seconds=100)
    since = START - timedelta(days=25)
    w.run_until_complete("--backfill-start", since.isoformat(), "--max-runtime", "1h")
    w.verify(since, w.clock.now())
    assert w.sim.stats()["requests"]["logs"].get("400", 0) > 0  # tokens did expire


@pytest.mark.parametrize("seed", [10, 11])
def test_token_revoked_mid_run(world: Any, seed: int) -> None:
    w = world(seed=seed, days=40, records_per_day=150, fail_rate=0.05, fail_kinds=("revoke",))
    since = START - timedelta(days=35)
    w.run_until_complete("--backfill-start", since.isoformat())
    w.verify(since, w.clock.now())
    assert w.sim.stats()["tokens_revoked"] > 0


@pytest.mark.parametrize("seed", [12, 13])
def test_rate_limit_storms(world: Any, seed: int) -> None:
    w = world(seed=seed, days=20, records_per_day=300, qps_limit=2)
    since = START - timedelta(days=18)
    w.run_until_complete("--backfill-start", since.isoformat())
    w.verify(since, w.clock.now())
    assert sum(w.sim.stats()["rate_limited"].values()) > 0


@pytest.mark.parametrize("seed", [14, 15])
def test_daily_limit_mid_backfill_then_later_runs(world: Any, seed: int) -> None:
    w = world(seed=seed, days=90, records_per_day=100, daily_limit=12)
    since = START - timedelta(days=80)
    for _ in range(20):
        code = w.run("--backfill-start", since.isoformat())
        if code == 0 and "complete:" in w.last_err:
            break
        assert code == 4, w.last_err
        assert "resets at" in w.last_err
        w.clock.advance(24 * 3600)  # the next UTC day
    w.verify(since, w.clock.now())
    assert w.codes[4] >= 2


@pytest.mark.parametrize("seed", [16, 17])
def test_server_errors_and_dropped_connections(world: Any, seed: int) -> None:
    w = world(seed=seed, days=40, records_per_day=150, fail_rate=0.25)
    since = START - timedelta(days=35)
    w.run_until_complete("--backfill-start", since.isoformat())
    w.verify(since, w.clock.now())
    assert sum(w.sim.stats()["faults"].values()) > 0


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("seed", [18, 19])
def test_max_runtime_cuts_a_backfill_into_many_runs(world: Any, seed: int, order: str) -> None:
    w = world(seed=seed, days=100, records_per_day=120, slow_rate=1.0, slow_seconds=10, order=order)
    since = START - timedelta(days=90)
    w.run_until_complete("--backfill-start", since.isoformat(), "--max-runtime", "45s", limit=400)
    w.verify(since, w.clock.now())
    assert w.runs >= 5


# -- the real process, SIGKILLed at random moments -----------------------------------------------


def slow_copy(source: Any, sink: Any) -> None:
    """Copy a pipe to a file in small, slow reads."""
    while chunk := source.read1(16384):
        sink.write(chunk)
        time.sleep(0.002)
    sink.flush()


def test_sigkill_at_random_moments(tmp_path: Path, concurrency: str) -> None:
    kill_at_random_moments(tmp_path, "operations", concurrency, records_per_day=1000)


def kill_at_random_moments(tmp_path: Path, stream: str, concurrency: str, **data: Any) -> None:
    """`run --stream STREAM` in real processes, SIGKILLed at random moments until one completes; every
    record of the stream arrives, duplicates at most one page per kill. ``data``: the simulator's records."""
    rng = random.Random(20)
    now = datetime.now(UTC)
    sim = Simulator(
        SimulatorConfig(account_id="k-acct", client_id="k-client", client_secret="k-secret", seed=20, days=60,
                        slow_rate=0.3, slow_seconds=0.02, **data),
    )  # fmt: skip
    server = serve_in_thread(sim)
    since = now - timedelta(days=55)
    env = {
        **os.environ,
        "ZOOM_ACCOUNT_ID": "k-acct",
        "ZOOM_CLIENT_ID": "k-client",
        "ZOOM_CLIENT_SECRET": "k-secret",
        "ZOOM_API_URL": f"{server.base_url}/v2",
        "ZOOM_OAUTH_URL": f"{server.base_url}/oauth/token",
        "ZOOM_OPLOG_STATE_DIR": str(tmp_path / "state"),
        "ZOOM_OPLOG_MAX_RPS": "0",
        "ZOOM_OPLOG_INCLUDE_ORIGINAL": "true",
        "ZOOM_OPLOG_MAX_LINE_BYTES": "1000000",
        "ZOOM_BACKFILL_START": since.isoformat(),
        "ZOOM_OPLOG_STREAM": stream,
        "ZOOM_OPLOG_CONCURRENCY": concurrency,
    }
    out_path = tmp_path / "out.ndjson"
    kills = runs = 0
    try:
        with out_path.open("ab") as out:
            for _ in range(60):
                runs += 1
                proc = subprocess.Popen(
                    [sys.executable, "-m", "zoom_oplog_shipper", "run"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                )
                # A slow reader, as an agent can be: the shipper often blocks in the middle of a
                # page's write, which is where a kill hurts most.
                reader = threading.Thread(target=slow_copy, args=(proc.stdout, out), daemon=True)
                reader.start()
                deadline = time.monotonic() + rng.uniform(0.3, 1.2)
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                if proc.poll() is None and kills < 12:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=30)
                    reader.join(timeout=60)
                    out.write(b"\n")  # a line cut by the kill stays cut; the agent drops it
                    kills += 1
                    continue
                proc.wait(timeout=300)
                reader.join(timeout=60)
                assert proc.stderr is not None
                err = proc.stderr.read()
                if proc.returncode == 0 and b"complete:" in err:
                    break
            else:
                pytest.fail("the shipper never completed")
        docs = []
        for line in out_path.read_bytes().splitlines():
            try:
                docs.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        ids = Counter(d["event"]["id"] for d in docs)
        duplicates = sum(ids.values()) - len(ids)
        got = Counter(
            canonical(orjson.loads(d["event"]["original"])) for d in {d["event"]["id"]: d for d in docs}.values()
        )
        until = datetime.now(UTC)
        want = Counter(
            canonical(r)
            for r in sim.records(visible_only=True, stream=stream)
            if (t := record_time(r)) and since <= t < until
        )
        REPORT.append(
            f"sigkill {stream} at concurrency {concurrency}: {sum(want.values())} records, {runs} runs, "
            f"{kills} kills, {duplicates} duplicates"
        )
        assert kills >= 3
        assert not (want - got), f"{sum((want - got).values())} records lost"
        assert not (got - want)
        assert duplicates <= PAGE * kills
    finally:
        server.shutdown()


def test_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Print the numbers of every scenario that ran before this one (run with -s to see them live)."""
    with capsys.disabled():
        for line in REPORT:
            print(f"\nchaos: {line}", end="")
        print()


@pytest.mark.parametrize("per_day", [100, 300])
def test_kill_after_later_windows_finished_before_the_first(tmp_path: Path, per_day: int) -> None:
    """Three windows at once; the oldest answers slowly, so the two after it finish first. A SIGKILL
    then must leave the watermark at the unfinished window, and the next run must lose nothing. At
    300 records a day the oldest window is long enough for its older half to go to another reader
    (a cut): both parts are slow and unfinished at the kill."""
    now = datetime.now(UTC)
    backfill = datetime.combine((now - timedelta(days=80)).date(), datetime.min.time(), tzinfo=UTC)
    first_end = backfill.date() - timedelta(days=2) + timedelta(days=27)  # the first window's `to`
    sim = Simulator(
        SimulatorConfig(account_id="o-acct", client_id="o-client", client_secret="o-secret", seed=21, days=90,
                        records_per_day=per_day, slow_before=first_end.isoformat(), slow_seconds=0.3),
    )  # fmt: skip
    server = serve_in_thread(sim)
    state_dir = tmp_path / "state"
    env = {
        **os.environ,
        "ZOOM_ACCOUNT_ID": "o-acct",
        "ZOOM_CLIENT_ID": "o-client",
        "ZOOM_CLIENT_SECRET": "o-secret",
        "ZOOM_API_URL": f"{server.base_url}/v2",
        "ZOOM_OAUTH_URL": f"{server.base_url}/oauth/token",
        "ZOOM_OPLOG_STATE_DIR": str(state_dir),
        "ZOOM_OPLOG_MAX_RPS": "0",
        "ZOOM_OPLOG_INCLUDE_ORIGINAL": "true",
        "ZOOM_BACKFILL_START": backfill.isoformat(),
        "ZOOM_OPLOG_CONCURRENCY": "3",
        "ZOOM_OPLOG_LOG_LEVEL": "debug",
    }
    later_start = datetime.combine(first_end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    later = [r for r in sim.records() if (t := record_time(r)) and later_start <= t < later_start + timedelta(days=40)]
    lines: list[bytes] = []
    err = (tmp_path / "killed.err").open("wb")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "zoom_oplog_shipper", "run"], stdout=subprocess.PIPE,
                                stderr=err, env=env)  # fmt: skip
        assert proc.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, b"")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        deadline, cut = time.monotonic() + 60, False
        while time.monotonic() < deadline and proc.poll() is None:
            stamps = [orjson.loads(line)["@timestamp"] for line in list(lines)]
            cut = "split off the window read from" in (tmp_path / "killed.err").read_text()
            if sum(s >= later_start.isoformat()[:10] for s in stamps) >= len(later) and (cut or per_day < 300):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before the later windows were out: nothing to test"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=30)
        assert cut or per_day < 300, "no window was cut"
        [store] = state_dir.glob("*.sqlite3")
        with sqlite3.connect(store) as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        conn.close()
        # The first window is unfinished: the watermark has not moved past its start.
        assert datetime.fromisoformat(meta["watermark"]) == backfill
        again = subprocess.run([sys.executable, "-m", "zoom_oplog_shipper", "run"], env=env, capture_output=True,
                               timeout=300)  # fmt: skip
        assert again.returncode == 0 and b"complete:" in again.stderr, again.stderr
        # A line the kill cut short has no newline: the agent drops it.
        docs = [orjson.loads(line) for line in lines if line.endswith(b"\n")]
        docs += [orjson.loads(line) for line in again.stdout.splitlines()]
        ids = Counter(d["event"]["id"] for d in docs)
        unique = {d["event"]["id"]: d for d in docs}.values()
        got = Counter(canonical(orjson.loads(d["event"]["original"])) for d in unique)
        until = datetime.now(UTC)
        want = Counter(canonical(r) for r in sim.records() if (t := record_time(r)) and backfill <= t < until)
        duplicates = sum(ids.values()) - len(ids)
        how = "a window cut" if cut else "no cut"
        REPORT.append(f"kill after later windows ({how}): {sum(want.values())} records, {duplicates} duplicates")
        assert not (want - got), f"{sum((want - got).values())} records lost"
        assert not (got - want)
        assert duplicates <= PAGE * 3  # at most a page per window that was in flight
    finally:
        err.close()
        server.shutdown()
