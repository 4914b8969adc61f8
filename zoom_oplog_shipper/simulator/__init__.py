"""A Zoom report API simulator for testing pipelines (not a Zoom replacement).

Serves ``POST /oauth/token``, ``GET /v2/report/operationlogs`` and ``GET /v2/report/activities``
(sign-in/sign-out activity logs) as Zoom documents them, with every
undocumented behaviour, rate limit and fault as a switch, plus ``/_sim/`` admin endpoints. Standard
library and orjson only. See docs/simulator.md.
"""

from zoom_oplog_shipper.simulator._app import (
    ACTIVITIES_PATH,
    LOGS_PATH,
    TOKEN_PATH,
    SimulatedDisconnectError,
    Simulator,
    add_months,
)
from zoom_oplog_shipper.simulator._cli import add_arguments, config_from_args, run
from zoom_oplog_shipper.simulator._config import (
    FAULT_KINDS,
    SimulatorConfig,
    parse_duration,
    parse_fault_schedule,
    parse_tz_offset,
)
from zoom_oplog_shipper.simulator._data import (
    CATEGORY_FILTERS,
    category_key,
    generate_activity_records,
    generate_records,
    load_jsonl,
)
from zoom_oplog_shipper.simulator._endpoints import ENDPOINTS, STREAMS, ReportEndpoint
from zoom_oplog_shipper.simulator._incidents import Incident, Scenario, incident_scenario
from zoom_oplog_shipper.simulator._server import RunningServer, serve_in_thread

__all__ = [
    "ACTIVITIES_PATH",
    "CATEGORY_FILTERS",
    "ENDPOINTS",
    "FAULT_KINDS",
    "LOGS_PATH",
    "STREAMS",
    "TOKEN_PATH",
    "Incident",
    "ReportEndpoint",
    "RunningServer",
    "Scenario",
    "SimulatedDisconnectError",
    "Simulator",
    "SimulatorConfig",
    "add_arguments",
    "add_months",
    "category_key",
    "config_from_args",
    "generate_activity_records",
    "generate_records",
    "incident_scenario",
    "load_jsonl",
    "parse_duration",
    "parse_fault_schedule",
    "parse_tz_offset",
    "run",
    "serve_in_thread",
]
