"""One pass of a stream: compose the lock, the store, the client, the engine, the formatter and stdout.

The command line (`run`) and `demo` call down into `run_pass`; nothing here imports the command line.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import fields
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import Config
from zoom_oplog_shipper.errors import ExitCode
from zoom_oplog_shipper.logs import LOGGER_NAME
from zoom_oplog_shipper.report import SKIPPED, RunReport, classify_exception
from zoom_oplog_shipper.streams import Stream, stream_of
from zoom_oplog_shipper.summary import RunLabels

if TYPE_CHECKING:
    from zoom_oplog_shipper.state import RunLock, StateStore
    from zoom_oplog_shipper.sync import EngineOptions, SyncEngine

log = logging.getLogger(LOGGER_NAME)


class StopFlag:
    """Set by SIGTERM/SIGINT: the engine stops after the current page, with progress committed."""

    def __init__(self) -> None:
        self.raised = False
        self.writing = False  # the main thread is writing a page to stdout
        self.deferred = False  # a second Ctrl-C came while writing: stop when the page is out

    def __call__(self) -> bool:
        return self.raised

    def interrupt(self) -> None:
        """Stop at once; further Ctrl-C must not interrupt the cleanup."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt


class PageGuard:
    """stdout as the engine sees it: a second Ctrl-C during a page's write waits for the page's flush,
    so the reader never gets half a line (the page is not committed and is sent again next time)."""

    def __init__(self, out: BinaryIO, flag: StopFlag) -> None:
        self._out = out
        self._flag = flag

    def write(self, data: bytes | memoryview) -> int | None:
        """Write to the real stdout; the page counts as in flight until the next flush.

        Only a write by the main thread can be cut by Ctrl-C (signals run there); a page written by a
        window reader thread is finished while the main thread stops.
        """
        if threading.current_thread() is threading.main_thread():
            self._flag.writing = True
        return self._out.write(data)

    def flush(self) -> None:
        """Flush the page; then honour a Ctrl-C that came while it was being written."""
        try:
            self._out.flush()
        finally:
            if threading.current_thread() is threading.main_thread():
                self._flag.writing = False
        if self._flag.deferred and threading.current_thread() is threading.main_thread():
            self._flag.interrupt()

    def fileno(self) -> int:
        """The real stdout's descriptor: the page writer watches its reader."""
        return self._out.fileno()


@contextmanager
def stop_on_signals(flag: StopFlag) -> Iterator[None]:
    """SIGTERM and a first SIGINT stop after the current page; a second SIGINT stops at once."""

    def handler(signum: int, _frame: Any) -> None:
        if not flag.raised:
            flag.raised = True
            hint = "; press Ctrl-C again to stop at once" if signum == signal.SIGINT else ""
            log.info("received %s; stopping after the current page%s", signal.Signals(signum).name, hint)
            return
        if signum != signal.SIGINT:
            return
        if flag.writing and not flag.deferred:  # a third Ctrl-C stops even a blocked write
            flag.deferred = True
            return
        flag.interrupt()

    previous = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (in-process tests): no handlers
        pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def engine_options(config: Config) -> EngineOptions:
    """The few settings the engine reads, from the run's Config: each option its setting of the same
    name, and the readers at once (`workers`) from --concurrency and --max-rps."""
    from zoom_oplog_shipper.settings import windows_at_once
    from zoom_oplog_shipper.sync import EngineOptions

    same_name = {f.name: getattr(config, f.name) for f in fields(EngineOptions) if f.name != "workers"}
    return EngineOptions(**same_name, workers=windows_at_once(config.concurrency, config.max_rps))


def make_engine(
    config: Config, stream: Stream, store: StateStore, clock: Clock, session: Any, out: PageGuard, flag: StopFlag
) -> SyncEngine:
    """The engine of one pass of ``stream``: its client's pages, the formatter and encoder, stdout and the store."""
    from zoom_oplog_shipper.output import PageWriter, make_encoder, make_formatter
    from zoom_oplog_shipper.sync import SyncEngine
    from zoom_oplog_shipper.zoom_client import ZoomClient

    return SyncEngine(
        engine_options(config),
        ZoomClient(config, clock=clock, session=session).reader(stream),
        store,
        PageWriter(cast(BinaryIO, out)),
        make_formatter(config.output_format, config.account_id, config.include_original, stream),
        make_encoder(config.max_line_bytes, config.output_format),
        clock,
        should_stop=flag,
    )


