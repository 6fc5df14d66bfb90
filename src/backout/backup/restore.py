"""Restoring a catalogued backup.

``restore`` either loads a backup into a new, empty database for inspection (``--into``), or
replaces the current database's contents: it verifies the file first, takes a full backup of
the current state, and then restores in one transaction that is committed only if the schema
fingerprint and the restored row counts match the backup's record.

Every difference between databases lives in :mod:`backout.dialects` (see
:class:`~backout.dialects.base.BackupEngine`); this module never prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from backout.backup.catalog import BackupCatalog, BackupRecord, database_display, same_database
from backout.backup.take import load_snapshot, take_backup, verify_backup
from backout.dialects.base import Progress, RestoreRequest, Session, no_progress, utcnow
from backout.model.errors import (
    BackoutError,
    BackupError,
    DatabaseError,
    Declined,
    HistoryError,
    LockError,
    UsageError,
)
from backout.model.schema import SchemaChange, SchemaSnapshot, TableInfo, diff_schemas
from backout.model.urls import mask_url, parse_url, with_params
from backout.run import journal as journal_entries
from backout.run.history import Event
from backout.run.journal import InterruptedRun, Journal, RunContext
from backout.run.runner import Executor

if TYPE_CHECKING:
    from backout.dialects.base import BackupEngine
    from backout.run.workspace import Workspace

__all__ = [
    "RestorePlan",
    "RestoreResult",
    "restore",
    "restore_action",
    "unfinished_restore",
]


@dataclass(frozen=True)
class RestorePlan:
    """What a restore will do, shown before it is confirmed."""

    backup: BackupRecord
    #: the database that will be written (masked URL)
    target: str
    #: True: a new database (``--into``); False: the current database is replaced
    into_new: bool
    #: tables whose rows will be replaced by the backup's
    replaces: tuple[str, ...]
    #: tables that exist now, are not in the backup, and will be dropped
    drops: tuple[str, ...] = ()
    #: tables the backup's schema has, that are missing now and whose rows it does not hold:
    #: they come back empty
    created_empty: tuple[str, ...] = ()
    #: how the current schema differs from the backup's (what the restore undoes)
    schema_changes: tuple[str, ...] = ()
    #: what is backed up first (None: nothing, the target is new)
    pre_restore_backup: str | None = None


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore."""

    plan: RestorePlan
    backup: BackupRecord
    #: the full backup of the state the restore replaced (None for ``--into``)
    pre_restore: BackupRecord | None
    #: the restored database (masked URL)
    target: str
    duration_s: float
    #: rows per restored table, as counted afterwards
    row_counts: Mapping[str, int]
    #: the schema fingerprint afterwards (equal to the backup's)
    schema_fingerprint: str


def _table_shape(table: TableInfo, *, constraints_in_place: bool) -> TableInfo:
    if constraints_in_place:
        return dataclasses.replace(table, constraints=(), foreign_keys=())
    return table


def restore_action(change: SchemaChange) -> str:
    """A difference from the current schema to the backup's, as what the restore does to the
    database: ``re-creates table "Voucher"``, ``drops column "User"."nickname"``.

    The change's own wording ("added"/"removed") is relative to the current schema, which
    reads backwards to a user who knows what happened since the backup.
    """
    marker = {"added": " added", "removed": " removed"}.get(change.kind)
    if marker is None or marker not in change.detail:
        return f"changes back {change.detail}"
    label, _, rest = change.detail.partition(marker)
    verb = "re-creates" if change.kind == "added" else "drops"
    return f"{verb} {label}{rest}"


