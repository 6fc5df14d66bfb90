"""``backout check``: orphaned rows, leftovers and drift, and the verify queries of rollbacks.

What is looked for, and how:

- **orphans**: rows whose foreign key points nowhere. The database says which keys it does not
  guarantee (PostgreSQL: keys added ``NOT VALID``; SQLite: every key, with ``PRAGMA
  foreign_key_check``, which works with foreign keys off). Foreign keys that the rollback of a
  migration dropped are checked too, from the definition the forward script gave them.
- **suspected orphans**: columns named like a reference (``registryItemId``,
  ``registry_item_id``) with no foreign key, whose target table exists (``registry_items``),
  holding values that match no row of it.
- **leftovers** and **drift**: the applied migrations are replayed on an empty scratch database
  and the result is compared with the live schema. Objects no applied migration accounts for
  are leftovers (an enum type a rollback forgot); objects missing or different are drift.
- **verify**: the ``verify`` queries of the rollbacks that were run must still hold.

Everything is read-only on the live database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from backout.dialects.base import OrphanRows, Session
from backout.dialects.orphans import Reference, count_orphans
from backout.model.documents import JSON_FORMAT
from backout.model.effects import Action, Effect, ObjectKind, ObjectRef, table_key
from backout.model.errors import BackoutError
from backout.model.identifiers import quote_identifier
from backout.model.schema import SchemaChange, SchemaSnapshot, TableInfo, diff_schemas
from backout.project.migration import Migration
from backout.run.journal import describe_unfinished_restore, finish_restore_hint
from backout.run.replay import replay, scratch_workspace
from backout.run.runner import check_passes, prepare, refuse_writing_checks
from backout.run.status import State, StatusReport
from backout.run.workspace import Workspace

KINDS = ("orphan", "suspected_orphan", "leftover", "drift", "verify", "half_restored")


@dataclass(frozen=True)
class CheckProblem:
    """One thing ``check`` found; ``message`` is one line."""

    #: orphan, suspected_orphan, leftover, drift, verify or half_restored (a restore that
    #: stopped part-way, MySQL/MariaDB)
    kind: str
    #: what it is about: ``"registry_purchases"."registryItemId"``, ``enum "VoucherType"``
    object: str
    message: str
    #: rows concerned (orphans), else 0
    count: int = 0
    samples: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """Identity across two runs (a rehearsal compares before and after)."""
        return (self.kind, self.object)


@dataclass
class CheckReport:
    """What ``check`` found, and what it could not look at."""

    database: str
    problems: list[CheckProblem] = field(default_factory=list)
    #: checks that could not run, and why (shown; they do not make the report fail)
    notes: list[str] = field(default_factory=list)
    #: how much was looked at: foreign keys, reference-like columns, verify queries, migrations
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.problems


def check_json(report: CheckReport) -> dict[str, Any]:
    """The ``check --json`` document (docs/json.md)."""
    return {
        "format": JSON_FORMAT,
        "database": report.database,
        "ok": report.ok,
        "problems": [
            {
                "kind": p.kind,
                "object": p.object,
                "message": p.message,
                "count": p.count,
                "samples": list(p.samples),
            }
            for p in report.problems
        ],
        "notes": list(report.notes),
        "checked": dict(report.checked),
    }


# --- names ---------------------------------------------------------------------------------


def show_table(key: str, snapshot: SchemaSnapshot) -> str:
    """A table key as users read it: ``"Voucher"``, or ``"app"."Voucher"`` off the default."""
    table = snapshot.tables.get(key)
    if table is None or table.schema is None or table.schema == snapshot.default_schema:
        return quote_identifier(
            table.name if table is not None else key.rsplit(".", maxsplit=1)[-1]
        )
    return f"{quote_identifier(table.schema)}.{quote_identifier(table.name)}"


def _columns(table: str, columns: tuple[str, ...]) -> str:
    if len(columns) == 1:
        return f"{table}.{quote_identifier(columns[0])}"
    return f"{table}({', '.join(quote_identifier(c) for c in columns)})"


_LABEL = re.compile(r"^(.*?[\"')]) (?:added|removed)\b")


def change_label(change: SchemaChange) -> str:
    """The object a schema change is about, as its detail names it: ``enum "VoucherType"``."""
    match = _LABEL.match(change.detail)
    if match is not None:
        return match[1]
    if change.object_type == "enum_value":
        found = re.match(r"^(.*?) (?:gained|lost) value (.*)$", change.detail)
        if found is not None:
            return f"value {found[2]} of {found[1]}"
    return change.detail.split(" changed ", 1)[0]


# --- orphans -------------------------------------------------------------------------------


def _orphan_problem(
    rows: OrphanRows, snapshot: SchemaSnapshot, kind: str, why: str
) -> CheckProblem:
    table = show_table(rows.table, snapshot)
    parent = show_table(rows.referenced_table, snapshot)
    where = _columns(table, rows.columns)
    target = _columns(parent, rows.referenced_columns)
    plural, verb = ("row", "points") if rows.count == 1 else ("rows", "point")
    return CheckProblem(
        kind=kind,
        object=where,
        message=f"{rows.count} {plural} of {table} {verb} to no row of {parent}: {where} → "
        f"{target} ({why})",
        count=rows.count,
        samples=rows.samples,
    )


def _orphans(session: Session, live: SchemaSnapshot) -> list[CheckProblem]:
    problems = []
    for rows in session.dialect.find_orphans(session, live):
        why = (
            f"foreign key {quote_identifier(rows.constraint)}" if rows.constraint else "foreign key"
        )
        table = live.tables.get(rows.table)
        fk = next(
            (f for f in (table.foreign_keys if table else ()) if f.columns == rows.columns), None
        )
        if fk is not None and not fk.validated:
            why += ", NOT VALID"
        problems.append(_orphan_problem(rows, live, "orphan", why))
    return problems


@dataclass(frozen=True)
class _DroppedKey:
    """A foreign key that a rollback which was run dropped."""

    migration: str
    table: str
    name: str
    columns: tuple[str, ...]
    referenced: str | None
    referenced_columns: tuple[str, ...]


_FK_DETAIL = re.compile(r"^\((?P<cols>[^)]*)\) → (?P<table>.+?)\((?P<ref>[^)]*)\)")


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip().strip('"').replace('""', '"') for p in text.split(",") if p.strip())


def _dropped_keys(ws: Workspace, status: StatusReport, live: SchemaSnapshot) -> list[_DroppedKey]:
    """Foreign keys dropped by the rollbacks of rolled-back migrations, with their definition
    as a forward script created them (when one did)."""
    rolled_back = [
        e.migration
        for e in status.by_state(State.ROLLED_BACK)
        if e.migration is not None and e.migration.down is not None
    ]
    if not rolled_back:
        return []
    created = _created_keys(ws)
    found: list[_DroppedKey] = []
    for migration in rolled_back:
        for effect in _effects(ws, migration, down=True):
            target = effect.target
            if effect.action is not Action.DROP or target.kind not in (
                ObjectKind.FOREIGN_KEY,
                ObjectKind.CONSTRAINT,
            ):
                continue
            if target.parent is None:
                continue
            definition = created.get((target.parent.casefold(), target.name.casefold()))
            if definition is None:
                continue  # not a foreign key, or not created by a migration
            columns, ref, ref_columns = definition
            referenced = table_key(ref, live) if ref is not None else None
            found.append(
                _DroppedKey(
                    migration.id, target.parent, target.name, columns, referenced, ref_columns
                )
            )
    return found


_CreatedKeys = dict[tuple[str, str], tuple[tuple[str, ...], ObjectRef | None, tuple[str, ...]]]

#: the foreign keys the forward scripts create, for the last project asked about (see
#: :func:`_created_keys`)
_CREATED: dict[tuple[object, ...], _CreatedKeys] = {}


def _created_keys(ws: Workspace) -> _CreatedKeys:
    """Every foreign key a forward script creates, by (table, name) folded: its columns, the
    table it references and their columns (the last script creating it wins). Read once per
    project's scripts: a rehearsal runs the checks twice per migration, and going through
    every script each time made a walk quadratic in the project's size."""
    key = (ws.dialect.name, *((str(m.up.path), m.up.checksum) for m in ws.project.migrations))
    created = _CREATED.get(key)
    if created is not None:
        return created
    created = {}
    for migration in ws.project.migrations:
        for effect in _effects(ws, migration, down=False):
            target = effect.target
            if effect.action is not Action.CREATE or target.kind is not ObjectKind.FOREIGN_KEY:
                continue
            match = _FK_DETAIL.match(effect.detail)
            refs = [r for r in effect.references if r.kind is ObjectKind.TABLE]
            created[((target.parent or "").casefold(), target.name.casefold())] = (
                _names(match["cols"]) if match else (),
                refs[0] if refs else None,
                _names(match["ref"]) if match else (),
            )
    _CREATED.clear()
    _CREATED[key] = created
    return created


