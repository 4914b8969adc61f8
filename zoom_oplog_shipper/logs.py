"""Diagnostics on stderr, as text or JSON lines, with secrets masked as a last line of defence.

Every stderr line is one record: with ``json`` one JSON object, with ``text`` one line. Python
warnings and library loggers (requests, urllib3, ...) go through the same formatter, and a
traceback is never printed: an agent reading stderr as JSON must never meet a bare text line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import orjson

LOGGER_NAME = "zoom_oplog_shipper"
SUMMARY_LOGGER = f"{LOGGER_NAME}.summary"
MASK = "********"
#: The attribute of a log record that carries the summary's fields (top-level keys in JSON).
SUMMARY_FIELDS = "summary_fields"


class _Formatter(logging.Formatter):
    def __init__(self, json_lines: bool, secrets: Iterable[str]) -> None:
        super().__init__()
        self.json_lines = json_lines
        self.secrets = tuple(s for s in secrets if s)
        self.converter = time.gmtime

    def _mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def format(self, record: logging.LogRecord) -> str:
        # exc_info is deliberately ignored: a traceback is never shown to the user (a debug line
        # says where a failure happened instead).
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed call in a library must not break the one-line rule
            message = str(record.msg)
        message = self._mask(" ".join(message.split("\n")).rstrip())
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        if self.json_lines:
            doc: dict[str, Any] = {
                "@timestamp": stamp,
                "log": {"level": record.levelname.lower(), "logger": record.name},
                "message": message,
                "process": {"pid": record.process},
            }
            extra = getattr(record, SUMMARY_FIELDS, None)
            if isinstance(extra, Mapping):
                for key, value in extra.items():
                    if key not in doc:
                        doc[key] = self._mask(value) if isinstance(value, str) else value
            # Masking values, never the encoded line: a short secret must not break the JSON.
            return orjson.dumps(doc, default=str).decode()
        return f"{stamp} zoom-oplog-shipper {record.levelname}: {message}"


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stderr handler that stays silent when stderr itself is gone (no "Logging error" traceback)."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging.Handler's name
        """Drop the record: there is nowhere left to report the failure."""


#: Loggers that are not the package's own but may write to stderr: they get the same handler.
_FOREIGN = ("py.warnings", "urllib3", "requests", "filelock")


def setup_logging(
    level: str = "info",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Send every log record to stderr (never stdout), one line each, in the chosen format.

    The package logs at ``level``; warnings and library loggers only from WARNING up.
    """
    target = stream if stream is not None else sys.stderr
    formatter = _Formatter(fmt == "json", secrets)
    own = _Handler(target)
    own.setFormatter(formatter)
    foreign = _Handler(target)
    foreign.setFormatter(formatter)
    foreign.setLevel(logging.WARNING)
    threading.excepthook = _thread_failed
    sys.unraisablehook = _unraisable
    # Off, then on: capture even if something replaced warnings.showwarning since the last call.
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    # The summary is the last line of every run, whatever --log-level says.
    logging.getLogger(SUMMARY_LOGGER).setLevel(logging.INFO)
    # The root logger catches whatever other library would otherwise print as bare text.
    targets = [(LOGGER_NAME, own, level.upper()), *((n, foreign, "WARNING") for n in _FOREIGN), ("", foreign, None)]
    for name, handler, lvl in targets:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _Handler)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        if lvl is not None:
            logger.setLevel(lvl)
            logger.propagate = False


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    """A background thread (the demo's simulator) failed: one line, not Python's traceback."""
    detail = str(args.exc_value) if args.exc_value is not None else "no details"
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger(LOGGER_NAME).error("background thread %s stopped: %s", name, detail or "no details")


def _unraisable(args: sys.UnraisableHookArgs) -> None:
    """An error Python could not raise (in a finalizer, at exit): a debug line, not a traceback."""
    logging.getLogger(LOGGER_NAME).debug("ignored during cleanup: %s", args.exc_value)


def log_summary(level: int, text: str, fields: Mapping[str, Any]) -> None:
    """Log the run's summary: one line, whose JSON form carries ``fields`` as top-level keys."""
    logging.getLogger(SUMMARY_LOGGER).log(level, "%s", text, extra={SUMMARY_FIELDS: dict(fields)})
