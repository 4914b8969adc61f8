"""configs/systemd, configs/cron and the settings file (issue 10, section 5; issue 11): the units of
both streams pass `systemd-analyze verify`, their paths and credentials line up with the tmpfiles,
sysusers and logrotate snippets, each stream has its own unit, timer, cron line and events file,
and the env file reads the same in a shell and in systemd."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from agent_configs import (
    ACTIVITIES,
    CONFIGS,
    CONSOLE_SCRIPT,
    CRON_FILE,
    ENV_EXAMPLE,
    OPERATIONS,
    SYSTEMD_SERVICE,
    SYSTEMD_TIMER,
    console_script,
    cron_period_seconds,
    duration_seconds,
    ini_value,
    read_cron_d,
    read_env_file,
    read_ini,
)

from zoom_oplog_shipper.cli import build_parser
from zoom_oplog_shipper.config import load_config

HOURLY = 3600
SYSTEMD = CONFIGS / "systemd"
TEMPLATE_SERVICE = SYSTEMD / "zoom-oplog-shipper@.service"
TEMPLATE_TIMER = SYSTEMD / "zoom-oplog-shipper@.timer"
TMPFILES = SYSTEMD / "zoom-oplog-shipper.tmpfiles"
SYSUSERS = SYSTEMD / "zoom-oplog-shipper.sysusers"
LOGROTATE = SYSTEMD / "zoom-oplog-shipper.logrotate"
CRON_MULTI = CONFIGS / "cron" / "zoom-oplog-shipper-multi-account"
ACTIVITY_SERVICE = SYSTEMD / "zoom-oplog-shipper-activities.service"
ACTIVITY_TIMER = SYSTEMD / "zoom-oplog-shipper-activities.timer"
ACTIVITY_TEMPLATE_SERVICE = SYSTEMD / "zoom-oplog-shipper-activities@.service"
ACTIVITY_TEMPLATE_TIMER = SYSTEMD / "zoom-oplog-shipper-activities@.timer"
SERVICES = (SYSTEMD_SERVICE, TEMPLATE_SERVICE, ACTIVITY_SERVICE, ACTIVITY_TEMPLATE_SERVICE)
TEMPLATES = (TEMPLATE_SERVICE, ACTIVITY_TEMPLATE_SERVICE)
#: The stream of each service, and its operations twin.
STREAM_OF = {
    SYSTEMD_SERVICE: OPERATIONS,
    TEMPLATE_SERVICE: OPERATIONS,
    ACTIVITY_SERVICE: ACTIVITIES,
    ACTIVITY_TEMPLATE_SERVICE: ACTIVITIES,
}
TWINS = {ACTIVITY_SERVICE: SYSTEMD_SERVICE, ACTIVITY_TEMPLATE_SERVICE: TEMPLATE_SERVICE}
TIMERS = {
    SYSTEMD_SERVICE: SYSTEMD_TIMER,
    TEMPLATE_SERVICE: TEMPLATE_TIMER,
    ACTIVITY_SERVICE: ACTIVITY_TIMER,
    ACTIVITY_TEMPLATE_SERVICE: ACTIVITY_TEMPLATE_TIMER,
}


def service(path: Path) -> list[tuple[str, str]]:
    return read_ini(path)["Service"]


def unit_env(stanza: list[tuple[str, str]]) -> dict[str, str]:
    return dict(v.split("=", 1) for k, v in stanza if k == "Environment")


def instance(value: str, name: str = "acme") -> str:
    """A templated unit's value for instance ``name``, with %S (the state root) resolved."""
    return value.replace("%i", name).replace("%S", "/var/lib")


def tmpfiles_lines() -> list[list[str]]:
    """The active tmpfiles.d lines: Type Path Mode User Group Age."""
    lines = []
    for raw in TMPFILES.read_text(encoding="utf-8").splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            lines.append(raw.split())
    return lines


def example_tmpfiles_lines(name: str) -> list[list[str]]:
    """The commented per-account lines of the tmpfiles snippet, for instance ``name``."""
    lines = [ln for ln in TMPFILES.read_text(encoding="utf-8").splitlines() if "NAME" in ln and ln.startswith("# f")]
    return [line.removeprefix("#").replace("NAME", name).split() for line in lines]


