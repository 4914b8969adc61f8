"""Chaos suite for `run --stream activities`: the operation logs' guarantees, proven for the second stream.

The same property as tests/test_chaos.py, measured the same way (tests/chaos.py: its `World`, its
scenarios and its SIGKILL loop): the multiset of sign-in/sign-out records the simulator holds in the
collected range equals the multiset printed across all runs, no duplicate `event.id` unless a run was
killed, at most one page per kill. Every world also holds operation logs, so a run that strayed into
the other report shows up as extra.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import chaos
import pytest

pytestmark = chaos.MARKS

STREAM = "activities"
CLIENTS = ("Windows", "Mac", "mac", "iOS", "Android", "Browser", "Linux", "windows")


world = chaos.world_fixture(STREAM, records_per_day=10)


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


def add_recent(w: chaos.World, rng: random.Random, count: int, span: timedelta, late_by: float | None = None) -> None:
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
    for i, tz in enumerate(chaos.TZS)
    for order, future_to in (("newest", ("accept", "reject")[i % 2]), ("oldest", ("reject", "accept")[i % 2]))
]


@pytest.mark.parametrize(("order", "tz", "future_to"), SWITCHES)
def test_backfill_then_hourly(world: chaos.MakeWorld, order: str, tz: int, future_to: str) -> None:
    w = world(seed=tz % 7, days=120, activities_per_day=30, order=order, tz_offset_minutes=tz, future_to=future_to)
    chaos.backfill_then_hourly(w, tz, add_recent)
    assert {d["event"]["dataset"] for d in w.docs} == {"zoom.activity"}


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("seed", [3, 4])
def test_hourly_runs_with_late_records(world: chaos.MakeWorld, seed: int, order: str) -> None:
    w = world(seed=seed, days=3, activities_per_day=400, late_fraction=0.3, late_by=5 * 3600, order=order)
    chaos.hourly_runs_with_late_records(w, seed, add_recent)


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("seed", [6, 7])
def test_same_second_bursts_and_twins_across_page_edges(world: chaos.MakeWorld, seed: int, order: str) -> None:
    # a company-wide meeting: everyone signs in within one second
    chaos.burst_across_page_edges(world(seed=seed, days=2, activities_per_day=100, order=order), seed,
                                  lambda rng, time, i: sign_in(rng, time, i % 97))  # fmt: skip


@pytest.mark.parametrize("seed", [8, 9])
def test_page_tokens_expire_between_pages(world: chaos.MakeWorld, seed: int) -> None:
    # a third of the pages take 100 s of the simulator's time, and page tokens live 90 s
    w = world(seed=seed, days=30, activities_per_day=200, page_token_ttl=90, slow_rate=0.3, slow_seconds=100)
    w.verify(w.backfill(25, "--max-runtime", "1h"), w.clock.now())
    requests = w.sim.stats()["requests"]
    assert requests["activities"].get("400", 0) > 0  # tokens did expire
    assert "logs" not in requests  # the operation logs were never asked for


def test_sigkill_at_random_moments(tmp_path: Path, concurrency: str) -> None:
    chaos.kill_at_random_moments(tmp_path, STREAM, concurrency, activities_per_day=800)


def test_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Print the numbers of every scenario above."""
    with capsys.disabled():
        chaos.print_report(STREAM, "chaos activities")
