"""Sign-in/sign-out activity records mapped to ECS 9.4.0 and OCSF 1.5.0, checked against both schemas.

ECS: every field and category/type pair against tests/data/ecs_fields.json (a subset of ECS 9.4.0's
ecs_flat.yml), with tests/schemas.py's check of every stream's events. OCSF: ocsf-emitter's generated
Authentication model and invariants, py-ocsf-models' base event and tests/schemas.py's attribute walk.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schemas import assert_ecs_valid as assert_ecs_fields
from schemas import assert_ocsf_valid, flatten

from zoom_oplog_shipper.formats import OUTPUT_FORMATS, to_raw
from zoom_oplog_shipper.formats.ecs import UNPARSABLE_TIME_TAG
from zoom_oplog_shipper.formats.ocsf import OCSF_VERSION, TIME_UNPARSABLE_LABEL
from zoom_oplog_shipper.mapping import EventContext
from zoom_oplog_shipper.output import make_formatter
from zoom_oplog_shipper.records import record_time
from zoom_oplog_shipper.simulator import generate_activity_records
from zoom_oplog_shipper.streams import STREAMS
from zoom_oplog_shipper.streams.activities.ecs import DATASET, to_ecs
from zoom_oplog_shipper.streams.activities.ocsf import to_ocsf
from zoom_oplog_shipper.streams.activities.record import source_ip

CREATED = "2026-11-26T12:00:00.000Z"
CREATED_MS = 1795694400000
ACCOUNT = "acct-1"
EVENT_ID = "ab" * 16
T = "2024-06-07T10:00:00Z"
T_MS = 1717754400000


def ecs_of(record: Any, **kw: Any) -> dict[str, Any]:
    return to_ecs(record, EventContext(EVENT_ID, ACCOUNT, CREATED, record_time(record), **kw))


def ocsf_of(record: Any, account: str = ACCOUNT, created: str = CREATED) -> dict[str, Any]:
    return to_ocsf(record, EventContext(EVENT_ID, account, created, record_time(record)))


def assert_ecs_valid(doc: dict[str, Any]) -> None:
    """The ECS 9.4.0 checks of every stream's events, and the activity dataset."""
    assert_ecs_fields(doc)
    assert doc["event"]["dataset"] == doc["data_stream"]["dataset"] == DATASET


FULL = {
    "client_type": "Mac",
    "email": "alice@example.com",
    "ip_address": "192.0.2.10",
    "time": T,
    "type": "Sign in",
    "version": "6.0.2.33403",
}
ABSENT = object()

