"""Golden files: every output format prints byte for byte what the released mapping printed.

The inputs are the sample and simulator records in tests/data, simulator-generated records (with
repeated and distinct details, as in the benchmark) and edge cases (the parser's table, odd fields
and times, random detail texts), stored in tests/data/golden so that a change to the simulator
does not move them. Each record goes through the shipped formatter and encoder with the
default line limit, a fixed `event.created` and the event id the engine computes.

After an intended change of the output, rewrite the expected files with
``python tests/test_golden.py --regenerate`` and review the diff of the decompressed files.

The expected files were written by the code of commit 101b366, except for three records where its
cached ECS detail path disagreed with the parser it caches: it raised IndexError on meeting ids
written in groups ("Delete Meeting 123 456 7890") and cut a long detail with numbers short. Those
three hold the parser's result.
"""

from __future__ import annotations

import gzip
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from zoom_oplog_shipper.output import make_encoder, make_formatter
from zoom_oplog_shipper.records import canonical, fingerprint, record_time
from zoom_oplog_shipper.settings import DEFAULT_MAX_LINE_BYTES

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden"
ACCOUNT = "golden-account-id"
CREATED = "2026-11-30T12:00:00.000Z"
GENERATED_END = datetime(2026, 11, 26, tzinfo=UTC)

#: Output name -> (format, include_original).
FORMATS = {
    "ecs": ("ecs", False),
    "ecs_original": ("ecs", True),
    "ocsf": ("ocsf", False),
    "raw": ("raw", False),
}
#: Input sets, in the order their lines appear in each expected file.
INPUTS = {
    "sample": DATA / "sample_operation_logs.jsonl",
    "simulator": DATA / "simulator_records.jsonl",
    "generated": GOLDEN / "generated_records.jsonl.gz",
    "edge": GOLDEN / "edge_records.jsonl.gz",
}


def read_lines(path: Path) -> list[bytes]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return [line for line in raw.split(b"\n") if line.strip()]


def load_inputs() -> list[Any]:
    return [orjson.loads(line) for path in INPUTS.values() for line in read_lines(path)]


def render(records: list[Any], name: str) -> list[bytes]:
    """The lines the engine prints for ``records`` in output ``name`` (ids as the engine makes them)."""
    output_format, include_original = FORMATS[name]
    formatter = make_formatter(output_format, ACCOUNT, include_original)
    encoder = make_encoder(DEFAULT_MAX_LINE_BYTES, output_format)
    occurrences: dict[bytes, int] = {}
    lines = []
    for record in records:
        canon = canonical(record)
        n = occurrences.get(canon, 0)
        occurrences[canon] = n + 1
        event_id = fingerprint(ACCOUNT, canon, n).hex()
        lines.append(encoder(formatter(record, event_id, record_time(record), CREATED)))
    return lines


def expected_path(name: str) -> Path:
    return GOLDEN / f"expected_{name}.jsonl.gz"


@pytest.fixture(scope="module")
def records() -> list[Any]:
    return load_inputs()


def test_inputs_cover_distinct_and_repeated_details(records: list[Any]) -> None:
    details = [r.get("operation_detail") for r in records]
    assert len(records) > 3000
    assert 0.3 < len(set(map(str, details))) / len(details) < 0.9


@pytest.mark.parametrize("name", FORMATS)
def test_output_is_byte_identical_to_the_golden_file(records: list[Any], name: str) -> None:
    got = render(records, name)
    expected = read_lines(expected_path(name))
    assert len(got) == len(expected) == len(records)
    for index, (line, want) in enumerate(zip(got, expected, strict=True)):
        assert line == want, f"{name}: record {index} ({records[index]!r:.200}) differs"


def regenerate() -> None:
    """Rewrite the generated inputs (only when missing) and every expected file."""
    generated = INPUTS["generated"]
    if not generated.exists():
        from zoom_oplog_shipper.simulator import generate_records

        body = b"".join(orjson.dumps(r) + b"\n" for r in generate_records(1, 10, 260, GENERATED_END))
        generated.write_bytes(gzip.compress(body, 9, mtime=0))
    records = load_inputs()
    for name in FORMATS:
        body = b"".join(line + b"\n" for line in render(records, name))
        expected_path(name).write_bytes(gzip.compress(body, 9, mtime=0))


if __name__ == "__main__" and sys.argv[1:] == ["--regenerate"]:
    regenerate()
