"""Command line: parse, build the config, call the engine, map the package's errors to exit codes."""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Mapping
from contextlib import nullcontext, redirect_stderr
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO, cast

from zoom_oplog_shipper import __version__
from zoom_oplog_shipper.clock import Clock
from zoom_oplog_shipper.config import Config, Settings, read_settings_once
from zoom_oplog_shipper.demo import add_arguments as add_demo_arguments
from zoom_oplog_shipper.errors import ConfigError, ExitCode, OutputClosedError, OutputError, ShipperError
from zoom_oplog_shipper.logs import LOGGER_NAME, setup_logging
from zoom_oplog_shipper.pipeline import StopFlag, dry_run_pass, run_pass, stop_on_signals
from zoom_oplog_shipper.report import EXIT_INTERRUPTED, RunReport, classify_exception, unexpected_message, where
from zoom_oplog_shipper.settings import BY_NAME, FLAG_NAMES, SWITCH_OPTIONS, VALUE_OPTIONS
from zoom_oplog_shipper.settings import add_arguments as add_setting_arguments

log = logging.getLogger(LOGGER_NAME)

COMMANDS = ("run", "check", "state", "simulate", "demo")

EPILOG = f"""\
examples:
  export ZOOM_ACCOUNT_ID=... ZOOM_CLIENT_ID=... ZOOM_CLIENT_SECRET_FILE=/etc/zoom/secret
  zoom-oplog-shipper check                      # credentials, scopes, permission, clock, state
  zoom-oplog-shipper run                        # what is new since the last run (the agent runs this)
  zoom-oplog-shipper run --stream activities    # the sign-in/sign-out activity logs
  zoom-oplog-shipper run --dry-run | head       # look at what a run would print; commits nothing
  zoom-oplog-shipper state show                 # last run, lag, watermark, fingerprints
  zoom-oplog-shipper demo | head                # no Zoom account needed

`run | head` is not a way to look: a run commits what head read, printed or not; use --dry-run.

history: set ZOOM_BACKFILL_START in the agent's environment; its first runs backfill in
--max-runtime slices (README, "With a real account").

settings come from a flag, else the environment, else a TOML file (--config, ZOOM_OPLOG_CONFIG,
or config.toml in the user config directory), else the default. The client id and secret are
never flags: use ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET or ZOOM_CLIENT_SECRET_FILE.

stdout carries only event lines (one JSON document per line); every diagnostic goes to stderr.

exit codes:
  0    success, nothing new, or skipped: another run holds the lock (not counted as a success)
  1    runtime failure after retries (network, Zoom errors), or stdout closed, full or missing;
       progress is kept
  2    usage or configuration error
  3    authentication or permission error (credentials, scope, plan, role)
  4    Zoom's daily request limit reached; progress is kept, run again after the reset
  5    state store unusable (corrupt, unwritable); the message names the file, its owner and the fix
  130  a second Ctrl-C stopped the run at once; committed pages are kept

version {__version__}
"""


def _common(parser: argparse.ArgumentParser) -> None:
    """Options every account-bound command takes: one per setting of ``settings.SETTINGS``."""
    add_setting_arguments(parser)


