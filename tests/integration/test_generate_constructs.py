"""``backout generate`` on the constructs real Prisma projects ship (issue 11 §2).

Each test writes a tiny Prisma project: a first migration that builds the schema, rows put in
by hand, and the migration under test. It applies both, drafts the rollback of the second with
``backout generate``, runs that draft with ``backout rollback``, and compares the database with
its state before the migration: the schema exactly, and the rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import backout.cli.rehearse  # noqa: F401  (registers check/test/generate)
from backout.dialects.postgres.catalog import read_postgres_snapshot
from backout.model.schema import SchemaSnapshot, diff_schemas
from backout.project.layouts import load_project
from tests.helpers import _pg_query, run, sql, write

pytestmark = pytest.mark.postgres

FIRST = "20240101000000_init"
SECOND = "20240102000000_change"


def snapshot(url: str) -> SchemaSnapshot:
    """The catalog snapshot of the database at ``url``."""
    conn, query = _pg_query(url)
    try:
        return read_postgres_snapshot(query)
    finally:
        conn.close()


def project(tmp_path: Path, init: str, change: str) -> Path:
    """A Prisma project with the two migrations and an empty rollback folder."""
    root = write(
        tmp_path / "p",
        {
            f"prisma/migrations/{FIRST}/migration.sql": init,
            f"prisma/migrations/{SECOND}/migration.sql": change,
        },
    )
    (root / "prisma/rollback").mkdir()
    return root


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of a query, sorted (order-insensitive comparison)."""
    return sorted(sql(url, query), key=repr)


def round_trip(
    tmp_path: Path, url: str, init: str, change: str, seed: str = "", queries: tuple[str, ...] = ()
) -> tuple[str, dict[str, list[tuple[Any, ...]]]]:
    """Apply ``init``, seed, apply ``change``, generate its rollback and run it; asserts that
    the schema is back exactly and returns the draft and the rows of ``queries`` afterwards
    (the caller compares them with what it seeded)."""
    root = project(tmp_path, init, change)
    assert run(["up", "--to", FIRST], project=root, url=url).exit_code == 0
    if seed:
        sql(url, seed)
    before = snapshot(url)
    seeded = {q: rows(url, q) for q in queries}
    applied = run(["up"], project=root, url=url)
    assert applied.exit_code == 0, applied.output
    generated = run(["generate", SECOND], project=root, url=url)
    assert generated.exit_code == 0, generated.output
    draft = (root / f"prisma/rollback/{SECOND}_rollback.sql").read_text()
    rolled = run(
        ["rollback", "--yes", "--backup", "none", "--i-accept-data-loss"], project=root, url=url
    )
    assert rolled.exit_code == 0, rolled.output + draft
    diff = diff_schemas(before, snapshot(url))
    assert diff.lines() == [], draft
    after = {q: rows(url, q) for q in queries}
    assert after == seeded, draft
    return draft, after


def rehearse_all(root: Path, url: str) -> dict[str, Any]:
    """``backout test --all --json`` on the project."""
    result = run(["test", "--all", "--json"], project=root, url=url)
    doc: dict[str, Any] = json.loads(result.stdout)
    assert result.exit_code == (0 if doc["ok"] else 1)
    return doc


# --- data-only migrations ------------------------------------------------------------------

DATA_INIT = """
    CREATE TABLE "Plan" ("id" integer PRIMARY KEY, "name" text NOT NULL);
"""
DATA_CHANGE = """
    INSERT INTO "Plan" ("id", "name") VALUES (10, 'pro'), (11, 'team');
    UPDATE "Plan" SET "name" = 'starter' WHERE "id" = 1;
"""


