"""Map one Zoom operation-log record to an OCSF 1.5.0 event (``--format ocsf``).

Class table (both classes are in category_uid 3, Identity & Access Management):

- ``user``, ``role``, ``admin`` with a target user parsed from the detail: Account Change (3001).
- ``user``, ``role``, ``admin`` without a target user: Entity Management (3004).
- every other category (``account``, ``user_settings``, ``user_group``, ``billing``, ``im``,
  ``recording``, ``phone_contacts``, ``webinar``, ``sub_account``, ``zoom_rooms``,
  ``integration``, unknown or missing): Entity Management (3004).

Why: Account Change requires the ``user`` whose account changed, so it is used only when the
detail names that user. Setting changes are made by an admin at Zoom's management console, which
is what Entity Management describes ("create, read, update, delete on a managed entity"); the
changed settings go in ``entity.data.changes``. API Activity (6003) was rejected: it requires
``src_endpoint`` and ``api.operation``, which operation logs do not carry. Group Management (3006)
covers membership changes, which these logs do not expose as fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from zoom_oplog_shipper.streams.operations.detail import (
    ADMIN_ROLE_PATTERN,
    TAG_ADMIN_ROLE_GRANTED,
    TAG_SECURITY_CONTROL_DISABLED,
    Detail,
    change_as_dict,
    object_and_changes,
    parse_detail,
)

__all__ = [
    "ACCOUNT_CHANGE_CATEGORIES",
    "OCSF_VERSION",
    "TIME_UNPARSABLE_LABEL",
    "to_ocsf",
]

OCSF_VERSION: Final = "1.5.0"
TIME_UNPARSABLE_LABEL: Final = "time-unparsable"

CATEGORY_UID: Final = 3
CATEGORY_NAME: Final = "Identity & Access Management"
ACCOUNT_CHANGE: Final = 3001
ENTITY_MANAGEMENT: Final = 3004
_CLASS_NAMES: Final = {ACCOUNT_CHANGE: "Account Change", ENTITY_MANAGEMENT: "Entity Management"}

#: Categories whose records describe a user account (Account Change when a target user is known).
ACCOUNT_CHANGE_CATEGORIES: Final = frozenset({"user", "role", "admin"})

_ACCOUNT_CHANGE_ACTIVITIES: Final = {
    0: "Unknown",
    1: "Create",
    2: "Enable",
    3: "Password Change",
    4: "Password Reset",
    5: "Disable",
    6: "Delete",
    7: "Attach Policy",
    8: "Detach Policy",
    9: "Lock",
    10: "MFA Factor Enable",
    11: "MFA Factor Disable",
    12: "Unlock",
    99: "Other",
}
_ENTITY_ACTIVITIES: Final = {
    0: "Unknown",
    1: "Create",
    2: "Read",
    3: "Update",
    4: "Delete",
    5: "Move",
    6: "Enroll",
    7: "Unenroll",
    8: "Enable",
    9: "Disable",
    10: "Activate",
    11: "Deactivate",
    12: "Suspend",
    13: "Resume",
    99: "Other",
}

# Verb (first word of the detail, else any word of the action) -> activity_id.
_ACCOUNT_VERBS: Final = {
    "add": 1,
    "create": 1,
    "invite": 1,
    "delete": 6,
    "remove": 6,
    "activate": 2,
    "reactivate": 2,
    "enable": 2,
    "restore": 2,
    "unsuspend": 2,
    "deactivate": 5,
    "disable": 5,
    "suspend": 5,
    "lock": 9,
    "unlock": 12,
}
_ENTITY_VERBS: Final = {
    "add": 1,
    "create": 1,
    "invite": 1,
    "register": 1,
    "scheduled": 1,
    "view": 2,
    "download": 2,
    "export": 2,
    "update": 3,
    "edit": 3,
    "change": 3,
    "modify": 3,
    "set": 3,
    "delete": 4,
    "remove": 4,
    "move": 5,
    "transfer": 5,
    "enable": 8,
    "disable": 9,
    "activate": 10,
    "deactivate": 11,
    "suspend": 12,
    "unsuspend": 13,
    "resume": 13,
}

_SEVERITY_INFORMATIONAL: Final = (1, "Informational")
_SEVERITY_MEDIUM: Final = (3, "Medium")

# managed_entity.type_id values (OCSF 1.5.0).
_ENTITY_USER: Final = (2, "User")
_ENTITY_GROUP: Final = (3, "Group")
_ENTITY_ORGANIZATION: Final = (4, "Organization")
_ENTITY_POLICY: Final = (5, "Policy")
_ENTITY_OTHER_ID: Final = 99

# user.type_id values (OCSF 1.5.0).
_USER_TYPE_USER: Final = (1, "User")
_USER_TYPE_ADMIN: Final = (2, "Admin")

_OBSERVABLE_USER_NAME: Final = (4, "User Name")
_OBSERVABLE_EMAIL: Final = (5, "Email Address")


def to_ocsf(record: dict[str, Any], event_id: str, account_id: str, created: datetime) -> dict[str, Any]:
    """Return the OCSF 1.5.0 event for one operation-log ``record``; never raises on bad fields.

    ``event_id`` (the record fingerprint) becomes ``metadata.uid``, ``account_id`` the tenant and
    the actor's account, ``created`` (when the shipper read the record) ``metadata.logged_time``
    and the fallback event time. ``time`` is the record's ``time`` in epoch milliseconds; when
    it is missing or unparsable, ``created`` is used and ``metadata.labels`` carries
    ``time-unparsable``. The raw record goes under ``unmapped.operation_log``; parsed details that
    the chosen class has no attribute for go under ``unmapped`` as well. See the module docstring
    for the class table.
    """
    rec: dict[str, Any] = record if isinstance(record, dict) else {}
    detail_text = _str(rec.get("operation_detail"))
    category_raw = _str(rec.get("category_type"))
    action = _str(rec.get("action"))
    operator = _str(rec.get("operator"))
    category = (category_raw or "").strip().lower().replace(" ", "_").replace("-", "_")
    detail = parse_detail(detail_text, category_raw, action)

    created_utc = _as_utc(created)
    labels: list[str] = []
    time_ms = _parse_time_ms(rec.get("time"))
    if time_ms is None:
        time_ms = _epoch_ms(created_utc)
        labels.append(TIME_UNPARSABLE_LABEL)
    if detail.security_control_disabled:
        labels.append(TAG_SECURITY_CONTROL_DISABLED)
    if detail.admin_granted:
        labels.append(TAG_ADMIN_ROLE_GRANTED)

    metadata: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": {"name": "Zoom", "vendor_name": "Zoom", "feature": {"name": "Operation Logs"}},
        "uid": str(event_id),
        "logged_time": _epoch_ms(created_utc),
        "log_name": "operationlogs",
    }
    if isinstance(account_id, str) and account_id:
        metadata["tenant_uid"] = account_id
    if isinstance(rec.get("time"), str):
        metadata["original_time"] = rec["time"]
    if labels:
        metadata["labels"] = labels

    unmapped: dict[str, Any] = {"operation_log": dict(rec)}
    if detail.disabled_controls:
        unmapped["disabled_controls"] = list(detail.disabled_controls)

    account = _account(account_id)
    target_known = detail.target_user_email is not None or detail.target_user_name is not None
    if category in ACCOUNT_CHANGE_CATEGORIES and target_known:
        class_uid = ACCOUNT_CHANGE
        activity_id = _account_activity(detail, detail_text, action)
        captions = _ACCOUNT_CHANGE_ACTIVITIES
        body = _account_change_body(detail, account)
        if detail.changes:
            unmapped["changes"] = [change_as_dict(ch) for ch in detail.changes]
    else:
        class_uid = ENTITY_MANAGEMENT
        activity_id = _entity_activity(detail, detail_text, action)
        captions = _ENTITY_ACTIVITIES
        body = {"entity": _entity(detail, category_raw, category, account_id, account)}

    activity_name = captions[activity_id]
    if activity_id == 99 and action:
        activity_name = action
    severity_id, severity = (
        _SEVERITY_MEDIUM if detail.security_control_disabled or detail.admin_granted else _SEVERITY_INFORMATIONAL
    )
    class_name = _CLASS_NAMES[class_uid]
    event: dict[str, Any] = {
        "category_uid": CATEGORY_UID,
        "category_name": CATEGORY_NAME,
        "class_uid": class_uid,
        "class_name": class_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{class_name}: {captions[activity_id]}",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "Success",
        "time": time_ms,
        "metadata": metadata,
    }
    message = detail_text or " ".join(p for p in (action, category_raw) if p)
    if message:
        event["message"] = message
    actor = _actor(operator, action, account)
    if actor:
        event["actor"] = actor
    event.update(body)
    observables = _observables(event)
    if observables:
        event["observables"] = observables
    event["unmapped"] = unmapped
    return event


# --- class bodies ----------------------------------------------------------------------------


def _account_change_body(detail: Detail, account: dict[str, Any] | None) -> dict[str, Any]:
    rc = detail.role_change
    user = _target_user(detail, account, rc.old if rc else None)
    body: dict[str, Any] = {"user": user}
    if rc is not None:
        body["user_result"] = _target_user(detail, account, rc.new)
        body["policy"] = {"name": rc.new, "desc": "Zoom role"}
    return body


def _target_user(detail: Detail, account: dict[str, Any] | None, role: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if detail.target_user_email:
        user["email_addr"] = detail.target_user_email
    name = detail.target_user_name or detail.target_user_email
    if name:
        user["name"] = name
    if role:
        type_id, type_name = _USER_TYPE_ADMIN if ADMIN_ROLE_PATTERN.search(role) else _USER_TYPE_USER
        user["type_id"] = type_id
        user["type"] = type_name
        user["groups"] = [{"name": role, "type": "Zoom Role"}]
    if account:
        user["account"] = account
    return user


def _entity(
    detail: Detail,
    category_raw: str | None,
    category: str,
    account_id: str,
    account: dict[str, Any] | None,
) -> dict[str, Any]:
    entity: dict[str, Any]
    if detail.object_type == "group":
        entity = _typed(_ENTITY_GROUP)
        if detail.group_name:
            entity["name"] = detail.group_name
            entity["group"] = {"name": detail.group_name}
    elif detail.object_type == "role":
        entity = _typed(_ENTITY_POLICY)
        if detail.role:
            entity["name"] = detail.role
            entity["policy"] = {"name": detail.role, "desc": "Zoom role"}
    elif detail.target_user_email or detail.target_user_name:
        entity = _typed(_ENTITY_USER)
        entity["name"] = detail.target_user_name or detail.target_user_email
        entity["user"] = _target_user(detail, account, None)
    elif category in ("account", "sub_account") and isinstance(account_id, str) and account_id:
        entity = _typed(_ENTITY_ORGANIZATION)
        entity["uid"] = account_id
        entity["org"] = {"uid": account_id}
    else:
        entity = {"type_id": _ENTITY_OTHER_ID, "type": category_raw or "Zoom Operation"}
        ident = detail.meeting_id or detail.webinar_id
        if ident:
            entity["uid"] = ident
    data = object_and_changes(detail)
    if detail.meeting_id:
        data["meeting_id"] = detail.meeting_id
    if detail.webinar_id:
        data["webinar_id"] = detail.webinar_id
    if detail.recording:
        data["recording"] = True
    if data:
        entity["data"] = data
    return entity


def _typed(pair: tuple[int, str]) -> dict[str, Any]:
    return {"type_id": pair[0], "type": pair[1]}


def _actor(operator: str | None, action: str | None, account: dict[str, Any] | None) -> dict[str, Any]:
    actor: dict[str, Any] = {}
    if operator:
        user: dict[str, Any] = {"name": operator}
        if "@" in operator:
            user["email_addr"] = operator
        if account:
            user["account"] = account
        actor["user"] = user
    if action and " - " in action:
        # "SCIM API - Update": the change came through an integration, not the web portal.
        actor["app_name"] = action.split(" - ", 1)[0].strip()
    return actor


def _account(account_id: str) -> dict[str, Any] | None:
    if not isinstance(account_id, str) or not account_id:
        return None
    return {"uid": account_id, "type_id": 99, "type": "Zoom Account"}


def _observables(event: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in ("actor.user", "user", "entity.user"):
        obj: Any = event
        for key in path.split("."):
            obj = obj.get(key) if isinstance(obj, dict) else None
        if not isinstance(obj, dict):
            continue
        if "email_addr" in obj:
            out.append(_observable(f"{path}.email_addr", _OBSERVABLE_EMAIL, obj["email_addr"]))
        elif "name" in obj:
            out.append(_observable(f"{path}.name", _OBSERVABLE_USER_NAME, obj["name"]))
    return out


def _observable(name: str, kind: tuple[int, str], value: str) -> dict[str, Any]:
    return {"name": name, "type_id": kind[0], "type": kind[1], "value": value}


# --- activities ------------------------------------------------------------------------------


def _verbs(detail_text: str | None, action: str | None) -> list[str]:
    """Candidate verbs: the detail's first word, then the action's words ("Batch Update")."""
    verbs: list[str] = []
    if detail_text:
        first = detail_text.split(None, 1)
        if first:
            verbs.append(first[0].lower())
    if action:
        verbs.extend(w.lower() for w in reversed(action.replace("-", " ").split()))
    return verbs


def _account_activity(detail: Detail, detail_text: str | None, action: str | None) -> int:
    if "two-factor-authentication" in detail.disabled_controls:
        return 11
    if detail.role_change is not None:
        return 7
    low = (detail_text or "").lower()
    if "password" in low and "reset" in low:
        return 4
    for verb in _verbs(detail_text, action):
        if verb in _ACCOUNT_VERBS:
            return _ACCOUNT_VERBS[verb]
    return 99


def _entity_activity(detail: Detail, detail_text: str | None, action: str | None) -> int:
    for verb in _verbs(detail_text, action):
        if verb in _ENTITY_VERBS:
            return _ENTITY_VERBS[verb]
    return 3 if detail.changes else 99


# --- helpers ---------------------------------------------------------------------------------


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _as_utc(moment: Any) -> datetime:
    if not isinstance(moment, datetime):
        return datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _parse_time_ms(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return _epoch_ms(parsed)
    except (OverflowError, ValueError, OSError):
        return None
