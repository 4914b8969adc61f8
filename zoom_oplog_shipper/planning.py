"""Planning a run, as pure functions: where it starts, which windows it reads, what a refusal teaches.

Nothing here does I/O or keeps state: each function takes what is known (the stored snapshot, the
facts learned about the API, the window before) and returns the decision, or the new facts, for the
engine to act on. The day arithmetic under them is in `windows.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from zoom_oplog_shipper.pages import PAGE_SIZE
from zoom_oplog_shipper.records import rfc3339_millis
from zoom_oplog_shipper.scan import Cursor
from zoom_oplog_shipper.state import Snapshot
from zoom_oplog_shipper.windows import (
    MAX_TZ_OFFSET,
    MAX_WINDOW_DAYS,
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


@dataclass(eq=False)
class Slot:
    """A window planned for reading, the days it shares with the windows beside it, and how it went.

    The planning fields are set when it is planned; the reader fills in the rest. Two slots are the
    same only when they are one object.
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
    #: What the reader has seen: records delivered, the days still to read (narrowed after each page),
    #: and, read newest first, the oldest record so far (``reach``).
    records: int = 0
    remaining: Window | None = None
    reach: datetime | None = None
    newest_first: bool = False
    #: Cut: the days up to ``cut_end`` went to another window; this reader sends no record before
    #: ``floor`` and stops once the days it still has to read end at or before ``cut_end``.
    cut_end: date | None = None
    floor: datetime | None = None

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


# -- splitting the work (issue 18) ---------------------------------------------------------------------

#: Splits (shorter windows, or an older part cut off a window being read) are made only while the
#: pages they are expected to add stay within this share of the run's estimated pages.
SPLIT_BUDGET = 0.04
#: The pages a split is expected to add: one more window's partial last page (and the day it shares
#: with the window before, until `to` is known to be inclusive); a cut also costs the cut reader's
#: partial last page and the 14 h it reads past the cut (the API's day may start at UTC+14).
BOUNDARY_PAGES = 0.5
CUT_PAGES = 1.0
#: No piece split off holds fewer pages than this.
MIN_SPLIT_PAGES = 2.0
#: A cut gives the new window between these shares of the days the cut reader has left.
MIN_CUT_SHARE, MAX_CUT_SHARE = 0.2, 0.8
#: A costlier plan is chosen only when it is expected to end sooner by more than this share.
GAIN = 0.03
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Pace:
    """How the run goes: records a day (None until a page in time order), one answer's round trip
    (seconds, 0 until measured), --max-rps (0: no limit) and how many windows can be read at once."""

    per_day: float | None
    round_trip: float
    max_rps: float
    workers: int

    def pages(self, days: float) -> float:
        """The pages ``days`` of history are expected to take."""
        return max(0.0, days) * (self.per_day or 0.0) / PAGE_SIZE

    @property
    def known(self) -> bool:
        """Whether splitting can be planned: windows can be read at once, and density and round trip are known."""
        return self.workers > 1 and bool(self.per_day) and self.round_trip > 0

    def makespan(self, chains: list[float], queued: list[float]) -> float:
        """Seconds until ``chains`` (pages read one after another, in flight) and then ``queued`` ones
        (started as readers fall idle) are read: the readers share --max-rps equally, and each asks at
        most once per round trip."""
        active = sorted(c for c in chains if c > 0)
        waiting = [c for c in queued if c > 0]
        elapsed = 0.0
        while active or waiting:
            while waiting and len(active) < self.workers:
                active.append(waiting.pop(0))
            active.sort()
            per_chain = 1 / self.round_trip
            if self.max_rps > 0:
                per_chain = min(per_chain, self.max_rps / len(active))
            step = active[0]
            elapsed += step / per_chain
            active = [c - step for c in active[1:] if c > step]
        return elapsed


