"""Facts about one raw record: its time and its fingerprint (the event's `event.id`)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

FINGERPRINT_BYTES = 16
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def canonical(record: Any) -> bytes:
    """The record as JSON with sorted keys: equal records give equal bytes."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def fingerprint(account_id: str, canonical_record: bytes, occurrence: int) -> bytes:
    """Hash of the account, the canonical record, and its occurrence number among identical records.

    The occurrence number keeps two genuinely identical records (a batch of the same change) apart,
    while a re-read of the same query gives every record the same fingerprint again.
    """
    h = account_hash(account_id).copy()
    h.update(canonical_record)
    h.update(b"\0%d" % occurrence)
    return h.digest()


@lru_cache(maxsize=16)
def account_hash(account_id: str) -> hashlib.blake2b:
    """The hash state after the account's part, copied for each record instead of hashed again
    (:func:`fingerprint` adds the canonical record and the occurrence to a copy)."""
    h = hashlib.blake2b(digest_size=FINGERPRINT_BYTES)
    h.update(account_id.encode())
    h.update(b"\0")
    return h


def record_time(record: Any) -> datetime | None:
    """The record's `time` as an aware UTC datetime, or None when missing or unparsable."""
    value = record.get("time") if isinstance(record, dict) else None
    if not isinstance(value, str):
        return None
    if len(value) == 20 and value[19] == "Z" and value[10] == "T":  # noqa: PLR2004 - YYYY-MM-DDTHH:MM:SSZ
        # Zoom's usual form, parsed in C (Python 3.11 reads the Z as UTC): this runs for every record.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def epoch(moment: datetime) -> int:
    """Whole seconds since 1970, rounded down (what the state store keeps); a naive time is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Exact integer arithmetic, several times faster than calendar.timegm(utctimetuple()).
    return (moment - _EPOCH) // _SECOND


def rfc3339_millis(moment: datetime) -> str:
    """``2022-01-25T17:52:16.000Z``: UTC with milliseconds, as ECS timestamps are written."""
    t = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    fields = (t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond // 1000)
    # printf-style: half the cost of isoformat(timespec="milliseconds"), and it runs for every event.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % fields  # noqa: UP031