def _plan_over(
    ws: Workspace,
    engine: BackupEngine,
    record: BackupRecord,
    backup_schema: SchemaSnapshot,
    current: SchemaSnapshot,
) -> RestorePlan:
    """The plan of a restore over the current database; refuses one that cannot reproduce
    the backup's schema (a changed table whose rows the backup does not hold)."""
    full = record.kind == "full"
    changes = diff_schemas(current, backup_schema)
    created_empty: list[str] = []
    problems: list[str] = []
    for key, table in backup_schema.tables.items():
        if full or key in record.tables:
            continue
        now = current.tables.get(key)
        if now is None:
            created_empty.append(key)
            continue
        shape = engine.constraints_in_place
        if _table_shape(now, constraints_in_place=shape) != _table_shape(
            table, constraints_in_place=shape
        ):
            # Described as what happened since the backup, not what a restore would undo.
            since = diff_schemas(backup_schema, current).changes
            details = [c.detail for c in since if c.name == key or c.name.startswith(key + ".")]
            problems.append(f"{key} ({'; '.join(details[:3]) or 'its definition changed'})")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BackupError(
            f"backup {record.id} is {record.kind} and cannot bring back the schema exactly: "
            f"table {problems[0]}{more} changed since, and the backup does not hold its rows; "
            "nothing changed",
            hint=f"restore it into a new database with `backout restore {record.id} --into URL`, "
            "or restore a full backup",
        )
    drops = tuple(sorted(set(current.tables) - set(backup_schema.tables)))
    replaces = tuple(sorted(record.tables))
    return RestorePlan(
        backup=record,
        target=database_display(ws.url),
        into_new=False,
        replaces=replaces,
        drops=drops,
        created_empty=tuple(sorted(created_empty)),
        schema_changes=tuple(restore_action(c) for c in changes.changes),
        pre_restore_backup=f"a full backup of the current state (reason: before restore of "
        f"{record.id})",
    )


def _check_restored(
    engine: BackupEngine,
    session: Session,
    snapshot: SchemaSnapshot,
    record: BackupRecord,
    backup_schema: SchemaSnapshot,
    where: str,
) -> dict[str, int]:
    """Schema fingerprint and row counts of a restored database against the record."""
    if snapshot.fingerprint() != record.schema_fingerprint:
        diff = diff_schemas(backup_schema, snapshot)
        shown = "; ".join(c.detail for c in diff.changes[:3]) or "; ".join(
            c.detail for c in diff.column_order[:3]
        )
        more = f" (and {len(diff.changes) - 3} more)" if len(diff.changes) > 3 else ""
        raise BackupError(
            f"after restoring backup {record.id}, the schema of {where} differs from the "
            f"backup's: {shown}{more}"
        )
    counts = engine.row_counts(session, record.tables)
    wrong = [
        f"{table}: {counts.get(table)} rows, expected {expected}"
        for table, expected in record.row_counts.items()
        if counts.get(table) != expected
    ]
    if wrong:
        raise BackupError(
            f"after restoring backup {record.id}, row counts of {where} differ: "
            + "; ".join(wrong[:3])
        )
    return counts


def restore(
    ws: Workspace,
    ref: str | None,
    *,
    into_url: str | None,
    confirm: Callable[[RestorePlan], bool] | None = None,
    progress: Callable[[str], None] | None = None,
    resume: bool = False,
    undoes: RunContext | None = None,
) -> RestoreResult:
    """Restore a catalogued backup: into a new database (``into_url``) or over the current one.

    The backup file is verified first (a damaged one is refused before anything changes).
    Over the current database, a full backup of the current state is taken, then the restore
    runs in one transaction that commits only when the schema fingerprint and the restored row
    counts equal the backup's record, and a ``restore`` event is recorded in it. Where restores
    are not atomic (MySQL/MariaDB) it is journaled instead: one that stops part-way is an
    unfinished restore, which ``status`` reports and ``resume=True`` finishes (restoring the
    same backup again). ``undoes``: the journaled run this restore undoes (``--undo-partial``),
    closed when the restore completes. ``confirm`` sees the plan and may decline (Declined).
    """
    report = progress or no_progress
    catalog = BackupCatalog(ws.config.backups)
    if resume:
        if ref is not None or into_url is not None:
            raise UsageError("restore --resume takes no BACKUP and no --into")
        unfinished = unfinished_restore(ws)
        ref = unfinished.backup
        undoes = undoes or _undone_context(unfinished)
        if ref is None:
            raise HistoryError(f"the unfinished restore {unfinished.run_id[:8]} names no backup")
    if ref is None:
        raise UsageError("name the backup to restore (an id, a unique prefix, or `latest`)")
    record = catalog.get(ref)
    report(f"verifying backup {record.id}")
    if same_database(parse_url(record.database), ws.url):
        _check_recorded_sha256(ws, record, report)
    verify_backup(ws, record)
    backup_schema = load_snapshot(catalog, record)
    engine = ws.dialect.backup_engine()
    if into_url is not None:
        return _restore_into(ws, engine, catalog, record, backup_schema, into_url, confirm, report)
    source = parse_url(record.database)
    if not same_database(source, ws.url):
        raise UsageError(
            f"backup {record.id} was taken from {record.database}, not from the current "
            f"database {ws.url.masked()}",
            hint=f"restore it into a new database with `backout restore {record.id} --into URL`",
        )
    # before anything is taken or changed: a backup of another scope (?schema=) is refused
    engine.refuse_out_of_scope(_restore_request(ws, catalog, record, backup_schema), ws.url)
    return _restore_over(ws, engine, catalog, record, backup_schema, confirm, report, undoes)


