"""Output: encode events as single JSON lines within the line limit, and write them page by page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from zoom_oplog_shipper.errors import OutputClosedError, OutputError
from zoom_oplog_shipper.formats import FORMATS, FieldPath, OutputFormat
from zoom_oplog_shipper.mapping import EventContext
from zoom_oplog_shipper.scan import Encoder, Formatter
from zoom_oplog_shipper.stdout import ReaderWatch, unwritable
from zoom_oplog_shipper.streams import OPERATIONS, Stream

log = logging.getLogger(__name__)

TRUNCATED_TAG = "truncated"
_ELLIPSIS = "…"
#: Free text is first cut no shorter than this share of the limit, so the parsed changes go before it.
_TEXT_SHARE = 8


def _at(doc: dict[str, Any], path: FieldPath) -> dict[str, Any] | None:
    """The dict at ``path`` in ``doc`` (``doc`` itself for the empty path), or None."""
    node: Any = doc
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _mark(doc: dict[str, Any], fmt: OutputFormat) -> None:
    """Tag the event as cut, in the format's labels (``tags``; OCSF: ``metadata.labels``)."""
    holder: dict[str, Any] = doc
    for key in fmt.labels[:-1]:
        holder = holder.setdefault(key, {})
    labels = holder.setdefault(fmt.labels[-1], [])
    if isinstance(labels, list) and TRUNCATED_TAG not in labels:
        labels.append(TRUNCATED_TAG)


def _cut(value: str, keep: int) -> str:
    # Cut on bytes, then drop a split character at the end.
    return value.encode()[:keep].decode(errors="ignore") + _ELLIPSIS


def _fields(doc: dict[str, Any], paths: tuple[FieldPath, ...]) -> list[tuple[dict[str, Any], str]]:
    """(holder, key) of each text field at ``paths`` that the document has."""
    targets: list[tuple[dict[str, Any], str]] = []
    for path in paths:
        holder = _at(doc, path[:-1])
        if holder is not None and isinstance(holder.get(path[-1]), str):
            targets.append((holder, path[-1]))
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


def _drop_changes(doc: dict[str, Any], fmt: OutputFormat, excess: int) -> bool:
    """Drop parsed changes from the end of each list until about ``excess`` bytes are saved; count them."""
    saved = 0
    dropped_any = False
    for path in fmt.change_lists:
        holder = _at(doc, path)
        changes = holder.get("changes") if holder is not None else None
        if holder is None or not isinstance(changes, list) or not changes:
            continue
        while len(changes) > 1 and saved < excess:  # the first change stays; its text can be cut
            saved += len(orjson.dumps(changes.pop())) + 1
            holder["changes_truncated"] = int(holder.get("changes_truncated", 0)) + 1
            dropped_any = True
    return dropped_any


def _drop_terms(doc: dict[str, Any], fmt: OutputFormat) -> bool:
    """Drop every change's ``setting_to`` (it repeats the setting and the value); False when there was none."""
    dropped = False
    for path in fmt.change_lists:
        holder = _at(doc, path)
        for change in holder.get("changes") or () if holder is not None else ():
            if isinstance(change, dict) and change.pop("setting_to", None) is not None:
                dropped = True
    return dropped


#: The text fields of a parsed change, cut like the free text when a line is too long.
_CHANGE_TEXTS = ("section", "setting", "from", "to", "setting_to")


def _change_texts(doc: dict[str, Any], fmt: OutputFormat) -> list[tuple[dict[str, Any], str]]:
    """The text fields of the parsed changes that are left."""
    targets: list[tuple[dict[str, Any], str]] = []
    for path in fmt.change_lists:
        holder = _at(doc, path)
        changes = holder.get("changes") if holder is not None else None
        for change in changes if isinstance(changes, list) else ():
            if isinstance(change, dict):
                targets.extend((change, k) for k in _CHANGE_TEXTS if isinstance(change.get(k), str))
    return targets


def _drop(doc: dict[str, Any], paths: tuple[FieldPath, ...], max_bytes: int) -> bytes | None:
    """Drop the fields at ``paths`` one by one; the line once it fits, else None."""
    for path in paths:
        holder = _at(doc, path[:-1])
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


