from datetime import UTC, datetime

import pytest

from zoom_oplog_shipper.records import canonical, epoch, fingerprint, record_time, rfc3339_millis


def test_canonical_ignores_key_order() -> None:
    assert canonical({"b": 1, "a": 2}) == canonical({"a": 2, "b": 1})


def test_fingerprint_separates_account_record_and_occurrence() -> None:
    c = canonical({"time": "2026-01-01T00:00:00Z"})
    base = fingerprint("acct", c, 0)
    assert len(base) == 16
    assert base == fingerprint("acct", c, 0)
    assert base != fingerprint("acct", c, 1)
    assert base != fingerprint("other", c, 0)
    assert base != fingerprint("acct", canonical({"time": "2026-01-01T00:00:01Z"}), 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-01-25T17:52:16Z", datetime(2022, 1, 25, 17, 52, 16, tzinfo=UTC)),
        ("2022-01-25T17:52:16+02:00", datetime(2022, 1, 25, 15, 52, 16, tzinfo=UTC)),
        ("2022-01-25T17:52:16.250Z", datetime(2022, 1, 25, 17, 52, 16, 250000, tzinfo=UTC)),
        ("2022-01-25T17:52:16", datetime(2022, 1, 25, 17, 52, 16, tzinfo=UTC)),
        ("2022-13-25T17:52:16Z", None),
        ("yesterday", None),
        ("", None),
        (None, None),
        (1643133136, None),
    ],
)
def test_record_time(value: object, expected: datetime | None) -> None:
    assert record_time({"time": value}) == expected


def test_record_time_of_odd_records() -> None:
    assert record_time({}) is None
    assert record_time(["not", "a", "dict"]) is None


def test_epoch_and_rfc3339() -> None:
    moment = datetime(2022, 1, 25, 17, 52, 16, 123456, tzinfo=UTC)
    assert epoch(moment) == 1643133136
    assert rfc3339_millis(moment) == "2022-01-25T17:52:16.123Z"
    assert rfc3339_millis(moment.replace(year=999)) == "0999-01-25T17:52:16.123Z"  # RFC 3339: four digits
