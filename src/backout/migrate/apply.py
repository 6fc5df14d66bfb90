"""``backout up``: apply pending forward migrations, each in its own transaction.

A migration that cannot be one transaction (``transaction off``, or DDL on MySQL/MariaDB, which
commits implicitly) runs statement by statement, each recorded in the journal as it completes
(:mod:`backout.run.journal`): if it stops part-way, ``status`` says where, and ``rollback --resume``
or ``rollback --undo-partial`` finish or undo it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from backout.dialects.base import Session, utcnow
from backout.model.errors import BackoutError, CheckFailed, DatabaseError, HistoryError, LockError
from backout.project.migration import Migration
from backout.run.history import Event
from backout.run.host_history import HostEvent, SqlWrite
from backout.run.hosts.flyway import FlywayHistory, Repeatable
from backout.run.journal import FINISH, START, UP, JournalHooks, RunContext
from backout.run.runner import Executor, PreparedScript, ScriptRunner, prepare
from backout.run.status import StatusReport, refuse_interrupted
from backout.run.workspace import Workspace


@dataclass(frozen=True)
class AppliedMigration:
    """One migration ``up`` applied (or would apply, in a dry run)."""

    id: str
    statements: int
    duration_ms: int
    attempts: int
    transactional: bool
    #: why it ran journaled, statement by statement ('' when it ran in one transaction)
    journaled: str = ""


@dataclass
class UpResult:
    """What ``up`` did."""

    applied: list[AppliedMigration] = field(default_factory=list)
    #: migrations already applied (nothing to do for them)
    skipped: int = 0
    dry_run: bool = False
    #: the SQL executed (or, in a dry run, that would be)
    transcript: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    lock: str = ""
    warnings: list[str] = field(default_factory=list)
    #: Flyway's repeatable ``R__`` migrations run (or, in a dry run, that would be), after
    #: the versioned ones; ``id`` is the file as shown
    repeatables: list[AppliedMigration] = field(default_factory=list)


Progress = Callable[[str, Migration], None]


def select_pending(ws: Workspace, report: StatusReport, to: str | None) -> list[Migration]:
    """The migrations ``up`` will apply, in order, up to and including ``to``."""
    pending = [e.migration for e in report.pending if e.migration is not None]
    if to is None:
        return pending
    target = ws.project.find(to)
    limit = ws.project.index_of(target)
    return [m for m in pending if ws.project.index_of(m) <= limit]


def _refuse_non_empty(ws: Workspace, session: Session, report: StatusReport) -> None:
    """Like Prisma's P3005: no ledger yet but tables exist means the database needs a baseline."""
    if report.ledger_exists:
        return
    tables = ws.dialect.user_tables(session, ws.config.history_schema)
    if tables:
        shown = ", ".join(tables[:3]) + (" ..." if len(tables) > 3 else "")
        first = ws.project.migrations[0].id if ws.project.migrations else "ID"
        raise HistoryError(
            f"the database is not empty ({len(tables)} tables: {shown}) but has no migration "
            f"history in {ws.ledger.name}",
            hint=f"baseline it: `backout resolve {first} --applied` for each migration already "
            "reflected in the schema",
        )


