"""The sync engine: read a stream's new records window by window, print them, commit progress.

The engine knows no log type: it reads pages from a `PageSource` (one stream of the Zoom client)
and formats records with the formatter it is given.

Order of durability: a page's lines are written and flushed before its fingerprints are committed,
so a kill at any instant loses nothing and re-sends at most one page (with the same `event.id`s).

During a backfill several windows are read at once (``--concurrency``): each keeps its own cursor
and resume point, pages are written and committed one at a time, and the watermark only moves over
windows that have all finished, oldest first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import Config
from zoom_oplog_shipper.errors import ApiError
from zoom_oplog_shipper.output import PageWriter
from zoom_oplog_shipper.records import epoch, rfc3339_millis
from zoom_oplog_shipper.scan import Candidate, Cursor, Encoder, Formatter, render_page, scan_page
from zoom_oplog_shipper.settings import windows_at_once
from zoom_oplog_shipper.state import Snapshot, StateStore
from zoom_oplog_shipper.summary import RunSummary
from zoom_oplog_shipper.windows import (
    MAX_TZ_OFFSET,
    MIN_TZ_OFFSET,
    UNKNOWN_OFFSET_LIMIT,
    Window,
    covered_until,
    following_start,
    inclusive_bound,
    midnight,
    next_window,
    offset_limit_after_refusal,
    query_end,
    query_start,
    retention_floor,
    shared_from,
    shared_until,
)
from zoom_oplog_shipper.zoom_client import Counters, InvalidRequest, Page, PageTokenExpired

log = logging.getLogger(__name__)

#: A long run says how far it has got at most this often (seconds).
PROGRESS_EVERY = 10.0
#: A window whose page token keeps expiring is read again from page one at most this often.
MAX_WINDOW_RESTARTS = 3


class PageSource(Protocol):
    """Where the engine reads pages: one stream's report, with retries and pacing inside."""

    @property
    def counters(self) -> Counters:
        """Requests and retries so far."""

    def set_deadline(self, deadline: float | None) -> None:
        """Wait for no retry past this monotonic time."""

    def get_page(self, window: Window, next_page_token: str = "") -> Page:
        """One page of records for ``window``; raises PageTokenExpired or InvalidRequest as Zoom answers."""


class _RestartWindow(Exception):
    """Read the current window again from page one."""


@dataclass
class _WindowCursor:
    """Per-window reading state: the page scanner's cursor plus what the engine tracks around it."""

    #: Read in time order (counts restart every second) or in full; fixed when the window (re)starts.
    ordered: bool = True
    scan: Cursor = field(default_factory=Cursor)
    recheck_all: bool = False
    remaining: Window | None = None  # the days that can still hold records not yet emitted


@dataclass
class _Slot:
    """A window planned for reading, and the days it shares with the windows beside it."""

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

    def keys(self) -> list[tuple[str, str]]:
        """The (start, end) days its resume points are stored under."""
        windows = {self.window, self.read or self.window}
        return [(w.start.isoformat(), w.end.isoformat()) for w in windows]


