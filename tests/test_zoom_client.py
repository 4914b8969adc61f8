from __future__ import annotations

import random
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import SECRET, FakeClock, FakeZoom, make_config, record

from zoom_oplog_shipper.errors import ApiError, AuthError, ConfigError, DailyLimitError
from zoom_oplog_shipper.pages import InvalidRequestError, PageTokenExpiredError
from zoom_oplog_shipper.streams import OPERATIONS
from zoom_oplog_shipper.windows import Window
from zoom_oplog_shipper.zoom_client import (
    MAX_ATTEMPTS,
    Outcome,
    ZoomClient,
    _Token,
    classify_response,
    describe_network_error,
)

#: What a library's exception class or connection pool looks like when its text is passed on raw.
CLASS_NAME = re.compile(r"\b\w*(Error|Exception|Pool|Interrupt)\b|<\w+ object")
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
        (404, {"code": 404, "message": "Not found"}, {}, False, Outcome.WRONG_URL),
        (404, {"code": 404, "message": "No such API: GET /v1/report/operationlogs."}, {}, False, Outcome.WRONG_URL),
        (404, None, {}, False, Outcome.WRONG_URL),
        (400, {"code": 404, "message": "No such API."}, {}, False, Outcome.WRONG_URL),
        (400, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}, {}, False, Outcome.AUTH),
        (401, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}, {}, False, Outcome.AUTH),
        (500, None, {}, False, Outcome.RETRY),
        (502, {"code": 500, "message": "x"}, {}, False, Outcome.RETRY),
        (503, None, {}, True, Outcome.RETRY),
        (408, None, {}, False, Outcome.RETRY),
    ],
)
def test_classify_response(status: int, body: Any, headers: dict[str, str], paged: bool, outcome: Outcome) -> None:
    assert classify_response(status, body, headers, paged=paged).outcome is outcome


def test_classify_response_rate_limit_waits() -> None:
    assert classify_response(429, QPS_BODY, {}).wait == 1.0
    assert classify_response(429, QPS_BODY, {"Retry-After": "3"}).wait == 3.0
    daily = classify_response(429, DAILY_BODY, {"Retry-After": "2026-11-27T00:00:00Z"})
    assert daily.reset_at == "2026-11-27T00:00:00Z"


def client_for(tmp_path: Path, zoom: FakeZoom, clock: FakeClock, **kw: Any) -> ZoomClient:
    return ZoomClient(make_config(tmp_path, zoom.base, **kw), clock=clock, rng=random.Random(1))