#: effects per (dialect, script, checksum): a rehearsal runs the checks twice per migration
_EFFECTS: dict[tuple[str, str, str], tuple[Effect, ...]] = {}


def _effects(ws: Workspace, migration: Migration, *, down: bool) -> Iterable[Effect]:
    script = migration.down if down else migration.up
    if script is None:
        return ()
    key = (ws.dialect.name, str(script.path), script.checksum)
    if key not in _EFFECTS:
        try:
            unit = prepare(ws.dialect, script)
        except BackoutError:
            return ()  # a script that does not parse is lint's business
        _EFFECTS[key] = ws.dialect.analyze(unit.statements).effects
    return _EFFECTS[key]


_REFERENCE_NAME = re.compile(r"^(?P<stem>[A-Za-z0-9_]*?[A-Za-z0-9])_?(?:Id|ID|id)$")


def _normal(name: str) -> str:
    return name.replace("_", "").casefold()


def _target_of(column: str, live: SchemaSnapshot, table: TableInfo) -> TableInfo | None:
    """The table a reference-like column name points to (``registryItemId`` → registry_items)."""
    match = _REFERENCE_NAME.match(column)
    if match is None or column.casefold() == "id":
        return None
    stem = _normal(match["stem"])
    wanted = {stem, stem + "s", stem + "es"}
    if stem.endswith("y"):
        wanted.add(stem[:-1] + "ies")
    candidates = [
        t
        for t in live.tables.values()
        if _normal(t.name) in wanted and (t.schema == table.schema or t.schema is None)
    ]
    return candidates[0] if len(candidates) == 1 else None