# ---------------------------------------------------------------------------------------------
# systemd-analyze verify, on copies whose ExecStart points at the installed console script.


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize(
    "units",
    [
        ("zoom-oplog-shipper.service", "zoom-oplog-shipper.timer"),
        ("zoom-oplog-shipper@.service", "zoom-oplog-shipper@.timer"),
        ("zoom-oplog-shipper-activities.service", "zoom-oplog-shipper-activities.timer"),
        ("zoom-oplog-shipper-activities@.service", "zoom-oplog-shipper-activities@.timer"),
    ],
    ids=["single", "template", "activities", "activities-template"],
)
def test_units_pass_systemd_analyze_verify(units: tuple[str, str], tmp_path: Path) -> None:
    names = []
    for name in units:
        text = (SYSTEMD / name).read_text(encoding="utf-8")
        assert f"ExecStart=/usr/local/bin/{CONSOLE_SCRIPT} run" in text or name.endswith(".timer")
        text = text.replace(f"/usr/local/bin/{CONSOLE_SCRIPT}", str(console_script()))
        (tmp_path / name).write_text(text, encoding="utf-8")
        names.append(name.replace("@.", "@acme."))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Unknown keys and bad values are warnings with exit 0: any output fails the test.
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result.stderr


# ---------------------------------------------------------------------------------------------
# The units' settings.


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_service_is_a_oneshot_bounded_below_the_timer(path: Path) -> None:
    stanza = service(path)
    assert ini_value(stanza, "Type") == "oneshot"
    argv = ini_value(stanza, "ExecStart").split()
    # The stream by name: the settings file is shared by both streams' units; so is the metrics
    # file by name (tests/test_configs_metrics.py checks where it goes).
    assert argv[:4] == [f"/usr/local/bin/{CONSOLE_SCRIPT}", "run", "--stream", STREAM_OF[path]]
    assert argv[4:5] == ["--metrics-file"] and len(argv) == 6
    args = build_parser().parse_args(argv[1:])
    flags = {k: v for k, v in vars(args).items() if k != "command"}
    env = {k: v for k, v in unit_env(stanza).items() if k != "ZOOM_CLIENT_SECRET_FILE"}
    # Even a ZOOM_OPLOG_STREAM in the settings file does not change the unit's stream.
    other = ACTIVITIES if STREAM_OF[path] == OPERATIONS else OPERATIONS
    settings = load_config(
        flags, {**env, "ZOOM_ACCOUNT_ID": "a", "ZOOM_OPLOG_STREAM": other}, datetime.now(UTC), need_credentials=False
    )
    assert settings.stream == STREAM_OF[path]
    timeout = duration_seconds(ini_value(stanza, "TimeoutStartSec"))
    assert settings.max_runtime.total_seconds() < timeout < HOURLY
    assert ini_value(stanza, "StandardError") == "journal"


@pytest.mark.parametrize("path", list(TWINS), ids=lambda p: p.name)
def test_activity_units_are_their_operations_twins_with_the_stream_and_its_own_file(path: Path) -> None:
    twin = TWINS[path]
    mine, theirs = read_ini(path), read_ini(twin)
    differ = {"Description", "ExecStart", "StandardOutput"}
    for section in ("Unit", "Service"):
        assert [kv for kv in mine[section] if kv[0] not in differ] == [
            kv for kv in theirs[section] if kv[0] not in differ
        ]
    assert ini_value(mine["Service"], "ExecStart") == ini_value(theirs["Service"], "ExecStart").replace(
        OPERATIONS, ACTIVITIES
    )
    events, twin_events = (instance(ini_value(s["Service"], "StandardOutput")) for s in (mine, theirs))
    assert events != twin_events and Path(events).parent == Path(twin_events).parent
    assert "activit" in ini_value(mine["Unit"], "Description")


