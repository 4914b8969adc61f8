"""Builds the Kibana, Splunk and Grafana (Loki) dashboards from one list of panels.

    python dashboards/build.py            write the dashboard files next to this script
    python dashboards/build.py --check    exit 1 when a committed file differs from what this builds

Each panel is declared once (what it counts or lists, over which fields, for which stream); one
renderer per backend turns it into that backend's query language: Lens and KQL for Kibana, SPL
for Splunk Dashboard Studio, LogQL for Grafana on Loki. tests/test_dashboards.py parses the files
this writes, not this module, and checks every field and label they use against the shipped
configs and the program's real output.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KIBANA_FILE = HERE / "kibana" / "zoom-oplog-shipper.ndjson"
SPLUNK_JSON_FILE = HERE / "splunk" / "zoom_oplog_shipper.json"
SPLUNK_XML_FILE = HERE / "splunk" / "zoom_oplog_shipper.xml"
GRAFANA_FILE = HERE / "grafana" / "zoom-oplog-shipper-loki.json"

TITLE = "Zoom audit logs (zoom-oplog-shipper)"
DESCRIPTION = (
    "Zoom admin operation logs and sign-in/sign-out activity logs as zoom-oplog-shipper prints them: "
    "changes, security controls turned off, role changes, sign-ins. Panels and fields: docs/dashboards.md."
)
#: Stable ids: the same panel keeps its ids (and a re-import overwrites it) from one build to the next.
NAMESPACE = uuid.UUID("6f1d7c2e-5b0a-4e8f-9a51-3c7d2b9e0a14")

OPERATIONS = "operations"
ACTIVITIES = "activities"


@dataclass(frozen=True)
class Stream:
    """Where one of the program's streams lands in each backend (as the shipped configs put it)."""

    key: str
    heading: str
    dataset: str  # event.dataset, and the Loki label `dataset`
    data_view_id: str
    index_pattern: str
    sourcetype: str


STREAMS = {
    OPERATIONS: Stream(
        OPERATIONS,
        "Admin operation logs",
        "zoom.operation",
        "zoom-oplog-shipper-operation",
        "logs-zoom.operation-*",
        "zoom:operation",
    ),
    ACTIVITIES: Stream(
        ACTIVITIES,
        "Sign-in/sign-out activity logs",
        "zoom.activity",
        "zoom-oplog-shipper-activity",
        "logs-zoom.activity-*",
        "zoom:activity",
    ),
}

#: Fields the program prints as JSON arrays: Splunk names them `field{}`, Loki's json parser
#: skips them unless a path names them, and KQL and Lens treat them as any other keyword.
ARRAY_FIELDS = frozenset(
    {"tags", "event.category", "event.type", "related.user", "related.ip", "user.target.roles", "user.changes.roles"}
    | {"zoom.operation.disabled_controls"}
)
#: Lens data types of the fields the panels bucket by (every other one is a keyword: "string").
LENS_TYPES = {"source.ip": "ip", "@timestamp": "date"}
#: The Splunk index of configs/splunk/inputs.conf, the default of the dashboard's index input.
SPLUNK_INDEX = "zoom"
LOKI_JOB = "zoom-oplog-shipper"


@dataclass(frozen=True)
class Where:
    """A condition: ``field`` holds ``value`` (for an array: one of its values), or is present (None)."""

    field: str
    value: str | None = None


@dataclass(frozen=True)
class Panel:
    """One panel, the same in every backend.

    kind: ``over_time`` counts per interval, split by ``fields[0]``; ``count_by`` counts per
    combination of ``fields``; ``top`` the ``size`` most frequent values of ``fields[0]``;
    ``events`` lists events with ``fields`` as columns; ``map`` plots ``fields[0]`` (a geo_point),
    with ``fields[1:]`` in the tooltip.
    """

    key: str
    title: str
    stream: str
    kind: str
    fields: tuple[str, ...]
    where: tuple[Where, ...] = ()
    size: int = 10
    wide: bool = False
    description: str = ""


