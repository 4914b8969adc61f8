"""Transform-only throughput: raw Zoom pages in memory to ECS lines, beside the orjson round trip.

``ours`` runs, page by page, the functions the engine runs (no copy of its loop): ``scan_page``
(record time, canonical form, fingerprint with the occurrence count, cutoff and remembered
fingerprints) and ``render_page`` (the ``ecs`` formatter and the encoder within the line limit, the
state entries), then writes the page's lines with the engine's ``PageWriter`` (to /dev/null).
``ceiling`` is ``orjson.loads`` of the page and ``orjson.dumps`` of each record, written the same
way: no Python-level work per record at all, the practical ceiling for any JSON-in/JSON-out
Python program.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from benchmarks.harness import SIM_ACCOUNT, summarize
from zoom_oplog_shipper.formats import ECS
from zoom_oplog_shipper.output import PageWriter, encode, make_encoder, make_formatter
from zoom_oplog_shipper.pages import PAGE_SIZE
from zoom_oplog_shipper.records import canonical, epoch, fingerprint, record_time, rfc3339_millis
from zoom_oplog_shipper.scan import Cursor, render_page, scan_page
from zoom_oplog_shipper.settings import DEFAULT_MAX_LINE_BYTES
from zoom_oplog_shipper.simulator import generate_records
from zoom_oplog_shipper.streams import OPERATIONS
from zoom_oplog_shipper.streams.operations.detail import Detail


def make_pages(records: int, seed: int = 1) -> list[bytes]:
    """``records`` generated records as the raw bodies of 300-record pages, newest first (as served)."""
    days = 100
    per_day = -(-records // days)
    generated = generate_records(seed, days, per_day, datetime.now(UTC))[:records]
    generated.reverse()
    pages = []
    for i in range(0, len(generated), PAGE_SIZE):
        chunk = generated[i : i + PAGE_SIZE]
        body = {"page_size": PAGE_SIZE, "next_page_token": "t" * 35, OPERATIONS.endpoint.records_field: chunk}
        pages.append(orjson.dumps(body))
    return pages


def ours(pages: list[bytes]) -> int:
    """Pages to ECS lines through the engine's page functions; returns the number of lines."""
    account = SIM_ACCOUNT
    formatter = make_formatter("ecs", account, False)
    max_bytes = DEFAULT_MAX_LINE_BYTES
    encoder = make_encoder(max_bytes, "ecs")  # as the pipeline builds it
    now = datetime.now(UTC)
    created = rfc3339_millis(now)
    cutoff = now - timedelta(days=365)
    seen: set[bytes] = set()
    cursor = Cursor()
    emitted = 0
    with open(os.devnull, "wb") as sink:
        writer = PageWriter(sink)  # the engine's writer: the lines are written, and not kept
        for body in pages:
            scan = scan_page(
                orjson.loads(body)[OPERATIONS.endpoint.records_field],
                cursor,
                account_id=account,
                cutoff=cutoff,
                seen=seen,
                ordered=True,
                inclusive_bound=None,
            )
            cursor = scan.cursor
            page = render_page(scan.candidates, formatter, encoder, created, epoch(now))
            writer.write_page(page.lines)
            emitted += len(page.lines)
    return emitted


def ceiling(pages: list[bytes]) -> int:
    """``orjson.loads`` + ``orjson.dumps`` of the same records; returns the number of lines."""
    dumps = orjson.dumps
    emitted = 0
    with open(os.devnull, "wb") as sink:
        writer = PageWriter(sink)
        for body in pages:
            lines = [dumps(r) for r in orjson.loads(body)[OPERATIONS.endpoint.records_field]]
            writer.write_page(lines)
            emitted += len(lines)
    return emitted


