"""Installing as the README says (issue 15, part 1): its install commands, taken from the README by
their markers and run as they are written in a fresh copy of the source tree, install a program
that runs from the installed place; the version is declared once and the CHANGELOG's newest
release is that version.

pip and pipx reach no network here: pip reads only the offline package index at /opt/pypi/simple
(no config file, a proxy that refuses every connection), and the test is skipped where there is no
such index. ``sudo`` is a shim that runs the command (the tests run as root, as sudo would), and
pipx's global locations (/opt/pipx, /usr/local/bin) are moved under the test's directory with
pipx's own PIPX_GLOBAL_* variables.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from zoom_oplog_shipper import __version__

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CHANGELOG = ROOT / "CHANGELOG.md"
CI = ROOT / ".ci" / "run"
OFFLINE_INDEX = Path("/opt/pypi/simple")
#: What building and installing the wheel takes from the index: the build backend and its
#: dependencies, pip (pipx upgrades its shared one) and the program's own dependencies.
NEEDED_FROM_INDEX = ("hatchling", "pip", "requests", "orjson", "platformdirs", "filelock")
#: A local port nothing listens on: any attempt to reach the internet through a proxy fails at once.
REFUSING_PROXY = "http://127.0.0.1:9"
INSTALL_TIMEOUT = 600
#: Never copied into the fresh source tree: what a clone does not have.
NOT_IN_A_CLONE = (".git", ".venv", "dist", "build", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")


# ---------------------------------------------------------------------------------------------
# The README's commands.


def readme_block(marker: str) -> str:
    """The ``sh`` block that follows ``<!-- MARKER ...-->`` in the README, its lines dedented."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {re.escape(marker)}\b[^>]*-->\n\s*```sh\n(.*?)\n\s*```", text, re.S)
    assert match, f"README.md has no sh block after <!-- {marker} -->"
    return textwrap.dedent(match.group(1)) + "\n"


def test_the_install_blocks_are_in_the_install_section() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Install the program") :]
    for marker in ("install:pipx", "install:venv"):
        assert section.index(f"<!-- {marker}") < section.index("\n## ")
        block = readme_block(marker)
        # Built from the clone, installed from the wheel, and checked from the installed place.
        assert "pip wheel --no-deps --wheel-dir dist ." in block
        assert block.rstrip().endswith("zoom-oplog-shipper --version")


def test_no_doc_installs_from_an_index_that_does_not_have_the_package() -> None:
    # The package is on no index: `pipx install zoom-oplog-shipper` and `pip install
    # zoom-oplog-shipper` fail as written.
    pages = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "configs").rglob("*"))]
    for page in (p for p in pages if p.is_file()):
        text = page.read_text(encoding="utf-8", errors="replace")
        found = re.findall(r"(?:pipx|pip) install (?:--global )?zoom-oplog-shipper\b", text)
        assert not found, f"{page.relative_to(ROOT)}: {found}"


def test_ci_installs_as_the_readme_says() -> None:
    # .ci/run is the quick start's two commands in a fresh venv: no other pip install (no pip
    # upgrade either: a user's venv has the pip that venv gave it).
    text = README.read_text(encoding="utf-8")
    quick_start = text[text.index("## Quick start") : text.index("## With a real account")]
    readme_installs = set(re.findall(r"pip install ([^&\n]+?)\s*(?:&&|$)", quick_start, re.M))
    ci_installs = set()
    for line in CI.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\s*(python -m )?pip install", line):
            ci_installs.add(re.sub(r"^\s*(python -m )?pip install (-q )?", "", line).strip())
    assert readme_installs == {".", "-e '.[test]'"}
    assert ci_installs == readme_installs
    assert "python3 -m venv .venv" in CI.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Running them.


needs_offline_index = pytest.mark.skipif(
    not all((OFFLINE_INDEX / name).is_dir() for name in NEEDED_FROM_INDEX),
    reason=f"no offline package index at {OFFLINE_INDEX} with {', '.join(NEEDED_FROM_INDEX)}: "
    "this test installs with pip and pipx and never reaches the internet",
)


def source_tree(tmp_path: Path) -> Path:
    """A copy of the source tree as a clone has it (no venv, no build output)."""
    tree = tmp_path / "zoom-oplog-shipper"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(*NOT_IN_A_CLONE), symlinks=True)
    return tree


def shims(tmp_path: Path) -> Path:
    """``sudo`` (runs its command: the tests are root), ``python3`` (the base interpreter, not this
    venv's, which has the program installed) and this venv's ``pipx``."""
    pipx = Path(sys.executable).parent / "pipx"
    if not pipx.is_file():
        pytest.fail(f"pipx is not installed next to {sys.executable}: pip install -e '.[test]'")
    bin_dir = tmp_path / "shims"
    bin_dir.mkdir()
    sudo = bin_dir / "sudo"
    sudo.write_text('#!/bin/sh\nexec "$@"\n', encoding="utf-8")
    sudo.chmod(0o755)
    (bin_dir / "python3").symlink_to(sys._base_executable)  # type: ignore[attr-defined]
    (bin_dir / "pipx").symlink_to(pipx)
    return bin_dir


