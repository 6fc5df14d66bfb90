"""`plan` and `rollback` on SQLite, PostgreSQL and MariaDB: one transaction (journaled statements
on MariaDB, whose DDL commits itself), checks, history, refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import (
    MATRIX,
    copy_example,
    db_state,
    dialect_of,
    matrix_url,
    run,
    sql,
    transactional_ddl,
    write,
)

NOBACKUP = ["--backup", "none", "--i-accept-data-loss", "--yes"]

PROJECT = {
    "migrations/001_users.up.sql": """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
        INSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com');
    """,
    "migrations/001_users.down.sql": """
        -- backout:risk HIGH
        DROP TABLE users;
    """,
    "migrations/002_posts.up.sql": """
        CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id));
        INSERT INTO posts VALUES (10, 1), (11, 2);
    """,
    "migrations/002_posts.down.sql": """
        -- backout:risk HIGH
        -- backout:impact Drops posts
        -- backout:manual Tell the blog team
        -- backout:require SELECT count(*) < 100 FROM posts
        -- backout:verify SELECT count(*) = 2 FROM users
        DROP TABLE posts;
    """,
    "migrations/003_flag.up.sql": "ALTER TABLE users ADD COLUMN flag INTEGER;\n",
    "migrations/003_flag.down.sql": """
        -- backout:risk MEDIUM
        ALTER TABLE users DROP COLUMN flag;
    """,
}


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


#: the 2 s lock timeout of a run, as each server's dry run shows it
LOCK_TIMEOUT_SQL = {
    "postgresql": "SET LOCAL lock_timeout = '2000ms';",
    "mysql": "SET SESSION lock_wait_timeout = 2;",
}


def applied(project: Path, url: str) -> list[str]:
    doc = json.loads(run(["status", "--json"], project=project, url=url).stdout)
    return [m["id"] for m in doc["migrations"] if m["state"] == "applied"]


def events(url: str) -> list[tuple[str, str, str]]:
    table = "backout.events" if dialect_of(url) == "postgresql" else "backout_events"
    return sql(url, f"SELECT event, migration, outcome FROM {table} ORDER BY id")


def ledger(state_history: dict[str, list[tuple[object, ...]]]) -> dict[str, object]:
    return {k: v for k, v in state_history.items() if "events" not in k}


def test_rollback_last_then_reapply(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PROJECT)
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    before = db_state(url)
    assert run(["up"], project=project, url=url).exit_code == 0
    result = run(["rollback", *NOBACKUP], project=project, url=url)
    assert result.exit_code == 0, result.stderr
    assert "Rolled back 1 migration(s) (003_flag)" in result.output
    after = db_state(url)
    assert after.schema == before.schema
    assert after.data == before.data
    assert applied(project, url) == ["001_users", "002_posts"]
    assert events(url)[-1] == ("rollback", "003_flag", "ok")
    assert run(["up"], project=project, url=url).exit_code == 0
    assert applied(project, url) == ["001_users", "002_posts", "003_flag"]


def test_rollback_to_runs_every_script_in_one_transaction(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PROJECT)
    assert run(["up", "--to", "001"], project=project, url=url).exit_code == 0
    before = db_state(url)
    assert run(["up"], project=project, url=url).exit_code == 0
    result = run(["rollback", "--to", "001", *NOBACKUP], project=project, url=url)
    assert result.exit_code == 0, result.stderr
    assert "Tell the blog team" in result.output  # the manual step is printed
    assert db_state(url).schema == before.schema
    assert applied(project, url) == ["001_users"]
    assert [e[1] for e in events(url)[-2:]] == ["003_flag", "002_posts"]


def test_failure_in_second_script_undoes_the_first(tmp_path: Path, url: str) -> None:
    project = write(
        tmp_path,
        {**PROJECT, "migrations/002_posts.down.sql": "-- backout:risk HIGH\nDROP TABLE nope;\n"},
    )
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    without_flag = db_state(url)
    assert run(["up"], project=project, url=url).exit_code == 0
    before = db_state(url)
    # Past the simulation's refusal (its own test: test_refuse_first.py), to the real failure.
    args = ["rollback", "--steps", "2", "--ignore-simulation-failure", *NOBACKUP]
    result = run(args, project=project, url=url)
    assert result.exit_code == 4
    assert "migrations/002_posts.down.sql:2: statement 1 failed" in result.stderr
    after = db_state(url)
    if transactional_ddl(url):
        assert (after.schema, after.data) == (before.schema, before.data)
        assert ledger(after.history) == ledger(before.history)
        assert events(url)[-2:] == [
            ("rollback", "003_flag", "failed"),
            ("rollback", "002_posts", "failed"),
        ]
        return
    # MySQL/MariaDB: DDL commits implicitly, so 003's rollback stays done (each script is a
    # transaction of its own there), and 002's run is journaled as stopped before statement 1.
    assert "003_flag rolled back before this failure" in result.stderr
    assert (after.schema, after.data) == (without_flag.schema, without_flag.data)
    assert applied(project, url) == ["001_users", "002_posts"]
    assert events(url)[-2:] == [
        ("rollback", "003_flag", "ok"),
        ("rollback", "002_posts", "failed"),
    ]
    status = run(["status"], project=project, url=url)
    assert status.exit_code == 1
    assert "partly rolled back: 002_posts: no statement of 1" in status.output
    undo = run(["rollback", "--undo-partial", "--yes"], project=project, url=url)
    assert undo.exit_code == 0, undo.output + undo.stderr
    assert run(["status"], project=project, url=url).exit_code == 0
    assert db_state(url).schema == without_flag.schema


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            "-- backout:risk HIGH\n-- backout:require SELECT count(*) = 0 FROM posts\n"
            "DROP TABLE posts;\n",
            "002_posts.down.sql:2: require does not hold now",
        ),
        (
            "-- backout:risk HIGH\n-- backout:verify SELECT count(*) = 0 FROM users\n"
            "DROP TABLE posts;\n",
            "002_posts.down.sql:2: verify failed",
        ),
    ],
    ids=["require", "verify"],
)
def test_failing_check_changes_nothing(tmp_path: Path, url: str, script: str, message: str) -> None:
    project = write(tmp_path, {**PROJECT, "migrations/002_posts.down.sql": script})
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    before = db_state(url)
    result = run(["rollback", *NOBACKUP], project=project, url=url)
    assert result.exit_code == 1
    assert message in result.stderr
    after = db_state(url)
    if message.endswith("verify failed") and not transactional_ddl(url):
        # MySQL/MariaDB: the DROP committed itself before verify ran; the run is journaled as
        # stopped after it, the migration stays applied, and status says so.
        assert after.schema != before.schema
        assert after.data == {k: v for k, v in before.data.items() if k != "posts"}
        # backout's ledger is unchanged; golang-migrate's version 2 is dirty (partly rolled
        # back), as `migrate down` leaves a failed migration, so `migrate up` refuses too
        assert after.history.pop("schema_migrations") == [(2, 1)]
        before.history.pop("schema_migrations")
        assert ledger(after.history) == ledger(before.history)
        status = run(["status"], project=project, url=url)
        assert status.exit_code == 1
        assert "partly rolled back: 002_posts: statement 1 of 1" in status.output
        return
    assert (after.schema, after.data) == (before.schema, before.data)
    assert ledger(after.history) == ledger(before.history)


def test_missing_rollbacks_are_all_listed_before_anything(tmp_path: Path, url: str) -> None:
    files = dict(PROJECT)
    del files["migrations/003_flag.down.sql"]
    del files["migrations/002_posts.down.sql"]
    project = write(tmp_path, files)
    assert run(["up"], project=project, url=url).exit_code == 0
    before = db_state(url)
    result = run(["rollback", "--to", "001", *NOBACKUP], project=project, url=url)
    assert result.exit_code == 2
    assert "no rollback script for 2 migration(s) in range: 003_flag, 002_posts" in result.stderr
    assert db_state(url) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "02_posts"], "unknown migration '02_posts'"),
        (["--to", "003"], "003_flag is pending, not applied"),
        (["--to", "001", "--steps", "1"], "give --to or --steps, not both"),
        (["--steps", "5"], "--steps 5: only 2 migration(s) are applied"),
        (["--backup", "none"], "--backup none needs --i-accept-data-loss"),
    ],
)
def test_bad_targets_are_refused(tmp_path: Path, url: str, args: list[str], message: str) -> None:
    project = write(tmp_path, PROJECT)
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    before = db_state(url)
    result = run(["rollback", "--yes", *args], project=project, url=url)
    assert result.exit_code == 2
    assert message in result.stderr
    assert db_state(url) == before


def test_suggests_the_closest_id(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PROJECT)
    assert run(["up"], project=project, url=url).exit_code == 0
    result = run(["plan", "--to", "002_post"], project=project, url=url)
    assert "did you mean 002_posts?" in result.stderr


def test_without_terminal_and_without_yes_it_refuses(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PROJECT)
    assert run(["up"], project=project, url=url).exit_code == 0
    before = db_state(url)
    result = run(["rollback", "--backup", "none", "--i-accept-data-loss"], project=project, url=url)
    assert result.exit_code == 1
    assert "pass --yes" in result.stderr
    assert db_state(url) == before


def test_plan_and_dry_run_change_nothing(tmp_path: Path, url: str) -> None:
    project = write(tmp_path, PROJECT)
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    before = db_state(url)
    plan = run(["plan", "--json"], project=project, url=url)
    assert plan.exit_code == 0, plan.stderr
    doc = json.loads(plan.stdout)
    (step,) = doc["steps"]
    assert step["migration"] == "002_posts"
    assert step["requires"][0]["passes"] is True
    assert doc["target"] == "001_users"
    assert doc["backup"]["mode"] == "scoped"
    dry = run(["rollback", "--dry-run"], project=project, url=url)
    assert dry.exit_code == 0, dry.stderr
    assert "DROP TABLE posts;" in dry.output
    assert "backup: scoped" in dry.output
    lock_timeout = LOCK_TIMEOUT_SQL.get(dialect_of(url))
    if lock_timeout is not None:  # SQLite has no lock timeout statement (busy_timeout)
        assert lock_timeout in dry.output
    assert db_state(url) == before


def test_plan_exits_1_when_a_require_fails_now(tmp_path: Path, url: str) -> None:
    project = write(
        tmp_path,
        {
            **PROJECT,
            "migrations/002_posts.down.sql": "-- backout:risk HIGH\n"
            "-- backout:require SELECT count(*) = 0 FROM posts\nDROP TABLE posts;\n",
        },
    )
    assert run(["up", "--to", "002"], project=project, url=url).exit_code == 0
    result = run(["plan"], project=project, url=url)
    assert result.exit_code == 1
    assert "FAILS now" in result.output


def test_after_rollback_hook_gets_database_url(tmp_path: Path, url: str) -> None:
    marker = tmp_path / "hook.txt"
    project = write(
        tmp_path / "p",
        {
            **PROJECT,
            "backout.toml": f"""
                layout = "plain"
                [hooks]
                after_rollback = "echo \\"$BACKOUT_HOOK $DATABASE_URL\\" > {marker}"
            """,
        },
    )
    assert run(["up"], project=project, url=url).exit_code == 0
    result = run(["rollback", *NOBACKUP], project=project, url=url)
    assert result.exit_code == 0, result.stderr
    assert marker.read_text().strip() == f"after_rollback {url}"
    assert "hook after_rollback passed" in result.output


def test_failing_before_rollback_hook_stops_everything(tmp_path: Path, url: str) -> None:
    project = write(
        tmp_path,
        {**PROJECT, "backout.toml": 'layout = "plain"\n[hooks]\nbefore_rollback = "exit 3"\n'},
    )
    assert run(["up"], project=project, url=url).exit_code == 0
    before = db_state(url)
    result = run(["rollback", *NOBACKUP], project=project, url=url)
    assert result.exit_code == 1
    assert "hook before_rollback exited 3" in result.stderr
    assert db_state(url) == before


@pytest.mark.postgres
def test_seed_rollbacks_restore_the_previous_schema(tmp_path: Path, pg_url: str) -> None:
    """Both seeds' giftregistry rollbacks, on data, return exactly to the prior schema."""
    from backout.demo.sampledata import fill

    project = copy_example("giftregistry", tmp_path)
    assert run(["up", "--to", "20250101000000_init"], project=project, url=pg_url).exit_code == 0
    schemas = {"20250101000000_init": db_state(pg_url).schema}
    assert run(["up", "--to", "20250720000000"], project=project, url=pg_url).exit_code == 0
    schemas["20250720000000_encrypt_access_tokens"] = db_state(pg_url).schema
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    fill("giftregistry", pg_url, scale=50)
    registries = sql(pg_url, "SELECT count(*) FROM registries")
    for target in ("20250720000000_encrypt_access_tokens", "20250101000000_init"):
        result = run(["rollback", "--to", target, *NOBACKUP], project=project, url=pg_url)
        assert result.exit_code == 0, result.stderr
        assert db_state(pg_url).schema == schemas[target]
    assert sql(pg_url, "SELECT count(*) FROM registries") == registries
    rows = sql(pg_url, "SELECT count(*) FROM _prisma_migrations WHERE rolled_back_at IS NOT NULL")
    assert rows == [(2,)]
    assert run(["up"], project=project, url=pg_url).exit_code == 0  # Prisma-style re-apply


