"""Static effects analysis of SQLite scripts (backout.model.effects + dialects/sqlite_effects).

Golden files: every SQLite example script and every script of the hand-written corpus in
``tests/golden/effects/sqlite`` has its analysis written next to it (examples' goldens live
under ``tests/golden/effects/examples``). Regenerate with::

    BACKOUT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_effects_*.py

and review every changed line before committing it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from backout.dialects.sqlite.dialect import SqliteDialect
from backout.model.effects import Action, ObjectKind, ObjectRef, ScriptEffects
from backout.model.script import Statement

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
GOLDEN = REPO / "tests" / "golden" / "effects"
DIALECT = "sqlite"
UPDATE_GOLDEN = os.environ.get("BACKOUT_UPDATE_GOLDEN") == "1"
_PROVIDER = re.compile(r'datasource\s+\w+\s*\{[^}]*?provider\s*=\s*"(\w+)"', re.S)


# --- golden files -----------------------------------------------------------------------------


def example_dialect(script: Path) -> str:
    """The dialect of an example script, from its project's schema.prisma datasource."""
    project = script.relative_to(EXAMPLES).parts[0]
    schema = (EXAMPLES / project / "prisma" / "schema.prisma").read_text(encoding="utf-8")
    match = _PROVIDER.search(schema)
    assert match is not None, f"no datasource provider in {project}/prisma/schema.prisma"
    return match.group(1)


def golden_cases() -> list[tuple[Path, Path]]:
    """(script, golden file) pairs: the SQLite examples and the SQLite corpus."""
    scripts = list(EXAMPLES.glob("*/prisma/migrations/*/migration.sql"))
    scripts += list(EXAMPLES.glob("*/prisma/rollback/*.sql"))
    cases = [
        (script, GOLDEN / "examples" / script.relative_to(EXAMPLES).with_suffix(".effects.txt"))
        for script in sorted(scripts)
        if example_dialect(script) == DIALECT
    ]
    cases += [
        (script, script.with_suffix(".effects.txt"))
        for script in sorted((GOLDEN / DIALECT).glob("*.sql"))
    ]
    return cases


def split(script: Path) -> list[Statement]:
    """The script's statements, as backout splits them."""
    return SqliteDialect().split(script.read_text(encoding="utf-8"), script.name)


def render(script: Path, effects: ScriptEffects) -> str:
    """The golden text: one line per effect, then a summary."""
    rel = script.relative_to(REPO).as_posix()
    out = [
        f"# Effects of {rel} ({DIALECT}), as written by {Path(__file__).relative_to(REPO)}.",
        "# Regenerate: BACKOUT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_effects_*.py",
        *effects.lines(),
        "#",
        "# tables written: "
        + (", ".join(t.qualified_name for t in effects.tables_written()) or "none"),
        "# without WHERE: "
        + (", ".join(f"line {e.line}" for e in effects.dml_without_where()) or "none"),
        f"# needs review: {len({u.statement.index for u in effects.unknown})} statement(s)",
    ]
    return "\n".join(out) + "\n"


CASES = golden_cases()


@pytest.mark.parametrize(
    ("script", "golden"), CASES, ids=[str(s.relative_to(REPO)) for s, _g in CASES]
)
def test_golden(script: Path, golden: Path) -> None:
    actual = render(script, SqliteDialect().analyze(split(script)))
    if UPDATE_GOLDEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    rel = golden.relative_to(REPO)
    assert golden.exists(), f"{rel} is missing: run with BACKOUT_UPDATE_GOLDEN=1, then review it"
    assert actual == golden.read_text(encoding="utf-8"), f"{rel} differs from the analysis"


def test_golden_cover_the_sqlite_examples() -> None:
    scripts = {s.relative_to(REPO).as_posix() for s, _g in CASES}
    assert (
        "examples/vouchers-sqlite/prisma/rollback/20240315000000_add_voucher_system_rollback.sql"
        in scripts
    )
    assert len([s for s in scripts if s.startswith("tests/")]) >= 8


def test_no_orphan_golden_files() -> None:
    expected = {g for _s, g in CASES}
    present = set((GOLDEN / DIALECT).glob("*.effects.txt"))
    assert not present - expected, f"golden files without a script: {sorted(present - expected)}"


# --- focused tests ---------------------------------------------------------------------------


def run(sql: str) -> ScriptEffects:
    return SqliteDialect().analyze(SqliteDialect().split(sql, "test.sql"))


def one(sql: str) -> ScriptEffects:
    """Analyse one statement without the splitter (which rejects syntax errors itself)."""
    return SqliteDialect().analyze([Statement(sql=sql, line=1, index=1)])


def names(refs: tuple[ObjectRef, ...]) -> list[str]:
    return [r.name for r in refs]


