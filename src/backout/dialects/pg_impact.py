"""PostgreSQL pieces of impact analysis: DML scopes from pglast, estimates from statistics."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from backout.dialects.base import DmlScope
from backout.script import Statement

if TYPE_CHECKING:
    from backout.dialects.base import Session
    from backout.schema import TableInfo


def dml_scope(statement: Statement, params: Collection[str] = ()) -> DmlScope | None:
    """DELETE/UPDATE → the FROM ... WHERE that selects the rows it changes (None: cannot).

    Declared ``:name`` parameters stay ``:name`` placeholders in the result (bound later).
    """
    import pglast
    from pglast import ast
    from pglast.stream import RawStream

    from backout.dialects.params import mask_same_length, param_spans

    spans = param_spans(statement.sql, params, dollar_quotes=True)
    order = list(dict.fromkeys(name for _, _, name in spans))
    text = mask_same_length(statement.sql, spans, lambda n: f"${n}") if spans else statement.sql
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
        return _PARAM_REF.sub(lambda m: ":" + order[int(m[1]) - 1], out) if order else out

    parts = [stream(relation), *(stream(item) for item in others or ())]
    from_where = ", ".join(parts)
    if node.whereClause is not None:
        from_where += " WHERE " + stream(node.whereClause)
    target = str(relation.alias.aliasname) if relation.alias else stream(relation)
    return DmlScope(
        from_where=from_where,
        target=target,
        distinct_key=f"{target}.ctid" if others else None,
    )


_PARAM_REF = re.compile(r"(?<![\w$])\$(\d+)(?!\w)")


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

    from backout.dialects.params import mask_same_length

    whole = f"SELECT count(*) FROM ({query}\n) AS backout_count"
    text = mask_same_length(query, spans, lambda n: f"${n}") if spans else query
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
