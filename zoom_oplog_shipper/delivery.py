"""Delivering one page: which of its records are new, printing them, then committing them.

Order of durability: a page's lines are written and flushed before its fingerprints (and its
window's resume point) are committed, so a kill at any instant loses nothing and re-sends at most
the page in flight, with the same `event.id`s. Readers of windows read at once share one `Delivery`:
its lock makes each page's scan, print and commit one step, so pages never interleave on stdout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import KW_ONLY, dataclass, field
from enum import Enum
from typing import Any

from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.output import PageWriter
from zoom_oplog_shipper.planning import Refused, Slot, narrow
from zoom_oplog_shipper.records import epoch, rfc3339_millis
from zoom_oplog_shipper.run_state import RunState
from zoom_oplog_shipper.scan import Candidate, Cursor, Encoder, Formatter, PageScan, render_page, scan_page
from zoom_oplog_shipper.state import StateStore
from zoom_oplog_shipper.summary import RunSummary
from zoom_oplog_shipper.windows import Window, inclusive_bound

log = logging.getLogger(__name__)

#: A long run says how far it has got at most this often (seconds).
PROGRESS_EVERY = 10.0


@dataclass
class WindowCursor:
    """Where one window's reading stands: the page scanner's cursor and what is tracked around it."""

    #: Read in time order (counts restart every second) or in full; fixed when the window (re)starts.
    ordered: bool = True
    scan: Cursor = field(default_factory=Cursor)
    #: Every record may have been sent already (the window is read again): check each against the store.
    recheck_all: bool = False
    #: The days that can still hold records not yet emitted.
    remaining: Window | None = None


class Delivered(Enum):
    """What became of a page handed to `Delivery.deliver`."""

    MORE = "more"  # delivered; the window goes on
    DONE = "done"  # delivered; the window needs no more pages
    RESTART = "restart"  # records out of time order: read the window again, in full
    STOP = "stop"  # not delivered: the run stops (the next run asks for the page again)


@dataclass(frozen=True)
class Output:
    """Where delivered records go: the formatter and encoder that make lines, stdout, and the store."""

    writer: PageWriter
    formatter: Formatter
    encoder: Encoder
    store: StateStore


@dataclass(frozen=True)
class Limits:
    """When readers stop: a signal, the run's deadline (monotonic), --max-records (0: none)."""

    should_stop: Callable[[], bool]
    deadline: float
    max_records: int = 0


