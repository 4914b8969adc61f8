"""The ECS mapping, and a check of every field and category/type pair against ECS 9.4.0."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schemas import ECS, assert_ecs_valid, flatten

from zoom_oplog_shipper.formats import to_raw
from zoom_oplog_shipper.formats.ecs import ECS_VERSION, UNPARSABLE_TIME_TAG, normalize
from zoom_oplog_shipper.mapping import EventContext
from zoom_oplog_shipper.records import record_time
from zoom_oplog_shipper.simulator import generate_records
from zoom_oplog_shipper.streams.operations.detail import (
    TAG_ADMIN_ROLE_GRANTED,
    TAG_SECURITY_CONTROL_DISABLED,
    Change,
    Detail,
    RoleChange,
    parse_detail,
)
from zoom_oplog_shipper.streams.operations.ecs import categorize, detail_fields, event_type, to_ecs

DATA = Path(__file__).parent / "data"
ECS_DETAIL = json.loads((DATA / "ecs_fields_detail.json").read_text(encoding="utf-8"))
SAMPLES = [json.loads(line) for line in (DATA / "sample_operation_logs.jsonl").read_text().splitlines() if line]
CREATED = "2026-11-26T12:00:00.000Z"


def map_sample(rec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return to_ecs(rec, EventContext("ab" * 16, "acct-1", CREATED, record_time(rec), **kw))


@pytest.mark.parametrize("rec", SAMPLES, ids=lambda r: str(r.get("operation_detail"))[:40])
def test_every_sample_maps_to_valid_ecs(rec: dict[str, Any]) -> None:
    doc = map_sample(rec, include_original=True)
    assert_ecs_valid(doc)
    assert doc["ecs"]["version"] == ECS_VERSION == ECS["ecs_version"]
    assert doc["event"]["id"] == "ab" * 16
    assert doc["organization"]["id"] == "acct-1"
    assert orjson.loads(doc["event"]["original"]) == rec


CATEGORY_NAMES = ["User", "User Group", "Role", "Account", "User Settings", "Billing", "Recording", "IM", "", None]
ACTIONS = ["Add", "Update", "Delete", "Batch Update", "SCIM API - Update", "Activate", "Remove", "Leave", None]


@pytest.mark.parametrize("category", CATEGORY_NAMES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_category_and_action_pair_is_ecs_valid(category: str | None, action: str | None) -> None:
    rec = {"time": "2026-01-01T00:00:00Z", "category_type": category, "action": action}
    assert_ecs_valid(map_sample(rec))


@pytest.mark.parametrize(
    ("category", "action", "categories", "types"),
    [
        ("User", "Add", ["iam"], ["creation", "user"]),
        ("user", "delete", ["iam"], ["deletion", "user"]),
        ("User Group", "Update", ["iam"], ["change", "group"]),
        ("Role", "Batch Update", ["iam"], ["change", "user"]),
        ("Account", "Update", ["configuration"], ["change"]),
        ("Recording", "Delete", ["configuration"], ["deletion"]),
        ("Integration", "Leave", ["configuration"], ["info"]),
        ("User Settings", "SCIM API - Update", ["configuration"], ["change"]),
    ],
)
def test_categorize(category: str, action: str, categories: list[str], types: list[str]) -> None:
    assert categorize(category, action) == (categories, types)


@pytest.mark.parametrize(
    ("action", "expected"),
    [("Add", "creation"), ("Create", "creation"), ("Delete", "deletion"), ("Remove", "deletion"),
     ("Edit", "change"), ("Batch Update", "change"), ("Activate", "info"), (None, "info"), ("", "info")],
)  # fmt: skip
def test_event_type(action: str | None, expected: str) -> None:
    assert event_type(action) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("Batch Update", "batch-update"), ("SCIM API - Update", "scim-api-update"), ("Add", "add")]
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_full_mapping_of_one_record() -> None:
    rec = SAMPLES[5]
    doc = map_sample(rec)
    assert doc["@timestamp"] == "2022-07-05T20:28:48.000Z"
    assert doc["event"]["action"] == "batch-update"
    assert doc["event"]["created"] == CREATED
    assert doc["message"] == rec["operation_detail"]
    assert doc["user"]["name"] == doc["user"]["email"] == "admin@duff.io"
    # what the detail parser adds: the target user, the role change, the admin marker
    assert doc["user"]["target"] == {"email": "homer.simpson@duff.io", "roles": ["User"]}
    assert doc["user"]["changes"] == {"roles": ["Co-Owner"]}
    assert doc["related"]["user"] == ["admin@duff.io", "homer.simpson@duff.io"]
    assert doc["event"]["type"] == ["change", "user", "admin"]
    assert doc["tags"] == ["admin-role-granted"]
    assert doc["zoom"]["operation"]["changes"] == [
        {"setting": "Role", "from": "User", "to": "Co-Owner", "setting_to": "role: co-owner"}
    ]
    assert doc["zoom"]["operation"]["operation_detail"] == rec["operation_detail"]
    assert doc["zoom"]["operation"]["category_type"] == "User"
    assert doc["event"]["module"] == "zoom" and doc["event"]["dataset"] == "zoom.operation"
    assert "original" not in doc["event"]


@pytest.mark.parametrize(
    "rec",
    [
        {},
        {"time": "not a time"},
        {"time": None, "action": 5, "operator": ["x"], "category_type": {"a": 1}, "operation_detail": None},
        {"operator": "Zoom System"},
    ],
)
def test_missing_or_odd_fields_are_left_out(rec: dict[str, Any]) -> None:
    doc = map_sample(rec)
    assert_ecs_valid(doc)
    assert doc["@timestamp"] == CREATED
    assert UNPARSABLE_TIME_TAG in doc["tags"]
    if rec.get("operator") == "Zoom System":
        assert doc["user"] == {"name": "Zoom System"}
    else:
        assert "user" not in doc and "message" not in doc


def test_admin_type_only_on_iam_events() -> None:
    rec = {"time": "2026-01-01T00:00:00Z", "category_type": "Account", "action": "Update",
           "operation_detail": "Change Role  - a@b.io: from Member to Admin"}  # fmt: skip
    doc = map_sample(rec)
    assert_ecs_valid(doc)
    assert "admin" not in doc["event"]["type"] and "admin-role-granted" in doc["tags"]


def test_raw_format_keeps_the_record_untouched() -> None:
    rec = SAMPLES[0]
    assert to_raw(rec, EventContext("ff" * 16, "acct", CREATED, None)) == {"event": {"id": "ff" * 16}, "record": rec}


def test_timestamp_other_offsets() -> None:
    rec = {"time": "2026-01-01T10:00:00+02:00"}
    doc = to_ecs(rec, EventContext("a", "b", CREATED, record_time(rec)))
    assert doc["@timestamp"] == "2026-01-01T08:00:00.000Z"
    assert record_time(rec) == datetime(2026, 1, 1, 8, tzinfo=UTC)


# --- the fields parsed out of operation_detail ---------------------------------------------------

SEC = "Security"
FULL = Detail(
    object_type="user",
    target_user_email="bart@x.io",
    target_user_name="Bart",
    group_name="Springfield",
    role="Zoom Room Admin",
    meeting_id="111",
    webinar_id="222",
    recording=True,
    changes=(
        Change(SEC, "Sign in with Two-Factor Authentication", "On", "Off"),
        Change(None, "User Role", "Member", "Admin"),
    ),
    role_change=RoleChange("Member", "Admin"),
    related_users=("bart@x.io", "Bart"),
    disabled_controls=("two-factor-authentication",),
    security_control_disabled=True,
    admin_granted=True,
)
DETAILS = [FULL, *(parse_detail(r["operation_detail"], r["category_type"], r.get("action")) for r in SAMPLES)]


def assert_detail_fields_valid(doc: dict[str, Any]) -> None:
    """Every non-``zoom.*`` field is ECS 9.4.0, lists where ECS has arrays, values allowed."""
    fields = ECS_DETAIL["fields"]
    assert "zoom" not in ECS_DETAIL["top_level_names"]
    for name, value in flatten(doc).items():
        if name.startswith("zoom."):
            continue
        assert name in fields, f"{name} is not an ECS {ECS_DETAIL['ecs_version']} field"
        spec = fields[name]
        if "array" in spec["normalize"]:
            assert isinstance(value, list), f"{name} must be a list"
            items = value
        else:
            assert not isinstance(value, list), f"{name} must not be a list"
            items = [value]
        if spec["type"] == "keyword":
            assert all(isinstance(v, str) and v for v in items), name
        if "allowed_values" in spec:
            assert set(items) <= {a["name"] for a in spec["allowed_values"]}, name


@pytest.mark.parametrize("detail", DETAILS)
def test_detail_fields_are_ecs_9_4(detail: Detail) -> None:
    assert_detail_fields_valid(detail_fields(detail))


def test_empty_detail_adds_nothing() -> None:
    assert detail_fields(Detail()) == {}
    rec = {"category_type": "Account", "operation_detail": "Turned the lights off", "time": "2026-01-01T00:00:00Z"}
    assert set(map_sample(rec)) == {"@timestamp", "ecs", "event", "organization", "data_stream", "zoom", "message"}


def test_full_detail_emits_every_field() -> None:
    flat = flatten(detail_fields(FULL))
    assert set(flat) == {
        "user.target.email",
        "user.target.name",
        "user.target.roles",
        "user.changes.roles",
        "group.name",
        "related.user",
        "tags",
        "event.type",
        "zoom.operation.object_type",
        "zoom.operation.changes",
        "zoom.operation.disabled_controls",
        "zoom.role.name",
        "zoom.meeting.id",
        "zoom.webinar.id",
    }
    # ECS: user.target.* is the user as it was, user.changes.* the values after the change.
    assert flat["user.target.roles"] == ["Member"]
    assert flat["user.changes.roles"] == ["Admin"]
    assert flat["tags"] == [TAG_SECURITY_CONTROL_DISABLED, TAG_ADMIN_ROLE_GRANTED]
    assert flat["zoom.operation.changes"] == [
        {
            "section": SEC,
            "setting": "Sign in with Two-Factor Authentication",
            "from": "On",
            "to": "Off",
            "setting_to": "security - sign in with two-factor authentication: off",
        },
        {"setting": "User Role", "from": "Member", "to": "Admin", "setting_to": "user role: admin"},
    ]


def test_admin_type_only_with_iam_expected_types() -> None:
    categories = {a["name"]: a for a in ECS_DETAIL["fields"]["event.category"]["allowed_values"]}
    assert "admin" in categories["iam"]["expected_event_types"]
    grant = detail_fields(parse_detail("Change Role  - homer@duff.io: from User to Co-Owner", "User", None))
    assert grant["event"] == {"type": ["admin"]}
    no_grant = detail_fields(parse_detail("Change Role  - homer@duff.io: from Admin to Member", "User", None))
    assert "event" not in no_grant
    assert no_grant["user"] == {
        "target": {"email": "homer@duff.io", "roles": ["Admin"]},
        "changes": {"roles": ["Member"]},
    }


def test_set_to_change_has_no_from() -> None:
    fields = detail_fields(parse_detail("Update User carol@example.com  - Department: set to Sales", "User", None))
    assert fields["zoom"]["operation"]["changes"] == [
        {"setting": "Department", "to": "Sales", "setting_to": "department: sales"}
    ]
    assert fields["user"] == {"target": {"email": "carol@example.com"}}
    assert fields["related"] == {"user": ["carol@example.com"]}


def test_role_assigned_at_creation_has_no_previous_role() -> None:
    fields = detail_fields(parse_detail("Add User homer@x.io  - User Role: Owner", "User", "Add"))
    assert fields["user"] == {"target": {"email": "homer@x.io"}, "changes": {"roles": ["Owner"]}}
    assert TAG_ADMIN_ROLE_GRANTED in fields["tags"]


def test_detail_fields_merge_into_the_event() -> None:
    """Dicts merge key by key after the event's own keys; related.user, tags, event.type are unioned."""
    rec = {"action": "Batch Update", "category_type": "User", "operator": "homer@duff.io",
           "operation_detail": "Change Role  - homer@duff.io: from User to Co-Owner"}  # fmt: skip
    doc = map_sample(rec)  # no time: tagged
    assert doc["event"]["type"] == ["change", "user", "admin"]
    assert doc["user"] == {
        "name": "homer@duff.io",
        "email": "homer@duff.io",
        "changes": {"roles": ["Co-Owner"]},
        "target": {"email": "homer@duff.io", "roles": ["User"]},
    }
    assert doc["related"] == {"user": ["homer@duff.io"]}
    assert doc["tags"] == [UNPARSABLE_TIME_TAG, TAG_ADMIN_ROLE_GRANTED]
    assert list(doc["zoom"]["operation"]) == ["action", "category_type", "operation_detail", "operator",
                                              "object_type", "changes"]  # fmt: skip
    assert list(doc) == ["@timestamp", "ecs", "event", "organization", "data_stream", "zoom", "tags", "message",
                         "user", "related"]  # fmt: skip


