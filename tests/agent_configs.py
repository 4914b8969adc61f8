"""Shared by the config tests and test_agents_e2e.py: read the shipped agent configs, emulate how each
agent reads the program's stdout, and serve a simulated Zoom account with long operation records
and sign-in/sign-out activity records (both streams)."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from zoom_oplog_shipper.cli import build_parser
from zoom_oplog_shipper.config import Config, load_config
from zoom_oplog_shipper.simulator import Simulator, SimulatorConfig, generate_activity_records, generate_records

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
CONSOLE_SCRIPT = "zoom-oplog-shipper"

VECTOR_YAML = CONFIGS / "vector" / "zoom-oplog.yaml"
VECTOR_TOML = CONFIGS / "vector" / "zoom-oplog-source.toml"
VECTOR_MULTI = CONFIGS / "vector" / "zoom-oplog-multi-account.yaml"
VECTOR_CONFIGS = (VECTOR_YAML, VECTOR_TOML, VECTOR_MULTI)
FLUENT_BIT_YAML = CONFIGS / "fluent-bit" / "zoom-oplog.yaml"
FLUENT_BIT_CONF = CONFIGS / "fluent-bit" / "zoom-oplog.conf"
FLUENT_BIT_PARSERS = CONFIGS / "fluent-bit" / "zoom-oplog-parsers.conf"
FLUENT_BIT_MULTI = CONFIGS / "fluent-bit" / "zoom-oplog-multi-account.yaml"
FLUENT_BIT_CONFIGS = (FLUENT_BIT_YAML, FLUENT_BIT_CONF, FLUENT_BIT_MULTI)
ES_COMPONENT = CONFIGS / "elasticsearch" / "zoom.operation@mappings.json"
ES_INDEX_TEMPLATE = CONFIGS / "elasticsearch" / "logs-zoom.operation.json"
ES_ACTIVITY_COMPONENT = CONFIGS / "elasticsearch" / "zoom.activity@mappings.json"
ES_ACTIVITY_INDEX_TEMPLATE = CONFIGS / "elasticsearch" / "logs-zoom.activity.json"
#: (index template, component template) per stream.
ES_TEMPLATES = {
    "operations": (ES_INDEX_TEMPLATE, ES_COMPONENT),
    "activities": (ES_ACTIVITY_INDEX_TEMPLATE, ES_ACTIVITY_COMPONENT),
}
ES_INDEX_TEMPLATES = (ES_INDEX_TEMPLATE, ES_ACTIVITY_INDEX_TEMPLATE)
SPLUNK_INPUTS = CONFIGS / "splunk" / "inputs.conf"
SPLUNK_PROPS = CONFIGS / "splunk" / "props.conf"
SYSTEMD_SERVICE = CONFIGS / "systemd" / "zoom-oplog-shipper.service"
SYSTEMD_TIMER = CONFIGS / "systemd" / "zoom-oplog-shipper.timer"
CRON_FILE = CONFIGS / "cron" / "zoom-oplog-shipper"
ENV_EXAMPLE = CONFIGS / "zoom-oplog-shipper.env.example"
K8S_CRONJOB = CONFIGS / "kubernetes" / "cronjob.yaml"

#: Root fields Vector's exec source adds to every event when they are absent.
VECTOR_ADDED_FIELDS = ("host", "pid", "command", "source_type", "stream", "timestamp")
#: Deployment paths in the configs, and where the tests put them instead.
RELOCATED_PATHS = (
    "/var/lib/vector",
    "/var/lib/fluent-bit",
    "/var/lib/zoom-oplog-shipper",
    "/var/lib/zoom-oplog-shipper-metrics",
    "/var/log/zoom-oplog-shipper",
    "/etc/zoom-oplog-shipper",
)
#: The directory of every host config's metrics files (node_exporter's textfile collector reads it;
#: docs/agents.md, "Metrics").
METRICS_DIR = "/var/lib/zoom-oplog-shipper-metrics"


def console_script() -> Path:
    """The installed console script next to the running interpreter (the venv's bin)."""
    path = Path(sys.executable).parent / CONSOLE_SCRIPT
    if not path.is_file():
        found = shutil.which(CONSOLE_SCRIPT)
        assert found, f"{CONSOLE_SCRIPT} is not installed; run: pip install -e {ROOT}"
        path = Path(found)
    return path


# ---------------------------------------------------------------------------------------------
# Readers.


def read_yaml(path: Path) -> Any:
    """One YAML document."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def read_yaml_all(path: Path) -> list[Any]:
    """Every document of a multi-document YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def read_vector(path: Path) -> dict[str, Any]:
    """A Vector config file, YAML or TOML, as a dict."""
    if path.suffix == ".toml":
        return tomllib.loads(path.read_text(encoding="utf-8"))
    data = read_yaml(path)
    assert isinstance(data, dict)
    return data


def read_fluent_bit_classic(path: Path) -> list[tuple[str, dict[str, str]]]:
    """Fluent Bit's classic format: ``[SECTION]`` headers, ``Key  value`` lines, ``#`` comments.

    Keys are lower-cased (Fluent Bit ignores their case); sections repeat, so a list is returned.
    """
    sections: list[tuple[str, dict[str, str]]] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1].strip().upper(), {}))
            continue
        assert not line.startswith("@"), f"{path}:{number}: directives are not used in the shipped configs"
        assert sections, f"{path}:{number}: a key before any [SECTION]"
        key, _, value = line.partition(" ")
        assert value.strip(), f"{path}:{number}: {key!r} has no value"
        sections[-1][1][key.lower()] = value.strip()
    return sections


