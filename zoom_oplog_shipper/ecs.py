"""Map a raw Zoom operation-log record to an ECS 9.4.0 event (a pure function of its inputs).

The fields that :mod:`zoom_oplog_shipper.detail` parses out of ``operation_detail`` are mapped here
too (:func:`detail_fields`). That mapping runs for every record, so it is compiled once per detail
*shape*: the text with its e-mail addresses and numbers replaced by numbered placeholders. A shape
is parsed once, and its fields become a small compiled function that merges them into an event
as literals, each placeholder read from the record's own values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, Final

import orjson

from zoom_oplog_shipper.detail import (
    EMAIL_PATTERN,
    MAX_PARSE_CHARS,
    TAG_ADMIN_ROLE_GRANTED,
    TAG_SECURITY_CONTROL_DISABLED,
    Detail,
    object_and_changes,
    parse_detail,
)
from zoom_oplog_shipper.records import rfc3339_millis

ECS_VERSION = "9.4.0"
DATASET = "zoom.operation"
UNPARSABLE_TIME_TAG = "zoom_time_unparsable"

#: The record's own fields, in the order `zoom.operation` lists them.
_RECORD_FIELDS = ("action", "category_type", "operation_detail", "operator")
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
    get = record.get
    # A field counts only when it is a non-empty string; they are kept as `zoom.operation.*`.
    raw: dict[str, str] = {}
    for key in _RECORD_FIELDS:
        value = get(key)
        if isinstance(value, str) and value:
            raw[key] = value
    action = raw.get("action")
    category_type = raw.get("category_type")
    detail = raw.get("operation_detail")
    operator = raw.get("operator")
    raw_time = get("time")
    if time is None:
        timestamp = created
    elif isinstance(raw_time, str) and len(raw_time) == 20 and raw_time[19] == "Z":
        timestamp = raw_time[:19] + ".000Z"  # Zoom's usual form, already UTC: no need to format a datetime
    else:
        timestamp = rfc3339_millis(time)
    categories, types, normalized_action = _event_kind(category_type, action)

    event: dict[str, Any] = {
        "kind": "event",
        "id": event_id,
        "category": list(categories),
        "type": list(types),
        "module": "zoom",
        "dataset": DATASET,
        "created": created,
    }
    if normalized_action is not None:
        event["action"] = normalized_action
    if include_original:
        event["original"] = orjson.dumps(record).decode()

    doc: dict[str, Any] = {
        "@timestamp": timestamp,
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
        doc["user"] = {"name": operator, "email": operator} if _is_email(operator) else {"name": operator}
        doc["related"] = {"user": [operator]}
    if detail is not None:
        plan = _detail_plan(detail, category_type, action)
        if plan is not None:
            merge, values = plan
            merge(doc, values)
            if categories[0] != "iam" and "admin" in event["type"]:
                # `admin` is an IAM type; a role grant filed under another category keeps its tag only.
                event["type"].remove("admin")
    return doc


@lru_cache(maxsize=1024)
def _is_email(text: str) -> bool:
    return _EMAIL.match(text) is not None


# --- the fields parsed out of operation_detail -------------------------------------------------


def detail_fields(detail: Detail) -> dict[str, Any]:
    """The ECS 9.4.0 fields for a parsed ``operation_detail``, as a nested dict (empty when it is empty).

    :func:`to_ecs` merges them into the event: nested dicts key by key (no key here collides with
    one the event sets: ``user.target``/``user.changes`` sit beside the operator's ``user.name``);
    the lists ``related.user``, ``tags`` and ``event.type`` are unioned with the event's.
    ``event.type: ["admin"]`` appears only when an admin/owner role is granted, an IAM event type
    (:func:`to_ecs` drops it from events that are not ``iam``).

    Fields: ``user.target.email``/``user.target.name`` (the affected user), ``group.name`` (the
    group acted on), ``related.user`` (every user seen in the text; the event adds the operator),
    ``user.target.roles`` = the role before the change and ``user.changes.roles`` = the role
    after it (ECS: ``user.target.*`` is the target as it was, ``user.changes.*`` holds the changed
    values), ``tags`` (``security-control-disabled``, ``admin-role-granted``). Non-ECS data stays
    under ``zoom.*``: ``zoom.operation.changes`` (``section``, ``setting``, ``from``, ``to``,
    absent keys left out), ``zoom.operation.object_type``, ``zoom.operation.disabled_controls``,
    ``zoom.role.name``, ``zoom.meeting.id``, ``zoom.webinar.id``.
    """
    out: dict[str, Any] = {}
    if detail.is_empty:
        return out

    target: dict[str, Any] = {}
    if detail.target_user_email:
        target["email"] = detail.target_user_email
    if detail.target_user_name:
        target["name"] = detail.target_user_name
    user: dict[str, Any] = {}
    rc = detail.role_change
    if rc is not None:
        if rc.old:
            target["roles"] = [rc.old]
        user["changes"] = {"roles": [rc.new]}
    if target:
        user["target"] = target
    if user:
        out["user"] = user
    if detail.group_name:
        out["group"] = {"name": detail.group_name}
    if detail.related_users:
        out["related"] = {"user": list(detail.related_users)}

    tags: list[str] = []
    if detail.security_control_disabled:
        tags.append(TAG_SECURITY_CONTROL_DISABLED)
    if detail.admin_granted:
        tags.append(TAG_ADMIN_ROLE_GRANTED)
        out["event"] = {"type": ["admin"]}
    if tags:
        out["tags"] = tags

    operation = object_and_changes(detail)
    if detail.disabled_controls:
        operation["disabled_controls"] = list(detail.disabled_controls)
    zoom: dict[str, Any] = {}
    if operation:
        zoom["operation"] = operation
    if detail.role:
        zoom["role"] = {"name": detail.role}
    if detail.meeting_id:
        zoom["meeting"] = {"id": detail.meeting_id}
    if detail.webinar_id:
        zoom["webinar"] = {"id": detail.webinar_id}
    if zoom:
        out["zoom"] = zoom
    return out


# What varies between otherwise identical details: e-mail addresses, ids and counts. Single digits
# stay: the parser reads 0 and 1 as off and on. The text is parsed with numbered placeholders in
# their place (an address stays an address, a number a number); the placeholders found in the
# fields are the template's slots.
_VARIABLE_RE: Final = re.compile(rf"({EMAIL_PATTERN}|(?<![\w.])\d{{2,}}(?![\w.]))")
_PLACEHOLDER_RE: Final = re.compile(r"zmask(\d+)@mask\.invalid|(?<![\w.])8800(\d+)88(?![\w.])")
_TWO_DIGITS_RE: Final = re.compile(r"\d\d")
# Letters with only these around them hold no address and no number: no need for the expression.
_PUNCTUATION: Final = "-:()[]{},.;!?'\"/&*+"

#: Merges one detail's fields into the event :func:`to_ecs` built: (event, the detail's values).
_Merge = Callable[[dict[str, Any], Sequence[str]], None]


def _mask(text: str) -> tuple[str, list[str]]:
    """The text's shape (whitespace collapsed, as the parser reads it) and the values taken out.

    Neither an address nor a number spans whitespace, so the text is masked word by word, and
    only the words that can hold one go through the regular expression.
    """
    words = text.split()
    values: list[str] = []
    for at, word in enumerate(words):
        if word.isalpha() or ("@" not in word and word.strip(_PUNCTUATION).isalpha()):
            continue
        parts = _VARIABLE_RE.split(word)
        if len(parts) == 1:
            continue
        for i in range(1, len(parts), 2):
            value = parts[i]
            index = len(values)
            parts[i] = f"zmask{index}@mask.invalid" if "@" in value else f"8800{index}88"
            values.append(value)
        words[at] = "".join(parts)
    return " ".join(words), values


def _union(current: list[Any], new: list[Any]) -> None:
    for item in new:
        if item not in current:
            current.append(item)


def _unfillable(doc: dict[str, Any], values: Sequence[str]) -> None:  # pragma: no cover - a marker
    msg = "a detail shape that cannot be filled in is never merged"
    raise AssertionError(msg)


def _literal(value: Any, slots: int | None) -> str | None:
    """Python source of a fresh copy of ``value``; placeholder ``n`` reads ``v[n]`` (no placeholders
    when ``slots`` is None). None when the parser changed a placeholder (it joins the digits of an
    id written in groups, ``123 456 7890``): such a shape cannot be filled in."""
    if isinstance(value, dict):
        items = [(repr(key), _literal(item, slots)) for key, item in value.items()]
        if any(item is None for _, item in items):
            return None
        return "{" + ", ".join(f"{key}: {item}" for key, item in items) + "}"
    if isinstance(value, list):
        elements = [_literal(item, slots) for item in value]
        if any(item is None for item in elements):
            return None
        return "[" + ", ".join(item for item in elements if item is not None) + "]"
    if not isinstance(value, str):
        return None
    if slots is None:
        return repr(value)
    pieces: list[str] = []
    literals: list[str] = []
    done = 0
    for match in _PLACEHOLDER_RE.finditer(value):
        index = int(match.group(1) or match.group(2))
        if index >= slots:
            return None
        literals.append(value[done : match.start()])
        pieces += [repr(literals[-1]), f"v[{index}]"]
        done = match.end()
    literals.append(value[done:])
    if any("8800" in text or "zmask" in text for text in literals):
        return None  # what is left of a placeholder the parser cut or joined with other digits
    pieces.append(repr(literals[-1]))
    pieces = [piece for piece in pieces if piece != "''"] or ["''"]
    return pieces[0] if len(pieces) == 1 else "(" + " + ".join(pieces) + ")"


#: How the compiled merge adds a field the event already has; ``{}`` is the field's literal.
_MERGE_INTO: Final = {
    "user": "current.update({})",
    "related": "_union(current['user'], {})",
    "tags": "_union(current, {})",
}


def _compile(fields: dict[str, Any], slots: int | None) -> _Merge:
    """The merge of ``fields`` into an event, compiled: each field is a literal, so every event
    gets fresh dicts and lists without a copy or a decode. The merge is :func:`detail_fields`'
    contract: dicts key by key after the event's own keys, ``related.user``, ``tags`` and
    ``event.type`` unioned (the event's order first). Every string in the source is a ``repr``.
    """
    body: list[str] = []
    for key, value in fields.items():
        source = _literal(value, slots)
        if source is None:
            return _unfillable
        if key == "zoom":  # the event has zoom.operation, and nothing else under zoom
            body.append("zoom = doc['zoom']")
            for name, part in value.items():
                part_source = _literal(part, slots)
                if name == "operation":
                    body.append(f"zoom['operation'].update({part_source})")
                else:
                    body.append(f"zoom[{name!r}] = {part_source}")
        elif key == "event":  # the event's own event.type
            body.append(f"_union(doc['event']['type'], {_literal(value['type'], slots)})")
        elif key in _MERGE_INTO:  # the event may have these already (operator, untimed)
            inner = _literal(value["user"] if key == "related" else value, slots)
            body += [
                f"current = doc.get({key!r})",
                f"if current is None: doc[{key!r}] = {source}",
                f"else: {_MERGE_INTO[key].format(inner)}",
            ]
        else:  # not in the event
            body.append(f"doc[{key!r}] = {source}")
    code = "def merge(doc, v):\n    " + "\n    ".join(body or ["pass"]) + "\n"
    namespace: dict[str, Any] = {"_union": _union}
    exec(compile(code, "<operation_detail shape>", "exec"), namespace)
    compiled: _Merge = namespace["merge"]
    return compiled


@lru_cache(maxsize=2048)
def _shape_merge(text: str, slots: int | None, category_type: str | None, action: str | None) -> _Merge | None:
    """The compiled merge of one detail shape's fields (None when it has none); ``slots`` is the
    number of placeholders, or None for a text taken as it is."""
    fields = detail_fields(parse_detail(text, category_type, action, max_chars=None))
    return _compile(fields, slots) if fields else None


# Half the records of a large account repeat an earlier text; 8192 texts keep most of those repeats
# at about 2 MB.
@lru_cache(maxsize=8192)
def _detail_plan(text: str, category_type: str | None, action: str | None) -> tuple[_Merge, tuple[str, ...]] | None:
    """How to merge one exact detail's fields: the shape's merge and the text's values (None: no fields)."""
    bounded = text[:MAX_PARSE_CHARS]
    if "@" in bounded or _TWO_DIGITS_RE.search(bounded):
        masked, values = _mask(bounded)
        if values:
            merge = _shape_merge(masked, len(values), category_type, action)
            if merge is not _unfillable:
                return None if merge is None else (merge, tuple(values))
    merge = _shape_merge(bounded, None, category_type, action)
    return None if merge is None else (merge, ())


def to_raw(record: Any, event_id: str) -> dict[str, Any]:
    """Format ``raw``: the Zoom record untouched, with its fingerprint beside it."""
    return {"event": {"id": event_id}, "record": record}
