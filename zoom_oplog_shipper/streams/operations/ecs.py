"""Map a raw Zoom operation-log record to an ECS 9.4.0 event (a pure function of its inputs).

The event is built step by step: the fields every event has, then the fields that
:mod:`~zoom_oplog_shipper.streams.operations.detail` parses out of ``operation_detail``
(:func:`detail_fields`), merged in.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from zoom_oplog_shipper.formats.ecs import envelope, normalize, user
from zoom_oplog_shipper.mapping import EventContext
from zoom_oplog_shipper.streams.operations.detail import (
    TAG_ADMIN_ROLE_GRANTED,
    TAG_SECURITY_CONTROL_DISABLED,
    Detail,
    object_and_changes,
    parse_detail,
)

DATASET = "zoom.operation"

#: The record's own fields, kept as zoom.operation.* (each only when it is a non-empty string).
_OWN_FIELDS = ("action", "category_type", "operation_detail", "operator")
#: Categories whose records are about identity objects, and the ECS object type they act on.
_IAM_OBJECT = {"user": "user", "role": "user", "user_group": "group", "group": "group"}
_TYPE_WORDS = (
    ("deletion", ("delete", "remove", "deleted", "removed")),
    ("creation", ("add", "create", "added", "created")),
    ("change", ("update", "edit", "change", "updated", "changed", "modify", "set", "assign")),
)


def event_type(action: str | None) -> str:
    """The ECS activity type an action names: creation, deletion, change or info."""
    words = set(normalize(action or "").split("-"))
    for kind, names in _TYPE_WORDS:
        if words.intersection(names):
            return kind
    return "info"


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


@lru_cache(maxsize=1024)
def _event_kind(category_type: str | None, action: str | None) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """``event.category``, ``event.type`` and ``event.action`` for one (category, action) pair."""
    categories, types = categorize(category_type, action)
    return tuple(categories), tuple(types), normalize(action) if action else None


def to_ecs(record: dict[str, Any], context: EventContext) -> dict[str, Any]:
    """The ECS event for one operation-log ``record``; missing or odd fields are left out, never raised on."""
    own = {key: value for key in _OWN_FIELDS if isinstance(value := record.get(key), str) and value}
    action, category_type = own.get("action"), own.get("category_type")
    detail, operator = own.get("operation_detail"), own.get("operator")
    categories, types, normalized_action = _event_kind(category_type, action)
    known = {"action": normalized_action} if normalized_action is not None else {}
    doc = envelope(record, context, DATASET, (list(categories), list(types)), known, {"operation": own})
    if detail is not None:
        doc["message"] = detail
    if operator is not None:
        doc["user"] = user(operator)
        doc["related"] = {"user": [operator]}
    if detail is not None:
        add_detail_fields(doc, parse_detail(detail, category_type, action), admin_type=categories[0] == "iam")
    return doc


# --- the fields parsed out of operation_detail -------------------------------------------------


def detail_fields(detail: Detail) -> dict[str, Any]:
    """The ECS 9.4.0 fields for a parsed ``operation_detail``, as a nested dict (empty when it is empty).

    :func:`to_ecs` merges them into the event (:func:`add_detail_fields`): nested dicts key by key
    (no key here collides with one the event sets: ``user.target``/``user.changes`` sit beside the
    operator's ``user.name``); the lists ``related.user``, ``tags`` and ``event.type`` are unioned
    with the event's. ``event.type: ["admin"]`` appears only when an admin/owner role is granted, an
    IAM event type (:func:`to_ecs` leaves it out of events that are not ``iam``).

    Fields: ``user.target.email``/``user.target.name`` (the affected user), ``group.name`` (the
    group acted on), ``related.user`` (every user seen in the text; the event adds the operator),
    ``user.target.roles`` = the role before the change and ``user.changes.roles`` = the role
    after it (ECS: ``user.target.*`` is the target as it was, ``user.changes.*`` holds the changed
    values), ``tags`` (``security-control-disabled``, ``admin-role-granted``). Non-ECS data stays
    under ``zoom.*``: ``zoom.operation.changes`` (``section``, ``setting``, ``from``, ``to``,
    absent keys left out), ``zoom.operation.object_type``, ``zoom.operation.disabled_controls``,
    ``zoom.role.name``, ``zoom.meeting.id``, ``zoom.webinar.id``.
    """
    fields: dict[str, Any] = {}
    add_detail_fields(fields, detail)
    return fields


def add_detail_fields(doc: dict[str, Any], detail: Detail, *, admin_type: bool = True) -> None:
    """Merge :func:`detail_fields` into ``doc`` as they are made, without building them first: dicts
    key by key after ``doc``'s own keys, ``related.user``, ``tags`` and ``event.type`` unioned
    (``doc``'s order first); the ``admin`` event type only when ``admin_type`` (an ``iam`` event)."""
    if user := _user_fields(detail):
        doc.setdefault("user", {}).update(user)
    if detail.group_name:
        doc["group"] = {"name": detail.group_name}
    if detail.related_users:
        _union(doc.setdefault("related", {}).setdefault("user", []), detail.related_users)
    tags = [TAG_SECURITY_CONTROL_DISABLED] if detail.security_control_disabled else []
    if detail.admin_granted:
        tags.append(TAG_ADMIN_ROLE_GRANTED)
        if admin_type:  # an IAM type: a role grant filed under another category keeps its tag only
            _union(doc.setdefault("event", {}).setdefault("type", []), ["admin"])
    if tags:
        _union(doc.setdefault("tags", []), tags)
    if zoom := _zoom_fields(detail):
        into = doc.setdefault("zoom", {})
        for name, part in zoom.items():
            into.setdefault(name, {}).update(part)


def _user_fields(detail: Detail) -> dict[str, Any]:
    """``user.changes`` (the role after) and ``user.target`` (the user acted on, its role before)."""
    target: dict[str, Any] = {}
    if detail.target_user_email:
        target["email"] = detail.target_user_email
    if detail.target_user_name:
        target["name"] = detail.target_user_name
    user: dict[str, Any] = {}
    if (rc := detail.role_change) is not None:
        if rc.old:
            target["roles"] = [rc.old]
        user["changes"] = {"roles": [rc.new]}
    if target:
        user["target"] = target
    return user


def _zoom_fields(detail: Detail) -> dict[str, Any]:
    """``zoom.operation`` (object type, changes, disabled controls); ``zoom.role``, ``.meeting``, ``.webinar``."""
    operation = object_and_changes(detail)
    if detail.disabled_controls:
        operation["disabled_controls"] = list(detail.disabled_controls)
    zoom: dict[str, Any] = {"operation": operation} if operation else {}
    if detail.role:
        zoom["role"] = {"name": detail.role}
    if detail.meeting_id:
        zoom["meeting"] = {"id": detail.meeting_id}
    if detail.webinar_id:
        zoom["webinar"] = {"id": detail.webinar_id}
    return zoom


def _union(current: list[Any], new: Iterable[Any]) -> None:
    for item in new:
        if item not in current:
            current.append(item)
