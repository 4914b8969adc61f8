"""The metrics file: the last run's health in Prometheus text format, for node_exporter's textfile collector.

Written after every run, whatever its outcome, atomically (a temporary file in the same directory,
fsync, rename), so the collector never reads half a file and no temporary file is left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zoom_oplog_shipper.summary import RunLabels

PREFIX = "zoom_oplog_"

#: name (without prefix) -> help text; all are gauges labelled with account, stream and category.
GAUGES = {
    "last_run_timestamp_seconds": "When the last run ended (Unix time).",
    "last_success_timestamp_seconds": (
        "When the last successful run ended (Unix time); kept across failed runs and runs skipped for the lock."
    ),
    "last_exit_code": (
        "Exit code of the last run (0 ok or skipped, 1 failure, 2 config, 3 auth, 4 daily limit, 5 state, 130 Ctrl-C)."
    ),
    "last_run_records": "Records the last run printed on stdout.",
    "last_run_requests": "Requests the last run made to Zoom (token and report).",
    "last_run_duration_seconds": "How long the last run took.",
    "watermark_timestamp_seconds": "Everything before this time has been delivered (Unix time).",
}
#: Values taken from the previous file when this run does not know them.
_KEPT = ("last_success_timestamp_seconds", "watermark_timestamp_seconds")


@dataclass(frozen=True)
class RunMetrics:
    """What one run reports; None means "not known by this run" (the old file's value is kept)."""

    labels: RunLabels
    finished: float
    exit_code: int
    records: int
    requests: int
    duration_s: float
    watermark: float | None
    #: Another run held the lock: exit 0, but nothing was done, so not a success.
    skipped: bool = False


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(run: RunLabels) -> str:
    return f'{{account="{_escape(run.account)}",stream="{_escape(run.stream)}",category="{_escape(run.category)}"}}'


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(values: Mapping[str, float], run: RunLabels) -> str:
    """The file's text: HELP, TYPE and one sample per known gauge, in a fixed order."""
    labels = _labels(run)
    lines = []
    for name, help_text in GAUGES.items():
        if name not in values:
            continue
        lines += [
            f"# HELP {PREFIX}{name} {help_text}",
            f"# TYPE {PREFIX}{name} gauge",
            f"{PREFIX}{name}{labels} {_number(values[name])}",
        ]
    return "\n".join(lines) + "\n"


_SAMPLE = re.compile(rf"^{PREFIX}([a-z_]+)(?:\{{[^}}]*\}})?\s+(\S+)")


def parse_previous(text: str) -> dict[str, float]:
    """The gauge values of an earlier file written by :func:`render` (unreadable lines are skipped)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) in GAUGES:
            with contextlib.suppress(ValueError):
                values[match.group(1)] = float(match.group(2))
    return values


def current_values(run: RunMetrics, previous: Mapping[str, float]) -> dict[str, float]:
    """This run's gauges, with the last success and watermark kept from ``previous`` when unknown now."""
    values: dict[str, float] = {
        "last_run_timestamp_seconds": run.finished,
        "last_exit_code": run.exit_code,
        "last_run_records": run.records,
        "last_run_requests": run.requests,
        "last_run_duration_seconds": run.duration_s,
    }
    if run.exit_code == 0 and not run.skipped:
        values["last_success_timestamp_seconds"] = run.finished
    if run.watermark is not None:
        values["watermark_timestamp_seconds"] = run.watermark
    for name in _KEPT:
        if name not in values and name in previous:
            values[name] = previous[name]
    return values


def write_metrics(path: Path, run: RunMetrics) -> None:
    """Replace ``path`` atomically with this run's metrics; raises OSError when it cannot."""
    try:
        previous = parse_previous(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:  # none yet, or unreadable: this run's values are all there is
        previous = {}
    text = render(current_values(run, previous), run.labels)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # the collector runs as another user
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
