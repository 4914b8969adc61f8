"""Tests for zoom_oplog_shipper.streams.operations.detail: the operation_detail parser (its ECS fields: test_ecs.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoom_oplog_shipper.streams.operations.detail import (
    SECURITY_CONTROL_RULES,
    Change,
    Detail,
    RoleChange,
    parse_detail,
)

DATA = Path(__file__).parent / "data"


def nondefault(detail: Detail) -> dict[str, Any]:
    """The fields of ``detail`` that differ from an empty Detail."""
    empty = Detail()
    return {name: value for name, value in detail._asdict().items() if value != getattr(empty, name)}


def ch(setting: str, old: str | None, new: str | None, section: str | None = None) -> Change:
    return Change(section, setting, old, new)


SEC = "Security"
PWD = "Sign-In Password Requirement"

# (operation_detail, category_type, action, expected non-default Detail fields)
CASES: list[tuple[str, str | None, str | None, dict[str, Any]]] = [
    # --- the records in tests/data/sample_operation_logs.jsonl ---
    (
        "Activate User alice@example.com",
        "User",
        "Update",
        {"object_type": "user", "target_user_email": "alice@example.com", "related_users": ("alice@example.com",)},
    ),
    (
        "Add User bob@example.com",
        "User",
        "Add",
        {"object_type": "user", "target_user_email": "bob@example.com", "related_users": ("bob@example.com",)},
    ),
    (
        "Delete cloud recording for meeting 11122223333",
        "Recording",
        "Delete",
        {"object_type": "recording", "recording": True, "meeting_id": "11122223333"},
    ),
    (
        "Change account setting Cloud Recording from ON to OFF",
        "Account",
        "Update",
        {"changes": (ch("Cloud Recording", "ON", "OFF"),)},
    ),
    ("Update billing contact information", "Billing", "Update", {}),
    (
        "Change Role  - homer.simpson@duff.io: from User to Co-Owner",
        "User",
        "Batch Update",
        {
            "object_type": "user",
            "target_user_email": "homer.simpson@duff.io",
            "changes": (ch("Role", "User", "Co-Owner"),),
            "role_change": RoleChange("User", "Co-Owner"),
            "related_users": ("homer.simpson@duff.io",),
            "admin_granted": True,
        },
    ),
    (
        "Change Role  - homer.simpson@duff.io: from Member to Billing Admin",
        "User",
        "Batch Update",
        {
            "object_type": "user",
            "target_user_email": "homer.simpson@duff.io",
            "changes": (ch("Role", "Member", "Billing Admin"),),
            "role_change": RoleChange("Member", "Billing Admin"),
            "related_users": ("homer.simpson@duff.io",),
            "admin_granted": True,
        },
    ),
    (
        "Edit User homer.simpson@duff.co  - Change Type: from Basic to Licensed",
        "User",
        "SCIM API - Update",
        {
            "object_type": "user",
            "target_user_email": "homer.simpson@duff.co",
            "changes": (ch("Change Type", "Basic", "Licensed"),),
            "related_users": ("homer.simpson@duff.co",),
        },
    ),
    (
        "Update User bart@panther.io  - User Role: from Member to Admin",
        "User",
        "Update",
        {
            "object_type": "user",
            "target_user_email": "bart@panther.io",
            "changes": (ch("User Role", "Member", "Admin"),),
            "role_change": RoleChange("Member", "Admin"),
            "related_users": ("bart@panther.io",),
            "admin_granted": True,
        },
    ),
    (
        "Update User example@example.io  - Job Title: set to Contractor",
        "User",
        "Update",
        {
            "object_type": "user",
            "target_user_email": "example@example.io",
            "changes": (ch("Job Title", None, "Contractor"),),
            "related_users": ("example@example.io",),
        },
    ),
    (
        "Add User homer@simpson.io  - User Type: Basic - Department: Foo",
        "User",
        "Add",
        {
            "object_type": "user",
            "target_user_email": "homer@simpson.io",
            "changes": (ch("User Type", None, "Basic"), ch("Department", None, "Foo")),
            "related_users": ("homer@simpson.io",),
        },
    ),
    (
        "Security  - Sign in with Two-Factor Authentication: from On to Off",
        "Account",
        "Update",
        {
            "changes": (ch("Sign in with Two-Factor Authentication", "On", "Off", SEC),),
            "disabled_controls": ("two-factor-authentication",),
            "security_control_disabled": True,
        },
    ),
    (
        "Security  - Require that all meetings are secured with one security option: from On to Off",
        "Account",
        "Update",
        {
            "changes": (ch("Require that all meetings are secured with one security option", "On", "Off", SEC),),
            "disabled_controls": ("meeting-security-option",),
            "security_control_disabled": True,
        },
    ),
    (
        "Security  - Require a passcode when scheduling new meetings: from On to Off",
        "Account",
        "Update",
        {
            "changes": (ch("Require a passcode when scheduling new meetings", "On", "Off", SEC),),
            "disabled_controls": ("passcode",),
            "security_control_disabled": True,
        },
    ),
    (
        "Security  - Automatically sign users out after a specified time: from On to Off",
        "Account",
        "Update",
        {
            "changes": (ch("Automatically sign users out after a specified time", "On", "Off", SEC),),
            "disabled_controls": ("sign-out-timer",),
            "security_control_disabled": True,
        },
    ),
    (
        "Sign-in Methods  - Allow users to sign in with Google: from Off to On",
        "Account",
        "Update",
        {"changes": (ch("Allow users to sign in with Google", "Off", "On", "Sign-in Methods"),)},
    ),
    (
        "Sign-In Password Requirement  - Include at least 1 letter: from On to Off"
        " - Include at least 1 number: from On to Off",
        "Account",
        "Update",
        {
            "changes": (
                ch("Include at least 1 letter", "On", "Off", PWD),
                ch("Include at least 1 number", "On", "Off", PWD),
            ),
            "disabled_controls": ("password-rules",),
            "security_control_disabled": True,
        },
    ),
    (
        "Edit Group Springfield  - Personal Meeting ID (PMI) Passcode: from On to Off",
        "User Group",
        "Update",
        {
            "object_type": "group",
            "group_name": "Springfield",
            "changes": (ch("Personal Meeting ID (PMI) Passcode", "On", "Off"),),
            "disabled_controls": ("passcode",),
            "security_control_disabled": True,
        },
    ),
    ("Add Group Engineers", "User Group", "Add", {"object_type": "group", "group_name": "Engineers"}),
    # Group members added or removed: the member is the user acted on (ECS user.target, related.user).
    (
        "Edit Group Springfield  - Add Member: lisa@x.io",
        "User Group",
        "Update",
        {
            "object_type": "group",
            "group_name": "Springfield",
            "target_user_email": "lisa@x.io",
            "changes": (ch("Add Member", None, "lisa@x.io"),),
            "related_users": ("lisa@x.io",),
        },
    ),
    (
        "Edit IM Group all-hands  - Add Member: lisa@x.io",
        "IM",
        "Update",
        {
            "object_type": "group",
            "group_name": "all-hands",
            "target_user_email": "lisa@x.io",
            "changes": (ch("Add Member", None, "lisa@x.io"),),
            "related_users": ("lisa@x.io",),
        },
    ),
    (
        "Edit IM Group eng-oncall  - Remove Members: lisa@x.io, bart@x.io",
        "IM",
        "Update",
        {
            "object_type": "group",
            "group_name": "eng-oncall",
            "target_user_email": "lisa@x.io",
            "changes": (ch("Remove Members", None, "lisa@x.io, bart@x.io"),),
            "related_users": ("lisa@x.io", "bart@x.io"),
        },
    ),
    ("Add IM Group random", "IM", "Add", {"object_type": "group", "group_name": "random"}),
    ("Delete IM Group random", "IM", "Delete", {"object_type": "group", "group_name": "random"}),
    # A member setting without an address names no user.
    (
        "Edit IM Group random  - Add Member: Lisa Simpson",
        "IM",
        "Update",
        {"object_type": "group", "group_name": "random", "changes": (ch("Add Member", None, "Lisa Simpson"),)},
    ),
    (
        "delete user - user2@example.com",
        "user",
        "delete",
        {"object_type": "user", "target_user_email": "user2@example.com", "related_users": ("user2@example.com",)},
    ),
    ("Scheduled webinar 6200", "Integration", "Leave", {"object_type": "webinar", "webinar_id": "6200"}),
    (
        "Update User carol@example.com  - Department: set to Sales",
        "User",
        None,
        {
            "object_type": "user",
            "target_user_email": "carol@example.com",
            "changes": (ch("Department", None, "Sales"),),
            "related_users": ("carol@example.com",),
        },
    ),
    # --- variants: case, spacing, missing parts, several changes, non-ASCII ---
    (
        "security - sign in with two-factor authentication: FROM ON TO OFF",
        "account",
        None,
        {
            "changes": (ch("sign in with two-factor authentication", "ON", "OFF", "security"),),
            "disabled_controls": ("two-factor-authentication",),
            "security_control_disabled": True,
        },
    ),
    (
        "Security\u00a0\u00a0-\u00a0Sign in with Two-Factor Authentication:from On to Off",
        None,
        None,
        {
            "changes": (ch("Sign in with Two-Factor Authentication", "On", "Off", SEC),),
            "disabled_controls": ("two-factor-authentication",),
            "security_control_disabled": True,
        },
    ),
    (
        "  Security \t -   Waiting Room: from Enabled to Disabled  ",
        "Account",
        None,
        {
            "changes": (ch("Waiting Room", "Enabled", "Disabled", SEC),),
            "disabled_controls": ("waiting-room",),
            "security_control_disabled": True,
        },
    ),
    (
        "Security  - Waiting Room: set to off",
        "Account",
        None,
        {
            "changes": (ch("Waiting Room", None, "off", SEC),),
            "disabled_controls": ("waiting-room",),
            "security_control_disabled": True,
        },
    ),
    ("Security  - Waiting Room: from On to", "Account", None, {"changes": (ch("Waiting Room", "On", None, SEC),)}),
    ("Security  - Waiting Room: from Off to On", "Account", None, {"changes": (ch("Waiting Room", "Off", "On", SEC),)}),
    (
        "Security  - Waiting Room: from Off to Off",
        "Account",
        None,
        {"changes": (ch("Waiting Room", "Off", "Off", SEC),)},
    ),
    ("Security  - Waiting Room", "Account", None, {}),
    ("Security  - : from On to Off", "Account", None, {}),
    ("Security  - ", "Account", None, {}),
    (
        "Meeting  - Embed passcode in invite link for one-click join: from Off to On",
        "Account",
        None,
        {
            "changes": (ch("Embed passcode in invite link for one-click join", "Off", "On", "Meeting"),),
            "disabled_controls": ("passcode",),
            "security_control_disabled": True,
        },
    ),
    (
        "Meeting  - Embed passcode in invite link for one-click join: from On to Off",
        "Account",
        None,
        {"changes": (ch("Embed passcode in invite link for one-click join", "On", "Off", "Meeting"),)},
    ),
    (
        "Security  - Only authenticated users can join meetings: from On to Off",
        "Account",
        None,
        {
            "changes": (ch("Only authenticated users can join meetings", "On", "Off", SEC),),
            "disabled_controls": ("authenticated-join",),
            "security_control_disabled": True,
        },
    ),
    (
        "Sign-In Password Requirement  - Minimum password length: from 8 to 6",
        "Account",
        None,
        {"changes": (ch("Minimum password length", "8", "6", PWD),)},
    ),
    (
        "Security  - Waiting Room: from On to Off - Sign in with Two-Factor Authentication: from On to Off",
        "Account",
        None,
        {
            "changes": (
                ch("Waiting Room", "On", "Off", SEC),
                ch("Sign in with Two-Factor Authentication", "On", "Off", SEC),
            ),
            "disabled_controls": ("waiting-room", "two-factor-authentication"),
            "security_control_disabled": True,
        },
    ),
    (
        "Schedule Meeting  - Host video: from Off to On",
        "User Settings",
        None,
        {"changes": (ch("Host video", "Off", "On", "Schedule Meeting"),)},
    ),
    (
        "Cloud recording  - Automatic recording: from On to Off",
        "Account",
        None,
        {"changes": (ch("Automatic recording", "On", "Off", "Cloud recording"),)},
    ),
    (
        "Update User Jürgen Müller (jürgen@münchen.de)  - User Role: from Member to Admin",
        "User",
        "Update",
        {
            "object_type": "user",
            "target_user_email": "jürgen@münchen.de",
            "target_user_name": "Jürgen Müller",
            "changes": (ch("User Role", "Member", "Admin"),),
            "role_change": RoleChange("Member", "Admin"),
            "related_users": ("jürgen@münchen.de", "Jürgen Müller"),
            "admin_granted": True,
        },
    ),
    (
        "Add User Zoë Ångström",
        "User",
        "Add",
        {"object_type": "user", "target_user_name": "Zoë Ångström", "related_users": ("Zoë Ångström",)},
    ),
    (
        "Add User 山田太郎 <taro@例え.jp>  - User Role: Owner",
        "User",
        "Add",
        {
            "object_type": "user",
            "target_user_email": "taro@例え.jp",
            "target_user_name": "山田太郎",
            "changes": (ch("User Role", None, "Owner"),),
            "role_change": RoleChange(None, "Owner"),
            "related_users": ("taro@例え.jp", "山田太郎"),
            "admin_granted": True,
        },
    ),
    (
        "Change Role  - a@x.io: from User to Admin - b@x.io: from Admin to Member",
        "User",
        "Batch Update",
        {
            "object_type": "user",
            "target_user_email": "a@x.io",
            "changes": (ch("Role", "User", "Admin"), ch("Role", "Admin", "Member")),
            "role_change": RoleChange("User", "Admin"),
            "related_users": ("a@x.io", "b@x.io"),
            "admin_granted": True,
        },
    ),
    (
        "Change Role  - homer@x.io: from Admin to admin",
        "User",
        None,
        {
            "object_type": "user",
            "target_user_email": "homer@x.io",
            "changes": (ch("Role", "Admin", "admin"),),
            "role_change": RoleChange("Admin", "admin"),
            "related_users": ("homer@x.io",),
        },
    ),
    (
        "Update User bart@x.io - User Role: from Admin to Member",
        "User",
        None,
        {
            "object_type": "user",
            "target_user_email": "bart@x.io",
            "changes": (ch("User Role", "Admin", "Member"),),
            "role_change": RoleChange("Admin", "Member"),
            "related_users": ("bart@x.io",),
        },
    ),
    (
        "Update User bart@x.io  - Department: R&D - Europe - Job Title: set to Lead",
        "User",
        None,
        {
            "object_type": "user",
            "target_user_email": "bart@x.io",
            "changes": (ch("Department", None, "R&D - Europe"), ch("Job Title", None, "Lead")),
            "related_users": ("bart@x.io",),
        },
    ),
    (
        "Update User bart@x.io  - Sign in with Two-Factor Authentication: from On to Off",
        "User",
        None,
        {
            "object_type": "user",
            "target_user_email": "bart@x.io",
            "changes": (ch("Sign in with Two-Factor Authentication", "On", "Off"),),
            "related_users": ("bart@x.io",),
            "disabled_controls": ("two-factor-authentication",),
            "security_control_disabled": True,
        },
    ),
    ("Add Role Zoom Room Admin", "Role", "Add", {"object_type": "role", "role": "Zoom Room Admin"}),
    (
        "Update Role Billing  - Role Members: set to bart@x.io",
        "Role",
        "Update",
        {
            "object_type": "role",
            "role": "Billing",
            "target_user_email": "bart@x.io",
            "changes": (ch("Role Members", None, "bart@x.io"),),
            "related_users": ("bart@x.io",),
        },
    ),
    ("Delete Meeting 123 456 7890", "Webinar", "Delete", {"object_type": "meeting", "meeting_id": "1234567890"}),
    (
        "delete user - user2@example.com.",
        "user",
        "delete",
        {
            "object_type": "user",
            "target_user_email": "user2@example.com",
            "related_users": ("user2@example.com",),
        },
    ),
    # A lone address in unknown text names the target only where the category is about users.
    (
        "something unusual happened to bart@x.io",
        "User",
        None,
        {"target_user_email": "bart@x.io", "related_users": ("bart@x.io",)},
    ),
    ("something unusual happened to bart@x.io", "Account", None, {}),
    ("Turned the lights off", "Account", "Update", {}),
    ("-", None, None, {}),
    (" - - - ", None, None, {}),
]


@pytest.mark.parametrize(("text", "category", "action", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_parse_detail_table(text: str, category: str | None, action: str | None, expected: dict[str, Any]) -> None:
    assert nondefault(parse_detail(text, category, action)) == expected


def test_table_covers_every_sample_record() -> None:
    texts = {c[0] for c in CASES}
    lines = (DATA / "sample_operation_logs.jsonl").read_text(encoding="utf-8").splitlines()
    samples = [json.loads(line)["operation_detail"] for line in lines if line.strip()]
    assert samples
    assert [s for s in samples if s not in texts] == []


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t", 0, 12.5, b"Add User a@b.io", ["Add User a@b.io"], {}])
def test_missing_or_non_string_text_is_empty(text: Any) -> None:
    detail = parse_detail(text)
    assert detail == Detail()
    assert detail.is_empty


@pytest.mark.parametrize("odd", [None, 7, b"User", ["User"], {"a": 1}])
def test_odd_category_and_action_are_ignored(odd: Any) -> None:
    text = "Update User bart@x.io  - User Role: from Member to Admin"
    assert parse_detail(text, odd, odd) == parse_detail(text)


def test_very_long_text_is_bounded_and_total() -> None:
    text = "Security  - " + " - ".join(f"Setting {i}: from On to Off" for i in range(2000))
    detail = parse_detail(text, "Account")
    assert 0 < len(detail.changes) < 2000
    assert detail.changes[0] == ch("Setting 0", "On", "Off", SEC)


def test_detail_is_immutable() -> None:
    detail = parse_detail("Add Group Engineers")
    with pytest.raises(AttributeError):
        detail.group_name = "Other"  # type: ignore[misc]


#: control -> (setting, the value that weakens it) for each setting that turns the control down.
WEAKENING: dict[str, list[tuple[str, str]]] = {
    "two-factor-authentication": [("Sign in with Two-Factor Authentication", "Off"), ("Require 2FA for admins", "Off")],
    "waiting-room": [("Waiting Room", "Off"), ("Allow participants to bypass the waiting room", "On")],
    "meeting-security-option": [("Require that all meetings are secured with one security option", "Off")],
    "passcode": [
        ("Require a passcode for instant meetings", "Off"),
        ("Require password for participants joining by phone", "Off"),
        ("Embed passcode in invite link for one-click join", "On"),
    ],
    "sign-out-timer": [("Automatically sign users out after a specified time", "Off"), ("Session timeout", "Off")],
    "password-rules": [("Have special characters in password policy", "Off")],
    "authenticated-join": [("Only authenticated users can join meetings", "Off")],
}


@pytest.mark.parametrize(
    ("setting", "weak_value", "control"),
    [(setting, weak_value, control) for control, rows in WEAKENING.items() for setting, weak_value in rows],
)
def test_security_control_table(setting: str, weak_value: str, control: str) -> None:
    strong_value = "On" if weak_value == "Off" else "Off"
    weakened = parse_detail(f"Security  - {setting}: from {strong_value} to {weak_value}")
    assert weakened.disabled_controls == (control,)
    assert weakened.security_control_disabled
    strengthened = parse_detail(f"Security  - {setting}: from {weak_value} to {strong_value}")
    assert strengthened.disabled_controls == ()
    assert not strengthened.security_control_disabled


def test_security_rules_have_unique_meaning() -> None:
    assert {r.weak_when for r in SECURITY_CONTROL_RULES} == {"on", "off"}
    assert all(r.pattern.pattern for r in SECURITY_CONTROL_RULES)


@pytest.mark.parametrize(
    ("old", "new", "granted"),
    [
        ("Member", "Admin", True),
        ("User", "Co-Owner", True),
        ("Member", "Owner", True),
        ("Member", "Billing Admin", True),
        ("Admin", "Owner", True),
        ("Admin", "Admin", False),
        ("Admin", "Member", False),
        ("Member", "Licensed", False),
        ("Member", "Administrators", True),
    ],
)
def test_admin_granted(old: str, new: str, granted: bool) -> None:
    detail = parse_detail(f"Update User bart@x.io  - User Role: from {old} to {new}", "User")
    assert detail.role_change == RoleChange(old, new)
    assert detail.admin_granted is granted


# --- properties --------------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "  - ",
        " - ",
        "-",
        ":",
        ": from ",
        " from ",
        " to ",
        " set to ",
        "On",
        "Off",
        "Add User ",
        "Change Role",
        "Edit Group ",
        "Delete cloud recording for meeting ",
        "webinar ",
        "Change account setting ",
        "a@b.io",
        "Jürgen",
        "@",
        "(",
        ")",
        "<",
        "\u00a0",
        "\t",
        "123",
        "Role",
        "User Role",
        "Admin",
        "Security",
        "Two-Factor",
        "Waiting Room",
        "passcode",
    ]
)
TEXTS = st.one_of(st.text(max_size=300), st.lists(FRAGMENTS | st.text(max_size=5), max_size=40).map("".join))
ODD = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=10), st.lists(st.integers(), max_size=3))


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(TEXTS, ODD), category=st.one_of(TEXTS, ODD), action=st.one_of(TEXTS, ODD))
def test_parse_never_raises(text: Any, category: Any, action: Any) -> None:
    detail = parse_detail(text, category, action)
    assert isinstance(detail, Detail)
    assert detail.security_control_disabled is bool(detail.disabled_controls)
    if detail.admin_granted:
        assert detail.role_change is not None or any(c.setting for c in detail.changes)
    for change in detail.changes:
        assert change.setting and change.setting == change.setting.strip()
