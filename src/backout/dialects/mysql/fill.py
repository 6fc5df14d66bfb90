"""Filling empty MySQL/MariaDB tables with generated rows: multi-row INSERT statements (see
:mod:`backout.dialects.fill`)."""

from __future__ import annotations

from collections.abc import Sequence

from backout.dialects.fill import MIGRATE_FIRST, Row, TableRows, counted, not_empty
from backout.dialects.mysql.catalog import quote_identifier as q
from backout.dialects.mysql.session import translate
from backout.model.urls import DatabaseURL

#: rows per multi-row INSERT on MySQL (well under the default max_allowed_packet)
_MYSQL_BATCH = 2000


def fill_tables(url: DatabaseURL, tables: Sequence[TableRows]) -> dict[str, int]:
    """Fill with multi-row INSERTs in one transaction (foreign key checks off while loading,
    as mysqldump does; the rows are consistent by construction)."""
    import pymysql

    counts: dict[str, int] = {}
    try:
        conn = pymysql.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 3306,
            user=url.user,
            password=url.password or "",
            database=url.database,
            charset="utf8mb4",
            autocommit=False,
            init_command="SET time_zone = '+00:00'",
        )
    except pymysql.Error as exc:
        raise translate(exc, url) from exc
    try:
        with conn.cursor() as cur:
            for table in tables:
                cur.execute(f"SELECT EXISTS (SELECT 1 FROM {q(table.name)})")
                found = cur.fetchone()
                if found is not None and found[0]:
                    raise not_empty(table.name)
            cur.execute("SET SESSION FOREIGN_KEY_CHECKS = 0, UNIQUE_CHECKS = 0")
            for table in tables:
                columns = ", ".join(q(c) for c in table.columns)
                marks = "(" + ", ".join("%s" for _ in table.columns) + ")"
                batch: list[Row] = []
                for row in counted(table.rows(), counts, table.name):
                    batch.append(row)
                    if len(batch) >= _MYSQL_BATCH:
                        cur.executemany(
                            f"INSERT INTO {q(table.name)} ({columns}) VALUES {marks}", batch
                        )
                        batch = []
                if batch:
                    cur.executemany(
                        f"INSERT INTO {q(table.name)} ({columns}) VALUES {marks}", batch
                    )
            cur.execute("SET SESSION FOREIGN_KEY_CHECKS = 1, UNIQUE_CHECKS = 1")
        conn.commit()
    except pymysql.Error as exc:
        conn.rollback()
        error = translate(exc, url)
        if error.sqlstate in ("1146", "1054"):
            error.hint = MIGRATE_FIRST
        raise error from exc
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    return counts
