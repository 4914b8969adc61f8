"""Map a raw Zoom operation-log record to an ECS 9.4.0 event (a pure function of its inputs).

The fields that :mod:`zoom_oplog_shipper.detail` parses out of ``operation_detail`` are mapped here
too (:func:`detail_fields`). That mapping runs for every record, so it is compiled once per detail
*shape*: the text with its e-mail addresses and numbers replaced by numbered placeholders. A shape
is parsed once, and the whole event of each form (operator as a name or an address, untimed, with
``event.original``) becomes a small compiled function that returns it as one literal, the record's
own values read from its parameters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache, partial
from typing import Any, Final, cast

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
    # A field counts only when it is a non-empty string (inline: this runs for every record).
    action = v if isinstance(v := get("action"), str) and v else None
    category_type = v if isinstance(v := get("category_type"), str) and v else None
    detail = v if isinstance(v := get("operation_detail"), str) and v else None
    operator = v if isinstance(v := get("operator"), str) and v else None
    if time is None:
        timestamp = created
        form = _UNTIMED
    else:
        raw_time = get("time")
        if isinstance(raw_time, str) and len(raw_time) == 20 and raw_time[19] == "Z":
            timestamp = raw_time[:19] + ".000Z"  # Zoom's usual form, already UTC: no need to format a datetime
        else:
            timestamp = rfc3339_millis(time)
        form = 0
    if operator is not None:
        form += _EMAIL_OPERATOR if _is_email(operator) else _NAMED_OPERATOR
    original = None
    if include_original:
        form += _ORIGINAL
        original = orjson.dumps(record).decode()
    shape, values = _plan(detail, category_type, action)
    return shape[form](event_id, account_id, created, timestamp, detail, operator, values, original)


#: The forms of an event beside its detail shape, added up: how the operator is written (none, a
#: name, an address), whether the record had no usable time, whether ``event.original`` is kept.
_NAMED_OPERATOR: Final = 1
_EMAIL_OPERATOR: Final = 2
_UNTIMED: Final = 3
_ORIGINAL: Final = 6


def _event(
    form: int,
    fields: dict[str, Any],
    category_type: str | None,
    action: str | None,
    event_id: str,
    account_id: str,
    created: str,
    timestamp: str,
    detail: str | None,
    operator: str | None,
    original: str | None,
) -> dict[str, Any]:
    """The event of one form with the detail's ``fields`` merged in, built step by step.

    This is the mapping's definition: the compiled builders are what it returns for a shape, as literals.
    """
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
    if form >= _ORIGINAL:
        event["original"] = original
    raw: dict[str, Any] = {}  # the record's own fields, kept as zoom.operation.*
    for key, value in (
        ("action", action),
        ("category_type", category_type),
        ("operation_detail", detail),
        ("operator", operator),
    ):
        if value is not None:
            raw[key] = value
    doc: dict[str, Any] = {
        "@timestamp": timestamp,
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "organization": {"id": account_id},
        "data_stream": {"type": "logs", "dataset": DATASET, "namespace": "default"},
        "zoom": {"operation": raw},
    }
    if form % _ORIGINAL >= _UNTIMED:
        doc["tags"] = [UNPARSABLE_TIME_TAG]
    if detail is not None:
        doc["message"] = detail
    if operator is not None:
        doc["user"] = (
            {"name": operator, "email": operator} if form % _UNTIMED == _EMAIL_OPERATOR else {"name": operator}
        )
        doc["related"] = {"user": [operator]}
    if fields:
        _merge(doc, fields)
        if categories[0] != "iam" and "admin" in event["type"]:
            # `admin` is an IAM type; a role grant filed under another category keeps its tag only.
            event["type"].remove("admin")
    return doc


def _merge(doc: dict[str, Any], fields: dict[str, Any]) -> None:
    """Merge :func:`detail_fields` into an event: dicts key by key after the event's own keys;
    ``related.user``, ``tags`` and ``event.type`` unioned (the event's order first)."""
    for key, value in fields.items():
        current: Any = doc.get(key)
        if key == "zoom":  # the event has zoom.operation, and nothing else under zoom
            for name, part in value.items():
                if name == "operation":
                    current["operation"].update(part)
                else:
                    current[name] = part
        elif key == "event":
            _union(current["type"], value["type"])
        elif current is None:
            doc[key] = value
        elif key == "user":
            current.update(value)
        elif key == "related":
            _union(current["user"], value["user"])
        elif key == "tags":
            _union(current, value)
        else:  # pragma: no cover - detail_fields sets nothing else the event has
            doc[key] = value


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

#: Builds one event: (event id, account id, created, @timestamp, detail, operator, the detail's
#: values, event.original); absent fields are None.
_Build = Callable[[str, str, str, str, str | None, str | None, Sequence[str], str | None], dict[str, Any]]

# While a builder is compiled, its inputs are these markers (private-use characters) in the
# event; a text, category or action holding one is mapped without compiling.
_SLOT: Final = "\ue000"
_SLOT_END: Final = "\ue001"
_SLOT_RE: Final = re.compile(f"{_SLOT}(\\w+){_SLOT_END}")
#: The builder's parameters, in order, by marker name (``v3`` is the detail's fourth value).
_PARAMETERS: Final = ("i", "a", "c", "t", "d", "o", "v", "r")


def _marker(name: str) -> str:
    return f"{_SLOT}{name}{_SLOT_END}"


def _mask(text: str) -> tuple[str, list[str]]:
    """The text's shape (whitespace collapsed, as the parser reads it) and the values taken out
    (none: the text as it is).

    Neither an address nor a number spans whitespace, so the text is masked word by word, and
    only the words that can hold one go through the regular expression: those with an ``@``, and
    when the text has two digits, those with a digit.
    """
    if text.isascii():  # count the digits without the expression, which is slower
        raw = text.encode()
        digits = len(raw) - len(raw.translate(None, b"0123456789")) > 1
    else:
        digits = _TWO_DIGITS_RE.search(text) is not None
    if not digits and "@" not in text:
        return text, []
    words = text.split()
    values: list[str] = []
    for at, word in enumerate(words):
        if word.isalpha():
            continue
        if "@" not in word:
            if not digits:
                continue
            if word.isdecimal():  # all one number, if it has two digits
                if len(word) > 1:
                    words[at] = f"8800{len(values)}88"
                    values.append(word)
                continue
            letters = word.strip(_PUNCTUATION)
            if not letters or letters.isalpha():
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


def _with_first(first: str, new: list[Any]) -> list[Any]:
    """``[first]`` unioned with ``new``: the operator first in ``related.user``."""
    current = [first]
    _union(current, new)
    return current


def _slotted(value: Any, slots: int) -> Any:
    """``value`` with placeholder ``n`` as the marker of value ``n``; None when the parser changed a
    placeholder (it joins the digits of an id written in groups, ``123 456 7890``): such a shape
    cannot be filled in."""
    if isinstance(value, dict):
        items = {key: _slotted(item, slots) for key, item in value.items()}
        return None if any(item is None for item in items.values()) else items
    if isinstance(value, list):
        elements = [_slotted(item, slots) for item in value]
        return None if any(item is None for item in elements) else elements
    if not isinstance(value, str):
        return value
    pieces: list[str] = []
    done = 0
    for match in _PLACEHOLDER_RE.finditer(value):
        index = int(match.group(1) or match.group(2))
        if index >= slots:
            return None
        pieces += [value[done : match.start()], _marker(f"v{index}")]
        done = match.end()
    pieces.append(value[done:])
    if any("8800" in text or "zmask" in text for text in pieces[::2]):
        return None  # what is left of a placeholder the parser cut or joined with other digits
    return "".join(pieces)


def _source(value: Any, path: tuple[str, ...], operator: bool) -> str:
    """Python source of a fresh copy of ``value``, each marker read from its parameter."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {_source(item, (*path, key), operator)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        items = [_source(item, path, operator) for item in value]
        if operator and path == ("related", "user") and len(items) > 1:
            # The detail's users are unioned with the operator's as the record's values come; one
            # user (the usual case) is compared in place, without a call.
            if len(items) == 2:
                first, user = items[0], f"({items[1]})"
                return f"([{first}, {user}] if {user} != {first} else [{first}])"
            return f"_with_first({items[0]}, [{', '.join(items[1:])}])"
        return "[" + ", ".join(items) + "]"
    if not isinstance(value, str):
        return repr(value)
    pieces = _SLOT_RE.split(value)
    sources = [
        repr(piece) if n % 2 == 0 else (f"v[{piece[1:]}]" if piece[0] == "v" else piece)
        for n, piece in enumerate(pieces)
        if piece or n % 2
    ]
    return " + ".join(sources) or "''"


class _Shape(dict[int, _Build]):
    """The builders of one detail shape's events (for one category and action), one per form,
    compiled when a form is first needed."""

    def __init__(
        self, fields: dict[str, Any], category_type: str | None, action: str | None, detail: bool, compiled: bool
    ) -> None:
        super().__init__()
        self.fields = fields
        self.category_type = category_type
        self.action = action
        self.detail = detail
        self.compiled = compiled

    def __missing__(self, form: int) -> _Build:
        build = self[form] = self._compile(form) if self.compiled else partial(self._build, form)
        return build

    def _build(self, form: int, *inputs: Any) -> dict[str, Any]:
        """The event built step by step (a text holding a marker character)."""
        i, a, c, t, d, o, _values, r = inputs
        fields = orjson.loads(orjson.dumps(self.fields))
        return _event(form, fields, self.category_type, self.action, i, a, c, t, d, o, r)

    def _compile(self, form: int) -> _Build:
        """The event of one form as one literal: every dict and list fresh, every string a ``repr`` or
        a parameter, and nothing decoded or merged per record."""
        operator = form % _UNTIMED != 0
        doc = _event(
            form,
            orjson.loads(orjson.dumps(self.fields)),
            self.category_type,
            self.action,
            _marker("i"),
            _marker("a"),
            _marker("c"),
            _marker("t"),
            _marker("d") if self.detail else None,
            _marker("o") if operator else None,
            _marker("r") if form >= _ORIGINAL else None,
        )
        code = f"def build({', '.join(_PARAMETERS)}):\n    return {_source(doc, (), operator)}\n"
        namespace: dict[str, Any] = {"_with_first": _with_first}
        exec(compile(code, "<ECS event shape>", "exec"), namespace)
        compiled: _Build = namespace["build"]
        return compiled


@lru_cache(maxsize=2048)
def _shape(text: str | None, slots: int | None, category_type: str | None, action: str | None) -> _Shape | None:
    """One detail shape's builders; ``slots`` is the number of placeholders, or None for a text taken
    as it is. None when the parser changed a placeholder."""
    fields = detail_fields(parse_detail(text, category_type, action, max_chars=None)) if text is not None else {}
    marked = any(_SLOT in part for part in (text, category_type, action) if part is not None)
    if slots is not None:
        slotted = None if marked else _slotted(fields, slots)
        if slotted is None:
            return None
        fields = slotted
    return _Shape(fields, category_type, action, text is not None, not marked)


# Half the records of a large account repeat an earlier text; 8192 texts keep most of those repeats
# at about 2 MB.
@lru_cache(maxsize=8192)
def _plan(text: str | None, category_type: str | None, action: str | None) -> tuple[_Shape, Sequence[str]]:
    """How to build the event of one exact detail (None: no detail): its shape, and the text's values."""
    if text is None:
        return cast(_Shape, _shape(None, None, category_type, action)), ()
    bounded = text[:MAX_PARSE_CHARS]
    masked, values = _mask(bounded)
    if values:
        shape = _shape(masked, len(values), category_type, action)
        if shape is not None:  # None: a marker character, or a placeholder the parser changed
            return shape, values
    # Taken as it is, a text has no placeholder to change: its shape is never None.
    return cast(_Shape, _shape(bounded, None, category_type, action)), ()


def to_raw(record: Any, event_id: str) -> dict[str, Any]:
    """Format ``raw``: the Zoom record untouched, with its fingerprint beside it."""
    return {"event": {"id": event_id}, "record": record}
