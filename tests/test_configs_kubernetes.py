"""configs/kubernetes and the image (issue 10, section 6; issue 11), tested statically (no cluster, no
docker build here): a CronJob per account and stream, one claim per CronJob, staggered schedules,
bounded runs, the secret as a file, the base image and the dependencies pinned, and a build context
that holds only what the image copies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from agent_configs import (
    ACTIVITIES,
    CONSOLE_SCRIPT,
    K8S_CRONJOB,
    OPERATIONS,
    ROOT,
    cron_period_seconds,
    program_settings,
    read_yaml_all,
)
from packaging.requirements import Requirement

K8S = K8S_CRONJOB.parent
DOCKERFILE = K8S / "Dockerfile"
REQUIREMENTS = K8S / "requirements.txt"
BUILD_REQUIREMENTS = K8S / "build-requirements.txt"
DOCKERIGNORE = ROOT / ".dockerignore"
#: Container runtimes split longer log lines into partial lines.
CRI_LINE_LIMIT = 16384
#: The kubelet's defaults: containerLogMaxSize 10Mi, containerLogMaxFiles 5.
KUBELET_LOG_BYTES = 10 * 1024 * 1024 * 5
#: Records per page (the program asks Zoom for 300); a run stops after the page that reaches --max-records.
PAGE_SIZE = 300


def documents() -> list[dict[str, Any]]:
    return read_yaml_all(K8S_CRONJOB)


def cronjobs() -> list[dict[str, Any]]:
    return [d for d in documents() if d["kind"] == "CronJob"]


def pod(cron: dict[str, Any]) -> dict[str, Any]:
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def container(cron: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod(cron)["containers"]
    assert isinstance(only, dict)
    return only


def settings(cron: dict[str, Any]) -> Any:
    c = container(cron)
    values = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    return program_settings(c["command"], {k: v for k, v in values.items() if k != "ZOOM_CLIENT_SECRET_FILE"})


CRONJOBS = cronjobs()


def _name(cron: dict[str, Any]) -> str:
    return str(cron["metadata"]["name"])


def test_one_claim_per_account_and_no_shared_claim() -> None:
    claims = {d["metadata"]["name"]: d for d in documents() if d["kind"] == "PersistentVolumeClaim"}
    used = []
    for cron in CRONJOBS:
        (volume,) = [v for v in pod(cron)["volumes"] if "persistentVolumeClaim" in v]
        used.append(volume["persistentVolumeClaim"]["claimName"])
    assert len(CRONJOBS) >= 2
    assert sorted(used) == sorted(claims), "every CronJob has its own claim, and every claim a CronJob"
    for claim in claims.values():
        # ReadWriteMany means a network file system, where SQLite's locking cannot be relied on.
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_schedules_are_staggered() -> None:
    minutes = [cron["spec"]["schedule"].split()[0] for cron in CRONJOBS]
    assert len(set(minutes)) == len(minutes)


def account_of(cron: dict[str, Any]) -> str:
    """The account a CronJob serves: the Secret its account id comes from."""
    env = {e["name"]: e for e in container(cron)["env"]}
    return str(env["ZOOM_ACCOUNT_ID"]["valueFrom"]["secretKeyRef"]["name"])


def test_every_account_ships_both_streams() -> None:
    streams: dict[str, list[str]] = {}
    for cron in CRONJOBS:
        streams.setdefault(account_of(cron), []).append(settings(cron).stream)
    assert len(streams) >= 2
    assert all(sorted(s) == [ACTIVITIES, OPERATIONS] for s in streams.values()), streams


@pytest.mark.parametrize("cron", [c for c in CRONJOBS if settings(c).stream == ACTIVITIES], ids=_name)
def test_activity_cronjob_is_its_accounts_operations_cronjob_with_the_stream(cron: dict[str, Any]) -> None:
    # Same Secret, settings, bounds and sandbox; only the name, labels, schedule, command and claim differ.
    (twin,) = [c for c in CRONJOBS if account_of(c) == account_of(cron) and settings(c).stream == OPERATIONS]
    mine, theirs = container(cron), container(twin)
    # The same command with the stream, and its own metrics file.
    assert mine["command"] == [
        CONSOLE_SCRIPT,
        "run",
        "--stream",
        ACTIVITIES,
        *(word.replace(f"_{OPERATIONS}.prom", f"_{ACTIVITIES}.prom") for word in theirs["command"][2:]),
    ]
    assert {k: v for k, v in mine.items() if k != "command"} == {k: v for k, v in theirs.items() if k != "command"}
    assert cron["metadata"]["name"] == f"{twin['metadata']['name']}-activities"
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for c in (cron, twin)
        for v in pod(c)["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert len(set(claims)) == 2
    for key in ("concurrencyPolicy", "startingDeadlineSeconds"):
        assert cron["spec"][key] == twin["spec"][key]
    assert cron["spec"]["jobTemplate"]["spec"] | {"template": None} == twin["spec"]["jobTemplate"]["spec"] | {
        "template": None
    }


@pytest.mark.parametrize("cron", CRONJOBS, ids=_name)
def test_cronjob_runs_bounded_and_alone(cron: dict[str, Any]) -> None:
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    period = cron_period_seconds(*spec["schedule"].split())
    job = spec["jobTemplate"]["spec"]
    cfg = settings(cron)
    assert container(cron)["command"][:2] == [CONSOLE_SCRIPT, "run"]
    # The program stops itself first; Kubernetes' deadline only catches a hang; the next run waits.
    assert cfg.max_runtime.total_seconds() < job["activeDeadlineSeconds"] < period
    assert cfg.max_line_bytes < CRI_LINE_LIMIT
    assert cfg.log_format == "json"
    assert pod(cron)["restartPolicy"] == "Never"
    assert pod(cron)["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("cron", CRONJOBS, ids=_name)
def test_a_run_prints_less_than_the_kubelet_keeps(cron: dict[str, Any]) -> None:
    cfg = settings(cron)
    assert cfg.max_records > 0
    # The worst case: every record at the line limit, plus the page that crossed the limit.
    assert (cfg.max_records + PAGE_SIZE) * (cfg.max_line_bytes + 1) < KUBELET_LOG_BYTES


@pytest.mark.parametrize("cron", CRONJOBS, ids=_name)
def test_no_service_account_token_and_the_secret_as_a_file(cron: dict[str, Any]) -> None:
    spec = pod(cron)
    assert spec["automountServiceAccountToken"] is False
    c = container(cron)
    env = {e["name"]: e for e in c["env"]}
    assert "ZOOM_CLIENT_SECRET" not in env
    for name in ("ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"]
    secret_file = Path(env["ZOOM_CLIENT_SECRET_FILE"]["value"])
    (mount,) = [m for m in c["volumeMounts"] if secret_file.is_relative_to(m["mountPath"])]
    assert mount["readOnly"] is True
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert secret["defaultMode"] == 0o400
    (item,) = secret["items"]
    assert Path(mount["mountPath"]) / item["path"] == secret_file
    # The same Secret holds the other credentials.
    assert {env[n]["valueFrom"]["secretKeyRef"]["name"] for n in ("ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID")} == {
        secret["secretName"]
    }
    assert "ZOOM_BACKFILL_START" in env


@pytest.mark.parametrize("cron", CRONJOBS, ids=_name)
def test_state_lives_on_the_claim(cron: dict[str, Any]) -> None:
    c = container(cron)
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "state"]
    assert str(settings(cron).state_dir) == mount["mountPath"]


# ---------------------------------------------------------------------------------------------
# The image.


def dockerfile_lines() -> list[str]:
    return [ln for ln in DOCKERFILE.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]


def test_base_image_is_pinned_to_an_exact_python_and_debian_release() -> None:
    (arg,) = [ln for ln in dockerfile_lines() if ln.startswith("ARG PYTHON_IMAGE=")]
    image = arg.partition("=")[2]
    assert re.fullmatch(r"python:3\.12\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", image), image
    froms = [ln for ln in dockerfile_lines() if ln.startswith("FROM ")]
    assert froms and all(ln.split()[1] == "${PYTHON_IMAGE}" for ln in froms)
    assert "imagetools inspect" in DOCKERFILE.read_text(encoding="utf-8")  # how to pin the digest


def requirements(path: Path) -> dict[str, tuple[Requirement, list[str]]]:
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    found = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        spec, *hashes = line.split(" --hash=")
        req = Requirement(spec.strip())
        found[req.name.lower()] = (req, [h.strip() for h in hashes])
    return found


@pytest.mark.parametrize("path", [REQUIREMENTS, BUILD_REQUIREMENTS], ids=lambda p: p.name)
def test_dependencies_are_pinned_by_hash_and_installed_with_require_hashes(path: Path) -> None:
    reqs = requirements(path)
    assert reqs
    for name, (req, hashes) in reqs.items():
        (spec,) = req.specifier
        assert spec.operator == "==", name
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name
    installs = [ln for ln in DOCKERFILE.read_text(encoding="utf-8").splitlines() if f"-r /req/{path.name}" in ln]
    assert installs and all("--require-hashes" in ln and "--only-binary=:all:" in ln for ln in installs)


def test_pinned_versions_satisfy_the_projects_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pinned = requirements(REQUIREMENTS)
    for dependency in project["project"]["dependencies"]:
        req = Requirement(dependency)
        version = next(iter(pinned[req.name.lower()][0].specifier)).version
        assert req.specifier.contains(version), f"{req.name} {version} is outside {req.specifier}"
    backend = Requirement(project["build-system"]["requires"][0])
    version = next(iter(requirements(BUILD_REQUIREMENTS)[backend.name][0].specifier)).version
    assert backend.specifier.contains(version)


def copy_sources() -> list[str]:
    sources = []
    for line in dockerfile_lines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    return sources


def dockerignore_allows(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes."""
    allowed = True
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if re.fullmatch(regex, path) or re.fullmatch(regex + "/.*", path):
            allowed = negate
    return allowed


def test_dockerignore_keeps_the_context_to_what_the_image_copies() -> None:
    sources = copy_sources()
    assert "zoom_oplog_shipper" in sources and "pyproject.toml" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert dockerignore_allows(source), f".dockerignore excludes {source}, which the Dockerfile copies"
    assert dockerignore_allows("zoom_oplog_shipper/cli.py")
    for private in (".venv/bin/python", ".git/config", "tests/conftest.py", "zoom_oplog_shipper/__pycache__/x.pyc"):
        assert not dockerignore_allows(private), private


def test_image_runs_as_non_root_with_the_cronjobs_user() -> None:
    (user,) = [ln for ln in dockerfile_lines() if ln.startswith("USER ")]
    uid, gid = user.split()[1].split(":")
    for cron in CRONJOBS:
        context = pod(cron)["securityContext"]
        assert (str(context["runAsUser"]), str(context["runAsGroup"])) == (uid, gid)
