"""A log type is one declaration: a third stream, declared here alone, syncs through the real engine.

Nothing in the package knows this stream. The test declares it (path, records field, an extra query
parameter, scopes, and its ECS and OCSF mappers, written below to the package's mapper contract;
``raw`` is every stream's), serves it with its own pytest-httpserver handler, and runs it, in each
output format, through `run`'s own composition (`pipeline.run_pass`, given the stream) and through
the public parts composed by hand (lock, store, client reader, engine, formatter, encoder).
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import NOW, SECRET, FakeClock, make_config
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from zoom_oplog_shipper import pipeline
from zoom_oplog_shipper.config import Config
from zoom_oplog_shipper.formats import OUTPUT_FORMATS
from zoom_oplog_shipper.formats.ecs import envelope
from zoom_oplog_shipper.formats.ocsf import INFORMATIONAL, SUCCESS, classified, event_time, metadata
from zoom_oplog_shipper.mapping import EventContext, EventMapping
from zoom_oplog_shipper.output import PageWriter, make_encoder, make_formatter
from zoom_oplog_shipper.records import canonical
from zoom_oplog_shipper.state import RunLock, StateStore
from zoom_oplog_shipper.streams import Endpoint, Stream
from zoom_oplog_shipper.sync import SyncEngine
from zoom_oplog_shipper.zoom_client import ZoomClient


def to_ecs_x(record: dict[str, Any], context: EventContext) -> dict[str, Any]:
    """The throwaway stream's ECS mapping: the shared envelope and the record's own fields."""
    return envelope(record, context, "zoom.telephony", (["network"], ["info"]), {}, {"telephony": dict(record)})


def to_ocsf_x(record: dict[str, Any], context: EventContext) -> dict[str, Any]:
    """The throwaway stream's OCSF mapping: the shared classification and metadata, the record unmapped."""
    time, labels = event_time(context)
    event = classified(
        (4001, "Network Activity"), (99, "Other"), "Other", INFORMATIONAL, SUCCESS, time,
        metadata(record, context, "Telephony", "telephony", labels),
    )  # fmt: skip
    event["unmapped"] = {"telephony_log": record}
    return event


def telephony_mappers() -> EventMapping:
    return {"ecs": to_ecs_x, "ocsf": to_ocsf_x}


TELEPHONY = Stream(
    key="telephony",
    title="telephony logs",
    endpoint=Endpoint(
        path="/report/telephony",
        records_field="telephony_logs",
        scopes=("report:read:telephony:admin", "report:read:admin"),
        permission="Reports > Telephony (view)",
    ),
    mappers=telephony_mappers,
    query=lambda _config: {"direction": "both"},
)

#: Output format -> the record a printed document carries.
RECORD_OF = {
    "ecs": lambda doc: orjson.loads(doc["event"]["original"]),
    "ocsf": lambda doc: doc["unmapped"]["telephony_log"],
    "raw": lambda doc: doc["record"],
}
#: Output format -> the event id of a printed document.
ID_OF = {
    "ecs": lambda doc: doc["event"]["id"],
    "ocsf": lambda doc: doc["metadata"]["uid"],
    "raw": lambda doc: doc["event"]["id"],
}