def build_parser(*, simulator_options: bool = True) -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs).

    The simulator's many options are only added when asked for, so other commands start without
    importing it. No parser accepts an abbreviated option (`--max-record` is not `--max-records`).
    """
    return _build_parsers(simulator_options)[0]


class _Commands(dict[str, argparse.ArgumentParser]):
    """The parser of each (sub)command by its words ("run", "state show"); none takes abbreviations."""

    def add(self, container: Any, words: str, **kw: Any) -> argparse.ArgumentParser:
        """Add the (sub)command ``words`` to ``container`` (a subparsers action) and remember its parser."""
        made: argparse.ArgumentParser = container.add_parser(words.rsplit(maxsplit=1)[-1], allow_abbrev=False, **kw)
        self[words] = made
        return made


def _build_parsers(simulator_options: bool) -> tuple[argparse.ArgumentParser, _Commands]:
    """The parser, and the parser of each (sub)command by its words."""
    parser = argparse.ArgumentParser(
        prog="zoom-oplog-shipper",
        description="Print Zoom admin operation logs (Admin Activity Logs) that are new since the last run "
        "as ECS JSON lines on stdout, for Vector, Fluent Bit, Splunk or cron. "
        "A bare `zoom-oplog-shipper` is `zoom-oplog-shipper run`.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"zoom-oplog-shipper {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter
    commands = _Commands({"": parser})
    run = commands.add(sub, "run", help="one pass: print new records, commit, exit", epilog=EPILOG, formatter_class=fmt)
    _common(run)
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print what a run would print now, and commit nothing: no state, lock or metrics file is written",
    )
    check = commands.add(
        sub,
        "check",
        help="validate settings, token, scopes, permission and clock; creates and changes nothing",
        formatter_class=fmt,
    )
    _common(check)
    state = commands.add(sub, "state", help="inspect, rewind or reset the stored progress", formatter_class=fmt)
    _add_state_commands(commands, state)
    simulate = commands.add(
        sub, "simulate", help="serve a local Zoom API simulator for testing pipelines", formatter_class=fmt
    )
    if simulator_options:
        from zoom_oplog_shipper import simulator

        simulator.add_arguments(simulate)
    demo = commands.add(sub, "demo", help="run the real pipeline against a built-in simulator; no account needed")
    add_demo_arguments(demo)
    return parser, commands


def _add_state_commands(commands: _Commands, state: argparse.ArgumentParser) -> None:
    """`state show | rewind | reset | path`."""
    state_sub = state.add_subparsers(dest="state_command", metavar="ACTION", required=True)
    show = commands.add(
        state_sub,
        "state show",
        help="last run, last success, lag, records, watermark, fingerprints, file path (read-only)",
    )
    _common(show)
    show.add_argument("--json", action="store_true", help="print the machine-readable JSON instead")
    rewind = commands.add(
        state_sub,
        "state rewind",
        help="move the watermark back so the next run sends again every record since DATE, "
        "with the same event.id (asks for --yes)",
    )
    _common(rewind)
    rewind.add_argument(
        "--to", required=True, metavar="DATE", help="date or ISO time to send again from (within Zoom's ~6 months)"
    )
    rewind.add_argument("--yes", action="store_true", help="confirm the rewind")
    reset = commands.add(state_sub, "state reset", help="delete the stored progress (asks for --yes)")
    _common(reset)
    reset.add_argument("--yes", action="store_true", help="confirm the reset")
    _common(commands.add(state_sub, "state path", help="print the state file's path"))


#: Options that take no value, besides the settings' switches: they never hold the command's name.
_SWITCHES = frozenset({"-h", "--help", "--version", "--dry-run", "--json", "--yes"})


def _normalize_argv(argv: list[str]) -> list[str]:
    """Put the command first: a bare invocation, or options alone, mean `run`.

    Options written before the command move after it (``--log-format json check`` is ``check
    --log-format json``); a first word that is not a command goes first too, so argparse refuses it
    and lists the commands. A setting's value is never taken for a command (nor echoed as one), and
    a word after an unknown option is taken for its value (`--max-record 5` is a `run` that refuses
    `--max-record`).
    """
    if argv[:1] and argv[0] in ("-h", "--help", "--version"):
        return argv
    i = 0
    while i < len(argv) and argv[i] != "--":
        word = argv[i]
        if not word.startswith("-"):
            return [word, *argv[i + 1 :], *argv[:i]]
        option = word.split("=", 1)[0]
        known = option in VALUE_OPTIONS or option in _SWITCHES or option in SWITCH_OPTIONS
        if not known and "=" not in word and i + 1 < len(argv) and argv[i + 1] not in COMMANDS:
            break
        i += 2 if "=" not in word and word in VALUE_OPTIONS else 1
    return ["run", *argv]


@dataclass(frozen=True)
class _Parsed:
    """The command line as argparse read it: the values, or the usage error; or argparse answered (--help)."""

    args: argparse.Namespace = field(default_factory=argparse.Namespace)
    problem: ConfigError | None = None
    answered: bool = False


def _parse(
    parser: argparse.ArgumentParser, commands: Mapping[str, argparse.ArgumentParser], args: list[str]
) -> _Parsed:
    """Parse once, turning argparse's multi-line usage complaint into one ConfigError (exit 2), with the
    closest option or command when a word is unknown."""
    captured = io.StringIO()
    try:
        with redirect_stderr(captured):
            namespace, extras = parser.parse_known_args(args)
    except SystemExit as exc:
        if exc.code in (0, None):
            return _Parsed(answered=True)
        complaints = [line for line in captured.getvalue().splitlines() if ": error: " in line]
        prog, _, detail = (complaints[-1] if complaints else ": error: invalid arguments").partition(": error: ")
        msg = f"{detail}{_command_hint(detail)}; see `{prog or parser.prog} --help`"
        return _Parsed(problem=ConfigError(msg))
    if not extras:
        return _Parsed(args=namespace)
    words = " ".join(w for w in (namespace.command, getattr(namespace, "state_command", None)) if w)
    hints = [h for h in (_option_hint(word, commands[words]) for word in extras if word.startswith("-")) if h]
    msg = (
        f"unrecognized arguments: {' '.join(extras)}{' (' + '; '.join(hints) + ')' if hints else ''}; "
        f"see `{commands[words].prog} --help`"
    )
    return _Parsed(args=namespace, problem=ConfigError(msg))


def _option_hint(word: str, parser: argparse.ArgumentParser) -> str:
    """``did you mean --max-records?`` for an unknown (often abbreviated) option; "" when nothing is close."""
    import difflib

    option = word.split("=", 1)[0]
    known = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
    close = [o for o in known if o.startswith(option)] or difflib.get_close_matches(option, known, n=1, cutoff=0.7)
    return f"did you mean {' or '.join(close[:3])}?" if close else ""


def _command_hint(detail: str) -> str:
    """`` (did you mean run?)`` after argparse's refusal of an unknown command, when one is close."""
    import difflib
    import re

    match = re.search(r"invalid choice: '([^']*)' \(choose from ([^)]*)\)", detail)
    if not match:
        return ""
    choices = re.findall(r"'([^']*)'", match.group(2))
    close = difflib.get_close_matches(match.group(1), choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]}?)" if close else ""