@pytest.mark.parametrize("path", list(TWINS), ids=lambda p: p.name)
def test_the_streams_timers_do_not_start_together(path: Path) -> None:
    # Zoom's rate limit is shared by both reports: the activity timers start half an hour later,
    # and their random delay ends before the next hour's operations run.
    mine, theirs = (read_ini(TIMERS[p])["Timer"] for p in (path, TWINS[path]))
    assert ini_value(theirs, "OnCalendar") == "hourly"
    assert ini_value(mine, "OnCalendar") == "*-*-* *:30:00"
    assert duration_seconds(ini_value(mine, "RandomizedDelaySec")) <= HOURLY / 4
    assert ini_value(mine, "Persistent") == ini_value(theirs, "Persistent") == "true"
    assert ini_value(read_ini(TIMERS[path])["Install"], "WantedBy") == "timers.target"


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_service_runs_as_the_static_user_not_a_dynamic_one(path: Path) -> None:
    # DynamicUser=yes puts LogsDirectory= under /var/log/private (0700): no reader gets in.
    stanza = service(path)
    assert "DynamicUser" not in dict(stanza)
    (sysuser,) = [ln.split() for ln in SYSUSERS.read_text(encoding="utf-8").splitlines() if ln.startswith("u ")]
    assert ini_value(stanza, "User") == sysuser[1] == ini_value(stanza, "Group")
    assert ini_value(stanza, "UMask") == "0027"


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_events_file_exists_before_systemd_opens_it(path: Path) -> None:
    # systemd opens StandardOutput=append: as root before it creates LogsDirectory= (systemd issue
    # 27591, status 209/STDOUT): the tmpfiles snippet must create the directory and the file,
    # owned by the service's user and readable by its group.
    stanza = service(path)
    assert "LogsDirectory" not in dict(stanza)
    output = instance(ini_value(stanza, "StandardOutput"))
    assert output.startswith("append:/var/log/")
    events = output.removeprefix("append:")
    lines = [*tmpfiles_lines(), *example_tmpfiles_lines("acme")]
    by_path = {line[1]: line for line in lines}
    user = ini_value(stanza, "User")
    directory = by_path[str(Path(events).parent)]
    assert directory[0] == "d" and directory[2] == "0750" and directory[3:5] == [user, user]
    file_line = by_path[events]
    assert file_line[0] == "f" and file_line[2] == "0640" and file_line[3:5] == [user, user]


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_secret_is_a_credential_not_an_environment_variable(path: Path) -> None:
    stanza = service(path)
    name, _, source = instance(ini_value(stanza, "LoadCredential")).partition(":")
    assert source.startswith("/etc/zoom-oplog-shipper/") and Path(source).is_absolute()
    assert unit_env(stanza)["ZOOM_CLIENT_SECRET_FILE"] == f"%d/{name}"
    # EnvironmentFile= overrides Environment=: the env example must not set the secret either way.
    example = read_env_file(ENV_EXAMPLE)
    assert "ZOOM_CLIENT_SECRET" not in example and "ZOOM_CLIENT_SECRET_FILE" not in example


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_program_path_is_visible_under_protect_home(path: Path) -> None:
    stanza = service(path)
    assert ini_value(stanza, "ProtectHome") == "yes"
    program = ini_value(stanza, "ExecStart").split()[0]
    assert not program.startswith(("/home/", "/root/", "~"))
    text = path.read_text(encoding="utf-8")
    assert "~/.local/bin" not in text.replace("hides a\n#     ~/.local/bin", "")


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_gives_each_account_its_own_files(path: Path) -> None:
    stanza = service(path)
    per_instance = {
        "EnvironmentFile": ini_value(stanza, "EnvironmentFile"),
        "LoadCredential": ini_value(stanza, "LoadCredential").partition(":")[2],
        "StateDirectory": ini_value(stanza, "StateDirectory"),
        "ZOOM_OPLOG_STATE_DIR": unit_env(stanza)["ZOOM_OPLOG_STATE_DIR"],
        "StandardOutput": ini_value(stanza, "StandardOutput"),
    }
    for key, value in per_instance.items():
        assert "%i" in value, key
        assert instance(value, "acme") != instance(value, "globex")
    state_dir = instance(unit_env(stanza)["ZOOM_OPLOG_STATE_DIR"])
    assert state_dir == "/var/lib/" + instance(ini_value(stanza, "StateDirectory"))
    # The env file must not override the per-instance state directory.
    assert "ZOOM_OPLOG_STATE_DIR" not in read_env_file(ENV_EXAMPLE)
    timer = read_ini(TIMERS[path])
    # Spread over a quarter of the hour, well before the next start.
    assert 0 < duration_seconds(ini_value(timer["Timer"], "RandomizedDelaySec")) <= HOURLY / 4


