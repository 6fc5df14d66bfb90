"""Orphaned rows: rows whose foreign-key columns point to no row of the referenced table.

The SQL is an anti-join that PostgreSQL and SQLite both run (``NOT EXISTS``); MATCH SIMPLE
semantics: a row with a NULL in any referencing column points nowhere on purpose and is not an
orphan. Every query is a plain ``SELECT``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backout.dialects.base import Dialect, OrphanRows, Session
from backout.model.schema import ForeignKeyInfo, SchemaSnapshot, TableInfo


@dataclass(frozen=True)
class Reference:
    """A reference to check: a foreign key, or a column that only looks like one."""

    table: TableInfo
    columns: tuple[str, ...]
    referenced: TableInfo
    referenced_columns: tuple[str, ...]
    constraint: str | None = None
    #: compare as text (the column types differ: a suspected reference)
    as_text: bool = False

    @classmethod
    def of(cls, table: TableInfo, fk: ForeignKeyInfo, snapshot: SchemaSnapshot) -> Reference | None:
        """The reference a foreign key makes (None when its table is not in the snapshot)."""
        referenced = snapshot.tables.get(fk.referenced_table)
        if referenced is None or not fk.referenced_columns:
            return None
        return cls(table, fk.columns, referenced, fk.referenced_columns, fk.name)


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int | float):
        return str(value)
    text = str(value).replace("\n", "\\n")
    if len(text) > 40:
        text = text[:39] + "…"
    return "'" + text.replace("'", "''") + "'"


def _anti_join(dialect: Dialect, ref: Reference) -> str:
    def column(alias: str, name: str) -> str:
        quoted = f"{alias}.{dialect.quote(name)}"
        return f"CAST({quoted} AS TEXT)" if ref.as_text else quoted

    pairs = " AND ".join(
        f"{column('p', parent)} = {column('c', child)}"
        for child, parent in zip(ref.columns, ref.referenced_columns, strict=True)
    )
    not_null = " AND ".join(f"c.{dialect.quote(c)} IS NOT NULL" for c in ref.columns)
    return (
        f"FROM {dialect.table_sql(ref.table)} AS c WHERE {not_null} AND NOT EXISTS "
        f"(SELECT 1 FROM {dialect.table_sql(ref.referenced)} AS p WHERE {pairs})"
    )


def count_orphans(session: Session, ref: Reference, *, samples: int = 5) -> OrphanRows:
    """Count (and sample) the rows of a reference that point nowhere."""
    dialect = session.dialect
    where = _anti_join(dialect, ref)
    count = int(session.query(f"SELECT count(*) {where}")[0][0])
    shown: list[str] = []
    if count and samples:
        columns = ", ".join(f"c.{dialect.quote(c)}" for c in ref.columns)
        for row in session.query(f"SELECT DISTINCT {columns} {where} LIMIT {int(samples)}"):
            shown.append(
                ", ".join(
                    f"{dialect.quote(name)}={_literal(value)}"
                    for name, value in zip(ref.columns, row, strict=True)
                )
            )
    return OrphanRows(
        table=ref.table.key,
        columns=ref.columns,
        referenced_table=ref.referenced.key,
        referenced_columns=ref.referenced_columns,
        constraint=ref.constraint,
        count=count,
        samples=tuple(shown),
    )


def unvalidated_orphans(
    session: Session,
    snapshot: SchemaSnapshot,
    foreign_keys: Sequence[tuple[TableInfo, ForeignKeyInfo]],
) -> list[OrphanRows]:
    """Orphans of the given foreign keys (those with at least one orphaned row)."""
    found: list[OrphanRows] = []
    for table, fk in foreign_keys:
        ref = Reference.of(table, fk, snapshot)
        if ref is None:
            continue
        rows = count_orphans(session, ref)
        if rows.count:
            found.append(rows)
    return found
