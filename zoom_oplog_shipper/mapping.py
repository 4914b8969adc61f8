"""The mapper contract: every mapper turns one record and its `EventContext` into one document.

A stream declares an `EventMapping` (output format name -> mapper) for the formats it maps itself;
a format whose document is the same for every stream (``raw``) declares its one mapper instead
(`zoom_oplog_shipper.formats`). The engine never calls a mapper directly: `output.make_formatter`
wraps the one a run needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple


class EventContext(NamedTuple):
    """What a mapper is told about a record besides the record itself."""

    #: The record's fingerprint, 32 hex characters (ECS `event.id`, OCSF `metadata.uid`).
    event_id: str
    #: The Zoom account the record came from.
    account_id: str
    #: When this run read the record: RFC 3339, UTC, milliseconds (ECS `event.created`).
    created: str
    #: The record's own time (`records.record_time`), None when it has none the shipper can read.
    time: datetime | None
    #: Keep the raw record in the event (ECS `event.original`).
    include_original: bool = False

    @property
    def created_time(self) -> datetime:
        """``created`` as an aware datetime (UTC when it names no offset)."""
        moment = datetime.fromisoformat(self.created)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


#: (record, context) -> the document to print; missing or odd fields are left out, never raised on.
Mapper = Callable[[dict[str, Any], EventContext], dict[str, Any]]
#: Output format name -> the stream's mapper for it.
EventMapping = Mapping[str, Mapper]


def text_field(record: dict[str, Any], key: str) -> str | None:
    """``record[key]`` when it is a string that is not blank, else None."""
    value = record.get(key)
    return value if isinstance(value, str) and value.strip() else None
