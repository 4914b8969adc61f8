"""The benchmark entry point: ``python -m benchmarks [--smoke] [--out DIR] [--profile N]``.

Measures, with the simulator as a separate process on loopback (rate limits off):

1. backfill throughput end to end (simulator -> ``zoom-oplog-shipper run`` -> stdout to a file),
2. the shipper's peak RSS for the same runs,
3. transform-only throughput beside the orjson round trip,
4. the curl + jq baseline (benchmarks/baseline.sh) against the same simulator and records,
5. API requests of the backfill against the ideal, and of hourly incremental runs,
6. start-up wall time of ``--version`` and of a run that finds nothing new,
7. state size on disk per remembered fingerprint,
8. backfills of 10 to 180 days of history under real API latency (every answer delayed) at
   --max-rps 5, 10 and 20, against the rate limit's floor and the requests of one window at a
   time (issue 18),

and writes ``results.json`` and ``results.md`` (a markdown table with each budget met or missed).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks import report, transform
from benchmarks.harness import (
    BASELINE_SH,
    REPO,
    SIM_ACCOUNT,
    SIM_CLIENT_ID,
    SIM_SECRET,
    BenchmarkError,
    ChildRun,
    SimulatorProcess,
    api_requests,
    child_env,
    count_lines,
    run_child,
    shipper_command,
    shipper_env,
    summarize,
)
from zoom_oplog_shipper.formats.ecs import UNPARSABLE_TIME_TAG
from zoom_oplog_shipper.pages import PAGE_SIZE
from zoom_oplog_shipper.settings import DEFAULT_LOOKBACK, parse_duration

#: Generated history for the backfills: the sizes are spread evenly over this many days.
BACKFILL_DAYS = 100
#: The incremental account of issue 5: 5k records a day.
INCREMENTAL_PER_DAY = 5000
NEW_RECORDS = 100
#: Zoom allows a month per query; 28 days is a month in every calendar.
WINDOW_DAYS = 28
#: The latency backfill of issue 18: histories of these lengths, at this density (the issue's 36,000
#: records in 150 days), backfilled at each --max-rps with every answer delayed.
LATENCY_DAYS = (10, 45, 90, 150, 180)
LATENCY_RPS = (5.0, 10.0, 20.0)
LATENCY_PER_DAY = 240
_SUMMARY = re.compile(r"(\d+) records emitted, (\d+) pages, (\d+) requests, (\d+) retries, (\d+) windows, (\d+\.\d)s")


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    smoke: bool
    sizes: tuple[int, ...]
    repeat: dict[int, int]
    baseline_repeat: dict[int, int]
    transform_records: int
    transform_repeat: int
    startup_repeat: int
    empty_repeat: int
    #: The latency backfill: history lengths (days), --max-rps values, and the delay of every answer.
    latency_days: tuple[int, ...]
    latency_rps: tuple[float, ...]
    latency_s: float
    latency_repeat: int


def make_plan(args: argparse.Namespace) -> Plan:
    """The smoke plan (10k records, what CI runs) or the full one (10k, 100k and 1M)."""
    if args.smoke:
        sizes: tuple[int, ...] = tuple(args.sizes or (10_000,))
        smoke = ((10, 150), (10.0, 20.0))
        return Plan(True, sizes, dict.fromkeys(sizes, 3), dict.fromkeys(sizes, 2), 10_000, 3, 5, 3, *smoke, 0.4, 1)
    sizes = tuple(args.sizes or (10_000, 100_000, 1_000_000))
    repeat = {n: 3 if n >= 1_000_000 else 5 for n in sizes}
    baseline = {n: 1 if n >= 1_000_000 else 3 for n in sizes}
    return Plan(False, sizes, repeat, baseline, 100_000, 7, 15, 7, LATENCY_DAYS, LATENCY_RPS, 0.4, 3)


# -- helpers ------------------------------------------------------------------------------------


class Context:
    """Where the work files go, the child environment, and the timestamps of this benchmark."""

    def __init__(self, work: Path, keep: bool, sizes: tuple[int, ...]) -> None:
        self.work = work
        self.keep = keep
        self.sizes = sizes
        self.pycache = work / "pycache"
        self.shipper = shipper_command()
        self._n = 0

    def fresh_dir(self, name: str) -> Path:
        """A new empty directory under the work directory."""
        self._n += 1
        path = self.work / f"{self._n:03d}-{name}"
        path.mkdir(parents=True)
        return path

    def drop(self, path: Path) -> None:
        """Delete a big work file unless --keep."""
        if not self.keep:
            path.unlink(missing_ok=True)


def _check_run(run: ChildRun, what: str) -> None:
    if run.returncode != 0:
        msg = f"{what} exited with {run.returncode}: {run.stderr[-2000:]}"
        raise BenchmarkError(msg)


def _summary_counts(stderr: str) -> dict[str, int]:
    match = _SUMMARY.search(stderr)
    if not match:
        msg = f"no summary line in the shipper's stderr: {stderr[-1000:]}"
        raise BenchmarkError(msg)
    keys = ("emitted", "pages", "requests", "retries", "windows")
    counts = dict(zip(keys, map(int, match.groups()[:5]), strict=True))
    return {**counts, "engine_ms": round(float(match.group(6)) * 1000)}


def _state_show(ctx: Context, env: Mapping[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [*ctx.shipper, "state", "show", "--json"], env=dict(env), capture_output=True, timeout=120, check=False
    )
    if out.returncode != 0:
        msg = f"`state show` failed ({out.returncode}): {out.stderr.decode(errors='replace')[-1000:]}"
        raise BenchmarkError(msg)
    value = orjson.loads(out.stdout)
    if not isinstance(value, dict):
        msg = "`state show` did not print a JSON object"
        raise BenchmarkError(msg)
    return value


def _disk_bytes(state_dir: Path) -> int:
    """Bytes of the SQLite store and its side files (-wal, -shm), not the empty lock file."""
    return sum(p.stat().st_size for p in state_dir.iterdir() if ".sqlite3" in p.name)


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _backfill_range(today: date, days: int) -> tuple[datetime, date, date, int]:
    """Backfill start, the first and last day a backfill asks for, and the ideal number of windows.

    The shipper (and the baseline) ask from a day before ``start - lookback`` (time zones) through
    tomorrow; the ideal covers that with windows of WINDOW_DAYS days, `to` inclusive.
    """
    start = datetime.combine(today - timedelta(days=days + 1), datetime.min.time(), tzinfo=UTC)
    first = (start - DEFAULT_LOOKBACK).date() - timedelta(days=1)
    last = today + timedelta(days=1)
    return start, first, last, math.ceil(((last - first).days + 1) / WINDOW_DAYS)


# -- 1, 2, 4, 5, 7: backfills and the baseline --------------------------------------------------------


#: The activity and object types the baseline's jq mapping derives (ours may add more from the detail).
_CORE_TYPES = frozenset(("creation", "deletion", "change", "info", "user", "group"))
_CORE_RAW = ("action", "category_type", "operation_detail", "operator")


def _projection(doc: dict[str, Any]) -> bytes:
    """The fields both mappings produce: everything but event.id and what ours parses out of the detail.

    ``operation_detail`` parsing (zoom_oplog_shipper/detail.py) adds fields and related users that a
    hand-written jq filter would not have; they are left out of the comparison, not counted as equal.
    """
    event = doc.get("event", {})
    user = doc.get("user", {})
    related = doc.get("related", {}).get("user", [])
    raw = doc.get("zoom", {}).get("operation", {})
    kept = {
        "@timestamp": doc.get("@timestamp"),
        "ecs": doc.get("ecs"),
        "organization": doc.get("organization"),
        "data_stream": doc.get("data_stream"),
        "tags": [t for t in doc.get("tags", ()) if t == UNPARSABLE_TIME_TAG],
        "message": doc.get("message"),
        "user": {k: user[k] for k in ("name", "email") if k in user},
        "related_operator": [u for u in related if u == raw.get("operator")],
        "zoom": {k: raw[k] for k in _CORE_RAW if k in raw},
        "event": {k: event[k] for k in ("kind", "category", "module", "dataset", "action") if k in event},
        "types": [t for t in event.get("type", ()) if t in _CORE_TYPES],
    }
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)


def _projection_multiset(path: Path) -> Counter[bytes]:
    with open(path, "rb") as handle:
        return Counter(_projection(orjson.loads(line)) for line in handle if line.strip())


def equivalence(ours: Path, baseline: Path) -> dict[str, Any]:
    """Whether the baseline's jq mapping gives the same documents as ours (field by field, as multisets)."""
    a, b = _projection_multiset(ours), _projection_multiset(baseline)
    only_ours, only_baseline = a - b, b - a
    example = next(iter(only_ours), b"") or next(iter(only_baseline), b"")
    return {
        "equivalent": not only_ours and not only_baseline,
        "documents": sum(a.values()),
        "only_ours": sum(only_ours.values()),
        "only_baseline": sum(only_baseline.values()),
        "example_difference": example.decode(),
    }


