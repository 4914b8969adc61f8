"""Run a test step as an unprivileged user, so file modes apply (root ignores them).

The step runs in a forked child that drops to ``nobody`` when the tests run as root; its return
value (or the text of its exception) comes back through a pipe. Everything the step needs must be
imported before the fork: the child cannot read root's Python installation.
"""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NOBODY = 65534


def run_unprivileged(step: Callable[[], Any]) -> Any:
    """``step()`` in a child process without root's privileges; re-raises its failure as AssertionError."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            payload = pickle.dumps(("ok", step()))
        except BaseException as exc:  # noqa: BLE001 - whatever the child meets goes back to the test
            payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)  # noqa: S301 - written by our own forked child
    if kind == "error":
        raise AssertionError(f"unprivileged step failed: {value}")
    return value


def make_read_only(*paths: Path) -> None:
    """Drop every write bit of ``paths`` (files and directories)."""
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@contextmanager
def open_directory() -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="zoom-oplog-test-"))
    base.chmod(0o777)
    yield base
    for root, dirs, _files in os.walk(base):
        for name in dirs:
            (Path(root) / name).chmod(0o755)
    shutil.rmtree(base)


def give_to_nobody(*paths: Path) -> None:
    """Let the unprivileged user own ``paths`` (a no-op when the tests do not run as root)."""
    if os.geteuid() != 0:
        return
    for path in paths:
        os.chown(path, NOBODY, NOBODY)
