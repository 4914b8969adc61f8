"""dashboards/ (issue 17): the Kibana, Splunk Dashboard Studio and Grafana (Loki) dashboards.

Each file is read as its importer reads it (NDJSON saved objects; a Studio definition and its
data/ui/views XML; a Grafana dashboard model), every field and label each panel uses is taken out
of its query language (KQL and Lens columns, SPL, LogQL), and each must exist where that backend
finds it:

- Kibana: mapped by the shipped templates (the zoom.* component of the panel's stream, or an ECS
  field, which ecs@mappings maps) AND printed by the program for that stream; a GeoIP field is one
  the shipped activity ingest pipeline writes when GeoIP is on, mapped by the activity template;
- Splunk: a field the program prints for the search's sourcetype (arrays as ``field{}``, as
  KV_MODE=json names them), or one props.conf calculates for that sourcetype (CIM);
- Loki: a stream label every shipped Loki sink sets for that stream, or a field ``| json``
  extracts from the printed line (a path the line has; ``| json`` alone flattens nested keys with
  ``_`` and skips arrays).

The program's output is the real pipeline run against the simulator (agent_configs.emitted_lines).
A misspelt name in any backend fails the check: see the parametrized negative cases at the end.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from agent_configs import (
    ACTIVITIES,
    CONFIGS,
    DATASETS,
    ES_TEMPLATES,
    FLUENT_BIT_CONF,
    FLUENT_BIT_YAML,
    OPERATIONS,
    ROOT,
    SOURCETYPES,
    SPLUNK_INPUTS,
    SPLUNK_PROPS,
    VECTOR_YAML,
    emitted_lines,
    fluent_bit_pipeline,
    ini_value,
    read_ini,
    read_vector,
)

vrl_python = pytest.importorskip("vrl_python", reason="pip install -e '.[test]' (vrl-python)")

DASHBOARDS = ROOT / "dashboards"
KIBANA = DASHBOARDS / "kibana" / "zoom-oplog-shipper.ndjson"
SPLUNK_JSON = DASHBOARDS / "splunk" / "zoom_oplog_shipper.json"
SPLUNK_XML = DASHBOARDS / "splunk" / "zoom_oplog_shipper.xml"
GRAFANA = DASHBOARDS / "grafana" / "zoom-oplog-shipper-loki.json"
DOC = ROOT / "docs" / "dashboards.md"
DATA = Path(__file__).parent / "data"
STREAMS = (OPERATIONS, ACTIVITIES)

ACTIVITY_PIPELINE = CONFIGS / "elasticsearch" / "zoom-oplog-shipper-activity.json"


def pipeline_written_fields(pipeline: dict[str, Any]) -> set[str]:
    """The fields the activity ingest pipeline's GeoIP/ASN lookups write, after its renames."""
    written: set[str] = set()
    for processor in pipeline["processors"]:
        (kind, spec), *_ = processor.items()
        if kind == "geoip":
            written |= {f"{spec['target_field']}.{name}" for name in spec["properties"]}
        elif kind == "rename" and spec["field"] in written:
            written = (written - {spec["field"]}) | {spec["target_field"]}
    return written


def test_the_geoip_fields_are_what_the_activity_pipeline_writes_with_their_ecs_types() -> None:
    assert geoip_fields() == {
        "source.geo.location": "geo_point",
        "source.geo.continent_name": "keyword",
        "source.geo.country_iso_code": "keyword",
        "source.geo.country_name": "keyword",
        "source.geo.region_iso_code": "keyword",
        "source.geo.region_name": "keyword",
        "source.geo.city_name": "keyword",
        "source.as.number": "long",
        "source.as.organization.name": "keyword",
    }


def geoip_fields() -> dict[str, str]:
    """Written by the activity ingest pipeline when GeoIP is on (not printed by the program), with
    the types the shipped activity mappings give them; a field the mappings lack has no type."""
    activity = json.loads(ES_TEMPLATES[ACTIVITIES][1].read_text())["template"]["mappings"]["properties"]
    types = dict(mapped_fields(activity))
    written = pipeline_written_fields(json.loads(ACTIVITY_PIPELINE.read_text()))
    return {name: types.get(name, "unmapped") for name in written}


#: Field types a terms or date_histogram aggregation accepts (a text field would fail the panel).
AGGREGATABLE = frozenset({"keyword", "constant_keyword", "ip", "date", "long", "integer", "boolean"})
#: Fields Splunk gives every event.
SPLUNK_DEFAULT_FIELDS = frozenset({"_time", "_raw", "index", "sourcetype", "source", "host", "eventtype"})


# ---------------------------------------------------------------------------------------------
# What exists: the program's real output, the shipped mappings, props.conf and the Loki sinks.


def field_names(doc: Any, array: str = "", path: str = "") -> Iterator[str]:
    """Dotted paths of every value; a list's items get its path plus ``array``: "" as
    Elasticsearch maps them, "{}" as Splunk's KV_MODE=json names them (``tags{}``)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from field_names(value, array, f"{path}.{key}" if path else key)
    elif isinstance(doc, list):
        for value in doc:
            yield from field_names(value, array, path + array)
    else:
        yield path


def loki_paths(doc: Any, path: str = "") -> Iterator[tuple[str, bool]]:
    """(path, is a scalar) for every value ``| json label="path"`` can reach: scalars and whole
    arrays (a path does not descend into an array without an index)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from loki_paths(value, f"{path}.{key}" if path else key)
    else:
        yield path, not isinstance(doc, list)


