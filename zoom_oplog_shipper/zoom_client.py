"""The Zoom client: OAuth token, a stream's report endpoint, retries and the request rate limit.

`classify_response` is the one place that decides what an HTTP answer means and whether it is retried.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from http import HTTPStatus
from typing import Any, NamedTuple

import orjson
import requests

from zoom_oplog_shipper import __version__
from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import Config
from zoom_oplog_shipper.errors import ApiError, AuthError, ConfigError, DailyLimitError
from zoom_oplog_shipper.pages import PAGE_SIZE, Counters, InvalidRequestError, Page, PageTokenExpiredError
from zoom_oplog_shipper.settings import DEFAULT_API_URL, DEFAULT_OAUTH_URL, label
from zoom_oplog_shipper.streams import Stream
from zoom_oplog_shipper.windows import Window

log = logging.getLogger(__name__)

#: Renew the token this long before Zoom says it expires (as Zoom's own SDK does).
TOKEN_RENEW_MARGIN = 60.0
MAX_ATTEMPTS = 6
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
REQUEST_TIMEOUT = (10.0, 60.0)
USER_AGENT = f"zoom-oplog-shipper/{__version__}"


class ZoomCode(IntEnum):
    """Zoom's numeric error codes (the body's `code`) that change what the client does."""

    INVALID_TOKEN = 124  # "Invalid access token." / "Access token is expired."
    NO_PERMISSION = 200  # plan, role or reporting not enabled
    VALIDATION = 300  # date range, retention, page token
    MISSING_SCOPE = 4700
    MISSING_SCOPE_GRANULAR = 4711


_AUTH_CODES = frozenset({ZoomCode.NO_PERMISSION, ZoomCode.MISSING_SCOPE, ZoomCode.MISSING_SCOPE_GRANULAR})


class Outcome(Enum):
    """What to do with an HTTP answer."""

    OK = "ok"
    RETRY = "retry"
    RENEW_TOKEN = "renew_token"  # noqa: S105 - an outcome's name, not a secret
    DAILY_LIMIT = "daily_limit"
    AUTH = "auth"
    PAGE_TOKEN = "page_token"  # noqa: S105 - an outcome's name, not a secret
    INVALID = "invalid"
    #: 404 or "No such API": the URL setting does not point at Zoom.
    WRONG_URL = "wrong_url"


@dataclass(frozen=True)
class Verdict:
    """The decision about one answer, with what the caller needs to act on it."""

    outcome: Outcome
    reason: str
    wait: float | None = None
    code: int | None = None
    reset_at: str | None = None


def _body_code(body: Any) -> tuple[int | None, str]:
    if not isinstance(body, dict):
        return None, ""
    code = body.get("code")
    message = body.get("message") or body.get("reason") or ""
    return (code if isinstance(code, int) else None), str(message)


def classify_response(status: int, body: Any, headers: Mapping[str, str], *, paged: bool = False) -> Verdict:
    """Decide what a report or token answer means.

    ``body`` is the decoded JSON (None when the body was not JSON); ``paged`` says whether the
    request carried a next_page_token.
    """
    code, message = _body_code(body)
    if status == HTTPStatus.OK:
        if isinstance(body, dict):
            return Verdict(Outcome.OK, "ok")
        return Verdict(Outcome.RETRY, "HTTP 200 with a body that is not a JSON object")
    detail = f"HTTP {status}" + (f" code {code}" if code is not None else "") + (f": {message}" if message else "")
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return _rate_limited(message, headers, detail, code)
    if code == ZoomCode.INVALID_TOKEN:
        return Verdict(Outcome.RENEW_TOKEN, detail, code=code)
    if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN) or code in _AUTH_CODES:
        return Verdict(Outcome.AUTH, detail, code=code)
    if paged and code == ZoomCode.VALIDATION:
        return Verdict(Outcome.PAGE_TOKEN, detail, code=code)
    if status == HTTPStatus.NOT_FOUND or "no such api" in message.lower():
        return Verdict(Outcome.WRONG_URL, detail, code=code)
    if status == HTTPStatus.REQUEST_TIMEOUT or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return Verdict(Outcome.RETRY, detail, code=code)
    if status == HTTPStatus.BAD_REQUEST and isinstance(body, dict) and "error" in body:
        return Verdict(Outcome.AUTH, detail)
    if HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR:
        return Verdict(Outcome.INVALID, detail, code=code)
    return Verdict(Outcome.RETRY, detail, code=code)


def _rate_limited(message: str, headers: Mapping[str, str], detail: str, code: int | None) -> Verdict:
    """A 429: the daily limit (not retried), or the per-second one (retried after Retry-After, else 1 s)."""
    kind = headers.get("X-RateLimit-Type", "").lower()
    if "daily" in kind or "daily" in message.lower():
        return Verdict(Outcome.DAILY_LIMIT, detail, reset_at=headers.get("Retry-After"))
    retry_after = headers.get("Retry-After", "")
    wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 1.0
    return Verdict(Outcome.RETRY, detail, wait=wait, code=code)


#: (class or words in the text of a network failure, what a person is told); the first match wins.
_NETWORK_FAILURES: tuple[tuple[type[Exception] | str, str], ...] = (
    ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate could not be verified (a proxy that intercepts TLS "
     "needs its CA in REQUESTS_CA_BUNDLE)"),
    (requests.exceptions.SSLError, "the TLS handshake failed"),
    (requests.exceptions.ProxyError, "the proxy failed the connection (check HTTPS_PROXY)"),
    (requests.exceptions.ConnectTimeout, f"no connection within {REQUEST_TIMEOUT[0]:g} s"),
    (requests.exceptions.ReadTimeout, f"no answer within {REQUEST_TIMEOUT[1]:g} s"),
    ("Connection refused", "connection refused"),
    ("Name or service not known", "the host name does not resolve (DNS)"),
    ("Temporary failure in name resolution", "the host name does not resolve (DNS)"),
    ("nodename nor servname", "the host name does not resolve (DNS)"),
    ("getaddrinfo failed", "the host name does not resolve (DNS)"),
    ("Failed to resolve", "the host name does not resolve (DNS)"),
    ("Network is unreachable", "the network is unreachable"),
    ("No route to host", "no route to the host"),
    ("RemoteDisconnected", "the connection was closed before an answer"),
    ("Connection reset", "the connection was closed before an answer"),
    ("Connection aborted", "the connection was closed before an answer"),
    (requests.exceptions.ChunkedEncodingError, "the answer was cut off"),
    (requests.exceptions.ContentDecodingError, "the answer could not be decoded"),
    (requests.exceptions.TooManyRedirects, "too many redirects"),
    (requests.exceptions.InvalidURL, "the URL is not valid"),
    (requests.exceptions.ConnectionError, "could not connect"),
)  # fmt: skip


def describe_network_error(exc: requests.RequestException) -> str:
    """A short phrase for a failed request, without the library's class names and pool details."""
    text = str(exc)
    for match, phrase in _NETWORK_FAILURES:
        if (match in text) if isinstance(match, str) else isinstance(exc, match):
            return phrase
    return "the request failed on the network"


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter for retry number ``attempt`` (1-based)."""
    return rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


class _Answer(NamedTuple):
    """An HTTP answer: status, decoded JSON (None when not JSON), headers, and seconds it took."""

    status: int
    body: Any
    headers: Mapping[str, str]
    seconds: float


@dataclass
class _Token:
    value: str
    expires_at: float
    scopes: tuple[str, ...] = field(default_factory=tuple)


class ZoomClient:
    """Talks to Zoom's token and report endpoints with one token per process."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        session: requests.Session | None = None,
        deadline: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        #: Monotonic time after which no retry is waited for (the run's --max-runtime).
        self.deadline = deadline
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not a secret
        self._token: _Token | None = None
        self._next_slot = 0.0
        self.counters = Counters()
        # Windows read at once share this client: one token, one rate limit, one set of counters.
        self._pace_lock = threading.Lock()
        self._token_lock = threading.Lock()
        self.last_date_header: str | None = None

    @property
    def config(self) -> Config:
        """The settings this client was made with."""
        return self._config

    # -- pacing ---------------------------------------------------------------------------
    def _pace(self) -> None:
        """Keep under --max-rps: the account's quota is shared with every other app."""
        if self._config.max_rps <= 0:
            return
        with self._pace_lock:  # reserve the next slot; wait for it outside the lock
            now = self._clock.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self._config.max_rps
        if slot > now:
            self._clock.sleep(slot - now)

    def _wait_before_retry(self, wait: float, what: str, reason: str) -> None:
        if self.deadline is not None and self._clock.monotonic() + wait > self.deadline:
            msg = f"{what} failed ({reason}) and the run's deadline (--max-runtime) leaves no time to retry"
            raise ApiError(msg)
        with self._pace_lock:
            self.counters.retries += 1
        log.warning("%s: %s; retrying in %.1fs", what, reason, wait)
        self._clock.sleep(wait)

    def _after_network_error(
        self, exc: requests.RequestException, attempt: int, what: str, setting: str, tail: str = ""
    ) -> None:
        """Wait before the next attempt; once they are spent, fail naming the URL and its setting."""
        reason = f"{describe_network_error(exc)} ({getattr(self._config, setting)})"
        if attempt >= MAX_ATTEMPTS:
            msg = (
                f"{what} failed after {attempt} attempts: {reason}; check {label(setting)} "
                f"and that this machine can reach it (DNS, firewall, proxy){tail}"
            )
            raise ApiError(msg) from None
        self._wait_before_retry(backoff_delay(attempt, self._rng), what, reason)

    # -- HTTP -----------------------------------------------------------------------------
    def _send(self, method: str, url: str, **kwargs: Any) -> _Answer:
        """One request, paced. Network errors propagate."""
        self._pace()
        with self._pace_lock:
            self.counters.requests += 1
        asked = self._clock.monotonic()
        resp = self._session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
        content = resp.content
        seconds = self._clock.monotonic() - asked
        try:
            body = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            body = None
        if resp.headers.get("Date"):
            self.last_date_header = resp.headers["Date"]
        return _Answer(resp.status_code, body, resp.headers, seconds)

    # -- token ----------------------------------------------------------------------------
    def token(self) -> str:
        """A valid access token, renewed shortly before it expires."""
        with self._token_lock:
            tok = self._token
            if tok is None or self._clock.monotonic() >= tok.expires_at - TOKEN_RENEW_MARGIN:
                tok = self._token = self._fetch_token()
            return tok.value

    def _drop_token(self, value: str) -> None:
        """Forget a refused token, unless another reader has already replaced it."""
        with self._token_lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    @property
    def scopes(self) -> tuple[str, ...]:
        """Scopes granted with the current token (empty before the first one)."""
        return self._token.scopes if self._token else ()

    def _fetch_token(self) -> _Token:
        cfg = self._config
        what = "token request"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                status, body, headers, _ = self._send(
                    "POST",
                    cfg.oauth_url,
                    auth=(cfg.client_id, cfg.client_secret),
                    data={"grant_type": "account_credentials", "account_id": cfg.account_id},
                )
            except requests.RequestException as exc:
                self._after_network_error(exc, attempt, what, "oauth_url")
                continue
            if status == HTTPStatus.OK and isinstance(body, dict) and isinstance(body.get("access_token"), str):
                ttl = body.get("expires_in")
                ttl = float(ttl) if isinstance(ttl, int | float) and ttl > 0 else 3600.0
                scopes = tuple(str(body.get("scope") or "").split())
                log.debug("obtained an access token valid for %ss", int(ttl))
                return _Token(body["access_token"], self._clock.monotonic() + ttl, scopes)
            verdict = classify_response(status, body, headers)
            if verdict.outcome is Outcome.OK:
                verdict = Verdict(Outcome.RETRY, "token answer without access_token")
            if verdict.outcome is Outcome.WRONG_URL:
                msg = (
                    f"the token URL {cfg.oauth_url} answered {verdict.reason}: it is not Zoom's token endpoint; "
                    f"set {label('oauth_url')} to {DEFAULT_OAUTH_URL}, or unset it for that default"
                )
                raise ConfigError(msg)
            if verdict.outcome in (Outcome.AUTH, Outcome.INVALID, Outcome.RENEW_TOKEN):
                raise AuthError(self._auth_message(status, body))
            if verdict.outcome is Outcome.DAILY_LIMIT:
                raise DailyLimitError(f"{what}: {verdict.reason}")
            if attempt == MAX_ATTEMPTS:
                raise ApiError(f"{what} failed after {attempt} attempts: {verdict.reason}")
            self._wait_before_retry(verdict.wait or backoff_delay(attempt, self._rng), what, verdict.reason)
        raise AssertionError("unreachable")  # pragma: no cover

    def _auth_message(self, status: int, body: Any) -> str:
        reason = ""
        error = ""
        if isinstance(body, dict):
            reason = str(body.get("reason") or body.get("message") or "")
            error = str(body.get("error") or body.get("code") or "")
        text = f"Zoom refused the token request (HTTP {status}"
        text += f", {error}" if error else ""
        text += f": {reason})" if reason else ")"
        if "account" in reason.lower():
            return text + "; check ZOOM_ACCOUNT_ID (the Account ID on the app's App Credentials page)"
        return (
            text + "; check ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET against the Server-to-Server OAuth app's "
            "App Credentials page, and that the app is activated"
        )

    # -- reports --------------------------------------------------------------------------
    def reader(self, stream: Stream) -> StreamPages:
        """The page source of one stream for the engine."""
        return StreamPages(self, stream)

    def get_page(self, stream: Stream, window: Window, next_page_token: str = "", page_size: int = PAGE_SIZE) -> Page:
        """One page of ``stream``'s report for ``window``, with retries, token renewal and pacing."""
        url = self._config.api_url + stream.endpoint.path
        params = {**window.params(), "page_size": str(page_size), **stream.query(self._config)}
        if next_page_token:
            params["next_page_token"] = next_page_token
        what = f"GET {stream.endpoint.path} {window.start}..{window.end}"
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                used = self.token()
                status, body, headers, seconds = self._send(
                    "GET", url, params=params, headers={"Authorization": f"Bearer {used}"}
                )
            except requests.RequestException as exc:
                self._after_network_error(exc, attempt, what, "api_url", "; progress is kept")
                continue
            tracking = headers.get("x-zm-trackingid", "")
            verdict = classify_response(status, body, headers, paged=bool(next_page_token))
            if verdict.outcome is Outcome.OK:
                page = _parse_page(body, stream.endpoint.records_field)
                if page is not None:
                    log.debug("%s: %d records (tracking id %s)", what, len(page[0]), tracking or "-")
                    return Page(page[0], page[1], seconds)
                verdict = Verdict(Outcome.RETRY, f"HTTP 200 without an {stream.endpoint.records_field} list")
            if verdict.outcome is Outcome.RENEW_TOKEN and not renewed:
                log.info("access token refused (%s); renewing it once", verdict.reason)
                self._drop_token(used)
                renewed = True
                attempt -= 1
                continue
            suffix = f" (x-zm-trackingid {tracking})" if tracking else ""
            self._raise_unless_retried(verdict, stream, what, url, suffix)
            if attempt >= MAX_ATTEMPTS:
                raise ApiError(f"{what} failed after {attempt} attempts: {verdict.reason}{suffix}; progress is kept")
            self._wait_before_retry(self._retry_wait(verdict, attempt), what, verdict.reason + suffix)

    def _retry_wait(self, verdict: Verdict, attempt: int) -> float:
        """Seconds before retry number ``attempt``: what Zoom asked for plus jitter, else the backoff."""
        if verdict.wait is not None:
            return verdict.wait + self._rng.uniform(0, 1)
        return backoff_delay(attempt, self._rng)

    def _raise_unless_retried(self, verdict: Verdict, stream: Stream, what: str, url: str, suffix: str) -> None:
        """Raise what a report answer means unless it is retried (``what`` names the request)."""
        match verdict.outcome:
            case Outcome.RENEW_TOKEN | Outcome.AUTH:
                raise AuthError(permission_message(stream, verdict) + suffix)
            case Outcome.DAILY_LIMIT:
                when = f"; the quota resets at {verdict.reset_at or '00:00 UTC'}"
                msg = f"Zoom's daily request limit for this account is reached{when}{suffix}"
                raise DailyLimitError(msg)
            case Outcome.PAGE_TOKEN:
                raise PageTokenExpiredError(verdict.reason)
            case Outcome.WRONG_URL:
                msg = (
                    f"{what}: {url} answered {verdict.reason}: {label('api_url')} {self._config.api_url} "
                    f"is not Zoom's API; it ends in /v2, e.g. {DEFAULT_API_URL} (the default){suffix}"
                )
                raise ConfigError(msg)
            case Outcome.INVALID:
                raise InvalidRequestError(f"{what}: Zoom refused the request ({verdict.reason}){suffix}", verdict.code)