def test_data_only_migration_deletes_its_literal_rows_and_lists_the_rest(
    tmp_path: Path, pg_url: str
) -> None:
    root = project(tmp_path, DATA_INIT, DATA_CHANGE)
    assert run(["up", "--to", FIRST], project=root, url=pg_url).exit_code == 0
    sql(pg_url, """INSERT INTO "Plan" VALUES (1, 'free')""")
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    assert run(["generate", SECOND], project=root, url=pg_url).exit_code == 0
    draft = (root / f"prisma/rollback/{SECOND}_rollback.sql").read_text()
    assert "-- backout:data-only the migration changes rows only" in draft
    assert 'DELETE FROM "Plan" WHERE ("id") IN ((10), (11));' in draft
    down = load_project(root).find(SECOND).down
    assert down is not None and down.directives.data_only is not None
    assert (
        f"Put back the rows that prisma/migrations/{SECOND}/migration.sql:2 updates rows of "
        'table "Plan" (from a backup taken before the migration), or confirm that none need to be'
    ) in down.directives.manual
    assert "changes no schema object" not in draft
    rolled = run(
        ["rollback", "--yes", "--backup", "none", "--i-accept-data-loss"], project=root, url=pg_url
    )
    assert rolled.exit_code == 0, rolled.output
    # the inserted rows are gone; the update is the manual step the draft names
    assert rows(pg_url, 'SELECT "id", "name" FROM "Plan"') == [(1, "starter")]


def test_data_only_rollback_passes_test_and_reports_its_manual_steps(
    tmp_path: Path, pg_url: str
) -> None:
    root = project(tmp_path, DATA_INIT, 'UPDATE "Plan" SET "name" = lower("name");\n')
    assert run(["generate", SECOND], project=root, url=pg_url).exit_code == 0
    draft = (root / f"prisma/rollback/{SECOND}_rollback.sql").read_text()
    assert "-- backout:data-only" in draft
    doc = rehearse_all(root, pg_url)
    entry = next(m for m in doc["migrations"] if m["id"] == SECOND)
    assert entry["status"] == "passed", entry
    [note] = [n for n in entry["notes"] if n.startswith("data-only rollback")]
    assert "manual data steps: Put back the rows that" in note
    assert 'updates rows of table "Plan"' in note
    linted = run(["lint", "--json", "--no-squawk"], project=root, url=pg_url)
    rules = {f["rule"] for f in json.loads(linted.stdout)["findings"]}
    assert "BO102" not in rules, linted.output  # data-only: no statement is not a mistake


def test_insert_on_conflict_is_not_deleted_by_key(tmp_path: Path, pg_url: str) -> None:
    change = """INSERT INTO "Plan" ("id", "name") VALUES (1, 'x') ON CONFLICT DO NOTHING;\n"""
    draft, after = round_trip(
        tmp_path,
        pg_url,
        DATA_INIT,
        change,
        seed="""INSERT INTO "Plan" VALUES (1, 'free')""",
        queries=('SELECT * FROM "Plan"',),
    )
    assert "DELETE" not in draft  # row 1 was there before: deleting it would lose it
    assert after['SELECT * FROM "Plan"'] == [(1, "free")]


# --- renames -------------------------------------------------------------------------------

TEAM_INIT = """
    CREATE TABLE "Team" ("id" serial PRIMARY KEY, "slug" text NOT NULL, "title" text);
    CREATE UNIQUE INDEX "Team_slug_key" ON "Team"("slug");
    CREATE TABLE "Member" ("id" serial PRIMARY KEY, "teamId" integer NOT NULL);
    ALTER TABLE "Member" ADD CONSTRAINT "Member_teamId_fkey" FOREIGN KEY ("teamId")
        REFERENCES "Team"("id") ON DELETE CASCADE;
"""
TEAM_RENAME = """
    ALTER TABLE "Team" RENAME TO "Organization";
    ALTER TABLE "Organization" RENAME CONSTRAINT "Team_pkey" TO "Organization_pkey";
    ALTER SEQUENCE "Team_id_seq" RENAME TO "Organization_id_seq";
    ALTER INDEX "Team_slug_key" RENAME TO "Organization_slug_key";
    ALTER TABLE "Organization" RENAME COLUMN "title" TO "name";
    ALTER TABLE "Member" RENAME COLUMN "teamId" TO "organizationId";
    ALTER TABLE "Member" RENAME CONSTRAINT "Member_teamId_fkey" TO "Member_organizationId_fkey";
"""
TEAM_ROWS = """
    INSERT INTO "Team" ("slug", "title") VALUES ('a', 'Alpha'), ('b', 'Beta');
    INSERT INTO "Member" ("teamId") VALUES (1), (2), (2);
"""


