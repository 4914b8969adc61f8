"""Chaos suite: the shipper against the simulator under every undocumented behaviour and fault.

Property, for every scenario (tests/chaos.py measures it): the multiset of records the simulator
holds in the collected range equals the multiset of records that appear on stdout across all runs,
with no duplicate `event.id` when no run was killed, and at most one page of duplicates per SIGKILL.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from chaos import (
    MARKS,
    PAGE,
    REPORT,
    START,
    TZS,
    MakeWorld,
    World,
    assert_delivered,
    backfill_then_hourly,
    burst_across_page_edges,
    chaos_env,
    held,
    hourly_runs,
    hourly_runs_with_late_records,
    kill_at_random_moments,
    parsed_lines,
    print_report,
    tally,
    world_fixture,
)

from zoom_oplog_shipper.records import record_time
from zoom_oplog_shipper.simulator import Simulator, SimulatorConfig, serve_in_thread

pytestmark = MARKS

STREAM = "operations"
world = world_fixture(STREAM)


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


def role_change(_rng: random.Random, time: str, i: int) -> dict[str, str]:
    """One record of a batch role change."""
    return {"time": time, "operator": "admin@example.com", "category_type": "User", "action": "Batch Update",
            "operation_detail": f"Change Role  - u{i % 97}@example.com: from Member to Admin"}  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("tz", TZS)
def test_backfill_then_hourly(world: MakeWorld, seed: int, order: str, tz: int) -> None:
    w = world(seed=seed, days=120, records_per_day=30, order=order, tz_offset_minutes=tz,
              future_to="reject" if seed == 2 else "accept",
              to_day="exclusive" if seed == 1 else "inclusive")  # fmt: skip
    backfill_then_hourly(w, seed, add_recent)


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_exclusive_to_that_cannot_be_after_today_delivers_today_tomorrow(world: MakeWorld, order: str) -> None:
    """An API whose `to` is exclusive and may not be after its today never serves today's records
    today: they must arrive the next day, once, and nothing before today may be missing."""
    w = world(seed=22, days=60, records_per_day=40, order=order, future_to="reject", to_day="exclusive")
    since = START - timedelta(days=40)
    hourly_runs(w, since, 4, lambda rng: add_recent(w, rng, 20, timedelta(hours=1)), random.Random(22))
    today = datetime.combine(w.clock.now().date(), datetime.min.time(), tzinfo=UTC)
    w.verify(since, today)  # everything before the API's today is out; today's records are not yet
    w.clock.advance(86_400)
    assert w.run() == 0
    w.verify(since, today + timedelta(days=1))


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_hourly_runs_with_late_records(world: MakeWorld, seed: int) -> None:
    hourly_runs_with_late_records(world(seed=seed, days=3, records_per_day=400, late_fraction=0.3, late_by=5 * 3600),
                                  seed, add_recent)  # fmt: skip


@pytest.mark.parametrize("seed", [6, 7])
def test_same_second_bursts_and_twins_across_page_edges(world: MakeWorld, seed: int) -> None:
    burst_across_page_edges(world(seed=seed, days=2, records_per_day=100), seed, role_change)


@pytest.mark.parametrize("seed", [8, 9])
def test_page_tokens_expire_between_pages(world: MakeWorld, seed: int) -> None:
    # a third of the pages take 100 s of the simulator's time, and page tokens live 90 s
    w = world(seed=seed, days=30, records_per_day=200, page_token_ttl=90, slow_rate=0.3, slow_seconds=100)
    w.verify(w.backfill(25, "--max-runtime", "1h"), w.clock.now())
    assert w.sim.stats()["requests"]["logs"].get("400", 0) > 0  # tokens did expire


#: (scenario, seeds, the simulator's faults and days of records, backfill days, the statistic that shows
#: the faults happened)
FAULTS: list[tuple[str, tuple[int, ...], dict[str, Any], int, Callable[[dict[str, Any]], Any]]] = [
    ("token revoked mid-run", (10, 11), {"days": 40, "records_per_day": 150, "fail_rate": 0.05,
     "fail_kinds": ("revoke",)}, 35, lambda stats: stats["tokens_revoked"]),
    ("rate limit storms", (12, 13), {"days": 20, "records_per_day": 300, "qps_limit": 2},
     18, lambda stats: sum(stats["rate_limited"].values())),
    ("server errors and dropped connections", (16, 17), {"days": 40, "records_per_day": 150, "fail_rate": 0.25},
     35, lambda stats: sum(stats["faults"].values())),
]  # fmt: skip


@pytest.mark.parametrize(
    ("seed", "sim", "days", "happened"),
    [pytest.param(seed, *rest, id=f"{name}-{seed}") for name, seeds, *rest in FAULTS for seed in seeds],
)
def test_faults_during_a_backfill(
    world: MakeWorld, seed: int, sim: dict[str, Any], days: int, happened: Callable[[dict[str, Any]], Any]
) -> None:
    w = world(seed=seed, **sim)
    w.verify(w.backfill(days), w.clock.now())
    assert happened(w.sim.stats()) > 0


@pytest.mark.parametrize("seed", [14, 15])
def test_daily_limit_mid_backfill_then_later_runs(world: MakeWorld, seed: int) -> None:
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


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("seed", [18, 19])
def test_max_runtime_cuts_a_backfill_into_many_runs(world: MakeWorld, seed: int, order: str) -> None:
    w = world(seed=seed, days=100, records_per_day=120, slow_rate=1.0, slow_seconds=10, order=order)
    since = START - timedelta(days=90)
    w.run_until_complete("--backfill-start", since.isoformat(), "--max-runtime", "45s", limit=400)
    w.verify(since, w.clock.now())
    assert w.runs >= 5


# -- the real process, SIGKILLed at random moments -----------------------------------------------


def test_sigkill_at_random_moments(tmp_path: Path, concurrency: str) -> None:
    kill_at_random_moments(tmp_path, STREAM, concurrency, records_per_day=1000)


def test_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Print the numbers of every scenario that ran before this one (run with -s to see them live)."""
    with capsys.disabled():
        print_report(STREAM, "chaos")


