"""The metrics file: Prometheus text after every run, atomic, read back with a real Prometheus parser."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from conftest import NOW, FakeClock, FakeZoom, cli, cli_env, record
from prometheus_client.parser import text_string_to_metric_families
from werkzeug import Request, Response

from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.metrics import GAUGES, RunMetrics, parse_previous, render, write_metrics
from zoom_oplog_shipper.state import RunLock, state_file
from zoom_oplog_shipper.summary import RunLabels

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
    run_ok = RunMetrics(RunLabels("a", "all"), 100.0, 0, 5, 2, 1.5, 90.0)
    write_metrics(path, run_ok)
    before = path.read_text()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_metrics(path, RunMetrics(RunLabels("a", "all"), 200.0, 1, 0, 1, 0.5, None))
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["zoom_oplog.prom"]


@pytest.mark.parametrize(
    ("account", "category"),
    [("plain", "all"), ('quote"and\\backslash', "user"), ("new\nline", "im")],
)
def test_label_values_are_escaped_and_the_file_reads_back(account: str, category: str) -> None:
    values = {"last_exit_code": 0, "last_run_records": 12, "last_run_duration_seconds": 1.25}
    text = render(values, RunLabels(account, category))
    families = {f.name: f for f in text_string_to_metric_families(text)}
    labels = {"account": account, "stream": "operations", "category": category}
    assert families["zoom_oplog_last_run_records"].samples[0].labels == labels
    assert parse_previous(text) == {"last_exit_code": 0, "last_run_records": 12, "last_run_duration_seconds": 1.25}


# -- the same labels whatever failed, wherever the settings came from (issue 15, part 5) -----------

ACTIVITY_LABELS = {"account": "acct-1", "stream": "activities", "category": ""}
DAILY = {"code": 429, "message": "You have reached the maximum daily rate limit for this API."}


class _StopsAtTheReport(requests.Session):
    """A session on which the first report request is cut by Ctrl-C (a second Ctrl-C: exit 130)."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if "/report/" in str(url):
            raise KeyboardInterrupt
        return super().request(method, url, *args, **kwargs)


def _serve_activities(zoom: FakeZoom) -> None:
    """The activity report on the Zoom double: canned failures first, then one sign-in."""

    def answer(request: Request) -> Response:
        if zoom.canned:
            canned = zoom.canned.pop(0)
            body = canned.body if canned.body is not None else b""
            return Response(body if isinstance(body, bytes) else orjson.dumps(body), status=canned.status)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in zoom.valid_tokens:
            return Response(orjson.dumps({"code": 124, "message": "Invalid access token."}), status=401)
        sign_in = {"email": "a@example.com", "time": "2026-11-26T10:00:00Z", "type": "Sign in",
                   "ip_address": "192.0.2.1", "client_type": "Mac", "version": "6.0.0"}  # fmt: skip
        page = {"next_page_token": "", "page_size": 300, "activity_logs": [sign_in]}
        return Response(orjson.dumps(page), content_type="application/json")

    zoom.server.expect_request("/v2/report/activities").respond_with_handler(answer)


def _labelled_settings(source: str, tmp_path: Path, env: dict[str, str]) -> list[str]:
    """Put the account, the stream and the metrics file in ``source``; returns the flags to add."""
    metrics = str(tmp_path / "textfile" / "zoom_oplog_acct-1_activities.prom")
    del env["ZOOM_ACCOUNT_ID"], env["ZOOM_OPLOG_METRICS_FILE"]
    if source == "flags":
        return ["--account-id", "acct-1", "--stream", "activities", "--metrics-file", metrics]
    if source == "environment":
        env.update(ZOOM_ACCOUNT_ID="acct-1", ZOOM_OPLOG_STREAM="activities", ZOOM_OPLOG_METRICS_FILE=metrics)
        return []
    config = tmp_path / "xdg" / "zoom-oplog-shipper" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'account_id = "acct-1"\nstream = "activities"\nmetrics_file = "{metrics}"\n')
    config.chmod(0o600)
    return []


def _make_it_exit(code: int, zoom: FakeZoom, env: dict[str, str], tmp_path: Path) -> list[str]:
    """Arrange for exit ``code``; returns the flags that do it."""
    if code == 1:
        zoom.fail(503, None, times=6)
    elif code == 2:  # another setting is wrong: the labels must still be right
        env["ZOOM_OPLOG_LOOKBACK"] = "soon"
    elif code == 3:
        env["ZOOM_CLIENT_SECRET"] = "wrong"
    elif code == 4:
        zoom.fail(429, DAILY)
    elif code == 5:
        store = state_file(tmp_path / "state", "acct-1", "activities")
        store.parent.mkdir(parents=True)
        store.write_bytes(b"garbage" * 100)
    return ["--backfill-start", "2026-11-25"] if code == 0 else []


