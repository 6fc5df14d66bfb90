"""`status` and `up` through the CLI on SQLite, PostgreSQL and MariaDB, with the database checked
after."""

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

PLAIN = {
    "migrations/001_users.up.sql": """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
        INSERT INTO users (id, email) VALUES (1, 'a@example.com');
    """,
    "migrations/001_users.down.sql": """
        -- backout:risk HIGH
        DROP TABLE users;
    """,
    "migrations/002_posts.up.sql": """
        CREATE TABLE posts (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            title TEXT
        );
        CREATE INDEX posts_user ON posts (user_id);
    """,
    "migrations/003_tags.up.sql": """
        CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT);
    """,
}


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    """A fresh database on each backend."""
    return matrix_url(request)


def tables(url: str) -> set[str]:
    if url.startswith("sqlite"):
        rows = sql(url, "SELECT name FROM sqlite_master WHERE type='table'")
    elif dialect_of(url) == "mysql":
        rows = sql(
            url,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
        )
    else:
        rows = sql(url, "SELECT tablename FROM pg_tables WHERE schemaname='public'")
    return {r[0] for r in rows}


def test_status_on_empty_database_lists_everything_pending(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PLAIN)
    result = run(["status", "--json"], project=project, url=url)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["format"] == 1
    assert doc["layout"] == "plain"
    assert [m["id"] for m in doc["migrations"]] == ["001_users", "002_posts", "003_tags"]
    assert {m["state"] for m in doc["migrations"]} == {"pending"}
    assert doc["migrations"][0]["rollback"]["risk"] == "HIGH"
    assert doc["migrations"][1]["rollback"] is None
    assert doc["summary"]["without_rollback"] == 2


def test_up_applies_in_order_and_records_history(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PLAIN)
    result = run(["up"], project=project, url=url)
    assert result.exit_code == 0, result.output + result.stderr
    assert "Applied 3 migration(s)" in result.output
    assert {"users", "posts", "tags"} <= tables(url)
    assert sql(url, "SELECT email FROM users") == [("a@example.com",)]
    doc = json.loads(run(["status", "--json"], project=project, url=url).stdout)
    assert [m["state"] for m in doc["migrations"]] == ["applied"] * 3
    assert all(m["applied_at"] for m in doc["migrations"])
    events = "backout.events" if dialect_of(url) == "postgresql" else "backout_events"
    rows = sql(url, f"SELECT event, migration, outcome FROM {events} ORDER BY id")
    assert rows == [
        ("apply", "001_users", "ok"),
        ("apply", "002_posts", "ok"),
        ("apply", "003_tags", "ok"),
    ]
    again = run(["up"], project=project, url=url)
    assert again.exit_code == 0
    assert "Nothing to apply" in again.output


def test_up_to_stops_at_target(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PLAIN)
    result = run(["up", "--to", "002"], project=project, url=url)
    assert result.exit_code == 0, result.output + result.stderr
    assert {"users", "posts"} <= tables(url)
    assert "tags" not in tables(url)


def test_up_to_unknown_target_suggests_closest(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PLAIN)
    before = db_state(url)
    result = run(["up", "--to", "002_post"], project=project, url=url)
    assert result.exit_code == 2
    assert "unknown migration '002_post'" in result.stderr
    assert "did you mean 002_posts?" in result.stderr
    assert db_state(url) == before


def test_dry_run_prints_sql_and_changes_nothing(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PLAIN)
    before = db_state(url)
    result = run(["up", "--dry-run"], project=project, url=url)
    assert result.exit_code == 0, result.stderr
    out = result.output
    assert "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);" in out
    assert "CREATE INDEX posts_user ON posts (user_id);" in out
    assert out.count("BEGIN;") == out.count("COMMIT;") >= 3
    assert "INSERT INTO" in out and "'001_users'" in out  # the history write is shown too
    assert db_state(url) == before


