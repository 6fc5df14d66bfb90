"""How scripts map onto transactions (backout.run.transactions): no database needed.

Atomic where the script's own BEGIN/COMMIT blocks fit in one transaction, journaled where a
statement cannot run in a transaction block or two statements cannot share one, and refused
(file and line) where the transaction control cannot be honoured.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backout.dialects.base import Dialect
from backout.dialects.mysql.dialect import MysqlDialect
from backout.dialects.postgres.dialect import PostgresDialect
from backout.dialects.sqlite.dialect import SqliteDialect
from backout.model.errors import ProjectError
from backout.model.script import ScriptKind, make_script, sha256_hex
from backout.run.runner import PreparedScript, prepare

PG = PostgresDialect()

#: Prisma's AlterEnum template, as `prisma migrate dev` writes it
PRISMA_ALTER_ENUM = """\
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


def prep(text: str, dialect: Dialect = PG) -> PreparedScript:
    script = make_script(
        Path("m.sql"),
        "m.sql",
        ScriptKind.FORWARD,
        text,
        first_line=1,
        checksum=sha256_hex(text.encode()),
    )
    return prepare(dialect, script)


def refused(text: str, dialect: Dialect = PG) -> ProjectError:
    with pytest.raises(ProjectError) as caught:
        prep(text, dialect)
    return caught.value


def test_prisma_enum_template_runs_atomically_without_its_begin_commit() -> None:
    unit = prep(PRISMA_ALTER_ENUM)
    assert unit.transactional
    assert [s.line for s in unit.layout.control] == [2, 10]
    assert [s.index for s in unit.statements] == list(range(1, 8))
    assert not any(s.sql.upper().startswith(("BEGIN", "COMMIT")) for s in unit.statements)
    assert unit.layout.blocks == ((1, 7),)
    (note,) = unit.notes(PG)
    assert "BEGIN (line 2), COMMIT (line 10) are not sent" in note
    assert "atomically" in note


def test_concurrently_switches_to_journaled_and_blocks_stay_one_transaction() -> None:
    unit = prep(
        "BEGIN;\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\nCOMMIT;\n"
        "CREATE INDEX CONCURRENTLY a_idx ON a (id);\nCREATE TABLE c (id int);\n"
    )
    assert not unit.transactional
    assert "CREATE INDEX CONCURRENTLY cannot run inside a transaction block (line 5)" in (
        unit.journal_reason(PG)
    )
    assert [[s.line for s in group] for group in unit.groups()] == [[2, 3], [5], [6]]
    assert [unit.commits_alone(s) for s in unit.statements] == [False, False, True, False]
    assert any("runs journaled" in note for note in unit.notes(PG))


@pytest.mark.parametrize(
    "text",
    [
        "VACUUM;\n",
        "REINDEX INDEX CONCURRENTLY i;\n",
        "DROP INDEX CONCURRENTLY IF EXISTS i;\n",
    ],
)
def test_non_transactional_statements_switch_to_journaled(text: str) -> None:
    assert not prep(text).transactional


def test_new_enum_value_used_later_switches_to_journaled() -> None:
    unit = prep(
        "ALTER TYPE \"Status\" ADD VALUE 'ARCHIVED';\n"
        "UPDATE \"Post\" SET status = 'ARCHIVED' WHERE old;\n"
    )
    assert not unit.transactional
    assert "'ARCHIVED' added to Status at line 1 is used at line 2" in unit.journal_reason(PG)
    assert "55P04" in unit.journal_reason(PG)


@pytest.mark.parametrize(
    "text",
    [
        # the same value added to two types: the second ADD VALUE is no use of the first
        "ALTER TYPE a ADD VALUE 'X';\nALTER TYPE b ADD VALUE 'X';\n",
        # a type created in the same transaction may use its new values at once
        "CREATE TYPE a AS ENUM ('A');\nALTER TYPE a ADD VALUE 'X';\n"
        "CREATE TABLE t (v a DEFAULT 'X');\n",
        # not used: only added
        "ALTER TYPE a ADD VALUE 'X';\nCREATE TABLE t (id int);\n",
        # inside a PL/pgSQL body, which is neither run nor analysed when it is defined (a
        # LANGUAGE sql body is analysed at once: see the test after this one)
        "ALTER TYPE a ADD VALUE 'X';\n"
        "CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN 'X'; END $$;\n",
    ],
)
def test_enum_values_that_can_share_the_transaction(text: str) -> None:
    assert prep(text).transactional


@pytest.mark.parametrize(
    "use",
    [
        "UPDATE t SET v = $$X$$;\n",
        "UPDATE t SET v = $q$X$q$;\n",
        "UPDATE t SET v = U&'\\0058';\n",
        "CREATE FUNCTION f() RETURNS a LANGUAGE sql AS $$ SELECT 'X'::a $$;\n",
        "CREATE PROCEDURE p() LANGUAGE SQL AS $$ UPDATE t SET v = 'X' $$;\n",
    ],
)
def test_new_enum_value_in_any_literal_form_is_seen(use: str) -> None:
    unit = prep("ALTER TYPE a ADD VALUE 'X';\n" + use)
    assert not unit.transactional
    assert "'X' added to a at line 1 is used at line 2" in unit.journal_reason(PG)


def test_new_enum_value_used_in_a_do_block_is_seen() -> None:
    unit = prep(
        "ALTER TYPE s ADD VALUE 'X';\nDO $$ BEGIN UPDATE t SET v = 'X' WHERE v IS NULL; END $$;\n"
    )
    assert not unit.transactional
    assert "'X' added to s at line 1 is used at line 2" in unit.journal_reason(PG)