def loki_flat_name(path: str) -> str:
    """The label ``| json`` without parameters gives a nested key (Loki's appendSanitized): keys
    joined with ``_``, every character but [A-Za-z0-9_] made ``_``, a key starting with a digit
    prefixed with ``_``."""
    keys = [re.sub(r"[^A-Za-z0-9_]", "_", key) for key in path.split(".")]
    return "_".join(f"_{key}" if key[:1].isdigit() else key for key in keys)


@dataclass
class Universe:
    """Everything a panel of one stream may use, per backend."""

    printed: set[str]  # ECS dotted paths the program printed
    mapped: dict[str, str]  # field -> type, from the shipped templates
    splunk: set[str]  # Splunk field names: printed (with {}) and props.conf's calculated fields
    loki_paths: set[str]  # JSON paths a | json parameter may name
    loki_flat: set[str]  # labels | json alone extracts
    loki_labels: list[tuple[str, dict[str, str]]]  # (config, labels) of every shipped Loki sink


def mapped_fields(properties: dict[str, Any], path: str = "") -> Iterator[tuple[str, str]]:
    for name, spec in properties.items():
        full = f"{path}.{name}" if path else name
        if "properties" in spec:
            yield from mapped_fields(spec["properties"], full)
        else:
            yield full, spec["type"]


def ecs_fields() -> dict[str, str]:
    """ECS 9.4.0 fields (the excerpt the mapping tests use), which ecs@mappings maps, with types."""
    found: dict[str, str] = {}
    for name in ("ecs_fields.json", "ecs_fields_detail.json"):
        found |= {f: spec["type"] for f, spec in json.loads((DATA / name).read_text())["fields"].items()}
    return found


def props_fields(sourcetype: str) -> set[str]:
    """Fields props.conf calculates or aliases at search time for the sourcetype."""
    names = set()
    for key, value in read_ini(SPLUNK_PROPS)[sourcetype]:
        if key.startswith("EVAL-"):
            names.add(key.removeprefix("EVAL-"))
        elif key.startswith("FIELDALIAS-"):
            names |= {m[1] for m in re.finditer(r"\bAS\s+(\S+)", value, re.IGNORECASE)}
    return names


def vector_loki_labels(event: dict[str, Any]) -> dict[str, str]:
    """The labels the Vector Loki sink gives this event: its templates rendered with the metadata
    the real VRL program zoom_oplog_clean sets (%zoom_stream)."""
    config = read_vector(VECTOR_YAML)
    (sink,) = [s for s in config["sinks"].values() if s["type"] == "loki"]
    program = config["transforms"]["zoom_oplog_clean"]["source"]
    metadata = vrl_python.VRLRuntime().execute(f"{program}\n%", dict(event)).runtime_result
    labels = {}
    for name, template in sink["labels"].items():
        labels[name] = re.sub(r"\{\{\s*%(\w+)\s*\}\}", lambda m: str(metadata[m[1]]), str(template))
    return labels


def fluent_bit_loki_labels(path: Path, stream: str) -> dict[str, str]:
    """The labels of the loki output that receives the stream's input (by tag)."""
    inputs, outputs, _ = fluent_bit_pipeline(path)
    tags = [i["tag"] for i in inputs if ("--stream activities" in i["command"]) == (stream == ACTIVITIES)]
    (output,) = [o for o in outputs if o["name"] == "loki" and any(fnmatch.fnmatch(t, o["match"]) for t in tags)]
    return dict(pair.strip().split("=", 1) for pair in output["labels"].split(","))


@pytest.fixture(scope="module")
def universes() -> dict[str, Universe]:
    ecs = ecs_fields()
    found = {}
    for stream in STREAMS:
        docs = [json.loads(line) for line in emitted_lines("ecs", stream)]
        component = json.loads(ES_TEMPLATES[stream][1].read_text())["template"]["mappings"]["properties"]
        paths = {p for doc in docs for p in loki_paths(doc)}
        loki_labels = [(str(VECTOR_YAML.relative_to(CONFIGS)), vector_loki_labels(docs[0]))]
        loki_labels += [
            (str(p.relative_to(CONFIGS)), fluent_bit_loki_labels(p, stream)) for p in (FLUENT_BIT_YAML, FLUENT_BIT_CONF)
        ]
        found[stream] = Universe(
            printed={p for doc in docs for p in field_names(doc)},
            mapped=ecs | dict(mapped_fields(component)),
            splunk={n for doc in docs for n in field_names(doc, "{}")} | props_fields(SOURCETYPES[stream]),
            loki_paths={p for p, _ in paths},
            loki_flat={loki_flat_name(p) for p, scalar in paths if scalar},
            loki_labels=loki_labels,
        )
    return found


def test_the_shipped_loki_sinks_label_each_stream_by_its_dataset(universes: dict[str, Universe]) -> None:
    # The Grafana check below rests on this: every sink sets job and dataset, dataset names the stream.
    for stream in STREAMS:
        for config, labels in universes[stream].loki_labels:
            assert labels == {"job": "zoom-oplog-shipper", "dataset": DATASETS[stream]}, config


# ---------------------------------------------------------------------------------------------
# KQL (Kibana's query language): the field of every clause.

