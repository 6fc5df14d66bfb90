"""``backout test``: rehearsals on throwaway copies with data. Deliberately broken rollbacks are
each caught with a precise message; the source database is never changed; the copy is always
dropped (Ctrl-C too)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import backout.cli.rehearse  # noqa: F401  (registers check/test/generate)
from backout import api
from backout.demo import sampledata
from backout.dialects.base import Actor
from backout.dialects.postgres.dialect import PostgresDialect
from backout.model.urls import DatabaseURL
from backout.project.config import load_config
from backout.rehearsal.report import RehearsalEvent
from tests.helpers import copy_example, db_state, run, sql, write

VOUCHERS = "20240315000000_add_voucher_system"
VOUCHERS_ROLLBACK = f"prisma/rollback/{VOUCHERS}_rollback.sql"


def rehearse(project: Path, url: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = run(["test", "--json", *args], project=project, url=url)
    assert result.output.strip(), result.output
    return result.exit_code, json.loads(result.stdout)


def messages(doc: dict[str, Any], migration: str) -> list[str]:
    entry = next(m for m in doc["migrations"] if m["id"] == migration)
    return [f["message"] for f in entry["failures"]]


@pytest.fixture
def scratches(monkeypatch: pytest.MonkeyPatch) -> list[DatabaseURL]:
    """Every scratch database PostgreSQL creates during the test."""
    created: list[DatabaseURL] = []
    original = PostgresDialect.scratch

    @contextmanager
    def spy(
        self: PostgresDialect,
        url: DatabaseURL,
        shadow: DatabaseURL | None,
        actor: Actor,
        **options: str,
    ) -> Iterator[DatabaseURL]:
        with original(self, url, shadow, actor, **options) as made:
            created.append(made)
            yield made

    monkeypatch.setattr(PostgresDialect, "scratch", spy)
    return created


def assert_dropped(pg_url: str, scratches: list[DatabaseURL]) -> None:
    assert scratches, "no scratch database was created"
    names = [s.database for s in scratches]
    left = sql(pg_url, "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,))
    assert left == []


@pytest.fixture
def vouchers_pg(tmp_path: Path, pg_url: str) -> Path:
    project = copy_example("vouchers", tmp_path)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    sampledata.fill("vouchers", pg_url, scale=60)
    return project


def edit(project: Path, rel: str, old: str, new: str) -> None:
    path = project / rel
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


# --- rehearsals that pass ----------------------------------------------------------------------


def test_copy_rehearsal_passes_and_leaves_the_source_alone(
    vouchers_pg: Path, pg_url: str, scratches: list[DatabaseURL]
) -> None:
    before = db_state(pg_url)
    code, doc = rehearse(vouchers_pg, pg_url)
    assert code == 0, doc
    assert doc["format"] == 1 and doc["mode"] == "copy" and doc["ok"] is True
    [entry] = doc["migrations"]
    assert entry["id"] == VOUCHERS
    assert entry["mode"] == "backward"
    assert entry["status"] == "passed"
    assert db_state(pg_url) == before
    assert_dropped(pg_url, scratches)


def test_all_walks_every_migration_on_an_empty_database(vouchers_pg: Path, pg_url: str) -> None:
    result = run(["test", "--all"], project=vouchers_pg, url=pg_url)
    assert result.exit_code == 0, result.output
    assert "20240101000000_init" in result.output and "no rollback" in result.output
    assert "All rehearsals passed: 1 no rollback, 1 passed" in result.output


def test_pending_migrations_are_rehearsed_forward_on_data(tmp_path: Path, pg_url: str) -> None:
    project = copy_example("giftregistry", tmp_path)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    sampledata.fill("giftregistry", pg_url, scale=30)
    down = run(
        ["rollback", "--steps", "2", "--yes", "--backup", "none", "--i-accept-data-loss"],
        project=project,
        url=pg_url,
    )
    assert down.exit_code == 0, down.output
    before = db_state(pg_url)
    code, doc = rehearse(project, pg_url)
    assert code == 0, doc
    assert [(m["id"], m["mode"], m["status"]) for m in doc["migrations"]] == [
        ("20250720000000_encrypt_access_tokens", "forward", "passed"),
        ("20250720000002_fix_critical_schema_drift", "forward", "passed"),
    ]
    assert db_state(pg_url) == before


# --- deliberately broken rollbacks, each with a precise message --------------------------------


def test_forgotten_enum_type(vouchers_pg: Path, pg_url: str) -> None:
    edit(vouchers_pg, VOUCHERS_ROLLBACK, 'DROP TYPE IF EXISTS "VoucherType";', "")
    before = db_state(pg_url)
    code, doc = rehearse(vouchers_pg, pg_url)
    assert code == 1
    found = messages(doc, VOUCHERS)
    assert 'enum "VoucherType" left behind by the rollback' in found
    assert any("re-applying" in m and 'type "VoucherType" already exists' in m for m in found)
    assert db_state(pg_url) == before


DROP_INDEX = {
    "prisma/migrations/20240401000000_drop_source_index/migration.sql": """
        DROP INDEX "TokenTransaction_source_createdAt_idx";
    """,
    "prisma/rollback/20240401000000_drop_source_index_rollback.sql": """
        -- backout:risk LOW
        CREATE INDEX IF NOT EXISTS "TokenTransaction_userId_idx" ON "TokenTransaction"("userId");
    """,
}


def test_forgotten_index(vouchers_pg: Path, pg_url: str) -> None:
    write(vouchers_pg, DROP_INDEX)  # pending: rehearsed forward
    code, doc = rehearse(vouchers_pg, pg_url)
    assert code == 1
    found = messages(doc, "20240401000000_drop_source_index")
    assert found[0] == 'index "TokenTransaction_source_createdAt_idx" missing after rollback'
    # and the re-apply trips over it
    assert found[1].startswith("re-applying 20240401000000_drop_source_index after its rollback")


WRONG_TYPE = {
    "prisma/migrations/20240402000000_drop_description/migration.sql": """
        ALTER TABLE "TokenTransaction" DROP COLUMN "description";
    """,
    "prisma/rollback/20240402000000_drop_description_rollback.sql": """
        -- backout:risk LOW
        ALTER TABLE "TokenTransaction" ADD COLUMN "description" varchar(100);
    """,
}


def test_column_recreated_with_the_wrong_type(vouchers_pg: Path, pg_url: str) -> None:
    write(vouchers_pg, WRONG_TYPE)
    code, doc = rehearse(vouchers_pg, pg_url, "--ignore-column-order")
    assert code == 1
    assert messages(doc, "20240402000000_drop_description") == [
        'column "TokenTransaction"."description" came back as character varying(100), was text'
    ]


def test_rollback_deleting_unrelated_rows(vouchers_pg: Path, pg_url: str) -> None:
    edit(
        vouchers_pg,
        VOUCHERS_ROLLBACK,
        'DELETE FROM "Voucher";',
        'DELETE FROM "Voucher";\n\nDELETE FROM "UserTokenBalance" WHERE "id" IN '
        '(SELECT "id" FROM "UserTokenBalance" ORDER BY "id" LIMIT 3);',
    )
    rows = sql(pg_url, 'SELECT count(*) FROM "UserTokenBalance"')[0][0]
    code, doc = rehearse(vouchers_pg, pg_url)
    assert code == 1
    assert messages(doc, VOUCHERS) == [
        f'3 rows of table "UserTokenBalance" were deleted although {VOUCHERS} does not touch it '
        f"({rows} → {rows - 3} rows)"
    ]


ORPHANS = {
    "prisma/migrations/20240403000000_amount_index/migration.sql": """
        CREATE INDEX "TokenTransaction_amount_idx" ON "TokenTransaction"("amount");
    """,
    "prisma/rollback/20240403000000_amount_index_rollback.sql": """
        -- backout:risk HIGH
        -- backout:data-loss Users without a balance ("User")
        DROP INDEX "TokenTransaction_amount_idx";
        ALTER TABLE "TokenTransaction" DROP CONSTRAINT "TokenTransaction_userId_fkey";
        DELETE FROM "User" WHERE "id" IN
            (SELECT "userId" FROM "TokenTransaction" ORDER BY "id" LIMIT 2);
        ALTER TABLE "TokenTransaction" ADD CONSTRAINT "TokenTransaction_userId_fkey"
            FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE
            NOT VALID;
    """,
}


def test_rollback_leaving_orphans(vouchers_pg: Path, pg_url: str) -> None:
    write(vouchers_pg, ORPHANS)
    code, doc = rehearse(vouchers_pg, pg_url)
    assert code == 1
    found = messages(doc, "20240403000000_amount_index")
    orphaned = [m for m in found if "point to no row of" in m]
    assert len(orphaned) == 1
    assert orphaned[0].endswith(
        'point to no row of "User": "TokenTransaction"."userId" → "User"."id" '
        '(foreign key "TokenTransaction_userId_fkey", NOT VALID) after the rollback; e.g. '
        + orphaned[0].split("; e.g. ")[1]
    )
    assert any("changed validation: VALID → NOT VALID" in m for m in found)


def test_sqlite_rollback_leaving_orphans_is_undone(tmp_path: Path, sqlite_url: str) -> None:
    project = copy_example("vouchers-sqlite", tmp_path)
    assert run(["up"], project=project, url=sqlite_url).exit_code == 0
    sampledata.fill("vouchers-sqlite", sqlite_url, scale=30)
    write(
        project,
        {
            "prisma/migrations/20240403000000_amount_index/migration.sql": """
                CREATE INDEX "TokenTransaction_amount_idx" ON "TokenTransaction"("amount");
            """,
            "prisma/rollback/20240403000000_amount_index_rollback.sql": """
                -- backout:risk HIGH
                PRAGMA foreign_keys = OFF;
                DROP INDEX "TokenTransaction_amount_idx";
                DELETE FROM "User" WHERE "id" IN (SELECT "userId" FROM "TokenTransaction" LIMIT 1);
                PRAGMA foreign_keys = ON;
            """,
        },
    )
    code, doc = rehearse(project, sqlite_url)
    assert code == 1
    [message] = messages(doc, "20240403000000_amount_index")
    assert message.startswith("the rollback failed: integrity check failed before commit: row ")
    assert "points to a missing row of User through" in message


# --- options ------------------------------------------------------------------------------------


def test_column_order_is_a_note_unless_strict(vouchers_pg: Path, pg_url: str) -> None:
    write(
        vouchers_pg,
        {
            **WRONG_TYPE,
            "prisma/rollback/20240402000000_drop_description_rollback.sql": """
                -- backout:risk LOW
                ALTER TABLE "TokenTransaction" ADD COLUMN "description" text;
            """,
        },
    )
    code, doc = rehearse(vouchers_pg, pg_url, "--strict-column-order")
    assert code == 1
    [message] = messages(doc, "20240402000000_drop_description")
    assert message == (
        'table "TokenTransaction" changed column order: (id, userId, amount, source, '
        "description, createdAt) → (id, userId, amount, source, createdAt, description) after "
        "the rollback"
    )
    assert doc["migrations"][0]["failures"][0]["kind"] == "column_order"
    code, doc = rehearse(vouchers_pg, pg_url)
    assert code == 0, doc
    assert doc["migrations"][0]["status"] == "passed"
    assert doc["migrations"][0]["notes"][0].startswith(message + " (a note: ")
    assert "--strict-column-order fails on it" in doc["migrations"][0]["notes"][0]


def test_pg_dump_sees_what_the_catalog_snapshot_does_not(vouchers_pg: Path, pg_url: str) -> None:
    write(
        vouchers_pg,
        {
            "prisma/migrations/20240404000000_email_statistics/migration.sql": """
                ALTER TABLE "User" ALTER COLUMN "email" SET STATISTICS 500;
            """,
            "prisma/rollback/20240404000000_email_statistics_rollback.sql": """
                -- backout:risk NONE
                COMMENT ON TABLE "User" IS NULL;
            """,
        },
    )
    code, doc = rehearse(vouchers_pg, pg_url)
    assert code == 1
    [failure] = doc["migrations"][0]["failures"]
    assert failure["kind"] == "dump"
    assert failure["message"].startswith("pg_dump --schema-only differs after the rollback: ")
    assert "SET STATISTICS 500" in failure["message"]


def test_smoke_hook_runs_against_the_copy(vouchers_pg: Path, pg_url: str, tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    (vouchers_pg / "backout.toml").write_text(
        f'[hooks]\nsmoke = "echo $DATABASE_URL > {seen}"\n'
        'after_rollback = "echo must-not-run >&2; exit 9"\n'
    )
    code, doc = rehearse(vouchers_pg, pg_url)
    assert code == 0, doc
    copy = seen.read_text().strip()
    assert copy.startswith(pg_url.rsplit("/", 1)[0] + "/backout_scratch_")
    assert doc["migrations"][0]["smoke"]["ok"] is True
    (vouchers_pg / "backout.toml").write_text('[hooks]\nsmoke = "echo unhealthy; exit 3"\n')
    code, doc = rehearse(vouchers_pg, pg_url)
    assert code == 1
    assert messages(doc, VOUCHERS) == [
        "hook smoke exited 3: echo unhealthy; exit 3: unhealthy (DATABASE_URL: the copy)"
    ]


def test_from_url_copies_another_database(vouchers_pg: Path, pg_url: str, tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'nothing.db'}"
    result = run(["test", "--from", pg_url], project=vouchers_pg, url=pg_url)
    assert result.exit_code == 0, result.output
    wrong = run(["test", "--from", missing], project=vouchers_pg, url=pg_url)
    assert wrong.exit_code == 2
    assert "is sqlite, but the project's database is postgresql" in wrong.output


def test_interrupted_rehearsal_drops_the_copy(
    vouchers_pg: Path, pg_url: str, scratches: list[DatabaseURL]
) -> None:
    def interrupt(event: RehearsalEvent) -> None:
        if event.kind == "step" and event.text.startswith("rolling back"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.test(load_config(vouchers_pg, url=pg_url), progress=interrupt)
    assert_dropped(pg_url, scratches)


def test_usage_errors(vouchers_pg: Path, pg_url: str) -> None:
    both = run(["test", "--all", VOUCHERS], project=vouchers_pg, url=pg_url)
    assert both.exit_code == 2 and "give no ID or --from" in both.output
    data = run(["test", "--with-data"], project=vouchers_pg, url=pg_url)
    assert data.exit_code == 2 and "--with-data" in data.output
    unknown = run(["test", "20990101_nope"], project=vouchers_pg, url=pg_url)
    assert unknown.exit_code == 2 and "unknown migration" in unknown.output


def test_named_migration_without_rollback_fails(vouchers_pg: Path, pg_url: str) -> None:
    code, doc = rehearse(vouchers_pg, pg_url, "20240101000000_init")
    assert code == 1
    # the newer migration is rolled back first (setup), then init has nothing to rehearse
    assert messages(doc, "20240101000000_init") == [
        "20240101000000_init has no rollback script: nothing to rehearse"
    ]


def test_sqlite_all_with_synthetic_data(tmp_path: Path, sqlite_url: str) -> None:
    project = copy_example("vouchers-sqlite", tmp_path)
    result = run(["test", "--all", "--with-data"], project=project, url=sqlite_url)
    assert result.exit_code == 0, result.output
    broken = project / VOUCHERS_ROLLBACK
    broken.write_text(
        broken.read_text().replace(
            'DELETE FROM "Voucher";', 'DELETE FROM "Voucher";\nDELETE FROM "UserTokenBalance";'
        )
    )
    code, doc = rehearse(project, sqlite_url, "--all", "--with-data")
    assert code == 1
    assert messages(doc, VOUCHERS) == [
        f'20 rows of table "UserTokenBalance" were deleted although {VOUCHERS} does not touch '
        "it (20 → 0 rows)"
    ]
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # --all never creates it


def test_missing_pg_dump_skips_only_the_dump_comparison(
    vouchers_pg: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backout.dialects.postgres import tools as pg_tools
    from backout.model.errors import ToolMissing

    def missing(server: pg_tools.Version) -> pg_tools.PgTools:
        raise ToolMissing(f"pg_dump {server[0]} or newer is needed")

    monkeypatch.setattr(pg_tools, "find_tools", missing)
    code, doc = rehearse(vouchers_pg, pg_url, "--all")
    assert code == 0, doc
    [note] = doc["notes"]
    assert note.startswith("the schema dump comparison was skipped: pg_dump ")
    assert note.endswith(" or newer is needed")