@pytest.mark.parametrize("path", [SYSTEMD_SERVICE, ACTIVITY_SERVICE], ids=lambda p: p.name)
def test_single_unit_state_directory_and_timer(path: Path) -> None:
    stanza = service(path)
    assert instance(unit_env(stanza)["ZOOM_OPLOG_STATE_DIR"]) == "/var/lib/" + ini_value(stanza, "StateDirectory")
    assert ini_value(stanza, "EnvironmentFile") == "/etc/zoom-oplog-shipper/env"
    timer = read_ini(TIMERS[path])
    assert ini_value(timer["Timer"], "OnCalendar") in ("hourly", "*-*-* *:30:00")
    assert ini_value(timer["Install"], "WantedBy") == "timers.target"


def test_each_stream_appends_to_its_own_events_file() -> None:
    files = {p: instance(ini_value(service(p), "StandardOutput")) for p in SERVICES}
    assert len(set(files.values())) == len(files)
    assert files[ACTIVITY_SERVICE] == "append:/var/log/zoom-oplog-shipper/activities.ndjson"


def test_env_example_agrees_with_the_unit() -> None:
    # EnvironmentFile= overrides Environment=: where both set a value, it must be the same.
    stanza = service(SYSTEMD_SERVICE)
    example = read_env_file(ENV_EXAMPLE)
    for name, value in unit_env(stanza).items():
        if name in example:
            assert example[name] == value, name


# ---------------------------------------------------------------------------------------------
# logrotate.


def logrotate_globs() -> list[str]:
    text = LOGROTATE.read_text(encoding="utf-8")
    match = re.search(r"^(/\S+(?: /\S+)*) \{$", text, re.M)
    assert match
    return match.group(1).split()


def _matches(path: str, globs: list[str]) -> bool:
    return any(Path(path).match(g) and Path(path).parent == Path(g).parent for g in globs)


def test_logrotate_rotates_every_file_the_units_and_cron_write() -> None:
    globs = logrotate_globs()
    written = [instance(ini_value(service(p), "StandardOutput")).removeprefix("append:") for p in SERVICES]
    for cron_file in (CRON_FILE, CRON_MULTI):
        _, jobs = read_cron_d(cron_file)
        for job in jobs:
            written += re.findall(r"2?>>(/\S+)", job.command)
    assert any(p.endswith(".log") for p in written)
    for path in written:
        assert _matches(path, globs), f"logrotate does not rotate {path}"
    body = LOGROTATE.read_text(encoding="utf-8")
    assert "copytruncate" not in body.split("{", 1)[1]  # every run reopens its files
    assert re.search(r"^\s+create 0640 zoom-oplog zoom-oplog$", body, re.M)


# ---------------------------------------------------------------------------------------------
# The env file: one syntax that a shell and systemd read the same way.


def shell_reading(path: Path) -> dict[str, str]:
    """What `set -a; . FILE` exports, in a clean environment."""
    script = f'set -a; . "{path}"; set +a; env -0'
    result = subprocess.run(["/bin/sh", "-c", script], env={}, capture_output=True, timeout=10, check=True)
    pairs = [item.split(b"=", 1) for item in result.stdout.split(b"\0") if b"=" in item]
    ignored = {"PWD", "SHLVL", "_", "OLDPWD"}
    return {k.decode(): v.decode() for k, v in pairs if k.decode() not in ignored}


def systemd_reading(path: Path) -> dict[str, str]:
    """systemd's EnvironmentFile= for the restricted syntax: KEY=value, whole-line comments."""
    return read_env_file(path)