def test_page_with_token(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.records = [record("2026-11-25T10:00:00Z")]
    page = client_for(tmp_path, zoom, clock).get_page(OPERATIONS, WINDOW)
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
    assert client.get_page(OPERATIONS, WINDOW).records == zoom.records
    assert client.counters.retries == 2
    assert len(clock.slept) == 2  # waited without really sleeping
    if status == 429:
        assert all(1.0 <= s <= 2.0 for s in clock.slept)


def test_retries_are_bounded(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.fail(500, {"code": 500, "message": "Internal"}, {"x-zm-trackingid": "TRK1"}, times=MAX_ATTEMPTS)
    with pytest.raises(ApiError, match=f"failed after {MAX_ATTEMPTS} attempts.*TRK1"):
        client_for(tmp_path, zoom, clock).get_page(OPERATIONS, WINDOW)


def test_retry_never_sleeps_past_the_deadline(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.fail(503, None, times=3)
    client = client_for(tmp_path, zoom, clock)
    client.deadline = clock.monotonic() + 0.01
    with pytest.raises(ApiError, match="deadline"):
        client.get_page(OPERATIONS, WINDOW)
    assert clock.slept == []


def test_daily_limit(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.fail(429, DAILY_BODY, {"X-RateLimit-Type": "Daily-limit", "Retry-After": "2026-11-27T00:00:00Z"})
    with pytest.raises(DailyLimitError, match="resets at 2026-11-27T00:00:00Z") as info:
        client_for(tmp_path, zoom, clock).get_page(OPERATIONS, WINDOW)
    assert info.value.exit_code == 4


def test_expired_token_is_renewed_once(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    client = client_for(tmp_path, zoom, clock)
    client.get_page(OPERATIONS, WINDOW)
    zoom.valid_tokens.clear()  # revoked, e.g. by another process taking a new token
    client.get_page(OPERATIONS, WINDOW)
    assert zoom.token_requests == 2


def test_token_refused_twice_is_an_auth_error(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.fail(401, {"code": 124, "message": "Invalid access token."}, times=2)
    with pytest.raises(AuthError, match="freshly issued"):
        client_for(tmp_path, zoom, clock).get_page(OPERATIONS, WINDOW)


def test_token_renewed_before_expiry(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    client = client_for(tmp_path, zoom, clock)
    client.get_page(OPERATIONS, WINDOW)
    clock.advance(3600 - 30)  # inside the renewal margin
    client.get_page(OPERATIONS, WINDOW)
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
        client_for(tmp_path, zoom, clock).get_page(OPERATIONS, WINDOW)
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
    with pytest.raises(PageTokenExpiredError):
        client_for(tmp_path, zoom, clock).get_page(OPERATIONS, WINDOW, "tok")


def test_invalid_request(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.fail(
        400, {"code": 300, "message": "Daily report can only be provided within 6 months prior to the current date."}
    )
    with pytest.raises(InvalidRequestError, match="6 months"):
        client_for(tmp_path, zoom, clock).get_page(OPERATIONS, WINDOW)


def test_connection_errors_are_retried(tmp_path: Path, clock: FakeClock) -> None:
    cfg = make_config(tmp_path, "http://127.0.0.1:9")  # discard port: connection refused
    client = ZoomClient(cfg, clock=clock, rng=random.Random(1))
    with pytest.raises(ApiError) as info:
        client.token()
    assert len(clock.slept) == MAX_ATTEMPTS - 1
    text = str(info.value)
    assert "connection refused (http://127.0.0.1:9/oauth/token)" in text and "ZOOM_OAUTH_URL" in text
    assert not CLASS_NAME.search(text)


def test_rate_limit_paces_requests(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    client = client_for(tmp_path, zoom, clock, max_rps=2.0)
    for _ in range(3):
        client.get_page(OPERATIONS, WINDOW)
    # token + 3 pages at 2/s: three waits of half a second
    assert clock.slept == pytest.approx([0.5, 0.5, 0.5])


# -- messages that name the setting to fix --------------------------------------------------------------
def test_token_url_answering_404_names_zoom_oauth_url(tmp_path: Path, zoom: FakeZoom, clock: FakeClock) -> None:
    zoom.server.expect_request("/oauth/wrong", method="POST").respond_with_json({"error": "not found"}, status=404)
    client = client_for(tmp_path, zoom, clock, oauth_url=f"{zoom.base}/oauth/wrong")
    with pytest.raises(ConfigError) as info:
        client.token()
    text = str(info.value)
    assert info.value.exit_code == 2
    assert f"{zoom.base}/oauth/wrong answered HTTP 404" in text
    assert "ZOOM_OAUTH_URL" in text and "https://zoom.us/oauth/token" in text
    assert clock.slept == [] and not CLASS_NAME.search(text) and SECRET not in text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/report/operationlogs", {"code": 404, "message": "No such API: GET /v1/report/operationlogs."}),
        ("/report/operationlogs", None),
    ],
)
def test_api_url_answering_404_names_zoom_api_url(
    tmp_path: Path, zoom: FakeZoom, clock: FakeClock, path: str, body: Any
) -> None:
    api_url = zoom.base + path.removesuffix("/report/operationlogs")
    zoom.server.expect_request(path, method="GET").respond_with_json(body, status=404)
    client = client_for(tmp_path, zoom, clock, api_url=api_url)
    with pytest.raises(ConfigError) as info:
        client.get_page(OPERATIONS, WINDOW)
    text = str(info.value)
    assert info.value.exit_code == 2
    assert f"ZOOM_API_URL (--api-url) {api_url} is not Zoom's API; it ends in /v2" in text
    assert "HTTP 404" in text and not CLASS_NAME.search(text)


REFUSED = (
    "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /x (Caused by "
    "NewConnectionError(\"HTTPConnection(host='127.0.0.1', port=9): Failed to establish a new connection: "
    '[Errno 111] Connection refused"))'
)
DNS = (
    "HTTPSConnectionPool(host='api.zoom.example', port=443): Max retries exceeded with url: /x (Caused by "
    "NameResolutionError(\"HTTPSConnection(host='api.zoom.example', port=443): Failed to resolve "
    "'api.zoom.example' ([Errno -2] Name or service not known)\"))"
)
TLS = (
    "HTTPSConnectionPool(host='api.zoom.us', port=443): Max retries exceeded with url: /x (Caused by "
    "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
    "self-signed certificate in certificate chain (_ssl.c:1006)')))"
)


#: (error, how it is described) for a host that cannot be reached at all.
UNREACHABLE: list[tuple[requests.RequestException, str]] = [
    (requests.ConnectionError(REFUSED), "connection refused"),
    (requests.ConnectionError(DNS), "the host name does not resolve (DNS)"),
    (requests.exceptions.SSLError(TLS), "its TLS certificate could not be verified"),
]


@pytest.mark.parametrize(
    ("exc", "phrase"),
    [
        *UNREACHABLE,
        (requests.exceptions.SSLError("[SSL: WRONG_VERSION_NUMBER] wrong version number"), "the TLS handshake failed"),
        (requests.exceptions.ConnectTimeout("HTTPSConnectionPool(...): timed out"), "no connection within 10 s"),
        (requests.exceptions.ReadTimeout("HTTPSConnectionPool(...): Read timed out."), "no answer within 60 s"),
        (requests.ConnectionError("('Connection aborted.', RemoteDisconnected('Remote end closed'))"),
         "the connection was closed before an answer"),
        (requests.exceptions.ChunkedEncodingError("IncompleteRead(10 bytes read)"), "the answer was cut off"),
        (requests.ConnectionError("something new"), "could not connect"),
        (requests.RequestException("odd"), "the request failed on the network"),
    ],
)  # fmt: skip
def test_network_errors_are_described_without_class_names(exc: requests.RequestException, phrase: str) -> None:
    text = describe_network_error(exc)
    assert text.startswith(phrase)
    assert not CLASS_NAME.search(text)


class _Unreachable:
    """A session whose every request fails as ``exc`` does, before any answer."""

    def __init__(self, exc: requests.RequestException) -> None:
        self.exc = exc
        self.headers: dict[str, str] = {}
        self.calls = 0

    def request(self, *_: Any, **__: Any) -> Any:
        self.calls += 1
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "phrase"),
    [*UNREACHABLE, (requests.exceptions.ReadTimeout("Read timed out."), "no answer within 60 s")],
)
@pytest.mark.parametrize("step", ["token", "page"])
def test_unreachable_host_names_the_setting_and_the_url(
    tmp_path: Path, clock: FakeClock, exc: requests.RequestException, phrase: str, step: str
) -> None:
    cfg = make_config(tmp_path, "https://zoom.example")
    session = _Unreachable(exc)
    client = ZoomClient(cfg, clock=clock, session=session, rng=random.Random(1))  # type: ignore[arg-type]
    if step == "page":
        client._token = _Token("tok", expires_at=1e12)
    with pytest.raises(ApiError) as info:
        client.token() if step == "token" else client.get_page(OPERATIONS, WINDOW)
    text = str(info.value)
    setting, url = ("ZOOM_OAUTH_URL", cfg.oauth_url) if step == "token" else ("ZOOM_API_URL", cfg.api_url)
    assert f"failed after {MAX_ATTEMPTS} attempts: {phrase}" in text
    assert f"({url})" in text and f"check {setting} (--" in text
    assert session.calls == MAX_ATTEMPTS
    assert not CLASS_NAME.search(text) and "Max retries" not in text and "host=" not in text


@pytest.fixture
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without the proxy and CA bundle variables of the machine running the tests."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_requests_go_through_the_proxy_of_the_environment(
    tmp_path: Path, zoom: FakeZoom, clock: FakeClock, no_proxy_environment: pytest.MonkeyPatch
) -> None:
    no_proxy_environment.setenv("HTTP_PROXY", zoom.base)  # FakeZoom answers as the proxy
    zoom.records = [record("2026-11-25T10:00:00Z")]
    client = ZoomClient(make_config(tmp_path, "http://zoom.proxied.invalid"), clock=clock, rng=random.Random(1))
    for _ in range(2):  # the second request too, once the environment has been read
        assert client.get_page(OPERATIONS, WINDOW).records == zoom.records
    assert zoom.token_requests == 1 and len(zoom.requests) == 2


def test_no_proxy_sends_the_request_directly(
    tmp_path: Path, zoom: FakeZoom, clock: FakeClock, no_proxy_environment: pytest.MonkeyPatch
) -> None:
    no_proxy_environment.setenv("HTTP_PROXY", zoom.base)
    no_proxy_environment.setenv("NO_PROXY", "zoom.proxied.invalid")
    client = ZoomClient(make_config(tmp_path, "http://zoom.proxied.invalid"), clock=clock, rng=random.Random(1))
    with pytest.raises(ApiError, match="does not resolve"):
        client.token()
    assert zoom.token_requests == 0
