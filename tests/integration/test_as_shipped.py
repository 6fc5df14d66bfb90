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
