"""`check`: validate settings, token, scopes, permission, clock and state.

It changes nothing, except creating the state directory and lock file a first run would create."""

from __future__ import annotations

import os
from contextlib import suppress
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TextIO

from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import Config
from zoom_oplog_shipper.errors import ExitCode, ShipperError, StateError
from zoom_oplog_shipper.state import RunLock, StateStore, make_state_dir
from zoom_oplog_shipper.streams import Stream, stream_of
from zoom_oplog_shipper.windows import Window
from zoom_oplog_shipper.zoom_client import ZoomClient

#: Beyond this difference from Zoom's clock, windows and token renewal can go wrong.
MAX_SKEW = timedelta(seconds=60)


class _Report:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.exit_code = ExitCode.OK

    def line(self, status: str, text: str) -> None:
        self.stream.write(f"[{status:^4}] {text}\n")
        self.stream.flush()

    def fail(self, text: str, code: ExitCode) -> None:
        self.line("FAIL", text)
        if self.exit_code == ExitCode.OK:
            self.exit_code = code


def run_check(config: Config, clock: Clock, session: Any, out: TextIO, log_type: Stream | None = None) -> int:
    """Print a human report on ``out`` (stderr) with a concrete fix per problem; returns the exit code."""
    report = _Report(out)
    log_type = log_type or stream_of(config)
    scope = f"category {config.category_type}" if log_type.partition(config) else f"stream {log_type.key}"
    report.line(
        "ok",
        f"configuration: account {config.account_id}, {log_type.title}, {scope}, "
        f"API {config.api_url}, token URL {config.oauth_url}",
    )
    _check_state(config, report, log_type)

    client = ZoomClient(config, clock=clock, session=session)
    try:
        client.token()
    except ShipperError as exc:
        report.fail(f"token: {exc}", exc.exit_code)
        return int(report.exit_code)
    report.line("ok", "token: Zoom issued an access token for these credentials")

    scopes = client.scopes
    if not scopes:
        report.line("info", "scopes: Zoom did not list the token's scopes; the request below tells")
    elif any(s in scopes for s in log_type.report.scopes):
        report.line("ok", f"scopes: {' '.join(s for s in scopes if s in log_type.report.scopes)} granted")
    else:
        report.fail(
            f"scopes: neither {' nor '.join(log_type.report.scopes)} is granted (needed for {log_type.title}); add one "
            "to the app's scopes (Zoom App Marketplace > your app > Scopes) and activate the app again",
            ExitCode.AUTH,
        )
    _check_clock(client, clock, report)

    today = clock.now().date()
    try:
        page = client.reader(log_type).get_page(Window(today - timedelta(days=1), today), page_size=1)
    except ShipperError as exc:
        report.fail(f"{log_type.title}: {exc}", exc.exit_code)
    else:
        found = "at least one record" if page.records else "no records"
        report.line("ok", f"{log_type.title}: readable ({found} since yesterday, {scope})")
    verdict = "all checks passed" if report.exit_code == ExitCode.OK else "some checks failed; fix them and run again"
    report.line("ok" if report.exit_code == ExitCode.OK else "FAIL", verdict)
    return int(report.exit_code)


def _check_state(config: Config, report: _Report, log_type: Stream) -> None:
    """The state directory can be created and written, the run lock taken, and an existing store read."""
    path = log_type.state_path(config)
    problem = probe_directory(path.parent)
    if problem:
        report.fail(f"state: {problem}", ExitCode.STATE)
        return
    lock = RunLock(path)
    try:
        taken = lock.acquire()
    except StateError as exc:
        report.fail(f"state: {exc}", ExitCode.STATE)
        return
    if taken:
        lock.release()
    else:
        report.line("info", f"state: a run holds {lock.path} right now (normal while one runs)")
    if not path.exists():
        report.line("ok", f"state: {path.parent} is writable; the first run creates {path}")
        return
    if not os.access(path, os.R_OK | os.W_OK):
        report.fail(
            f"state: {path} cannot be written by this user; fix its permissions (or run as its owner); "
            "do not reset it: it holds what was already sent",
            ExitCode.STATE,
        )
        return
    try:
        store = StateStore.open(path, config.account_id, log_type.store_key(config), readonly=True)
    except StateError as exc:
        report.fail(f"state: {exc}", ExitCode.STATE)
        return
    try:
        snap = store.snapshot()
    except StateError as exc:
        report.fail(f"state: {exc}", ExitCode.STATE)
        return
    finally:
        store.close()
    mark = snap.watermark.isoformat() if snap.watermark else "not set"
    report.line("ok", f"state: {path} (watermark {mark})")


def probe_directory(directory: Path) -> str | None:
    """Create ``directory`` if needed and write and delete a file in it; the problem and its fix, or None."""
    try:
        make_state_dir(directory)
    except StateError as exc:
        return str(exc)
    probe = directory / f".zoom-oplog-shipper-check-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as exc:
        with suppress(OSError):
            probe.unlink()
        return (
            f"cannot write in state directory {directory} ({exc.strerror}); "
            f"free space or fix permissions on {directory}"
        )
    return None


def _check_clock(client: ZoomClient, clock: Clock, report: _Report) -> None:
    header = client.last_date_header
    if not header:
        report.line("info", "clock: Zoom's answer had no Date header to compare with")
        return
    try:
        server = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        report.line("info", f"clock: cannot read Zoom's Date header {header!r}")
        return
    skew = clock.now() - server
    if abs(skew) > MAX_SKEW:
        report.fail(
            f"clock: this machine is {skew.total_seconds():+.0f}s off Zoom's clock; enable time sync "
            "(chrony, systemd-timesyncd or ntpd)",
            ExitCode.FAILURE,
        )
    else:
        report.line("ok", f"clock: within {MAX_SKEW.seconds}s of Zoom's ({skew.total_seconds():+.0f}s)")
