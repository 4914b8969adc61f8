"""The sync engine: read a stream's new records window by window, print them, commit progress.

The engine knows no log type: it reads pages from a `PageSource` (one stream of the Zoom client)
and formats records with the formatter it is given.

Order of durability: a page's lines are written and flushed before its fingerprints are committed,
so a kill at any instant loses nothing and re-sends at most one page (with the same `event.id`s).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import Config
from zoom_oplog_shipper.errors import ApiError
from zoom_oplog_shipper.output import PageWriter
from zoom_oplog_shipper.records import epoch, rfc3339_millis
from zoom_oplog_shipper.scan import Candidate, Cursor, Encoder, Formatter, render_page, scan_page
from zoom_oplog_shipper.state import Snapshot, StateStore
from zoom_oplog_shipper.windows import (
    MAX_TZ_OFFSET,
    MIN_TZ_OFFSET,
    UNKNOWN_OFFSET_LIMIT,
    Window,
    covered_until,
    following_start,
    midnight,
    next_window,
    offset_limit_after_refusal,
    query_end,
    query_start,
    retention_floor,
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


@dataclass
class RunSummary:
    """What one run did (the summary line and `state show`)."""

    started: str = ""
    emitted: int = 0
    pages: int = 0
    requests: int = 0
    retries: int = 0
    windows: int = 0
    duration_s: float = 0.0
    watermark: str = ""
    outcome: str = "running"
    untimed: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def lag_s(self, now: datetime) -> float | None:
        """Seconds from the watermark to ``now`` (None before a watermark is known)."""
        if not self.watermark:
            return None
        return round((now - datetime.fromisoformat(self.watermark.replace("Z", "+00:00"))).total_seconds(), 1)

    def fields(self, exit_code: int, now: datetime, account: str, category: str, stream: str) -> dict[str, Any]:
        """The summary's machine form: the top-level keys of the JSON summary line."""
        return {
            "outcome": self.outcome,
            "exit_code": exit_code,
            "emitted": self.emitted,
            "pages": self.pages,
            "requests": self.requests,
            "retries": self.retries,
            "duration_s": self.duration_s,
            "watermark": self.watermark or None,
            "lag_s": self.lag_s(now),
            "account": account,
            "stream": stream,
            "category": category,
        }

    def line(self, exit_code: int = 0, lag_s: float | None = None) -> str:
        """The one-line summary printed on stderr at the end of a run; it starts with the outcome."""
        lag = f", lag {lag_s:.0f}s" if lag_s is not None else ""
        return (
            f"{self.outcome}: {self.emitted} records emitted, {self.pages} pages, "
            f"{self.requests} requests, {self.retries} retries, {self.windows} windows, "
            f"{self.duration_s:.1f}s, watermark {self.watermark or 'none'}{lag}, exit code {exit_code}"
        )


#: Returned for a window the API will not serve yet (its days are after the API's today).
_NOTHING_TO_ASK = Window(date.min, date.min)


class _RestartWindow(Exception):
    """Read the current window again from page one."""


