"""configs/elasticsearch (issue 10, section 7; issue 11; issue 15, part 8): per stream (operations,
activities) an index template composes the mappings into the stream's data stream, allows
auto-creation as Elastic's built-in logs template does, and runs a final pipeline that sets
event.ingested, and for the activity logs also looks up the GeoIP and ASN of source.ip; every field
the program emits on either stream, and every field the pipelines write, is mapped."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from agent_configs import ACTIVITIES, DATA_STREAMS, DATASETS, ES_INDEX_TEMPLATE, ES_TEMPLATES, OPERATIONS, emitted_lines

ES = ES_INDEX_TEMPLATE.parent
PIPELINE = ES / "zoom-oplog-shipper-event-ingested.json"
ACTIVITY_PIPELINE = ES / "zoom-oplog-shipper-activity.json"
#: The final pipeline of each stream's index template.
FINAL_PIPELINES = {OPERATIONS: PIPELINE, ACTIVITIES: ACTIVITY_PIPELINE}
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
    assert settings["final_pipeline"] == FINAL_PIPELINES[stream].stem


def test_the_templates_differ_only_in_the_stream_and_its_final_pipeline() -> None:
    operation, activity = (load(ES_TEMPLATES[s][0]) for s in STREAMS)
    for template in (operation, activity):
        del template["_meta"]
        del template["template"]["settings"]["index"]["final_pipeline"]
    assert json.loads(json.dumps(activity).replace("zoom.activity", "zoom.operation")) == operation


def render(template: str, ingest: dict[str, str]) -> str:
    """Mustache as the set processor applies it, for the {{{_ingest.*}}} form the pipeline uses."""
    return re.sub(r"\{\{\{?\s*_ingest\.(\w+)\s*\}?\}\}", lambda m: ingest[m.group(1)], template)


#: Stand-ins for the GeoLite2 databases Elasticsearch downloads: what a lookup of an address it
#: knows returns, per property (GeoIpProcessor: each requested property the record has).
CITY_RECORD: dict[str, Any] = {
    "continent_name": "Europe",
    "country_iso_code": "DE",
    "country_name": "Germany",
    "region_iso_code": "DE-BE",
    "region_name": "Land Berlin",
    "city_name": "Berlin",
    "timezone": "Europe/Berlin",
    "location": {"lat": 52.5196, "lon": 13.4069},
}
ASN_RECORD: dict[str, Any] = {"asn": 3320, "organization_name": "Deutsche Telekom AG", "network": "80.128.0.0/11"}


@dataclass(frozen=True)
class GeoDatabases:
    """The addresses the stand-in databases know (an unknown one, like a private address, gets nothing)."""

    known: frozenset[str]

    def lookup(self, database_file: str, address: str) -> dict[str, Any] | None:
        if address not in self.known:
            return None
        return {"-City.mmdb": CITY_RECORD, "-ASN.mmdb": ASN_RECORD}[database_file[database_file.rindex("-") :]]


def _node(doc: dict[str, Any], path: str, create: bool = False) -> tuple[dict[str, Any] | None, str]:
    """The object holding the last part of a dotted path, and that part."""
    *parents, leaf = path.split(".")
    node: Any = doc
    for part in parents:
        if not isinstance(node, dict) or (part not in node and not create):
            return None, leaf
        node = node.setdefault(part, {})
    return node, leaf


def _condition_holds(condition: str | None, doc: dict[str, Any]) -> bool:
    """The one Painless form the shipped pipelines use: ``ctx.a?.b != null``."""
    if condition is None:
        return True
    match = re.fullmatch(r"ctx\.([\w?.]+) != null", condition)
    assert match, f"the test does not evaluate {condition!r}"
    node, leaf = _node(doc, match.group(1).replace("?", ""))
    return node is not None and node.get(leaf) is not None


def _run_processor(kind: str, spec: dict[str, Any], doc: dict[str, Any], run: Callable[..., Any]) -> None:
    """One processor of the kinds the shipped pipelines use, as Elasticsearch applies it."""
    if kind == "set":
        node, leaf = _node(doc, spec["field"], create=True)
        assert node is not None
        if spec.get("override", True) or leaf not in node:
            node[leaf] = run("render", spec["value"])
    elif kind == "pipeline":
        run("pipeline", spec["name"])
    elif kind == "geoip":
        node, leaf = _node(doc, spec["field"])
        address = node.get(leaf) if node else None
        if address is None:
            assert spec.get("ignore_missing", False), f"{spec['field']} missing"
            return
        record = run("lookup", spec["database_file"], address)
        found = {p: record[p] for p in spec["properties"] if record and p in record}
        if found:  # nothing is written for an address the database does not know
            target, name = _node(doc, spec["target_field"], create=True)
            assert target is not None
            target[name] = found
    elif kind == "rename":
        node, leaf = _node(doc, spec["field"])
        if node is None or leaf not in node:
            assert spec.get("ignore_missing", False), f"{spec['field']} missing"
            return
        value = node.pop(leaf)
        target, name = _node(doc, spec["target_field"], create=True)
        assert target is not None and name not in target
        target[name] = value
    else:
        pytest.fail(f"the test does not know the {kind} processor")


def simulate(
    pipeline: dict[str, Any], doc: dict[str, Any], now: datetime, databases: GeoDatabases | None = None
) -> dict[str, Any]:
    """The pipeline's processors on one document, as Elasticsearch's simulate API would apply them
    (the processors and options the shipped pipelines use; a pipeline processor runs the shipped
    pipeline of that name; geoip reads the stand-in databases)."""
    ingest = {"timestamp": now.isoformat().replace("+00:00", "Z")}
    doc = json.loads(json.dumps(doc))

    def run(what: str, *args: Any) -> Any:
        if what == "render":
            return render(args[0], ingest)
        if what == "pipeline":
            result = simulate(load(ES / f"{args[0]}.json"), doc, now, databases)
            doc.clear()
            doc.update(result)
            return None
        assert databases is not None, "a geoip processor needs the stand-in databases"
        return databases.lookup(*args)

    for processor in pipeline["processors"]:
        ((kind, spec),) = processor.items()
        if _condition_holds(spec.get("if"), doc):
            _run_processor(kind, spec, doc, run)
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
    # The other ECS fields come from ecs@mappings; source.* (activities) is what the pipeline's
    # GeoIP and ASN lookups write (test_every_field_the_activity_pipeline_writes_is_mapped).
    assert set(properties) == {"zoom", "event"} | ({"source"} if stream == ACTIVITIES else set())
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


# ---------------------------------------------------------------------------------------------
# The activity logs' final pipeline: GeoIP and ASN of source.ip (issue 15, part 8).

#: Options of each processor the shipped pipelines use (Elasticsearch's ingest processor
#: reference), those every processor takes, and the ones each requires.
PROCESSOR_OPTIONS = {
    "set": {"field", "value", "copy_from", "override", "ignore_empty_value", "media_type"},
    "append": {"field", "value", "allow_duplicates", "media_type"},
    "rename": {"field", "target_field", "ignore_missing", "override"},
    "pipeline": {"name", "ignore_missing_pipeline"},
    "geoip": {
        "field",
        "target_field",
        "database_file",
        "properties",
        "ignore_missing",
        "first_only",
        "download_database_on_pipeline_creation",
    },
}
COMMON_OPTIONS = {"tag", "description", "if", "ignore_failure", "on_failure"}
REQUIRED_OPTIONS = {
    "set": {"field"},
    "append": {"field", "value"},
    "rename": {"field", "target_field"},
    "pipeline": {"name"},
    "geoip": {"field"},
}
#: The properties each GeoLite2 database type offers (elastic/elasticsearch modules/ingest-geoip
#: Database.java: City and Asn), by the database file's suffix.
GEOIP_PROPERTIES = {
    "-City.mmdb": {
        "ip",
        "country_iso_code",
        "country_name",
        "continent_name",
        "region_iso_code",
        "region_name",
        "city_name",
        "timezone",
        "location",
    },
    "-ASN.mmdb": {"ip", "asn", "organization_name", "network"},
}
#: What the "dash" dashboards and a map read: the ECS names the pipeline must fill.
GEO_FIELDS_USED = {
    "source.geo.location",
    "source.geo.country_iso_code",
    "source.geo.country_name",
    "source.geo.region_name",
    "source.geo.city_name",
    "source.geo.continent_name",
    "source.as.number",
    "source.as.organization.name",
}
ECS_SOURCE_GEO_AS = load(DATA / "ecs_source_geo_as.json")["fields"]


@pytest.mark.parametrize("path", [PIPELINE, ACTIVITY_PIPELINE], ids=lambda p: p.stem)
def test_pipeline_processors_are_well_formed(path: Path) -> None:
    pipeline = load(path)
    tags = []
    for processor in [*pipeline["processors"], *pipeline["on_failure"]]:
        ((kind, spec),) = processor.items()
        assert kind in PROCESSOR_OPTIONS, kind
        assert set(spec) <= PROCESSOR_OPTIONS[kind] | COMMON_OPTIONS, (kind, set(spec))
        assert REQUIRED_OPTIONS[kind] <= set(spec), kind
        tags += [spec["tag"]] if "tag" in spec else []
        if kind == "pipeline":
            assert (ES / f"{spec['name']}.json").is_file(), spec["name"]
        if kind == "geoip":
            suffix = spec["database_file"][spec["database_file"].rindex("-") :]
            assert set(spec["properties"]) <= GEOIP_PROPERTIES[suffix], spec["properties"]
            assert spec["ignore_missing"] is True  # most events without an address pass through
    assert len(tags) == len(set(tags))
    assert any("on_failure_message" in json.dumps(h) for h in pipeline["on_failure"])


def test_activity_pipeline_sets_event_ingested_before_any_lookup() -> None:
    # A failing lookup ends the pipeline in on_failure: event.ingested must be set already.
    (first, *rest) = load(ACTIVITY_PIPELINE)["processors"]
    assert first == {
        "pipeline": {
            "tag": "event-ingested",
            "description": first["pipeline"]["description"],
            "name": PIPELINE.stem,
        }
    }
    assert all("pipeline" not in processor for processor in rest)


def test_activity_pipeline_looks_up_source_ip_like_elastics_zoom_integration() -> None:
    # elastic/integrations packages/zoom/data_stream/activity/elasticsearch/ingest_pipeline/default.yml:
    # geoip of source.ip into source.geo, geoip with GeoLite2-ASN.mmdb into source.as, then
    # source.as.asn -> source.as.number and source.as.organization_name -> source.as.organization.name.
    geoips = [p["geoip"] for p in load(ACTIVITY_PIPELINE)["processors"] if "geoip" in p]
    assert [(g["field"], g["target_field"], g["database_file"]) for g in geoips] == [
        ("source.ip", "source.geo", "GeoLite2-City.mmdb"),
        ("source.ip", "source.as", "GeoLite2-ASN.mmdb"),
    ]
    renames = [p["rename"] for p in load(ACTIVITY_PIPELINE)["processors"] if "rename" in p]
    assert {(r["field"], r["target_field"]) for r in renames} == {
        ("source.as.asn", "source.as.number"),
        ("source.as.organization_name", "source.as.organization.name"),
    }


def _written(before: Any, after: Any, path: str = "") -> set[str]:
    """The leaf fields ``after`` has that ``before`` has not (a geo point {lat, lon} is one leaf)."""
    if isinstance(after, dict) and set(after) != {"lat", "lon"}:
        before = before if isinstance(before, dict) else {}
        return {leaf for k, v in after.items() for leaf in _written(before.get(k), v, f"{path}.{k}" if path else k)}
    return set() if before == after else {path}


@pytest.fixture(scope="module")
def enriched(emitted_by_stream: dict[str, list[dict[str, Any]]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(event, what Elasticsearch stores) for every activity event, through the activity pipeline;
    the stand-in databases know every address but the first (as a private address is unknown)."""
    docs = emitted_by_stream[ACTIVITIES]
    addresses = sorted({d["source"]["ip"] for d in docs if "source" in d})
    assert any(":" in a for a in addresses) and len(addresses) > 2  # IPv6 too
    databases = GeoDatabases(frozenset(addresses[1:]))
    now = datetime(2026, 11, 30, 12, 0, 1, 250000, tzinfo=UTC)
    return [(doc, simulate(load(ACTIVITY_PIPELINE), doc, now, databases)) for doc in docs]


