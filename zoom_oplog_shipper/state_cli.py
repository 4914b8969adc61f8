"""`state path | show | reset | rewind`: inspect and repair the stored progress.

`state show` and `state path` answer on stdout (they are inspection commands, not `run`); every
diagnostic goes to stderr. `show` opens the store read-only, so it works on a read-only disk.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import Config
from zoom_oplog_shipper.errors import ConfigError, ExitCode
from zoom_oplog_shipper.logs import LOGGER_NAME
from zoom_oplog_shipper.records import rfc3339_millis
from zoom_oplog_shipper.settings import parse_instant
from zoom_oplog_shipper.state import RunLock, StateStore, reset_state, store_exists
from zoom_oplog_shipper.streams import stream_of
from zoom_oplog_shipper.windows import midnight, retention_floor

log = logging.getLogger(LOGGER_NAME)


def run_state_command(args: argparse.Namespace, config: Config, out: BinaryIO, clock: Clock) -> int:
    """Run one `state` action; returns the exit code (failures are raised as ShipperError)."""
    if not config.account_id:
        msg = "state commands need the account id: set ZOOM_ACCOUNT_ID or --account-id"
        raise ConfigError(msg)
    stream = stream_of(config)
    partition = stream.partition_key(config)
    path = stream.state_path(config)

    def write(text: str) -> None:
        out.write(text.encode() + b"\n")
        out.flush()

    if args.state_command == "path":
        write(str(path))
        return 0
    if args.state_command == "show":
        write(_show(path, config, partition, clock.now(), as_json=bool(getattr(args, "json", False))))
        return 0
    if not store_exists(path):
        return _missing(path, args)
    if args.state_command == "rewind":
        return _rewind(path, config, partition, args, clock.now())
    return _reset(path, bool(args.yes))


def _missing(path: Path, args: argparse.Namespace) -> int:
    """`state rewind` and `state reset` of a store that does not exist (no lock taken, nothing created)."""
    if args.state_command == "rewind":
        msg = (
            f"no state at {path}: nothing to rewind; check --state-dir, --account-id, --stream and --category-type "
            "(the first `zoom-oplog-shipper run` creates the state)"
        )
        raise ConfigError(msg)
    if not args.yes:
        raise ConfigError(_reset_question(path))
    log.info("removed nothing: %s did not exist", path)
    return 0


def _show(path: Path, config: Config, partition: str, now: datetime, *, as_json: bool) -> str:
    if not store_exists(path):
        if as_json:
            return orjson.dumps({"path": str(path), "exists": False}, option=orjson.OPT_INDENT_2).decode()
        return (
            f"no state yet for account {config.account_id}, {config.stream} ({partition}): "
            f"the first `zoom-oplog-shipper run` creates {path}"
        )
    store = StateStore.open(path, config.account_id, partition, readonly=True)
    try:
        info = {**store.describe(), "stream": config.stream}
    finally:
        store.close()
    if as_json:
        return orjson.dumps({**info, "exists": True}, option=orjson.OPT_INDENT_2).decode()
    return "\n".join(human_report(info, now))


def human_report(info: dict[str, Any], now: datetime) -> list[str]:
    """`state show` for a person: what an operator asks first (last run, last success, lag, records)."""
    last = info.get("last_run") or {}
    success = info.get("last_success") or {}
    watermark = _instant(info.get("watermark"))
    lines = [
        f"last run: {_run_line(last, now)}",
        f"last success: {_when(success, now)}" if success else "last success: none recorded",
        f"lag: {duration((now - watermark).total_seconds())} (now minus the watermark)"
        if watermark
        else "lag: unknown (no watermark yet)",
        f"records in the last run: {last['emitted']}"
        if isinstance(last.get("emitted"), int)
        else "records in the last run: not recorded",
        f"watermark: {info.get('watermark') or 'not set'} (everything before it was delivered)",
        f"floor: {info.get('floor') or 'not set'} (nothing older is ever sent)",
        f"fingerprints: {info.get('fingerprints')} (records of the last lookback, never sent twice)",
        f"path: {info.get('path')}",
        _whose(info),
    ]
    resume = info.get("resume")
    for point in resume if isinstance(resume, list) else [resume] if isinstance(resume, dict) else []:
        lines.append(
            f"resume point: window {point.get('start')}..{point.get('end')} was interrupted; "
            f"the next run asks for {point.get('from')}..{point.get('to')}"
        )
    return lines


def _whose(info: dict[str, Any]) -> str:
    """``account: A, stream: S`` and the category when the stream has categories (its partition)."""
    stream = info.get("stream")
    partition = info.get("category_type")  # the name `state show --json` has always printed it under
    if stream is None or partition == stream:  # the activity logs' store is keyed by the stream itself
        return f"account: {info.get('account_id')}, stream: {stream or partition}"
    return f"account: {info.get('account_id')}, stream: {stream}, category: {partition}"


def _run_line(last: dict[str, Any], now: datetime) -> str:
    if not last:
        return "none recorded"
    outcome = last.get("outcome") if isinstance(last.get("outcome"), str) else "outcome not recorded"
    code = last.get("exit_code")
    exit_text = f"exit {code}" if isinstance(code, int) else "exit code not recorded"
    return f"{outcome}, {_when(last, now)}, {exit_text}"


def _when(summary: dict[str, Any], now: datetime) -> str:
    for key, word in (("finished", "finished"), ("started", "started")):
        moment = _instant(summary.get(key))
        if moment is not None:
            return f"{word} {summary[key]} ({duration((now - moment).total_seconds())} ago)"
    return "time not recorded"


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def duration(seconds: float) -> str:
    """Seconds in the two largest human units: ``45s``, ``12m 5s``, ``3h 20m``, ``2d 4h``."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


