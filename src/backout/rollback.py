"""``backout plan`` and ``backout rollback``: the seeds' runbook as one safe command.

Order of a rollback: is the run lock held? (then exit 3 at once, naming the holder) → plan
(pure, refusing impossible requests; its reads wait for a table lock at most ``lock_timeout``)
→ run lock → re-read the history under the lock (the plan must not have moved) → confirmation
→ verified backup → ``before_rollback`` hook → every script in ONE transaction (per script:
``require``, statements, ``verify``; then history) → COMMIT → ``after_rollback`` hook → the
scripts' ``manual`` steps. Any error undoes everything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backout import journal as journal_entries
from backout.dialects.base import Session, utcnow
from backout.errors import (
    BackoutError,
    CheckFailed,
    DatabaseError,
    Declined,
    HistoryError,
    LockError,
    ProjectError,
    UsageError,
)
from backout.history import Event
from backout.hooks import HookResult, run_hook
from backout.impact import ImpactReport
from backout.journal import (
    PARTIAL,
    ROLLBACK,
    InterruptedRun,
    Inverse,
    JournalHooks,
    RunContext,
    inverse_of,
    observe,
    statement_sha256,
)
from backout.plan import PlanStep, RollbackPlan, plan_partial, plan_rollback, resolve_params
from backout.runner import Executor, PreparedScript, ScriptRunner, check_passes, prepare
from backout.schema import SchemaSnapshot
from backout.script import Script, Statement
from backout.status import StatusReport
from backout.workspace import Workspace

if TYPE_CHECKING:
    from backout.backup import BackupRecord
    from backout.effects import ScriptEffects

BACKUP_MODES = ("scoped", "full", "none")


@dataclass(frozen=True)
class PartialRequest:
    """``rollback [ID] --partial NAME --param k=v``: which partial, of which migration."""

    name: str
    migration: str | None = None
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class RequireStatus:
    """A ``require`` check evaluated against the database as it is now."""

    script: str
    line: int
    sql: str
    passes: bool | None
    error: str | None = None


@dataclass(frozen=True)
class StepView:
    """One step of a plan, with what backout found out about it."""

    step: PlanStep
    unit: PreparedScript
    requires: tuple[RequireStatus, ...]
    tables: tuple[str, ...]


@dataclass(frozen=True)
class BackupIntent:
    """The backup a rollback will take."""

    mode: str
    tables: tuple[str, ...] = ()
    #: why a scoped backup became full (e.g. dynamic SQL that cannot be analysed)
    reason: str = ""

    def describe(self) -> str:
        """One line for the plan."""
        if self.mode == "none":
            return "none (--backup none --i-accept-data-loss)"
        if self.mode == "full":
            return "full: the whole database" + (f" ({self.reason})" if self.reason else "")
        listed = ", ".join(self.tables) if self.tables else "no table data"
        return f"scoped: full schema + migration history + data of {listed}"


@dataclass(frozen=True)
class Preview:
    """What a partial rollback's ``preview`` query returns now: the rows it will affect."""

    sql: str
    line: int
    count: int
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]


PREVIEW_ROWS = 10


def _preview(
    session: Session, script: Script, values: Mapping[str, object], lock_timeout: float
) -> Preview | None:
    """Run the ``preview`` query (bound parameters) in a read transaction rolled back after."""
    check = script.directives.preview
    if check is None:
        return None
    query = check.sql.strip().rstrip(";")
    session.begin_read(lock_timeout=lock_timeout)
    try:
        dialect = session.dialect
        count_sql, params = dialect.bind(dialect.count_sql(query, values.keys()), values)
        count = int(session.query_native(count_sql, params)[0][0])
        sql, params = dialect.bind(query, values)
        columns, rows = session.query_table(sql, params, PREVIEW_ROWS)
    except DatabaseError as exc:
        raise DatabaseError(
            f"{script.display}:{check.line}: preview query failed: {exc.message}",
            sqlstate=exc.sqlstate,
            path=script.display,
            line=check.line,
            statement=check.sql,
            hint="nothing was changed",
        ) from exc
    finally:
        session.rollback()
    return Preview(check.sql, check.line, count, tuple(columns), tuple(tuple(r) for r in rows))


