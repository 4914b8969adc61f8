"""What every OCSF 1.5.0 event of this shipper has, whichever stream it comes from.

Both streams' classes are in category 3, Identity & Access Management. Every event has the same
classification attributes, `time` (the record's time in epoch milliseconds, or when it was read,
labelled ``time-unparsable``), `metadata` (product, the fingerprint as `uid`, the account as
`tenant_uid`, the read time as `logged_time`), the Zoom account object of its users, and
observables. Each stream's mapper (`streams.<stream>.ocsf`) adds what only it knows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from zoom_oplog_shipper.mapping import EventContext

OCSF_VERSION: Final = "1.5.0"
#: The label of an event whose record has no usable time (its `time` is then when it was read).
TIME_UNPARSABLE_LABEL: Final = "time-unparsable"

#: (id, caption) pairs of OCSF 1.5.0 enumerations.
INFORMATIONAL: Final = (1, "Informational")
MEDIUM: Final = (3, "Medium")
SUCCESS: Final = (1, "Success")
UNKNOWN_STATUS: Final = (0, "Unknown")
IP_ADDRESS: Final = (2, "IP Address")
USER_NAME: Final = (4, "User Name")
EMAIL_ADDRESS: Final = (5, "Email Address")

_CATEGORY: Final = (3, "Identity & Access Management")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970 (OCSF's timestamp), rounded down; a naive time is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MILLISECOND


def classified(
    class_: tuple[int, str],
    activity: tuple[int, str],
    caption: str,
    severity: tuple[int, str],
    status: tuple[int, str],
    time: int,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """The attributes every event starts with: category, class, activity and `type_uid`, severity,
    status, time and metadata. ``activity`` is (`activity_id`, `activity_name`); ``caption`` is
    the activity's name in OCSF (in `type_name`), which `activity_name` may replace with Zoom's."""
    class_uid, class_name = class_
    return {
        "category_uid": _CATEGORY[0],
        "category_name": _CATEGORY[1],
        "class_uid": class_uid,
        "class_name": class_name,
        "activity_id": activity[0],
        "activity_name": activity[1],
        "type_uid": class_uid * 100 + activity[0],
        "type_name": f"{class_name}: {caption}",
        "severity_id": severity[0],
        "severity": severity[1],
        "status_id": status[0],
        "status": status[1],
        "time": time,
        "metadata": metadata,
    }


def event_time(context: EventContext) -> tuple[int, list[str]]:
    """`time`: the record's time, or when it was read with the ``time-unparsable`` label; and the labels."""
    if context.time is None:
        return epoch_ms(context.created_time), [TIME_UNPARSABLE_LABEL]
    return epoch_ms(context.time), []


def metadata(
    record: dict[str, Any], context: EventContext, feature: str, log_name: str, labels: list[str]
) -> dict[str, Any]:
    """`metadata`: the product and its ``feature`` (the Zoom report), the fingerprint, the read time,
    ``log_name``, the account, the record's time as Zoom wrote it, and ``labels`` when there are any."""
    meta: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": {"name": "Zoom", "vendor_name": "Zoom", "feature": {"name": feature}},
        "uid": context.event_id,
        "logged_time": epoch_ms(context.created_time),
        "log_name": log_name,
    }
    if context.account_id:
        meta["tenant_uid"] = context.account_id
    if isinstance(record.get("time"), str):
        meta["original_time"] = record["time"]
    if labels:
        meta["labels"] = labels
    return meta


def account(account_id: str) -> dict[str, Any] | None:
    """The Zoom account as a user's `account`; None without an account id."""
    return {"uid": account_id, "type_id": 99, "type": "Zoom Account"} if account_id else None


def user(name: str, zoom_account: dict[str, Any] | None) -> dict[str, Any]:
    """A Zoom user known by ``name``: `email_addr` too when it holds an ``@``, and its Zoom account."""
    found: dict[str, Any] = {"name": name}
    if "@" in name:
        found["email_addr"] = name
    if zoom_account:
        found["account"] = zoom_account
    return found


def observable(name: str, kind: tuple[int, str], value: str) -> dict[str, Any]:
    """One entry of `observables`: the attribute's path, its type and its value."""
    return {"name": name, "type_id": kind[0], "type": kind[1], "value": value}
