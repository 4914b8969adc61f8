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


def query_end(today: date, future_to_ok: bool) -> date:
    """Last day to ask for: tomorrow (UTC) covers accounts east of UTC, unless Zoom refuses it."""
    return today + timedelta(days=1) if future_to_ok else today


def next_window(start: date, end: date) -> Window:
    """The window that begins at ``start``, at most MAX_WINDOW_DAYS long, not past ``end``."""
    return Window(start, min(start + timedelta(days=MAX_WINDOW_DAYS - 1), end))


def following_start(window: Window, to_inclusive: bool) -> date:
    """Where the next window begins.

    When `to` is known to be inclusive the next window begins the day after; otherwise it begins on
    `to` itself, so a day is never skipped (the fingerprints drop what both windows return).
    """
    return window.end + timedelta(days=1) if to_inclusive else window.end


def plan(start: date, end: date, to_inclusive: bool) -> list[Window]:
    """All windows from ``start`` through ``end``, oldest first (what a run asks for)."""
    windows = [next_window(start, end)]
    while windows[-1].end < end:
        windows.append(next_window(following_start(windows[-1], to_inclusive), end))
    return windows


def covered_until(window: Window) -> datetime:
    """Every record before this instant has been returned once all windows up to ``window`` were read.

    Worst case: `to` exclusive and the account at UTC+14, where the window's last local day ends
    14 hours before ``window.end`` 00:00 UTC.
    """
    return midnight(window.end) - MAX_TZ_OFFSET


def proves_to_inclusive(record_time: datetime, window: Window) -> bool:
    """True when a record returned for ``window`` can only be on the `to` day itself.

    A record at or after ``to`` 12:00 UTC is on or after the `to` day in every time zone from UTC-12
    on, so an API that returned it for this window treats `to` as inclusive.
    """
    return record_time >= midnight(window.end) - MIN_TZ_OFFSET