@pytest.mark.parametrize("source", ["flags", "environment", "config file"])
@pytest.mark.parametrize("code", [0, 1, 2, 3, 4, 5, 130])
def test_metrics_and_summary_carry_the_same_labels_whatever_failed(
    env: dict[str, str], zoom: FakeZoom, tmp_path: Path, source: str, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", env["XDG_CONFIG_HOME"])  # where the default config file is looked for
    (tmp_path / "textfile").mkdir()
    _serve_activities(zoom)
    argv = ["run", "--log-format", "json", *_labelled_settings(source, tmp_path, env)]
    argv += _make_it_exit(code, zoom, env, tmp_path)
    err = io.StringIO()
    session = _StopsAtTheReport() if code == 130 else None
    got = main(argv, env=env, stdout=io.BytesIO(), stderr=err, clock=FakeClock(), session=session)
    assert got == code, err.getvalue()
    summary = orjson.loads(err.getvalue().splitlines()[-1])
    assert summary["exit_code"] == code
    assert {k: summary[k] for k in ACTIVITY_LABELS} == ACTIVITY_LABELS
    metrics = tmp_path / "textfile" / "zoom_oplog_acct-1_activities.prom"
    families = list(text_string_to_metric_families(metrics.read_text()))
    assert families and all(s.labels == ACTIVITY_LABELS for f in families for s in f.samples)
    assert scrape_values(metrics)["last_exit_code"] == code


def scrape_values(path: Path) -> dict[str, float]:
    """The file's values by gauge name, whatever the labels."""
    return {
        s.name.removeprefix("zoom_oplog_"): s.value
        for f in text_string_to_metric_families(path.read_text())
        for s in f.samples
    }


# -- a run skipped for the lock is not a success ---------------------------------------------------


def _alert_fires(name: str, values: dict[str, float], now: float) -> bool:
    """Evaluate the alert rule ``name`` of docs/monitoring.md on ``values`` (its `expr` is plain arithmetic)."""
    import ast
    import operator
    import re

    docs = (Path(__file__).resolve().parent.parent / "docs" / "monitoring.md").read_text(encoding="utf-8")
    expr = re.search(rf"alert: {name}\n\s+expr: (.+)", docs)
    assert expr, f"docs/monitoring.md has no alert {name}"
    text = re.sub(r"zoom_oplog_(\w+)", lambda m: repr(values[m.group(1)]), expr.group(1)).replace("time()", repr(now))
    ops = {ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Add: operator.add, ast.Gt: operator.gt}

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BinOp):
            return ops[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.Compare):
            return ops[type(node.ops[0])](value(node.left), value(node.comparators[0]))
        raise AssertionError(f"not plain arithmetic: {ast.dump(node)}")

    return bool(value(ast.parse(text, mode="eval").body))


def test_runs_skipped_for_the_lock_keep_the_last_success_and_the_alert_fires(
    env: dict[str, str], zoom: FakeZoom, tmp_path: Path
) -> None:
    (tmp_path / "textfile").mkdir()
    metrics = tmp_path / "textfile" / "zoom_oplog.prom"
    zoom.records = [record("2026-11-26T10:00:00Z")]
    clock = FakeClock()
    assert run(["run", "--backfill-start", "2026-11-25"], env, clock)[0] == 0
    store = state_file(tmp_path / "state", "acct-1", "all")
    success = orjson.loads(cli(["state", "show", "--json"], env, clock).out)["last_success"]
    hung = RunLock(store)  # a run that hangs, holding the lock
    assert hung.acquire()
    try:
        for _ in range(4):  # hourly runs, each skipped
            clock.advance(3600)
            code, lines = run(["run", "--log-format", "json"], env, clock)
            assert code == 0 and orjson.loads(lines[-1])["outcome"] == "skipped"
            values = scrape_values(metrics)
            assert values["last_exit_code"] == 0 and values["last_run_timestamp_seconds"] == clock.now().timestamp()
            assert values["last_success_timestamp_seconds"] == NOW.timestamp()
    finally:
        hung.release()
    assert _alert_fires("ZoomOplogNoSuccess", values, clock.now().timestamp())
    assert not _alert_fires(
        "ZoomOplogNoSuccess",
        {**values, "last_success_timestamp_seconds": NOW.timestamp() + 3 * 3600},
        clock.now().timestamp(),
    )
    assert orjson.loads(cli(["state", "show", "--json"], env, clock).out)["last_success"] == success