def backfill(ctx: Context, size: int, repeat: int, baseline_repeat: int, *, last_size: bool) -> dict[str, Any]:
    """Backfill ``size`` records ``repeat`` times, run the baseline, and (for the last size) the state size."""
    per_day = size // BACKFILL_DAYS
    if per_day * BACKFILL_DAYS != size:
        msg = f"size {size} must be a multiple of {BACKFILL_DAYS}"
        raise BenchmarkError(msg)
    sim_dir = ctx.fresh_dir(f"sim-{size}")
    sim_args = ["--seed", "1", "--days", str(BACKFILL_DAYS), "--records-per-day", str(per_day)]
    today = datetime.now(UTC).date()
    start, first, last, windows = _backfill_range(today, BACKFILL_DAYS)
    ideal = 1 + math.ceil(size / PAGE_SIZE) + windows
    result: dict[str, Any] = {"records": size, "ideal_requests": ideal, "ideal_windows": windows}
    print(f"  backfill {size:,}: starting the simulator", file=sys.stderr, flush=True)
    with SimulatorProcess(sim_args, child_env(ctx.pycache), sim_dir / "simulator.log", start_timeout=900) as sim:
        total = sim.stats()["records_total"]
        if total != size:
            msg = f"the simulator holds {total} records, expected {size}"
            raise BenchmarkError(msg)
        runs: list[dict[str, Any]] = []
        state_dir = out = None
        for i in range(repeat):
            state_dir = ctx.fresh_dir(f"state-{size}-{i}")
            out = sim_dir / f"ours-{i}.ndjson"
            env = shipper_env(sim.base_url, state_dir, ctx.pycache, ZOOM_BACKFILL_START=start.isoformat())
            before, cpu0 = sim.stats(), sim.cpu_seconds()
            run = run_child([*ctx.shipper, "run"], env, out, timeout=3600)
            sim_cpu = sim.cpu_seconds() - cpu0
            _check_run(run, f"zoom-oplog-shipper run ({size} records)")
            requests = api_requests(before, sim.stats())
            lines = count_lines(out)
            if lines != size:
                msg = f"the backfill of {size} records printed {lines} lines; see {out}"
                raise BenchmarkError(msg)
            counts = _summary_counts(run.stderr)
            runs.append(
                {
                    "wall_s": run.wall_s,
                    "records_per_s": size / run.wall_s,
                    "max_rss_mb": run.max_rss_mb,
                    "cpu_s": run.cpu_s,
                    "simulator_cpu_s": sim_cpu,
                    "requests": requests,
                    "windows": counts["windows"],
                    "pages": counts["pages"],
                }
            )
            print(
                f"  backfill {size:,} #{i + 1}: {size / run.wall_s:,.0f} records/s, {run.max_rss_mb:.1f} MB, "
                f"{requests['total']} requests (ideal {ideal})",
                file=sys.stderr,
                flush=True,
            )
            if i < repeat - 1:
                ctx.drop(out)
        assert state_dir is not None and out is not None
        result["ours"] = {
            "records_per_s": summarize([r["records_per_s"] for r in runs]),
            "wall_s": summarize([r["wall_s"] for r in runs]),
            "max_rss_mb": summarize([r["max_rss_mb"] for r in runs]),
            "cpu_s": summarize([r["cpu_s"] for r in runs]),
            "simulator_cpu_s": summarize([r["simulator_cpu_s"] for r in runs]),
            "requests": runs[0]["requests"],
            "windows": runs[0]["windows"],
            "pages": runs[0]["pages"],
            "runs": runs,
        }
        result["baseline"] = _baseline(ctx, sim, sim_dir, size, first, last, baseline_repeat)
        base_rate = result["baseline"]["records_per_s"]["median"]
        result["ratio_to_baseline"] = result["ours"]["records_per_s"]["median"] / base_rate
        if size == min(ctx.sizes):
            result["equivalence"] = equivalence(out, sim_dir / "baseline-0.ndjson")
        ctx.drop(sim_dir / "baseline-0.ndjson")
        if last_size:
            env = shipper_env(sim.base_url, state_dir, ctx.pycache)
            result["state"] = _state_size(ctx, env, state_dir, sim)
        ctx.drop(out)
    return result