@dataclass(frozen=True)
class PlanView:
    """Everything ``plan`` shows and ``rollback`` confirms, computed without changing anything."""

    plan: RollbackPlan
    steps: tuple[StepView, ...]
    backup: BackupIntent
    database: str
    lock: str
    lock_timeout: float
    lock_retries: int
    statement_timeout: float
    transactions: int
    impact: ImpactReport
    warnings: tuple[str, ...] = ()
    #: partial rollbacks: the typed parameter values, and what the preview query found
    params: Mapping[str, object] = dataclasses.field(default_factory=dict)
    preview: Preview | None = None

    @property
    def requires_fail(self) -> list[RequireStatus]:
        """``require`` checks that do not hold now."""
        return [r for s in self.steps for r in s.requires if r.passes is False]


@dataclass
class RollbackResult:
    """What a rollback did."""

    view: PlanView
    dry_run: bool
    backup: BackupRecord | None = None
    rolled_back: list[str] = field(default_factory=list)
    statements: int = 0
    rows_affected: int = 0
    attempts: int = 0
    duration_s: float = 0.0
    transcript: list[str] = field(default_factory=list)
    hooks: list[HookResult] = field(default_factory=list)
    manual: list[tuple[str, str]] = field(default_factory=list)


Confirm = Callable[[PlanView], bool]


# --- planning ----------------------------------------------------------------------------------


def _with_referencing(tables: set[str], snapshot: SchemaSnapshot) -> set[str]:
    """Add every table that references one of ``tables`` by foreign key, transitively
    (cascading deletes and SET NULL reach them)."""
    result = set(tables)
    changed = True
    while changed:
        changed = False
        for key, table in snapshot.tables.items():
            if key in result:
                continue
            if any(fk.referenced_table in result for fk in table.foreign_keys):
                result.add(key)
                changed = True
    return result


def _backup_intent(
    ws: Workspace,
    snapshot: SchemaSnapshot,
    analysed: Sequence[tuple[PreparedScript, ScriptEffects]],
    mode: str,
) -> tuple[BackupIntent, dict[str, tuple[str, ...]]]:
    """Decide what a scoped backup holds; fall back to full when a script cannot be analysed."""
    from backout.impact import table_key

    per_script: dict[str, tuple[str, ...]] = {}
    touched: set[str] = set()
    unknown: list[str] = []
    for unit, effects in analysed:
        keys = [k for k in (table_key(t, snapshot) for t in effects.tables_written()) if k]
        per_script[unit.script.display] = tuple(keys)
        touched.update(keys)
        unknown.extend(f"{unit.script.display}:{u.line}" for u in effects.unknown)
    if mode != "scoped":
        return BackupIntent(mode=mode), per_script
    if unknown:
        return (
            BackupIntent(
                mode="full",
                reason=f"{unknown[0]} cannot be analysed statically, so the scope is unknown",
            ),
            per_script,
        )
    scope = tuple(sorted(_with_referencing(touched, snapshot)))
    return BackupIntent(mode="scoped", tables=scope), per_script


def _with_simulation(
    ws: Workspace,
    impact: ImpactReport,
    analysed: Sequence[tuple[PreparedScript, ScriptEffects]],
) -> ImpactReport:
    from backout.simulate import simulate

    simulations, note = simulate(ws, analysed)
    if not simulations:
        return dataclasses.replace(impact, simulation_note=note)
    scripts = tuple(
        dataclasses.replace(script, simulation=sim)
        for script, sim in zip(impact.scripts, simulations, strict=True)
    )
    return dataclasses.replace(impact, scripts=scripts)


