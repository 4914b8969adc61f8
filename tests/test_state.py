from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from unprivileged import give_to_nobody, make_read_only, run_unprivileged

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

    def entries() -> Iterator[tuple[bytes, int]]:
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


# -- unusable stores: refused, named, never rewritten -------------------------------------------


def _foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('someone else''s data')")
    conn.close()


def _meta_without_marker(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("CREATE TABLE seen (t INTEGER NOT NULL, fp BLOB NOT NULL, PRIMARY KEY (t, fp)) WITHOUT ROWID")
    conn.close()


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"\x00" * 4096)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (_empty, "empty"),
        (_not_sqlite, "not a zoom-oplog-shipper state store"),
        (_foreign_sqlite, "not a zoom-oplog-shipper state store"),
        (_meta_without_marker, "not a zoom-oplog-shipper state store"),
    ],
    ids=["zero-bytes", "zeros", "foreign-sqlite", "no-marker"],
)
def test_unusable_store_is_refused_and_left_byte_for_byte(path: Path, make: Any, needle: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)
    before = path.read_bytes()
    for create in (True, False):
        with pytest.raises(StateError) as info:
            StateStore.open(path, "acct/1", "all", create=create)
        text = str(info.value)
        assert str(path) in text and needle in text and "state reset --yes" in text
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_crash_while_creating_leaves_no_store(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def power_cut(*_args: Any, **_kwargs: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite3, "connect", power_cut)
    with pytest.raises(StateError):
        StateStore.open(path, "acct/1", "all")
    monkeypatch.undo()
    # Nothing half-made is left to be taken for an unusable store: the next run starts cleanly.
    assert list(path.parent.iterdir()) == []
    store = StateStore.open(path, "acct/1", "all")
    assert store.snapshot().watermark is None
    store.close()


def test_store_made_before_this_version_opens_unchanged(path: Path) -> None:
    # The layout the previous version wrote: WAL, meta with schema and identity, no new keys.
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE seen (fp BLOB PRIMARY KEY, t INTEGER NOT NULL);"
        )
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("schema", "1"), ("account_id", "acct/1"), ("category_type", "all"),
             ("watermark", T.isoformat()), ("floor", T.isoformat())],
        )  # fmt: skip
        conn.execute("INSERT INTO seen VALUES (?, ?)", (b"a" * 16, 5))
    conn.close()
    store = StateStore.open(path, "acct/1", "all")
    snap = store.snapshot()
    assert snap.watermark == T and snap.delivered and store.seen_since(0) == {b"a" * 16}
    store.close()


# -- full disk, permissions: the fix is space or permissions, never a reset ----------------------


def test_full_disk_names_the_file_and_does_not_advise_reset(path: Path) -> None:
    store = StateStore.open(path, "acct/1", "all")

    def entries() -> Iterator[tuple[bytes, int]]:
        yield (b"a" * 16, 1)
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.raises(StateError) as info:
        store.commit_page(entries())
    text = str(info.value)
    assert str(path) in text and f"free space on the filesystem holding {path.parent}" in text
    assert "state reset" not in text and "permission" not in text and "chmod" not in text
    store.close()


def test_unwritable_store_names_the_file_and_does_not_advise_reset(open_dir: Path) -> None:
    path = state_file(open_dir / "st", "acct/1", "all")
    store = StateStore.open(path, "acct/1", "all")
    store.start(T, T)
    store.close()
    give_to_nobody(path.parent, path)
    make_read_only(path, path.parent)

    def write() -> str:
        try:
            s = StateStore.open(path, "acct/1", "all")
            s.learn("to_inclusive")
        except StateError as exc:
            return str(exc)
        return "no error"

    text = run_unprivileged(write)
    assert f"cannot open state file {path}" in text and "free space" not in text, text
    assert f"{path.parent} belongs to nobody (mode 0500); {path} belongs to nobody (mode 0400)" in text
    assert f"`chmod u+rwx {path.parent}` and `chmod u+rw {path}`" in text
    assert "state reset" not in text


