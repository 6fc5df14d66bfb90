"""What a rehearsal compares, and the precise sentences it fails with.

Three oracles say whether a rollback put the database back: backout's catalog snapshot
(:func:`schema_failures`), the database's own schema dump (:func:`dump_failures`, PostgreSQL's
``pg_dump --schema-only``), and per-table row counts and checksums of the tables the migration
does not touch (:func:`data_failures`). ``check``'s orphan queries run before and after: only
new problems count (:func:`check_failures`).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from backout.analysis.checks import CheckProblem, change_label, show_table
from backout.model.schema import SchemaChange, SchemaDiff, SchemaSnapshot, TableStats, diff_schemas

#: at most this many differing dump lines are quoted
DUMP_LINES = 6


@dataclass(frozen=True)
class Failure:
    """One reason a rehearsal failed; ``message`` is one line."""

    #: schema, column_order, dump, data, check, apply, rollback, reapply, smoke, setup
    kind: str
    message: str


def _column_type(change: SchemaChange) -> str | None:
    if change.object_type == "column" and " changed type: " in change.detail:
        label = change.detail.split(" changed type: ", 1)[0]
        return f"{label} came back as {change.after}, was {change.before}"
    return None


def describe_after_rollback(change: SchemaChange) -> str:
    """A difference between the schema before a migration and after its rollback, as a sentence.

    ``change`` comes from ``diff_schemas(before, after_rollback)``.
    """
    label = change_label(change)
    if change.object_type == "enum_value":
        return (
            f"{label} left behind by the rollback"
            if change.kind == "added"
            else f"{label} missing after rollback"
        )
    if change.kind == "added":
        return f"{label} left behind by the rollback"
    if change.kind == "removed":
        return f"{label} missing after rollback"
    return _column_type(change) or f"{change.detail} (before the migration → after its rollback)"


def _keys(diff: SchemaDiff) -> set[tuple[str, str, str, str]]:
    return {(c.object_type, c.name, c.kind, c.detail) for c in diff.changes + diff.column_order}


def schema_failures(
    before: SchemaSnapshot,
    after: SchemaSnapshot,
    *,
    ignore_column_order: bool,
    known: SchemaDiff | None = None,
) -> tuple[list[Failure], list[str]]:
    """(failures, notes) for the schema after a rollback versus the schema before.

    ``known``: differences that existed before the rehearsal (drift), subtracted.
    Column-order differences are their own failures, or notes when relaxed.
    """
    diff = diff_schemas(before, after)
    skip = _keys(known) if known is not None else set()
    failures = [
        Failure("schema", describe_after_rollback(c))
        for c in diff.changes
        if (c.object_type, c.name, c.kind, c.detail) not in skip
    ]
    notes: list[str] = []
    for change in diff.column_order:
        if (change.object_type, change.name, change.kind, change.detail) in skip:
            continue
        text = f"{change.detail} after the rollback"
        if ignore_column_order:
            notes.append(
                text + " (a note: a re-added column comes last on PostgreSQL, and nothing that "
                "names columns depends on their order; --strict-column-order fails on it)"
            )
        else:
            failures.append(Failure("column_order", text))
    return failures, notes


def reapply_failures(first: SchemaSnapshot, again: SchemaSnapshot) -> list[Failure]:
    """The schema after re-applying a migration must be the one it produced the first time."""
    diff = diff_schemas(first, again)
    return [
        Failure("reapply", f"re-applying gives a different schema: {c.detail}")
        for c in diff.all_changes()
    ]


def dump_failures(before: str | None, after: str | None) -> list[Failure]:
    """The normalised schema dumps before and after must be equal (first lines quoted)."""
    if before is None or after is None or before == after:
        return []
    lines = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    shown = "; ".join(" ".join(line.split()) for line in lines[:DUMP_LINES])
    more = f" (and {len(lines) - DUMP_LINES} more lines)" if len(lines) > DUMP_LINES else ""
    return [Failure("dump", f"pg_dump --schema-only differs after the rollback: {shown}{more}")]


def data_failures(
    before: Mapping[str, TableStats],
    after: Mapping[str, TableStats],
    snapshot: SchemaSnapshot,
    migration: str,
) -> list[Failure]:
    """Rows of tables the migration does not touch must be exactly as they were."""
    failures: list[Failure] = []
    for key, old in sorted(before.items()):
        new = after.get(key)
        if new is None or new == old:
            continue
        table = show_table(key, snapshot)
        if new.row_count < old.row_count:
            lost = old.row_count - new.row_count
            what = f"{lost} rows of table {table} were deleted"
        elif new.row_count > old.row_count:
            what = f"{new.row_count - old.row_count} rows were added to table {table}"
        else:
            what = f"rows of table {table} changed ({old.row_count} rows, checksum differs)"
        failures.append(
            Failure(
                "data",
                f"{what} although {migration} does not touch it "
                f"({old.row_count} → {new.row_count} rows)",
            )
        )
    return failures


def check_failures(
    before: Collection[CheckProblem], after: Collection[CheckProblem]
) -> list[Failure]:
    """Problems ``check`` finds after the rollback that it did not find before (or more rows)."""
    old = {(p.kind, p.object): p.count for p in before}
    failures: list[Failure] = []
    for problem in after:
        count = old.get((problem.kind, problem.object))
        if count is not None and problem.count <= count:
            continue
        samples = f"; e.g. {', '.join(problem.samples[:3])}" if problem.samples else ""
        failures.append(Failure("check", f"{problem.message} after the rollback{samples}"))
    return failures
