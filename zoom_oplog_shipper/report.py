"""The end of every `run`: the message for a failure, the summary line, the stored summary, the metrics file.

The summary is the last stderr line of every run, whatever its outcome, so an agent can route and
alert on it; with ``--log-format json`` its fields are top-level keys.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import Config
from zoom_oplog_shipper.errors import ExitCode, OutputClosedError, OutputError, ShipperError
from zoom_oplog_shipper.logs import LOGGER_NAME, log_summary
from zoom_oplog_shipper.records import rfc3339_millis
from zoom_oplog_shipper.streams import Stream, stream_of
from zoom_oplog_shipper.summary import RunLabels, RunSummary

log = logging.getLogger(LOGGER_NAME)

#: A second Ctrl-C stops at once; the shell convention for SIGINT.
EXIT_INTERRUPTED = 130
#: The outcome of a run that found another run holding the lock: exit 0, but not a success.
SKIPPED = "skipped"

#: The outcome a failed run reports, by exit code.
FAILED_OUTCOMES = {
    ExitCode.FAILURE: "failed",
    ExitCode.CONFIG: "configuration error",
    ExitCode.AUTH: "authentication or permission error",
    ExitCode.DAILY_LIMIT: "daily request limit reached",
    ExitCode.STATE: "state store unusable",
    EXIT_INTERRUPTED: "interrupted",
}
#: Expected stops that need no one's attention right now are warnings, the rest errors.
_WARNING_CODES = (ExitCode.DAILY_LIMIT, EXIT_INTERRUPTED)


def classify_exception(exc: BaseException) -> tuple[int, str]:
    """The exit code and the outcome for an exception that ended a run."""
    if isinstance(exc, OutputClosedError | BrokenPipeError):
        return int(ExitCode.FAILURE), "stdout closed"
    if isinstance(exc, OutputError):
        return int(ExitCode.FAILURE), "stdout not writable"
    if isinstance(exc, ShipperError):
        return int(exc.exit_code), FAILED_OUTCOMES[exc.exit_code]
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, FAILED_OUTCOMES[EXIT_INTERRUPTED]
    return int(ExitCode.FAILURE), FAILED_OUTCOMES[ExitCode.FAILURE]


def unexpected_message(exc: BaseException) -> str:
    """A one-line message for a failure the program did not foresee, without the exception's class name."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        detail = f"{exc.strerror}{where}"
    elif isinstance(exc, MemoryError):
        detail = "out of memory"
    else:
        detail = str(exc) or "no details"
    return (
        f"unexpected failure: {detail}; committed progress is kept. If it persists, please report it "
        "with the output of --log-level debug"
    )


def where(exc: BaseException, frames: int = 6) -> str:
    """Where ``exc`` happened, innermost frame first, on one line (for a debug line, never a traceback)."""
    stack = traceback.extract_tb(exc.__traceback__)[-frames:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack)) or "unknown"


@dataclass(eq=False)
class RunReport:
    """Collects what a run did and reports it once at its end, whatever happened."""

    clock: Clock
    labels: RunLabels
    metrics_file: Path | None
    #: `run --dry-run`: no metrics file, and the summary says nothing was committed.
    dry_run: bool = False
    summary: RunSummary = field(default_factory=RunSummary, init=False)
    _started: float = field(init=False)
    _failure: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._started = self.clock.monotonic()

    @classmethod
    def of(cls, clock: Clock, config: Config, *, dry_run: bool = False) -> RunReport:
        """The report of a run with these settings: the same labels whether the settings are valid or not."""
        report = cls(clock, RunLabels(config.account_id, ""), None, dry_run=dry_run)
        report.use(config, stream_of(config))
        return report

    def use(self, config: Config, stream: Stream) -> None:
        """Take the account, stream, category and metrics file from the settings."""
        self.labels = RunLabels(config.account_id, stream.partition(config), stream.key)
        self.metrics_file = None if self.dry_run else config.metrics_file

    def failed(self, exc: BaseException) -> None:
        """Name the outcome after what ended the run (``stdout closed`` rather than ``failed``)."""
        self._failure = classify_exception(exc)[1]

    def fields(self, code: int) -> dict[str, Any]:
        """The summary's fields for exit code ``code`` (the outcome follows the code, or what failed)."""
        if code != 0:
            self.summary.outcome = self._failure or FAILED_OUTCOMES.get(code, "failed")
        elif self.summary.outcome in ("running", "failed"):
            self.summary.outcome = "complete"
        if not self.summary.duration_s:
            self.summary.duration_s = round(self.clock.monotonic() - self._started, 3)
        return self.summary.fields(code, self.clock.now(), self.labels)

    def stored(self, code: int) -> dict[str, Any]:
        """What the state store keeps as the last run (and, on success, the last success)."""
        return {**self.summary.as_dict(), **self.fields(code), "finished": rfc3339_millis(self.clock.now())}

    def finish(self, code: int) -> None:
        """Write the metrics file (when set), then log the summary: the run's last stderr line."""
        fields = self.fields(code)
        if self.metrics_file is not None:
            self._write_metrics(self.metrics_file, fields)
        level = logging.INFO if code == 0 else logging.WARNING if code in _WARNING_CODES else logging.ERROR
        line = self.summary.line(code, fields["lag_s"])
        if self.dry_run:
            line += " (dry run: nothing was committed)"
            fields["dry_run"] = True
        log_summary(level, line, fields)

    def _write_metrics(self, path: Path, fields: dict[str, Any]) -> None:
        from zoom_oplog_shipper.metrics import RunMetrics, write_metrics

        watermark = self.summary.watermark
        run = RunMetrics(
            labels=self.labels,
            finished=round(self.clock.now().timestamp(), 3),
            exit_code=fields["exit_code"],
            records=self.summary.emitted,
            requests=self.summary.requests,
            duration_s=self.summary.duration_s,
            watermark=_epoch_of(watermark) if watermark else None,
            skipped=self.summary.outcome == SKIPPED,
        )
        try:
            write_metrics(path, run)
        except OSError as exc:
            log.warning(
                "cannot write the metrics file %s (%s); the run's outcome is unchanged. "
                "Check that the directory exists and is writable, or unset --metrics-file",
                path,
                exc.strerror or exc,
            )


def _epoch_of(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
