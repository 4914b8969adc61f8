"""configs/elasticsearch (issue 10, section 7): the index template composes the mappings into the data
stream, allows auto-creation as Elastic's built-in logs template does, and runs a final pipeline
that sets event.ingested; every field the program emits is mapped."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from agent_configs import ES_COMPONENT, ES_INDEX_TEMPLATE, emitted_lines

ES = ES_INDEX_TEMPLATE.parent
PIPELINE = ES / "zoom-oplog-shipper-event-ingested.json"
DATA = Path(__file__).parent / "data"


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def emitted() -> list[dict[str, Any]]:
    return [json.loads(line) for line in emitted_lines("ecs")]


def index_template_matches(name: str) -> bool:
    template = load(ES_INDEX_TEMPLATE)
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


def test_index_template_composes_the_zoom_mappings_into_the_data_stream() -> None:
    template = load(ES_INDEX_TEMPLATE)
    assert template["data_stream"] == {}
    assert template["priority"] > 100  # above Elastic's built-in logs-*-* template
    assert ES_COMPONENT.stem in template["composed_of"]
    assert "ecs@mappings" in template["composed_of"]
    assert set(template["ignore_missing_component_templates"]) <= {c for c in template["composed_of"] if "@custom" in c}
    assert index_template_matches("logs-zoom.operation-default")


def test_index_template_allows_auto_create_like_the_builtin_logs_template() -> None:
    # elastic/elasticsearch logs@template.json sets it; without it a restricted
    # action.auto_create_index refuses to create the data stream on the first write.
    assert load(ES_INDEX_TEMPLATE)["allow_auto_create"] is True


def test_index_template_runs_the_shipped_pipeline_last() -> None:
    settings = load(ES_INDEX_TEMPLATE)["template"]["settings"]["index"]
    # A final pipeline: logs@settings keeps its own default_pipeline, and a request cannot skip it.
    assert "default_pipeline" not in settings
    assert settings["final_pipeline"] == PIPELINE.stem


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


def test_pipeline_sets_event_ingested_to_the_ingest_time(emitted: list[dict[str, Any]]) -> None:
    pipeline = load(PIPELINE)
    now = datetime(2026, 11, 30, 12, 0, 1, 250000, tzinfo=UTC)
    for doc in emitted[:5]:
        forged = {**doc, "event": {**doc["event"], "ingested": "1999-01-01T00:00:00Z"}}
        out = simulate(pipeline, forged, now)
        assert datetime.fromisoformat(out["event"]["ingested"].replace("Z", "+00:00")) == now
        # Nothing else changes: @timestamp stays the event's time.
        del out["event"]["ingested"]
        assert out == doc
    assert any("on_failure_message" in json.dumps(h) for h in pipeline["on_failure"])


def test_event_ingested_is_mapped_as_a_date() -> None:
    properties = load(ES_COMPONENT)["template"]["mappings"]["properties"]
    assert mapped(properties, "event.ingested") == {
        "type": "date",
        "format": "strict_date_time_no_millis||strict_date_optional_time||epoch_millis",
    }


def ecs_fields() -> set[str]:
    names: set[str] = set()
    for name in ("ecs_fields.json", "ecs_fields_detail.json"):
        names |= set(load(DATA / name)["fields"])
    return names


def test_every_emitted_field_is_mapped(emitted: list[dict[str, Any]]) -> None:
    properties = load(ES_COMPONENT)["template"]["mappings"]["properties"]
    assert set(properties) == {"zoom", "event"}  # the other ECS fields come from ecs@mappings
    fields = {leaf for doc in emitted for leaf in leaves(doc)}
    zoom_fields = {f for f in fields if f.startswith("zoom.")}
    assert {"zoom.operation.action", "zoom.operation.operation_detail"} <= zoom_fields
    for leaf in sorted(zoom_fields):
        mapping = mapped(properties, leaf)
        assert mapping is not None, f"{leaf} is not mapped in {ES_COMPONENT.name}"
        assert mapping["type"] == "keyword"
        assert mapping["ignore_above"] <= 8191  # Lucene's term limit is 32766 bytes
    # Everything else is an ECS field, which ecs@mappings maps.
    assert fields - zoom_fields <= ecs_fields(), sorted(fields - zoom_fields - ecs_fields())
