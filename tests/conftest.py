"""Shared fixtures: a fake clock that never sleeps, and a pytest-httpserver Zoom double."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from pytest_httpserver import HTTPServer
from unprivileged import open_directory
from werkzeug import Request, Response

from zoom_oplog_shipper.cli import main
from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import Config

if TYPE_CHECKING:
    from zoom_oplog_shipper.simulator import Simulator

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
SECRET = "s3cr3t-Value-that-must-never-leak"


def pytest_configure(config: pytest.Config) -> None:
    """Coverage's floor (fail_under, pyproject.toml) holds for the whole suite, `pytest` as CI runs it:
    a run of some files, or with -k or -m, reports its coverage without being held to the floor."""
    selected = config.args_source != pytest.Config.ArgsSource.TESTPATHS or config.option.keyword
    plugin = config.pluginmanager.getplugin("_cov")
    if plugin is not None and (selected or config.option.markexpr):
        plugin.options.cov_fail_under = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Chaos tests are not measured for coverage (tests/chaos.py says why), when coverage runs at all:
    a `no_cover` test fails under `--no-cov` (pytest-cov issue #590, open in 7.1.0)."""
    if config.pluginmanager.getplugin("_cov") is None or config.getoption("no_cov", default=False):
        return
    for item in items:
        if item.get_closest_marker("chaos") is not None:
            item.add_marker(pytest.mark.no_cover)


class FakeClock(Clock):
    """Wall and monotonic time that only move when the code sleeps or the test says so."""

    def __init__(self, now: datetime = NOW) -> None:
        self._now = now
        self._mono = 1000.0
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Canned:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeZoom:
    """A small Zoom double on pytest-httpserver: newest first, `to` inclusive, UTC days.

    Canned answers queued with ``fail`` are served before the normal ones, so a test can script
    errors precisely; the project's simulator covers the rest in the engine tests.
    """

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.records: list[dict[str, Any]] = []
        self.canned: list[Canned] = []
        self.requests: list[dict[str, str]] = []
        self.token_requests = 0
        self.valid_tokens: set[str] = set()
        self.scope = "report:read:operation_logs:admin"
        self.on_page: Callable[[dict[str, str]], None] | None = None
        self.newest_first = True
        self.scheduled: dict[int, list[Canned]] = {}
        self.reject_future_to_after: str | None = None  # "today" as the server sees it
        server.expect_request("/oauth/token", method="POST").respond_with_handler(self._token)
        server.expect_request("/v2/report/operationlogs", method="GET").respond_with_handler(self._logs)

    @property
    def base(self) -> str:
        return self.server.url_for("").rstrip("/")

    def fail(self, status: int, body: Any = None, headers: dict[str, str] | None = None, times: int = 1) -> None:
        for _ in range(times):
            self.canned.append(Canned(status, body, headers or {}))

    def fail_at(
        self, request: int, status: int, body: Any = None, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """Answer the ``request``-th operation-logs request (1-based) and ``times - 1`` after it with an error."""
        self.scheduled[request] = [Canned(status, body, headers or {})] * times

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        return Response(data, status=status, headers={"content-type": "application/json", **(headers or {})})

    def _token(self, request: Request) -> Response:
        self.token_requests += 1
        expected = base64.b64encode(f"client-id:{SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return self._json(400, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"})
        account = request.form.get("account_id") or request.args.get("account_id")
        if account != "acct-1":
            return self._json(400, {"reason": "Account does not exist", "error": "invalid_request"})
        token = f"tok-{self.token_requests}"
        self.valid_tokens.add(token)
        return self._json(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600, "scope": self.scope})

    def _logs(self, request: Request) -> Response:
        args = dict(request.args)
        self.requests.append(args)
        if self.on_page:
            self.on_page(args)
        self.canned[:0] = self.scheduled.pop(len(self.requests), [])
        if self.canned:
            c = self.canned.pop(0)
            return self._json(c.status, c.body if c.body is not None else b"", c.headers)
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid_tokens:
            return self._json(401, {"code": 124, "message": "Invalid access token."})
        start, end = args["from"], args["to"]
        if self.reject_future_to_after and end > self.reject_future_to_after:
            return self._json(400, {"code": 300, "message": "The to date cannot be in the future."})
        rows = [r for r in self.records if not isinstance(r.get("time"), str) or start <= r["time"][:10] <= end]
        rows.sort(key=lambda r: str(r.get("time", "")), reverse=self.newest_first)
        size = int(args.get("page_size", 30))
        offset = int(args.get("next_page_token") or 0)
        page = rows[offset : offset + size]
        nxt = str(offset + size) if offset + size < len(rows) else ""
        return self._json(200, {"next_page_token": nxt, "page_size": size, "operation_logs": page})


