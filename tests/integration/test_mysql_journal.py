"""MySQL/MariaDB: DDL commits implicitly, so every statement is journaled.

The failure-in-the-middle matrix: a 5-statement rollback (and a 5-statement apply) made to fail
at each statement in turn. For each, the journal, ``status``, and both ways out
(``--resume`` after fixing the cause, ``--undo-partial``) are checked against the database's
state: schema fingerprint, rows and history.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, db_state, run, sql, write

pytestmark = pytest.mark.mysql

NOBACKUP = ["--backup", "none", "--i-accept-data-loss", "--yes", "--no-simulate"]

BASE = {
    "migrations/001_users.up.sql": """
        CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL);
        INSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com');
    """,
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
}

#: five forward statements, every one with a derivable inverse
FORWARD = [
    "CREATE TABLE posts (id INT PRIMARY KEY, user_id INT NOT NULL)",
    "ALTER TABLE users ADD COLUMN nick VARCHAR(20) NULL",
    "CREATE INDEX users_nick ON users (nick)",
    "ALTER TABLE posts ADD CONSTRAINT posts_user FOREIGN KEY (user_id) REFERENCES users (id)",
    "ALTER TABLE users RENAME COLUMN email TO mail",
]
#: the five statements of its rollback, newest first
BACKWARD = [
    "ALTER TABLE users RENAME COLUMN mail TO email",
    "ALTER TABLE posts DROP FOREIGN KEY posts_user",
    "DROP INDEX users_nick ON users",
    "ALTER TABLE users DROP COLUMN nick",
    "DROP TABLE posts",
]


def script(
    statements: list[str], broken: int | None = None, header: str = "", *, syntax: bool = False
) -> str:
    """One statement per line (statement i on line i + header lines). Statement ``broken``
    fails: it names a missing table instead of its own, or (``syntax``) ends in nonsense."""
    lines = []
    for index, statement in enumerate(statements, start=1):
        text = statement
        if index == broken and syntax:
            text += " NONSENSE"
        elif index == broken:
            text = text.replace("users", "users_missing", 1).replace("posts", "posts_missing", 1)
        lines.append(text + ";")
    return header + "\n".join(lines) + "\n"


def project(
    tmp_path: Path, *, up_broken: int | None = None, down_broken: int | None = None
) -> Path:
    return write(
        tmp_path,
        {
            **BASE,
            # CREATE TABLE of a missing name would succeed: break the forward script's syntax
            "migrations/002_features.up.sql": script(FORWARD, up_broken, syntax=True),
            "migrations/002_features.down.sql": script(
                BACKWARD, down_broken, header="-- backout:risk HIGH\n"
            ),
        },
    )


def fix(project_dir: Path) -> None:
    """Fix the cause: the scripts as they should have been."""
    write(
        project_dir,
        {
            "migrations/002_features.up.sql": script(FORWARD),
            "migrations/002_features.down.sql": script(BACKWARD, header="-- backout:risk HIGH\n"),
        },
    )


def journal(url: str) -> list[tuple[str, int]]:
    return [
        (str(entry), int(index))
        for entry, index in sql(
            url, "SELECT entry, statement_index FROM backout_journal ORDER BY id"
        )
    ]


def status_doc(project_dir: Path, url: str) -> dict[str, object]:
    result = run(["status", "--json"], project=project_dir, url=url)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def entry(doc: dict[str, object], migration_id: str) -> dict[str, object]:
    migrations = doc["migrations"]
    assert isinstance(migrations, list)
    return next(m for m in migrations if m["id"] == migration_id)


def applied(project_dir: Path, url: str) -> list[str]:
    doc = status_doc(project_dir, url)
    migrations = doc["migrations"]
    assert isinstance(migrations, list)
    return [m["id"] for m in migrations if m["state"] == "applied"]


def ledger(url: str) -> list[tuple[object, ...]]:
    return sql(
        url,
        "SELECT migration_key, finished_at IS NOT NULL, rolled_back_at IS NOT NULL "
        "FROM backout_migrations ORDER BY started_at, id",
    )


# --- the rollback matrix -------------------------------------------------------------------


def interrupted_rollback(tmp_path: Path, url: str, failing: int, backup: str = "scoped"):  # type: ignore[no-untyped-def]
    """Apply both migrations, then roll back 002 with statement ``failing`` broken."""
    project_dir = project(tmp_path, down_broken=failing)
    assert run(["up", "--to", "001"], project=project_dir, url=url).exit_code == 0
    base = db_state(url)
    assert run(["up"], project=project_dir, url=url).exit_code == 0
    full = db_state(url)
    args = ["rollback", "--yes", "--no-simulate", "--backup", backup]
    if backup == "none":
        args.append("--i-accept-data-loss")
    result = run(args, project=project_dir, url=url)
    assert result.exit_code == 4, result.output
    assert f"002_features.down.sql:{failing + 1}: statement {failing} failed" in result.stderr
    assert "--resume" in result.stderr and "--undo-partial" in result.stderr
    return project_dir, base, full


@pytest.mark.parametrize("failing", [1, 2, 3, 4, 5])
def test_rollback_failing_at_each_statement_then_resume(
    tmp_path: Path, mysql_url: str, failing: int
) -> None:
    project_dir, base, _full = interrupted_rollback(tmp_path, mysql_url, failing)
    done = [("done", i) for i in range(1, failing)]
    rollback_entries = [e for e in journal(mysql_url) if e[0] != "running"][-(failing + 1) :]
    assert rollback_entries == [("start", 0), *done, ("failed", failing)]

    doc = status_doc(project_dir, mysql_url)
    features = entry(doc, "002_features")
    assert features["state"] == "applied"  # as Prisma would see it: not rolled back
    stopped = features["interrupted"]
    assert isinstance(stopped, dict)
    assert stopped["direction"] == "rollback"
    assert stopped["applied"] == list(range(1, failing))
    assert stopped["failed"] == failing and stopped["failed_line"] == failing + 1
    assert stopped["backup"]
    human = run(["status"], project=project_dir, url=mysql_url)
    assert human.exit_code == 1
    assert f"partly rolled back: {failing - 1} of 5" in human.output
    assert f"statement {failing} (migrations/002_features.down.sql:{failing + 1}) failed" in (
        " ".join(human.output.split())
    )

    # A plain rollback or up is refused while the run stands.
    refused = run(["rollback", *NOBACKUP], project=project_dir, url=mysql_url)
    assert refused.exit_code == 2 and "stopped part-way" in refused.stderr
    assert run(["up"], project=project_dir, url=mysql_url).exit_code == 2

    fix(project_dir)
    result = run(["rollback", "--resume", "--yes"], project=project_dir, url=mysql_url)
    assert result.exit_code == 0, result.output + result.stderr
    assert "002_features is rolled back" in result.output
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (base.schema, base.data)
    assert applied(project_dir, mysql_url) == ["001_users"]
    assert journal(mysql_url)[-1] == ("finish", 5)
    assert entry(status_doc(project_dir, mysql_url), "002_features")["interrupted"] is None
    # and the migration can be applied again
    assert run(["up"], project=project_dir, url=mysql_url).exit_code == 0


@pytest.mark.parametrize("failing", [1, 2, 3, 4, 5])
def test_rollback_failing_at_each_statement_then_undo(
    tmp_path: Path, mysql_url: str, failing: int
) -> None:
    project_dir, _base, full = interrupted_rollback(tmp_path, mysql_url, failing)
    before_ledger = ledger(mysql_url)
    result = run(["rollback", "--undo-partial", "--yes"], project=project_dir, url=mysql_url)
    assert result.exit_code == 0, result.output + result.stderr
    if failing <= 2:
        # nothing, or only the RENAME COLUMN, took effect: undone by inverses
        assert "path: inverses" in result.output
    else:
        # DROP FOREIGN KEY has no inverse: the backup taken before the run is restored
        assert "no inverse" in result.output and "path: backup" in result.output
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (full.schema, full.data)
    assert ledger(mysql_url) == before_ledger
    assert applied(project_dir, mysql_url) == ["001_users", "002_features"]
    assert entry(status_doc(project_dir, mysql_url), "002_features")["interrupted"] is None
    # a fixed rollback now runs from scratch
    fix(project_dir)
    assert run(["rollback", *NOBACKUP], project=project_dir, url=mysql_url).exit_code == 0
    assert applied(project_dir, mysql_url) == ["001_users"]


def test_undo_without_inverse_or_backup_stops_and_explains(tmp_path: Path, mysql_url: str) -> None:
    project_dir, _base, _full = interrupted_rollback(tmp_path, mysql_url, 4, backup="none")
    before = db_state(mysql_url)
    entries = journal(mysql_url)
    result = run(["rollback", "--undo-partial", "--yes"], project=project_dir, url=mysql_url)
    assert result.exit_code == 1
    assert "no inverse, and no backup was taken before the run" in result.stderr
    assert "statement 3 (migrations/002_features.down.sql:4): it dropped index" in result.stderr
    assert db_state(mysql_url) == before
    assert journal(mysql_url) == entries


def test_resume_refuses_when_statements_that_ran_were_edited(
    tmp_path: Path, mysql_url: str
) -> None:
    project_dir, _base, _full = interrupted_rollback(tmp_path, mysql_url, 3)
    before = db_state(mysql_url)
    write(
        project_dir,
        {
            "migrations/002_features.down.sql": script(
                ["ALTER TABLE users RENAME COLUMN mail TO email2", *BACKWARD[1:]],
                header="-- backout:risk HIGH\n",
            )
        },
    )
    result = run(["rollback", "--resume", "--yes"], project=project_dir, url=mysql_url)
    assert result.exit_code == 2
    assert "changed in the statements that already ran (statement 1" in result.stderr
    assert db_state(mysql_url) == before


def test_resume_and_undo_need_an_interrupted_run(tmp_path: Path, mysql_url: str) -> None:
    project_dir = project(tmp_path)
    assert run(["up"], project=project_dir, url=mysql_url).exit_code == 0
    for flag in ("--resume", "--undo-partial"):
        result = run(["rollback", flag, "--yes"], project=project_dir, url=mysql_url)
        assert result.exit_code == 2
        assert "no apply or rollback stopped part-way" in result.stderr
    both = run(["rollback", "--resume", "--steps", "1"], project=project_dir, url=mysql_url)
    assert both.exit_code == 2 and "without an ID, --to, --steps" in both.stderr


# --- the apply matrix ----------------------------------------------------------------------


@pytest.mark.parametrize("failing", [1, 2, 3, 4, 5])
def test_up_failing_at_each_statement(tmp_path: Path, mysql_url: str, failing: int) -> None:
    project_dir = project(tmp_path, up_broken=failing)
    assert run(["up", "--to", "001"], project=project_dir, url=mysql_url).exit_code == 0
    base = db_state(mysql_url)
    result = run(["up"], project=project_dir, url=mysql_url)
    assert result.exit_code == 4
    assert f"002_features.up.sql:{failing}: statement {failing} failed" in result.stderr
    assert f"{failing - 1} of 5 statements were applied and remain" in result.stderr

    # The ledger row stays as Prisma leaves a failed one: finished_at NULL, the error in logs.
    row = sql(
        mysql_url,
        "SELECT finished_at, rolled_back_at, applied_steps_count, logs FROM backout_migrations "
        "WHERE migration_key = '002'",
    )
    assert len(row) == 1
    finished, rolled_back, steps, logs = row[0]
    assert finished is None and rolled_back is None and steps == failing - 1
    assert "Database error code: 1064" in logs
    features = entry(status_doc(project_dir, mysql_url), "002_features")
    assert features["state"] == "failed"
    assert features["failed_statements_applied"] == failing - 1
    stopped = features["interrupted"]
    assert isinstance(stopped, dict)
    assert stopped["direction"] == "up" and stopped["applied"] == list(range(1, failing))
    assert "partly applied" in run(["status"], project=project_dir, url=mysql_url).output

    # Undo: every forward statement has an inverse.
    undo = run(["rollback", "--undo-partial", "--yes"], project=project_dir, url=mysql_url)
    assert undo.exit_code == 0, undo.output + undo.stderr
    assert "path: inverses" in undo.output and "pending again" in undo.output
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (base.schema, base.data)
    assert entry(status_doc(project_dir, mysql_url), "002_features")["state"] == "pending"

    # Fixed, it applies from the start.
    fix(project_dir)
    assert run(["up"], project=project_dir, url=mysql_url).exit_code == 0
    assert applied(project_dir, mysql_url) == ["001_users", "002_features"]


@pytest.mark.parametrize("failing", [1, 3, 5])
def test_up_failing_then_resume_after_the_fix(tmp_path: Path, mysql_url: str, failing: int) -> None:
    clean = write(tmp_path / "clean", {**BASE, "migrations/002_features.up.sql": script(FORWARD)})
    project_dir = project(tmp_path / "broken", up_broken=failing)
    assert run(["up"], project=project_dir, url=mysql_url).exit_code == 4
    fix(project_dir)
    result = run(["rollback", "--resume", "--yes"], project=project_dir, url=mysql_url)
    assert result.exit_code == 0, result.output + result.stderr
    assert "002_features is applied" in result.output
    doc = status_doc(project_dir, mysql_url)
    assert entry(doc, "002_features")["state"] == "applied"
    assert entry(doc, "002_features")["edited"] is False  # the ledger holds the fixed checksum
    resumed = db_state(mysql_url)
    # the same schema as a clean apply on a fresh database
    sql(mysql_url, "DROP TABLE posts")
    sql(mysql_url, "DROP TABLE users")
    sql(mysql_url, "DROP TABLE backout_migrations")
    sql(mysql_url, "DROP TABLE schema_migrations")  # golang-migrate's, kept beside it
    assert run(["up"], project=clean, url=mysql_url).exit_code == 0
    assert db_state(mysql_url).schema == resumed.schema


def test_resolve_closes_a_partly_applied_migration(tmp_path: Path, mysql_url: str) -> None:
    project_dir = project(tmp_path, up_broken=3)
    assert run(["up"], project=project_dir, url=mysql_url).exit_code == 4
    # Finished by hand, then recorded as applied (prisma migrate resolve --applied).
    for statement in FORWARD[2:]:
        sql(mysql_url, statement)
    result = run(["resolve", "002", "--applied"], project=project_dir, url=mysql_url)
    assert result.exit_code == 0, result.stderr
    doc = status_doc(project_dir, mysql_url)
    assert entry(doc, "002_features")["state"] == "applied"
    assert entry(doc, "002_features")["interrupted"] is None


# --- a run killed while it runs ------------------------------------------------------------


def test_killed_run_resumes_from_the_journal(tmp_path: Path, mysql_url: str) -> None:
    statements = [*BACKWARD[:2], "SELECT SLEEP(30)", *BACKWARD[2:]]
    project_dir = write(
        tmp_path,
        {
            **BASE,
            "migrations/002_features.up.sql": script(FORWARD),
            "migrations/002_features.down.sql": script(statements, header="-- backout:risk HIGH\n"),
        },
    )
    assert run(["up", "--to", "001"], project=project_dir, url=mysql_url).exit_code == 0
    base = db_state(mysql_url)
    assert run(["up"], project=project_dir, url=mysql_url).exit_code == 0
    env = {**os.environ, "DATABASE_URL": mysql_url, "NO_COLOR": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "backout", "rollback", "-C", str(project_dir), *NOBACKUP],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        reached = (
            "SELECT count(*) FROM backout_journal WHERE direction = 'rollback' "
            "AND entry = 'done' AND statement_index = 2"
        )
        while not sql(mysql_url, reached)[0][0]:
            assert time.monotonic() < deadline, "the rollback never reached statement 3"
            time.sleep(0.1)
        time.sleep(0.5)  # inside SELECT SLEEP(30)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    stopped = entry(status_doc(project_dir, mysql_url), "002_features")["interrupted"]
    assert isinstance(stopped, dict)
    assert stopped["applied"] == [1, 2] and stopped["failed"] is None
    # The server notices the dead client only when SLEEP ends: until then its session still
    # holds the run lock, and backout says who. The operator kills that session.
    held = run(
        ["rollback", "--resume", "--yes", "--lock-wait", "0"], project=project_dir, url=mysql_url
    )
    assert held.exit_code == 3
    (holder,) = sql(mysql_url, f"SELECT IS_USED_LOCK('backout:{mysql_url.rsplit('/', 1)[1]}')")[0]
    assert f"held by connection {holder} " in held.stderr
    sql(mysql_url, f"KILL {int(holder)}")
    write(
        project_dir,
        {
            "migrations/002_features.down.sql": script(
                [*BACKWARD[:2], "SELECT 1", *BACKWARD[2:]], header="-- backout:risk HIGH\n"
            )
        },
    )
    result = run(["rollback", "--resume", "--yes"], project=project_dir, url=mysql_url)
    assert result.exit_code == 0, result.output + result.stderr
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (base.schema, base.data)


@pytest.mark.parametrize("took_effect", [True, False])
def test_statement_running_when_killed_is_settled_by_looking(
    tmp_path: Path, mysql_url: str, took_effect: bool
) -> None:
    """A DDL statement's outcome is not recorded when the process dies during it; resume and
    undo look at the schema instead of guessing."""
    project_dir, base, full = interrupted_rollback(tmp_path, mysql_url, 5)
    # As if killed during statement 4 (DROP COLUMN): its 'running' entry, no outcome.
    sql(
        mysql_url,
        "DELETE FROM backout_journal WHERE direction = 'rollback' AND "
        "((entry = 'done' AND statement_index = 4) OR statement_index = 5)",
    )
    fix(project_dir)
    if not took_effect:
        sql(mysql_url, "ALTER TABLE users ADD COLUMN nick VARCHAR(20) NULL")
    stopped = entry(status_doc(project_dir, mysql_url), "002_features")["interrupted"]
    assert isinstance(stopped, dict) and stopped["uncertain"] == 4
    assert "whether it took effect is not recorded" in " ".join(
        run(["status"], project=project_dir, url=mysql_url).output.split()
    )
    result = run(["rollback", "--resume", "--yes"], project=project_dir, url=mysql_url)
    assert result.exit_code == 0, result.output + result.stderr
    verdict = "took effect" if took_effect else "did not take effect"
    assert f"the schema shows it {verdict}" in " ".join(result.output.split())
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (base.schema, base.data)
    assert full.schema != base.schema


def test_dml_only_scripts_stay_atomic(tmp_path: Path, mysql_url: str) -> None:
    """A rollback of plain DML runs in one transaction: a failure leaves nothing, no journal."""
    project_dir = write(
        tmp_path,
        {
            **BASE,
            "migrations/002_rows.up.sql": "INSERT INTO users VALUES (3, 'c@example.com');\n",
            "migrations/002_rows.down.sql": (
                "-- backout:risk LOW\nDELETE FROM users WHERE id = 3;\nDELETE FROM nope;\n"
            ),
        },
    )
    assert run(["up"], project=project_dir, url=mysql_url).exit_code == 0
    before = db_state(mysql_url)
    entries = journal(mysql_url)
    plan = run(["plan", "--no-simulate"], project=project_dir, url=mysql_url)
    assert "Execution: one transaction" in plan.output
    assert "commits DDL implicitly" not in plan.output
    result = run(["rollback", *NOBACKUP], project=project_dir, url=mysql_url)
    assert result.exit_code == 4
    assert "everything in this transaction was undone" in result.stderr
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (before.schema, before.data)
    assert journal(mysql_url) == entries
    assert entry(status_doc(project_dir, mysql_url), "002_rows")["interrupted"] is None


def test_plan_names_the_statements_no_transaction_can_undo(tmp_path: Path, mysql_url: str) -> None:
    project_dir = project(tmp_path)
    assert run(["up"], project=project_dir, url=mysql_url).exit_code == 0
    result = run(["plan", "--no-simulate"], project=project_dir, url=mysql_url)
    text = " ".join(result.output.split())
    assert "commits DDL implicitly: 5 statement(s) cannot be undone by a transaction" in text
    assert (
        "migrations/002_features.down.sql:2 ALTER TABLE users RENAME COLUMN mail TO email" in text
    )
    assert "Execution: 5 transactions" in text
    dry = run(["rollback", "--dry-run", "--no-simulate"], project=project_dir, url=mysql_url)
    assert dry.exit_code == 0
    assert "INSERT INTO `backout_journal`" in dry.output
    assert "'running'" in dry.output and "'done'" in dry.output and "'finish'" in dry.output


# --- history schema versions, and the journal beyond MySQL ---------------------------------


def test_history_of_schema_version_1_gets_the_journal(tmp_path: Path, mysql_url: str) -> None:
    """Tables written by a backout before the journal (version 1) are brought forward by the
    next run that needs the journal; read-only commands work on them as they are."""
    project_dir = project(tmp_path)
    assert run(["up", "--to", "001"], project=project_dir, url=mysql_url).exit_code == 0
    sql(mysql_url, "DROP TABLE backout_journal")
    sql(mysql_url, "DELETE FROM backout_schema_version")
    sql(
        mysql_url,
        "INSERT INTO backout_schema_version VALUES (1, UTC_TIMESTAMP(3), '0.1.0')",
    )
    assert run(["status"], project=project_dir, url=mysql_url).exit_code == 0
    assert run(["up"], project=project_dir, url=mysql_url).exit_code == 0
    assert sql(mysql_url, "SELECT max(version) FROM backout_schema_version") == [(2,)]
    assert ("finish", 5) in journal(mysql_url)


def test_a_newer_history_schema_is_refused(tmp_path: Path, mysql_url: str) -> None:
    project_dir = project(tmp_path)
    assert run(["up", "--to", "001"], project=project_dir, url=mysql_url).exit_code == 0
    sql(mysql_url, "INSERT INTO backout_schema_version VALUES (99, UTC_TIMESTAMP(3), '9.0')")
    result = run(["status"], project=project_dir, url=mysql_url)
    assert result.exit_code == 2 and "schema version 99" in result.stderr


def test_transaction_off_scripts_are_journaled_on_sqlite_too(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The journal is shared by design: a ``transaction off`` script anywhere runs statement
    by statement, so it gets the same status, --resume and --undo-partial."""
    project_dir = write(
        tmp_path,
        {
            "migrations/001_t.up.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n",
            "migrations/002_idx.up.sql": (
                "-- backout:transaction off\nCREATE INDEX t_v ON t (v);\n"
                "CREATE INDEX t_x ON t (nope);\nALTER TABLE t ADD COLUMN w INTEGER;\n"
            ),
        },
    )
    assert run(["up", "--to", "001"], project=project_dir, url=sqlite_url).exit_code == 0
    base = db_state(sqlite_url)
    assert run(["up"], project=project_dir, url=sqlite_url).exit_code == 4
    doc = status_doc(project_dir, sqlite_url)
    stopped = entry(doc, "002_idx")["interrupted"]
    assert isinstance(stopped, dict) and stopped["applied"] == [1] and stopped["failed"] == 2
    undo = run(["rollback", "--undo-partial", "--yes"], project=project_dir, url=sqlite_url)
    assert undo.exit_code == 0, undo.stderr
    assert 'DROP INDEX "t_v"' in undo.output
    after = db_state(sqlite_url)
    assert (after.schema, after.data) == (base.schema, base.data)
    assert entry(status_doc(project_dir, sqlite_url), "002_idx")["state"] == "pending"


def test_own_block_holding_ddl_is_not_told_atomic(tmp_path: Path, mysql_url: str) -> None:
    """MySQL commits DDL implicitly, inside a script's own START TRANSACTION too: the block
    cannot be atomic, and status and the dry run must not say it is."""
    block = (
        "START TRANSACTION;\nINSERT INTO users VALUES (3, 'z@x');\n"
        "ALTER TABLE users ADD COLUMN nick2 VARCHAR(20) NULL;\nCOMMIT;\n"
    )
    files = {"migrations/002_block.up.sql": block, "migrations/002_block.down.sql": "SELECT 1;\n"}
    project_dir = write(tmp_path, {**BASE, **files})
    assert run(["up", "--to", "001"], project=project_dir, url=mysql_url).exit_code == 0
    for command in (["status"], ["up", "--dry-run"]):
        told = run(command, project=project_dir, url=mysql_url)
        text = " ".join((told.stdout + told.stderr).split())
        assert "runs atomically" not in text, text
        assert "commits DDL implicitly" in text, text
    assert run(["up"], project=project_dir, url=mysql_url).exit_code == 0
    assert sql(mysql_url, "SELECT count(*) FROM users WHERE email = 'z@x'")[0][0] == 1
