"""The state of one run: its watermark and cutoff, the resume points it started from, what it learned
about the API, and the windows planned and not yet passed by the watermark.

It is a value the engine and its readers share (under the engine's lock); it does no I/O. Closing the
finished windows moves the watermark and says what the store must persist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from zoom_oplog_shipper.planning import Slot
from zoom_oplog_shipper.records import epoch
from zoom_oplog_shipper.scan import Cursor
from zoom_oplog_shipper.windows import Window, covered_until, midnight, returned_before

_DAY = timedelta(days=1)


@dataclass
class Facts:
    """What the run knows about the API: what earlier runs stored, and what its pages teach."""

    #: The last day to ask for (moves back when Zoom refuses a `to` after its own today).
    end: date
    to_inclusive: bool
    #: The API's day is less than this far ahead of UTC.
    offset_limit: timedelta
    #: Records came out of time order: windows are read in full.
    unordered: bool = False


@dataclass(frozen=True)
class Closed:
    """A window the watermark passed: what the store persists for it."""

    watermark: datetime
    #: Fingerprints older than this (epoch seconds) can be forgotten.
    prune_before: int
    #: The (start, end) keys of the window's resume points, now dropped.
    finished: list[tuple[str, str]]


class RunState:
    """Watermark, cutoff, resume points, learned facts and the windows in flight of one run."""

    def __init__(
        self,
        watermark: datetime,
        floor: datetime,
        lookback: timedelta,
        facts: Facts,
        resume: tuple[dict[str, str], ...] = (),
        *,
        now: datetime,
    ) -> None:
        self.floor = floor
        self.lookback = lookback
        self.facts = facts
        self.resume = resume
        #: The watermark never passes the run's start.
        self.now = now
        #: Planned and not yet passed by the watermark, oldest first.
        self.slots: list[Slot] = []
        #: A window ended before its last page (a stop, or days the API cannot serve yet): plan no more.
        self.stopped = False
        #: A reader failed or the run was interrupted: the other readers stop after their page.
        self.failed = False
        self.watermark = watermark
        self.cutoff = max(watermark - lookback, floor)
        #: Records and days seen in pages read newest first (how dense the history is), and the
        #: shortest round trip of a page (seconds): what splitting the work is planned with.
        self.seen_records = 0
        self.seen_days = 0.0
        self.round_trip = 0.0

    @property
    def per_day(self) -> float | None:
        """Records a day, as far as pages read newest first show (None before one)."""
        return self.seen_records / self.seen_days if self.seen_days > 0 else None

    def observe(self, slot: Slot, records: int, cursor: Cursor, query: Window) -> None:
        """Note what a page read in time order showed: the history's density, and how far ``slot`` got."""
        if cursor.direction != -1 or cursor.oldest is None:
            return
        top = slot.reach or min(midnight(query.end + _DAY), self.now)
        span = (top - cursor.oldest) / _DAY
        if span > 0:
            self.seen_records += records
            self.seen_days += span
        slot.reach = cursor.oldest if slot.reach is None else min(slot.reach, cursor.oldest)
        slot.newest_first = True

    def timed(self, seconds: float) -> None:
        """Note how long a page took to come."""
        if seconds > 0 and (self.round_trip <= 0 or seconds < self.round_trip):
            self.round_trip = seconds

    def move_watermark(self, watermark: datetime) -> None:
        """Move the watermark forward (never back), and the cutoff with it."""
        self.watermark = max(self.watermark, watermark)
        self.cutoff = max(self.watermark - self.lookback, self.floor)

    def resumed(self, window: Window) -> Window | None:
        """The part of ``window`` an earlier, interrupted run left to read; None when it left no resume point."""
        key = (window.start.isoformat(), window.end.isoformat())
        point = next((p for p in self.resume if (p["start"], p["end"]) == key), None)
        if point is None:
            return None
        return Window(date.fromisoformat(point["from"]), date.fromisoformat(point["to"]))

    def plan(self, slot: Slot) -> Slot:
        """Add a planned window (the newest so far)."""
        self.slots.append(slot)
        return slot

    def split(self, victim: Slot, older: Window) -> Slot:
        """Cut ``older`` (its oldest days) off ``victim``, a window being read newest first, as a new window.

        The victim sends nothing before the instant up to which the new window is sure to return
        every record, and stops once it has read past it; records both may return are checked
        against the store by both. The new window comes first for the watermark.
        """
        floor = covered_until(older, self.facts.to_inclusive)
        shared_before = victim.recheck_before if older.start == victim.window.start else None
        new = Slot(older, recheck_before=shared_before, recheck_from=floor)
        victim.cut_end, victim.floor = older.end, floor
        returned = returned_before(older)
        victim.recheck_before = returned if victim.recheck_before is None else max(victim.recheck_before, returned)
        at = next(i for i, slot in enumerate(self.slots) if slot is victim)
        self.slots.insert(at, new)
        return new

    def finish(self, slot: Slot) -> None:
        """A reader is done with ``slot``; one that did not read to the end stops the planning."""
        slot.finished = True
        if slot.read is None:
            self.stopped = True

    def close_windows(self) -> list[Closed]:
        """Close the finished windows at the front, oldest first: the watermark moves over each.

        It never moves past a window still being read, nor past one that stopped (which drops the
        windows after it: their resume points stay for the next run).
        """
        closed = []
        while self.slots and self.slots[0].finished:
            slot = self.slots.pop(0)
            if slot.read is None:
                self.slots.clear()
                break
            facts = self.facts
            self.move_watermark(min(covered_until(slot.read, facts.to_inclusive, facts.offset_limit), self.now))
            closed.append(Closed(self.watermark, epoch(self.cutoff), slot.keys()))
        return closed
