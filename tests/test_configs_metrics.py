"""Every shipped config writes the metrics file (issue 15, part 7): each run of each account and
stream (Vector, Fluent Bit, Splunk, systemd, cron, Kubernetes) names its own `--metrics-file`, in
the directory docs/agents.md ("Metrics") names for node_exporter's textfile collector, and each
config makes that directory for the user that runs the program, as it does its state directory.

The end-to-end tests of each agent (test_configs_vector.py, test_configs_fluent_bit.py,
test_agents_e2e.py) run the exact commands and read the files they write.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from agent_configs import (
    ACTIVITIES,
    CONFIGS,
    CONSOLE_SCRIPT,
    CRON_FILE,
    FLUENT_BIT_CONF,
    FLUENT_BIT_MULTI,
    FLUENT_BIT_YAML,
    K8S_CRONJOB,
    METRICS_DIR,
    OPERATIONS,
    ROOT,
    VECTOR_MULTI,
    VECTOR_TOML,
    VECTOR_YAML,
    fluent_bit_inputs,
    ini_value,
    program_settings,
    read_cron_d,
    read_ini,
    read_yaml_all,
    split_shell_command,
    vector_sources,
)

DOCS = ROOT / "docs" / "agents.md"
SPLUNK_WRAPPER = CONFIGS / "splunk" / "bin" / "zoom_oplog_shipper.sh"
SYSTEMD = CONFIGS / "systemd"
TMPFILES = SYSTEMD / "zoom-oplog-shipper.tmpfiles"
CRON_MULTI = CONFIGS / "cron" / "zoom-oplog-shipper-multi-account"
SERVICES = sorted(SYSTEMD.glob("*.service"))
#: A templated unit's instance name, as the docs write it.
INSTANCE = "NAME"
#: The user each host config runs the program as: the packaged vector.service's User=vector,
#: fluent-bit.service has none (root), splunkd's user, the units' and cron lines' zoom-oplog.
USERS = {"vector": "vector", "fluent-bit": "root", "splunk": "splunk", "systemd": "zoom-oplog", "cron": "zoom-oplog"}


@dataclass(frozen=True)
class Run:
    """One scheduled run of the program in a config: whose, which stream, which metrics file."""

    path: Path
    account: str  # "" in a single-account config
    stream: str
    metrics: str

    def __str__(self) -> str:
        return f"{self.path.name}:{self.account or '-'}:{self.stream}"


def _placeholder(name: str) -> str:
    """A value for a variable the agent fills in (the values do not matter here)."""
    return (date.today() - timedelta(days=30)).isoformat() if name == "ZOOM_BACKFILL_START" else "x"


def _settings_metrics(argv: list[str], env: dict[str, str]) -> tuple[str, str]:
    """(stream, metrics file) as the program reads them from this argv and environment."""
    settings = program_settings(argv, env)
    return settings.stream, str(settings.metrics_file) if settings.metrics_file else ""


def vector_runs(path: Path) -> list[Run]:
    runs = []
    for source in vector_sources(path):
        env = {k: re.sub(r"\$\{[^}]*\}", _placeholder(k), v) for k, v in source.environment.items()}
        stream, metrics = _settings_metrics(source.command, env)
        account = re.sub(r"^zoom_(oplog|activity)_?", "", source.name)
        runs.append(Run(path, account, stream, metrics))
    return runs


def fluent_bit_runs(path: Path) -> list[Run]:
    runs = set()  # an hourly input and its oneshot twin are the same run
    for item in fluent_bit_inputs(path):
        assignments, argv = split_shell_command(item.command)
        stream, metrics = _settings_metrics(argv, {name: _placeholder(name) for name in assignments})
        account = item.settings["tag"].split(".")[2] if item.settings["tag"].count(".") == 2 else ""
        runs.add(Run(path, account, stream, metrics))
    return sorted(runs, key=str)


def splunk_runs(tmp_dir: Path) -> list[Run]:
    """The wrapper run for each input's argument, with a stand-in program that prints its argv."""
    stub = tmp_dir / CONSOLE_SCRIPT
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n', encoding="utf-8")
    stub.chmod(0o755)
    runs = []
    for argument in ([], [ACTIVITIES]):
        result = subprocess.run(
            [str(SPLUNK_WRAPPER), *argument, "-index", "zoom"],
            env={"PATH": f"{tmp_dir}:/usr/bin:/bin", "ZOOM_OPLOG_ENV_FILE": str(tmp_dir / "none")},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        stream, metrics = _settings_metrics([CONSOLE_SCRIPT, *result.stdout.splitlines()], {})
        runs.append(Run(SPLUNK_WRAPPER, "", stream, metrics))
    return runs


def systemd_runs() -> list[Run]:
    runs = []
    for path in SERVICES:
        argv = ini_value(read_ini(path)["Service"], "ExecStart").replace("%i", INSTANCE).split()
        assert Path(argv[0]).name == CONSOLE_SCRIPT
        stream, metrics = _settings_metrics([CONSOLE_SCRIPT, *argv[1:]], {})
        runs.append(Run(path, INSTANCE if "@" in path.name else "", stream, metrics))
    return runs


def cron_runs(path: Path) -> list[Run]:
    runs = []
    for job in read_cron_d(path)[1]:
        command = job.command.split("exec ", 1)[1].split(" >>", 1)[0]
        stream, metrics = _settings_metrics(shlex.split(command), {})
        account = re.search(r"/etc/zoom-oplog-shipper/(\w+)\.env", job.command)
        runs.append(Run(path, account.group(1) if account else "", stream, metrics))
    return runs


def kubernetes_runs() -> list[Run]:
    runs = []
    for doc in read_yaml_all(K8S_CRONJOB):
        if doc["kind"] != "CronJob":
            continue
        (container,) = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: str(e["value"]) for e in container["env"] if "value" in e}
        env.pop("ZOOM_CLIENT_SECRET_FILE")
        stream, metrics = _settings_metrics(container["command"], env)
        runs.append(Run(K8S_CRONJOB, doc["metadata"]["labels"]["app.kubernetes.io/instance"], stream, metrics))
    return runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Run]]:
    """Every config's runs, by the row of the docs table that describes them."""
    return {
        "Vector": vector_runs(VECTOR_YAML) + vector_runs(VECTOR_TOML),
        "Vector, several accounts": vector_runs(VECTOR_MULTI),
        "Fluent Bit": fluent_bit_runs(FLUENT_BIT_YAML) + fluent_bit_runs(FLUENT_BIT_CONF),
        "Fluent Bit, several accounts": fluent_bit_runs(FLUENT_BIT_MULTI),
        "Splunk": splunk_runs(tmp_path_factory.mktemp("splunk")),
        "systemd": systemd_runs(),
        "cron": cron_runs(CRON_FILE) + cron_runs(CRON_MULTI),
        "Kubernetes": kubernetes_runs(),
    }


