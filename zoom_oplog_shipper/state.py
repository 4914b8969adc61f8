"""The crash-safe state store: one SQLite file per (account, category), and its run lock.

SQLite's transactions make every commit atomic: a process killed at any instant leaves either the
previous or the next state, never a torn one. The store holds the watermark, what the run learned
about the API, the fingerprints of recently emitted records, and the last run's summary.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import filelock
import orjson

from zoom_oplog_shipper.errors import StateError

SCHEMA_VERSION = 1
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")

#: `seen` is keyed by time first: a page's records have neighbouring times, so committing a page
#: touches a few B-tree pages instead of one per record (random fingerprints), and pruning and
#: loading by time are range scans. (Stores made with the older fp-first key work unchanged.)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (t INTEGER NOT NULL, fp BLOB NOT NULL, PRIMARY KEY (t, fp)) WITHOUT ROWID;
"""


def state_file(state_dir: Path, account_id: str, category_type: str) -> Path:
    """The store's path for one (account, category) pair; readable, and unique per pair."""
    safe = _SAFE.sub("_", account_id)[:64] or "account"
    tag = hashlib.blake2b(f"{account_id}\0{category_type}".encode(), digest_size=4).hexdigest()
    return state_dir / f"{safe}-{category_type}-{tag}.sqlite3"


def _fix_hint(path: Path) -> str:
    return (
        f"move {path} aside (the next run then starts over from --backfill-start) "
        "or run `zoom-oplog-shipper state reset --yes`"
    )


@dataclass(frozen=True)
class Snapshot:
    """What a run starts from."""

    watermark: datetime | None
    floor: datetime | None
    to_inclusive: bool
    #: The API's day is less than this far ahead of UTC (learned from refused `to` days).
    offset_limit: timedelta | None = None
    #: Where an unfinished window stopped: {"start", "end"} of the window and the narrower
    #: {"from", "to"} that still holds everything not yet emitted.
    resume: dict[str, str] | None = None


class RunLock:
    """An exclusive, non-blocking lock per (account, category), released on exit or crash."""

    def __init__(self, store_path: Path) -> None:
        self.path = store_path.with_suffix(".lock")
        self._lock = filelock.FileLock(str(self.path), timeout=0)

    def acquire(self) -> bool:
        """Take the lock; False when another run holds it."""
        try:
            self._lock.acquire()
        except filelock.Timeout:
            return False
        except OSError as exc:
            msg = f"cannot create lock file {self.path} ({exc.strerror}); fix the state directory"
            raise StateError(msg) from None
        return True

    def release(self) -> None:
        """Give the lock back."""
        self._lock.release()


