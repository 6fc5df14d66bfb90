"""Undoing a forward migration's row changes exactly, where the SQL alone says which rows.

Only one case is exact: ``INSERT ... VALUES`` of literal rows that give every column of the
table's primary key, without ``ON CONFLICT`` (with it, a row may have been there before and must
not be deleted). Those rows are deleted by key. Anything else (``INSERT ... SELECT``, ``UPDATE``,
``DELETE``) changes rows only the data can tell: the caller lists it as a manual step.
"""

from __future__ import annotations

from collections.abc import Sequence

from backout.dialects.ddl_base import DraftStep
from backout.model.identifiers import quote_identifier
from backout.model.schema import SchemaSnapshot, TableInfo
from backout.model.script import Statement


def _literal(node: object) -> str | None:
    """The SQL text of a literal value (a constant, possibly cast), else None."""
    from pglast import ast
    from pglast.stream import RawStream

    inner = node.arg if isinstance(node, ast.TypeCast) else node
    if not isinstance(inner, ast.A_Const) or not isinstance(node, ast.Node):
        return None
    return str(RawStream()(node))


def _table(snapshot: SchemaSnapshot, schema: str | None, name: str) -> TableInfo | None:
    wanted = schema or snapshot.default_schema
    return next(
        (t for t in snapshot.tables.values() if t.name == name and t.schema == wanted), None
    )


def _delete_inserted(statement: Statement, before: SchemaSnapshot) -> DraftStep | None:
    """``DELETE`` of the rows one literal ``INSERT`` added, or None when not exact."""
    from pglast import ast, parse_sql
    from pglast.parser import ParseError

    try:
        parsed = parse_sql(statement.sql)
    except ParseError:
        return None
    if len(parsed) != 1 or not isinstance(parsed[0].stmt, ast.InsertStmt):
        return None
    insert = parsed[0].stmt
    select = insert.selectStmt
    if insert.onConflictClause is not None or insert.withClause is not None:
        return None
    if not isinstance(select, ast.SelectStmt) or not select.valuesLists or not insert.cols:
        return None
    relation = insert.relation
    if relation is None or not relation.relname:
        return None
    table = _table(before, relation.schemaname, relation.relname)
    key = table.primary_key if table is not None else None
    if table is None or key is None or not key.columns:
        return None
    columns = [str(target.name) for target in insert.cols]
    if not set(key.columns) <= set(columns):
        return None
    rows: list[str] = []
    for values in select.valuesLists:
        texts = [_literal(values[columns.index(c)]) for c in key.columns]
        if any(text is None for text in texts) or len(values) != len(columns):
            return None
        rows.append("(" + ", ".join(str(t) for t in texts) + ")")
    prefix = (
        f"{quote_identifier(table.schema)}."
        if table.schema and table.schema != before.default_schema
        else ""
    )
    target = prefix + quote_identifier(table.name)
    keys = ", ".join(quote_identifier(c) for c in key.columns)
    return DraftStep(
        f"DELETE FROM {target} WHERE ({keys}) IN ({', '.join(rows)})",
        f"Delete, by primary key, the rows the INSERT at line {statement.line} of the forward "
        "migration added",
    )


def undo_inserts(
    statements: Sequence[Statement], before: SchemaSnapshot
) -> tuple[list[DraftStep], set[int]]:
    """Deletes undoing the literal inserts among ``statements`` (newest first), and the lines
    of the statements they undo."""
    steps: list[DraftStep] = []
    lines: set[int] = set()
    for statement in statements:
        step = _delete_inserted(statement, before)
        if step is not None:
            steps.append(step)
            lines.add(statement.line)
    return list(reversed(steps)), lines