KQL_TOKEN = re.compile(r'\s*(?:(?P<quoted>"(?:[^"\\]|\\.)*")|(?P<op>[():])|(?P<word>[^\s():"]+))')


def kql_fields(query: str) -> set[str]:
    """The fields a KQL query names. Only ``[not] field : value`` clauses joined with and/or and
    parentheses are read; anything else is an error (so that no field goes unchecked)."""
    tokens = []
    pos = 0
    while pos < len(query.rstrip()):
        match = KQL_TOKEN.match(query, pos)
        if not match or match.end() == pos:
            raise ValueError(f"KQL not understood at {query[pos:]!r}")
        tokens.append(match[0].strip())
        pos = match.end()
    fields: set[str] = set()
    i = 0
    expect_clause = True
    while i < len(tokens):
        token = tokens[i]
        if token in ("(", ")") or (expect_clause and token.lower() == "not"):
            i += 1
        elif expect_clause:
            if i + 2 >= len(tokens) or tokens[i + 1] != ":" or tokens[i + 2] in ("(", ")", ":"):
                raise ValueError(f"KQL clause not understood at {' '.join(tokens[i:])!r}")
            fields.add(token)
            i += 3
            expect_clause = False
        elif token.lower() in ("and", "or"):
            i += 1
            expect_clause = True
        else:
            raise ValueError(f"KQL: {token!r} where and/or was expected")
    if expect_clause and tokens:
        raise ValueError(f"KQL ends without a clause: {query!r}")
    return fields


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("", set()),
        ('tags : "security-control-disabled"', {"tags"}),
        ('event.action : "sign-in" and user.changes.roles : *', {"event.action", "user.changes.roles"}),
        ('not (a.b : x or c : "y z")', {"a.b", "c"}),
    ],
)
def test_kql_fields(query: str, fields: set[str]) -> None:
    assert kql_fields(query) == fields


@pytest.mark.parametrize("query", ["just words", "a : b c", "a :", 'a : "x" and'])
def test_kql_that_is_not_understood_is_an_error(query: str) -> None:
    with pytest.raises(ValueError):
        kql_fields(query)


# ---------------------------------------------------------------------------------------------
# Kibana: the NDJSON file as the saved objects import API reads it.


@dataclass(frozen=True)
class Use:
    """One field a panel uses: for a bucket (terms, date histogram), a geo layer, or else."""

    panel: str
    stream: str | None
    field: str
    role: str = "field"


def parse_ndjson(text: str) -> list[dict[str, Any]]:
    objects = []
    for number, line in enumerate(text.splitlines(), start=1):
        obj = json.loads(line)
        assert isinstance(obj, dict), f"line {number} is not an object"
        objects.append(obj)
    return objects


def stream_of_pattern(pattern: str) -> str | None:
    """The stream whose data stream an index pattern matches (logs-zoom.operation-* ...)."""
    matches = [s for s in STREAMS if fnmatch.fnmatchcase(f"logs-{DATASETS[s]}-default", pattern)]
    return matches[0] if len(matches) == 1 else None


def lens_uses(title: str, attributes: dict[str, Any], views: dict[str, str | None]) -> Iterator[Use]:
    refs = {r["name"]: r["id"] for r in attributes["references"]}
    state = attributes["state"]
    for layer_id, layer in state["datasourceStates"]["formBased"]["layers"].items():
        stream = views.get(refs.get(f"indexpattern-datasource-layer-{layer_id}", ""))
        for f in kql_fields(state["query"]["query"]):
            yield Use(title, stream, f)
        for f in state.get("filters", []):
            yield Use(title, stream, f["meta"]["key"])
        for column in layer["columns"].values():
            if column.get("sourceField", "___records___") != "___records___":
                yield Use(title, stream, column["sourceField"], "bucket" if column["isBucketed"] else "field")


def map_uses(
    title: str, index: str, attributes: dict[str, Any], refs: dict[str, str], views: dict[str, Any]
) -> Iterator[Use]:
    for layer in json.loads(attributes["layerListJSON"]):
        source = layer["sourceDescriptor"]
        if "indexPatternRefName" not in source:
            continue  # the base map
        stream = views.get(refs.get(f"{index}:{source['indexPatternRefName']}", ""))
        yield Use(title, stream, source["geoField"], "geo")
        for name in [*source.get("tooltipProperties", []), source.get("sortField"), source.get("topHitsSplitField")]:
            if name:
                yield Use(title, stream, name)
        for f in kql_fields(layer.get("query", {}).get("query", "")):
            yield Use(title, stream, f)


def search_uses(title: str, search: dict[str, Any], views: dict[str, Any]) -> Iterator[Use]:
    attributes = search["attributes"]
    source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    refs = {r["name"]: r["id"] for r in search["references"]}
    stream = views.get(refs.get(source.get("indexRefName", ""), ""))
    for f in [
        *attributes["columns"],
        *(s[0] for s in attributes.get("sort", [])),
        *kql_fields(source["query"]["query"]),
    ]:
        yield Use(title, stream, f)
    for f in source.get("filter", []):
        yield Use(title, stream, f["meta"]["key"])