def up(
    ws: Workspace,
    *,
    to: str | None = None,
    dry_run: bool = False,
    allow_edited: bool = False,
    allow_missing: bool = False,
    progress: Progress | None = None,
) -> UpResult:
    """Apply pending migrations in order, each atomically, under the run lock."""
    result = UpResult(dry_run=dry_run)
    units: dict[str, PreparedScript] = {}
    if not ws.private:
        # Plan and prepare first, on a session that creates nothing: a syntax error or an
        # untrusted history is refused before the database is touched. (On a private scratch
        # database nothing else moves the history: it is read once, under the lock.)
        with ws.session(create=False) as reader:
            report = ws.read_status(reader)
            refuse_interrupted(report)
            ws.refuse_untrusted(report, allow_edited=allow_edited, allow_missing=allow_missing)
            selected = select_pending(ws, report, to)
            if selected:
                _refuse_non_empty(ws, reader, report)
            repeats = due_repeatables(ws, reader, to)
        units = {m.key: prepare(ws.dialect, m.up) for m in selected}
        units.update({r.script.display: prepare(ws.dialect, r.script) for r in repeats})
        if not selected and not repeats:
            result.skipped = len(report.applied)
            return result
    with ws.session(create=not dry_run) as session:
        lock = None if dry_run else ws.run_lock(session)
        try:
            # Under the lock, history may have moved on (another run finished meanwhile).
            report = ws.read_status(session)
            refuse_interrupted(report)
            ws.refuse_untrusted(report, allow_edited=allow_edited, allow_missing=allow_missing)
            selected = select_pending(ws, report, to)
            if ws.private and selected:
                _refuse_non_empty(ws, session, report)
            prepared = [(m, units.get(m.key) or prepare(ws.dialect, m.up)) for m in selected]
            repeats = due_repeatables(ws, session, to)
            result.skipped = len(report.applied)
            result.out_of_order = [e.id for e in report.pending if e.out_of_order]
            result.lock = lock.description if lock else "(dry run: no lock taken)"
            executor = Executor(session, dry_run=dry_run)
            if dry_run:
                executor.comment(f"backout up --dry-run on {ws.url.masked()}")
                executor.comment(f"run lock: {_lock_text(ws)}")
            if prepared or repeats:
                ws.ensure_history(session, executor)
                ws.events.upgrade(session, executor)
            for migration, unit in prepared:
                if progress:
                    progress("start", migration)
                result.applied.append(_apply_one(ws, session, executor, migration, unit))
                if progress:
                    progress("done", migration)
            for repeat in repeats:
                unit = units.get(repeat.script.display) or prepare(ws.dialect, repeat.script)
                result.repeatables.append(apply_repeatable(ws, session, executor, repeat, unit))
            result.transcript = executor.transcript
        finally:
            if lock is not None:
                lock.release()
    return result


def due_repeatables(ws: Workspace, session: Session, to: str | None) -> list[Repeatable]:
    """Flyway's repeatable migrations ``up`` runs after the versioned ones (none with
    ``--to``: a partial ``up`` leaves them to the next full one); refuses a failed one."""
    host = ws.host
    if to is not None or not isinstance(host, FlywayHistory) or not ws.project.repeatables:
        return []
    states = host.repeatables(session)
    failed = [r.script.display for r in states if r.state == "failed"]
    if failed:
        raise HistoryError(
            f"{host.table_name} records a failed run of repeatable {failed[0]} (success = "
            "false): Flyway's migrate refuses it too",
            hint="settle what it left, then delete its failed row (what `flyway repair` does)",
        )
    return [r for r in states if r.due]


def apply_repeatable(
    ws: Workspace, session: Session, executor: Executor, repeat: Repeatable, unit: PreparedScript
) -> AppliedMigration:
    """Run one repeatable as ``up`` runs a migration (one transaction where it can), and
    write Flyway's row for it; a failure is recorded where Flyway records one."""
    host = ws.host
    assert isinstance(host, FlywayHistory)
    runner = ScriptRunner(session, executor, ws.run_options())
    clock = time.monotonic()
    executor.comment(f"repeatable {repeat.script.display} ({repeat.state})")

    def row(success: bool) -> SqlWrite:
        return host.repeatable_row(repeat, int((time.monotonic() - clock) * 1000), success=success)

    def record() -> None:
        executor.comment(f"flyway: {repeat.script.display} applied in {host.table_name}")
        executor.execute(*row(True))

    try:
        if unit.transactional:
            runner.run_in_transaction([unit], before_commit=record)
        else:
            runner.run_without_transaction(unit)
            executor.begin()
            record()
            executor.commit()
    except (DatabaseError, CheckFailed, LockError) as exc:
        if not executor.dry_run:
            session.rollback()
            if not unit.transactional:  # Flyway records a failure it could not roll back
                try:
                    _write_alone(session, [row(False)])
                except DatabaseError as record_error:
                    exc.hint = (exc.hint + "; " if exc.hint else "") + (
                        f"the failure could not be recorded in {host.table_name}: {record_error}"
                    )
        raise
    return AppliedMigration(
        id=repeat.script.display,
        statements=len(unit.statements),
        duration_ms=int((time.monotonic() - clock) * 1000),
        attempts=runner.stats.attempts,
        transactional=unit.transactional,
        journaled=unit.journal_reason(ws.dialect),
    )


