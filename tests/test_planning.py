"""The pure planning decisions: starting point, the windows and the days they share, refusals."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from zoom_oplog_shipper.planning import (
    Pace,
    Read,
    Refused,
    Slot,
    after_refusal,
    first_day,
    narrow,
    next_read,
    older_part,
    piece,
    plan_slot,
    starting_point,
    window_after,
)
from zoom_oplog_shipper.scan import Cursor
from zoom_oplog_shipper.state import Snapshot
from zoom_oplog_shipper.windows import UNKNOWN_OFFSET_LIMIT, Window, covered_until, shared_from, shared_until

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def snap(watermark: datetime | None = None, backfill: datetime | None = None, *, delivered: bool = True) -> Snapshot:
    floor = watermark and (backfill or watermark)
    return Snapshot(watermark, floor, False, delivered=delivered, backfill_start=backfill)


# -- starting point ---------------------------------------------------------------------------------


def test_a_first_run_without_a_backfill_start_starts_now() -> None:
    start = starting_point(snap(), None, NOW)
    assert (start.watermark, start.floor, start.fresh) == (NOW, NOW, True)
    assert "older records are not fetched" in start.notes[-1][1]


def test_a_first_run_with_a_backfill_start_backfills_from_it() -> None:
    since = NOW - 10 * DAY
    start = starting_point(snap(), since, NOW)
    assert (start.watermark, start.floor, start.fresh) == (since, since, True)
    assert start.notes == ((logging.INFO, "first run: backfilling from 2026-11-16T12:00:00.000Z"),)


@pytest.mark.parametrize("configured", [None, NOW - 10 * DAY])
def test_a_later_run_continues_from_the_stored_watermark(configured: datetime | None) -> None:
    stored = snap(NOW - DAY, NOW - 10 * DAY)
    start = starting_point(stored, configured, NOW)
    assert (start.watermark, start.floor, start.fresh, start.notes) == (NOW - DAY, NOW - 10 * DAY, False, ())


def test_a_new_backfill_start_replaces_the_stored_one_until_a_record_is_delivered() -> None:
    stored = snap(NOW - 10 * DAY, NOW - 10 * DAY, delivered=False)
    start = starting_point(stored, NOW - 20 * DAY, NOW)
    assert (start.watermark, start.fresh) == (NOW - 20 * DAY, True)
    assert "replaces the stored one" in start.notes[0][1]


def test_a_new_backfill_start_after_delivery_is_ignored_and_names_state_rewind() -> None:
    stored = snap(NOW - DAY, datetime(2026, 11, 10, tzinfo=UTC))
    start = starting_point(stored, datetime(2026, 11, 1, tzinfo=UTC), NOW)
    assert (start.watermark, start.fresh) == (NOW - DAY, False)
    [(level, text)] = start.notes
    assert level == logging.WARNING and "state rewind --to 2026-11-01 --yes" in text


def test_two_starts_both_past_retention_are_the_same_start() -> None:
    stored = snap(NOW - DAY, datetime(2026, 5, 1, tzinfo=UTC))
    assert starting_point(stored, datetime(2026, 4, 1, tzinfo=UTC), NOW).notes == ()


def test_the_first_day_is_a_day_before_the_lookback_and_never_past_retention() -> None:
    assert first_day(NOW, DAY, NOW.date(), stored=True) == (date(2026, 11, 24), None)
    old = datetime(2026, 5, 1, tzinfo=UTC)
    day, note = first_day(old, DAY, NOW.date(), stored=True)
    assert day == date(2026, 5, 28) and note is not None and "older than Zoom keeps" in note[1]
    assert first_day(old, DAY, NOW.date(), stored=False) == (date(2026, 5, 28), None)


# -- windows --------------------------------------------------------------------------------------------

END = date(2026, 11, 27)


@pytest.mark.parametrize(
    ("to_inclusive", "at_once", "before", "after"),
    [
        (False, False, True, False),  # one at a time: the next window checks the shared day
        (False, True, True, True),  # at once: both windows check it
        (True, True, False, False),  # an inclusive `to`: no shared day
    ],
)
def test_a_slot_checks_the_days_it_shares(to_inclusive: bool, at_once: bool, before: bool, after: bool) -> None:
    previous = Slot(Window(date(2026, 10, 1), date(2026, 10, 28)))
    window = Window(date(2026, 10, 28), date(2026, 11, 24))
    slot = plan_slot(window, previous, at_once=at_once, to_inclusive=to_inclusive, end=END)
    assert slot.recheck_before == (shared_until(window) if before else None)
    assert slot.recheck_from == (shared_from(window) if after else None)
    assert slot.shares_days() == (before or after)


def test_a_slot_checks_untimed_records_and_those_on_shared_days_only() -> None:
    window = Window(date(2026, 10, 28), date(2026, 11, 24))
    slot = plan_slot(window, Slot(Window(date(2026, 10, 1), date(2026, 10, 28))), at_once=True, to_inclusive=False,
                     end=END)  # fmt: skip
    middle = datetime(2026, 11, 10, tzinfo=UTC)
    assert slot.may_share(None) and not slot.may_share(middle)
    assert slot.may_share(shared_until(window) - timedelta(seconds=1)) and slot.may_share(shared_from(window))


def test_the_window_after_follows_what_was_read_and_stops_at_the_end() -> None:
    slot = Slot(Window(date(2026, 10, 1), date(2026, 10, 28)))
    assert window_after(slot, to_inclusive=True, end=END) == Window(date(2026, 10, 29), date(2026, 11, 25))
    assert window_after(slot, to_inclusive=False, end=END) == Window(date(2026, 10, 28), date(2026, 11, 24))
    slot.read = Window(date(2026, 10, 1), END)
    assert window_after(slot, to_inclusive=True, end=END) is None
    assert window_after(Slot(slot.window, unservable=True), to_inclusive=True, end=END) is None


@pytest.mark.parametrize(
    ("direction", "to_inclusive", "expected"),
    [
        (-1, True, Window(date(2026, 11, 1), date(2026, 11, 11))),  # newest first: `to` moves back
        (-1, False, Window(date(2026, 11, 1), date(2026, 11, 12))),
        (1, True, Window(date(2026, 11, 10), date(2026, 11, 20))),  # oldest first: `from` moves forward
        (0, True, Window(date(2026, 11, 1), date(2026, 11, 20))),
    ],
)
def test_narrowing_after_a_page_in_time_order(direction: int, to_inclusive: bool, expected: Window) -> None:
    query = Window(date(2026, 11, 1), date(2026, 11, 20))
    at = datetime(2026, 11, 10, 12, tzinfo=UTC)
    cursor = Cursor(direction=direction, oldest=at, newest=at)
    assert narrow(query, cursor, ordered=True, to_inclusive=to_inclusive) == expected
    assert narrow(query, cursor, ordered=False, to_inclusive=to_inclusive) == query


# -- refusals -------------------------------------------------------------------------------------------


def refusal(query: Window, text: str = "The to date cannot be in the future.", shifts: int = 0,
            end: date | None = None) -> Refused | None:  # fmt: skip
    return after_refusal(query, text, end=end or query.end, today=NOW.date(), now=NOW,
                         offset_limit=UNKNOWN_OFFSET_LIMIT, to_inclusive=False, shifts=shifts)  # fmt: skip


def test_a_refused_to_after_the_apis_today_teaches_an_earlier_end() -> None:
    refused = refusal(Window(date(2026, 11, 1), date(2026, 11, 27)))
    assert refused is not None
    # Zoom's day had not reached 11-27 at 12:00 UTC: it is less than 12 h ahead of UTC
    assert refused.offset_limit == timedelta(hours=12)
    assert refused.end == date(2026, 11, 26) and refused.query == Window(date(2026, 11, 1), date(2026, 11, 26))


def test_a_refused_window_wholly_after_the_apis_today_is_not_asked_for() -> None:
    refused = refusal(Window(date(2026, 11, 28), date(2026, 11, 28)))
    assert refused is not None and refused.query is None


def test_a_refused_old_start_moves_a_day_later_three_times_at_most() -> None:
    old = Window(date(2026, 5, 20), date(2026, 6, 16))
    text = "Daily report can only be provided within 6 months prior to the current date."
    refused = refusal(old, text, end=END)
    assert refused is not None and refused.query == Window(date(2026, 5, 21), date(2026, 6, 16))
    assert refusal(old, text, shifts=3, end=END) is None


def test_any_other_refusal_teaches_nothing() -> None:
    assert refusal(Window(date(2026, 11, 1), date(2026, 11, 20)), "Invalid field", end=END) is None


# -- splitting the work (issue 18) -------------------------------------------------------------------------

#: 240 records a day and 0.4 s an answer, the density and round trip of issue 18.
PACE = {"per_day": 240.0, "round_trip": 0.4}


def pace(max_rps: float, workers: int) -> Pace:
    return Pace(PACE["per_day"], PACE["round_trip"], max_rps, workers)


def reading(start: date, end: date, reach: datetime | None) -> Slot:
    """A window being read newest first, its oldest record so far at ``reach``."""
    slot = Slot(Window(start, end))
    if reach is not None:
        slot.remaining, slot.reach, slot.newest_first = Window(start, (reach + timedelta(hours=14)).date()), reach, True
    return slot


@pytest.mark.parametrize(
    ("chains", "queued", "max_rps", "workers", "seconds"),
    [
        ([10.0], [], 5.0, 3, 4.0),  # one chain: a page per round trip
        ([10.0, 10.0, 10.0], [], 5.0, 3, 6.0),  # three chains share 5 requests a second
        ([19.0, 17.0], [], 5.0, 3, 7.6),  # two chains use 5 a second, each a page per round trip
        ([10.0], [10.0], 0.0, 1, 8.0),  # one reader: the queued chain waits
    ],
)
def test_the_makespan_shares_the_rate_limit_and_waits_for_idle_readers(
    chains: list[float], queued: list[float], max_rps: float, workers: int, seconds: float
) -> None:
    assert pace(max_rps, workers).makespan(chains, queued) == pytest.approx(seconds)


def test_nothing_is_split_before_the_density_and_the_round_trip_are_known_or_with_one_reader() -> None:
    upcoming = Window(date(2026, 6, 1), date(2026, 6, 28))
    for unknown in (Pace(None, 0.4, 20.0, 10), Pace(240.0, 0.0, 20.0, 10), pace(20.0, 1)):
        read = next_read(unknown, [], upcoming, END, read=0, spent=0, to_inclusive=True)
        assert read == Read(upcoming)


def test_a_long_first_window_is_cut_when_its_chain_would_bound_the_run() -> None:
    """150 days at --max-rps 20: the first window's 22 pages, one per round trip, would take 9 s; the
    rate limit lets the whole history through in about 6 s."""
    first = reading(date(2026, 7, 4), date(2026, 7, 31), datetime(2026, 7, 30, 18, tzinfo=UTC))
    p = pace(20.0, 10)
    upcoming = Window(date(2026, 8, 1), date(2026, 8, 28))
    read = next_read(p, [piece(first, p)], upcoming, date(2026, 12, 6), read=1, spent=0,
                     to_inclusive=True)  # fmt: skip
    assert read is not None and read.victim is first and read.cost > 1
    assert read.window.start == first.window.start and read.window.end < date(2026, 7, 25)


def test_nothing_is_cut_when_the_chains_already_use_the_rate_limit() -> None:
    """45 days at --max-rps 5: two windows of ~19 and ~17 pages already make 5 requests a second; a
    third reader would only slow the longest down."""
    first = reading(date(2026, 10, 17), date(2026, 11, 13), datetime(2026, 11, 12, 18, tzinfo=UTC))
    p = pace(5.0, 3)
    upcoming = Window(date(2026, 11, 14), date(2026, 12, 6))
    read = next_read(p, [piece(first, p)], upcoming, date(2026, 12, 6), read=1, spent=0,
                     to_inclusive=True)  # fmt: skip
    assert read == Read(upcoming)


def test_the_days_not_planned_yet_are_split_into_equal_windows_within_the_budget() -> None:
    p = pace(20.0, 10)
    upcoming = Window(date(2026, 8, 1), date(2026, 8, 28))
    read = next_read(p, [], upcoming, date(2026, 12, 6), read=0, spent=0, to_inclusive=True)
    assert read is not None and read.victim is None and read.window.start == upcoming.start
    days = (read.window.end - read.window.start).days + 1
    assert 7 <= days < 28  # 128 days in about ten windows, not five of 28
    broke = next_read(p, [], upcoming, date(2026, 12, 6), read=0, spent=100, to_inclusive=True)
    assert broke is not None and (broke.window.end - broke.window.start).days + 1 == 26  # 128 days in five


def test_a_window_cut_off_ends_a_day_before_the_last_day_the_readers_oldest_record_can_fall_on() -> None:
    reach = datetime(2026, 7, 10, 9, tzinfo=UTC)  # its API day may be 07-10 (UTC+14 at most: 23:00)
    start = date(2026, 7, 4)
    assert older_part(start, reach, 0.5, to_inclusive=True) == Window(start, date(2026, 7, 6))
    assert older_part(start, reach, 0.8, to_inclusive=True) == Window(start, date(2026, 7, 8))
    assert older_part(start, reach, 1.0, to_inclusive=True) == Window(start, date(2026, 7, 9))  # not 07-10
    assert older_part(start, reach, 0.5, to_inclusive=False) == Window(start, date(2026, 7, 7))  # `to` not read
    assert older_part(start, datetime(2026, 7, 4, 8, tzinfo=UTC), 0.5, to_inclusive=True) is None
    assert older_part(start, datetime(2026, 7, 5, 8, tzinfo=UTC), 0.5, to_inclusive=False) is None


def test_the_days_left_may_be_split_into_one_readers_share_each_with_the_rest_last() -> None:
    """90 days at --max-rps 10 (5 readers): ~74 pages, ~15 a reader. The first window's 22 pages are
    cut so that it keeps about one share, and the days after it go in windows of about one share."""
    first = reading(date(2026, 9, 2), date(2026, 9, 29), datetime(2026, 9, 28, 18, tzinfo=UTC))
    p = pace(10.0, 5)
    pieces = [piece(first, p)]
    cut = next_read(p, pieces, Window(date(2026, 9, 30), date(2026, 10, 27)), date(2026, 12, 6), read=1, spent=0,
                    to_inclusive=True)  # fmt: skip
    assert cut is not None and cut.victim is first and cut.window.end < date(2026, 9, 16)
    # with the cut made (its cost spent), the next window is about one reader's share of days
    first.cut_end, first.floor = cut.window.end, covered_until(cut.window, True)
    pieces = [piece(first, p), piece(Slot(cut.window), p)]
    then = next_read(p, pieces, Window(date(2026, 9, 30), date(2026, 10, 27)), date(2026, 12, 6), read=1,
                     spent=cut.cost, to_inclusive=True)  # fmt: skip
    assert then is not None and then.victim is None and 14 <= (then.window.end - then.window.start).days + 1 <= 20
