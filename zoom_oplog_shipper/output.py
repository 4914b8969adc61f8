"""Output: encode events as single JSON lines within the line limit, and write them page by page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from zoom_oplog_shipper.errors import OutputClosedError
from zoom_oplog_shipper.streams import OPERATIONS, Stream
from zoom_oplog_shipper.streams.operations.ecs import to_raw

log = logging.getLogger(__name__)

TRUNCATED_TAG = "truncated"
_ELLIPSIS = "…"
#: Free text is first cut no shorter than this share of the limit, so the parsed changes go before it.
_TEXT_SHARE = 8
#: Where each format keeps its lists of parsed changes (the count of dropped ones goes beside them).
_CHANGE_LISTS = (("zoom", "operation"), ("entity", "data"), ("unmapped",))
#: Derived objects, dropped whole (in this order) when cutting was not enough.
_DERIVED = {
    "ecs": (
        ("zoom", "operation", "changes"),
        ("related",),
        ("user", "target"),
        ("user", "changes"),
        ("group",),
        ("zoom", "role"),
        ("zoom", "meeting"),
        ("zoom", "webinar"),
        ("zoom", "operation", "disabled_controls"),
    ),
    "ocsf": (
        ("entity", "data"),
        ("unmapped", "changes"),
        ("unmapped", "disabled_controls"),
        ("observables",),
        ("user_result",),
        ("policy",),
    ),
    "raw": (),
}
#: What a line always keeps: ids, times and the event's classification.
_CORE = {
    "ecs": ("@timestamp", "ecs", "event", "organization", "data_stream", "tags"),
    "ocsf": (
        "category_uid",
        "category_name",
        "class_uid",
        "class_name",
        "activity_id",
        "activity_name",
        "type_uid",
        "type_name",
        "severity_id",
        "severity",
        "status_id",
        "status",
        "time",
        "metadata",
    ),
    "raw": ("event", "tags"),
}


def _kind(doc: dict[str, Any]) -> str:
    if "class_uid" in doc and isinstance(doc.get("metadata"), dict):
        return "ocsf"
    return "ecs" if "ecs" in doc else "raw"


def _at(doc: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The dict at ``path`` in ``doc``, or None."""
    node: Any = doc
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _mark(doc: dict[str, Any], kind: str) -> None:
    """Tag the event as cut: `tags` (ECS, raw) or `metadata.labels` (OCSF has no `tags`)."""
    labels = doc["metadata"].setdefault("labels", []) if kind == "ocsf" else doc.setdefault("tags", [])
    if isinstance(labels, list) and TRUNCATED_TAG not in labels:
        labels.append(TRUNCATED_TAG)


def _cut(value: str, keep: int) -> str:
    # Cut on bytes, then drop a split character at the end.
    return value.encode()[:keep].decode(errors="ignore") + _ELLIPSIS


