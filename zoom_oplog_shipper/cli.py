"""Command line: parse, build the config, call the engine, map the package's errors to exit codes."""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Mapping
from contextlib import nullcontext, redirect_stderr
from pathlib import Path
from typing import Any, BinaryIO, TextIO, cast

from zoom_oplog_shipper import __version__
from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import (
    LOG_FORMATS,
    LOG_LEVELS,
    OUTPUT_FORMATS,
    Config,
    load_config,
)
from zoom_oplog_shipper.errors import ConfigError, ExitCode, OutputClosedError, ShipperError
from zoom_oplog_shipper.logs import LOGGER_NAME, setup_logging
from zoom_oplog_shipper.pipeline import StopFlag, run_pass, stop_on_signals
from zoom_oplog_shipper.report import EXIT_INTERRUPTED, RunReport, classify, unexpected_message, where
from zoom_oplog_shipper.settings import BY_NAME, FLAG_NAMES, STREAM_KEYS, VALUE_OPTIONS
from zoom_oplog_shipper.settings import add_arguments as add_setting_arguments

log = logging.getLogger(LOGGER_NAME)

COMMANDS = ("run", "check", "state", "simulate", "demo")

EPILOG = f"""\
examples:
  export ZOOM_ACCOUNT_ID=... ZOOM_CLIENT_ID=... ZOOM_CLIENT_SECRET_FILE=/etc/zoom/secret
  zoom-oplog-shipper check                      # credentials, scopes, permission, clock, state
  zoom-oplog-shipper run                        # what is new since the last run (the agent runs this)
  zoom-oplog-shipper run --stream activities    # the sign-in/sign-out activity logs
  zoom-oplog-shipper state show                 # last run, lag, watermark, fingerprints
  zoom-oplog-shipper demo | head                # no Zoom account needed

history: set ZOOM_BACKFILL_START in the agent's environment; its first runs backfill in
--max-runtime slices (README, "With a real account").

settings come from a flag, else the environment, else a TOML file (--config, ZOOM_OPLOG_CONFIG,
or config.toml in the user config directory), else the default. The client id and secret are
never flags: use ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET or ZOOM_CLIENT_SECRET_FILE.

stdout carries only event lines (one JSON document per line); every diagnostic goes to stderr.

exit codes:
  0  success, nothing new, or another run holds the lock
  1  runtime failure after retries (network, Zoom errors, stdout closed); progress is kept
  2  usage or configuration error
  3  authentication or permission error (credentials, scope, plan, role)
  4  Zoom's daily request limit reached; progress is kept, run again after the reset
  5  state store unusable (corrupt, unwritable); the message names the file and the fix

version {__version__}
"""


def _common(parser: argparse.ArgumentParser) -> None:
    """Options every account-bound command takes: one per setting of ``settings.SETTINGS``."""
    add_setting_arguments(parser)


