"""`demo`: the real `run` pipeline against the built-in simulator, with no Zoom account."""

from __future__ import annotations

import argparse
import logging
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import load_config
from zoom_oplog_shipper.logs import LOGGER_NAME
from zoom_oplog_shipper.settings import BY_NAME
from zoom_oplog_shipper.streams import BY_KEY

log = logging.getLogger(LOGGER_NAME)

DEMO_ACCOUNT = "demo-account"
DEMO_CLIENT = "demo-client"
DEMO_SECRET = "demo-secret"


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
        config = load_config({}, env, now)
        report = RunReport(clock, config.account_id, config.category_type, None)
        # A closed stdout (`demo | head`) raises here; the command line ends that quietly with exit 0.
        code = run_pass(config, clock, None, out, report)
        report.finish(code)
        log.info(
            "demo: done (exit %d). The lines above are what `zoom-oplog-shipper run` prints for an agent. "
            "For a real account: export ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET from a "
            "Server-to-Server OAuth app with the %s scope, then run "
            "`zoom-oplog-shipper check --stream %s` and `zoom-oplog-shipper run --stream %s`",
            code,
            BY_KEY[args.stream].report.scopes[0],
            args.stream,
            args.stream,
        )
        return code
