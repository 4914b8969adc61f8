"""Page scanning: the pure decision of which records of one page are new, and what the page teaches.

A page is scanned against a cursor (what the window's earlier pages left: occurrence counts of
identical records, the sort order seen so far), the cutoff below which nothing is emitted again, and
the fingerprints already delivered. The engine does the I/O around it: the store, stdout, commits.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from zoom_oplog_shipper.records import account_hash, record_time

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

#: Builds the output document for (record, event id hex, record time or None, created RFC 3339).
Formatter = Callable[[dict[str, Any], str, datetime | None, str], dict[str, Any]]
Encoder = Callable[[dict[str, Any]], bytes]
#: A new record: its fingerprint, the record, and its time (None when it has none).
Candidate = tuple[bytes, dict[str, Any], datetime | None]


@dataclass(frozen=True)
class Cursor:
    """What a window's earlier pages left for the next one."""

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
    counts = dict(cursor.counts)
    untimed_counts = dict(cursor.untimed_counts)
    current, direction = cursor.current, cursor.direction
    candidates: list[Candidate] = []
    skipped: list[Any] = []
    newest: datetime | None = None
    oldest: datetime | None = None
    to_inclusive = False
    # record_time, canonical and fingerprint, inlined where they cost most: this runs for every record.
    account = account_hash(account_id)
    dumps, sort_keys, from_iso = orjson.dumps, orjson.OPT_SORT_KEYS, datetime.fromisoformat
    for rec in records:
        if not isinstance(rec, dict):
            skipped.append(rec)
            continue
        value = rec.get("time")
        if value.__class__ is str and len(value) == 20 and value[19] == "Z" and value[10] == "T":
            try:
                t = from_iso(value)
            except ValueError:
                t = None
        else:
            t = record_time(rec)
        canon = dumps(rec, option=sort_keys)
        if t is None:
            bucket = untimed_counts
        else:
            if newest is None or t > newest:
                newest = t
            if oldest is None or t < oldest:
                oldest = t
            if t != current:
                if current is not None:
                    step = -1 if t < current else 1
                    if direction == 0:
                        direction = step
                    elif step != direction and ordered:
                        return PageScan([], cursor, unordered=True, to_inclusive=to_inclusive)
                if ordered:
                    counts.clear()
                current = t
            bucket = counts
            if inclusive_bound is not None and t >= inclusive_bound:
                to_inclusive = True
                inclusive_bound = None
        n = bucket.get(canon, 0)
        bucket[canon] = n + 1
        if t is not None and t < cutoff:
            continue
        h = account.copy()
        h.update(canon)
        h.update(b"\0%d" % n)
        fp = h.digest()
        if fp not in seen:
            candidates.append((fp, rec, t))
    done = direction == -1 and ordered and newest is not None and newest < cutoff
    next_cursor = replace(
        cursor,
        counts=counts,
        untimed_counts=untimed_counts,
        current=current,
        direction=direction,
        oldest=oldest,
        newest=newest,
    )
    return PageScan(candidates, next_cursor, to_inclusive=to_inclusive, skipped=skipped, done=done)


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