def _evaluate_requires(
    session: Session, unit: PreparedScript, values: Mapping[str, object], lock_timeout: float
) -> tuple[RequireStatus, ...]:
    """Evaluate each ``require`` now, each in a read transaction that is rolled back."""
    results = []
    for check in unit.script.directives.require:
        session.begin_read(lock_timeout=lock_timeout)
        try:
            sql, params = session.dialect.bind(check.sql, values)
            rows = session.query_native(sql, params)
            passes: bool | None = check_passes(rows)
            error = None
        except BackoutError as exc:
            passes, error = None, str(exc)
        finally:
            session.rollback()
        results.append(RequireStatus(unit.script.display, check.line, check.sql, passes, error))
    return tuple(results)


def _transactions(units: Sequence[PreparedScript]) -> list[list[PreparedScript]]:
    """Consecutive transactional scripts share one transaction; a ``transaction off`` script
    runs on its own."""
    groups: list[list[PreparedScript]] = []
    for unit in units:
        if unit.transactional and groups and groups[-1][0].transactional:
            groups[-1].append(unit)
        else:
            groups.append([unit])
    return groups


def build_view(
    ws: Workspace,
    session: Session,
    *,
    to: str | None,
    steps: int | None,
    backup_mode: str,
    exact: bool = False,
    simulate: bool = False,
    partial: PartialRequest | None = None,
) -> PlanView:
    """Plan a rollback and find out what it needs, reading the database but changing nothing.

    ``simulate`` also runs the scripts on a schema-only scratch copy (see backout.simulate).
    ``partial`` plans a named data-only rollback instead of a full one.
    """
    from backout.effects import analyze
    from backout.impact import compute_impact

    plan = _choose_steps(ws, session, to=to, steps=steps, partial=partial)
    values: dict[str, object] = {}
    preview = None
    if partial is not None:
        values = resolve_params(plan.steps[0].script, partial.params)
        simulate = False  # data only: nothing for a schema-only copy to show
    units = [prepare(ws.dialect, step.script) for step in plan.steps]
    empty = [u.script.display for u in units if not u.statements]
    if empty:
        raise ProjectError(
            f"rollback script has no statements: {', '.join(empty)}",
            hint="write the rollback (or `backout generate` a draft); an empty script would "
            "mark the migration rolled back while changing nothing",
        )
    if partial is not None:
        preview = _preview(session, plan.steps[0].script, values, ws.config.lock_timeout)
    analysed = [(unit, analyze(ws.dialect.name, unit.statements)) for unit in units]
    if units:
        snapshot = ws.dialect.snapshot(session)
        intent, per_script = _backup_intent(ws, snapshot, analysed, backup_mode)
        impact = compute_impact(
            session,
            ws.dialect,
            [(u.script, e) for u, e in analysed],
            exact=exact,
            values=values,
            lock_timeout=ws.config.lock_timeout,
        )
        if simulate:
            impact = _with_simulation(ws, impact, analysed)
    else:
        intent, per_script = BackupIntent(mode=backup_mode), {}
        impact = ImpactReport(scripts=(), exact=exact)
    views = tuple(
        StepView(
            step=step,
            unit=unit,
            requires=_evaluate_requires(session, unit, values, ws.config.lock_timeout),
            tables=per_script.get(unit.script.display, ()),
        )
        for step, unit in zip(plan.steps, units, strict=True)
    )
    warnings = [
        f"{s.migration.id}: its forward script was edited after it was applied; the rollback "
        "may not match what the database holds"
        for s in plan.steps
        if s.edited
    ]
    warnings.extend(_implicit_commit_warnings(ws, units))
    for script_impact in impact.scripts:
        sim = script_impact.simulation
        if sim is not None and sim.error:
            warnings.append(f"{script_impact.script.display}: {sim.error}")
        for disagreement in sim.disagreements if sim is not None else ():
            warnings.append(f"{script_impact.script.display}: {disagreement}")
    if impact.simulation_note:
        warnings.append(impact.simulation_note)
    groups = _transactions(units)
    if len(groups) > 1 and any(not u.script.directives.transaction for u in units):
        warnings.append(
            f"a script runs with transaction off, so the rollback runs as {len(groups)} "
            "separate transactions: a failure undoes only the one it happens in"
        )
    options = ws.run_options()
    return PlanView(
        plan=plan,
        steps=views,
        backup=intent,
        database=ws.url.masked(),
        lock=_lock_description(ws),
        lock_timeout=options.lock_timeout,
        lock_retries=options.lock_retries,
        statement_timeout=options.statement_timeout
        if ws.dialect.supports_statement_timeout
        else 0.0,
        transactions=_transaction_count(groups),
        impact=impact,
        warnings=tuple(warnings),
        params=values,
        preview=preview,
    )


