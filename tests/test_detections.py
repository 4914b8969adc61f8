"""The detection rules (detections/): every rule converts where docs/detections.md says, the
committed queries are what `python -m detections` makes of the rules today, and every rule fires on
its incidents (batched-detail variants included) and on nothing else, evaluated with a real query
engine (SQLite, Elasticsearch's array semantics) on the events the program prints for the
simulator's incidents scenario."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from conftest import simulator_env
from sigma.collection import SigmaCollection
from sigma.types import SigmaString

from detections.convert import CONVERTED, RULES, TARGETS, alerts, generate, load_rules, rule_name, written
from detections.evaluate import connect, load
from detections.pipelines import EcsSqliteBackend, LokiArrayValues
from detections.proof import Score, queries, score
from zoom_oplog_shipper.mapping import EventContext
from zoom_oplog_shipper.records import record_time
from zoom_oplog_shipper.simulator import Scenario, Simulator, SimulatorConfig, serve_in_thread
from zoom_oplog_shipper.simulator._incidents import DAYS
from zoom_oplog_shipper.streams.operations.ecs import to_ecs

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs" / "detections.md"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return generate()


def test_committed_queries_are_a_fresh_conversion(generated: dict[str, str]) -> None:
    current = written(CONVERTED)
    differ = sorted(name for name in set(generated) | set(current) if generated.get(name) != current.get(name))
    assert differ == [], f"regenerate with `python -m detections`: {differ}"


def test_every_rule_has_what_an_analyst_needs() -> None:
    for path in sorted(RULES.glob("*.yml")):
        rule = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key in ("title", "id", "description", "level", "tags", "falsepositives"):
            assert rule.get(key), f"{path.name}: no {key}"
        assert any(tag.startswith("attack.t") for tag in rule["tags"]), f"{path.name}: no ATT&CK technique"
        if "correlation" not in rule:
            assert rule.get("fields"), f"{path.name}: no fields"
            assert rule["logsource"] == {"product": "zoom", "service": rule["logsource"]["service"]}


def test_every_alerting_rule_converts_for_every_backend_but_the_documented_gaps(generated: dict[str, str]) -> None:
    # Lucene has no aggregation (correlations) and no field-to-field comparison; everything else converts.
    missing = {
        (target.name, rule_name(rule))
        for rule in load_rules().rules
        if alerts(rule)
        for target in TARGETS
        if f"{target.name}/{rule_name(rule)}.{target.extension}" not in generated
    }
    lucene_gaps = {
        "zoom_bulk_recording_deletion",
        "zoom_many_users_from_one_address",
        "zoom_mass_user_deletion",
        "zoom_privileged_role_granted_then_removed",
        "zoom_privileged_role_self_granted",
        "zoom_user_sign_in_from_many_addresses",
    }
    assert missing == {("lucene", name) for name in lucene_gaps}


# --- proven on incidents: the real program's events from the simulator's incidents scenario -----

SEED = 0


def shipped_events(seed: int, tmp_path: Path) -> tuple[list[dict[str, Any]], Scenario]:
    """Serve the incidents scenario, run the real program for both streams, return the ECS lines it printed."""
    sim = Simulator(SimulatorConfig(scenario="incidents", seed=seed))
    assert sim.scenario is not None
    docs: list[dict[str, Any]] = []
    with serve_in_thread(sim) as server:
        env = {
            **os.environ,
            **simulator_env(sim, server.base_url, tmp_path),
            "ZOOM_BACKFILL_START": (sim.now() - timedelta(days=DAYS + 2)).strftime("%Y-%m-%d"),
        }
        for stream in ("operations", "activities"):
            command = [sys.executable, "-m", "zoom_oplog_shipper", "run", "--stream", stream]
            done = subprocess.run(command, env=env, capture_output=True, check=True, timeout=120)
            docs += [orjson.loads(line) for line in done.stdout.splitlines()]
    expected = len(sim.scenario.operations) + len(sim.scenario.activities)
    assert len(docs) == expected, "the program did not print every record of the scenario"
    return docs, sim.scenario


@pytest.fixture(scope="module")
def proof(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, dict[str, Score]]:
    docs, scenario = shipped_events(SEED, tmp_path_factory.mktemp("incidents"))
    return scenario, score(docs, scenario, queries())


def expected_rules(scenario: Scenario) -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = {}
    for incident in scenario.incidents:
        for rule in incident.rules:
            wanted.setdefault(rule, set()).add(incident.name)
    return wanted


def test_every_rule_has_incidents_and_every_change_rule_a_batched_variant(
    proof: tuple[Scenario, dict[str, Score]],
) -> None:
    scenario, scores = proof
    wanted = expected_rules(scenario)
    assert set(wanted) == set(scores)  # every alerting rule (and the native one) has a story
    change_rules = {rule for rule, incidents in wanted.items() if any(i.endswith("-batched") for i in incidents)}
    assert len(change_rules) >= 11


def test_every_rule_fires_on_its_incidents_including_the_batched_variants(
    proof: tuple[Scenario, dict[str, Score]],
) -> None:
    scenario, scores = proof
    missed = {rule: sorted(incidents - scores[rule].incidents) for rule, incidents in expected_rules(scenario).items()}
    assert {rule: names for rule, names in missed.items() if names} == {}


def test_no_rule_fires_on_the_baseline(proof: tuple[Scenario, dict[str, Score]]) -> None:
    _, scores = proof
    assert {rule: len(s.false_positives) for rule, s in scores.items() if s.false_positives} == {}


def test_no_rule_fires_on_an_incident_it_is_not_about(proof: tuple[Scenario, dict[str, Score]]) -> None:
    scenario, scores = proof
    wanted = expected_rules(scenario)
    assert {rule: sorted(s.incidents - wanted[rule]) for rule, s in scores.items() if s.incidents - wanted[rule]} == {}


@pytest.mark.parametrize(
    ("term", "matches"),
    [("security - sign in with two-factor authentication: off", True), ("security - waiting room: off", False)],
)
def test_loki_reads_one_change_of_a_batched_detail(term: str, matches: bool) -> None:
    # Loki's json parser gives an array as its JSON text; the pipeline's regex must stay inside one change.
    changes = [
        {
            "section": "Security",
            "setting": "Waiting Room",
            "from": "Off",
            "to": "On",
            "setting_to": "security - waiting room: on",
        },
        {
            "section": "Security",
            "setting": "Sign in with Two-Factor Authentication",
            "from": "On",
            "to": "Off",
            "setting_to": "security - sign in with two-factor authentication: off",
        },
    ]
    regex = LokiArrayValues().apply_value("zoom.operation.changes.setting_to", SigmaString(term))
    assert regex is not None
    text = orjson.dumps(changes).decode()  # compact, as Vector and Fluent Bit write JSON
    assert (re.fullmatch(str(regex.regexp), text) is not None) is matches


def test_the_docs_list_every_rule() -> None:
    text = DOCS.read_text(encoding="utf-8")
    names = [rule_name(rule) for rule in load_rules().rules if alerts(rule)]
    names += [path.stem for path in (ROOT / "detections" / "native").glob("*.yml")]
    assert [name for name in names if f"| `{name}`" not in text] == []


SEMANTICS_RULE = """
title: semantics probe
id: 00000000-0000-4000-8000-000000000001
status: test
logsource: {product: zoom, service: operation}
detection:
  setting: {zoom.operation.changes.setting: Waiting Room}
  value: {zoom.operation.changes.to: "Off"}
  other_tag: {tags: admin-role-granted}
  condition: %s
level: low
"""


@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        ("setting and value", True),  # two fields of one list of changes match two different changes
        ("not setting", False),  # a negated condition holds only when no value matches
        ("not other_tag", True),
    ],
)
def test_sqlite_is_no_more_precise_than_elasticsearch(condition: str, matches: bool) -> None:
    # The batched record turned the waiting room ON and two-factor sign-in off: Elasticsearch matches
    # "Waiting Room" AND "Off" on it (each field on its own list), and the evaluation must too.
    record = {
        "action": "Update",
        "category_type": "Account",
        "operator": "a@example.com",
        "operation_detail": "Security  - Waiting Room: from Off to On"
        " - Sign in with Two-Factor Authentication: from On to Off",
        "time": "2026-11-02T09:30:00Z",
    }
    event = orjson.loads(
        orjson.dumps(to_ecs(record, EventContext("0" * 32, "acct", "2026-11-02T09:35:00.000Z", record_time(record))))
    )
    connection = connect()
    load(connection, [event])
    (query,) = EcsSqliteBackend().convert(SigmaCollection.from_yaml(SEMANTICS_RULE % condition))
    assert (len(connection.execute(query).fetchall()) == 1) is matches
