"""The command line in-process: exit codes, stdout hygiene, state commands, check, secrets."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import NOW, SECRET, FakeClock, FakeZoom, cli, record, simulator_env

from zoom_oplog_shipper import __version__
from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.state import RunLock, state_file


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for needle in (
        "exit codes:",
        "examples:",
        "4    Zoom's daily request limit",
        "130  a second Ctrl-C",
        "ZOOM_CLIENT_SECRET_FILE",
    ):
        assert needle in text
    assert main(["run", "--help"]) == 0
    assert "--backfill-start" in capsys.readouterr().out


def test_run_prints_only_event_lines_and_a_summary(env: dict[str, str], zoom: FakeZoom) -> None:
    zoom.records = [record("2026-11-26T10:00:00Z", f"r{i}") for i in range(3)]
    result = cli(["run", "--backfill-start", "2026-11-25", "--log-level", "debug"], env)
    assert result.code == 0
    docs = result.docs()
    assert len(docs) == 3 and all(d["event"]["dataset"] == "zoom.operation" for d in docs)
    assert "complete: 3 records emitted" in result.err
    # a bare invocation is `run`, and options alone also mean `run`
    assert cli([], env).code == 0
    assert cli(["--lookback", "2h"], env).code == 0


def test_secrets_never_appear_in_output_logs_or_state(env: dict[str, str], zoom: FakeZoom, tmp_path: Path) -> None:
    zoom.records = [record("2026-11-26T10:00:00Z")]
    results = [
        cli(["run", "--backfill-start", "2026-11-25", "--log-level", "debug"], env),
        cli(["check", "--log-level", "debug"], env),
        cli(["state", "show"], env),
        cli(["run"], {**env, "ZOOM_CLIENT_SECRET": SECRET + "x", "ZOOM_OPLOG_LOG_LEVEL": "debug"}),
        cli(["run", "--log-format", "json"], {**env, "ZOOM_API_URL": "http://10.1.1.1/v2"}),
    ]
    assert results[3].code == 3
    for r in results:
        assert SECRET not in r.err and SECRET.encode() not in r.out
    for path in (tmp_path / "state").iterdir():
        assert SECRET.encode() not in path.read_bytes()


@pytest.mark.parametrize(
    ("argv", "extra_env", "code", "needle"),
    [
        (["run", "--category-type", "nope"], {}, 2, "--category-type: 'nope' is not one of"),
        (["run"], {"ZOOM_ACCOUNT_ID": ""}, 2, "missing ZOOM_ACCOUNT_ID"),
        (["run", "--bogus"], {}, 2, ""),
        (["run", "--backfill-start", "2099-01-01"], {}, 2, "is in the future"),
        (["run"], {"ZOOM_CLIENT_SECRET": "wrong"}, 3, "check ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET"),
        (["run"], {"ZOOM_ACCOUNT_ID": "other"}, 3, "check ZOOM_ACCOUNT_ID"),
        (["state", "reset"], {}, 2, "Add --yes to confirm"),
    ],
)
def test_exit_codes(env: dict[str, str], argv: list[str], extra_env: dict[str, str], code: int, needle: str) -> None:
    result = cli(argv, {**env, **extra_env})
    assert result.code == code, result.err
    assert needle in result.err
    assert result.out == b""


def test_permission_and_daily_limit_exit_codes(env: dict[str, str], zoom: FakeZoom) -> None:
    zoom.fail(400, {"code": 200, "message": "No permission."})
    assert cli(["run"], env).code == 3
    zoom.fail(429, {"code": 429, "message": "You have reached the maximum daily rate limit for this API."})
    result = cli(["run"], env)
    assert result.code == 4 and "daily request limit" in result.err
    zoom.fail(503, None, times=6)
    result = cli(["run"], env)
    assert result.code == 1 and "progress is kept" in result.err


def test_lock_held_exits_zero_touching_nothing(env: dict[str, str], zoom: FakeZoom, tmp_path: Path) -> None:
    path = state_file(tmp_path / "state", "acct-1", "all")
    path.parent.mkdir(parents=True)
    lock = RunLock(path)
    assert lock.acquire()
    try:
        result = cli(["run"], env)
    finally:
        lock.release()
    assert result.code == 0 and "holds" in result.err
    assert zoom.requests == [] and not path.exists()


def test_corrupt_state_exits_5_and_is_not_reset(env: dict[str, str], tmp_path: Path) -> None:
    path = state_file(tmp_path / "state", "acct-1", "all")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage" * 1000)
    result = cli(["run"], env)
    assert result.code == 5
    assert str(path) in result.err and "state reset --yes" in result.err
    assert path.read_bytes() == b"garbage" * 1000


def test_state_commands(env: dict[str, str], zoom: FakeZoom) -> None:
    zoom.records = [record("2026-11-26T10:00:00Z")]
    path = cli(["state", "path"], env).out.decode().strip()
    assert path.endswith(".sqlite3")
    before = cli(["state", "show", "--json"], env)
    assert before.code == 0 and orjson.loads(before.out) == {"path": path, "exists": False}
    assert cli(["run", "--backfill-start", "2026-11-25"], env).code == 0
    shown = orjson.loads(cli(["state", "show", "--json"], env).out)
    assert shown["path"] == path and shown["fingerprints"] == 1
    assert shown["last_run"]["emitted"] == 1 and shown["watermark"][:16] <= "2026-11-26T12:00"
    assert shown["resume"] is None
    assert cli(["state", "reset", "--yes"], env).code == 0
    assert not Path(path).exists()


def test_check_reports_each_problem(env: dict[str, str], zoom: FakeZoom) -> None:
    # the double's Date header is the real time, so the check runs on a clock that agrees with it
    good = cli(["check"], env, FakeClock(datetime.now(UTC)))
    assert good.code == 0 and "all checks passed" in good.err and good.out == b""
    zoom.scope = "meeting:read:admin"
    zoom.fail(400, {"code": 4700, "message": "Invalid access token, does not contain scopes:[report:read:admin]."})
    bad = cli(["check"], env)
    assert bad.code == 3
    assert "neither report:read:operation_logs:admin nor report:read:admin" in bad.err
    zoom.fail(400, {"code": 200, "message": "No permission."})
    assert "Pro or higher plan" in cli(["check"], env).err
    creds = cli(["check"], {**env, "ZOOM_CLIENT_SECRET": "nope"})
    assert creds.code == 3 and "ZOOM_CLIENT_SECRET" in creds.err


def test_check_detects_clock_skew(env: dict[str, str]) -> None:
    skewed = FakeClock(NOW.replace(year=2030))
    result = cli(["check"], env, skewed)
    assert result.code == 1 and "off Zoom's clock" in result.err


def test_json_logs(env: dict[str, str], zoom: FakeZoom) -> None:
    result = cli(["run", "--log-format", "json"], env)
    lines = [orjson.loads(line) for line in result.err.splitlines()]
    assert lines and all({"@timestamp", "log", "message"} <= set(line) for line in lines)


def test_module_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "zoom_oplog_shipper", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_incremental_run_through_cli(env: dict[str, str], zoom: FakeZoom) -> None:
    clock = FakeClock()
    zoom.records = [record("2026-11-26T11:00:00Z", "first")]
    assert len(cli(["run", "--backfill-start", "2026-11-25"], env, clock).docs()) == 1
    clock.advance(3600)
    zoom.records.append(record((NOW + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"), "second"))
    docs = cli(["run"], env, clock).docs()
    assert [d["message"] for d in docs] == ["second"]


# -- the real process: signals and a reader that goes away ---------------------------------------


@pytest.fixture
def sim_env(tmp_path: Path) -> Any:
    from zoom_oplog_shipper.simulator import Simulator, SimulatorConfig, serve_in_thread

    sim = Simulator(
        SimulatorConfig(seed=3, days=20, records_per_day=600, slow_rate=1.0, slow_seconds=0.3),
    )
    server = serve_in_thread(sim)
    env = {
        **os.environ,
        **simulator_env(sim, server.base_url, tmp_path),
        "ZOOM_BACKFILL_START": (datetime.now(UTC) - timedelta(days=15)).isoformat(),
    }
    yield env
    server.shutdown()


def test_sigterm_stops_after_the_page_with_progress_kept(sim_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoom_oplog_shipper", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=sim_env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first page is out
    proc.send_signal(signal.SIGTERM)
    assert proc.stderr is not None
    rest, err = proc.stdout.read(), proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 0, err
    assert b"received SIGTERM" in err and b"stopped by signal" in err
    printed = len((first + rest).splitlines())
    assert 0 < printed < 9000
    again = subprocess.run(
        [sys.executable, "-m", "zoom_oplog_shipper", "state", "show", "--json"],
        env=sim_env,
        capture_output=True,
        timeout=60,
    )
    assert orjson.loads(again.stdout)["fingerprints"] == printed


def test_reader_going_away_exits_quietly_non_zero(sim_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoom_oplog_shipper", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=sim_env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -n 1`
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 1
    assert b"Traceback" not in err and b"stdout was closed" in err


def test_version_fast_path_imports_nothing_else() -> None:
    code = (
        "import sys; sys.argv = ['zoom-oplog-shipper', '--version']\n"
        "from zoom_oplog_shipper._entry import entry\n"
        "try:\n    entry()\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "assert 'zoom_oplog_shipper.cli' not in sys.modules and 'requests' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"zoom-oplog-shipper {__version__}"


# -- messages that name the setting to fix (issue 9, section 4) -------------------------------------------
REFUSED_TOKEN_URL = "http://127.0.0.1:9/oauth/token"  # the discard port: connection refused


@pytest.mark.parametrize(
    ("argv", "extra_env", "code", "needles"),
    [
        (["rn"], {}, 2, ["invalid choice: 'rn'", "'run', 'check', 'state', 'simulate', 'demo'"]),
        (["run", "--client-secret", "typed-secret"], {}, 2, ["secrets are never flags", "ZOOM_CLIENT_SECRET_FILE"]),
        (["check", "--client-secret=typed-secret"], {}, 2, ["secrets are never flags", "ZOOM_CLIENT_SECRET "]),
        (["run"], {"ZOOM_CLIENT_SECRET_FILE": "/etc/zoom/secret"}, 2,
         ["ZOOM_CLIENT_SECRET and ZOOM_CLIENT_SECRET_FILE"]),
        (["run"], {"ZOOM_OAUTH_URL": "{base}/no/token"}, 2, ["{base}/no/token answered HTTP 404", "ZOOM_OAUTH_URL"]),
        (["run", "--backfill-start", "2026-11-25"], {"ZOOM_API_URL": "{base}/v1"}, 2,
         ["ZOOM_API_URL (--api-url) {base}/v1", "ends in /v2"]),
        (["check"], {"ZOOM_API_URL": "{base}/v1"}, None, ["operation logs:", "ZOOM_API_URL (--api-url) {base}/v1"]),
        (["run"], {"ZOOM_OAUTH_URL": REFUSED_TOKEN_URL}, 1,
         [f"connection refused ({REFUSED_TOKEN_URL})", "check ZOOM_OAUTH_URL"]),
    ],
)  # fmt: skip
def test_bad_settings_name_the_setting_without_class_names(
    env: dict[str, str],
    zoom: FakeZoom,
    argv: list[str],
    extra_env: dict[str, str],
    code: int | None,
    needles: list[str],
) -> None:
    import re  # here: this block is appended by the settings helper, the imports above are shared

    zoom.server.expect_request("/no/token", method="POST").respond_with_json({"error": "x"}, status=404)
    zoom.server.expect_request("/v1/report/operationlogs").respond_with_json(
        {"code": 404, "message": "No such API: GET /v1/report/operationlogs."}, status=404
    )
    result = cli(argv, {**env, **{k: v.replace("{base}", zoom.base) for k, v in extra_env.items()}})
    assert result.out == b""
    assert code is None or result.code == code  # `check` may also report this machine's clock against the server's
    for needle in needles:
        assert needle.replace("{base}", zoom.base) in result.err
    assert "typed-secret" not in result.err and SECRET not in result.err and "Traceback" not in result.err
    assert not re.search(r"\b\w*(Error|Exception|Pool)\b", result.err)


# -- looking never consumes (issue 15, part 2) -------------------------------------------------------


def shipper(*args: str) -> list[str]:
    return [sys.executable, "-m", "zoom_oplog_shipper", *args]


@pytest.fixture
def served(tmp_path: Path) -> Any:
    """A simulator holding 94 records in the last day, and the program's environment for it."""
    from zoom_oplog_shipper.simulator import Simulator, SimulatorConfig, serve_in_thread

    sim = Simulator(SimulatorConfig(seed=3, days=1, records_per_day=94))
    with serve_in_thread(sim) as server:
        start = (datetime.now(UTC) - timedelta(days=1, minutes=1)).isoformat()
        yield {**os.environ, **simulator_env(sim, server.base_url, tmp_path), "ZOOM_BACKFILL_START": start}


