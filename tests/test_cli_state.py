"""State safety through the command line: backfill start, unusable stores, `state show`, `state rewind`."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path

import orjson
import platformdirs  # noqa: F401 - imported before the unprivileged child needs it
import pytest
from conftest import NOW, FakeClock, FakeZoom, cli, cli_env, record
from unprivileged import NOBODY, give_to_nobody, make_read_only, run_unprivileged

import zoom_oplog_shipper.output
import zoom_oplog_shipper.state_cli
import zoom_oplog_shipper.sync  # noqa: F401 - imported before the unprivileged child needs it
from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.state import RunLock, StateStore, state_file


def store_path(env: dict[str, str]) -> Path:
    return state_file(Path(env["ZOOM_OPLOG_STATE_DIR"]), "acct-1", "all")


def daily(zoom: FakeZoom, days: int) -> None:
    """One record at 10:00 UTC on each of the last ``days`` days, today included."""
    zoom.records = [
        record((NOW - timedelta(days=d)).strftime("%Y-%m-%dT10:00:00Z"), f"day {d}") for d in range(days - 1, -1, -1)
    ]


# -- the backfill start is not pinned by a run that delivered nothing ----------------------------


def test_failed_first_run_does_not_pin_the_backfill_start(env: dict[str, str], zoom: FakeZoom) -> None:
    daily(zoom, 10)
    failed = cli(["run", "--backfill-start", "2026-11-24"], {**env, "ZOOM_CLIENT_SECRET": "wrong"})
    assert failed.code == 3 and store_path(env).exists()
    fixed = cli(["run", "--backfill-start", "2026-11-18"], env)
    assert fixed.code == 0, fixed.err
    assert sorted(d["message"] for d in fixed.docs()) == [f"day {d}" for d in range(9)]
    assert "ignored" not in fixed.err


def test_first_run_without_records_does_not_pin_it_either(env: dict[str, str], zoom: FakeZoom) -> None:
    assert cli(["run", "--backfill-start", "2026-11-25"], env).code == 0
    daily(zoom, 10)
    zoom.records = [r for r in zoom.records if r["time"] < "2026-11-25"]
    docs = cli(["run", "--backfill-start", "2026-11-20"], env).docs()
    assert sorted(d["message"] for d in docs) == ["day 2", "day 3", "day 4", "day 5", "day 6"]


def test_changed_backfill_start_after_delivery_warns_naming_rewind(env: dict[str, str], zoom: FakeZoom) -> None:
    daily(zoom, 10)
    assert len(cli(["run", "--backfill-start", "2026-11-24"], env).docs()) == 3
    again = cli(["run", "--backfill-start", "2026-11-18"], env)
    assert again.code == 0 and again.docs() == []
    warning = [line for line in again.err.splitlines() if "state rewind" in line]
    assert warning and "WARNING" in warning[0].upper()
    assert "zoom-oplog-shipper state rewind --to 2026-11-18 --yes" in warning[0]
    # the same start as before is not worth a word
    assert "rewind" not in cli(["run", "--backfill-start", "2026-11-24"], env).err


# -- an unusable store stops the run, untouched ----------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\x00" * 512, b"SQLite format 3\x00" + b"\x00" * 100])
def test_unusable_store_exits_5_untouched(env: dict[str, str], zoom: FakeZoom, content: bytes) -> None:
    daily(zoom, 3)
    path = store_path(env)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    for argv in (["run"], ["state", "show"], ["state", "rewind", "--to", "2026-11-20", "--yes"]):
        result = cli(argv, env)
        assert result.code == 5, (argv, result.err)
        assert str(path) in result.err and result.out == b""
        assert "Traceback" not in result.err
    assert path.read_bytes() == content
    assert zoom.requests == []


# -- state show ------------------------------------------------------------------------------------


def test_state_show_leads_with_what_an_operator_asks(env: dict[str, str], zoom: FakeZoom) -> None:
    daily(zoom, 3)
    clock = FakeClock()
    assert cli(["run", "--backfill-start", "2026-11-24"], env, clock).code == 0
    store = StateStore.open(store_path(env), "acct-1", "all")
    store.save_summary({"exit_code": 0, "outcome": "complete", "finished": "2026-11-26T12:00:00.000Z", "emitted": 3})
    store.save_summary({"exit_code": 3, "outcome": "auth failed", "finished": "2026-11-26T13:00:00.000Z"})
    store.close()
    clock.advance(2 * 3600)
    shown = cli(["state", "show"], env, clock)
    assert shown.code == 0
    lines = shown.out.decode().splitlines()
    assert lines[0].startswith("last run:") and "auth failed" in lines[0] and "exit 3" in lines[0]
    assert "2026-11-26T13:00:00" in lines[0]
    assert lines[1].startswith("last success:") and "2026-11-26T12:00:00" in lines[1]
    assert lines[2].startswith("lag:") and "h" in lines[2]
    assert lines[3].startswith("records in the last run:")
    text = shown.out.decode()
    for needle in ("watermark:", "floor:", "fingerprints: 1", f"path: {store_path(env)}"):
        assert needle in text
    machine = orjson.loads(cli(["state", "show", "--json"], env, clock).out)
    assert machine["fingerprints"] == 1 and machine["exists"] is True
    assert machine["last_run"]["exit_code"] == 3 and machine["last_success"]["exit_code"] == 0


def test_state_show_of_an_older_store_without_summaries(env: dict[str, str]) -> None:
    store = StateStore.open(store_path(env), "acct-1", "all")
    store.save_summary({"emitted": 4})  # an older version's summary: no outcome, no exit code
    store.close()
    shown = cli(["state", "show"], env)
    assert shown.code == 0 and "Traceback" not in shown.err
    lines = shown.out.decode().splitlines()
    assert lines[0].startswith("last run:") and lines[1] == "last success: none recorded"
    assert "records in the last run: 4" in shown.out.decode()


def test_state_show_without_a_store(env: dict[str, str]) -> None:
    shown = cli(["state", "show"], env)
    assert shown.code == 0 and "no state yet" in shown.out.decode()
    assert orjson.loads(cli(["state", "show", "--json"], env).out) == {
        "path": str(store_path(env)),
        "exists": False,
    }


def store_given_to_nobody(zoom: FakeZoom, open_dir: Path) -> tuple[dict[str, str], Path, list[Path]]:
    """A two-day store in ``open_dir``; the store, its lock and its directory now belong to ``nobody``."""
    env = cli_env(zoom, open_dir / "state", open_dir / "xdg")
    daily(zoom, 2)
    assert cli(["run", "--backfill-start", "2026-11-25"], env).code == 0
    path = store_path(env)
    files = sorted(path.parent.iterdir())
    give_to_nobody(path.parent, *files)
    return env, path, files


def test_state_show_on_a_read_only_directory(open_dir: Path, zoom: FakeZoom) -> None:
    env, path, files = store_given_to_nobody(zoom, open_dir)
    make_read_only(path.parent, *files)
    before = path.read_bytes()

    def show() -> tuple[int, bytes, str]:
        os.environ["XDG_CONFIG_HOME"] = str(open_dir / "xdg")
        result = cli(["state", "show", "--json"], env)
        return result.code, result.out, result.err

    code, out, err = run_unprivileged(show)
    assert code == 0, err
    assert orjson.loads(out)["fingerprints"] == 1
    assert path.read_bytes() == before


@pytest.mark.parametrize("problem", ["store", "lock", "directory", "lock of root"])
def test_unwritable_state_exits_5_naming_the_file_its_owner_mode_and_fix(
    open_dir: Path, zoom: FakeZoom, problem: str
) -> None:
    env, path, _ = store_given_to_nobody(zoom, open_dir)
    lock = path.with_suffix(".lock")
    if problem == "lock":
        lock.unlink()
    if problem == "lock of root":  # left by a command run as root
        os.chown(lock, 0, 0)
    else:
        make_read_only({"store": path, "lock": path.parent, "directory": path.parent}[problem])
    before = path.read_bytes()

    def run() -> tuple[int, bytes, str]:
        os.environ["XDG_CONFIG_HOME"] = str(open_dir / "xdg")
        result = cli(["run"], env, FakeClock(NOW + timedelta(hours=1)))
        return result.code, result.out, result.err

    code, out, err = run_unprivileged(run)
    assert code == 5, err
    first = err.splitlines()[0]
    named, owner, fix = {
        "store": (path, "nobody (mode 0400)", f"`chmod u+rw {path}"),
        "lock": (lock, "nobody (mode 0500)", f"`chmod u+rwx {path.parent}`"),
        "directory": (path, "nobody (mode 0500)", f"`chmod u+rwx {path.parent}`"),
        "lock of root": (lock, "root (mode 0644)", f"`chown nobody {lock}` (as root), or run as root"),
    }[problem]
    assert str(named) in first and f"belongs to {owner}" in first and fix in first, first
    assert "this process runs as nobody" in first
    assert "free space" not in err and "state reset" not in err and out == b""
    assert path.read_bytes() == before


# -- state rewind: the refusals -------------------------------------------------------------------


def test_rewind_needs_yes_and_changes_nothing_without_it(env: dict[str, str], zoom: FakeZoom) -> None:
    daily(zoom, 3)
    assert cli(["run", "--backfill-start", "2026-11-24"], env).code == 0
    before = cli(["state", "show", "--json"], env).out
    result = cli(["state", "rewind", "--to", "2026-11-25"], env)
    assert result.code == 2 and "--yes" in result.err and "event.id" in result.err
    assert cli(["state", "show", "--json"], env).out == before


@pytest.mark.parametrize(
    ("to", "needle"),
    [
        ("2099-01-01", "in the future"),
        ("yesterday", "not a date"),
        ("2026-11-27T00:00:00Z", "in the future"),
    ],
)
def test_rewind_refuses_bad_dates(env: dict[str, str], zoom: FakeZoom, to: str, needle: str) -> None:
    daily(zoom, 3)
    assert cli(["run", "--backfill-start", "2026-11-24"], env).code == 0
    result = cli(["state", "rewind", "--to", to, "--yes"], env)
    assert result.code == 2 and needle in result.err and "Traceback" not in result.err


def test_rewind_without_a_store(env: dict[str, str]) -> None:
    result = cli(["state", "rewind", "--to", "2026-11-20", "--yes"], env)
    assert result.code == 2 and "nothing to rewind" in result.err and str(store_path(env)) in result.err
    assert not store_path(env).exists()


def test_rewind_while_a_run_holds_the_lock(env: dict[str, str], zoom: FakeZoom) -> None:
    daily(zoom, 3)
    assert cli(["run", "--backfill-start", "2026-11-24"], env).code == 0
    lock = RunLock(store_path(env))
    assert lock.acquire()
    try:
        result = cli(["state", "rewind", "--to", "2026-11-25", "--yes"], env)
    finally:
        lock.release()
    assert result.code == 1 and "holds" in result.err


def test_rewind_older_than_zoom_keeps_is_clamped(env: dict[str, str], zoom: FakeZoom) -> None:
    daily(zoom, 3)
    assert cli(["run", "--backfill-start", "2026-11-24"], env).code == 0
    result = cli(["state", "rewind", "--to", "2025-01-01", "--yes"], env)
    assert result.code == 0, result.err
    assert "older than Zoom keeps" in result.err and "2026-05-28" in result.err
    assert orjson.loads(cli(["state", "show", "--json"], env).out)["watermark"].startswith("2026-05-28")


def test_rewind_logs_what_it_did(env: dict[str, str], zoom: FakeZoom) -> None:
    daily(zoom, 3)
    assert cli(["run", "--backfill-start", "2026-11-24"], env).code == 0
    result = cli(["state", "rewind", "--to", "2026-11-25", "--yes"], env)
    assert result.code == 0 and result.out == b""
    assert "watermark 2026-11-26T12:00:00" in result.err and "-> 2026-11-25T00:00:00" in result.err
    # 11-26's fingerprint goes; 11-25's was already pruned (older than the watermark minus the lookback)
    assert "fingerprints removed: 1" in result.err


def test_state_files_stay_private(env: dict[str, str], zoom: FakeZoom) -> None:
    daily(zoom, 2)
    assert cli(["run", "--backfill-start", "2026-11-25"], env).code == 0
    assert oct(os.stat(store_path(env)).st_mode & 0o777) == oct(0o600)


def test_state_commands_act_on_the_chosen_streams_store(tmp_path: Path) -> None:
    """`state path/show/reset --stream activities` never touch the operations store."""
    env = {"ZOOM_ACCOUNT_ID": "acct-1", "ZOOM_OPLOG_STATE_DIR": str(tmp_path / "state")}
    paths = {}
    for stream in ("operations", "activities"):
        out = io.BytesIO()
        assert main(["state", "path", "--stream", stream], env=env, stdout=out, stderr=io.StringIO()) == 0
        paths[stream] = Path(out.getvalue().decode().strip())
    assert paths["operations"] != paths["activities"] and "activities" in paths["activities"].name
    for stream, path in paths.items():
        StateStore.open(path, "acct-1", "all" if stream == "operations" else "activities").close()
    assert main(["state", "reset", "--stream", "activities", "--yes"], env=env, stderr=io.StringIO()) == 0
    assert paths["operations"].exists() and not paths["activities"].exists()
    shown = io.BytesIO()
    assert main(["state", "show", "--json"], env={**env, "ZOOM_OPLOG_STREAM": "operations"}, stdout=shown) == 0
    assert orjson.loads(shown.getvalue())["exists"] is True


@pytest.mark.parametrize("command", [["run"], ["check"]])
def test_a_state_directory_that_cannot_be_made_is_exit_5_for_run_and_check(
    command: list[str], zoom: FakeZoom, tmp_path: Path
) -> None:
    """`run` and `check` agree: the directory is named, with the fix, and the exit code is 5 (state)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory's parent should be")
    result = cli(command, cli_env(zoom, blocker / "state", tmp_path / "xdg"))
    assert result.code == 5, result.err
    assert f"cannot create state directory {blocker / 'state'}" in result.err
    assert "set --state-dir to a writable directory" in result.err and "state reset" not in result.err


