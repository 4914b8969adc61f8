"""Map a Zoom sign-in/sign-out activity record to an OCSF 1.5.0 Authentication event (class 3002).

- ``type`` "Sign in": activity_id 1 Logon; "Sign out": 2 Logoff; status_id 1 Success. Any other
  type: activity_id 99 Other, ``activity_name`` the type as Zoom wrote it, status_id 0 Unknown
  (Zoom's report lists successful sign-ins and sign-outs only; an unknown type says nothing).
- ``email``: ``user.email_addr`` and ``user.name`` (the subject that signed in or out), with the
  Zoom account as ``user.account``; also an Email Address observable.
- ``ip_address``: ``src_endpoint.ip`` ("the endpoint from which the authentication was
  requested") when it is one valid IPv4 or IPv6 address; also an IP Address observable.
- ``client_type``: ``actor.app_name``, verbatim (``Mac``, ``mac``, ``Browser``): OCSF 1.5.0 defines
  it as "the client application or service that initiated the activity", and Authentication's
  ``actor`` is "the actor that requested the authentication". OCSF 1.5.0 has no attribute for
  that client's version on this class (``agent_list`` is for sensors, ``service`` is the service
  signed in to), so ``version`` stays in the raw record only.
- ``service.name`` is ``Zoom``: the service signed in to (the class requires ``service`` or
  ``dst_endpoint``).
- The raw record is ``unmapped.activity_log``. ``time``, ``metadata`` and the unparsable-time
  label follow ``ocsf.to_ocsf``; ``metadata.log_name`` is ``activities``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from zoom_oplog_shipper.records import record_time
from zoom_oplog_shipper.streams.activities.ecs import action_of, source_ip, summary, text_field
from zoom_oplog_shipper.streams.operations.ocsf import OCSF_VERSION, TIME_UNPARSABLE_LABEL

__all__ = ["AUTHENTICATION", "to_ocsf_activity"]

AUTHENTICATION: Final = 3002
_CLASS_NAME: Final = "Authentication"
_CATEGORY_UID: Final = 3
_CATEGORY_NAME: Final = "Identity & Access Management"
_ACTIVITIES: Final = {"sign-in": (1, "Logon"), "sign-out": (2, "Logoff")}
_OTHER: Final = (99, "Other")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)
_OBSERVABLE_IP: Final = (2, "IP Address")
_OBSERVABLE_EMAIL: Final = (5, "Email Address")


def to_ocsf_activity(record: dict[str, Any], event_id: str, account_id: str, created: datetime) -> dict[str, Any]:
    """The OCSF 1.5.0 Authentication event for one activity ``record``; never raises on bad fields.

    Same contract as ``ocsf.to_ocsf``: ``event_id`` becomes ``metadata.uid``, ``account_id`` the
    tenant and the user's account, ``created`` (when the shipper read the record; naive means UTC)
    ``metadata.logged_time`` and the event time when the record's own is missing or unparsable.
    """
    rec: dict[str, Any] = record if isinstance(record, dict) else {}
    kind = text_field(rec, "type")
    action, _ = action_of(kind)
    activity_id, activity = _ACTIVITIES.get(action or "", _OTHER)
    logged = _epoch_ms(created if created.tzinfo is not None else created.replace(tzinfo=UTC))
    moment = record_time(rec)
    metadata: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": {"name": "Zoom", "vendor_name": "Zoom", "feature": {"name": "Sign In/Sign Out Activity"}},
        "uid": str(event_id),
        "logged_time": logged,
        "log_name": "activities",
    }
    if account_id:
        metadata["tenant_uid"] = account_id
    if isinstance(rec.get("time"), str):
        metadata["original_time"] = rec["time"]
    if moment is None:
        metadata["labels"] = [TIME_UNPARSABLE_LABEL]
    known = activity_id != _OTHER[0]
    event: dict[str, Any] = {
        "category_uid": _CATEGORY_UID,
        "category_name": _CATEGORY_NAME,
        "class_uid": AUTHENTICATION,
        "class_name": _CLASS_NAME,
        "activity_id": activity_id,
        "activity_name": activity if known or kind is None else kind,
        "type_uid": AUTHENTICATION * 100 + activity_id,
        "type_name": f"{_CLASS_NAME}: {activity}",
        "severity_id": 1,
        "severity": "Informational",
        "status_id": 1 if known else 0,
        "status": "Success" if known else "Unknown",
        "time": logged if moment is None else _epoch_ms(moment),
        "metadata": metadata,
        "user": _user(text_field(rec, "email"), account_id),
        "service": {"name": "Zoom"},
    }
    message = summary(rec)
    if message:
        event["message"] = message
    client = text_field(rec, "client_type")
    if client is not None:
        event["actor"] = {"app_name": client}
    address = source_ip(rec.get("ip_address"))
    if address is not None:
        event["src_endpoint"] = {"ip": address}
    observables = _observables(event["user"].get("email_addr"), address)
    if observables:
        event["observables"] = observables
    event["unmapped"] = {"activity_log": dict(rec)}
    return event


def _user(email: str | None, account_id: str) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if email is not None:
        user["name"] = email
        if "@" in email:
            user["email_addr"] = email
    if account_id:
        user["account"] = {"uid": account_id, "type_id": 99, "type": "Zoom Account"}
    if not user:
        user = {"type_id": 0, "type": "Unknown"}  # the class requires a user
    return user


def _observables(email: str | None, address: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, (type_id, type_name), value in (
        ("user.email_addr", _OBSERVABLE_EMAIL, email),
        ("src_endpoint.ip", _OBSERVABLE_IP, address),
    ):
        if value is not None:
            out.append({"name": name, "type_id": type_id, "type": type_name, "value": value})
    return out


def _epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MILLISECOND
