"""An operations store written by the release before streams keeps working: no reset, no re-send.

The store is built here byte for byte as that release (commit 68ed39e, `zoom_oplog_shipper/state.py`)
wrote it, with sqlite3 directly and that release's fingerprint formula copied below, at the path its
`state_file()` computed. Nothing of today's state module is used to make it.
"""

from __future__ import annotations

import hashlib
import io
import re
import sqlite3
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import NOW, FakeClock, FakeZoom, cli_env, record

from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.config import Config
from zoom_oplog_shipper.records import canonical
from zoom_oplog_shipper.streams import OPERATIONS

ACCOUNT = "acct-1"
#: What the previous release's state_file(state_dir, "acct-1", "all") returned, as a literal.
OLD_NAME = "acct-1-all-94ff6156.sqlite3"
WATERMARK = NOW - timedelta(hours=20)
FLOOR = NOW - timedelta(days=3)

#: The previous release's schema: 68ed39e's, and the first release's fp-first key (c8db2d4).
SEEN_TABLES = {
    "t-first": "CREATE TABLE seen (t INTEGER NOT NULL, fp BLOB NOT NULL, PRIMARY KEY (t, fp)) WITHOUT ROWID",
    "fp-first": "CREATE TABLE seen (fp BLOB PRIMARY KEY, t INTEGER NOT NULL) WITHOUT ROWID",
}


def old_state_file(state_dir: Path, account_id: str, category_type: str) -> Path:
    """The previous release's formula, copied (not imported)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", account_id)[:64] or "account"
    tag = hashlib.blake2b(f"{account_id}\0{category_type}".encode(), digest_size=4).hexdigest()
    return state_dir / f"{safe}-{category_type}-{tag}.sqlite3"


def old_fingerprint(account_id: str, rec: dict[str, Any], occurrence: int) -> bytes:
    """The previous release's event.id: account, sorted-key JSON, occurrence among identical records."""
    h = hashlib.blake2b(digest_size=16)
    h.update(account_id.encode())
    h.update(b"\0")
    h.update(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS))
    h.update(b"\0%d" % occurrence)
    return h.digest()


def at(moment: datetime, detail: str) -> dict[str, Any]:
    return record(moment.strftime("%Y-%m-%dT%H:%M:%SZ"), detail)


def write_old_store(path: Path, seen_table: str, delivered: list[tuple[dict[str, Any], int]]) -> None:
    """The store the previous release left after a run that delivered ``delivered`` (record, occurrence)."""
    path.parent.mkdir(parents=True, mode=0o700)
    last_run = {"started": "2026-11-25T16:00:00.000Z", "emitted": len(delivered), "pages": 1, "requests": 2,
                "retries": 0, "windows": 1, "duration_s": 0.4, "watermark": WATERMARK.isoformat(),
                "outcome": "complete", "untimed": 0, "notes": []}  # fmt: skip
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute(seen_table)
    meta = {"schema": "1", "account_id": ACCOUNT, "category_type": "all", "watermark": WATERMARK.isoformat(),
            "floor": FLOOR.isoformat(), "to_inclusive": "1", "last_run": orjson.dumps(last_run).decode()}  # fmt: skip
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
    rows = [(old_fingerprint(ACCOUNT, r, n), int(datetime.fromisoformat(r["time"]).timestamp())) for r, n in delivered]
    conn.executemany("INSERT INTO seen (fp, t) VALUES (?, ?)", rows)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def cli(argv: list[str], env: dict[str, str], clock: FakeClock) -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    code = main(argv, env=env, stdout=out, stderr=err, clock=clock)
    return code, out.getvalue(), err.getvalue()


def show(env: dict[str, str], clock: FakeClock) -> dict[str, Any]:
    code, out, err = cli(["state", "show", "--json"], env, clock)
    assert code == 0, err
    info: dict[str, Any] = orjson.loads(out)
    return info


def test_the_path_formula_is_unchanged(tmp_path: Path) -> None:
    config = Config(account_id=ACCOUNT, client_id="c", client_secret="s", state_dir=tmp_path)
    assert old_state_file(tmp_path, ACCOUNT, "all") == tmp_path / OLD_NAME
    assert OPERATIONS.state_path(config) == tmp_path / OLD_NAME
    odd = Config(account_id="a/b c", client_id="c", client_secret="s", state_dir=tmp_path, category_type="role")
    assert OPERATIONS.state_path(odd) == old_state_file(tmp_path, "a/b c", "role")


@pytest.mark.parametrize("layout", list(SEEN_TABLES))
def test_a_previous_release_store_keeps_working(tmp_path: Path, zoom: FakeZoom, layout: str) -> None:
    clock = FakeClock(NOW)
    # Delivered by the old release: a day before its watermark, inside today's lookback (re-read now).
    twin = at(WATERMARK - timedelta(hours=2), "Batch Update u7@example.com")
    delivered = [(at(WATERMARK - timedelta(minutes=9 * i + 1), f"Add User old{i}@example.com"), 0) for i in range(60)]
    delivered += [(twin, 0), (twin, 1)]
    # Arrived late, below the old watermark, never delivered; and everything after the watermark.
    late = at(WATERMARK - timedelta(hours=3), "Delete User late@example.com")
    new = [at(WATERMARK + timedelta(minutes=13 * i), f"Update User new{i}@example.com") for i in range(80)]
    zoom.records = [r for r, _ in delivered] + [late, *new]
    state_dir = tmp_path / "state"
    path = state_dir / OLD_NAME
    write_old_store(path, SEEN_TABLES[layout], delivered)
    env = {
        **cli_env(zoom, state_dir, tmp_path / "xdg"),
        "ZOOM_OPLOG_INCLUDE_ORIGINAL": "true",
        # A different start than the old floor: a store taken for new would start over from here.
        "ZOOM_BACKFILL_START": (NOW - timedelta(days=5)).isoformat(),
    }

    before = path.read_bytes()
    old = show(env, clock)
    assert path.read_bytes() == before  # reading it changes nothing
    assert (old["path"], old["watermark"], old["floor"]) == (str(path), WATERMARK.isoformat(), FLOOR.isoformat())
    assert old["fingerprints"] == len(delivered) and old["to_inclusive"] is True
    assert old["last_run"]["outcome"] == "complete"

    code, out, err = cli(["run"], env, clock)
    assert code == 0, err
    docs = [orjson.loads(line) for line in out.splitlines()]
    sent = Counter(canonical(orjson.loads(d["event"]["original"])) for d in docs)
    assert sent == Counter(canonical(r) for r in [late, *new])  # nothing the old release sent, nothing lost
    assert sorted(p.name for p in state_dir.glob("*.sqlite3")) == [OLD_NAME]  # the same store, no new one

    now = show(env, clock)
    assert now["floor"] == FLOOR.isoformat()  # not started over
    assert datetime.fromisoformat(now["watermark"]) > WATERMARK
    assert (now["account_id"], now["category_type"]) == (ACCOUNT, "all")
    assert now["fingerprints"] >= len(delivered)
    assert now["last_run"]["exit_code"] == 0 and now["last_success"]["emitted"] == len(docs)
    assert now["delivered"] is True

    clock.advance(3600)
    code, out, err = cli(["run"], env, clock)
    assert (code, out) == (0, b""), err
    assert datetime.fromisoformat(show(env, clock)["watermark"]) > WATERMARK
