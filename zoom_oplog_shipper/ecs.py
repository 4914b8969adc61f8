"""Map a raw Zoom operation-log record to an ECS 9.4.0 event (a pure function of its inputs).

The fields that :mod:`zoom_oplog_shipper.detail` parses out of ``operation_detail`` are mapped here
too (:func:`detail_fields`). That mapping runs for every record, so it is compiled once per detail
*shape*: the text with its e-mail addresses and numbers replaced by numbered placeholders. A shape
becomes a JSON template with a slot per placeholder; a record's fields are the template with its
own addresses and numbers put in, decoded by orjson into fresh dicts and lists.
"""

from __future__ import annotations

import re
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
    change_as_dict,
    parse_detail,
)
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
    # A field counts only when it is a non-empty string.
    action = get("action")
    if not isinstance(action, str) or not action:
        action = None
    category_type = get("category_type")
    if not isinstance(category_type, str) or not category_type:
        category_type = None
    detail = get("operation_detail")
    if not isinstance(detail, str) or not detail:
        detail = None
    operator = get("operator")
    if not isinstance(operator, str) or not operator:
        operator = None
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

    raw: dict[str, str] = {}
    if action is not None:
        raw["action"] = action
    if category_type is not None:
        raw["category_type"] = category_type
    if detail is not None:
        raw["operation_detail"] = detail
    if operator is not None:
        raw["operator"] = operator

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
        fields = parsed_detail_fields(detail, category_type, action)
        if fields:
            _merge_detail_fields(doc, fields)
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

    operation: dict[str, Any] = {}
    if detail.object_type:
        operation["object_type"] = detail.object_type
    if detail.changes:
        operation["changes"] = [change_as_dict(ch) for ch in detail.changes]
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


def parsed_detail_fields(text: str, category_type: str | None, action: str | None) -> dict[str, Any]:
    """``detail_fields(parse_detail(text, category_type, action))``, fast, and a fresh dict every time.

    Details that differ only in their e-mail addresses and numbers share one parse (one template);
    each text's own addresses and numbers fill the template's slots.
    """
    fields = _detail_json(text, category_type, action)
    return orjson.loads(fields) if fields is not None else {}


def _merge_detail_fields(doc: dict[str, Any], fields: dict[str, Any]) -> None:
    """Merge :func:`detail_fields` output into the event ``doc`` that :func:`to_ecs` built, in place.

    Dicts merge key by key (the event's own keys first), the lists ``related.user``, ``tags`` and
    ``event.type`` are unioned (the event's order first, duplicates dropped). The event has no
    other key that the detail fields set. ``fields`` is taken over, not copied: it must be fresh,
    since later steps (line truncation) change the event.
    """
    for key, value in fields.items():
        current = doc.get(key)
        if current is None:
            doc[key] = value
        elif key == "zoom":
            for name, part in value.items():
                if name in current:
                    current[name].update(part)
                else:
                    current[name] = part
        elif key == "user":
            current.update(value)
        else:  # related.user, tags, event.type: sets kept as lists
            union = current if key == "tags" else current["user" if key == "related" else "type"]
            for item in value if key == "tags" else value["user" if key == "related" else "type"]:
                if item not in union:
                    union.append(item)


# What varies between otherwise identical details: e-mail addresses, ids and counts. Single digits
# stay: the parser reads 0 and 1 as off and on. The text is parsed with numbered placeholders in
# their place (an address stays an address, a number a number); the placeholders found in the
# fields are the template's slots.
_VARIABLE_RE: Final = re.compile(rf"({EMAIL_PATTERN}|(?<![\w.])\d{{2,}}(?![\w.]))")
_PLACEHOLDER_RE: Final = re.compile(r"zmask(\d+)@mask\.invalid|(?<![\w.])8800(\d+)88(?![\w.])")
_TWO_DIGITS_RE: Final = re.compile(r"\d\d")
# Letters with only these around them hold no address and no number: no need for the expression.
_PUNCTUATION: Final = "-:()[]{},.;!?'\"/&*+"

#: JSON text with slots: a slot (int) takes the JSON-escaped value of that placeholder.
_Template = tuple[str | int, ...]


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


def _template_of(value: Any, slots: int, out: list[str | int]) -> bool:
    """Append ``value`` as JSON text to ``out``, each placeholder a slot; False when a placeholder
    is not one of the ``slots`` (the parser changed it: digits of several ids joined)."""
    if isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            out.append(("," if i else "") + orjson.dumps(key).decode() + ":")
            if not _template_of(item, slots, out):
                return False
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            if not _template_of(item, slots, out):
                return False
        out.append("]")
    elif isinstance(value, str):
        out.append('"')
        done = 0
        for match in _PLACEHOLDER_RE.finditer(value):
            index = int(match.group(1) or match.group(2))
            if index >= slots:
                return False
            out += (_json_string(value[done : match.start()])[1:-1], index)
            done = match.end()
        out.append(_json_string(value[done:])[1:-1] + '"')
    else:
        out.append(orjson.dumps(value).decode())
    return True


def _json_string(text: str) -> str:
    return orjson.dumps(text).decode()


@lru_cache(maxsize=2048)
def _shape_template(masked: str, slots: int, category_type: str | None, action: str | None) -> _Template | None:
    """The template of one detail shape's fields; () when there are none, None when the shape
    cannot be filled in (then each text of that shape is parsed as it is)."""
    fields = detail_fields(parse_detail(masked, category_type, action, max_chars=None))
    if not fields:
        return ()
    out: list[str | int] = []
    if not _template_of(fields, slots, out):
        return None
    pieces: list[str | int] = []
    for piece in out:
        if isinstance(piece, str) and pieces and isinstance(pieces[-1], str):
            pieces[-1] += piece
        else:
            pieces.append(piece)
    return tuple(pieces)


@lru_cache(maxsize=4096)
def _detail_json(text: str, category_type: str | None, action: str | None) -> str | None:
    """The JSON text of :func:`detail_fields` for one exact detail (None when there are none)."""
    bounded = text[:MAX_PARSE_CHARS]
    if "@" in bounded or _TWO_DIGITS_RE.search(bounded):
        masked, values = _mask(bounded)
        if values:
            template = _shape_template(masked, len(values), category_type, action)
            if template == ():
                return None
            if template is not None:
                # Numbers never need escaping; an address rarely does.
                escaped = [v if v.isprintable() and "\\" not in v else _json_string(v)[1:-1] for v in values]
                return "".join([p if isinstance(p, str) else escaped[p] for p in template])
    fields = detail_fields(parse_detail(bounded, category_type, action))
    return orjson.dumps(fields).decode() if fields else None


def to_raw(record: Any, event_id: str) -> dict[str, Any]:
    """Format ``raw``: the Zoom record untouched, with its fingerprint beside it."""
    return {"event": {"id": event_id}, "record": record}
