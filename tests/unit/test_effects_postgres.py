"""Static effects analysis of PostgreSQL scripts (backout.model.effects + dialects/pg_effects).

Golden files: every PostgreSQL example script and every script of the hand-written corpus in
``tests/golden/effects/postgresql`` has its analysis written next to it (examples' goldens live
under ``tests/golden/effects/examples``). Regenerate with::

    BACKOUT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_effects_*.py

and review every changed line before committing it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from backout.dialects.mysql.dialect import MysqlDialect
from backout.dialects.postgres.dialect import PostgresDialect
from backout.model.effects import (
    Action,
    ObjectKind,
    ObjectRef,
    ScriptEffects,
    Unknown,
)
from backout.model.errors import ProjectError
from backout.model.script import Statement

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
GOLDEN = REPO / "tests" / "golden" / "effects"
DIALECT = "postgresql"
UPDATE_GOLDEN = os.environ.get("BACKOUT_UPDATE_GOLDEN") == "1"
_PROVIDER = re.compile(r'datasource\s+\w+\s*\{[^}]*?provider\s*=\s*"(\w+)"', re.S)
_NAMED_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


# --- golden files -----------------------------------------------------------------------------


def example_dialect(script: Path) -> str:
    """The dialect of an example script, from its project's schema.prisma datasource."""
    project = script.relative_to(EXAMPLES).parts[0]
    schema = (EXAMPLES / project / "prisma" / "schema.prisma").read_text(encoding="utf-8")
    match = _PROVIDER.search(schema)
    assert match is not None, f"no datasource provider in {project}/prisma/schema.prisma"
    return match.group(1)


def example_scripts() -> list[Path]:
    """Every forward migration and rollback script of the examples."""
    found = list(EXAMPLES.glob("*/prisma/migrations/*/migration.sql"))
    found += list(EXAMPLES.glob("*/prisma/rollback/*.sql"))
    return sorted(found)


def golden_cases(dialect: str) -> list[tuple[Path, Path]]:
    """(script, golden file) pairs for one dialect: the examples and the corpus."""
    cases = [
        (script, GOLDEN / "examples" / script.relative_to(EXAMPLES).with_suffix(".effects.txt"))
        for script in example_scripts()
        if example_dialect(script) == dialect
    ]
    cases += [
        (script, script.with_suffix(".effects.txt"))
        for script in sorted((GOLDEN / dialect).glob("*.sql"))
    ]
    return cases


def split(script: Path) -> list[Statement]:
    """The script's statements, as backout splits them.

    PostgreSQL's splitter rejects backout's ``:name`` parameters; like the runner, bind them
    (here: to positional placeholders) before splitting.
    """
    text = script.read_text(encoding="utf-8")
    try:
        return PostgresDialect().split(text, script.name)
    except ProjectError:
        if not _NAMED_PARAM.search(text):
            raise
        return PostgresDialect().split(_NAMED_PARAM.sub("$1", text), script.name)


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


def check_golden(script: Path, golden: Path) -> None:
    """Compare (or, with BACKOUT_UPDATE_GOLDEN=1, rewrite) one golden file."""
    actual = render(script, PostgresDialect().analyze(split(script)))
    if UPDATE_GOLDEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    rel = golden.relative_to(REPO)
    assert golden.exists(), f"{rel} is missing: run with BACKOUT_UPDATE_GOLDEN=1, then review it"
    assert actual == golden.read_text(encoding="utf-8"), f"{rel} differs from the analysis"


CASES = golden_cases(DIALECT)


@pytest.mark.parametrize(
    ("script", "golden"), CASES, ids=[str(s.relative_to(REPO)) for s, _g in CASES]
)
def test_golden(script: Path, golden: Path) -> None:
    check_golden(script, golden)


def test_golden_cover_examples_seeds_and_corpus() -> None:
    scripts = {s.relative_to(REPO).as_posix() for s, _g in CASES}
    # both seeds' rollbacks are among the examples
    assert "examples/vouchers/prisma/rollback/20240315000000_add_voucher_system_rollback.sql" in (
        scripts
    )
    assert any("giftregistry/prisma/rollback/20250720000002" in s for s in scripts)
    corpus = list((GOLDEN / "postgresql").glob("*.sql")) + list((GOLDEN / "sqlite").glob("*.sql"))
    assert len(corpus) >= 25


def test_no_orphan_golden_files() -> None:
    expected = {g for s, g in golden_cases("postgresql") + golden_cases("sqlite")}
    present = set((GOLDEN / "examples").rglob("*.effects.txt"))
    present |= set((GOLDEN / "postgresql").glob("*.effects.txt"))
    assert not present - expected, f"golden files without a script: {sorted(present - expected)}"


# --- focused tests ---------------------------------------------------------------------------


