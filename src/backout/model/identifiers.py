"""Quoting SQL identifiers the standard way (double quotes), for code that has no dialect.

PostgreSQL and SQLite quote identifiers exactly this way, so their dialects use this function;
MySQL's backticks live in :mod:`backout.dialects.mysql.catalog`. Code that holds a dialect calls
:meth:`backout.dialects.base.Dialect.quote`; model-level code (messages, schema diffs, effects)
that names an object without one uses :func:`quote_identifier`.
"""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """``name`` double-quoted, embedded double quotes doubled: ``we"ird`` → ``"we""ird"``."""
    return '"' + name.replace('"', '""') + '"'


def qualified_name(schema: str | None, *names: str) -> str:
    """The key of an object: its schema (if any) and names joined by dots."""
    parts = [schema, *names] if schema is not None else list(names)
    return ".".join(parts)
