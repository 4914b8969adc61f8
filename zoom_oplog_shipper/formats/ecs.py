"""What every ECS 9.4.0 event of this shipper has, whichever stream it comes from.

The envelope: `@timestamp`, `ecs.version`, `event` (kind, id, module, dataset, created and the
stream's classification), `organization`, `data_stream`, the stream's own fields under `zoom.*`
and the tag of a record without a usable time; and the user fields of a name that may be an
e-mail address. Each stream's mapper (`streams.<stream>.ecs`) adds what only it knows.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from zoom_oplog_shipper.mapping import EventContext
from zoom_oplog_shipper.records import rfc3339_millis

ECS_VERSION = "9.4.0"
#: The tag of an event whose record has no usable time (its `@timestamp` is then `event.created`).
UNPARSABLE_TIME_TAG = "zoom_time_unparsable"

_NON_WORD = re.compile(r"[^a-z0-9]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize(text: str) -> str:
    """Lower case, words joined by hyphens: ``Batch Update`` -> ``batch-update``."""
    return _NON_WORD.sub("-", text.lower()).strip("-")


def envelope(
    record: dict[str, Any],
    context: EventContext,
    dataset: str,
    classification: tuple[list[str], list[str]],
    action: dict[str, str],
    zoom: dict[str, Any],
) -> dict[str, Any]:
    """The fields every event has, in this order: `@timestamp`, `ecs`, `event`, `organization`,
    `data_stream`, `zoom` (``zoom``, the stream's own fields), and `tags` when the record has no
    usable time (then `@timestamp` is when it was read).

    ``classification`` is (`event.category`, `event.type`); ``action`` holds what is known of the
    action (`event.action`, `event.outcome`), written after `event.created`.
    """
    category, types = classification
    event: dict[str, Any] = {
        "kind": "event",
        "id": context.event_id,
        "category": category,
        "type": types,
        "module": "zoom",
        "dataset": dataset,
        "created": context.created,
        **action,
    }
    if context.include_original:
        event["original"] = orjson.dumps(record).decode()
    doc: dict[str, Any] = {
        "@timestamp": context.created if context.time is None else rfc3339_millis(context.time),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "organization": {"id": context.account_id},
        "data_stream": {"type": "logs", "dataset": dataset, "namespace": "default"},
        "zoom": zoom,
    }
    if context.time is None:
        doc["tags"] = [UNPARSABLE_TIME_TAG]
    return doc


def user(name: str) -> dict[str, str]:
    """`user.name`, and `user.email` when the name looks like an e-mail address."""
    return {"name": name, "email": name} if _EMAIL.match(name) else {"name": name}