def _lock_text(ws: Workspace) -> str:
    return ws.dialect.run_lock_description(host_locks=ws.host_locks())


def _apply_one(
    ws: Workspace,
    session: Session,
    executor: Executor,
    migration: Migration,
    unit: PreparedScript,
) -> AppliedMigration:
    runner = ScriptRunner(session, executor, ws.run_options())
    started = utcnow()
    clock = time.monotonic()
    executor.comment(f"migration {migration.id}")

    def event(outcome: str, error: str | None = None) -> Event:
        return Event(
            event="apply",
            outcome=outcome,
            started_at=started,
            finished_at=utcnow(),
            actor=ws.actor,
            migration=migration.id,
            checksum=migration.up.checksum,
            error=error,
            details={
                "statements": runner.stats.statements,
                "attempts": runner.stats.attempts,
                "transactional": unit.transactional,
                "lock_waits": runner.stats.lock_waits,
            },
        )

    try:
        if unit.transactional:
            _apply_transactional(ws, executor, runner, migration, unit, started, event)
        else:
            _apply_autocommit(ws, executor, runner, migration, unit, started, event)
    except (DatabaseError, CheckFailed, LockError) as exc:
        if not executor.dry_run:
            _record_failure(ws, session, migration, unit, runner, started, exc, event)
            if not unit.transactional and runner.stats.statements:
                exc.hint = (
                    f"the statements of {unit.script.display} that completed stay applied; each "
                    "is recorded in the journal. `backout status` shows where it stopped. Fix "
                    "the cause and run `backout rollback --resume` to finish applying it, or "
                    "`backout rollback --undo-partial` to undo them"
                )
        raise
    except KeyboardInterrupt as exc:
        # Ctrl-C or SIGTERM: the open transaction is rolled back; the attempt is recorded.
        if not executor.dry_run:
            _record_interrupt(ws, session, event, exc)
        raise
    return AppliedMigration(
        id=migration.id,
        statements=len(unit.statements),
        duration_ms=int((time.monotonic() - clock) * 1000),
        attempts=runner.stats.attempts,
        transactional=unit.transactional,
        journaled=unit.journal_reason(ws.dialect),
    )


def _apply_transactional(
    ws: Workspace,
    executor: Executor,
    runner: ScriptRunner,
    migration: Migration,
    unit: PreparedScript,
    started: dt.datetime,
    event: Callable[..., Event],
) -> None:
    def before_commit() -> None:
        finished = utcnow()
        _, write = ws.ledger.insert(
            key=migration.key,
            migration_id=migration.id,
            checksum=migration.up.checksum,
            started_at=started,
            finished_at=finished,
            applied_steps_count=1,
        )
        executor.comment(f"history: {migration.id} applied")
        executor.execute(*write)
        ws.record_host(
            executor,
            HostEvent.APPLIED,
            migration,
            started=started,
            finished=finished,
            script=migration.up,
            statements=len(unit.statements),
        )
        ws.record(executor, event("ok"))

    runner.run_in_transaction([unit], before_commit=before_commit)


def _apply_autocommit(
    ws: Workspace,
    executor: Executor,
    runner: ScriptRunner,
    migration: Migration,
    unit: PreparedScript,
    started: dt.datetime,
    event: Callable[..., Event],
) -> None:
    """Statement by statement (``transaction off``, or DDL that commits implicitly): a started
    ledger row first (as Prisma), each statement journaled as it completes, then finish."""
    row_id = ""
    journal = ws.events.journal
    run = RunContext.new(
        direction=UP,
        migration=migration.id,
        migration_key=migration.key,
        script=unit.script.display,
        script_checksum=unit.script.checksum,
        total=len(unit.statements),
    )

    def on_start() -> None:
        nonlocal row_id
        row_id, write = ws.ledger.insert(
            key=migration.key,
            migration_id=migration.id,
            checksum=migration.up.checksum,
            started_at=started,
            finished_at=None,
        )
        executor.comment(f"history: {migration.id} started (statement by statement)")
        executor.execute(*write)
        ws.record_host(
            executor, HostEvent.APPLY_STARTED, migration, started=started, script=migration.up
        )
        executor.execute(*journal.write(run, START, 0, details={"ledger_row": row_id}))

    runner.run_without_transaction(
        unit, on_start=on_start, journal=JournalHooks(journal, run, executor)
    )
    executor.begin()
    finished = utcnow()
    executor.execute(*ws.ledger.finish(row_id, finished, 1))
    ws.record_host(
        executor,
        HostEvent.APPLIED,
        migration,
        started=started,
        finished=finished,
        script=migration.up,
        statements=len(unit.statements),
    )
    ws.record(executor, event("ok"))
    executor.execute(*journal.write(run, FINISH, run.total))
    executor.commit()