@dataclass(frozen=True)
class Piece:
    """A window being read, as the planner sees it: its pages still to read, and whether an older part
    of its days (from ``start`` up to its oldest record so far, ``reach``) can be handed to another
    reader (read newest first, not cut yet)."""

    slot: Slot
    pages: float
    start: date | None = None
    reach: datetime | None = None

    @property
    def cuttable(self) -> bool:
        """Whether it can be cut in two."""
        return self.start is not None and self.reach is not None


@dataclass(frozen=True)
class Read:
    """The next window to read: from the days not planned yet, or cut off ``victim``; what it costs."""

    window: Window
    victim: Slot | None = None
    #: Pages it is expected to add to what reading the days in 28-day windows one after another takes.
    cost: float = 0.0


def piece(slot: Slot, pace: Pace) -> Piece:
    """How much of ``slot`` is left, and whether it can be cut (read newest first, not cut yet)."""
    if slot.reach is None or slot.remaining is None:
        return Piece(slot, max(1.0, pace.pages((slot.window.end - slot.window.start).days + 1)))
    start = slot.remaining.start
    low = midnight(start) if slot.floor is None else max(midnight(start), slot.floor)
    pages = pace.pages((slot.reach - low) / _DAY)
    if slot.cut_end is not None or not slot.newest_first or pages < 2 * MIN_SPLIT_PAGES:
        return Piece(slot, pages)
    return Piece(slot, pages, start, slot.reach)


def older_part(start: date, reach: datetime, give: float, *, to_inclusive: bool) -> Window | None:
    """About ``give`` (a share) of the days from ``start`` up to ``reach`` (a reader's oldest record,
    read newest first), the oldest ones, ending a day before the last day ``reach`` can fall on, so
    that everything the reader sent lies after what the new window is sure to return; None when no
    whole day can be given."""
    days = max(1, round((reach - midnight(start)) / _DAY * give))
    end = start + timedelta(days=days - (1 if to_inclusive else 0))
    end = min(end, (reach + MAX_TZ_OFFSET).date() - _DAY)
    if end < start + timedelta(days=0 if to_inclusive else 1):
        return None
    return Window(start, end)


@dataclass(frozen=True)
class _Option:
    """One way to go on: a cut (or none), and the days not planned yet split into windows of ``days``."""

    seconds: float
    cost: float
    cut: Read | None
    days: tuple[int, ...]


def next_read(
    pace: Pace,
    pieces: list[Piece],
    upcoming: Window | None,
    last_day: date,
    *,
    read: float,
    spent: float,
    to_inclusive: bool,
) -> Read | None:
    """What a reader that falls idle reads next (None: nothing).

    Without splitting, the next days not planned yet (``upcoming``, up to ``last_day``) in a window as
    long as Zoom allows. Pages within a window are read one after another, so when the round trip,
    not the rate limit, bounds the run, the plan that is expected to end soonest (`Pace.makespan`)
    may instead cut the window being read with the most pages left in two (handing over half its
    days, or what leaves it one reader's share), or split the days not planned yet into more, equal
    windows. Splits are made only while the pages they are expected to add (``spent`` so far) stay
    within SPLIT_BUDGET of the run's pages (``read`` so far and those left).
    """
    if not pace.known:
        return None if upcoming is None else Read(upcoming)
    unplanned = (last_day - upcoming.start).days + 1 if upcoming is not None else 0
    total = sum(p.pages for p in pieces) + pace.pages(unplanned)
    allowance = SPLIT_BUDGET * (read + total) - spent
    best = _best(_options(pace, pieces, unplanned, allowance, total, to_inclusive=to_inclusive))
    if best.cut is not None or upcoming is None:
        return best.cut
    length = min(best.days[0], (upcoming.end - upcoming.start).days + 1)
    window = Window(upcoming.start, upcoming.start + timedelta(days=length - 1))
    extra = 1 + _windows(unplanned - length) - _windows(unplanned)
    return Read(window, cost=extra * _boundary(pace, to_inclusive))


