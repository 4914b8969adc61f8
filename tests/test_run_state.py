"""The run state: the watermark moves only over finished windows, oldest first, never back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from zoom_oplog_shipper.planning import Slot
from zoom_oplog_shipper.run_state import Facts, RunState
from zoom_oplog_shipper.windows import MAX_TZ_OFFSET, Window, midnight

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
START = datetime(2026, 9, 1, tzinfo=UTC)


def state(resume: tuple[dict[str, str], ...] = ()) -> RunState:
    facts = Facts(end=date(2026, 11, 27), to_inclusive=True, offset_limit=MAX_TZ_OFFSET)
    return RunState(START, START, timedelta(days=1), facts, resume, now=NOW)


def slots(run: RunState, *ends: int) -> list[Slot]:
    made, start = [], date(2026, 8, 30)
    for end in ends:
        window = Window(start, date(2026, 8, 30) + timedelta(days=end))
        made.append(run.plan(Slot(window)))
        start = window.end + timedelta(days=1)
    return made


def finish(run: RunState, slot: Slot, read: bool = True) -> None:
    slot.read = slot.window if read else None
    run.finish(slot)


def test_the_watermark_waits_for_the_oldest_window_then_passes_every_finished_one() -> None:
    run = state()
    first, second, third = slots(run, 27, 55, 83)
    finish(run, second)
    finish(run, third)
    assert run.close_windows() == [] and run.watermark == START  # the oldest is still being read
    finish(run, first)
    closed = run.close_windows()
    assert [c.finished for c in closed] == [[("2026-08-30", "2026-09-26")], [("2026-09-27", "2026-10-24")],
                                            [("2026-10-25", "2026-11-21")]]  # fmt: skip
    assert run.watermark == midnight(date(2026, 11, 22)) - MAX_TZ_OFFSET
    assert run.cutoff == run.watermark - timedelta(days=1)
    assert closed[-1].prune_before == int(run.cutoff.timestamp())


def test_a_window_that_stopped_ends_the_planning_and_keeps_the_watermark_before_it() -> None:
    run = state()
    first, second, third = slots(run, 27, 55, 83)
    finish(run, first)
    finish(run, second, read=False)
    assert run.stopped
    finish(run, third)
    assert len(run.close_windows()) == 1 and run.slots == []
    assert run.watermark == midnight(date(2026, 9, 27)) - MAX_TZ_OFFSET


def test_the_watermark_never_moves_back_nor_past_the_runs_start() -> None:
    run = state()
    run.move_watermark(START - timedelta(days=3))
    assert run.watermark == START
    [slot] = slots(run, 120)
    finish(run, slot)
    run.close_windows()
    assert run.watermark == NOW


def test_a_resume_point_narrows_only_its_own_window() -> None:
    point = {"start": "2026-08-30", "end": "2026-09-26", "from": "2026-08-30", "to": "2026-09-10"}
    run = state(resume=(point,))
    assert run.resumed(Window(date(2026, 8, 30), date(2026, 9, 26))) == Window(date(2026, 8, 30), date(2026, 9, 10))
    assert run.resumed(Window(date(2026, 8, 31), date(2026, 9, 27))) is None


def test_a_window_cut_in_two_is_passed_by_the_watermark_only_when_both_parts_are_read() -> None:
    run = state()
    [victim] = slots(run, 27)
    older = Window(date(2026, 8, 30), date(2026, 9, 10))
    new = run.split(victim, older)
    assert run.slots == [new, victim]
    # the victim sends nothing older than what the new window is sure to return, and both check
    # the records they may share against the store
    assert victim.floor == new.recheck_from == midnight(date(2026, 9, 11)) - MAX_TZ_OFFSET
    assert victim.cut_end == older.end
    assert victim.recheck_before == midnight(date(2026, 9, 11)) + timedelta(hours=12)
    finish(run, victim)
    assert run.close_windows() == [] and run.watermark == START
    finish(run, new)
    assert [c.finished for c in run.close_windows()] == [[("2026-08-30", "2026-09-10")], [("2026-08-30", "2026-09-26")]]
