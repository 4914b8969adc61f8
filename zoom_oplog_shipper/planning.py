"""Planning a run, as pure functions: where it starts, which windows it reads, what a refusal teaches.

Nothing here does I/O or keeps state: each function takes what is known (the stored snapshot, the
facts learned about the API, the window before) and returns the decision, or the new facts, for the
engine to act on. The day arithmetic under them is in `windows.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from zoom_oplog_shipper.records import rfc3339_millis
from zoom_oplog_shipper.scan import Cursor
from zoom_oplog_shipper.state import Snapshot
from zoom_oplog_shipper.windows import (
    MAX_TZ_OFFSET,
    MIN_TZ_OFFSET,
    Window,
    following_start,
    midnight,
    next_window,
    offset_limit_after_refusal,
    query_end,
    query_start,
    retention_floor,
    shared_from,
    shared_until,
)

#: A page-one refusal of a day as "older than Zoom keeps" moves the start at most this often.
MAX_RETENTION_SHIFTS = 3
#: Only a start older than this can be refused as older than Zoom keeps.
RETENTION_REFUSAL_AGE = timedelta(days=150)

#: A message for the engine to log: (logging level, text).
Note = tuple[int, str]


# -- where a run starts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """The watermark and floor a run starts from."""

    watermark: datetime
    floor: datetime
    #: The store must be (re)started at this watermark: a first run, or one that replaces the backfill start.
    fresh: bool = False
    notes: tuple[Note, ...] = ()


def starting_point(snap: Snapshot, backfill_start: datetime | None, now: datetime) -> Start:
    """The watermark and floor this run starts from.

    Until a first page has been committed, the backfill start of this run replaces the stored one
    (a first run that failed must not pin it). Once records were delivered, a different backfill
    start changes nothing: `state rewind` is the way back.
    """
    notes: tuple[Note, ...] = ()
    if snap.watermark is not None and snap.floor is not None:
        stored = snap.backfill_start or snap.floor
        if backfill_start is None or backfill_start == stored or _both_past_retention(stored, backfill_start, now):
            return Start(snap.watermark, snap.floor)
        if snap.delivered:
            rewind = backfill_start.date().isoformat() if backfill_start == midnight(backfill_start.date()) else None
            note = (
                f"--backfill-start {rfc3339_millis(backfill_start)} differs from the stored start "
                f"{rfc3339_millis(stored)} and records were already delivered, so it is ignored; to send again "
                f"everything since a date run `zoom-oplog-shipper state rewind --to "
                f"{rewind or rfc3339_millis(backfill_start)} --yes`"
            )
            return Start(snap.watermark, snap.floor, notes=((logging.WARNING, note),))
        notes = ((logging.INFO, f"no record delivered yet: the backfill start {rfc3339_millis(backfill_start)} "
                  "replaces the stored one"),)  # fmt: skip
    watermark = backfill_start or now
    if backfill_start:
        first = f"first run: backfilling from {rfc3339_millis(watermark)}"
    else:
        first = (
            f"first run: starting at {rfc3339_millis(watermark)}; older records are not fetched "
            "(set --backfill-start to fetch them)"
        )
    return Start(watermark, watermark, fresh=True, notes=(*notes, (logging.INFO, first)))


def _both_past_retention(stored: datetime, configured: datetime, now: datetime) -> bool:
    """Both starts mean "as far back as Zoom keeps": the configured one is clamped daily to Zoom's retention."""
    oldest = midnight(retention_floor(now.date()))
    return configured <= oldest and stored <= oldest


def first_day(watermark: datetime, lookback: timedelta, today: date, *, stored: bool) -> tuple[date, Note | None]:
    """The first day to ask for, never before the oldest day Zoom serves; with a warning when a
    ``stored`` watermark fell that far behind (records were lost to Zoom's retention)."""
    start = query_start(watermark, lookback)
    oldest = retention_floor(today)
    if start >= oldest:
        return start, None
    note = None
    if stored and watermark - lookback < midnight(oldest):
        note = (
            logging.WARNING,
            f"the stored watermark {rfc3339_millis(watermark)} is older than Zoom keeps records; "
            f"records before {oldest} can no longer be fetched",
        )
    return oldest, note


# -- which windows ----------------------------------------------------------------------------------


