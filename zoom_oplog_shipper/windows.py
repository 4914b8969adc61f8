"""Date windows: which `from`/`to` days to ask for, and what a finished window proves.

The API filters by whole days, in a time zone Zoom does not document (UTC or the account's, which can
be anything from UTC-12 to UTC+14), and does not document whether `to` is inclusive. Every function
here is pure and correct under each of those possibilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

#: Widest offsets an account's time zone can have from UTC.
MIN_TZ_OFFSET = timedelta(hours=-12)
MAX_TZ_OFFSET = timedelta(hours=14)
#: A window spans at most this many days, both ends included: no longer than one month however
#: Zoom counts a month (calendar month, 30 or 31 days).
MAX_WINDOW_DAYS = 28
#: Zoom serves about six months of history.
RETENTION_MONTHS = 6


@dataclass(frozen=True, order=True)
class Window:
    """One request range: ``from`` and ``to`` days as the API takes them."""

    start: date
    end: date

    def params(self) -> dict[str, str]:
        """The query parameters for this window."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def midnight(day: date) -> datetime:
    """00:00 UTC of a day."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier, clamped to the month's last day."""
    total = day.year * 12 + (day.month - 1) - months
    year, month0 = divmod(total, 12)
    for dom in (day.day, 30, 29, 28):
        try:
            return date(year, month0 + 1, dom)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def retention_floor(today: date) -> date:
    """The oldest day Zoom surely still serves: six months back, plus a day for time zones."""
    return months_before(today, RETENTION_MONTHS) + timedelta(days=2)


def query_start(watermark: datetime, lookback: timedelta) -> date:
    """First day to ask for: the day of ``watermark - lookback``, one day earlier for time zones."""
    return (watermark - lookback).astimezone(UTC).date() - timedelta(days=1)


#: Above any real offset: nothing learned yet.
UNKNOWN_OFFSET_LIMIT = MAX_TZ_OFFSET + timedelta(seconds=1)


def offset_limit_after_refusal(to: date, now: datetime, limit: timedelta) -> timedelta:
    """What a refused `to` teaches about the API's day: its offset from UTC is below the result.

    The API accepts `to` exactly when its own today, date(now + offset), is on or after `to`, so a
    refusal at ``now`` means offset < midnight(to) - now. (An API that accepts any `to` teaches nothing
    and needs nothing: tomorrow UTC then covers every time zone.)
    """
    return min(limit, midnight(to) - now)


def query_end(now: datetime, offset_limit: timedelta = UNKNOWN_OFFSET_LIMIT, to_inclusive: bool = False) -> date:
    """Last day to ask for: the latest day that can be the API's today, the day after if `to` may be exclusive.

    The API's today is date(now + offset) with offset below ``offset_limit`` (and at most UTC+14), so
    the query holds every record up to ``now`` in every time zone the API may use.
    """
    latest = (now + min(offset_limit - timedelta(seconds=1), MAX_TZ_OFFSET)).astimezone(UTC).date()
    return latest if to_inclusive else latest + timedelta(days=1)


def next_window(start: date, end: date) -> Window:
    """The window that begins at ``start``, at most MAX_WINDOW_DAYS long, not past ``end``."""
    return Window(start, min(start + timedelta(days=MAX_WINDOW_DAYS - 1), end))


def following_start(window: Window, to_inclusive: bool) -> date:
    """Where the next window begins.

    When `to` is known to be inclusive the next window begins the day after; otherwise it begins on
    `to` itself, so a day is never skipped (the fingerprints drop what both windows return).
    """
    return window.end + timedelta(days=1) if to_inclusive else window.end


def covered_until(window: Window, to_inclusive: bool = False, max_offset: timedelta = MAX_TZ_OFFSET) -> datetime:
    """Every record before this instant has been returned once all windows up to ``window`` were read.

    Worst case: the API's days at the largest offset it can have (UTC+14 unless learned), where the
    window's last day ends that long before midnight UTC; that day is ``to`` itself when `to` is known
    to be inclusive, else the day before.
    """
    last_day_end = window.end + timedelta(days=1) if to_inclusive else window.end
    return midnight(last_day_end) - min(max_offset, MAX_TZ_OFFSET)


def inclusive_bound(window: Window) -> datetime:
    """A record returned for ``window`` at or after this instant proves that `to` is inclusive.

    It is at or after ``to`` 12:00 UTC, so on or after the `to` day in every time zone from UTC-12
    on: only an API that includes the `to` day returns it.
    """
    return midnight(window.end) - MIN_TZ_OFFSET


def shared_until(window: Window) -> datetime:
    """Records before this instant may also come with the window that ends on ``window.start``.

    The shared day, in the API's zone, ends by its next day's 12:00 UTC (at UTC-12).
    """
    return midnight(window.start + timedelta(days=1)) - MIN_TZ_OFFSET


def shared_from(window: Window) -> datetime:
    """Records from this instant on may also come with the window that starts on ``window.end``.

    The shared day, in the API's zone, begins as early as the day before at 10:00 UTC (at UTC+14).
    """
    return midnight(window.end) - MAX_TZ_OFFSET


def returned_before(window: Window) -> datetime:
    """Every record returned for ``window`` is before this instant, whether `to` is inclusive or not:
    the `to` day ends by the next day's 12:00 UTC (at UTC-12)."""
    return midnight(window.end + timedelta(days=1)) - MIN_TZ_OFFSET
