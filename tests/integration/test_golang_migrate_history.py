"""Issue 15: golang-migrate's ``schema_migrations`` kept by the plain layout, on each database.

golang-migrate's ``migrate`` is not installable from npm, PyPI or Debian here, so these checks
are **derived from its source** (golang-migrate/migrate v4): the table is compared with one
made by the exact DDL of ``ensureVersionTable`` (database/postgres, database/mysql,
database/sqlite3), the row states with what ``runMigrations`` (``SetVersion(T, true)``, run,
``SetVersion(T, false)``), a failure (``(T, true)`` left) and ``migrate force V`` leave, and
``migrate``'s own moves are made with the statements of its ``SetVersion``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import MATRIX, dialect_of, matrix_url, run, sql, transactional_ddl, write

PROJECT = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/1_users.up.sql": "CREATE TABLE users (id integer PRIMARY KEY);\n",
    "migrations/1_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/2_posts.up.sql": "CREATE TABLE posts (id integer PRIMARY KEY);\n",
    "migrations/2_posts.down.sql": "-- backout:risk HIGH\nDROP TABLE posts;\n",
    "migrations/3_flags.up.sql": "CREATE TABLE flags (id integer PRIMARY KEY);\n",
    "migrations/3_flags.down.sql": "-- backout:risk HIGH\nDROP TABLE flags;\n",
}
NOBACKUP = ["--backup", "none", "--i-accept-data-loss", "--yes"]

#: ensureVersionTable's DDL, verbatim from golang-migrate's drivers (table name substituted)
SOURCE_DDL = {
    "postgresql": [
        "CREATE TABLE IF NOT EXISTS {t} "
        "(version bigint not null primary key, dirty boolean not null)"
    ],
    "mysql": ["CREATE TABLE {t} (version bigint not null primary key, dirty boolean not null)"],
    "sqlite": [
        "CREATE TABLE IF NOT EXISTS {t} (version uint64,dirty bool)",
        "CREATE UNIQUE INDEX IF NOT EXISTS version_unique_probe ON {t} (version)",
    ],
}


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


def version_row(url: str) -> list[tuple[int, bool]]:
    """The table's rows as ``Version()`` reads them."""
    return [(int(v), bool(d)) for v, d in sql(url, "SELECT version, dirty FROM schema_migrations")]


def set_version(url: str, version: int, dirty: bool) -> None:
    """What ``migrate``'s ``SetVersion`` does (TRUNCATE on PostgreSQL/MySQL; DELETE on SQLite)."""
    sql(url, "DELETE FROM schema_migrations")
    if version >= 0 or dirty:
        sql(url, "INSERT INTO schema_migrations (version, dirty) VALUES (%s, %s)", (version, dirty))


def states(root: Path, url: str, code: int = 0) -> dict[str, tuple[object, object]]:
    result = run(["status", "--json"], project=root, url=url)
    assert result.exit_code == code, result.output + result.stderr
    doc = json.loads(result.stdout)
    assert doc["host_table"] == "schema_migrations"
    return {str(m["version"]): (m["state"], m["recorded_by"]) for m in doc["migrations"]}


def describe(url: str, table: str) -> object:
    if dialect_of(url) == "sqlite":
        columns = sql(url, f"SELECT name, type, \"notnull\", pk FROM pragma_table_info('{table}')")
        unique = sql(
            url, f"SELECT \"unique\", origin FROM pragma_index_list('{table}') WHERE origin = 'c'"
        )
        return columns, unique
    if dialect_of(url) == "mysql":
        return sql(url, f"SHOW CREATE TABLE {table}")[0][1].replace(f"`{table}`", "T")
    return sql(
        url,
        "SELECT column_name, data_type, is_nullable, "
        "(SELECT count(*) FROM information_schema.table_constraints c "
        "WHERE c.table_name = %s AND c.constraint_type = 'PRIMARY KEY') "
        "FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
        (table, table),
    )


def test_table_shape_is_golang_migrates(tmp_path: Path, url: str) -> None:
    root = write(tmp_path, PROJECT)
    assert run(["up", "--to", "1"], project=root, url=url).exit_code == 0
    for statement in SOURCE_DDL[dialect_of(url)]:
        sql(url, statement.format(t="golden_probe"))
    assert describe(url, "schema_migrations") == describe(url, "golden_probe")


