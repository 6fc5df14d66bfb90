"""SQLite pieces of impact analysis: DML scopes from sqlglot (SQLite counts are always exact)."""

from __future__ import annotations

from backout.dialects.base import DmlScope
from backout.model.identifiers import quote_identifier
from backout.model.script import Statement


def dml_scope(statement: Statement) -> DmlScope | None:
    """DELETE/UPDATE → the FROM ... WHERE that selects the rows it changes (None: cannot)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        node = sqlglot.parse_one(statement.sql, read="sqlite")
    except ParseError:
        return None
    if not isinstance(node, exp.Delete | exp.Update) or node.args.get("with"):
        return None
    table = node.this
    if not isinstance(table, exp.Table):
        return None
    parts = [table.sql(dialect="sqlite")]
    joined = node.args.get("from") or node.args.get("from_")
    if joined is not None:
        parts.append(joined.this.sql(dialect="sqlite"))
    from_where = ", ".join(parts)
    where = node.args.get("where")
    if where is not None:
        from_where += " WHERE " + where.this.sql(dialect="sqlite")
    target = table.alias_or_name
    quoted = quote_identifier(target)
    return DmlScope(
        from_where=from_where,
        target=quoted,
        distinct_key=f"{quoted}.rowid" if joined is not None else None,
    )