def run_pass(
    config: Config,
    clock: Clock,
    session: Any,
    out: BinaryIO,
    report: RunReport | None = None,
    stop: StopFlag | None = None,
    stream: Stream | None = None,
) -> int:
    """One `run`: take the lock, open the state, sync. Exit code 0, or an exception.

    ``report`` collects the summary and is saved in the store with the exit code; the caller logs it.
    Without ``stop``, SIGTERM/SIGINT handlers are installed for the pass itself. ``stream`` is the
    stream the settings select unless given.
    """
    from zoom_oplog_shipper.state import RunLock, StateStore, make_state_dir

    stream = stream or stream_of(config)
    report = report or RunReport(clock, RunLabels(config.account_id, config.category_type), config.metrics_file)
    report.use(config, stream)
    path = stream.state_path(config)
    make_state_dir(path.parent)
    lock = RunLock(path)
    if not lock.acquire():
        return _skipped(config, stream, lock, report)
    try:
        store = StateStore.open(path, config.account_id, stream.partition_key(config))
        return _sync(config, clock, session, out, store, report, stop, stream)
    finally:
        lock.release()


def _skipped(config: Config, stream: Stream, lock: RunLock, report: RunReport) -> int:
    """Another run holds the lock: touch nothing; the outcome `skipped` leaves the last success as it was."""
    log.warning(
        "another run for account %s, %s (%s) holds %s; exiting without doing anything "
        "(a run that keeps holding it is hung: the last success stops moving)",
        config.account_id,
        stream.title,
        stream.partition_key(config),
        lock.path,
    )
    report.summary.outcome = SKIPPED
    return int(ExitCode.OK)


def dry_run_pass(
    config: Config,
    clock: Clock,
    session: Any,
    out: BinaryIO,
    report: RunReport,
    stop: StopFlag | None = None,
) -> int:
    """`run --dry-run`: the real engine against a copy of the store in memory; nothing is kept.

    No state directory, store, lock or metrics file is created or changed, and no lock is waited
    for: reading the store takes SQLite's own read lock for the moment of the copy.
    """
    from zoom_oplog_shipper.state import StateStore, store_exists

    stream = stream_of(config)
    report.use(config, stream)
    path = stream.state_path(config)
    source = f"a copy of {path}" if store_exists(path) else f"an empty store ({path} does not exist yet)"
    store = StateStore.copy_in_memory(path, config.account_id, stream.partition_key(config))
    log.warning(
        "dry run: the records a run would print now, read with %s in memory; nothing is committed, "
        "and no state directory, store, lock or metrics file is written: the next run still sends them",
        source,
    )
    return _sync(config, clock, session, out, store, report, stop, stream)


def _sync(
    config: Config,
    clock: Clock,
    session: Any,
    out: BinaryIO,
    store: StateStore,
    report: RunReport,
    stop: StopFlag | None,
    stream: Stream,
) -> int:
    """Read, print and commit with ``store`` (open; closed here), saving the run's summary in it."""
    code = int(ExitCode.FAILURE)
    try:
        flag = stop or StopFlag()
        engine = make_engine(config, stream, store, clock, session, PageGuard(out, flag), flag)
        report.summary = engine.summary
        with stop_on_signals(flag) if stop is None else nullcontext():
            engine.run()
        code = int(ExitCode.OK)
    except BaseException as exc:
        code = classify_exception(exc)[0]
        raise
    finally:
        try:
            store.save_summary(report.stored(code))
        except Exception as exc:  # noqa: BLE001 - what ended the run matters more than its stored summary
            log.debug("could not save the run summary: %s", exc)
        store.close()
    return int(ExitCode.OK)
