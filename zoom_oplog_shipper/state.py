"""The crash-safe state store: one SQLite file per (account, partition), and its run lock.

A partition is what `Stream.partition_key` gives: the category of the operation logs (``all``,
``role``...), the stream's key (``activities``) for the others.

SQLite's transactions make every commit atomic: a process killed at any instant leaves either the
previous or the next state, never a torn one. The store holds the watermark, what the run learned
about the API, the fingerprints of recently emitted records, and the last run's summary.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import filelock
import orjson

from zoom_oplog_shipper.access import (
    PERMISSION_ERRORS,
    SPACE_ERRORS,
    cause_and_fix,
    give_to_directory_owner,
    nearest_existing,
)
from zoom_oplog_shipper.errors import StateError

SCHEMA_VERSION = 1
#: The `meta` key that holds a store's partition. It keeps the name of the versions that had only
#: the operation logs' categories: stores they wrote must keep opening (tests/test_upgrade.py), and
#: `state show --json` prints it under this name.
_PARTITION_KEY = "category_type"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_T = TypeVar("_T")

#: `seen` is keyed by time first: a page's records have neighbouring times, so committing a page
#: touches a few B-tree pages instead of one per record (random fingerprints), and pruning and
#: loading by time are range scans. (Stores made with the older fp-first key work unchanged.)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (t INTEGER NOT NULL, fp BLOB NOT NULL, PRIMARY KEY (t, fp)) WITHOUT ROWID;
"""


def state_file(state_dir: Path, account_id: str, partition: str) -> Path:
    """The store's path for one (account, partition) pair; readable, and unique per pair."""
    safe = _SAFE.sub("_", account_id)[:64] or "account"
    tag = hashlib.blake2b(f"{account_id}\0{partition}".encode(), digest_size=4).hexdigest()
    return state_dir / f"{safe}-{partition}-{tag}.sqlite3"


def _fix_hint(path: Path) -> str:
    """The fix for a store that cannot be read as this program's store (corrupt, foreign, truncated)."""
    return (
        f"move {path} aside (the next run then starts over from --backfill-start) "
        "or run `zoom-oplog-shipper state reset --yes`"
    )


def store_files(path: Path) -> list[Path]:
    """The store and the files SQLite keeps beside it (-wal, -shm)."""
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm")]


def _cannot(path: Path, doing: str, detail: str, err: int | None, *, files: list[Path] | None = None) -> StateError:
    """A StateError for a state file this process cannot use: the cause and its fix, the state kept."""
    write = doing not in ("read", "look for")
    fix = cause_and_fix(path.parent, store_files(path) if files is None else files, err, write=write)
    return StateError(
        f"cannot {doing} state file {path} ({detail}): {fix} (the state is kept as it is; do not reset it)"
    )


_BUSY_WORDS = ("locked", "busy")
#: SQLite's primary result codes (the low byte of sqlite_errorcode) that mean "cannot use this file
#: here" (permissions, a read-only or failing disk), not "the file is broken".
_SQLITE_FULL = 13
_SQLITE_ACCESS_CODES = frozenset({3, 8, 10, 14, 23})  # PERM, READONLY, IOERR, CANTOPEN, AUTH
_IO_WORDS = ("readonly", "read-only", "disk i/o", "unable to open", "permission")


def _db_problem(path: Path, exc: Exception, doing: str) -> StateError:
    """A StateError for a SQLite failure, with the fix that matches its cause."""
    text = str(exc)
    low = text.lower()
    code = int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if any(word in low for word in _BUSY_WORDS):
        return StateError(f"cannot {doing} state file {path} ({text}): another process holds it; try again later")
    if code == _SQLITE_FULL or "disk is full" in low:
        return _cannot(path, doing, text, errno.ENOSPC)
    if code in _SQLITE_ACCESS_CODES or any(word in low for word in _IO_WORDS):
        return _cannot(path, doing, text, None)
    return StateError(f"state file {path} is unusable ({text}); {_fix_hint(path)}")


def _os_problem(path: Path, exc: OSError, doing: str) -> StateError:
    """A StateError for an OS failure (EACCES, EROFS, ENOSPC...) on the store, naming the cause and fix."""
    return _cannot(path, doing, exc.strerror or str(exc), exc.errno)


