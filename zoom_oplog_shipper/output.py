"""Output: encode events as single JSON lines within the line limit, and write them page by page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from zoom_oplog_shipper.ecs import to_ecs, to_raw
from zoom_oplog_shipper.errors import OutputClosedError

log = logging.getLogger(__name__)

TRUNCATED_TAG = "truncated"
_ELLIPSIS = "…"


def _shorten(doc: dict[str, Any], excess: int) -> bool:
    """Cut the long free-text fields by about ``excess`` bytes in all; False when none is left."""
    targets: list[tuple[dict[str, Any], str]] = []
    if isinstance(doc.get("message"), str):
        targets.append((doc, "message"))
    zoom = doc.get("zoom", {}).get("operation", {}) if isinstance(doc.get("zoom"), dict) else {}
    if isinstance(zoom.get("operation_detail"), str):
        targets.append((zoom, "operation_detail"))
    # The parsed changes repeat parts of the same text.
    for change in zoom.get("changes", ()) if isinstance(zoom.get("changes"), list) else ():
        if isinstance(change, dict):
            targets.extend((change, k) for k in ("setting", "from", "to") if isinstance(change.get(k), str))
    record = doc.get("record")
    if isinstance(record, dict) and isinstance(record.get("operation_detail"), str):
        targets.append((record, "operation_detail"))
    targets = [(d, k) for d, k in targets if len(d[k]) > 16]
    if not targets:
        return False
    share = excess // len(targets) + 16
    for d, k in targets:
        value: str = d[k]
        keep = max(16, len(value.encode()) - share)
        # Cut on bytes, then drop a split character at the end.
        d[k] = value.encode()[:keep].decode(errors="ignore") + _ELLIPSIS
    return True


def encode(doc: dict[str, Any], max_bytes: int) -> bytes:
    """One JSON line (no newline) of at most ``max_bytes`` bytes.

    Over the limit, `event.original` goes first, then the free-text fields (`message`,
    `zoom.operation.operation_detail` and the parsed changes) are cut and the event is tagged
    ``truncated``; the ids and times are never touched.
    """
    line = orjson.dumps(doc)
    if len(line) <= max_bytes:
        return line
    event = doc.get("event")
    if isinstance(event, dict) and "original" in event:
        del event["original"]
        line = orjson.dumps(doc)
    if len(line) > max_bytes:
        tags = doc.setdefault("tags", [])
        if isinstance(tags, list) and TRUNCATED_TAG not in tags:
            tags.append(TRUNCATED_TAG)
        for _ in range(8):
            line = orjson.dumps(doc)
            if len(line) <= max_bytes or not _shorten(doc, len(line) - max_bytes):
                break
        line = orjson.dumps(doc)
    if len(line) > max_bytes:
        log.warning(
            "event %s is still %d bytes after truncation",
            event.get("id") if isinstance(event, dict) else "?",
            len(line),
        )
    return line


class PageWriter:
    """Writes whole pages of lines to a binary stream and flushes, so a page is out before it is committed."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def write_page(self, lines: list[bytes]) -> None:
        """Write the lines, newline-terminated, and flush; a closed reader raises OutputClosedError."""
        if not lines:
            return
        pending = memoryview(b"\n".join(lines) + b"\n")
        try:
            # An unbuffered stdout (PYTHONUNBUFFERED, python -u) is a raw file: a write interrupted
            # by a signal can take only part of the page, so write until all of it is out.
            while pending:
                written = self._stream.write(pending)
                pending = pending[written if written is not None else 0 :]
            self._stream.flush()
        except (BrokenPipeError, ConnectionResetError) as exc:
            msg = (
                "stdout was closed by its reader (the agent stopped?); "
                "the unflushed page is not committed and will be sent again"
            )
            raise OutputClosedError(msg) from exc


def make_formatter(
    output_format: str, account_id: str, include_original: bool
) -> Callable[[dict[str, Any], str, datetime | None, str], dict[str, Any]]:
    """The function that turns (record, event id, time, created) into the document to print."""
    if output_format == "raw":
        return lambda record, event_id, _time, _created: to_raw(record, event_id)
    if output_format == "ocsf":
        from zoom_oplog_shipper.ocsf import to_ocsf

        def ocsf(record: dict[str, Any], event_id: str, time: datetime | None, created: str) -> dict[str, Any]:
            return to_ocsf(record, event_id, account_id, datetime.fromisoformat(created.replace("Z", "+00:00")))

        return ocsf

    def ecs(record: dict[str, Any], event_id: str, time: datetime | None, created: str) -> dict[str, Any]:
        return to_ecs(record, event_id, account_id, created, time, include_original=include_original)

    return ecs