# ---------------------------------------------------------------------------------------------
# Every run has its own file.


def test_every_run_of_every_config_writes_a_metrics_file(runs: dict[str, list[Run]]) -> None:
    everything = [run for group in runs.values() for run in group]
    assert len(everything) >= 30
    for run in everything:
        name = Path(run.metrics).name
        assert run.metrics, f"{run}: no --metrics-file"
        # node_exporter reads *.prom; the program's temporary file (.NAME.XXXX.tmp) is hidden.
        assert name.endswith(".prom") and not name.startswith("."), run
        assert f"_{run.stream}.prom" in name, run
        if run.account and run.path != K8S_CRONJOB:  # the accounts share the directory
            assert f"_{run.account}_" in name, run


@pytest.mark.parametrize(
    "paths",
    [
        (VECTOR_YAML,),
        (VECTOR_TOML,),
        (VECTOR_MULTI,),
        (FLUENT_BIT_YAML,),
        (FLUENT_BIT_CONF,),
        (FLUENT_BIT_MULTI,),
        (SPLUNK_WRAPPER,),
        tuple(SERVICES),
        (CRON_FILE,),
        (CRON_MULTI,),
        (K8S_CRONJOB,),
    ],
    ids=lambda paths: paths[0].parent.name if len(paths) > 1 else paths[0].name,
)
def test_no_two_runs_of_a_deployment_share_a_metrics_file(paths: tuple[Path, ...], runs: dict[str, list[Run]]) -> None:
    # Each run rewrites its whole file: two accounts or streams in one file would overwrite each
    # other's gauges. (Kubernetes: each CronJob has its own claim.)
    mine = [run for group in runs.values() for run in group if run.path in paths]
    assert {run.stream for run in mine} == {OPERATIONS, ACTIVITIES}
    where = [(run.account, run.metrics) if run.path == K8S_CRONJOB else run.metrics for run in mine]
    assert len(set(where)) == len(mine), sorted(map(str, mine))


