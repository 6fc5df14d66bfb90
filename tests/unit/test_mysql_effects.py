"""MySQL effects analysis, inverses for --undo-partial, and observing an unrecorded statement."""

from __future__ import annotations

import pytest

from backout.dialects.mysql.dialect import MysqlDialect
from backout.model.schema import ColumnInfo, IndexInfo, SchemaSnapshot, TableInfo
from backout.model.script import Statement
from backout.run.journal import inverse_of, observe

DIALECT = MysqlDialect()


def lines(sql: str) -> list[str]:
    statements = DIALECT.split(sql, "t.sql")
    return DIALECT.analyze(statements).lines()


def test_prisma_create_table_with_inline_indexes_and_keys() -> None:
    found = lines(
        "CREATE TABLE `Voucher` (\n"
        "    `id` VARCHAR(191) NOT NULL,\n"
        "    `code` VARCHAR(191) NOT NULL,\n"
        "    UNIQUE INDEX `Voucher_code_key`(`code`),\n"
        "    INDEX `Voucher_status_idx`(`status`),\n"
        "    PRIMARY KEY (`id`)\n"
        ") DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
        "ALTER TABLE `R` ADD CONSTRAINT `R_v_fkey` FOREIGN KEY (`v`) REFERENCES `Voucher`(`id`) "
        "ON DELETE RESTRICT ON UPDATE CASCADE;\n"
    )
    assert found == [
        '1: create table "Voucher" columns ("id", "code")',
        '1: create index "Voucher_code_key" on "Voucher" — UNIQUE on "Voucher" (in CREATE TABLE) '
        'columns ("code")',
        '1: create index "Voucher_status_idx" on "Voucher" — on "Voucher" (in CREATE TABLE) '
        'columns ("status")',
        '8: create foreign key "R_v_fkey" on "R" — (`v`) → "Voucher"(`id`) ON DELETE RESTRICT '
        'ON UPDATE CASCADE refs table "Voucher"',
    ]


def test_create_table_with_unnamed_unique_keys() -> None:
    """MySQL names an unnamed UNIQUE key after its first column (was: AttributeError)."""
    found = lines(
        "CREATE TABLE t (r INT, s INT, UNIQUE (r), UNIQUE KEY (s, r), UNIQUE KEY uk (s));"
    )
    assert found == [
        '1: create table "t" columns ("r", "s")',
        '1: create index "r" on "t" — UNIQUE on "t" (in CREATE TABLE) columns ("r")',
        '1: create index "s" on "t" — UNIQUE on "t" (in CREATE TABLE) columns ("s", "r")',
        '1: create index "uk" on "t" — UNIQUE on "t" (in CREATE TABLE) columns ("s")',
    ]


def test_alter_table_actions() -> None:
    found = lines(
        "ALTER TABLE users ADD COLUMN flag INT NULL, DROP COLUMN x, RENAME COLUMN a TO b, "
        "MODIFY c INT, CHANGE d e INT, DROP FOREIGN KEY f, DROP INDEX i;"
    )
    assert found == [
        '1: create column "users"."flag" — ADD COLUMN INT NULL',
        '1: drop column "users"."x" [destructive]',
        '1: rename column "users"."a" — rename to "b"',
        '1: alter column "users"."c" — MODIFY c INT [destructive]',
        '1: rename column "users"."d" — CHANGE to "e": e INT [destructive]',
        '1: drop foreign key "f" on "users"',
        '1: drop index "i" on "users"',
    ]


def test_statements_sqlglot_cannot_read_are_unknown_never_passed() -> None:
    found = lines("CALL p(1);\n/*!40101 SET NAMES utf8 */;\nGRANT SELECT ON t TO u;\n")
    assert all("needs review" in line for line in found), found
    assert len(found) == 3


def test_rename_table_trigger_and_replace_are_read_without_sqlglot() -> None:
    found = lines(
        "RENAME TABLE a TO b, `c` TO d;\n"
        "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW SET NEW.x = 1;\n"
        "REPLACE INTO t (a) VALUES (1);\n"
        "DROP INDEX `i` ON `t`;\n"
    )
    assert found == [
        '1: rename table "a" — rename to "b"',
        '1: rename table "c" — rename to "d"',
        '2: create trigger "trg" on "t" — BEFORE INSERT ON "t"',
        '3: insert table "t" — REPLACE (deletes the rows it conflicts with) columns ("a") '
        "[destructive]",
        '4: drop index "i" on "t"',
    ]


def test_dml() -> None:
    found = lines(
        "DELETE t FROM t JOIN u ON u.id = t.u WHERE u.x = 1;\n"
        "UPDATE b JOIN r ON r.x = b.x SET b.v = 1;\n"
        "TRUNCATE TABLE z;\n"
    )
    assert found == [
        '1: delete table "t" refs table "u" [destructive, where]',
        '2: update table "b" columns ("v") refs table "r" [destructive, where]',
        '3: truncate table "z" [destructive]',
    ]


