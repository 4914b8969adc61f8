"""The pure page scanner: which records are new, what a page teaches, and the cursor it leaves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from zoom_oplog_shipper.records import canonical, fingerprint
from zoom_oplog_shipper.scan import Cursor, PageScan, render_page, scan_page

ACCOUNT = "acct"
CUTOFF = datetime(2026, 11, 20, tzinfo=UTC)


def rec(time: str | None, action: str = "Update") -> dict[str, Any]:
    record: dict[str, Any] = {"operator": "admin@example.com", "category_type": "User", "action": action}
    if time is not None:
        record["time"] = time
    return record


def scan(records: list[Any], cursor: Cursor | None = None, **kwargs: Any) -> PageScan:
    options: dict[str, Any] = {
        "account_id": ACCOUNT,
        "cutoff": CUTOFF,
        "seen": set(),
        "ordered": True,
        "inclusive_bound": None,
    }
    options.update(kwargs)
    return scan_page(records, cursor or Cursor(), **options)


def test_identical_records_in_one_second_get_distinct_fingerprints() -> None:
    same = rec("2026-11-21T10:00:00Z")
    result = scan([same, dict(same), dict(same)])
    fps = [fp for fp, _, _ in result.candidates]
    assert fps == [fingerprint(ACCOUNT, canonical(same), n) for n in range(3)]


def test_occurrences_continue_across_pages_within_the_same_second() -> None:
    same = rec("2026-11-21T10:00:00Z")
    first = scan([same])
    second = scan([dict(same)], first.cursor)
    assert second.candidates[0][0] == fingerprint(ACCOUNT, canonical(same), 1)


def test_the_input_cursor_is_left_unchanged() -> None:
    cursor = Cursor()
    scan([rec("2026-11-21T10:00:00Z")], cursor)
    assert cursor == Cursor()


@pytest.mark.parametrize(
    ("times", "expected_new"),
    [
        (["2026-11-21T10:00:00Z", "2026-11-19T23:59:59Z"], 1),  # the second is before the cutoff
        (["2026-11-20T00:00:00Z"], 1),  # at the cutoff counts
        ([None], 1),  # no time: always a candidate, tagged later
    ],
)
def test_records_before_the_cutoff_are_not_emitted(times: list[str | None], expected_new: int) -> None:
    assert len(scan([rec(t) for t in times]).candidates) == expected_new


def test_already_delivered_fingerprints_are_dropped() -> None:
    record = rec("2026-11-21T10:00:00Z")
    seen = {fingerprint(ACCOUNT, canonical(record), 0)}
    assert scan([record, rec("2026-11-21T09:00:00Z", "Add")], seen=seen).candidates[0][1]["action"] == "Add"


@pytest.mark.parametrize(
    ("times", "direction"),
    [
        (["2026-11-21T10:00:02Z", "2026-11-21T10:00:01Z"], -1),
        (["2026-11-21T10:00:01Z", "2026-11-21T10:00:02Z"], 1),
        (["2026-11-21T10:00:01Z", "2026-11-21T10:00:01Z"], 0),
    ],
)
def test_the_sort_order_is_learned(times: list[str], direction: int) -> None:
    assert scan([rec(t) for t in times]).cursor.direction == direction


def test_records_out_of_order_ask_for_a_full_read() -> None:
    times = ["2026-11-21T10:00:03Z", "2026-11-21T10:00:02Z", "2026-11-21T10:00:05Z"]
    result = scan([rec(t) for t in times])
    assert result.unordered and not result.candidates


def test_an_unordered_read_counts_occurrences_over_the_whole_window() -> None:
    same = rec("2026-11-21T10:00:00Z")
    times = [same, rec("2026-11-21T11:00:00Z"), dict(same)]
    result = scan(times, ordered=False)
    assert not result.unordered
    assert result.candidates[2][0] == fingerprint(ACCOUNT, canonical(same), 1)


def test_a_record_past_the_bound_proves_to_inclusive() -> None:
    bound = datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert scan([rec("2026-11-21T12:00:00Z")], inclusive_bound=bound).to_inclusive
    assert not scan([rec("2026-11-21T11:59:59Z")], inclusive_bound=bound).to_inclusive


@pytest.mark.parametrize(
    ("times", "done"),
    [
        (["2026-11-19T10:00:02Z", "2026-11-19T10:00:01Z"], True),  # newest first, all older than the cutoff
        (["2026-11-21T10:00:02Z", "2026-11-19T10:00:01Z"], False),  # part of the page is new
        (["2026-11-19T10:00:01Z", "2026-11-19T10:00:02Z"], False),  # oldest first: newer ones follow
    ],
)
def test_a_newest_first_page_entirely_before_the_cutoff_ends_the_window(times: list[str], done: bool) -> None:
    assert scan([rec(t) for t in times]).done is done


def test_entries_that_are_not_objects_are_reported_and_skipped() -> None:
    result = scan(["oops", rec("2026-11-21T10:00:00Z")])
    assert result.skipped == ["oops"] and len(result.candidates) == 1


def test_render_page_formats_encodes_and_keeps_the_store_entries() -> None:
    timed, untimed = rec("2026-11-21T10:00:00Z"), rec(None)
    result = scan([timed, untimed])
    page = render_page(
        result.candidates,
        lambda record, event_id, _t, created: {"id": event_id, "created": created, "a": record["action"]},
        lambda doc: repr(sorted(doc.items())).encode(),
        "2026-11-26T12:00:00.000Z",
        fallback_epoch=42,
    )
    assert len(page.lines) == 2 and b"2026-11-26T12:00:00.000Z" in page.lines[0]
    assert page.entries[0][1] == int(datetime(2026, 11, 21, 10, tzinfo=UTC).timestamp())
    assert page.entries[1][1] == 42
    assert page.untimed == [result.candidates[1][0].hex()]
