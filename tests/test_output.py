from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from zoom_oplog_shipper.ecs import to_ecs
from zoom_oplog_shipper.errors import OutputClosedError
from zoom_oplog_shipper.output import TRUNCATED_TAG, PageWriter, encode, make_formatter
from zoom_oplog_shipper.records import record_time

REC = {"time": "2026-01-01T00:00:00Z", "operator": "a@b.io", "operation_detail": "Ünïcode detail " * 400}


def doc(**kw: Any) -> dict[str, Any]:
    return to_ecs(REC, "ab" * 16, "acct", "2026-01-01T00:00:00.000Z", record_time(REC), **kw)


def test_short_line_untouched() -> None:
    small = {"a": 1}
    assert encode(small, 4096) == b'{"a":1}'


@pytest.mark.parametrize("limit", [2048, 4096, 9000])
def test_long_lines_are_cut_under_the_limit(limit: int) -> None:
    line = encode(doc(include_original=True), limit)
    assert len(line) <= limit
    parsed = orjson.loads(line)
    assert TRUNCATED_TAG in parsed["tags"]
    assert "original" not in parsed["event"]
    assert parsed["event"]["id"] == "ab" * 16
    assert parsed["message"].endswith("…")


def test_parsed_changes_are_cut_too() -> None:
    rec = {"time": "2026-01-01T00:00:00Z", "operation_detail": "Security  - Note: from On to " + "x" * 9000}
    full = to_ecs(rec, "ab" * 16, "acct", "2026-01-01T00:00:00.000Z", record_time(rec))
    assert len(full["zoom"]["operation"]["changes"][0]["to"]) > 4000
    line = encode(full, 6000)
    parsed = orjson.loads(line)
    assert len(line) <= 6000 and TRUNCATED_TAG in parsed["tags"]
    assert parsed["zoom"]["operation"]["changes"][0]["to"].endswith("…")


def test_original_dropped_first() -> None:
    full = doc(include_original=True)
    without = len(orjson.dumps(doc()))
    line = encode(full, without + 10)
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
