"""Facts about one raw record: its time and its fingerprint (the event's `event.id`)."""

from __future__ import annotations

import hashlib
from calendar import timegm
from datetime import UTC, datetime
from typing import Any

import orjson

FINGERPRINT_BYTES = 16


def canonical(record: Any) -> bytes:
    """The record as JSON with sorted keys: equal records give equal bytes."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def fingerprint(account_id: str, canonical_record: bytes, occurrence: int) -> bytes:
    """Hash of the account, the canonical record, and its occurrence number among identical records.

    The occurrence number keeps two genuinely identical records (a batch of the same change) apart,
    while a re-read of the same query gives every record the same fingerprint again.
    """
    h = hashlib.blake2b(digest_size=FINGERPRINT_BYTES)
    h.update(account_id.encode())
    h.update(b"\0")
    h.update(canonical_record)
    h.update(b"\0%d" % occurrence)
    return h.digest()


def record_time(record: Any) -> datetime | None:
    """The record's `time` as an aware UTC datetime, or None when missing or unparsable."""
    value = record.get("time") if isinstance(record, dict) else None
    if not isinstance(value, str):
        return None
    if len(value) == 20 and value[19] == "Z" and value[10] == "T":
        # Zoom's usual form; parsed by hand because this runs for every record.
        try:
            return datetime(
                int(value[0:4]), int(value[5:7]), int(value[8:10]),
                int(value[11:13]), int(value[14:16]), int(value[17:19]), tzinfo=UTC,
            )  # fmt: skip
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def epoch(moment: datetime) -> int:
    """Whole seconds since 1970 (what the state store keeps)."""
    return timegm(moment.utctimetuple())


def rfc3339_millis(moment: datetime) -> str:
    """``2022-01-25T17:52:16.000Z``: UTC with milliseconds, as ECS timestamps are written."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