class StateStore:
    """Watermark, learned API facts and fingerprints, committed atomically."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    @classmethod
    def open(cls, path: Path, account_id: str, category_type: str, *, create: bool = True) -> StateStore:
        """Open (or create) the store, checking it belongs to this account and category."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            msg = (
                f"cannot create state directory {path.parent} ({exc.strerror}); set --state-dir to a writable directory"
            )
            raise StateError(msg) from None
        existed = path.exists()
        if not existed and not create:
            msg = f"no state at {path} yet; it is created by the first `zoom-oplog-shipper run`"
            raise StateError(msg)
        if not existed:
            # Created with 0600 before SQLite opens it, so no other user can read it at any moment.
            try:
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                msg = f"cannot create state file {path} ({exc.strerror}); set --state-dir to a writable directory"
                raise StateError(msg) from None
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=5)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a power cut can drop the last commit, which only re-sends a page (same
            # event.id); a process crash or kill loses nothing.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            store = cls(path, conn)
            store._check_identity(account_id, category_type, existed)
        except sqlite3.DatabaseError as exc:
            msg = f"state file {path} is unusable ({exc}); {_fix_hint(path)}"
            raise StateError(msg) from None
        return store

    def _check_identity(self, account_id: str, category_type: str, existed: bool) -> None:
        meta = self._meta()
        if not meta.get("schema"):
            if existed and self._conn.execute("SELECT count(*) FROM seen").fetchone()[0]:
                msg = f"state file {self.path} has no schema marker; {_fix_hint(self.path)}"
                raise StateError(msg)
            with self._tx():
                self._put({"schema": str(SCHEMA_VERSION), "account_id": account_id, "category_type": category_type})
            return
        if meta["schema"] != str(SCHEMA_VERSION):
            msg = (
                f"state file {self.path} has schema {meta['schema']}, this version reads "
                f"{SCHEMA_VERSION}; upgrade zoom-oplog-shipper or {_fix_hint(self.path)}"
            )
            raise StateError(msg)
        if (meta.get("account_id"), meta.get("category_type")) != (account_id, category_type):
            msg = f"state file {self.path} belongs to another account or category; {_fix_hint(self.path)}"
            raise StateError(msg)

    @contextmanager
    def _tx(self) -> Iterator[None]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            msg = (
                f"cannot write state file {self.path} ({exc}); "
                f"check free space and permissions, or {_fix_hint(self.path)}"
            )
            raise StateError(msg) from None

    def _meta(self) -> dict[str, str]:
        try:
            return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            msg = f"state file {self.path} is unusable ({exc}); {_fix_hint(self.path)}"
            raise StateError(msg) from None

    def _put(self, values: dict[str, str]) -> None:
        self._conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())

    @staticmethod
    def _time(meta: dict[str, str], key: str, path: Path) -> datetime | None:
        raw = meta.get(key)
        if raw is None:
            return None
        try:
            return datetime.fromisoformat(raw).astimezone(UTC)
        except ValueError:
            msg = f"state file {path} has an unreadable {key} {raw!r}; {_fix_hint(path)}"
            raise StateError(msg) from None

    def snapshot(self) -> Snapshot:
        """The watermark, floor and what earlier runs learned about the API."""
        meta = self._meta()
        return Snapshot(
            watermark=self._time(meta, "watermark", self.path),
            floor=self._time(meta, "floor", self.path),
            to_inclusive=meta.get("to_inclusive") == "1",
            offset_limit=self._seconds(meta, "offset_limit", self.path),
            resume=self._resume(meta),
        )

    def _resume(self, meta: dict[str, str]) -> dict[str, str] | None:
        raw = meta.get("resume")
        if not raw:
            return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict) or set(value) != {"start", "end", "from", "to"}:
            msg = f"state file {self.path} has an unreadable resume point {raw!r}; {_fix_hint(self.path)}"
            raise StateError(msg)
        return {str(k): str(v) for k, v in value.items()}

    def start(self, watermark: datetime, floor: datetime) -> None:
        """Record the first run's watermark and the floor below which nothing is ever emitted."""
        with self._tx():
            self._put({"watermark": watermark.isoformat(), "floor": floor.isoformat()})

    @staticmethod
    def _seconds(meta: dict[str, str], key: str, path: Path) -> timedelta | None:
        raw = meta.get(key)
        if raw is None:
            return None
        try:
            return timedelta(seconds=int(raw))
        except ValueError:
            msg = f"state file {path} has an unreadable {key} {raw!r}; {_fix_hint(path)}"
            raise StateError(msg) from None

    def learn(self, key: str, value: str = "1") -> None:
        """Remember a fact about the API (``to_inclusive``, ``offset_limit``)."""
        with self._tx():
            self._put({key: value})

    def seen_since(self, since_epoch: int) -> set[bytes]:
        """Fingerprints of records emitted with time at or after ``since_epoch``."""
        try:
            rows = self._conn.execute("SELECT fp FROM seen WHERE t >= ?", (since_epoch,))
            return {row[0] for row in rows}
        except sqlite3.DatabaseError as exc:
            msg = f"state file {self.path} is unusable ({exc}); {_fix_hint(self.path)}"
            raise StateError(msg) from None

    def already_seen(self, fps: list[bytes]) -> set[bytes]:
        """Which of ``fps`` the store holds (used when a run may read the same records twice)."""
        found: set[bytes] = set()
        for i in range(0, len(fps), 500):
            chunk = fps[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(f"SELECT fp FROM seen WHERE fp IN ({marks})", chunk)
            found.update(row[0] for row in rows)
        return found

    def commit_page(self, entries: Iterable[tuple[bytes, int]], resume: dict[str, str] | None = None) -> None:
        """Remember the fingerprints of a page that has been written and flushed, and where the window stands."""
        with self._tx():
            self._conn.executemany("INSERT OR IGNORE INTO seen (fp, t) VALUES (?, ?)", entries)
            if resume is not None:
                self._put({"resume": orjson.dumps(resume).decode()})

    def advance(self, watermark: datetime, prune_before_epoch: int) -> None:
        """Move the watermark and forget fingerprints too old to be fetched again, atomically."""
        with self._tx():
            self._put({"watermark": watermark.isoformat()})
            self._conn.execute("DELETE FROM meta WHERE key = 'resume'")
            self._conn.execute("DELETE FROM seen WHERE t < ?", (prune_before_epoch,))

    def save_summary(self, summary: dict[str, Any]) -> None:
        """Keep the last run's summary for `state show`."""
        with self._tx():
            self._put({"last_run": orjson.dumps(summary).decode()})

    def describe(self) -> dict[str, Any]:
        """Everything `state show` prints."""
        meta = self._meta()
        count = self._conn.execute("SELECT count(*) FROM seen").fetchone()[0]
        last = meta.get("last_run")
        return {
            "path": str(self.path),
            "account_id": meta.get("account_id"),
            "category_type": meta.get("category_type"),
            "watermark": meta.get("watermark"),
            "floor": meta.get("floor"),
            "to_inclusive": meta.get("to_inclusive") == "1",
            "api_day_offset_limit_seconds": int(meta["offset_limit"]) if meta.get("offset_limit") else None,
            "resume": orjson.loads(meta["resume"]) if meta.get("resume") else None,
            "fingerprints": count,
            "size_bytes": self.path.stat().st_size,
            "last_run": orjson.loads(last) if last else None,
        }

    def close(self) -> None:
        """Give back the space of pruned fingerprints, checkpoint the WAL into the main file, and close."""
        with suppress(sqlite3.Error):
            free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            if free * 4 > pages:  # a backfill prunes most of what it stored
                self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()


def reset_state(path: Path) -> list[Path]:
    """Delete a store and its SQLite side files; returns what was removed."""
    removed = []
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if candidate.exists():
            candidate.unlink()
            removed.append(candidate)
    return removed