def run(sql: str) -> ScriptEffects:
    return PostgresDialect().analyze(PostgresDialect().split(sql, "test.sql"))


def example(rel: str) -> ScriptEffects:
    return PostgresDialect().analyze(split(EXAMPLES / rel))


def names(refs: tuple[ObjectRef, ...]) -> list[str]:
    return [r.name for r in refs]


def test_unquoted_names_fold_to_lower_case_quoted_keep_theirs() -> None:
    effects = run('DROP TABLE Voucher; DROP TABLE "Voucher"; DROP TABLE VOUCHER;')
    first, second, third = (e.target for e in effects.effects)
    assert (first.name, second.name, third.name) == ("voucher", "Voucher", "voucher")
    assert first == third
    assert first != second
    assert second.display == 'table "Voucher"'


def test_schema_qualified_names() -> None:
    effects = run('ALTER TABLE Billing."Invoice" ADD COLUMN Total numeric;')
    (effect,) = effects.effects
    assert effect.target == ObjectRef(ObjectKind.COLUMN, "billing", "total", "Invoice")
    assert effect.target.display == 'column "billing"."Invoice"."total"'
    assert effect.table == ObjectRef(ObjectKind.TABLE, "billing", "Invoice")


def test_tables_written_for_the_vouchers_seed_rollback() -> None:
    effects = example("vouchers/prisma/rollback/20240315000000_add_voucher_system_rollback.sql")
    assert names(effects.tables_written()) == ["VoucherRedemption", "Voucher"]
    assert not effects.unknown


def test_tables_written_for_the_giftregistry_seed_rollbacks() -> None:
    drift = example(
        "giftregistry/prisma/rollback/20250720000002_fix_critical_schema_drift_rollback.sql"
    )
    assert names(drift.tables_written()) == [
        "registry_purchases",
        "group_gift_contributions",
        "registry_invitations",
        "registry_addresses",
        "metafield_syncs",
        "sessions",
    ]
    tokens = example(
        "giftregistry/prisma/rollback/20250720000000_encrypt_access_tokens_rollback.sql"
    )
    assert names(tokens.tables_written()) == ["sessions", "security_audit", "registries"]


def test_tables_written_for_the_partial_rollbacks_include_tables_only_read_elsewhere() -> None:
    effects = example(
        "vouchers/prisma/rollback/20240315000000_add_voucher_system_rollback.clear-data.sql"
    )
    assert names(effects.tables_written()) == [
        "UserTokenBalance",
        "TokenTransaction",
        "VoucherRedemption",
        "Voucher",
    ]
    (update, *_rest) = effects.effects
    assert names(update.references) == ["TokenTransaction"]


def test_tables_written_leaves_out_tables_the_script_creates() -> None:
    effects = run(
        "CREATE TABLE fresh (id int); INSERT INTO fresh VALUES (1);"
        "CREATE INDEX ON fresh (id); ALTER TABLE fresh RENAME TO renamed;"
        "INSERT INTO renamed VALUES (2); DELETE FROM old WHERE id = 1;"
        "CREATE TABLE IF NOT EXISTS maybe (id int); INSERT INTO maybe VALUES (1);"
    )
    assert names(effects.tables_written()) == ["old", "maybe"]


def test_dml_without_where_is_detected() -> None:
    effects = run(
        'DELETE FROM "VoucherRedemption";'
        """DELETE FROM "TokenTransaction" WHERE "source" = 'voucher_redemption';"""
        'UPDATE "Voucher" SET "currentUses" = 0;'
        """UPDATE "Voucher" SET "status" = 'ACTIVE' WHERE "id" = '1';"""
        "INSERT INTO t VALUES (1);"
    )
    flagged = effects.dml_without_where()
    assert [(e.action, e.target.name) for e in flagged] == [
        (Action.DELETE, "VoucherRedemption"),
        (Action.UPDATE, "Voucher"),
    ]
    assert [e.has_where for e in effects.effects] == [False, True, False, True, None]


def test_update_from_records_set_columns_and_tables_read() -> None:
    effects = run(
        'UPDATE "UserTokenBalance" utb SET "balance" = utb."balance" - tt."amount", '
        '"updatedAt" = now() FROM "TokenTransaction" tt WHERE utb."userId" = tt."userId";'
    )
    (update,) = effects.effects
    assert update.columns == ("balance", "updatedAt")
    assert names(update.references) == ["TokenTransaction"]
    assert update.has_where is True
    assert update.destructive


