from __future__ import annotations

import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SECRET, FakeClock, FakeZoom, make_config, record
from zoom_oplog_shipper.errors import ApiError, AuthError, DailyLimitError
from zoom_oplog_shipper.windows import Window
from zoom_oplog_shipper.zoom_client import (
    MAX_ATTEMPTS,
    InvalidRequest,
    Outcome,
    PageTokenExpired,
    ZoomClient,
    classify,
    parse_retry_after,
)

WINDOW = Window(date(2026, 11, 20), date(2026, 11, 26))
QPS_BODY = {"code": 429, "message": "You have reached the maximum per-second rate limit for this API. Try again later."}
DAILY_BODY = {"code": 429, "message": "You have reached the maximum daily rate limit for this API. Try again later."}


@pytest.mark.parametrize(
    ("status", "body", "headers", "paged", "outcome"),
    [
        (200, {"operation_logs": []}, {}, False, Outcome.OK),
        (200, None, {}, False, Outcome.RETRY),
        (200, [1, 2], {}, False, Outcome.RETRY),
        (429, QPS_BODY, {"X-RateLimit-Type": "QPS"}, False, Outcome.RETRY),
        (429, QPS_BODY, {}, False, Outcome.RETRY),
        (429, DAILY_BODY, {"X-RateLimit-Type": "Daily-limit"}, False, Outcome.DAILY_LIMIT),
        (429, DAILY_BODY, {}, False, Outcome.DAILY_LIMIT),
        (401, {"code": 124, "message": "Invalid access token."}, {}, False, Outcome.RENEW_TOKEN),
        (400, {"code": 124, "message": "Access token is expired."}, {}, False, Outcome.RENEW_TOKEN),
        (400, {"code": 200, "message": "No permission."}, {}, False, Outcome.AUTH),
        (400, {"code": 4700, "message": "Invalid access token, does not contain scopes"}, {}, False, Outcome.AUTH),
        (400, {"code": 300, "message": "The next page token is invalid or expired."}, {}, True, Outcome.PAGE_TOKEN),
        (
            400,
            {"code": 300, "message": "Daily report can only be provided within 6 months"},
            {},
            False,
            Outcome.INVALID,
        ),
        (404, {"code": 404, "message": "Not found"}, {}, False, Outcome.INVALID),
        (400, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}, {}, False, Outcome.AUTH),
        (401, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}, {}, False, Outcome.AUTH),
        (500, None, {}, False, Outcome.RETRY),
        (502, {"code": 500, "message": "x"}, {}, False, Outcome.RETRY),
        (503, None, {}, True, Outcome.RETRY),
        (408, None, {}, False, Outcome.RETRY),
    ],
)
def test_classify(status: int, body: Any, headers: dict[str, str], paged: bool, outcome: Outcome) -> None:
    assert classify(status, body, headers, paged=paged).outcome is outcome


def test_classify_rate_limit_waits() -> None:
    assert classify(429, QPS_BODY, {}).wait == 1.0
    assert classify(429, QPS_BODY, {"Retry-After": "3"}).wait == 3.0
    daily = classify(429, DAILY_BODY, {"Retry-After": "2026-11-27T00:00:00Z"})
    assert daily.reset_at == "2026-11-27T00:00:00Z"
    assert parse_retry_after(daily.reset_at) is not None
    assert parse_retry_after("soon") is None


def client_for(tmp_path: Path, zoom: FakeZoom, clock: FakeClock, **kw: Any) -> ZoomClient:
    return ZoomClient(make_config(tmp_path, zoom.base, **kw), clock=clock, rng=random.Random(1))


def test_page_with_token(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.records = [record("2026-11-25T10:00:00Z")]
    page = client_for(tmp_path, zoom, clock).get_page(WINDOW, "all")
    assert page.records == zoom.records and page.next_page_token == ""
    assert zoom.requests[0] == {"from": "2026-11-20", "to": "2026-11-26", "page_size": "300", "category_type": "all"}


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (429, QPS_BODY, {"X-RateLimit-Type": "QPS", "X-RateLimit-Category": "Heavy"}),
        (429, QPS_BODY, {}),
        (500, None, {}),
        (503, b"<html>busy</html>", {}),
        (200, b'{"operation_logs": [', {}),
        (200, {"unexpected": True}, {}),
    ],
)
def test_transient_failures_are_retried(
    tmp_path: Path, zoom: FakeZoom, clock: FakeClock, status: int, body: Any, headers: dict[str, str]
) -> None:
    zoom.records = [record("2026-11-25T10:00:00Z")]
    zoom.fail(status, body, headers, times=2)
    client = client_for(tmp_path, zoom, clock)
    assert client.get_page(WINDOW, "all").records == zoom.records
    assert client.counters.retries == 2
    assert len(clock.slept) == 2  # waited without really sleeping
    if status == 429:
        assert all(1.0 <= s <= 2.0 for s in clock.slept)


