"""configs/elasticsearch (issue 10, section 7; issue 11): per stream (operations, activities) an index
template composes the mappings into the stream's data stream, allows auto-creation as Elastic's
built-in logs template does, and runs a final pipeline that sets event.ingested; every field the
program emits on either stream is mapped."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from agent_configs import ACTIVITIES, DATA_STREAMS, DATASETS, ES_INDEX_TEMPLATE, ES_TEMPLATES, OPERATIONS, emitted_lines

ES = ES_INDEX_TEMPLATE.parent
PIPELINE = ES / "zoom-oplog-shipper-event-ingested.json"
DATA = Path(__file__).parent / "data"


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


STREAMS = (OPERATIONS, ACTIVITIES)


@pytest.fixture(scope="module")
def emitted_by_stream() -> dict[str, list[dict[str, Any]]]:
    return {stream: [json.loads(line) for line in emitted_lines("ecs", stream)] for stream in STREAMS}


def index_template_matches(template_path: Path, name: str) -> bool:
    template = load(template_path)
    return any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), name) for p in template["index_patterns"])


def leaves(doc: Any, path: str = "") -> Iterator[str]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(doc, list):
        for v in doc:
            yield from leaves(v, path)
    else:
        yield path


def mapped(properties: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = {"properties": properties}
    for part in path.split("."):
        node = (node or {}).get("properties", {}).get(part)
    return node


@pytest.mark.parametrize("stream", STREAMS)
def test_index_template_composes_the_zoom_mappings_into_the_data_stream(stream: str) -> None:
    template_path, component = ES_TEMPLATES[stream]
    template = load(template_path)
    assert template_path.stem == f"logs-{DATASETS[stream]}"
    assert template["data_stream"] == {}
    assert template["priority"] > 100  # above Elastic's built-in logs-*-* template
    assert component.stem == f"{DATASETS[stream]}@mappings"
    assert component.stem in template["composed_of"]
    assert "ecs@mappings" in template["composed_of"]
    assert f"logs-{DATASETS[stream]}@custom" in template["composed_of"]
    assert set(template["ignore_missing_component_templates"]) <= {c for c in template["composed_of"] if "@custom" in c}
    # Each stream's data stream matches its own template and no other.
    for other in STREAMS:
        assert index_template_matches(template_path, DATA_STREAMS[other]) is (other == stream)


@pytest.mark.parametrize("stream", STREAMS)
def test_index_template_allows_auto_create_like_the_builtin_logs_template(stream: str) -> None:
    # elastic/elasticsearch logs@template.json sets it; without it a restricted
    # action.auto_create_index refuses to create the data stream on the first write.
    assert load(ES_TEMPLATES[stream][0])["allow_auto_create"] is True


@pytest.mark.parametrize("stream", STREAMS)
def test_index_template_runs_the_shipped_pipeline_last(stream: str) -> None:
    settings = load(ES_TEMPLATES[stream][0])["template"]["settings"]["index"]
    # A final pipeline: logs@settings keeps its own default_pipeline, and a request cannot skip it.
    assert "default_pipeline" not in settings
    assert settings["final_pipeline"] == PIPELINE.stem


def test_the_templates_differ_only_in_the_stream() -> None:
    operation, activity = (load(ES_TEMPLATES[s][0]) for s in STREAMS)
    for template in (operation, activity):
        del template["_meta"]
    assert json.loads(json.dumps(activity).replace("zoom.activity", "zoom.operation")) == operation


def render(template: str, ingest: dict[str, str]) -> str:
    """Mustache as the set processor applies it, for the {{{_ingest.*}}} form the pipeline uses."""
    return re.sub(r"\{\{\{?\s*_ingest\.(\w+)\s*\}?\}\}", lambda m: ingest[m.group(1)], template)


def simulate(pipeline: dict[str, Any], doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The pipeline's processors on one document (only the processors the shipped pipeline uses)."""
    ingest = {"timestamp": now.isoformat().replace("+00:00", "Z")}
    doc = json.loads(json.dumps(doc))
    for processor in pipeline["processors"]:
        ((kind, spec),) = processor.items()
        assert kind == "set", f"the test does not know the {kind} processor"
        *parents, leaf = spec["field"].split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        if spec.get("override", True) or leaf not in node:
            node[leaf] = render(spec["value"], ingest)
    return doc