AS_ORG = ("source.as.organization.name",)
SECURITY_OFF = Where("tags", "security-control-disabled")
ADMIN_GRANTED = Where("tags", "admin-role-granted")
SIGN_IN = Where("event.action", "sign-in")

PANELS = (
    Panel(
        "ops-over-time",
        "Admin changes over time, by category",
        OPERATIONS,
        "over_time",
        ("zoom.operation.category_type",),
        wide=True,
        description="Operation-log records per interval, split by Zoom's category (User, Account, Role, ...).",
    ),
    Panel(
        "ops-by-category-action",
        "Admin changes by category and action",
        OPERATIONS,
        "count_by",
        ("zoom.operation.category_type", "event.action"),
        size=20,
        description="The most frequent category and action pairs.",
    ),
    Panel(
        "ops-top-operators",
        "Top operators (admin changes)",
        OPERATIONS,
        "top",
        ("user.name",),
        description="Who made the most changes.",
    ),
    Panel(
        "ops-controls-off-by-control",
        "Security controls turned off, by control",
        OPERATIONS,
        "top",
        ("zoom.operation.disabled_controls",),
        (SECURITY_OFF,),
        description="Changes tagged security-control-disabled, per control turned off.",
    ),
    Panel(
        "ops-admin-grants-by-operator",
        "Privileged roles granted, by operator",
        OPERATIONS,
        "top",
        ("user.name",),
        (ADMIN_GRANTED,),
        description="Who granted a privileged role (Admin, Owner, ...): changes tagged admin-role-granted.",
    ),
    Panel(
        "ops-controls-off",
        "Security controls turned off",
        OPERATIONS,
        "events",
        ("user.name", "zoom.operation.disabled_controls", "message"),
        (SECURITY_OFF,),
        wide=True,
        description="Each change that turned a security control off: who, which control, Zoom's detail.",
    ),
    Panel(
        "ops-role-changes",
        "Role changes",
        OPERATIONS,
        "events",
        ("user.name", "user.target.email", "user.target.roles", "user.changes.roles", "tags"),
        (Where("user.changes.roles"),),
        wide=True,
        description=(
            "Each change of a user's role: the operator, the user, the role before (user.target.roles) and "
            "after (user.changes.roles); a grant of a privileged role is tagged admin-role-granted."
        ),
    ),
    Panel(
        "act-over-time",
        "Sign-ins and sign-outs over time",
        ACTIVITIES,
        "over_time",
        ("event.action",),
        wide=True,
        description="Activity-log records per interval, sign-in and sign-out.",
    ),
    Panel(
        "act-top-users",
        "Top users signing in",
        ACTIVITIES,
        "top",
        ("user.name",),
        (SIGN_IN,),
        description="Who signed in most often.",
    ),
    Panel(
        "act-top-addresses",
        "Top source addresses of sign-ins",
        ACTIVITIES,
        "top",
        ("source.ip",),
        (SIGN_IN,),
        description="The addresses most sign-ins came from (valid addresses only: source.ip).",
    ),
    Panel(
        "act-clients",
        "Sign-ins by client",
        ACTIVITIES,
        "top",
        ("zoom.activity.client_type",),
        (SIGN_IN,),
        description="The Zoom client each sign-in used, as Zoom names it.",
    ),
    Panel(
        "act-map",
        "Sign-in locations (GeoIP)",
        ACTIVITIES,
        "map",
        ("source.geo.location", "user.name", "source.ip", "source.geo.country_name", "source.geo.city_name", *AS_ORG),
        (SIGN_IN,),
        description="Where sign-ins came from: needs GeoIP (the ingest pipeline's, or Splunk's iplocation).",
    ),
)