@pytest.fixture
def zoom(httpserver: HTTPServer) -> Iterator[FakeZoom]:
    yield FakeZoom(httpserver)


class Run:
    """What one in-process command line run returned: exit code, stdout bytes, stderr text."""

    def __init__(self, code: int, out: bytes, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def docs(self) -> list[dict[str, Any]]:
        """The stdout lines as JSON documents."""
        return [orjson.loads(line) for line in self.out.splitlines()]


def cli(argv: list[str], env: dict[str, str], clock: FakeClock | None = None) -> Run:
    """``main(argv)`` in-process with ``env`` and a clock that never sleeps."""
    out, err = io.BytesIO(), io.StringIO()
    code = main(argv, env=env, stdout=out, stderr=err, clock=clock or FakeClock())
    return Run(code, out.getvalue(), err.getvalue())


def cli_env(zoom: FakeZoom, state_dir: Path, xdg: Path) -> dict[str, str]:
    """The command line's environment against the Zoom double: its account and URLs, no rate limit."""
    return {
        "ZOOM_ACCOUNT_ID": "acct-1",
        "ZOOM_CLIENT_ID": "client-id",
        "ZOOM_CLIENT_SECRET": SECRET,
        "ZOOM_API_URL": f"{zoom.base}/v2",
        "ZOOM_OAUTH_URL": f"{zoom.base}/oauth/token",
        "ZOOM_OPLOG_STATE_DIR": str(state_dir),
        "ZOOM_OPLOG_MAX_RPS": "0",
        "XDG_CONFIG_HOME": str(xdg),
    }


@pytest.fixture
def env(tmp_path: Path, zoom: FakeZoom) -> dict[str, str]:
    """``cli_env`` with the state and XDG config directories in the test's own tmp_path."""
    return cli_env(zoom, tmp_path / "state", tmp_path / "xdg")


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory the unprivileged user can reach, removed afterwards."""
    with open_directory() as base:
        yield base


def simulator_env(sim: Simulator, base_url: str, tmp_path: Path) -> dict[str, str]:
    """The command line's environment against a served simulator: its credentials and URLs, no rate
    limit, the state and XDG config directories in ``tmp_path``."""
    return {
        "ZOOM_ACCOUNT_ID": sim.config.account_id,
        "ZOOM_CLIENT_ID": sim.config.client_id,
        "ZOOM_CLIENT_SECRET": sim.config.client_secret,
        "ZOOM_API_URL": f"{base_url}/v2",
        "ZOOM_OAUTH_URL": f"{base_url}/oauth/token",
        "ZOOM_OPLOG_STATE_DIR": str(tmp_path / "state"),
        "ZOOM_OPLOG_MAX_RPS": "0",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }


def make_config(tmp_path: Any, base: str, **overrides: Any) -> Config:
    values: dict[str, Any] = {
        "account_id": "acct-1",
        "client_id": "client-id",
        "client_secret": SECRET,
        "state_dir": tmp_path / "state",
        "api_url": f"{base}/v2",
        "oauth_url": f"{base}/oauth/token",
        "max_rps": 0.0,
    }
    values.update(overrides)
    return Config(**values)


def record(time: str, detail: str = "Add User a@example.com", **extra: Any) -> dict[str, Any]:
    rec = {
        "time": time,
        "operator": "admin@example.com",
        "category_type": "User",
        "action": "Add",
        "operation_detail": detail,
    }
    rec.update(extra)
    return rec


@pytest.fixture(params=["1", "3"], ids=["one-window", "three-windows"])
def concurrency(request: pytest.FixtureRequest) -> str:
    """`--concurrency` for scenarios that must hold one window at a time and with the default three."""
    return str(request.param)
