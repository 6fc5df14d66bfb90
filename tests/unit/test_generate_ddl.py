"""Rollback drafts from two snapshots, without a database: statement order, enum rebuilds,
renames, SQLite rebuilds, and the directive header."""

from __future__ import annotations

from typing import Any

from backout.dialects.ddl_base import Draft, Rename
from backout.dialects.postgres.ddl import draft_rollback as pg_draft
from backout.dialects.postgres.ddl import rename_back as pg_rename
from backout.dialects.sqlite.ddl import draft_rollback as sqlite_draft
from backout.dialects.sqlite.ddl import rename_back as sqlite_rename
from backout.generate.draft import _directive, lasting_renames
from backout.model.schema import (
    ColumnInfo,
    ConstraintInfo,
    EnumInfo,
    ForeignKeyInfo,
    IndexInfo,
    SchemaSnapshot,
    TableInfo,
)
from backout.model.script import scan_directives


def col(name: str, position: int, type_: str = "integer", **kw: Any) -> ColumnInfo:
    return ColumnInfo(name=name, position=position, type=type_, **kw)


def pk(table: str, *columns: str) -> ConstraintInfo:
    return ConstraintInfo("primary_key", f"{table}_pkey", columns, f"PRIMARY KEY ({columns[0]})")


def table(name: str, *columns: ColumnInfo, fks: tuple[ForeignKeyInfo, ...] = ()) -> TableInfo:
    return TableInfo(
        schema="public", name=name, columns=columns, constraints=(pk(name, "id"),), foreign_keys=fks
    )


def pg(**kw: Any) -> SchemaSnapshot:
    return SchemaSnapshot.build("postgresql", default_schema="public", schemas=["public"], **kw)


def fk(name: str, column: str, target: str) -> ForeignKeyInfo:
    return ForeignKeyInfo(
        name=name,
        columns=(column,),
        referenced_table=f"public.{target}",
        referenced_columns=("id",),
        definition=f"FOREIGN KEY ({column}) REFERENCES {target}(id)",
    )


def statements(draft: Draft) -> list[str]:
    return [step.sql for step in draft.steps]


USERS = table("users", col("id", 1), col("email", 2, "text", nullable=False))


def test_new_tables_are_dropped_children_first_then_their_enum() -> None:
    status = EnumInfo("public", "status", ("a", "b"))
    orders = table("orders", col("id", 1), col("user_id", 2), fks=(fk("o_fk", "user_id", "users"),))
    lines = table(
        "lines", col("id", 1), col("order_id", 2), fks=(fk("l_fk", "order_id", "orders"),)
    )
    draft = pg_draft(pg(tables=[USERS]), pg(tables=[USERS, orders, lines], enums=[status]))
    assert statements(draft) == ['DROP TABLE "lines"', 'DROP TABLE "orders"', 'DROP TYPE "status"']
    assert draft.data_loss == ['Every row of "lines", "orders"']


def test_enum_that_gained_a_value_is_rebuilt_with_a_require() -> None:
    before_enum = EnumInfo("public", "status", ("a", "b"))
    after_enum = EnumInfo("public", "status", ("a", "b", "c"))
    column = col("state", 2, '"status"', default="'a'::\"status\"")
    things = table("things", col("id", 1), column)
    draft = pg_draft(
        pg(tables=[things], enums=[before_enum]), pg(tables=[things], enums=[after_enum])
    )
    assert statements(draft) == [
        'ALTER TYPE "status" RENAME TO "status_backout_old"',
        "CREATE TYPE \"status\" AS ENUM ('a', 'b')",
        'ALTER TABLE "things" ALTER COLUMN "state" DROP DEFAULT',
        'ALTER TABLE "things" ALTER COLUMN "state" TYPE "status" USING "state"::text::"status"',
        'ALTER TABLE "things" ALTER COLUMN "state" SET DEFAULT \'a\'::"status"',
        'DROP TYPE "status_backout_old"',
    ]
    assert draft.requires == [
        'SELECT NOT EXISTS (SELECT 1 FROM "things" WHERE "state"::text IN (\'c\'))'
    ]


def test_enum_that_lost_a_value_gets_it_back_in_place() -> None:
    before_enum = EnumInfo("public", "status", ("a", "b", "c"))
    after_enum = EnumInfo("public", "status", ("a", "c"))
    draft = pg_draft(pg(enums=[before_enum]), pg(enums=[after_enum]))
    assert statements(draft) == ["ALTER TYPE \"status\" ADD VALUE 'b' AFTER 'a'"]


