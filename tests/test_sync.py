"""The sync engine against the pytest-httpserver Zoom double: every loss and duplicate scenario."""

from __future__ import annotations

import io
import math
import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import NOW, FakeClock, FakeZoom, make_config, record

from zoom_oplog_shipper.errors import ApiError, ConfigError, DailyLimitError
from zoom_oplog_shipper.output import PageWriter, make_encoder, make_formatter
from zoom_oplog_shipper.pipeline import engine_options
from zoom_oplog_shipper.state import StateStore, state_file
from zoom_oplog_shipper.streams import OPERATIONS
from zoom_oplog_shipper.summary import RunSummary
from zoom_oplog_shipper.sync import SyncEngine
from zoom_oplog_shipper.zoom_client import ZoomClient


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Harness:
    """Runs the engine in-process the way the CLI does, collecting every line ever printed."""

    def __init__(self, tmp_path: Path, zoom: FakeZoom, clock: FakeClock, **overrides: Any) -> None:
        self.tmp_path, self.zoom, self.clock = tmp_path, zoom, clock
        self.overrides = overrides
        self.lines: list[dict[str, Any]] = []

    def run(self, writer: PageWriter | None = None, should_stop: Any = None, **overrides: Any) -> RunSummary:
        cfg = make_config(self.tmp_path, self.zoom.base, **{**self.overrides, **overrides})
        out = io.BytesIO()
        store = StateStore.open(state_file(cfg.state_dir, cfg.account_id, cfg.category_type), cfg.account_id, "all")
        client = ZoomClient(cfg, clock=self.clock, rng=random.Random(3))
        engine = SyncEngine(
            engine_options(cfg),
            client.reader(OPERATIONS),
            store,
            writer or PageWriter(out),
            make_formatter(cfg.output_format, cfg.account_id, cfg.include_original),
            make_encoder(cfg.max_line_bytes, cfg.output_format),
            self.clock,
            should_stop or (lambda: False),
        )
        try:
            return engine.run()
        finally:
            store.close()
            self.lines += [orjson.loads(line) for line in out.getvalue().splitlines()]
            self.last_store_path = store.path

    def ids(self) -> Counter[str]:
        return Counter(doc["event"]["id"] for doc in self.lines)

    def details(self) -> Counter[str]:
        return Counter(doc.get("message", "") for doc in self.lines)


def spread(start: datetime, count: int, step: timedelta, prefix: str = "rec") -> list[dict[str, Any]]:
    return [record(iso(start + i * step), f"{prefix} {i}") for i in range(count)]