def _choose_steps(
    ws: Workspace,
    session: Session,
    *,
    to: str | None,
    steps: int | None,
    partial: PartialRequest | None,
) -> RollbackPlan:
    """Which migrations the request rolls back, from the history as it is now."""
    report = ws.read_status(session)
    refuse_interrupted(report)
    if partial is None:
        return plan_rollback(ws.project, report, to=to, steps=steps)
    if to is not None or steps is not None:
        raise UsageError("a partial rollback names one migration: --to/--steps do not apply")
    return plan_partial(ws.project, report, partial.migration, partial.name)


def _recheck_locked(
    ws: Workspace,
    session: Session,
    first: PlanView,
    *,
    to: str | None,
    steps: int | None,
    partial: PartialRequest | None,
) -> PlanView:
    """The first pass's view, once the run lock is held: the history must not have moved.

    Counting again would cost as much as the first pass (minutes on a big partial rollback)
    and decide nothing: the risk was judged on the first counts, the backup is taken next
    from the database as it is, and ``require``/``verify`` run again inside the transaction.
    """
    plan = _choose_steps(ws, session, to=to, steps=steps, partial=partial)
    if plan.ids() != first.plan.ids():
        raise UsageError(
            "the migration history changed while planning (another run?); "
            "run the command again to see the new plan"
        )
    return dataclasses.replace(
        first,
        plan=plan,
        steps=tuple(
            dataclasses.replace(view, step=step)
            for view, step in zip(first.steps, plan.steps, strict=True)
        ),
    )


def _transaction_count(groups: Sequence[Sequence[PreparedScript]]) -> int:
    """Transactions the rollback commits: one per transactional group, one per statement of a
    script that runs statement by statement."""
    return sum(1 if g[0].transactional else max(1, len(g[0].statements)) for g in groups)


def _implicit_commit_warnings(ws: Workspace, units: Sequence[PreparedScript]) -> list[str]:
    """Which statements no transaction can undo, named before confirmation."""
    implicit = [(u, s) for u in units if u.script.directives.transaction for s in u.implicit]
    if not implicit:
        return []
    shown = [f"{u.script.display}:{s.line} {s.excerpt(50)}" for u, s in implicit[:8]]
    more = f"; … and {len(implicit) - 8} more" if len(implicit) > 8 else ""
    return [
        f"{ws.dialect.display_name} commits DDL implicitly: {len(implicit)} statement(s) cannot "
        "be undone by a transaction, so a failure after one of them leaves it in place. backout "
        "journals every statement as it completes: `backout status` then names where the run "
        "stopped, and `backout rollback --resume` (after fixing the cause) or "
        "`backout rollback --undo-partial` finish or undo it. Statements: "
        + "; ".join(shown)
        + more
    ]


def refuse_interrupted(report: StatusReport) -> None:
    """Refuse a new run while a journaled one stopped part-way (it must be resumed or undone)."""
    if not report.interrupted:
        return
    entry = report.interrupted[0]
    run = entry.interrupted
    assert run is not None
    raise HistoryError(
        f"the {'apply' if run.direction == 'up' else 'rollback'} of {entry.id} stopped part-way: "
        f"{run.describe()}",
        hint="fix the cause, then `backout rollback --resume` to continue it, or "
        "`backout rollback --undo-partial` to undo what it did (see `backout status`)",
    )


def _lock_description(ws: Workspace) -> str:
    return ws.dialect.run_lock_description(prisma_compatible=ws.project.ledger == "prisma")