def test_detail_fields_without_an_operator() -> None:
    detail = "Edit Group Springfield  - Personal Meeting ID (PMI) Passcode: from On to Off"
    rec = {"time": "2026-01-01T00:00:00Z", "category_type": "User Group", "operation_detail": detail}
    doc = map_sample(rec)
    assert_ecs_valid(doc)
    assert doc["group"] == {"name": "Springfield"}
    assert doc["tags"] == [TAG_SECURITY_CONTROL_DISABLED]
    assert "user" not in doc and "related" not in doc


def test_events_of_one_text_share_nothing() -> None:
    """Line truncation changes the event it is given; the next event of the same text is untouched."""
    rec = SAMPLES[5]
    first = map_sample(rec)
    first["user"]["target"]["roles"].append("x")
    first["zoom"]["operation"]["changes"][0]["to"] = "changed"
    first["tags"].append("truncated")
    second = map_sample(rec)
    assert second["user"]["target"]["roles"] == ["User"]
    assert second["zoom"]["operation"]["changes"][0]["to"] == "Co-Owner"
    assert second["tags"] == ["admin-role-granted"]


EXTRA_TEXTS = [
    # meeting ids written in groups (the parser joins the digits)
    ("Delete Meeting 123 456 7890", "Webinar", "Delete"),
    ("Delete Meeting 123 4", "Webinar", "Delete"),
    ("Delete cloud recording for meeting 12-3", "Recording", "Delete"),
    ("Delete cloud recording for meeting 11122223333 and 44455566677", "Recording", "Delete"),
    ("Change Role  - a.b@x.io: from Member to Admin - c@y.io: from User to Owner", "User", "Batch Update"),
    # longer than the parser reads
    ("Security  - " + " - ".join(f"Setting {i}: from On to Off" for i in range(150)), "Account", "Update"),
    ("Update User we\\ird\x01@example.com  - Job Title: set to Boss", "User", "Update"),
]