def _last_resort(doc: dict[str, Any], fmt: OutputFormat, max_bytes: int) -> bytes:
    """Only the core (ids, times, classification), its strings squeezed until the line fits."""
    core = {k: doc[k] for k in fmt.core if k in doc}
    limit = 256
    while True:
        line = orjson.dumps(_squeeze(core, limit))
        if len(line) <= max_bytes or limit <= 16:  # noqa: PLR2004 - strings of 16 characters at the least
            break
        limit //= 2
    if len(line) > max_bytes:  # an absurd account id or event id: keep only what identifies the event
        line = orjson.dumps({"event": {"id": _ident(doc, fmt)[:64]}, "tags": [TRUNCATED_TAG]})
    return line


def encode(doc: dict[str, Any], max_bytes: int, fmt: OutputFormat) -> bytes:
    """One JSON line (no newline) of at most ``max_bytes`` bytes, never more; ``fmt`` is the document's format.

    Over the limit, in this order until it fits: the copy of the record (`event.original`) goes;
    the changes' `setting_to` terms go (each repeats its change's setting and value); the free text
    (message, raw detail) is cut to an eighth of the limit; parsed changes are dropped from the end
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
    dropped = _drop(doc, fmt.copies, max_bytes)
    if dropped is not None:
        return dropped
    _mark(doc, fmt)
    steps: tuple[Callable[[int], bool], ...] = (
        lambda excess: _drop_terms(doc, fmt),
        lambda excess: _shorten(_fields(doc, fmt.texts), excess, max_bytes // _TEXT_SHARE),
        lambda excess: _drop_changes(doc, fmt, excess),
        lambda excess: _shorten(_fields(doc, fmt.texts), excess, 16),
        lambda excess: _shorten(_change_texts(doc, fmt), excess, 16),
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
    dropped = _drop(doc, fmt.derived, max_bytes)
    if dropped is not None:
        return dropped
    for limit in (256, 64):
        line = orjson.dumps(_squeeze(doc, limit))
        if len(line) <= max_bytes:
            return line
    log.warning("event %s had to be cut to its ids, times and classification to fit the line limit", _ident(doc, fmt))
    return _last_resort(doc, fmt, max_bytes)


def _ident(doc: dict[str, Any], fmt: OutputFormat) -> str:
    holder = _at(doc, fmt.event_id[:-1])
    return str(holder.get(fmt.event_id[-1]) if holder is not None else None)


class PageWriter:
    """Writes whole pages of lines to a binary stream and flushes, so a page is out before it is committed.

    On a pipe, a socket or a terminal it then checks that the reader is still there (and, on a pipe,
    has read the page): a page that went nowhere raises OutputClosedError and is not committed.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._reader = ReaderWatch.of(stream)

    def write_page(self, lines: list[bytes]) -> None:
        """Write the lines, newline-terminated, flush, and see the reader take them.

        A reader that has gone raises OutputClosedError; a stdout that cannot be written (a full
        disk, /dev/full) raises OutputError, naming stdout.
        """
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
            raise OutputClosedError(_CLOSED) from exc
        except OSError as exc:
            raise OutputError(unwritable(exc)) from exc
        if self._reader is not None and not self._reader.delivered():
            raise OutputClosedError(_CLOSED)


_CLOSED = (
    "stdout was closed by its reader (the agent stopped, or `| head`?); "
    "the page it did not take is not committed and will be sent again"
)


def make_formatter(
    output_format: str, account_id: str, include_original: bool, stream: Stream = OPERATIONS
) -> Formatter:
    """The engine's formatter: (record, event id, record time, created) -> ``stream``'s ``output_format`` document."""
    mapper = stream.mapper(output_format)

    def formatter(record: dict[str, Any], event_id: str, time: datetime | None, created: str) -> dict[str, Any]:
        return mapper(record, EventContext(event_id, account_id, created, time, include_original))

    return formatter


def make_encoder(max_bytes: int, output_format: str) -> Encoder:
    """The engine's encoder: a document of ``output_format`` -> its line, :func:`encode` within ``max_bytes``."""
    fmt = FORMATS[output_format]
    dumps = orjson.dumps

    def encoder(doc: dict[str, Any]) -> bytes:
        line = dumps(doc)  # encode's first step, here: most lines fit, and this runs per record
        return line if len(line) <= max_bytes else encode(doc, max_bytes, fmt)

    return encoder