# (id, record, expected flattened ECS fields, expected flattened OCSF fields); ABSENT: not present
CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "sign in",
        FULL,
        {
            "@timestamp": "2024-06-07T10:00:00.000Z", "event.action": "sign-in", "event.type": ["start"],
            "event.category": ["authentication", "session"], "event.outcome": "success", "event.kind": "event",
            "event.module": "zoom", "event.dataset": "zoom.activity", "event.id": EVENT_ID, "event.created": CREATED,
            "user.email": "alice@example.com", "user.name": "alice@example.com", "source.ip": "192.0.2.10",
            "related.user": ["alice@example.com"], "related.ip": ["192.0.2.10"], "organization.id": ACCOUNT,
            "data_stream.dataset": "zoom.activity", "data_stream.type": "logs", "data_stream.namespace": "default",
            "zoom.activity.email": "alice@example.com", "zoom.activity.type": "Sign in",
            "zoom.activity.ip_address": "192.0.2.10", "zoom.activity.client_type": "Mac",
            "zoom.activity.version": "6.0.2.33403", "zoom.activity.time": ABSENT, "tags": ABSENT,
            "message": "Sign in by alice@example.com from 192.0.2.10 using Mac 6.0.2.33403",
        },
        {
            "class_uid": 3002, "category_uid": 3, "activity_id": 1, "activity_name": "Logon", "type_uid": 300201,
            "type_name": "Authentication: Logon", "status_id": 1, "status": "Success", "time": T_MS,
            "user.email_addr": "alice@example.com", "user.name": "alice@example.com", "user.account.uid": ACCOUNT,
            "src_endpoint.ip": "192.0.2.10", "actor.app_name": "Mac", "service.name": "Zoom",
            "metadata.uid": EVENT_ID, "metadata.logged_time": CREATED_MS, "metadata.log_name": "activities",
            "metadata.tenant_uid": ACCOUNT, "metadata.original_time": T, "metadata.labels": ABSENT,
            "metadata.version": OCSF_VERSION, "unmapped.activity_log.version": "6.0.2.33403",
        },
    ),
    (
        "sign out",
        {**FULL, "type": "Sign out", "client_type": "Windows"},
        {"event.action": "sign-out", "event.type": ["end"], "event.outcome": "success"},
        {"activity_id": 2, "activity_name": "Logoff", "type_uid": 300202, "status_id": 1, "actor.app_name": "Windows"},
    ),
    (
        "type case and spaces",
        {**FULL, "type": " sign  OUT "},
        {"event.action": "sign-out", "event.type": ["end"], "zoom.activity.type": " sign  OUT "},
        {"activity_id": 2},
    ),
    (
        "unknown type",
        {**FULL, "type": "Sign-in failure"},
        {"event.action": "sign-in-failure", "event.type": ["info"], "event.outcome": ABSENT,
         "zoom.activity.type": "Sign-in failure", "source.ip": "192.0.2.10"},
        {"activity_id": 99, "activity_name": "Sign-in failure", "type_uid": 300299,
         "type_name": "Authentication: Other", "status_id": 0, "status": "Unknown"},
    ),
    (
        "missing type",
        {k: v for k, v in FULL.items() if k != "type"},
        {"event.action": ABSENT, "event.type": ["info"], "event.outcome": ABSENT,
         "message": "Activity by alice@example.com from 192.0.2.10 using Mac 6.0.2.33403"},
        {"activity_id": 99, "activity_name": "Other", "status_id": 0},
    ),
    (
        "only email, time and type",
        {"email": "bob@example.com", "time": T, "type": "Sign in"},
        {"source.ip": ABSENT, "related.ip": ABSENT, "related.user": ["bob@example.com"],
         "zoom.activity.ip_address": ABSENT, "zoom.activity.client_type": ABSENT, "zoom.activity.version": ABSENT,
         "message": "Sign in by bob@example.com"},
        {"src_endpoint.ip": ABSENT, "actor.app_name": ABSENT, "user.email_addr": "bob@example.com",
         "observables": [
             {"name": "user.email_addr", "type_id": 5, "type": "Email Address", "value": "bob@example.com"},
         ]},
    ),
    (
        "no email",
        {k: v for k, v in FULL.items() if k != "email"},
        {"user.name": ABSENT, "user.email": ABSENT, "related.user": ABSENT, "related.ip": ["192.0.2.10"]},
        {"user.email_addr": ABSENT, "user.name": ABSENT, "user.account.uid": ACCOUNT},
    ),
    (
        "IPv6",
        {**FULL, "ip_address": "2001:DB8:0:0::1"},
        {"source.ip": "2001:db8::1", "related.ip": ["2001:db8::1"], "zoom.activity.ip_address": "2001:DB8:0:0::1"},
        {"src_endpoint.ip": "2001:db8::1",
         "observables": [
             {"name": "user.email_addr", "type_id": 5, "type": "Email Address", "value": "alice@example.com"},
             {"name": "src_endpoint.ip", "type_id": 2, "type": "IP Address", "value": "2001:db8::1"},
         ]},
    ),
    (
        "invalid IP",
        {**FULL, "ip_address": "unknown"},
        {"source.ip": ABSENT, "related.ip": ABSENT, "zoom.activity.ip_address": "unknown"},
        {"src_endpoint.ip": ABSENT, "unmapped.activity_log.ip_address": "unknown"},
    ),
    (
        "IP with a zone index",
        {**FULL, "ip_address": "fe80::1%eth0"},
        {"source.ip": ABSENT, "zoom.activity.ip_address": "fe80::1%eth0"},
        {"src_endpoint.ip": ABSENT},
    ),
    (
        "empty IP and client",
        {**FULL, "ip_address": "", "client_type": " "},
        {"source.ip": ABSENT, "zoom.activity.ip_address": ABSENT, "zoom.activity.client_type": ABSENT,
         "message": "Sign in by alice@example.com"},
        {"src_endpoint.ip": ABSENT, "actor.app_name": ABSENT},
    ),
    (
        "version dash",
        {**FULL, "client_type": "Browser", "version": "-"},
        {"zoom.activity.version": "-", "zoom.activity.client_type": "Browser",
         "message": "Sign in by alice@example.com from 192.0.2.10 using Browser"},
        {"actor.app_name": "Browser", "unmapped.activity_log.version": "-"},
    ),
    (
        "client type lower case",
        {**FULL, "client_type": "mac"},
        {"zoom.activity.client_type": "mac"},
        {"actor.app_name": "mac"},
    ),
    (
        "email that is not an address",
        {**FULL, "email": "jdoe"},
        {"user.name": "jdoe", "user.email": ABSENT, "related.user": ["jdoe"]},
        {"user.name": "jdoe", "user.email_addr": ABSENT},
    ),
    (
        "missing time",
        {k: v for k, v in FULL.items() if k != "time"},
        {"@timestamp": CREATED, "tags": [UNPARSABLE_TIME_TAG]},
        {"time": CREATED_MS, "metadata.labels": [TIME_UNPARSABLE_LABEL], "metadata.original_time": ABSENT},
    ),
    (
        "unparsable time",
        {**FULL, "time": "yesterday"},
        {"@timestamp": CREATED, "tags": [UNPARSABLE_TIME_TAG]},
        {"time": CREATED_MS, "metadata.labels": [TIME_UNPARSABLE_LABEL], "metadata.original_time": "yesterday"},
    ),
    (
        "time with an offset",
        {**FULL, "time": "2024-06-07T12:00:00+02:00"},
        {"@timestamp": "2024-06-07T10:00:00.000Z"},
        {"time": T_MS},
    ),
    (
        "non-string fields",
        {"email": 7, "time": T, "type": ["Sign in"], "ip_address": 3232235777, "client_type": None},
        {"user.name": ABSENT, "source.ip": ABSENT, "event.type": ["info"], "zoom.activity": ABSENT},
        {"activity_id": 99, "src_endpoint.ip": ABSENT, "unmapped.activity_log.ip_address": 3232235777},
    ),
]  # fmt: skip


