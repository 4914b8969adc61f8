"""The budgets (issues 5, 12 and 16), checked against the results, and the markdown table of the results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: (id, description, comparison, limit, unit)
BUDGETS: tuple[tuple[str, str, str, float, str], ...] = (
    # Above the 12,000 records/s the highest Zoom rate limit can feed (issue 16; was 100k/s, issue 5).
    ("e2e_throughput", "end-to-end backfill at the largest size, pacing off", ">=", 20_000, "records/s"),
    ("e2e_vs_baseline", "end-to-end / curl+jq baseline at the largest size", ">=", 4.0, "x"),
    # At the default rate limit (1,500 records/s) 30 µs a record is 4.5% of one core (issue 16).
    ("cpu_us", "per-record CPU of the whole process at the largest size (shipper CPU / records)", "<=", 30.0, "µs"),
    ("rss", "peak RSS at the largest size (worst run)", "<=", 64.0, "MB"),
    ("rss_growth", "peak RSS at 1M / at 100k (medians)", "<=", 1.10, "x"),
    ("backfill_requests", "backfill requests / ideal (worst size)", "<=", 1.01, "x"),
    ("incremental_requests", "requests of an empty incremental run - allowed (worst lookback)", "<=", 0, "requests"),
    ("version_ms", "`--version` wall time (median)", "<=", 150, "ms"),
    ("empty_run_ms", "empty incremental run wall time, default lookback (median)", "<=", 400, "ms"),
    ("state_bytes", "state on disk per remembered fingerprint (worst)", "<=", 128, "bytes"),
    ("latency_floor", "latency backfill: wall / (requests / --max-rps), worst pair whose lower bound is within "
     "the budget (issue 18)", "<=", 1.25, "x"),
    ("latency_requests", "latency backfill: requests / those of one window at a time, worst pair (issue 18)", "<=",
     1.05, "x"),
)  # fmt: skip
#: A (days, --max-rps) pair whose lower bound is above this share of the floor cannot meet the budget.
LATENCY_BUDGET = 1.25


def _largest(results: dict[str, Any]) -> dict[str, Any] | None:
    backfill = results.get("backfill")
    if not backfill:
        return None
    return backfill[str(max(int(n) for n in backfill))]  # type: ignore[no-any-return]


def _measure(results: dict[str, Any]) -> dict[str, tuple[float, str] | None]:
    """The measured value of each budget, with where it was measured (None when not measured)."""
    out: dict[str, tuple[float, str] | None] = dict.fromkeys((b[0] for b in BUDGETS), None)
    largest = _largest(results)
    backfill = results.get("backfill") or {}
    if largest is not None:
        size = f"{largest['records']:,} records"
        out["e2e_throughput"] = (largest["ours"]["records_per_s"]["median"], size)
        out["e2e_vs_baseline"] = (largest["ratio_to_baseline"], size)
        out["rss"] = (largest["ours"]["max_rss_mb"]["max"], size)
        out["cpu_us"] = (largest["ours"]["cpu_s"]["median"] / largest["records"] * 1e6, f"{size}, median run")
        worst = max(backfill.values(), key=lambda r: r["ours"]["requests"]["total"] / r["ideal_requests"])
        out["backfill_requests"] = (
            worst["ours"]["requests"]["total"] / worst["ideal_requests"],
            f"{worst['ours']['requests']['total']} requests, ideal {worst['ideal_requests']}, "
            f"{worst['records']:,} records",
        )
        if "state" in largest:
            state = largest["state"]
            value = max(state[k]["bytes_per_fingerprint"] for k in ("after_backfill", "after_incremental"))
            out["state_bytes"] = (value, f"after the {size} backfill and an incremental run")
    if "100000" in backfill and "1000000" in backfill:
        ratio = backfill["1000000"]["ours"]["max_rss_mb"]["median"] / backfill["100000"]["ours"]["max_rss_mb"]["median"]
        out["rss_growth"] = (ratio, "1M vs 100k")
    if "incremental" in results:
        worst = max(results["incremental"], key=lambda s: s["empty"]["requests"] - s["empty"]["allowed"])
        empty = worst["empty"]
        out["incremental_requests"] = (
            empty["requests"] - empty["allowed"],
            f"lookback {worst['lookback']}: {empty['requests']} requests, allowed {empty['allowed']}",
        )
        default = results["incremental"][0]
        out["empty_run_ms"] = (default["empty"]["wall_s"]["median"] * 1000, f"lookback {default['lookback']}")
    if "startup" in results:
        out["version_ms"] = (results["startup"]["version_ms"]["median"], "bytecode cached")
    if "latency" in results:
        out.update(_latency(results["latency"]))
    return out


def _latency(latency: dict[str, Any]) -> dict[str, tuple[float, str] | None]:
    """The latency budgets: wall time against the rate limit's floor, and the requests it cost."""
    runs = latency["runs"]
    reachable = [r for r in runs if r["lower_bound_ratio"] <= LATENCY_BUDGET]
    out_of_reach = f"{len(runs) - len(reachable)} of {len(runs)} pairs have a lower bound above {LATENCY_BUDGET}x"
    return {
        "latency_floor": _worst(reachable, "ratio_to_floor", lambda r: f", {r['requests']} requests; {out_of_reach}"),
        "latency_requests": _worst(
            runs,
            "requests_ratio",
            lambda r: f": {r['requests']} requests, {r['requests_one_at_a_time']} one window at a time",
        ),
    }