def test_activity_pipeline_adds_where_each_address_is(enriched: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    unknown = min(d["source"]["ip"] for d, _ in enriched if "source" in d)
    for doc, out in enriched:
        written = _written(doc, out)
        assert "event.ingested" in written
        if "source" not in doc or doc["source"]["ip"] == unknown:
            # No address ("unknown" from Zoom), or one the databases do not know: nothing but event.ingested.
            assert written == {"event.ingested"}, written
            continue
        assert written >= GEO_FIELDS_USED
        assert out["source"]["geo"]["location"] == CITY_RECORD["location"]
        assert out["source"]["as"] == {"number": 3320, "organization": {"name": "Deutsche Telekom AG"}}
        assert out["source"]["ip"] == doc["source"]["ip"]  # the address itself stays
        # Nothing else changes.
        rest = json.loads(json.dumps(out))
        del rest["event"]["ingested"]
        del rest["source"]["geo"], rest["source"]["as"]
        assert rest == doc


def test_every_field_the_activity_pipeline_writes_is_mapped_with_its_ecs_type(
    enriched: list[tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    properties = load(ES_TEMPLATES[ACTIVITIES][1])["template"]["mappings"]["properties"]
    written = set().union(*(_written(doc, out) for doc, out in enriched)) - {"event.ingested"}
    assert written >= GEO_FIELDS_USED
    for field in sorted(written):
        mapping = mapped(properties, field)
        assert mapping is not None, f"{field} is written by the pipeline and not mapped"
        ecs = ECS_SOURCE_GEO_AS[field]
        assert mapping["type"] == ecs["type"], field
        assert mapping.get("ignore_above") == ecs.get("ignore_above"), field
        multi = {name: spec["type"] for name, spec in mapping.get("fields", {}).items()}
        assert multi == {m["name"]: m["type"] for m in ecs.get("multi_fields", [])}, field
    # And nothing is mapped under source.* that the pipeline does not write.
    assert {f"source.{leaf}" for leaf in leaves_of_mapping(properties["source"])} == written


def leaves_of_mapping(node: dict[str, Any], path: str = "") -> set[str]:
    """The dotted names of a mapping's fields (objects are walked, not counted)."""
    found: set[str] = set()
    for name, child in node["properties"].items():
        child_path = f"{path}.{name}" if path else name
        found |= leaves_of_mapping(child, child_path) if "properties" in child else {child_path}
    return found


def test_the_operation_logs_get_no_lookup() -> None:
    # Operation log events carry no source address: their final pipeline only sets event.ingested.
    assert load(ES_TEMPLATES[OPERATIONS][0])["template"]["settings"]["index"]["final_pipeline"] == PIPELINE.stem
    assert "geoip" not in json.dumps(load(PIPELINE))