@dataclass(eq=False)
class Delivery:
    """The readers' shared side: the run state, stdout and the store, behind one lock."""

    state: RunState
    output: Output
    account_id: str
    _: KW_ONLY
    clock: Clock
    limits: Limits
    summary: RunSummary
    #: The fingerprints the store held from the cutoff on when the run started: records already sent.
    seen: Collection[bytes]
    #: Re-entrant: the engine closes windows and learns facts under it from its own calls.
    lock: threading.RLock = field(default_factory=threading.RLock, init=False)

    def __post_init__(self) -> None:
        self._started = self._last_progress = self.clock.monotonic()
        self._fallback_epoch = epoch(self.state.now)

    # -- stopping ---------------------------------------------------------------------------------
    def stop_reason(self) -> str | None:
        """Why a reader must stop before its next request, None to go on."""
        if self.state.failed:
            return "stopped after another window failed"
        if self.limits.should_stop():
            return "stopped by signal"
        if self.clock.monotonic() >= self.limits.deadline:
            return "stopped at --max-runtime"
        return self._records_limit()

    def _records_limit(self) -> str | None:
        if 0 < self.limits.max_records <= self.summary.emitted:
            return "stopped at --max-records"
        return None

    def stopping(self, window: Window, reason: str | None) -> bool:
        """Whether the window's reader stops here (``reason`` given); says so, and why."""
        if reason is None:
            return False
        if not self.state.failed:
            self.summary.outcome = reason
        log.info(
            "%s before finishing %s..%s; progress is committed, the next run continues",
            reason,
            window.start,
            window.end,
        )
        return True

    # -- learning -----------------------------------------------------------------------------------
    def learn_refusal(self, refused: Refused) -> None:
        """Keep what a refused first page taught (a `to` after the API's today) for this run and the next."""
        with self.lock:
            if refused.note is not None:
                log.log(*refused.note)
            if refused.end is not None and refused.offset_limit is not None:
                self.state.facts.offset_limit = refused.offset_limit
                self.state.facts.end = refused.end
                self.output.store.learn("offset_limit", str(int(refused.offset_limit.total_seconds())))

    def _learn_inclusive(self) -> None:
        self.state.facts.to_inclusive = True
        self.output.store.learn("to_inclusive")
        log.debug("Zoom returned a record on the `to` day itself: `to` is inclusive")

    # -- one page -----------------------------------------------------------------------------------
    def deliver(self, records: list[Any], slot: Slot, window: Window, query: Window, cursor: WindowCursor) -> Delivered:
        """Print the page's new records, then commit them and where the window stands."""
        with self.lock:
            # Another window may have failed or reached --max-records while this page was on its way:
            # it is not sent (nor committed), and the next run asks for it again.
            failed = "stopped after another window failed" if self.state.failed else None
            if self.stopping(window, failed or self._records_limit()):
                return Delivered.STOP
            self.summary.pages += 1
            try:
                delivered = self._deliver(records, slot, window, query, cursor)
            except BaseException:
                # Nothing more is printed once a page could not be printed or committed: at most that
                # page is out and not committed, however many windows are read at once.
                self.state.failed = True
                raise
            if delivered is not Delivered.RESTART:
                self._progress(window, cursor.remaining)
            return delivered

    def _deliver(
        self, records: list[Any], slot: Slot, window: Window, query: Window, cursor: WindowCursor
    ) -> Delivered:
        scan = self._scan(records, slot, query, cursor)
        if scan.unordered:
            self.state.facts.unordered = True
            log.debug("records of %s..%s are not sorted by time; reading it again in full", window.start, window.end)
            return Delivered.RESTART
        cursor.scan = scan.cursor
        if cursor.ordered:
            self.state.observe(slot, len(records), scan.cursor, query)
        narrowed = narrow(query, scan.cursor, ordered=cursor.ordered, to_inclusive=self.state.facts.to_inclusive)
        cursor.remaining = slot.remaining = narrowed
        self._commit(self._not_in_store(scan.candidates, cursor.recheck_all, slot), slot, window, query, narrowed)
        cut_done = slot.cut_end is not None and narrowed.end <= slot.cut_end
        return Delivered.DONE if scan.done or cut_done else Delivered.MORE

    def _scan(self, records: list[Any], slot: Slot, query: Window, cursor: WindowCursor) -> PageScan:
        """Which of the page's records are new (see `scan.scan_page`); learns an inclusive `to`."""
        state = self.state
        scan = scan_page(
            records,
            cursor.scan,
            account_id=self.account_id,
            cutoff=state.cutoff if slot.floor is None else max(state.cutoff, slot.floor),
            seen=self.seen,
            ordered=cursor.ordered,
            inclusive_bound=None if state.facts.to_inclusive else inclusive_bound(query),
        )
        for entry in scan.skipped:
            log.warning("skipping a log entry that is not an object: %.200r", entry)
        if scan.to_inclusive:
            self._learn_inclusive()
        return scan

    def _commit(self, candidates: list[Candidate], slot: Slot, window: Window, query: Window, narrowed: Window) -> None:
        """Print the new records, then commit them with the days of the window still to read (also
        when nothing is new but those days narrowed)."""
        # A cut window's older days are another window's: they stay to read until that one is done.
        kept = narrowed if slot.cut_end is None else Window(narrowed.start, max(narrowed.end, slot.cut_end))
        resume = {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "from": kept.start.isoformat(),
            "to": kept.end.isoformat(),
        }
        if candidates:
            self._print_and_commit(candidates, resume)
            slot.records += len(candidates)
        elif kept != query:
            self.output.store.commit_page((), resume)

    def _print_and_commit(self, candidates: list[Candidate], resume: dict[str, str]) -> None:
        out = self.output
        page = render_page(
            candidates, out.formatter, out.encoder, rfc3339_millis(self.clock.now()), self._fallback_epoch
        )
        for hexid in page.untimed:
            log.warning("record %s has no parsable time; emitted with @timestamp = now, tagged", hexid)
        self.summary.untimed += len(page.untimed)
        out.writer.write_page(page.lines)
        out.store.commit_page(page.entries, resume)
        self.summary.emitted += len(page.lines)

    def _not_in_store(self, candidates: list[Candidate], recheck_all: bool, slot: Slot) -> list[Candidate]:
        """Drop the candidates that another window of this run (or an interrupted run) already emitted.

        Only records that can have been read before are looked up: the days shared with the windows
        beside this one, records without a time, or all of them after a restarted window.
        """
        if not candidates or not (recheck_all or slot.shares_days()):
            return candidates
        maybe = [fp for fp, _, t in candidates if recheck_all or slot.may_share(t)]
        known = self.output.store.already_seen(maybe) if maybe else set()
        return [c for c in candidates if c[0] not in known] if known else candidates

    def _progress(self, window: Window, remaining: Window | None) -> None:
        """Every PROGRESS_EVERY seconds, say how far a long run has got."""
        now = self.clock.monotonic()
        if now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        elapsed = max(now - self._started, 1e-9)
        left = remaining or window
        log.info(
            "progress: window %s..%s, %d records so far (%.0f/s), %d pages; days still to read %s..%s",
            window.start,
            window.end,
            self.summary.emitted,
            self.summary.emitted / elapsed,
            self.summary.pages,
            left.start,
            left.end,
        )
