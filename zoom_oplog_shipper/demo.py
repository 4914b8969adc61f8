"""`demo`: the real `run` pipeline against the built-in simulator, with no Zoom account."""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import load_config
from zoom_oplog_shipper.formats import OUTPUT_FORMATS
from zoom_oplog_shipper.logs import LOGGER_NAME
from zoom_oplog_shipper.settings import BY_NAME, number_in, switch_type
from zoom_oplog_shipper.streams import BY_KEY, STREAM_KEYS

log = logging.getLogger(LOGGER_NAME)

#: Zoom keeps about six months: a longer demo history would only be cut to it.
MAX_DAYS = 180
MAX_RECORDS_PER_DAY = 10_000
DEMO_ACCOUNT = "demo-account"
DEMO_CLIENT = "demo-client"
DEMO_SECRET = "demo-secret"  # noqa: S105 - the built-in simulator's own, on loopback


def _whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``; argparse names the switch in the refusal."""
    return switch_type(number_in(int, low, high, f"a whole number from {low} to {high}"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `demo` switches, each refused with its range when out of it (exit 2)."""
    parser.add_argument(
        "--days",
        type=_whole_number(1, MAX_DAYS),
        default=3,
        help=f"days of generated history, 1-{MAX_DAYS} (default 3)",
    )
    parser.add_argument(
        "--records-per-day",
        type=_whole_number(1, MAX_RECORDS_PER_DAY),
        default=40,
        help=f"records a day, 1-{MAX_RECORDS_PER_DAY} (default 40)",
    )
    parser.add_argument("--seed", type=_whole_number(0, 2**31 - 1), default=7, help="generator seed (default 7)")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="ecs", help="output documents (default ecs)")
    parser.add_argument(
        "--stream", choices=STREAM_KEYS, default="operations", help="which log to show (default operations)"
    )


def run_demo(args: argparse.Namespace, out: BinaryIO, clock: Clock) -> int:
    """Serve generated history on a free loopback port, run one real pass, print its ECS lines."""
    from zoom_oplog_shipper.pipeline import run_pass
    from zoom_oplog_shipper.report import RunReport
    from zoom_oplog_shipper.simulator import Simulator, SimulatorConfig, serve_in_thread

    now = clock.now()
    sim = Simulator(
        SimulatorConfig(
            account_id=DEMO_ACCOUNT,
            client_id=DEMO_CLIENT,
            client_secret=DEMO_SECRET,
            seed=args.seed,
            days=args.days,
            records_per_day=args.records_per_day,
            activities_per_day=args.records_per_day if args.stream == "activities" else 0,
        ),
    )
    with serve_in_thread(sim) as server, tempfile.TemporaryDirectory(prefix="zoom-oplog-demo-") as state_dir:
        log.info(
            "demo: a local Zoom simulator at %s holds %d generated records over %d days",
            server.base_url,
            len(sim.records(stream=args.stream)),
            args.days,
        )
        settings = {
            "account_id": DEMO_ACCOUNT,
            "client_id": DEMO_CLIENT,
            "client_secret": DEMO_SECRET,
            "api_url": f"{server.base_url}/v2",
            "oauth_url": f"{server.base_url}/oauth/token",
            "state_dir": str(Path(state_dir)),
            "max_rps": "0",
            "format": args.format,
            "stream": args.stream,
            "backfill_start": (now - timedelta(days=args.days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        env = {BY_NAME[name].env: value for name, value in settings.items()}
        config = load_config({}, env, now, use_file=False)  # the user's own settings file is not the demo's
        report = RunReport.of(clock, config)
        # A closed stdout (`demo | head`) raises here; the command line ends that quietly with exit 0.
        code = run_pass(config, clock, None, out, report)
        report.finish(code)
        log.info(
            "demo: done (exit %d). The lines above are what `zoom-oplog-shipper run` prints for an agent. "
            "For a real account: export ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET from a "
            "Server-to-Server OAuth app with the %s scope, then run "
            "`zoom-oplog-shipper check --stream %s` and `zoom-oplog-shipper run --stream %s`",
            code,
            BY_KEY[args.stream].endpoint.scopes[0],
            args.stream,
            args.stream,
        )
        return code