def plan(
    ws: Workspace,
    *,
    to: str | None,
    steps: int | None,
    backup_mode: str,
    exact: bool = False,
    simulate: bool = True,
    partial: PartialRequest | None = None,
) -> PlanView:
    """The rollback plan; changes nothing (a missing SQLite file is not created)."""
    if backup_mode not in BACKUP_MODES:
        raise UsageError(f"--backup must be one of {', '.join(BACKUP_MODES)}")
    with ws.session(create=False) as session:
        return build_view(
            ws,
            session,
            to=to,
            steps=steps,
            backup_mode=backup_mode,
            exact=exact,
            simulate=simulate,
            partial=partial,
        )


# --- execution ---------------------------------------------------------------------------------


def refuse_understated(view: PlanView, *, accept_data_loss: bool) -> None:
    """A rollback whose declared risk understates the computed one needs explicit consent."""
    if accept_data_loss or not view.impact.understated:
        return
    worst = view.impact.understated[0]
    declared = worst.declared.name if worst.declared is not None else "undeclared"
    reason = worst.assessment.reasons[0] if worst.assessment.reasons else ""
    raise CheckFailed(
        f"{worst.script.display} declares risk {declared} but backout computes "
        f"{worst.assessment.risk.name}: {reason}",
        hint="read `backout plan`; pass --i-accept-data-loss to roll back anyway, "
        "or correct the script's risk directive",
    )


def rollback(
    ws: Workspace,
    *,
    to: str | None = None,
    steps: int | None = None,
    dry_run: bool = False,
    backup_mode: str = "scoped",
    accept_data_loss: bool = False,
    confirm: Confirm | None = None,
    progress: Callable[[str], None] | None = None,
    exact: bool = False,
    simulate: bool = True,
    partial: PartialRequest | None = None,
    existing_backup: BackupRecord | None = None,
) -> RollbackResult:
    """Roll back applied migrations safely; see the module docstring for the order of steps.

    ``existing_backup``: a verified backup the caller has just taken (the emergency procedure's
    full backup); no other is taken, and history names this one.
    """
    if backup_mode not in BACKUP_MODES:
        raise UsageError(f"--backup must be one of {', '.join(BACKUP_MODES)}")
    if backup_mode == "none" and not accept_data_loss:
        raise UsageError(
            "--backup none needs --i-accept-data-loss: without a backup, what the rollback "
            "destroys cannot come back"
        )
    # Refuse impossible requests before touching anything (and before taking the lock).
    with ws.session(create=False) as session:
        if not dry_run:
            # Another run holds the lock: say who at once. Planning reads the tables that run
            # may hold locked (a table it drops), and would otherwise wait for it to end.
            ws.check_run_lock(session)
        first = build_view(
            ws,
            session,
            to=to,
            steps=steps,
            backup_mode=backup_mode,
            exact=exact,
            simulate=simulate,
            partial=partial,
        )
        if not dry_run:
            # Taken while this run planned: its counts may have given up on that run's table
            # locks (lock_timeout), so refuse now rather than judge the risk on them.
            ws.check_run_lock(session)
    if first.impact.lock_waits and not dry_run:
        # What the rollback destroys is not known: never judge its risk (or run it) blind.
        raise LockError(
            f"{first.impact.lock_waits[0]}; nothing changed",
            hint="another session holds that table locked: retry when it is done, or raise "
            "lock_timeout",
        )
    if first.plan.empty:
        return RollbackResult(view=first, dry_run=dry_run)
    refuse_understated(first, accept_data_loss=accept_data_loss or dry_run)
    if first.requires_fail and not dry_run:
        check = first.requires_fail[0]
        raise CheckFailed(
            f"{check.script}:{check.line}: require does not hold now: {check.sql}",
            hint="nothing was changed: no backup taken, no hook run",
        )
    with ws.session() as session:
        lock = None if dry_run else ws.run_lock(session)
        try:
            view = _recheck_locked(ws, session, first, to=to, steps=steps, partial=partial)
            result = RollbackResult(view=view, dry_run=dry_run)
            if dry_run:
                _execute(ws, session, result, dry_run=True, progress=progress)
                return result
            if confirm is not None and not confirm(view):
                raise Declined("rollback declined: nothing was changed")
            if existing_backup is not None:
                result.backup = existing_backup
            elif view.backup.mode != "none":
                from backout.backup import take_backup

                if progress:
                    progress(f"backing up ({view.backup.mode})")
                result.backup = take_backup(
                    ws,
                    session,
                    kind=view.backup.mode,
                    tables=view.backup.tables,
                    reason=(
                        f"before partial rollback {partial.name} of {view.plan.ids()[0]}"
                        if partial
                        else f"before rollback of {', '.join(view.plan.ids())}"
                    ),
                    progress=progress,
                )
            hook = run_hook(ws.config, "before_rollback", ws.url)
            if hook is not None:
                result.hooks.append(hook)
                if not hook.ok:
                    raise CheckFailed(
                        f"{hook.describe()}; nothing was rolled back",
                        hint=f"the backup {result.backup.id} was kept" if result.backup else None,
                    )
            _execute(ws, session, result, dry_run=False, progress=progress)
        finally:
            if lock is not None:
                lock.release()
    hook = run_hook(ws.config, "after_rollback", ws.url)
    if hook is not None:
        result.hooks.append(hook)
    result.manual = [
        (step.migration.id, text)
        for step in view.plan.steps
        for text in step.script.directives.manual
    ]
    return result


