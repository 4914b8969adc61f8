"""`state rewind` end to end against the simulator: what is sent again, and with which event.id."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import FakeClock, simulator_env

from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.simulator import RunningServer, Simulator, SimulatorConfig, serve_in_thread

START = datetime(2026, 11, 26, 9, 17, 23, tzinfo=UTC)


class Shipper:
    """In-process CLI runs against a simulator that shares their fake clock."""

    def __init__(self, tmp_path: Path, **sim: Any) -> None:
        self.clock = FakeClock(START)
        config = SimulatorConfig(account_id="rw-acct", client_id="rw-client", client_secret="rw-secret", **sim)
        self.sim = Simulator(config, now=self.clock.now, sleep=self.clock.sleep)
        self.server: RunningServer = serve_in_thread(self.sim)
        self.env = simulator_env(self.sim, self.server.base_url, tmp_path)

    def cli(self, *argv: str) -> tuple[int, list[dict[str, Any]], str]:
        out, err = io.BytesIO(), io.StringIO()
        code = main(list(argv), env=self.env, stdout=out, stderr=err, clock=self.clock)
        return code, [orjson.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


@pytest.fixture
def shipper(tmp_path: Path) -> Iterator[Shipper]:
    s = Shipper(tmp_path, seed=11, days=40, records_per_day=40, order="newest")
    yield s
    s.server.shutdown()


def stamp(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("to", "since"),
    [
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-25T18:30:00Z", datetime(2026, 11, 25, 18, 30, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
    ],
)
def test_rewind_resends_exactly_the_records_since_the_date_with_their_event_ids(
    shipper: Shipper, to: str, since: datetime
) -> None:
    code, first, err = shipper.cli("run", "--backfill-start", "2026-10-27")
    assert code == 0 and "complete:" in err, err
    assert len(first) > 1000
    shipper.clock.advance(3600)
    code, _, err = shipper.cli("run")
    assert code == 0, err

    code, out, err = shipper.cli("state", "rewind", "--to", to, "--yes")
    assert code == 0 and out == [], err
    assert "fingerprints removed:" in err and "->" in err

    code, again, err = shipper.cli("run")
    assert code == 0 and "complete:" in err, err
    expected = Counter(doc["event"]["id"] for doc in first if stamp(doc) >= since)
    assert Counter(doc["event"]["id"] for doc in again) == expected
    assert expected and min(stamp(doc) for doc in again) >= since
    # The same records, the same documents: only when the shipper read them differs.
    by_id = {doc["event"]["id"]: doc for doc in first}
    for doc in again:
        before = by_id[doc["event"]["id"]]
        assert {**doc, "event": {**doc["event"], "created": ""}} == {
            **before,
            "event": {**before["event"], "created": ""},
        }

    code, after, err = shipper.cli("run")
    assert code == 0 and after == [], err


def test_rewind_before_the_backfill_start_fetches_the_older_records_too(shipper: Shipper) -> None:
    code, first, err = shipper.cli("run", "--backfill-start", "2026-11-20")
    assert code == 0 and min(stamp(d) for d in first) >= datetime(2026, 11, 20, tzinfo=UTC), err
    assert shipper.cli("state", "rewind", "--to", "2026-11-10", "--yes")[0] == 0
    code, again, err = shipper.cli("run")
    assert code == 0, err
    since = datetime(2026, 11, 10, tzinfo=UTC)
    held = [r for r in shipper.sim.records(visible_only=True) if r["time"] >= "2026-11-10"]
    assert len(again) == len(held)
    assert min(stamp(d) for d in again) >= since
    first_ids = {d["event"]["id"] for d in first}
    assert {d["event"]["id"] for d in again if stamp(d) >= datetime(2026, 11, 20, tzinfo=UTC)} == first_ids
