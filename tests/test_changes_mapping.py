"""zoom.operation.changes is an object array, not nested; setting_to is the one-change term (docs/output.md).

Elasticsearch indexes an object array as independent lists, so "setting A AND value Off" matches a
record that turned A on and B off. The mapping keeps the array (nested fields are invisible to
ES|QL, Lens, plain KQL/Lucene and Sigma's Elasticsearch backends) and every change carries
``setting_to``: one keyword that holds the setting and its new value together. These tests run the
queries on the printed events in SQLite with Elasticsearch's semantics (detections/evaluate.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from detections.evaluate import any_value, connect, load
from zoom_oplog_shipper.formats import ECS
from zoom_oplog_shipper.mapping import EventContext
from zoom_oplog_shipper.output import encode
from zoom_oplog_shipper.streams.operations.ecs import to_ecs

MAPPING = Path(__file__).parent.parent / "configs" / "elasticsearch" / "zoom.operation@mappings.json"
BATCHED = "Security  - Waiting Room: from Off to On - Sign in with Two-Factor Authentication: from On to Off"
TIME = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def event(detail: str) -> dict[str, Any]:
    record = {"action": "Update", "category_type": "Account", "operation_detail": detail, "operator": "a@example.com"}
    return to_ecs(
        {**record, "time": "2026-11-02T09:30:00Z"}, EventContext("0" * 32, "acct", "2026-11-02T09:35:00.000Z", TIME)
    )


def changes_mapping() -> dict[str, Any]:
    operation = json.loads(MAPPING.read_text())["template"]["mappings"]["properties"]["zoom"]["properties"]
    mapping: dict[str, Any] = operation["operation"]["properties"]["changes"]
    return mapping


def matches(docs: list[dict[str, Any]], *conditions: tuple[str, str]) -> list[int]:
    """Rowids of the docs where every ``(field, value)`` condition holds (each on any value of its field)."""
    connection = connect()
    load(connection, docs)
    where = " AND ".join(any_value(f"`{field}` = ?") for field, _ in conditions)
    return [row[0] for row in connection.execute(f"SELECT rowid FROM logs WHERE {where}", [v for _, v in conditions])]


@pytest.fixture
def batched() -> Iterator[list[dict[str, Any]]]:
    yield [event(BATCHED), event("Security  - Waiting Room: from On to Off")]


def test_changes_are_an_object_array_with_a_one_change_term() -> None:
    mapping = changes_mapping()
    assert "type" not in mapping  # an object (array), not "nested"
    assert mapping["properties"]["setting_to"] == {"type": "keyword", "ignore_above": 1024}


def test_the_batched_detail_carries_one_term_per_change(batched: list[dict[str, Any]]) -> None:
    changes = batched[0]["zoom"]["operation"]["changes"]
    assert [c["setting_to"] for c in changes] == [
        "security - waiting room: on",
        "security - sign in with two-factor authentication: off",
    ]


def test_setting_and_value_as_two_fields_match_two_different_changes(batched: list[dict[str, Any]]) -> None:
    # What a nested mapping would prevent, and why the term exists: "Waiting Room turned off"
    # written as two fields matches the record that turned it on (and 2FA off).
    query = [("zoom.operation.changes.setting", "Waiting Room"), ("zoom.operation.changes.to", "Off")]
    assert matches(batched, *query) == [1, 2]


def test_the_term_matches_only_the_change_that_was_made(batched: list[dict[str, Any]]) -> None:
    field = "zoom.operation.changes.setting_to"
    assert matches(batched, (field, "security - waiting room: off")) == [2]  # not the batched record
    assert matches(batched, (field, "security - sign in with two-factor authentication: off")) == [1]
    assert matches(batched, (field, "security - sign in with two-factor authentication: on")) == []


@pytest.mark.parametrize(
    ("detail", "term"),
    [
        ("Change account setting Cloud Recording from ON to OFF", "cloud recording: off"),
        ("Security  - Waiting Room: from Disabled to Enabled", "security - waiting room: on"),
        ("Update User Bart@X.io  - Job Title: set to Contractor", "job title: contractor"),
        ("Edit IM Group all-hands  - Add Member: Lisa@X.io", "add member: Lisa@X.io"),
        ("Change Role  - homer@x.io: from Member to Admin", "role: admin"),
    ],
)
def test_term_forms(detail: str, term: str) -> None:
    assert [c["setting_to"] for c in event(detail)["zoom"]["operation"]["changes"]] == [term]


def test_a_change_without_a_new_value_has_no_term() -> None:
    (change,) = event("Security  - Waiting Room: from On to")["zoom"]["operation"]["changes"]
    assert "to" not in change and "setting_to" not in change


def test_an_event_over_the_line_limit_loses_the_terms_before_its_text() -> None:
    # The terms repeat each change's setting and value: they go before the free text is cut.
    value = "welcome to the meeting " * 170  # text, value and term about 4 KB each: 3 fit in 16 KB, 4 do not
    doc = event(f"Account Settings  - Welcome text: from Hello to {value}")
    line = encode(doc, 16384, ECS)
    printed = orjson.loads(line)
    assert len(line) <= 16384 and "truncated" in printed["tags"]
    assert "setting_to" not in printed["zoom"]["operation"]["changes"][0]
    assert printed["message"] == doc["message"]  # the text is whole: dropping the terms was enough
