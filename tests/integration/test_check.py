"""``backout check``: orphans, suspected orphans, leftovers, drift and verify queries, on real
databases, through the CLI and the API. Nothing is ever changed by a check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import backout.cli.rehearse  # noqa: F401  (registers check/test/generate)
from backout import api
from backout.analysis.checks import run_checks
from backout.demo import sampledata
from backout.project.config import load_config
from backout.run.workspace import Workspace
from tests.helpers import copy_example, db_state, run, sql, write


def _checked(project: Path, url: str, *extra: str) -> tuple[int, dict[str, object]]:
    result = run(["check", "--json", *extra], project=project, url=url)
    return result.exit_code, json.loads(result.stdout)


def _kinds(doc: dict[str, object]) -> list[tuple[str, str]]:
    problems = doc["problems"]
    assert isinstance(problems, list)
    return [(p["kind"], p["object"]) for p in problems]


# --- SQLite ----------------------------------------------------------------------------------


@pytest.fixture
def vouchers_sqlite(tmp_path: Path, sqlite_url: str) -> Path:
    project = copy_example("vouchers-sqlite", tmp_path)
    assert run(["up"], project=project, url=sqlite_url).exit_code == 0
    sampledata.fill("vouchers-sqlite", sqlite_url, scale=40)
    return project


def test_clean_sqlite_database_passes(vouchers_sqlite: Path, sqlite_url: str) -> None:
    before = db_state(sqlite_url)
    code, doc = _checked(vouchers_sqlite, sqlite_url)
    assert code == 0, doc
    assert doc["ok"] is True and doc["problems"] == []
    assert doc["checked"]["migrations_replayed"] == 2
    assert db_state(sqlite_url) == before


def test_sqlite_orphans_found_with_foreign_keys_off(vouchers_sqlite: Path, sqlite_url: str) -> None:
    # sql() uses a plain sqlite3 connection: foreign keys are off, as in many apps.
    sql(
        sqlite_url,
        'DELETE FROM "User" WHERE "id" IN (SELECT "userId" FROM "TokenTransaction" '
        'ORDER BY "id" LIMIT 2)',
    )
    orphans = sql(
        sqlite_url,
        'SELECT count(*) FROM "TokenTransaction" t WHERE NOT EXISTS '
        '(SELECT 1 FROM "User" u WHERE u."id" = t."userId")',
    )[0][0]
    assert orphans > 0
    before = db_state(sqlite_url)
    code, doc = _checked(vouchers_sqlite, sqlite_url, "--no-drift")
    assert code == 1
    found = {p["object"]: p for p in doc["problems"]}
    problem = found['"TokenTransaction"."userId"']
    assert problem["kind"] == "orphan"
    assert problem["count"] == orphans
    assert problem["message"].startswith(f'{orphans} rows of "TokenTransaction" point to no row')
    assert "TokenTransaction_userId_fkey" in problem["message"]
    assert problem["samples"] and problem["samples"][0].startswith('"userId"=')
    assert db_state(sqlite_url) == before


def test_sqlite_leftover_and_drift(vouchers_sqlite: Path, sqlite_url: str) -> None:
    sql(sqlite_url, 'CREATE INDEX "stray_idx" ON "User"("name")')
    sql(sqlite_url, 'CREATE TABLE "Forgotten" ("id" INTEGER PRIMARY KEY)')
    sql(sqlite_url, 'DROP INDEX "Voucher_status_expiresAt_idx"')
    code, doc = _checked(vouchers_sqlite, sqlite_url)
    assert code == 1
    messages = [p["message"] for p in doc["problems"]]
    assert 'index "stray_idx" is in the database, but no applied migration creates it' in messages
    assert 'table "Forgotten" is in the database, but no applied migration creates it' in messages
    assert 'index "Voucher_status_expiresAt_idx" is missing: the applied migrations create it' in (
        messages
    )


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def vouchers_pg(tmp_path: Path, pg_url: str) -> Path:
    project = copy_example("vouchers", tmp_path)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    sampledata.fill("vouchers", pg_url, scale=60)
    return project


def test_pg_not_valid_orphans_leftovers_and_drift(vouchers_pg: Path, pg_url: str) -> None:
    sql(pg_url, 'ALTER TABLE "VoucherRedemption" DROP CONSTRAINT "VoucherRedemption_userId_fkey"')
    sql(pg_url, 'DELETE FROM "User" WHERE id IN (SELECT "userId" FROM "VoucherRedemption" LIMIT 3)')
    sql(
        pg_url,
        'ALTER TABLE "VoucherRedemption" ADD CONSTRAINT "VoucherRedemption_userId_fkey" '
        'FOREIGN KEY ("userId") REFERENCES "User"(id) ON DELETE CASCADE ON UPDATE CASCADE '
        "NOT VALID",
    )
    sql(pg_url, "CREATE TYPE \"Leftover\" AS ENUM ('A')")
    sql(pg_url, 'CREATE SEQUENCE "stray_seq"')
    sql(pg_url, 'CREATE FUNCTION "stray"() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$')
    sql(pg_url, 'ALTER TABLE "Voucher" ALTER COLUMN "value" TYPE bigint')
    expected_orphans = sql(
        pg_url,
        'SELECT count(*) FROM "VoucherRedemption" r WHERE NOT EXISTS '
        '(SELECT 1 FROM "User" u WHERE u.id = r."userId")',
    )[0][0]
    before = db_state(pg_url)
    code, doc = _checked(vouchers_pg, pg_url)
    assert code == 1
    by_object = {(p["kind"], p["object"]): p for p in doc["problems"]}
    orphan = by_object[("orphan", '"VoucherRedemption"."userId"')]
    assert orphan["count"] == expected_orphans > 0
    assert "NOT VALID" in orphan["message"]
    assert ("leftover", 'enum "Leftover"') in by_object
    assert ("leftover", 'sequence "stray_seq"') in by_object
    assert any(k == "leftover" and "stray" in o for k, o in by_object)
    drift = [p["message"] for p in doc["problems"] if p["kind"] == "drift"]
    assert any('column "Voucher"."value" changed type: integer → bigint' in m for m in drift)
    assert any("VALID → NOT VALID" in m for m in drift)
    assert db_state(pg_url) == before


FK_PROJECT = {
    "migrations/001_init.up.sql": """
        CREATE TABLE teams (id integer PRIMARY KEY, name text NOT NULL);
        CREATE TABLE players (id integer PRIMARY KEY, "teamId" integer, name text);
    """,
    "migrations/002_player_team_fk.up.sql": """
        ALTER TABLE players ADD CONSTRAINT players_team_fkey
            FOREIGN KEY ("teamId") REFERENCES teams (id);
    """,
    "migrations/002_player_team_fk.down.sql": """
        -- backout:risk LOW
        ALTER TABLE players DROP CONSTRAINT players_team_fkey;
    """,
}


def _orphaned_by_rollback(tmp_path: Path, pg_url: str, players: str) -> Path:
    """FK_PROJECT applied with ``players``, rolled back (its foreign key dropped), and team 2
    deleted: player 2 is an orphan."""
    project = write(tmp_path / "app", FK_PROJECT)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    sql(pg_url, "INSERT INTO teams VALUES (1, 'a'), (2, 'b')")
    sql(pg_url, f"INSERT INTO players VALUES {players}")
    rolled = run(
        ["rollback", "--yes", "--backup", "none", "--i-accept-data-loss"],
        project=project,
        url=pg_url,
    )
    assert rolled.exit_code == 0, rolled.output
    sql(pg_url, "DELETE FROM teams WHERE id = 2")
    return project


def test_pg_orphans_behind_a_foreign_key_a_rollback_dropped(tmp_path: Path, pg_url: str) -> None:
    project = _orphaned_by_rollback(tmp_path, pg_url, "(1, 1, 'x'), (2, 2, 'y'), (3, NULL, 'z')")
    code, doc = _checked(project, pg_url, "--no-drift")
    assert code == 1
    [problem] = doc["problems"]
    assert problem["kind"] == "orphan"
    assert problem["count"] == 1
    assert problem["samples"] == ['"teamId"=2']
    assert (
        'its foreign key "players_team_fkey" was dropped by the rollback of '
        "002_player_team_fk" in problem["message"]
    )


def test_pg_suspected_orphans_by_column_name(tmp_path: Path, pg_url: str) -> None:
    project = write(
        tmp_path / "app",
        {
            "migrations/001_init.up.sql": """
                CREATE TABLE registry_items (id text PRIMARY KEY);
                CREATE TABLE registry_purchases (
                    id text PRIMARY KEY,
                    "registryItemId" text,
                    shopify_order_id text
                );
            """
        },
    )
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    sql(pg_url, "INSERT INTO registry_items VALUES ('i1')")
    sql(pg_url, "INSERT INTO registry_purchases VALUES ('p1', 'i1', 'o1'), ('p2', 'gone', 'o2')")
    code, doc = _checked(project, pg_url, "--no-drift")
    assert code == 1
    [problem] = doc["problems"]
    assert problem["kind"] == "suspected_orphan"
    assert problem["object"] == '"registry_purchases"."registryItemId"'
    assert problem["count"] == 1
    assert "suspected from the column's name" in problem["message"]
    # shopify_order_id points to no table of this database: not suspected
    assert doc["checked"]["reference_like_columns"] == 1


def test_pg_verify_of_a_rollback_that_no_longer_holds(tmp_path: Path, pg_url: str) -> None:
    project = write(
        tmp_path / "app",
        {
            "migrations/001_init.up.sql": "CREATE TABLE accounts (id int PRIMARY KEY, bal int);",
            "migrations/002_flag.up.sql": "ALTER TABLE accounts ADD COLUMN flag boolean;",
            "migrations/002_flag.down.sql": """
                -- backout:risk MEDIUM
                -- backout:verify SELECT NOT EXISTS (SELECT 1 FROM accounts WHERE bal < 0)
                ALTER TABLE accounts DROP COLUMN flag;
            """,
        },
    )
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    rolled = run(
        ["rollback", "--yes", "--backup", "none", "--i-accept-data-loss"],
        project=project,
        url=pg_url,
    )
    assert rolled.exit_code == 0, rolled.output
    assert run(["check"], project=project, url=pg_url).exit_code == 0
    sql(pg_url, "INSERT INTO accounts VALUES (1, -5)")
    result = run(["check"], project=project, url=pg_url)
    assert result.exit_code == 1
    assert "migrations/002_flag.down.sql:2: verify of the rollback of 002_flag no longer holds" in (
        result.output
    )


def test_api_run_checks_with_an_open_session(vouchers_pg: Path, pg_url: str) -> None:
    ws = Workspace.open(load_config(vouchers_pg, url=pg_url))
    with ws.session() as session:
        report = run_checks(ws, session)
        assert session.query("SELECT 1") == [(1,)]  # the caller's session stays usable
    assert report.ok, report.problems
    assert api.check(load_config(vouchers_pg, url=pg_url)).ok


def test_drift_skipped_with_a_note_when_replay_fails(tmp_path: Path, sqlite_url: str) -> None:
    project = write(
        tmp_path / "app",
        {
            "migrations/001_init.up.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY);",
            "migrations/002_data.up.sql": "INSERT INTO t VALUES (1);",
        },
    )
    assert run(["up"], project=project, url=sqlite_url).exit_code == 0
    (project / "migrations/002_data.up.sql").write_text("INSERT INTO missing VALUES (1);")
    code, doc = _checked(project, sqlite_url)
    assert code == 0
    assert any("leftovers and drift not checked" in n for n in doc["notes"])


# --- MySQL/MariaDB ---------------------------------------------------------------------------


@pytest.mark.mysql
@pytest.mark.parametrize("collation", ["latin1_swedish_ci"])
def test_mysql_replay_gets_the_database_default_collation(
    tmp_path: Path, mysql_url: str, collation: str
) -> None:
    """Tables created without a COLLATE of their own take the database's default: the replay
    database must have the same, or every such table shows as drift (it was unicode_ci)."""
    charset = collation.split("_", 1)[0]
    database = mysql_url.rsplit("/", 1)[1]
    sql(mysql_url, f"ALTER DATABASE `{database}` CHARACTER SET {charset} COLLATE {collation}")
    project = write(
        tmp_path,
        {
            "migrations/001_users.up.sql": "CREATE TABLE users (id INT PRIMARY KEY, email TEXT);\n",
            "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
        },
    )
    assert run(["up"], project=project, url=mysql_url).exit_code == 0
    code, doc = _checked(project, mysql_url)
    assert _kinds(doc) == [] and code == 0
    (options,) = sql(
        mysql_url,
        "SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = 'users'",
    )
    assert options == (collation,)


def test_pg_dropped_foreign_keys_follow_the_scripts(tmp_path: Path, pg_url: str) -> None:
    """The foreign keys the forward scripts create are read once per version of the scripts
    (a walk runs check twice per migration): edited, they are read again."""
    project = _orphaned_by_rollback(tmp_path, pg_url, "(1, 1, 'x'), (2, 2, 'y')")
    _, doc = _checked(project, pg_url, "--no-drift")
    assert ["dropped by the rollback" in p["message"] for p in doc["problems"]] == [True]
    # the forward script no longer creates the key its rollback drops
    up = project / "migrations/002_player_team_fk.up.sql"
    up.write_text(up.read_text().replace("players_team_fkey", "players_team_fk2"))
    _, doc = _checked(project, pg_url, "--no-drift")
    assert not any("dropped by the rollback" in p["message"] for p in doc["problems"]), doc
