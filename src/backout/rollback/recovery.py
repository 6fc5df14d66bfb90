"""``backout rollback --resume`` and ``--undo-partial``: finishing or undoing a run that stopped
part-way (MySQL's non-transactional DDL, ``transaction off`` scripts, a killed process).

The statement journal (backout.run.journal) says which statements of the interrupted run are done.
``resume`` runs the rest; ``undo`` applies each done statement's inverse, newest first, or
restores the backup taken before the run when a statement has no inverse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from backout.backup.restore import restore
from backout.dialects.base import Session, utcnow
from backout.model.effects import Action, ObjectKind, table_key
from backout.model.errors import (
    BackoutError,
    CheckFailed,
    DatabaseError,
    Declined,
    HistoryError,
    ProjectError,
    UsageError,
)
from backout.model.schema import SchemaSnapshot
from backout.model.script import Script, Statement
from backout.rollback.rollback import lock_description
from backout.rollback.steps import resolve_params
from backout.run import journal as journal_entries
from backout.run.history import Event
from backout.run.host_history import HostEvent
from backout.run.journal import (
    InterruptedRun,
    Inverse,
    Journal,
    JournalHooks,
    RunContext,
    describe_unfinished_restore,
    finish_restore_hint,
    inverse_of,
    observe,
    statement_sha256,
)
from backout.run.runner import Executor, PreparedScript, ScriptRunner, prepare
from backout.run.status import StatusReport
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    from backout.model.effects import ScriptEffects


@dataclass(frozen=True)
class RecoveryPlan:
    """What ``rollback --resume`` or ``rollback --undo-partial`` will do, before confirmation."""

    #: ``resume`` or ``undo``
    action: str
    migration: str
    run: InterruptedRun
    script: Script
    database: str
    lock: str
    #: resume: the statements that will run, in order
    statements: tuple[Statement, ...] = ()
    #: undo: how each applied statement is undone, newest first
    inverses: tuple[Inverse, ...] = ()
    #: undo: ``inverse`` (each statement's inverse) or ``backup`` (restore the pre-run backup)
    path: str = ""
    #: a statement whose outcome the journal did not record, and what the schema shows
    observed: tuple[int, bool] | None = None
    #: SQL removing what that statement left when it did not finish (PostgreSQL: the invalid
    #: index of a CREATE INDEX CONCURRENTLY cut short), run first
    cleanup: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def direction(self) -> str:
        """``up``, ``rollback`` or ``partial``: what the interrupted run was doing."""
        return self.run.direction


@dataclass
class RecoveryResult:
    """What ``--resume`` or ``--undo-partial`` did."""

    plan: RecoveryPlan
    dry_run: bool
    statements: int = 0
    duration_s: float = 0.0
    transcript: list[str] = field(default_factory=list)
    #: undo by backup: the restore that brought the database back
    restored: str | None = None
    #: resume of a multi-migration rollback: migrations of its plan still applied
    remaining: list[str] = field(default_factory=list)


ConfirmRecovery = Callable[[RecoveryPlan], bool]


def _interrupted_entry(report: StatusReport) -> tuple[str, InterruptedRun]:
    runs = [(e.id, e.interrupted) for e in report.entries if e.interrupted is not None]
    if not runs:
        raise UsageError(
            "nothing to resume or undo: no apply or rollback stopped part-way",
            hint="`backout status` lists each migration's state",
        )
    entry_id, run = runs[0]
    assert run is not None
    return entry_id, run


def _script_of(ws: Workspace, run: InterruptedRun) -> Script:
    try:
        migration = next(m for m in ws.project.migrations if m.key == run.migration_key)
    except StopIteration:
        raise ProjectError(
            f"migration {run.migration} is not on disk any more: the interrupted run's script "
            f"({run.script}) is needed to resume or undo it",
            hint="restore the files (e.g. git checkout), or `backout restore` the backup "
            f"{run.backup}"
            if run.backup
            else "restore the files (e.g. git checkout)",
        ) from None
    if run.direction == "up":
        return migration.up
    if run.direction == "partial":
        name = str(run.details.get("partial") or "")
        script = migration.partial(name)
        if script is None:
            raise ProjectError(f"partial rollback {name} of {migration.id} is not on disk any more")
        return script
    if migration.down is None:
        raise ProjectError(f"the rollback script of {migration.id} is not on disk any more")
    return migration.down


def _changed_statements(
    unit: PreparedScript, run: InterruptedRun, indexes: Sequence[int]
) -> list[str]:
    """Statements among ``indexes`` whose text differs from what the journal recorded."""
    changed = []
    for index in indexes:
        recorded = run.hashes.get(index)
        current = unit.statements[index - 1] if index <= len(unit.statements) else None
        if current is None or recorded is None or statement_sha256(current.sql) != recorded:
            line = run.lines.get(index)
            changed.append(f"statement {index}" + (f" (line {line} when it ran)" if line else ""))
    return changed


def _observe_uncertain(
    ws: Workspace, session: Session, unit: PreparedScript, index: int, sha: str | None
) -> bool:
    """Whether a statement that was running when the run died took effect, from the schema;
    stops and explains when that cannot be told."""
    statement = unit.statements[index - 1] if index <= len(unit.statements) else None
    if statement is None or (sha is not None and statement_sha256(statement.sql) != sha):
        raise HistoryError(
            f"statement {index} of {unit.script.display} was running when the run stopped, and "
            "it changed in the file since: whether it took effect cannot be told",
            hint="restore the script as it was (e.g. git checkout) and try again, or restore "
            "the backup taken before the run",
        )
    effects = ws.dialect.analyze([statement])
    verdict = (
        observe(effects.effects, ws.dialect.snapshot(session)) if not effects.unknown else None
    )
    if verdict is None:
        raise HistoryError(
            f"statement {index} of {unit.script.display} ({unit.script.display}:{statement.line}) "
            "was running when the run stopped, and the schema does not show whether it took "
            f"effect: {statement.excerpt(60)}",
            hint="check by hand; then restore the backup taken before the run, or finish by "
            "hand and record the outcome with `backout resolve`",
        )
    return verdict


def _left_unfinished(
    ws: Workspace, session: Session, unit: PreparedScript, observed: tuple[int, bool] | None
) -> tuple[tuple[str, ...], list[str]]:
    """SQL removing what a statement that was running when the run died, and did not take
    effect, left behind (the dialect says what: an invalid index), with a note; else nothing."""
    if observed is None or observed[1]:
        return (), []
    statement = unit.statements[observed[0] - 1]
    if not unit.commits_alone(statement):
        return (), []  # its transaction was rolled back: nothing is left
    cleanup = tuple(ws.dialect.left_by_failure(session, statement))
    if not cleanup:
        return (), []
    return cleanup, [
        f"statement {observed[0]} left what it had begun ({'; '.join(cleanup)} removes it first)"
    ]


def _values(script: Script, run: InterruptedRun) -> dict[str, object]:
    raw = run.details.get("params") or {}
    if not isinstance(raw, dict) or not script.directives.params:
        return {}
    return resolve_params(script, {str(k): str(v) for k, v in raw.items()})


def plan_recovery(ws: Workspace, session: Session, action: str) -> RecoveryPlan:
    """Plan ``--resume`` (``action="resume"``) or ``--undo-partial`` (``"undo"``) of the run
    that stopped part-way; reads the database, changes nothing. Refuses what it cannot do."""
    report = ws.read_status(session)
    migration_id, run = _interrupted_entry(report)
    script = _script_of(ws, run)
    unit = prepare(ws.dialect, script)
    common = {
        "migration": migration_id,
        "run": run,
        "script": script,
        "database": ws.url.masked(),
        "lock": lock_description(ws),
    }
    if action == "resume":
        return _plan_resume(ws, session, unit, run, common)
    return _plan_undo(ws, session, unit, run, common)


def _plan_resume(
    ws: Workspace,
    session: Session,
    unit: PreparedScript,
    run: InterruptedRun,
    common: Mapping[str, object],
) -> RecoveryPlan:
    if run.reversed or run.reversing is not None:
        raise HistoryError(
            f"an undo of this run already reversed statement(s) "
            f"{', '.join(str(i) for i in run.reversed or (run.reversing,))}: it cannot be resumed",
            hint="finish the undo with `backout rollback --undo-partial`",
        )
    observed = None
    start_at = run.next_index
    if run.uncertain is not None:
        took = _observe_uncertain(ws, session, unit, run.uncertain, run.uncertain_sha256)
        observed = (run.uncertain, took)
        start_at = run.uncertain + 1 if took else run.uncertain
    before = [i for i in range(1, start_at) if i != (observed[0] if observed else None)]
    gaps = [i for i in before if i not in run.applied]
    if gaps:
        raise HistoryError(
            f"the journal of run {run.run_id[:8]} has no record of statement(s) "
            f"{', '.join(map(str, gaps))}: it cannot be resumed",
            hint="`backout rollback --undo-partial` undoes what it recorded",
        )
    changed = _changed_statements(unit, run, before)
    if changed:
        raise HistoryError(
            f"{unit.script.display} changed in the statements that already ran "
            f"({', '.join(changed)}): where to resume cannot be told",
            hint="only the statements after the one that failed may change before a resume; "
            "restore the others as they were (e.g. git checkout), or use "
            "`backout rollback --undo-partial`",
        )
    notes = []
    if observed is not None:
        verdict = "took effect" if observed[1] else "did not take effect"
        notes.append(
            f"statement {observed[0]} was running when the run stopped; the schema shows it "
            f"{verdict}"
        )
    cleanup, left = _left_unfinished(ws, session, unit, observed)
    notes.extend(left)
    remaining = run.details.get("plan") or []
    later = [m for m in remaining if isinstance(m, str) and m != run.migration]
    if run.direction == "rollback" and later:
        notes.append(
            f"the interrupted rollback also planned {', '.join(later)}: roll them back with "
            f"`backout rollback --to {run.details.get('target') or '…'}` afterwards"
        )
    return RecoveryPlan(
        action="resume",
        statements=tuple(s for s in unit.statements if s.index >= start_at),
        observed=observed,
        cleanup=cleanup,
        notes=tuple(notes),
        **common,  # type: ignore[arg-type]
    )


def _plan_undo(
    ws: Workspace,
    session: Session,
    unit: PreparedScript,
    run: InterruptedRun,
    common: Mapping[str, object],
) -> RecoveryPlan:
    applied = list(run.applied)
    observed = None
    notes: list[str] = []
    if run.uncertain is not None:
        took = _observe_uncertain(ws, session, unit, run.uncertain, run.uncertain_sha256)
        observed = (run.uncertain, took)
        if took:
            applied.append(run.uncertain)
        verdict = "took effect: it is undone too" if took else "did not take effect"
        notes.append(f"statement {run.uncertain} was running when the run stopped; it {verdict}")
    cleanup, left = _left_unfinished(ws, session, unit, observed)
    notes.extend(left)
    if run.reversing is not None:
        still = _observe_uncertain(ws, session, unit, run.reversing, run.hashes.get(run.reversing))
        if not still:
            applied.remove(run.reversing)
        notes.append(
            f"the undo of statement {run.reversing} was running when it stopped; it "
            + ("had not taken effect" if still else "had taken effect")
        )
    snapshot = ws.dialect.snapshot(session)
    effects = ws.dialect.analyze(unit.statements)
    counts = _created_table_rows(ws, session, snapshot, effects)
    hashes = dict(run.hashes)
    if observed is not None and observed[1] and run.uncertain_sha256:
        hashes[observed[0]] = run.uncertain_sha256
    inverses: list[Inverse] = []
    for index in sorted(applied, reverse=True):
        statement = unit.statements[index - 1] if index <= len(unit.statements) else None
        if statement is None or statement_sha256(statement.sql) != hashes.get(index):
            shown = statement or Statement(sql="(gone)", line=run.lines.get(index, 0), index=index)
            inverses.append(
                Inverse(
                    shown,
                    reason="it changed in the file since it ran: its inverse cannot be derived",
                )
            )
            continue
        inverses.append(inverse_of(ws.dialect, statement, effects, snapshot, counts))
    path = _undo_path(unit, run, inverses, notes)
    return RecoveryPlan(
        action="undo",
        inverses=tuple(inverses),
        path=path,
        observed=observed,
        cleanup=cleanup,
        notes=tuple(notes),
        **common,  # type: ignore[arg-type]
    )


def _undo_path(
    unit: PreparedScript, run: InterruptedRun, inverses: Sequence[Inverse], notes: list[str]
) -> str:
    """``inverse`` when every statement has one, else ``backup`` (noted) when the run took
    one; CheckFailed when it did not."""
    if all(inv.derivable for inv in inverses):
        return "inverse"
    if run.backup:
        notes.append(
            f"not every statement has an inverse, so the backup taken before the run "
            f"({run.backup}) is restored instead (after a full backup of the current state)"
        )
        return "backup"
    missing = [inv for inv in inverses if not inv.derivable]
    detail = "; ".join(
        f"statement {inv.statement.index} ({unit.script.display}:{inv.statement.line}): "
        f"{inv.reason}"
        for inv in missing[:5]
    )
    raise CheckFailed(
        f"cannot undo run {run.run_id[:8]} of {run.migration}: {len(missing)} statement(s) "
        f"have no inverse, and no backup was taken before the run: {detail}",
        hint="nothing was changed. Fix the cause and `backout rollback --resume` instead, "
        "or repair by hand from a backup of your own",
    )


def _created_table_rows(
    ws: Workspace, session: Session, snapshot: SchemaSnapshot, effects: ScriptEffects
) -> dict[str, int]:
    """Rows now in the tables the script creates (an inverse would drop them)."""
    counts: dict[str, int] = {}
    for effect in effects.effects:
        if effect.action is Action.CREATE and effect.target.kind is ObjectKind.TABLE:
            key = table_key(effect.target, snapshot)
            if key and key not in counts:
                table = snapshot.tables[key]
                sql = f"SELECT count(*) FROM {ws.dialect.table_sql(table)}"
                counts[key] = int(session.query(sql)[0][0])
    return counts


def recover(
    ws: Workspace,
    action: str,
    *,
    dry_run: bool = False,
    confirm: ConfirmRecovery | None = None,
    progress: Callable[[str], None] | None = None,
) -> RecoveryResult:
    """``rollback --resume`` / ``--undo-partial``: finish or undo the run that stopped part-way.

    Under the run lock: plan (refusing what cannot be done, before anything changes), confirm,
    then run the remaining statements (resume) or each applied statement's inverse, newest
    first (undo), every step journaled like the run itself. An undo that cannot derive every
    inverse restores the backup taken before the run instead; without one it stops and says
    why.
    """
    if action not in ("resume", "undo"):
        raise UsageError(f"unknown recovery action {action!r}")
    with ws.session() as session:
        lock = None if dry_run else ws.run_lock(session)
        try:
            _refuse_half_restored(ws, session)
            plan = plan_recovery(ws, session, action)
            result = RecoveryResult(plan=plan, dry_run=dry_run)
            if confirm is not None and not confirm(plan):
                verb = "resume" if action == "resume" else "undo"
                raise Declined(f"{verb} declined: nothing was changed")
            if plan.path == "backup":
                result.transcript = [
                    f"-- restore backup {plan.run.backup} (taken before the run), after a "
                    "full backup of the current state"
                ]
            else:
                clock = time.monotonic()
                executor = Executor(session, dry_run=dry_run)
                if action == "resume":
                    _run_resume(ws, session, executor, result, progress)
                else:
                    _run_undo(ws, session, executor, result, progress)
                result.duration_s = time.monotonic() - clock
                result.transcript = executor.transcript
        finally:
            if lock is not None:
                lock.release()
    if plan.path == "backup" and not dry_run:
        # restore takes the run lock itself (and re-checks the backup) once ours is released
        return _undo_by_backup(ws, result, progress)
    if action == "resume" and plan.direction == "rollback":
        result.remaining = [
            m
            for m in plan.run.details.get("plan") or []
            if isinstance(m, str) and m != plan.run.migration
        ]
    return result


def _refuse_half_restored(ws: Workspace, session: Session) -> None:
    """A restore that stopped part-way comes first: the database is neither the run's state
    nor the backup's (an undo by backup that was interrupted is finished by resuming it)."""
    runs = ws.events.journal.unfinished_restores(session)
    if runs:
        raise HistoryError(
            f"the database is half-restored: {describe_unfinished_restore(runs[-1])}",
            hint=finish_restore_hint(runs[-1]),
        )