def _windows(days: int) -> int:
    """How many windows ``days`` take one after another (28 days each)."""
    return -(-max(0, days) // MAX_WINDOW_DAYS)


def _boundary(pace: Pace, to_inclusive: bool) -> float:
    return BOUNDARY_PAGES + (0.0 if to_inclusive else pace.pages(1))


def _cuts(pace: Pace, pieces: list[Piece], total: float, *, to_inclusive: bool) -> list[tuple[Read, list[float]]]:
    """The ways to cut the window with the most pages left: each cut, with the chains it leaves."""
    biggest = max((p for p in pieces if p.cuttable), key=lambda p: p.pages, default=None)
    if biggest is None or biggest.start is None or biggest.reach is None:
        return []
    cost = CUT_PAGES + pace.pages(MAX_TZ_OFFSET / _DAY)
    days = (biggest.reach - midnight(biggest.start)) / _DAY
    others = [p.pages for p in pieces if p is not biggest]
    cuts = []
    for give in sorted({0.5, 1 - max(MIN_SPLIT_PAGES, total / pace.workers) / biggest.pages}):
        window = (
            older_part(biggest.start, biggest.reach, give, to_inclusive=to_inclusive)
            if MIN_CUT_SHARE <= give <= MAX_CUT_SHARE
            else None
        )
        if window is not None:
            given = biggest.pages * min(1.0, ((window.end - window.start).days + 1) / days)
            cuts.append((Read(window, biggest.slot, cost), [*others, biggest.pages - given, given]))
    return cuts


def _options(
    pace: Pace, pieces: list[Piece], unplanned: int, allowance: float, total: float, *, to_inclusive: bool
) -> list[_Option]:
    """Every plan within ``allowance``: no cut or each cut of `_cuts`, each with every split of the
    ``unplanned`` days of `_splits`."""
    plans: list[tuple[Read | None, list[float]]] = [(None, [p.pages for p in pieces])]
    plans += [(cut, chains) for cut, chains in _cuts(pace, pieces, total, to_inclusive=to_inclusive)
              if cut.cost <= allowance]  # fmt: skip
    boundary = _boundary(pace, to_inclusive)
    fewest = _windows(unplanned)
    options = []
    for cut, chains in plans:
        spent = cut.cost if cut is not None else 0.0
        most = fewest + int(max(0.0, allowance - spent) // boundary)
        for days in _splits(pace, unplanned, most, total / pace.workers):
            queued = [pace.pages(d) for d in days]
            cost = (len(days) - fewest) * boundary + spent
            options.append(_Option(pace.makespan(chains, queued), cost, cut, days))
    return options


def _splits(pace: Pace, unplanned: int, most: int, share: float) -> list[tuple[int, ...]]:
    """Ways to split ``unplanned`` days into at most ``most`` windows of up to 28 days, each of at least
    MIN_SPLIT_PAGES: into equal windows, or into windows of one reader's ``share`` of the pages with
    the rest last."""
    fewest = _windows(unplanned)
    most = max(fewest, min(most, unplanned, int(pace.pages(unplanned) // MIN_SPLIT_PAGES)))
    splits = []
    for count in range(fewest, most + 1):
        size, longer = divmod(unplanned, count) if count else (0, 0)
        splits.append((size + 1,) * longer + (size,) * (count - longer))
    per_day = pace.per_day or 1.0
    step = min(MAX_WINDOW_DAYS, max(1, round(max(share, MIN_SPLIT_PAGES) * PAGE_SIZE / per_day)))
    whole, rest = divmod(unplanned, step)
    if fewest <= whole + bool(rest) <= most:
        splits.append((step,) * whole + ((rest,) if rest else ()))
    return splits


def _best(options: list[_Option]) -> _Option:
    """The cheapest plan among those expected to end within GAIN of the soonest."""
    soonest = min(o.seconds for o in options)
    return min((o for o in options if o.seconds <= soonest * (1 + GAIN)), key=lambda o: (o.cost, len(o.days)))
