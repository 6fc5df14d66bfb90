"""PostgreSQL: a script's own transaction control, and statements that cannot share a transaction.

Prisma wraps its enum rebuilds in ``BEGIN; … COMMIT;`` and big projects ship ``CREATE INDEX
CONCURRENTLY``; ``psql -f`` applies both as they are. These functions tell the generic layout
(:mod:`backout.run.transactions`) what each such statement is, so it can run the script atomically
where that is possible and journaled where it is not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from backout.dialects.base import CommitNeeded, ControlStatement, TxControl
from backout.model.identifiers import quote_identifier
from backout.model.script import Statement

#: comments and blanks before a statement's first keyword
_LEADING_NOISE = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
#: first keywords of every transaction-control statement (a cheap filter before parsing)
_CONTROL_WORDS = frozenset(
    {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "PREPARE"}
)
_ADD_VALUE = re.compile(r"\bADD\s+VALUE\b", re.I)


def _first_word(sql: str) -> str:
    body = _LEADING_NOISE.sub("", sql, count=1)
    match = re.match(r"[A-Za-z]+", body)
    return match[0].upper() if match else ""


def _parse_one(sql: str) -> object | None:
    """The statement node of one parseable statement, else None (split() reports errors)."""
    import pglast
    from pglast.parser import ParseError

    try:
        (raw,) = pglast.parse_sql(sql)
    except (ParseError, ValueError):
        return None
    return raw.stmt


def transaction_control(statement: Statement) -> ControlStatement | None:
    """``statement`` as transaction control, or None (see ``Dialect.transaction_control``)."""
    word = _first_word(statement.sql)
    if word not in _CONTROL_WORDS:
        return None
    if word == "PREPARE" and "TRANSACTION" not in statement.sql.upper():
        return None  # PREPARE name AS …: a prepared statement
    from pglast import ast, enums

    node = _parse_one(statement.sql)
    if not isinstance(node, ast.TransactionStmt):
        return None
    kinds = enums.TransactionStmtKind
    kind = node.kind
    if kind in (kinds.TRANS_STMT_BEGIN, kinds.TRANS_STMT_START):
        if node.options:
            return ControlStatement(
                TxControl.OTHER,
                word,
                "BEGIN with transaction options (isolation level, read only, deferrable): "
                "backout cannot honour them",
            )
        return ControlStatement(TxControl.BEGIN, word)
    if kind == kinds.TRANS_STMT_COMMIT:
        if node.chain:
            return ControlStatement(
                TxControl.OTHER, word, "COMMIT AND CHAIN opens a new transaction at once"
            )
        return ControlStatement(TxControl.COMMIT, word)
    if kind == kinds.TRANS_STMT_ROLLBACK:
        return ControlStatement(TxControl.ROLLBACK, word)
    if kind in (kinds.TRANS_STMT_SAVEPOINT, kinds.TRANS_STMT_RELEASE, kinds.TRANS_STMT_ROLLBACK_TO):
        return ControlStatement(TxControl.NESTED, word)
    return ControlStatement(
        TxControl.OTHER,
        word,
        "two-phase commit (PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED) does not belong in a "
        "migration",
    )


def transaction_conflict(statement: Statement) -> str | None:
    """Why ``statement`` cannot run inside a transaction block, or None (see
    ``Dialect.transaction_conflict``)."""
    from pglast import ast

    node = _parse_one(statement.sql)
    if node is None or isinstance(node, ast.TransactionStmt):
        return None  # a TransactionStmt is no conflict: see transaction_control()
    reason = _concurrently(node) or _maintenance(node)
    if reason is not None:
        return reason
    if isinstance(node, ast.VacuumStmt) and not node.is_vacuumcmd:
        return None  # ANALYZE (same node as VACUUM) runs in a transaction
    forbidden = {
        ast.VacuumStmt: "VACUUM",
        ast.CreatedbStmt: "CREATE DATABASE",
        ast.DropdbStmt: "DROP DATABASE",
        ast.AlterSystemStmt: "ALTER SYSTEM",
        ast.CreateTableSpaceStmt: "CREATE TABLESPACE",
        ast.DropTableSpaceStmt: "DROP TABLESPACE",
    }
    for kind, label in forbidden.items():
        if isinstance(node, kind):
            return f"{label} cannot run inside a transaction block"
    return None


def _concurrently(node: object) -> str | None:
    """The conflict of a ``CONCURRENTLY`` statement (index, reindex, detach partition)."""
    from pglast import ast

    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY cannot run inside a transaction block"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return "DROP INDEX CONCURRENTLY cannot run inside a transaction block"
    if isinstance(node, ast.ReindexStmt) and any(
        getattr(p, "defname", "") == "concurrently" for p in (node.params or ())
    ):
        return "REINDEX CONCURRENTLY cannot run inside a transaction block"
    if isinstance(node, ast.AlterTableStmt):
        for cmd in node.cmds or ():
            definition = getattr(cmd, "def_", None)
            if isinstance(definition, ast.PartitionCmd) and definition.concurrent:
                return "DETACH PARTITION CONCURRENTLY cannot run inside a transaction block"
    return None


def _maintenance(node: object) -> str | None:
    """The conflict of maintenance over more than one table (REINDEX, CLUSTER, DISCARD ALL)."""
    from pglast import ast, enums

    if isinstance(node, ast.ReindexStmt) and node.kind in (
        enums.ReindexObjectType.REINDEX_OBJECT_SCHEMA,
        enums.ReindexObjectType.REINDEX_OBJECT_SYSTEM,
        enums.ReindexObjectType.REINDEX_OBJECT_DATABASE,
    ):
        return "REINDEX SCHEMA/SYSTEM/DATABASE cannot run inside a transaction block"
    if isinstance(node, ast.ClusterStmt) and node.relation is None:
        return "CLUSTER without a table cannot run inside a transaction block"
    if isinstance(node, ast.DiscardStmt) and node.target == enums.DiscardMode.DISCARD_ALL:
        return "DISCARD ALL cannot run inside a transaction block"
    return None


def _string_literals(sql: str) -> set[str]:
    """The string constants of a statement: single-quoted, ``E'…'``, ``U&'…'`` and dollar-quoted
    ones. The constants inside a dollar-quoted body count too where the body is analysed at once:
    a ``DO`` block's (it runs) and a ``LANGUAGE sql`` function's (PostgreSQL checks it when the
    function is created); other function bodies do not run when they are defined."""
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(sql)
    except ParseError:
        return set()
    runs_body = _first_word(sql) == "DO" or _sql_function(sql)
    found = set()
    for token in tokens:
        if token.name not in ("SCONST", "USCONST"):
            continue
        text = sql[token.start : token.end + 1]
        if text.startswith("'") and text.endswith("'"):
            found.add(text[1:-1].replace("''", "'"))
        elif text[:2] in ("E'", "e'") and text.endswith("'"):
            found.add(text[2:-1].replace("''", "'").replace("\\'", "'"))
        elif text[:3] in ("U&'", "u&'") and text.endswith("'"):
            found.add(_unicode_escapes(text[3:-1].replace("''", "'")))
        elif text.startswith("$"):
            tag = text[: text.index("$", 1) + 1]
            body = text[len(tag) : -len(tag)]
            found.add(body)  # $$X$$ used as a value
            if runs_body:
                found |= _string_literals(body)
    return found


def _unicode_escapes(text: str) -> str:
    """``U&'…'`` text with its ``\\XXXX`` and ``\\+XXXXXX`` escapes decoded (default escape)."""

    def decode(match: re.Match[str]) -> str:
        if match[0] == "\\\\":
            return "\\"
        return chr(int(match[0].lstrip("\\+"), 16))

    return re.sub(r"\\\\|\\\+[0-9A-Fa-f]{6}|\\[0-9A-Fa-f]{4}", decode, text)


def _sql_function(sql: str) -> bool:
    """True for ``CREATE FUNCTION``/``PROCEDURE`` … ``LANGUAGE sql`` (its body is checked)."""
    if _first_word(sql) != "CREATE" or not re.search(r"\bSQL\b", sql, re.I):
        return False
    from pglast import ast

    node = _parse_one(sql)
    if not isinstance(node, ast.CreateFunctionStmt):
        return False
    for option in node.options or ():
        if option.defname == "language":
            return str(getattr(option.arg, "sval", "")).lower() == "sql"
    return False


def _added_values(statement: Statement) -> tuple[str, str] | None:
    """(enum type, new value) of ``ALTER TYPE … ADD VALUE``, else None."""
    from pglast import ast

    node = _parse_one(statement.sql)
    if not isinstance(node, ast.AlterEnumStmt) or not node.newVal or node.oldVal:
        return None
    name = ".".join(part.sval for part in node.typeName or ())
    return name, str(node.newVal)


def _created_enums(statements: Sequence[Statement]) -> set[str]:
    """Names (as written, last part) of the enum types the statements create."""
    from pglast import ast

    created = set()
    for statement in statements:
        if "ENUM" not in statement.sql.upper():
            continue
        node = _parse_one(statement.sql)
        if isinstance(node, ast.CreateEnumStmt) and node.typeName:
            created.add(node.typeName[-1].sval)
    return created


def commit_needed(statements: Sequence[Statement]) -> list[CommitNeeded]:
    """A value added by ``ALTER TYPE … ADD VALUE`` and used (as a string literal) by a later
    statement: PostgreSQL refuses the use until the ALTER TYPE commits (55P04), unless the type
    was created in the same transaction. A literal equal to the value counts as a use whatever
    its column (the cost of a false match is only that the script runs journaled)."""
    if not any(_ADD_VALUE.search(s.sql) for s in statements):
        return []
    found: list[CommitNeeded] = []
    added: dict[str, tuple[Statement, str]] = {}
    created: set[str] | None = None
    for statement in statements:
        new = _added_values(statement) if _ADD_VALUE.search(statement.sql) else None
        if new is not None:
            if created is None:
                created = _created_enums(statements)
            type_name, value = new
            if type_name.rsplit(".", 1)[-1] not in created:
                added.setdefault(value, (statement, type_name))
            continue
        if not added:
            continue
        for value in sorted(_string_literals(statement.sql) & added.keys()):
            earlier, type_name = added[value]
            found.append(
                CommitNeeded(
                    earlier,
                    statement,
                    f"the enum value '{value}' added to {type_name} at line {earlier.line} is "
                    f"used at line {statement.line} (PostgreSQL refuses that before the "
                    "ALTER TYPE commits: 55P04)",
                )
            )
    return found


def concurrent_index_name(statement: Statement) -> str | None:
    """The quoted (schema-qualified when written so) name of the index a ``CREATE INDEX
    CONCURRENTLY`` creates; None for any other statement, or an index left unnamed."""
    from pglast import ast

    if "CONCURRENTLY" not in statement.sql.upper():
        return None
    node = _parse_one(statement.sql)
    if not isinstance(node, ast.IndexStmt) or not node.concurrent or not node.idxname:
        return None
    schema = node.relation.schemaname if node.relation is not None else None
    quoted = quote_identifier(node.idxname)
    return f"{quote_identifier(schema)}.{quoted}" if schema else quoted