@contextmanager
def _run_lock(path: Path) -> Iterator[bool]:
    """Hold the run lock of the store at ``path`` for the block; False (said on stderr) when a run holds it."""
    lock = RunLock(path)
    if not lock.acquire():
        log.error("a run holds %s; try again when it has finished", lock.path)
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _reset_question(path: Path) -> str:
    return (
        f"`state reset` deletes the watermark and fingerprints in {path}; the next run then starts "
        "over from --backfill-start (or now) and may send records again. To send again only what a "
        "destination lost, use `state rewind --to DATE --yes`. Add --yes to confirm the reset"
    )


def _reset(path: Path, yes: bool) -> int:
    if not yes:
        raise ConfigError(_reset_question(path))
    with _run_lock(path) as held:
        if not held:
            return int(ExitCode.FAILURE)
        removed = reset_state(path)
    log.info("removed %s", ", ".join(map(str, removed)) if removed else f"nothing: {path} did not exist")
    return 0


def rewind_target(text: str, now: datetime) -> datetime:
    """The instant `state rewind --to` names: not in the future, clamped to what Zoom still keeps."""
    to = parse_instant(text, "--to")
    if to > now:
        msg = f"--to: {text!r} is in the future; give the date from which records must be sent again"
        raise ConfigError(msg)
    oldest = midnight(retention_floor(now.date()))
    if to < oldest:
        log.warning(
            "--to %s is older than Zoom keeps operation logs (about 6 months); rewinding to %s instead",
            text,
            oldest.date().isoformat(),
        )
        return oldest
    return to


def _rewind(path: Path, config: Config, partition: str, args: argparse.Namespace, now: datetime) -> int:
    if not args.yes:
        msg = (
            f"`state rewind --to {args.to}` moves the watermark in {path} back so the next run sends again "
            "every record from that date on, with the same event.id (Elasticsearch stores none twice when "
            "it uses event.id as _id); fingerprints from that date are deleted. Add --yes to confirm"
        )
        raise ConfigError(msg)
    to = rewind_target(args.to, now)
    with _run_lock(path) as held:
        if not held:
            return int(ExitCode.FAILURE)
        store = StateStore.open(path, config.account_id, partition, create=False)
        try:
            snap = store.snapshot()
            if snap.watermark is None:
                msg = f"{path} has no watermark yet (no run has finished a window): nothing to rewind"
                raise ConfigError(msg)
            if to >= snap.watermark:
                msg = (
                    f"--to {rfc3339_millis(to)} is not before the watermark {rfc3339_millis(snap.watermark)}: "
                    "those records have not been sent yet, nothing to rewind"
                )
                raise ConfigError(msg)
            done = store.rewind(to, config.lookback)
        finally:
            store.close()
    log.info(
        "rewound %s: watermark %s -> %s, floor %s -> %s, fingerprints removed: %d; the next run sends again "
        "every record from %s on, with the same event.id",
        path,
        rfc3339_millis(done.old_watermark),
        rfc3339_millis(done.new_watermark),
        rfc3339_millis(done.old_floor),
        rfc3339_millis(done.new_floor),
        done.fingerprints_removed,
        rfc3339_millis(done.new_watermark),
    )
    return 0
