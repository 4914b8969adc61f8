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

from typing import Any

from zoom_oplog_shipper.formats.ecs import envelope, user
from zoom_oplog_shipper.mapping import EventContext, text_field
from zoom_oplog_shipper.streams.activities.record import FIELDS, action_of, source_ip, summary

DATASET = "zoom.activity"
#: ECS `event.category`: both allow start, end and info.
_CATEGORY = ("authentication", "session")


def to_ecs(record: dict[str, Any], context: EventContext) -> dict[str, Any]:
    """The ECS event for one activity ``record``; odd or missing fields are left out, never raised on."""
    rec: dict[str, Any] = record if isinstance(record, dict) else {}
    action, ecs_type = action_of(text_field(rec, "type"))
    known = {"action": action} if action else {}
    if ecs_type:
        known["outcome"] = "success"  # Zoom's report lists successful sign-ins and sign-outs only
    own = {k: v for k in FIELDS if k != "time" and (v := text_field(rec, k)) is not None}
    doc = envelope(record, context, DATASET, (list(_CATEGORY), [ecs_type or "info"]), known, {"activity": own})
    message = summary(rec)
    if message:
        doc["message"] = message
    related: dict[str, list[str]] = {}
    email = text_field(rec, "email")
    if email is not None:
        doc["user"] = user(email)
        related["user"] = [email]
    address = source_ip(rec.get("ip_address"))
    if address is not None:
        doc["source"] = {"ip": address}
        related["ip"] = [address]
    if related:
        doc["related"] = related
    return doc
