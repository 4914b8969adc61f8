"""Delivering pages: after a page cannot be committed, nothing more is printed, at any concurrency."""

from __future__ import annotations

import io
import sqlite3
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from conftest import NOW, FakeClock, FakeZoom, cli, record

from zoom_oplog_shipper import state
from zoom_oplog_shipper.cli import main


class Stdout(io.BytesIO):
    """stdout that remembers where each flush (the end of a page) was."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: list[int] = []

    def flush(self) -> None:
        super().flush()
        if not self.ends or self.ends[-1] != self.tell():
            self.ends.append(self.tell())

    def pages(self) -> list[list[str]]:
        """The event ids of each page printed."""
        data, starts = self.getvalue(), [0, *self.ends]
        spans = zip(starts, self.ends, strict=False)
        return [[orjson.loads(line)["event"]["id"] for line in data[a:b].splitlines()] for a, b in spans]


@pytest.mark.parametrize("concurrency", ["1", "3"])
def test_a_full_state_disk_leaves_at_most_one_page_printed_and_not_committed(
    env: dict[str, str], zoom: FakeZoom, monkeypatch: pytest.MonkeyPatch, concurrency: str
) -> None:
    start = NOW - timedelta(days=80)
    zoom.records = [record((start + timedelta(minutes=20 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"), f"r{i}")
                    for i in range(5700)]  # fmt: skip
    env = {**env, "ZOOM_OPLOG_CONCURRENCY": concurrency, "ZOOM_BACKFILL_START": start.isoformat()}
    out, err = Stdout(), io.StringIO()
    connect = state._connect_rw

    def limited(path: Path) -> sqlite3.Connection:
        """The store's disk fills a few pages into the run: SQLite's "database or disk is full"
        (SQLITE_FULL, as on ENOSPC), from a page limit on the run's connection."""
        conn = connect(path)
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0] + 12}")
        return conn

    monkeypatch.setattr(state, "_connect_rw", limited)
    code = main(["run"], env=env, stdout=out, stderr=err, clock=FakeClock())
    monkeypatch.setattr(state, "_connect_rw", connect)
    assert code == 5, err.getvalue()
    assert "database or disk is full" in err.getvalue() and "free space" in err.getvalue()
    assert "do not reset it" in err.getvalue()
    pages = out.pages()
    assert len(pages) >= 2  # the disk filled mid-backfill

    again = cli(["run"], env)
    assert again.code == 0, again.err
    resent = {d["event"]["id"] for d in again.docs()} & {i for page in pages for i in page}
    assert resent == set(pages[-1])  # only the last page printed was not committed: it comes again
    ids = [i for page in pages for i in page] + [d["event"]["id"] for d in again.docs()]
    assert len(set(ids)) == len(zoom.records)  # nothing lost
