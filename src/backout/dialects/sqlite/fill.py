"""Filling empty SQLite tables with generated rows: ``executemany`` (see
:mod:`backout.dialects.fill`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from backout.dialects.fill import MIGRATE_FIRST, TableRows, counted, not_empty
from backout.model.errors import ConfigError, DatabaseError
from backout.model.identifiers import quote_identifier as q
from backout.model.urls import DatabaseURL


def fill_tables(url: DatabaseURL, tables: Sequence[TableRows]) -> dict[str, int]:
    if url.path is None:
        raise ConfigError("an in-memory SQLite database has no migrations applied: use a file")
    if not url.path.exists():
        raise ConfigError(
            f"SQLite database {url.path} does not exist: apply the example's migrations first"
        )
    counts: dict[str, int] = {}
    conn = sqlite3.connect(url.path)
    try:
        conn.execute("PRAGMA foreign_keys = ON")  # a no-op inside a transaction: set it first
        for table in tables:
            if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {q(table.name)})").fetchone()[0]:
                raise not_empty(table.name)
        with conn:  # one transaction, committed at the end or rolled back on error
            for table in tables:
                columns = ", ".join(q(c) for c in table.columns)
                marks = ", ".join("?" for _ in table.columns)
                conn.executemany(
                    f"INSERT INTO {q(table.name)} ({columns}) VALUES ({marks})",
                    counted(table.rows(), counts, table.name),
                )
    except sqlite3.Error as exc:
        hint = None
        if "no such table" in str(exc) or "has no column" in str(exc):
            hint = MIGRATE_FIRST
        raise DatabaseError(
            f"{url.path}: {exc}", sqlstate=getattr(exc, "sqlite_errorname", None), hint=hint
        ) from exc
    finally:
        conn.close()
    return counts