def test_names_compare_case_insensitively_and_keep_their_spelling() -> None:
    effects = run('DELETE FROM Voucher; DELETE FROM "voucher"; DELETE FROM main.VOUCHER;')
    first, second, third = (e.target for e in effects.effects)
    assert first == second == third
    assert len({first, second, third}) == 1
    assert [t.name for t in (first, second, third)] == ["Voucher", "voucher", "VOUCHER"]
    assert third.schema is None  # main is the default database
    assert third.display == 'table "VOUCHER"'
    assert names(effects.tables_written()) == ["Voucher"]


def test_tables_written_for_the_sqlite_seed_rollbacks() -> None:
    rollback = EXAMPLES / "vouchers-sqlite/prisma/rollback"
    full = SqliteDialect().analyze(
        split(rollback / "20240315000000_add_voucher_system_rollback.sql")
    )
    assert names(full.tables_written()) == ["VoucherRedemption", "Voucher"]
    assert [e.target.name for e in full.dml_without_where()] == ["VoucherRedemption", "Voucher"]
    tokens = SqliteDialect().analyze(
        split(rollback / "20240315000000_add_voucher_system_rollback.reverse-tokens.sql"),
    )
    assert names(tokens.tables_written()) == ["UserTokenBalance", "TokenTransaction"]
    assert not tokens.dml_without_where()
    assert not full.unknown and not tokens.unknown


def test_prisma_table_redefinition_writes_only_the_old_table() -> None:
    effects = run(
        'CREATE TABLE "new_Voucher" ("id" TEXT NOT NULL PRIMARY KEY);'
        'INSERT INTO "new_Voucher" ("id") SELECT "id" FROM "Voucher";'
        'DROP TABLE "Voucher";'
        'ALTER TABLE "new_Voucher" RENAME TO "Voucher";'
        'CREATE INDEX "Voucher_id_idx" ON "Voucher"("id");'
    )
    assert names(effects.tables_written()) == ["Voucher"]
    (rename,) = [e for e in effects.effects if e.action is Action.RENAME]
    assert rename.renamed_to == ObjectRef(ObjectKind.TABLE, None, "voucher", case_insensitive=True)


def test_dml_without_where_and_conflict_clauses() -> None:
    effects = run(
        "DELETE FROM a; DELETE FROM b WHERE x = 1; UPDATE c SET x = 1;"
        "UPDATE OR IGNORE d SET x = 1 WHERE y = 2; REPLACE INTO e (x) VALUES (1);"
        "INSERT OR IGNORE INTO f (x) VALUES (1);"
    )
    assert [(e.action, e.target.name, e.has_where, e.destructive) for e in effects.effects] == [
        (Action.DELETE, "a", False, True),
        (Action.DELETE, "b", True, True),
        (Action.UPDATE, "c", False, True),
        (Action.UPDATE, "d", True, True),
        # REPLACE deletes the row it conflicts with
        (Action.INSERT, "e", None, True),
        (Action.INSERT, "f", None, False),
    ]
    assert [e.target.name for e in effects.dml_without_where()] == ["a", "c"]
    assert [e.detail for e in effects.effects][3:] == ["OR IGNORE", "OR REPLACE", "OR IGNORE"]


def test_update_from_reads_the_other_table() -> None:
    effects = run(
        'UPDATE "UserTokenBalance" AS utb SET "balance" = utb."balance" - tt."amount" '
        'FROM "TokenTransaction" tt WHERE utb."userId" = tt."userId";'
    )
    (update,) = effects.effects
    assert update.columns == ("balance",)
    assert names(update.references) == ["TokenTransaction"]


def test_sqlglot_command_fallback_needs_review(caplog: pytest.LogCaptureFixture) -> None:
    # valid SQLite that sqlglot cannot parse: it falls back to exp.Command
    with caplog.at_level(logging.WARNING):
        effects = one("CREATE TABLE pairs (a INTEGER, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID")
    assert not effects.effects
    (unknown,) = effects.unknown
    assert unknown.reason == "sqlglot could not parse it (fell back to a raw command)"
    # the library does not let sqlglot print its fallback warning
    assert not [r for r in caplog.records if "Command" in r.getMessage()]


def test_sqlglot_accepting_invalid_sql_is_no_validator() -> None:
    # sqlglot parses PostgreSQL's ALTER COLUMN ... TYPE as if SQLite had it; SQLite does not
    effects = one("ALTER TABLE t ALTER COLUMN c TYPE INTEGER")
    (unknown,) = effects.unknown
    assert unknown.reason.startswith("SQLite syntax error")
    # sqlglot parses this as a column with an alias
    (nonsense,) = one("FOO BAR").unknown
    assert nonsense.reason.startswith("SQLite syntax error")
    # and these as a column and an alias: they are maintenance and transaction control
    assert not one("REINDEX").effects and not one("REINDEX").unknown
    assert not one("SAVEPOINT a").effects and not one("SAVEPOINT a").unknown