def _covered(table: TableInfo, column: str) -> bool:
    return any(column in fk.columns for fk in table.foreign_keys)


def _single_key(table: TableInfo) -> str | None:
    pk = table.primary_key
    if pk is not None and len(pk.columns) == 1:
        return pk.columns[0]
    return None


def _reference_problems(
    ws: Workspace, session: Session, live: SchemaSnapshot, status: StatusReport, report: CheckReport
) -> list[CheckProblem]:
    """Orphans behind foreign keys a rollback dropped, and reference-like columns with none."""
    problems: list[CheckProblem] = []
    done: set[tuple[str, tuple[str, ...]]] = set()
    dropped = _dropped_keys(ws, status, live)
    for key in dropped:
        named = ObjectRef(
            ObjectKind.TABLE, None, key.table, case_insensitive=not ws.dialect.has_schemas
        )
        ref_key = table_key(named, live)
        table = live.tables.get(ref_key) if ref_key else None
        parent = live.tables.get(key.referenced) if key.referenced else None
        if table is None or parent is None or not key.columns:
            continue
        columns = tuple(c for c in key.columns if table.column(c) is not None)
        ref_columns = key.referenced_columns or ((_single_key(parent) or ""),)
        if len(columns) != len(key.columns) or not all(
            parent.column(c) is not None for c in ref_columns
        ):
            continue  # the rollback dropped the columns too: nothing left to point anywhere
        if any(fk.columns == columns for fk in table.foreign_keys):
            continue  # re-created since
        done.add((table.key, columns))
        rows = count_orphans(session, Reference(table, columns, parent, ref_columns, key.name))
        if rows.count:
            why = (
                f"its foreign key {quote_identifier(key.name)} was dropped by the rollback of "
                f"{key.migration}"
            )
            problems.append(_orphan_problem(rows, live, "orphan", why))
    looked = 0
    for table in live.tables.values():
        for column in table.columns:
            if (table.key, (column.name,)) in done or _covered(table, column.name):
                continue
            target = _target_of(column.name, live, table)
            if target is None or target.key == table.key:
                continue
            pk = _single_key(target)
            target_column = target.column(pk) if pk else None
            if pk is None or target_column is None:
                continue
            looked += 1
            ref = Reference(
                table,
                (column.name,),
                target,
                (pk,),
                as_text=target_column.type != column.type,
            )
            rows = count_orphans(session, ref)
            if rows.count:
                problems.append(
                    _orphan_problem(
                        rows,
                        live,
                        "suspected_orphan",
                        "no foreign key; suspected from the column's name",
                    )
                )
    report.checked["reference_like_columns"] = looked
    report.checked["keys_dropped_by_rollbacks"] = len(dropped)
    return problems


# --- verify ----------------------------------------------------------------------------------


def _verify_problems(
    ws: Workspace, session: Session, status: StatusReport, report: CheckReport
) -> list[CheckProblem]:
    problems: list[CheckProblem] = []
    count = 0
    for entry in status.by_state(State.ROLLED_BACK):
        script = entry.migration.down if entry.migration is not None else None
        if script is None:
            continue
        refuse_writing_checks(ws.dialect, script)
        for check in script.directives.verify:
            count += 1
            where = f"{script.display}:{check.line}"
            try:
                sql, params = session.dialect.bind(check.sql, {})
                passes = check_passes(session.query_undone(sql, params))
                error = None
            except BackoutError as exc:
                passes, error = False, str(exc)
            if passes:
                continue
            reason = f"query failed: {error}" if error else "no longer holds"
            flat = " ".join(check.sql.split())
            problems.append(
                CheckProblem(
                    kind="verify",
                    object=where,
                    message=f"{where}: verify of the rollback of {entry.id} {reason}: {flat}",
                )
            )
    report.checked["verify_queries"] = count
    return problems


