"""Page scanning: the pure decision of which records of one page are new, and what the page teaches.

A page is scanned against a cursor (what the window's earlier pages left: occurrence counts of
identical records, the sort order seen so far), the cutoff below which nothing is emitted again, and
the fingerprints already delivered. The engine does the I/O around it: the store, stdout, commits.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from zoom_oplog_shipper.records import canonical, fingerprint, record_time

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

#: Builds the output document for (record, event id hex, record time or None, created RFC 3339).
Formatter = Callable[[dict[str, Any], str, datetime | None, str], dict[str, Any]]
Encoder = Callable[[dict[str, Any]], bytes]
#: A new record: its fingerprint, the record, and its time (None when it has none).
Candidate = tuple[bytes, dict[str, Any], datetime | None]


@dataclass
class Cursor:
    """What a window's earlier pages left for the next one (`scan_page` builds a new one, never changes it)."""

    #: Occurrences of each canonical record at the current second (the whole window when unordered).
    counts: dict[bytes, int] = field(default_factory=dict)
    #: Occurrences of each canonical record without a usable time.
    untimed_counts: dict[bytes, int] = field(default_factory=dict)
    current: datetime | None = None
    direction: int = 0  # -1 newest first, +1 oldest first, 0 not known yet
    oldest: datetime | None = None  # oldest and newest record times of the last page
    newest: datetime | None = None


@dataclass(frozen=True)
class PageScan:
    """The outcome of scanning one page."""

    candidates: list[Candidate]
    cursor: Cursor
    #: Records came out of time order: read the window again from page one, in full.
    unordered: bool = False
    #: A record on the `to` day itself came back: `to` is inclusive.
    to_inclusive: bool = False
    #: Entries that were not JSON objects (skipped).
    skipped: list[Any] = field(default_factory=list)
    #: Newest first and the whole page older than the cutoff: the rest of the window is too.
    done: bool = False


class _Tally:
    """A page's scan in progress: occurrence counts, the sort order, the times seen."""

    def __init__(self, cursor: Cursor, ordered: bool, inclusive_bound: datetime | None) -> None:
        #: The cursor the next page starts from, kept up to date as the page is read: a copy, so the
        #: caller's cursor stays as it was, and the page's span (oldest, newest) starts afresh.
        self.cursor = Cursor(
            counts=dict(cursor.counts),
            untimed_counts=dict(cursor.untimed_counts),
            current=cursor.current,
            direction=cursor.direction,
        )
        self.ordered = ordered
        self.inclusive_bound = inclusive_bound
        self.unordered = False
        self.to_inclusive = False

    def occurrence(self, canon: bytes, t: datetime | None) -> int:
        """The record's occurrence number among identical records (of its second, when ordered)."""
        bucket = self.cursor.untimed_counts if t is None else self._at(t)
        n = bucket.get(canon, 0)
        bucket[canon] = n + 1
        return n

    def _at(self, t: datetime) -> dict[bytes, int]:
        """The counts of ``t``'s second; notes the order, the page's span and an inclusive `to`."""
        self.cursor.newest = t if self.cursor.newest is None else max(self.cursor.newest, t)
        self.cursor.oldest = t if self.cursor.oldest is None else min(self.cursor.oldest, t)
        if t != self.cursor.current:
            if self.cursor.current is not None:
                self._step(-1 if t < self.cursor.current else 1)
                if self.unordered:  # the page is dropped: nothing more to note
                    return self.cursor.counts
            if self.ordered:
                self.cursor.counts.clear()
            self.cursor.current = t
        if self.inclusive_bound is not None and t >= self.inclusive_bound:
            self.to_inclusive = True
        return self.cursor.counts

    def _step(self, step: int) -> None:
        if self.cursor.direction == 0:
            self.cursor.direction = step
        elif step != self.cursor.direction and self.ordered:
            self.unordered = True


def scan_page(
    records: list[Any],
    cursor: Cursor,
    *,
    account_id: str,
    cutoff: datetime,
    seen: Collection[bytes],
    ordered: bool,
    inclusive_bound: datetime | None,
) -> PageScan:
    """Decide which of ``records`` are new; ``cursor`` is not changed (the result holds the next one).

    ``ordered``: the window is read in time order (counts restart with every new second), not in
    full. ``inclusive_bound``: a record at or after this instant proves `to` inclusive (None when
    that is known or cannot be learned).
    """
    tally = _Tally(cursor, ordered, inclusive_bound)
    candidates: list[Candidate] = []
    skipped: list[Any] = []
    for rec in records:
        if not isinstance(rec, dict):
            skipped.append(rec)
            continue
        t = record_time(rec)
        canon = canonical(rec)
        n = tally.occurrence(canon, t)
        if tally.unordered:
            return PageScan([], cursor, unordered=True, to_inclusive=tally.to_inclusive)
        if t is not None and t < cutoff:
            continue
        fp = fingerprint(account_id, canon, n)
        if fp not in seen:
            candidates.append((fp, rec, t))
    newest = tally.cursor.newest
    done = tally.cursor.direction == -1 and ordered and newest is not None and newest < cutoff
    return PageScan(candidates, tally.cursor, to_inclusive=tally.to_inclusive, skipped=skipped, done=done)


@dataclass(frozen=True)
class Rendered:
    """A page ready to write and commit."""

    lines: list[bytes]
    #: (fingerprint, epoch seconds) per line, for the store; untimed records count at ``fallback_epoch``.
    entries: list[tuple[bytes, int]]
    #: Event ids of records without a usable time.
    untimed: list[str]


def render_page(
    candidates: list[Candidate], formatter: Formatter, encoder: Encoder, created: str, fallback_epoch: int
) -> Rendered:
    """Turn new records into output lines and the store entries that go with them."""
    lines: list[bytes] = []
    entries: list[tuple[bytes, int]] = []
    untimed: list[str] = []
    for fp, rec, t in candidates:
        hexid = fp.hex()
        lines.append(encoder(formatter(rec, hexid, t, created)))
        if t is None:
            untimed.append(hexid)
            entries.append((fp, fallback_epoch))
        else:  # epoch(t), inlined: a candidate's time is aware (record_time)
            entries.append((fp, (t - _EPOCH) // _SECOND))
    return Rendered(lines, entries, untimed)
