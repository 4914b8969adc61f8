"""`check`: validate settings, token, scopes, permission, clock and state.

It changes nothing and creates nothing a run needs: no state directory, no lock file, no store."""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import suppress
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TextIO

from zoom_oplog_shipper.access import (
    blockers,
    cause_and_fix,
    describe,
    nearest_existing,
    ownership_fix,
    read_only_filesystem,
    user_name,
)
from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import Config
from zoom_oplog_shipper.errors import ExitCode, ShipperError, StateError
from zoom_oplog_shipper.state import RunLock, StateStore, store_exists, store_files
from zoom_oplog_shipper.streams import Stream, stream_of
from zoom_oplog_shipper.windows import Window
from zoom_oplog_shipper.zoom_client import ZoomClient

#: Beyond this difference from Zoom's clock, windows and token renewal can go wrong.
MAX_SKEW = timedelta(seconds=60)


class _CheckReport:
    """The report `check` prints: one ``[status] text`` line a check, and the exit code of the first failure."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.exit_code = ExitCode.OK

    def line(self, status: str, text: str) -> None:
        self.out.write(f"[{status:^4}] {text}\n")
        self.out.flush()

    def fail(self, text: str, code: ExitCode) -> None:
        self.line("FAIL", text)
        if self.exit_code == ExitCode.OK:
            self.exit_code = code


def run_check(config: Config, clock: Clock, session: Any, out: TextIO, stream: Stream | None = None) -> int:
    """Print a human report on ``out`` (stderr) with a concrete fix per problem; returns the exit code."""
    report = _CheckReport(out)
    stream = stream or stream_of(config)
    scope = f"category {config.category_type}" if stream.partition(config) else f"stream {stream.key}"
    report.line(
        "ok",
        f"configuration: account {config.account_id}, {stream.title}, {scope}, "
        f"API {config.api_url}, token URL {config.oauth_url}",
    )
    _check_state(config, report, stream)

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
    elif any(s in scopes for s in stream.endpoint.scopes):
        report.line("ok", f"scopes: {' '.join(s for s in scopes if s in stream.endpoint.scopes)} granted")
    else:
        report.fail(
            f"scopes: neither {' nor '.join(stream.endpoint.scopes)} is granted (needed for {stream.title}); add one "
            "to the app's scopes (Zoom App Marketplace > your app > Scopes) and activate the app again",
            ExitCode.AUTH,
        )
    _check_clock(client, clock, report)

    today = clock.now().date()
    try:
        page = client.reader(stream).get_page(Window(today - timedelta(days=1), today), page_size=1)
    except ShipperError as exc:
        report.fail(f"{stream.title}: {exc}", exc.exit_code)
    else:
        found = "at least one record" if page.records else "no records"
        report.line("ok", f"{stream.title}: readable ({found} since yesterday, {scope})")
    verdict = "all checks passed" if report.exit_code == ExitCode.OK else "some checks failed; fix them and run again"
    report.line("ok" if report.exit_code == ExitCode.OK else "FAIL", verdict)
    return int(report.exit_code)


def _check_state(config: Config, report: _CheckReport, stream: Stream) -> None:
    """What the run needs of the state directory, lock and store, tested without creating any of them."""
    path = stream.state_path(config)
    _say_whose(path.parent, report)
    problem = probe_directory(path.parent)
    if problem:
        report.fail(f"state: {problem}", ExitCode.STATE)
        return
    if not path.parent.is_dir():
        report.line("ok", f"state: {path.parent} can be made; the first run creates it and {path.name} in it")
        return
    lock = RunLock(path).path
    files = [lock, *store_files(path)]
    problem = _foreign_files(path.parent, files) if os.geteuid() == 0 else _unusable(path.parent, files)
    if problem:
        report.fail(f"state: {problem}; do not reset the store: it holds what was already sent", ExitCode.STATE)
        return
    if _held(lock):
        report.line("info", f"state: a run holds {lock} right now (normal while one runs)")
    try:
        exists = store_exists(path)
    except StateError as exc:
        report.fail(f"state: {exc}", ExitCode.STATE)
        return
    if not exists:
        report.line("ok", f"state: {path.parent} can hold the state; the first run creates {path}")
        return
    try:
        store = StateStore.open(path, config.account_id, stream.partition_key(config), readonly=True)
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


def _say_whose(directory: Path, report: _CheckReport) -> None:
    """Run as root on another user's directory, say that this check cannot speak for that user."""
    if os.geteuid() != 0:
        return
    place = nearest_existing(directory)
    owner = place.stat().st_uid
    if owner != 0:
        user = user_name(owner)
        report.line(
            "WARN",
            f"state: {place} belongs to {user}, and this check runs as root, which may use any file: run it as "
            f"{user} (`sudo -u {user} zoom-oplog-shipper check` with the same settings), as the runs will be",
        )


def _unusable(directory: Path, files: list[Path]) -> str | None:
    """The existing state files this user cannot read and write, with their owners and the fix."""
    blocked = [p for p in blockers(directory, files) if p != directory]
    return f"a run could not use them: {ownership_fix(blocked)}" if blocked else None


def _foreign_files(directory: Path, files: list[Path]) -> str | None:
    """Run as root: the state files that do not belong to the directory's owner, whose runs could not use them."""
    owner = directory.stat().st_uid
    foreign = [p for p in files if os.path.lexists(p) and p.lstat().st_uid != owner]
    if not foreign or owner == 0:
        return None
    user = user_name(owner)
    return (
        f"{'; '.join(describe(p) for p in foreign)}, in a directory of {user}, whose runs could not use them: "
        f"`chown {user} {' '.join(str(p) for p in foreign)}`"
    )


def _held(lock: Path) -> bool:
    """Whether a run holds the lock now; the file is neither created nor written (a shared lock, for an instant)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the shared lock
    return False


def probe_directory(directory: Path) -> str | None:
    """Whether a run could keep its state in ``directory``, creating nothing a run needs: the problem and its
    fix, or None. An existing directory gets a probe file, written and deleted at once; for a missing one,
    the directory it would be made in is looked at."""
    place = nearest_existing(directory)
    if not place.is_dir():
        return (
            f"cannot create state directory {directory}: {place} is not a directory; "
            "set --state-dir to a writable directory"
        )
    if place != directory:
        if os.access(place, os.W_OK | os.X_OK) and not read_only_filesystem(place):
            return None
        return f"cannot create state directory {directory}: {cause_and_fix(place, [], errno.EACCES)}"
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
            f"cannot write in state directory {directory} ({exc.strerror}): {cause_and_fix(directory, [], exc.errno)}"
        )
    return None


def _check_clock(client: ZoomClient, clock: Clock, report: _CheckReport) -> None:
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