def assert_fields(doc: dict[str, Any], expected: dict[str, Any]) -> None:
    flat = flatten(doc)
    for name, value in expected.items():
        if value is ABSENT:
            assert name not in flat and not any(k.startswith(name + ".") for k in flat), f"{name} should be absent"
        else:
            assert flat.get(name) == value, f"{name}: {flat.get(name)!r} != {value!r}"


@pytest.mark.parametrize(("record", "ecs", "ocsf"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_mapping_table(record: dict[str, Any], ecs: dict[str, Any], ocsf: dict[str, Any]) -> None:
    doc = ecs_of(record)
    assert_ecs_valid(doc)
    assert_fields(doc, ecs)
    event = ocsf_of(record)
    assert_ocsf_valid(event)
    assert_fields(event, ocsf)
    assert event["unmapped"]["activity_log"] == record  # the record kept whole


def test_event_original_and_raw_format_keep_the_record() -> None:
    record = {**FULL, "extra": {"nested": True}}
    assert orjson.loads(ecs_of(record, include_original=True)["event"]["original"]) == record
    assert "original" not in ecs_of(record)["event"]
    raw = to_raw(record, EventContext(EVENT_ID, ACCOUNT, CREATED, None))
    assert raw == {"event": {"id": EVENT_ID}, "record": record}


def test_naive_created_is_utc_and_empty_account_is_left_out() -> None:
    event = ocsf_of(FULL, account="", created=CREATED.removesuffix("Z"))
    assert event["metadata"]["logged_time"] == CREATED_MS
    assert "tenant_uid" not in event["metadata"] and "account" not in event["user"]
    bare = ocsf_of({"time": T}, account="")
    assert bare["user"] == {"type_id": 0, "type": "Unknown"}
    assert_ocsf_valid(bare)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("192.0.2.1", "192.0.2.1"), (" 10.0.0.1 ", "10.0.0.1"), ("2001:DB8::0:1", "2001:db8::1"), ("::ffff:192.0.2.1",
     "::ffff:c000:201"), ("unknown", None), ("", None), ("192.0.2.256", None), ("010.0.0.1", None),
     ("fe80::1%eth0", None), ("192.0.2.1:443", None), (None, None), (3232235777, None)],
)  # fmt: skip
def test_source_ip(text: object, expected: str | None) -> None:
    assert source_ip(text) == expected


def test_every_generated_record_maps_to_valid_ecs_and_ocsf() -> None:
    records = generate_activity_records(11, 3, 150, datetime(2024, 6, 10, tzinfo=UTC))
    actions = set()
    for record in records:
        doc = ecs_of(record)
        assert_ecs_valid(doc)
        assert_ocsf_valid(ocsf_of(record))
        actions.add(doc["event"]["action"])
        assert ("source" in doc) == ("ip_address" in record)  # the generator only makes valid addresses
    assert actions == {"sign-in", "sign-out"}


_TEXT = st.one_of(st.none(), st.text(max_size=30), st.sampled_from(["Sign in", "Sign out", "-", "::1", "1.2.3.4"]))


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["email", "time", "type", "ip_address", "client_type", "version", "other"]),
        st.one_of(_TEXT, st.integers(), st.lists(st.text(max_size=5), max_size=2)),
    )
)
def test_random_records_always_map_to_valid_events(record: dict[str, Any]) -> None:
    assert_ecs_valid(ecs_of(record))
    assert_ocsf_valid(ocsf_of(record))


def test_every_stream_maps_every_format_and_lands_in_its_own_dataset() -> None:
    record = {"time": "2026-11-26T10:00:00Z", "email": "a@example.com", "type": "Sign in", "action": "Add"}
    datasets = set()
    for stream in STREAMS:
        docs = {
            name: make_formatter(name, "acct", False, stream)(record, "ab" * 16, record_time(record), CREATED)
            for name in OUTPUT_FORMATS
        }
        assert docs["ecs"]["event"]["dataset"] == docs["ecs"]["data_stream"]["dataset"]
        datasets.add(docs["ecs"]["event"]["dataset"])
        assert docs["ocsf"]["metadata"]["uid"] == "ab" * 16
        assert docs["raw"] == {"event": {"id": "ab" * 16}, "record": record}
    assert datasets == {"zoom.operation", DATASET}