def _context(plan: RecoveryPlan, unit: PreparedScript) -> RunContext:
    """The interrupted run's context, for the script as it is now on disk."""
    return replace(
        plan.run.context(), script_checksum=plan.script.checksum, total=len(unit.statements)
    )


def _recovery_event(
    ws: Workspace, plan: RecoveryPlan, outcome: str, started: dt.datetime, **details: object
) -> Event:
    kinds = {"up": "apply", "rollback": "rollback", "partial": "partial_rollback"}
    return Event(
        event=kinds.get(plan.direction, "rollback") if plan.action == "resume" else "undo_partial",
        outcome=outcome,
        started_at=started,
        finished_at=utcnow(),
        actor=ws.actor,
        migration=plan.run.migration,
        checksum=plan.script.checksum,
        backup=plan.run.backup,
        error=str(details.pop("error")) if details.get("error") else None,
        details={
            "run": plan.run.run_id,
            "script": plan.script.display,
            "direction": plan.direction,
            **({"resumed_at": plan.statements[0].index} if plan.statements else {}),
            **details,
        },
    )


def _run_resume(
    ws: Workspace,
    session: Session,
    executor: Executor,
    result: RecoveryResult,
    progress: Callable[[str], None] | None,
) -> None:
    plan = result.plan
    run = plan.run
    unit = prepare(ws.dialect, plan.script)
    values = _values(plan.script, run) if run.direction == "partial" else {}
    runner = ScriptRunner(session, executor, ws.run_options(), values=values)
    journal = ws.events.journal
    context = _context(plan, unit)
    started = utcnow()
    executor.comment(
        f"backout rollback --resume: run {run.run_id} ({run.direction} of {run.migration})"
    )
    for sql in plan.cleanup:
        executor.execute(sql)
    _journal_observed(executor, journal, context, unit, plan)
    start_at = plan.statements[0].index if plan.statements else context.total + 1
    executor.execute(
        *journal.write(context, journal_entries.RESUME, start_at, details={"by": ws.actor.label()})
    )
    if progress:
        progress(f"resuming {run.migration} at statement {start_at} of {context.total}")
    try:
        if plan.statements:
            runner.run_without_transaction(
                unit, journal=JournalHooks(journal, context, executor), start_at=start_at
            )
        executor.begin()
        if run.direction == "up":
            assert run.ledger_row is not None
            executor.comment(f"history: {run.migration} applied (resumed)")
            executor.execute(
                *ws.ledger.finish(run.ledger_row, utcnow(), 1, checksum=plan.script.checksum)
            )
            _record_host(ws, executor, HostEvent.APPLIED, run.migration_key, started, plan)
        elif run.direction == "rollback":
            executor.comment(f"history: {run.migration} rolled back (resumed)")
            executor.execute(*ws.ledger.mark_rolled_back(run.migration_key, utcnow()))
            _record_host(ws, executor, HostEvent.ROLLED_BACK, run.migration_key, started, plan)
        ws.record(
            executor, _recovery_event(ws, plan, "ok", started, statements=len(plan.statements))
        )
        executor.execute(*journal.write(context, journal_entries.FINISH, context.total))
        executor.commit()
    except (BackoutError, KeyboardInterrupt) as exc:
        if not executor.dry_run:
            session.rollback()
            if isinstance(exc, BackoutError):
                exc.hint = (
                    "the statements that completed stay applied and are journaled; "
                    "`backout status` shows where it stopped again"
                )
            with contextlib.suppress(BackoutError):
                ws.record_alone(
                    session, _recovery_event(ws, plan, "failed", started, error=str(exc))
                )
        raise
    result.statements = runner.stats.statements


