"""Issue 13, items 4 and 7: ``status`` says what is true about failures and broken scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import (
    MATRIX,
    db_state,
    dialect_of,
    matrix_url,
    run,
    sql,
    transactional_ddl,
    write,
)

PROJECT = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
}


def offline_syntax_check(url: str) -> bool:
    """Whether scripts are parsed before they run (not on MySQL/MariaDB: only split there)."""
    return dialect_of(url) != "mysql"


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


def test_broken_rollback_and_partial_show_in_status(tmp_path: Path, url: str) -> None:
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=url).exit_code == 0
    write(
        root,
        {
            "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLEE users;\n",
            "migrations/001_users.down.wipe.sql": "-- backout:risk HIGH\nDELETE FROM users WHERE;",
        },
    )
    before = db_state(url)
    result = run(["status"], project=root, url=url)
    if not offline_syntax_check(url):
        # MySQL/MariaDB: no parser validates MySQL, so status cannot see these (documented in
        # docs/commands/status.md); the rollback's simulation on a scratch copy refuses first.
        assert result.exit_code == 0, result.output
        rollback = run(["rollback", "--yes"], project=root, url=url)
        assert rollback.exit_code == 1
        assert "001_users.down.sql: fails on a schema-only copy of the database" in rollback.stderr
        assert "near 'TABLEE users'" in rollback.stderr
        assert db_state(url) == before
        return
    assert result.exit_code == 1, result.output
    assert "migrations/001_users.down.sql (broken)" in result.output
    assert "broken rollback: migrations/001_users.down.sql:2:" in result.output
    assert "broken rollback: migrations/001_users.down.wipe.sql:2:" in result.output
    # the same error `rollback` gives
    rollback = run(["rollback", "--yes"], project=root, url=url)
    assert rollback.exit_code == 2
    error = rollback.stderr.splitlines()[0].removeprefix("error: ")
    assert error in result.output
    document = json.loads(run(["status", "--json"], project=root, url=url).stdout)
    (entry,) = document["migrations"]
    assert entry["rollback"]["error"] == error
    assert entry["partials"][0]["error"].startswith("migrations/001_users.down.wipe.sql:2:")
    assert document["summary"]["broken_scripts"] == 2
    assert db_state(url) == before


def test_sound_scripts_exit_0(tmp_path: Path, sqlite_url: str) -> None:
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(["status"], project=root, url=sqlite_url)
    assert result.exit_code == 0 and "broken" not in result.output


def test_a_failure_backout_recorded_left_nothing(tmp_path: Path, url: str) -> None:
    root = write(
        tmp_path / "p",
        {
            **PROJECT,
            "migrations/002_bad.up.sql": (
                "ALTER TABLE users ADD COLUMN nickname TEXT;\nALTER TABLE nope ADD COLUMN x INT;\n"
            ),
        },
    )
    assert run(["up"], project=root, url=url).exit_code == 4
    result = run(["status"], project=root, url=url)
    assert result.exit_code == 1
    if not transactional_ddl(url):
        # MySQL/MariaDB: the ADD COLUMN committed itself; status names what remains (journal).
        assert "partly applied: 002_bad: statement 1 of 2" in result.output
        document = json.loads(run(["status", "--json"], project=root, url=url).stdout)
        assert document["migrations"][1]["interrupted"]["applied"] == [1]
        assert "nickname" in str(sql(url, "SHOW COLUMNS FROM users"))
        undo = run(["rollback", "--undo-partial", "--yes"], project=root, url=url)
        assert undo.exit_code == 0, undo.output + undo.stderr
        assert "nickname" not in str(sql(url, "SHOW COLUMNS FROM users"))
        return
    assert "backout ran it in one transaction and rolled that back: no change of it remains" in (
        result.output
    )
    document = json.loads(run(["status", "--json"], project=root, url=url).stdout)
    remains = document["migrations"][1]["remains"]
    assert remains["rolled_back_by_backout"] is True and remains["nothing_remains"] is True


def prisma_failure(tmp_path: Path, url: str, script: str) -> Path:
    """A Prisma project whose second migration Prisma recorded as failed (0 steps, logs)."""
    root = write(
        tmp_path / "app",
        {
            "prisma/schema.prisma": 'datasource db {\n  provider = "sqlite"\n  url = "file:x"\n}\n',
            "prisma/migrations/migration_lock.toml": 'provider = "sqlite"\n',
            "prisma/migrations/20250101000000_init/migration.sql": (
                'CREATE TABLE "User" ("id" INTEGER PRIMARY KEY, "name" TEXT);\n'
                "INSERT INTO \"User\" VALUES (1, 'a');\n"
            ),
        },
    )
    assert run(["up"], project=root, url=url).exit_code == 0
    write(root, {"prisma/migrations/20250102000000_next/migration.sql": script})
    sql(
        url,
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at, "
        "applied_steps_count) VALUES ('0b6f3d4e-1a2b-4c3d-8e9f-000000000001', 'x', "
        "'20250102000000_next', 'Database error: something failed', '2025-01-02 00:00:00', 0)",
    )
    return root


def test_a_failure_another_tool_recorded_is_compared(tmp_path: Path, sqlite_url: str) -> None:
    root = prisma_failure(
        tmp_path,
        sqlite_url,
        'UPDATE "User" SET "name" = upper("name");\n'
        'CREATE INDEX "User_name_idx" ON "User" ("name");\n',
    )
    result = run(["status"], project=root, url=sqlite_url)
    assert result.exit_code == 1
    assert "no change of it remains" not in result.output
    assert "line 1: UPDATE" in result.output and "cannot tell" in result.output
    assert 'line 2: CREATE INDEX "User_name_idx" ON "User" ("name"): not applied' in result.output


def test_when_backout_cannot_know_it_says_so(tmp_path: Path, sqlite_url: str) -> None:
    root = prisma_failure(tmp_path, sqlite_url, "ALTER TABLEE oops;\n")
    result = run(["status"], project=root, url=sqlite_url)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "no change of it remains" not in text
    assert "it cannot know which of its statements remain applied" in text
    assert "`backout check` shows drift" in text


def test_a_statement_undoing_another_is_not_judged_by_the_shared_object(
    tmp_path: Path, sqlite_url: str
) -> None:
    # Prisma's SQLite "redefine table", failed at the copy: the new table exists, "User"
    # was neither dropped nor replaced. The rename must not read as (partly) applied
    # because a "User" table is there: it was there before the migration.
    root = prisma_failure(
        tmp_path,
        sqlite_url,
        'CREATE TABLE "new_User" ("id" INTEGER PRIMARY KEY, "name" TEXT NOT NULL);\n'
        'INSERT INTO "new_User" ("id", "name") SELECT "id", "name" FROM "User";\n'
        'DROP TABLE "User";\n'
        'ALTER TABLE "new_User" RENAME TO "User";\n',
    )
    sql(sqlite_url, 'CREATE TABLE "new_User" ("id" INTEGER PRIMARY KEY, "name" TEXT NOT NULL)')
    result = run(["status"], project=root, url=sqlite_url)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "line 4: ALTER TABLE" in text
    lines = {n: text.split(f"line {n}:")[1].split(" line ")[0].split(" Undo")[0] for n in (1, 3, 4)}
    assert lines[1].endswith(': applied (table "new_user" present)')
    # "User" is there: before the migration, or recreated by the rename; nobody can tell
    assert lines[3].endswith(
        ": cannot tell (the schema now does not show whether it ran: check by hand)"
    )
    assert "not applied" in lines[4] and "partly" not in lines[4]


def test_a_guarded_create_of_an_object_that_is_there_cannot_tell(
    tmp_path: Path, sqlite_url: str
) -> None:
    # "User" was there before: IF NOT EXISTS proves nothing by it being there.
    root = prisma_failure(
        tmp_path,
        sqlite_url,
        'CREATE TABLE IF NOT EXISTS "User" ("id" INTEGER PRIMARY KEY, "name" TEXT);\n'
        'CREATE TABLE IF NOT EXISTS "Post" ("id" INTEGER PRIMARY KEY);\n'
        'CREATE INDEX "User_name_idx" ON "User" ("nope");\n',
    )
    result = run(["status"], project=root, url=sqlite_url)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    line1 = text.split("line 1:")[1].split(" line 2:")[0]
    assert "cannot tell" in line1 and "applied" not in line1
    line2 = text.split("line 2:")[1].split(" line 3:")[0]
    assert line2.endswith('not applied (table "post" absent)')
