"""Migrations applied as shipped: the script's own BEGIN/COMMIT, CREATE INDEX CONCURRENTLY, a
new enum value used at once; journaled where one transaction cannot hold the script; bad
transaction control refused up front (issue #11 §1)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.helpers import db_state, run, sql, write

pytestmark = pytest.mark.postgres

INIT = "20250101000000_init"
LOCK = 'provider = "postgresql"\n'

INIT_SQL = """\
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN', 'GUEST');
CREATE TABLE "User" (
    id serial PRIMARY KEY, email text NOT NULL, role "Role" NOT NULL DEFAULT 'USER'
);
INSERT INTO "User" (email, role) VALUES ('a@x', 'ADMIN'), ('b@x', 'USER');
"""

#: Prisma's AlterEnum template (a value removed), exactly as `prisma migrate dev` writes it
ALTER_ENUM = """\
/*
  Warnings:

  - The values [GUEST] on the enum `Role` will be removed.

*/
-- AlterEnum
BEGIN;
CREATE TYPE "Role_new" AS ENUM ('USER', 'ADMIN');
ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;
ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");
ALTER TYPE "Role" RENAME TO "Role_old";
ALTER TYPE "Role_new" RENAME TO "Role";
DROP TYPE "Role_old";
ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT 'USER';
COMMIT;
"""

CONCURRENTLY = """\
-- CreateIndex
CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");
"""

NEW_VALUE_USED = """\
-- AlterEnum
ALTER TYPE "Role" ADD VALUE 'OWNER';
UPDATE "User" SET role = 'OWNER' WHERE email = 'a@x';
"""


def project(root: Path, migrations: dict[str, str]) -> Path:
    files = {"prisma/migrations/migration_lock.toml": LOCK}
    for name, text in migrations.items():
        files[f"prisma/migrations/{name}/migration.sql"] = text
    return write(root, files)


def ledger(url: str) -> list[tuple[str, str, bool, str | None]]:
    return [
        (r[0], r[1], r[2] is not None, r[3])
        for r in sql(
            url,
            "SELECT migration_name, checksum, finished_at, logs FROM _prisma_migrations "
            "ORDER BY started_at",
        )
    ]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prisma_enum_template_applies_atomically_with_prisma_checksums(
    tmp_path: Path, pg_url: str
) -> None:
    root = project(tmp_path, {INIT: INIT_SQL, "20250102000000_drop_guest": ALTER_ENUM})
    dry = run(["up", "--dry-run"], project=root, url=pg_url)
    assert dry.exit_code == 0, dry.stderr
    assert "BEGIN (line 8), COMMIT (line 16) are not sent" in dry.stdout
    # backout's own BEGIN and COMMIT only: history tables, then one pair per migration
    assert dry.stdout.count("\nBEGIN;") == 3 and dry.stdout.count("\nCOMMIT;") == 3
    assert sql(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]

    result = run(["up"], project=root, url=pg_url)
    assert result.exit_code == 0, result.stderr
    labels = sql(
        pg_url,
        "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum "
        "WHERE enumtypid = '\"Role\"'::regtype",
    )
    assert labels == [("USER,ADMIN",)]
    assert sql(pg_url, 'SELECT email, role::text FROM "User" ORDER BY id') == [
        ("a@x", "ADMIN"),
        ("b@x", "USER"),
    ]
    folder = root / "prisma/migrations"
    assert ledger(pg_url) == [
        (INIT, sha(folder / INIT / "migration.sql"), True, None),
        (
            "20250102000000_drop_guest",
            sha(folder / "20250102000000_drop_guest/migration.sql"),
            True,
            None,
        ),
    ]
    status = run(["status"], project=root, url=pg_url)
    assert status.exit_code == 0 and "edited" not in status.stdout


def test_concurrently_and_new_enum_value_run_journaled(tmp_path: Path, pg_url: str) -> None:
    root = project(
        tmp_path,
        {
            INIT: INIT_SQL,
            "20250102000000_idx": CONCURRENTLY,
            "20250103000000_owner": NEW_VALUE_USED,
        },
    )
    status = run(["status", "--json"], project=root, url=pg_url)
    notes = json.loads(status.stdout)["notes"]
    assert any(
        "20250102000000_idx/migration.sql: runs journaled" in n and "CONCURRENTLY" in n
        for n in notes
    ), notes
    assert any("'OWNER' added to \"Role\"" in n or "'OWNER' added to Role" in n for n in notes), (
        notes
    )

    result = run(["up"], project=root, url=pg_url)
    assert result.exit_code == 0, result.stderr
    assert "2 migration(s) ran journaled" in result.stdout
    assert sql(
        pg_url,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = 'User_email_idx'",
    ) == [(True,)]
    assert sql(pg_url, "SELECT role::text FROM \"User\" WHERE email = 'a@x'") == [("OWNER",)]
    assert [(name, done, logs) for name, _, done, logs in ledger(pg_url)] == [
        (INIT, True, None),
        ("20250102000000_idx", True, None),
        ("20250103000000_owner", True, None),
    ]
    # every journaled run finished: nothing is left to resume or undo
    assert run(["status"], project=root, url=pg_url).exit_code == 0


def test_journaled_failure_keeps_blocks_atomic_and_resumes(tmp_path: Path, pg_url: str) -> None:
    broken = (
        "BEGIN;\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\nCOMMIT;\n"
        "CREATE INDEX CONCURRENTLY a_idx ON a (id);\n"
        "BEGIN;\nCREATE TABLE c (id int);\nCREATE TABLE d (id nope);\nCOMMIT;\n"
    )
    root = project(tmp_path, {INIT: INIT_SQL, "20250102000000_mixed": broken})
    result = run(["up"], project=root, url=pg_url)
    assert result.exit_code == 4
    assert "20250102000000_mixed/migration.sql:8" in result.stderr
    assert "3 of 5 statements were applied and remain" in result.stderr
    tables = {
        r[0] for r in sql(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname='public'")
    }
    # the failed block rolled back as a whole (c is not there); the ones before it stay
    assert tables >= {"a", "b"} and not tables & {"c", "d"}
    status = run(["status"], project=root, url=pg_url)
    assert status.exit_code == 1 and "stopped part-way" in status.stdout

    migration = root / "prisma/migrations/20250102000000_mixed/migration.sql"
    migration.write_text(broken.replace("id nope", "id int"))
    resumed = run(["rollback", "--resume", "--yes"], project=root, url=pg_url)
    assert resumed.exit_code == 0, resumed.stderr
    tables = {
        r[0] for r in sql(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname='public'")
    }
    assert tables >= {"a", "b", "c", "d"}
    rows = [r for r in ledger(pg_url) if r[0] == "20250102000000_mixed"]
    assert rows and rows[-1][2] and rows[-1][1] == sha(migration)
    assert run(["status"], project=root, url=pg_url).exit_code == 0


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("CREATE TABLE a (id int);\nROLLBACK;\n", 2, "ROLLBACK discards the script's own work"),
        ("BEGIN;\nCREATE TABLE a (id int);\n", 1, "BEGIN is never committed"),
        ("CREATE TABLE a (id int);\nCOMMIT;\n", 2, "COMMIT without a BEGIN"),
        (
            'BEGIN;\nCREATE INDEX CONCURRENTLY i ON "User" (email);\nCOMMIT;\n',
            2,
            "the script's own BEGIN puts it in one",
        ),
    ],
)
def test_transaction_control_that_cannot_be_honoured_is_refused(
    tmp_path: Path, pg_url: str, text: str, where: int, message: str
) -> None:
    root = project(tmp_path, {INIT: INIT_SQL, "20250102000000_bad": text})
    assert run(["up", "--to", INIT], project=root, url=pg_url).exit_code == 0
    before = db_state(pg_url)
    for command in (["up"], ["up", "--dry-run"]):
        result = run(command, project=root, url=pg_url)
        assert result.exit_code == 2, result.stderr
        assert f"20250102000000_bad/migration.sql:{where}: " in result.stderr
        assert message in result.stderr
    assert db_state(pg_url) == before


def test_rollback_script_with_its_own_blocks_and_concurrently(tmp_path: Path, pg_url: str) -> None:
    root = project(tmp_path, {INIT: INIT_SQL, "20250102000000_idx": CONCURRENTLY})
    write(
        root,
        {
            "prisma/rollback/20250102000000_idx_rollback.sql": (
                '-- backout:risk NONE\nDROP INDEX CONCURRENTLY "User_email_idx";\n'
            ),
            f"prisma/rollback/{INIT}_rollback.sql": (
                '-- backout:risk HIGH\nBEGIN;\nDROP TABLE "User";\nDROP TYPE "Role";\nCOMMIT;\n'
            ),
        },
    )
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    plan = run(["plan", "--steps", "2"], project=root, url=pg_url)
    assert "runs journaled, statement by statement, because DROP INDEX CONCURRENTLY" in plan.stdout
    assert "are not sent" in plan.stdout
    result = run(
        ["rollback", "--steps", "2", "--backup", "none", "--i-accept-data-loss", "--yes"],
        project=root,
        url=pg_url,
    )
    assert result.exit_code == 0, result.stderr
    left = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    assert sql(pg_url, left) == [("_prisma_migrations",)]
    assert sql(pg_url, "SELECT count(*) FROM pg_type WHERE typname = 'Role'") == [(0,)]
    rolled = sql(pg_url, "SELECT count(*) FROM _prisma_migrations WHERE rolled_back_at IS NOT NULL")
    assert rolled == [(2,)]


def test_rehearsal_and_generate_run_scripts_as_shipped(tmp_path: Path, pg_url: str) -> None:
    root = project(
        tmp_path,
        {
            INIT: INIT_SQL,
            "20250102000000_drop_guest": ALTER_ENUM,
            "20250103000000_idx": CONCURRENTLY,
        },
    )
    write(
        root,
        {
            f"prisma/rollback/{INIT}_rollback.sql": (
                '-- backout:risk HIGH\nDROP TABLE "User";\nDROP TYPE "Role";\n'
            ),
            "prisma/rollback/20250102000000_drop_guest_rollback.sql": (
                "-- backout:risk NONE\nBEGIN;\n"
                "CREATE TYPE \"Role_new\" AS ENUM ('USER', 'ADMIN', 'GUEST');\n"
                'ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;\n'
                'ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" '
                'USING ("role"::text::"Role_new");\n'
                'ALTER TYPE "Role" RENAME TO "Role_old";\nALTER TYPE "Role_new" RENAME TO "Role";\n'
                'DROP TYPE "Role_old";\n'
                'ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'USER\';\nCOMMIT;\n'
            ),
        },
    )
    # the CONCURRENTLY migration has no rollback yet: generate drafts one (a journaled replay)
    drafted = run(["generate", "20250103000000_idx"], project=root, url=pg_url)
    assert drafted.exit_code == 0, drafted.stdout + drafted.stderr
    draft = root / "prisma/rollback/20250103000000_idx_rollback.sql"
    assert 'DROP INDEX "User_email_idx"' in draft.read_text().replace("public.", "")

    rehearsal = run(["test", "--all"], project=root, url=pg_url)
    assert rehearsal.exit_code == 0, rehearsal.stdout + rehearsal.stderr
    assert sql(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_rollbacks_of_one_batch_commit_before_a_new_enum_value_is_used(
    tmp_path: Path, pg_url: str
) -> None:
    # the rollback of 003 adds 'ARCHIVED'; the rollback of 002, run next, uses it: one shared
    # transaction would fail with 55P04, so the batch commits between them
    root = project(
        tmp_path,
        {
            INIT: INIT_SQL + "CREATE TYPE \"State\" AS ENUM ('LIVE', 'ARCHIVED');\n",
            "20250102000000_state": 'ALTER TABLE "User" ADD COLUMN state "State";\n',
            "20250103000000_drop_archived": (
                "BEGIN;\nCREATE TYPE \"State_new\" AS ENUM ('LIVE');\n"
                'ALTER TABLE "User" ALTER COLUMN state TYPE "State_new" '
                'USING (state::text::"State_new");\n'
                'DROP TYPE "State";\nALTER TYPE "State_new" RENAME TO "State";\nCOMMIT;\n'
            ),
        },
    )
    write(
        root,
        {
            "prisma/rollback/20250102000000_state_rollback.sql": (
                "-- backout:risk HIGH\n-- backout:data-loss state\n"
                "UPDATE \"User\" SET state = 'ARCHIVED' WHERE state IS NULL;\n"
                'ALTER TABLE "User" DROP COLUMN state;\n'
            ),
            "prisma/rollback/20250103000000_drop_archived_rollback.sql": (
                "-- backout:risk NONE\nALTER TYPE \"State\" ADD VALUE 'ARCHIVED';\n"
            ),
        },
    )
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    plan = run(["plan", "--steps", "2"], project=root, url=pg_url)
    assert "Execution: 2 transactions" in " ".join(plan.stdout.split())
    result = run(
        ["rollback", "--steps", "2", "--backup", "none", "--i-accept-data-loss", "--yes"],
        project=root,
        url=pg_url,
    )
    assert result.exit_code == 0, result.stderr
    columns = sql(
        pg_url, "SELECT column_name FROM information_schema.columns WHERE table_name='User'"
    )
    assert "state" not in {c[0] for c in columns}
    labels = sql(
        pg_url,
        "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum "
        "WHERE enumtypid = '\"State\"'::regtype",
    )
    assert labels == [("LIVE,ARCHIVED",)]


def test_failed_create_index_concurrently_leaves_no_invalid_index(
    tmp_path: Path, pg_url: str
) -> None:
    # a unique index over duplicate emails fails part-way: PostgreSQL leaves it, invalid
    unique = 'CREATE UNIQUE INDEX CONCURRENTLY "User_email_key" ON "User"("email");\n'
    root = project(
        tmp_path,
        {
            INIT: INIT_SQL + "INSERT INTO \"User\" (email) VALUES ('a@x');\n",
            "20250102000000_uq": unique,
        },
    )
    result = run(["up"], project=root, url=pg_url)
    assert result.exit_code == 4
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "User_email_key"' in result.stderr
    leftover = "SELECT count(*) FROM pg_class WHERE relname = 'User_email_key'"
    assert sql(pg_url, leftover) == [(0,)]
    # fix the data; the resume runs the statement again and it succeeds
    sql(pg_url, 'DELETE FROM "User" WHERE id = (SELECT max(id) FROM "User" WHERE email = \'a@x\')')
    resumed = run(["rollback", "--resume", "--yes"], project=root, url=pg_url)
    assert resumed.exit_code == 0, resumed.stderr
    valid = sql(
        pg_url,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = 'User_email_key'",
    )
    assert valid == [(True,)]
    assert run(["status"], project=root, url=pg_url).exit_code == 0


@pytest.mark.parametrize(
    "use",
    [
        # a dollar-quoted or Unicode-escaped literal is a string constant like any other
        "UPDATE \"User\" SET role = $$OWNER$$ WHERE email = 'a@x';\n",
        "UPDATE \"User\" SET role = U&'OWNER' WHERE email = 'a@x';\n",
        # a LANGUAGE sql body is checked when the function is created: the cast runs then
        'CREATE FUNCTION owner_role() RETURNS "Role" LANGUAGE sql\n'
        "AS $$ SELECT 'OWNER'::\"Role\" $$;\n"
        "UPDATE \"User\" SET role = owner_role() WHERE email = 'a@x';\n",
    ],
)
def test_new_enum_value_used_in_any_literal_form_runs_journaled(
    tmp_path: Path, pg_url: str, use: str
) -> None:
    root = project(
        tmp_path,
        {INIT: INIT_SQL, "20250102000000_owner": "ALTER TYPE \"Role\" ADD VALUE 'OWNER';\n" + use},
    )
    result = run(["up"], project=root, url=pg_url)
    assert result.exit_code == 0, result.stderr
    assert sql(pg_url, "SELECT role::text FROM \"User\" WHERE email = 'a@x'") == [("OWNER",)]
    assert all(done for _, _, done, _ in ledger(pg_url))


@pytest.mark.parametrize("undo", [False, True])
def test_create_index_concurrently_killed_part_way_is_not_taken_as_done(
    tmp_path: Path, pg_url: str, undo: bool
) -> None:
    """A run that dies during CREATE INDEX CONCURRENTLY (the process killed, the server
    session terminated) leaves the index behind, invalid, and no outcome in the journal. The
    index is there but not built: resume must build it (at once, not after a failure of its
    own), and an undo must not leave it behind."""
    unique = 'CREATE UNIQUE INDEX CONCURRENTLY "User_email_key" ON "User"("email");\n'
    root = project(
        tmp_path,
        {
            INIT: INIT_SQL + "INSERT INTO \"User\" (email) VALUES ('a@x');\n",
            "20250102000000_uq": unique,
        },
    )
    assert run(["up"], project=root, url=pg_url).exit_code == 4
    # as if the run had died during the statement: its 'running' entry and no outcome, and
    # the index PostgreSQL leaves, invalid
    sql(pg_url, "DELETE FROM backout.journal WHERE entry = 'failed'")
    with pytest.raises(Exception, match="could not create unique index"):
        sql(pg_url, unique)
    status = run(["status", "--json"], project=root, url=pg_url)
    assert '"uncertain": 1' in status.stdout, status.stdout
    invalid = "SELECT count(*) FROM pg_class WHERE relname = 'User_email_key'"
    if undo:
        undone = run(["rollback", "--undo-partial", "--yes"], project=root, url=pg_url)
        assert undone.exit_code == 0, undone.stderr
        assert sql(pg_url, invalid) == [(0,)]
        return
    sql(pg_url, 'DELETE FROM "User" WHERE id = (SELECT max(id) FROM "User" WHERE email = \'a@x\')')
    resumed = run(["rollback", "--resume", "--yes"], project=root, url=pg_url)
    assert resumed.exit_code == 0, resumed.stderr
    valid = sql(
        pg_url,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = 'User_email_key'",
    )
    assert valid == [(True,)]
    with pytest.raises(Exception, match="duplicate key"):
        sql(pg_url, "INSERT INTO \"User\" (email) VALUES ('a@x')")
    assert run(["status"], project=root, url=pg_url).exit_code == 0


def test_failed_create_index_concurrently_keeps_an_index_it_did_not_create(
    tmp_path: Path, pg_url: str
) -> None:
    """The invalid index of the same name was there before the statement (someone's earlier
    attempt, or a build still running in another session): the statement fails on the name
    (42P07) and must leave that index alone, and not claim it left it."""
    root = project(
        tmp_path,
        {
            INIT: INIT_SQL + "INSERT INTO \"User\" (email) VALUES ('a@x');\n",
            "20250102000000_idx": 'CREATE INDEX CONCURRENTLY "User_email_key" ON "User"(id);\n',
        },
    )
    assert run(["up", "--to", INIT], project=root, url=pg_url).exit_code == 0
    with pytest.raises(Exception, match="could not create unique index"):
        sql(pg_url, 'CREATE UNIQUE INDEX CONCURRENTLY "User_email_key" ON "User"(email)')
    theirs = "SELECT c.oid FROM pg_class c WHERE c.relname = 'User_email_key'"
    before = sql(pg_url, theirs)
    result = run(["up"], project=root, url=pg_url)
    assert result.exit_code == 4
    assert "already exists" in result.stderr
    assert "removed" not in result.stderr, result.stderr
    assert sql(pg_url, theirs) == before


def test_verify_check_naming_a_value_the_script_adds_runs_after_it_commits(
    tmp_path: Path, pg_url: str
) -> None:
    """A ``verify`` check runs after the script's statements; when it names an enum value the
    script adds, it cannot share their transaction (55P04): the script runs journaled."""
    root = project(
        tmp_path, {INIT: INIT_SQL, "20250102000000_n": 'ALTER TABLE "User" ADD COLUMN n int;\n'}
    )
    write(
        root,
        {
            "prisma/rollback/20250102000000_n_rollback.sql": (
                "-- backout:risk LOW\n"
                "-- backout:verify SELECT NOT EXISTS "
                "(SELECT 1 FROM \"User\" WHERE role = 'OWNER')\n"
                "ALTER TYPE \"Role\" ADD VALUE 'OWNER';\n"
                'ALTER TABLE "User" DROP COLUMN n;\n'
            )
        },
    )
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    plan = run(["plan", "--steps", "1"], project=root, url=pg_url)
    assert "runs journaled" in plan.stdout and "55P04" in " ".join(plan.stdout.split())
    result = run(
        ["rollback", "--steps", "1", "--backup", "none", "--i-accept-data-loss", "--yes"],
        project=root,
        url=pg_url,
    )
    assert result.exit_code == 0, result.stderr
    columns = sql(
        pg_url, "SELECT column_name FROM information_schema.columns WHERE table_name='User'"
    )
    assert "n" not in {c[0] for c in columns}
    assert sql(pg_url, "SELECT count(*) FROM pg_enum WHERE enumlabel = 'OWNER'") == [(1,)]


def test_require_check_naming_a_value_an_earlier_rollback_adds_starts_a_new_transaction(
    tmp_path: Path, pg_url: str
) -> None:
    """The rollback of 003 adds 'ARCHIVED'; the ``require`` check of 002's rollback, run next,
    names it: in one shared transaction it fails with 55P04, so the batch commits between."""
    root = project(
        tmp_path,
        {
            INIT: INIT_SQL + "CREATE TYPE \"State\" AS ENUM ('LIVE');\n",
            "20250102000000_state": 'ALTER TABLE "User" ADD COLUMN state "State";\n',
            "20250103000000_n": 'ALTER TABLE "User" ADD COLUMN n int;\n',
        },
    )
    write(
        root,
        {
            "prisma/rollback/20250102000000_state_rollback.sql": (
                "-- backout:risk HIGH\n-- backout:data-loss state\n"
                "-- backout:require SELECT NOT EXISTS "
                "(SELECT 1 FROM \"User\" WHERE state = 'ARCHIVED')\n"
                'ALTER TABLE "User" DROP COLUMN state;\n'
            ),
            "prisma/rollback/20250103000000_n_rollback.sql": (
                "-- backout:risk NONE\nALTER TYPE \"State\" ADD VALUE 'ARCHIVED';\n"
                'ALTER TABLE "User" DROP COLUMN n;\n'
            ),
        },
    )
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    result = run(
        ["rollback", "--steps", "2", "--backup", "none", "--i-accept-data-loss", "--yes"],
        project=root,
        url=pg_url,
    )
    assert result.exit_code == 0, result.stderr
    columns = sql(
        pg_url, "SELECT column_name FROM information_schema.columns WHERE table_name='User'"
    )
    assert not {"state", "n"} & {c[0] for c in columns}


def test_invalid_index_left_by_a_dead_run_is_not_seen_as_the_statement_done(
    tmp_path: Path, pg_url: str
) -> None:
    """Settling a statement that was running when the run died by looking at the schema: an
    index left invalid by a CREATE INDEX CONCURRENTLY cut short exists, but is not built, so
    the statement did not take effect (here schema-qualified, which the schema matches): the
    resume drops it and builds it, instead of recording it done."""
    build = 'CREATE INDEX CONCURRENTLY "User_calc_idx" ON public."User" ((1 / (id - id)));\n'
    root = project(tmp_path, {INIT: INIT_SQL, "20250102000000_calc": build})
    assert run(["up"], project=root, url=pg_url).exit_code == 4  # division by zero
    sql(pg_url, "DELETE FROM backout.journal WHERE entry = 'failed'")
    with pytest.raises(Exception, match="division by zero"):
        sql(pg_url, build)  # the index the dead run left, invalid
    plan = run(["rollback", "--resume", "--dry-run"], project=root, url=pg_url)
    assert "did not take effect" in plan.stdout, plan.stdout
    sql(pg_url, 'DELETE FROM "User"')  # the cause: no row left to divide by zero
    resumed = run(["rollback", "--resume", "--yes"], project=root, url=pg_url)
    assert resumed.exit_code == 0, resumed.stderr
    valid = sql(
        pg_url,
        "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'User_calc_idx'",
    )
    assert len(valid) == 1 and valid[0][0], valid


def test_unqualified_statement_that_finished_before_the_run_died_is_seen_done(
    tmp_path: Path, pg_url: str
) -> None:
    """A statement with no schema in its names (as Prisma writes them) that completed just
    before the run died: looking at the schema must find it in the project's schema, so the
    resume goes on after it instead of running it again (42P07)."""
    text = (
        'CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");\n'
        "CREATE TABLE x (id nope);\n"
    )
    root = project(tmp_path, {INIT: INIT_SQL, "20250102000000_two": text})
    assert run(["up"], project=root, url=pg_url).exit_code == 4  # statement 2: type nope
    # as if the run had died right after statement 1 completed, before its 'done' entry
    sql(
        pg_url,
        "DELETE FROM backout.journal WHERE (entry = 'done' AND statement_index = 1) "
        "OR statement_index = 2",
    )
    migration = root / "prisma/migrations/20250102000000_two/migration.sql"
    migration.write_text(text.replace("nope", "int"))
    plan = run(["rollback", "--resume", "--dry-run"], project=root, url=pg_url)
    assert "took effect" in plan.stdout and "did not take effect" not in plan.stdout, plan.stdout
    resumed = run(["rollback", "--resume", "--yes"], project=root, url=pg_url)
    assert resumed.exit_code == 0, resumed.stderr
    assert sql(pg_url, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'") == [(1,)]
    assert run(["status"], project=root, url=pg_url).exit_code == 0


def test_create_index_concurrently_retried_after_a_lock_timeout(
    tmp_path: Path, pg_url: str
) -> None:
    """CREATE INDEX CONCURRENTLY waits for writers on the table after it has put its (still
    invalid) index in the catalog: a lock timeout there leaves the index behind. The retry
    must remove it first, or it fails on the name (42P07) instead of building the index."""
    import threading

    import psycopg

    root = project(tmp_path, {INIT: INIT_SQL, "20250102000000_idx": CONCURRENTLY})
    assert run(["up", "--to", INIT], project=root, url=pg_url).exit_code == 0
    writer = psycopg.connect(pg_url.split("?", maxsplit=1)[0])
    writer.execute("INSERT INTO \"User\" (email) VALUES ('w@x')")  # open: holds its lock
    timer = threading.Timer(2.5, writer.commit)
    timer.start()
    try:
        result = run(["up", "--lock-timeout", "1s"], project=root, url=pg_url)
    finally:
        timer.join()
        writer.close()
    assert result.exit_code == 0, result.stderr
    valid = sql(
        pg_url,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = 'User_email_idx'",
    )
    assert valid == [(True,)]
    assert run(["status"], project=root, url=pg_url).exit_code == 0