def test_up_and_rollback_leave_migrates_version(tmp_path: Path, url: str) -> None:
    root = write(tmp_path, PROJECT)
    assert run(["up", "--to", "2"], project=root, url=url).exit_code == 0
    assert version_row(url) == [(2, False)]
    assert run(["up"], project=root, url=url).exit_code == 0
    assert version_row(url) == [(3, False)]
    assert run(["rollback", *NOBACKUP], project=root, url=url).exit_code == 0
    assert version_row(url) == [(2, False)]  # as `migrate down 1`
    assert run(["rollback", "--steps", "2", *NOBACKUP], project=root, url=url).exit_code == 0
    assert version_row(url) == []  # below the first migration: NilVersion, the table emptied
    assert states(root, url) == {
        "1": ("rolled_back", None),
        "2": ("rolled_back", None),
        "3": ("rolled_back", None),
    }


def test_failed_up_is_dirty_and_resolve_forces(tmp_path: Path, url: str) -> None:
    bad = "CREATE TABLE flags (id integer PRIMARY KEY);\nINSERT INTO nowhere VALUES (1);\n"
    root = write(tmp_path, {**PROJECT, "migrations/3_flags.up.sql": bad})
    assert run(["up"], project=root, url=url).exit_code == 4
    # SetVersion(3, dirty) stays, as after a failed `migrate up` (journaled on MySQL too)
    assert version_row(url) == [(3, True)]
    assert states(root, url, code=1)["3"] == ("failed", None)  # both agree: no host-only
    assert run(["up"], project=root, url=url).exit_code == 2  # refused, like migrate's ErrDirty
    if not transactional_ddl(url):
        sql(url, "DROP TABLE flags")  # what the journaled failure left, dropped by hand
    # `resolve --rolled-back` is `migrate force 2`
    assert run(["resolve", "3", "--rolled-back"], project=root, url=url).exit_code == 0
    assert version_row(url) == [(2, False)]
    assert states(root, url)["3"] == ("pending", None)
    # `resolve --applied` is `migrate force 3`
    assert run(["resolve", "3", "--applied"], project=root, url=url).exit_code == 0
    assert version_row(url) == [(3, False)]


def test_migrates_own_moves_are_what_status_shows(tmp_path: Path, url: str) -> None:
    root = write(tmp_path, PROJECT)
    assert run(["up", "--to", "1"], project=root, url=url).exit_code == 0
    # `migrate up` (2 then 3): the tables, then SetVersion(3, false)
    sql(url, "CREATE TABLE posts (id integer PRIMARY KEY)")
    sql(url, "CREATE TABLE flags (id integer PRIMARY KEY)")
    set_version(url, 3, False)
    assert states(root, url) == {
        "1": ("applied", None),
        "2": ("applied", "golang-migrate"),
        "3": ("applied", "golang-migrate"),
    }
    assert run(["up"], project=root, url=url).exit_code == 0  # nothing pending
    # `migrate down 1`: DROP TABLE flags, SetVersion(2, false)
    sql(url, "DROP TABLE flags")
    set_version(url, 2, False)
    assert states(root, url)["3"] == ("pending", None)
    assert run(["up"], project=root, url=url).exit_code == 0  # backout re-applies it
    assert version_row(url) == [(3, False)]
    assert states(root, url)["3"] == ("applied", None)
    # a `migrate up` that failed on 3 elsewhere: dirty 3
    set_version(url, 3, True)
    assert states(root, url, code=1)["3"] == ("failed", "golang-migrate")
    assert run(["up"], project=root, url=url).exit_code == 2
    assert run(["resolve", "3", "--applied"], project=root, url=url).exit_code == 0
    assert version_row(url) == [(3, False)]
    assert states(root, url)["3"] == ("applied", None)


def test_existing_ledger_gets_the_table_on_next_write(tmp_path: Path, sqlite_url: str) -> None:
    root = write(tmp_path, PROJECT)
    assert run(["up", "--to", "2"], project=root, url=sqlite_url).exit_code == 0
    # a database from before backout kept golang-migrate's table: it has only backout's ledger
    sql(sqlite_url, "DROP TABLE schema_migrations")
    assert states(root, sqlite_url)["2"] == ("applied", None)  # no table: the ledger says
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    assert version_row(sqlite_url) == [(3, False)]
