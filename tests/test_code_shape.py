"""The package's functions stay short enough to read at once: none above 60 lines.

A function's length is its lines from `def` to its last line, its docstring not counted (a rule
that counted it would shorten docstrings, not functions). Complexity is ruff's C901 (at most 12,
pyproject.toml); this test covers what ruff does not measure.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "zoom_oplog_shipper"
MAX_LINES = 60

Function = ast.FunctionDef | ast.AsyncFunctionDef


def functions() -> list[tuple[str, Function]]:
    """Every function and method of the package, nested ones included, with its module's path."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        module = path.relative_to(PACKAGE).as_posix()
        found += [(module, node) for node in ast.walk(tree) if isinstance(node, Function)]
    return found


def length(node: Function) -> int:
    """Lines from `def` (decorators not counted) to the function's last line, less its docstring's."""
    lines = (node.end_lineno or node.lineno) - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= (first.end_lineno or first.lineno) - first.lineno + 1
    return lines


def test_no_function_is_longer_than_60_lines() -> None:
    long = [
        f"{module}:{node.lineno} {node.name} ({length(node)} lines)"
        for module, node in functions()
        if length(node) > MAX_LINES
    ]
    assert long == [], f"split these functions (at most {MAX_LINES} lines each): {long}"


def test_length_counts_the_body_not_the_docstring() -> None:
    tree = ast.parse('def f():\n    """One.\n\n    Two.\n    """\n    a = 1\n    return a\n')
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef)
    assert length(node) == 3