def test_table_renamed_with_its_constraints_is_renamed_back(tmp_path: Path, pg_url: str) -> None:
    draft, after = round_trip(
        tmp_path,
        pg_url,
        TEAM_INIT,
        TEAM_RENAME,
        seed=TEAM_ROWS,
        queries=('SELECT * FROM "Team"', 'SELECT * FROM "Member"'),
    )
    assert after['SELECT * FROM "Member"'] == [(1, 1), (2, 2), (3, 2)]
    assert "DROP CONSTRAINT" not in draft and "DROP COLUMN" not in draft, draft
    assert 'ALTER TABLE "Organization" RENAME TO "Team"' in draft
    assert 'RENAME COLUMN "name" TO "title"' in draft


def test_column_renamed_on_a_renamed_table_keeps_its_rows(tmp_path: Path, pg_url: str) -> None:
    change = """
        ALTER TABLE "Team" RENAME TO "Org";
        ALTER TABLE "Org" RENAME COLUMN "title" TO "label";
        ALTER TABLE "Org" ALTER COLUMN "label" SET NOT NULL;
    """
    draft, after = round_trip(
        tmp_path,
        pg_url,
        TEAM_INIT,
        change,
        seed=TEAM_ROWS,
        queries=('SELECT "id", "title" FROM "Team"',),
    )
    assert "DROP COLUMN" not in draft and "ADD COLUMN" not in draft, draft
    assert after['SELECT "id", "title" FROM "Team"'] == [(1, "Alpha"), (2, "Beta")]


# --- type changes --------------------------------------------------------------------------

ENUM_INIT = """
    CREATE TYPE "Role" AS ENUM ('ADMIN', 'MEMBER');
    CREATE TABLE "User" ("id" integer PRIMARY KEY, "role" "Role" NOT NULL DEFAULT 'MEMBER');
"""


def test_enum_to_another_enum_is_cast_back_through_text(tmp_path: Path, pg_url: str) -> None:
    change = """
        CREATE TYPE "OrgRole" AS ENUM ('ADMIN', 'MEMBER', 'OWNER');
        ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;
        ALTER TABLE "User" ALTER COLUMN "role" TYPE "OrgRole" USING ("role"::text::"OrgRole");
        ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT 'MEMBER';
    """
    draft, after = round_trip(
        tmp_path,
        pg_url,
        ENUM_INIT,
        change,
        seed="""INSERT INTO "User" VALUES (1, 'ADMIN'), (2, 'MEMBER')""",
        queries=('SELECT "id", "role"::text FROM "User"',),
    )
    assert '"role"::text::"Role"' in draft, draft
    assert after['SELECT "id", "role"::text FROM "User"'] == [(1, "ADMIN"), (2, "MEMBER")]


def test_key_type_changed_under_foreign_keys(tmp_path: Path, pg_url: str) -> None:
    init = """
        CREATE TABLE "Project" ("id" text PRIMARY KEY);
        CREATE TABLE "Task" ("id" integer PRIMARY KEY, "projectId" text NOT NULL
            REFERENCES "Project"("id"));
    """
    change = """
        ALTER TABLE "Task" DROP CONSTRAINT "Task_projectId_fkey";
        ALTER TABLE "Project" ALTER COLUMN "id" TYPE integer USING "id"::integer;
        ALTER TABLE "Task" ALTER COLUMN "projectId" TYPE integer USING "projectId"::integer;
        ALTER TABLE "Task" ADD CONSTRAINT "Task_projectId_fkey" FOREIGN KEY ("projectId")
            REFERENCES "Project"("id");
    """
    draft, after = round_trip(
        tmp_path,
        pg_url,
        init,
        change,
        seed="""INSERT INTO "Project" VALUES ('1'), ('2');
                INSERT INTO "Task" VALUES (1, '1'), (2, '2');""",
        queries=('SELECT * FROM "Project"', 'SELECT * FROM "Task"'),
    )
    assert after['SELECT * FROM "Task"'] == [(1, "1"), (2, "2")]
    drop = draft.index('ALTER TABLE "Task" DROP CONSTRAINT "Task_projectId_fkey"')
    retype = draft.index('ALTER TABLE "Project" ALTER COLUMN "id" TYPE text')
    assert drop < retype < draft.index('ADD CONSTRAINT "Task_projectId_fkey"')