def kibana_uses(objects: list[dict[str, Any]]) -> Iterator[Use]:
    """Every field of every dashboard panel, with the stream of the data view it reads."""
    by_id = {(o["type"], o["id"]): o for o in objects}
    views = {o["id"]: stream_of_pattern(o["attributes"]["title"]) for o in objects if o["type"] == "index-pattern"}
    for dashboard in (o for o in objects if o["type"] == "dashboard"):
        refs = {r["name"]: r["id"] for r in dashboard["references"]}
        for panel in json.loads(dashboard["attributes"]["panelsJSON"]):
            title, index, config = panel.get("title", "?"), panel["panelIndex"], panel["embeddableConfig"]
            if panel["type"] == "lens":
                yield from lens_uses(title, config["attributes"], views)
            elif panel["type"] == "map":
                yield from map_uses(title, index, config["attributes"], refs, views)
            elif panel["type"] == "search":
                search = by_id.get(("search", refs.get(f"{index}:{panel['panelRefName']}", "")))
                assert search, f"{title}: the saved search it shows is not in the file"
                yield from search_uses(title, search, views)
            else:
                raise AssertionError(f"{title}: the test does not know panels of type {panel['type']}")


def kibana_problems(text: str, universes: dict[str, Universe]) -> list[str]:
    problems = []
    geoip = geoip_fields()
    for use in kibana_uses(parse_ndjson(text)):
        where = f"Kibana panel {use.panel!r}, field {use.field}"
        if use.stream is None:
            problems.append(f"{where}: its data view matches no stream's data stream")
            continue
        if use.field in geoip:
            kind = geoip[use.field] if use.stream == ACTIVITIES else None
            if kind is None:
                problems.append(f"{where}: GeoIP runs in the activity pipeline only")
            elif kind == "unmapped":
                problems.append(f"{where}: the activity pipeline writes it but the activity template does not map it")
        else:
            universe = universes[use.stream]
            kind = universe.mapped.get(use.field)
            if kind is None:
                problems.append(f"{where}: not mapped by the {use.stream} index template")
            if use.field not in universe.printed:
                problems.append(f"{where}: the program prints no such field on {use.stream}")
        if use.role == "bucket" and kind is not None and kind not in AGGREGATABLE:
            problems.append(f"{where}: a {kind} field cannot be aggregated")
        if use.role == "geo" and kind != "geo_point":
            problems.append(f"{where}: a map layer needs a geo_point, this is {kind}")
    return problems


def assert_tiled(panels: list[tuple[str, dict[str, int]]], width: int) -> None:
    """Every panel inside the grid's width, and no two overlapping."""
    cells: set[tuple[int, int]] = set()
    for title, grid in panels:
        assert grid["x"] + grid["w"] <= width, f"{title} is wider than the grid"
        area = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{title} overlaps another panel"
        cells |= area


def test_kibana_file_is_importable_ndjson() -> None:
    objects = parse_ndjson(KIBANA.read_text(encoding="utf-8"))
    ids = [(o["type"], o["id"]) for o in objects]
    assert len(ids) == len(set(ids)), "two saved objects share a type and id"
    assert {o["type"] for o in objects} == {"index-pattern", "search", "dashboard"}
    for obj in objects:
        assert isinstance(obj["attributes"], dict) and obj["attributes"]["title"]
        # Saved objects import into the same version, a newer minor or the next major (Kibana's
        # import API docs): in the 8.8 export format, every Kibana from 8.8 and 9.x reads them.
        assert tuple(int(n) for n in obj["coreMigrationVersion"].split(".")) <= (8, 8, 0)
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, f"{obj['id']}: {ref} is not in the file"
    (dashboard,) = [o for o in objects if o["type"] == "dashboard"]
    attributes = dashboard["attributes"]
    json.loads(attributes["optionsJSON"])
    json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    panels = json.loads(attributes["panelsJSON"])
    refs = {r["name"] for r in dashboard["references"]}
    assert_tiled([(p["title"], p["gridData"]) for p in panels], 48)
    for panel in panels:
        index = panel["panelIndex"]
        assert panel["gridData"]["i"] == index
        embedded = panel["embeddableConfig"].get("attributes", {}).get("references", [])
        wanted = {f"{index}:{r['name']}" for r in embedded}
        if "panelRefName" in panel:
            wanted.add(f"{index}:{panel['panelRefName']}")
        assert wanted <= refs, f"{panel['title']}: the dashboard lacks the references {wanted - refs}"


def test_every_kibana_field_is_mapped_and_printed(universes: dict[str, Universe]) -> None:
    uses = list(kibana_uses(parse_ndjson(KIBANA.read_text(encoding="utf-8"))))
    assert {u.stream for u in uses} == set(STREAMS)
    assert {u.field for u in uses if u.role == "geo"} == {"source.geo.location"}
    assert kibana_problems(KIBANA.read_text(encoding="utf-8"), universes) == []


# ---------------------------------------------------------------------------------------------
# SPL: the fields a search reads from events, and the columns it returns.

SPL_TERM = re.compile(r'(?P<name>"[^"]+"|[^\s"=]+)=(?P<value>"(?:[^"\\]|\\.)*"|\S+)')
IPLOCATION_FIELDS = ("lat", "lon", "City", "Country", "Region")
GEOSTATS_FIELDS = ("latitude", "longitude", "geobin", "count")