def read_ini(path: Path) -> dict[str, list[tuple[str, str]]]:
    """systemd units and Splunk .conf files: ``[stanza]`` and ``key = value`` lines (keys may repeat)."""
    stanzas: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = stanzas.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path}:{number}: a setting before any [stanza]"
        key, sep, value = line.partition("=")
        assert sep, f"{path}:{number}: not key=value: {line!r}"
        current.append((key.strip(), value.strip()))
    return stanzas


def ini_value(stanza: list[tuple[str, str]], key: str) -> str:
    """The last value of ``key`` in a stanza (as systemd and Splunk take it)."""
    values = [v for k, v in stanza if k == key]
    assert values, f"{key} is not set"
    return values[-1]


@dataclass(frozen=True)
class CronJob:
    """One job line of a cron.d file."""

    minute: str
    hour: str
    day: str
    month: str
    weekday: str
    user: str
    command: str


def read_cron_d(path: Path) -> tuple[dict[str, str], list[CronJob]]:
    """A cron.d file: ``NAME=value`` assignments and job lines with a user field."""
    variables: dict[str, str] = {}
    jobs: list[CronJob] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", line):
            name, _, value = line.partition("=")
            variables[name] = value
            continue
        fields = line.split(None, 6)
        assert len(fields) == 7, f"{path}: not a cron.d job line: {line!r}"
        jobs.append(CronJob(*fields))
    return variables, jobs


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines as systemd's EnvironmentFile= and ``set -a; . FILE`` both read them."""
    env: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f"{path}: not KEY=value: {line!r}"
        env[key] = value
    return env


# ---------------------------------------------------------------------------------------------
# The configs' contents.


@dataclass(frozen=True)
class VectorSource:
    """One Vector exec source."""

    path: Path
    name: str
    spec: dict[str, Any]

    @property
    def command(self) -> list[str]:
        command = self.spec["command"]
        assert isinstance(command, list)
        return [str(part) for part in command]

    @property
    def environment(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.spec.get("environment") or {}).items()}

    @property
    def max_length(self) -> int:
        return int(self.spec["framing"]["newline_delimited"]["max_length"])


def vector_sources(path: Path) -> list[VectorSource]:
    """The exec sources of a Vector config."""
    config = read_vector(path)
    return [
        VectorSource(path, name, spec) for name, spec in config.get("sources", {}).items() if spec.get("type") == "exec"
    ]


def all_vector_sources() -> list[VectorSource]:
    """Every exec source of every shipped Vector config."""
    return [source for path in VECTOR_CONFIGS for source in vector_sources(path)]


_VECTOR_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}")


