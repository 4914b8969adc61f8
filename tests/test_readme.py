"""The README and docs/ say what the program and its files really are: links resolve, the agent
table matches docs/agents.md and the shipped configs, every command shown parses, and the quick
start is what CI runs."""

from __future__ import annotations

import re
import shlex
from itertools import product
from pathlib import Path

import pytest

from zoom_oplog_shipper.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def _table(text: str, header: str) -> list[list[str]]:
    """The rows (cells stripped) of the Markdown table that starts with ``header``."""
    lines = text[text.index(header) :].splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _expand(pattern: str) -> list[str]:
    """``a.{x,y}`` -> ``a.x``, ``a.y`` (every brace group, as a shell expands it)."""
    parts = re.split(r"\{([^}]*)\}", pattern)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in product(*choices)]


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target}: no such heading in {path.name}")
    assert not broken, f"{page.name}: {broken}"


def test_agent_table_is_the_one_in_docs_agents() -> None:
    header = "| you have | copy | section |"
    readme = _table(README.read_text(encoding="utf-8"), header)
    docs = _table((ROOT / "docs" / "agents.md").read_text(encoding="utf-8"), header)
    as_in_docs = [[cell.replace("(docs/agents.md#", "(#") for cell in row] for row in readme]
    assert as_in_docs == docs
    assert {row[0] for row in readme} >= {"Vector", "Fluent Bit", "Splunk universal forwarder", "Kubernetes"}


def test_agent_table_names_only_shipped_files() -> None:
    rows = _table(README.read_text(encoding="utf-8"), "| you have | copy | section |")
    named = [name for row in rows for name in re.findall(r"`(configs/[^`]+)`", row[1])]
    assert len(named) >= 8
    missing = [
        path for name in named for path in _expand(name) if not any(ROOT.glob(path)) and not (ROOT / path).exists()
    ]
    assert not missing


def _shown_commands() -> list[str]:
    """Every ``zoom-oplog-shipper ...`` command the README shows in code, without placeholders."""
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"`(zoom-oplog-shipper [^`]*)`", text)
    # The command word itself, not the end of a path such as /opt/zoom-oplog-shipper/bin/zoom-oplog-shipper.
    found += re.findall(r"^(?:.*?[\s(])?(zoom-oplog-shipper \S.*)$", "\n".join(FENCE.findall(text)), re.M)
    commands = set()
    for line in found:
        command = line.split("|")[0].split("#")[0].split("&&")[0].strip()
        if "..." in command or "COMMAND" in command or "--help" in command or "--version" in command:
            continue
        commands.add(command)
    return sorted(commands)


def test_readme_shows_every_command() -> None:
    shown = {" ".join(c.split()[1:3]) for c in _shown_commands()}
    for command in ("run", "check", "state show", "state path", "state rewind", "state reset", "demo", "simulate"):
        assert any(s == command or s.startswith(command + " ") or s.split()[0] == command for s in shown), command


@pytest.mark.parametrize("command", _shown_commands())
def test_every_command_shown_parses(command: str) -> None:
    argv = [w.replace("DATE", "2026-11-20") for w in shlex.split(command)[1:]]
    build_parser().parse_args(argv)


def test_quick_start_is_what_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```", text[text.index("## Quick start") :], re.S | re.M)
    first, tests = blocks[0], blocks[1]
    assert first.index("pip install .") < first.index("zoom-oplog-shipper demo | head -n 3")
    assert tests.index("pip install -e '.[test]'") < tests.index("pytest")
    for line in ("pip install -q .", "zoom-oplog-shipper demo", "pip install -q -e '.[test]'", "pytest"):
        assert line in ci


def test_readme_says_the_activity_logs_hold_successful_sign_ins_and_outs_only() -> None:
    # Zoom's report lists only "Sign in" and "Sign out" (its API spec of GET /report/activities):
    # an analyst must not look for failed sign-ins there.
    text = README.read_text(encoding="utf-8")
    output = text[text.index("## Output") : text.index("## Guarantees")]
    assert "successful sign-ins and sign-outs only" in output and "no failed" in output
    assert "`Sign in` or `Sign out`" in output


def _module_map() -> set[str]:
    """The package paths docs/streams.md's module map names.

    A bare name is in the folder of the name before it: ``ocsf.py`` after ``streams/x/ecs.py`` is
    ``streams/x/ocsf.py``.
    """
    named = set()
    for row in _table((ROOT / "docs" / "streams.md").read_text(encoding="utf-8"), "| module | job |"):
        folder = ""
        for name in re.findall(r"`([^`]+)`", row[0]):
            if "/" in name:
                folder = name.rpartition("/")[0]
                named.add(name)
            else:
                named.add(f"{folder}/{name}".lstrip("/"))
    return named


def test_the_module_map_names_every_module_and_only_modules() -> None:
    package = ROOT / "zoom_oplog_shipper"
    named = _module_map()
    modules = {p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    # A package's __init__ that only says what the folder is needs no row of its own.
    markers = {m for m in modules if m.endswith("/__init__.py") and m.count("/") > 1}
    covered = {m for m in modules if any(m.startswith(n) for n in named if n.endswith("/"))}
    assert sorted(modules - named - markers - covered) == []
    assert sorted(n for n in named if not n.endswith("/") and n not in modules) == []