def split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside double quotes and backticks."""
    parts, current, quote = [], [], ""
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\" and quote == '"':
                current.append(text[i : i + 2])
                i += 2
                continue
            quote = "" if char == quote else quote
        elif char in '"`':
            quote = char
        elif char == sep:
            parts.append("".join(current))
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def unquote(name: str) -> str:
    return name[1:-1] if len(name) > 1 and name[0] == name[-1] == '"' else name


@dataclass
class Spl:
    """What a search reads and returns."""

    terms: dict[str, list[str]] = field(default_factory=dict)  # base search field=value terms
    reads: set[str] = field(default_factory=set)  # event fields read
    outputs: set[str] = field(default_factory=set)  # the result's columns
    errors: list[str] = field(default_factory=list)  # a column read that no earlier command made


class SplState:
    """The fields a pipeline has made so far; before a transforming command, events' fields too."""

    def __init__(self, spl: Spl) -> None:
        self.spl, self.made, self.transformed = spl, set[str](), False

    def read(self, name: str) -> None:
        name = unquote(name)
        if name in self.made:
            return
        if self.transformed:
            self.spl.errors.append(f"{name} is not a column at this point")
        else:
            self.spl.reads.add(name)

    def results(self, *names: str) -> None:
        self.made, self.transformed = {unquote(n) for n in names}, True


def _spl_rename(state: SplState, args: str, _words: list[str]) -> None:
    for pair in args.split(","):
        old, _, new = re.split(r"\s+(AS)\s+", pair.strip(), flags=re.IGNORECASE)
        state.read(old)
        state.made.discard(unquote(old))
        state.made.add(unquote(new))


def _spl_table(state: SplState, _args: str, words: list[str]) -> None:
    for word in words:
        state.read(word)
    state.results(*words)


def _spl_stats(state: SplState, args: str, _words: list[str]) -> None:
    match = re.fullmatch(r"count(?:\s+AS\s+(\S+))?\s+by\s+(.+)", args, re.IGNORECASE)
    assert match, f"stats {args!r}: the test reads only `stats count [AS x] by ...`"
    by = [w for w in re.split(r"[\s,]+", match[2]) if w]
    for word in by:
        state.read(word)
    state.results(match[1] or "count", *by)


def _spl_timechart(state: SplState, args: str, _words: list[str]) -> None:
    match = re.fullmatch(r"(?:\w+=\S+\s+)*count\s+by\s+(\S+)", args)
    assert match, f"timechart {args!r}: the test reads only `timechart [opt=v] count by field`"
    state.read(match[1])
    state.results("_time")


def _spl_sort(state: SplState, _args: str, words: list[str]) -> None:
    for word in words:
        if word.lstrip("+-"):
            state.read(word.lstrip("+-"))


def _spl_head(_state: SplState, args: str, _words: list[str]) -> None:
    assert re.fullmatch(r"\d+", args), f"head {args!r}"


def _spl_iplocation(state: SplState, _args: str, words: list[str]) -> None:
    state.read(words[-1])
    state.made |= set(IPLOCATION_FIELDS)


def _spl_geostats(state: SplState, args: str, _words: list[str]) -> None:
    options = dict(re.findall(r"(\w+)=(\S+)", args))
    state.read(options["latfield"])
    state.read(options["longfield"])
    state.results(*GEOSTATS_FIELDS)


#: What each SPL command the dashboards use reads and makes: (state, its arguments, their words).
SPL_COMMANDS: dict[str, Callable[[SplState, str, list[str]], None]] = {
    "rename": _spl_rename,
    "table": _spl_table,
    "stats": _spl_stats,
    "timechart": _spl_timechart,
    "sort": _spl_sort,
    "head": _spl_head,
    "iplocation": _spl_iplocation,
    "geostats": _spl_geostats,
}


def spl_command(state: SplState, name: str, args: str) -> None:
    if name not in SPL_COMMANDS:
        raise ValueError(f"the test does not know the SPL command {name!r}")
    SPL_COMMANDS[name](state, args, [w for w in re.split(r"[\s,]+", args) if w])


def parse_spl(query: str) -> Spl:
    """The base search's field=value terms, the fields the commands read, the result columns."""
    base, *commands = (part.strip() for part in split_top(query, "|"))
    spl = Spl()
    for token in (t for t in re.split(r"\s+(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", base) if t):
        match = SPL_TERM.fullmatch(token)
        if not match:
            raise ValueError(f"not a field=value term: {token!r}")
        spl.terms.setdefault(unquote(match["name"]), []).append(unquote(match["value"]))
    state = SplState(spl)
    for name in spl.terms:
        if name not in ("index", "sourcetype", "eventtype"):
            state.read(name)
    for command in commands:
        name, _, args = command.partition(" ")
        spl_command(state, name, args.strip())
    spl.outputs = state.made
    return spl


def test_spl_reads_fields_and_columns() -> None:
    spl = parse_spl(
        'index=zoom sourcetype=zoom:operation "tags{}"=x | rename "a{}" AS a | stats count by a, b.c | sort - count'
    )
    assert spl.terms == {"index": ["zoom"], "sourcetype": ["zoom:operation"], "tags{}": ["x"]}
    assert spl.reads == {"tags{}", "a{}", "b.c"} and spl.outputs == {"count", "a", "b.c"} and not spl.errors
    assert parse_spl("index=z | stats count by a | table b").errors == ["b is not a column at this point"]
    with pytest.raises(ValueError):
        parse_spl("index=z | eval x=1")


def splunk_context() -> tuple[dict[str, str], str]:
    """(eventtype -> its search, the index of inputs.conf)."""
    eventtypes = {
        name: ini_value(stanza, "search") for name, stanza in read_ini(CONFIGS / "splunk" / "eventtypes.conf").items()
    }
    indexes = {ini_value(stanza, "index") for stanza in read_ini(SPLUNK_INPUTS).values()}
    (index,) = indexes
    return eventtypes, index