class SyncEngine:
    """One pass over a stream's records that are new since the stored watermark."""

    def __init__(
        self,
        config: Config,
        pages: PageSource,
        store: StateStore,
        writer: PageWriter,
        formatter: Formatter,
        encoder: Encoder,
        clock: Clock,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.config = config
        self.pages = pages
        self.store = store
        self.writer = writer
        self.formatter = formatter
        self.encoder = encoder
        self.clock = clock
        self.should_stop = should_stop
        self.summary = RunSummary()
        self._unordered = False
        self._watermark: datetime | None = None
        # Readers of windows read at once share the store, stdout and what is learned: one at a time.
        self._lock = threading.RLock()
        self._first_page = threading.Event()
        self._failed = False

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        """Fetch, print and commit; returns the summary (also saved in the store)."""
        cfg = self.config
        t0 = self.clock.now()
        self._t0 = t0
        started = self.clock.monotonic()
        self._deadline = started + cfg.max_runtime.total_seconds()
        self.pages.set_deadline(self._deadline)
        self.summary.started = rfc3339_millis(t0)
        self._started = self._last_progress = started
        try:
            self._run(t0)
        except BaseException:
            self.summary.outcome = "failed"  # the caller names it after the exit code
            raise
        finally:
            counters = self.pages.counters
            self.summary.requests = counters.requests
            self.summary.retries = counters.retries
            self.summary.duration_s = round(self.clock.monotonic() - started, 3)
        return self.summary

    def _run(self, t0: datetime) -> None:
        cfg = self.config
        snap = self.store.snapshot()
        watermark, floor = self._starting_point(snap, t0)
        self._floor = floor
        self._to_inclusive = snap.to_inclusive
        self._offset_limit = snap.offset_limit or UNKNOWN_OFFSET_LIMIT
        self._resume = snap.resume
        self._set_watermark(watermark, persist=False)
        self._seen = self.store.seen_since(epoch(self._cutoff))
        log.debug("loaded %d fingerprints at or after %s", len(self._seen), self._cutoff)

        today = t0.date()
        start = query_start(watermark, cfg.lookback)
        oldest = retention_floor(today)
        if start < oldest:
            if snap.watermark is not None and watermark - cfg.lookback < midnight(oldest):
                note = (
                    f"the stored watermark {rfc3339_millis(watermark)} is older than Zoom keeps records; "
                    f"records before {oldest} can no longer be fetched"
                )
                log.warning(note)
                self.summary.notes.append(note)
            start = oldest
        self._end = query_end(t0, self._offset_limit, self._to_inclusive)
        workers = windows_at_once(self.config.concurrency, self.config.max_rps)
        first = next_window(start, self._end)
        if workers == 1 or first.end >= self._end:  # an hourly run reads one window: no threads
            self._read_in_order(first, today, t0)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="zoom-window") as pool:
                self._read_at_once(first, today, t0, pool, workers)
        if self.summary.outcome == "running":
            self.summary.outcome = "complete"

    # -- windows, one or several at a time --------------------------------------------------------
    def _plan(self, window: Window, previous: _Slot | None, at_once: bool) -> _Slot:
        """The slot for ``window``: which of its days it shares with its neighbours.

        Until `to` is known to be inclusive, consecutive windows share a day; records of that day
        may come with either window, so they are checked against the store before they are sent.
        """
        shared = not self._to_inclusive
        before = previous is not None and shared and (previous.read or previous.window).end == window.start
        after = at_once and shared and window.end < self._end
        return _Slot(
            window,
            recheck_before=shared_until(window) if before else None,
            recheck_from=shared_from(window) if after else None,
        )

    def _next(self, slot: _Slot) -> Window | None:
        """The window after ``slot``'s, None when it reached the last day to ask for."""
        if slot.unservable:
            return None
        window = slot.read or slot.window
        if window.end >= self._end:
            return None
        return next_window(following_start(window, self._to_inclusive), self._end)

    def _read_slot(self, slot: _Slot, today: date) -> _Slot:
        """Read one planned window (in a reader thread when several are read at once)."""
        slot.read = self._read_window(slot, today)
        slot.finished = True
        self._first_page.set()
        return slot

    def _read_in_order(self, window: Window | None, today: date, t0: datetime) -> None:
        """One window at a time, each planned with all that the ones before it taught."""
        previous: _Slot | None = None
        while window is not None:
            slot = self._read_slot(self._plan(window, previous, at_once=False), today)
            if not self._advance([slot], t0):
                return
            previous, window = slot, self._next(slot)

    def _read_at_once(
        self, window: Window | None, today: date, t0: datetime, pool: ThreadPoolExecutor, workers: int
    ) -> None:
        """Up to ``workers`` windows at a time; the watermark moves over those finished in order.

        The second window starts only after the first page of the first has been read, so that the
        sort order and an inclusive `to` are usually known before more windows are planned.
        """
        slots: list[_Slot] = []  # planned and not yet passed by the watermark, oldest first
        previous: _Slot | None = None
        running: set[Future[_Slot]] = set()
        failure: BaseException | None = None
        stopped = False
        try:
            while True:
                while not stopped and len(running) < workers:
                    if running and not self._first_page.is_set():
                        break
                    # Planned only now, with all that the pages read so far taught (an inclusive `to`).
                    window = window if previous is None else self._next(previous)
                    if window is None:
                        break
                    slot = previous = self._plan(window, previous, at_once=True)
                    slots.append(slot)
                    running.add(pool.submit(self._read_slot, slot, today))
                if not running:
                    break
                probing = not self._first_page.is_set()
                done, running = wait(running, timeout=0.05 if probing else None, return_when=FIRST_COMPLETED)
                for future in done:
                    error = future.exception()
                    if error is not None and failure is None:
                        failure, self._failed = error, True
                stopped = stopped or failure is not None or any(s.finished and s.read is None for s in slots)
                with self._lock:
                    self._advance(slots, t0)
        except BaseException:  # a second Ctrl-C: the readers stop after their page
            self._failed = True
            raise
        if failure is not None:
            raise failure

    def _advance(self, slots: list[_Slot], t0: datetime) -> bool:
        """Move the watermark over the finished windows, oldest first; False once a window stopped the run."""
        while slots and slots[0].finished:
            slot = slots.pop(0)
            if slot.read is None:
                slots.clear()
                return False
            self.summary.windows += 1
            covered = covered_until(slot.read, self._to_inclusive, self._offset_limit)
            self._set_watermark(min(covered, t0), persist=True, finished=slot.keys())
        return True

    def _starting_point(self, snap: Snapshot, t0: datetime) -> tuple[datetime, datetime]:
        """The watermark and floor this run starts from.

        Until a first page has been committed, the backfill start of this run replaces the stored
        one (a first run that failed must not pin it). Once records were delivered, a different
        backfill start changes nothing: `state rewind` is the way back.
        """
        start = self.config.backfill_start
        if snap.watermark is not None and snap.floor is not None:
            if start is None or start == (snap.backfill_start or snap.floor) or self._both_past_retention(snap, start):
                return snap.watermark, snap.floor
            if snap.delivered:
                log.warning(
                    "--backfill-start %s differs from the stored start %s and records were already delivered, "
                    "so it is ignored; to send again everything since a date run "
                    "`zoom-oplog-shipper state rewind --to %s --yes`",
                    rfc3339_millis(start),
                    rfc3339_millis(snap.backfill_start or snap.floor),
                    start.date().isoformat() if start == midnight(start.date()) else rfc3339_millis(start),
                )
                return snap.watermark, snap.floor
            log.info("no record delivered yet: the backfill start %s replaces the stored one", rfc3339_millis(start))
        watermark = start or t0
        self.store.start(watermark, watermark, start)
        if start:
            log.info("first run: backfilling from %s", rfc3339_millis(watermark))
        else:
            log.info(
                "first run: starting at %s; older records are not fetched (set --backfill-start to fetch them)",
                rfc3339_millis(watermark),
            )
        return watermark, watermark

    def _both_past_retention(self, snap: Snapshot, start: datetime) -> bool:
        """Both starts mean "as far back as Zoom keeps": the configured one is clamped daily to Zoom's retention."""
        oldest = midnight(retention_floor(self.clock.now().date()))
        return start <= oldest and (snap.backfill_start or snap.floor or oldest) <= oldest

    def _set_watermark(
        self, watermark: datetime, *, persist: bool, finished: list[tuple[str, str]] | None = None
    ) -> None:
        """Move the watermark forward (never back); persisting it also drops the finished windows' resume points."""
        current = self._watermark
        if current is not None and watermark < current:
            watermark = current
        self._watermark = watermark
        self._cutoff = max(watermark - self.config.lookback, self._floor)
        self._cutoff_epoch = epoch(self._cutoff)
        self.summary.watermark = rfc3339_millis(watermark)
        if persist:
            self.store.advance(watermark, self._cutoff_epoch, finished)

    # -- one window -----------------------------------------------------------------------------
    def _stop_reason(self) -> str | None:
        if self._failed:
            return "stopped after another window failed"
        if self.should_stop():
            return "stopped by signal"
        if self.clock.monotonic() >= self._deadline:
            return "stopped at --max-runtime"
        return self._records_limit()

    def _records_limit(self) -> str | None:
        if 0 < self.config.max_records <= self.summary.emitted:
            return "stopped at --max-records"
        return None

    def _stopping(self, window: Window, reason: str | None) -> bool:
        """Whether the window's reader stops here (``reason`` given); says so, and why."""
        if reason is None:
            return False
        if not self._failed:
            self.summary.outcome = reason
        log.info(
            "%s before finishing %s..%s; progress is committed, the next run continues",
            reason,
            window.start,
            window.end,
        )
        return True

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

    def _resumed(self, window: Window) -> Window:
        """The part of ``window`` an earlier, interrupted run left to read (all of it if none)."""
        key = (window.start.isoformat(), window.end.isoformat())
        r = next((p for p in self._resume if (p["start"], p["end"]) == key), None)
        if r is None:
            return window
        narrowed = Window(date.fromisoformat(r["from"]), date.fromisoformat(r["to"]))
        log.info(
            "resuming %s..%s where the last run stopped: asking for %s..%s",
            window.start,
            window.end,
            narrowed.start,
            narrowed.end,
        )
        return narrowed

    def _narrow(self, query: Window, cursor: Cursor, ordered: bool) -> Window:
        """After a page in time order, the days that can still hold records not yet emitted.

        Newest first: everything newer than the page's oldest record is out, so `to` can move back to
        the last day that record can fall on in any time zone. Oldest first: `from` moves forward alike.
        """
        if not ordered or cursor.oldest is None or cursor.newest is None:
            return query
        if cursor.direction == -1:
            last_day = (cursor.oldest + MAX_TZ_OFFSET).date() + timedelta(days=0 if self._to_inclusive else 1)
            return Window(query.start, max(query.start, min(query.end, last_day)))
        if cursor.direction == 1:
            first_day = (cursor.newest + MIN_TZ_OFFSET).date()
            return Window(min(query.end, max(query.start, first_day)), query.end)
        return query

    def _read_window(self, slot: _Slot, today: date) -> Window | None:
        """Read a whole window; returns it (possibly narrowed), or None when the run must stop first
        or the API cannot serve the window yet (``slot.unservable``)."""
        window = slot.window
        restarts = 0
        retention_shifts = 0
        cursor = _WindowCursor(ordered=not self._unordered)
        token = ""
        query = self._resumed(window)
        while True:
            if self._stopping(window, self._stop_reason()):
                return None
            try:
                page = self.pages.get_page(query, token)
            except PageTokenExpired as exc:
                restarts += 1
                if restarts > MAX_WINDOW_RESTARTS:
                    msg = f"page tokens for {window.start}..{window.end} kept expiring ({exc}); progress is kept"
                    raise ApiError(msg) from None
                # Ask again for only the days that can still hold records not yet emitted.
                query = cursor.remaining or query
                log.info("page token refused (%s); reading %s..%s again from page one", exc, query.start, query.end)
                cursor = _WindowCursor(ordered=not self._unordered, recheck_all=True)
                token = ""
                continue
            except InvalidRequest as exc:
                if token:
                    raise
                with self._lock:
                    narrowed = self._after_refusal(query, today, exc, retention_shifts)
                if narrowed is None:
                    slot.unservable = True
                    return None
                if narrowed.start != query.start:
                    retention_shifts += 1
                if narrowed.end != query.end and query == window:
                    window = Window(window.start, narrowed.end)
                query = narrowed
                continue
            try:
                with self._lock:
                    # Another window may have reached --max-records while this page was on its way:
                    # it is not sent (nor committed), and the next run asks for it again.
                    if self._stopping(window, self._records_limit()):
                        return None
                    self.summary.pages += 1
                    done = self._emit_page(page.records, window, query, cursor, slot)
                    self._progress(window, cursor.remaining)
            except _RestartWindow:
                cursor = _WindowCursor(ordered=False, recheck_all=True)
                token = ""
                continue
            self._first_page.set()
            if done or not page.next_page_token:
                return window
            token = page.next_page_token

    def _after_refusal(self, window: Window, today: date, exc: InvalidRequest, shifts: int) -> Window | None:
        """Adapt to what Zoom refused on page one, or raise.

        Returns the window to ask for instead, or None when none of its days can be asked for yet.
        """
        text = str(exc).lower()
        if window.end == self._end and window.end >= today - timedelta(days=1):
            # Perhaps a day after the API's own today: learn from it and ask for an earlier `to`.
            now = self.clock.now()
            limit = offset_limit_after_refusal(window.end, now, self._offset_limit)
            end = min(query_end(now, limit, self._to_inclusive), window.end - timedelta(days=1))
            if end >= today - timedelta(days=1):
                log.info("Zoom refused `to` %s (after its own today?); asking up to %s", window.end, end)
                self._offset_limit = limit
                self._end = end
                self.store.learn("offset_limit", str(int(limit.total_seconds())))
                return None if window.start > end else Window(window.start, end)
        if "month" in text and shifts < 3 and window.start < today - timedelta(days=150):
            log.warning("Zoom refused %s as older than it keeps; starting a day later", window.start)
            return Window(window.start + timedelta(days=1), max(window.end, window.start + timedelta(days=1)))
        raise exc

    def _emit_page(self, records: list[Any], window: Window, query: Window, cursor: _WindowCursor, slot: _Slot) -> bool:
        """Print the page's new records, then commit them. True when the window needs no more pages."""
        scan = scan_page(
            records,
            cursor.scan,
            account_id=self.config.account_id,
            cutoff=self._cutoff,
            seen=self._seen,
            ordered=cursor.ordered,
            inclusive_bound=None if self._to_inclusive else inclusive_bound(query),
        )
        for entry in scan.skipped:
            log.warning("skipping a log entry that is not an object: %.200r", entry)
        if scan.to_inclusive:
            self._to_inclusive = True
            self.store.learn("to_inclusive")
            log.debug("Zoom returned a record on the `to` day itself: `to` is inclusive")
        if scan.unordered:
            self._unordered = True
            log.debug("records of %s..%s are not sorted by time; reading it again in full", window.start, window.end)
            raise _RestartWindow
        cursor.scan = scan.cursor
        candidates = self._not_in_store(scan.candidates, cursor.recheck_all, slot)
        narrowed = cursor.remaining = self._narrow(query, scan.cursor, cursor.ordered)
        resume = {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "from": narrowed.start.isoformat(),
            "to": narrowed.end.isoformat(),
        }
        if candidates:
            page = render_page(
                candidates, self.formatter, self.encoder, rfc3339_millis(self.clock.now()), epoch(self._t0)
            )
            for hexid in page.untimed:
                log.warning("record %s has no parsable time; emitted with @timestamp = now, tagged", hexid)
            self.summary.untimed += len(page.untimed)
            self.writer.write_page(page.lines)
            self.store.commit_page(page.entries, resume)
            self.summary.emitted += len(page.lines)
        elif narrowed != query:
            self.store.commit_page((), resume)
        return scan.done

    def _not_in_store(self, candidates: list[Candidate], recheck_all: bool, slot: _Slot) -> list[Candidate]:
        """Drop the candidates that another window of this run (or an interrupted run) already emitted.

        Only records that can have been read before are looked up: the days shared with the windows
        beside this one, records without a time, or all of them after a restarted window.
        """
        before, after = slot.recheck_before, slot.recheck_from
        if not candidates or not (recheck_all or before is not None or after is not None):
            return candidates
        maybe = [
            fp
            for fp, _, t in candidates
            if recheck_all or t is None or (before and t < before) or (after and t >= after)
        ]
        known = self.store.already_seen(maybe) if maybe else set()
        return [c for c in candidates if c[0] not in known] if known else candidates
