"""Looking never consumes: a page counts only when stdout's reader took it, and `run --dry-run` keeps nothing."""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from zoom_oplog_shipper.errors import OutputClosedError, OutputError
from zoom_oplog_shipper.output import PageWriter
from zoom_oplog_shipper.stdout import ReaderWatch

#: A page that fits in a pipe's buffer (64 KiB) but not in one read of `head` (8 KiB).
PAGE = [orjson.dumps({"event": {"id": f"{i:032x}"}, "message": "x" * 200}) for i in range(100)]


@pytest.fixture
def pipe() -> Iterator[tuple[int, Any]]:
    """A real pipe: its read end, and its write end as a buffered binary file (stdout as the program has it)."""
    read_end, write_end = os.pipe()
    writer = os.fdopen(write_end, "wb")
    yield read_end, writer
    for close in (writer.close, lambda: os.close(read_end)):
        with contextlib.suppress(OSError):  # already closed by the test
            close()


def _reader(read_end: int, take: int | None) -> threading.Thread:
    """A reader that takes ``take`` bytes and goes away, or everything until end of file (``None``)."""

    def read() -> None:
        if take is None:
            while os.read(read_end, 65536):
                pass
            return
        os.read(read_end, take)
        os.close(read_end)

    thread = threading.Thread(target=read)
    thread.start()
    return thread


def test_a_page_the_reader_took_counts_as_delivered(pipe: tuple[int, Any]) -> None:
    read_end, writer = pipe
    reader = _reader(read_end, None)
    PageWriter(writer).write_page(PAGE)  # returns only once the reader has drained the pipe
    assert ReaderWatch.of(writer) is not None and ReaderWatch.of(writer).unread() == 0  # type: ignore[union-attr]
    writer.close()
    reader.join()


def test_a_reader_that_goes_after_part_of_the_page_stops_the_commit(pipe: tuple[int, Any]) -> None:
    read_end, writer = pipe
    reader = _reader(read_end, 8192)  # like `head -2`: one block read, two lines printed, gone
    with pytest.raises(OutputClosedError, match="not committed"):
        PageWriter(writer).write_page(PAGE)  # the write itself succeeds: the page fits in the pipe
    reader.join()


def test_a_reader_that_is_there_but_slow_counts_after_the_patience(pipe: tuple[int, Any]) -> None:
    _, writer = pipe
    writer.write(b"unread\n")
    writer.flush()
    watch = ReaderWatch(writer.fileno(), pipe=True, patience_s=0.0)
    assert watch.unread() == 7 and watch.delivered()


@pytest.mark.parametrize("kind", ["regular file", "in-memory stream"])
def test_a_file_needs_no_reader(tmp_path: Path, kind: str) -> None:
    stream = (tmp_path / "events").open("wb") if kind == "regular file" else io.BytesIO()
    assert ReaderWatch.of(stream) is None
    stream.close()


def test_a_full_stdout_is_named_as_stdout() -> None:
    with open("/dev/full", "wb") as full, pytest.raises(OutputError) as info:
        PageWriter(full).write_page(PAGE)
    assert not isinstance(info.value, OutputClosedError)
    text = str(info.value)
    assert text.startswith("cannot write the events to stdout (No space left on device)") and "state" not in text
