"""What the chaos suites (tests/test_chaos.py, tests/test_chaos_activities.py) share: their marks, a
simulator world with in-process runs on a fake clock (and the `world` fixture that makes them), real
processes SIGKILLed at random moments, the scenarios both streams go through, and how delivered
records are counted against the simulator's.

Property, for every scenario: the multiset of records the simulator holds in the collected range
equals the multiset of records that appear on stdout across all runs, with no duplicate `event.id`
when no run was killed, and at most one page of duplicates per SIGKILL.
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pytest
from conftest import FakeClock, simulator_env

from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.records import canonical, record_time
from zoom_oplog_shipper.simulator import RunningServer, Simulator, SimulatorConfig, serve_in_thread

START = datetime(2026, 11, 26, 9, 17, 23, tzinfo=UTC)
PAGE = 300
TZS = [-12 * 60, -5 * 60 - 30, 0, 5 * 60 + 45, 14 * 60]
#: The marks of every chaos test. conftest.py adds `no_cover` to them when coverage is measured: these
#: runs repeat, thousands of times, code the other tests cover (measured, they add 7 lines and 2
#: branches of ~7,600, and double their CPU time).
MARKS = [pytest.mark.chaos]
#: (stream, line): each suite's `test_report` prints the lines of its stream.
REPORT: list[tuple[str, str]] = []
#: Adds records in the last ``span`` before the world's now: (world, rng, count, span, late_by).
AddRecent = Callable[["World", random.Random, int, timedelta, "float | None"], None]


def chaos_env(sim: Simulator, server: RunningServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The shipper's environment against ``server``: no rate limit, every record's original kept in its
    event, lines never cut (so a delivered record can be compared with the simulator's)."""
    return {
        **simulator_env(sim, server.base_url, tmp_path),
        "ZOOM_OPLOG_INCLUDE_ORIGINAL": "true",
        "ZOOM_OPLOG_MAX_LINE_BYTES": "1000000",
        **extra,
    }


def tally(docs: Iterable[dict[str, Any]]) -> tuple[Counter[bytes], int]:
    """The records the printed documents carry (once per event id) and the number of repeated event ids."""
    by_id = {}
    printed = 0
    for doc in docs:
        printed += 1
        by_id[doc["event"]["id"]] = doc
    return Counter(canonical(orjson.loads(d["event"]["original"])) for d in by_id.values()), printed - len(by_id)


def held(sim: Simulator, stream: str, since: datetime, until: datetime) -> Counter[bytes]:
    """The records of ``stream`` the simulator shows with a time in [since, until)."""
    records = sim.records(visible_only=True, stream=stream)
    return Counter(canonical(r) for r in records if (t := record_time(r)) is not None and since <= t < until)


def assert_delivered(name: str, want: Counter[bytes], got: Counter[bytes]) -> None:
    """Every record the simulator holds arrived, and nothing else did."""
    missing, extra = want - got, got - want
    assert not missing, f"{name}: {sum(missing.values())} records lost, e.g. {next(iter(missing))!r}"
    assert not extra, f"{name}: {sum(extra.values())} records not in the simulator, e.g. {next(iter(extra))!r}"


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
        self.env = chaos_env(
            self.sim, self.server, tmp_path, ZOOM_OPLOG_STREAM=stream, ZOOM_OPLOG_CONCURRENCY=concurrency
        )
        self.docs: list[dict[str, Any]] = []
        self.runs = 0
        self.codes: Counter[int] = Counter()
        self.kills = 0
        self.last_err = ""

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

    def backfill(self, days: int, *args: str) -> datetime:
        """Runs from ``days`` ago until one completes (``args`` added to each); returns the backfill start."""
        since = START - timedelta(days=days)
        self.run_until_complete("--backfill-start", since.isoformat(), *args)
        return since

    def verify(self, since: datetime, until: datetime, *, max_duplicates: int = 0) -> None:
        got, duplicates = tally(self.docs)
        want = held(self.sim, self.stream, since, until)
        REPORT.append(
            (
                self.stream,
                f"{self.name}: {sum(want.values())} records, {self.runs} runs {dict(self.codes)}, "
                f"{self.kills} kills, {duplicates} duplicates",
            )
        )
        assert_delivered(self.name, want, got)
        assert duplicates <= max_duplicates, f"{self.name}: {duplicates} duplicates"

    def close(self) -> None:
        self.server.shutdown()


@contextmanager
def worlds(tmp_path: Path, name: str, stream: str, concurrency: str, **defaults: Any) -> Iterator[Callable[..., World]]:
    """Makes worlds of ``stream`` (simulator settings: ``defaults``, then the call's); closes them after."""
    made: list[World] = []

    def make(**sim: Any) -> World:
        w = World(tmp_path, name, stream, concurrency, **{**defaults, **sim})
        made.append(w)
        return w

    try:
        yield make
    finally:
        for w in made:
            w.close()


#: Makes a world of the suite's stream; keyword arguments are simulator settings.
MakeWorld = Callable[..., World]


def world_fixture(stream: str, **defaults: Any) -> Callable[[Path, pytest.FixtureRequest, str], Iterator[MakeWorld]]:
    """A suite's `world` fixture: makes worlds of ``stream`` (see `worlds`), one test's worth each."""

    @pytest.fixture
    def world(tmp_path: Path, request: pytest.FixtureRequest, concurrency: str) -> Iterator[MakeWorld]:
        with worlds(tmp_path, request.node.name, stream, concurrency, **defaults) as make:
            yield make

    return world


