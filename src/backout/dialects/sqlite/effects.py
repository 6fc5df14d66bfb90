"""SQLite effects analysis: sqlglot's parse tree → :mod:`backout.model.effects`.

This module imports sqlglot when it is imported; reach it through
:func:`backout.model.effects.analyze`.
The walk of sqlglot's tree is shared with MySQL (:mod:`backout.dialects.sqlglot.effects`); what is
SQLite's own is here.

sqlglot is a translator, not a validator, and these traps shape the module:

- It accepts invalid SQL: ``REINDEX`` parses as a column, ``SAVEPOINT a`` as an alias, and
  PostgreSQL-only ``ALTER COLUMN ... TYPE`` as a valid ALTER. So every statement is first
  compiled by SQLite itself (``EXPLAIN`` on an empty in-memory database; only syntax errors
  count), and only the statement types listed here are trusted; any other tree is an Unknown.
- What it cannot parse becomes ``exp.Command`` (with a logged warning, silenced here): an
  Unknown. ``CREATE TRIGGER`` always ends up so; its head (name, timing, event, table) is read
  with a regular expression instead, and the body is not analysed (it runs later, on each
  matching row change, not when the script runs).
- ``REPLACE INTO`` and ``UPDATE OR <conflict>`` are rewritten to forms it parses
  (``INSERT OR REPLACE INTO``, plain ``UPDATE``); the conflict clause is kept in the detail.
- ``PRAGMA`` is read with a regular expression: an assignment is an "other" effect on a setting,
  a query pragma has no effect.

Identifiers keep their spelling and compare case-insensitively, as SQLite does. The ``main``
schema is the default one, so ``main.t`` and ``t`` are the same table (schema None).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sqlglot import exp

from backout.dialects.sqlglot.check_guard import SQLITE_SERVER_FUNCTIONS
from backout.dialects.sqlglot.effects import DeclaredIndex, SqlglotAnalyzer
from backout.model.effects import Action, ObjectKind, ObjectRef, ScriptEffects
from backout.model.script import Statement

K = ObjectKind

_LEADING_NOISE = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
_NAME = r'(?:"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[A-Za-z_][\w$]*)'
_TRIGGER = re.compile(
    rf"^CREATE\s+(?:TEMP(?:ORARY)?\s+)?TRIGGER\s+(?P<guard>IF\s+NOT\s+EXISTS\s+)?"
    rf"(?:(?P<schema>{_NAME})\s*\.\s*)?(?P<name>{_NAME})\s+"
    rf"(?:(?P<timing>BEFORE|AFTER|INSTEAD\s+OF)\s+)?"
    rf"(?P<event>DELETE|INSERT|UPDATE(?:\s+OF\s+.+?)?)\s+ON\s+"
    rf"(?:(?P<tschema>{_NAME})\s*\.\s*)?(?P<table>{_NAME})(?=\s|$)",
    re.I | re.S,
)
_PRAGMA = re.compile(
    rf"^PRAGMA\s+(?:(?P<schema>{_NAME})\s*\.\s*)?(?P<name>{_NAME})\s*"
    r"(?:=\s*(?P<value>.+?)|\(\s*(?P<arg>.*?)\s*\))?\s*;?\s*$",
    re.I | re.S,
)
_REPLACE_INTO = re.compile(r"^REPLACE\s+INTO\b", re.I)
_UPDATE_OR = re.compile(r"^UPDATE\s+OR\s+(ROLLBACK|ABORT|REPLACE|FAIL|IGNORE)\b", re.I)
#: ``CREATE INDEX main.i ON t``: sqlglot reads this as index "main" on table "i"
_INDEX_SCHEMA = re.compile(
    rf"^(CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?)(?P<schema>{_NAME})\s*\.\s*"
    rf"(?={_NAME}\s+ON\b)",
    re.I,
)
#: ``ALTER TABLE t DROP c``: COLUMN is optional in SQLite, not to sqlglot
_DROP_BARE = re.compile(
    rf"^(ALTER\s+TABLE\s+(?:{_NAME}\s*\.\s*)?{_NAME}\s+DROP)\s+(?!COLUMN\b)", re.I
)

#: statements with no effect on schema or data: transaction control and maintenance
_NO_EFFECT_HEADS = frozenset(
    {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "VACUUM", "REINDEX", "ANALYZE"}
)
#: pragmas that only report (with or without an argument)
_QUERY_PRAGMAS = frozenset(
    {
        "collation_list",
        "compile_options",
        "database_list",
        "foreign_key_check",
        "foreign_key_list",
        "function_list",
        "index_info",
        "index_list",
        "index_xinfo",
        "integrity_check",
        "module_list",
        "pragma_list",
        "quick_check",
        "table_info",
        "table_list",
        "table_xinfo",
    }
)
_SYNTAX_MARKERS = ("syntax error", "incomplete input", "unrecognized token")


def analyze_statements(statements: Sequence[Statement]) -> ScriptEffects:
    """Analyse SQLite statements (as split by ``SqliteDialect.split``) for their effects."""
    probe = sqlite3.connect(":memory:")
    try:
        return _Analyzer(probe).analyze(statements)
    finally:
        probe.close()


def _head(sql: str) -> str:
    body = _LEADING_NOISE.sub("", sql, count=1)
    match = re.match(r"[A-Za-z]+", body)
    return match.group(0).upper() if match else ""


def _syntax_error(probe: sqlite3.Connection, sql: str) -> str | None:
    """SQLite's own syntax error for ``sql``, or None (other errors, like a missing table, are
    fine: the probe database is empty)."""
    try:
        probe.execute("EXPLAIN " + sql)
    except (sqlite3.Error, sqlite3.Warning) as exc:
        message = str(exc)
        if any(marker in message for marker in _SYNTAX_MARKERS):
            return message
    return None


class _Analyzer(SqlglotAnalyzer):
    """Walks SQLite statements, recording effects and unknowns."""

    dialect = "sqlite"
    leading_noise = _LEADING_NOISE
    quotes = '"`['
    default_schema = "main"
    default_fk_action = "NO ACTION"
    drop_kinds: ClassVar[Mapping[str, ObjectKind]] = {
        "TABLE": K.TABLE,
        "INDEX": K.INDEX,
        "VIEW": K.VIEW,
        "TRIGGER": K.TRIGGER,
    }
    tuple_assignments = True
    cte_names_fold_case = True
    server_functions: ClassVar[Mapping[str, str]] = SQLITE_SERVER_FUNCTIONS

    def __init__(self, probe: sqlite3.Connection) -> None:
        super().__init__()
        #: an empty in-memory database that compiles each statement: only SQLite knows its syntax
        self.probe = probe
        #: schema of a ``CREATE INDEX schema.name`` (removed from the SQL sqlglot sees)
        self.index_schema: str | None = None
        #: the ``OR <conflict>`` of an ``UPDATE OR ...`` (removed from the SQL sqlglot sees)
        self.conflict = ""

    def run(self, sql: str) -> None:
        """Analyse one statement."""
        head = _head(sql)
        if head == "EXPLAIN":
            # EXPLAIN (QUERY PLAN) only describes the statement; SQLite never runs it
            return
        error = _syntax_error(self.probe, sql)
        if error is not None:
            self.flag(f"SQLite syntax error: {error}")
            return
        if head == "ATTACH":
            # this database's rows are untouched; another file is opened (or created)
            self.outside("opens another database file (ATTACH)")
            return
        if head in _NO_EFFECT_HEADS:
            return
        if head == "PRAGMA":
            self.pragma(sql)
            return
        if head == "CREATE" and re.match(r"CREATE\s+(?:TEMP(?:ORARY)?\s+)?TRIGGER\b", sql, re.I):
            self.trigger(sql)
            return
        self.conflict = ""
        self.index_schema = None
        if index := _INDEX_SCHEMA.match(sql):
            # the index and its table are in the schema named before the index's name
            self.index_schema = self.unquote(index["schema"])
            sql = _INDEX_SCHEMA.sub(r"\1", sql, count=1)
        elif _REPLACE_INTO.match(sql):
            sql = _REPLACE_INTO.sub("INSERT OR REPLACE INTO", sql, count=1)
        elif match := _UPDATE_OR.match(sql):
            self.conflict = f"OR {match.group(1).upper()}"
            sql = _UPDATE_OR.sub("UPDATE", sql, count=1)
        elif _DROP_BARE.match(sql):
            sql = _DROP_BARE.sub(r"\1 COLUMN ", sql, count=1)
        self.dispatch_sql(sql)

    # --- statements sqlglot does not read -----------------------------------------------------

    def pragma(self, sql: str) -> None:
        match = _PRAGMA.match(sql)
        if match is None:
            self.flag("PRAGMA not understood")
            return
        name = self.unquote(match["name"]) or ""
        value = match["value"] if match["value"] is not None else match["arg"]
        if value is None or name.casefold() in _QUERY_PRAGMAS:
            return
        self.emit(
            Action.OTHER,
            self.ref(K.SETTING, self.unquote(match["schema"]), name),
            detail=f"= {value.strip()}",
        )

    def trigger(self, sql: str) -> None:
        match = _TRIGGER.match(sql)
        if match is None:
            self.flag("CREATE TRIGGER not understood")
            return
        table = self.ref(
            K.TABLE, self.unquote(match["tschema"]), self.unquote(match["table"]) or ""
        )
        timing = " ".join((match["timing"] or "BEFORE").upper().split())
        event = " ".join(match["event"].split())
        self.emit(
            Action.CREATE,
            self.ref(K.TRIGGER, self.unquote(match["schema"]), self.unquote(match["name"]) or ""),
            # INSTEAD OF triggers exist only on views
            table=None if timing == "INSTEAD OF" else table,
            detail=f"{timing} {event} ON {table.qualified_name}",
            if_exists=match["guard"] is not None,
        )

    # --- hooks of the shared walk -------------------------------------------------------------

    def create_index(
        self, tree: exp.Create, index: exp.Index, table: ObjectRef, guarded: bool
    ) -> None:
        """``CREATE [UNIQUE] INDEX``: its key columns, expressions and partial-index WHERE."""
        if self.index_schema is not None:
            table = self.ref(K.TABLE, self.index_schema, table.name)
        params = index.args.get("params")
        columns: list[str] = []
        expressions: list[str] = []
        where = None
        if isinstance(params, exp.IndexParameters):
            for column in params.args.get("columns") or ():
                inner = column.this if isinstance(column, exp.Ordered) else column
                if isinstance(inner, exp.Column):
                    columns.append(inner.name)
                else:
                    expressions.append(inner.sql(dialect="sqlite"))
            where = params.args.get("where")
        notes = ["UNIQUE"] if tree.args.get("unique") else []
        notes.append(f"on {table.qualified_name}")
        if expressions:
            notes.append(f"({', '.join(expressions)})")
        if where is not None:
            notes.append(where.sql(dialect="sqlite"))
        self.emit(
            Action.CREATE,
            self.ref(K.INDEX, table.schema, index.name),
            table=table,
            detail=" ".join(notes),
            columns=tuple(columns),
            if_exists=guarded,
        )

    def table_element(
        self, table: ObjectRef, element: Any, columns: list[str], indexes: list[DeclaredIndex]
    ) -> None:
        """``CREATE TABLE t (a, b)``: a column may have no type."""
        if isinstance(element, exp.Identifier):
            columns.append(element.name)

    def fk_name(
        self, table: ObjectRef, name: str | None, columns: list[str], number: int | None
    ) -> str:
        """Unnamed foreign keys get ``<table>_<cols>_fkey``."""
        return name or f"{table.name}_{'_'.join(columns)}_fkey"

    def update_detail(self) -> str:
        return self.conflict

    def insert_notes(self, tree: exp.Insert) -> tuple[list[str], bool]:
        """``INSERT OR <conflict>`` and ``ON CONFLICT``: REPLACE and DO UPDATE overwrite rows."""
        notes: list[str] = []
        destructive = False
        alternative = str(tree.args.get("alternative") or "").upper()
        if alternative:
            notes.append(f"OR {alternative}")
            destructive = alternative == "REPLACE"
        conflict = tree.args.get("conflict")
        if isinstance(conflict, exp.OnConflict):
            action = str(conflict.args.get("action") or "").upper()
            notes.append(f"ON CONFLICT {action}".strip())
            destructive = destructive or "UPDATE" in action
        return notes, destructive

    def skip_read(self, node: exp.Table, skip: exp.Table | None) -> bool:
        # INDEXED BY names an index, not a table
        return node.arg_key == "indexed"