def reference_event(rec: dict[str, Any]) -> dict[str, Any]:
    """The event by a generic merge: ``rec`` mapped with a detail the parser does not know, then the
    parser's fields for the real detail deep-merged in (dicts key by key, the ECS sets unioned)."""
    text, category, action = rec["operation_detail"], rec.get("category_type"), rec.get("action")
    doc = map_sample({**rec, "operation_detail": "-"})
    doc["message"] = doc["zoom"]["operation"]["operation_detail"] = text

    def merge(base: dict[str, Any], fields: dict[str, Any], path: str = "") -> None:
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value, f"{path}{key}.")
            elif f"{path}{key}" in ("related.user", "tags", "event.type") and isinstance(base.get(key), list):
                base[key] += [v for v in value if v not in base[key]]
            else:
                base[key] = value

    merge(doc, detail_fields(parse_detail(text, category, action)))
    if doc["event"]["category"] != ["iam"] and "admin" in doc["event"]["type"]:
        doc["event"]["type"].remove("admin")
    return doc


def assert_merges_like_a_deep_merge(rec: dict[str, Any]) -> None:
    assert orjson.dumps(map_sample(rec)) == orjson.dumps(reference_event(rec)), rec["operation_detail"]


def test_detail_fields_merge_like_a_deep_merge_on_generated_records() -> None:
    """The event's own fields and the parsed ones merge as a deep merge would, the ECS sets unioned."""
    records = generate_records(5, 20, 300, datetime(2026, 11, 26, tzinfo=UTC)) + SAMPLES
    extra = [{"category_type": c, "action": a, "operation_detail": t, "operator": "a@b.io"} for t, c, a in EXTRA_TEXTS]
    for rec in records + extra:
        assert_merges_like_a_deep_merge(rec)


FRAGMENTS = st.sampled_from(
    ["  - ", " - ", ": from ", " to ", " set to ", "On", "Off", "Add User ", "Change Role", "Edit Group ",
     "Delete cloud recording for meeting ", "webinar ", "a@b.io", "x.y@z.example.com", "Jürgen", "@", "(", ")",
     "\u00a0", "\t", "123", "45", "7", "1.25", "Role", "User Role", "Admin", "Security", "Two-Factor", "passcode"]
)  # fmt: skip
TEXTS = st.lists(FRAGMENTS | st.text(max_size=5), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    text=TEXTS.filter(bool),
    category=st.sampled_from([None, "User", "Account", "Role"]),
    action=st.sampled_from([None, "Add"]),
    operator=st.sampled_from([None, "a@b.io", "Zoom System"]),
    timed=st.booleans(),
)
def test_detail_fields_merge_like_a_deep_merge(
    text: str, category: str | None, action: str | None, operator: str | None, timed: bool
) -> None:
    rec = {"category_type": category, "action": action, "operation_detail": text, "operator": operator}
    if timed:
        rec["time"] = "2026-01-01T00:00:00Z"
    assert_merges_like_a_deep_merge(rec)
    assert_ecs_valid(map_sample(rec))
