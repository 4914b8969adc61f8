"""Run Sigma rules on the program's ECS events in SQLite, with Elasticsearch's field semantics.

Elasticsearch indexes an array of objects as independent multi-valued fields: an event's
``zoom.operation.changes`` becomes the lists ``zoom.operation.changes.setting``, ``...to`` and so
on, and a condition on a field matches when any of its values matches, each field on its own.
Here each field is one column holding the JSON list of its values (``["a", "b"]``; absent: NULL),
and every condition a rule has on a field becomes "some value of the list matches"
(``EXISTS (SELECT 1 FROM json_each(field) ...)``), so a rule is no more precise here than in
Elasticsearch. LIKE is case-sensitive, as a keyword field is. ``@timestamp`` is kept as text, for
the sqlite backend's correlation windows.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

TABLE = "logs"
TIMESTAMP = "@timestamp"
_QUOTED = re.compile(r"`((?:[^`]|``)+)`")


def leaves(doc: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted field, value)`` for each scalar in ``doc``, arrays (of objects too) flattened as Elasticsearch does."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from leaves(value, f"{path}.{key}" if path else key)
    elif isinstance(doc, list):
        for item in doc:
            yield from leaves(item, path)
    elif doc is not None:
        yield path, doc


def columns(doc: dict[str, Any]) -> dict[str, Any]:
    """The event as columns: each field's values as one JSON list; ``@timestamp`` as its text."""
    values: dict[str, list[Any]] = {}
    for field, value in leaves(doc):
        values.setdefault(field, []).append(value)
    row: dict[str, Any] = {field: orjson.dumps(items).decode() for field, items in values.items()}
    if TIMESTAMP in values:
        row[TIMESTAMP] = values[TIMESTAMP][0]
    return row


def quote(name: str) -> str:
    """An SQLite identifier: ``tags`` -> `` `tags` ``."""
    return "`" + name.replace("`", "``") + "`"


def load(connection: sqlite3.Connection, docs: Iterable[dict[str, Any]], table: str = TABLE) -> list[dict[str, Any]]:
    """Create ``table`` holding ``docs`` (rowid = position + 1); returns the docs, in that order."""
    kept = list(docs)
    rows = [columns(doc) for doc in kept]
    names = sorted({name for row in rows for name in row} | {TIMESTAMP})
    connection.execute(f"CREATE TABLE {quote(table)} ({', '.join(quote(n) + ' TEXT' for n in names)})")
    marks = ", ".join("?" for _ in names)
    connection.executemany(
        f"INSERT INTO {quote(table)} (rowid, {', '.join(map(quote, names))}) VALUES (?, {marks})",  # noqa: S608 - quoted names, ? values
        [(i + 1, *(row.get(n) for n in names)) for i, row in enumerate(rows)],
    )
    return kept


def connect() -> sqlite3.Connection:
    """An in-memory database with REGEXP and Elasticsearch's case-sensitive matching of keywords."""
    connection = sqlite3.connect(":memory:")
    connection.execute("PRAGMA case_sensitive_like = ON")
    connection.create_function("REGEXP", 2, _regexp, deterministic=True)
    return connection


def _regexp(pattern: str, value: Any) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


def any_value(expression: str) -> str:
    """``expression`` on one field made true when some value of the field's list makes it true.

    Every quoted field the expression names is read value by value (two fields, as a field
    reference compares, each on its own list); ``IS NULL``/``IS NOT NULL`` tests stay as they
    are: an absent field is a NULL column.
    """
    fields = list(dict.fromkeys(_QUOTED.findall(expression)))
    if not fields or re.search(r"\bIS (?:NOT )?NULL\b", expression):
        return expression
    body = expression
    sources = []
    for n, field in enumerate(fields):
        body = body.replace(f"`{field}`", f"v{n}.value")
        sources.append(f"json_each(`{field}`) AS v{n}")
    return f"EXISTS (SELECT 1 FROM {', '.join(sources)} WHERE {body})"  # noqa: S608 - a converted rule's own SQL
