"""What one run did: the counts and outcome behind the summary line, `state show` and the metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


class RunLabels(NamedTuple):
    """Which run it was: the summary's account, stream and category, and every gauge's labels."""

    account: str
    category: str
    stream: str = "operations"


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

    def fields(self, exit_code: int, now: datetime, labels: RunLabels) -> dict[str, Any]:
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
            "account": labels.account,
            "stream": labels.stream,
            "category": labels.category,
        }

    def line(self, exit_code: int = 0, lag_s: float | None = None) -> str:
        """The one-line summary printed on stderr at the end of a run; it starts with the outcome."""
        lag = f", lag {lag_s:.0f}s" if lag_s is not None else ""
        return (
            f"{self.outcome}: {self.emitted} records emitted, {self.pages} pages, "
            f"{self.requests} requests, {self.retries} retries, {self.windows} windows, "
            f"{self.duration_s:.1f}s, watermark {self.watermark or 'none'}{lag}, exit code {exit_code}"
        )
