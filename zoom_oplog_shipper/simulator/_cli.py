"""The ``simulate`` subcommand: switches, and serving until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from dataclasses import fields
from types import FrameType
from typing import Any, TypeVar

from zoom_oplog_shipper.settings import number_in, switch_type
from zoom_oplog_shipper.simulator._app import Simulator
from zoom_oplog_shipper.simulator._config import (
    DEFAULT_FAIL_KINDS,
    DEFAULT_SCOPE,
    SimulatorConfig,
    parse_duration,
    parse_tz_offset,
)
from zoom_oplog_shipper.simulator._server import serve_in_thread

SECRET_ENV = "ZOOM_SIM_CLIENT_SECRET"
DEFAULT_DAYS = 7
DEFAULT_RECORDS_PER_DAY = 50
DEFAULT_ACTIVITIES_PER_DAY = 30
_T = TypeVar("_T")
_N = TypeVar("_N", int, float)


def _parse_whole_seconds(text: str) -> int:
    value = parse_duration(text)
    if value < 1:
        msg = f"{text!r} must be at least 1 second"
        raise ValueError(msg)
    return int(value)


_seconds = switch_type(parse_duration)
_limit = switch_type(number_in(int, 1, 2**31 - 1, "a whole number from 1 (leave the switch out for no limit)"))
_port = switch_type(number_in(int, 0, 65535, "a port; use 0-65535 (0 picks a free one)"))
_whole_seconds = switch_type(_parse_whole_seconds)
_tz = switch_type(parse_tz_offset)
_fraction = switch_type(number_in(float, 0.0, 1.0, "a fraction between 0 and 1"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` switches to ``parser`` (see docs/simulator.md), one group at a time."""
    for group in (_listening, _credentials, _api_behaviour, _data, _faults):
        group(parser)