def _journal_observed(
    executor: Executor,
    journal: Journal,
    context: RunContext,
    unit: PreparedScript,
    plan: RecoveryPlan,
) -> None:
    """Journal the statement that was running when the run stopped as done, when it was
    observed to have taken effect."""
    if plan.observed is None or not plan.observed[1]:
        return
    statement = unit.statements[plan.observed[0] - 1]
    executor.execute(
        *journal.write(
            context,
            journal_entries.DONE,
            statement.index,
            statement=statement,
            details={"observed": True},
        )
    )


def _run_undo(
    ws: Workspace,
    session: Session,
    executor: Executor,
    result: RecoveryResult,
    progress: Callable[[str], None] | None,
) -> None:
    plan = result.plan
    run = plan.run
    unit = prepare(ws.dialect, plan.script)
    journal = ws.events.journal
    context = _context(plan, unit)
    started = utcnow()
    options = ws.run_options()
    executor.comment(
        f"backout rollback --undo-partial: run {run.run_id} ({run.direction} of {run.migration}),"
        " each statement's inverse, newest first"
    )
    setters, resetters = ws.dialect.session_timeout_statements(
        lock_timeout=options.lock_timeout, statement_timeout=options.statement_timeout
    )
    try:
        for sql in setters:
            executor.execute(sql)
        for sql in plan.cleanup:
            executor.execute(sql)
        _journal_observed(executor, journal, context, unit, plan)
        if run.reversing is not None and run.reversing not in [
            i.statement.index for i in plan.inverses
        ]:
            # the undo that was running when it stopped took effect: journal it as reversed
            statement = unit.statements[run.reversing - 1]
            executor.execute(
                *journal.write(
                    context,
                    journal_entries.REVERSED,
                    statement.index,
                    statement=statement,
                    details={"observed": True},
                )
            )
        for inverse in plan.inverses:
            _undo_statement(executor, journal, context, result, inverse, progress)
        _close_undo(ws, executor, journal, context, plan, started)
    except (BackoutError, KeyboardInterrupt) as exc:
        if not executor.dry_run:
            session.rollback()
            with contextlib.suppress(BackoutError):
                ws.record_alone(
                    session, _recovery_event(ws, plan, "failed", started, error=str(exc))
                )
        raise
    finally:
        for sql in resetters:
            if executor.dry_run:
                executor.execute(sql)
            else:
                with contextlib.suppress(DatabaseError):
                    session.execute(sql)