def test_pipeline_sets_event_ingested_to_the_ingest_time(emitted_by_stream: dict[str, list[dict[str, Any]]]) -> None:
    pipeline = load(PIPELINE)
    now = datetime(2026, 11, 30, 12, 0, 1, 250000, tzinfo=UTC)
    for doc in emitted_by_stream[OPERATIONS][:5] + emitted_by_stream[ACTIVITIES][:5]:
        forged = {**doc, "event": {**doc["event"], "ingested": "1999-01-01T00:00:00Z"}}
        out = simulate(pipeline, forged, now)
        assert datetime.fromisoformat(out["event"]["ingested"].replace("Z", "+00:00")) == now
        # Nothing else changes: @timestamp stays the event's time.
        del out["event"]["ingested"]
        assert out == doc
    assert any("on_failure_message" in json.dumps(h) for h in pipeline["on_failure"])


@pytest.mark.parametrize("stream", STREAMS)
def test_event_ingested_is_mapped_as_a_date(stream: str) -> None:
    properties = load(ES_TEMPLATES[stream][1])["template"]["mappings"]["properties"]
    assert mapped(properties, "event.ingested") == {
        "type": "date",
        "format": "strict_date_time_no_millis||strict_date_optional_time||epoch_millis",
    }


def ecs_fields() -> set[str]:
    names: set[str] = set()
    for name in ("ecs_fields.json", "ecs_fields_detail.json"):
        names |= set(load(DATA / name)["fields"])
    return names


#: zoom.* fields each stream must emit in the test data (so that the mapping test sees them).
EXPECTED_ZOOM_FIELDS = {
    OPERATIONS: {"zoom.operation.action", "zoom.operation.operation_detail"},
    ACTIVITIES: {f"zoom.activity.{name}" for name in ("email", "type", "ip_address", "client_type", "version")},
}


@pytest.mark.parametrize("stream", STREAMS)
def test_every_emitted_field_is_mapped(stream: str, emitted_by_stream: dict[str, list[dict[str, Any]]]) -> None:
    component = ES_TEMPLATES[stream][1]
    properties = load(component)["template"]["mappings"]["properties"]
    assert set(properties) == {"zoom", "event"}  # the other ECS fields come from ecs@mappings
    # Each component maps its own stream's fields (two templates never map one field twice).
    others = {DATASETS[s].removeprefix("zoom.") for s in STREAMS if s != stream}
    assert DATASETS[stream].removeprefix("zoom.") in properties["zoom"]["properties"]
    assert not others & set(properties["zoom"]["properties"])
    docs = emitted_by_stream[stream]
    assert {d["data_stream"]["dataset"] for d in docs} == {DATASETS[stream]}
    fields = {leaf for doc in docs for leaf in leaves(doc)}
    zoom_fields = {f for f in fields if f.startswith("zoom.")}
    assert EXPECTED_ZOOM_FIELDS[stream] <= zoom_fields
    for leaf in sorted(zoom_fields):
        mapping = mapped(properties, leaf)
        assert mapping is not None, f"{leaf} is not mapped in {component.name}"
        assert mapping["type"] == "keyword"
        assert mapping["ignore_above"] <= 8191  # Lucene's term limit is 32766 bytes
    # Everything else is an ECS field, which ecs@mappings maps.
    assert fields - zoom_fields <= ecs_fields(), sorted(fields - zoom_fields - ecs_fields())


def test_an_activity_address_that_is_not_one_fits_its_keyword_mapping(
    emitted_by_stream: dict[str, list[dict[str, Any]]],
) -> None:
    # "unknown" would be refused by an ip field (and the whole document with it).
    properties = load(ES_TEMPLATES[ACTIVITIES][1])["template"]["mappings"]["properties"]
    assert mapped(properties, "zoom.activity.ip_address") == {"type": "keyword", "ignore_above": 1024}
    docs = emitted_by_stream[ACTIVITIES]
    odd = [d for d in docs if d["zoom"]["activity"].get("ip_address") == "unknown"]
    assert odd and all("source" not in d and "ip" not in d.get("related", {}) for d in odd)
    assert any(":" in d["source"]["ip"] for d in docs if "source" in d)  # IPv6 goes to source.ip