def _execute(
    ws: Workspace,
    session: Session,
    result: RollbackResult,
    *,
    dry_run: bool,
    progress: Callable[[str], None] | None,
) -> None:
    view = result.view
    executor = Executor(session, dry_run=dry_run)
    if dry_run:
        executor.comment(f"backout rollback --dry-run on {view.database}")
        executor.comment(f"run lock: {view.lock} (taken for the whole run, never waited for)")
        executor.comment(
            f"lock timeout {view.lock_timeout:g}s per attempt, {view.lock_retries} retries "
            "with backoff; statement timeout "
            + (f"{view.statement_timeout:g}s" if view.statement_timeout else "none")
        )
        executor.comment(f"backup: {view.backup.describe()}")
    ws.ensure_history(session, executor)
    ws.events.upgrade(session, executor)
    backup_id = result.backup.id if result.backup else None
    clock = time.monotonic()
    by_unit = {id(s.unit): s for s in view.steps}
    for group in _transactions([s.unit for s in view.steps]):
        steps = [by_unit[id(u)] for u in group]
        if progress:
            progress("rolling back " + ", ".join(s.step.migration.id for s in steps))
        _run_group(ws, session, executor, result, steps, backup_id)
    result.duration_s = time.monotonic() - clock
    result.transcript = executor.transcript