@pytest.mark.postgres
def test_ctrl_c_during_rollback_undoes_it(tmp_path: Path, pg_url: str) -> None:
    project = write(
        tmp_path,
        {
            **PROJECT,
            "migrations/003_flag.down.sql": "-- backout:risk LOW\n"
            "ALTER TABLE users DROP COLUMN flag;\nSELECT pg_sleep(30);\n",
        },
    )
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    before = db_state(pg_url)
    env = dict(os.environ, DATABASE_URL=pg_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "backout", "rollback", *NOBACKUP, "-C", str(project)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        busy = sql(
            pg_url,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
            "'SELECT pg_sleep(30)%%' AND pid <> pg_backend_pid()",
        )
        if busy[0][0]:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted" in err
    after = db_state(pg_url)
    assert (after.schema, after.data) == (before.schema, before.data)
    assert ledger(after.history) == ledger(before.history)
    # no lock is left behind: a new run proceeds
    (project / "migrations/003_flag.down.sql").write_text(
        "-- backout:risk LOW\nALTER TABLE users DROP COLUMN flag;\n"
    )
    assert run(["rollback", *NOBACKUP], project=project, url=pg_url).exit_code == 0


# --- the database moving between the plan and the run lock ----------------------------------

RACE_FILES = {
    "migrations/001_parent.up.sql": (
        "CREATE TABLE parent (id INTEGER PRIMARY KEY, note TEXT);\n"
        "INSERT INTO parent VALUES (1, 'a'), (2, 'b'), (3, 'c');\n"
    ),
    "migrations/001_parent.down.sql": "-- backout:risk HIGH\nDROP TABLE parent;\n",
    "migrations/001_parent.down.purge.sql": (
        "-- backout:risk HIGH\n-- backout:param above integer\n"
        "-- backout:preview SELECT id FROM parent WHERE id > :above\n"
        "DELETE FROM parent WHERE id > :above;\n"
    ),
    "migrations/002_child.up.sql": (
        "CREATE TABLE child (id INTEGER PRIMARY KEY,\n"
        "    parent_id INTEGER REFERENCES parent (id) ON DELETE CASCADE);\n"
        "INSERT INTO child VALUES (10, 2), (11, 3);\n"
    ),
    "migrations/002_child.down.sql": "-- backout:risk HIGH\nDROP TABLE child;\n",
}


@pytest.mark.parametrize(
    ("request_args", "meanwhile"),
    [
        # Same partial (same plan ids), but its cascade now reaches a table outside the backup.
        (["001_parent", "--partial", "purge", "--param", "above=1"], "up"),
        (["--steps", "1"], "up"),
        (["001_parent", "--partial", "purge", "--param", "above=1"], "alter"),
    ],
)
def test_a_database_that_moved_while_planning_is_refused(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    request_args: list[str],
    meanwhile: str,
) -> None:
    import backout.rollback.rollback

    project = write(tmp_path, RACE_FILES)
    assert run(["up", "--to", "001_parent"], project=project, url=sqlite_url).exit_code == 0
    plan_once = backout.rollback.rollback.build_view
    moved: list[bool] = []

    def build_view(*args: object, **kwargs: object) -> object:
        view = plan_once(*args, **kwargs)  # type: ignore[arg-type]
        if not moved:  # another run, finished between the plan and the run lock
            moved.append(True)
            if meanwhile == "up":
                assert run(["up"], project=project, url=sqlite_url).exit_code == 0
            else:
                sql(sqlite_url, "ALTER TABLE parent ADD COLUMN extra TEXT")
            moved_to.append(db_state(sqlite_url))
        return view

    moved_to: list[object] = []
    monkeypatch.setattr(backout.rollback.rollback, "build_view", build_view)
    result = run(["rollback", *request_args, "--yes"], project=project, url=sqlite_url)
    assert result.exit_code == 2, result.output + result.stderr
    assert "changed while planning" in result.stderr
    assert "run the command again" in result.stderr
    assert db_state(sqlite_url) == moved_to[0]  # what the other run left, untouched
    assert not (project / ".backout" / "backups").exists() or not any(
        (project / ".backout" / "backups").glob("*.sqlite3")
    )
