"""Diagnostics on stderr, as text or JSON lines, with secrets masked as a last line of defence."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from typing import TextIO

import orjson

LOGGER_NAME = "zoom_oplog_shipper"
MASK = "********"


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
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        message = self._mask(message)
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        if self.json_lines:
            return orjson.dumps(
                {
                    "@timestamp": stamp,
                    "log": {"level": record.levelname.lower(), "logger": record.name},
                    "message": message,
                    "process": {"pid": record.process},
                }
            ).decode()
        return f"{stamp} zoom-oplog-shipper {record.levelname}: {message}"


def setup_logging(
    level: str = "info",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Send the package's log records to stderr (never stdout) in the chosen format."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_Formatter(fmt == "json", secrets))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