class TelephonyEndpoint:
    """The telephony report on a test server: Zoom's paging (newest first, `to` inclusive, UTC days, page tokens)."""

    def __init__(self, server: HTTPServer) -> None:
        self.records: list[dict[str, Any]] = []
        self.queries: list[dict[str, str]] = []
        server.expect_request("/oauth/token", method="POST").respond_with_handler(self._token)
        server.expect_request("/v2/report/telephony", method="GET").respond_with_handler(self._report)
        self.base = server.url_for("").rstrip("/")

    @staticmethod
    def _json(status: int, body: Any) -> Response:
        return Response(orjson.dumps(body), status=status, headers={"content-type": "application/json"})

    def _token(self, request: Request) -> Response:
        basic = base64.b64encode(f"client-id:{SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {basic}":
            return self._json(401, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"})
        return self._json(200, {"access_token": "tel-token", "token_type": "bearer", "expires_in": 3600,
                                "scope": " ".join(TELEPHONY.endpoint.scopes)})  # fmt: skip

    def _report(self, request: Request) -> Response:
        args = dict(request.args)
        self.queries.append(args)
        if request.headers.get("Authorization") != "Bearer tel-token":
            return self._json(401, {"code": 124, "message": "Invalid access token."})
        rows = sorted(
            (r for r in self.records if args["from"] <= r["time"][:10] <= args["to"]),
            key=lambda r: str(r["time"]),
            reverse=True,
        )
        size, offset = int(args["page_size"]), int(args.get("next_page_token") or 0)
        more = offset + size < len(rows)
        return self._json(200, {"from": args["from"], "to": args["to"], "page_size": size,
                                "next_page_token": str(offset + size) if more else "",
                                "telephony_logs": rows[offset : offset + size]})  # fmt: skip


def call(time: datetime, n: int) -> dict[str, Any]:
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "caller": f"+1555010{n % 100:02d}", "result": "answered"}


def compose(config: Config, clock: FakeClock, out: io.BytesIO) -> None:
    """One pass of the stream through the engine, composed by hand from the public parts."""
    path = TELEPHONY.state_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = RunLock(path)
    assert lock.acquire()
    store = StateStore.open(path, config.account_id, TELEPHONY.partition_key(config))
    try:
        SyncEngine(
            pipeline.engine_options(config),
            ZoomClient(config, clock=clock).reader(TELEPHONY),
            store,
            PageWriter(out),
            make_formatter(config.output_format, config.account_id, config.include_original, TELEPHONY),
            make_encoder(config.max_line_bytes, config.output_format),
            clock,
        ).run()
    finally:
        store.close()
        lock.release()


def run_pass(config: Config, clock: FakeClock, out: io.BytesIO) -> None:
    """One pass through `run`'s own composition, given the stream."""
    assert pipeline.run_pass(config, clock, None, out, stop=pipeline.StopFlag(), stream=TELEPHONY) == 0


PASSES = {"engine": compose, "run_pass": run_pass}


def originals(docs: list[dict[str, Any]], output_format: str) -> Counter[bytes]:
    return Counter(canonical(RECORD_OF[output_format](d)) for d in docs)


def test_every_output_format_has_a_record_reader() -> None:
    assert set(RECORD_OF) == set(ID_OF) == set(OUTPUT_FORMATS)


def test_a_format_the_stream_does_not_map_is_refused_with_the_stream_and_format_named() -> None:
    ecs_only = Stream("ecs-only", "ECS-only logs", TELEPHONY.endpoint, lambda: {"ecs": to_ecs_x})
    assert make_formatter("raw", "acct", False, ecs_only)({"a": 1}, "ab" * 16, None, "2026-01-01T00:00:00.000Z") == {
        "event": {"id": "ab" * 16},
        "record": {"a": 1},
    }  # raw is every stream's
    with pytest.raises(LookupError, match="ECS-only logs have no ocsf mapper"):
        make_formatter("ocsf", "acct", False, ecs_only)


@pytest.mark.parametrize("output_format", OUTPUT_FORMATS)
@pytest.mark.parametrize("how", list(PASSES))
def test_a_stream_declared_in_a_test_syncs_through_the_engine(
    httpserver: HTTPServer, tmp_path: Path, how: str, output_format: str
) -> None:
    endpoint = TelephonyEndpoint(httpserver)

    def sync(config: Config, clock: FakeClock) -> list[dict[str, Any]]:
        out = io.BytesIO()
        PASSES[how](config, clock, out)
        return [orjson.loads(line) for line in out.getvalue().splitlines()]

    # Over three days and three pages: a same-second burst, and identical twins.
    endpoint.records = [call(NOW - timedelta(minutes=7 * n), n) for n in range(640)]
    endpoint.records += [call(NOW - timedelta(hours=5), n) for n in range(40)] + [call(NOW - timedelta(hours=9), 1)] * 3
    clock = FakeClock(NOW)
    config = make_config(
        tmp_path,
        endpoint.base,
        backfill_start=NOW - timedelta(days=4),
        include_original=True,
        output_format=output_format,
    )

    docs = sync(config, clock)
    if output_format == "ecs":  # the test's own mappers made these
        assert {d["event"]["dataset"] for d in docs} == {"zoom.telephony"}
    elif output_format == "ocsf":
        assert {(d["class_uid"], d["metadata"]["log_name"]) for d in docs} == {(4001, "telephony")}
    assert originals(docs, output_format) == Counter(canonical(r) for r in endpoint.records)
    assert len({ID_OF[output_format](d) for d in docs}) == len(docs)
    assert all(q["direction"] == "both" and "category_type" not in q for q in endpoint.queries)
    assert any(q.get("next_page_token") for q in endpoint.queries)  # it did page

    clock.advance(3600)
    assert sync(config, clock) == []  # a second run sends nothing

    later = call(clock.now() - timedelta(minutes=2), 999)
    endpoint.records.append(later)
    clock.advance(600)
    assert originals(sync(config, clock), output_format) == Counter([canonical(later)])

    path = TELEPHONY.state_path(config)
    assert path.exists() and "telephony" in path.name
    store = StateStore.open(path, config.account_id, "telephony", readonly=True)
    try:
        state = store.describe()
    finally:
        store.close()
    assert state["category_type"] == "telephony" and state["watermark"] is not None
    assert state["fingerprints"] > 0
    if how == "run_pass":  # the last pass (the one new record), kept in the stream's store
        assert (state["last_run"]["exit_code"], state["last_run"]["emitted"]) == (0, 1)