def test_dropped_column_comes_back_and_a_type_change_is_reverted() -> None:
    before = table("users", col("id", 1), col("email", 2, "text", nullable=False), col("n", 3))
    after = table("users", col("id", 1), col("email", 2, "character varying(10)", nullable=False))
    draft = pg_draft(pg(tables=[before]), pg(tables=[after]))
    assert statements(draft) == [
        'ALTER TABLE "users" ADD COLUMN "n" integer',
        'ALTER TABLE "users" ALTER COLUMN "email" TYPE text USING "email"::text',
    ]


def test_not_null_without_default_is_restored_but_flagged() -> None:
    before = table("users", col("id", 1), col("code", 2, "text", nullable=False))
    after = table("users", col("id", 1))
    draft = pg_draft(pg(tables=[before]), pg(tables=[after]))
    assert statements(draft) == [
        'ALTER TABLE "users" ADD COLUMN "code" text',
        'ALTER TABLE "users" ALTER COLUMN "code" SET NOT NULL',
    ]
    assert "fails while rows hold NULL" in draft.manual[0]


def test_dropped_index_and_table_come_back() -> None:
    index = IndexInfo(
        "public",
        "users_email_idx",
        "users",
        ("email",),
        definition="CREATE INDEX users_email_idx ON public.users USING btree (email)",
    )
    draft = pg_draft(pg(tables=[USERS], indexes=[index]), pg())
    assert statements(draft) == [
        'CREATE TABLE "users" (\n    "id" integer,\n    "email" text NOT NULL,\n'
        '    CONSTRAINT "users_pkey" PRIMARY KEY (id)\n)',
        "CREATE INDEX users_email_idx ON public.users USING btree (email)",
    ]
    assert draft.manual == ['"users" come back empty: restore their rows from a backup']


def test_rename_statements() -> None:
    assert pg_rename(Rename("column", None, "t", "a", "b")) == (
        'ALTER TABLE "t" RENAME COLUMN "b" TO "a"'
    )
    assert pg_rename(Rename("enum_value", None, "e", "x", "y")) == (
        "ALTER TYPE \"e\" RENAME VALUE 'y' TO 'x'"
    )
    assert pg_rename(Rename("index", "app", None, "i1", "i2")) == (
        'ALTER INDEX "app"."i2" RENAME TO "i1"'
    )
    assert sqlite_rename(Rename("table", None, None, "old", "new")) == (
        'ALTER TABLE "new" RENAME TO "old"'
    )
    assert sqlite_rename(Rename("index", None, None, "i1", "i2")) is None


def test_only_lasting_renames_are_undone() -> None:
    users = table("users", col("id", 1))
    people = table("people", col("id", 1))
    kept = Rename("table", None, None, "users", "people")
    step = Rename("table", None, None, "new_users", "users")  # a rebuild: not a real rename
    assert lasting_renames([kept, step], pg(tables=[users]), pg(tables=[people])) == [kept]


def sqlite_table(name: str, *columns: ColumnInfo) -> TableInfo:
    return TableInfo(schema=None, name=name, columns=columns)


def test_sqlite_rebuilds_from_the_stored_definition() -> None:
    before = sqlite_table("t", col("id", 1, "INTEGER"), col("v", 2, "INTEGER"))
    after = sqlite_table("t", col("id", 1, "INTEGER"), col("v", 2, "BIGINT"))
    definitions = {"table t": 'CREATE TABLE "t" ("id" INTEGER, "v" INTEGER)'}
    draft = sqlite_draft(
        SchemaSnapshot.build("sqlite", tables=[before]),
        SchemaSnapshot.build("sqlite", tables=[after]),
        definitions=definitions,
    )
    assert statements(draft) == [
        "PRAGMA foreign_keys = OFF",
        'CREATE TABLE "new_t" ("id" INTEGER, "v" INTEGER)',
        'INSERT INTO "new_t" ("id", "v") SELECT "id", "v" FROM "t"',
        'DROP TABLE "t"',
        'ALTER TABLE "new_t" RENAME TO "t"',
        "PRAGMA foreign_keys = ON",
    ]


def test_sqlite_added_column_is_dropped_in_place() -> None:
    before = sqlite_table("t", col("id", 1, "INTEGER"))
    after = sqlite_table("t", col("id", 1, "INTEGER"), col("v", 2, "TEXT"))
    draft = sqlite_draft(
        SchemaSnapshot.build("sqlite", tables=[before]),
        SchemaSnapshot.build("sqlite", tables=[after]),
        definitions={},
    )
    assert statements(draft) == ['ALTER TABLE "t" DROP COLUMN "v"']


def test_directives_wrap_and_parse_back() -> None:
    text = "Drops tables " + ", ".join(f'"table_{i}"' for i in range(20)) + ", created by it"
    lines = _directive("impact", text)
    assert len(lines) > 1 and all(len(line) <= 100 for line in lines)
    [parsed] = scan_directives("\n".join(lines) + "\n", "x.sql")
    assert parsed.name == "impact" and parsed.value == text
