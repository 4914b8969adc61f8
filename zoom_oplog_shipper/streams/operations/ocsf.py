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

from typing import Any, Final

from zoom_oplog_shipper.formats.ocsf import (
    EMAIL_ADDRESS,
    INFORMATIONAL,
    MEDIUM,
    SUCCESS,
    USER_NAME,
    account,
    classified,
    event_time,
    metadata,
    observable,
    user,
)
from zoom_oplog_shipper.mapping import EventContext, text_field
from zoom_oplog_shipper.streams.operations.detail import (
    ADMIN_ROLE_PATTERN,
    TAG_ADMIN_ROLE_GRANTED,
    TAG_SECURITY_CONTROL_DISABLED,
    Detail,
    change_as_dict,
    object_and_changes,
    parse_detail,
)

__all__ = ["ACCOUNT_CHANGE", "ACCOUNT_CHANGE_CATEGORIES", "ENTITY_MANAGEMENT", "to_ocsf"]

ACCOUNT_CHANGE: Final = (3001, "Account Change")
ENTITY_MANAGEMENT: Final = (3004, "Entity Management")

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

# managed_entity.type_id values (OCSF 1.5.0).
_ENTITY_USER: Final = (2, "User")
_ENTITY_GROUP: Final = (3, "Group")
_ENTITY_ORGANIZATION: Final = (4, "Organization")
_ENTITY_POLICY: Final = (5, "Policy")
_ENTITY_OTHER_ID: Final = 99

# user.type_id values (OCSF 1.5.0).
_USER_TYPE_USER: Final = (1, "User")
_USER_TYPE_ADMIN: Final = (2, "Admin")


def to_ocsf(record: dict[str, Any], context: EventContext) -> dict[str, Any]:
    """Return the OCSF 1.5.0 event for one operation-log ``record``; never raises on bad fields.

    See the module docstring for the class table. The raw record goes under
    ``unmapped.operation_log``; parsed details that the chosen class has no attribute for go under
    ``unmapped`` as well.
    """
    rec: dict[str, Any] = record if isinstance(record, dict) else {}
    detail_text = text_field(rec, "operation_detail")
    category_raw = text_field(rec, "category_type")
    action = text_field(rec, "action")
    operator = text_field(rec, "operator")
    category = (category_raw or "").strip().lower().replace(" ", "_").replace("-", "_")
    detail = parse_detail(detail_text, category_raw, action)

    time_ms, labels = event_time(context)
    if detail.security_control_disabled:
        labels.append(TAG_SECURITY_CONTROL_DISABLED)
    if detail.admin_granted:
        labels.append(TAG_ADMIN_ROLE_GRANTED)

    unmapped: dict[str, Any] = {"operation_log": dict(rec)}
    if detail.disabled_controls:
        unmapped["disabled_controls"] = list(detail.disabled_controls)

    zoom_account = account(context.account_id)
    target_known = detail.target_user_email is not None or detail.target_user_name is not None
    if category in ACCOUNT_CHANGE_CATEGORIES and target_known:
        class_ = ACCOUNT_CHANGE
        activity_id = _account_activity(detail, detail_text, action)
        captions = _ACCOUNT_CHANGE_ACTIVITIES
        body = _account_change_body(detail, zoom_account)
        if detail.changes:
            unmapped["changes"] = [change_as_dict(ch) for ch in detail.changes]
    else:
        class_ = ENTITY_MANAGEMENT
        activity_id = _entity_activity(detail, detail_text, action)
        captions = _ENTITY_ACTIVITIES
        body = {"entity": _entity(detail, category_raw, category, context.account_id, zoom_account)}

    caption = captions[activity_id]
    event = classified(
        class_,
        (activity_id, action if activity_id == 99 and action else caption),  # noqa: PLR2004 - OCSF's Other
        caption,
        MEDIUM if detail.security_control_disabled or detail.admin_granted else INFORMATIONAL,
        SUCCESS,
        time_ms,
        metadata(rec, context, "Operation Logs", "operationlogs", labels),
    )
    message = detail_text or " ".join(p for p in (action, category_raw) if p)
    if message:
        event["message"] = message
    actor = _actor(operator, action, zoom_account)
    if actor:
        event["actor"] = actor
    event.update(body)
    observables = _observables(event)
    if observables:
        event["observables"] = observables
    event["unmapped"] = unmapped
    return event


# --- class bodies ----------------------------------------------------------------------------


def _account_change_body(detail: Detail, zoom_account: dict[str, Any] | None) -> dict[str, Any]:
    rc = detail.role_change
    body: dict[str, Any] = {"user": _target_user(detail, zoom_account, rc.old if rc else None)}
    if rc is not None:
        body["user_result"] = _target_user(detail, zoom_account, rc.new)
        body["policy"] = {"name": rc.new, "desc": "Zoom role"}
    return body


def _target_user(detail: Detail, zoom_account: dict[str, Any] | None, role: str | None) -> dict[str, Any]:
    target: dict[str, Any] = {}
    if detail.target_user_email:
        target["email_addr"] = detail.target_user_email
    name = detail.target_user_name or detail.target_user_email
    if name:
        target["name"] = name
    if role:
        type_id, type_name = _USER_TYPE_ADMIN if ADMIN_ROLE_PATTERN.search(role) else _USER_TYPE_USER
        target["type_id"] = type_id
        target["type"] = type_name
        target["groups"] = [{"name": role, "type": "Zoom Role"}]
    if zoom_account:
        target["account"] = zoom_account
    return target


def _entity(
    detail: Detail,
    category_raw: str | None,
    category: str,
    account_id: str,
    zoom_account: dict[str, Any] | None,
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
        entity["user"] = _target_user(detail, zoom_account, None)
    elif category in ("account", "sub_account") and account_id:
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


def _actor(operator: str | None, action: str | None, zoom_account: dict[str, Any] | None) -> dict[str, Any]:
    actor: dict[str, Any] = {}
    if operator:
        actor["user"] = user(operator, zoom_account)
    if action and " - " in action:
        # "SCIM API - Update": the change came through an integration, not the web portal.
        actor["app_name"] = action.split(" - ", 1)[0].strip()
    return actor


def _observables(event: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in ("actor.user", "user", "entity.user"):
        obj: Any = event
        for key in path.split("."):
            obj = obj.get(key) if isinstance(obj, dict) else None
        if not isinstance(obj, dict):
            continue
        if "email_addr" in obj:
            out.append(observable(f"{path}.email_addr", EMAIL_ADDRESS, obj["email_addr"]))
        elif "name" in obj:
            out.append(observable(f"{path}.name", USER_NAME, obj["name"]))
    return out


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
