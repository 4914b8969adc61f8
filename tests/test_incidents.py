"""The simulator's incidents scenario (zoom_oplog_shipper/simulator/_incidents.py): seeded, inside its
30 days, every incident's records served, and the switch that selects it. What the rules make of it:
tests/test_detections.py."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from zoom_oplog_shipper.simulator import (
    Simulator,
    SimulatorConfig,
    add_arguments,
    config_from_args,
    incident_scenario,
)
from zoom_oplog_shipper.simulator._incidents import DAYS

END = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)


def test_same_seed_same_scenario_other_seed_other_baseline() -> None:
    first, again, other = incident_scenario(7, END), incident_scenario(7, END), incident_scenario(8, END)
    assert first == again
    assert first.operations != other.operations and first.activities != other.activities
    assert [i.name for i in first.incidents] == [i.name for i in other.incidents]


def test_records_lie_in_the_days_before_end_sorted_and_hold_every_incident() -> None:
    scenario = incident_scenario(1, END)
    for records in (scenario.operations, scenario.activities):
        times = [r["time"] for r in records]
        assert times == sorted(times)
        assert (END - timedelta(days=DAYS + 1)).strftime("%Y-%m-%dT%H:%M:%SZ") <= times[0]
        assert times[-1] < END.strftime("%Y-%m-%dT%H:%M:%SZ")
    for incident in scenario.incidents:
        assert incident.rules and (incident.operations or incident.activities)
        assert all(r in scenario.operations for r in incident.operations)
        assert all(r in scenario.activities for r in incident.activities)
    names = [i.name for i in scenario.incidents]
    assert len(names) == len(set(names))
    batched = {n.removesuffix("-batched") for n in names if n.endswith("-batched")}
    assert batched <= set(names) | {"authenticated-join-off"}


def test_the_baseline_has_near_misses_below_each_threshold() -> None:
    scenario = incident_scenario(0, END)
    incident_records = {id(r) for i in scenario.incidents for r in (*i.operations, *i.activities)}
    baseline = [r for r in scenario.operations if id(r) not in incident_records]
    deletions = [r for r in baseline if r["operation_detail"].startswith(("Delete User", "Deactivate User"))]
    recordings = [r for r in baseline if r["operation_detail"].startswith("Delete cloud recording")]
    assert len(deletions) >= 4 and len(recordings) >= 19
    assert any(
        " - " in r["operation_detail"].split(": from", 1)[1] for r in baseline if ": from" in r["operation_detail"]
    )


def test_the_simulator_serves_the_scenario_for_both_streams() -> None:
    sim = Simulator(SimulatorConfig(scenario="incidents", seed=2), now=lambda: END)
    assert sim.scenario == incident_scenario(2, END)
    assert sim.records() == sim.scenario.operations
    assert sim.records(stream="activities") == sim.scenario.activities


def test_the_switch_selects_the_scenario_and_a_bad_one_is_refused() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert config_from_args(parser.parse_args(["--scenario", "incidents", "--seed", "3"])).scenario == "incidents"
    assert config_from_args(parser.parse_args([])).scenario == "generated"
    with pytest.raises(ValueError, match="scenario must be one of generated, incidents"):
        SimulatorConfig(scenario="attack")
