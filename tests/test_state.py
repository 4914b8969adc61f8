from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from zoom_oplog_shipper.errors import StateError
from zoom_oplog_shipper.state import RunLock, StateStore, reset_state, state_file

T = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return state_file(tmp_path / "st", "acct/1", "all")


def test_state_file_names_are_safe_and_distinct(tmp_path: Path) -> None:
    a = state_file(tmp_path, "acct/1", "all")
    assert a.parent == tmp_path and "/" not in a.name and a.name.startswith("acct_1-all-")
    assert a != state_file(tmp_path, "acct_1", "all")
    assert a != state_file(tmp_path, "acct/1", "user")


def test_new_store_is_private_and_empty(path: Path) -> None:
    store = StateStore.open(path, "acct/1", "all")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    snap = store.snapshot()
    assert snap.watermark is None and not snap.to_inclusive and snap.offset_limit is None
    store.close()


def test_round_trip(path: Path) -> None:
    store = StateStore.open(path, "acct/1", "all")
    store.start(T, T)
    store.commit_page([(b"a" * 16, 100), (b"b" * 16, 200)])
    store.learn("to_inclusive")
    assert store.already_seen([b"a" * 16, b"c" * 16]) == {b"a" * 16}
    store.advance(datetime(2026, 11, 27, tzinfo=UTC), 150)
    store.save_summary({"emitted": 2})
    store.close()
    store = StateStore.open(path, "acct/1", "all")
    snap = store.snapshot()
    assert snap.watermark == datetime(2026, 11, 27, tzinfo=UTC) and snap.floor == T and snap.to_inclusive
    assert store.seen_since(0) == {b"b" * 16}
    info = store.describe()
    assert info["fingerprints"] == 1 and info["last_run"] == {"emitted": 2} and info["path"] == str(path)
    store.close()


def test_commit_is_atomic(path: Path) -> None:
    store = StateStore.open(path, "acct/1", "all")

    def entries():  # type: ignore[no-untyped-def]
        yield (b"a" * 16, 1)
        raise RuntimeError("killed mid-commit")

    with pytest.raises(RuntimeError):
        store.commit_page(entries())
    assert store.seen_since(0) == set()
    store.close()


def test_corrupt_file_is_reported_not_reset(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError) as info:
        StateStore.open(path, "acct/1", "all")
    assert str(path) in str(info.value) and "state reset --yes" in str(info.value)
    assert path.read_bytes().startswith(b"this is not a database")


def test_foreign_store_is_refused(path: Path) -> None:
    StateStore.open(path, "acct/1", "all").close()
    with pytest.raises(StateError, match="another account"):
        StateStore.open(path, "acct/2", "all")


def test_unreadable_watermark(path: Path) -> None:
    StateStore.open(path, "acct/1", "all").close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('watermark', 'garbage')")
    store = StateStore.open(path, "acct/1", "all")
    with pytest.raises(StateError, match="unreadable watermark"):
        store.snapshot()


def test_missing_store_without_create(path: Path) -> None:
    with pytest.raises(StateError, match="first `zoom-oplog-shipper run`"):
        StateStore.open(path, "acct/1", "all", create=False)


def test_state_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateError, match="set --state-dir"):
        StateStore.open(blocker / "s.sqlite3", "a", "all")


def test_lock_is_exclusive(path: Path) -> None:
    path.parent.mkdir(parents=True)
    first, second = RunLock(path), RunLock(path)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_reset_removes_side_files(path: Path) -> None:
    store = StateStore.open(path, "acct/1", "all")
    store.commit_page([(b"a" * 16, 1)])
    removed = reset_state(path)
    assert path in removed and not path.exists()
    store.close()