def store_exists(path: Path) -> bool:
    """Whether the store exists; a directory this user cannot look into is a StateError naming its owner."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise _cannot(path, "look for", exc.strerror or str(exc), exc.errno, files=[]) from None
    return True


_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_header(path: Path) -> None:
    """Refuse, without writing, a file that is empty or not an SQLite database."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise _os_problem(path, exc, "read") from None
    if not head:
        msg = (
            f"state file {path} is empty (0 bytes: truncated?), not a zoom-oplog-shipper state store; {_fix_hint(path)}"
        )
        raise StateError(msg)
    if head != _SQLITE_HEADER:
        msg = f"state file {path} is not a zoom-oplog-shipper state store (not an SQLite database); {_fix_hint(path)}"
        raise StateError(msg)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _init(conn: sqlite3.Connection, account_id: str, partition: str) -> None:
    """Write a new store's tables and identity."""
    conn.executescript(_SCHEMA)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [
            ("schema", str(SCHEMA_VERSION)),
            ("account_id", account_id),
            (_PARTITION_KEY, partition),
            ("delivered", "0"),
        ],
    )
    conn.execute("COMMIT")


def _create(path: Path, account_id: str, partition: str) -> None:
    """Build a new store under a temporary name beside ``path``, then rename it into place.

    A crash at any moment leaves either no store or a complete one, never an empty file that a
    later run would have to refuse. The file is 0600 from its first byte.
    """
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}")
    for stale in path.parent.glob(f".{glob.escape(path.name)}.new-*"):  # left by a killed run
        with suppress(OSError):
            stale.unlink()
    try:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        give_to_directory_owner(tmp)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            _init(conn, account_id, partition)
        finally:
            conn.close()  # the last connection checkpoints the WAL into the file and removes it
        _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
        with suppress(OSError):  # some filesystems cannot fsync a directory
            _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise _os_problem(path, exc, "create") from None
    except sqlite3.Error as exc:
        raise _db_problem(path, exc, "create") from None
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            with suppress(OSError):
                leftover.unlink()


def _connect_rw(path: Path) -> sqlite3.Connection:
    try:
        # The engine serializes every use of the connection; its reader threads share it.
        return sqlite3.connect(path, isolation_level=None, timeout=5, check_same_thread=False)
    except sqlite3.Error as exc:
        raise _db_problem(path, exc, "open") from None


def _connect_ro(path: Path) -> sqlite3.Connection:
    """Open without writing or creating anything (`state show`, `check`, `run --dry-run`).

    A store closed cleanly has no -wal file: its WAL is folded into the file, which is read as
    immutable, so SQLite makes no -wal or -shm file beside it (a run that starts meanwhile writes to a
    WAL of its own, not to the file). A store with a -wal file (a run under way, or killed) is read
    through it, read-only; on a read-only directory, where SQLite cannot make the WAL's shared-memory
    file, as immutable.
    """
    uri = path.absolute().as_uri()
    wal = os.path.lexists(f"{path}-wal")
    for options in ("mode=ro", "mode=ro&immutable=1") if wal else ("mode=ro&immutable=1",):
        conn = None
        try:
            conn = sqlite3.connect(f"{uri}?{options}", uri=True, isolation_level=None, timeout=5)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            if not isinstance(exc, sqlite3.OperationalError) or "immutable" in options:
                raise _db_problem(path, exc, "read") from None
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class Snapshot:
    """What a run starts from."""

    watermark: datetime | None
    floor: datetime | None
    to_inclusive: bool
    #: The API's day is less than this far ahead of UTC (learned from refused `to` days).
    offset_limit: timedelta | None = None
    #: Where each unfinished window stopped (one per window read at once): {"start", "end"} of the
    #: window and the narrower {"from", "to"} that still holds everything not yet emitted.
    resume: tuple[dict[str, str], ...] = ()
    #: Whether any record has ever been committed; until then a new backfill start may replace the floor.
    delivered: bool = True
    #: The --backfill-start the first run was given (None: none, or a store older than this field).
    backfill_start: datetime | None = None


@dataclass(frozen=True)
class Rewound:
    """What `state rewind` changed."""

    old_watermark: datetime
    new_watermark: datetime
    old_floor: datetime
    new_floor: datetime
    fingerprints_removed: int


def _meta_value(meta: dict[str, str], key: str, path: Path, parse: Callable[[str], _T]) -> _T | None:
    """The stored ``key`` parsed, None when absent; an unparsable value is a StateError naming the fix."""
    raw = meta.get(key)
    if raw is None:
        return None
    try:
        return parse(raw)
    except ValueError:
        msg = f"state file {path} has an unreadable {key} {raw!r}; {_fix_hint(path)}"
        raise StateError(msg) from None


