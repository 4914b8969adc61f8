"""The metrics file: Prometheus text after every run, atomic, read back with a real Prometheus parser."""

from __future__ import annotations

import io
import os
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import NOW, FakeClock, FakeZoom, cli_env, record
from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.metrics import GAUGES, RunMetrics, parse_previous, render, write_metrics

LABELS = {"account": "acct-1", "stream": "operations", "category": "all"}


@pytest.fixture
def env(tmp_path: Path, zoom: FakeZoom) -> dict[str, str]:
    metrics = tmp_path / "textfile" / "zoom_oplog.prom"
    return {**cli_env(zoom, tmp_path / "state", tmp_path / "xdg"), "ZOOM_OPLOG_METRICS_FILE": str(metrics)}


def run(argv: list[str], env: dict[str, str], clock: FakeClock) -> tuple[int, list[str]]:
    err = io.StringIO()
    code = main(argv, env=env, stdout=io.BytesIO(), stderr=err, clock=clock)
    return code, err.getvalue().splitlines()


def scrape(path: Path) -> dict[str, float]:
    """Parse the file as Prometheus does; every sample must be a gauge with the two labels."""
    values = {}
    for family in text_string_to_metric_families(path.read_text()):
        assert family.type == "gauge" and family.documentation, family.name
        for sample in family.samples:
            assert sample.labels == LABELS
            values[sample.name.removeprefix("zoom_oplog_")] = sample.value
    return values


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "zoom_oplog.prom")


def test_metrics_after_a_success_then_after_a_failure(env: dict[str, str], zoom: FakeZoom, tmp_path: Path) -> None:
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    metrics = textfile / "zoom_oplog.prom"
    zoom.records = [record("2026-11-26T10:00:00Z", f"r{i}") for i in range(4)]
    clock = FakeClock()
    assert run(["run", "--backfill-start", "2026-11-25"], env, clock)[0] == 0
    ok = scrape(metrics)
    assert set(ok) == set(GAUGES)
    assert ok["last_exit_code"] == 0 and ok["last_run_records"] == 4 and ok["last_run_requests"] >= 1
    assert ok["last_run_timestamp_seconds"] == ok["last_success_timestamp_seconds"] == NOW.timestamp()
    assert ok["watermark_timestamp_seconds"] == NOW.timestamp()
    assert leftovers(textfile) == []

    clock.advance(3600)
    env["ZOOM_CLIENT_SECRET"] = "wrong"
    assert run(["run"], env, clock)[0] == 3
    failed = scrape(metrics)
    assert failed["last_exit_code"] == 3 and failed["last_run_records"] == 0
    assert failed["last_run_timestamp_seconds"] == NOW.timestamp() + 3600
    # kept from the previous file: the last success and the watermark are what an alert needs
    assert failed["last_success_timestamp_seconds"] == NOW.timestamp()
    assert failed["watermark_timestamp_seconds"] == NOW.timestamp()
    assert leftovers(textfile) == []
    assert oct(metrics.stat().st_mode & 0o777) == "0o644"


def test_a_configuration_error_still_writes_the_file(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "textfile").mkdir()
    env["ZOOM_ACCOUNT_ID"] = ""
    code, _ = run(["run", "--account-id", "acct-1", "--lookback", "soon"], env, FakeClock())
    assert code == 2
    values = scrape(tmp_path / "textfile" / "zoom_oplog.prom")
    assert values["last_exit_code"] == 2 and "last_success_timestamp_seconds" not in values


def test_a_metrics_write_failure_is_a_warning_and_changes_nothing(
    env: dict[str, str], zoom: FakeZoom, tmp_path: Path
) -> None:
    zoom.records = [record("2026-11-26T10:00:00Z")]
    env["ZOOM_OPLOG_METRICS_FILE"] = str(tmp_path / "missing-dir" / "zoom_oplog.prom")
    code, lines = run(["run", "--backfill-start", "2026-11-25", "--log-format", "json"], env, FakeClock())
    docs = [orjson.loads(line) for line in lines]
    warning = [d for d in docs if "metrics file" in d["message"]]
    assert code == 0 and docs[-1]["exit_code"] == 0 and docs[-1]["outcome"] == "complete"
    assert len(warning) == 1 and warning[0]["log"]["level"] == "warning"
    assert str(tmp_path / "missing-dir") in warning[0]["message"]


def test_an_interrupted_write_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "zoom_oplog.prom"
    run_ok = RunMetrics("a", "all", 100.0, 0, 5, 2, 1.5, 90.0)
    write_metrics(path, run_ok)
    before = path.read_text()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_metrics(path, RunMetrics("a", "all", 200.0, 1, 0, 1, 0.5, None))
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["zoom_oplog.prom"]


@pytest.mark.parametrize(
    ("account", "category"),
    [("plain", "all"), ('quote"and\\backslash', "user"), ("new\nline", "im")],
)
def test_label_values_are_escaped_and_the_file_reads_back(account: str, category: str) -> None:
    text = render({"last_exit_code": 0, "last_run_records": 12, "last_run_duration_seconds": 1.25}, account, category)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    labels = {"account": account, "stream": "operations", "category": category}
    assert families["zoom_oplog_last_run_records"].samples[0].labels == labels
    assert parse_previous(text) == {"last_exit_code": 0, "last_run_records": 12, "last_run_duration_seconds": 1.25}
