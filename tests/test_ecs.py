"""The ECS mapping, and a check of every field and category/type pair against ECS 9.4.0."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from zoom_oplog_shipper.ecs import (
    ECS_VERSION,
    UNPARSABLE_TIME_TAG,
    categorize,
    event_type,
    normalize,
    to_ecs,
    to_raw,
)
from zoom_oplog_shipper.records import record_time

DATA = Path(__file__).parent / "data"
ECS = json.loads((DATA / "ecs_fields.json").read_text())
SAMPLES = [json.loads(line) for line in (DATA / "sample_operation_logs.jsonl").read_text().splitlines() if line]
CREATED = "2026-11-26T12:00:00.000Z"


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def map_sample(rec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return to_ecs(rec, "ab" * 16, "acct-1", CREATED, record_time(rec), **kw)


def assert_ecs_valid(doc: dict[str, Any]) -> None:
    fields = ECS["fields"]
    for name, value in flatten(doc).items():
        if name.startswith("zoom."):
            continue  # the integration's own namespace, outside ECS by design
        assert name in fields, f"{name} is not an ECS 9.4.0 field"
        spec = fields[name]
        if "array" in spec.get("normalize", []):
            assert isinstance(value, list), f"{name} must be an array"
        else:
            assert not isinstance(value, list | dict), f"{name} must be a scalar"
    allowed_kinds = {v["name"] for v in fields["event.kind"]["allowed_values"]}
    assert doc["event"]["kind"] in allowed_kinds
    expected = {v["name"]: set(v["expected_event_types"]) for v in fields["event.category"]["allowed_values"]}
    all_types = {v["name"] for v in fields["event.type"]["allowed_values"]}
    for category in doc["event"]["category"]:
        assert category in expected
        for kind in doc["event"]["type"]:
            assert kind in all_types
            assert kind in expected[category], f"type {kind} is not allowed for category {category}"
    assert "-" not in doc["data_stream"]["dataset"] and "-" not in doc["data_stream"]["namespace"]
    assert doc["event"]["dataset"] == doc["data_stream"]["dataset"]


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
    assert doc["zoom"]["operation"]["changes"] == [{"setting": "Role", "from": "User", "to": "Co-Owner"}]
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
    assert to_raw(rec, "ff" * 16) == {"event": {"id": "ff" * 16}, "record": rec}


def test_timestamp_other_offsets() -> None:
    rec = {"time": "2026-01-01T10:00:00+02:00"}
    doc = to_ecs(rec, "a", "b", CREATED, record_time(rec))
    assert doc["@timestamp"] == "2026-01-01T08:00:00.000Z"
    assert record_time(rec) == datetime(2026, 1, 1, 8, tzinfo=UTC)