def _fingerprints(env: dict[str, str]) -> int:
    shown = subprocess.run(shipper("state", "show", "--json"), env=env, capture_output=True, timeout=60)
    return int(orjson.loads(shown.stdout).get("fingerprints", 0))


def test_run_into_head_commits_nothing_head_did_not_print(served: dict[str, str]) -> None:
    """The page (about 25 KB) fits in the pipe: written and flushed before `head` reads, it is still not
    committed, because `head` went away without reading all of it."""
    command = " ".join(shipper("run", "--format", "raw")) + " | head -n 2; exit ${PIPESTATUS[0]}"
    looked = subprocess.run(["bash", "-c", command], env=served, capture_output=True, text=True, timeout=120)
    printed = looked.stdout.splitlines()
    assert len(printed) == 2
    assert looked.returncode == 1, looked.stderr  # as for any reader that goes away: documented, one line
    assert "stdout was closed by its reader" in looked.stderr and "Traceback" not in looked.stderr
    assert looked.stderr.splitlines()[-1].split(" ", 3)[-1].startswith("stdout closed: ")
    committed = _fingerprints(served)
    assert committed <= len(printed)
    again = subprocess.run(shipper("run", "--format", "raw"), env=served, capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert len(again.stdout.splitlines()) == 94 - committed and _fingerprints(served) == 94


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_dry_run_prints_what_a_run_would_and_keeps_nothing(
    env: dict[str, str], zoom: FakeZoom, tmp_path: Path
) -> None:
    zoom.records = [record("2026-11-26T10:00:00Z", f"r{i}") for i in range(3)]
    env["ZOOM_OPLOG_METRICS_FILE"] = str(tmp_path / "metrics.prom")
    looked = cli(["run", "--dry-run", "--backfill-start", "2026-11-25"], env)
    assert looked.code == 0, looked.err
    assert len(looked.docs()) == 3
    assert "dry run" in looked.err and "nothing is committed" in looked.err and "does not exist yet" in looked.err
    assert "(dry run: nothing was committed)" in looked.err.splitlines()[-1]
    assert not (tmp_path / "state").exists() and not (tmp_path / "metrics.prom").exists()
    real = cli(["run", "--backfill-start", "2026-11-25"], env)
    assert real.out == looked.out


def test_a_dry_run_reads_an_existing_store_without_its_lock_and_changes_it_not(
    env: dict[str, str], zoom: FakeZoom, tmp_path: Path
) -> None:
    clock = FakeClock()
    zoom.records = [record("2026-11-26T10:00:00Z", "old")]
    assert cli(["run", "--backfill-start", "2026-11-25"], env, clock).code == 0
    clock.advance(3600)
    zoom.records.append(record("2026-11-26T12:30:00Z", "new"))
    before = _files(tmp_path / "state")
    held = RunLock(state_file(tmp_path / "state", "acct-1", "all"))
    assert held.acquire()  # the agent's run is under way: a dry run neither waits for it nor stops it
    try:
        looked = cli(["--dry-run"], env, clock)
    finally:
        held.release()
    assert looked.code == 0, looked.err
    assert [d["message"] for d in looked.docs()] == ["new"] and "read with a copy of" in looked.err
    assert _files(tmp_path / "state") == before
    assert [d["message"] for d in cli(["run"], env, clock).docs()] == ["new"]


# -- help is not a run (issue 15, part 5) --------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [["run", "--help"], ["state", "show", "--help"], ["--log-format", "json", "run", "--help"], ["-h"]]
)
def test_help_prints_no_run_summary(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    err = io.StringIO()
    assert main(argv, env={}, stdout=io.BytesIO(), stderr=err) == 0
    assert "usage:" in capsys.readouterr().out
    assert err.getvalue() == ""


# -- a stricter command line (issue 15, part 6) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["run", "--max-record", "5"], "unrecognized arguments: --max-record 5 (did you mean --max-records?)"),
        (["run", "--account", "acct-1"], "unrecognized arguments: --account acct-1 (did you mean --account-id?)"),
        (["--look", "2h"], "unrecognized arguments: --look 2h (did you mean --lookback?)"),
        (["state", "show", "--jsn"], "unrecognized arguments: --jsn (did you mean --json?)"),
        (["chek"], "invalid choice: 'chek'"),
    ],
)
def test_abbreviations_are_refused_with_what_was_meant(env: dict[str, str], argv: list[str], hint: str) -> None:
    result = cli(argv, env)
    assert result.code == 2 and hint in result.err and result.out == b"", result.err
    if argv == ["chek"]:
        assert "(did you mean check?)" in result.err


def test_category_type_flag_with_the_activity_logs_is_refused(env: dict[str, str]) -> None:
    result = cli(["run", "--stream", "activities", "--category-type", "user"], env)
    assert result.code == 2 and result.out == b""
    assert "--category-type applies to the operation logs only" in result.err
    # from the environment (or the config file), which both streams may share, it stays the operation logs' own
    shared = cli(["state", "path", "--stream", "activities"], {**env, "ZOOM_CATEGORY_TYPE": "user"})
    assert shared.code == 0 and "activities" in shared.out.decode() and shared.err == ""


def test_a_lookback_of_zero_is_accepted_with_a_warning_of_what_is_lost(env: dict[str, str], zoom: FakeZoom) -> None:
    result = cli(["run", "--lookback", "0"], env)
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if " WARNING: " in line]
    assert len(warnings) == 1
    assert "--lookback '0' turns a safety net off: late records are lost" in warnings[0]
    assert "safety net" not in cli(["run", "--lookback", "1h"], env).err