def offline_env(tmp_path: Path, path: list[Path]) -> dict[str, str]:
    """A clean environment whose pip reads only the offline index."""
    env = {
        "PATH": ":".join([*map(str, path), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": OFFLINE_INDEX.as_uri(),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
    }
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[name] = REFUSING_PROXY
    return env


def run_block(block: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The block's lines as one shell script that stops at the first failing line."""
    return subprocess.run(
        ["/bin/sh", "-ec", block], cwd=cwd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
    )


def assert_installed(result: subprocess.CompletedProcess[str], tree: Path, bin_dir: Path, venv: Path) -> None:
    """The block printed the version from the command in bin_dir, which runs a real (not
    editable) install in venv, and the installed program works."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == f"zoom-oplog-shipper {__version__}"
    assert (tree / "dist" / f"zoom_oplog_shipper-{__version__}-py3-none-any.whl").is_file()
    command = bin_dir / "zoom-oplog-shipper"
    assert command.resolve().is_relative_to(venv.resolve()), command.resolve()
    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import zoom_oplog_shipper; print(zoom_oplog_shipper.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd="/",
    )
    assert Path(located.stdout.strip()).resolve().is_relative_to(venv.resolve()), located.stdout
    demo = subprocess.run([str(command), "demo", "--days", "1"], capture_output=True, timeout=120, check=False, cwd="/")
    assert demo.returncode == 0, demo.stderr.decode(errors="replace")[-2000:]
    lines = demo.stdout.splitlines()
    assert lines and all(json.loads(line)["event"]["dataset"] == "zoom.operation" for line in lines)


@needs_offline_index
def test_pipx_global_install_as_the_readme_says(tmp_path: Path) -> None:
    tree = source_tree(tmp_path)
    home, bin_dir = tmp_path / "opt" / "pipx", tmp_path / "usr" / "local" / "bin"
    env = offline_env(tmp_path, [shims(tmp_path), bin_dir])
    env |= {
        "PIPX_HOME": str(tmp_path / "user-pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "user-bin"),
        "PIPX_MAN_DIR": str(tmp_path / "user-man"),
        "PIPX_GLOBAL_HOME": str(home),
        "PIPX_GLOBAL_BIN_DIR": str(bin_dir),
        "PIPX_GLOBAL_MAN_DIR": str(tmp_path / "usr" / "local" / "share" / "man"),
    }
    result = run_block(readme_block("install:pipx"), tree, env)
    assert_installed(result, tree, bin_dir, home / "venvs" / "zoom-oplog-shipper")
    assert not (tmp_path / "user-bin").exists()  # --global: nothing in a user's bin


@needs_offline_index
def test_venv_and_link_install_as_the_readme_says(tmp_path: Path) -> None:
    tree = source_tree(tmp_path)
    opt, bin_dir = tmp_path / "opt", tmp_path / "usr" / "local" / "bin"
    bin_dir.mkdir(parents=True)  # it exists on every system
    block = readme_block("install:venv")
    assert "/opt/zoom-oplog-shipper" in block and "/usr/local/bin/" in block
    block = block.replace("/opt/", f"{opt}/").replace("/usr/local/bin/", f"{bin_dir}/")
    env = offline_env(tmp_path, [shims(tmp_path), bin_dir])
    result = run_block(block, tree, env)
    assert_installed(result, tree, bin_dir, opt / "zoom-oplog-shipper")


# ---------------------------------------------------------------------------------------------
# One version.


RELEASE = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", re.M)


def test_the_changelogs_newest_release_is_the_package_version() -> None:
    text = CHANGELOG.read_text(encoding="utf-8")
    releases = RELEASE.findall(text)
    assert releases, "CHANGELOG.md has no release heading"
    assert releases[0][0] == __version__
    # Work after the release goes under [Unreleased], above it.
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert headings[0] == "Unreleased" and headings[1] == __version__
    dates = [date for _, date in releases]
    assert dates == sorted(dates, reverse=True)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_what_the_docs_call_an_upgrade_is_from_an_older_version() -> None:
    # The README, docs/state.md and the CHANGELOG tell how to upgrade from 0.1.0 (its store, its
    # units): the program that says so must be a later release than that.
    upgrade = re.compile(r"(?:upgrad\w* from|written by)[^.]*?\b(\d+\.\d+\.\d+)\b", re.I)
    pages = [README, CHANGELOG, *sorted((ROOT / "docs").glob("*.md"))]
    named = {(page.name, v) for page in pages for v in upgrade.findall(page.read_text(encoding="utf-8"))}
    assert ("README.md", "0.1.0") in named
    for page, version in sorted(named):
        assert _version(version) < _version(__version__), f"{page} tells how to upgrade from {version}"


def test_the_version_is_declared_once() -> None:
    # pyproject.toml reads it from the package (hatch), and nothing else names it.
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject
    assert 'path = "zoom_oplog_shipper/__init__.py"' in pyproject
    assert re.search(r'^__version__ = "(\d+\.\d+\.\d+)"$', (ROOT / "zoom_oplog_shipper/__init__.py").read_text(), re.M)


def test_the_image_tag_in_the_kubernetes_files_is_the_version() -> None:
    # The CronJobs run the image that the Dockerfile's comment tells how to build: one tag.
    kubernetes = ROOT / "configs" / "kubernetes"
    images = [
        container["image"]
        for doc in yaml.safe_load_all((kubernetes / "cronjob.yaml").read_text(encoding="utf-8"))
        if doc and doc["kind"] == "CronJob"
        for container in doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    ]
    assert images and {image.rsplit(":", 1)[1] for image in images} == {__version__}
    built = re.findall(r"-t \S+:(\S+) \.", (kubernetes / "Dockerfile").read_text(encoding="utf-8"))
    assert built == [__version__]