def vector_interpolate(text: str, env: Mapping[str, str]) -> str:
    """Vector's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` substitution at load time.

    As in Vector v0.57.0 (src/config/vars.rs): a missing ``${VAR}`` without a default is an
    error too, and ``:-`` also replaces an empty value.
    """

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        if op is None:
            if value is None:
                msg = f"Vector would refuse the config: {name} is missing"
                raise KeyError(msg)
            return value
        if value:
            return value
        if op == ":?":
            msg = f"Vector would refuse the config: {name} is not set ({arg})"
            raise KeyError(msg)
        return arg

    return _VECTOR_VAR.sub(replace, text)


@dataclass(frozen=True)
class FluentBitInput:
    """One Fluent Bit exec input, with its parser, whichever file format it came from."""

    path: Path
    settings: dict[str, str]
    parser: dict[str, str]

    @property
    def command(self) -> str:
        return self.settings["command"]

    @property
    def buf_size(self) -> int:
        return parse_size(self.settings["buf_size"])

    @property
    def oneshot(self) -> bool:
        """Runs its command once, when Fluent Bit starts (in_exec's ``oneshot``), not on an interval."""
        return self.settings.get("oneshot", "off").lower() in FLUENT_BIT_TRUE

    def run_times(self, horizon: int) -> list[int]:
        """When in_exec runs the command, in seconds after Fluent Bit starts, up to ``horizon``.

        As in fluent/fluent-bit v5.1.1: a ``oneshot`` input (or one with ``exit_after_oneshot``,
        which implies it) runs once, kicked by ``in_exec_prerun`` at start, and its interval is
        ignored (in_exec_config_read sets it to -1); any other input gets a timer collector whose
        first expiry is start + interval_sec and then every interval_sec
        (lib/monkey/mk_core/mk_event_epoll.c, _mk_event_timeout_create; default interval 1 s).
        """
        if self.oneshot or self.settings.get("exit_after_oneshot", "off").lower() in FLUENT_BIT_TRUE:
            return [0]
        interval = int(self.settings.get("interval_sec", "1"))
        return list(range(interval, horizon + 1, interval))


#: Boolean values Fluent Bit reads as true (src/flb_utils.c, flb_utils_bool).
FLUENT_BIT_TRUE = ("on", "true", "yes")


def _text(value: Any) -> str:
    """A YAML scalar as Fluent Bit sees it (YAML 1.1 turns on/off/false into booleans)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def fluent_bit_pipeline(path: Path) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """(inputs, outputs, parsers) of a YAML or classic Fluent Bit config, keys lower-cased."""
    if path.suffix == ".conf":
        sections = read_fluent_bit_classic(path)
        inputs = [s for name, s in sections if name == "INPUT"]
        outputs = [s for name, s in sections if name == "OUTPUT"]
        parsers: list[dict[str, str]] = []
        for name, service in sections:
            if name == "SERVICE" and "parsers_file" in service:
                parsers_path = path.parent / Path(service["parsers_file"]).name
                parsers += [s for n, s in read_fluent_bit_classic(parsers_path) if n == "PARSER"]
        return inputs, outputs, parsers
    data = read_yaml(path)

    def lower(items: list[dict[str, Any]]) -> list[dict[str, str]]:
        return [{str(k).lower(): _text(v) for k, v in item.items()} for item in items]

    pipeline = data["pipeline"]
    return lower(pipeline["inputs"]), lower(pipeline["outputs"]), lower(data.get("parsers", []))


def fluent_bit_inputs(path: Path) -> list[FluentBitInput]:
    """The exec inputs of a Fluent Bit config, each with the parser it names."""
    inputs, _, parsers = fluent_bit_pipeline(path)
    by_name = {p["name"]: p for p in parsers}
    found = []
    for item in inputs:
        if item["name"] != "exec":
            continue
        assert item.get("parser") in by_name, f"{path}: exec input names parser {item.get('parser')!r}, not defined"
        found.append(FluentBitInput(path, item, by_name[item["parser"]]))
    return found


def parse_size(text: str) -> int:
    """Fluent Bit's size values; a unit is read as powers of 1000, the smaller reading."""
    match = re.fullmatch(r"(\d+)\s*([kKmM]?)[bB]?", text.strip())
    assert match, f"not a size: {text!r}"
    return int(match.group(1)) * {"": 1, "k": 1000, "m": 1000_000}[match.group(2).lower()]


