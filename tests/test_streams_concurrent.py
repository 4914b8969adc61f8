"""Operations and activities at the same time: one state directory, a lock and a store per stream.

Real processes against one simulator. The simulator holds each stream's first report request until
the test lets it go, so the runs provably overlap (no timing luck): the two streams must both be
inside Zoom's API at once, and a second run of the same stream starts while the first holds its lock.
"""

from __future__ import annotations

import os
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
from conftest import simulator_env

from zoom_oplog_shipper.records import canonical, record_time
from zoom_oplog_shipper.simulator import Simulator, SimulatorConfig, serve_in_thread
from zoom_oplog_shipper.state import state_file

ACCOUNT = "conc-acct"
WAIT = 60.0  # seconds a held request waits for its partner before the test gives up


class Hold:
    """The simulator's `sleep` for `slow` faults: a request that is slowed waits here for the test.

    ``together(n)``: the next ``n`` slowed requests are released only when all ``n`` have arrived.
    ``until_released()``: a slowed request waits until ``release()``; ``arrived`` tells it came.
    """

    def __init__(self) -> None:
        self.barrier: threading.Barrier | None = None
        self.met: list[float] = []  # appends are atomic; the two arrive from two server threads
        self.arrived = threading.Event()
        self.released = threading.Event()

    def together(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=WAIT)

    def until_released(self) -> None:
        self.barrier = None
        self.arrived.clear()
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def __call__(self, _seconds: float) -> None:
        if self.barrier is not None:
            self.barrier.wait()
            self.met.append(_seconds)
            return
        self.arrived.set()
        self.released.wait(WAIT)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Simulator, Hold, dict[str, str]]]:
    hold = Hold()
    config = SimulatorConfig(account_id=ACCOUNT, client_id="conc-client", client_secret="conc-secret", seed=31,
                             days=3, records_per_day=400, activities_per_day=400)  # fmt: skip
    sim = Simulator(config, sleep=hold)
    server = serve_in_thread(sim)
    env = {
        **os.environ,
        **simulator_env(sim, server.base_url, tmp_path),
        "ZOOM_OPLOG_INCLUDE_ORIGINAL": "true",
        "ZOOM_BACKFILL_START": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
    }
    try:
        yield sim, hold, env
    finally:
        hold.release()
        server.shutdown()


def start(env: dict[str, str], stream: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "zoom_oplog_shipper", "run", "--stream", stream],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, list[dict[str, Any]], str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, [orjson.loads(line) for line in out.splitlines()], err.decode()


def originals(docs: list[dict[str, Any]]) -> Counter[bytes]:
    return Counter(canonical(orjson.loads(d["event"]["original"])) for d in docs)


def held(sim: Simulator, stream: str, since: datetime) -> Counter[bytes]:
    until = datetime.now(UTC)
    return Counter(
        canonical(r)
        for r in sim.records(visible_only=True, stream=stream)
        if (t := record_time(r)) and since <= t < until
    )


def test_operations_and_activities_run_at_once_with_their_own_lock_and_store(
    world: tuple[Simulator, Hold, dict[str, str]], tmp_path: Path
) -> None:
    sim, hold, env = world
    since = datetime.fromisoformat(env["ZOOM_BACKFILL_START"])
    hold.together(2)  # each stream's first report request waits until the other's has arrived
    sim.set_faults("logs:1=slow,activities:1=slow", relative=True)
    operations, activities = start(env, "operations"), start(env, "activities")
    results = {"operations": finish(operations), "activities": finish(activities)}

    datasets = {"operations": "zoom.operation", "activities": "zoom.activity"}
    for stream, (code, docs, err) in results.items():
        assert code == 0, err
        assert "complete" in err.splitlines()[-1], err
        assert len(hold.met) == 2, "the two runs were never inside the API at the same time"
        assert {d["event"]["dataset"] for d in docs} == {datasets[stream]}
        assert len({d["event"]["id"] for d in docs}) == len(docs), f"{stream}: duplicates"
        assert originals(docs) == held(sim, stream, since), f"{stream}: records lost or foreign"
    state = tmp_path / "state"
    stores = {state_file(state, ACCOUNT, "all"), state_file(state, ACCOUNT, "activities")}
    assert len(stores) == 2
    assert {p for p in state.iterdir() if p.suffix == ".sqlite3"} == stores
    assert {p for p in state.iterdir() if p.suffix == ".lock"} == {p.with_suffix(".lock") for p in stores}

    # Each stream's next run finds nothing new: each store kept its own progress.
    for stream in ("operations", "activities"):
        code, docs, err = finish(start(env, stream))
        assert (code, docs) == (0, []), err


def test_a_second_run_of_the_same_stream_does_nothing_while_the_first_holds_the_lock(
    world: tuple[Simulator, Hold, dict[str, str]],
) -> None:
    sim, hold, env = world
    since = datetime.fromisoformat(env["ZOOM_BACKFILL_START"])
    hold.until_released()
    sim.set_faults("activities:1=slow", relative=True)
    first = start(env, "activities")
    deadline = time.monotonic() + WAIT
    while not hold.arrived.wait(0.05):
        assert first.poll() is None, finish(first)[2]  # it ended before reaching the API
        assert time.monotonic() < deadline, "the first run never reached the API"
    code, docs, err = finish(start(env, "activities"))  # while the first is held inside its first page
    assert (code, docs) == (0, []), err
    assert "holds" in err and "activities" in err, err
    assert sim.stats()["activities_requests"] == 1  # the second run asked Zoom nothing
    hold.release()

    code, docs, err = finish(first)
    assert code == 0, err
    assert len({d["event"]["id"] for d in docs}) == len(docs)
    assert originals(docs) == held(sim, "activities", since)
