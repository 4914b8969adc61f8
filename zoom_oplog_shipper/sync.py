"""The sync engine: one pass over a stream's records that are new since the stored watermark.

The engine knows no stream: it reads pages from a `PageSource` and formats records with the
formatter it is given. It composes the parts, each in its own module:

- `planning`: where the run starts and which window comes next (pure functions);
- `run_state`: the watermark, cutoff, resume points and learned facts, and closing finished windows;
- `window_reader`: one window's pages, one after another; `delivery`: one page printed, then committed;
- `scheduler`: up to ``workers`` readers at once (one: in this thread), in one loop.

During a backfill several windows are read at once: each keeps its own cursor and resume point,
pages are written and committed one at a time, and the watermark only moves over windows that have
all finished, oldest first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

from zoom_oplog_shipper import planning
from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.delivery import Delivery, Limits, Output
from zoom_oplog_shipper.output import PageWriter
from zoom_oplog_shipper.pages import PageSource
from zoom_oplog_shipper.planning import Pace, Read, Slot
from zoom_oplog_shipper.records import epoch, rfc3339_millis
from zoom_oplog_shipper.run_state import Facts, RunState
from zoom_oplog_shipper.scan import Encoder, Formatter
from zoom_oplog_shipper.scheduler import Pool, schedule
from zoom_oplog_shipper.state import StateStore
from zoom_oplog_shipper.summary import RunSummary
from zoom_oplog_shipper.window_reader import WindowReader
from zoom_oplog_shipper.windows import UNKNOWN_OFFSET_LIMIT, Window, next_window, query_end

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    """The settings the engine reads (built from the run's Config by `pipeline.engine_options`)."""

    account_id: str
    lookback: timedelta
    max_runtime: timedelta
    backfill_start: datetime | None = None
    #: 0: no limit.
    max_records: int = 0
    #: Windows read at once during a backfill (1: one at a time).
    workers: int = 1
    #: --max-rps (0: no limit): with the round trip, it says when splitting the work pays.
    max_rps: float = 0.0


class SyncEngine:
    """One pass over a stream's records that are new since the stored watermark."""

    def __init__(
        self,
        options: EngineOptions,
        pages: PageSource,
        store: StateStore,
        writer: PageWriter,
        formatter: Formatter,
        encoder: Encoder,
        clock: Clock,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.options = options
        self.pages = pages
        self.store = store
        self.output = Output(writer, formatter, encoder, store)
        self.clock = clock
        self.should_stop = should_stop
        self.summary = RunSummary()

    def run(self) -> RunSummary:
        """Fetch, print and commit; returns the summary (also saved in the store)."""
        t0 = self.clock.now()
        started = self.clock.monotonic()
        self.summary.started = rfc3339_millis(t0)
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
        deadline = self.clock.monotonic() + self.options.max_runtime.total_seconds()
        self.pages.set_deadline(deadline)
        state, stored = self._start(t0)
        today = t0.date()
        first, note = planning.first_day(state.watermark, self.options.lookback, today, stored=stored)
        if note is not None:
            log.log(*note)
            self.summary.notes.append(note[1])
        delivery = Delivery(
            state,
            self.output,
            self.options.account_id,
            clock=self.clock,
            limits=Limits(self.should_stop, deadline, self.options.max_records),
            summary=self.summary,
            seen=self.store.seen_since(epoch(state.cutoff)),
        )
        log.debug("loaded %d fingerprints at or after %s", len(delivery.seen), state.cutoff)
        _Windows(delivery, self.pages, today, self.options).read_from(next_window(first, state.facts.end))
        if self.summary.outcome == "running":
            self.summary.outcome = "complete"

    def _start(self, t0: datetime) -> tuple[RunState, bool]:
        """The run's state (its starting point is recorded in the store on a first run), and whether a
        watermark was stored before."""
        snap = self.store.snapshot()
        start = planning.starting_point(snap, self.options.backfill_start, t0)
        for note in start.notes:
            log.log(*note)
        if start.fresh:
            self.store.start(start.watermark, start.floor, self.options.backfill_start)
        offset_limit = snap.offset_limit or UNKNOWN_OFFSET_LIMIT
        facts = Facts(query_end(t0, offset_limit, snap.to_inclusive), snap.to_inclusive, offset_limit)
        state = RunState(start.watermark, start.floor, self.options.lookback, facts, snap.resume, now=t0)
        self.summary.watermark = rfc3339_millis(state.watermark)
        return state, snap.watermark is not None


class _Windows:
    """The windows of one run: planned as readers fall idle, read by up to ``workers`` readers at once.

    The second window starts only after the first page of the first has been read, so that the sort
    order, an inclusive `to`, how dense the history is and how long an answer takes are known before
    more windows are planned (see `planning.next_read`).
    """

    def __init__(self, delivery: Delivery, pages: PageSource, today: date, options: EngineOptions) -> None:
        self.delivery = delivery
        self.state = delivery.state
        self.reader = WindowReader(pages, delivery, today, self._on_page)
        self.workers = options.workers
        self.max_rps = options.max_rps
        self.failure: BaseException | None = None
        #: Pages the splits so far are expected to add (kept within planning.SPLIT_BUDGET).
        self.spent = 0.0
        self._first_page = False
        self._first: Window | None = None
        self._previous: Slot | None = None
        self._pool: Pool[Slot] | None = None

    def read_from(self, first: Window) -> None:
        """Read every window from ``first`` on; raises what a reader raised, after the others stopped."""
        # An hourly run reads one window: no threads.
        workers = self.workers if first.end < self.state.facts.end else 1
        self._first = first
        with Pool(workers, self._read) as pool:
            self._pool = pool
            try:
                schedule(pool, partial(self._plan, pool), self._collected)
            except BaseException:  # a second Ctrl-C: the readers stop after their page
                self.state.failed = True
                raise
        if self.failure is not None:
            raise self.failure

    def _read(self, slot: Slot) -> Slot:
        self.reader.read(slot)
        with self.delivery.lock:
            self.state.finish(slot)
        self._on_page()
        return slot

    def _on_page(self) -> None:
        if not self._first_page:
            self._first_page = True
            if self._pool is not None:
                self._pool.wake()

    def _plan(self, pool: Pool[Slot]) -> Slot | None:
        """The next window to read now, with all that the pages read so far taught; None for none now."""
        state = self.state
        if state.stopped or state.failed or self.failure is not None:
            return None
        if pool.busy and not self._first_page:
            return None
        with self.delivery.lock:
            read = self._next_read(pool.workers)
            if read is None:
                return None
            self.spent += read.cost
            if read.victim is not None:
                log.debug("%s..%s split off the window read from %s", read.window.start, read.window.end,
                          read.victim.window.start)  # fmt: skip
                return state.split(read.victim, read.window)
            facts = state.facts
            slot = planning.plan_slot(
                read.window, self._previous, at_once=pool.workers > 1, to_inclusive=facts.to_inclusive, end=facts.end
            )
            self._previous = state.plan(slot)
        return slot

    def _next_read(self, workers: int) -> Read | None:
        """What an idle reader reads next: see `planning.next_read`."""
        state, facts = self.state, self.state.facts
        previous = self._previous
        upcoming = (
            self._first
            if previous is None
            else planning.window_after(previous, to_inclusive=facts.to_inclusive, end=facts.end)
        )
        pace = Pace(state.per_day, state.round_trip, self.max_rps, workers)
        pieces = [planning.piece(slot, pace) for slot in state.slots if not slot.finished]
        read = float(self.delivery.summary.pages)
        return planning.next_read(
            pace, pieces, upcoming, facts.end, read=read, spent=self.spent, to_inclusive=facts.to_inclusive
        )

    def _collected(self, finished: list[tuple[Slot, BaseException | None]]) -> None:
        """Note what failed (the other readers stop after their page); move the watermark over what finished."""
        for _slot, error in finished:
            if error is not None and self.failure is None:
                self.failure = error
                self.state.failed = True
        delivery = self.delivery
        with delivery.lock:
            for closed in self.state.close_windows():
                delivery.output.store.advance(closed.watermark, closed.prune_before, closed.finished)
                delivery.summary.windows += 1
            delivery.summary.watermark = rfc3339_millis(self.state.watermark)
