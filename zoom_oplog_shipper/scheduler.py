"""Running window readers: up to N at a time, one loop whatever N is.

Reading one window at a time is the pool with one worker, which runs each read in the calling
thread as it is submitted: an hourly run (one window) starts no thread. With more workers, reads
run in threads and the loop wakes whenever one finishes or a reader says it has news (a first page).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Generic, TypeVar

_T = TypeVar("_T")


class Pool(Generic[_T]):
    """Runs ``work(item)`` for submitted items, at most ``workers`` at once; one worker runs it inline."""

    def __init__(self, workers: int, work: Callable[[_T], object]) -> None:
        self.workers = max(1, workers)
        self._work = work
        self._executor = (
            ThreadPoolExecutor(self.workers, thread_name_prefix="zoom-window") if self.workers > 1 else None
        )
        self._changed = threading.Condition()
        #: Finished and not yet collected: (item, what it raised or None).
        self._done: list[tuple[_T, BaseException | None]] = []
        self._running = 0
        self._news = False

    @property
    def busy(self) -> bool:
        """Whether any item is running or finished and not yet collected."""
        with self._changed:
            return bool(self._running or self._done)

    @property
    def free(self) -> int:
        """How many more items can be submitted now (finished ones count until collected)."""
        with self._changed:
            return self.workers - self._running - len(self._done)

    def submit(self, item: _T) -> None:
        """Start ``work(item)``; with one worker it runs now, in this thread, and its exceptions propagate."""
        if self._executor is None:
            self._work(item)
            self._done.append((item, None))
            return
        with self._changed:
            self._running += 1
        future = self._executor.submit(self._work, item)
        future.add_done_callback(lambda f: self._finished(item, f))

    def _finished(self, item: _T, future: Future[object]) -> None:
        with self._changed:
            self._running -= 1
            self._done.append((item, future.exception()))
            self._changed.notify_all()

    def wake(self) -> None:
        """Tell the loop that something changed (a reader's first page): `collect` returns."""
        with self._changed:
            self._news = True
            self._changed.notify_all()

    def collect(self) -> list[tuple[_T, BaseException | None]]:
        """Wait until an item finishes or `wake` is called; the finished items, with what each raised."""
        with self._changed:
            self._changed.wait_for(lambda: self._done or self._news or not self._running)
            done, self._done, self._news = self._done, [], False
            return done

    def __enter__(self) -> Pool[_T]:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        """Wait for the running items to finish (readers stop after their page once told to)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)


def schedule(
    pool: Pool[_T],
    plan: Callable[[], _T | None],
    collected: Callable[[list[tuple[_T, BaseException | None]]], None],
) -> None:
    """The one loop: while the pool has room, submit what ``plan`` gives (None: nothing now); then wait
    for news and hand the finished items to ``collected``; until nothing runs and nothing is planned."""
    while True:
        while pool.free > 0 and (item := plan()) is not None:
            pool.submit(item)
        if not pool.busy:
            return
        collected(pool.collect())
