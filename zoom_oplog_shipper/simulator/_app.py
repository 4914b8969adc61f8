"""The Simulator: a WSGI app playing Zoom's token and report endpoints, plus /_sim/ admin."""

from __future__ import annotations

import base64
import binascii
import calendar
import hmac
import os
import random
import re
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

import orjson

from zoom_oplog_shipper.simulator._config import (
    DEFAULT_FAIL_KINDS,
    FAULT_KINDS,
    FaultRule,
    SimulatorConfig,
    parse_duration,
    parse_fault_schedule,
)
from zoom_oplog_shipper.simulator._data import (
    CATEGORY_FILTERS,
    RecordStore,
    category_key,
    day_start_epoch,
    decode_records,
    load_jsonl,
    parse_record_time,
)
from zoom_oplog_shipper.simulator._endpoints import (
    ACTIVITIES,
    BY_LABEL,
    BY_PATH,
    ENDPOINTS,
    OPERATIONS,
    ReportEndpoint,
    endpoint_for_stream,
)
from zoom_oplog_shipper.simulator._incidents import Scenario, incident_scenario

TOKEN_PATH = "/oauth/token"
LOGS_PATH = OPERATIONS.path
ACTIVITIES_PATH = ACTIVITIES.path

RETENTION_MESSAGE = "Daily report can only be provided within 6 months prior to the current date."
PAGE_TOKEN_MESSAGE = "The next page token is invalid or expired."
QPS_MESSAGE = "You have reached the maximum per-second rate limit for this API. Try again later."
DAILY_MESSAGE = (
    "You have reached the maximum daily rate limit for this API. Refer to the response header "
    "for details on when you can make another request."
)

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_JSON = ("Content-Type", "application/json;charset=UTF-8")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ALNUM = string.ascii_letters + string.digits
_MAX_BODY = 1 << 30


class SimulatedDisconnectError(Exception):
    """Raised by the WSGI app when a fault asks to drop the connection.

    The simulator's own server closes the socket without a response (``drop``) or mid-body
    (``cut``). An in-process caller of ``Simulator.app`` sees this exception instead.
    """


@dataclass
class Response:
    """One HTTP response as the app will send it."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    cut: bool = False


@dataclass
class _Run:
    """The snapshot of one paged query, taken at its first page."""

    key: tuple[str, str, str, str]
    blobs: list[bytes]
    expires_at: float


@dataclass
class _PageToken:
    run_id: int
    offset: int
    expires_at: float


@dataclass
class _Query:
    start: date
    end: date
    category: str
    page_size: int
    token: str | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json(status: int, payload: object, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, orjson.dumps(payload), [_JSON, *(headers or [])])


def _zoom_error(status: int, code: int, message: str, **extra: object) -> Response:
    return _json(status, {"code": code, "message": message, **extra})


def _limit_429(kind: str, message: str, limit: int, *extra: tuple[str, str]) -> Response:
    """Zoom's 429 for a used-up rate limit of type ``kind`` (``QPS``, ``Daily-limit``)."""
    headers = [
        ("X-RateLimit-Category", "Heavy"),
        ("X-RateLimit-Type", kind),
        ("X-RateLimit-Limit", str(limit)),
        ("X-RateLimit-Remaining", "0"),
        *extra,
    ]
    return _json(429, {"code": 429, "message": message}, headers)


def _validation(field_name: str, message: str) -> Response:
    return _zoom_error(400, 300, "Validation Failed.", errors=[{"field": field_name, "message": message}])