@dataclass
class _WindowCursor:
    """Per-window reading state: the page scanner's cursor plus what the engine tracks around it."""

    scan: Cursor = field(default_factory=Cursor)
    recheck_all: bool = False
    remaining: Window | None = None  # the days that can still hold records not yet emitted


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
        self._recheck_before: datetime | None = None
        window = next_window(start, self._end)
        while True:
            read = self._read_window(window, today)
            if read is None or read is _NOTHING_TO_ASK:
                break
            window = read
            self.summary.windows += 1
            covered = covered_until(window, self._to_inclusive, self._offset_limit)
            self._set_watermark(min(covered, t0), persist=True)
            if window.end >= self._end:
                break
            nxt = following_start(window, self._to_inclusive)
            # What the next window shares with this one may already be out: check it against the store.
            self._recheck_before = (
                None if self._to_inclusive else midnight(window.end + timedelta(days=1)) - MIN_TZ_OFFSET
            )
            window = next_window(nxt, self._end)
        if self.summary.outcome == "running":
            self.summary.outcome = "complete"

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

    def _set_watermark(self, watermark: datetime, *, persist: bool) -> None:
        """Move the watermark forward (never back); persisting it also ends the window's resume point."""
        current = self._watermark
        if current is not None and watermark < current:
            watermark = current
        self._watermark = watermark
        self._cutoff = max(watermark - self.config.lookback, self._floor)
        self._cutoff_epoch = epoch(self._cutoff)
        self.summary.watermark = rfc3339_millis(watermark)
        if persist:
            self.store.advance(watermark, self._cutoff_epoch)

    # -- one window -----------------------------------------------------------------------------
    def _stop_reason(self) -> str | None:
        if self.should_stop():
            return "stopped by signal"
        if self.clock.monotonic() >= self._deadline:
            return "stopped at --max-runtime"
        if 0 < self.config.max_records <= self.summary.emitted:
            return "stopped at --max-records"
        return None

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
        r = self._resume
        if r is None or (r["start"], r["end"]) != (window.start.isoformat(), window.end.isoformat()):
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

    def _narrow(self, window: Window, query: Window, cursor: Cursor) -> Window:
        """After a page in time order, the days that can still hold records not yet emitted.

        Newest first: everything newer than the page's oldest record is out, so `to` can move back to
        the last day that record can fall on in any time zone. Oldest first: `from` moves forward alike.
        """
        if self._unordered or cursor.oldest is None or cursor.newest is None:
            return query
        if cursor.direction == -1:
            last_day = (cursor.oldest + MAX_TZ_OFFSET).date() + timedelta(days=0 if self._to_inclusive else 1)
            return Window(query.start, max(query.start, min(query.end, last_day)))
        if cursor.direction == 1:
            first_day = (cursor.newest + MIN_TZ_OFFSET).date()
            return Window(min(query.end, max(query.start, first_day)), query.end)
        return query

    def _read_window(self, window: Window, today: date) -> Window | None:
        """Read a whole window; returns it (possibly narrowed), or None when the run must stop first."""
        restarts = 0
        retention_shifts = 0
        cursor = _WindowCursor()
        token = ""
        query = self._resumed(window)
        while True:
            reason = self._stop_reason()
            if reason:
                self.summary.outcome = reason
                log.info(
                    "%s before finishing %s..%s; progress is committed, the next run continues",
                    reason,
                    window.start,
                    window.end,
                )
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
                cursor = _WindowCursor(recheck_all=True)
                token = ""
                continue
            except InvalidRequest as exc:
                if token:
                    raise
                narrowed = self._after_refusal(query, today, exc, retention_shifts)
                if narrowed is None:
                    return _NOTHING_TO_ASK
                if narrowed.start != query.start:
                    retention_shifts += 1
                if narrowed.end != query.end and query == window:
                    window = Window(window.start, narrowed.end)
                query = narrowed
                continue
            self.summary.pages += 1
            try:
                done = self._emit_page(page.records, window, query, cursor)
            except _RestartWindow:
                cursor = _WindowCursor(recheck_all=True)
                token = ""
                continue
            self._progress(window, cursor.remaining)
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

    def _emit_page(self, records: list[Any], window: Window, query: Window, cursor: _WindowCursor) -> bool:
        """Print the page's new records, then commit them. True when the window needs no more pages."""
        scan = scan_page(
            records,
            cursor.scan,
            account_id=self.config.account_id,
            cutoff=self._cutoff,
            seen=self._seen,
            ordered=not self._unordered,
            inclusive_bound=None if self._to_inclusive else midnight(query.end) - MIN_TZ_OFFSET,
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
        candidates = self._not_in_store(scan.candidates, cursor.recheck_all)
        narrowed = cursor.remaining = self._narrow(window, query, scan.cursor)
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

    def _not_in_store(self, candidates: list[Candidate], recheck_all: bool) -> list[Candidate]:
        """Drop the candidates that an earlier window of this run (or an interrupted run) already emitted.

        Only records that can have been read before are looked up: the day shared with the previous
        window, records without a time, or all of them after a restarted window.
        """
        recheck = self._recheck_before
        if not candidates or not (recheck_all or recheck is not None):
            return candidates
        maybe = [fp for fp, _, t in candidates if recheck_all or t is None or (recheck and t < recheck)]
        known = self.store.already_seen(maybe) if maybe else set()
        return [c for c in candidates if c[0] not in known] if known else candidates