def _listening(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("listening")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    net.add_argument("--port", type=_port, default=0, help="port, 0-65535; 0 picks a free one (default)")
    net.add_argument("--verbose", action="store_true", help="log every request on stderr")


def _credentials(parser: argparse.ArgumentParser) -> None:
    auth = parser.add_argument_group("credentials and tokens")
    auth.add_argument("--account-id", default="demo-account", help="default demo-account")
    auth.add_argument("--client-id", default="demo-client", help="default demo-client")
    auth.add_argument(
        "--client-secret",
        default=None,
        help=f"default ${SECRET_ENV}, else demo-secret (prefer the variable: argv is visible)",
    )
    auth.add_argument("--token-ttl", type=_whole_seconds, default=3600, help="seconds or 1h")
    auth.add_argument("--page-token-ttl", type=_whole_seconds, default=900, help="seconds or 15m (default)")
    auth.add_argument(
        "--scope", default=DEFAULT_SCOPE, help=f"granted scopes, space-separated (default {DEFAULT_SCOPE})"
    )
    auth.add_argument("--single-token", action="store_true", help="a new access token invalidates older ones")
    for kind, errors in (("client", "invalid_client errors"), ("token", "code 124 errors")):
        status = f"--invalid-{kind}-status"
        auth.add_argument(status, type=int, choices=(400, 401), default=401, help=f"HTTP status of {errors}")
    auth.add_argument("--no-permission", action="store_true", help="answer 400 code 200")


def _api_behaviour(parser: argparse.ArgumentParser) -> None:
    api = parser.add_argument_group("undocumented API behaviour")
    api.add_argument(
        "--tz-offset",
        type=_tz,
        default=0,
        metavar="OFFSET",
        help="account UTC offset for from/to day boundaries, -12..+14 (e.g. +05:30; default UTC)",
    )
    api.add_argument("--order", choices=("newest", "oldest"), default="newest")
    api.add_argument("--future-to", choices=("accept", "reject"), default="accept")
    api.add_argument("--to-day", choices=("inclusive", "exclusive"), default="inclusive")
    api.add_argument(
        "--max-range-days",
        type=int,
        default=None,
        help="longest from..to range in days, inclusive (default: one calendar month)",
    )
    api.add_argument("--retention-months", type=int, default=6)
    api.add_argument("--page-size-over-max", choices=("reject", "clamp"), default="reject")
    api.add_argument(
        "--no-echo-dates",
        dest="echo_dates",
        action="store_false",
        help="omit from/to in report responses",
    )


def _data(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument(
        "--scenario",
        choices=("generated", "incidents"),
        default="generated",
        help="incidents: 30 days of benign activity in both streams with attack stories inside "
        "(--days and the per-day counts do not apply; docs/detections.md)",
    )
    data.add_argument(
        "--days",
        type=int,
        default=None,
        help=f"days of generated data ending now (default {DEFAULT_DAYS}; 0 with a records or activities file)",
    )
    data.add_argument("--records-per-day", type=int, default=DEFAULT_RECORDS_PER_DAY, help="operation logs a day")
    data.add_argument("--records-file", default=None, help="JSONL file of operation-log records to serve")
    data.add_argument(
        "--activities-per-day",
        type=int,
        default=DEFAULT_ACTIVITIES_PER_DAY,
        help=f"sign-in/sign-out activity records a day (default {DEFAULT_ACTIVITIES_PER_DAY})",
    )
    data.add_argument("--activities-file", default=None, help="JSONL file of activity records to serve")
    data.add_argument("--late-fraction", type=_fraction, default=0.0)
    data.add_argument("--late-by", type=_seconds, default=0.0, help="delay of late records (seconds or 30m, 2h)")


def _faults(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group("rate limits and faults")
    faults.add_argument(
        "--qps-limit", type=_limit, default=None, help="report requests per second (no limit if left out)"
    )
    faults.add_argument(
        "--daily-limit", type=_limit, default=None, help="report requests per UTC day (no limit if left out)"
    )
    faults.add_argument("--fail-rate", type=_fraction, default=0.0)
    faults.add_argument(
        "--fail-kinds",
        default=",".join(DEFAULT_FAIL_KINDS),
        help="comma list drawn from by --fail-rate",
    )
    faults.add_argument(
        "--fail-schedule",
        default="",
        metavar="SPEC",
        help="[ENDPOINT:]N[-M]=KIND,... e.g. 3-4=503,logs:7=drop",
    )
    faults.add_argument("--slow-rate", type=_fraction, default=0.0)
    faults.add_argument("--slow-seconds", type=_seconds, default=5.0)
    faults.add_argument(
        "--slow-before", metavar="DATE", default="", help="delay every report request whose `from` is before DATE"
    )


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The SimulatorConfig the switches describe (raises ValueError for inconsistent ones)."""
    days = args.days
    if days is None:
        days = 0 if args.records_file or args.activities_file else DEFAULT_DAYS
    secret = args.client_secret or os.environ.get(SECRET_ENV) or "demo-secret"
    # A switch sets the config field of its name; the ones below are named otherwise or derived.
    given = vars(args)
    same_name = {f.name: given[f.name] for f in fields(SimulatorConfig) if f.name in given}
    return SimulatorConfig(
        **{
            **same_name,
            "client_secret": secret,
            "tz_offset_minutes": args.tz_offset,
            "days": days,
            "fail_kinds": tuple(k.strip() for k in args.fail_kinds.split(",") if k.strip()),
        }
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; the base URL is the first stdout line. Returns the exit code."""
    try:
        config = config_from_args(args)
        sim = Simulator(config)
    except (ValueError, OSError) as exc:
        print(f"zoom-oplog-shipper simulate: {exc}", file=sys.stderr)
        return 2
    try:
        running = serve_in_thread(sim, args.host, args.port, verbose=args.verbose)
    except OSError as exc:
        print(
            f"zoom-oplog-shipper simulate: cannot listen on {args.host}:{args.port}: {exc}; "
            "pick another --port (0 picks a free one)",
            file=sys.stderr,
        )
        return 1
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        print(running.base_url, flush=True)
        streams = sim.stats()["streams"]
        print(
            f"zoom simulator: {streams['operations']['records_total']} operation log records and "
            f"{streams['activities']['records_total']} activity records for account {config.account_id!r}, client "
            f"{config.client_id!r}; point the shipper at it with ZOOM_API_URL={running.base_url}/v2 "
            f"ZOOM_OAUTH_URL={running.base_url}/oauth/token; stop with Ctrl-C",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        running.shutdown()
    stats = sim.stats()
    print(
        f"zoom simulator: stopped after {stats['api_requests']} API requests, "
        f"{stats['pages_served']} pages, {stats['records_served']} records served",
        file=sys.stderr,
    )
    return 0