def test_cascade_flags() -> None:
    effects = run(
        "DROP TABLE a CASCADE; DROP TABLE b; TRUNCATE c CASCADE;"
        "ALTER TABLE d DROP COLUMN e CASCADE; ALTER TABLE d DROP CONSTRAINT f CASCADE;"
        "DROP SCHEMA s CASCADE; DROP SCHEMA t;"
    )
    assert [(e.target.name, e.cascade) for e in effects.effects] == [
        ("a", True),
        ("b", False),
        ("c", True),
        ("e", True),
        ("f", True),
        ("s", True),
        ("t", False),
    ]
    # a cascade from a schema takes its tables; one from a constraint only other constraints
    assert [e.target.name for e in effects.destructive()] == ["a", "b", "c", "e", "s"]


def test_drop_if_exists_with_several_names() -> None:
    effects = run('DROP TABLE IF EXISTS "A", public.b;')
    assert [(e.target.schema, e.target.name, e.if_exists) for e in effects.effects] == [
        (None, "A", True),
        ("public", "b", True),
    ]


def test_alter_column_type_is_destructive_and_not_null_changes_are_not() -> None:
    effects = run(
        "ALTER TABLE t ALTER COLUMN a TYPE bigint USING a::bigint,"
        " ALTER COLUMN b SET NOT NULL, ALTER COLUMN c DROP NOT NULL, ALTER COLUMN d DROP DEFAULT;"
    )
    details = [(e.target.name, e.detail, e.destructive) for e in effects.effects]
    assert details == [
        ("a", "type → bigint USING CAST(a AS bigint)", True),
        ("b", "SET NOT NULL", False),
        ("c", "DROP NOT NULL", False),
        ("d", "DROP DEFAULT", False),
    ]


def test_enum_value_added_and_enum_matches_type() -> None:
    effects = run(
        """CREATE TYPE "VoucherType" AS ENUM ('TOKENS');"""
        """ALTER TYPE "VoucherType" ADD VALUE IF NOT EXISTS 'GIFT' AFTER 'TOKENS';"""
        """DROP TYPE "VoucherType";"""
    )
    (added,) = effects.created(ObjectKind.ENUM_VALUE)
    assert added.target == ObjectRef(ObjectKind.ENUM_VALUE, None, "GIFT", "VoucherType")
    assert added.detail == "ADD VALUE 'GIFT' AFTER 'TOKENS'"
    assert added.if_exists
    assert not added.destructive
    assert added.target.display == """enum value 'GIFT' of "VoucherType\""""
    # a DROP TYPE cannot tell an enum from another type; they share one namespace
    (created,) = effects.created("enum")
    (dropped,) = effects.dropped("enum")
    assert created.target.kind is ObjectKind.ENUM
    assert dropped.target.kind is ObjectKind.TYPE
    assert created.target == dropped.target
    assert effects.dropped("type") == effects.dropped("enum")


def test_foreign_key_fields_and_default_constraint_names() -> None:
    effects = run(
        'ALTER TABLE "VoucherRedemption" ADD FOREIGN KEY ("voucherId") REFERENCES "Voucher"("id")'
        " ON DELETE CASCADE NOT VALID;"
        'ALTER TABLE "VoucherRedemption" DROP CONSTRAINT "VoucherRedemption_voucherId_fkey";'
    )
    added, dropped = effects.effects
    assert added.target.kind is ObjectKind.FOREIGN_KEY
    assert added.target.name == "VoucherRedemption_voucherId_fkey"
    assert added.target.parent == "VoucherRedemption"
    assert added.on_delete == "CASCADE"
    assert names(added.references) == ["Voucher"]
    assert added.detail.endswith("ON DELETE CASCADE NOT VALID")
    # a dropped constraint is the same object as the foreign key of that name
    assert dropped.target.kind is ObjectKind.CONSTRAINT
    assert dropped.target == added.target
    assert effects.dropped("foreign_key") == (dropped,)


def test_long_default_names_are_clipped_like_postgresql() -> None:
    table = "t" * 40
    effects = run(f"CREATE INDEX ON {table} ({'c' * 40});")
    (index,) = effects.effects
    # makeObjectName: 63 bytes, the longer part shortened first
    assert index.target.name == "t" * 29 + "_" + "c" * 29 + "_idx"
    assert len(index.target.name) == 63


def test_do_block_statements_are_analysed() -> None:
    effects = run(
        """
DO $$
BEGIN
    IF (SELECT count(*) FROM "Voucher") > 0 THEN
        DELETE FROM "VoucherRedemption";
        ALTER TABLE "Voucher" ADD COLUMN "note" text;
    END IF;
END
$$;
"""
    )
    assert [(e.action, e.target.display, e.context) for e in effects.effects] == [
        (Action.DELETE, 'table "VoucherRedemption"', "DO block"),
        (Action.CREATE, 'column "Voucher"."note"', "DO block"),
    ]
    assert not effects.unknown