def test_read_only_store_on_read_only_dir_can_be_described(open_dir: Path) -> None:
    path = state_file(open_dir / "st", "acct/1", "all")
    store = StateStore.open(path, "acct/1", "all")
    store.start(T, T)
    store.commit_page([(b"a" * 16, 100)])
    store.close()
    before = path.read_bytes()
    give_to_nobody(path.parent, path)
    make_read_only(path, path.parent)

    def describe() -> dict[str, Any]:
        s = StateStore.open(path, "acct/1", "all", readonly=True)
        try:
            return s.describe()
        finally:
            s.close()

    info = run_unprivileged(describe)
    assert info["fingerprints"] == 1 and info["watermark"] == T.isoformat()
    assert path.read_bytes() == before


def test_read_only_open_never_writes(path: Path) -> None:
    store = StateStore.open(path, "acct/1", "all")
    store.start(T, T)
    store.close()
    before = path.read_bytes()
    store = StateStore.open(path, "acct/1", "all", readonly=True)
    store.describe()
    with pytest.raises(StateError, match="cannot write"):
        store.learn("to_inclusive")
    store.close()
    assert path.read_bytes() == before


# -- summaries and the delivered flag ---------------------------------------------------------


def test_last_success_is_kept_across_failed_runs(path: Path) -> None:
    store = StateStore.open(path, "acct/1", "all")
    store.save_summary({"exit_code": 0, "outcome": "complete", "finished": "2026-11-26T10:00:00.000Z"})
    store.save_summary({"exit_code": 3, "outcome": "auth failed", "finished": "2026-11-26T11:00:00.000Z"})
    info = store.describe()
    assert info["last_run"]["exit_code"] == 3
    assert info["last_success"] == {"exit_code": 0, "outcome": "complete", "finished": "2026-11-26T10:00:00.000Z"}
    store.close()


def test_unreadable_summary_is_shown_as_missing(path: Path) -> None:
    StateStore.open(path, "acct/1", "all").close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_run', '[1, 2')")
    conn.close()
    store = StateStore.open(path, "acct/1", "all")
    assert store.describe()["last_run"] is None and store.describe()["last_success"] is None
    store.close()


def test_delivered_is_set_by_the_first_page_with_records(path: Path) -> None:
    store = StateStore.open(path, "acct/1", "all")
    store.start(T, T)
    assert not store.snapshot().delivered
    store.commit_page([], {"start": "a", "end": "b", "from": "a", "to": "b"})
    store.advance(T, 0)
    assert not store.snapshot().delivered
    store.commit_page([(b"a" * 16, 1)])
    assert store.snapshot().delivered
    store.close()


def test_each_window_in_flight_keeps_its_own_resume_point(path: Path) -> None:
    store = StateStore.open(path, "acct/1", "all")
    store.start(T, T)
    first = {"start": "2026-06-01", "end": "2026-06-28", "from": "2026-06-01", "to": "2026-06-20"}
    second = {"start": "2026-06-28", "end": "2026-07-25", "from": "2026-06-28", "to": "2026-07-10"}
    store.commit_page([(b"a" * 16, 1)], first)
    store.commit_page([(b"b" * 16, 2)], second)
    store.commit_page([(b"c" * 16, 3)], {**first, "to": "2026-06-15"})
    assert store.snapshot().resume == ({**second}, {**first, "to": "2026-06-15"})
    store.advance(T, 0, finished=[("2026-06-01", "2026-06-28")])  # the first finished: the second stays
    assert store.snapshot().resume == (second,)
    store.advance(T, 0, finished=[("2026-06-28", "2026-07-25")])
    assert store.snapshot().resume == ()
    store.close()


def test_a_single_resume_point_keeps_the_form_older_versions_wrote(path: Path) -> None:
    store = StateStore.open(path, "acct/1", "all")
    point = {"start": "2026-06-01", "end": "2026-06-28", "from": "2026-06-01", "to": "2026-06-20"}
    store.commit_page([], point)
    store.close()
    with sqlite3.connect(path) as conn:
        raw = conn.execute("SELECT value FROM meta WHERE key = 'resume'").fetchone()[0]
    conn.close()
    assert orjson.loads(raw) == point