def _check_recorded_sha256(ws: Workspace, record: BackupRecord, report: Progress) -> None:
    """Refuse a backup whose file differs from what the database's own event log recorded
    when it was taken: its bytes were changed, and the catalog's checksum with them. The
    same check on every database, before anything changes. A backup the history holds no
    sha256 for is checked against its catalog only, and ``report`` says so."""
    if not ws.database_exists():
        report(
            f"backup {record.id}: the database it was taken of no longer exists, so its history "
            "cannot vouch for the file: it is checked against its catalog entry only"
        )
        return
    with ws.session(create=False) as session:
        recorded = ws.events.recorded_sha256(session, record.id)
    if not recorded:
        report(
            f"backup {record.id}: this database's history holds no sha256 for it (taken by an "
            "older backout, or before backout's tables existed): its file is checked against "
            "its catalog entry only"
        )
    elif record.sha256 not in recorded:
        shown = sorted(recorded)[0]
        raise BackupError(
            f"backup {record.id} was changed after it was taken: its file and catalog say "
            f"sha256 {record.sha256[:12]}…, but the database's history recorded {shown[:12]}… "
            "when it was taken; nothing changed",
            hint="it cannot be trusted; choose another with `backout backups`",
        )


def unfinished_restore(ws: Workspace) -> InterruptedRun:
    """The latest journaled restore that stopped part-way; UsageError when there is none."""
    with ws.session(create=False) as session:
        runs = ws.events.journal.unfinished_restores(session)
    if not runs:
        raise UsageError(
            "nothing to resume: no restore stopped part-way",
            hint="`backout status` shows the database's state",
        )
    return runs[-1]


def _undone_context(run: InterruptedRun) -> RunContext | None:
    """The run an unfinished restore was undoing (``--undo-partial``), from its details."""
    data = run.details.get("undoes_run")
    if not run.undoes or not isinstance(data, dict):
        return None
    return RunContext(run_id=run.undoes, **{k: data[k] for k in _RUN_FIELDS})


#: what a restore's journal keeps of the run it undoes, to close it when it completes
_RUN_FIELDS: Final = (
    "direction",
    "migration",
    "migration_key",
    "script",
    "script_checksum",
    "total",
)


def _restore_into(
    ws: Workspace,
    engine: BackupEngine,
    catalog: BackupCatalog,
    record: BackupRecord,
    backup_schema: SchemaSnapshot,
    into_url: str,
    confirm: Callable[[RestorePlan], bool] | None,
    report: Progress,
) -> RestoreResult:
    target = parse_url(into_url, base_dir=ws.config.root)
    if target.dialect != record.dialect:
        raise UsageError(
            f"--into must be a {record.dialect} database like the backup, not {target.masked()}"
        )
    if same_database(target, ws.url) or same_database(target, parse_url(record.database)):
        raise UsageError(
            f"--into must name a new database, not the one backed up ({target.masked()})",
            hint=f"to replace the current database, run `backout restore {record.id}`",
        )
    given_schema = target.schema
    if ws.url.schema and not target.schema:
        # Definitions are read relative to the search path: read both sides alike.
        target = parse_url(with_params(target, schema=ws.url.schema), base_dir=ws.config.root)
    # As the user gave it (masked): the schema carried over from the project is said apart.
    shown = mask_url(into_url) + (
        f" (schema {target.schema})" if target.schema and target.schema != given_schema else ""
    )
    plan = RestorePlan(backup=record, target=shown, into_new=True, replaces=tuple(record.tables))
    if confirm is not None and not confirm(plan):
        raise Declined("restore declined: nothing was changed")
    clock = time.monotonic()
    report(f"restoring {record.id} into {shown}")
    engine.restore_into(catalog.path_of(record), target=target, actor=ws.actor, progress=report)
    report("checking the restored database")
    with ws.dialect.connect(target, actor=ws.actor, create=False) as session:
        snapshot = ws.dialect.snapshot(session)
        counts = _check_restored(engine, session, snapshot, record, backup_schema, shown)
    return RestoreResult(
        plan=plan,
        backup=record,
        pre_restore=None,
        target=shown,
        duration_s=time.monotonic() - clock,
        row_counts=counts,
        schema_fingerprint=snapshot.fingerprint(),
    )