def test_require_checks_name_the_tables_as_they_are_when_they_run(
    tmp_path: Path, pg_url: str
) -> None:
    change = """
        ALTER TABLE "Team" RENAME TO "Org";
        ALTER TABLE "Org" RENAME COLUMN "slug" TO "handle";
        ALTER TABLE "Org" ALTER COLUMN "handle" DROP NOT NULL;
    """
    draft, after = round_trip(
        tmp_path,
        pg_url,
        TEAM_INIT,
        change,
        seed=TEAM_ROWS,
        queries=('SELECT "id", "slug" FROM "Team"',),
    )
    # checked before the renames are undone: the names the migration gave
    assert '-- backout:require SELECT NOT EXISTS (SELECT 1 FROM "Org" WHERE "handle" IS NULL)' in (
        draft
    )
    assert after['SELECT "id", "slug" FROM "Team"'] == [(1, "a"), (2, "b")]


def test_table_dropped_and_recreated_says_its_rows_are_lost(tmp_path: Path, pg_url: str) -> None:
    change = """
        DROP TABLE "Plan";
        CREATE TABLE "Plan" ("id" integer PRIMARY KEY, "name" text NOT NULL);
    """
    root = project(tmp_path, DATA_INIT, change)
    assert run(["generate", SECOND], project=root, url=pg_url).exit_code == 0
    draft = (root / f"prisma/rollback/{SECOND}_rollback.sql").read_text()
    assert "changes no schema object" not in draft
    down = load_project(root).find(SECOND).down
    assert down is not None and down.directives.data_only is not None
    assert any(
        '"Plan"' in text and "dropped and re-created" in text
        for text in (down.directives.data_loss)
    ), draft
    assert any("Restore the rows of" in text for text in down.directives.manual), draft
    doc = rehearse_all(root, pg_url)
    entry = next(m for m in doc["migrations"] if m["id"] == SECOND)
    assert entry["status"] == "passed", entry


def test_plan_neither_warns_about_nor_overstates_an_enum_rebuild_draft(
    tmp_path: Path, pg_url: str
) -> None:
    init = """
        CREATE TYPE "Role" AS ENUM ('ADMIN', 'MEMBER', 'GUEST', 'OWNER', 'BOT');
        CREATE TABLE "User" ("id" integer PRIMARY KEY, "role" "Role" NOT NULL DEFAULT 'MEMBER');
    """
    root = project(tmp_path, init, """ALTER TYPE "Role" ADD VALUE 'AUDITOR';\n""")
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    sql(pg_url, """INSERT INTO "User" VALUES (1, 'ADMIN'), (2, 'BOT'), (3, 'GUEST')""")
    assert run(["generate", SECOND], project=root, url=pg_url).exit_code == 0
    planned = run(["plan", "--json"], project=root, url=pg_url)
    assert planned.exit_code == 0, planned.output
    doc = json.loads(planned.stdout)
    impact = doc["steps"][0]["impact"]
    assert doc["warnings"] == [] and impact["simulation"]["disagreements"] == [], doc
    assert impact["losses"] == [], impact  # every label comes back: no value is lost
    rolled = run(
        ["rollback", "--yes", "--backup", "none", "--i-accept-data-loss"], project=root, url=pg_url
    )
    assert rolled.exit_code == 0, rolled.output
    assert rows(pg_url, 'SELECT "id", "role"::text FROM "User"') == [
        (1, "ADMIN"),
        (2, "BOT"),
        (3, "GUEST"),
    ]
    assert rows(pg_url, 'SELECT unnest(enum_range(NULL::"Role"))::text') == sorted(
        [("ADMIN",), ("MEMBER",), ("GUEST",), ("OWNER",), ("BOT",)]
    )


