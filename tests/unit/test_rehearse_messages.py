"""The sentences a rehearsal and ``check`` fail with, from snapshots alone (no database)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backout.analysis.checks import CheckProblem, drift_problems
from backout.model.schema import (
    ColumnInfo,
    EnumInfo,
    IndexInfo,
    SchemaSnapshot,
    TableInfo,
    TableStats,
)
from backout.rehearsal.compare import (
    check_failures,
    data_failures,
    dump_failures,
    schema_failures,
)


def snap(*, tables: Sequence[TableInfo] = (), **kw: Any) -> SchemaSnapshot:
    return SchemaSnapshot.build(
        "postgresql",
        default_schema="public",
        schemas=["public"],
        tables=tables,
        **kw,
    )


def users(email_type: str = "text", *extra: ColumnInfo) -> TableInfo:
    columns = (ColumnInfo("id", 1, "bigint"), ColumnInfo("email", 2, email_type), *extra)
    return TableInfo("public", "User", columns)


INDEX = IndexInfo("public", "User_email_idx", "User", ("email",), definition="CREATE INDEX ...")


def test_schema_sentences_after_a_rollback() -> None:
    before = snap(tables=[users()], indexes=[INDEX], enums=[EnumInfo("public", "S", ("a",))])
    after = snap(
        tables=[users("character varying(10)")],
        enums=[EnumInfo("public", "S", ("a", "b")), EnumInfo("public", "VoucherType", ("x",))],
    )
    failures, notes = schema_failures(before, after, ignore_column_order=False)
    assert [f.message for f in failures] == [
        'column "User"."email" came back as character varying(10), was text',
        'index "User_email_idx" missing after rollback',
        'enum "VoucherType" left behind by the rollback',
        "value 'b' of enum \"S\" left behind by the rollback",
    ]
    assert notes == []


def test_column_order_is_its_own_failure_or_a_note() -> None:
    before = snap(tables=[users()])
    moved = TableInfo(
        "public", "User", (ColumnInfo("email", 1, "text"), ColumnInfo("id", 2, "bigint"))
    )
    failures, notes = schema_failures(before, snap(tables=[moved]), ignore_column_order=False)
    assert [(f.kind, f.message) for f in failures] == [
        (
            "column_order",
            'table "User" changed column order: (id, email) → (email, id) after the rollback',
        )
    ]
    failures, notes = schema_failures(before, snap(tables=[moved]), ignore_column_order=True)
    assert failures == [] and notes[0].endswith("--strict-column-order fails on it)")


def test_known_drift_is_not_blamed_on_the_migration() -> None:
    expected = snap(tables=[users()])
    live = snap(tables=[users()], indexes=[INDEX])  # an index someone added by hand
    from backout.model.schema import diff_schemas

    known = diff_schemas(expected, live)
    failures, _ = schema_failures(expected, live, ignore_column_order=False, known=known)
    assert failures == []


def test_data_sentences() -> None:
    schema = snap(tables=[users()])
    before = {"public.User": TableStats(1000, "a")}
    assert [
        f.message for f in data_failures(before, {"public.User": TableStats(988, "b")}, schema, "M")
    ] == ['12 rows of table "User" were deleted although M does not touch it (1000 → 988 rows)']
    assert [
        f.message
        for f in data_failures(before, {"public.User": TableStats(1000, "c")}, schema, "M")
    ] == [
        'rows of table "User" changed (1000 rows, checksum differs) although M does not touch it '
        "(1000 → 1000 rows)"
    ]
    assert data_failures(before, dict(before), schema, "M") == []


def test_only_new_or_worse_check_problems_fail() -> None:
    old = [CheckProblem("orphan", '"a"."b"', "2 rows ...", count=2)]
    same = [CheckProblem("orphan", '"a"."b"', "2 rows ...", count=2)]
    worse = [CheckProblem("orphan", '"a"."b"', "5 rows ...", count=5, samples=("x=1",))]
    assert check_failures(old, same) == []
    assert [f.message for f in check_failures(old, worse)] == [
        "5 rows ... after the rollback; e.g. x=1"
    ]


def test_dump_difference_quotes_the_lines() -> None:
    [failure] = dump_failures("A\nB\n", "A\nB\nALTER TABLE x SET STATISTICS 500;\n")
    assert failure.message == (
        "pg_dump --schema-only differs after the rollback: +ALTER TABLE x SET STATISTICS 500;"
    )
    assert dump_failures("A\n", "A\n") == [] and dump_failures(None, "A") == []


def test_drift_sentences_name_leftovers_once() -> None:
    expected = snap(tables=[users()])
    live = snap(
        tables=[users(), TableInfo("public", "stray", (ColumnInfo("id", 1, "int"),))],
        indexes=[IndexInfo("public", "stray_idx", "stray", ("id",))],
    )
    problems = drift_problems(expected, live)
    assert [(p.kind, p.message) for p in problems] == [
        ("leftover", 'table "stray" is in the database, but no applied migration creates it')
    ]