def _run_group(
    ws: Workspace,
    session: Session,
    executor: Executor,
    result: RollbackResult,
    steps: Sequence[StepView],
    backup_id: str | None,
) -> None:
    """Run the scripts of one transaction; record each migration as rolled back before COMMIT."""
    view = result.view
    runner = ScriptRunner(session, executor, ws.run_options(), values=view.params)
    partial = view.plan.partial
    started = utcnow()
    by_unit = {id(s.unit): s for s in steps}

    def event(step: StepView, outcome: str, error: str | None = None) -> Event:
        return Event(
            event="partial_rollback" if partial else "rollback",
            outcome=outcome,
            started_at=started,
            finished_at=utcnow(),
            actor=ws.actor,
            migration=step.step.migration.id,
            checksum=step.step.script.checksum,
            backup=backup_id,
            error=error,
            details={
                "script": step.step.script.display,
                "statements": len(step.unit.statements),
                "attempts": runner.stats.attempts,
                "lock_waits": runner.stats.lock_waits,
                "plan": view.plan.ids(),
                "target": view.plan.target,
                "rows_affected": runner.stats.rows_affected,
                **({"partial": partial, "params": dict(view.params)} if partial else {}),
            },
        )

    def record(unit: PreparedScript) -> None:
        step = by_unit[id(unit)]
        if partial:
            # Data only: the migration stays applied (its ledger rows are not touched).
            executor.comment(f"history: partial rollback {partial} of {step.step.migration.id}")
        else:
            executor.comment(f"history: {step.step.migration.id} rolled back")
            executor.execute(*ws.ledger.mark_rolled_back(step.step.migration.key, utcnow()))
        ws.record(executor, event(step, "ok"))

    units = [s.unit for s in steps]
    journaled = False
    try:
        if units[0].transactional:
            runner.run_in_transaction(units, before_commit=lambda: None, on_unit_done=record)
        else:
            journaled = True
            step = steps[0]
            run = RunContext.new(
                direction=PARTIAL if partial else ROLLBACK,
                migration=step.step.migration.id,
                migration_key=step.step.migration.key,
                script=step.step.script.display,
                script_checksum=step.step.script.checksum,
                total=len(step.unit.statements),
            )
            journal = ws.events.journal
            start = journal.write(
                run,
                journal_entries.START,
                0,
                details={
                    "ledger_row": _live_row(ws, session, step.step.migration.key),
                    "backup": backup_id,
                    "plan": view.plan.ids(),
                    "target": view.plan.target,
                    **({"partial": partial, "params": dict(view.params)} if partial else {}),
                },
            )

            def on_start() -> None:
                executor.execute(*start)

            runner.run_without_transaction(
                units[0], on_start=on_start, journal=JournalHooks(journal, run, executor)
            )
            executor.begin()
            record(units[0])
            executor.execute(*journal.write(run, journal_entries.FINISH, run.total))
            executor.commit()
    except (BackoutError, KeyboardInterrupt) as exc:
        if not executor.dry_run:
            session.rollback()
            if journaled and isinstance(exc, BackoutError):
                exc.hint = _journaled_hint(ws, steps[0], result)
            elif isinstance(exc, DatabaseError) and exc.hint is None:
                exc.hint = (
                    "everything in this transaction was undone: the database is as it was "
                    "before the rollback"
                )
            if result.rolled_back and isinstance(exc, BackoutError):
                exc.hint = (exc.hint or "") + (
                    f" ({', '.join(result.rolled_back)} rolled back before this failure and "
                    "stay rolled back)"
                )
            _record_failure(ws, session, steps, event, exc)
        raise
    result.rolled_back.extend(s.step.migration.id for s in steps)
    result.statements += runner.stats.statements
    result.rows_affected += runner.stats.rows_affected
    result.attempts += runner.stats.attempts


def _live_row(ws: Workspace, session: Session, key: str) -> str | None:
    """The ledger row that says a migration is applied (the one a rollback closes)."""
    rows = [r for r in ws.ledger.rows(session) if r.key == key and r.live and r.finished_at]
    return rows[-1].id if rows else None


def _journaled_hint(ws: Workspace, step: StepView, result: RollbackResult) -> str:
    script = step.step.script.display
    why = (
        "transaction off"
        if not step.unit.script.directives.transaction
        else f"{ws.dialect.display_name} commits DDL implicitly"
    )
    backup = f"; the backup taken before it is {result.backup.id}" if result.backup else ""
    return (
        f"the statements of {script} that completed stay applied ({why}); each is recorded in "
        "the journal. `backout status` shows where it stopped. Fix the cause and run "
        "`backout rollback --resume`, or undo them with `backout rollback --undo-partial`"
        f"{backup}"
    )


def _record_failure(
    ws: Workspace,
    session: Session,
    steps: Sequence[StepView],
    event: Callable[[StepView, str, str | None], Event],
    exc: BaseException,
) -> None:
    """Append a failed event per step (in its own transaction); never mask the real error."""
    message = str(exc) or type(exc).__name__
    try:
        for step in steps:
            ws.record_alone(session, event(step, "failed", message))
    except BackoutError as record_error:
        if isinstance(exc, BackoutError):
            exc.hint = (exc.hint + "; " if exc.hint else "") + (
                f"the failure could not be recorded in history: {record_error}"
            )