def _text_targets(doc: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """The free-text fields: the message and the raw detail, wherever the format keeps them."""
    targets: list[tuple[dict[str, Any], str]] = []
    if isinstance(doc.get("message"), str):
        targets.append((doc, "message"))
    for path in (("zoom", "operation"), ("record",), ("unmapped", "operation_log")):
        holder = _at(doc, path)
        if holder is not None and isinstance(holder.get("operation_detail"), str):
            targets.append((holder, "operation_detail"))
    return targets


def _shorten(targets: list[tuple[dict[str, Any], str]], excess: int, floor: int) -> bool:
    """Cut ``targets`` by about ``excess`` bytes in all, none below ``floor`` bytes; False when none is left."""
    targets = [(d, k) for d, k in targets if len(d[k].encode()) > floor + 8]
    if not targets:
        return False
    share = excess // len(targets) + 16
    for d, k in targets:
        d[k] = _cut(d[k], max(floor, len(d[k].encode()) - share))
    return True


def _drop_changes(doc: dict[str, Any], excess: int) -> bool:
    """Drop parsed changes from the end of each list until about ``excess`` bytes are saved; count them."""
    saved = 0
    dropped_any = False
    for path in _CHANGE_LISTS:
        holder = _at(doc, path)
        changes = holder.get("changes") if holder is not None else None
        if holder is None or not isinstance(changes, list) or not changes:
            continue
        while len(changes) > 1 and saved < excess:  # the first change stays; its text can be cut
            saved += len(orjson.dumps(changes.pop())) + 1
            holder["changes_truncated"] = int(holder.get("changes_truncated", 0)) + 1
            dropped_any = True
    return dropped_any


def _change_texts(doc: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """The text fields of the parsed changes that are left."""
    targets: list[tuple[dict[str, Any], str]] = []
    for path in _CHANGE_LISTS:
        holder = _at(doc, path)
        changes = holder.get("changes") if holder is not None else None
        for change in changes if isinstance(changes, list) else ():
            if isinstance(change, dict):
                targets.extend(
                    (change, k) for k in ("section", "setting", "from", "to") if isinstance(change.get(k), str)
                )
    return targets


def _drop_derived(doc: dict[str, Any], kind: str, max_bytes: int) -> bytes | None:
    """Drop derived objects one by one; the line once it fits, else None."""
    for path in _DERIVED[kind]:
        holder = _at(doc, path[:-1]) if len(path) > 1 else doc
        if holder is not None and path[-1] in holder:
            del holder[path[-1]]
            line = orjson.dumps(doc)
            if len(line) <= max_bytes:
                return line
    return None


def _squeeze(value: Any, limit: int) -> Any:
    """Every string cut to ``limit`` bytes and every list to 8 entries, all the way down."""
    if isinstance(value, str):
        return _cut(value, limit) if len(value.encode()) > limit else value
    if isinstance(value, list):
        return [_squeeze(v, limit) for v in value[:8]]
    if isinstance(value, dict):
        return {k: _squeeze(v, limit) for k, v in value.items()}
    return value


def _last_resort(doc: dict[str, Any], kind: str, max_bytes: int) -> bytes:
    """Only the core (ids, times, classification), its strings squeezed until the line fits."""
    core = {k: doc[k] for k in _CORE[kind] if k in doc}
    limit = 256
    while True:
        line = orjson.dumps(_squeeze(core, limit))
        if len(line) <= max_bytes or limit <= 16:
            break
        limit //= 2
    if len(line) > max_bytes:  # an absurd account id or event id: keep only what identifies the event
        ident = doc.get("metadata", {}).get("uid") if kind == "ocsf" else doc.get("event", {}).get("id")
        line = orjson.dumps({"event": {"id": str(ident)[:64]}, "tags": [TRUNCATED_TAG]})
    return line


def encode(doc: dict[str, Any], max_bytes: int) -> bytes:
    """One JSON line (no newline) of at most ``max_bytes`` bytes, never more.

    Over the limit, in this order until it fits: `event.original` goes; the free text (message,
    raw detail) is cut to an eighth of the limit; parsed changes are dropped from the end
    (``changes_truncated`` counts them); the free text is cut further; derived objects (parsed
    changes, related users, targets...) are dropped; every other string and list is cut; at last
    only the core is kept: ids, times and the event's classification. A cut event is tagged
    ``truncated`` (OCSF: in `metadata.labels`).
    """
    line = orjson.dumps(doc)
    if len(line) <= max_bytes:
        return line
    # Work on a copy: the document can share objects with the record (format raw).
    doc = orjson.loads(line)
    event = doc.get("event")
    if isinstance(event, dict) and "original" in event:
        del event["original"]
        line = orjson.dumps(doc)
        if len(line) <= max_bytes:
            return line
    kind = _kind(doc)
    _mark(doc, kind)
    steps: tuple[Callable[[int], bool], ...] = (
        lambda excess: _shorten(_text_targets(doc), excess, max_bytes // _TEXT_SHARE),
        lambda excess: _drop_changes(doc, excess),
        lambda excess: _shorten(_text_targets(doc), excess, 16),
        lambda excess: _shorten(_change_texts(doc), excess, 16),
    )
    for step in steps:
        for _ in range(8):
            line = orjson.dumps(doc)
            if len(line) <= max_bytes:
                return line
            if not step(len(line) - max_bytes):
                break
    line = orjson.dumps(doc)
    if len(line) <= max_bytes:
        return line
    dropped = _drop_derived(doc, kind, max_bytes)
    if dropped is not None:
        return dropped
    for limit in (256, 64):
        line = orjson.dumps(_squeeze(doc, limit))
        if len(line) <= max_bytes:
            return line
    log.warning("event %s had to be cut to its ids, times and classification to fit the line limit", _ident(doc))
    return _last_resort(doc, kind, max_bytes)


def _ident(doc: dict[str, Any]) -> str:
    event = doc.get("event")
    if isinstance(event, dict) and "id" in event:
        return str(event["id"])
    metadata = doc.get("metadata")
    return str(metadata.get("uid")) if isinstance(metadata, dict) else "?"


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
    output_format: str, account_id: str, include_original: bool, stream: Stream = OPERATIONS
) -> Callable[[dict[str, Any], str, datetime | None, str], dict[str, Any]]:
    """The function that turns (record, event id, time, created) into the document to print."""
    if output_format == "raw":
        return lambda record, event_id, _time, _created: to_raw(record, event_id)
    mapper = stream.mapper(output_format)
    if output_format == "ocsf":

        def ocsf(record: dict[str, Any], event_id: str, time: datetime | None, created: str) -> dict[str, Any]:
            return mapper(record, event_id, account_id, datetime.fromisoformat(created.replace("Z", "+00:00")))

        return ocsf

    def ecs(record: dict[str, Any], event_id: str, time: datetime | None, created: str) -> dict[str, Any]:
        return mapper(record, event_id, account_id, created, time, include_original=include_original)

    return ecs


def make_encoder(max_bytes: int) -> Callable[[dict[str, Any]], bytes]:
    """The function that turns a document into its line: :func:`encode` within ``max_bytes``."""
    dumps = orjson.dumps

    def encoder(doc: dict[str, Any]) -> bytes:
        line = dumps(doc)  # encode's first step, here: most lines fit, and this runs per record
        return line if len(line) <= max_bytes else encode(doc, max_bytes)

    return encoder