def test_dml_scope_for_counting() -> None:
    scope = DIALECT.dml_scope(
        Statement("DELETE FROM `t` WHERE `a` > :since AND b = '%x'", 1, 1), ["since"]
    )
    assert scope is not None
    assert scope.count_sql() == "SELECT count(*) FROM `t` WHERE `a` > :since AND b = '%x'"
    joined = DIALECT.dml_scope(Statement("UPDATE b JOIN r ON r.x = b.x SET b.v = 1", 1, 1))
    assert joined is None  # counting the join would count a row once per match


def _snapshot(*tables: TableInfo, indexes: tuple[IndexInfo, ...] = ()) -> SchemaSnapshot:
    return SchemaSnapshot.build("mysql", tables=tables, indexes=indexes)


def _table(name: str, *columns: str) -> TableInfo:
    return TableInfo(
        schema=None,
        name=name,
        columns=tuple(ColumnInfo(c, i, "int") for i, c in enumerate(columns, 1)),
    )


@pytest.mark.parametrize(
    ("sql", "inverse"),
    [
        ("CREATE TABLE posts (id INT PRIMARY KEY)", ["DROP TABLE `posts`"]),
        ("ALTER TABLE users ADD COLUMN nick INT", ["ALTER TABLE `users` DROP COLUMN `nick`"]),
        (
            "CREATE INDEX users_nick ON users (nick)",
            ["ALTER TABLE `users` DROP INDEX `users_nick`"],
        ),
        (
            "ALTER TABLE users RENAME COLUMN email TO mail",
            ["ALTER TABLE `users` RENAME COLUMN `mail` TO `email`"],
        ),
        ("RENAME TABLE users TO people", ["RENAME TABLE `people` TO `users`"]),
        (
            "ALTER TABLE users ADD CONSTRAINT users_fk FOREIGN KEY (a) REFERENCES t (id)",
            ["ALTER TABLE `users` DROP FOREIGN KEY `users_fk`"],
        ),
        (
            "ALTER TABLE users ADD COLUMN a INT, ADD COLUMN b INT",
            ["ALTER TABLE `users` DROP COLUMN `b`", "ALTER TABLE `users` DROP COLUMN `a`"],
        ),
        ("CREATE VIEW v AS SELECT 1", ["DROP VIEW `v`"]),
        ("SET FOREIGN_KEY_CHECKS = 0", []),
        ("SELECT 1", []),
    ],
)
def test_derivable_inverses(sql: str, inverse: list[str]) -> None:
    statement = Statement(sql, 1, 1)
    effects = DIALECT.analyze([statement])
    found = inverse_of(DIALECT, statement, effects, _snapshot(), {})
    assert found.reason is None
    assert list(found.sql) == inverse


def test_a_foreign_keys_own_index_goes_with_it() -> None:
    statement = Statement(
        "ALTER TABLE c ADD CONSTRAINT c_a FOREIGN KEY (a_id) REFERENCES a (id)", 1, 1
    )
    snapshot = _snapshot(
        _table("c", "a_id"),
        indexes=(IndexInfo(schema=None, name="c_a", table="c", columns=("`a_id`",)),),
    )
    found = inverse_of(DIALECT, statement, DIALECT.analyze([statement]), snapshot, {})
    assert list(found.sql) == [
        "ALTER TABLE `c` DROP FOREIGN KEY `c_a`",
        "ALTER TABLE `c` DROP INDEX `c_a`",
    ]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DROP TABLE posts", "dropped"),
        ("DELETE FROM posts", "deleted rows"),
        ("UPDATE posts SET a = 1", "changed the rows"),
        ("ALTER TABLE users MODIFY a BIGINT", "old definition is not known"),
        ("CREATE TABLE IF NOT EXISTS posts (id INT)", "IF NOT EXISTS"),
        ("CALL p()", "cannot be analysed"),
    ],
)
def test_no_inverse_without_the_backup(sql: str, reason: str) -> None:
    statement = Statement(sql, 1, 1)
    found = inverse_of(DIALECT, statement, DIALECT.analyze([statement]), _snapshot(), {})
    assert not found.derivable
    assert found.reason is not None and reason in found.reason


def test_dropping_a_created_table_with_rows_is_not_an_inverse() -> None:
    statement = Statement("CREATE TABLE posts (id INT PRIMARY KEY)", 1, 1)
    snapshot = _snapshot(_table("posts", "id"))
    found = inverse_of(DIALECT, statement, DIALECT.analyze([statement]), snapshot, {"posts": 3})
    assert found.reason is not None and "holds 3 row(s)" in found.reason


def test_observe_reads_the_schema() -> None:
    create = DIALECT.analyze([Statement("CREATE TABLE posts (id INT)", 1, 1)]).effects
    assert observe(create, _snapshot(_table("posts", "id"))) is True
    assert observe(create, _snapshot()) is False
    add = DIALECT.analyze([Statement("ALTER TABLE users ADD COLUMN nick INT", 1, 1)]).effects
    assert observe(add, _snapshot(_table("users", "id", "nick"))) is True
    assert observe(add, _snapshot(_table("users", "id"))) is False
    modify = DIALECT.analyze([Statement("ALTER TABLE users MODIFY id BIGINT", 1, 1)]).effects
    assert observe(modify, _snapshot(_table("users", "id"))) is None