def uid(*parts: str) -> str:
    """A stable UUID for a panel's object or column."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


Placed = tuple[Panel, int, int, int, int]


def layout(panels: tuple[Panel, ...], width: int, heights: dict[str, int]) -> Iterator[Placed]:
    """(panel, x, y, w, h): two panels a row, a wide one alone, in the order declared."""
    x = y = row_height = 0
    for panel in panels:
        w = width if panel.wide else width // 2
        h = heights[panel.kind]
        if x + w > width:
            x, y, row_height = 0, y + row_height, 0
        yield panel, x, y, w, h
        row_height = max(row_height, h)
        x += w
        if x >= width:
            x, y, row_height = 0, y + row_height, 0


# ---------------------------------------------------------------------------------------------
# Kibana: data views, saved searches and one dashboard with Lens and Maps panels by value, in the
# format Kibana 8.8 exports (every later 8.x and 9.x imports and migrates it).

KIBANA_CORE_VERSION = "8.8.0"
KIBANA_TYPE_VERSIONS = {"index-pattern": "8.0.0", "search": "8.0.0", "dashboard": "8.7.0"}
KIBANA_HEIGHTS = {"over_time": 12, "count_by": 14, "top": 14, "events": 15, "map": 14}


Reference = dict[str, str]


def kuery(query: str) -> dict[str, str]:
    """A query object in KQL ("kuery")."""
    return {"language": "kuery", "query": query}


def kql(where: tuple[Where, ...]) -> str:
    """The conditions as a KQL query (an array field matches when one of its values does)."""
    return " and ".join(f'{w.field} : "{w.value}"' if w.value is not None else f"{w.field} : *" for w in where)


def saved_object(kind: str, object_id: str, attributes: dict[str, Any], references: list[Reference]) -> dict[str, Any]:
    """One saved object as the import API reads it."""
    return {
        "attributes": attributes,
        "coreMigrationVersion": KIBANA_CORE_VERSION,
        "id": object_id,
        "references": references,
        "type": kind,
        "typeMigrationVersion": KIBANA_TYPE_VERSIONS[kind],
    }


def data_view(stream: Stream) -> dict[str, Any]:
    """A data view over the stream's data streams; its fields come from Elasticsearch at load time."""
    attributes = {
        "name": f"Zoom {stream.heading.lower()} (zoom-oplog-shipper)",
        "timeFieldName": "@timestamp",
        "title": stream.index_pattern,
    }
    return saved_object("index-pattern", stream.data_view_id, attributes, [])


def count_column() -> dict[str, Any]:
    return {
        "dataType": "number",
        "isBucketed": False,
        "label": "Count of records",
        "operationType": "count",
        "params": {"emptyAsNull": True},
        "scale": "ratio",
        "sourceField": "___records___",
    }


def terms_column(field: str, size: int, order_by: str) -> dict[str, Any]:
    data_type = LENS_TYPES.get(field, "string")
    return {
        "dataType": data_type,
        "isBucketed": True,
        "label": f"Top {size} values of {field}",
        "operationType": "terms",
        "params": {
            "missingBucket": False,
            "orderBy": {"columnId": order_by, "type": "column"},
            "orderDirection": "desc",
            "otherBucket": False,
            "parentFormat": {"id": "terms"},
            "size": size,
        },
        "scale": "ordinal",
        "sourceField": field,
    }


def date_column() -> dict[str, Any]:
    return {
        "dataType": "date",
        "isBucketed": True,
        "label": "@timestamp",
        "operationType": "date_histogram",
        "params": {"dropPartials": False, "includeEmptyRows": True, "interval": "auto"},
        "scale": "interval",
        "sourceField": "@timestamp",
    }


def lens_visualization(panel: Panel, layer: str, buckets: list[str], count: str) -> tuple[str, dict[str, Any]]:
    """(visualizationType, visualization state) for the panel's kind."""
    if panel.kind == "count_by":
        columns = [{"columnId": c} for c in [*buckets, count]]
        return "lnsDatatable", {"columns": columns, "layerId": layer, "layerType": "data"}
    series = "bar_stacked" if panel.kind == "over_time" else "bar_horizontal"
    data_layer: dict[str, Any] = {
        "accessors": [count],
        "layerId": layer,
        "layerType": "data",
        "position": "top",
        "seriesType": series,
        "showGridlines": False,
    }
    if panel.kind == "over_time":
        data_layer |= {"splitAccessor": buckets[0], "xAccessor": buckets[1]}
    else:
        data_layer["xAccessor"] = buckets[0]
    visualization = {
        "layers": [data_layer],
        "legend": {"isVisible": panel.kind == "over_time", "position": "right"},
        "preferredSeriesType": series,
        "valueLabels": "hide",
    }
    return "lnsXY", visualization