# --- rehearsal with data (issue 11 §3) -----------------------------------------------------


def test_with_data_reports_a_migration_that_fails_on_rows_and_goes_on(
    tmp_path: Path, pg_url: str
) -> None:
    root = write(
        tmp_path / "p",
        {
            f"prisma/migrations/{FIRST}/migration.sql": DATA_INIT,
            f"prisma/migrations/{SECOND}/migration.sql": (
                'ALTER TABLE "Plan" ADD COLUMN "price" integer NOT NULL;\n'
            ),
            "prisma/migrations/20240103000000_later/migration.sql": (
                'CREATE TABLE "Seat" ("id" integer PRIMARY KEY, "planId" integer NOT NULL '
                'REFERENCES "Plan"("id"));\n'
            ),
        },
    )
    (root / "prisma/rollback").mkdir()
    ids = [FIRST, SECOND, "20240103000000_later"]
    assert run(["generate", *ids], project=root, url=pg_url).exit_code == 0
    result = run(["test", "--all", "--with-data", "--json"], project=root, url=pg_url)
    doc = json.loads(result.stdout)
    by_id = {m["id"]: m for m in doc["migrations"]}
    [finding] = by_id[SECOND]["findings"]
    assert finding.startswith("this migration fails on a non-empty table: ")
    assert 'column "price" of relation "Plan" contains null values' in finding
    assert 'emptied "Plan", applied it again, and went on' in finding
    assert [by_id[i]["status"] for i in ids] == ["passed", "passed", "passed"], doc
    assert result.exit_code == 0 and doc["ok"] is True
    shown = run(["test", "--all", "--with-data"], project=root, url=pg_url)
    assert f"finding ({SECOND}): this migration fails on a non-empty table" in shown.output
    # the configured database is not where the rehearsal ran
    assert sql(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_with_data_a_seed_that_cannot_run_twice_is_a_finding_not_the_end(
    tmp_path: Path, pg_url: str
) -> None:
    root = write(
        tmp_path / "p",
        {
            f"prisma/migrations/{FIRST}/migration.sql": """
                CREATE TABLE "Run" ("id" integer PRIMARY KEY, "jobId" text NOT NULL);
                CREATE TABLE "Counter" ("jobId" text PRIMARY KEY, "last" integer NOT NULL);
            """,
            f"prisma/migrations/{SECOND}/migration.sql": """
                INSERT INTO "Counter" ("jobId", "last")
                SELECT "jobId", max("id") FROM "Run" GROUP BY "jobId";
            """,
            "prisma/migrations/20240103000000_later/migration.sql": (
                'ALTER TABLE "Run" ADD COLUMN "note" text;\n'
            ),
        },
    )
    (root / "prisma/rollback").mkdir()
    ids = [FIRST, SECOND, "20240103000000_later"]
    assert run(["generate", *ids], project=root, url=pg_url).exit_code == 0
    result = run(["test", "--all", "--with-data", "--json"], project=root, url=pg_url)
    doc = json.loads(result.stdout)
    by_id = {m["id"]: m for m in doc["migrations"]}
    # the sample rows may already collide on the first apply; the re-apply always does (the
    # data-only rollback keeps the rows the seed inserted)
    [finding] = [
        f
        for f in by_id[SECOND]["findings"]
        if f.startswith("re-applying this migration after its rollback fails on the rows")
    ]
    assert 'duplicate key value violates unique constraint "Counter_pkey"' in finding
    assert [by_id[i]["status"] for i in ids] == ["passed", "passed", "passed"], doc
