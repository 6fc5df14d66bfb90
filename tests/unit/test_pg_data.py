"""Rows a forward migration inserted, deleted by key only where the SQL alone says which."""

from __future__ import annotations

from backout.dialects.postgres.data import undo_inserts
from backout.model.schema import ColumnInfo, ConstraintInfo, SchemaSnapshot, TableInfo
from backout.model.script import Statement


def snapshot() -> SchemaSnapshot:
    pk = ConstraintInfo("primary_key", "Role_pkey", ("org", "name"), "PRIMARY KEY (org, name)")
    role = TableInfo(
        "public",
        "Role",
        (ColumnInfo("org", 1, "integer"), ColumnInfo("name", 2, "text"), ColumnInfo("n", 3, "int")),
        constraints=(pk,),
    )
    log = TableInfo("public", "Log", (ColumnInfo("msg", 1, "text"),))
    return SchemaSnapshot.build(
        dialect="postgresql", default_schema="public", schemas=["public"], tables=[role, log]
    )


def sql(statements: list[str]) -> tuple[list[str], set[int]]:
    steps, lines = undo_inserts(
        [Statement(s, i, i) for i, s in enumerate(statements, 1)], snapshot()
    )
    return [s.sql for s in steps], lines


def test_literal_rows_with_the_whole_key_are_deleted_newest_first() -> None:
    assert sql(
        [
            """INSERT INTO "Role" ("org", "name", "n") VALUES (1, 'admin', 3), (2, 'x'::text, 4)""",
            """INSERT INTO public."Role" (name, org) VALUES ('y', 9)""",
        ]
    ) == (
        [
            """DELETE FROM "Role" WHERE ("org", "name") IN ((9, 'y'))""",
            """DELETE FROM "Role" WHERE ("org", "name") IN """
            """((1, 'admin'), (2, CAST('x' AS text)))""",
        ],
        {1, 2},
    )


def test_what_the_sql_does_not_pin_down_is_left_to_a_person() -> None:
    assert sql(
        [
            """INSERT INTO "Role" ("org", "name") VALUES (1, 'a') ON CONFLICT DO NOTHING""",
            """INSERT INTO "Role" ("org", "name") SELECT 1, name FROM "Role\"""",
            """INSERT INTO "Role" ("org", "n") VALUES (1, 2)""",  # part of the key only
            """INSERT INTO "Role" ("org", "name") VALUES (1, lower('A'))""",  # not a literal
            """INSERT INTO "Log" ("msg") VALUES ('no key')""",
            """INSERT INTO "Missing" ("id") VALUES (1)""",
            """UPDATE "Role" SET n = 1""",
        ]
    ) == ([], set())