def _undo_statement(
    executor: Executor,
    journal: Journal,
    context: RunContext,
    result: RecoveryResult,
    inverse: Inverse,
    progress: Callable[[str], None] | None,
) -> None:
    """Run one statement's inverse between its ``reversing`` and ``reversed`` journal entries,
    counting the statements run into ``result``."""
    plan = result.plan
    statement = inverse.statement
    if progress:
        progress(f"undoing statement {statement.index} ({plan.script.display}:{statement.line})")
    executor.execute(
        *journal.write(
            context,
            journal_entries.REVERSING,
            statement.index,
            statement=statement,
            details={"sql": list(inverse.sql)},
        )
    )
    for sql in inverse.sql:
        try:
            executor.execute(sql)
        except DatabaseError as exc:
            state = f" [{exc.sqlstate}]" if exc.sqlstate else ""
            raise DatabaseError(
                f"undoing statement {statement.index} ({plan.script.display}:"
                f"{statement.line}) failed: {exc.message}{state}: {sql}",
                sqlstate=exc.sqlstate,
                path=plan.script.display,
                line=statement.line,
                statement=sql,
                hint="the statements undone so far are journaled; fix the cause and "
                "run `backout rollback --undo-partial` again",
            ) from exc
        result.statements += 1
    executor.execute(
        *journal.write(context, journal_entries.REVERSED, statement.index, statement=statement)
    )