def _oauth_error(status: int, reason: str, error: str) -> Response:
    return _json(status, {"reason": reason, "error": error})


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole calendar months, clamped to the target month's last day."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year = day.year + years
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def _first(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _read_body(environ: WSGIEnvironment) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    data: bytes = environ["wsgi.input"].read(min(length, _MAX_BODY))
    return data


def _cut(body: bytes) -> Iterator[bytes]:
    yield body[: max(1, len(body) // 2)]
    msg = "simulated connection cut mid-body"
    raise SimulatedDisconnectError(msg)


class Simulator:
    """Zoom's ``POST /oauth/token``, ``GET /v2/report/operationlogs`` and ``GET /v2/report/activities``.

    The two report endpoints differ only by their declaration (``_endpoints.py``): each has its
    own records, and shares every switch, limit, fault and page-token rule with the other.

    ``now`` returns the simulator clock (aware UTC); ``sleep`` performs slow-response delays. Both
    are injectable so tests control expiry, lateness and delays without real waiting. ``app`` is
    the WSGI callable; it is thread-safe.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """Build the simulator and load its initial records (``records_file``, then generated)."""
        self.config = config or SimulatorConfig()
        self._now = now or _utcnow
        self._sleep = sleep or time.sleep
        self._lock = threading.Lock()
        seed = self.config.seed
        # One random stream per record set: activities never shift the operations' late records.
        self._late_rngs = {
            OPERATIONS.stream: random.Random(f"late:{seed}"),
            ACTIVITIES.stream: random.Random(f"late:activities:{seed}"),
        }
        self._fault_rng = random.Random(f"faults:{seed}")
        self._stores = {endpoint.stream: RecordStore() for endpoint in ENDPOINTS}
        self._store = self._stores[OPERATIONS.stream]
        self._tokens: dict[str, float] = {}
        self._client_disabled = False
        self._runs: dict[int, _Run] = {}
        self._next_run = 0
        self._page_tokens: dict[str, _PageToken] = {}
        self._snapshot_records = 0
        self._rules: list[FaultRule] = list(self.config.fault_rules)
        self._fail_rate = self.config.fail_rate
        self._fail_kinds: tuple[str, ...] = self.config.fail_kinds
        self._slow_rate = self.config.slow_rate
        self._slow_seconds = self.config.slow_seconds
        self._slow_before = self.config.slow_before
        self._counts = {"api": 0, "token": 0, **{endpoint.label: 0 for endpoint in ENDPOINTS}}
        self._qps_second = -1
        self._qps_used = 0
        self._daily_day: date | None = None
        self._daily_used = 0
        self._requests: dict[str, Counter[str]] = {}
        self._faults: Counter[str] = Counter()
        self._rate_limited: Counter[str] = Counter()
        self._tokens_issued = 0
        self._tokens_revoked = 0
        self._pages_served: Counter[str] = Counter()
        self._records_served: Counter[str] = Counter()
        self.app: Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]] = self._wsgi
        cfg = self.config
        #: The incidents scenario being served (``scenario="incidents"``): its records and ground truth.
        self.scenario: Scenario | None = None
        if cfg.scenario == "incidents":
            self.scenario = incident_scenario(seed, self._now())
        for endpoint, path, per_day in (
            (OPERATIONS, cfg.records_file, cfg.records_per_day),
            (ACTIVITIES, cfg.activities_file, cfg.activities_per_day),
        ):
            if path:
                self.add_records(load_jsonl(path), stream=endpoint.stream)
            if self.scenario is not None:
                self._ingest(endpoint, _timed(self.scenario.records(endpoint.stream)), None)
            elif cfg.days and per_day:
                self._ingest(endpoint, endpoint.generate(seed, cfg.days, per_day, self._now()), None)

    # ------------------------------------------------------------------ Python API

    def now(self) -> datetime:
        """The simulator clock."""
        return self._now()

    def add_records(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        late_by: float | None = None,
        stream: str = OPERATIONS.stream,
    ) -> int:
        """Add records to ``stream`` (``operations`` or ``activities``); returns how many.

        Each needs an ISO ``time``; other fields are kept as given. ``late_by=None`` applies the
        configured ``late_fraction``/``late_by``; a number makes every one of these records visible
        only ``late_by`` seconds after its ``time``. A record whose ``time`` is in the future
        becomes visible at that time.
        """
        endpoint = endpoint_for_stream(stream)
        return self._ingest(endpoint, ((parse_record_time(r.get("time")), r) for r in records), late_by)

    def _ingest(
        self, endpoint: ReportEndpoint, pairs: Iterable[tuple[int, Mapping[str, Any]]], late_by: float | None
    ) -> int:
        # Serialize each record as soon as it is seen: while it is still in the CPU cache.
        fraction = self.config.late_fraction
        default_delay = self.config.late_by
        chance = self._late_rngs[endpoint.stream].random
        dumps = orjson.dumps
        filtered = endpoint.category_filter
        with self._lock:
            items: list[tuple[int, bytes, str | None, float]] = []
            for epoch, record in pairs:
                delay = late_by
                if delay is None:
                    delay = default_delay if fraction > 0 and chance() < fraction else 0.0
                category = category_key(record.get("category_type")) if filtered else None
                # orjson's result keeps a ~4 KiB allocation; a right-sized copy cuts memory ~10x.
                blob = bytes(memoryview(dumps(record)))
                items.append((epoch, blob, category, epoch + delay))
            return self._stores[endpoint.stream].add(items, self._now().timestamp())

    def records(self, visible_only: bool = False, stream: str = OPERATIONS.stream) -> list[dict[str, Any]]:
        """All records of ``stream`` (or those visible now), by time ascending, as the API returns them."""
        return [orjson.loads(blob) for blob in self._blobs(visible_only, stream)]

    def records_jsonl(self, visible_only: bool = False, stream: str = OPERATIONS.stream) -> bytes:
        """Like ``records`` but as JSONL bytes (one record a line)."""
        return b"".join(blob + b"\n" for blob in self._blobs(visible_only, stream))

    def _blobs(self, visible_only: bool, stream: str) -> list[bytes]:
        store = self._stores[endpoint_for_stream(stream).stream]
        with self._lock:
            store.release(self._now().timestamp())
            return store.blobs(visible_only)

    def revoke_tokens(self, disable_client: bool = False) -> int:
        """Invalidate every access token issued so far; returns how many were live.

        With ``disable_client`` the client credentials stop working too (the app was disabled):
        every later token request fails with ``invalid_client``.
        """
        with self._lock:
            if disable_client:
                self._client_disabled = True
            return self._revoke_locked()

    def set_faults(
        self,
        schedule: str | None = None,
        *,
        relative: bool = False,
        fail_rate: float | None = None,
        fail_kinds: Iterable[str] | None = None,
        slow_rate: float | None = None,
        slow_seconds: float | None = None,
        slow_before: str | None = None,
    ) -> None:
        """Replace the fault schedule and/or probabilities at run time.

        ``schedule`` uses the ``fail_schedule`` syntax; with ``relative`` its numbers count from
        the next request (``1`` is the next one). None leaves a setting unchanged.
        """
        kinds = tuple(fail_kinds) if fail_kinds is not None else None
        if kinds is not None and (not kinds or any(k not in FAULT_KINDS for k in kinds)):
            msg = f"fail_kinds must be a non-empty subset of {', '.join(FAULT_KINDS)}"
            raise ValueError(msg)
        for name, value in (("fail_rate", fail_rate), ("slow_rate", slow_rate)):
            if value is not None and not 0.0 <= value <= 1.0:
                msg = f"{name} must be between 0 and 1, not {value}"
                raise ValueError(msg)
        if slow_seconds is not None and slow_seconds < 0:
            msg = "slow_seconds must not be negative"
            raise ValueError(msg)
        with self._lock:
            if schedule is not None:
                offsets = dict(self._counts) if relative else None
                self._rules = list(parse_fault_schedule(schedule, offsets))
            if fail_rate is not None:
                self._fail_rate = fail_rate
            if kinds is not None:
                self._fail_kinds = kinds
            if slow_rate is not None:
                self._slow_rate = slow_rate
            if slow_seconds is not None:
                self._slow_seconds = slow_seconds
            if slow_before is not None:
                self._slow_before = slow_before

    def faults(self) -> dict[str, Any]:
        """The fault settings in force."""
        with self._lock:
            return {
                "schedule": ",".join(f"{r.endpoint}:{r.first}-{r.last}={r.kind}" for r in self._rules),
                "fail_rate": self._fail_rate,
                "fail_kinds": list(self._fail_kinds),
                "slow_rate": self._slow_rate,
                "slow_seconds": self._slow_seconds,
                "slow_before": self._slow_before,
            }

    def stats(self) -> dict[str, Any]:
        """Counters: ``requests[endpoint][status]`` (endpoint ``token``, ``logs``, ``activities``,
        ``admin``, ``other``; status an HTTP code as a string, or ``drop`` when the connection was
        dropped), tokens issued and revoked, pages and records served (all report endpoints),
        faults injected by kind, 429s by type, record counts (``records_*``: the operation logs),
        and ``streams``: per record set, its record counts and the pages and records it served.
        """
        now_ts = self._now().timestamp()
        with self._lock:
            streams: dict[str, dict[str, int]] = {}
            for endpoint in ENDPOINTS:
                store = self._stores[endpoint.stream]
                store.release(now_ts)
                streams[endpoint.stream] = {
                    "records_total": len(store),
                    "records_visible": store.visible_count,
                    "pages_served": self._pages_served[endpoint.stream],
                    "records_served": self._records_served[endpoint.stream],
                }
            return {
                "requests": {ep: dict(c) for ep, c in self._requests.items()},
                "api_requests": self._counts["api"],
                "token_requests": self._counts["token"],
                "logs_requests": self._counts["logs"],
                "activities_requests": self._counts["activities"],
                "tokens_issued": self._tokens_issued,
                "tokens_revoked": self._tokens_revoked,
                "pages_served": self._pages_served.total(),
                "records_served": self._records_served.total(),
                "faults": dict(self._faults),
                "rate_limited": dict(self._rate_limited),
                "records_total": len(self._store),
                "records_visible": self._store.visible_count,
                "page_tokens_live": len(self._page_tokens),
                "snapshots_live": len(self._runs),
                "streams": streams,
            }

    # ------------------------------------------------------------------ WSGI

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        response = self._dispatch(environ)
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        start_response(f"{response.status} {_REASONS.get(response.status, 'Unknown')}", headers)
        if response.cut:
            return _cut(response.body)
        return [response.body]

    def _dispatch(self, environ: WSGIEnvironment) -> Response:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO") or "/")
        query = str(environ.get("QUERY_STRING") or "")
        body = _read_body(environ)
        tracking = f"v=2.0;clid=sim;rid=WEB_{os.urandom(16).hex()}"
        if path.startswith("/_sim/"):
            response = self._admin(method, path, query, body)
            label = "admin"
        elif path == TOKEN_PATH or path in BY_PATH:
            label = endpoint = "token" if path == TOKEN_PATH else BY_PATH[path].label
            try:
                response = self._api(endpoint, method, environ, query, body)
            except SimulatedDisconnectError:
                self._count(label, "drop")
                raise
        else:
            label = "other"
            response = _zoom_error(404, 404, f"No such API: {method} {path}.")
        response.headers.append(("x-zm-trackingid", tracking))
        self._count(label, str(response.status))
        return response

    def _count(self, label: str, status: str) -> None:
        with self._lock:
            self._requests.setdefault(label, Counter())[status] += 1

    # ------------------------------------------------------------------ faults

    def _api(  # noqa: C901 - Zoom's answers in the order Zoom checks a request, one branch each
        self, endpoint: str, method: str, environ: WSGIEnvironment, query: str, body: bytes
    ) -> Response:
        with self._lock:
            self._counts["api"] += 1
            self._counts[endpoint] += 1
            numbers = {"api": self._counts["api"], endpoint: self._counts[endpoint]}
            kind = next((r.kind for r in self._rules if r.matches(numbers)), None)
            rng = self._fault_rng
            if kind is None and self._fail_rate and rng.random() < self._fail_rate:
                kind = rng.choice(self._fail_kinds)
            slow = kind == "slow" or bool(self._slow_rate and rng.random() < self._slow_rate)
            slow = slow or bool(self._slow_before and "from=" in query and _from_day(query) < self._slow_before)
            delay = self._slow_seconds
            if kind is not None:
                self._faults[kind] += 1
            elif slow:
                self._faults["slow"] += 1
            if kind == "revoke":
                self._revoke_locked()
            elif kind == "expire":
                self._page_tokens.clear()
        if slow:
            self._sleep(delay)
        if kind == "drop":
            msg = "simulated dropped connection"
            raise SimulatedDisconnectError(msg)
        if kind == "500":
            return _zoom_error(500, 500, "Internal Server Error.")
        if kind in ("502", "503"):
            status = int(kind)
            page = f"<html><head><title>{status} {_REASONS[status]}</title></head><body>"
            page += f"<center><h1>{status} {_REASONS[status]}</h1></center></body></html>\n"
            return Response(status, page.encode(), [("Content-Type", "text/html")])
        if kind == "html":
            page = "<!DOCTYPE html><html><head><title>Zoom</title></head><body>"
            page += "<h1>We're sorry, this page is temporarily unavailable.</h1></body></html>\n"
            return Response(200, page.encode(), [("Content-Type", "text/html;charset=UTF-8")])
        if kind == "qps":
            with self._lock:
                self._rate_limited["QPS"] += 1
            return self._qps_429(self.config.qps_limit or 10)
        if kind == "daily":
            with self._lock:
                self._rate_limited["Daily-limit"] += 1
            return self._daily_429(self.config.daily_limit or 30_000, self._now())
        if endpoint == "token":
            response = self._token(method, environ, query, body)
        else:
            response = self._report(BY_LABEL[endpoint], method, environ, query)
        if kind == "truncate":
            response.body = response.body[: max(1, len(response.body) // 2)]
        elif kind == "cut":
            response.cut = True
        return response

    def _revoke_locked(self) -> int:
        live = len(self._tokens)
        self._tokens.clear()
        self._tokens_revoked += live
        return live

    # ------------------------------------------------------------------ OAuth

    def _token(self, method: str, environ: WSGIEnvironment, query: str, body: bytes) -> Response:
        cfg = self.config
        if method != "POST":
            return _oauth_error(405, "Method Not Allowed", "invalid_request")
        params = parse_qs(query, keep_blank_values=True)
        if body:
            params.update(parse_qs(body.decode("latin-1"), keep_blank_values=True))
        creds = _basic_credentials(str(environ.get("HTTP_AUTHORIZATION", "")))
        ok = (
            creds is not None
            and hmac.compare_digest(creds[0].encode(), cfg.client_id.encode())
            and hmac.compare_digest(creds[1].encode(), cfg.client_secret.encode())
        )
        if not ok:
            return _oauth_error(cfg.invalid_client_status, "Invalid client_id or client_secret", "invalid_client")
        if self._client_disabled:
            return _oauth_error(cfg.invalid_client_status, "The app has been disabled", "invalid_client")
        grant = _first(params, "grant_type")
        if not grant:
            return _oauth_error(400, "Missing grant type", "invalid_request")
        if grant != "account_credentials":
            return _oauth_error(400, "Unsupported grant type", "unsupported_grant_type")
        account = _first(params, "account_id")
        if not account:
            return _oauth_error(400, "Missing account_id", "invalid_request")
        if account != cfg.account_id:
            return _oauth_error(400, "Account does not exist", "invalid_request")
        token = _fake_jwt()
        with self._lock:
            if cfg.single_token:
                self._tokens.clear()
            self._purge_access_tokens()
            self._tokens[token] = self._now().timestamp() + cfg.token_ttl
            self._tokens_issued += 1
        api_url = cfg.api_url or _base_url(environ)
        return _json(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": cfg.token_ttl,
                "scope": cfg.scope,
                "api_url": api_url,
            },
            [("Cache-Control", "no-store")],
        )

    def _purge_access_tokens(self) -> None:
        if len(self._tokens) < 10_000:
            return
        horizon = self._now().timestamp() - 86400
        for token in [t for t, exp in self._tokens.items() if exp < horizon]:
            del self._tokens[token]

    # ------------------------------------------------------------------ the report

    def _report(self, endpoint: ReportEndpoint, method: str, environ: WSGIEnvironment, query: str) -> Response:
        cfg = self.config
        if method != "GET":
            return _zoom_error(405, 405, f"Method {method} is not allowed for this API.")
        now = self._now()
        now_ts = now.timestamp()
        auth = str(environ.get("HTTP_AUTHORIZATION", ""))
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        with self._lock:
            expires = self._tokens.get(token) if token else None
        if expires is None:
            return _zoom_error(cfg.invalid_token_status, 124, "Invalid access token.")
        if now_ts >= expires:
            return _zoom_error(cfg.invalid_token_status, 124, "Access token is expired.")
        if cfg.no_permission:
            return _zoom_error(400, 200, "No permission.")
        granted = cfg.scope.split()
        if not any(scope in granted for scope in endpoint.scopes):
            wanted = ", ".join(endpoint.scopes)
            message = f"Invalid access token, does not contain scopes:[{wanted}]."
            return _zoom_error(400, 4700, message)
        limited, headers = self._rate_limit(now)
        if limited is not None:
            return limited
        parsed = self._parse_query(query, now, endpoint.category_filter)
        if isinstance(parsed, Response):
            parsed.headers.extend(headers)
            return parsed
        return self._page(endpoint, parsed, now_ts, headers)

    def _rate_limit(self, now: datetime) -> tuple[Response | None, list[tuple[str, str]]]:
        """Check and count the daily and per-second limits; returns (429 or None, headers)."""
        cfg = self.config
        headers: list[tuple[str, str]] = []
        with self._lock:
            if cfg.daily_limit is not None:
                today = now.astimezone(UTC).date()
                if self._daily_day != today:
                    self._daily_day, self._daily_used = today, 0
                if self._daily_used >= cfg.daily_limit:
                    self._rate_limited["Daily-limit"] += 1
                    return self._daily_429(cfg.daily_limit, now), headers
            if cfg.qps_limit is not None:
                second = int(now.timestamp())
                if self._qps_second != second:
                    self._qps_second, self._qps_used = second, 0
                if self._qps_used >= cfg.qps_limit:
                    self._rate_limited["QPS"] += 1
                    return self._qps_429(cfg.qps_limit), headers
                self._qps_used += 1
            if cfg.daily_limit is not None:
                self._daily_used += 1
                headers = [
                    ("X-RateLimit-Category", "Heavy"),
                    ("X-RateLimit-Limit", str(cfg.daily_limit)),
                    ("X-RateLimit-Remaining", str(cfg.daily_limit - self._daily_used)),
                ]
        return None, headers

    @staticmethod
    def _qps_429(limit: int) -> Response:
        return _limit_429("QPS", QPS_MESSAGE, limit)

    @staticmethod
    def _daily_429(limit: int, now: datetime) -> Response:
        utc = now.astimezone(UTC)
        reset = datetime(utc.year, utc.month, utc.day, tzinfo=UTC) + timedelta(days=1)
        return _limit_429("Daily-limit", DAILY_MESSAGE, limit, ("Retry-After", reset.strftime("%Y-%m-%dT%H:%M:%SZ")))

    def _parse_query(  # noqa: C901 - one refusal per query parameter, in the order Zoom checks them
        self, query: str, now: datetime, category_filter: bool
    ) -> _Query | Response:
        cfg = self.config
        params = parse_qs(query, keep_blank_values=True)
        days: dict[str, date] = {}
        for name in ("from", "to"):
            raw = _first(params, name)
            if not raw:
                return _validation(name, f"The '{name}' date is required (yyyy-mm-dd).")
            try:
                if not _DATE_RE.match(raw):
                    raise ValueError(raw)
                days[name] = date.fromisoformat(raw)
            except ValueError:
                return _validation(name, f"Invalid date '{raw}': use the format yyyy-mm-dd.")
        # An endpoint without category_type ignores one, as Zoom ignores unknown parameters.
        category = (_first(params, "category_type") if category_filter else None) or "all"
        if category not in CATEGORY_FILTERS:
            message = f"Invalid category_type: '{category}'. Use one of: {', '.join(CATEGORY_FILTERS)}."
            return _zoom_error(400, 300, message, errors=[{"field": "category_type", "message": message}])
        page_size = 30
        raw_size = _first(params, "page_size")
        if raw_size:
            if not raw_size.isdigit() or int(raw_size) < 1:
                return _validation("page_size", f"Invalid page_size '{raw_size}'.")
            page_size = int(raw_size)
            if page_size > cfg.max_page_size:
                if cfg.page_size_over_max == "reject":
                    return _validation("page_size", f"The page_size must be between 1 and {cfg.max_page_size}.")
                page_size = cfg.max_page_size
        start, end = days["from"], days["to"]
        if end < start:
            return _zoom_error(400, 300, "The 'to' date must not be earlier than the 'from' date.")
        if cfg.max_range_days is not None:
            limit = start + timedelta(days=cfg.max_range_days - 1)
        else:
            limit = add_months(start, 1) - timedelta(days=1)
        if end > limit:
            return _zoom_error(400, 300, "The date range between 'from' and 'to' must not exceed one month.")
        today = (now.astimezone(UTC) + timedelta(minutes=cfg.tz_offset_minutes)).date()
        if start < add_months(today, -cfg.retention_months):
            return _zoom_error(400, 300, RETENTION_MESSAGE)
        if cfg.future_to == "reject" and end > today:
            return _zoom_error(400, 300, "The 'to' date must not be later than the current date.")
        return _Query(start, end, category, page_size, _first(params, "next_page_token") or None)

    def _page(self, endpoint: ReportEndpoint, q: _Query, now_ts: float, headers: list[tuple[str, str]]) -> Response:
        cfg = self.config
        store = self._stores[endpoint.stream]
        key = (endpoint.stream, q.start.isoformat(), q.end.isoformat(), q.category)
        with self._lock:
            store.release(now_ts)
            self._purge_runs(now_ts)
            if q.token is not None:
                token = self._page_tokens.get(q.token)
                run = self._runs.get(token.run_id) if token is not None else None
                if token is None or run is None or now_ts >= token.expires_at or run.key != key:
                    return _zoom_error(400, 300, PAGE_TOKEN_MESSAGE)
                run_id: int | None = token.run_id
                blobs, offset = run.blobs, token.offset
            else:
                start_ts = day_start_epoch(q.start, cfg.tz_offset_minutes)
                last = q.end + timedelta(days=1) if cfg.to_day == "inclusive" else q.end
                end_ts = day_start_epoch(last, cfg.tz_offset_minutes)
                blobs = store.between(start_ts, end_ts, q.category)
                if cfg.order == "newest":
                    blobs.reverse()
                run_id, offset = None, 0
            page = blobs[offset : offset + q.page_size]
            after = offset + len(page)
            next_token = ""
            if after < len(blobs):
                next_token = self._issue_page_token(run_id, key, blobs, after, now_ts)
            self._pages_served[endpoint.stream] += 1
            self._records_served[endpoint.stream] += len(page)
        parts = [b"{"]
        if cfg.echo_dates:
            parts.append(b'"from":"%s","to":"%s",' % (key[1].encode(), key[2].encode()))
        parts.append(
            b'"page_size":%d,"next_page_token":"%s","%s":['
            % (q.page_size, next_token.encode(), endpoint.records_field.encode())
        )
        parts.append(b",".join(page))
        parts.append(b"]}")
        return Response(200, b"".join(parts), [_JSON, *headers])

    def _issue_page_token(
        self,
        run_id: int | None,
        key: tuple[str, str, str, str],
        blobs: list[bytes],
        offset: int,
        now_ts: float,
    ) -> str:
        expires = now_ts + self.config.page_token_ttl
        if run_id is None or run_id not in self._runs:
            run_id = self._next_run
            self._next_run += 1
            self._runs[run_id] = _Run(key, blobs, expires)
            self._snapshot_records += len(blobs)
            self._evict_runs(keep=run_id)
        else:
            # Keep runs ordered by expiry so purging can stop at the first live one.
            run = self._runs.pop(run_id)
            run.expires_at = expires
            self._runs[run_id] = run
        token = "".join(secrets.choice(_ALNUM) for _ in range(35))
        self._page_tokens[token] = _PageToken(run_id, offset, expires)
        return token

    def _purge_runs(self, now_ts: float) -> None:
        for token_id, _ in list(_take_while_expired(self._page_tokens, now_ts)):
            del self._page_tokens[token_id]
        for run_id, run in list(_take_while_expired(self._runs, now_ts)):
            self._snapshot_records -= len(run.blobs)
            del self._runs[run_id]

    def _evict_runs(self, keep: int) -> None:
        # Bound memory: a flood of first pages over big ranges would otherwise pin many copies.
        while self._snapshot_records > self.config.max_snapshot_records and len(self._runs) > 1:
            run_id = next(iter(self._runs))
            if run_id == keep:
                break
            self._snapshot_records -= len(self._runs.pop(run_id).blobs)

    # ------------------------------------------------------------------ admin

    def _admin(self, method: str, path: str, query: str, body: bytes) -> Response:
        params = parse_qs(query, keep_blank_values=True)
        try:
            stream = _first(params, "stream") or OPERATIONS.stream
            if path == "/_sim/records" and method == "POST":
                late = _first(params, "late_by")
                added = self.add_records(
                    decode_records(body, "POST /_sim/records"),
                    late_by=parse_duration(late) if late else None,
                    stream=stream,
                )
                return _json(200, {"added": added, "total": len(self._stores[stream])})
            if path == "/_sim/records" and method == "GET":
                visible = (_first(params, "visible") or "0") not in ("0", "false", "")
                jsonl = self.records_jsonl(visible_only=visible, stream=stream)
                return Response(200, jsonl, [("Content-Type", "application/x-ndjson")])
            if path == "/_sim/stats" and method == "GET":
                return _json(200, self.stats())
            if path == "/_sim/revoke" and method == "POST":
                options = orjson.loads(body) if body.strip() else {}
                disable = bool(isinstance(options, dict) and options.get("disable_client"))
                return _json(200, {"revoked": self.revoke_tokens(disable_client=disable)})
            if path == "/_sim/faults" and method == "POST":
                options = orjson.loads(body) if body.strip() else {}
                if not isinstance(options, dict):
                    msg = "POST /_sim/faults expects a JSON object"
                    raise ValueError(msg)
                kinds = options.get("fail_kinds")
                self.set_faults(
                    options.get("schedule"),
                    relative=bool(options.get("relative", False)),
                    fail_rate=options.get("fail_rate"),
                    fail_kinds=kinds.split(",") if isinstance(kinds, str) else kinds,
                    slow_rate=options.get("slow_rate"),
                    slow_seconds=options.get("slow_seconds"),
                    slow_before=options.get("slow_before"),
                )
                return _json(200, self.faults())
            if path == "/_sim/faults" and method == "GET":
                return _json(200, self.faults())
        except (ValueError, TypeError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(404, {"error": f"no admin endpoint {method} {path}"})


def _timed(records: list[dict[str, str]]) -> Iterator[tuple[int, dict[str, str]]]:
    return ((parse_record_time(record["time"]), record) for record in records)


def _take_while_expired(items: Mapping[Any, Any], now_ts: float) -> Iterator[tuple[Any, Any]]:
    for key, value in items.items():
        if value.expires_at > now_ts:
            return
        yield key, value


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def _fake_jwt() -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"HS512","v":"2.0","kid":"sim"}').rstrip(b"=")
    return f"{header.decode()}.{secrets.token_urlsafe(96)}.{secrets.token_urlsafe(64)}"


def _base_url(environ: WSGIEnvironment) -> str:
    scheme = str(environ.get("wsgi.url_scheme", "http"))
    host = environ.get("HTTP_HOST")
    if not host:
        host = f"{environ.get('SERVER_NAME', '127.0.0.1')}:{environ.get('SERVER_PORT', '80')}"
    return f"{scheme}://{host}"


__all__ = [
    "ACTIVITIES_PATH",
    "DEFAULT_FAIL_KINDS",
    "LOGS_PATH",
    "TOKEN_PATH",
    "Response",
    "SimulatedDisconnectError",
    "Simulator",
    "add_months",
]


def _from_day(query: str) -> str:
    """The `from` day of a report query string (ISO dates compare as text)."""
    return _first(parse_qs(query), "from") or ""