def test_retries_are_bounded(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.fail(500, {"code": 500, "message": "Internal"}, {"x-zm-trackingid": "TRK1"}, times=MAX_ATTEMPTS)
    with pytest.raises(ApiError, match=f"failed after {MAX_ATTEMPTS} attempts.*TRK1"):
        client_for(tmp_path, zoom, clock).get_page(WINDOW, "all")


def test_retry_never_sleeps_past_the_deadline(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.fail(503, None, times=3)
    client = client_for(tmp_path, zoom, clock)
    client.deadline = clock.monotonic() + 0.01
    with pytest.raises(ApiError, match="deadline"):
        client.get_page(WINDOW, "all")
    assert clock.slept == []


def test_daily_limit(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.fail(429, DAILY_BODY, {"X-RateLimit-Type": "Daily-limit", "Retry-After": "2026-11-27T00:00:00Z"})
    with pytest.raises(DailyLimitError, match="resets at 2026-11-27T00:00:00Z") as info:
        client_for(tmp_path, zoom, clock).get_page(WINDOW, "all")
    assert info.value.exit_code == 4


def test_expired_token_is_renewed_once(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    client = client_for(tmp_path, zoom, clock)
    client.get_page(WINDOW, "all")
    zoom.valid_tokens.clear()  # revoked, e.g. by another process taking a new token
    client.get_page(WINDOW, "all")
    assert zoom.token_requests == 2


def test_token_refused_twice_is_an_auth_error(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.fail(401, {"code": 124, "message": "Invalid access token."}, times=2)
    with pytest.raises(AuthError, match="freshly issued"):
        client_for(tmp_path, zoom, clock).get_page(WINDOW, "all")


def test_token_renewed_before_expiry(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    client = client_for(tmp_path, zoom, clock)
    client.get_page(WINDOW, "all")
    clock.advance(3600 - 30)  # inside the renewal margin
    client.get_page(WINDOW, "all")
    assert zoom.token_requests == 2


@pytest.mark.parametrize(
    ("body", "needle", "code"),
    [
        ({"code": 200, "message": "No permission."}, "Pro or higher plan", 3),
        ({"code": 4700, "message": "lacks scopes:[report:read:admin]."}, "report:read:operation_logs:admin", 3),
    ],
)  # fmt: skip
def test_permission_errors(tmp_path: Path, zoom: FakeZoom, clock: FakeClock, body: Any, needle: str, code: int) -> None:
    zoom.fail(400, body)
    with pytest.raises(AuthError, match=needle) as info:
        client_for(tmp_path, zoom, clock).get_page(WINDOW, "all")
    assert info.value.exit_code == code


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [({"client_secret": "wrong"}, "ZOOM_CLIENT_SECRET"), ({"account_id": "nope"}, "ZOOM_ACCOUNT_ID")],
)
def test_bad_credentials(
    tmp_path: Path, zoom: FakeZoom, clock: FakeClock, overrides: dict[str, str], needle: str
) -> None:
    with pytest.raises(AuthError, match=needle) as info:
        client_for(tmp_path, zoom, clock, **overrides).token()
    assert SECRET not in str(info.value) and "wrong" not in str(info.value)


def test_page_token_refused(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.fail(400, {"code": 300, "message": "The next page token is invalid or expired."})
    with pytest.raises(PageTokenExpired):
        client_for(tmp_path, zoom, clock).get_page(WINDOW, "all", "tok")


def test_invalid_request(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.fail(
        400, {"code": 300, "message": "Daily report can only be provided within 6 months prior to the current date."}
    )
    with pytest.raises(InvalidRequest, match="6 months"):
        client_for(tmp_path, zoom, clock).get_page(WINDOW, "all")


def test_connection_errors_are_retried(tmp_path: Path, clock: FakeClock) -> None:
    cfg = make_config(tmp_path, "http://127.0.0.1:9")  # discard port: connection refused
    client = ZoomClient(cfg, clock=clock, rng=random.Random(1))
    with pytest.raises(ApiError, match="ConnectionError"):
        client.token()
    assert len(clock.slept) == MAX_ATTEMPTS - 1


def test_rate_limit_paces_requests(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    client = client_for(tmp_path, zoom, clock, max_rps=2.0)
    for _ in range(3):
        client.get_page(WINDOW, "all")
    # token + 3 pages at 2/s: three waits of half a second
    assert clock.slept == pytest.approx([0.5, 0.5, 0.5])
