"""PostgreSQL pieces of impact analysis: DML scopes from pglast, estimates from statistics."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from backout.dialects.base import DmlScope
from backout.dialects.params import mask_as_dollar_params, param_spans
from backout.model.script import Statement

if TYPE_CHECKING:
    from backout.dialects.base import Session
    from backout.model.schema import TableInfo


def dml_scope(statement: Statement, params: Collection[str] = ()) -> DmlScope | None:
    """DELETE/UPDATE → the FROM ... WHERE that selects the rows it changes (None: cannot).

    Declared ``:name`` parameters stay ``:name`` placeholders in the result (bound later).
    """
    import pglast
    from pglast import ast
    from pglast.stream import RawStream

    spans = param_spans(statement.sql, params, dollar_quotes=True)
    order = list(dict.fromkeys(name for _, _, name in spans))
    try:
        text = mask_as_dollar_params(statement.sql, spans, numbered=True)
    except ValueError:
        return None  # ten or more parameters, some named with one letter: not countable
    try:
        (raw,) = pglast.parse_sql(text)
    except (ValueError, pglast.parser.ParseError):
        return None
    node = raw.stmt
    if not isinstance(node, ast.DeleteStmt | ast.UpdateStmt) or node.withClause is not None:
        return None
    others = node.usingClause if isinstance(node, ast.DeleteStmt) else node.fromClause
    relation = node.relation
    if relation is None or (node.whereClause is not None and _current_of(node.whereClause)):
        return None

    def stream(node: ast.Node) -> str:
        out = str(RawStream()(node))  # a RawStream accumulates: one per node
        return _named(out, order) if order else out

    try:
        parts = [stream(relation), *(stream(item) for item in others or ())]
        from_where = ", ".join(parts)
        if node.whereClause is not None:
            from_where += " WHERE " + stream(node.whereClause)
    except ValueError:
        return None  # a $n of the statement's own: not ours to bind
    target = str(relation.alias.aliasname) if relation.alias else stream(relation)
    return DmlScope(
        from_where=from_where,
        target=target,
        distinct_key=f"{target}.ctid" if others else None,
    )


def _calls_something(node: object) -> bool:
    """Whether a sort key calls a function or holds a subquery: an aggregate there makes the
    query one group, a set-returning function multiplies rows, so the sort is not neutral."""
    from pglast import ast

    if isinstance(node, ast.FuncCall | ast.SubLink):
        return True
    if isinstance(node, ast.Node):
        return any(_calls_something(getattr(node, attr)) for attr in node)
    if isinstance(node, tuple | list):
        return any(_calls_something(item) for item in node)
    return False


def _named(sql: str, order: list[str]) -> str:
    """Printed SQL with each ``$n`` parameter token back as its ``:name`` (tokens only: a
    ``'$1'`` inside a string literal stays as it is). ValueError for an unknown ``$n``."""
    from pglast.parser import scan

    pieces: list[str] = []
    last = 0
    for token in scan(sql):
        if token.name != "PARAM":
            continue
        number = int(sql[token.start + 1 : token.end + 1])
        if not 1 <= number <= len(order):
            raise ValueError(f"${number} is not a declared parameter")
        pieces.append(sql[last : token.start])
        pieces.append(":" + order[number - 1])
        last = token.end + 1
    pieces.append(sql[last:])
    return "".join(pieces)


def _current_of(node: object) -> bool:
    from pglast import ast

    return isinstance(node, ast.CurrentOfExpr)


def estimate_rows(session: Session, qualified: str) -> int | None:
    """Rows according to pg_class.reltuples (None when the table was never analysed)."""
    rows = session.query(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", (qualified,)
    )
    if not rows or rows[0][0] is None or rows[0][0] < 0:
        return None
    return int(rows[0][0])


def estimate_non_null(session: Session, table: TableInfo, column: str, rows: int) -> int | None:
    """Non-null values of a column from pg_stats (None without statistics)."""
    found = session.query(
        "SELECT null_frac FROM pg_stats WHERE schemaname = %s AND tablename = %s AND attname = %s",
        (table.schema, table.name, column),
    )
    if not found or found[0][0] is None:
        return None
    return round((1.0 - float(found[0][0])) * rows)


def count_sql(query: str, spans: list[tuple[int, int, str]]) -> str:
    """``SELECT count(*)`` over ``query``, without its final ORDER BY.

    PostgreSQL keeps a subquery's ORDER BY: counting a million ordered rows sorts them all
    (on disk, past ``work_mem``) for nothing. The sort is cut only where it cannot change the
    count: a plain SELECT (or UNION...) with no LIMIT, OFFSET, FETCH or FOR UPDATE.
    """
    import pglast
    from pglast import ast
    from pglast.parser import ParseError, scan

    whole = f"SELECT count(*) FROM ({query}\n) AS backout_count"
    text = mask_as_dollar_params(query, spans, numbered=False)
    try:
        (raw,) = pglast.parse_sql(text)
    except (ParseError, ValueError):
        return whole
    node = raw.stmt
    if (
        not isinstance(node, ast.SelectStmt)
        or not node.sortClause
        or node.limitCount is not None
        or node.limitOffset is not None
        or node.lockingClause
        or any(_calls_something(sort) for sort in node.sortClause)
    ):
        return whole
    depth, cut = 0, None
    for token in scan(text):
        if token.name == "ASCII_40":  # (
            depth += 1
        elif token.name == "ASCII_41":  # )
            depth -= 1
        elif token.name == "ORDER" and depth == 0:
            cut = token.start
    if cut is None:
        return whole
    try:
        pglast.parse_sql(text[:cut])
    except (ParseError, ValueError):
        return whole
    return f"SELECT count(*) FROM ({query[:cut]}\n) AS backout_count"


def explain_rows(session: Session, from_where: str, params: Mapping[str, object]) -> int | None:
    """The planner's row estimate for ``SELECT 1 FROM {from_where}`` (bound ``params``)."""
    rows = session.query_native(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {from_where}", params)
    if not rows:
        return None
    plan = rows[0][0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