def _report_failure(exc: BaseException, command: str, own_stdout: bool) -> int:
    """Log one clear line for what ended the command (never a traceback); returns the exit code."""
    code, _ = classify_exception(exc)
    if isinstance(exc, OutputError | BrokenPipeError):
        if own_stdout:
            _silence_stdout()
        closed = not isinstance(exc, OutputError) or isinstance(exc, OutputClosedError)
        if command == "demo" and closed:  # `demo | head` is fine: the reader has seen enough
            return int(ExitCode.OK)
        if closed:
            log.warning("%s", exc if isinstance(exc, OutputError) else "stdout was closed by its reader")
        else:
            log.error("%s", exc)
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
    with its summary line whatever happened. The settings are read once (flags, environment and
    config file together); the summary and the metrics file carry the labels they give, even when
    one of them is wrong.
    """
    args_list = _normalize_argv(list(sys.argv[1:] if argv is None else argv))
    env = os.environ if env is None else env
    err = stderr if stderr is not None else sys.stderr
    clock = clock or Clock()
    command = args_list[0] if args_list else ""
    # Before anything opens a file that could take its number: was the program started without a stdout?
    out = stdout if stdout is not None else None if sys.stdout is None else sys.stdout.buffer
    report = None
    code = int(ExitCode.FAILURE)
    flag = StopFlag()
    try:
        setup_logging(secrets=(env.get(BY_NAME["client_secret"].env, ""),), stream=err)
        with stop_on_signals(flag) if command == "run" else nullcontext():
            parsed = _parse(*_build_parsers(simulator_options=command == "simulate"), args_list)
            if parsed.answered:  # --help, --version: argparse has answered; no run, no summary
                return int(ExitCode.OK)
            settings = _read_settings(parsed, command, env, clock, err)
            if command == "run":
                report = RunReport.of(clock, settings.best, dry_run=bool(getattr(parsed.args, "dry_run", False)))
            try:
                code = _dispatch(parsed, settings, out, err, clock, session, report, flag)
            except BaseException as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
                code = _report_failure(exc, command, own_stdout=stdout is None)
                if report is not None:
                    report.failed(exc)
            if report is not None:
                report.finish(code)
    except KeyboardInterrupt:  # a second Ctrl-C while reporting
        code = EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - reporting itself failed: still one line, never a traceback
        log.error("%s", unexpected_message(exc))
        code = code or int(ExitCode.FAILURE)
    return code


def _read_settings(parsed: _Parsed, command: str, env: Mapping[str, str], clock: Clock, err: TextIO) -> Settings:
    """Read the settings once and log as they say (from a flag, the environment or the config file)."""
    flags = {name: getattr(parsed.args, name, None) for name in FLAG_NAMES}
    uses_settings = command not in ("demo", "simulate")
    settings = read_settings_once(flags, env, clock.now(), need_credentials=command in ("run", "check"))
    best = settings.best
    setup_logging(best.log_level, best.log_format, (*best.secrets(), env.get(BY_NAME["client_secret"].env, "")), err)
    for warning in settings.warnings if uses_settings else ():
        log.warning("%s", warning)
    return settings


def _dispatch(
    parsed: _Parsed,
    settings: Settings,
    out: BinaryIO | None,
    err: TextIO,
    clock: Clock,
    session: Any,
    report: RunReport | None,
    flag: StopFlag,
) -> int:
    """Run the command the command line asks for with the settings; failures are raised."""
    if parsed.problem is not None:
        raise parsed.problem
    args = parsed.args
    if args.command == "simulate":
        from zoom_oplog_shipper import simulator

        return simulator.run(args)
    if args.command == "check":  # its report goes to stderr
        from zoom_oplog_shipper.check import run_check

        config = settings.config
        report_to = err if config.log_format == "text" else cast(TextIO, _LinesToLog())
        return run_check(config, clock, session, report_to)
    events = _stdout(out)
    if args.command == "demo":
        from zoom_oplog_shipper.demo import run_demo

        return run_demo(args, events, clock)
    config = settings.config
    if args.command == "state":
        return _state(args, config, events, clock)
    assert report is not None  # noqa: S101 - narrows the type: main gives every `run` a report
    if args.dry_run:
        return dry_run_pass(config, clock, session, events, report, flag)
    return run_pass(config, clock, session, events, report, flag)


def _stdout(out: BinaryIO | None) -> BinaryIO:
    """stdout for the events; a process started without one (``>&-``) is told how to give it one."""
    if out is None:
        msg = (
            "stdout is closed (started with `>&-`?), so the events have nowhere to go: connect stdout to the "
            "agent, or redirect it to a file or /dev/null; nothing was fetched or committed"
        )
        raise OutputError(msg)
    return out


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
    if sys.stdout is None:  # started without a stdout: nothing to flush
        return
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
