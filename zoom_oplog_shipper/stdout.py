"""stdout's reader: did it take a page before the page is committed? And what to say when stdout refuses one.

A page that fits in a pipe's buffer is "written" and "flushed" before the reader has read a byte of
it, so a successful flush does not mean delivery. After the flush, a page on a pipe counts as
delivered once the reader has drained the pipe (``FIONREAD`` on the write end reports no unread
bytes), and as lost when the reader has gone (``poll()`` reports ``POLLERR``/``POLLHUP`` on fd 1),
even if it had read part of it (``head`` reads a block, prints two lines and exits). On a socket or
a terminal only a hang-up can be seen; a regular file needs no check.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import select
import stat
import termios
import time
from collections.abc import Callable
from typing import Any

#: How long a page waits for a reader that is there but has not read it yet; then it counts as
#: delivered (a live reader reads it sooner or later, like any write that had to wait for room).
PATIENCE_S = 10.0
#: The first pause while a pipe is being drained, and the longest: short for a fast reader, longer
#: for a slow one, so the wait costs no CPU to speak of. A reader that goes away ends a pause at once.
FIRST_PAUSE_S = 0.0002
LONGEST_PAUSE_S = 0.05
#: poll() counts whole milliseconds: a shorter pause is slept instead.
POLL_RESOLUTION_S = 0.001
_GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL


def unwritable(exc: OSError) -> str:
    """The message for a stdout that refused a page: what the system said, and where to look."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = (
            "stdout goes to a full disk or to a device that takes nothing (/dev/full?): "
            "free space there or send it elsewhere"
        )
    else:
        fix = "check where stdout goes (a file on a failing disk?) or send it elsewhere"
    return (
        f"cannot write the events to stdout ({exc.strerror or exc}): {fix}; "
        "the page is not committed and will be sent again"
    )


class ReaderWatch:
    """Watches the reader of one file descriptor (stdout) for the page writer."""

    def __init__(
        self,
        fd: int,
        *,
        pipe: bool,
        patience_s: float = PATIENCE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fd = fd
        self.pipe = pipe
        self.patience_s = patience_s
        self._monotonic = monotonic

    @classmethod
    def of(cls, stream: Any) -> ReaderWatch | None:
        """The watch for ``stream``'s file descriptor; None for a regular file or a stream without one."""
        try:
            fd = int(stream.fileno())
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
            return None
        if stat.S_ISREG(mode):
            return None
        return cls(fd, pipe=stat.S_ISFIFO(mode))

    def gone(self, wait_s: float = 0.0) -> bool:
        """Whether the reader has gone; waits up to ``wait_s`` for it to go (returning early when it does)."""
        poller = select.poll()
        poller.register(self.fd, 0)  # error and hang-up are always reported
        return any(events & _GONE for _, events in poller.poll(wait_s * 1000))

    def unread(self) -> int | None:
        """Bytes written to the pipe that its reader has not read yet; None when the system cannot say."""
        count = array.array("i", [0])
        try:
            fcntl.ioctl(self.fd, termios.FIONREAD, count, True)
        except OSError:
            return None
        return count[0]

    def delivered(self) -> bool:
        """After a page was flushed: True when the reader took it (or is there but slow), False when it has gone."""
        if not self.pipe:
            return not self.gone()
        deadline = self._monotonic() + self.patience_s
        pause = FIRST_PAUSE_S
        while True:
            if self.gone():
                return False
            left = self.unread()
            if not left or self._monotonic() >= deadline:  # drained, unknowable, or a live but slow reader
                return True
            if pause < POLL_RESOLUTION_S:
                time.sleep(pause)
            elif self.gone(pause):
                return False
            pause = min(pause * 2, LONGEST_PAUSE_S)
