"""Reading one window: its pages one after another, each delivered before the next is asked for.

Pages within a window are a chain (each next_page_token comes from the answer before), so a reader
asks for one page at a time. It handles what Zoom answers about the window itself: an expired page
token (read again from page one, only the days still to read) and a refused first page (a `to` after
the API's today, a day older than Zoom keeps). What it learns goes back through the `Delivery`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from zoom_oplog_shipper.delivery import Delivered, Delivery, WindowCursor
from zoom_oplog_shipper.errors import ApiError
from zoom_oplog_shipper.pages import InvalidRequestError, Page, PageSource, PageTokenExpiredError
from zoom_oplog_shipper.planning import Slot, after_refusal
from zoom_oplog_shipper.windows import Window

log = logging.getLogger(__name__)

#: A window whose page token keeps expiring is read again from page one at most this often.
MAX_WINDOW_RESTARTS = 3


@dataclass
class _Reading:
    """How far a window's reading has got."""

    #: The window (its end moves back when Zoom refuses a `to` after its today) and the days asked for.
    window: Window
    query: Window
    cursor: WindowCursor
    token: str = ""
    restarts: int = 0
    retention_shifts: int = 0

    def again(self, cursor: WindowCursor) -> None:
        """Read from page one again with ``cursor``."""
        self.cursor = cursor
        self.token = ""


class WindowReader:
    """Reads planned windows' pages from a `PageSource` and hands each to the `Delivery`."""

    def __init__(self, pages: PageSource, delivery: Delivery, today: date, on_page: Callable[[], None]) -> None:
        self.pages = pages
        self.delivery = delivery
        self.today = today
        #: Called after each delivered page (the scheduler waits for a window's first page).
        self.on_page = on_page

    def read(self, slot: Slot) -> Slot:
        """Read one planned window (in a worker thread when several are read at once); fills in ``slot``."""
        slot.read = self._read(slot)
        return slot

    def _read(self, slot: Slot) -> Window | None:
        """The whole window, as read (its end may have moved); None when the run must stop first or the
        API cannot serve the window yet (``slot.unservable``)."""
        reading = self._start(slot.window)
        delivery = self.delivery
        while True:
            if delivery.stopping(reading.window, delivery.stop_reason()):
                return None
            page = self._fetch(slot, reading)
            if page is None:
                if slot.unservable:
                    return None
                continue
            delivered = delivery.deliver(page.records, slot, reading.window, reading.query, reading.cursor)
            if delivered is Delivered.STOP:
                return None
            if delivered is Delivered.RESTART:
                reading.again(WindowCursor(ordered=False, recheck_all=True))
                continue
            self.on_page()
            if delivered is Delivered.DONE or not page.next_page_token:
                return reading.window
            reading.token = page.next_page_token

    def _start(self, window: Window) -> _Reading:
        """Where a window's reading starts: the part an interrupted run left to read, or all of it."""
        state = self.delivery.state
        query = state.resumed(window)
        if query is None:
            query = window
        else:
            log.info(
                "resuming %s..%s where the last run stopped: asking for %s..%s",
                window.start,
                window.end,
                query.start,
                query.end,
            )
        return _Reading(window, query, WindowCursor(ordered=not state.facts.unordered))

    def _fetch(self, slot: Slot, reading: _Reading) -> Page | None:
        """The next page; None when the window must be asked for anew (see ``reading``) or cannot be yet."""
        try:
            page = self.pages.get_page(reading.query, reading.token)
        except PageTokenExpiredError as exc:
            self._token_expired(reading, exc)
            return None
        except InvalidRequestError as exc:
            if reading.token:
                raise
            self._refused(slot, reading, exc)
            return None
        with self.delivery.lock:
            self.delivery.state.timed(page.seconds)
        return page

    def _token_expired(self, reading: _Reading, exc: PageTokenExpiredError) -> None:
        """Read again from page one, only the days that can still hold records not yet emitted."""
        reading.restarts += 1
        window = reading.window
        if reading.restarts > MAX_WINDOW_RESTARTS:
            msg = f"page tokens for {window.start}..{window.end} kept expiring ({exc}); progress is kept"
            raise ApiError(msg) from None
        reading.query = reading.cursor.remaining or reading.query
        log.info(
            "page token refused (%s); reading %s..%s again from page one", exc, reading.query.start, reading.query.end
        )
        reading.again(WindowCursor(ordered=not self.delivery.state.facts.unordered, recheck_all=True))

    def _refused(self, slot: Slot, reading: _Reading, exc: InvalidRequestError) -> None:
        """Adapt to what Zoom refused on page one (or raise): see `planning.after_refusal`."""
        delivery = self.delivery
        with delivery.lock:
            facts = delivery.state.facts
            refused = after_refusal(
                reading.query,
                str(exc),
                end=facts.end,
                today=self.today,
                now=delivery.clock.now(),
                offset_limit=facts.offset_limit,
                to_inclusive=facts.to_inclusive,
                shifts=reading.retention_shifts,
            )
            if refused is None:
                raise exc
            delivery.learn_refusal(refused)
        narrowed = refused.query
        if narrowed is None:
            slot.unservable = True
            return
        reading.retention_shifts += refused.shifted
        if narrowed.end != reading.query.end and reading.query == reading.window:
            reading.window = Window(reading.window.start, narrowed.end)
        reading.query = narrowed