def _baseline(
    ctx: Context, sim: SimulatorProcess, sim_dir: Path, size: int, first: date, last: date, repeat: int
) -> dict[str, Any]:
    env = child_env(
        ctx.pycache,
        {
            "ZOOM_ACCOUNT_ID": SIM_ACCOUNT,
            "ZOOM_CLIENT_ID": SIM_CLIENT_ID,
            "ZOOM_CLIENT_SECRET": SIM_SECRET,
            "ZOOM_API_URL": f"{sim.base_url}/v2",
            "ZOOM_OAUTH_URL": f"{sim.base_url}/oauth/token",
            "BASELINE_FROM": first.isoformat(),
            "BASELINE_TO": last.isoformat(),
        },
    )
    runs: list[dict[str, Any]] = []
    for i in range(repeat):
        out = sim_dir / f"baseline-{i}.ndjson"
        before, cpu0 = sim.stats(), sim.cpu_seconds()
        run = run_child(["bash", str(BASELINE_SH)], env, out, timeout=7200)
        sim_cpu = sim.cpu_seconds() - cpu0
        _check_run(run, "benchmarks/baseline.sh")
        lines = count_lines(out)
        if lines != size:
            msg = f"the baseline printed {lines} lines for {size} records; see {out}"
            raise BenchmarkError(msg)
        runs.append(
            {
                "wall_s": run.wall_s,
                "records_per_s": size / run.wall_s,
                "cpu_s": run.cpu_s,
                "max_rss_mb": run.max_rss_mb,
                "simulator_cpu_s": sim_cpu,
                "requests": api_requests(before, sim.stats()),
            }
        )
        print(f"  baseline {size:,} #{i + 1}: {size / run.wall_s:,.0f} records/s", file=sys.stderr, flush=True)
        if i:
            ctx.drop(out)
    return {
        "records_per_s": summarize([r["records_per_s"] for r in runs]),
        "wall_s": summarize([r["wall_s"] for r in runs]),
        "cpu_s": summarize([r["cpu_s"] for r in runs]),
        "simulator_cpu_s": summarize([r["simulator_cpu_s"] for r in runs]),
        "requests": runs[0]["requests"],
        "runs": runs,
    }