def _worst(runs: list[dict[str, Any]], ratio: str, detail: Callable[[dict[str, Any]], str]) -> tuple[float, str] | None:
    """The largest ``ratio`` of the latency ``runs``, with the pair it was measured at and ``detail`` of that
    run (None when there are no runs)."""
    if not runs:
        return None
    worst = max(runs, key=lambda r: r[ratio])
    return worst[ratio], f"{worst['days']} days at --max-rps {worst['max_rps']:g}{detail(worst)}"


_COMPARE: dict[str, Callable[[float, float], bool]] = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


def budgets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each budget with its measured value and whether it is met (None when not measured)."""
    measured = _measure(results)
    rows = []
    for key, what, op, limit, unit in BUDGETS:
        value = measured[key]
        rows.append(
            {
                "id": key,
                "what": what,
                "op": op,
                "limit": limit,
                "unit": unit,
                "measured": None if value is None else value[0],
                "where": None if value is None else value[1],
                "met": None if value is None else _COMPARE[op](value[0], limit),
            }
        )
    return rows


# -- markdown ---------------------------------------------------------------------------------------


def _num(value: float, unit: str = "") -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _stat(s: dict[str, Any], unit: str = "", scale: float = 1.0) -> tuple[str, str, str]:
    return (
        _num(s["median"] * scale, unit),
        f"{_num(s['min'] * scale)} – {_num(s['max'] * scale)}",
        str(s["n"]),
    )


def _row(name: str, cells: tuple[str, str, str]) -> str:
    return f"| {name} | {cells[0]} | {cells[1]} | {cells[2]} |"


def _backfill_rows(size: str, r: dict[str, Any]) -> list[str]:
    n = f"{int(size):,}"
    ours, base = r["ours"], r["baseline"]
    lines = [
        _row(f"backfill {n}: zoom-oplog-shipper, records/s", _stat(ours["records_per_s"])),
        _row(f"backfill {n}: curl + jq baseline, records/s", _stat(base["records_per_s"])),
        f"| backfill {n}: ours / baseline | {r['ratio_to_baseline']:.1f}x | | |",
        _row(f"backfill {n}: shipper peak RSS, MB", _stat(ours["max_rss_mb"])),
        _row(f"backfill {n}: shipper CPU, s", _stat(ours["cpu_s"])),
        _row(f"backfill {n}: simulator CPU, s", _stat(ours["simulator_cpu_s"])),
        _row(f"backfill {n}: baseline CPU (bash, curl, jq), s", _stat(base["cpu_s"])),
        f"| backfill {n}: requests (ideal {r['ideal_requests']} = 1 + ⌈{n}/300⌉ + {r['ideal_windows']} windows) "
        f"| {ours['requests']['total']} ({ours['windows']} windows) | baseline {base['requests']['total']} | 1 |",
    ]
    if "equivalence" in r:
        e = r["equivalence"]
        verdict = "identical" if e["equivalent"] else f"{e['only_ours']} differ"
        lines.append(f"| backfill {n}: baseline output vs ours (all fields but event.id) | {verdict} | | |")
    return lines


def _transform_rows(t: dict[str, Any]) -> list[str]:
    n = f"{t['records']:,}"
    lines = [
        _row(f"transform {n}: ours (parse, fingerprint, to_ecs, encode), records/s", _stat(t["ours_records_per_s"]))
    ]
    if "us_per_record_median" in t:
        distinct = f"{t['distinct_details']:.0%} distinct details"
        lines.append(f"| transform {n}: ours, µs per record | {t['us_per_record_median']:.2f} | {distinct} | |")
    lines.append(_row(f"transform {n}: orjson loads + dumps ceiling, records/s", _stat(t["ceiling_records_per_s"])))
    lines.append(f"| transform: ours / ceiling | {t['ratio_to_ceiling'] * 100:.1f}% | | |")
    lines += [
        f"| transform step: {step}, µs per record (best run) | {us:.2f} | | |"
        for step, us in t.get("us_per_record", {}).items()
    ]
    return lines


def _incremental_rows(scenario: dict[str, Any]) -> list[str]:
    lb = scenario["lookback"]
    empty, new = scenario["empty"], scenario["new"]
    return [
        f"| incremental, 5k/day, lookback {lb}, nothing new: requests "
        f"(allowed ⌈{empty['records_in_lookback']}/300⌉+2) "
        f"| {empty['requests']} (allowed {empty['allowed']}) | | 1 |",
        f"| incremental, 5k/day, lookback {lb}, {new['emitted']} new: requests "
        f"| {new['requests']} (⌈{new['records_in_lookback']}/300⌉+2 = {new['allowed']}) | | 1 |",
        _row(f"incremental, lookback {lb}, nothing new: wall, ms", _stat(empty["wall_s"], scale=1000)),
    ]


def _latency_row(r: dict[str, Any], delay_s: float) -> str:
    walls = r.get("walls_s", [r["wall_s"]])
    return (
        f"| latency backfill {r['days']} days ({r['records']:,} records, {delay_s:g} s per answer), "
        f"--max-rps {r['max_rps']:g}: wall, s | {r['wall_s']:.1f} ({r['ratio_to_floor']:.2f}x) | "
        f"{min(walls):.1f} – {max(walls):.1f}; rate limit alone {r['rate_limit_floor_s']:.1f} s "
        f"({r['requests']} requests, one window at a time {r['requests_one_at_a_time']}); lower bound "
        f"{r['lower_bound_s']:.1f} s ({r['lower_bound_ratio']:.2f}x) | {len(walls)} |"
    )


def _startup_rows(s: dict[str, Any]) -> list[str]:
    return [
        _row("`zoom-oplog-shipper --version`, ms", _stat(s["version_ms"])),
        _row(
            "`--version`, no bytecode cache (PYTHONDONTWRITEBYTECODE=1), ms", _stat(s["version_uncached_bytecode_ms"])
        ),
        _row("`python -c pass` (interpreter alone), ms", _stat(s["python_only_ms"])),
    ]


def _state_rows(size: str, state: dict[str, Any]) -> list[str]:
    lines = []
    for label, key in (("after the backfill", "after_backfill"), ("after an incremental run", "after_incremental")):
        st = state[key]
        lines.append(
            f"| state {label} of {int(size):,}: bytes / fingerprints | {st['bytes_per_fingerprint']:.0f} B/fp "
            f"| {st['bytes']:,} B / {st['fingerprints']:,} | 1 |"
        )
    return lines


def _profile_rows(p: dict[str, Any]) -> list[str]:
    lines = ["", f"cProfile of one {p['records']:,}-record backfill (own time, top 10):", ""]
    lines += ["| function | calls | own s | share |", "|---|---:|---:|---:|"]
    lines += [
        f"| `{f['function']}` | {f['calls']:,} | {f['own_s']:.2f} | {f['share'] * 100:.0f}% |"
        for f in p["top_own_time"][:10]
    ]
    return lines


def _budget_row(b: dict[str, Any]) -> str:
    measured = "not measured" if b["measured"] is None else _num(b["measured"], b["unit"])
    met = "–" if b["met"] is None else ("yes" if b["met"] else "**no**")
    limit = f"{b['op']} {_num(b['limit'], b['unit'])}"
    return f"| {b['what']} | {limit} | {measured} | {b['where'] or ''} | {met} |"


def markdown(results: dict[str, Any]) -> str:
    """The results as markdown: machine, measurements (median, spread, runs), budgets."""
    m = results["machine"]
    lines = [
        f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, {m['memory']} RAM, Linux {m['kernel']}, "
        f"Python {m['python']}, orjson {m['orjson']}, {m['jq']}, {m['curl'].split(' (')[0]}; "
        f"commit {m['commit']}; load average at start {m['load_average_at_start']:.2f}"
        + ("; smoke run" if results["smoke"] else "")
        + ".",
        "",
        "| measurement | median | spread (min – max) | runs |",
        "|---|---:|---:|---:|",
    ]
    backfill = results.get("backfill") or {}
    for size, r in backfill.items():
        lines += _backfill_rows(size, r)
    if results.get("transform"):
        lines += _transform_rows(results["transform"])
    for scenario in results.get("incremental") or []:
        lines += _incremental_rows(scenario)
    lat = results.get("latency")
    lines += [_latency_row(r, lat["delay_s"]) for r in lat["runs"]] if lat else []
    lines += _startup_rows(results["startup"]) if results.get("startup") else []
    for size, r in backfill.items():
        lines += _state_rows(size, r["state"]) if "state" in r else []
    lines += _profile_rows(results["profile"]) if results.get("profile") else []
    lines += ["", "| budget (issues 5 and 12) | limit | measured | where | met |", "|---|---:|---:|---|:---:|"]
    lines += [_budget_row(b) for b in results.get("budgets") or []]
    return "\n".join(lines) + "\n"