def lens_panel(panel: Panel, stream: Stream) -> tuple[dict[str, Any], list[Reference]]:
    """A Lens panel by value, and the references the dashboard needs for it."""
    layer, count = uid(panel.key, "layer"), uid(panel.key, "count")
    columns: dict[str, Any] = {count: count_column()}
    buckets = []
    for field in panel.fields:
        column = uid(panel.key, field)
        columns[column] = terms_column(field, panel.size, count)
        buckets.append(column)
    if panel.kind == "over_time":
        date = uid(panel.key, "@timestamp")
        columns[date] = date_column()
        buckets.append(date)
    visualization_type, visualization = lens_visualization(panel, layer, buckets, count)
    reference = {"id": stream.data_view_id, "name": f"indexpattern-datasource-layer-{layer}", "type": "index-pattern"}
    attributes = {
        "description": panel.description,
        "references": [reference],
        "state": {
            "adHocDataViews": {},
            "datasourceStates": {
                "formBased": {
                    "layers": {
                        layer: {"columnOrder": [*buckets, count], "columns": columns, "incompleteColumns": {}},
                    }
                },
                "textBased": {"layers": {}},
            },
            "filters": [],
            "internalReferences": [],
            "query": kuery(kql(panel.where)),
            "visualization": visualization,
        },
        "title": panel.title,
        "type": "lens",
        "visualizationType": visualization_type,
    }
    index = uid(panel.key, "panel")
    config = {"attributes": attributes, "enhancements": {}}
    prefixed = {**reference, "name": f"{index}:{reference['name']}"}
    return {"embeddableConfig": config, "panelIndex": index, "type": "lens"}, [prefixed]


def map_panel(panel: Panel, stream: Stream) -> tuple[dict[str, Any], list[Reference]]:
    """A Maps panel by value: a base map and the documents' ``fields[0]`` (newest first)."""
    ref_name = "layer_1_source_index_pattern"
    base_layer = {
        "alpha": 1,
        "id": uid(panel.key, "basemap"),
        "label": None,
        "maxZoom": 24,
        "minZoom": 0,
        "sourceDescriptor": {"isAutoSelect": True, "lightModeDefault": "road_map", "type": "EMS_TMS"},
        "style": {},
        "type": "EMS_VECTOR_TILE",
        "visible": True,
    }
    static = {"type": "STATIC"}
    documents_layer = {
        "alpha": 0.75,
        "id": uid(panel.key, "documents"),
        "label": panel.title,
        "maxZoom": 24,
        "minZoom": 0,
        "query": kuery(kql(panel.where)),
        "sourceDescriptor": {
            "applyGlobalQuery": True,
            "applyGlobalTime": True,
            "filterByMapBounds": True,
            "geoField": panel.fields[0],
            "id": uid(panel.key, "source"),
            "indexPatternRefName": ref_name,
            "scalingType": "LIMIT",
            "sortField": "@timestamp",
            "sortOrder": "desc",
            "tooltipProperties": list(panel.fields[1:]),
            "topHitsSize": 1,
            "type": "ES_SEARCH",
        },
        "style": {
            "isTimeAware": True,
            "properties": {
                "fillColor": {**static, "options": {"color": "#54B399"}},
                "icon": {**static, "options": {"value": "marker"}},
                "iconOrientation": {**static, "options": {"orientation": 0}},
                "iconSize": {**static, "options": {"size": 6}},
                "labelText": {**static, "options": {"value": ""}},
                "lineColor": {**static, "options": {"color": "#41937c"}},
                "lineWidth": {**static, "options": {"size": 1}},
                "symbolizeAs": {"options": {"value": "circle"}},
            },
            "type": "VECTOR",
        },
        "type": "GEOJSON_VECTOR",
        "visible": True,
    }
    map_state = {
        "center": {"lat": 20, "lon": 0},
        "filters": [],
        "query": kuery(""),
        "refreshConfig": {"interval": 0, "isPaused": True},
        "settings": {"autoFitToDataBounds": False},
        "timeFilters": {"from": "now-7d", "to": "now"},
        "zoom": 1.5,
    }
    attributes = {
        "description": panel.description,
        "layerListJSON": json.dumps([base_layer, documents_layer]),
        "mapStateJSON": json.dumps(map_state),
        "title": panel.title,
        "uiStateJSON": json.dumps({"isLayerTOCOpen": True, "openTOCDetails": []}),
    }
    config = {
        "attributes": attributes,
        "enhancements": {},
        "hiddenLayers": [],
        "isLayerTOCOpen": False,
        "mapCenter": {"lat": 20, "lon": 0, "zoom": 1.5},
        "openTOCDetails": [],
    }
    index = uid(panel.key, "panel")
    reference = {"id": stream.data_view_id, "name": f"{index}:{ref_name}", "type": "index-pattern"}
    return {"embeddableConfig": config, "panelIndex": index, "type": "map"}, [reference]


