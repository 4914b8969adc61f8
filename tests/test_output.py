from __future__ import annotations

import io
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from schemas import assert_ocsf_valid

from zoom_oplog_shipper.errors import OutputClosedError
from zoom_oplog_shipper.formats import ECS, FORMATS
from zoom_oplog_shipper.mapping import EventContext
from zoom_oplog_shipper.output import TRUNCATED_TAG, PageWriter, encode, make_encoder, make_formatter
from zoom_oplog_shipper.records import record_time
from zoom_oplog_shipper.streams.operations.ecs import to_ecs

REC = {"time": "2026-01-01T00:00:00Z", "operator": "a@b.io", "operation_detail": "Ünïcode detail " * 400}


def doc(**kw: Any) -> dict[str, Any]:
    return to_ecs(REC, EventContext("ab" * 16, "acct", "2026-01-01T00:00:00.000Z", record_time(REC), **kw))


def test_short_line_untouched() -> None:
    small = {"a": 1}
    assert encode(small, 4096, ECS) == b'{"a":1}'


@pytest.mark.parametrize("limit", [2048, 4096, 9000])
def test_long_lines_are_cut_under_the_limit(limit: int) -> None:
    line = encode(doc(include_original=True), limit, ECS)
    assert len(line) <= limit
    parsed = orjson.loads(line)
    assert TRUNCATED_TAG in parsed["tags"]
    assert "original" not in parsed["event"]
    assert parsed["event"]["id"] == "ab" * 16
    assert parsed["message"].endswith("…")


def test_parsed_changes_are_cut_too() -> None:
    rec = {"time": "2026-01-01T00:00:00Z", "operation_detail": "Security  - Note: from On to " + "x" * 9000}
    full = to_ecs(rec, EventContext("ab" * 16, "acct", "2026-01-01T00:00:00.000Z", record_time(rec)))
    assert len(full["zoom"]["operation"]["changes"][0]["to"]) > 4000
    line = encode(full, 3000, ECS)
    parsed = orjson.loads(line)
    assert len(line) <= 3000 and TRUNCATED_TAG in parsed["tags"]
    assert parsed["zoom"]["operation"]["changes"][0]["to"].endswith("…")


def test_original_dropped_first() -> None:
    full = doc(include_original=True)
    without = len(orjson.dumps(doc()))
    line = encode(full, without + 10, ECS)
    parsed = orjson.loads(line)
    assert "original" not in parsed["event"] and "tags" not in parsed
    assert parsed["message"] == REC["operation_detail"]


def test_writer_writes_whole_pages() -> None:
    buf = io.BytesIO()
    PageWriter(buf).write_page([b"1", b"2"])
    PageWriter(buf).write_page([])
    assert buf.getvalue() == b"1\n2\n"


class Trickle(io.BytesIO):
    """A raw stream that takes at most 5 bytes a call, as a pipe interrupted by signals can."""

    def write(self, data: Any) -> int:
        return super().write(bytes(data[:5]))


def test_writer_finishes_partial_writes() -> None:
    buf = Trickle()
    PageWriter(buf).write_page([b"0123456789", b"abcdefghij"])
    assert buf.getvalue() == b"0123456789\nabcdefghij\n"


class Closed(io.BytesIO):
    def write(self, _data: Any) -> int:
        raise BrokenPipeError


def test_writer_broken_pipe() -> None:
    with pytest.raises(OutputClosedError):
        PageWriter(Closed()).write_page([b"x"])


def test_make_formatter_formats() -> None:
    t = record_time(REC)
    ecs = make_formatter("ecs", "acct", True)(REC, "id", t, "2026-01-01T00:00:00.000Z")
    assert ecs["event"]["id"] == "id" and "original" in ecs["event"]
    raw = make_formatter("raw", "acct", False)(REC, "id", t, "2026-01-01T00:00:00.000Z")
    assert raw == {"event": {"id": "id"}, "record": REC}


# -- every line within the limit, whatever the record ----------------------------------------------

CREATED = "2026-01-01T00:00:00.000Z"
MANY_CHANGES = "Security  - " + "".join(f" - Setting number {i}: from On to Off" for i in range(1500))


def formatted(output_format: str, rec: dict[str, Any], include_original: bool = False) -> dict[str, Any]:
    return make_formatter(output_format, "acct-1", include_original)(rec, "ab" * 16, record_time(rec), CREATED)


def big_record(detail: str = MANY_CHANGES, **extra: Any) -> dict[str, Any]:
    rec = {
        "time": "2026-01-01T00:00:00Z",
        "operator": "admin@example.com",
        "category_type": "Account",
        "action": "Update",
        "operation_detail": detail,
    }
    rec.update(extra)
    return rec