# -- state commands run as root leave nothing the agent's user cannot use (issue 15, part 3) ----------


@pytest.mark.parametrize(
    "command",
    [["state", "show"], ["state", "rewind", "--to", "2026-11-25", "--yes"], ["state", "reset", "--yes"]],
    ids=["show", "rewind", "reset"],
)
def test_state_commands_as_root_leave_nothing_the_agent_cannot_use(
    open_dir: Path, zoom: FakeZoom, command: list[str]
) -> None:
    env, path, _ = store_given_to_nobody(zoom, open_dir)
    path.with_suffix(".lock").unlink()  # as after an install: the first to lock makes the file
    clock = FakeClock(NOW + timedelta(hours=1))
    result = cli(command, env, clock)  # as root
    assert result.code == 0, result.err
    assert {p.name: p.stat().st_uid for p in path.parent.iterdir()} == {p.name: NOBODY for p in path.parent.iterdir()}

    def run() -> tuple[int, str]:
        os.environ["XDG_CONFIG_HOME"] = str(open_dir / "xdg")
        again = cli(["run", "--backfill-start", "2026-11-25"], env, clock)
        return again.code, again.err

    code, err = run_unprivileged(run)
    assert code == 0, err


# -- state show by a user who cannot read the store (issue 15, part 4) ---------------------------------