def saved_search(panel: Panel, stream: Stream) -> dict[str, Any]:
    """A saved search (a Discover session) listing the panel's events, newest first."""
    ref_name = "kibanaSavedObjectMeta.searchSourceJSON.index"
    source = {"filter": [], "indexRefName": ref_name, "query": kuery(kql(panel.where))}
    attributes = {
        "columns": list(panel.fields),
        "description": panel.description,
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
        "sort": [["@timestamp", "desc"]],
        "title": panel.title,
    }
    reference = {"id": stream.data_view_id, "name": ref_name, "type": "index-pattern"}
    return saved_object("search", f"zoom-oplog-shipper-{panel.key}", attributes, [reference])


def search_panel(panel: Panel) -> tuple[dict[str, Any], list[Reference]]:
    """A dashboard panel showing a saved search, by reference."""
    index = uid(panel.key, "panel")
    reference = {"id": f"zoom-oplog-shipper-{panel.key}", "name": f"{index}:panel_{index}", "type": "search"}
    body = {"embeddableConfig": {"enhancements": {}}, "panelIndex": index, "panelRefName": f"panel_{index}"}
    return {**body, "type": "search"}, [reference]


def kibana_objects() -> list[dict[str, Any]]:
    """Every saved object of the Kibana file: data views, saved searches, then the dashboard."""
    objects = [data_view(s) for s in STREAMS.values()]
    panels, references = [], []
    for panel, x, y, w, h in layout(PANELS, 48, KIBANA_HEIGHTS):
        stream = STREAMS[panel.stream]
        if panel.kind == "events":
            objects.append(saved_search(panel, stream))
            body, refs = search_panel(panel)
        elif panel.kind == "map":
            body, refs = map_panel(panel, stream)
        else:
            body, refs = lens_panel(panel, stream)
        grid = {"h": h, "i": body["panelIndex"], "w": w, "x": x, "y": y}
        panels.append({**body, "gridData": grid, "title": panel.title, "version": KIBANA_CORE_VERSION})
        references += refs
    options = {"hidePanelTitles": False, "syncColors": False, "syncCursor": True, "useMargins": True}
    attributes = {
        "description": DESCRIPTION,
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({"filter": [], "query": kuery("")})},
        "optionsJSON": json.dumps(options),
        "panelsJSON": json.dumps(panels),
        "refreshInterval": {"pause": True, "value": 0},
        "timeFrom": "now-7d",
        "timeRestore": True,
        "timeTo": "now",
        "title": TITLE,
        "version": 1,
    }
    objects.append(saved_object("dashboard", "zoom-oplog-shipper", attributes, references))
    return objects


def kibana_text() -> str:
    """The NDJSON file: one saved object a line, as the import API reads it."""
    return "".join(json.dumps(o, sort_keys=True, ensure_ascii=False) + "\n" for o in kibana_objects())


