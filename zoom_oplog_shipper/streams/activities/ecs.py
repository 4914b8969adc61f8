"""Map a Zoom sign-in/sign-out activity record to an ECS 9.4.0 event (a pure function of its inputs).

The record (``GET /report/activities``, field ``activity_logs``) is ``{email, time, type,
ip_address, client_type, version}``; any field may be missing. Mapping, as Elastic's ``zoom``
integration maps its ``activity`` stream:

- ``type`` "Sign in": ``event.action`` ``sign-in``, ``event.type`` ``[start]``; "Sign out":
  ``sign-out``, ``[end]`` (case and surrounding spaces ignored); both ``event.outcome`` ``success``.
  Any other type: ``event.type`` ``[info]``, ``event.action`` the type in hyphenated lower case, no
  ``event.outcome`` (Zoom's report lists successful sign-ins and sign-outs only; an unknown type
  says nothing about success).
- ``event.category`` ``[authentication, session]`` always (both allow start, end and info).
- ``email``: ``user.name``, ``user.email`` (when it looks like an address) and ``related.user``.
- ``ip_address``: ``source.ip`` and ``related.ip`` when it is one valid IPv4 or IPv6 address
  (canonical form); otherwise (``unknown``, empty, a zone index) only the record keeps it.
- The record's own string fields, under Zoom's names, in ``zoom.activity.*``; the client is
  ``zoom.activity.client_type`` and ``zoom.activity.version`` verbatim (``Mac``/``mac``, ``-``).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any

import orjson

from zoom_oplog_shipper.records import rfc3339_millis
from zoom_oplog_shipper.streams.operations.ecs import ECS_VERSION, UNPARSABLE_TIME_TAG

DATASET = "zoom.activity"
#: The record's fields, in the order Zoom documents them.
FIELDS = ("email", "time", "type", "ip_address", "client_type", "version")
SIGN_IN = "sign-in"
SIGN_OUT = "sign-out"
Json = dict[str, Any]

# Zoom's type (lower case) -> (event.action, ECS event.type)
_KNOWN = {"sign in": (SIGN_IN, "start"), "sign out": (SIGN_OUT, "end")}
_NON_WORD = re.compile(r"[^a-z0-9]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def text_field(record: dict[str, Any], key: str) -> str | None:
    """``record[key]`` when it is a non-blank string, else None."""
    value = record.get(key)
    return value if isinstance(value, str) and value.strip() else None


def source_ip(value: object) -> str | None:
    """The address ``value`` holds when it is one IPv4 or IPv6 address, in canonical form; else None.

    A zone index (``fe80::1%eth0``) is refused: Elasticsearch's ``ip`` type does not take one.
    """
    if not isinstance(value, str) or "%" in value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def action_of(kind: str | None) -> tuple[str | None, str | None]:
    """``(event.action, ECS event.type)`` for Zoom's ``type``; the type is None when it is unknown."""
    if kind is None:
        return None, None
    known = _KNOWN.get(" ".join(kind.lower().split()))
    if known is not None:
        return known
    return _NON_WORD.sub("-", kind.lower()).strip("-") or None, None


def summary(record: dict[str, Any]) -> str | None:
    """One line for people: ``Sign in by a@example.com from 192.0.2.1 using Mac 6.0.2``."""
    kind, email, address = text_field(record, "type"), text_field(record, "email"), text_field(record, "ip_address")
    client, version = text_field(record, "client_type"), text_field(record, "version")
    if kind is None and email is None:
        return None
    parts = [kind or "Activity"]
    if email:
        parts.append(f"by {email}")
    if address:
        parts.append(f"from {address}")
    if client:
        parts.append(f"using {client}" + (f" {version}" if version and version != "-" else ""))
    return " ".join(parts)


def to_ecs_activity(
    record: Json, event_id: str, account_id: str, created: str, time: datetime | None, *, include_original: bool = False
) -> Json:
    """The ECS event for one activity ``record``; odd or missing fields are left out, never raised on.

    Same contract as ``ecs.to_ecs``: ``time`` is the record's parsed time (None: ``@timestamp`` is
    ``created`` and the event is tagged), ``created`` the RFC 3339 time the run read the record.
    """
    rec: dict[str, Any] = record if isinstance(record, dict) else {}
    action, ecs_type = action_of(text_field(rec, "type"))
    event: dict[str, Any] = {
        "kind": "event",
        "id": event_id,
        "category": ["authentication", "session"],
        "type": [ecs_type or "info"],
        "module": "zoom",
        "dataset": DATASET,
        "created": created,
    }
    if action:
        event["action"] = action
    if ecs_type:
        event["outcome"] = "success"
    if include_original:
        event["original"] = orjson.dumps(record).decode()
    doc: dict[str, Any] = {
        "@timestamp": created if time is None else rfc3339_millis(time),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "organization": {"id": account_id},
        "data_stream": {"type": "logs", "dataset": DATASET, "namespace": "default"},
        "zoom": {"activity": {k: v for k in FIELDS if k != "time" and (v := text_field(rec, k)) is not None}},
    }
    if time is None:
        doc["tags"] = [UNPARSABLE_TIME_TAG]
    message = summary(rec)
    if message:
        doc["message"] = message
    related: dict[str, list[str]] = {}
    email = text_field(rec, "email")
    if email is not None:
        doc["user"] = {"name": email, "email": email} if _EMAIL.match(email) else {"name": email}
        related["user"] = [email]
    address = source_ip(rec.get("ip_address"))
    if address is not None:
        doc["source"] = {"ip": address}
        related["ip"] = [address]
    if related:
        doc["related"] = related
    return doc