def splunk_problems(text: str, universes: dict[str, Universe]) -> list[str]:
    definition = json.loads(text)
    eventtypes, index = splunk_context()
    tokens = {i["options"]["token"]: i["options"].get("defaultValue") for i in definition.get("inputs", {}).values()}
    problems = []
    for viz in definition["visualizations"].values():
        if "primary" not in viz.get("dataSources", {}):
            continue
        where = f"Splunk panel {viz['title']!r}"
        spl = parse_spl(definition["dataSources"][viz["dataSources"]["primary"]]["options"]["query"])
        problems += [f"{where}: {e}" for e in spl.errors]
        for value in spl.terms.get("index", []):
            resolved = re.sub(r"\$(\w+)\$", lambda m: str(tokens.get(m[1])), value)
            if resolved != index:
                problems.append(f"{where}: index {value} is {resolved}, inputs.conf writes to {index}")
        streams = {s for s in STREAMS for v in spl.terms.get("sourcetype", []) if v == SOURCETYPES[s]}
        streams |= {
            s for s in STREAMS for e in spl.terms.get("eventtype", []) if SOURCETYPES[s] in eventtypes.get(e, "")
        }
        if len(streams) != 1:
            problems.append(f"{where}: sourcetype {spl.terms.get('sourcetype')} is not one stream's ({SOURCETYPES})")
            continue
        (stream,) = streams
        problems += [
            f"{where}: eventtype {e} is not in eventtypes.conf"
            for e in spl.terms.get("eventtype", [])
            if e not in eventtypes
        ]
        known = universes[stream].splunk | SPLUNK_DEFAULT_FIELDS
        problems += [
            f"{where}: field {f} is neither printed on {stream} nor in props.conf" for f in sorted(spl.reads - known)
        ]
        for series in re.findall(r"seriesByName\('([^']+)'\)", json.dumps(viz.get("options", {}))):
            if series not in spl.outputs:
                problems.append(f"{where}: the visualization reads {series}, which the search does not return")
    return problems


def test_splunk_definition_is_well_formed_for_dashboard_studio() -> None:
    definition = json.loads(SPLUNK_JSON.read_text(encoding="utf-8"))
    assert {"dataSources", "visualizations", "layout", "title"} <= set(definition)
    layout = definition["layout"]
    assert layout["type"] in ("absolute", "grid")
    assert set(layout.get("globalInputs", [])) <= set(definition.get("inputs", {}))
    assert [s["item"] for s in layout["structure"]] and {s["item"] for s in layout["structure"]} == set(
        definition["visualizations"]
    )
    for item in layout["structure"]:
        position = item["position"]
        assert position["x"] + position["w"] <= layout["options"]["width"]
    for name, source in definition["dataSources"].items():
        assert source["type"] == "ds.search" and source["options"]["query"], name
    for name, viz in definition["visualizations"].items():
        assert viz["type"].startswith("splunk."), name
        assert set(viz.get("dataSources", {}).values()) <= set(definition["dataSources"]), name
    time = definition["defaults"]["dataSources"]["ds.search"]["options"]["queryParameters"]
    assert time == {"earliest": "$global_time.earliest$", "latest": "$global_time.latest$"}
    assert {i["options"]["token"] for i in definition["inputs"].values()} >= {"global_time"}


def test_splunk_view_wraps_the_same_definition_for_data_ui_views() -> None:
    # Splunk's "Create a dashboard using REST API endpoints": root <dashboard version="2">, a
    # label, and the JSON definition in <definition><![CDATA[ ... ]]>.
    root = ET.fromstring(SPLUNK_XML.read_text(encoding="utf-8"))  # noqa: S314 - the repository's own file
    assert root.tag == "dashboard" and root.get("version") == "2"
    definition = json.loads(root.findtext("definition") or "")
    assert definition == json.loads(SPLUNK_JSON.read_text(encoding="utf-8"))
    assert root.findtext("label") == definition["title"]
    assert "]]>" not in SPLUNK_JSON.read_text(encoding="utf-8")


def test_every_splunk_field_is_printed_or_calculated(universes: dict[str, Universe]) -> None:
    assert splunk_problems(SPLUNK_JSON.read_text(encoding="utf-8"), universes) == []


# ---------------------------------------------------------------------------------------------
# LogQL: the stream selector, the labels | json extracts, and every label a stage reads.

