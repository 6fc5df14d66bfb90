"""``backout generate``: drafts from the schema diff, written where the layout expects them, never
over an existing rollback without --force, and every draft passes ``backout test`` — on the
examples and on the corpus of realistic forward migrations in tests/corpus/migrations/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import backout.cli.rehearse  # noqa: F401  (registers check/test/generate)
from backout import api
from backout.model.script import Risk
from backout.project.config import load_config
from backout.project.layouts import load_project
from tests.helpers import REPO, copy_example, run, write

CORPUS = REPO / "tests" / "corpus" / "migrations"
VOUCHERS = "20240315000000_add_voucher_system"


def _rehearse_all(project: Path, url: str, *extra: str) -> dict[str, object]:
    result = run(["test", "--all", "--json", *extra], project=project, url=url)
    doc: dict[str, object] = json.loads(result.stdout)
    assert result.exit_code == (0 if doc["ok"] else 1)
    return doc


def test_generate_writes_a_draft_that_passes_test(tmp_path: Path, pg_url: str) -> None:
    project = copy_example("vouchers", tmp_path)
    target = project / "prisma/rollback" / f"{VOUCHERS}_rollback.sql"
    target.unlink()
    result = run(["generate", VOUCHERS], project=project, url=pg_url)
    assert result.exit_code == 0, result.output
    assert (
        f"Wrote prisma/rollback/{VOUCHERS}_rollback.sql (4 statement(s), computed risk HIGH)"
        in (result.output)
    )
    text = target.read_text()
    assert "-- backout:risk HIGH" in text
    assert '-- backout:impact Drops tables "Voucher", "VoucherRedemption"' in text
    assert 'DROP TABLE "VoucherRedemption";\n\nDROP TABLE "Voucher";' in text
    assert 'DROP TYPE "VoucherStatus";' in text and 'DROP TYPE "VoucherType";' in text
    migration = load_project(project).find(VOUCHERS)
    assert migration.down is not None and migration.down.directives.risk is Risk.HIGH
    doc = _rehearse_all(project, pg_url)
    assert doc["ok"] is True, doc


def test_never_overwrites_without_force(tmp_path: Path, pg_url: str) -> None:
    project = copy_example("vouchers", tmp_path)
    target = project / "prisma/rollback" / f"{VOUCHERS}_rollback.sql"
    original = target.read_text()
    refused = run(["generate", VOUCHERS], project=project, url=pg_url)
    assert refused.exit_code == 2
    assert f"a rollback already exists: prisma/rollback/{VOUCHERS}_rollback.sql" in refused.output
    assert target.read_text() == original
    shown = run(["generate", VOUCHERS, "--stdout"], project=project, url=pg_url)
    assert shown.exit_code == 0 and "-- backout:risk HIGH" in shown.output
    assert target.read_text() == original
    forced = run(["generate", VOUCHERS, "--force"], project=project, url=pg_url)
    assert forced.exit_code == 0
    assert "Overwrote" in forced.output and target.read_text() != original


def test_drafts_for_the_giftregistry_pass(tmp_path: Path, pg_url: str) -> None:
    project = copy_example("giftregistry", tmp_path)
    ids = ["20250720000000_encrypt_access_tokens", "20250720000002_fix_critical_schema_drift"]
    result = run(["generate", *ids, "--force"], project=project, url=pg_url)
    assert result.exit_code == 0, result.output
    drift = (project / "prisma/rollback" / f"{ids[1]}_rollback.sql").read_text()
    assert 'ALTER TABLE "registry_purchases" ADD COLUMN "registryId" text;' in drift
    assert '-- backout:manual Restore the values of "registry_purchases"."registryId"' in drift
    flat = " ".join(line.removeprefix("-- ") for line in drift.splitlines())
    assert (
        "TODO: prisma/migrations/20250720000002_fix_critical_schema_drift/migration.sql:32 "
        'updates rows of table "registry_purchases"' in flat
    )  # the backfill changes data, which a schema diff cannot undo
    tokens = (project / "prisma/rollback" / f"{ids[0]}_rollback.sql").read_text()
    assert 'SELECT NOT EXISTS (SELECT 1 FROM "sessions" WHERE "accessToken" IS NULL)' in tokens
    doc = _rehearse_all(project, pg_url)
    assert doc["ok"] is True, doc


def test_sqlite_draft_passes_with_synthetic_data(tmp_path: Path, sqlite_url: str) -> None:
    project = copy_example("vouchers-sqlite", tmp_path)
    result = run(["generate", VOUCHERS, "--force"], project=project, url=sqlite_url)
    assert result.exit_code == 0, result.output
    doc = _rehearse_all(project, sqlite_url, "--with-data")
    assert doc["ok"] is True, doc


def test_plain_layout_writes_the_down_file(tmp_path: Path, sqlite_url: str) -> None:
    project = write(
        tmp_path / "app",
        {
            "migrations/001_init.up.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);",
            "migrations/002_b.up.sql": "ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 0;",
        },
    )
    result = run(["generate", "002_b"], project=project, url=sqlite_url)
    assert result.exit_code == 0, result.output
    down = (project / "migrations/002_b.down.sql").read_text()
    assert 'ALTER TABLE "t" DROP COLUMN "b";' in down
    assert _rehearse_all(project, sqlite_url)["ok"] is True


def test_dbmate_layout_fills_the_down_section(tmp_path: Path, sqlite_url: str) -> None:
    project = write(
        tmp_path / "app",
        {
            "db/migrations/001_init.sql": """
                -- migrate:up
                CREATE TABLE t (id INTEGER PRIMARY KEY);

                -- migrate:down
            """,
            "db/migrations/002_index.sql": "-- migrate:up\nCREATE INDEX t_id ON t(id);\n",
        },
    )
    assert run(["up"], project=project, url=sqlite_url).exit_code == 0
    result = run(["generate", "002_index", "001_init"], project=project, url=sqlite_url)
    assert result.exit_code == 0, result.output
    text = (project / "db/migrations/002_index.sql").read_text()
    assert text.startswith("-- migrate:up\nCREATE INDEX t_id ON t(id);\n-- migrate:down\n")
    assert 'DROP INDEX "t_id";' in text
    status = json.loads(run(["status", "--json"], project=project, url=sqlite_url).stdout)
    assert [m["edited"] for m in status["migrations"]] == [False, False]
    assert all(m["rollback"] is not None for m in status["migrations"])
    assert _rehearse_all(project, sqlite_url)["ok"] is True


def _corpus_project(tmp_path: Path, flavour: str) -> Path:
    project = tmp_path / flavour
    shutil.copytree(CORPUS / flavour, project / "migrations")
    return project


@pytest.mark.parametrize("flavour", ["postgres", "sqlite"])
def test_corpus_drafts_pass_test(
    flavour: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        request.getfixturevalue("pg_url")
        if flavour == "postgres"
        else request.getfixturevalue("sqlite_url")
    )
    project = _corpus_project(tmp_path, flavour)
    config = load_config(project, url=url)
    migrations = load_project(project).migrations
    assert len(migrations) >= (30 if flavour == "postgres" else 12)
    drafts = api.generate(config, [m.id for m in migrations])
    assert [d.migration for d in drafts] == [m.id for m in migrations]
    for draft in drafts:
        assert draft.error is None, draft.text
        assert draft.residual == [], draft.text
    reordered = {d.migration for d in drafts if d.column_order}
    doc = _rehearse_all(project, url, "--strict-column-order")
    for entry in doc["migrations"]:
        kinds = {f["kind"] for f in entry["failures"]}
        if entry["id"] in reordered:
            assert kinds == {"column_order"}, entry
        else:
            assert entry["status"] == "passed", entry
    relaxed = _rehearse_all(project, url)
    assert relaxed["ok"] is True, relaxed
    # on PostgreSQL only the dropped middle column comes back elsewhere; SQLite rebuilds
    assert reordered == ({"011_drop_user_name"} if flavour == "postgres" else set())