@dataclass
class Slot:
    """A window planned for reading, the days it shares with the windows beside it, and how it went.

    The planning fields are set when it is planned; the reader fills in ``read``, ``finished`` and
    ``unservable``.
    """

    window: Window
    #: Records before this instant may have come with the previous window: check them against the store.
    recheck_before: datetime | None = None
    #: Records from this instant on may come with the next window (read at the same time).
    recheck_from: datetime | None = None
    #: The window as read (its end may have moved), None when the run stopped first.
    read: Window | None = None
    finished: bool = False
    #: The API cannot serve the window's days yet (they are after its today), nor any after them.
    unservable: bool = False

    def shares_days(self) -> bool:
        """Whether records of this window may also come with a window beside it."""
        return self.recheck_before is not None or self.recheck_from is not None

    def may_share(self, t: datetime | None) -> bool:
        """Whether a record at ``t`` (None: without a time) may also come with a window beside this one."""
        before, since = self.recheck_before, self.recheck_from
        return t is None or (before is not None and t < before) or (since is not None and t >= since)

    def keys(self) -> list[tuple[str, str]]:
        """The (start, end) days its resume points are stored under."""
        windows = {self.window, self.read or self.window}
        return [(w.start.isoformat(), w.end.isoformat()) for w in windows]


def plan_slot(window: Window, previous: Slot | None, *, at_once: bool, to_inclusive: bool, end: date) -> Slot:
    """The slot for ``window``: which of its days it shares with its neighbours.

    Until `to` is known to be inclusive, consecutive windows share a day; records of that day may
    come with either window, so they are checked against the store before they are sent. The next
    window is read at the same time only when windows are read ``at_once``.
    """
    shared = not to_inclusive
    before = previous is not None and shared and (previous.read or previous.window).end == window.start
    after = at_once and shared and window.end < end
    return Slot(
        window,
        recheck_before=shared_until(window) if before else None,
        recheck_from=shared_from(window) if after else None,
    )


def window_after(slot: Slot, *, to_inclusive: bool, end: date) -> Window | None:
    """The window after ``slot``'s, None when it reached the last day to ask for."""
    if slot.unservable:
        return None
    window = slot.read or slot.window
    if window.end >= end:
        return None
    return next_window(following_start(window, to_inclusive), end)


def narrow(query: Window, cursor: Cursor, *, ordered: bool, to_inclusive: bool) -> Window:
    """After a page in time order, the days that can still hold records not yet emitted.

    Newest first: everything newer than the page's oldest record is out, so `to` can move back to
    the last day that record can fall on in any time zone. Oldest first: `from` moves forward alike.
    """
    if not ordered or cursor.oldest is None or cursor.newest is None:
        return query
    if cursor.direction == -1:
        last_day = (cursor.oldest + MAX_TZ_OFFSET).date() + timedelta(days=0 if to_inclusive else 1)
        return Window(query.start, max(query.start, min(query.end, last_day)))
    if cursor.direction == 1:
        first = (cursor.newest + MIN_TZ_OFFSET).date()
        return Window(min(query.end, max(query.start, first)), query.end)
    return query


# -- what a refusal teaches ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """What Zoom's refusal of a window's first page teaches, and what to ask instead."""

    #: The days to ask for instead; None when none of them can be asked for yet.
    query: Window | None
    #: The new last day to ask for, and the API day's new offset limit (a `to` after the API's today).
    end: date | None = None
    offset_limit: timedelta | None = None
    #: The start moved a day later (a day older than Zoom keeps).
    shifted: bool = False
    note: Note | None = None


def after_refusal(
    query: Window,
    text: str,
    *,
    end: date,
    today: date,
    now: datetime,
    offset_limit: timedelta,
    to_inclusive: bool,
    shifts: int,
) -> Refused | None:
    """What Zoom's refusal (``text``) of ``query``'s first page teaches; None when it teaches nothing.

    A window ending at the last day to ask for, around today, may ask for a day after the API's own
    today: learn a smaller offset limit and ask up to an earlier day. A start more than 150 days back
    may be older than Zoom keeps: start a day later (at most MAX_RETENTION_SHIFTS times). ``today``
    is the run's, ``now`` the time of the refusal.
    """
    if query.end == end and query.end >= today - timedelta(days=1):
        limit = offset_limit_after_refusal(query.end, now, offset_limit)
        new_end = min(query_end(now, limit, to_inclusive), query.end - timedelta(days=1))
        if new_end >= today - timedelta(days=1):
            note = (logging.INFO, f"Zoom refused `to` {query.end} (after its own today?); asking up to {new_end}")
            asked = None if query.start > new_end else Window(query.start, new_end)
            return Refused(asked, end=new_end, offset_limit=limit, note=note)
    if "month" in text.lower() and shifts < MAX_RETENTION_SHIFTS and query.start < today - RETENTION_REFUSAL_AGE:
        later = query.start + timedelta(days=1)
        note = (logging.WARNING, f"Zoom refused {query.start} as older than it keeps; starting a day later")
        return Refused(Window(later, max(query.end, later)), shifted=True, note=note)
    return None
