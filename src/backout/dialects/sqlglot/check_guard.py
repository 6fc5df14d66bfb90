"""SQLite and MySQL/MariaDB: what a check query may not do (read with sqlglot).

The PostgreSQL counterpart is :mod:`backout.dialects.postgres.check_guard`. A ``require``/``verify``
/``preview`` query must be exactly one query that only reads. On MySQL/MariaDB this refusal is
what protects the data: DDL commits implicitly, so no savepoint could undo it. sqlglot accepts
invalid SQL and falls back to a raw command for what it does not know; backout cannot tell that
such a query only reads, so it is refused too (when in doubt, refuse).

This module imports sqlglot: reach it through the dialect.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from backout.dialects.sqlglot.effects import quiet_sqlglot

#: SQLite functions acting outside the database → what they do there
SQLITE_SERVER_FUNCTIONS: dict[str, str] = {
    "load_extension": "loads a native library into the process",
    "readfile": "reads a file",
    "writefile": "writes a file",
    "edit": "starts an editor",
}
#: MySQL/MariaDB functions acting outside the database → what they do there
MYSQL_SERVER_FUNCTIONS: dict[str, str] = {
    "load_file": "reads a file on the database server",
    "sys_exec": "runs a program on the database server",
    "sys_eval": "runs a program on the database server",
}
#: functions a SQLite check may not call → why
SQLITE_CHECK_REFUSED: dict[str, str] = dict(SQLITE_SERVER_FUNCTIONS)
#: functions a MySQL/MariaDB check may not call → why
MYSQL_CHECK_REFUSED: dict[str, str] = {
    **MYSQL_SERVER_FUNCTIONS,
    "get_lock": "takes a server-wide lock that outlives the check",
    "release_lock": "releases a server-wide lock (possibly backout's run lock)",
    "release_all_locks": "releases every server-wide lock (backout's run lock too)",
    "nextval": "advances a sequence (not undone by a rollback)",
    "setval": "sets a sequence (not undone by a rollback)",
    "sleep": "sleeps while the rollback holds its locks",
}

_NAMED_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_WRITES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Command,
)
#: what counts as a query (sqlglot's trees for SELECT, UNION/INTERSECT/EXCEPT and VALUES)
_QUERIES = (exp.Query, exp.Values)


def _executable_comment(text: str) -> bool:
    """The MySQL text holds a ``/*! … */`` or ``/*M! … */`` comment: MySQL and MariaDB run
    what it holds (``INTO OUTFILE``, ``FOR UPDATE``, ``RELEASE_ALL_LOCKS()``), sqlglot skips it."""
    with quiet_sqlglot():
        tokens = sqlglot.Dialect.get_or_raise("mysql").tokenize(text)
    return any(c.startswith(("!", "M!")) for token in tokens for c in token.comments)


def check_write(
    sql: str, dialect: str, refused: Mapping[str, str], params: Collection[str] = ()
) -> str | None:
    """Why a check query visibly does more than read, or None when it is a plain query.

    ``dialect`` is sqlglot's name for the dialect; ``refused`` maps lower-case function names
    the check may not call to what they do.
    """
    text = _NAMED_PARAM.sub(lambda m: "NULL" if m.group(1) in params else m.group(0), sql)
    text = text.strip().rstrip(";")
    try:
        with quiet_sqlglot():
            trees = [t for t in sqlglot.parse(text, read=dialect) if t is not None]
    except (ParseError, TokenError):
        return "backout cannot parse it, so it cannot tell that it only reads"
    if len(trees) != 1:
        return f"it holds {len(trees)} statements; a check is one query"
    if dialect == "mysql" and _executable_comment(text):
        return "it holds an executable comment (/*! … */): the server runs what it cannot read"
    (tree,) = trees
    if not isinstance(tree, _QUERIES):
        return f"it is {tree.key.upper()}, not a query"
    for node in tree.walk():
        if isinstance(node, _WRITES):
            return f"it writes ({node.key.upper()} inside the query)"
        if isinstance(node, exp.Into):
            return "SELECT … INTO writes its result somewhere"
        if isinstance(node, exp.Lock):
            return "SELECT … FOR UPDATE/SHARE locks rows"
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in refused:
                return f"it calls {name}(), which {refused[name]}"
    return None