def _restore_request(
    ws: Workspace, catalog: BackupCatalog, record: BackupRecord, backup_schema: SchemaSnapshot
) -> RestoreRequest:
    """What the engine must bring back, for a restore over the current database."""
    return RestoreRequest(
        path=catalog.path_of(record),
        snapshot=backup_schema,
        data_tables=tuple(record.tables),
        full=record.kind == "full",
        history_schema=ws.config.history_schema,
        lock_timeout=ws.config.lock_timeout,
        source=record.database,
    )


def _restore_over(
    ws: Workspace,
    engine: BackupEngine,
    catalog: BackupCatalog,
    record: BackupRecord,
    backup_schema: SchemaSnapshot,
    confirm: Callable[[RestorePlan], bool] | None,
    report: Progress,
    undoes: RunContext | None = None,
) -> RestoreResult:
    with ws.session() as session:
        lock = ws.run_lock(session)
        try:
            ws.events.check_version(session)
            plan = _plan_over(ws, engine, record, backup_schema, ws.dialect.snapshot(session))
            if confirm is not None and not confirm(plan):
                raise Declined("restore declined: nothing was changed")
            report("backing up the current state (full)")
            pre = take_backup(
                ws, session, kind="full", reason=f"before restore of {record.id}", progress=report
            )
            executor = Executor(session, dry_run=False)
            ws.ensure_history(session, executor)
            ws.events.upgrade(session, executor)
            restoring = _OverRestore(
                ws, session, engine, record, backup_schema, pre, undoes, report
            )
            restoring.start()
            request = _restore_request(ws, catalog, record, backup_schema)
            report(f"restoring {record.id} {engine.restore_manner}")
            restoring.run(request)
        finally:
            lock.release()
    return RestoreResult(
        plan=plan,
        backup=record,
        pre_restore=pre,
        target=database_display(ws.url),
        duration_s=time.monotonic() - restoring.clock,
        row_counts=restoring.counts,
        schema_fingerprint=restoring.fingerprint,
    )


