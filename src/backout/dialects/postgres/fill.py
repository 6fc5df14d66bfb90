"""Filling empty PostgreSQL tables with generated rows: ``COPY`` (see
:mod:`backout.dialects.fill`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from backout.dialects.fill import MIGRATE_FIRST, TableRows, counted, not_empty
from backout.model.errors import DatabaseError
from backout.model.urls import DatabaseURL, scrub

if TYPE_CHECKING:
    import psycopg


def _pg_connect(url: DatabaseURL) -> psycopg.Connection[tuple[Any, ...]]:
    import psycopg
    from psycopg import sql

    # Built from the parsed parts, not url.raw: Prisma's ?schema= is no libpq parameter.
    params: dict[str, Any] = dict(url.params)
    for key, value in (
        ("host", url.host),
        ("port", url.port),
        ("user", url.user),
        ("password", url.password),
        ("dbname", url.database),
    ):
        if value is not None:
            params[key] = value
    conn = psycopg.connect(**params)
    if url.schema:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(url.schema)))
    return conn


_PG_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
FROM pg_constraint AS c
WHERE c.contype = 'f'
  AND (c.conrelid IN (SELECT to_regclass(n) FROM unnest(%(tables)s::text[]) AS n)
    OR c.confrelid IN (SELECT to_regclass(n) FROM unnest(%(tables)s::text[]) AS n))
ORDER BY 1, 2
"""

# Secondary indexes only: those backing a constraint (primary keys, or referenced by a foreign
# key) stay in place.
_PG_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index AS i
WHERE i.indrelid IN (SELECT to_regclass(n) FROM unnest(%(tables)s::text[]) AS n)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)
ORDER BY 1
"""


def fill_tables(url: DatabaseURL, tables: Sequence[TableRows]) -> dict[str, int]:
    """COPY every table in one transaction.

    Checking foreign keys row by row and maintaining indexes during COPY costs several times
    more than the COPY itself, so, as pg_restore does, the foreign keys and secondary indexes of
    the filled tables are dropped first and re-created from their catalog definitions at the
    end, in the same transaction. The schema afterwards is exactly what it was.
    """
    import psycopg
    from psycopg import sql

    counts: dict[str, int] = {}
    try:
        with _pg_connect(url) as conn, conn.cursor() as cur:
            for table in tables:
                cur.execute(
                    sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table.name))
                )
                found = cur.fetchone()
                if found is not None and found[0]:
                    raise not_empty(table.name)
            names = {"tables": [sql.Identifier(t.name).as_string(conn) for t in tables]}
            cur.execute(_PG_FOREIGN_KEYS, names)
            foreign_keys = [(str(r[0]), str(r[1]), str(r[2])) for r in cur.fetchall()]
            cur.execute(_PG_INDEXES, names)
            indexes = [(str(r[0]), str(r[1])) for r in cur.fetchall()]
            for rel, name, _ in foreign_keys:
                cur.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        sql.SQL(rel), sql.Identifier(name)
                    )
                )
            for index, _ in indexes:
                cur.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(index)))

            for table in tables:
                _copy(cur, table, counts)

            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                cur.execute(sql.SQL(definition))
            for rel, name, definition in foreign_keys:
                cur.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                        sql.SQL(rel),
                        sql.Identifier(name),
                        sql.SQL(definition),
                    )
                )
    except psycopg.Error as exc:
        hint = None
        if exc.sqlstate in ("42P01", "42703"):
            hint = MIGRATE_FIRST
        raise DatabaseError(scrub(str(exc), url.secrets), sqlstate=exc.sqlstate, hint=hint) from exc
    return counts


def _copy(cur: psycopg.Cursor[Any], table: TableRows, counts: dict[str, int]) -> None:
    """COPY one table's rows; a serial id's sequence is moved past the ids written."""
    from psycopg import sql

    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(sql.Identifier(c) for c in table.columns),
    )
    with cur.copy(copy_sql) as copy:
        for row in counted(table.rows(), counts, table.name):
            copy.write_row(row)
    if table.serial is not None:
        # Explicit ids bypass the sequence: move it past them for later inserts.
        cur.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({}, {}), "
                "(SELECT coalesce(max({}), 0) + 1 FROM {}), false)"
            ).format(
                sql.Literal(sql.Identifier(table.name).as_string(cur.connection)),
                sql.Literal(table.serial),
                sql.Identifier(table.serial),
                sql.Identifier(table.name),
            )
        )
