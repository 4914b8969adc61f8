"""Every rule run on printed events with a real query engine, scored against the incidents' truth.

The events (ECS lines as the program prints them) go into SQLite (:mod:`detections.evaluate`);
each alerting Sigma rule is converted with :class:`detections.pipelines.EcsSqliteBackend`, whose
correlations use a real sliding window, and the native rule runs as its SQL twin. An alert is the
set of events it is made of; it belongs to an incident when one of its events is one of the
incident's records, and is a false positive when none of its events belongs to any incident.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detections.convert import RULES, Target, alerts, convert, load_rules, rule_name
from detections.evaluate import connect, load
from detections.pipelines import EcsSqliteBackend, sqlite_pipeline
from zoom_oplog_shipper.simulator import Scenario

NATIVE = Path(__file__).parent / "native"
SQLITE = Target("sqlite", "SQLite", lambda _pipeline: EcsSqliteBackend(), sqlite_pipeline, "sql")


@dataclass
class Score:
    """What one rule did: its alerts, the incidents they belong to, and the false positives."""

    alerts: list[frozenset[int]] = field(default_factory=list)
    incidents: set[str] = field(default_factory=set)
    false_positives: list[frozenset[int]] = field(default_factory=list)


#: The record fields that tell two records apart (with the time), per stream.
_OPERATION_KEY = ("operator", "operation_detail", "action", "category_type")
_ACTIVITY_KEY = ("email", "ip_address", "type", "client_type")


def record_key(doc: dict[str, Any]) -> tuple[str, ...]:
    """An event's identity among the scenario's records: its time and the record's own fields."""
    zoom = doc.get("zoom", {})
    fields, names = (zoom["operation"], _OPERATION_KEY) if "operation" in zoom else (zoom["activity"], _ACTIVITY_KEY)
    return (doc["@timestamp"][:19], *(str(fields.get(name, "")) for name in names))


def scenario_key(record: dict[str, str]) -> tuple[str, ...]:
    """:func:`record_key` of the event a scenario record becomes."""
    names = _OPERATION_KEY if "operation_detail" in record else _ACTIVITY_KEY
    return (record["time"][:19], *(record.get(name, "") for name in names))


def queries(directory: Path = RULES) -> dict[str, str]:
    """Every alerting rule's SQLite query, and the native rule's SQL twin, by rule name."""
    sql = {
        rule_name(rule): convert(rule_name(rule), SQLITE, directory)
        for rule in load_rules(directory).rules
        if alerts(rule)
    }
    for path in sorted(NATIVE.glob("*.sql")):
        sql[path.stem] = path.read_text(encoding="utf-8")
    return sql


def run(connection: sqlite3.Connection, query: str) -> list[frozenset[int]]:
    """The alerts of one query, each as the rowids of its events."""
    if query.startswith("SELECT * FROM "):
        query = "SELECT rowid" + query.removeprefix("SELECT *")
    cursor = connection.execute(query)
    columns = [d[0] for d in cursor.description]
    found: list[frozenset[int]] = []
    for row in cursor:
        record = dict(zip(columns, row, strict=True))
        if "event_ids" in record:  # a correlation: "table:rowid" identities
            found.append(frozenset(int(i.split(":", 1)[1]) for i in json.loads(record["event_ids"])))
        elif "sign_in" in record:  # the native rule's twin
            found.append(frozenset((record["sign_in"], record["change"])))
        else:
            found.append(frozenset((record["rowid"],)))
    return found


def score(docs: Iterable[dict[str, Any]], scenario: Scenario, sql: dict[str, str]) -> dict[str, Score]:
    """Run every query on ``docs`` and attribute each alert to the incidents its events belong to."""
    connection = connect()
    loaded = load(connection, docs)
    owner: dict[tuple[str, ...], str] = {
        scenario_key(record): incident.name
        for incident in scenario.incidents
        for record in (*incident.operations, *incident.activities)
    }
    incident_of = {rowid: owner.get(record_key(doc)) for rowid, doc in enumerate(loaded, start=1)}
    scores: dict[str, Score] = {}
    for name, query in sql.items():
        result = scores[name] = Score(alerts=run(connection, query))
        for alert in result.alerts:
            names = {incident_of[rowid] for rowid in alert} - {None}
            result.incidents.update(str(n) for n in names)
            if not names:
                result.false_positives.append(alert)
    return scores
