"""The page-source vocabulary: what the engine reads, and what the HTTP client serves it with.

The engine knows a stream's report only as a `PageSource`: one page of records for a date window at
a time, with retries and pacing inside. Both the engine and the client (`zoom_client`) import these
names; the engine imports neither the client nor ``requests``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from zoom_oplog_shipper.errors import ApiError
from zoom_oplog_shipper.windows import Window

#: Records a page holds at most (the largest page_size Zoom's report endpoints accept).
PAGE_SIZE = 300


@dataclass(frozen=True)
class Page:
    """One page of records."""

    records: list[Any]
    next_page_token: str
    #: How long Zoom took to answer (seconds; not counting the rate limit's wait or retries).
    seconds: float = 0.0


class PageTokenExpiredError(Exception):
    """Zoom refused a next_page_token; the window must be read again from page one."""


class InvalidRequestError(ApiError):
    """Zoom refused the request's parameters (code 300 and similar)."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Counters:
    """Requests and retries made so far (for the summary line)."""

    requests: int = 0
    retries: int = 0


class PageSource(Protocol):
    """Where the engine reads pages: one stream's report, with retries and pacing inside."""

    @property
    def counters(self) -> Counters:
        """Requests and retries so far."""

    def set_deadline(self, deadline: float | None) -> None:
        """Wait for no retry past this monotonic time."""

    def get_page(self, window: Window, next_page_token: str = "") -> Page:
        """One page of records for ``window``; raises PageTokenExpiredError or InvalidRequestError as Zoom answers."""