# --- drift -----------------------------------------------------------------------------------


def _owner_table(change: SchemaChange, snapshot: SchemaSnapshot) -> str | None:
    """The table a column, constraint, index, trigger or owned sequence belongs to."""
    if change.object_type in ("column", "constraint", "foreign_key"):
        return next((k for k in snapshot.tables if change.name.startswith(k + ".")), None)
    if change.object_type == "index":
        index = snapshot.indexes.get(change.name)
        return index.table_key if index else None
    if change.object_type == "trigger":
        trigger = snapshot.triggers.get(change.name)
        return f"{trigger.schema}.{trigger.table}" if trigger and trigger.schema else None
    if change.object_type == "sequence":
        sequence = snapshot.sequences.get(change.name)
        return sequence.owned_by_table if sequence else None
    return None


def drift_problems(
    expected: SchemaSnapshot,
    live: SchemaSnapshot,
    *,
    ignore_column_order: bool = False,
) -> list[CheckProblem]:
    """Leftovers (in the database, not in ``expected``) and drift (missing or different)."""
    diff = diff_schemas(expected, live)
    whole = {c.name for c in diff.changes if c.object_type == "table" and c.kind != "changed"}
    problems: list[CheckProblem] = []
    for change in diff.all_changes(ignore_column_order):
        owner = _owner_table(change, live if change.kind == "added" else expected)
        if owner is not None and owner in whole:
            continue  # said once, with its table
        label = change_label(change)
        if change.kind == "added":
            message = f"{label} is in the database, but no applied migration creates it"
            problems.append(CheckProblem("leftover", label, message))
        elif change.kind == "removed":
            message = f"{label} is missing: the applied migrations create it"
            problems.append(CheckProblem("drift", label, message))
        else:
            message = f"{change.detail} (applied migrations → database)"
            problems.append(CheckProblem("drift", label, message))
    return problems


def _drift(
    ws: Workspace,
    live: SchemaSnapshot,
    status: StatusReport,
    report: CheckReport,
    ignore_column_order: bool,
) -> list[CheckProblem]:
    missing = [e.id for e in status.applied if e.migration is None]
    if missing:
        report.notes.append(
            f"leftovers and drift not checked: applied migration {missing[0]} is missing from disk"
        )
        return []
    applied = [e.migration for e in status.applied if e.migration is not None]
    report.checked["migrations_replayed"] = len(applied)
    try:
        with scratch_workspace(ws) as scratch, scratch.session() as session:
            expected = replay(scratch, session, applied)
    except BackoutError as exc:
        report.notes.append(
            f"leftovers and drift not checked: replaying the applied migrations on a scratch "
            f"database failed: {exc}"
        )
        return []
    return drift_problems(expected, live, ignore_column_order=ignore_column_order)


# --- entry point -----------------------------------------------------------------------------


def run_checks(
    ws: Workspace,
    session: Session | None = None,
    *,
    drift: bool = True,
    ignore_column_order: bool = False,
    snapshot: SchemaSnapshot | None = None,
) -> CheckReport:
    """Look for orphans, leftovers, drift and failing verify queries; changes nothing.

    ``session``: an open session on ``ws``'s database to use (else one is opened and closed).
    ``drift=False`` skips the replay on a scratch database (leftovers and drift).
    ``snapshot``: the database's schema, when the caller has just read it.
    """
    report = CheckReport(database=ws.url.masked())
    if session is None:
        if not ws.database_exists():
            report.notes.append("the database does not exist yet: nothing to check")
            return report
        with ws.session(create=False) as own:
            return _run(ws, own, report, drift, ignore_column_order, snapshot)
    return _run(ws, session, report, drift, ignore_column_order, snapshot)


def _run(
    ws: Workspace,
    session: Session,
    report: CheckReport,
    drift: bool,
    ignore_column_order: bool,
    snapshot: SchemaSnapshot | None,
) -> CheckReport:
    status = ws.read_status(session)
    report.problems.extend(
        CheckProblem(
            "half_restored",
            f"backup {run.backup}",
            f"the database is half-restored: {describe_unfinished_restore(run)}; "
            f"{finish_restore_hint(run)}",
        )
        for run in status.unfinished_restores
    )
    live = snapshot if snapshot is not None else ws.dialect.snapshot(session)
    report.checked["tables"] = len(live.tables)
    report.checked["foreign_keys"] = sum(len(t.foreign_keys) for t in live.tables.values())
    report.problems.extend(_orphans(session, live))
    report.problems.extend(_reference_problems(ws, session, live, status, report))
    report.problems.extend(_verify_problems(ws, session, status, report))
    if drift:
        report.problems.extend(_drift(ws, live, status, report, ignore_column_order))
    return report