# ---------------------------------------------------------------------------------------------
# Splunk Dashboard Studio: the JSON definition, and the same wrapped for data/ui/views.

SPLUNK_HEIGHTS = {"over_time": 300, "count_by": 380, "top": 380, "events": 380, "map": 380}
SPLUNK_VIZ = {"over_time": "splunk.column", "count_by": "splunk.table", "top": "splunk.bar", "events": "splunk.table"}


def spl_name(field: str) -> str:
    """The field as Splunk's JSON extraction names it, quoted when it holds braces."""
    return f'"{field}{{}}"' if field in ARRAY_FIELDS else field


def spl_base(panel: Panel) -> str:
    stream = STREAMS[panel.stream]
    terms = ["index=$zoom_index$", f"sourcetype={stream.sourcetype}"]
    terms += [f"{spl_name(w.field)}={w.value if w.value is not None else '*'}" for w in panel.where]
    return " ".join(terms)


def spl_renames(fields: tuple[str, ...]) -> list[str]:
    """Array fields renamed to their plain name, so that later commands need no braces."""
    arrays = [f for f in fields if f in ARRAY_FIELDS]
    return [f"rename {', '.join(f'{spl_name(f)} AS {f}' for f in arrays)}"] if arrays else []


def spl_query(panel: Panel) -> str:
    """The panel's search."""
    fields = panel.fields
    if panel.kind == "map":
        # iplocation reads the CIM field src_ip (props.conf: source.ip, valid addresses only).
        commands = ["iplocation src_ip", "geostats latfield=lat longfield=lon count"]
    elif panel.kind == "over_time":
        commands = [*spl_renames(fields), f"timechart limit={panel.size} count by {fields[0]}"]
    elif panel.kind == "events":
        commands = [*spl_renames(fields), f"table _time {' '.join(fields)}"]
    else:
        by = ", ".join(fields)
        commands = [*spl_renames(fields), f"stats count by {by}", "sort - count", f"head {panel.size}"]
    return " | ".join([spl_base(panel), *commands])


def splunk_visualization(panel: Panel, source: str) -> dict[str, Any]:
    viz: dict[str, Any] = {"dataSources": {"primary": source}, "description": panel.description, "title": panel.title}
    if panel.kind == "map":
        bubble = {
            "bubbleSize": "> primary | seriesByName('count')",
            "latitude": "> primary | seriesByName('latitude')",
            "longitude": "> primary | seriesByName('longitude')",
            "type": "bubble",
        }
        return viz | {"options": {"center": [20, 0], "layers": [bubble], "zoom": 1}, "type": "splunk.map"}
    options: dict[str, Any] = {}
    if panel.kind == "over_time":
        options = {"legendDisplay": "right", "stackMode": "stacked"}
    elif panel.kind == "top":
        options = {"legendDisplay": "off"}
    elif panel.kind == "events":
        options = {"count": 20}
    return viz | {"options": options, "type": SPLUNK_VIZ[panel.kind]}