def make_state_dir(directory: Path) -> None:
    """Create the state directory (0700) if needed; StateError (exit 5) naming it and the fix otherwise.

    Run as root under another user's directory, each directory made is given to that user.
    """
    missing = [d for d in (directory, *directory.parents) if not os.path.lexists(d)][::-1]
    try:
        for made in missing:
            made.mkdir(mode=0o700 if made == directory else 0o777, exist_ok=True)  # parents as mkdir -p makes them
            give_to_directory_owner(made)
        if not directory.is_dir():  # a file where the directory (or one above it) should be
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
    except OSError as exc:
        if exc.errno in PERMISSION_ERRORS or exc.errno in SPACE_ERRORS or exc.errno == errno.EROFS:
            fix = cause_and_fix(nearest_existing(directory), [], exc.errno)
        else:
            fix = "set --state-dir to a writable directory or fix the permissions of its parent"
        msg = f"cannot create state directory {directory} ({exc.strerror}); {fix}"
        raise StateError(msg) from None


class RunLock:
    """An exclusive, non-blocking lock per (account, partition), released on exit or crash."""

    def __init__(self, store_path: Path) -> None:
        self.path = store_path.with_suffix(".lock")
        self._lock = filelock.FileLock(str(self.path), timeout=0)

    def acquire(self) -> bool:
        """Take the lock; False when another run holds it."""
        try:
            self._create_for_directory_owner()
            self._lock.acquire()
        except filelock.Timeout:
            return False
        except OSError as exc:
            fix = cause_and_fix(self.path.parent, [self.path], exc.errno)
            msg = f"cannot take the lock file {self.path} ({exc.strerror}): {fix}"
            raise StateError(msg) from None
        return True

    def _create_for_directory_owner(self) -> None:
        """Run as root in another user's directory, make the lock file that user's, so their runs can take it."""
        if os.geteuid() != 0 or os.path.lexists(self.path) or not self.path.parent.is_dir():
            return
        with suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
            give_to_directory_owner(self.path)

    def release(self) -> None:
        """Give the lock back."""
        self._lock.release()


