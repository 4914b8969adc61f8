"""`demo`: the real pipeline against the built-in simulator, for each stream and format."""

from __future__ import annotations

import io

import orjson
import pytest

from zoom_oplog_shipper.cli import main


@pytest.mark.parametrize(
    ("stream", "output_format", "dataset"),
    [
        ("operations", "ecs", "zoom.operation"),
        ("activities", "ecs", "zoom.activity"),
        ("activities", "ocsf", None),
    ],
)
def test_demo_prints_every_generated_record_of_the_stream(stream: str, output_format: str, dataset: str | None) -> None:
    out, err = io.BytesIO(), io.StringIO()
    code = main(
        ["demo", "--stream", stream, "--format", output_format, "--days", "2", "--records-per-day", "15"],
        env={},
        stdout=out,
        stderr=err,
    )
    docs = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0
    assert len(docs) == 30 and len({d.get("event", {}).get("id") or d["metadata"]["uid"] for d in docs}) == 30
    if dataset:
        assert {d["event"]["dataset"] for d in docs} == {dataset}
    else:
        assert {d["class_uid"] for d in docs} == {3002}
    assert f"--stream {stream}" in err.getvalue()