def split_shell_command(command: str) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=value`` assignments and the argv of a ``/bin/sh -c`` command line."""
    words = shlex.split(command)
    assignments: dict[str, str] = {}
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        name, _, value = words.pop(0).partition("=")
        assignments[name] = value
    return assignments, words


def program_settings(argv: list[str], env: Mapping[str, str]) -> Config:
    """The settings ``zoom-oplog-shipper run`` derives from this argv and environment.

    Parses the argv with the program's own parser (an unknown flag fails here, as it would in
    the agent) and merges it with the environment the way the program does.
    """
    assert argv[:2] == [CONSOLE_SCRIPT, "run"], f"not `{CONSOLE_SCRIPT} run ...`: {argv}"
    args = build_parser().parse_args(argv[1:])
    flags = {k: v for k, v in vars(args).items() if k != "command"}
    return load_config(flags, env, datetime.now(UTC), need_credentials=False)


def duration_seconds(text: str) -> int:
    """systemd time spans as the shipped units write them: ``15min``, ``90s``, ``1h``."""
    match = re.fullmatch(r"(\d+)\s*(s|sec|min|m|h)?", text.strip())
    assert match, f"not a time span: {text!r}"
    return int(match.group(1)) * {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[match.group(2)]


def cron_period_seconds(minute: str, hour: str, day: str, month: str, weekday: str) -> int:
    """The period of the shipped schedules (a fixed minute of every hour); anything else fails."""
    assert re.fullmatch(r"\d{1,2}", minute) and int(minute) < 60, f"minute {minute!r} is not one fixed minute"
    assert (hour, day, month, weekday) == ("*", "*", "*", "*"), "only hourly schedules are shipped"
    return 3600


# ---------------------------------------------------------------------------------------------
# How each agent reads stdout.


def fgets_records(data: bytes, buf_size: int) -> list[bytes]:
    """Fluent Bit's exec input: ``fgets(buf, buf_size)`` then one trailing newline removed.

    fgets stops after a newline or after ``buf_size - 1`` bytes, so a longer line arrives in
    pieces, each handed to the parser on its own.
    """
    out: list[bytes] = []
    pos = 0
    limit = buf_size - 1
    while pos < len(data):
        end = data.find(b"\n", pos, pos + limit)
        stop = end + 1 if end != -1 else min(pos + limit, len(data))
        chunk = data[pos:stop]
        pos = stop
        out.append(chunk[:-1] if chunk.endswith(b"\n") else chunk)
    return out


def newline_frames(data: bytes, max_length: int | None) -> tuple[list[bytes], int]:
    """Vector's newline_delimited framing: (frames, how many were discarded for exceeding max_length)."""
    frames = data.split(b"\n")
    if frames and frames[-1] == b"":
        frames.pop()
    if max_length is None:
        return frames, 0
    kept = [f for f in frames if len(f) <= max_length]
    return kept, len(frames) - len(kept)


def splunk_events(data: bytes, truncate: int) -> list[bytes]:
    """Splunk with ``LINE_BREAKER = ([\\r\\n]+)``, ``SHOULD_LINEMERGE = false`` and ``TRUNCATE``."""
    return [line[:truncate] for line in re.split(rb"[\r\n]+", data) if line]


def fluent_bit_time_format(fmt: str) -> str:
    """Fluent Bit's strptime format as Python's (``%L`` is the fraction of a second)."""
    return fmt.replace("%L", "%f")


def splunk_time_format(fmt: str) -> str:
    """Splunk's TIME_FORMAT as Python's: ``%3N`` is milliseconds."""
    return re.sub(r"%\d?N", "%f", fmt)


def to_python_datetime(text: str, python_format: str) -> datetime:
    """``strptime`` that reads a format without an offset as UTC (every shipped format means UTC)."""
    parsed = datetime.strptime(text, python_format)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# A simulated Zoom account.


#: The two streams and what tells their events apart downstream.
OPERATIONS = "operations"
ACTIVITIES = "activities"
DATASETS = {OPERATIONS: "zoom.operation", ACTIVITIES: "zoom.activity"}
SOURCETYPES = {OPERATIONS: "zoom:operation", ACTIVITIES: "zoom:activity"}
DATA_STREAMS = {stream: f"logs-{dataset}-default" for stream, dataset in DATASETS.items()}


