"""Time as the program sees it: injectable, so tests never sleep and never depend on the date."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall time (UTC), a monotonic counter, and sleep."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait."""
        time.sleep(seconds)
