"""MySQL pieces of impact analysis: DML scopes from sqlglot, estimates from the catalog.

A multi-table ``UPDATE``/``DELETE`` (with ``JOIN``) has no scope: MySQL has no row id to count
distinct target rows by, and counting the join would count a row once per match. Such a
statement's rows are reported as "cannot be counted before it runs".
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from backout.dialects.base import DmlScope
from backout.dialects.mysql.catalog import quote_identifier
from backout.dialects.mysql.split import param_spans
from backout.dialects.params import substitute
from backout.model.script import Statement

if TYPE_CHECKING:
    from backout.dialects.base import Session

_MARKER = "backout_param__"


def dml_scope(statement: Statement, params: Collection[str] = ()) -> DmlScope | None:
    """DELETE/UPDATE → the FROM ... WHERE that selects the rows it changes (None: cannot).

    Declared ``:name`` parameters stay ``:name`` placeholders in the result (bound later).
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    spans = param_spans(statement.sql, params)
    text = substitute(statement.sql, spans, lambda n: _MARKER + n) if spans else statement.sql
    try:
        node = sqlglot.parse_one(text, read="mysql")
    except (ParseError, TokenError):
        return None
    if not isinstance(node, exp.Delete | exp.Update) or node.args.get("with"):
        return None
    table = node.this
    if not isinstance(table, exp.Table) or table.args.get("joins"):
        return None
    if isinstance(node, exp.Delete) and len(node.args.get("tables") or []) > 1:
        return None
    if node.args.get("limit") is not None or node.args.get("order") is not None:
        return None  # ORDER BY ... LIMIT n: only n of the matching rows change
    from_where = table.sql(dialect="mysql")
    where = node.args.get("where")
    if where is not None:
        from_where += " WHERE " + where.this.sql(dialect="mysql")
    if spans:
        from_where = re.sub(rf"`?{_MARKER}(\w+)`?", r":\1", from_where)
    target = table.alias_or_name
    return DmlScope(from_where=from_where, target=quote_identifier(target))


def estimate_rows(session: Session, table: str) -> int | None:
    """InnoDB's row estimate from ``information_schema.TABLES`` (None when it has none)."""
    rows = session.query(
        "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = %s",
        (table,),
    )
    if not rows or rows[0][0] is None:
        return None
    return int(rows[0][0])


def explain_rows(session: Session, from_where: str, params: Mapping[str, object]) -> int | None:
    """The optimizer's row estimate for ``SELECT 1 FROM {from_where}`` (first table)."""
    names, rows = session.query_table(f"EXPLAIN SELECT 1 FROM {from_where}", params, 10)
    if not rows:
        return None
    lowered = [n.lower() for n in names]
    if "rows" not in lowered:
        return None
    estimate = rows[0][lowered.index("rows")]
    if estimate is None:
        return None
    filtered = rows[0][lowered.index("filtered")] if "filtered" in lowered else None
    value = float(estimate) * (float(filtered) / 100.0 if filtered is not None else 1.0)
    return round(value)
