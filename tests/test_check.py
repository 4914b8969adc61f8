"""`check` fails (exit 5) on every state problem that would make `run` exit 5, and changes no store."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

import platformdirs  # noqa: F401 - imported before the unprivileged child needs it
import pytest
from conftest import FakeClock, FakeZoom, cli_env
from unprivileged import give_to_nobody, make_read_only, run_unprivileged

import zoom_oplog_shipper.check
import zoom_oplog_shipper.output
import zoom_oplog_shipper.sync  # noqa: F401 - imported before the unprivileged child needs it
from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.state import RunLock, StateStore, state_file


def check(env: dict[str, str]) -> tuple[int, str]:
    os.environ["XDG_CONFIG_HOME"] = env["XDG_CONFIG_HOME"]
    err = io.StringIO()
    # the double's Date header is the real time, so the check runs on a clock that agrees with it
    code = main(["check"], env=env, stdout=io.BytesIO(), stderr=err, clock=FakeClock(datetime.now(UTC)))
    return code, err.getvalue()


@pytest.mark.parametrize("where", ["state-dir-under-read-only-dir", "read-only-state-dir"])
def test_state_directory_that_cannot_be_written_fails_the_check(open_dir: Path, zoom: FakeZoom, where: str) -> None:
    parent = open_dir / "readonly"
    parent.mkdir()
    state_dir = parent / "state" if where == "state-dir-under-read-only-dir" else parent
    env = cli_env(zoom, state_dir, open_dir / "xdg")
    give_to_nobody(parent)
    make_read_only(parent)

    code, err = run_unprivileged(lambda: check(env))
    assert code == 5, err
    fail = [line for line in err.splitlines() if line.startswith("[FAIL] state:")]
    assert fail and str(state_dir) in fail[0]
    assert f"{parent} belongs to nobody (mode 0555)" in fail[0] and f"`chmod u+rwx {parent}`" in fail[0]
    assert "all checks passed" not in err and "state reset" not in err
    assert list(parent.iterdir()) == []


def test_healthy_state_passes_and_stays_unchanged(tmp_path: Path, zoom: FakeZoom) -> None:
    env = cli_env(zoom, tmp_path / "state", tmp_path / "xdg")
    path = state_file(tmp_path / "state", "acct-1", "all")
    store = StateStore.open(path, "acct-1", "all")
    store.start(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    store.close()
    before = path.read_bytes()
    code, err = check(env)
    assert code == 0 and "all checks passed" in err, err
    assert f"[ ok ] state: {path} (watermark 2026-11-01" in err
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if "check" in p.name]


def test_first_run_state_passes(tmp_path: Path, zoom: FakeZoom) -> None:
    code, err = check(cli_env(zoom, tmp_path / "new" / "state", tmp_path / "xdg"))
    assert code == 0 and "the first run creates" in err, err


def test_unusable_store_fails_the_check_untouched(tmp_path: Path, zoom: FakeZoom) -> None:
    path = state_file(tmp_path / "state", "acct-1", "all")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    code, err = check(cli_env(zoom, tmp_path / "state", tmp_path / "xdg"))
    assert code == 5 and f"[FAIL] state: state file {path} is empty" in err
    assert path.read_bytes() == b""


def test_store_the_user_cannot_write_fails_the_check(open_dir: Path, zoom: FakeZoom) -> None:
    path = state_file(open_dir / "state", "acct-1", "all")
    StateStore.open(path, "acct-1", "all").close()
    give_to_nobody(path.parent, *path.parent.iterdir())
    make_read_only(path)
    env = cli_env(zoom, open_dir / "state", open_dir / "xdg")
    code, err = run_unprivileged(lambda: check(env))
    assert code == 5 and f"{path} belongs to nobody (mode 0400)" in err and f"`chmod u+rw {path}`" in err
    assert "state reset" not in err


def test_a_running_run_is_not_a_failure(tmp_path: Path, zoom: FakeZoom) -> None:
    path = state_file(tmp_path / "state", "acct-1", "all")
    path.parent.mkdir(parents=True)
    lock = RunLock(path)
    assert lock.acquire()
    try:
        code, err = check(cli_env(zoom, tmp_path / "state", tmp_path / "xdg"))
    finally:
        lock.release()
    assert code == 0 and "a run holds" in err, err


# -- check creates nothing a run needs, and speaks for the agent's user (issue 15, part 3) ------------


def agents_store(zoom: FakeZoom, open_dir: Path) -> tuple[dict[str, str], Path]:
    """A store made by a run, then given with its directory to `nobody` (the agent's user); no lock file yet."""
    env = cli_env(zoom, open_dir / "state", open_dir / "xdg")
    path = state_file(open_dir / "state", "acct-1", "all")
    StateStore.open(path, "acct-1", "all").close()
    give_to_nobody(path.parent, *path.parent.iterdir())
    return env, path


def listing(directory: Path) -> dict[str, tuple[int, int]]:
    """Each file's owner and mode."""
    return {p.name: (p.stat().st_uid, p.stat().st_mode) for p in directory.iterdir()}


def test_check_as_root_creates_nothing_and_names_the_user_to_run_it_as(open_dir: Path, zoom: FakeZoom) -> None:
    env, path = agents_store(zoom, open_dir)
    before = listing(path.parent)
    code, err = check(env)
    assert code == 0, err
    assert listing(path.parent) == before  # no lock file, no probe left, nothing of root's
    warn = [line for line in err.splitlines() if line.startswith("[WARN] state:")]
    assert warn and f"{path.parent} belongs to nobody" in warn[0] and "run it as nobody" in warn[0]
    assert "`sudo -u nobody zoom-oplog-shipper check` with the same settings" in warn[0]

    def run() -> int:
        os.environ["XDG_CONFIG_HOME"] = env["XDG_CONFIG_HOME"]
        return main(["run"], env=env, stdout=io.BytesIO(), stderr=io.StringIO(), clock=FakeClock())

    assert run_unprivileged(run) == 0  # the agent's user runs after root's check


def test_check_makes_no_state_directory(tmp_path: Path, zoom: FakeZoom) -> None:
    code, err = check(cli_env(zoom, tmp_path / "new" / "state", tmp_path / "xdg"))
    assert code == 0 and f"{tmp_path / 'new' / 'state'} can be made" in err, err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_check_fails_on_a_lock_file_the_runs_cannot_use(open_dir: Path, zoom: FakeZoom, user: str) -> None:
    env, path = agents_store(zoom, open_dir)
    lock = path.with_suffix(".lock")
    lock.write_bytes(b"")  # left by a command run as root (the check of earlier versions)
    lock.chmod(0o644)
    code, err = check(env) if user == "root" else run_unprivileged(lambda: check(env))
    assert code == 5, err
    fail = [line for line in err.splitlines() if line.startswith("[FAIL] state:")]
    assert fail and f"{lock} belongs to root (mode 0644)" in fail[0], err
    assert f"`chown nobody {lock}`" in fail[0] and "free space" not in fail[0]