def test_value_added_in_a_block_and_used_after_its_commit_is_journaled() -> None:
    unit = prep("BEGIN;\nALTER TYPE a ADD VALUE 'X';\nCOMMIT;\nUPDATE t SET v = 'X';\n")
    assert not unit.transactional
    assert [[s.line for s in g] for g in unit.groups()] == [[2], [4]]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("CREATE TABLE a (id int);\nROLLBACK;\n", 2, "ROLLBACK discards the script's own work"),
        ("BEGIN;\nCREATE TABLE a (id int);\nABORT;\n", 3, "ABORT discards"),
        ("BEGIN;\nBEGIN;\nCOMMIT;\nCOMMIT;\n", 2, "inside the transaction opened at line 1"),
        ("CREATE TABLE a (id int);\nCOMMIT;\n", 2, "COMMIT without a BEGIN"),
        ("CREATE TABLE a (id int);\nBEGIN;\nCREATE TABLE b (id int);\n", 2, "never committed"),
        (
            "BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;\n",
            2,
            "the script's own BEGIN puts it in one",
        ),
        ("BEGIN ISOLATION LEVEL SERIALIZABLE;\nCOMMIT;\n", 1, "transaction options"),
        ("PREPARE TRANSACTION 'x';\n", 1, "two-phase commit"),
        (
            "SAVEPOINT s;\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
            1,
            "needs an open transaction, but the script runs journaled",
        ),
    ],
)
def test_transaction_control_that_cannot_be_honoured_is_refused(
    text: str, line: int, message: str
) -> None:
    error = refused(text)
    assert error.line == line
    assert message in str(error)
    assert str(error).startswith(f"m.sql:{line}: ")


def test_transaction_off_keeps_blocks_atomic() -> None:
    unit = prep(
        "-- backout:transaction off\nCREATE TABLE a (id int);\n"
        "BEGIN;\nCREATE TABLE b (id int);\nCREATE TABLE c (id int);\nCOMMIT;\n"
    )
    assert unit.journal_reason(PG) == "transaction off"
    assert [len(g) for g in unit.groups()] == [1, 2]
    assert [unit.commits_alone(s) for s in unit.statements] == [True, False, False]


def test_savepoints_nest_in_the_atomic_transaction() -> None:
    unit = prep("SAVEPOINT s;\nCREATE TABLE a (id int);\nRELEASE SAVEPOINT s;\n")
    assert unit.transactional
    assert len(unit.statements) == 3


def test_sqlite_begin_commit_and_vacuum() -> None:
    lite = SqliteDialect()
    unit = prep("BEGIN IMMEDIATE;\nCREATE TABLE a (id INTEGER);\nEND TRANSACTION;\n", lite)
    assert unit.transactional and len(unit.statements) == 1
    assert not prep("CREATE TABLE a (id INTEGER);\nVACUUM;\n", lite).transactional
    assert "ROLLBACK" in str(refused("BEGIN;\nROLLBACK;\n", lite))


def test_mysql_block_with_ddl_runs_statement_by_statement() -> None:
    my = MysqlDialect()
    dml = prep("START TRANSACTION;\nINSERT INTO t VALUES (1);\nCOMMIT;\n", my)
    assert dml.transactional and len(dml.statements) == 1
    ddl = prep(
        "START TRANSACTION;\nCREATE TABLE u (id INT);\nINSERT INTO u VALUES (1);\nCOMMIT;\n", my
    )
    assert not ddl.transactional
    # DDL commits the block implicitly anyway: each statement commits (journaled) on its own
    assert [len(g) for g in ddl.groups()] == [1, 1]
    assert "never committed" in str(refused("START TRANSACTION;\nINSERT INTO t VALUES (1);\n", my))


# --- property: the layout agrees with a model of what psql would do -------------------------------

PIECES = [
    "BEGIN;",
    "COMMIT;",
    "ROLLBACK;",
    "CREATE TABLE t{n} (id int);",
    "CREATE INDEX CONCURRENTLY i{n} ON t (id);",
]


def _model(pieces: list[str]) -> tuple[bool, bool]:
    """(accepted, atomic) as the rules say: balanced blocks, no ROLLBACK, nothing
    non-transactional inside a block; atomic when nothing non-transactional at all."""
    depth = 0
    concurrent = False
    for piece in pieces:
        if piece == "ROLLBACK;":
            return False, False
        if piece == "BEGIN;":
            if depth:
                return False, False
            depth = 1
        elif piece == "COMMIT;":
            if not depth:
                return False, False
            depth = 0
        elif "CONCURRENTLY" in piece:
            if depth:
                return False, False
            concurrent = True
    return depth == 0, not concurrent


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=10))
def test_layout_matches_the_model(choice: list[str]) -> None:
    pieces = [p.format(n=i) for i, p in enumerate(choice)]
    text = "".join(p + "\n" for p in pieces)
    accepted, atomic = _model(pieces)
    if not accepted:
        with pytest.raises(ProjectError) as caught:
            prep(text)
        assert caught.value.line is not None
        return
    unit = prep(text)
    kept = [(i + 1, p) for i, p in enumerate(pieces) if p not in ("BEGIN;", "COMMIT;")]
    assert [(s.line, s.sql + ";") for s in unit.statements] == kept
    assert [s.index for s in unit.statements] == list(range(1, len(kept) + 1))
    assert unit.transactional is atomic
    # every statement runs exactly once, in order, whatever the grouping
    assert [s for g in unit.groups() for s in g] == list(unit.statements)