def build_parser(*, simulator_options: bool = True) -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs).

    The simulator's many options are only added when asked for, so other commands start without
    importing it.
    """
    parser = argparse.ArgumentParser(
        prog="zoom-oplog-shipper",
        description="Print Zoom admin operation logs (Admin Activity Logs) that are new since the last run "
        "as ECS JSON lines on stdout, for Vector, Fluent Bit, Splunk or cron. "
        "A bare `zoom-oplog-shipper` is `zoom-oplog-shipper run`.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"zoom-oplog-shipper {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter

    run = sub.add_parser("run", help="one pass: print new records, commit, exit", epilog=EPILOG, formatter_class=fmt)
    _common(run)
    check = sub.add_parser(
        "check", help="validate settings, token, scopes, permission and clock; changes nothing", formatter_class=fmt
    )
    _common(check)

    state = sub.add_parser("state", help="inspect, rewind or reset the stored progress", formatter_class=fmt)
    state_sub = state.add_subparsers(dest="state_command", metavar="ACTION", required=True)
    show = state_sub.add_parser(
        "show", help="last run, last success, lag, records, watermark, fingerprints, file path (read-only)"
    )
    _common(show)
    show.add_argument("--json", action="store_true", help="print the machine-readable JSON instead")
    rewind = state_sub.add_parser(
        "rewind",
        help="move the watermark back so the next run sends again every record since DATE, "
        "with the same event.id (asks for --yes)",
    )
    _common(rewind)
    rewind.add_argument(
        "--to", required=True, metavar="DATE", help="date or ISO time to send again from (within Zoom's ~6 months)"
    )
    rewind.add_argument("--yes", action="store_true", help="confirm the rewind")
    reset = state_sub.add_parser("reset", help="delete the stored progress (asks for --yes)")
    _common(reset)
    reset.add_argument("--yes", action="store_true", help="confirm the reset")
    path = state_sub.add_parser("path", help="print the state file's path")
    _common(path)

    simulate = sub.add_parser(
        "simulate", help="serve a local Zoom API simulator for testing pipelines", formatter_class=fmt
    )
    if simulator_options:
        from zoom_oplog_shipper import simulator

        simulator.add_arguments(simulate)

    demo = sub.add_parser("demo", help="run the real pipeline against a built-in simulator; no account needed")
    demo.add_argument("--days", type=int, default=3, help="days of generated history (default 3)")
    demo.add_argument("--records-per-day", type=int, default=40, help="records a day (default 40)")
    demo.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    demo.add_argument("--format", choices=OUTPUT_FORMATS, default="ecs", help="output documents (default ecs)")
    demo.add_argument(
        "--stream", choices=STREAM_KEYS, default="operations", help="which log to show (default operations)"
    )
    return parser


#: The argparse destinations that hold settings (passed to load_config).
_SETTING_FLAGS = FLAG_NAMES


def _normalize_argv(argv: list[str]) -> list[str]:
    """Put the command first: a bare invocation, or options alone, mean `run`.

    Options written before the command move after it (``--log-format json check`` is ``check
    --log-format json``); a first word that is not a command goes first too, so argparse refuses it
    and lists the commands. A setting's value is never taken for a command (nor echoed as one).
    """
    if argv[:1] and argv[0] in ("-h", "--help", "--version"):
        return argv
    i = 0
    while i < len(argv) and argv[i] != "--":
        word = argv[i]
        if not word.startswith("-"):
            return [word, *argv[i + 1 :], *argv[:i]]
        takes_value = "=" not in word and any(option.startswith(word) for option in VALUE_OPTIONS)
        i += 2 if takes_value else 1
    return ["run", *argv]


def _flag_value(args: list[str], flag: str) -> str | None:
    """The value given to ``flag`` on the command line, before argparse has read it."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _log_as_asked(args: list[str], env: Mapping[str, str], err: TextIO) -> None:
    """Log as the flag or environment asks (when valid), before the settings are validated."""
    level = _early_setting(args, env, "log_level").lower()
    fmt = _early_setting(args, env, "log_format").lower()
    setup_logging(
        level if level in LOG_LEVELS else "info",
        fmt if fmt in LOG_FORMATS else "text",
        (env.get(BY_NAME["client_secret"].env, ""),),
        stream=err,
    )


def _parse(parser: argparse.ArgumentParser, args: list[str]) -> argparse.Namespace | int:
    """Parse, turning argparse's multi-line usage complaint into one ConfigError (exit 2).

    Returns an exit code instead when argparse has answered by itself (--help, --version).
    """
    captured = io.StringIO()
    try:
        with redirect_stderr(captured):
            return parser.parse_args(args)
    except SystemExit as exc:
        if exc.code in (0, None):
            return 0
        complaints = [line for line in captured.getvalue().splitlines() if ": error: " in line]
        prog, _, detail = (complaints[-1] if complaints else ": error: invalid arguments").partition(": error: ")
        msg = f"{detail}; see `{prog or parser.prog} --help`"
        raise ConfigError(msg) from None


def _report_failure(exc: BaseException, command: str, own_stdout: bool) -> int:
    """Log one clear line for what ended the command (never a traceback); returns the exit code."""
    code, _ = classify(exc)
    if isinstance(exc, OutputClosedError | BrokenPipeError):
        if own_stdout:
            _silence_stdout()
        if command == "demo":  # `demo | head` is fine: the reader has seen enough
            return int(ExitCode.OK)
        log.warning("%s", exc if isinstance(exc, OutputClosedError) else "stdout was closed by its reader")
    elif isinstance(exc, ShipperError):
        log.error("%s", exc)
    elif isinstance(exc, KeyboardInterrupt):
        if command == "simulate":  # Ctrl-C is how a served simulator is meant to end
            log.info("simulator stopped")
            return int(ExitCode.OK)
        if command == "run":
            log.warning("stopped at once by Ctrl-C; committed pages are kept and the next run continues from them")
        else:
            log.warning("interrupted by Ctrl-C")
    elif isinstance(exc, SystemExit):  # a library that exits: keep its code, say its message in one line
        if isinstance(exc.code, int) or exc.code is None:
            return int(exc.code or 0)
        log.error("%s", exc.code)
    else:
        log.error("%s", unexpected_message(exc))
        log.debug("where it happened: %s", where(exc))
    return code