def test_env_example_uses_only_the_common_syntax() -> None:
    for number, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*=[^\s\"'$`\\]*", line), f"line {number}: {line!r}"


def test_shell_and_systemd_read_the_env_example_alike(tmp_path: Path) -> None:
    filled = tmp_path / "env"
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    text = re.sub(r"^(ZOOM_ACCOUNT_ID|ZOOM_CLIENT_ID)=$", r"\1=abc-123_X", text, flags=re.M)
    text = text.replace("ZOOM_BACKFILL_START=\n", "ZOOM_BACKFILL_START=2026-06-01T00:00:00Z\n")
    filled.write_text(text, encoding="utf-8")
    assert shell_reading(filled) == systemd_reading(filled)
    assert systemd_reading(filled)["ZOOM_BACKFILL_START"] == "2026-06-01T00:00:00Z"


def test_env_example_names_only_the_programs_settings(capsys: pytest.CaptureFixture[str]) -> None:
    env = read_env_file(ENV_EXAMPLE)
    assert {"ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_BACKFILL_START"} <= set(env)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    help_text = capsys.readouterr().out
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in set(re.findall(r"^#? ?(ZOOM_[A-Z_]+)=", text, re.M)):
        assert name in help_text, f"{name} is not a setting of `zoom-oplog-shipper run`"
    settings = load_config(
        {}, {**env, "ZOOM_ACCOUNT_ID": "a", "ZOOM_CLIENT_ID": "b", "ZOOM_CLIENT_SECRET": "c"}, datetime.now(UTC)
    )
    assert settings.max_runtime.total_seconds() <= HOURLY / 2
    assert settings.backfill_start is None  # empty: the user fills in a date


# ---------------------------------------------------------------------------------------------
# cron.


CRON_FILES = (CRON_FILE, CRON_MULTI)


CRON_LINE = re.compile(
    rf"set -a; \. (/etc/zoom-oplog-shipper/\S+); set \+a; "
    rf"exec {CONSOLE_SCRIPT} run --stream (\w+) --metrics-file /\S+ >>(/\S+) 2>>(/\S+)"
)


@pytest.mark.parametrize("path", CRON_FILES, ids=lambda p: p.name)
def test_cron_lines_run_hourly_with_separate_outputs(path: Path) -> None:
    variables, jobs = read_cron_d(path)
    assert jobs
    assert "/usr/local/bin" in variables["PATH"].split(":")
    assert variables["ZOOM_OPLOG_STATE_DIR"] == "/var/lib/zoom-oplog-shipper"
    outputs: list[str] = []
    minutes = []
    streams: dict[str, list[str]] = {}
    for job in jobs:
        assert cron_period_seconds(job.minute, job.hour, job.day, job.month, job.weekday) == HOURLY
        assert job.user != "root"
        assert "%" not in job.command  # cron turns % into a newline
        match = CRON_LINE.fullmatch(job.command)
        assert match, job.command
        env_file, stream, events, log = match.groups()
        assert events != log
        outputs += [events, log]
        minutes.append(job.minute)
        streams.setdefault(env_file, []).append(stream)
        if stream == ACTIVITIES:
            assert Path(events).name.endswith("activities.ndjson") and "activities" in Path(log).name
    assert len(set(outputs)) == len(outputs), "two lines write to the same file"
    assert len(set(minutes)) == len(minutes), "accounts and streams are not staggered"
    # Every account (settings file) ships both streams.
    assert all(sorted(s) == [ACTIVITIES, OPERATIONS] for s in streams.values()), streams


def test_multi_account_cron_lines_read_their_own_settings() -> None:
    _, jobs = read_cron_d(CRON_MULTI)
    assert len(jobs) >= 2
    env_files = [re.search(r"\. (\S+);", job.command).group(1) for job in jobs]  # type: ignore[union-attr]
    assert len(set(env_files)) == len(jobs) // 2  # one per account, read by its two lines
    for job, env_file in zip(jobs, env_files, strict=True):
        name = Path(env_file).name.removesuffix(".env")
        assert job.command.count(name) == 4, job.command  # settings, events, log, metrics