def splunk_definition() -> dict[str, Any]:
    """The Dashboard Studio definition: a search and a visualization per panel, a heading per stream."""
    data_sources: dict[str, Any] = {}
    visualizations: dict[str, Any] = {}
    structure = []
    y = 0
    for stream in STREAMS.values():
        heading = f"viz_heading_{stream.key}"
        visualizations[heading] = {"options": {"markdown": f"## {stream.heading}"}, "type": "splunk.markdown"}
        structure.append({"item": heading, "position": {"h": 50, "w": 1440, "x": 0, "y": y}, "type": "block"})
        y += 50
        panels = tuple(p for p in PANELS if p.stream == stream.key)
        bottom = y
        for panel, x, top, w, h in layout(panels, 1440, SPLUNK_HEIGHTS):
            source, viz = f"ds_{panel.key.replace('-', '_')}", f"viz_{panel.key.replace('-', '_')}"
            data_sources[source] = {"name": panel.title, "options": {"query": spl_query(panel)}, "type": "ds.search"}
            visualizations[viz] = splunk_visualization(panel, source)
            structure.append({"item": viz, "position": {"h": h, "w": w, "x": x, "y": y + top}, "type": "block"})
            bottom = max(bottom, y + top + h)
        y = bottom
    inputs = {
        "input_index": {
            "options": {"defaultValue": SPLUNK_INDEX, "token": "zoom_index"},
            "title": "Index",
            "type": "input.text",
        },
        "input_time": {
            "options": {"defaultValue": "-7d@h,now", "token": "global_time"},
            "title": "Time range",
            "type": "input.timerange",
        },
    }
    time = {"earliest": "$global_time.earliest$", "latest": "$global_time.latest$"}
    return {
        "dataSources": data_sources,
        "defaults": {"dataSources": {"ds.search": {"options": {"queryParameters": time}}}},
        "description": DESCRIPTION,
        "inputs": inputs,
        "layout": {
            "globalInputs": ["input_time", "input_index"],
            "options": {"display": "auto-scale", "height": y, "width": 1440},
            "structure": structure,
            "type": "absolute",
        },
        "title": TITLE,
        "visualizations": visualizations,
    }