def test_sql_error_mid_migration_undoes_it_and_records_failure(tmp_path: Path, url: str) -> None:
    project = write(
        tmp_path,
        {
            **PLAIN,
            "migrations/004_bad.up.sql": """
                CREATE TABLE first_ok (id INTEGER);

                ALTER TABLE no_such_table ADD COLUMN x INTEGER;
                CREATE TABLE never (id INTEGER);
            """,
        },
    )
    assert run(["up", "--to", "003"], project=project, url=url).exit_code == 0
    before = db_state(url)
    result = run(["up"], project=project, url=url)
    assert result.exit_code == 4
    assert "migrations/004_bad.up.sql:3: statement 2 failed" in result.stderr
    assert "no_such_table" in result.stderr
    after = db_state(url)
    status = json.loads(run(["status", "--json"], project=project, url=url).stdout)
    bad = status["migrations"][3]
    assert bad["state"] == "failed"
    assert "no_such_table" in bad["failure"]
    refused = run(["up"], project=project, url=url)
    assert refused.exit_code == 2
    if transactional_ddl(url):
        assert after.schema == before.schema
        assert after.data == before.data
        assert "first_ok" not in tables(url)
        assert bad["failed_statements_applied"] == 0
        # up refuses until resolved; resolve then a fixed script applies
        assert "004_bad failed and is not resolved" in refused.stderr
        assert run(["resolve", "004", "--rolled-back"], project=project, url=url).exit_code == 0
    else:
        # MySQL/MariaDB: the CREATE TABLE committed itself; the journal knows, and
        # --undo-partial reverses it (DROP TABLE of the still empty table).
        assert "first_ok" in tables(url)
        assert bad["failed_statements_applied"] == 1
        assert "stopped part-way" in refused.stderr
        undo = run(["rollback", "--undo-partial", "--yes"], project=project, url=url)
        assert undo.exit_code == 0, undo.output + undo.stderr
        assert "path: inverses" in undo.output
        assert (db_state(url).schema, db_state(url).data) == (before.schema, before.data)
    (project / "migrations/004_bad.up.sql").write_text("CREATE TABLE first_ok (id INTEGER);\n")
    assert run(["up"], project=project, url=url).exit_code == 0
    assert "first_ok" in tables(url)


def test_edited_after_apply_is_flagged_and_up_refuses(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PLAIN)
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    (project / "migrations/001_users.up.sql").write_text("CREATE TABLE users (id INTEGER);\n")
    status = run(["status"], project=project, url=url)
    assert status.exit_code == 1
    assert "edited" in status.output
    before = db_state(url)
    refused = run(["up"], project=project, url=url)
    assert refused.exit_code == 2
    assert "migrations/001_users.up.sql was edited after it was applied" in refused.stderr
    assert db_state(url) == before
    allowed = run(["up", "--allow-edited"], project=project, url=url)
    assert allowed.exit_code == 0, allowed.stderr
    assert "tags" in tables(url)


def test_applied_migration_missing_from_disk(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PLAIN)
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    (project / "migrations/002_posts.up.sql").unlink()
    doc = json.loads(run(["status", "--json"], project=project, url=url).stdout)
    missing = [m for m in doc["migrations"] if m["missing_from_disk"]]
    assert [m["id"] for m in missing] == ["002_posts"]
    assert doc["summary"]["missing_from_disk"] == 1
    before = db_state(url)
    refused = run(["up"], project=project, url=url)
    assert refused.exit_code == 2
    assert "missing from disk: 002_posts" in refused.stderr
    assert db_state(url) == before


def test_history_of_a_deleted_migration_and_of_a_typo(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PLAIN)
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    (project / "migrations/002_posts.up.sql").unlink()
    doc = json.loads(
        run(["history", "--json", "--migration", "002_posts"], project=project, url=url).output
    )
    assert [(e["event"], e["migration"]) for e in doc["events"]] == [("apply", "002_posts")]
    typo = run(["history", "--migration", "002_psots"], project=project, url=url)
    assert typo.exit_code == 2
    assert "002_psots" in typo.stderr and "no history event names" in typo.stderr


def test_commit_without_begin_is_refused(tmp_path: Path, url: str) -> None:
    project = write(
        tmp_path,
        {
            "migrations/001_a.up.sql": """
                CREATE TABLE a (id INTEGER);
                COMMIT;
                CREATE TABLE b (id INTEGER);
            """,
        },
    )
    before = db_state(url)
    result = run(["up"], project=project, url=url)
    assert result.exit_code == 2
    assert "migrations/001_a.up.sql:2: COMMIT without a BEGIN" in result.stderr
    assert "nothing was changed" in result.stderr
    assert db_state(url) == before


def test_malformed_directive_names_file_and_line(tmp_path: Path, url: str) -> None:
    project = write(
        tmp_path,
        {**PLAIN, "migrations/001_users.down.sql": "-- backout:risk HIGH\n-- backout:rsik LOW\n"},
    )
    before = db_state(url)
    for command in (["status"], ["up"]):
        result = run(command, project=project, url=url)
        assert result.exit_code == 2
        assert "migrations/001_users.down.sql:2: unknown directive 'rsik'" in result.stderr
        assert "did you mean 'risk'" in result.stderr
    assert db_state(url) == before


def test_non_empty_database_without_history_needs_a_baseline(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PLAIN)
    sql(url, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
    before = db_state(url)
    result = run(["up"], project=project, url=url)
    assert result.exit_code == 2
    assert "the database is not empty" in result.stderr
    assert "backout resolve 001_users --applied" in result.stderr
    assert db_state(url) == before
    assert run(["resolve", "001_users", "--applied"], project=project, url=url).exit_code == 0
    assert run(["up"], project=project, url=url).exit_code == 0
    assert {"posts", "tags"} <= tables(url)
