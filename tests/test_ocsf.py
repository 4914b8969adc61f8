"""Tests for zoom_oplog_shipper.streams.operations.ocsf: OCSF 1.5.0 events checked against maintained OCSF models.

Two model packages do the checking, neither of them hand-written here:
- ``ocsf-emitter``: pydantic models generated from the OCSF 1.5.0 schema for every class
  (Account Change, Entity Management, ...) plus its ``validate`` invariants (class/category
  identity, ``type_uid = class_uid * 100 + activity_id``, schema version).
- ``py-ocsf-models``: the base event, metadata and product objects (it has no IAM classes).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schemas import assert_ocsf_valid

from zoom_oplog_shipper.formats.ocsf import OCSF_VERSION, TIME_UNPARSABLE_LABEL
from zoom_oplog_shipper.mapping import EventContext
from zoom_oplog_shipper.records import record_time
from zoom_oplog_shipper.streams.operations.ocsf import to_ocsf

DATA = Path(__file__).parent / "data"
CREATED = "2026-11-26T12:00:00.000Z"
CREATED_MS = 1795694400000
ACCOUNT = "acct-123"


def sample_records() -> list[dict[str, Any]]:
    lines = (DATA / "sample_operation_logs.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def event_for(record: Any, created: str = CREATED) -> dict[str, Any]:
    return to_ocsf(record, EventContext("evt-1", ACCOUNT, created, record_time(record)))


@pytest.mark.parametrize("record", sample_records(), ids=lambda r: str(r.get("operation_detail"))[:50])
def test_sample_records_are_valid_ocsf(record: dict[str, Any]) -> None:
    event = event_for(record)
    assert_ocsf_valid(event)
    assert event["metadata"]["product"] == {
        "name": "Zoom",
        "vendor_name": "Zoom",
        "feature": {"name": "Operation Logs"},
    }
    assert event["metadata"]["uid"] == "evt-1"
    assert event["metadata"]["version"] == OCSF_VERSION
    assert event["metadata"]["tenant_uid"] == ACCOUNT
    assert event["unmapped"]["operation_log"] == record
    assert event["message"] == record["operation_detail"]
    expected_ms = int(datetime.fromisoformat(record["time"]).timestamp() * 1000)
    assert event["time"] == expected_ms
    assert event["metadata"]["original_time"] == record["time"]


def operation(category_type: str, action: str, operation_detail: str) -> dict[str, Any]:
    """The fields of an operation log record that decide its class and activity."""
    return {"category_type": category_type, "action": action, "operation_detail": operation_detail}


# (record fields, class_uid, activity_id)
CLASS_TABLE: list[tuple[dict[str, Any], int, int]] = [
    (operation("User", "Add", "Add User bob@example.com"), 3001, 1),
    (operation("User", "Update", "Activate User a@x.io"), 3001, 2),
    (operation("User", "Update", "Deactivate User a@x.io"), 3001, 5),
    (operation("user", "delete", "delete user - user2@example.com"), 3001, 6),
    (operation("User", "Batch Update", "Change Role  - h@d.io: from User to Co-Owner"), 3001, 7),
    (
        operation("User", "Update", "Update User b@x.io  - Sign in with Two-Factor Authentication: from On to Off"),
        3001,
        11,
    ),
    (operation("User", "Update", "Update User b@x.io  - Job Title: set to X"), 3001, 99),
    (operation("Role", "Add", "Add Role Zoom Room Admin"), 3004, 1),
    (operation("User", "Update", "Update billing contact information"), 3004, 3),
    (operation("Account", "Update", "Security  - Sign in with Two-Factor Authentication: from On to Off"), 3004, 3),
    (operation("User Settings", "Update", "Schedule Meeting  - Host video: from Off to On"), 3004, 3),
    (operation("User Group", "Add", "Add Group Engineers"), 3004, 1),
    (operation("Recording", "Delete", "Delete cloud recording for meeting 111"), 3004, 4),
    (operation("Zoom Rooms", "Frobnicate", "Something new"), 3004, 99),
    ({}, 3004, 99),
]


@pytest.mark.parametrize(("fields", "class_uid", "activity_id"), CLASS_TABLE, ids=[str(c[0])[:60] for c in CLASS_TABLE])
def test_class_and_activity_table(fields: dict[str, Any], class_uid: int, activity_id: int) -> None:
    record = {"time": "2022-12-16T18:20:35Z", "operator": "admin@x.io", **fields}
    event = event_for(record)
    assert_ocsf_valid(event)
    assert (event["class_uid"], event["activity_id"]) == (class_uid, activity_id)
    assert event["category_uid"] == 3


def valid_update_event(category_type: str, operation_detail: str, operator: str, time: str) -> dict[str, Any]:
    """The event for an "Update" record of these fields, checked against the OCSF models."""
    event = event_for({**operation(category_type, "Update", operation_detail), "operator": operator, "time": time})
    assert_ocsf_valid(event)
    return event


def test_role_promotion_is_account_change_with_before_and_after() -> None:
    event = valid_update_event(
        "User",
        "Update User bart@panther.io  - User Role: from Member to Admin",
        "homer@panther.io",
        "2022-03-02T08:11:09Z",
    )
    assert event["class_name"] == "Account Change"
    assert event["activity_name"] == "Attach Policy"
    assert event["user"]["email_addr"] == "bart@panther.io"
    assert event["user"]["groups"] == [{"name": "Member", "type": "Zoom Role"}]
    assert event["user"]["type_id"] == 1
    assert event["user_result"]["groups"] == [{"name": "Admin", "type": "Zoom Role"}]
    assert event["user_result"]["type_id"] == 2
    assert event["policy"] == {"name": "Admin", "desc": "Zoom role"}
    assert event["actor"]["user"]["email_addr"] == "homer@panther.io"
    assert event["actor"]["user"]["account"]["uid"] == ACCOUNT
    assert event["severity_id"] == 3
    assert event["metadata"]["labels"] == ["admin-role-granted"]
    assert event["unmapped"]["changes"] == [
        {"setting": "User Role", "from": "Member", "to": "Admin", "setting_to": "user role: admin"}
    ]
    assert {o["value"] for o in event["observables"]} == {"homer@panther.io", "bart@panther.io"}


def test_two_factor_off_is_entity_management_with_changes() -> None:
    event = valid_update_event(
        "Account",
        "Security  - Sign in with Two-Factor Authentication: from On to Off",
        "example@example.io",
        "2022-12-16T18:20:35Z",
    )
    assert event["class_name"] == "Entity Management"
    assert event["entity"]["type_id"] == 4
    assert event["entity"]["uid"] == ACCOUNT
    assert event["entity"]["data"]["changes"] == [
        {
            "section": "Security",
            "setting": "Sign in with Two-Factor Authentication",
            "from": "On",
            "to": "Off",
            "setting_to": "security - sign in with two-factor authentication: off",
        }
    ]
    assert event["severity_id"] == 3
    assert event["metadata"]["labels"] == ["security-control-disabled"]
    assert event["unmapped"]["disabled_controls"] == ["two-factor-authentication"]
    assert event["time"] == 1671214835000


def test_group_and_recording_entities() -> None:
    group = event_for(operation("User Group", "Update", "Edit Group Springfield  - X: from On to Off"))
    assert_ocsf_valid(group)
    assert group["entity"]["type_id"] == 3
    assert group["entity"]["group"] == {"name": "Springfield"}
    rec = event_for(operation("Recording", "Delete", "Delete cloud recording for meeting 111"))
    assert_ocsf_valid(rec)
    assert rec["entity"] == {
        "type_id": 99,
        "type": "Recording",
        "uid": "111",
        "data": {"object_type": "recording", "meeting_id": "111", "recording": True},
    }


def test_scim_action_names_the_app() -> None:
    event = event_for(operation("User", "SCIM API - Update", "Edit User a@b.io  - Change Type: from Basic to Licensed"))
    assert_ocsf_valid(event)
    assert event["actor"]["app_name"] == "SCIM API"
    assert event["activity_id"] == 99
    assert event["activity_name"] == "SCIM API - Update"


@pytest.mark.parametrize("bad_time", [None, "", "yesterday", "2022-13-45T99:00:00Z", 1671214835, ["2022-12-16"]])
def test_unparsable_time_uses_created_and_is_flagged(bad_time: Any) -> None:
    record = {"category_type": "Account", "operation_detail": "Add Group G"}
    if bad_time is not None:
        record["time"] = bad_time
    event = event_for(record)
    assert_ocsf_valid(event)
    assert event["time"] == CREATED_MS
    assert TIME_UNPARSABLE_LABEL in event["metadata"]["labels"]


@pytest.mark.parametrize(
    ("raw", "expected_ms"),
    [
        ("2022-12-16T18:20:35Z", 1671214835000),
        ("2022-12-16T18:20:35.250Z", 1671214835250),
        ("2022-12-16T19:20:35+01:00", 1671214835000),
        ("2022-12-16T18:20:35", 1671214835000),  # no zone: Zoom documents UTC
    ],
)
def test_time_forms(raw: str, expected_ms: int) -> None:
    event = event_for({"time": raw})
    assert event["time"] == expected_ms
    assert "labels" not in event["metadata"]


def test_naive_and_offset_created_are_utc() -> None:
    naive = event_for({}, created="2026-11-26T12:00:00")
    offset = event_for({}, created="2026-11-26T13:00:00+01:00")
    assert naive["time"] == offset["time"] == CREATED_MS
    assert naive["metadata"]["logged_time"] == CREATED_MS


@pytest.mark.parametrize("record", [None, [], "text", 5, {"operation_detail": 5, "operator": ["x"], "action": {}}])
def test_odd_records_never_raise(record: Any) -> None:
    event = event_for(record)
    assert_ocsf_valid(event)
    assert "actor" not in event


# --- properties --------------------------------------------------------------------------------

VALUES = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.integers(),
    st.booleans(),
    st.sampled_from(
        [
            "User",
            "Account",
            "Role",
            "User Group",
            "Update User a@b.io  - User Role: from Member to Admin",
            "Security  - Waiting Room: from On to Off",
            "Change Role  - h@d.io: from User to Co-Owner",
            "2022-12-16T18:20:35Z",
            "admin@x.io",
            "SCIM API - Update",
        ]
    ),
)
RECORDS = st.dictionaries(
    st.sampled_from(["action", "category_type", "operation_detail", "operator", "time", "extra"]), VALUES, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(record=RECORDS)
def test_random_records_always_validate(record: dict[str, Any]) -> None:
    event = event_for(record)
    assert_ocsf_valid(event)
    assert event["unmapped"]["operation_log"] == record
