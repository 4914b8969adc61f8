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
  label are every event's (`zoom_oplog_shipper.formats.ocsf`); ``metadata.log_name`` is ``activities``.
"""

from __future__ import annotations

from typing import Any, Final

from zoom_oplog_shipper.formats import ocsf as common
from zoom_oplog_shipper.mapping import EventContext, text_field
from zoom_oplog_shipper.streams.activities.record import SIGN_IN, SIGN_OUT, action_of, source_ip, summary

__all__ = ["AUTHENTICATION", "to_ocsf"]

AUTHENTICATION: Final = (3002, "Authentication")
_ACTIVITIES: Final = {SIGN_IN: (1, "Logon"), SIGN_OUT: (2, "Logoff")}
_OTHER: Final = (99, "Other")


def to_ocsf(record: dict[str, Any], context: EventContext) -> dict[str, Any]:
    """The OCSF 1.5.0 Authentication event for one activity ``record``; never raises on bad fields."""
    rec: dict[str, Any] = record if isinstance(record, dict) else {}
    kind = text_field(rec, "type")
    action, _ = action_of(kind)
    activity_id, caption = _ACTIVITIES.get(action or "", _OTHER)
    known = activity_id != _OTHER[0]
    time_ms, labels = common.event_time(context)
    event = common.classified(
        AUTHENTICATION,
        (activity_id, caption if known or kind is None else kind),
        caption,
        common.INFORMATIONAL,
        common.SUCCESS if known else common.UNKNOWN_STATUS,
        time_ms,
        common.metadata(rec, context, "Sign In/Sign Out Activity", "activities", labels),
    )
    event["user"] = _user(text_field(rec, "email"), context.account_id)
    event["service"] = {"name": "Zoom"}
    message = summary(rec)
    if message:
        event["message"] = message
    client = text_field(rec, "client_type")
    if client is not None:
        event["actor"] = {"app_name": client}
    address = source_ip(rec.get("ip_address"))
    if address is not None:
        event["src_endpoint"] = {"ip": address}
    observables = [
        common.observable(name, observed, value)
        for name, observed, value in (
            ("user.email_addr", common.EMAIL_ADDRESS, event["user"].get("email_addr")),
            ("src_endpoint.ip", common.IP_ADDRESS, address),
        )
        if value is not None
    ]
    if observables:
        event["observables"] = observables
    event["unmapped"] = {"activity_log": dict(rec)}
    return event


def _user(email: str | None, account_id: str) -> dict[str, Any]:
    """The user who signed in or out (the class requires a user: Unknown when nothing is known)."""
    zoom_account = common.account(account_id)
    if email is not None:
        return common.user(email, zoom_account)
    return {"account": zoom_account} if zoom_account else {"type_id": 0, "type": "Unknown"}