def _state_size(ctx: Context, env: Mapping[str, str], state_dir: Path, sim: SimulatorProcess) -> dict[str, Any]:
    """State on disk after the backfill, and after one incremental run on top of it."""
    shown = _state_show(ctx, env)
    after_backfill: dict[str, Any] = {
        "bytes": _disk_bytes(state_dir),
        "fingerprints": int(shown["fingerprints"]),
    }
    out = state_dir.parent / f"{state_dir.name}-incremental.ndjson"
    before = sim.stats()
    run = run_child([*ctx.shipper, "run"], env, out, timeout=600)
    _check_run(run, "incremental run after the backfill")
    shown = _state_show(ctx, env)
    after_incremental: dict[str, Any] = {
        "bytes": _disk_bytes(state_dir),
        "fingerprints": int(shown["fingerprints"]),
        "requests": api_requests(before, sim.stats())["total"],
        "emitted": count_lines(out),
    }
    for entry in (after_backfill, after_incremental):
        entry["bytes_per_fingerprint"] = entry["bytes"] / max(1, entry["fingerprints"])
    return {"after_backfill": after_backfill, "after_incremental": after_incremental}


# -- 5, 6: incremental runs ---------------------------------------------------------------------------


def _new_records(now: datetime, count: int) -> list[dict[str, str]]:
    """``count`` plausible records with times in the last ``count`` seconds."""
    from zoom_oplog_shipper.simulator import generate_records

    records = generate_records(99, 1, count, now)[:count]
    for i, rec in enumerate(records):
        rec["time"] = (now - timedelta(seconds=i + 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return records


def _in_lookback(times: list[datetime], watermark: datetime, lookback: timedelta) -> int:
    cutoff = watermark - lookback
    return sum(1 for t in times if t >= cutoff)


def incremental(ctx: Context, lookback: str | None, empty_repeat: int) -> dict[str, Any]:
    """An hourly-style run on a 5k records/day account: nothing new, then 100 new records."""
    label = lookback or "default (24h)"
    span = parse_duration(lookback, "lookback") if lookback else DEFAULT_LOOKBACK
    sim_dir = ctx.fresh_dir(f"incremental-{lookback or 'default'}")
    sim_args = ["--seed", "2", "--days", "3", "--records-per-day", str(INCREMENTAL_PER_DAY)]
    with SimulatorProcess(sim_args, child_env(ctx.pycache), sim_dir / "simulator.log", start_timeout=300) as sim:
        state_dir = ctx.fresh_dir("state-incremental")
        settings = {"ZOOM_BACKFILL_START": (datetime.now(UTC) - timedelta(days=2)).isoformat()}
        if lookback:
            settings["ZOOM_OPLOG_LOOKBACK"] = lookback
        env = shipper_env(sim.base_url, state_dir, ctx.pycache, **settings)
        before = sim.stats()
        run = run_child([*ctx.shipper, "run"], env, sim_dir / "backfill.ndjson", timeout=600)
        _check_run(run, "incremental scenario: backfill")
        backfill_requests = api_requests(before, sim.stats())["total"]
        times = [_parse_time(r["time"]) for r in sim.records()]

        empty_runs: list[dict[str, Any]] = []
        for i in range(empty_repeat):
            watermark = _parse_time(_state_show(ctx, env)["watermark"])
            before = sim.stats()
            out = sim_dir / f"empty-{i}.ndjson"
            run = run_child([*ctx.shipper, "run"], env, out, timeout=600)
            _check_run(run, "incremental run with nothing new")
            lines = count_lines(out)
            if lines:
                msg = f"an incremental run with nothing new printed {lines} lines; see {out}"
                raise BenchmarkError(msg)
            in_lookback = _in_lookback(times, watermark, span)
            empty_runs.append(
                {
                    "wall_s": run.wall_s,
                    "requests": api_requests(before, sim.stats())["total"],
                    "records_in_lookback": in_lookback,
                    "allowed": math.ceil(in_lookback / PAGE_SIZE) + 2,
                    "max_rss_mb": run.max_rss_mb,
                }
            )

        now = datetime.now(UTC).replace(microsecond=0)
        new = _new_records(now, NEW_RECORDS)
        sim.add_records(new)
        times += [_parse_time(r["time"]) for r in new]
        watermark = _parse_time(_state_show(ctx, env)["watermark"])
        before = sim.stats()
        out = sim_dir / "new.ndjson"
        run = run_child([*ctx.shipper, "run"], env, out, timeout=600)
        _check_run(run, "incremental run with new records")
        lines = count_lines(out)
        if lines != NEW_RECORDS:
            msg = f"an incremental run after {NEW_RECORDS} new records printed {lines} lines; see {out}"
            raise BenchmarkError(msg)
        in_lookback = _in_lookback(times, watermark, span)
        with_new = {
            "wall_s": run.wall_s,
            "requests": api_requests(before, sim.stats())["total"],
            "records_in_lookback": in_lookback,
            "allowed": math.ceil(in_lookback / PAGE_SIZE) + 2,
            "emitted": lines,
        }
    print(
        f"  incremental, lookback {label}: {empty_runs[0]['requests']} requests with nothing new "
        f"({empty_runs[0]['records_in_lookback']} records in the lookback), {with_new['requests']} with "
        f"{NEW_RECORDS} new",
        file=sys.stderr,
        flush=True,
    )
    return {
        "lookback": label,
        "records_per_day": INCREMENTAL_PER_DAY,
        "backfill_requests": backfill_requests,
        "empty": {
            "requests": empty_runs[0]["requests"],
            "records_in_lookback": empty_runs[0]["records_in_lookback"],
            "allowed": empty_runs[0]["allowed"],
            "wall_s": summarize([r["wall_s"] for r in empty_runs]),
            "max_rss_mb": summarize([r["max_rss_mb"] for r in empty_runs]),
            "runs": empty_runs,
        },
        "new": with_new,
    }


# -- 8: latency ------------------------------------------------------------------------------------


def latency(
    ctx: Context, days: tuple[int, ...], rates: tuple[float, ...], delay_s: float, repeat: int
) -> dict[str, Any]:
    """Backfill histories of each length in ``days`` (LATENCY_PER_DAY records a day) at each of
    ``rates`` (--max-rps, default concurrency) with every answer ``delay_s`` late (issue 18), each
    ``repeat`` times; a pair's row is its median run by wall time.

    The requests of one window at a time (`--concurrency 1`, the engine before issue 12) are the
    reference; they do not depend on the delay, so that run is made with the delay off.
    """
    runs: list[dict[str, Any]] = []
    for length in days:
        sim_dir = ctx.fresh_dir(f"latency-{length}")
        sim_args = ["--seed", "3", "--days", str(length), "--records-per-day", str(LATENCY_PER_DAY)]
        start = (datetime.now(UTC) - timedelta(days=length + 1)).date().isoformat()
        with SimulatorProcess(sim_args, child_env(ctx.pycache), sim_dir / "simulator.log", start_timeout=300) as sim:
            records = len(sim.records())
            one_at_a_time = _latency_run(ctx, sim, sim_dir, start, records, "1", 0.0)["requests"]
            sim.slow(delay_s)
            for rps in rates:
                tries = sorted(
                    (_latency_run(ctx, sim, sim_dir, start, records, "auto", rps) for _ in range(repeat)),
                    key=lambda r: r["wall_s"],
                )
                run = tries[len(tries) // 2]
                row = _latency_row(run, length, records, rps, delay_s, one_at_a_time)
                row["walls_s"] = [r["wall_s"] for r in tries]
                row["requests_ratio"] = max(r["requests"] for r in tries) / one_at_a_time
                runs.append(row)
                print(
                    f"  latency {length} days, --max-rps {rps:g}: {run['wall_s']:.1f}s, {run['requests']} requests "
                    f"(one at a time {one_at_a_time}), rate limit alone {run['requests'] / rps:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
            sim.slow(0.0)
    return {"per_day": LATENCY_PER_DAY, "delay_s": delay_s, "runs": runs}


def _latency_run(
    ctx: Context, sim: SimulatorProcess, sim_dir: Path, start: str, records: int, concurrency: str, rps: float
) -> dict[str, Any]:
    """One backfill of the simulator's history: wall time, requests, and the time outside the engine."""
    env = shipper_env(
        sim.base_url,
        ctx.fresh_dir("state-latency"),
        ctx.pycache,
        ZOOM_BACKFILL_START=start,
        ZOOM_OPLOG_MAX_RPS=f"{rps:g}",
        ZOOM_OPLOG_CONCURRENCY=concurrency,
    )
    before = sim.stats()
    out = sim_dir / "out.ndjson"
    run = run_child([*ctx.shipper, "run"], env, out, timeout=1800)
    _check_run(run, f"latency backfill at --max-rps {rps:g}, --concurrency {concurrency}")
    lines = count_lines(out)
    if lines != records:
        msg = f"the latency backfill printed {lines} lines, expected {records}"
        raise BenchmarkError(msg)
    ctx.drop(out)
    counts = _summary_counts(run.stderr)
    requests = api_requests(before, sim.stats())["total"]
    return {"wall_s": run.wall_s, "requests": requests, "windows": counts["windows"],
            "outside_engine_s": max(0.0, run.wall_s - counts["engine_ms"] / 1000)}  # fmt: skip


def _latency_row(
    run: dict[str, Any], days: int, records: int, rps: float, delay_s: float, one_at_a_time: int
) -> dict[str, Any]:
    """A latency run against the rate limit's floor and against what any plan could reach.

    The lower bound: the time outside the engine (start-up, closing the store), the token, the first
    page (what the rest is planned with), the rate limit for the rest, and the last answer.
    """
    requests = run["requests"]
    floor = requests / rps
    bound = run["outside_engine_s"] + 3 * delay_s + max(0, requests - 3) / rps
    return {
        "days": days,
        "records": records,
        "max_rps": rps,
        "requests": requests,
        "requests_one_at_a_time": one_at_a_time,
        "requests_ratio": requests / one_at_a_time,
        "windows": run["windows"],
        "wall_s": run["wall_s"],
        "rate_limit_floor_s": floor,
        "ratio_to_floor": run["wall_s"] / floor,
        "lower_bound_s": bound,
        "lower_bound_ratio": bound / floor,
    }


# -- 6: start-up ------------------------------------------------------------------------------------


def startup(ctx: Context, repeat: int) -> dict[str, Any]:
    """Wall time of ``--version`` (bytecode cached and not), beside the interpreter's own start."""
    env = child_env(ctx.pycache)
    cold = dict(env, PYTHONDONTWRITEBYTECODE="1")
    cold.pop("PYTHONPYCACHEPREFIX")

    def times(argv: list[str], environ: Mapping[str, str]) -> dict[str, Any]:
        run_child(argv, environ, None, timeout=60)  # warm the bytecode and page caches
        walls = []
        for _ in range(repeat):
            run = run_child(argv, environ, None, timeout=60)
            _check_run(run, " ".join(argv))
            walls.append(run.wall_s * 1000)
        return summarize(walls)

    return {
        "version_ms": times([*ctx.shipper, "--version"], env),
        "version_uncached_bytecode_ms": times([*ctx.shipper, "--version"], cold),
        "python_only_ms": times([sys.executable, "-c", "pass"], env),
    }


# -- profile ---------------------------------------------------------------------------------------


def profile(ctx: Context, size: int, out_dir: Path) -> dict[str, Any]:
    """One backfill of ``size`` records under cProfile; the top functions by own time."""
    import io
    import pstats

    per_day = size // BACKFILL_DAYS
    sim_dir = ctx.fresh_dir(f"profile-{size}")
    sim_args = ["--seed", "1", "--days", str(BACKFILL_DAYS), "--records-per-day", str(per_day)]
    start, *_ = _backfill_range(datetime.now(UTC).date(), BACKFILL_DAYS)
    prof = out_dir / f"profile-{size}.pstats"
    with SimulatorProcess(sim_args, child_env(ctx.pycache), sim_dir / "simulator.log", start_timeout=900) as sim:
        # One window at a time: cProfile sees only the thread that started it.
        env = shipper_env(
            sim.base_url,
            ctx.fresh_dir("state-profile"),
            ctx.pycache,
            ZOOM_BACKFILL_START=start.isoformat(),
            ZOOM_OPLOG_CONCURRENCY="1",
        )
        argv = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "zoom_oplog_shipper", "run"]
        run = run_child(argv, env, sim_dir / "out.ndjson", timeout=3600)
        _check_run(run, "zoom-oplog-shipper run under cProfile")
    text = io.StringIO()
    stats = pstats.Stats(str(prof), stream=text)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(30)
    (out_dir / f"profile-{size}.txt").write_text(text.getvalue())
    raw: Any = stats.stats  # type: ignore[attr-defined]  # pstats keeps its table here
    total = sum(entry[2] for entry in raw.values())
    top = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:15]
    return {
        "records": size,
        "wall_s_under_profiler": run.wall_s,
        "top_own_time": [
            {
                "function": f"{Path(file).name}:{line}({name})",
                "calls": entry[1],
                "own_s": round(entry[2], 3),
                "share": round(entry[2] / total, 3) if total else 0.0,
            }
            for (file, line, name), entry in top
        ],
        "pstats": str(prof),
    }


# -- main -------------------------------------------------------------------------------------------


def _tool_output(argv: list[str]) -> str:
    """A tool's stdout, or "" when it is not installed (the results then say so by leaving it blank)."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _machine() -> dict[str, Any]:
    """What the results were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    with suppress(OSError, IndexError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    jq = _tool_output(["jq", "--version"])
    curl = _tool_output(["curl", "--version"]).split("\n")[0]
    commit = _tool_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    git_status = ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"]
    dirty = _tool_output([*git_status, "zoom_oplog_shipper"])
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "orjson": orjson.__version__,
        "jq": jq,
        "curl": curl,
        "commit": commit + ("+local changes" if dirty else ""),
        "load_average_at_start": os.getloadavg()[0],
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="10k records, fewer repetitions (what CI runs)")
    p.add_argument("--sizes", type=int, nargs="+", help="backfill sizes (multiples of 100)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="results directory")
    p.add_argument("--work-dir", type=Path, help="scratch directory (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep outputs and state in the scratch directory")
    p.add_argument("--profile", type=int, metavar="N", help="also profile one backfill of N records")
    p.add_argument(
        "--only",
        choices=("backfill", "transform", "incremental", "startup", "latency"),
        nargs="+",
        help="run only these parts",
    )
    return p


@contextmanager
def _scratch(arg: Path | None) -> Iterator[Path]:
    """The given scratch directory, or a temporary one removed afterwards."""
    if arg is not None:
        arg.mkdir(parents=True, exist_ok=True)
        yield arg
        return
    path = Path(tempfile.mkdtemp(prefix="zoom-oplog-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; writes results.json and results.md; returns 0, or 1 when a benchmark broke."""
    args = _parser().parse_args(argv)
    bench = make_plan(args)
    missing = [tool for tool in ("curl", "jq", "bash") if shutil.which(tool) is None]
    if missing and (args.only is None or "backfill" in args.only):
        print(f"benchmarks: {', '.join(missing)} not found; the baseline needs curl, jq and bash", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    parts = set(args.only or ("backfill", "transform", "incremental", "startup", "latency"))
    results: dict[str, Any] = {"machine": _machine(), "smoke": bench.smoke, "plan": {}}
    results["plan"] = {
        "sizes": list(bench.sizes),
        "repeat": {str(k): v for k, v in bench.repeat.items()},
        "baseline_repeat": {str(k): v for k, v in bench.baseline_repeat.items()},
        "transform_records": bench.transform_records,
        "transform_repeat": bench.transform_repeat,
        "startup_repeat": bench.startup_repeat,
        "empty_repeat": bench.empty_repeat,
        "latency_days": list(bench.latency_days),
        "latency_rps": list(bench.latency_rps),
        "latency_s": bench.latency_s,
        "latency_repeat": bench.latency_repeat,
    }
    began = time.perf_counter()
    try:
        with _scratch(args.work_dir) as scratch:
            ctx = Context(scratch, args.keep, bench.sizes)
            if "startup" in parts:
                print("start-up", file=sys.stderr, flush=True)
                results["startup"] = startup(ctx, bench.startup_repeat)
            if "transform" in parts:
                print(f"transform ({bench.transform_records:,} records)", file=sys.stderr, flush=True)
                results["transform"] = transform.measure(bench.transform_records, bench.transform_repeat)
            if "incremental" in parts:
                print("incremental runs", file=sys.stderr, flush=True)
                results["incremental"] = [incremental(ctx, lb, bench.empty_repeat) for lb in (None, "2h")]
            if "latency" in parts:
                print(f"latency ({LATENCY_PER_DAY} records a day)", file=sys.stderr, flush=True)
                results["latency"] = latency(
                    ctx, bench.latency_days, bench.latency_rps, bench.latency_s, bench.latency_repeat
                )
            if "backfill" in parts:
                print("backfills", file=sys.stderr, flush=True)
                results["backfill"] = {
                    str(n): backfill(ctx, n, bench.repeat[n], bench.baseline_repeat[n], last_size=n == max(bench.sizes))
                    for n in bench.sizes
                }
            if args.profile:
                print(f"profile ({args.profile:,} records)", file=sys.stderr, flush=True)
                results["profile"] = profile(ctx, args.profile, args.out)
    except BenchmarkError as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 1
    results["duration_s"] = round(time.perf_counter() - began, 1)
    results["budgets"] = report.budgets(results)
    name = "smoke" if bench.smoke else "results"
    (args.out / f"{name}.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    table = report.markdown(results)
    (args.out / f"{name}.md").write_text(table)
    print(table)
    print(f"wrote {args.out / (name + '.json')} and {args.out / (name + '.md')}", file=sys.stderr)
    return 0
