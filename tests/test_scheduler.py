"""The scheduler's pool: one worker runs inline (no thread), more run at most N at once, one loop."""

from __future__ import annotations

import threading
import time

import pytest

from zoom_oplog_shipper.scheduler import Pool, schedule


def test_one_worker_runs_each_item_in_the_calling_thread_as_it_is_submitted() -> None:
    threads: list[threading.Thread] = []
    order: list[str] = []
    items = iter(["a", "b", "c"])

    def work(item: str) -> None:
        threads.append(threading.current_thread())
        order.append(f"read {item}")

    with Pool(1, work) as pool:
        schedule(pool, lambda: next(items, None), lambda done: order.extend(f"close {i}" for i, _ in done))
    assert threads == [threading.main_thread()] * 3
    assert order == ["read a", "close a", "read b", "close b", "read c", "close c"]


def test_one_workers_exception_propagates_at_once() -> None:
    def work(item: int) -> None:
        raise ValueError(item)

    with Pool(1, work) as pool, pytest.raises(ValueError):
        pool.submit(1)


def test_several_workers_run_at_most_that_many_at_once_and_report_what_failed() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def work(item: int) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        if item == 3:
            raise ValueError(item)

    items = iter(range(8))
    done: list[tuple[int, BaseException | None]] = []
    with Pool(3, work) as pool:
        schedule(pool, lambda: next(items, None), done.extend)
    assert peak[0] == 3 and sorted(i for i, _ in done) == list(range(8))
    assert [i for i, error in done if error is not None] == [3]


def test_the_loop_waits_for_news_when_nothing_can_start_yet() -> None:
    started = threading.Event()
    plans = iter(["first", None, "second"])

    def work(item: str) -> None:
        if item == "first":
            started.set()
            pool.wake()  # what a reader's first page does
            time.sleep(0.05)

    seen: list[str] = []
    with Pool(2, work) as pool:
        schedule(pool, lambda: next(plans, None), lambda done: seen.extend(i for i, _ in done))
    assert started.is_set() and sorted(seen) == ["first", "second"]
