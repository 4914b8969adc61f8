"""Chaos suite for `run --stream activities`: the operation logs' guarantees, proven for the second stream.

The same property as tests/test_chaos.py, measured the same way (its `World` and SIGKILL loop): the
multiset of sign-in/sign-out records the simulator holds in the collected range equals the multiset
printed across all runs, no duplicate `event.id` unless a run was killed, at most one page per kill.
Every world also holds operation logs, so a run that strayed into the other report shows up as extra.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.test_chaos import PAGE, REPORT, START, TZS, World, kill_at_random_moments

pytestmark = pytest.mark.chaos

STREAM = "activities"
CLIENTS = ("Windows", "Mac", "mac", "iOS", "Android", "Browser", "Linux", "windows")


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest, concurrency: str) -> Iterator[Any]:
    made: list[World] = []

    def make(**sim: Any) -> World:
        w = World(tmp_path, request.node.name, STREAM, concurrency, **{"records_per_day": 10, **sim})
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def sign_in(rng: random.Random, time: str, user: int) -> dict[str, str]:
    """One activity record in Zoom's field order; IPv6 and the odd missing field included."""
    address = f"2001:db8::{user:x}" if user % 8 == 0 else f"198.51.100.{user % 250}"
    rec = {
        "client_type": rng.choice(CLIENTS),
        "email": f"user{user}@example.com",
        "ip_address": address,
        "time": time,
        "type": rng.choice(["Sign in", "Sign in", "Sign out"]),
        "version": rng.choice(["6.0.2 (41234)", "5.17.11 (31580)", "-"]),
    }
    if rng.random() < 0.03:
        del rec[rng.choice(["ip_address", "client_type", "version"])]
    return rec


def add_recent(w: World, rng: random.Random, count: int, span: timedelta, late_by: float | None = None) -> None:
    """Activity records in the last ``span`` before now: shared sign-ins in one second, identical twins."""
    now = w.clock.now()
    recs = []
    for _ in range(count):
        time = (now - timedelta(seconds=rng.randrange(1, int(span.total_seconds())))).strftime("%Y-%m-%dT%H:%M:%SZ")
        shared = rng.randrange(2, 9) if rng.random() < 0.15 else 1
        for _user in range(shared):
            rec = sign_in(rng, time, rng.randrange(120))
            recs.append(rec)
            if rng.random() < 0.1:
                recs.append(dict(rec))  # an identical twin
    w.sim.add_records(recs, late_by=late_by, stream=STREAM)


# Every undocumented switch of the operation logs chaos tests, each value at least once with each order.
SWITCHES = [
    pytest.param(order, tz, future_to, id=f"{order}-tz{tz}-{future_to}")
    for i, tz in enumerate(TZS)
    for order, future_to in (("newest", ("accept", "reject")[i % 2]), ("oldest", ("reject", "accept")[i % 2]))
]


@pytest.mark.parametrize(("order", "tz", "future_to"), SWITCHES)
def test_backfill_then_hourly(world: Any, order: str, tz: int, future_to: str) -> None:
    w = world(seed=tz % 7, days=120, activities_per_day=30, order=order, tz_offset_minutes=tz, future_to=future_to)
    since = START - timedelta(days=100)
    rng = random.Random(tz)
    assert w.run("--backfill-start", since.isoformat()) == 0, w.last_err
    for _ in range(6):
        w.clock.advance(3600)
        add_recent(w, rng, 40, timedelta(hours=1))
        assert w.run() == 0, w.last_err
    w.verify(since, w.clock.now())
    assert {d["event"]["dataset"] for d in w.docs} == {"zoom.activity"}


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("seed", [3, 4])
def test_hourly_runs_with_late_records(world: Any, seed: int, order: str) -> None:
    w = world(seed=seed, days=3, activities_per_day=400, late_fraction=0.3, late_by=5 * 3600, order=order)
    since = START - timedelta(days=2)
    rng = random.Random(seed)
    assert w.run("--backfill-start", since.isoformat()) == 0, w.last_err
    for _ in range(30):
        w.clock.advance(3600)
        add_recent(w, rng, 25, timedelta(hours=1))
        add_recent(w, rng, 5, timedelta(hours=1), late_by=rng.choice([1800.0, 4 * 3600.0, 20 * 3600.0]))
        assert w.run() == 0, w.last_err
    w.clock.advance(21 * 3600)  # every late record is visible now, still inside the lookback
    assert w.run() == 0, w.last_err
    w.verify(since, w.clock.now())


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("seed", [6, 7])
def test_same_second_bursts_and_twins_across_page_edges(world: Any, seed: int, order: str) -> None:
    w = world(seed=seed, days=2, activities_per_day=100, order=order)
    rng = random.Random(seed)
    second = (START - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    burst = []
    for i in range(2 * PAGE + 37):  # a company-wide meeting: everyone signs in within one second
        rec = sign_in(rng, second, i % 97)
        burst.append(rec)
        if rng.random() < 0.3:
            burst.append(dict(rec))
    w.sim.add_records(burst, late_by=0, stream=STREAM)
    since = START - timedelta(days=2)
    assert w.run("--backfill-start", since.isoformat()) == 0, w.last_err
    w.clock.advance(3600)
    assert w.run() == 0, w.last_err
    w.verify(since, w.clock.now())


@pytest.mark.parametrize("seed", [8, 9])
def test_page_tokens_expire_between_pages(world: Any, seed: int) -> None:
    # a third of the pages take 100 s of the simulator's time, and page tokens live 90 s
    w = world(seed=seed, days=30, activities_per_day=200, page_token_ttl=90, slow_rate=0.3, slow_seconds=100)
    since = START - timedelta(days=25)
    w.run_until_complete("--backfill-start", since.isoformat(), "--max-runtime", "1h")
    w.verify(since, w.clock.now())
    requests = w.sim.stats()["requests"]
    assert requests["activities"].get("400", 0) > 0  # tokens did expire
    assert "logs" not in requests  # the operation logs were never asked for


def test_sigkill_at_random_moments(tmp_path: Path, concurrency: str) -> None:
    kill_at_random_moments(tmp_path, STREAM, concurrency, activities_per_day=800)


def test_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Print the numbers of every scenario above (pytest imports tests/test_chaos.py apart, with its own list)."""
    with capsys.disabled():
        for line in REPORT:
            print(f"\nchaos activities: {line}", end="")
        print()