@dataclass(frozen=True)
class Account:
    """A simulator's credentials and the records it serves, per stream."""

    config: SimulatorConfig
    records: list[dict[str, Any]]
    activities: list[dict[str, Any]]

    def served(self, stream: str) -> list[dict[str, Any]]:
        """The records of ``stream`` (operations or activities)."""
        return self.activities if stream == ACTIVITIES else self.records


#: operation_detail lengths chosen around the limits that matter: Fluent Bit's default buf_size
#: (4096), Splunk's default TRUNCATE (10000), the program's line limit (16384).
LONG_DETAILS = (
    ("Update Group Sales-Team  - Members: added ", 6_000, "a"),
    ("Update Group Support  - Members: added ", 11_000, "b"),
    ("Edit User x@example.com  - Notes: ", 14_000, "c"),
    ("Update Group Ops  - Members: added ", 30_000, "d"),
    ("Account Settings  - Welcome text: from ", 9_000, "日本語é"),
)


def make_records(seed: int, end: datetime, per_day: int = 110) -> list[dict[str, Any]]:
    """Two days of generated records ending at ``end``, plus records with very long details."""
    records: list[dict[str, Any]] = list(generate_records(seed, 2, per_day, end))
    for n, (head, size, filler) in enumerate(LONG_DETAILS):
        body = (filler * (size // len(filler) + 1))[: size - len(head)]
        when = (end - timedelta(hours=3, minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        records.append(
            {
                "action": "Update",
                "category_type": "User Group" if "Group" in head else "Account",
                "operation_detail": head + body,
                "operator": f"admin{n}@example.com",
                "time": when,
            }
        )
    return records


#: Activity records the generator may not draw: an address that is not one (kept as a keyword
#: in zoom.activity.ip_address, no source.ip), IPv6, no address, an unknown type.
ODD_ACTIVITIES = (
    {
        "email": "odd.one@example.com",
        "type": "Sign in",
        "ip_address": "unknown",
        "client_type": "Browser",
        "version": "-",
    },
    {"email": "odd.two@example.com", "type": "Sign out", "ip_address": "2001:db8::7", "client_type": "mac"},
    {"email": "odd.three@example.com", "type": "Sign in", "client_type": "Zoom Rooms", "version": "6.1.0.45012"},
    {"email": "odd.four@example.com", "type": "Password reset", "ip_address": "198.51.100.4"},
)


def make_activities(seed: int, end: datetime, per_day: int = 60) -> list[dict[str, Any]]:
    """Two days of generated sign-in/sign-out records ending at ``end``, plus the odd ones."""
    records: list[dict[str, Any]] = list(generate_activity_records(seed, 2, per_day, end))
    for n, odd in enumerate(ODD_ACTIVITIES):
        records.append({**odd, "time": (end - timedelta(hours=2, minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    return records


def make_account(name: str, seed: int, now: datetime) -> Account:
    """A simulator config with this account's own credentials and its records of both streams."""
    config = SimulatorConfig(
        account_id=f"{name}-account-id",
        client_id=f"{name}-client-id",
        client_secret=f"{name}-client-secret-value",
    )
    end = now - timedelta(hours=1)
    return Account(config, make_records(seed, end), make_activities(seed, end))


def start_simulator(account: Account) -> Any:
    """Serve the account's records of both streams on loopback; returns a RunningServer (call ``shutdown``)."""
    from zoom_oplog_shipper.simulator import serve_in_thread

    sim = Simulator(account.config)
    sim.add_records(account.records)
    sim.add_records(account.activities, stream=ACTIVITIES)
    return serve_in_thread(sim)


@dataclass(frozen=True)
class Zoom:
    """A served simulated account."""

    account: Account
    base_url: str
    now: datetime


@contextmanager
def served_accounts(seeds: Mapping[str, int]) -> Iterator[dict[str, Zoom]]:
    """One simulator per account name, with records drawn from its seed; all shut down on leaving."""
    now = datetime.now(UTC)
    served: dict[str, Zoom] = {}
    servers = []
    try:
        for name, seed in seeds.items():
            account = make_account(name, seed, now)
            server = start_simulator(account)
            servers.append(server)
            served[name] = Zoom(account, server.base_url, now)
        yield served
    finally:
        for server in servers:
            server.shutdown()


def zoom_env(base_url: str, now: datetime) -> dict[str, str]:
    """The simulator's URLs and test-friendly limits, as the agent's environment would carry them."""
    return {
        "ZOOM_API_URL": f"{base_url}/v2",
        "ZOOM_OAUTH_URL": f"{base_url}/oauth/token",
        "ZOOM_OPLOG_MAX_RPS": "0",
        "ZOOM_BACKFILL_START": (now - timedelta(days=5)).strftime("%Y-%m-%d"),
    }


def credentials_env(account: Account, prefix: str = "ZOOM_") -> dict[str, str]:
    """``ZOOM_ACCOUNT_ID``/``ZOOM_CLIENT_ID``/``ZOOM_CLIENT_SECRET`` (or ``ZOOM_<NAME>_...``)."""
    cfg = account.config
    return {
        f"{prefix}ACCOUNT_ID": cfg.account_id,
        f"{prefix}CLIENT_ID": cfg.client_id,
        f"{prefix}CLIENT_SECRET": cfg.client_secret,
    }


def base_env(home: Path) -> dict[str, str]:
    """A clean process environment: the venv's bin first on PATH, a private HOME."""
    return {
        "PATH": f"{console_script().parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "LANG": "C.UTF-8",
    }


_RELOCATED = re.compile("|".join(re.escape(p) for p in sorted(RELOCATED_PATHS, key=len, reverse=True)))


def relocate(text: str, root: Path) -> str:
    """Move the configs' deployment paths under ``root`` (e.g. /var/lib/vector -> root/var/lib/vector).

    One pass, longest path first: /var/lib/zoom-oplog-shipper-metrics moves once, not as
    /var/lib/zoom-oplog-shipper followed by "-metrics".
    """
    return _RELOCATED.sub(lambda match: str(root) + match.group(0), text)


def iter_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (dotted path, string) in a nested structure, keys included as their own entries."""
    if isinstance(value, dict):
        for k, v in value.items():
            child = f"{path}.{k}" if path else str(k)
            yield f"{child}<key>", str(k)
            yield from iter_strings(v, child)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from iter_strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def emitted_lines(output_format: str = "ecs", stream: str = OPERATIONS) -> list[bytes]:
    """The lines one `run --format FORMAT --stream STREAM` prints against the simulator (long
    operation records and odd activity records included)."""
    import io
    import tempfile

    from zoom_oplog_shipper.cli import main

    now = datetime.now(UTC)
    account = make_account("configs", 5, now)
    server = start_simulator(account)
    out, err = io.BytesIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as state:
        env = {**zoom_env(server.base_url, now), **credentials_env(account), "ZOOM_OPLOG_STATE_DIR": state}
        try:
            argv = ["run", "--format", output_format, "--stream", stream]
            code = main(argv, env=env, stdout=out, stderr=err)
        finally:
            server.shutdown()
    assert code == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert len(lines) == len(account.served(stream))
    return lines


def read_metrics_file(path: Path) -> dict[str, tuple[dict[str, str], float]]:
    """The gauges of a metrics file as node_exporter's textfile collector parses them (the
    Prometheus text format): name -> (labels, value)."""
    from prometheus_client.parser import text_string_to_metric_families

    gauges = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        assert family.type == "gauge", family.name
        (sample,) = family.samples
        assert sample.timestamp is None  # the collector refuses files with timestamps
        gauges[sample.name] = (dict(sample.labels), sample.value)
    return gauges


def assert_metrics_of_a_success(path: Path, account_id: str, stream: str) -> None:
    """A metrics file written by a run of ``stream`` for the account that exited 0."""
    gauges = read_metrics_file(path)
    labels, exit_code = gauges["zoom_oplog_last_exit_code"]
    assert exit_code == 0
    assert labels["account"] == account_id and labels["stream"] == stream
    assert "zoom_oplog_last_success_timestamp_seconds" in gauges
    assert all(lb == labels for lb, _ in gauges.values())  # one series per gauge, one label set
