"""The output formats (`--format`), declared once: each one's documents, as the line limit must know them.

A stream maps its records to each format with its own mappers (`zoom_oplog_shipper.streams`); a
format whose document is the same for every stream declares its mapper here (``raw``). Every
other part of a format that is shared by the streams lives beside this declaration: the ECS
envelope in `formats.ecs`, the OCSF metadata, account and time in `formats.ocsf`.

What `output.encode` does to a line over the limit is the same for every format; which fields it
keeps, cuts and drops is declared here. The paths name fields of either stream; a document that
lacks one skips it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoom_oplog_shipper.mapping import EventContext, Mapper

#: Keys from the top of a document down to a field.
FieldPath = tuple[str, ...]


@dataclass(frozen=True)
class OutputFormat:
    """One output format: its name, and where the line limit finds what it keeps, cuts and drops."""

    #: The `--format` value.
    name: str
    #: Top-level keys a line always keeps: ids, times and the event's classification.
    core: tuple[str, ...]
    #: The event's id: all that is left of an event whose core does not fit.
    event_id: FieldPath
    #: The list a cut event is marked `truncated` in.
    labels: FieldPath
    #: Dropped before anything is cut, without marking the event (a copy of the record).
    copies: tuple[FieldPath, ...]
    #: Free text (the message, the raw detail), cut first.
    texts: tuple[FieldPath, ...]
    #: Objects that hold a ``changes`` list of parsed changes: dropped from the end, counted in
    #: ``changes_truncated`` beside it.
    change_lists: tuple[FieldPath, ...]
    #: Derived objects, dropped whole in this order when cutting was not enough.
    derived: tuple[FieldPath, ...]
    #: The mapper of every stream, or None when each stream brings its own.
    mapper: Mapper | None = None


def to_raw(record: dict[str, Any], context: EventContext) -> dict[str, Any]:
    """Format ``raw``: the Zoom record untouched, with its fingerprint beside it."""
    return {"event": {"id": context.event_id}, "record": record}


ECS = OutputFormat(
    name="ecs",
    core=("@timestamp", "ecs", "event", "organization", "data_stream", "tags"),
    event_id=("event", "id"),
    labels=("tags",),
    copies=(("event", "original"),),
    texts=(("message",), ("zoom", "operation", "operation_detail")),
    change_lists=(("zoom", "operation"),),
    derived=(
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
)
OCSF = OutputFormat(
    name="ocsf",
    core=(
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
    event_id=("metadata", "uid"),
    labels=("metadata", "labels"),  # OCSF has no `tags`
    copies=(),
    texts=(("message",), ("unmapped", "operation_log", "operation_detail")),
    change_lists=(("entity", "data"), ("unmapped",)),
    derived=(
        ("entity", "data"),
        ("unmapped", "changes"),
        ("unmapped", "disabled_controls"),
        ("observables",),
        ("user_result",),
        ("policy",),
    ),
)
RAW = OutputFormat(
    name="raw",
    core=("event", "tags"),
    event_id=("event", "id"),
    labels=("tags",),
    copies=(),
    texts=(("record", "operation_detail"),),
    change_lists=(),
    derived=(),
    mapper=to_raw,
)

#: Every format by name, in the order `--format` lists them.
FORMATS = {f.name: f for f in (ECS, RAW, OCSF)}
OUTPUT_FORMATS = tuple(FORMATS)