@pytest.fixture
def h(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> Harness:
    return Harness(tmp_path, zoom, clock)


def test_first_run_without_backfill_starts_now(h: Harness) -> None:
    h.zoom.records = spread(NOW - timedelta(hours=5), 10, timedelta(minutes=10))
    summary = h.run()
    assert summary.emitted == 0 and summary.outcome == "complete"
    assert summary.watermark == "2026-11-26T12:00:00.000Z"
    h.clock.advance(3600)
    h.zoom.records.append(record(iso(NOW + timedelta(minutes=5)), "new"))
    assert h.run().emitted == 1
    assert list(h.details()) == ["new"]


def test_backfill_multi_window_multi_page_then_nothing(h: Harness) -> None:
    start = NOW - timedelta(days=70)
    h.zoom.records = spread(start, 2000, timedelta(minutes=50))
    summary = h.run(backfill_start=start)
    assert summary.emitted == 2000
    assert summary.windows >= 3
    assert summary.pages >= math.ceil(2000 / 300)
    assert set(h.ids().values()) == {1}
    # the day boundaries were learned to be inclusive, so windows after the first do not overlap
    assert h.run().emitted == 0
    assert len(h.lines) == 2000


def test_incremental_new_and_late_records(h: Harness) -> None:
    h.zoom.records = spread(NOW - timedelta(hours=3), 5, timedelta(minutes=30))
    h.run(backfill_start=NOW - timedelta(days=1))
    assert len(h.lines) == 5
    h.clock.advance(3600)
    h.zoom.records.append(record(iso(NOW + timedelta(minutes=30)), "new"))
    h.zoom.records.append(record(iso(NOW - timedelta(hours=10)), "late but within lookback"))
    h.zoom.records.append(record(iso(NOW - timedelta(hours=30)), "later than the lookback"))
    assert h.run().emitted == 2
    assert h.details()["new"] == 1 and h.details()["late but within lookback"] == 1
    assert h.details()["later than the lookback"] == 0


def test_identical_twins_are_both_kept_and_never_resent(h: Harness) -> None:
    twin = record(iso(NOW - timedelta(hours=1)), "Batch Update twin")
    h.zoom.records = [twin, dict(twin), record(iso(NOW - timedelta(hours=2)), "other")]
    h.run(backfill_start=NOW - timedelta(days=1))
    assert h.details()["Batch Update twin"] == 2
    assert len(h.ids()) == 3
    h.clock.advance(3600)
    assert h.run().emitted == 0


def test_same_second_records_across_a_page_edge(h: Harness) -> None:
    second = iso(NOW - timedelta(hours=2))
    same = [record(second, f"burst {i % 200}") for i in range(450)]  # 250 identical pairs across pages
    h.zoom.records = same
    h.run(backfill_start=NOW - timedelta(days=1))
    assert len(h.lines) == 450 and len(h.ids()) == 450
    h.clock.advance(3600)
    assert h.run().emitted == 0


class DyingWriter(PageWriter):
    """Dies (as SIGKILL would) on page ``pages``, after writing ``share`` of it and before any commit."""

    def __init__(self, out: io.BytesIO, pages: int, share: float = 1.0) -> None:
        super().__init__(out)
        self.pages = pages
        self.share = share

    def write_page(self, lines: list[bytes]) -> None:
        self.pages -= 1
        if self.pages == 0:
            super().write_page(lines[: int(len(lines) * self.share)])
            raise KeyboardInterrupt("killed before the page was committed")
        super().write_page(lines)


def test_kill_between_output_and_commit_loses_nothing(h: Harness) -> None:
    start = NOW - timedelta(days=2)
    h.zoom.records = spread(start, 1000, timedelta(minutes=2))
    out = io.BytesIO()
    with pytest.raises(KeyboardInterrupt):
        h.run(writer=DyingWriter(out, pages=2), backfill_start=start)
    h.lines += [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert len(h.lines) == 600
    h.run()
    counts = h.ids()
    assert len(counts) == 1000  # nothing lost
    assert sum(counts.values()) - len(counts) <= 300  # at most the uncommitted page again


def test_kill_during_output_loses_nothing(h: Harness, tmp_path: Path) -> None:
    start = NOW - timedelta(days=2)
    h.zoom.records = spread(start, 1000, timedelta(minutes=2))
    out = io.BytesIO()
    with pytest.raises(KeyboardInterrupt):
        h.run(writer=DyingWriter(out, pages=3, share=0.5), backfill_start=start)
    h.lines += [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert len(h.lines) == 750
    h.run()
    counts = h.ids()
    assert len(counts) == 1000
    assert sum(counts.values()) - len(counts) == 150  # the half page that was out is sent again


def test_page_token_expiry_resumes_from_where_the_window_stands(h: Harness) -> None:
    h.zoom.records = spread(NOW - timedelta(days=20), 3000, timedelta(minutes=9))
    h.zoom.fail_at(4, 400, {"code": 300, "message": "The next page token is invalid or expired."})
    assert h.run(backfill_start=NOW - timedelta(days=21)).emitted == 3000
    restart = h.zoom.requests[4]
    assert "next_page_token" not in restart and restart["to"] < h.zoom.requests[0]["to"]


def test_expired_page_token_restarts_the_window(h: Harness) -> None:
    h.zoom.records = spread(NOW - timedelta(days=1), 900, timedelta(minutes=1))
    h.zoom.fail_at(2, 400, {"code": 300, "message": "The next page token is invalid or expired."})
    summary = h.run(backfill_start=NOW - timedelta(days=2))
    assert summary.emitted == 900 and set(h.ids().values()) == {1}
    assert "next_page_token" in h.zoom.requests[1] and "next_page_token" not in h.zoom.requests[2]  # restarted


def test_token_expiry_mid_run(h: Harness) -> None:
    h.zoom.records = spread(NOW - timedelta(days=1), 900, timedelta(minutes=1))

    done: list[bool] = []

    def revoke(args: dict[str, str]) -> None:
        if args.get("next_page_token") == "300" and not done:
            done.append(True)
            h.zoom.valid_tokens.clear()

    h.zoom.on_page = revoke
    assert h.run(backfill_start=NOW - timedelta(days=2)).emitted == 900
    assert h.zoom.token_requests == 2


def assert_progress_kept(h: Harness, error: type[Exception], kept: int, match: str | None = None) -> None:
    """A backfill of 900 records (three pages) that fails with ``error`` has printed ``kept`` lines;
    the next run prints the rest, each record once."""
    start = NOW - timedelta(days=2)
    h.zoom.records = spread(start, 900, timedelta(minutes=3))
    with pytest.raises(error, match=match):
        h.run(backfill_start=start)
    assert len(h.lines) == kept
    h.run()
    assert len(h.ids()) == 900 and set(h.ids().values()) == {1}


def test_daily_limit_keeps_progress(h: Harness) -> None:
    h.zoom.fail_at(
        3,
        429,
        {"code": 429, "message": "You have reached the maximum daily rate limit for this API."},
        {"X-RateLimit-Type": "Daily-limit", "Retry-After": "2026-11-27T00:00:00Z"},
    )
    assert_progress_kept(h, DailyLimitError, kept=600)


def test_persistent_500s_fail_with_progress_kept(h: Harness) -> None:
    h.zoom.fail_at(2, 500, {"code": 500, "message": "Internal Error"}, times=6)
    assert_progress_kept(h, ApiError, kept=300, match="progress is kept")


def test_max_runtime_cuts_a_backfill_into_runs(h: Harness) -> None:
    start = NOW - timedelta(days=80)
    h.zoom.records = spread(start, 3000, timedelta(minutes=30))
    h.zoom.on_page = lambda args: h.clock.advance(10)  # every page takes 10 s
    outcomes = []
    for _ in range(40):
        summary = h.run(backfill_start=start, max_runtime=timedelta(seconds=35))
        outcomes.append(summary.outcome)
        if summary.outcome == "complete":
            break
    assert outcomes[0] == "stopped at --max-runtime" and outcomes[-1] == "complete"
    assert len(h.ids()) == 3000 and set(h.ids().values()) == {1}


def test_signal_stops_after_the_current_page(h: Harness) -> None:
    start = NOW - timedelta(days=2)
    h.zoom.records = spread(start, 900, timedelta(minutes=3))
    stop = {"now": False}

    def stop_after_first(args: dict[str, str]) -> None:
        stop["now"] = True

    h.zoom.on_page = stop_after_first
    summary = h.run(backfill_start=start, should_stop=lambda: stop["now"])
    assert summary.outcome == "stopped by signal" and summary.emitted == 300
    h.zoom.on_page = None
    h.run()
    assert len(h.ids()) == 900 and set(h.ids().values()) == {1}


def test_newest_first_incremental_run_stops_early(h: Harness) -> None:
    # 5,000 records a day for three days; the lookback (24 h) holds about 5,000 of them
    h.zoom.records = spread(NOW - timedelta(days=3), 15000, timedelta(seconds=17))
    h.run(backfill_start=NOW - timedelta(hours=1))
    h.clock.advance(3600)
    before = len(h.zoom.requests)
    summary = h.run()
    in_lookback = sum(1 for r in h.zoom.records if r["time"] >= iso(NOW + timedelta(hours=1) - timedelta(hours=24)))
    used = len(h.zoom.requests) - before
    assert summary.emitted == 0
    assert used <= math.ceil(in_lookback / 300) + 1, (used, in_lookback)


def test_oldest_first_api_is_read_in_full(h: Harness) -> None:
    h.zoom.newest_first = False
    twin = record(iso(NOW - timedelta(hours=20)), "twin")
    h.zoom.records = [*spread(NOW - timedelta(days=3), 1200, timedelta(minutes=3)), twin, dict(twin)]
    h.run(backfill_start=NOW - timedelta(days=3))
    assert len(h.ids()) == 1202 and set(h.ids().values()) == {1}
    h.clock.advance(3600)
    assert h.run().emitted == 0


def test_record_without_time_is_emitted_once_and_tagged(h: Harness) -> None:
    h.zoom.records = [{"operator": "a@b.io", "operation_detail": "no time"}, record(iso(NOW - timedelta(hours=1)))]
    summary = h.run(backfill_start=NOW - timedelta(days=1))
    assert summary.emitted == 2 and summary.untimed == 1
    untimed = next(d for d in h.lines if d.get("message") == "no time")
    assert "zoom_time_unparsable" in untimed["tags"]
    h.clock.advance(3600)
    assert h.run().emitted == 0


def test_future_to_rejected_is_learned(h: Harness) -> None:
    """An API that refuses `to` days after its own today: learn where its day ends, lose nothing.

    Each refusal narrows what is known of the API's day; after a day of hourly runs no run is
    refused any more and each costs one request.
    """
    h.zoom.reject_future_to_after = NOW.date().isoformat()
    h.zoom.records = [record(iso(NOW - timedelta(minutes=30)), "first")]
    h.run(backfill_start=NOW - timedelta(days=1))
    costs = []
    for hour in range(1, 40):
        h.clock.advance(3600)
        now = NOW + timedelta(hours=hour)
        h.zoom.reject_future_to_after = now.date().isoformat()
        h.zoom.records.append(record(iso(now - timedelta(minutes=20)), f"hour {hour}"))
        before = len(h.zoom.requests)
        assert h.run().emitted == 1
        costs.append(len(h.zoom.requests) - before)
    assert len(h.lines) == 40 and set(h.ids().values()) == {1}
    assert max(costs) <= 3 and costs[-12:] == [1] * 12, costs


def test_category_refused_by_zoom(h: Harness) -> None:
    h.zoom.fail(400, {"code": 300, "message": "Invalid field: category_type"})
    with pytest.raises(ConfigError, match="Zoom documents: all, user"):
        h.run(category_type="admin")


def test_retention_refusal_moves_start(h: Harness) -> None:
    h.zoom.fail(
        400, {"code": 300, "message": "Daily report can only be provided within 6 months prior to the current date."}
    )
    h.zoom.records = [record(iso(NOW - timedelta(days=150)), "old but served")]
    summary = h.run(backfill_start=NOW - timedelta(days=200))
    assert summary.emitted == 1
    assert h.zoom.requests[1]["from"] > h.zoom.requests[0]["from"]


def test_include_original_and_raw_format(h: Harness) -> None:
    h.zoom.records = [record(iso(NOW - timedelta(hours=1)), "x")]
    h.run(backfill_start=NOW - timedelta(days=1), output_format="raw")
    assert h.lines[0]["record"] == h.zoom.records[0]
    assert len(h.lines[0]["event"]["id"]) == 32


def test_state_stays_small(h: Harness) -> None:
    start = NOW - timedelta(days=60)
    h.zoom.records = spread(start, 3000, timedelta(minutes=28))
    h.run(backfill_start=start)
    store = StateStore.open(h.last_store_path, "acct-1", "all")
    kept = store.describe()["fingerprints"]
    store.close()
    # only the fingerprints inside the lookback (plus time-zone margin) are kept
    assert kept < 200, kept


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_last_window_the_api_cannot_serve_yet_ends_the_run(h: Harness, concurrency: int) -> None:
    """Windows line up so the last one starts after the API's today: it is refused, and nothing is
    asked for after it (neither a window from its placeholder days nor a repeat)."""
    start = datetime(2026, 10, 4, tzinfo=UTC)  # the first window: 10-02..10-29, then 10-30..11-26, 11-27..
    h.zoom.reject_future_to_after = NOW.date().isoformat()
    h.zoom.records = spread(start, 1500, timedelta(minutes=50))
    summary = h.run(backfill_start=start, concurrency=concurrency)
    asked = sorted(r["from"] for r in h.zoom.requests if "from" in r)
    assert asked[0] >= "2026-10-02", asked[:3]
    assert summary.emitted == sum(1 for r in h.zoom.records if r["time"] < iso(NOW))
    assert summary.outcome == "complete" and set(h.ids().values()) == {1}


@pytest.mark.parametrize(("backfill_days", "concurrency", "threads"), [(0, 3, False), (70, 1, False), (70, 3, True)])
def test_window_reader_threads_only_for_a_backfill_of_several_windows_at_once(
    h: Harness, backfill_days: int, concurrency: int, threads: bool
) -> None:
    """An hourly run reads one window, and `--concurrency 1` one window at a time: in the calling thread."""
    h.zoom.records = spread(NOW - timedelta(days=70), 2000, timedelta(minutes=50))
    if not backfill_days:  # a first run, then the hourly one
        h.run(backfill_start=NOW - timedelta(days=1))
        h.clock.advance(3600)
    names: set[str] = set()
    h.zoom.on_page = lambda args: names.update(t.name for t in threading.enumerate())
    h.run(backfill_start=NOW - timedelta(days=backfill_days or 1), concurrency=concurrency)
    assert any(name.startswith("zoom-window") for name in names) == threads


def cuts(requests: list[dict[str, str]]) -> list[tuple[str, str]]:
    """The windows cut off another one (same first day, an earlier last day) among ``requests``."""
    windows = {(r["from"], r["to"]) for r in requests if "next_page_token" not in r}
    return [w for w in windows if any(o[0] == w[0] and o[1] > w[1] for o in windows)]


@pytest.fixture
def slow(h: Harness) -> Harness:
    """Zoom answering in 0.4 s (of the fake clock): enough for splitting the work to pay."""
    h.zoom.on_page = lambda args: h.clock.advance(0.4)
    return h


def test_a_backfill_split_among_readers_sends_every_record_once_within_5_percent_more_requests(
    slow: Harness, tmp_path: Path, zoom: FakeZoom, clock: FakeClock
) -> None:
    start = NOW - timedelta(days=60)
    slow.zoom.records = spread(start, 12_000, timedelta(minutes=7.2))
    summary = slow.run(backfill_start=start, concurrency=5)
    assert summary.emitted == 12_000 and set(slow.ids().values()) == {1}
    assert cuts(slow.zoom.requests)  # a window was cut in two: both parts start on the same day
    alone = Harness(tmp_path / "alone", zoom, clock)
    before = len(zoom.requests)
    alone.run(backfill_start=start, concurrency=1)
    one_at_a_time = len(zoom.requests) - before
    assert summary.requests <= 1.05 * one_at_a_time, (summary.requests, one_at_a_time)
    assert slow.run().emitted == 0


@pytest.mark.parametrize("page", [2, 6, 12, 20, 30])
def test_a_kill_while_the_work_is_split_re_sends_at_most_the_page_in_flight(slow: Harness, page: int) -> None:
    start = NOW - timedelta(days=60)
    slow.zoom.records = spread(start, 12_000, timedelta(minutes=7.2))
    out = io.BytesIO()
    with pytest.raises(KeyboardInterrupt):
        slow.run(writer=DyingWriter(out, pages=page), backfill_start=start, concurrency=5)
    assert cuts(slow.zoom.requests)
    slow.lines += [orjson.loads(line) for line in out.getvalue().splitlines()]
    slow.run(concurrency=5)
    counts = slow.ids()
    assert len(counts) == 12_000  # nothing lost
    assert sum(counts.values()) - len(counts) <= 300  # the page that was out but not committed