def main(
    argv: list[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: BinaryIO | None = None,
    stderr: TextIO | None = None,
    clock: Clock | None = None,
    session: Any = None,
) -> int:
    """Run the command line; returns the exit code. Everything is injectable for in-process tests.

    Nothing escapes: every failure becomes one log line and a documented exit code, and `run` ends
    with its summary line whatever happened.
    """
    args_list = _normalize_argv(list(sys.argv[1:] if argv is None else argv))
    env = os.environ if env is None else env
    err = stderr if stderr is not None else sys.stderr
    clock = clock or Clock()
    command = args_list[0] if args_list else ""
    report = None
    code = int(ExitCode.FAILURE)
    flag = StopFlag()
    try:
        _log_as_asked(args_list, env, err)
        with stop_on_signals(flag) if command == "run" else nullcontext():
            if command == "run":
                report = RunReport(
                    clock,
                    _early_setting(args_list, env, "account_id"),
                    _early_setting(args_list, env, "category_type") or "all",
                    _metrics_file(args_list, env),
                    _early_setting(args_list, env, "stream") or "operations",
                )
            try:
                code = _dispatch(args_list, env, stdout, err, clock, session, report, flag)
            except BaseException as exc:
                code = _report_failure(exc, command, own_stdout=stdout is None)
            if report is not None:
                report.finish(code)
    except KeyboardInterrupt:  # a second Ctrl-C while reporting
        code = EXIT_INTERRUPTED
    except Exception as exc:  # reporting itself failed: still one line, never a traceback
        log.error("%s", unexpected_message(exc))
        code = code or int(ExitCode.FAILURE)
    return code


def _early_setting(args: list[str], env: Mapping[str, str], name: str) -> str:
    """A setting as the command line or environment gives it, before the settings are validated
    (so that a run whose settings fail still reports under its account, stream and metrics file)."""
    setting = BY_NAME[name]
    return (_flag_value(args, setting.option) or env.get(setting.env, "")).strip()


def _metrics_file(args: list[str], env: Mapping[str, str]) -> Path | None:
    """The metrics file asked for on the command line or in the environment (used when the settings fail)."""
    text = _early_setting(args, env, "metrics_file")
    return Path(text).expanduser() if text else None


def _dispatch(
    args_list: list[str],
    env: Mapping[str, str],
    stdout: BinaryIO | None,
    err: TextIO,
    clock: Clock,
    session: Any,
    report: RunReport | None,
    flag: StopFlag,
) -> int:
    """Parse, validate the settings and run the command; failures are raised."""
    parser = build_parser(simulator_options=args_list[:1] == ["simulate"])
    args = _parse(parser, args_list)
    if isinstance(args, int):
        return args
    if args.command == "simulate":
        from zoom_oplog_shipper import simulator

        return simulator.run(args)
    out = stdout if stdout is not None else sys.stdout.buffer
    if args.command == "demo":
        from zoom_oplog_shipper.demo import run_demo

        return run_demo(args, out, clock)
    flags = {name: getattr(args, name, None) for name in _SETTING_FLAGS}
    config = load_config(flags, env, clock.now(), need_credentials=args.command in ("run", "check"))
    setup_logging(config.log_level, config.log_format, config.secrets(), stream=err)
    if args.command == "check":
        from zoom_oplog_shipper.check import run_check

        report_to = err if config.log_format == "text" else cast(TextIO, _LinesToLog())
        return run_check(config, clock, session, report_to)
    if args.command == "state":
        return _state(args, config, out, clock)
    return run_pass(config, clock, session, out, report, flag)


_CHECK_LEVELS = {"FAIL": logging.ERROR, "WARN": logging.WARNING}


class _LinesToLog:
    """A text stream whose lines become log records: `check`'s report, when stderr speaks JSON."""

    def __init__(self) -> None:
        self._pending = ""

    def write(self, text: str) -> int:
        """Log every complete line, at error for ``[FAIL]`` and warning for ``[WARN]``."""
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            status = line[1:5].strip().upper() if line.startswith("[") else ""
            log.log(_CHECK_LEVELS.get(status, logging.INFO), "%s", line)
        return len(text)

    def flush(self) -> None:
        """Lines are logged as they complete."""


def _silence_stdout() -> None:
    """After the reader went away, stop Python's own final flush from complaining on stderr."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (embedded, tests): nothing will flush there
        pass


def _state(args: argparse.Namespace, config: Config, out: BinaryIO, clock: Clock | None = None) -> int:
    """`state path | show | rewind | reset` (see zoom_oplog_shipper.state_cli)."""
    from zoom_oplog_shipper.state_cli import run_state_command

    return run_state_command(args, config, out, clock or Clock())