def test_a_statement_sqlglot_rejects_needs_review() -> None:
    effects = one("CREATE TABLE t (a INTEGER PRIMARY KEY ON CONFLICT REPLACE)")
    (unknown,) = effects.unknown
    assert unknown.reason.startswith("sqlglot cannot parse it")


def test_create_trigger_is_read_from_its_head() -> None:
    effects = run(
        'CREATE TRIGGER IF NOT EXISTS voucher_touch AFTER UPDATE OF "code" ON main."Voucher" '
        'BEGIN DELETE FROM "VoucherCache"; END;'
    )
    (trigger,) = effects.effects
    assert trigger.action is Action.CREATE
    assert trigger.target == ObjectRef(ObjectKind.TRIGGER, None, "voucher_touch")
    assert trigger.table == ObjectRef(ObjectKind.TABLE, None, "voucher", case_insensitive=True)
    assert trigger.detail == 'AFTER UPDATE OF "code" ON "Voucher"'
    assert trigger.if_exists
    # the body runs on later updates, not now
    assert not [e for e in effects.effects if e.action is Action.DELETE]


def test_a_trigger_head_that_is_not_understood_needs_review() -> None:
    effects = one("CREATE TRIGGER tr /* why */ AFTER INSERT ON t BEGIN SELECT 1; END")
    (unknown,) = effects.unknown
    assert unknown.reason == "CREATE TRIGGER not understood"


def test_alter_table_forms() -> None:
    effects = run(
        'ALTER TABLE "Voucher" ADD COLUMN "orderId" TEXT REFERENCES "Order" ("id") '
        "ON DELETE SET NULL;"
        'ALTER TABLE "Voucher" DROP COLUMN "description";'
        'ALTER TABLE "Voucher" RENAME COLUMN "value" TO "amount";'
    )
    column, foreign_key, dropped, renamed = effects.effects
    assert column.target.display == 'column "Voucher"."orderId"'
    assert column.detail == "ADD COLUMN TEXT"
    assert foreign_key.target.kind is ObjectKind.FOREIGN_KEY
    assert foreign_key.on_delete == "SET NULL"
    assert names(foreign_key.references) == ["Order"]
    assert dropped.destructive and dropped.action is Action.DROP
    assert renamed.renamed_to is not None and renamed.renamed_to.name == "amount"


def test_pragmas() -> None:
    effects = run(
        "PRAGMA foreign_keys=OFF; PRAGMA foreign_key_check; PRAGMA table_info(t);"
        "PRAGMA journal_mode(WAL);"
    )
    assert [(e.action, e.target.display, e.detail) for e in effects.effects] == [
        (Action.OTHER, 'setting "foreign_keys"', "= OFF"),
        (Action.OTHER, 'setting "journal_mode"', "= WAL"),
    ]
    assert not effects.destructive()
    assert not effects.unknown


def test_foreign_keys_of_create_table() -> None:
    effects = run(
        'CREATE TABLE "VoucherRedemption" ("id" TEXT PRIMARY KEY, "voucherId" TEXT NOT NULL, '
        'CONSTRAINT "VoucherRedemption_voucherId_fkey" FOREIGN KEY ("voucherId") '
        'REFERENCES "Voucher" ("id") ON DELETE RESTRICT ON UPDATE CASCADE);'
    )
    table, foreign_key = effects.effects
    assert table.columns == ("id", "voucherId")
    assert names(table.references) == ["Voucher"]
    assert foreign_key.target.name == "VoucherRedemption_voucherId_fkey"
    assert foreign_key.on_delete == "RESTRICT"
    assert foreign_key.detail == (
        '("voucherId") → "Voucher"("id") ON DELETE RESTRICT ON UPDATE CASCADE'
    )


def test_schema_qualified_index_name_is_not_misread() -> None:
    # sqlglot alone reads CREATE INDEX main.i ON t as index "main" on table "i"
    effects = run('CREATE INDEX temp."Voucher_code_idx" ON "Voucher" ("code");')
    (index,) = effects.effects
    assert index.target == ObjectRef(
        ObjectKind.INDEX, "temp", "voucher_code_idx", case_insensitive=True
    )
    assert index.table == ObjectRef(ObjectKind.TABLE, "TEMP", "VOUCHER", case_insensitive=True)
    assert index.target.display == 'index "temp"."Voucher_code_idx"'
    assert index.columns == ("code",)


def test_indexed_by_is_not_a_table_read() -> None:
    (delete,) = run("DELETE FROM t INDEXED BY t_a_idx WHERE a = 1;").effects
    assert delete.references == ()
