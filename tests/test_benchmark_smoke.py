"""CI smoke of the benchmarks: ``python -m benchmarks --smoke`` (10k records) and the budgets of issues 5, 12 and 16.

The run is the real one (simulator process, installed console script, curl + jq baseline), only
smaller. The limits below are the issue's budgets loosened for a noisy shared 2-core machine and a
10k backfill, where start-up weighs on the rate: they catch a budget broken by a wide margin, not
drift. Request counts are deterministic and checked exactly. Where the issue's budget is missed
today (see docs/performance.md, which explains each gap with the profile), the limit is a floor
well below today's measurement, so a regression still fails. Select with ``-m benchmark``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.benchmark

REPO = Path(__file__).resolve().parent.parent
MISSING_TOOLS = [tool for tool in ("curl", "jq") if shutil.which(tool) is None]

#: budget id -> (smoke limit, why this limit), for the budgets the measurement must reach (``>=``).
SMOKE_FLOORS: dict[str, tuple[float, str]] = {
    "e2e_throughput": (2_500, "budget 20k/s at 1M; ~8-10k/s at 10k, start-up included"),
    "e2e_vs_baseline": (1.0, "budget 4x at 1M; at 10k start-up weighs and the baseline varies 1.5-7k/s"),
}
#: budget id -> (smoke limit, why this limit), for the budgets the measurement must stay within (``<=``).
SMOKE_CEILINGS: dict[str, tuple[float, str]] = {
    "cpu_us": (150.0, "budget 30 µs at 1M; at 10k start-up (~0.25 s of CPU) adds ~25 µs a record"),
    "rss": (96.0, "budget 64 MB"),
    "backfill_requests": (1.01, "budget: ideal + 1%, deterministic"),
    "incremental_requests": (0, "budget: ceil(records in lookback / 300) + 2, deterministic"),
    "version_ms": (600, "budget 150 ms"),
    "empty_run_ms": (1600, "budget 400 ms"),
    "state_bytes": (512, "budget 128 B; 10k over 100 days keeps only ~100 fingerprints"),
    "latency_floor": (1.5, "budget 1.25x of requests/max-rps where the lower bound allows it; shared CPU"),
    "latency_requests": (1.05, "budget: the requests of one window at a time + 5%"),
}
SMOKE_LIMITS = SMOKE_FLOORS | SMOKE_CEILINGS


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The smoke run's results.json."""
    if MISSING_TOOLS:
        pytest.skip(
            f"{' and '.join(MISSING_TOOLS)} not installed: the curl + jq baseline needs them (.ci/run installs them)"
        )
    out = tmp_path_factory.mktemp("benchmarks")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, f"python -m benchmarks --smoke failed:\n{proc.stderr[-4000:]}"
    results: dict[str, Any] = json.loads((out / "smoke.json").read_text())
    return results


def test_every_budget_but_memory_growth_is_measured(smoke: dict[str, Any]) -> None:
    measured = {b["id"] for b in smoke["budgets"] if b["measured"] is not None}
    assert measured == set(SMOKE_LIMITS)  # rss_growth needs the full run's 100k and 1M backfills


@pytest.mark.parametrize("budget_id", sorted(SMOKE_LIMITS))
def test_budget_not_broken_by_a_wide_margin(smoke: dict[str, Any], budget_id: str) -> None:
    budget = next(b for b in smoke["budgets"] if b["id"] == budget_id)
    limit, why = SMOKE_LIMITS[budget_id]
    op = ">=" if budget_id in SMOKE_FLOORS else "<="
    assert budget["op"] == op, f"{budget_id} is a {budget['op']} budget, its smoke limit a {op} one"
    measured = budget["measured"]
    assert measured is not None, f"{budget_id} was not measured"
    ok = measured >= limit if op == ">=" else measured <= limit
    assert ok, (
        f"{budget['what']}: {measured:.4g} {budget['unit']} ({budget['where']}), smoke limit {op} {limit} ({why})"
    )


def test_outputs_are_complete_and_the_baseline_equivalent(smoke: dict[str, Any]) -> None:
    (size, backfill), *_ = smoke["backfill"].items()
    assert backfill["records"] == int(size) == 10_000
    equivalence = backfill["equivalence"]
    assert equivalence["equivalent"], equivalence
    assert equivalence["documents"] == 10_000


def test_incremental_runs_fetch_only_what_is_new(smoke: dict[str, Any]) -> None:
    for scenario in smoke["incremental"]:
        assert scenario["new"]["emitted"] == 100
        assert scenario["new"]["requests"] <= scenario["new"]["allowed"], scenario