def breakdown(records: int, repeat: int) -> dict[str, float]:
    """Microseconds per record of each step of ``ours`` (best of ``repeat``), to show where the time goes."""
    import zoom_oplog_shipper.streams.operations.ecs as ecs_module

    pages = make_pages(records)
    formatter = make_formatter("ecs", SIM_ACCOUNT, False)
    created = rfc3339_millis(datetime.now(UTC))
    # Per page, as the engine works: a step's outputs are dropped after each page, so the timing
    # is not skewed by holding every output at once (orjson's results are ~4 KiB allocations).
    chunks = []
    for body in pages:
        recs = orjson.loads(body)[OPERATIONS.endpoint.records_field]
        times = [record_time(r) for r in recs]
        canons = [canonical(r) for r in recs]
        fps = [fingerprint(SIM_ACCOUNT, c, 0).hex() for c in canons]
        docs = [formatter(r, fp, t, created) for r, fp, t in zip(recs, fps, times, strict=True)]
        chunks.append((recs, times, canons, fps, docs))
    count = sum(len(c[0]) for c in chunks)

    def best(fn: Callable[[], object]) -> float:
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        return min(runs) / count * 1e6

    def to_ecs_all() -> None:
        for recs, times, _, fps, _ in chunks:
            [formatter(r, fp, t, created) for r, fp, t in zip(recs, fps, times, strict=True)]

    steps: dict[str, Callable[[], object]] = {
        "orjson.loads (page)": lambda: [len(orjson.loads(b)) for b in pages],
        "record_time": lambda: [[record_time(r) for r in c[0]] for c in chunks],
        "canonical": lambda: [len([canonical(r) for r in c[0]]) for c in chunks],
        "fingerprint": lambda: [len([fingerprint(SIM_ACCOUNT, x, 0) for x in c[2]]) for c in chunks],
        "to_ecs (with detail)": to_ecs_all,
        "encode": lambda: [len([encode(d, DEFAULT_MAX_LINE_BYTES, ECS) for d in c[4]]) for c in chunks],
        "epoch": lambda: [[epoch(t) for t in c[1] if t is not None] for c in chunks],
    }
    out = {name: best(fn) for name, fn in steps.items()}
    names = vars(ecs_module)
    real = names["parse_detail"]
    names["parse_detail"] = lambda *_args: Detail()  # what the mapping costs when no detail is understood
    try:
        out["to_ecs (detail parsing off)"] = best(steps["to_ecs (with detail)"])
    finally:
        names["parse_detail"] = real
    out["operation_detail parsing (difference)"] = out["to_ecs (with detail)"] - out["to_ecs (detail parsing off)"]
    out["orjson.dumps (record, ceiling)"] = best(lambda: [len([orjson.dumps(r) for r in c[0]]) for c in chunks])
    return {k: round(v, 2) for k, v in out.items()}


def _rates(fn: Callable[[list[bytes]], int], pages: list[bytes], records: int, repeat: int) -> dict[str, Any]:
    rates = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        produced = fn(pages)
        elapsed = time.perf_counter() - start
        if produced != records:
            msg = f"transform {fn.__name__} produced {produced} lines for {records} records"
            raise AssertionError(msg)
        rates.append(records / elapsed)
    return summarize(rates)


def _distinct_details(pages: list[bytes]) -> float:
    """The share of records whose ``operation_detail`` text no earlier record had."""
    details = [
        r.get("operation_detail") for body in pages for r in orjson.loads(body)[OPERATIONS.endpoint.records_field]
    ]
    return len(set(details)) / len(details)


def measure(records: int, repeat: int) -> dict[str, Any]:
    """Records/s of ``ours`` and ``ceiling`` over ``repeat`` alternating runs, and their ratio."""
    pages = make_pages(records)
    ours(pages[:2])  # warm caches and imports
    ours_runs: list[float] = []
    ceiling_runs: list[float] = []
    for _ in range(repeat):  # alternate so drifting machine load hits both alike
        ours_runs += _rates(ours, pages, records, 1)["runs"]
        ceiling_runs += _rates(ceiling, pages, records, 1)["runs"]
    ours_s, ceiling_s = summarize(ours_runs), summarize(ceiling_runs)
    return {
        "records": records,
        "distinct_details": _distinct_details(pages),
        "us_per_record_median": 1e6 / ours_s["median"],
        "us_per_record": breakdown(min(records, 30_000), max(3, repeat)),
        "ours_records_per_s": ours_s,
        "ceiling_records_per_s": ceiling_s,
        "ratio_to_ceiling": ours_s["median"] / ceiling_s["median"],
    }