def _record_failure(
    ws: Workspace,
    session: Session,
    migration: Migration,
    unit: PreparedScript,
    runner: ScriptRunner,
    started: dt.datetime,
    exc: BackoutError,
    event: Callable[..., Event],
) -> None:
    """After a failure: a Prisma-style failed ledger row and an event.

    A transactional script that failed on a statement gets a failed row (finished_at NULL, the
    error in logs), exactly as ``prisma migrate deploy`` leaves it. A ``transaction off`` script
    that started has its started row completed with the error. A failing ``require``/``verify``
    check or a lock timeout is only an event: it is not a broken migration.
    """
    session.rollback()
    script_failed = isinstance(exc, DatabaseError) and exc.line is not None
    logs = _prisma_logs(exc, unit, runner.stats.statements, unit.journal_reason(ws.dialect))
    try:
        writes: list[SqlWrite] = []
        if unit.transactional and script_failed:
            _, write = ws.ledger.insert(
                key=migration.key,
                migration_id=migration.id,
                checksum=migration.up.checksum,
                started_at=started,
                finished_at=None,
                logs=logs,
            )
            writes.append(write)
        elif not unit.transactional:
            row = _started_row(ws, session, migration)
            if row is not None:
                writes.append(ws.ledger.fail(row, logs, runner.stats.statements))
        if writes:
            writes += ws.host_writes(
                session,
                HostEvent.FAILED,
                migration,
                migration.key,
                started=started,
                finished=utcnow(),
                script=migration.up,
                error=str(exc),
                statements=runner.stats.statements,
            )
            _write_alone(session, writes)
        ws.record_alone(session, event("failed", str(exc)))
    except DatabaseError as record_error:
        exc.hint = (exc.hint + "; " if exc.hint else "") + (
            f"the failure could not be recorded in history: {record_error}"
        )


def _record_interrupt(
    ws: Workspace, session: Session, event: Callable[..., Event], exc: KeyboardInterrupt
) -> None:
    """An interrupted apply (Ctrl-C, SIGTERM): roll back, and a failed event, best effort."""
    try:
        session.rollback()
        ws.record_alone(session, event("failed", str(exc) or "interrupted (Ctrl-C)"))
    except BackoutError:
        return  # the connection went with the interrupt: the error being raised says it


def _started_row(ws: Workspace, session: Session, migration: Migration) -> str | None:
    rows = [r for r in ws.ledger.rows(session) if r.key == migration.key and r.live]
    unfinished = [r for r in rows if r.finished_at is None]
    return unfinished[-1].id if unfinished else None


def _write_alone(session: Session, writes: list[SqlWrite]) -> None:
    """``writes`` in one transaction of their own (the ledger's and the host table's)."""
    session.begin()
    try:
        for sql, params in writes:
            session.execute(sql, params or None)
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _prisma_logs(exc: BackoutError, unit: PreparedScript, applied: int, why: str) -> str:
    """Failure text for the ledger's ``logs`` column, shaped like Prisma's; ``why``: why a
    journaled script runs statement by statement."""
    code = getattr(exc, "sqlstate", None) or "unknown"
    statement = getattr(exc, "statement", None) or ""
    line = getattr(exc, "line", None)
    mode = (
        "The transaction was rolled back: no statement of this migration remains applied."
        if unit.transactional
        else f"{why}: {applied} of {len(unit.statements)} statements were applied and remain "
        "(see backout's journal: `backout status`)."
    )
    return (
        f"Database error code: {code}\n\nDatabase error:\n{exc}\n\n"
        f"Statement (line {line}):\n{statement}\n\n{mode}\n\nRecorded by backout."
    )
