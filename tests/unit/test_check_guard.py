"""Which check queries are refused as writes before anything runs (no database)."""

from __future__ import annotations

import pytest

from backout.dialects.base import Dialect
from backout.dialects.mysql.dialect import MysqlDialect
from backout.dialects.postgres.dialect import PostgresDialect
from backout.dialects.sqlite.dialect import SqliteDialect

DIALECTS: dict[str, Dialect] = {
    "postgresql": PostgresDialect(),
    "sqlite": SqliteDialect(),
    "mysql": MysqlDialect(),
}

READS = [
    "SELECT count(*) = 0 FROM users",
    "SELECT NOT EXISTS (SELECT 1 FROM orders o LEFT JOIN users u ON u.id = o.user_id "
    "WHERE u.id IS NULL)",
    "WITH recent AS (SELECT id FROM users WHERE id > 10) SELECT count(*) FROM recent",
    "SELECT count(*) FROM users WHERE created > :since",
    "SELECT 1 UNION ALL SELECT 2",
    "SELECT count(*) = 0 FROM users WHERE note = '/*! not a comment */' /* a comment */",
]

#: (dialects, query, part of the reason)
WRITES = [
    ("postgresql sqlite", "WITH g AS (DELETE FROM users RETURNING 1) SELECT true", "DELETE"),
    ("postgresql", "WITH g AS (UPDATE users SET id = id RETURNING 1) SELECT 1", "UPDATE"),
    ("postgresql sqlite mysql", "DELETE FROM users", "not a query"),
    ("postgresql sqlite mysql", "INSERT INTO users VALUES (1)", "not a query"),
    ("postgresql sqlite mysql", "DROP TABLE users", "not a query"),
    ("postgresql sqlite mysql", "SELECT 1; DELETE FROM users", "2 statements"),
    ("postgresql mysql", "SELECT id FROM users FOR UPDATE", "FOR UPDATE"),
    ("postgresql", "SELECT id FROM users FOR SHARE", "FOR UPDATE/SHARE"),
    ("postgresql", "SELECT * INTO copy FROM users", "INTO"),
    ("mysql", "SELECT id INTO @x FROM users", "INTO"),
    ("mysql", "SELECT * FROM users INTO OUTFILE '/tmp/x'", "cannot parse"),
    ("postgresql", "SELECT nextval('users_id_seq') > 0", "nextval"),
    ("postgresql", "SELECT pg_advisory_unlock_all() IS NULL", "pg_advisory_unlock_all"),
    ("postgresql", "SELECT count(*) > 0 FROM dblink('x', 'DELETE FROM t') AS t(n int)", "dblink"),
    ("postgresql", "SELECT pg_catalog.lo_import('/etc/passwd') > 0", "lo_import"),
    # an extension's functions live in the schema it was created in
    ("postgresql", "SELECT public.dblink_exec('x', 'DELETE FROM t') IS NOT NULL", "dblink_exec"),
    ("postgresql", "SELECT ext.pg_file_write('f', 'x', false) > 0", "pg_file_write"),
    ("postgresql", "DO $$ BEGIN DELETE FROM users; END $$", "not a query"),
    ("postgresql", "EXPLAIN ANALYZE DELETE FROM users", "not a query"),
    ("mysql", "SELECT RELEASE_ALL_LOCKS() >= 0", "release_all_locks"),
    ("mysql", "SELECT LOAD_FILE('/etc/passwd') IS NULL", "load_file"),
    # MySQL and MariaDB run what an executable comment holds; sqlglot reads a comment
    ("mysql", "SELECT count(*) > 0 FROM users /*! INTO OUTFILE '/tmp/x' */", "executable"),
    ("mysql", "SELECT 1 /*!50000 , RELEASE_ALL_LOCKS() */", "executable"),
    ("mysql", "SELECT id FROM users /*M!100000 FOR UPDATE */", "executable"),
    ("sqlite", "SELECT load_extension('x')", "load_extension"),
    ("sqlite", "ATTACH DATABASE 'x.db' AS x", "not a query"),
    ("sqlite", "PRAGMA foreign_keys = OFF", "not a query"),
]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("query", READS)
def test_plain_reads_pass(dialect: str, query: str) -> None:
    assert DIALECTS[dialect].check_write(query, ["since"]) is None


@pytest.mark.parametrize(
    ("dialect", "query", "why"),
    [(d, q, w) for names, q, w in WRITES for d in names.split()],
)
def test_visible_writes_are_refused(dialect: str, query: str, why: str) -> None:
    reason = DIALECTS[dialect].check_write(query)
    assert reason is not None and why in reason, reason
