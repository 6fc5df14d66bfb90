"""Every lint rule on small projects: one failing and one passing example (or more), on
PostgreSQL and SQLite where the rule applies. No database and no squawk: the library is called
with ``check_database=False, squawk=False`` (the integration tests cover both)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import write

from backout.lint import linter as lint_module
from backout.lint.linter import LintReport, lint
from backout.lint.rules import RULES, Severity, string_literals
from backout.project.config import load_config
from backout.project.scaffold import ROLLBACK_HEADER

URLS = {"postgresql": "postgresql://u@localhost/db", "sqlite": "sqlite:///lint.db"}
BOTH = pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])


def run(root: Path, dialect: str = "sqlite", **kwargs: object) -> LintReport:
    """Lint ``root`` offline, without squawk."""
    config = load_config(root, environ={}, url=URLS[dialect])
    return lint(config, check_database=False, squawk=False, **kwargs)  # type: ignore[arg-type]


def plain(root: Path, *migrations: tuple[str, str, str | None]) -> Path:
    """A plain-layout project: (name, up, down or None) per migration, numbered in order."""
    files: dict[str, str] = {}
    for number, (name, up, down) in enumerate(migrations, start=1):
        stem = f"migrations/{number:03d}_{name}"
        files[f"{stem}.up.sql"] = up
        if down is not None:
            files[f"{stem}.down.sql"] = down
    return write(root, files)


def found(report: LintReport) -> list[tuple[str, str, int | None]]:
    """(rule, file name, line) of every finding."""
    return [(f.rule, Path(f.file).name if f.file else "", f.line) for f in report.findings]


def rules_of(report: LintReport) -> list[str]:
    return [f.rule for f in report.findings]


def only(report: LintReport, rule: str) -> list[str]:
    """Messages of the findings of one rule."""
    return [f.message for f in report.findings if f.rule == rule]


HIGH = "-- backout:risk HIGH\n"


# --- the catalogue --------------------------------------------------------------------------


def test_every_rule_has_a_docs_page_with_the_required_sections() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "lint"
    for rule in RULES.values():
        page = docs / f"{rule.id}.md"
        assert page.is_file(), f"{rule.id} has no docs page"
        text = page.read_text(encoding="utf-8")
        assert text.startswith(f"# {rule.id} {rule.name}"), rule.id
        assert f"**Severity:** {rule.severity.value}" in text, rule.id
        for section in ("## Why", "## Fails", "## Passes", "## Fix", "## Suppress"):
            assert section in text, f"{rule.id}: missing {section}"


def test_rule_ids_are_grouped_and_names_unique() -> None:
    assert len({r.name for r in RULES.values()}) == len(RULES)
    for rule in RULES.values():
        assert rule.id[:2] == "BO" and rule.id[2] in "12345", rule.id
        assert rule.docs == f"docs/lint/{rule.id}.md"


# --- BO1xx: rollbacks and their directives ----------------------------------------------------


@BOTH
def test_bo101_missing_rollback(tmp_path: Path, dialect: str) -> None:
    root = plain(tmp_path, ("a", "CREATE TABLE a (id int);", None))
    report = run(root, dialect)
    assert found(report) == [("BO101", "001_a.up.sql", 1)]
    assert report.errors and not report.ok
    assert "backout new 001_a" in report.findings[0].message


@BOTH
def test_bo101_passes_with_a_rollback(tmp_path: Path, dialect: str) -> None:
    root = plain(tmp_path, ("a", "CREATE TABLE a (id int);", HIGH + "DROP TABLE a;"))
    report = run(root, dialect)
    assert found(report) == []
    assert report.ok


def test_bo101_ignored_for_one_migration(tmp_path: Path) -> None:
    root = plain(
        tmp_path,
        ("a", "CREATE TABLE a (id int);", None),
        ("b", "CREATE TABLE b (id int);", None),
    )
    report = run(root, ignore=["BO101:001_a"])
    assert found(report) == [("BO101", "002_b.up.sql", 1)]
    assert report.suppressed == 1
    assert run(root, ignore=["bo101"]).findings == ()


def test_ignore_names_an_unknown_rule(tmp_path: Path) -> None:
    from backout.model.errors import UsageError

    root = plain(tmp_path, ("a", "CREATE TABLE a (id int);", None))
    with pytest.raises(UsageError, match="unknown rule"):
        run(root, ignore=["BO999"])


@BOTH
def test_bo102_empty_rollback(tmp_path: Path, dialect: str) -> None:
    root = plain(tmp_path, ("a", "CREATE TABLE a (id int);", HIGH + "-- nothing to undo?\n"))
    assert found(run(root, dialect)) == [("BO102", "001_a.down.sql", 1)]


def test_bo102_dbmate_empty_down_section(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "db/migrations/20240101000000_a.sql": (
                "-- migrate:up\nCREATE TABLE a (id int);\n\n-- migrate:down\n"
            )
        },
    )
    report = run(root)
    assert found(report) == [("BO102", "20240101000000_a.sql", 4)]


@BOTH
def test_bo103_undeclared_risk(tmp_path: Path, dialect: str) -> None:
    root = plain(tmp_path, ("a", "CREATE TABLE a (id int);", "DROP TABLE a;"))
    report = run(root, dialect)
    assert found(report) == [("BO103", "001_a.down.sql", 1)]
    assert "backout:risk HIGH" in report.findings[0].message


@BOTH
def test_bo104_understated_risk_names_the_worst_reason(tmp_path: Path, dialect: str) -> None:
    root = plain(
        tmp_path,
        ("a", "CREATE TABLE a (id int);", "-- rollback\n-- backout:risk LOW\nDROP TABLE a;"),
    )
    report = run(root, dialect)
    assert found(report) == [("BO104", "001_a.down.sql", 2)]
    message = report.findings[0].message
    assert "declares risk LOW" in message and "HIGH" in message
    assert 'line 3: drop table "a"' in message


@BOTH
def test_bo104_passes_when_declared_at_least_computed(tmp_path: Path, dialect: str) -> None:
    root = plain(
        tmp_path,
        ("a", "CREATE INDEX a_i ON t (x);", "-- backout:risk LOW\nDROP INDEX a_i;"),
    )
    assert found(run(root, dialect)) == []


def test_bo104_partial_rollback(tmp_path: Path) -> None:
    root = plain(tmp_path, ("a", "CREATE TABLE a (id int);", HIGH + "DROP TABLE a;"))
    write(root, {"migrations/001_a.down.purge.sql": "-- backout:risk NONE\nDELETE FROM a;"})
    report = run(root)
    assert ("BO104", "001_a.down.purge.sql", 1) in found(report)


def test_bo105_scaffold_placeholders(tmp_path: Path) -> None:
    header = ROLLBACK_HEADER.format(id="001_a")
    root = plain(tmp_path, ("a", "CREATE TABLE a (id int);", header + "DROP TABLE a;\n"))
    report = run(root)
    assert rules_of(report) == ["BO105", "BO105", "BO105"]
    assert all(f.severity is Severity.WARNING for f in report.findings)
    assert report.ok
    lines = [f.line for f in report.findings]
    assert lines == [4, 5, 6]


def test_bo105_passes_once_filled_in(tmp_path: Path) -> None:
    down = (
        HIGH + "-- backout:impact Drops table a\n-- backout:data-loss Every row of a\n"
        "DROP TABLE a;\n"
    )
    root = plain(tmp_path, ("a", "CREATE TABLE a (id int);", down))
    assert found(run(root)) == []


# --- BO2xx: forward and rollback in sync ----------------------------------------------------------

INIT = ("init", "CREATE TABLE t (id int PRIMARY KEY, name text);", HIGH + "DROP TABLE t;")


@BOTH
def test_bo201_rollback_leaves_created_objects(tmp_path: Path, dialect: str) -> None:
    up = (
        "CREATE TABLE u (id int);\n"
        "ALTER TABLE t ADD COLUMN note text;\n"
        "CREATE INDEX t_name_idx ON t (name);\n"
        "CREATE VIEW v AS SELECT id FROM t;\n"
    )
    root = plain(tmp_path, INIT, ("more", up, HIGH + "DROP TABLE u;\n"))
    report = run(root, dialect)
    messages = only(report, "BO201")
    assert len(messages) == 3, messages
    assert any('column "t"."note"' in m and "002_more.up.sql:2" in m for m in messages)
    assert any('index "t_name_idx"' in m for m in messages)
    assert any('view "v"' in m for m in messages)
    assert all(f.line == 1 and f.file == "migrations/002_more.down.sql" for f in report.findings)


@BOTH
def test_bo201_passes_when_everything_is_undone(tmp_path: Path, dialect: str) -> None:
    up = (
        "CREATE TABLE u (id int, t_id int REFERENCES t (id));\n"
        "CREATE INDEX u_t_idx ON u (t_id);\n"
        "ALTER TABLE t ADD COLUMN note text;\n"
        "CREATE INDEX t_name_idx ON t (name);\n"
        "CREATE VIEW v AS SELECT id FROM t;\n"
    )
    # the index and foreign key go with their table, the view is dropped first
    down = (
        HIGH + "DROP VIEW v;\nDROP TABLE u;\nDROP INDEX t_name_idx;\n"
        "ALTER TABLE t DROP COLUMN note;\n"
    )
    root = plain(tmp_path, INIT, ("more", up, down))
    assert found(run(root, dialect)) == []


def test_bo201_objects_on_a_dropped_column_go_with_it(tmp_path: Path) -> None:
    up = (
        "ALTER TABLE t ADD COLUMN owner_id int;\n"
        "ALTER TABLE t ADD CONSTRAINT t_owner_fk FOREIGN KEY (owner_id) REFERENCES t (id);\n"
        "CREATE INDEX t_owner_idx ON t (owner_id);\n"
    )
    root = plain(tmp_path, INIT, ("owner", up, HIGH + "ALTER TABLE t DROP COLUMN owner_id;\n"))
    assert found(run(root, "postgresql")) == []


def test_bo201_renames_are_followed(tmp_path: Path) -> None:
    up = 'ALTER TABLE t RENAME TO things;\nALTER TABLE things RENAME COLUMN name TO "label";\n'
    back = (
        "-- backout:risk NONE\n"
        'ALTER TABLE things RENAME COLUMN "label" TO name;\nALTER TABLE things RENAME TO t;\n'
    )
    root = plain(tmp_path, INIT, ("rename", up, back))
    assert found(run(root, "postgresql")) == []
    root2 = plain(tmp_path / "b", INIT, ("rename", up, "-- backout:risk NONE\nSELECT 1;\n"))
    messages = only(run(root2, "postgresql"), "BO201")
    assert len(messages) == 2, messages
    assert any('table "t" renamed to "things"' in m for m in messages)


def test_bo201_created_then_renamed_then_dropped_by_new_name(tmp_path: Path) -> None:
    up = "CREATE TABLE tmp_u (id int);\nALTER TABLE tmp_u RENAME TO u;\n"
    root = plain(tmp_path, INIT, ("u", up, HIGH + "DROP TABLE u;\n"))
    assert found(run(root, "postgresql")) == []


def test_bo201_prisma_enum_replacement(tmp_path: Path) -> None:
    init = (
        "init",
        "CREATE TYPE \"Status\" AS ENUM ('A', 'B');\nCREATE TABLE t (s \"Status\");",
        HIGH + 'DROP TABLE t;\nDROP TYPE "Status";',
    )
    up = (
        'ALTER TYPE "Status" RENAME TO "Status_old";\n'
        "CREATE TYPE \"Status\" AS ENUM ('A');\n"
        'ALTER TABLE t ALTER COLUMN s TYPE "Status" USING (s::text::"Status");\n'
        'DROP TYPE "Status_old";\n'
    )
    down = (
        HIGH + 'ALTER TYPE "Status" RENAME TO "Status_old";\n'
        "CREATE TYPE \"Status\" AS ENUM ('A', 'B');\n"
        'ALTER TABLE t ALTER COLUMN s TYPE "Status" USING (s::text::"Status");\n'
        'DROP TYPE "Status_old";\n'
    )
    root = plain(tmp_path, init, ("enum", up, down))
    assert found(run(root, "postgresql")) == []


def test_bo201_if_not_exists_of_an_earlier_object_is_not_a_create(tmp_path: Path) -> None:
    up = "CREATE TABLE IF NOT EXISTS t (id int);\nCREATE TABLE IF NOT EXISTS u (id int);\n"
    root = plain(tmp_path, INIT, ("again", up, "-- backout:risk NONE\nSELECT 1;\n"))
    messages = only(run(root, "postgresql"), "BO201")
    assert len(messages) == 1 and 'table "u"' in messages[0]


@BOTH
def test_bo202_rollback_drops_unrelated_object(tmp_path: Path, dialect: str) -> None:
    root = plain(
        tmp_path,
        INIT,
        ("more", "CREATE TABLE u (id int);", HIGH + "DROP TABLE u;\nDROP TABLE t;\n"),
    )
    report = run(root, dialect)
    assert found(report) == [("BO202", "002_more.down.sql", 3)]
    assert report.findings[0].severity is Severity.WARNING
    assert 'table "t"' in report.findings[0].message


def test_bo202_sqlite_table_rebuild_is_not_unrelated(tmp_path: Path) -> None:
    up = "ALTER TABLE t ADD COLUMN note text;\n"
    down = (
        HIGH + "CREATE TABLE new_t (id int PRIMARY KEY, name text);\n"
        "INSERT INTO new_t (id, name) SELECT id, name FROM t;\n"
        "DROP TABLE t;\n"
        "ALTER TABLE new_t RENAME TO t;\n"
    )
    root = plain(tmp_path, INIT, ("note", up, down))
    assert found(run(root, "sqlite")) == []


def test_sqlite_rebuild_in_the_forward_migration_is_one_table(tmp_path: Path) -> None:
    up = (
        "PRAGMA foreign_keys=OFF;\n"
        "CREATE TABLE new_t (id int PRIMARY KEY, name text, note text);\n"
        "INSERT INTO new_t (id, name) SELECT id, name FROM t;\n"
        "DROP TABLE t;\n"
        "ALTER TABLE new_t RENAME TO t;\n"
        "CREATE INDEX t_note_idx ON t (note);\n"
        "PRAGMA foreign_keys=ON;\n"
    )
    down = HIGH + "DROP INDEX t_note_idx;\nALTER TABLE t DROP COLUMN note;\n"
    root = plain(tmp_path, INIT, ("note", up, down))
    assert found(run(root, "sqlite")) == []


@BOTH
def test_bo204_forward_drop_not_restored_and_undeclared(tmp_path: Path, dialect: str) -> None:
    root = plain(
        tmp_path,
        INIT,
        ("slim", "ALTER TABLE t DROP COLUMN name;", "-- backout:risk NONE\nSELECT 1;"),
    )
    report = run(root, dialect)
    assert found(report) == [("BO204", "002_slim.down.sql", 1)]
    assert 'column "t"."name"' in report.findings[0].message
    assert "data-loss" in report.findings[0].message


@BOTH
def test_bo203_forward_drop_not_restored_but_declared(tmp_path: Path, dialect: str) -> None:
    down = "-- backout:risk NONE\n-- backout:data-loss names are gone for good\nSELECT 1;"
    root = plain(tmp_path, INIT, ("slim", "ALTER TABLE t DROP COLUMN name;", down))
    report = run(root, dialect)
    assert found(report) == [("BO203", "002_slim.down.sql", 1)]
    assert report.ok


@BOTH
def test_bo203_passes_when_the_rollback_re_creates(tmp_path: Path, dialect: str) -> None:
    down = "-- backout:risk LOW\nALTER TABLE t ADD COLUMN name text;"
    root = plain(tmp_path, INIT, ("slim", "ALTER TABLE t DROP COLUMN name;", down))
    assert found(run(root, dialect)) == []


@BOTH
def test_bo203_bo204_pass_on_a_column_created_and_dropped_in_one_migration(
    tmp_path: Path, dialect: str
) -> None:
    for number, up in enumerate(
        (
            "CREATE TABLE u (a int, b int);\nALTER TABLE u DROP COLUMN b;",
            "CREATE TABLE u (a int);\nALTER TABLE u ADD COLUMN b int;\n"
            "ALTER TABLE u DROP COLUMN b;",
        )
    ):
        for down in (HIGH + "DROP TABLE u;", HIGH + "-- backout:data-loss u\nDROP TABLE u;"):
            root = plain(tmp_path / f"{number}{len(down)}", INIT, ("u", up, down))
            assert found(run(root, dialect)) == [], (up, down)


def fn(signature: str, body: str = "1") -> str:
    head = f"CREATE OR REPLACE FUNCTION f({signature}) RETURNS int"
    return f"{head} LANGUAGE sql AS $$ SELECT {body} $$;"


def test_bo202_sees_create_or_replace_function_as_creating_it(tmp_path: Path) -> None:
    # a new overload f(text) beside f(integer): the rollback drops what the migration created
    a = ("a", fn("a integer"), HIGH + "DROP FUNCTION f(integer);")
    b = ("b", fn("a text"), HIGH + "DROP FUNCTION f(text);")
    assert found(run(plain(tmp_path / "overload", a, b), "postgresql")) == []
    # a body replaced by CREATE OR REPLACE and dropped by its rollback
    create = "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;"
    a = ("a", create, HIGH + "DROP FUNCTION f();")
    b = ("b", fn("", "2"), HIGH + "DROP FUNCTION f();")
    assert found(run(plain(tmp_path / "replace", a, b), "postgresql")) == []
    # a rollback that restores the earlier body is no finding either (no BO201)
    b = ("b", fn("", "2"), HIGH + fn("", "1"))
    assert found(run(plain(tmp_path / "restore", a, b), "postgresql")) == []


def test_sync_is_skipped_when_a_script_does_not_parse(tmp_path: Path) -> None:
    root = plain(tmp_path, INIT, ("bad", "CREATE TABLE u (id int);", HIGH + "DROP TABLE (;"))
    report = run(root, "postgresql")
    assert rules_of(report) == ["BO501"]


# --- BO3xx: statements that fail or break atomicity ---------------------------------------------

PARENT_CHILD = (
    "init",
    "CREATE TABLE p (id int PRIMARY KEY);\n"
    "CREATE TABLE c (id int PRIMARY KEY, p_id int REFERENCES p (id));\n",
    HIGH + "DROP TABLE p;\nDROP TABLE c;\n",
)


@BOTH
def test_bo301_rollback_drops_parent_first(tmp_path: Path, dialect: str) -> None:
    root = plain(tmp_path, PARENT_CHILD)
    report = run(root, dialect)
    assert found(report) == [("BO301", "001_init.down.sql", 2)]
    message = report.findings[0].message
    assert 'DROP TABLE "p" fails while "c" still references it' in message
    assert "001_init.up.sql:2" in message


@BOTH
def test_bo301_passes_in_foreign_key_order(tmp_path: Path, dialect: str) -> None:
    root = plain(
        tmp_path, (PARENT_CHILD[0], PARENT_CHILD[1], HIGH + "DROP TABLE c;\nDROP TABLE p;\n")
    )
    assert found(run(root, dialect)) == []


@BOTH
def test_bo301_in_a_later_forward_migration(tmp_path: Path, dialect: str) -> None:
    init = (PARENT_CHILD[0], PARENT_CHILD[1], HIGH + "DROP TABLE c;\nDROP TABLE p;\n")
    root = plain(
        tmp_path,
        init,
        ("drop_p", "DROP TABLE p;", HIGH + "CREATE TABLE p (id int PRIMARY KEY);"),
    )
    report = run(root, dialect)
    assert ("BO301", "002_drop_p.up.sql", 1) in found(report)


def test_bo301_foreign_key_dropped_earlier_does_not_block(tmp_path: Path) -> None:
    init = (PARENT_CHILD[0], PARENT_CHILD[1], HIGH + "DROP TABLE c;\nDROP TABLE p;\n")
    up = "ALTER TABLE c DROP CONSTRAINT c_p_id_fkey;\nDROP TABLE p;\n"
    down = (
        HIGH + "CREATE TABLE p (id int PRIMARY KEY);\n"
        "ALTER TABLE c ADD CONSTRAINT c_p_id_fkey FOREIGN KEY (p_id) REFERENCES p (id);\n"
    )
    root = plain(tmp_path, init, ("drop_p", up, down))
    assert "BO301" not in rules_of(run(root, "postgresql"))


def test_bo301_both_tables_in_one_statement(tmp_path: Path) -> None:
    root = plain(tmp_path, (PARENT_CHILD[0], PARENT_CHILD[1], HIGH + "DROP TABLE p, c;\n"))
    assert found(run(root, "postgresql")) == []


def test_bo302_drop_cascade(tmp_path: Path) -> None:
    root = plain(tmp_path, (PARENT_CHILD[0], PARENT_CHILD[1], HIGH + "DROP TABLE p CASCADE;\n"))
    report = run(root, "postgresql")
    # c is left behind (BO201) and its foreign key dropped silently (BO302)
    assert ("BO302", "001_init.down.sql", 2) in found(report)
    assert report.findings[[f.rule for f in report.findings].index("BO302")].severity is (
        Severity.WARNING
    )


@BOTH
def test_bo303_transaction_control_that_cannot_be_honoured(tmp_path: Path, dialect: str) -> None:
    up = "BEGIN;\nCREATE TABLE a (id int);\nROLLBACK;\n"
    root = plain(tmp_path, ("a", up, HIGH + "DROP TABLE a;"))
    report = run(root, dialect)
    assert found(report) == [("BO303", "001_a.up.sql", 3)]
    assert "discards the script's own work" in report.findings[0].message


@BOTH
def test_bo303_passes_on_balanced_blocks(tmp_path: Path, dialect: str) -> None:
    # Prisma's enum template: `up` runs it as shipped, so it is no finding
    for up in (
        "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n",
        "-- backout:transaction off\nBEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n",
    ):
        root = plain(tmp_path / str(len(up)), ("a", up, HIGH + "DROP TABLE a;"))
        assert found(run(root, dialect)) == []


def test_bo304_concurrently_inside_the_scripts_own_block(tmp_path: Path) -> None:
    up = "BEGIN;\nCREATE INDEX CONCURRENTLY t_name_idx ON t (name);\nCOMMIT;\n"
    root = plain(tmp_path, INIT, ("idx", up, "-- backout:risk LOW\nDROP INDEX t_name_idx;"))
    report = run(root, "postgresql")
    assert found(report) == [("BO304", "002_idx.up.sql", 2)]
    assert "CONCURRENTLY" in report.findings[0].message


def test_bo304_passes_where_up_runs_it_journaled(tmp_path: Path) -> None:
    for up in (
        "CREATE INDEX CONCURRENTLY t_name_idx ON t (name);",
        "-- backout:transaction off\nCREATE INDEX CONCURRENTLY t_name_idx ON t (name);",
    ):
        idx = ("idx", up, "-- backout:risk LOW\nDROP INDEX t_name_idx;")
        root = plain(tmp_path / str(len(up)), INIT, idx)
        assert found(run(root, "postgresql")) == []


def test_bo304_sqlite_vacuum(tmp_path: Path) -> None:
    vac = ("vac", "VACUUM;", "-- backout:risk NONE\nSELECT 1;")
    assert found(run(plain(tmp_path / "a", INIT, vac), "sqlite")) == []
    vac = ("vac", "BEGIN;\nVACUUM;\nCOMMIT;", "-- backout:risk NONE\nSELECT 1;")
    assert found(run(plain(tmp_path / "b", INIT, vac), "sqlite")) == [
        ("BO304", "002_vac.up.sql", 2)
    ]


ENUM_INIT = (
    "init",
    "CREATE TYPE status AS ENUM ('A', 'B');\nCREATE TABLE t (s status);",
    HIGH + "DROP TABLE t;\nDROP TYPE status;",
)


def test_bo305_new_enum_value_used_in_the_same_block(tmp_path: Path) -> None:
    up = "BEGIN;\nALTER TYPE status ADD VALUE 'C';\nUPDATE t SET s = 'C' WHERE s = 'B';\nCOMMIT;\n"
    root = plain(tmp_path, ENUM_INIT, ("c", up, "-- backout:risk NONE\nSELECT 1;"))
    report = run(root, "postgresql")
    assert found(report) == [("BO305", "002_c.up.sql", 3)]
    assert "55P04" in report.findings[0].message


def test_bo305_passes_in_one_script_that_up_runs_journaled(tmp_path: Path) -> None:
    up = "ALTER TYPE status ADD VALUE 'C';\nUPDATE t SET s = 'C' WHERE s = 'B';\n"
    root = plain(tmp_path, ENUM_INIT, ("c", up, "-- backout:risk NONE\nSELECT 1;"))
    assert found(run(root, "postgresql")) == []


def test_bo305_passes_in_separate_migrations_or_outside_a_transaction(tmp_path: Path) -> None:
    add = ("c", "ALTER TYPE status ADD VALUE 'C';", "-- backout:risk NONE\nSELECT 1;")
    use = ("use_c", "UPDATE t SET s = 'C' WHERE s = 'B';", "-- backout:risk NONE\nSELECT 1;")
    assert found(run(plain(tmp_path / "a", ENUM_INIT, add, use), "postgresql")) == []
    off = (
        "c",
        "-- backout:transaction off\nALTER TYPE status ADD VALUE 'C';\n"
        "UPDATE t SET s = 'C' WHERE s = 'B';\n",
        "-- backout:risk NONE\nSELECT 1;",
    )
    assert found(run(plain(tmp_path / "b", ENUM_INIT, off), "postgresql")) == []


def test_bo305_passes_across_rollbacks_of_one_batch(tmp_path: Path) -> None:
    # `rollback` commits between the two (tests/integration/test_as_shipped.py)
    one = ("one", "CREATE TABLE u (s status);", HIGH + "UPDATE t SET s = 'Z';\nDROP TABLE u;")
    two = ("two", "SELECT 1;", "-- backout:risk NONE\nALTER TYPE status ADD VALUE 'Z';")
    report = run(plain(tmp_path, ENUM_INIT, one, two), "postgresql")
    assert "BO305" not in rules_of(report)


def test_string_literals_skip_comments_identifiers_and_bodies() -> None:
    sql = (
        "UPDATE t SET a = 'x''y' -- 'comment'\n/* 'block' */ WHERE \"'q'\" = 'z' "
        "AND f($$ 'body' $$)"
    )
    assert string_literals(sql) == {"x'y", "z"}


# --- BO4xx: data and review -------------------------------------------------------------------


@BOTH
def test_bo401_dml_without_where(tmp_path: Path, dialect: str) -> None:
    up = "DELETE FROM t;\nUPDATE t SET name = 'x';\n"
    root = plain(tmp_path, INIT, ("wipe", up, "-- backout:risk NONE\nSELECT 1;"))
    report = run(root, dialect)
    assert found(report) == [("BO401", "002_wipe.up.sql", 1), ("BO401", "002_wipe.up.sql", 2)]
    assert "removes every row" in report.findings[0].message
    assert 'overwrites "name"' in report.findings[1].message
    assert report.ok


@BOTH
def test_bo401_passes_with_where_or_before_a_drop(tmp_path: Path, dialect: str) -> None:
    up = "DELETE FROM t WHERE id > 10;\nUPDATE t SET name = 'x' WHERE id = 1;\n"
    root = plain(
        tmp_path,
        ("init", INIT[1], HIGH + "DELETE FROM t;\nDROP TABLE t;"),
        ("w", up, "-- backout:risk NONE\nSELECT 1;"),
    )
    assert found(run(root, dialect)) == []


def test_bo402_needs_review_postgres(tmp_path: Path) -> None:
    up = "DO $$ BEGIN EXECUTE 'DROP TABLE ' || 't'; END $$;"
    root = plain(tmp_path, INIT, ("dyn", up, "-- backout:risk NONE\nSELECT 1;"))
    report = run(root, "postgresql")
    assert found(report) == [("BO402", "002_dyn.up.sql", 1)]
    assert "EXECUTE" in report.findings[0].message


def test_bo402_passes_for_statements_the_analysis_knows(tmp_path: Path) -> None:
    root = plain(tmp_path, INIT)
    assert found(run(root, "postgresql")) == []


# --- BO5xx: files, suppression ---------------------------------------------------------------


@BOTH
def test_bo501_syntax_error_is_a_finding_and_linting_goes_on(tmp_path: Path, dialect: str) -> None:
    root = plain(
        tmp_path,
        ("a", "CREATE TABLE a (id int);\n\nCREATE TABLE b (id int,,);\n", HIGH + "DROP TABLE a;"),
        ("c", "CREATE TABLE c (id int);", None),
    )
    report = run(root, dialect)
    assert found(report) == [("BO501", "001_a.up.sql", 3), ("BO101", "002_c.up.sql", 1)]
    assert "syntax error" in report.findings[0].message


@BOTH
def test_bo505_bad_suppression_comments(tmp_path: Path, dialect: str) -> None:
    up = "-- lint-ignore: everything please\n-- lint-ignore: BO999 no such rule\nSELECT 1;\n"
    root = plain(tmp_path, ("a", up, "-- backout:risk NONE\nSELECT 1;"))
    report = run(root, dialect)
    assert found(report) == [("BO505", "001_a.up.sql", 1), ("BO505", "001_a.up.sql", 2)]


def test_suppression_before_a_statement_covers_that_statement_only(tmp_path: Path) -> None:
    up = (
        "-- clear the scratch tables\n"
        "SELECT 1;\n"
        "-- lint-ignore: BO401 scratch table, emptied on purpose\n"
        "DELETE\n  FROM t;\n"
        "DELETE FROM t;\n"
    )
    root = plain(tmp_path, INIT, ("wipe", up, "-- backout:risk NONE\nSELECT 1;"))
    report = run(root)
    assert found(report) == [("BO401", "002_wipe.up.sql", 6)]
    assert report.suppressed == 1


def test_suppression_in_the_header_covers_the_whole_script(tmp_path: Path) -> None:
    up = "-- lint-ignore: BO401, BO402 scratch data\n\nDELETE FROM t;\nDELETE FROM t;\n"
    root = plain(tmp_path, INIT, ("wipe", up, "-- backout:risk NONE\nSELECT 1;"))
    report = run(root)
    assert found(report) == []
    assert report.suppressed == 2


def test_suppression_of_a_missing_rollback_in_the_forward_header(tmp_path: Path) -> None:
    up = "-- lint-ignore: BO101 applied everywhere in 2023, never rolled back\nSELECT 1;\n"
    root = plain(tmp_path, ("old", up, None))
    report = run(root)
    assert found(report) == [] and report.suppressed == 1


def test_parallel_analysis_gives_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = plain(
        tmp_path,
        PARENT_CHILD,
        ("wipe", "DELETE FROM c;\nBEGIN;", "-- backout:risk NONE\nSELECT 1;"),
        ("bad", "CREATE TABLE (;", None),
    )
    serial = run(root)
    monkeypatch.setattr(lint_module, "PARALLEL_MIN_SCRIPTS", 1)
    monkeypatch.setattr(lint_module, "_parallel_workers", lambda count: 2)
    parallel = run(root)
    assert parallel.findings == serial.findings
    assert {f.rule for f in serial.findings} >= {"BO301", "BO401", "BO303", "BO501", "BO101"}


PRISMA_SQLITE_REDEFINE = """\
-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_p" ("id" INTEGER NOT NULL PRIMARY KEY, "name" TEXT);
INSERT INTO "new_p" ("id") SELECT "id" FROM "p";
DROP TABLE "p";
ALTER TABLE "new_p" RENAME TO "p";
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
"""


def test_bo301_sqlite_table_redefinition_with_foreign_keys_off(tmp_path: Path) -> None:
    """Prisma's SQLite RedefineTables drops a referenced table with foreign keys off."""
    init = (PARENT_CHILD[0], PARENT_CHILD[1], HIGH + "DROP TABLE c;\nDROP TABLE p;\n")
    down = HIGH + "ALTER TABLE p DROP COLUMN name;\n"
    root = plain(tmp_path, init, ("name", PRISMA_SQLITE_REDEFINE, down))
    assert found(run(root, "sqlite")) == []
    # the same drop with foreign keys on is blocked
    plain_drop = "DROP TABLE p;\nCREATE TABLE p (id int PRIMARY KEY);\n"
    root2 = plain(tmp_path / "on", init, ("again", plain_drop, "-- backout:risk NONE\nSELECT 1;"))
    assert ("BO301", "002_again.up.sql", 1) in found(run(root2, "sqlite"))