class StreamPages:
    """One stream's pages from a shared client: the engine's page source.

    A refusal on page one that is the fault of a stream's own setting (an unknown category) is a
    configuration error, not something the engine can learn from.
    """

    def __init__(self, client: ZoomClient, stream: Stream) -> None:
        self.client = client
        self.stream = stream

    @property
    def counters(self) -> Counters:
        """The shared client's request counters."""
        return self.client.counters

    def set_deadline(self, deadline: float | None) -> None:
        """No retry is waited for past this monotonic time."""
        self.client.deadline = deadline

    def get_page(self, window: Window, next_page_token: str = "", page_size: int = PAGE_SIZE) -> Page:
        """One page of the stream's report."""
        try:
            return self.client.get_page(self.stream, window, next_page_token, page_size)
        except InvalidRequestError as exc:
            message = None if next_page_token else self.stream.refused(self.client.config, str(exc))
            if message:
                raise ConfigError(message) from None
            raise


def permission_message(stream: Stream, verdict: Verdict) -> str:
    """What to change when Zoom refuses access to ``stream``'s report."""
    if verdict.code in (ZoomCode.MISSING_SCOPE, ZoomCode.MISSING_SCOPE_GRANULAR):
        granular, classic = stream.endpoint.scopes[0], stream.endpoint.scopes[-1]
        return (
            f"the app lacks the scope to read {stream.title} ({verdict.reason}); add "
            f"{granular} (granular) or {classic} (classic) to the "
            "Server-to-Server OAuth app's scopes and activate it again"
        )
    if verdict.code == ZoomCode.NO_PERMISSION:
        return (
            f"Zoom says no permission ({verdict.reason}): {stream.title} need a Pro or higher plan, "
            f"Zoom Reporting enabled, and the app owner's role must allow {stream.endpoint.permission}"
        )
    if verdict.code == ZoomCode.INVALID_TOKEN:
        return (
            f"Zoom refused a freshly issued access token ({verdict.reason}); check that the "
            "app is activated and that no other process uses the same app's tokens"
        )
    return f"Zoom refused access ({verdict.reason}); check the app's scopes and the owner's role"


def _parse_page(body: Any, records_field: str) -> tuple[list[Any], str] | None:
    if not isinstance(body, dict):
        return None
    logs = body.get(records_field)
    if records_field not in body and ("next_page_token" in body or "page_size" in body):
        logs = []  # an empty result may come without the list
    if not isinstance(logs, list):
        return None
    token = body.get("next_page_token") or ""
    return logs, token if isinstance(token, str) else ""