def splunk_json_text() -> str:
    return json.dumps(splunk_definition(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def splunk_xml_text() -> str:
    """The definition as data/ui/views stores a Studio dashboard (root <dashboard version="2">)."""
    return (
        '<dashboard version="2" theme="light">\n'
        f"  <label>{TITLE}</label>\n"
        f"  <description>{DESCRIPTION}</description>\n"
        f"  <definition><![CDATA[\n{splunk_json_text()}]]></definition>\n"
        "</dashboard>\n"
    )


# ---------------------------------------------------------------------------------------------
# Grafana on Loki: LogQL over the lines the shipped Vector and Fluent Bit Loki sinks write.

GRAFANA_HEIGHTS = {"over_time": 8, "count_by": 10, "top": 10, "events": 10}
DATASOURCE = {"type": "loki", "uid": "${datasource}"}


def loki_label(field: str) -> str:
    """The label an extracted field gets: its path with `_` for `.`, as `| json` alone would name it."""
    return field.replace(".", "_").replace("@", "_")


def loki_selector(stream: Stream) -> str:
    return f'{{job="{LOKI_JOB}", dataset="{stream.dataset}"}}'


def loki_pipeline(panel: Panel, fields: tuple[str, ...]) -> str:
    """Line filters first (cheap), then the JSON fields the query needs, then exact label filters."""
    wanted = list(dict.fromkeys([*fields, *(w.field for w in panel.where)]))
    stages = [f'|= "{w.value}"' for w in panel.where if w.value is not None]
    stages.append("| json " + ", ".join(f'{loki_label(f)}="{f}"' for f in wanted))
    for w in panel.where:
        label = loki_label(w.field)
        if w.value is None:
            stages.append(f'| {label} != ""')
        elif w.field in ARRAY_FIELDS:  # the raw JSON array, e.g. ["a","b"]
            stages.append(f'| {label} =~ `.*"{w.value}".*`')
        else:
            stages.append(f'| {label} = "{w.value}"')
    return " ".join([loki_selector(STREAMS[panel.stream]), *stages])


def loki_query(panel: Panel) -> tuple[str, str, str]:
    """(LogQL, query type, legend) of the panel."""
    labels = ", ".join(loki_label(f) for f in panel.fields)
    legend = " / ".join(f"{{{{{loki_label(f)}}}}}" for f in panel.fields)
    if panel.kind == "events":
        line = "  ".join(f"{f}={{{{.{loki_label(f)}}}}}" for f in panel.fields)
        return f'{loki_pipeline(panel, panel.fields)} | line_format "{line}"', "range", ""
    if panel.kind == "over_time":
        counted = f"count_over_time({loki_pipeline(panel, panel.fields)} [$__interval])"
        return f"sum by ({labels}) ({counted})", "range", legend
    counted = f"count_over_time({loki_pipeline(panel, panel.fields)} [$__range])"
    return f"topk({panel.size}, sum by ({labels}) ({counted}))", "instant", legend


def grafana_panel(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    expr, query_type, legend = loki_query(panel)
    target = {"datasource": DATASOURCE, "editorMode": "code", "expr": expr, "queryType": query_type, "refId": "A"}
    if legend:
        target["legendFormat"] = legend
    body: dict[str, Any] = {
        "datasource": DATASOURCE,
        "description": panel.description,
        "gridPos": grid,
        "id": panel_id,
        "targets": [target],
        "title": panel.title,
    }
    if panel.kind == "over_time":
        custom = {"drawStyle": "bars", "fillOpacity": 80, "stacking": {"group": "A", "mode": "normal"}}
        legend_options = {"displayMode": "list", "placement": "right", "showLegend": True}
        return body | {
            "fieldConfig": {"defaults": {"custom": custom}, "overrides": []},
            "options": {"legend": legend_options, "tooltip": {"mode": "multi", "sort": "desc"}},
            "type": "timeseries",
        }
    if panel.kind == "events":
        options = {"enableLogDetails": True, "showTime": True, "sortOrder": "Descending", "wrapLogMessage": True}
        return body | {"options": options, "type": "logs"}
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    options = {"displayMode": "basic", "orientation": "horizontal", "reduceOptions": reduce, "showUnfilled": True}
    return body | {"fieldConfig": {"defaults": {}, "overrides": []}, "options": options, "type": "bargauge"}


def grafana_dashboard() -> dict[str, Any]:
    """The dashboard: a row per stream; the Loki data source is a variable (chosen on import or later)."""
    panels: list[dict[str, Any]] = []
    y = 0
    for stream in STREAMS.values():
        grid = {"h": 1, "w": 24, "x": 0, "y": y}
        row = {"collapsed": False, "gridPos": grid, "id": len(panels) + 1, "panels": [], "title": stream.heading}
        panels.append(row | {"type": "row"})
        y += 1
        bottom = y
        # No map on Loki: its lines carry no coordinates (GeoIP runs in the Elasticsearch pipeline).
        own = tuple(p for p in PANELS if p.stream == stream.key and p.kind != "map")
        for panel, x, top, w, h in layout(own, 24, GRAFANA_HEIGHTS):
            grid = {"h": h, "w": w, "x": x, "y": y + top}
            panels.append(grafana_panel(panel, len(panels) + 1, grid))
            bottom = max(bottom, y + top + h)
        y = bottom
    variable = {
        "current": {},
        "hide": 0,
        "includeAll": False,
        "label": "Loki",
        "multi": False,
        "name": "datasource",
        "options": [],
        "query": "loki",
        "refresh": 1,
        "regex": "",
        "type": "datasource",
    }
    return {
        "annotations": {"list": []},
        "description": DESCRIPTION,
        "editable": True,
        "graphTooltip": 1,
        "links": [],
        "panels": panels,
        "refresh": "",
        "schemaVersion": 39,
        "tags": ["zoom", "zoom-oplog-shipper", "audit"],
        "templating": {"list": [variable]},
        "time": {"from": "now-7d", "to": "now"},
        "timezone": "browser",
        "title": TITLE,
        "uid": "zoom-oplog-shipper",
        "version": 1,
    }


def grafana_text() -> str:
    return json.dumps(grafana_dashboard(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------

OUTPUTS = {
    KIBANA_FILE: kibana_text,
    SPLUNK_JSON_FILE: splunk_json_text,
    SPLUNK_XML_FILE: splunk_xml_text,
    GRAFANA_FILE: grafana_text,
}


def build() -> dict[Path, str]:
    """Every dashboard file and its content."""
    return {path: render() for path, render in OUTPUTS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args(argv)
    stale = []
    for path, text in build().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "differs" if args.check else "written"
        print(f"{path.relative_to(HERE.parent)}: {verb}", file=sys.stderr)
    if args.check and stale:
        print("run: python dashboards/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