class StateStore:
    """Watermark, learned API facts and fingerprints, committed atomically."""

    def __init__(self, path: Path, conn: sqlite3.Connection, *, readonly: bool = False) -> None:
        self.path = path
        self._conn = conn
        self.readonly = readonly
        self._delivered: bool | None = None

    @classmethod
    def open(
        cls, path: Path, account_id: str, partition: str, *, create: bool = True, readonly: bool = False
    ) -> StateStore:
        """Open (or create) the store, checking it belongs to this account and partition.

        A file that is not this program's store (empty, not SQLite, another program's or another
        account's database) is refused with StateError and left exactly as it is. ``readonly``
        opens an existing store without writing anything, even on a read-only filesystem.
        """
        if not readonly:
            make_state_dir(path.parent)
        if not store_exists(path):
            if readonly or not create:
                msg = f"no state at {path} yet; it is created by the first `zoom-oplog-shipper run`"
                raise StateError(msg)
            _create(path, account_id, partition)
        _check_header(path)
        conn = _connect_ro(path) if readonly else _connect_rw(path)
        store = cls(path, conn, readonly=readonly)
        try:
            store._check_identity(account_id, partition)
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL: a power cut can drop the last commit, which only re-sends a page (same
                # event.id); a process crash or kill loses nothing.
                conn.execute("PRAGMA synchronous=NORMAL")
        except StateError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _db_problem(path, exc, "read" if readonly else "open") from None
        return store

    @classmethod
    def copy_in_memory(cls, path: Path, account_id: str, partition: str) -> StateStore:
        """A store in memory holding what the store at ``path`` holds (an empty one when there is none).

        The file is read with SQLite's backup API through a read-only connection, so its owner's
        runs are not held up; nothing written to the copy reaches the file.
        """
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        try:
            if store_exists(path):
                source = cls.open(path, account_id, partition, readonly=True)
                try:
                    source._conn.backup(memory)
                except sqlite3.Error as exc:
                    raise _db_problem(path, exc, "read") from None
                finally:
                    source.close()
            else:
                _init(memory, account_id, partition)
        except BaseException:
            memory.close()
            raise
        return cls(path, memory)

    def _check_identity(self, account_id: str, partition: str) -> None:
        """Read-only: the file must carry this program's schema marker, for this account and partition."""
        try:
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            if "no such table" not in str(exc):
                raise
            meta = {}
        if not meta.get("schema"):
            msg = (
                f"state file {self.path} is not a zoom-oplog-shipper state store (an SQLite database "
                f"without its schema marker); {_fix_hint(self.path)}"
            )
            raise StateError(msg)
        if meta["schema"] != str(SCHEMA_VERSION):
            msg = (
                f"state file {self.path} has schema {meta['schema']}, this version reads "
                f"{SCHEMA_VERSION}; upgrade zoom-oplog-shipper or {_fix_hint(self.path)}"
            )
            raise StateError(msg)
        if (meta.get("account_id"), meta.get(_PARTITION_KEY)) != (account_id, partition):
            msg = f"state file {self.path} belongs to another account, stream or category; {_fix_hint(self.path)}"
            raise StateError(msg)

    @contextmanager
    def _tx(self) -> Iterator[None]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                # SQLite may have rolled back already (a full disk does): report what failed, not the rollback.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            raise _db_problem(self.path, exc, "write") from None

    def _meta(self) -> dict[str, str]:
        try:
            return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise _db_problem(self.path, exc, "read") from None

    def _put(self, values: dict[str, str]) -> None:
        self._conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())

    @staticmethod
    def _time(meta: dict[str, str], key: str, path: Path) -> datetime | None:
        return _meta_value(meta, key, path, lambda raw: datetime.fromisoformat(raw).astimezone(UTC))

    def snapshot(self) -> Snapshot:
        """The watermark, floor and what earlier runs learned about the API."""
        meta = self._meta()
        return Snapshot(
            watermark=self._time(meta, "watermark", self.path),
            floor=self._time(meta, "floor", self.path),
            to_inclusive=meta.get("to_inclusive") == "1",
            offset_limit=self._seconds(meta, "offset_limit", self.path),
            resume=self._resume(meta),
            delivered=self._is_delivered(meta),
            backfill_start=self._time(meta, "backfill_start", self.path) if meta.get("backfill_start") else None,
        )

    def _is_delivered(self, meta: dict[str, str]) -> bool:
        if self._delivered is None:
            flag = meta.get("delivered")
            if flag is not None:
                self._delivered = flag == "1"
            else:  # a store made before the flag: any progress may have delivered records
                self._delivered = meta.get("watermark") != meta.get("floor") or self._count() > 0
        return self._delivered

    def _count(self) -> int:
        try:
            return int(self._conn.execute("SELECT count(*) FROM seen").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise _db_problem(self.path, exc, "read") from None

    def _resume(self, meta: dict[str, str]) -> tuple[dict[str, str], ...]:
        """The resume points: one object (the form a single window in flight has always had) or a list."""
        raw = meta.get("resume")
        if not raw:
            return ()
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = None
        points = value if isinstance(value, list) else [value]
        if not all(isinstance(p, dict) and set(p) == {"start", "end", "from", "to"} for p in points):
            msg = f"state file {self.path} has an unreadable resume point {raw!r}; {_fix_hint(self.path)}"
            raise StateError(msg)
        return tuple({str(k): str(v) for k, v in p.items()} for p in points)

    def _put_resume(self, points: Iterable[dict[str, str]]) -> None:
        """Store the resume points inside a transaction: one object when there is one, else a list."""
        kept = list(points)
        if not kept:
            self._conn.execute("DELETE FROM meta WHERE key = 'resume'")
            return
        self._put({"resume": orjson.dumps(kept[0] if len(kept) == 1 else kept).decode()})

    def _replace_resume(self, point: dict[str, str] | None, finished: Iterable[tuple[str, str]] = ()) -> None:
        """Set one window's resume point and drop those of ``finished`` windows, inside a transaction."""
        drop = set(finished)
        if point is not None:
            drop.add((point["start"], point["end"]))
        points = [p for p in self._resume(self._meta()) if (p["start"], p["end"]) not in drop]
        self._put_resume([*points, point] if point is not None else points)

    def start(self, watermark: datetime, floor: datetime, backfill_start: datetime | None = None) -> None:
        """Record the first run's watermark and the floor below which nothing is ever emitted.

        Also used to replace them while nothing has been delivered (a first run that failed).
        """
        with self._tx():
            self._put(
                {
                    "watermark": watermark.isoformat(),
                    "floor": floor.isoformat(),
                    "backfill_start": backfill_start.isoformat() if backfill_start else "",
                }
            )
            self._conn.execute("DELETE FROM meta WHERE key = 'resume'")

    @staticmethod
    def _seconds(meta: dict[str, str], key: str, path: Path) -> timedelta | None:
        return _meta_value(meta, key, path, lambda raw: timedelta(seconds=int(raw)))

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
            rows = self._conn.execute(f"SELECT fp FROM seen WHERE fp IN ({marks})", chunk)  # noqa: S608 - placeholders only
            found.update(row[0] for row in rows)
        return found

    def commit_page(self, entries: Iterable[tuple[bytes, int]], resume: dict[str, str] | None = None) -> None:
        """Remember the fingerprints of a page that has been written and flushed, and where the window stands.

        The first page with records also marks the store as delivered, in the same transaction.
        """
        with self._tx():
            before = self._conn.total_changes
            self._conn.executemany("INSERT OR IGNORE INTO seen (fp, t) VALUES (?, ?)", entries)
            inserted = self._conn.total_changes != before
            values = {}
            if resume is not None:
                self._replace_resume(resume)
            if not self._delivered and inserted:
                values["delivered"] = "1"
            if values:
                self._put(values)
        if "delivered" in values:
            self._delivered = True

    def advance(
        self, watermark: datetime, prune_before_epoch: int, finished: Iterable[tuple[str, str]] | None = None
    ) -> None:
        """Move the watermark and forget fingerprints too old to be fetched again, atomically.

        The resume points of the ``finished`` windows ((start, end) days) go with it; None drops them all.
        """
        with self._tx():
            # kept_since: fingerprints from here on are stored (what `state rewind` can rely on).
            self._put({"watermark": watermark.isoformat(), "kept_since": str(prune_before_epoch)})
            if finished is None:
                self._conn.execute("DELETE FROM meta WHERE key = 'resume'")
            else:
                self._replace_resume(None, finished)
            self._conn.execute("DELETE FROM seen WHERE t < ?", (prune_before_epoch,))

    def rewind(self, to: datetime, lookback: timedelta) -> Rewound:
        """Move the watermark back to ``to`` so the next run sends again every record from ``to`` on.

        Fingerprints at or after ``to`` are deleted (those records are sent again, with the same
        `event.id`); the older ones stay, and the floor is set to where they start (or to ``to`` when
        that is older), so nothing before ``to`` is sent twice. The resume point is dropped; learned
        API facts stay. ``lookback`` says where fingerprints start in stores that did not record it.
        """
        with self._tx():
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
            watermark = self._time(meta, "watermark", self.path)
            floor = self._time(meta, "floor", self.path)
            if watermark is None or floor is None:
                msg = f"state file {self.path} has no watermark yet: nothing to rewind"
                raise StateError(msg)
            kept_raw = meta.get("kept_since")
            kept = (
                datetime.fromtimestamp(int(kept_raw), UTC)
                if kept_raw and kept_raw.lstrip("-").isdigit()
                else max(floor, watermark - lookback)
            )
            new_floor = min(to, max(kept, floor))
            removed = self._conn.execute("DELETE FROM seen WHERE t >= ?", (int(to.timestamp()),)).rowcount
            self._put({"watermark": to.isoformat(), "floor": new_floor.isoformat()})
            self._conn.execute("DELETE FROM meta WHERE key = 'resume'")
        return Rewound(watermark, to, floor, new_floor, removed)

    def save_summary(self, summary: dict[str, Any]) -> None:
        """Keep the run's summary as `last_run`, and as `last_success` too when its exit_code is 0."""
        text = orjson.dumps(summary).decode()
        values = {"last_run": text}
        if summary.get("exit_code") == 0:
            values["last_success"] = text
        with self._tx():
            self._put(values)

    @staticmethod
    def _json(raw: str | None) -> dict[str, Any] | None:
        if not raw:
            return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def describe(self) -> dict[str, Any]:
        """Everything `state show` prints; summaries missing or unreadable in older stores are None."""
        meta = self._meta()
        try:
            size = self.path.stat().st_size
        except OSError:
            size = None
        return {
            "path": str(self.path),
            "account_id": meta.get("account_id"),
            "category_type": meta.get(_PARTITION_KEY),
            "watermark": meta.get("watermark"),
            "floor": meta.get("floor"),
            "backfill_start": meta.get("backfill_start") or None,
            "delivered": self._is_delivered(meta),
            "to_inclusive": meta.get("to_inclusive") == "1",
            "api_day_offset_limit_seconds": self._int(meta.get("offset_limit")),
            "resume": self._json(meta.get("resume")),
            "fingerprints": self._count(),
            "size_bytes": size,
            "last_run": self._json(meta.get("last_run")),
            "last_success": self._json(meta.get("last_success")),
        }

    @staticmethod
    def _int(raw: str | None) -> int | None:
        try:
            return int(raw) if raw else None
        except ValueError:
            return None

    def close(self) -> None:
        """Give back the space of pruned fingerprints, checkpoint the WAL into the main file, and close."""
        if self.readonly:
            self._conn.close()
            return
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
    for candidate in store_files(path):
        if candidate.exists():
            candidate.unlink()
            removed.append(candidate)
    return removed