def marked_truncated(doc: dict[str, Any]) -> bool:
    labels = doc.get("metadata", {}).get("labels", []) if "class_uid" in doc else doc.get("tags", [])
    return TRUNCATED_TAG in labels


@pytest.mark.parametrize("output_format", ["ecs", "ocsf", "raw"])
@pytest.mark.parametrize("limit", [2048, 4096, 16384])
@pytest.mark.parametrize(
    "rec",
    [
        big_record(),
        big_record(MANY_CHANGES * 3),
        big_record("Update User " + " ".join(f"u{i}@example.com" for i in range(3000))),
        big_record(operator="x" * 50_000),
        big_record(action="Update " * 5000, category_type="C" * 9000),
        big_record(extra_field=["y" * 100] * 2000),
    ],
    ids=["1500-changes", "4500-changes", "3000-users", "long-operator", "long-action", "long-unknown-field"],
)
def test_every_line_holds_the_limit(output_format: str, limit: int, rec: dict[str, Any]) -> None:
    doc = formatted(output_format, rec, include_original=True)
    line = encode(doc, limit, FORMATS[output_format])
    assert len(line) <= limit
    parsed = orjson.loads(line)
    assert marked_truncated(parsed)
    if output_format == "ocsf":
        assert parsed["metadata"]["uid"] == "ab" * 16 and parsed["time"] == 1767225600000
        assert parsed["class_uid"] in (3001, 3004) and parsed["metadata"]["version"]
    else:
        assert parsed["event"]["id"] == "ab" * 16
    if output_format == "ecs":
        assert parsed["@timestamp"] == "2026-01-01T00:00:00.000Z" and parsed["event"]["created"] == CREATED
        assert parsed["event"]["kind"] == "event" and parsed["event"]["dataset"] == "zoom.operation"
        assert parsed["organization"]["id"] == "acct-1"


def test_many_changes_keep_the_first_ones_and_count_the_rest() -> None:
    doc = formatted("ecs", big_record())
    total = len(doc["zoom"]["operation"]["changes"])
    line = encode(doc, 4096, ECS)
    parsed = orjson.loads(line)
    op = parsed["zoom"]["operation"]
    kept = op["changes"]
    assert len(line) <= 4096 and 0 < len(kept) < total
    assert kept[0]["setting"].endswith("Setting number 0")
    assert op["changes_truncated"] == total - len(kept)
    # the free text is cut, not dropped: a person still sees how it began
    assert parsed["message"].startswith("Security  - ") and parsed["message"].endswith("…")


def test_ocsf_changes_are_cut_and_the_event_stays_valid_ocsf() -> None:
    doc = formatted("ocsf", big_record())
    line = encode(doc, 4096, FORMATS["ocsf"])
    parsed = orjson.loads(line)
    assert len(line) <= 4096 and "tags" not in parsed
    assert TRUNCATED_TAG in parsed["metadata"]["labels"]
    assert parsed["entity"]["data"]["changes_truncated"] > 0
    assert_ocsf_valid(parsed)


@settings(max_examples=60, deadline=None)
@example(output_format="ecs", limit=2048, changes=0, setting="0", operator_len=251, include_original=True)
@given(
    output_format=st.sampled_from(["ecs", "ocsf", "raw"]),
    limit=st.integers(min_value=2048, max_value=20_000),
    changes=st.integers(min_value=0, max_value=2000),
    setting=st.text(min_size=1, max_size=60).filter(lambda s: ":" not in s and "-" not in s),
    operator_len=st.integers(min_value=0, max_value=30_000),
    include_original=st.booleans(),
)
def test_no_line_ever_exceeds_the_limit(
    output_format: str, limit: int, changes: int, setting: str, operator_len: int, include_original: bool
) -> None:
    detail = "Meeting  - " + "".join(f" - {setting} {i}: from Off to On" for i in range(changes))
    rec = big_record(detail, operator="o" * operator_len + "@example.com")
    doc = formatted(output_format, rec, include_original)
    # Dropping event.original is not a cut: the event is tagged only when its own text had to go.
    without_original = orjson.loads(orjson.dumps(doc))
    without_original.get("event", {}).pop("original", None)
    line = encode(doc, limit, FORMATS[output_format])
    assert len(line) <= limit
    parsed = orjson.loads(line)
    assert marked_truncated(parsed) == (len(orjson.dumps(without_original)) > limit)


@pytest.mark.parametrize("max_bytes", [200, 1000, 4096, 1_000_000])
def test_the_engines_encoder_writes_what_encode_writes(max_bytes: int) -> None:
    line = make_encoder(max_bytes, "ecs")(doc(include_original=True))
    assert line == encode(doc(include_original=True), max_bytes, ECS) and len(line) <= max_bytes
