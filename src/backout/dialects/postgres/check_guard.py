"""PostgreSQL: what a check query may not do, and what acts outside the database.

A ``require``/``verify``/``preview`` query is somebody's SQL that backout runs during a
rollback: it must only read. :func:`check_write` reads a check with pglast and says why it is
visibly not a plain read (another statement than one query, a data-modifying ``WITH``,
``SELECT … INTO``, ``FOR UPDATE``, a call to a function with effects), before anything runs.
What it cannot see (a user function that writes) is undone at run time: a check runs under a
savepoint rolled back after its answer is read (see ``Session.query_undone``).

:data:`SERVER_FUNCTIONS` names the built-in functions whose effect lies outside the database
(files, programs, other servers, other sessions): the effects analysis reports them as
:class:`~backout.model.effects.ServerEffect`, which a rollback or a restore cannot undo.

This module imports pglast: reach it through the dialect, never from ``--help`` paths.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import Any

import pglast
from pglast import ast
from pglast.parser import ParseError

#: built-in functions acting outside the database → what they do there
SERVER_FUNCTIONS: dict[str, str] = {
    "pg_read_file": "reads a file on the database server",
    "pg_read_binary_file": "reads a file on the database server",
    "pg_ls_dir": "lists a directory on the database server",
    "pg_stat_file": "reads a file's status on the database server",
    "pg_file_write": "writes a file on the database server",
    "pg_file_rename": "renames a file on the database server",
    "pg_file_unlink": "deletes a file on the database server",
    "lo_import": "reads a file on the database server into a large object",
    "lo_export": "writes a large object to a file on the database server",
    "dblink": "runs SQL on another database (dblink)",
    "dblink_exec": "runs SQL on another database (dblink)",
    "dblink_connect": "opens a connection to another database (dblink)",
    "dblink_connect_u": "opens a connection to another database (dblink)",
    "dblink_send_query": "runs SQL on another database (dblink)",
    "pg_terminate_backend": "ends another session",
    "pg_cancel_backend": "cancels another session's query",
    "pg_reload_conf": "reloads the server's configuration",
    "pg_rotate_logfile": "rotates the server's log file",
    "pg_switch_wal": "forces a WAL switch",
    "pg_promote": "promotes a standby server",
    "pg_create_restore_point": "writes a restore point to the WAL",
    "pg_create_physical_replication_slot": "creates a replication slot",
    "pg_create_logical_replication_slot": "creates a replication slot",
    "pg_drop_replication_slot": "drops a replication slot",
}

#: built-in functions whose effect a check's savepoint would not undo (or that have no place
#: in a read) → what they do
_CHECK_REFUSED: dict[str, str] = {
    **SERVER_FUNCTIONS,
    "nextval": "advances a sequence (not undone by a rollback)",
    "setval": "sets a sequence (not undone by a rollback)",
    "set_config": "changes a setting",
    "pg_advisory_lock": "takes a session lock that outlives the check",
    "pg_advisory_lock_shared": "takes a session lock that outlives the check",
    "pg_try_advisory_lock": "takes a session lock that outlives the check",
    "pg_try_advisory_lock_shared": "takes a session lock that outlives the check",
    "pg_advisory_unlock": "releases a session lock (possibly backout's run lock)",
    "pg_advisory_unlock_all": "releases every session lock (backout's run lock too)",
    "pg_advisory_xact_lock": "takes a lock held until the rollback ends",
    "pg_advisory_xact_lock_shared": "takes a lock held until the rollback ends",
    "lo_create": "creates a large object",
    "lo_creat": "creates a large object",
    "lo_unlink": "deletes a large object",
    "lo_put": "writes a large object",
    "lo_from_bytea": "creates a large object",
    "lo_truncate": "truncates a large object",
    "pg_notify": "sends a notification",
    "txid_current": "assigns a transaction id",
    "pg_sleep": "sleeps while the rollback holds its locks",
    "pg_sleep_for": "sleeps while the rollback holds its locks",
    "pg_sleep_until": "sleeps while the rollback holds its locks",
}

_NAMED_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_WRITES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)


def walk_nodes(node: Any) -> Iterator[ast.Node]:
    """Every node under ``node`` (included), depth first."""
    if isinstance(node, ast.Node):
        yield node
        for attr in node:
            yield from walk_nodes(getattr(node, attr))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from walk_nodes(item)


def function_name(call: ast.FuncCall) -> tuple[str | None, str]:
    """A call's schema (None when unqualified) and function name."""
    parts = [p.sval for p in call.funcname or () if isinstance(p, ast.String) and p.sval]
    return (parts[-2] if len(parts) >= 2 else None), (parts[-1] if parts else "")


def is_server_function(name: str) -> bool:
    """A call of a function acting outside the database, in any schema: dblink's and
    adminpack's live in the schema their extension was created in (``public.dblink_exec``)."""
    return name.lower() in SERVER_FUNCTIONS


def _parse(sql: str, params: Collection[str]) -> list[Any] | None:
    """The parsed statements, with declared ``:name`` placeholders read as NULL; None when
    PostgreSQL would reject the text anyway (the database then reports the error)."""
    text = _NAMED_PARAM.sub(lambda m: "NULL" if m.group(1) in params else m.group(0), sql)
    try:
        return [raw.stmt for raw in pglast.parse_sql(text)]
    except ParseError:
        return None


def check_write(sql: str, params: Collection[str] = ()) -> str | None:
    """Why a check query visibly does more than read, or None when it is a plain query."""
    statements = _parse(sql, params)
    if statements is None:
        return None
    if len(statements) != 1:
        return f"it holds {len(statements)} statements; a check is one query"
    (statement,) = statements
    if not isinstance(statement, ast.SelectStmt):
        return f"it is {type(statement).__name__.removesuffix('Stmt').upper()}, not a query"
    for node in walk_nodes(statement):
        if isinstance(node, _WRITES):
            verb = type(node).__name__.removesuffix("Stmt").upper()
            return f"it writes ({verb} inside the query)"
        if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
            return "SELECT … INTO creates a table"
        if isinstance(node, ast.SelectStmt) and node.lockingClause:
            return "SELECT … FOR UPDATE/SHARE locks rows"
        if isinstance(node, ast.FuncCall):
            schema, name = function_name(node)
            if is_server_function(name) or (
                schema in (None, "pg_catalog") and name.lower() in _CHECK_REFUSED
            ):
                return f"it calls {name}(), which {_CHECK_REFUSED[name.lower()]}"
    return None
