"""The report endpoints the simulator serves: each one a declaration, every behaviour shared."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from zoom_oplog_shipper.simulator._config import ACTIVITY_SCOPES, REPORT_SCOPES
from zoom_oplog_shipper.simulator._data import iter_activities, iter_generated

Generator = Callable[[int, int, int, datetime], Iterator[tuple[int, dict[str, str]]]]


@dataclass(frozen=True)
class ReportEndpoint:
    """What differs between two report endpoints; queries, paging, limits and faults do not.

    ``stream`` names the record set (``?stream=`` of the admin records endpoint, ``stream=`` of
    ``Simulator.add_records``); ``label`` names the endpoint in ``stats()`` and fault schedules.
    """

    stream: str
    path: str
    label: str
    records_field: str
    scopes: tuple[str, ...]
    generate: Generator
    category_filter: bool


# stream, path, label, records field, scopes, generator, category filter
OPERATIONS = ReportEndpoint(
    "operations", "/v2/report/operationlogs", "logs", "operation_logs", REPORT_SCOPES, iter_generated, True
)
ACTIVITIES = ReportEndpoint(
    "activities", "/v2/report/activities", "activities", "activity_logs", ACTIVITY_SCOPES, iter_activities, False
)
ENDPOINTS = (OPERATIONS, ACTIVITIES)
BY_PATH = {endpoint.path: endpoint for endpoint in ENDPOINTS}
BY_LABEL = {endpoint.label: endpoint for endpoint in ENDPOINTS}
BY_STREAM = {endpoint.stream: endpoint for endpoint in ENDPOINTS}
STREAMS = tuple(BY_STREAM)


def endpoint_for_stream(stream: str) -> ReportEndpoint:
    """The endpoint serving ``stream``; ValueError naming the known streams otherwise."""
    endpoint = BY_STREAM.get(stream)
    if endpoint is None:
        msg = f"unknown stream {stream!r}: use one of {', '.join(STREAMS)}"
        raise ValueError(msg)
    return endpoint