@dataclass
class _OverRestore:
    """One restore over the current database, from its journal's start to its ``restore``
    event: what the engine's ``finish`` callback and the failure paths share."""

    ws: Workspace
    session: Session
    engine: BackupEngine
    record: BackupRecord
    backup_schema: SchemaSnapshot
    #: the full backup of the state being replaced
    pre: BackupRecord
    #: the journaled run this restore undoes (``--undo-partial``)
    undoes: RunContext | None
    report: Progress
    started: dt.datetime = field(default_factory=utcnow)
    clock: float = field(default_factory=time.monotonic)
    #: filled by :meth:`finish`: rows per restored table, and the schema fingerprint
    counts: dict[str, int] = field(default_factory=dict)
    fingerprint: str = ""
    journal: Journal = field(init=False)
    #: the restore's own run, as its journal entries name it
    context: RunContext = field(init=False)

    def __post_init__(self) -> None:
        self.journal = self.ws.events.journal
        self.context = RunContext.new(
            direction=journal_entries.RESTORE,
            migration=self.undoes.migration if self.undoes else self.record.id,
            migration_key=self.undoes.migration_key if self.undoes else self.record.id,
            script=self.record.file,
            script_checksum=self.record.sha256,
            total=1,
        )

    def start(self) -> None:
        """Journal the start (committed by itself) where the restore is not atomic."""
        if self.engine.atomic_restore:
            return
        entry = self.journal.write(
            self.context,
            journal_entries.START,
            0,
            details=_restore_details(self.record, self.pre, self.undoes),
            when=self.started,
        )
        _journal_alone(self.session, entry)

    def run(self, request: RestoreRequest) -> None:
        """Restore through the engine; a failure is recorded, then raised as what it means."""
        try:
            self.engine.restore_over(
                self.session, request, finish=self.finish, progress=self.report
            )
        except KeyboardInterrupt as exc:
            # Ctrl-C or SIGTERM: rolled back (or, journaled, left for --resume); recorded.
            with contextlib.suppress(BackoutError):
                self.session.rollback()
            _record_failure(self.ws, self.session, self.record, self.pre, self.started, exc)
            raise
        except BackoutError as exc:
            _record_failure(self.ws, self.session, self.record, self.pre, self.started, exc)
            if isinstance(exc, BackupError | LockError):
                raise
            raise self._failure(exc) from exc

    def _failure(self, exc: BackoutError) -> BackoutError:
        """The error a failed restore raises (it was undone; nothing changed)."""
        record, pre = self.record, self.pre
        if isinstance(exc, DatabaseError) and self.ws.dialect.is_database_failure(
            exc.sqlstate, exc.message
        ):
            # The database failed (connection cut, disk full): a database error,
            # exit 4. A statement it refuses means the backup does not fit: exit 2.
            return DatabaseError(
                f"restoring backup {record.id} failed and was undone; nothing changed: "
                f"{exc.message}",
                sqlstate=exc.sqlstate,
                hint=f"the state before it is in backup {pre.id}",
            )
        return BackupError(
            f"restoring backup {record.id} failed and was undone; nothing changed: {exc}",
            hint=f"the state before it is in backup {pre.id}",
        )

    def finish(self) -> None:
        """In the restore's transaction, last: check schema and rows against the record,
        append the ``restore`` event, and close the journal entries it settles."""
        session = self.session
        self.report("checking the restored schema and rows")
        snapshot = self.ws.dialect.snapshot(session)
        self.counts = _check_restored(
            self.engine, session, snapshot, self.record, self.backup_schema, "the database"
        )
        self.fingerprint = snapshot.fingerprint()
        earlier = [
            r for r in self.journal.unfinished_restores(session) if r.run_id != self.context.run_id
        ]
        session.execute(*self.ws.events.append(self._event(earlier)))
        # After the event (a kill in between leaves a finished restore reported as
        # unfinished; resuming it is harmless). The database is now exactly the
        # backup: the run it undid is undone, and every restore that stopped
        # part-way before is superseded.
        if self.undoes is not None:
            session.execute(
                *self.journal.write(
                    self.undoes,
                    journal_entries.UNDONE,
                    0,
                    details={"path": "backup", "backup": self.record.id},
                )
            )
        for other in earlier:
            session.execute(*self.journal.write(other.context(), journal_entries.FINISH, 1))
        if not self.engine.atomic_restore:
            session.execute(*self.journal.write(self.context, journal_entries.FINISH, 1))

    def _event(self, earlier: Sequence[InterruptedRun]) -> Event:
        """The ``restore`` event of a restore that succeeded."""
        record, pre = self.record, self.pre
        details: dict[str, Any] = {
            "kind": record.kind,
            "pre_restore_backup": pre.id,
            "pre_restore_sha256": pre.sha256,
            "tables": list(record.tables),
            "duration_s": round(time.monotonic() - self.clock, 3),
        }
        if self.undoes:
            details["undoes"] = self.undoes.run_id
        if earlier:
            # the attempts this one finishes (killed part-way: no event of their own), so
            # that history shows them
            details["finishes"] = [
                {"run": r.run_id, "started_at": r.started_at.isoformat()} for r in earlier
            ]
        return Event(
            event="restore",
            outcome="ok",
            started_at=self.started,
            finished_at=utcnow(),
            actor=self.ws.actor,
            backup=record.id,
            details=details,
        )


def _restore_details(
    record: BackupRecord, pre: BackupRecord, undoes: RunContext | None
) -> dict[str, Any]:
    """The ``start`` entry of a journaled restore: what ``status`` and ``--resume`` need."""
    details: dict[str, Any] = {
        "backup": record.id,
        "pre_restore_backup": pre.id,
        "pre_restore_sha256": pre.sha256,
    }
    if undoes is not None:
        details["undoes"] = undoes.run_id
        details["undoes_run"] = {k: getattr(undoes, k) for k in _RUN_FIELDS}
    return details


def _journal_alone(session: Session, write: tuple[str, tuple[object, ...]]) -> None:
    """Commit one journal entry by itself, before anything it announces happens."""
    session.begin()
    try:
        session.execute(*write)
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _record_failure(
    ws: Workspace,
    session: Session,
    record: BackupRecord,
    pre: BackupRecord,
    started: dt.datetime,
    error: BackoutError | KeyboardInterrupt,
) -> None:
    """Append a failed ``restore`` event in a transaction of its own (the restore's own
    transaction has been rolled back)."""
    event = Event(
        event="restore",
        outcome="failed",
        started_at=started,
        finished_at=utcnow(),
        actor=ws.actor,
        backup=record.id,
        error=str(error) or "interrupted (Ctrl-C)",
        details={
            "kind": record.kind,
            "pre_restore_backup": pre.id,
            "pre_restore_sha256": pre.sha256,
        },
    )
    try:
        ws.record_alone(session, event)
    except DatabaseError:
        # The database refuses even this (e.g. the connection died): the error being raised
        # says what happened, and the restore changed nothing.
        return