def _close_undo(
    ws: Workspace,
    executor: Executor,
    journal: Journal,
    context: RunContext,
    plan: RecoveryPlan,
    started: dt.datetime,
) -> None:
    """In one transaction: close a failed apply's ledger row, record the undo, mark the run
    undone."""
    run = plan.run
    executor.begin()
    if run.direction == "up" and run.ledger_row is not None:
        executor.comment(f"history: the failed apply of {run.migration} is closed (pending)")
        executor.execute(*ws.ledger.close_failed(run.ledger_row, utcnow()))
        _record_host(ws, executor, HostEvent.RESOLVED_ROLLED_BACK, run.migration_key, started, plan)
    elif run.direction == "rollback":
        _record_host(ws, executor, HostEvent.ROLLBACK_UNDONE, run.migration_key, started, plan)
    ws.record(
        executor,
        _recovery_event(ws, plan, "ok", started, path="inverse", undone=len(plan.inverses)),
    )
    executor.execute(
        *journal.write(context, journal_entries.UNDONE, 0, details={"path": "inverse"})
    )
    executor.commit()


def _undo_by_backup(
    ws: Workspace, result: RecoveryResult, progress: Callable[[str], None] | None
) -> RecoveryResult:
    """Restore the backup taken before the run (restore verifies it and backs up the current
    state first), then close the run."""

    plan = result.plan
    run = plan.run
    assert run.backup is not None
    started = utcnow()
    clock = time.monotonic()
    unit = prepare(ws.dialect, plan.script)
    context = _context(plan, unit)
    # The restore closes the run (``undone``) when it completes; if it stops part-way, its
    # journal keeps the run known, and `backout restore --resume` finishes both.
    restored = restore(
        ws, run.backup, into_url=None, confirm=None, progress=progress, undoes=context
    )
    result.restored = restored.backup.id
    result.duration_s = time.monotonic() - clock
    with ws.session() as session:
        executor = Executor(session, dry_run=False)
        executor.begin()
        ws.record(
            executor,
            _recovery_event(
                ws,
                plan,
                "ok",
                started,
                path="backup",
                pre_restore_backup=restored.pre_restore.id if restored.pre_restore else None,
            ),
        )
        executor.commit()
    return result


def _record_host(
    ws: Workspace,
    executor: Executor,
    event: HostEvent,
    key: str,
    started: dt.datetime,
    plan: RecoveryPlan,
) -> None:
    """The host table's counterpart of a resumed or undone run's ledger write."""
    writes = ws.host_writes(
        executor.session,
        event,
        ws.project.by_key().get(key),
        key,
        started=started,
        finished=utcnow(),
        script=plan.script,
        statements=len(plan.statements),
    )
    if writes:
        executor.comment(f"host history: {plan.run.migration} {event.value}")
    for sql, params in writes:
        executor.execute(sql, params or None)