def test_host_configs_write_to_one_directory_and_kubernetes_to_the_claim(runs: dict[str, list[Run]]) -> None:
    for row, group in runs.items():
        for run in group:
            if row == "Kubernetes":
                # Beside the state, on the CronJob's own claim.
                assert str(Path(run.metrics).parent) == "/var/lib/zoom-oplog-shipper", run
            else:
                assert str(Path(run.metrics).parent) == METRICS_DIR, run


# ---------------------------------------------------------------------------------------------
# The docs say where, and the configs make the directory.


def docs_table() -> dict[str, tuple[set[str], str]]:
    """docs/agents.md's metrics table: row -> (every file it names, braces expanded; the directory cell)."""
    text = DOCS.read_text(encoding="utf-8")
    lines = text[text.index("| config | metrics files | the directory |") :].splitlines()[2:]
    table = {}
    for line in lines:
        if not line.startswith("|"):
            break
        config, files, directory = (cell.strip() for cell in line.strip("|").split("|"))
        row = re.sub(r" \(.*\)$", "", config)
        named = set()
        for pattern in re.findall(r"`([^`]+\.prom)`", files):
            named |= set(_expand(pattern))
        table[row] = (named, directory)
    return table


def _expand(pattern: str) -> list[str]:
    """``a_{x,y}`` -> ``a_x``, ``a_y``, as a shell expands it."""
    match = re.search(r"\{([^}]*)\}", pattern)
    if not match:
        return [pattern]
    return [
        expanded
        for choice in match.group(1).split(",")
        for expanded in _expand(pattern[: match.start()] + choice + pattern[match.end() :])
    ]


def test_the_docs_name_every_metrics_file_each_config_writes(runs: dict[str, list[Run]]) -> None:
    table = docs_table()
    assert set(table) == set(runs)
    for row, group in runs.items():
        documented = table[row][0]
        written = {run.metrics for run in group}
        # Files named without a directory are in the row's first directory.
        directory = str(Path(sorted(p for p in documented if p.startswith("/"))[0]).parent)
        documented = {p if p.startswith("/") else f"{directory}/{p}" for p in documented}
        assert written == documented, row


@pytest.mark.parametrize("row", ["Vector", "Fluent Bit", "Splunk", "cron"])
def test_the_directory_is_made_for_the_user_that_runs_the_program(row: str) -> None:
    # As each config's state directory is: by hand at install, for the agent's user, readable by
    # node_exporter (0755). The config file itself says so too.
    user = USERS[{"Vector": "vector", "Fluent Bit": "fluent-bit", "Splunk": "splunk", "cron": "cron"}[row]]
    owner = "" if user == "root" else f"-o {user} -g {user} "
    command = f"install -d {owner}-m 0755 {METRICS_DIR}"
    assert command in docs_table()[row][1]
    files = {
        "Vector": [VECTOR_YAML, VECTOR_TOML, VECTOR_MULTI],
        "Fluent Bit": [FLUENT_BIT_YAML, FLUENT_BIT_CONF, FLUENT_BIT_MULTI],
        "Splunk": [SPLUNK_WRAPPER, CONFIGS / "splunk" / "inputs.conf"],
    }.get(row, [])
    for path in files:
        assert command in path.read_text(encoding="utf-8"), path.name
    if row == "cron":
        header = CRON_FILE.read_text(encoding="utf-8")
        assert METRICS_DIR in header and "(0755" in header


def test_systemd_makes_the_directory_and_lets_the_units_write_there() -> None:
    lines = [ln.split() for ln in TMPFILES.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    (made,) = [line for line in lines if line[1] == METRICS_DIR]
    assert made[0] == "d" and made[2] == "0755"
    for path in SERVICES:
        service = read_ini(path)["Service"]
        assert made[3:5] == [ini_value(service, "User"), ini_value(service, "Group")], path.name
        # ProtectSystem=strict makes the rest of the file system read-only.
        assert ini_value(service, "ProtectSystem") == "strict"
        writable = [v.lstrip("-") for k, v in service if k == "ReadWritePaths"]
        assert METRICS_DIR in writable, path.name