def _kill_when_the_later_windows_are_out(
    proc: subprocess.Popen[bytes], lines: list[bytes], err: Path, later: str, count: int, want_cut: bool
) -> bool:
    """Wait until ``count`` events from day ``later`` on are out (and, if ``want_cut``, a window was cut),
    then SIGKILL the run; returns whether a window was cut."""
    deadline, cut = time.monotonic() + 60, False
    while time.monotonic() < deadline and proc.poll() is None:
        stamps = [orjson.loads(line)["@timestamp"] for line in list(lines)]
        cut = "split off the window read from" in err.read_text()
        if sum(s >= later for s in stamps) >= count and (cut or not want_cut):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the later windows were out: nothing to test"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return cut


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
    env = {**os.environ, **chaos_env(sim, server, tmp_path, ZOOM_BACKFILL_START=backfill.isoformat(),
                                     ZOOM_OPLOG_CONCURRENCY="3", ZOOM_OPLOG_LOG_LEVEL="debug")}  # fmt: skip
    later_start = datetime.combine(first_end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    later = [r for r in sim.records() if (t := record_time(r)) and later_start <= t < later_start + timedelta(days=40)]
    lines: list[bytes] = []
    err_path = tmp_path / "killed.err"
    try:
        with err_path.open("wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "zoom_oplog_shipper", "run"], stdout=subprocess.PIPE,
                                    stderr=err, env=env)  # fmt: skip
            assert proc.stdout is not None
            out = proc.stdout
            reader = threading.Thread(target=lambda: lines.extend(iter(out.readline, b"")), daemon=True)
            reader.start()
            cut = _kill_when_the_later_windows_are_out(
                proc, lines, err_path, later_start.isoformat()[:10], len(later), per_day >= 300
            )
            reader.join(timeout=30)
        assert cut or per_day < 300, "no window was cut"
        [store] = (tmp_path / "state").glob("*.sqlite3")
        with sqlite3.connect(store) as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        conn.close()
        # The first window is unfinished: the watermark has not moved past its start.
        assert datetime.fromisoformat(meta["watermark"]) == backfill
        again = subprocess.run([sys.executable, "-m", "zoom_oplog_shipper", "run"], env=env, capture_output=True,
                               timeout=300)  # fmt: skip
        assert again.returncode == 0 and b"complete:" in again.stderr, again.stderr
        # A line the kill cut short has no newline: the agent drops it.
        got, duplicates = tally(parsed_lines(b"".join(line for line in lines if line.endswith(b"\n")) + again.stdout))
        want = held(sim, STREAM, backfill, datetime.now(UTC))
        how = "a window cut" if cut else "no cut"
        REPORT.append(
            (STREAM, f"kill after later windows ({how}): {sum(want.values())} records, {duplicates} duplicates")
        )
        assert_delivered("kill after later windows", want, got)
        assert duplicates <= PAGE * 3  # at most a page per window that was in flight
    finally:
        server.shutdown()