def test_state_show_by_a_user_who_cannot_read_the_store_is_exit_5_with_owner_and_fix(
    open_dir: Path, zoom: FakeZoom
) -> None:
    env = cli_env(zoom, open_dir / "state", open_dir / "xdg")
    daily(zoom, 2)
    assert cli(["run", "--backfill-start", "2026-11-25"], env).code == 0  # root's store, in root's 0700 directory

    def show() -> tuple[int, bytes, str]:
        os.environ["XDG_CONFIG_HOME"] = str(open_dir / "xdg")
        result = cli(["state", "show"], env)
        return result.code, result.out, result.err

    code, out, err = run_unprivileged(show)
    assert code == 5 and out == b"", err
    assert len(err.splitlines()) == 1 and "unexpected" not in err
    state_dir = open_dir / "state"
    assert f"{state_dir} belongs to root (mode 0700), and this process runs as nobody" in err
    assert f"`chown nobody {state_dir}` (as root), or run as root" in err


# -- state show names the stream (issue 15, part 5) ------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "key", "line"),
    [
        ("activities", "activities", "account: acct-1, stream: activities"),
        ("operations", "all", "account: acct-1, stream: operations, category: all"),
    ],
)
def test_state_show_names_the_stream(env: dict[str, str], stream: str, key: str, line: str) -> None:
    path = state_file(Path(env["ZOOM_OPLOG_STATE_DIR"]), "acct-1", key)
    StateStore.open(path, "acct-1", key).close()
    shown = cli(["state", "show", "--stream", stream], env)
    assert shown.code == 0, shown.err
    assert line in shown.out.decode().splitlines()