def test_execute_in_a_do_block_needs_review() -> None:
    effects = run(
        "DO $$ BEGIN DELETE FROM a; EXECUTE 'DROP TABLE ' || quote_ident('b'); END $$;SELECT 1;"
    )
    (unknown,) = effects.unknown
    assert unknown == Unknown(unknown.statement, "dynamic EXECUTE in DO block")
    assert unknown.statement.index == 1
    assert unknown.describe() == "unknown: dynamic EXECUTE in DO block — needs review"
    assert effects.needs_review
    # the static statement next to it is still analysed
    assert [e.target.name for e in effects.effects] == ["a"]


def test_calls_run_the_body_of_a_function_the_script_defines() -> None:
    effects = run(
        "CREATE FUNCTION purge() RETURNS void LANGUAGE plpgsql AS $$"
        " BEGIN TRUNCATE audit; EXECUTE 'x'; END $$;"
        "SELECT purge(); SELECT mystery(); CALL elsewhere(); SELECT lower('X'), now();"
    )
    create, truncate = effects.effects
    assert create.action is Action.CREATE and create.target.kind is ObjectKind.FUNCTION
    assert truncate.action is Action.TRUNCATE
    assert truncate.statement.index == 2
    assert truncate.context == "function purge() called here"
    assert [(u.statement.index, u.reason) for u in effects.unknown] == [
        (2, "dynamic EXECUTE in function purge() called here"),
        (3, "calls mystery(), whose side effects are not analysed"),
        (4, "CALL elsewhere(): procedure body not in this script"),
    ]


def test_a_statement_the_parser_rejects_needs_review() -> None:
    statement = Statement(sql="DELET FROM t", line=3, index=1)
    effects = PostgresDialect().analyze([statement])
    assert not effects.effects
    (unknown,) = effects.unknown
    assert unknown.statement is statement
    assert unknown.reason.startswith("PostgreSQL cannot parse it: syntax error")


def test_unmodelled_statements_need_review() -> None:
    effects = run("CREATE POLICY p ON t USING (true); DROP OWNED BY r;")
    assert [u.reason for u in effects.unknown] == [
        "CREATE POLICY is not analysed",
        "DROP OWNED is not analysed",
    ]


def test_search_path_resolves_later_unqualified_names() -> None:
    effects = run("DROP TABLE a; SET search_path TO app, public; DROP TABLE b; RESET search_path;")
    drops = effects.dropped("table")
    assert [(e.target.schema, e.target.name) for e in drops] == [(None, "a"), ("app", "b")]
    assert effects.effects[1].target == ObjectRef(ObjectKind.SETTING, None, "search_path")


def test_named_parameters_are_tolerated() -> None:
    statement = Statement(
        sql="""DELETE FROM "TokenTransaction" WHERE "createdAt" > CAST(:since AS timestamptz)""",
        line=1,
        index=1,
    )
    effects = PostgresDialect().analyze([statement])
    (delete,) = effects.effects
    assert delete.has_where is True
    assert not effects.unknown


def test_forward_and_rollback_can_be_compared() -> None:
    forward = example("vouchers/prisma/migrations/20240315000000_add_voucher_system/migration.sql")
    rollback = example("vouchers/prisma/rollback/20240315000000_add_voucher_system_rollback.sql")
    for kind in ("table", "enum"):
        made = {e.target for e in forward.created(kind)}
        undone = {e.target for e in rollback.dropped(kind)}
        assert made == undone, kind
        assert made


def test_object_ref_display() -> None:
    assert ObjectRef(ObjectKind.COLUMN, None, "currentUses", "Voucher").display == (
        'column "Voucher"."currentUses"'
    )
    assert ObjectRef(ObjectKind.TABLE, "public", "Voucher").display == 'table "public"."Voucher"'
    assert ObjectRef(ObjectKind.FOREIGN_KEY, None, "fk", "T").display == 'foreign key "fk" on "T"'
    assert ObjectRef(ObjectKind.MATERIALIZED_VIEW, None, 'a"b').display == (
        'materialized view "a""b"'
    )
    assert ObjectRef(ObjectKind.TABLE, None, "T").in_schema("s").schema == "s"


def test_effect_describe_marks_flags() -> None:
    effects = run('DROP TABLE IF EXISTS "Voucher" CASCADE;')
    (effect,) = effects.effects
    assert effect.describe() == 'drop table "Voucher" [destructive, cascade, if-exists]'
    assert effects.lines() == ['1: drop table "Voucher" [destructive, cascade, if-exists]']


def test_mysql_statements_are_analysed_by_their_own_module() -> None:
    # (tests/unit/test_mysql_effects.py covers MySQL; here only the dispatch)
    statements = [Statement("DROP TABLE t", 1, 1), Statement("CALL p()", 2, 2)]
    effects = MysqlDialect().analyze(statements)
    assert [e.describe() for e in effects.effects] == ['drop table "t" [destructive]']
    assert [u.statement.index for u in effects.unknown] == [2]
