"""Map a raw Zoom operation-log record to an ECS 9.4.0 event (a pure function of its inputs)."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from zoom_oplog_shipper.detail import apply_detail
from zoom_oplog_shipper.records import rfc3339_millis

ECS_VERSION = "9.4.0"
DATASET = "zoom.operation"
UNPARSABLE_TIME_TAG = "zoom_time_unparsable"

_NON_WORD = re.compile(r"[^a-z0-9]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: Categories whose records are about identity objects, and the ECS object type they act on.
_IAM_OBJECT = {"user": "user", "role": "user", "user_group": "group", "group": "group"}
_TYPE_WORDS = (
    ("deletion", ("delete", "remove", "deleted", "removed")),
    ("creation", ("add", "create", "added", "created")),
    ("change", ("update", "edit", "change", "updated", "changed", "modify", "set", "assign")),
)


def normalize(text: str) -> str:
    """Lower case, words joined by hyphens: ``Batch Update`` -> ``batch-update``."""
    return _NON_WORD.sub("-", text.lower()).strip("-")


def event_type(action: str | None) -> str:
    """The ECS activity type an action names: creation, deletion, change or info."""
    if not action:
        return "info"
    words = set(_NON_WORD.split(action.lower()))
    for kind, names in _TYPE_WORDS:
        if words.intersection(names):
            return kind
    return "info"


@lru_cache(maxsize=1024)
def _categorize(category_type: str | None, action: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    categories, types = categorize(category_type, action)
    return tuple(categories), tuple(types)


@lru_cache(maxsize=1024)
def _normalize_action(action: str) -> str:
    return normalize(action)


def categorize(category_type: str | None, action: str | None) -> tuple[list[str], list[str]]:
    """ECS ``event.category`` and ``event.type`` for a record.

    ECS allows a type only where every category on the event allows it, and IAM events carry the
    object type (user or group) that `configuration` does not allow, so an identity record is
    `iam` alone and every other record is `configuration`.
    """
    activity = event_type(action)
    key = normalize(category_type or "").replace("-", "_")
    obj = _IAM_OBJECT.get(key)
    if obj is not None:
        return ["iam"], [activity, obj]
    return ["configuration"], [activity]


def _text(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    return value if isinstance(value, str) and value != "" else None


def _timestamp(record: dict[str, Any], time: datetime | None, created: str) -> str:
    if time is None:
        return created
    raw = record.get("time")
    if isinstance(raw, str) and len(raw) == 20 and raw[19] == "Z":
        return raw[:19] + ".000Z"  # Zoom's usual form, already UTC: no need to format a datetime
    return rfc3339_millis(time)


def to_ecs(
    record: dict[str, Any],
    event_id: str,
    account_id: str,
    created: str,
    time: datetime | None,
    *,
    include_original: bool = False,
) -> dict[str, Any]:
    """The ECS event for ``record``; missing or odd fields are left out, never raised on.

    ``time`` is the record's parsed time (None when it has none: then `@timestamp` is ``created``
    and the event is tagged), ``created`` the RFC 3339 time the run read the record.
    """
    action = _text(record, "action")
    category_type = _text(record, "category_type")
    detail = _text(record, "operation_detail")
    operator = _text(record, "operator")
    cached_categories, cached_types = _categorize(category_type, action)
    categories, types = list(cached_categories), list(cached_types)

    event: dict[str, Any] = {
        "kind": "event",
        "id": event_id,
        "category": categories,
        "type": types,
        "module": "zoom",
        "dataset": DATASET,
        "created": created,
    }
    if action:
        event["action"] = _normalize_action(action)
    if include_original:
        event["original"] = orjson.dumps(record).decode()

    raw: dict[str, str] = {}
    for key, value in (
        ("action", action),
        ("category_type", category_type),
        ("operation_detail", detail),
        ("operator", operator),
    ):
        if value is not None:
            raw[key] = value

    doc: dict[str, Any] = {
        "@timestamp": _timestamp(record, time, created),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "organization": {"id": account_id},
        "data_stream": {"type": "logs", "dataset": DATASET, "namespace": "default"},
        "zoom": {"operation": raw},
    }
    if time is None:
        doc["tags"] = [UNPARSABLE_TIME_TAG]
    if detail is not None:
        doc["message"] = detail
    if operator is not None:
        user: dict[str, str] = {"name": operator}
        if _EMAIL.match(operator):
            user["email"] = operator
        doc["user"] = user
        doc["related"] = {"user": [operator]}
    if detail is not None:
        apply_detail(doc, detail, category_type, action)
        if categories[0] != "iam" and "admin" in event["type"]:
            # `admin` is an IAM type; a role grant filed under another category keeps its tag only.
            event["type"].remove("admin")
    return doc


def to_raw(record: Any, event_id: str) -> dict[str, Any]:
    """Format ``raw``: the Zoom record untouched, with its fingerprint beside it."""
    return {"event": {"id": event_id}, "record": record}
