import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from zoom_oplog_shipper.windows import (
    MAX_WINDOW_DAYS,
    UNKNOWN_OFFSET_LIMIT,
    Window,
    covered_until,
    following_start,
    inclusive_bound,
    months_before,
    next_window,
    offset_limit_after_refusal,
    query_end,
    query_start,
    retention_floor,
    shared_from,
    shared_until,
)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 11, 26), 6, date(2026, 5, 26)),
        (date(2026, 8, 31), 6, date(2026, 2, 28)),
        (date(2028, 8, 31), 6, date(2028, 2, 29)),
        (date(2026, 3, 31), 1, date(2026, 2, 28)),
        (date(2026, 1, 15), 2, date(2025, 11, 15)),
    ],
)
def test_months_before(day: date, months: int, expected: date) -> None:
    assert months_before(day, months) == expected


def test_retention_floor_keeps_a_margin_inside_six_months() -> None:
    assert retention_floor(date(2026, 11, 26)) == date(2026, 5, 28)


def test_query_start_covers_the_lookback_and_a_time_zone_day() -> None:
    w = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)
    assert query_start(w, timedelta(hours=24)) == date(2026, 11, 24)
    assert query_start(w, timedelta(0)) == date(2026, 11, 25)


@pytest.mark.parametrize(
    ("hour", "limit_hours", "expected"),
    [
        (9, None, date(2026, 11, 26)),  # at 09:00 UTC no time zone (up to UTC+14) is past today
        (11, None, date(2026, 11, 27)),  # at 11:00 UTC+14 is on tomorrow
        (11, 10, date(2026, 11, 26)),  # the API's day is less than 10 h ahead: today
        (9, -9, date(2026, 11, 25)),  # the API's day has not begun at 09:00 UTC: yesterday
        (13, -9, date(2026, 11, 26)),  # ... but has by 13:00
    ],
)
def test_query_end(hour: int, limit_hours: int | None, expected: date) -> None:
    now = datetime(2026, 11, 26, hour, tzinfo=UTC)
    limit = timedelta(hours=limit_hours) if limit_hours is not None else UNKNOWN_OFFSET_LIMIT
    assert query_end(now, limit, to_inclusive=True) == expected
    # when `to` may be exclusive, one day more
    assert query_end(now, limit) == expected + timedelta(days=1)


@pytest.mark.parametrize(
    ("to", "hour", "expected_hours"),
    [(date(2026, 11, 27), 9, 15), (date(2026, 11, 26), 9, -9), (date(2026, 11, 26), 11, -11)],
)
def test_offset_limit_after_refusal(to: date, hour: int, expected_hours: int) -> None:
    now = datetime(2026, 11, 26, hour, tzinfo=UTC)
    limit = offset_limit_after_refusal(to, now, UNKNOWN_OFFSET_LIMIT)
    assert limit == min(timedelta(hours=expected_hours), UNKNOWN_OFFSET_LIMIT)
    assert offset_limit_after_refusal(to, now, timedelta(hours=-20)) == timedelta(hours=-20)


def test_next_window_is_at_most_28_days_and_stops_at_end() -> None:
    assert next_window(date(2026, 1, 1), date(2026, 12, 31)) == Window(date(2026, 1, 1), date(2026, 1, 28))
    assert next_window(date(2026, 1, 1), date(2026, 1, 3)) == Window(date(2026, 1, 1), date(2026, 1, 3))


def plan(start: date, end: date, inclusive: bool) -> list[Window]:
    """The windows a run reads from ``start`` through ``end``, as the engine plans them one after another."""
    windows = [next_window(start, end)]
    while windows[-1].end < end:
        windows.append(next_window(following_start(windows[-1], inclusive), end))
    return windows


@pytest.mark.parametrize("inclusive", [True, False])
def test_consecutive_windows_cover_every_day_without_gaps(inclusive: bool) -> None:
    start, end = date(2026, 5, 28), date(2026, 11, 27)
    windows = plan(start, end, inclusive)
    assert windows[0].start == start
    assert windows[-1].end == end
    for w in windows:
        assert 0 <= (w.end - w.start).days < MAX_WINDOW_DAYS
    for a, b in itertools.pairwise(windows):
        # inclusive: next day; exclusive `to`: the `to` day is asked for again
        assert b.start == (a.end + timedelta(days=1) if inclusive else a.end)


def test_following_start() -> None:
    w = Window(date(2026, 1, 1), date(2026, 1, 28))
    assert following_start(w, True) == date(2026, 1, 29)
    assert following_start(w, False) == date(2026, 1, 28)


def test_covered_until_assumes_the_worst_time_zone() -> None:
    w = Window(date(2026, 1, 1), date(2026, 1, 28))
    assert covered_until(w) == datetime(2026, 1, 27, 10, 0, tzinfo=UTC)
    assert covered_until(w, to_inclusive=True) == datetime(2026, 1, 28, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "proves"),
    [
        (datetime(2026, 1, 28, 12, 0, tzinfo=UTC), True),
        (datetime(2026, 1, 28, 23, 59, tzinfo=UTC), True),
        (datetime(2026, 1, 28, 11, 59, 59, tzinfo=UTC), False),
        (datetime(2026, 1, 27, 23, 0, tzinfo=UTC), False),
    ],
)
def test_inclusive_bound(moment: datetime, proves: bool) -> None:
    assert (moment >= inclusive_bound(Window(date(2026, 1, 1), date(2026, 1, 28)))) is proves


@pytest.mark.parametrize("offset_hours", range(-12, 15))
def test_the_shared_day_bounds_hold_every_zone(offset_hours: int) -> None:
    """A day shared by two windows, in any zone, lies inside both windows' recheck bounds."""
    earlier, later = Window(date(2026, 1, 1), date(2026, 1, 28)), Window(date(2026, 1, 28), date(2026, 2, 24))
    zone_midnight = datetime(2026, 1, 28, tzinfo=UTC) - timedelta(hours=offset_hours)
    first, last = zone_midnight, zone_midnight + timedelta(days=1) - timedelta(seconds=1)
    assert shared_from(earlier) <= first and last < shared_until(later)


def test_window_params() -> None:
    assert Window(date(2026, 1, 1), date(2026, 1, 2)).params() == {"from": "2026-01-01", "to": "2026-01-02"}