def hourly_runs(
    w: World, since: datetime, hours: int, add: Callable[[random.Random], None], rng: random.Random
) -> None:
    """A backfill from ``since``, then ``hours`` hourly runs, ``add`` making new records before each."""
    assert w.run("--backfill-start", since.isoformat()) == 0, w.last_err
    for _ in range(hours):
        w.clock.advance(3600)
        add(rng)
        assert w.run() == 0, w.last_err


def backfill_then_hourly(w: World, seed: int, add_recent: AddRecent) -> None:
    """100 days of backfill, then six hourly runs with 40 new records each: all arrive once."""
    since = START - timedelta(days=100)
    hourly_runs(w, since, 6, lambda rng: add_recent(w, rng, 40, timedelta(hours=1), None), random.Random(seed))
    w.verify(since, w.clock.now())


def hourly_runs_with_late_records(w: World, seed: int, add_recent: AddRecent) -> None:
    """30 hourly runs, each hour with records that show up late (up to 20 h): all arrive once."""

    def add(rng: random.Random) -> None:
        add_recent(w, rng, 25, timedelta(hours=1), None)
        add_recent(w, rng, 5, timedelta(hours=1), rng.choice([1800.0, 4 * 3600.0, 20 * 3600.0]))

    since = START - timedelta(days=2)
    hourly_runs(w, since, 30, add, random.Random(seed))
    w.clock.advance(21 * 3600)  # every late record is visible now, still inside the lookback
    assert w.run() == 0, w.last_err
    w.verify(since, w.clock.now())


def burst_across_page_edges(w: World, seed: int, make: Callable[[random.Random, str, int], dict[str, str]]) -> None:
    """Over two pages of records in one second (``make(rng, time, i)`` each), some twice: all arrive once."""
    rng = random.Random(seed)
    second = (START - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    burst = []
    for i in range(2 * PAGE + 37):
        rec = make(rng, second, i)
        burst.append(rec)
        if rng.random() < 0.3:
            burst.append(dict(rec))
    w.sim.add_records(burst, late_by=0, stream=w.stream)
    since = START - timedelta(days=2)
    assert w.run("--backfill-start", since.isoformat()) == 0, w.last_err
    w.clock.advance(3600)
    assert w.run() == 0, w.last_err
    w.verify(since, w.clock.now())


# -- the real process, SIGKILLed at random moments -----------------------------------------------


def slow_copy(source: BinaryIO, sink: BinaryIO) -> None:
    """Copy a pipe to a file in small, slow reads."""
    while chunk := source.read1(16384):  # type: ignore[attr-defined]
        sink.write(chunk)
        time.sleep(0.002)
    sink.flush()


def _run_killed_or_complete(env: dict[str, str], out: BinaryIO, rng: random.Random, kill: bool) -> bool | None:
    """One `run` whose stdout a slow reader copies to ``out``: True when killed (``kill`` and still
    running after 0.3-1.2 s), False when it completed, None when it ended otherwise."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoom_oplog_shipper", "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    # A slow reader, as an agent can be: the shipper often blocks in the middle of a page's write,
    # which is where a kill hurts most.
    reader = threading.Thread(target=slow_copy, args=(proc.stdout, out), daemon=True)
    reader.start()
    deadline = time.monotonic() + rng.uniform(0.3, 1.2)
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if proc.poll() is None and kill:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=60)
        out.write(b"\n")  # a line cut by the kill stays cut; the agent drops it
        return True
    proc.wait(timeout=300)
    reader.join(timeout=60)
    assert proc.stderr is not None
    return False if proc.returncode == 0 and b"complete:" in proc.stderr.read() else None


def parsed_lines(data: bytes) -> list[dict[str, Any]]:
    """The whole JSON lines of ``data`` (a line a kill cut short is dropped, as an agent drops it)."""
    docs = []
    for line in data.splitlines():
        try:
            docs.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return docs


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
        **chaos_env(sim, server, tmp_path, ZOOM_BACKFILL_START=since.isoformat(), ZOOM_OPLOG_STREAM=stream),
        "ZOOM_OPLOG_CONCURRENCY": concurrency,
    }
    out_path = tmp_path / "out.ndjson"
    kills = runs = 0
    try:
        with out_path.open("ab") as out:
            for _ in range(60):
                runs += 1
                killed = _run_killed_or_complete(env, out, rng, kill=kills < 12)
                kills += bool(killed)
                if killed is False:
                    break
            else:
                pytest.fail("the shipper never completed")
        got, duplicates = tally(parsed_lines(out_path.read_bytes()))
        want = held(sim, stream, since, datetime.now(UTC))
        REPORT.append(
            (
                stream,
                f"sigkill {stream} at concurrency {concurrency}: {sum(want.values())} records, {runs} runs, "
                f"{kills} kills, {duplicates} duplicates",
            )
        )
        assert kills >= 3
        assert_delivered(f"sigkill {stream}", want, got)
        assert duplicates <= PAGE * kills
    finally:
        server.shutdown()


def print_report(stream: str, prefix: str) -> None:
    """The numbers of every scenario of ``stream`` that ran so far, one line each."""
    for line in (line for of, line in REPORT if of == stream):
        print(f"\n{prefix}: {line}", end="")
    print()