def test_bo301_foreign_key_goes_with_its_column(tmp_path: Path) -> None:
    init = ("init", "CREATE TABLE orgs (id int PRIMARY KEY);", HIGH + "DROP TABLE orgs;")
    up = "ALTER TABLE t ADD COLUMN org_id int REFERENCES orgs (id);\n"
    down = HIGH + "ALTER TABLE t RENAME COLUMN org_id TO org;\nALTER TABLE t DROP COLUMN org;\n"
    drop_orgs = ("drop_orgs", "DROP TABLE orgs;", HIGH + "CREATE TABLE orgs (id int PRIMARY KEY);")
    root = plain(tmp_path, INIT, init, ("org", up, down), drop_orgs)
    assert "BO301" in rules_of(run(root, "postgresql"))  # 004 drops orgs, t.org_id is there
    up_drop = up + "ALTER TABLE t RENAME COLUMN org_id TO org;\nALTER TABLE t DROP COLUMN org;\n"
    root2 = plain(
        tmp_path / "b", INIT, init, ("org", up_drop, "-- backout:risk NONE\nSELECT 1;"), drop_orgs
    )
    assert "BO301" not in rules_of(run(root2, "postgresql"))


def test_docs_index_lists_every_rule() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    for page in (docs / "lint" / "README.md", docs / "commands" / "lint.md"):
        text = page.read_text(encoding="utf-8")
        for rule in RULES.values():
            assert f"{rule.id}.md) | {rule.name} | {rule.severity.value} |" in text, (page, rule)


def test_bo501_syntax_error_at_end_of_input(tmp_path: Path) -> None:
    root = plain(tmp_path, ("a", "SELECT 1;\nCREATE TABLE a (id int", HIGH + "DROP TABLE a;"))
    assert found(run(root, "postgresql")) == [("BO501", "001_a.up.sql", 2)]
