"""Prisma layout: `_prisma_migrations` written and read exactly as Prisma Migrate does."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path

import pytest

from tests.helpers import copy_example, db_state, run, sql, write

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

PRISMA_PG_DDL = """
CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)
"""


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.postgres
def test_up_writes_prisma_migrations_like_migrate_deploy(tmp_path: Path, pg_url: str) -> None:
    project = copy_example("giftregistry", tmp_path)
    result = run(["up"], project=project, url=pg_url + "?schema=public")
    assert result.exit_code == 0, result.stderr
    rows = sql(
        pg_url,
        "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, "
        "applied_steps_count FROM _prisma_migrations ORDER BY started_at",
    )
    folders = sorted(p for p in (project / "prisma/migrations").iterdir() if p.is_dir())
    assert [r[3] for r in rows] == [p.name for p in folders]
    for row, folder in zip(rows, folders, strict=True):
        row_id, digest, finished, _, logs, rolled_back, started, steps = row
        assert UUID4.match(row_id)
        assert digest == checksum(folder / "migration.sql")
        assert finished is not None and started <= finished
        assert logs is None and rolled_back is None
        assert steps == 1
    # The column types are Prisma's own (so prisma migrate deploy accepts the table).
    types = dict(
        sql(
            pg_url,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = '_prisma_migrations'",
        )
    )
    assert types["finished_at"] == "timestamp with time zone"
    assert types["id"] == "character varying"


@pytest.mark.postgres
def test_reads_rows_prisma_wrote_and_reapplies_rolled_back(tmp_path: Path, pg_url: str) -> None:
    project = copy_example("giftregistry", tmp_path)
    init = project / "prisma/migrations/20250101000000_init/migration.sql"
    # What `prisma migrate deploy` leaves after applying only the first migration:
    sql(pg_url, PRISMA_PG_DDL)
    sql(pg_url, init.read_text())
    sql(
        pg_url,
        "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, "
        "started_at, applied_steps_count) VALUES (%s, %s, now(), %s, now(), 1)",
        (str(uuid.uuid4()), checksum(init), "20250101000000_init"),
    )
    doc = json.loads(run(["status", "--json"], project=project, url=pg_url).stdout)
    assert [m["state"] for m in doc["migrations"]] == ["applied", "pending", "pending"]
    assert doc["migrations"][0]["edited"] is False

    assert run(["up"], project=project, url=pg_url).exit_code == 0
    # Undo the last migration by hand as an operator would, and mark it rolled back like Prisma.
    last = "20250720000002_fix_critical_schema_drift"
    rollback = project / f"prisma/rollback/{last}_rollback.sql"
    sql(pg_url, rollback.read_text())
    sql(
        pg_url,
        "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = %s",
        (last,),
    )
    doc = json.loads(run(["status", "--json"], project=project, url=pg_url).stdout)
    assert doc["migrations"][2]["state"] == "rolled_back"
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    rows = sql(
        pg_url,
        "SELECT rolled_back_at IS NULL, finished_at IS NOT NULL FROM _prisma_migrations "
        "WHERE migration_name = %s ORDER BY started_at",
        (last,),
    )
    assert rows == [(False, True), (True, True)]  # the old row is kept, a new one added


@pytest.mark.postgres
def test_prisma_failed_row_blocks_up_like_p3009(tmp_path: Path, pg_url: str) -> None:
    project = copy_example("giftregistry", tmp_path)
    assert run(["up", "--to", "20250101000000_init"], project=project, url=pg_url).exit_code == 0
    sql(
        pg_url,
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at) "
        "VALUES (%s, 'x', '20250720000000_encrypt_access_tokens', 'boom', now())",
        (str(uuid.uuid4()),),
    )
    before = db_state(pg_url)
    result = run(["up"], project=project, url=pg_url)
    assert result.exit_code == 2
    assert "20250720000000_encrypt_access_tokens failed" in result.stderr
    assert db_state(pg_url) == before


def test_sqlite_prisma_timestamps_are_epoch_milliseconds(tmp_path: Path, sqlite_url: str) -> None:
    project = copy_example("vouchers-sqlite", tmp_path)
    assert run(["up"], project=project, url=sqlite_url).exit_code == 0
    rows = sql(
        sqlite_url, "SELECT started_at, finished_at, typeof(finished_at) FROM _prisma_migrations"
    )
    assert rows
    for started, finished, kind in rows:
        assert kind == "integer"
        assert 1_700_000_000_000 < started <= finished


def test_env_file_url_resolves_relative_to_prisma_folder(tmp_path: Path) -> None:
    project = copy_example("vouchers-sqlite", tmp_path)
    (project / ".env").write_text('DATABASE_URL="file:./dev.db"\n')
    result = run(["up"], project=project)
    assert result.exit_code == 0, result.stderr
    assert (project / "prisma" / "dev.db").exists()
    doc = json.loads(run(["status", "--json"], project=project).stdout)
    assert doc["database_source"] == ".env"
    assert all(m["state"] == "applied" for m in doc["migrations"])
    # the environment beats .env, and --url beats both
    env = run(["status", "--json"], project=project, env={"DATABASE_URL": "sqlite:///other.db"})
    assert json.loads(env.stdout)["database_source"] == "environment"
    flag = run(
        ["status", "--json"],
        project=project,
        url="sqlite:///third.db",
        env={"DATABASE_URL": "sqlite:///other.db"},
    )
    assert json.loads(flag.stdout)["database_source"] == "flag"


def test_provider_mismatch_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    project = copy_example("giftregistry", tmp_path)
    result = run(["status"], project=project, url=sqlite_url)
    assert result.exit_code == 2
    assert "provider 'postgresql'" in result.stderr


REDEFINE = {
    "prisma/migrations/migration_lock.toml": 'provider = "sqlite"\n',
    "prisma/migrations/20240101000000_init/migration.sql": """
        CREATE TABLE "Parent" ("id" INTEGER NOT NULL PRIMARY KEY, "name" TEXT);
        CREATE TABLE "Child" (
            "id" INTEGER NOT NULL PRIMARY KEY,
            "parentId" INTEGER NOT NULL,
            CONSTRAINT "Child_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Parent" ("id")
                ON DELETE CASCADE ON UPDATE CASCADE
        );
        INSERT INTO "Parent" VALUES (1, 'p1'), (2, 'p2');
        INSERT INTO "Child" VALUES (10, 1), (11, 1), (12, 2);
    """,
    # What Prisma generates for SQLite when a column changes: the table is redefined.
    "prisma/migrations/20240201000000_redefine/migration.sql": """
        -- RedefineTables
        PRAGMA defer_foreign_keys=ON;
        PRAGMA foreign_keys=OFF;
        CREATE TABLE "new_Parent" ("id" INTEGER NOT NULL PRIMARY KEY, "name" TEXT NOT NULL
            DEFAULT '');
        INSERT INTO "new_Parent" ("id", "name") SELECT "id", coalesce("name", '') FROM "Parent";
        DROP TABLE "Parent";
        ALTER TABLE "new_Parent" RENAME TO "Parent";
        PRAGMA foreign_keys=ON;
        PRAGMA defer_foreign_keys=OFF;
    """,
}


def test_sqlite_redefine_table_keeps_children(tmp_path: Path, sqlite_url: str) -> None:
    """Inside a transaction `PRAGMA foreign_keys=OFF` is a no-op, so DROP TABLE would cascade;
    backout runs those PRAGMAs around its transaction instead."""
    project = write(tmp_path, REDEFINE)
    result = run(["up"], project=project, url=sqlite_url)
    assert result.exit_code == 0, result.stderr
    assert sql(sqlite_url, 'SELECT count(*) FROM "Child"') == [(3,)]
    assert sql(sqlite_url, "PRAGMA foreign_key_check") == []
    notnull = sql(
        sqlite_url, "SELECT \"notnull\" FROM pragma_table_info('Parent') WHERE name = 'name'"
    )
    assert notnull == [(1,)]


def test_sqlite_foreign_key_violation_is_caught_before_commit(
    tmp_path: Path, sqlite_url: str
) -> None:
    project = write(
        tmp_path,
        {
            **REDEFINE,
            "prisma/migrations/20240201000000_redefine/migration.sql": """
                PRAGMA foreign_keys=OFF;
                DELETE FROM "Parent" WHERE "id" = 2;
                PRAGMA foreign_keys=ON;
            """,
        },
    )
    assert run(["up", "--to", "20240101000000"], project=project, url=sqlite_url).exit_code == 0
    before = db_state(sqlite_url)
    result = run(["up"], project=project, url=sqlite_url)
    assert result.exit_code == 1
    assert "integrity check failed" in result.stderr
    assert "Child" in result.stderr
    after = db_state(sqlite_url)
    assert after.schema == before.schema and after.data == before.data