LOKI_MATCHER = re.compile(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')
LOKI_LABEL_FILTER = re.compile(r'(\w+)\s*(=~|!~|!=|==|=|>=|<=|>|<)\s*("(?:[^"\\]|\\.)*"|`[^`]*`|[\w.]+)')
LOKI_JSON_PARAM = re.compile(r'\s*(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
LOKI_FUNCTIONS = frozenset({"sum", "count", "topk", "bottomk", "count_over_time", "rate", "by", "without"})


@dataclass
class LogQL:
    selector: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (operator, value)
    extracted: dict[str, str] = field(default_factory=dict)  # label -> JSON path
    plain_json: bool = False  # `| json` without parameters
    reads: set[str] = field(default_factory=set)  # labels read by filters, line_format, by ()
    grouped: set[str] = field(default_factory=set)


def logql_stage(query: LogQL, stage: str) -> None:
    if stage[:1] in ("=", "~"):  # a line filter: |= "x" or |~ "x"
        assert re.fullmatch(r'[=~]\s*("(?:[^"\\]|\\.)*"|`[^`]*`)', stage), f"line filter {stage!r}"
    elif stage == "json":
        query.plain_json = True
    elif stage.startswith("json "):
        params = stage.removeprefix("json ")
        found = LOKI_JSON_PARAM.findall(params)
        if "".join(m.group(0) for m in LOKI_JSON_PARAM.finditer(params)) != params:
            raise ValueError(f"json parameters not understood: {params!r}")
        query.extracted |= dict(found)
    elif stage.startswith("line_format "):
        query.reads |= set(re.findall(r"\{\{\s*\.(\w+)\s*\}\}", stage))
    elif match := LOKI_LABEL_FILTER.fullmatch(stage):
        query.reads.add(match[1])
    else:
        raise ValueError(f"the test does not know the LogQL stage {stage!r}")


def parse_logql(expr: str) -> LogQL:
    """A log or metric query with one stream selector."""
    selector = re.search(r"\{([^{}]*)\}", expr)
    if not selector:
        raise ValueError(f"no stream selector: {expr!r}")
    query = LogQL()
    for matcher in split_top(selector[1], ","):
        match = LOKI_MATCHER.fullmatch(matcher)
        if not match:
            raise ValueError(f"stream matcher not understood: {matcher!r}")
        query.selector[match[1]] = (match[2], match[3])
    pipeline, *ranged = split_top(expr[selector.end() :], "[")  # the range [...] ends the pipeline
    stages = split_top(pipeline, "|")
    if stages[0].strip():
        raise ValueError(f"text between the selector and the pipeline: {stages[0]!r}")
    for stage in stages[1:]:
        logql_stage(query, stage.strip())
    outside = expr[: selector.start()] + "[".join(["", *ranged])
    for labels in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", outside):
        query.grouped |= {label.strip() for label in labels.split(",") if label.strip()}
    words = set(re.findall(r"[A-Za-z_]\w*", re.sub(r"\((?:[^()]*)\)|\[[^\]]*\]", " ", outside)))
    words |= set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", outside))
    unknown = words - LOKI_FUNCTIONS - query.grouped
    if unknown:
        raise ValueError(f"the test does not know {sorted(unknown)} in {outside!r}")
    query.reads |= query.grouped
    return query


def test_logql_reads_selector_extractions_and_labels() -> None:
    query = parse_logql(
        'topk(5, sum by (a, b_c) (count_over_time({job="j", dataset="d"} |= "x" | json a="x.y", t="tags" '
        '| t =~ `.*"x".*` | json | b_c != "" [$__range])))'
    )
    assert query.selector == {"job": ("=", "j"), "dataset": ("=", "d")}
    assert query.extracted == {"a": "x.y", "t": "tags"} and query.plain_json
    assert query.reads == {"t", "b_c", "a"} and query.grouped == {"a", "b_c"}
    assert parse_logql('{a="b"} | json x="y" | line_format "{{.x}} {{ .z }}"').reads == {"x", "z"}
    for bad in ('{a="b"} | unpack', 'cont_over_time({a="b"} [1m])', '{a="b"} | json x=y'):
        with pytest.raises(ValueError):
            parse_logql(bad)


def loki_query_problems(where: str, target: dict[str, Any], universes: dict[str, Universe]) -> list[str]:
    query = parse_logql(target["expr"])
    dataset = query.selector.get("dataset", ("", ""))[1]
    streams = [s for s in STREAMS if DATASETS[s] == dataset]
    if not streams:
        return [f"{where}: dataset {dataset!r} is no stream's label value ({sorted(DATASETS.values())})"]
    universe = universes[streams[0]]
    problems = []
    for config, labels in universe.loki_labels:
        for label, (op, value) in query.selector.items():
            if label not in labels:
                problems.append(f"{where}: label {label} is not set by {config}")
            elif op == "=" and labels[label] != value:
                problems.append(f"{where}: {config} sets {label}={labels[label]}, not {value}")
    stream_labels = {label for _, labels in universe.loki_labels for label in labels}
    for label, path in query.extracted.items():
        if path not in universe.loki_paths:
            problems.append(f"{where}: | json {label}={path!r}: no such path in the printed {streams[0]} lines")
        if label in stream_labels:
            problems.append(f"{where}: | json {label} collides with a stream label (Loki renames it {label}_extracted)")
    available = stream_labels | set(query.extracted) | (universe.loki_flat if query.plain_json else set())
    problems += [
        f"{where}: label {label} is neither a stream label nor extracted" for label in sorted(query.reads - available)
    ]
    legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
    problems += [
        f"{where}: the legend names {label}, which the query does not group by" for label in legend - query.grouped
    ]
    return problems


def grafana_problems(text: str, universes: dict[str, Universe]) -> list[str]:
    dashboard = json.loads(text)
    problems = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            problems += loki_query_problems(f"Grafana panel {panel['title']!r}", target, universes)
    return problems


def test_grafana_dashboard_is_well_formed_for_import() -> None:
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    assert "id" not in dashboard  # an id from another Grafana would overwrite an unrelated dashboard
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "loki"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert_tiled([(p["title"], p["gridPos"]) for p in dashboard["panels"]], 24)
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "loki", "uid": f"${{{variable['name']}}}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["expr"] and target["datasource"] == panel["datasource"]
            assert target["queryType"] in ("range", "instant")


def test_every_loki_label_and_json_field_exists(universes: dict[str, Universe]) -> None:
    assert grafana_problems(GRAFANA.read_text(encoding="utf-8"), universes) == []


# ---------------------------------------------------------------------------------------------
# The three dashboards together, their builder and their docs.


def titles() -> dict[str, set[str]]:
    objects = parse_ndjson(KIBANA.read_text(encoding="utf-8"))
    (dashboard,) = [o for o in objects if o["type"] == "dashboard"]
    studio = json.loads(SPLUNK_JSON.read_text(encoding="utf-8"))
    grafana = json.loads(GRAFANA.read_text(encoding="utf-8"))
    return {
        "kibana": {p["title"] for p in json.loads(dashboard["attributes"]["panelsJSON"])},
        "splunk": {v["title"] for v in studio["visualizations"].values() if v.get("dataSources")},
        "grafana": {p["title"] for p in grafana["panels"] if p["type"] != "row"},
        "kibana maps": {p["title"] for p in json.loads(dashboard["attributes"]["panelsJSON"]) if p["type"] == "map"},
    }


def test_every_backend_has_the_same_panels_but_loki_has_no_map() -> None:
    found = titles()
    assert len(found["kibana"]) >= 10
    assert found["splunk"] == found["kibana"]
    # Loki's lines carry no coordinates (GeoIP runs in Elasticsearch's ingest pipeline).
    assert found["grafana"] == found["kibana"] - found["kibana maps"]
    assert found["kibana maps"]


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards_build", DASHBOARDS / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_the_committed_files_are_what_the_builder_writes() -> None:
    built: dict[Path, str] = load_builder().build()
    assert set(built) == {KIBANA, SPLUNK_JSON, SPLUNK_XML, GRAFANA}
    for path, text in built.items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} differs: run python dashboards/build.py"


def test_docs_import_every_dashboard_with_its_exact_command() -> None:
    doc = DOC.read_text(encoding="utf-8")
    commands = {
        KIBANA: r"curl -X POST [^\n]*/api/saved_objects/_import\?overwrite=true[^\n]*kbn-xsrf: true[^\n]*",
        SPLUNK_XML: r"/servicesNS/nobody/search/data/ui/views[^`]*eai:data@",
        GRAFANA: r"/api/dashboards/db",
    }
    for path, pattern in commands.items():
        relative = path.relative_to(ROOT).as_posix()
        assert relative in doc, f"docs/dashboards.md does not name {relative}"
        assert re.search(pattern, doc), f"docs/dashboards.md lacks the import command for {relative}"
    assert f"--form file=@{KIBANA.relative_to(ROOT).as_posix()}" in doc
    for title in titles()["kibana"]:
        assert title in doc, f"docs/dashboards.md does not describe the panel {title!r}"
    assert "(docs/dashboards.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# A check that cannot fail is no check: one misspelt or misplaced name in each real file.

Checker = Callable[[str, dict[str, Universe]], list[str]]
CHECKERS: dict[Path, Checker] = {KIBANA: kibana_problems, SPLUNK_JSON: splunk_problems, GRAFANA: grafana_problems}


#: file -> (original text, the misspelt text put in its place, and what the check's complaint names
#: where that is not the misspelt text itself).
MISSPELT: dict[Path, list[tuple[str, str] | tuple[str, str, str]]] = {
    KIBANA: [
        ("zoom.operation.category_type", "zoom.operation.categorytype"),
        ("user.changes.roles", "user.change.roles"),
        ("source.geo.location", "source.geo.locaton"),
        ("zoom.activity.client_type", "zoom.operation.category_type"),
        ("logs-zoom.activity-*", "logs-zoom.activities-*", "matches no stream"),
    ],
    SPLUNK_JSON: [
        ("zoom.activity.client_type", "zoom.activity.clienttype"),
        ("sourcetype=zoom:activity", "sourcetype=zoom:activities", "zoom:activities"),
        ("tags{}", "tag{}"),
        ("iplocation src_ip", "iplocation src_addr", "src_addr"),
        ('"defaultValue": "zoom"', '"defaultValue": "main"', "index"),
    ],
    GRAFANA: [
        ('dataset=\\"zoom.activity\\"', 'dataset=\\"zoom.activities\\"', "zoom.activities"),
        ('job=\\"zoom-oplog-shipper\\"', 'app=\\"zoom-oplog-shipper\\"', "label app "),
        (
            '=\\"zoom.operation.disabled_controls\\"',
            '=\\"zoom.operation.disabled_control\\"',
            "'zoom.operation.disabled_control'",
        ),
        ("{{.user_name}}", "{{.username}}", "label username "),
        ("sum by (event_action)", "sum by (action)", "label action "),
    ],
}


@pytest.mark.parametrize(
    ("path", "original", "changed", "named"),
    [(path, case[0], case[1], case[-1]) for path, cases in MISSPELT.items() for case in cases],
)
def test_a_misspelt_name_fails_the_check(
    path: Path, original: str, changed: str, named: str, universes: dict[str, Universe]
) -> None:
    text = path.read_text(encoding="utf-8")
    assert original in text, f"the case no longer applies: {original!r} is not in {path.name}"
    problems = CHECKERS[path](text.replace(original, changed), universes)
    assert any(named in problem for problem in problems), problems