# --- finishing or undoing a run that stopped part-way ---------------------------------------


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
    from backout.effects import analyze

    statement = unit.statements[index - 1] if index <= len(unit.statements) else None
    if statement is None or (sha is not None and statement_sha256(statement.sql) != sha):
        raise HistoryError(
            f"statement {index} of {unit.script.display} was running when the run stopped, and "
            "it changed in the file since: whether it took effect cannot be told",
            hint="restore the script as it was (e.g. git checkout) and try again, or restore "
            "the backup taken before the run",
        )
    effects = analyze(ws.dialect.name, [statement])
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
        "lock": _lock_description(ws),
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
    from backout.effects import analyze

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
    if run.reversing is not None:
        still = _observe_uncertain(ws, session, unit, run.reversing, run.hashes.get(run.reversing))
        if not still:
            applied.remove(run.reversing)
        notes.append(
            f"the undo of statement {run.reversing} was running when it stopped; it "
            + ("had not taken effect" if still else "had taken effect")
        )
    snapshot = ws.dialect.snapshot(session)
    effects = analyze(ws.dialect.name, unit.statements)
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
    if all(inv.derivable for inv in inverses):
        path = "inverse"
    elif run.backup:
        path = "backup"
        notes.append(
            f"not every statement has an inverse, so the backup taken before the run "
            f"({run.backup}) is restored instead (after a full backup of the current state)"
        )
    else:
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
    return RecoveryPlan(
        action="undo",
        inverses=tuple(inverses),
        path=path,
        observed=observed,
        notes=tuple(notes),
        **common,  # type: ignore[arg-type]
    )


def _created_table_rows(
    ws: Workspace, session: Session, snapshot: SchemaSnapshot, effects: ScriptEffects
) -> dict[str, int]:
    """Rows now in the tables the script creates (an inverse would drop them)."""
    from backout.effects import Action, ObjectKind
    from backout.impact import table_key

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


def _context(plan: RecoveryPlan, unit: PreparedScript) -> RunContext:
    run = plan.run
    return RunContext(
        run_id=run.run_id,
        direction=run.direction,
        migration=run.migration,
        migration_key=run.migration_key,
        script=run.script,
        script_checksum=plan.script.checksum,
        total=len(unit.statements),
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
    if plan.observed is not None and plan.observed[1]:
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
        elif run.direction == "rollback":
            executor.comment(f"history: {run.migration} rolled back (resumed)")
            executor.execute(*ws.ledger.mark_rolled_back(run.migration_key, utcnow()))
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
        if plan.observed is not None and plan.observed[1]:
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
        if run.reversing is not None and run.reversing not in [
            i.statement.index for i in plan.inverses
        ]:
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
            statement = inverse.statement
            if progress:
                progress(
                    f"undoing statement {statement.index} ({plan.script.display}:{statement.line})"
                )
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
                *journal.write(
                    context, journal_entries.REVERSED, statement.index, statement=statement
                )
            )
        executor.begin()
        if run.direction == "up" and run.ledger_row is not None:
            executor.comment(f"history: the failed apply of {run.migration} is closed (pending)")
            executor.execute(*ws.ledger.close_failed(run.ledger_row, utcnow()))
        ws.record(
            executor,
            _recovery_event(ws, plan, "ok", started, path="inverse", undone=len(plan.inverses)),
        )
        executor.execute(
            *journal.write(context, journal_entries.UNDONE, 0, details={"path": "inverse"})
        )
        executor.commit()
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


def _undo_by_backup(
    ws: Workspace, result: RecoveryResult, progress: Callable[[str], None] | None
) -> RecoveryResult:
    """Restore the backup taken before the run (restore verifies it and backs up the current
    state first), then close the run."""
    from backout.backup import restore

    plan = result.plan
    run = plan.run
    assert run.backup is not None
    started = utcnow()
    clock = time.monotonic()
    restored = restore(ws, run.backup, into_url=None, confirm=None, progress=progress)
    result.restored = restored.backup.id
    result.duration_s = time.monotonic() - clock
    with ws.session() as session:
        unit = prepare(ws.dialect, plan.script)
        context = _context(plan, unit)
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
        executor.execute(
            *ws.events.journal.write(
                context,
                journal_entries.UNDONE,
                0,
                details={"path": "backup", "backup": run.backup},
            )
        )
        executor.commit()
    return result
