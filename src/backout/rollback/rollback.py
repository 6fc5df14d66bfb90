"""``backout plan`` and ``backout rollback``: the seeds' runbook as one safe command.

Order of a rollback: is the run lock held? (then exit 3 at once, naming the holder) → plan
(pure, refusing impossible requests; its reads wait for a table lock at most ``lock_timeout``)
→ run lock → re-read the history and the schema under the lock (neither may have moved) →
confirmation → verified backup → ``before_rollback`` hook → every script in ONE transaction
(per script: ``require``, statements, ``verify``; then history) → COMMIT → ``after_rollback``
hook → the scripts' ``manual`` steps. Any error undoes everything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backout.analysis.impact import ImpactReport, compute_impact
from backout.analysis.simulate import simulate
from backout.backup.catalog import BackupCatalog, BackupRecord
from backout.backup.take import BackupScope, take_backup
from backout.dialects.base import Dialect, Session, utcnow
from backout.model.effects import table_key
from backout.model.errors import (
    BackoutError,
    CheckFailed,
    DatabaseError,
    Declined,
    LockError,
    ProjectError,
    UsageError,
)
from backout.model.schema import SchemaSnapshot
from backout.model.script import Script, Statement
from backout.rollback.schema_update import (
    SchemaUpdatePlan,
    SchemaUpdateResult,
    SchemaUpdateSetup,
    plan_update,
    run_update,
)
from backout.rollback.schema_update import dry_run as schema_dry_run
from backout.rollback.schema_update import prepare as prepare_schema_update
from backout.rollback.steps import (
    PlanStep,
    RollbackPlan,
    plan_partial,
    plan_rollback,
    resolve_params,
)
from backout.run import journal as journal_entries
from backout.run.history import Event
from backout.run.hooks import HookResult, run_hook
from backout.run.host_history import HostEvent
from backout.run.journal import (
    PARTIAL,
    ROLLBACK,
    JournalHooks,
    RunContext,
)
from backout.run.runner import Executor, PreparedScript, ScriptRunner, check_passes, prepare
from backout.run.status import StatusReport, refuse_interrupted
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    from backout.backup.catalog import BackupRecord
    from backout.model.effects import ScriptEffects

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
    # read-only where the database has it; rolled back after, like every check query
    session.begin_check(lock_timeout=lock_timeout)
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
    #: what the view was computed from: the history and the schema (see :func:`_state_of`;
    #: "" on a private database, where nothing else can move them)
    state: str = ""
    #: rows outside the project's scope (``?schema=``) that the rollback's writes change through
    #: a foreign key's ON DELETE: not counted, in no backup of this project
    outside: tuple[str, ...] = ()
    #: ``--update-schema``: what happens to schema.prisma after COMMIT (None: nothing)
    schema_update: SchemaUpdatePlan | None = None

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
    #: ``--update-schema``: what it did to schema.prisma after COMMIT (None: not asked)
    schema_update: SchemaUpdateResult | None = None


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
    live_key: str,
    session: Session,
) -> ImpactReport:
    simulations, note = simulate(ws, analysed, live_key, live=session)
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
        try:
            sql, params = session.dialect.bind(check.sql, values)
            rows = session.query_undone(sql, params, lock_timeout=lock_timeout)
            passes: bool | None = check_passes(rows)
            error = None
        except BackoutError as exc:
            passes, error = None, str(exc)
        results.append(RequireStatus(unit.script.display, check.line, check.sql, passes, error))
    return tuple(results)


def _transactions(dialect: Dialect, units: Sequence[PreparedScript]) -> list[list[PreparedScript]]:
    """Consecutive transactional scripts share one transaction; a journaled script runs on its
    own. A script that needs an earlier one of the group committed first (PostgreSQL: it uses
    an enum value the earlier one adds, 55P04) starts a new transaction."""
    groups: list[list[PreparedScript]] = []
    for unit in units:
        if (
            unit.transactional
            and groups
            and groups[-1][0].transactional
            and not _needs_commit_before(dialect, groups[-1], unit)
        ):
            groups[-1].append(unit)
        else:
            groups.append([unit])
    return groups


def _needs_commit_before(
    dialect: Dialect, group: Sequence[PreparedScript], unit: PreparedScript
) -> bool:
    """True when a statement of ``unit``, or one of its ``require``/``verify`` checks (they run
    in the same transaction), cannot share a transaction with one of ``group``."""
    earlier = [s for g in group for s in g.statements]
    checks = [
        Statement(sql=c.sql, line=c.line, index=len(unit.statements) + n)
        for n, c in enumerate(
            (*unit.script.directives.require, *unit.script.directives.verify), start=1
        )
    ]
    later = [*unit.statements, *checks]
    mine = {id(s) for s in later}
    pairs = dialect.commit_needed([*earlier, *later])
    return any(id(p.later) in mine and id(p.earlier) not in mine for p in pairs)


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
    known: SchemaSnapshot | None = None,
) -> PlanView:
    """Plan a rollback and find out what it needs, reading the database but changing nothing.

    ``simulate`` also runs the scripts on a schema-only scratch copy (see
    backout.analysis.simulate).
    ``partial`` plans a named data-only rollback instead of a full one.
    """
    plan, report = _choose_steps(ws, session, to=to, steps=steps, partial=partial)
    values: dict[str, object] = {}
    preview = None
    if partial is not None:
        values = resolve_params(plan.steps[0].script, partial.params)
        simulate = False  # data only: nothing for a schema-only copy to show
    units = _prepared_units(ws, plan)
    if partial is not None:
        preview = _preview(session, plan.steps[0].script, values, ws.config.lock_timeout)
    analysed = [(unit, ws.dialect.analyze(unit.statements)) for unit in units]
    assessed = _assess(ws, session, report, analysed, backup_mode, exact, values, simulate, known)
    views = tuple(
        StepView(
            step=step,
            unit=unit,
            requires=_evaluate_requires(session, unit, values, ws.config.lock_timeout),
            tables=assessed.per_script.get(unit.script.display, ()),
        )
        for step, unit in zip(plan.steps, units, strict=True)
    )
    outside = _outside_rows(ws, session, assessed.per_script) if units else []
    scans = (
        _per_row_scans(session, units[0], values, ws.config.lock_timeout)
        if partial is not None
        else []
    )
    groups = _transactions(ws.dialect, units)
    warnings = _plan_warnings(ws, plan, units, assessed.impact, groups, outside, scans)
    options = ws.run_options()
    return PlanView(
        plan=plan,
        steps=views,
        backup=assessed.intent,
        database=ws.url.masked(),
        lock=lock_description(ws),
        lock_timeout=options.lock_timeout,
        lock_retries=options.lock_retries,
        statement_timeout=options.statement_timeout
        if ws.dialect.supports_statement_timeout
        else 0.0,
        transactions=_transaction_count(groups),
        impact=assessed.impact,
        warnings=tuple(warnings),
        params=values,
        preview=preview,
        state=assessed.state,
        outside=tuple(outside),
    )


def _prepared_units(ws: Workspace, plan: RollbackPlan) -> list[PreparedScript]:
    """The plan's scripts, prepared; ProjectError for a script with no statement."""
    units = [prepare(ws.dialect, step.script) for step in plan.steps]
    # A data-only rollback may rightly have no statement: its data steps are manual.
    empty = [
        u.script.display
        for u in units
        if not u.statements and u.script.directives.data_only is None
    ]
    if empty:
        raise ProjectError(
            f"rollback script has no statements: {', '.join(empty)}",
            hint="write the rollback (or `backout generate` a draft); an empty script would "
            "mark the migration rolled back while changing nothing",
        )
    return units


@dataclass(frozen=True)
class _Assessment:
    """What the plan's scripts need and do, read from the database (see :func:`_assess`)."""

    intent: BackupIntent
    #: tables each script writes, by script display name
    per_script: Mapping[str, tuple[str, ...]]
    #: see :func:`_state_of`
    state: str
    impact: ImpactReport


def _assess(
    ws: Workspace,
    session: Session,
    report: StatusReport,
    analysed: Sequence[tuple[PreparedScript, ScriptEffects]],
    backup_mode: str,
    exact: bool,
    values: Mapping[str, object],
    simulate: bool,
    known: SchemaSnapshot | None = None,
) -> _Assessment:
    """The backup a rollback of ``analysed`` takes, and its impact (simulated on request).

    ``known``: the database's schema, when the caller has just read it (see :func:`rollback`).
    """

    if not analysed:
        return _Assessment(
            intent=BackupIntent(mode=backup_mode),
            per_script={},
            state="",
            impact=ImpactReport(scripts=(), exact=exact),
        )
    # only a private database's: nothing else changes it between the caller's read and now
    snapshot = known if known is not None and ws.private else ws.dialect.snapshot(session)
    # The digest is compared under the lock only where another run can move things (see
    # _recheck_locked); it costs a canonical dump of the whole schema.
    state = "" if ws.private else _state_of(report, snapshot)
    intent, per_script = _backup_intent(ws, snapshot, analysed, backup_mode)
    impact = compute_impact(
        session,
        ws.dialect,
        snapshot,
        [(u.script, e) for u, e in analysed],
        exact=exact,
        values=values,
        lock_timeout=ws.config.lock_timeout,
    )
    if simulate:
        live_key = ws.dialect.schema_key(session, snapshot)
        impact = _with_simulation(ws, impact, analysed, live_key, session)
    return _Assessment(intent=intent, per_script=per_script, state=state, impact=impact)


def _plan_warnings(
    ws: Workspace,
    plan: RollbackPlan,
    units: Sequence[PreparedScript],
    impact: ImpactReport,
    groups: Sequence[Sequence[PreparedScript]],
    outside: Sequence[str],
    scans: Sequence[str],
) -> list[str]:
    """What the plan warns of: edited forward scripts, rows outside the project's scope,
    implicit commits, per-row scans, the simulation's findings, the scripts' own notes, and a
    rollback split into several transactions."""
    warnings = [
        f"{s.migration.id}: its forward script was edited after it was applied; the rollback "
        "may not match what the database holds"
        for s in plan.steps
        if s.edited
    ]
    warnings.extend(outside)
    warnings.extend(_implicit_commit_warnings(ws, units))
    warnings.extend(scans)
    for script_impact in impact.scripts:
        sim = script_impact.simulation
        if sim is not None and sim.error:
            warnings.append(f"{script_impact.script.display}: {sim.error}")
        for disagreement in sim.disagreements if sim is not None else ():
            warnings.append(f"{script_impact.script.display}: {disagreement}")
    if impact.simulation_note:
        warnings.append(impact.simulation_note)
    for unit in units:
        warnings.extend(unit.notes(ws.dialect))
    if len(groups) > 1 and any(u.layout.journal_reasons for u in units):
        warnings.append(
            f"a script runs journaled, so the rollback runs as {len(groups)} "
            "separate transactions: a failure undoes only the one it happens in"
        )
    return warnings


def _per_row_scans(
    session: Session, unit: PreparedScript, values: Mapping[str, object], lock_timeout: float
) -> list[str]:
    """Statements of a partial rollback that the database's own plan (EXPLAIN, nothing runs)
    would make visit a large table once per row: the warning names the line and the plan.

    Partial rollbacks are data statements over whole tables, where such a plan turns seconds
    into minutes (a correlated subquery searching a range per user); each statement is
    planned in its own read transaction, rolled back."""
    found: list[str] = []
    dialect = session.dialect
    for statement in unit.statements:
        sql, params = dialect.bind(statement.sql, values)
        session.begin_read(lock_timeout=lock_timeout)
        try:
            lines = dialect.per_row_scans(session, sql, params)
        except DatabaseError as exc:
            # e.g. it reads a table an earlier statement of the script creates
            lines = [f"not checked for per-row scans: the database cannot plan it alone ({exc})"]
        finally:
            session.rollback()
        found.extend(f"{unit.script.display}:{statement.line}: {line}" for line in lines)
    return found


def _outside_rows(
    ws: Workspace, session: Session, per_script: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """What the scripts' writes change outside the project's scope through a foreign key's
    ON DELETE (another project's rows, in a schema ``?schema=`` leaves out)."""
    written = {key: display for display, keys in per_script.items() for key in keys}
    return [
        f"{written[inside]}: rows of {outside} (outside this project's scope) reference "
        f"{inside} {action}: what the rollback deletes there is not counted and in no backup "
        "of this project"
        for outside, inside, action in ws.dialect.references_from_outside(session)
        if inside in written
    ]


def _choose_steps(
    ws: Workspace,
    session: Session,
    *,
    to: str | None,
    steps: int | None,
    partial: PartialRequest | None,
) -> tuple[RollbackPlan, StatusReport]:
    """Which migrations the request rolls back, from the history as it is now."""
    report = ws.read_status(session)
    refuse_interrupted(report)
    if partial is None:
        return plan_rollback(ws.project, report, to=to, steps=steps), report
    if to is not None or steps is not None:
        raise UsageError("a partial rollback names one migration: --to/--steps do not apply")
    return plan_partial(ws.project, report, partial.migration, partial.name), report


def _state_of(report: StatusReport, snapshot: SchemaSnapshot) -> str:
    """A digest of every migration's recorded state and of the schema: equal when neither
    changed (another run applying, rolling back or resolving anything changes it)."""
    entries = [
        [e.key, e.state.value, str(e.applied_at), str(e.rolled_back_at), e.attempts]
        for e in report.entries
    ]
    text = json.dumps([entries, snapshot.fingerprint()], default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _recheck_locked(
    ws: Workspace,
    session: Session,
    first: PlanView,
    *,
    to: str | None,
    steps: int | None,
    partial: PartialRequest | None,
) -> PlanView:
    """The first pass's view, once the run lock is held: neither the history nor the schema
    may have moved since (else refuse; the counts were not taken under the lock).

    Counting again would cost as much as the first pass (minutes on a big partial rollback)
    and decide nothing: the risk was judged on the first counts, the backup is taken next
    from the database as it is, and ``require``/``verify`` run again inside the transaction.
    """
    plan, report = _choose_steps(ws, session, to=to, steps=steps, partial=partial)
    # On a private (scratch) database nothing else can have moved: the schema is not read again.
    if not ws.private and _state_of(report, ws.dialect.snapshot(session)) != first.state:
        # Another plan, or the same one whose backup scope, counts or preview may be stale.
        raise UsageError(
            "the database changed while planning (another run applied or rolled back a "
            "migration, or the schema changed); nothing changed: run the command again to see "
            "the new plan"
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
    implicit = [(u, s) for u in units if u.layout.atomic for s in u.implicit]
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


def lock_description(ws: Workspace) -> str:
    return ws.dialect.run_lock_description(host_locks=ws.host_locks())


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


#: the flag that runs a rollback although it failed on the schema-only copy
IGNORE_SIMULATION_FLAG = "--ignore-simulation-failure"


def refuse_failed_simulation(view: PlanView, *, ignore: bool) -> None:
    """A rollback that failed on the schema-only copy will fail for real: refuse it (before
    any backup or hook) unless the user says, knowingly, to run it anyway."""
    if ignore or not view.impact.simulation_failures:
        return
    worst = view.impact.simulation_failures[0]
    assert worst.simulation is not None and worst.simulation.error is not None
    raise CheckFailed(
        f"{worst.script.display}: {worst.simulation.error}",
        hint="fix the script (`backout plan` shows the simulation), or pass "
        f"{IGNORE_SIMULATION_FLAG} if it fails only for want of data",
    )


def refusals(
    ws: Workspace,
    session: Session,
    view: PlanView,
    *,
    accept_data_loss: bool,
    ignore_simulation: bool,
    backup_mode: str,
) -> list[BackoutError]:
    """Every reason a real rollback of ``view`` would refuse, in the order it would meet them.

    Each check here is one the run makes later (the run lock, the counts, the declared risk,
    the require checks, the simulation, the backup folder and tool); making them all first is
    what lets a caller (``emergency``) refuse before its first side effect, and a dry run
    report exactly what the real run would refuse. Changes nothing.
    """

    found: list[BackoutError] = []

    def collect(check: Callable[[], None]) -> None:
        try:
            check()
        except BackoutError as exc:
            found.append(exc)

    collect(lambda: ws.check_run_lock(session))
    if view.impact.lock_waits:
        found.append(
            LockError(
                f"{view.impact.lock_waits[0]}; nothing changed",
                hint="another session holds that table locked: retry when it is done, or "
                "raise lock_timeout",
            )
        )
    collect(lambda: refuse_understated(view, accept_data_loss=accept_data_loss))
    if view.outside and not accept_data_loss:
        found.append(
            CheckFailed(
                view.outside[0],
                hint="nothing was changed; pass --i-accept-data-loss to roll back anyway, or "
                "back up and restore the other schema yourself",
            )
        )
    if view.requires_fail:
        check = view.requires_fail[0]
        found.append(
            CheckFailed(
                f"{check.script}:{check.line}: require does not hold now: {check.sql}",
                hint="nothing was changed: no backup taken, no hook run",
            )
        )
    collect(lambda: refuse_failed_simulation(view, ignore=ignore_simulation))
    if backup_mode != "none":
        collect(BackupCatalog(ws.config.backups).check_writable)
        collect(lambda: _check_backup_tools(ws, session))
    return found


def _check_backup_tools(ws: Workspace, session: Session) -> None:
    """ToolMissing when the dump tool the backup needs is missing or too old."""
    ws.dialect.backup_engine().check_tools(session)


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
    ignore_simulation: bool = False,
    update_schema: str = "off",
    known: SchemaSnapshot | None = None,
) -> RollbackResult:
    """Roll back applied migrations safely; see the module docstring for the order of steps.

    ``existing_backup``: a verified backup the caller has just taken (the emergency procedure's
    full backup); no other is taken, and history names this one. ``update_schema``: see
    :mod:`backout.rollback.schema_update`. ``known``: a private database's schema (a
    rehearsal's), read since its last change: the plan uses it."""
    setup = _check_arguments(ws, backup_mode, accept_data_loss, update_schema, partial)
    # One connection for the whole command: planning reads on it, then the run (a plan that
    # is not empty means the database exists, so it needed no creating).
    with ws.session(create=False) as session:
        # Refuse impossible requests before touching anything (and before taking the lock).
        first = _first_pass(
            ws,
            session,
            setup,
            dict(
                to=to,
                steps=steps,
                backup_mode=backup_mode,
                exact=exact,
                simulate=simulate,
                known=known,
            ),
            partial=partial,
            dry_run=dry_run,
            accept_data_loss=accept_data_loss,
            ignore_simulation=ignore_simulation,
            backup_mode="none" if existing_backup is not None else backup_mode,
        )
        if first.plan.empty:
            return RollbackResult(view=first, dry_run=dry_run)
        result = _run_locked(
            ws,
            session,
            first,
            _RollbackRequest(to, steps, partial, dry_run, existing_backup),
            confirm=confirm,
            progress=progress,
        )
    if result.dry_run:
        return result
    _after_rollback(ws, result, progress)
    return result


def _first_pass(
    ws: Workspace,
    session: Session,
    setup: SchemaUpdateSetup | None,
    planning: dict[str, Any],
    *,
    partial: PartialRequest | None,
    dry_run: bool,
    accept_data_loss: bool,
    ignore_simulation: bool,
    backup_mode: str,
) -> PlanView:
    """Plan without the run lock, on the command's one session, and raise the first refusal
    (a real run only): nothing has happened yet. ``planning``: :func:`build_view`'s keyword
    arguments."""
    if not dry_run:
        # Another run holds the lock: say who at once. Planning reads the tables that run
        # may hold locked (a table it drops), and would otherwise wait for it to end.
        ws.check_run_lock(session)
    first = _with_schema_update(ws, setup, build_view(ws, session, partial=partial, **planning))
    if not dry_run and not first.plan.empty:
        _refuse_now(
            ws,
            session,
            first,
            accept_data_loss=accept_data_loss,
            ignore_simulation=ignore_simulation,
            backup_mode=backup_mode,
        )
    return first


def _check_arguments(
    ws: Workspace,
    backup_mode: str,
    accept_data_loss: bool,
    update_schema: str,
    partial: PartialRequest | None,
) -> SchemaUpdateSetup | None:
    """Refuse an impossible ``--backup`` or ``--update-schema`` before anything happens; what
    the schema update needs, checked (None when not asked for)."""
    _check_backup_mode(backup_mode, accept_data_loss=accept_data_loss)
    return prepare_schema_update(ws, update_schema, partial=partial is not None)


def _with_schema_update(ws: Workspace, setup: SchemaUpdateSetup | None, view: PlanView) -> PlanView:
    """The view with what ``--update-schema`` will do (refused now when it cannot work)."""
    if setup is None or view.plan.empty:
        return view
    return dataclasses.replace(view, schema_update=plan_update(ws, setup, view.plan))


def _dry_run_schema_update(result: RollbackResult) -> None:
    """A dry run shows the schema update it would make, after the SQL."""
    planned = result.view.schema_update
    if planned is None:
        return
    result.schema_update = schema_dry_run(planned)
    result.transcript.append(f"-- --update-schema={planned.mode}: {planned.describe()}")


@dataclass(frozen=True)
class _RollbackRequest:
    """What :func:`rollback` was asked, as the run under the lock needs it again."""

    to: str | None
    steps: int | None
    partial: PartialRequest | None
    dry_run: bool
    existing_backup: BackupRecord | None


def _run_locked(
    ws: Workspace,
    session: Session,
    first: PlanView,
    request: _RollbackRequest,
    *,
    confirm: Confirm | None,
    progress: Callable[[str], None] | None,
) -> RollbackResult:
    """Under the run lock (none for a dry run): the re-check, the confirmation, the backup,
    the ``before_rollback`` hook and the scripts."""
    lock = None if request.dry_run else ws.run_lock(session)
    try:
        view = _recheck_locked(
            ws, session, first, to=request.to, steps=request.steps, partial=request.partial
        )
        result = RollbackResult(view=view, dry_run=request.dry_run)
        if request.dry_run:
            _execute(ws, session, result, dry_run=True, progress=progress)
            return result
        if confirm is not None and not confirm(view):
            raise Declined("rollback declined: nothing was changed")
        if request.existing_backup is not None:
            result.backup = request.existing_backup
        elif view.backup.mode != "none":
            result.backup = _take_backup(ws, session, view, request.partial, progress)
        _run_before_hook(ws, result)
        _execute(ws, session, result, dry_run=False, progress=progress)
    finally:
        if lock is not None:
            lock.release()
    return result


def _refuse_now(
    ws: Workspace,
    session: Session,
    view: PlanView,
    *,
    accept_data_loss: bool,
    ignore_simulation: bool,
    backup_mode: str,
) -> None:
    """Raise the first refusal of :func:`refusals`, before the run lock is taken."""
    # Every check the run would make later, made now: the lock taken while this run
    # planned (its counts may have given up on that run's table locks), the risk, the
    # require checks, the simulation, the backup folder and tool. The first refusal
    # comes before any backup, hook or confirmation.
    found = refusals(
        ws,
        session,
        view,
        accept_data_loss=accept_data_loss,
        ignore_simulation=ignore_simulation,
        backup_mode=backup_mode,
    )
    if found:
        raise found[0]


def _after_rollback(
    ws: Workspace, result: RollbackResult, progress: Callable[[str], None] | None
) -> None:
    """After COMMIT: the schema update (``--update-schema``), the ``after_rollback`` hook,
    and the scripts' manual steps to show."""
    if result.view.schema_update is not None:
        result.schema_update = run_update(ws, result.view.schema_update, progress)
    hook = run_hook(ws.config, "after_rollback", ws.url)
    if hook is not None:
        result.hooks.append(hook)
    result.manual = [
        (step.migration.id, text)
        for step in result.view.plan.steps
        for text in step.script.directives.manual
    ]


def _check_backup_mode(backup_mode: str, *, accept_data_loss: bool) -> None:
    """UsageError for an unknown ``--backup``, or ``none`` without accepting the loss."""
    if backup_mode not in BACKUP_MODES:
        raise UsageError(f"--backup must be one of {', '.join(BACKUP_MODES)}")
    if backup_mode == "none" and not accept_data_loss:
        raise UsageError(
            "--backup none needs --i-accept-data-loss: without a backup, what the rollback "
            "destroys cannot come back"
        )


def _take_backup(
    ws: Workspace,
    session: Session,
    view: PlanView,
    partial: PartialRequest | None,
    progress: Callable[[str], None] | None,
) -> BackupRecord:
    """The backup the plan calls for, taken under the run lock before anything changes."""

    if progress:
        progress(f"backing up ({view.backup.mode})")
    try:
        return take_backup(
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
    except KeyboardInterrupt as exc:
        # Ctrl-C or SIGTERM during the backup: nothing was rolled back; the
        # attempt is recorded all the same.
        _record_not_started(ws, session, view, exc)
        raise


def _run_before_hook(ws: Workspace, result: RollbackResult) -> None:
    """The ``before_rollback`` hook; CheckFailed (nothing rolled back) when it fails."""
    hook = run_hook(ws.config, "before_rollback", ws.url)
    if hook is None:
        return
    result.hooks.append(hook)
    if not hook.ok:
        raise CheckFailed(
            f"{hook.describe()}; nothing was rolled back",
            hint=f"the backup {result.backup.id} was kept" if result.backup else None,
        )


def _record_not_started(
    ws: Workspace, session: Session, view: PlanView, exc: KeyboardInterrupt
) -> None:
    """A failed event per migration of a rollback interrupted before it changed anything."""
    now = utcnow()
    error = f"{exc or 'interrupted (Ctrl-C)'} while backing up: nothing was rolled back"
    try:
        for step in view.plan.steps:
            ws.record_alone(
                session,
                Event(
                    event="partial_rollback" if view.plan.partial else "rollback",
                    outcome="failed",
                    started_at=now,
                    finished_at=now,
                    actor=ws.actor,
                    migration=step.migration.id,
                    checksum=step.script.checksum,
                    error=error,
                    details={"plan": view.plan.ids(), "target": view.plan.target},
                ),
            )
    except BackoutError:
        return  # the interrupt's own message says what happened


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
    for group in _transactions(ws.dialect, [s.unit for s in view.steps]):
        steps = [by_unit[id(u)] for u in group]
        if progress:
            progress("rolling back " + ", ".join(s.step.migration.id for s in steps))
        _run_group(ws, session, executor, result, steps, backup_id)
    result.duration_s = time.monotonic() - clock
    result.transcript = executor.transcript
    if dry_run:
        _dry_run_schema_update(result)


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
            details=_event_details(result, step, runner),
        )

    def record(unit: PreparedScript) -> None:
        step = by_unit[id(unit)]
        if partial:
            # Data only: the migration stays applied (its ledger rows are not touched).
            executor.comment(f"history: partial rollback {partial} of {step.step.migration.id}")
        else:
            executor.comment(f"history: {step.step.migration.id} rolled back")
            finished = utcnow()
            executor.execute(*ws.ledger.mark_rolled_back(step.step.migration.key, finished))
            ws.record_host(
                executor,
                HostEvent.ROLLED_BACK,
                step.step.migration,
                started=started,
                finished=finished,
                script=step.step.script,
                statements=len(step.unit.statements),
            )
        ws.record(executor, event(step, "ok"))

    units = [s.unit for s in steps]
    journaled = not units[0].transactional
    try:
        if journaled:
            _run_journaled(ws, session, executor, runner, result, steps[0], backup_id, record)
        else:
            runner.run_in_transaction(units, before_commit=lambda: None, on_unit_done=record)
    except (BackoutError, KeyboardInterrupt) as exc:
        if not executor.dry_run:
            session.rollback()
            _explain_failure(ws, exc, steps[0], result, journaled=journaled)
            _record_failure(ws, session, steps, event, exc)
        raise
    result.rolled_back.extend(s.step.migration.id for s in steps)
    result.statements += runner.stats.statements
    result.rows_affected += runner.stats.rows_affected
    result.attempts += runner.stats.attempts


def _event_details(result: RollbackResult, step: StepView, runner: ScriptRunner) -> dict[str, Any]:
    """The details of a migration's ``rollback``/``partial_rollback`` event, as of now."""
    view = result.view
    partial = view.plan.partial
    return {
        "script": step.step.script.display,
        "statements": len(step.unit.statements),
        "attempts": runner.stats.attempts,
        "lock_waits": runner.stats.lock_waits,
        "plan": view.plan.ids(),
        "target": view.plan.target,
        "rows_affected": runner.stats.rows_affected,
        **({"partial": partial, "params": dict(view.params)} if partial else {}),
        # checked by restore: the catalog beside the file could be edited with it
        **({"backup_sha256": result.backup.sha256} if result.backup else {}),
    }


def _run_journaled(
    ws: Workspace,
    session: Session,
    executor: Executor,
    runner: ScriptRunner,
    result: RollbackResult,
    step: StepView,
    backup_id: str | None,
    record: Callable[[PreparedScript], None],
) -> None:
    """Run one script statement by statement, each journaled as it completes; then record it
    and close the journal in one transaction."""
    view = result.view
    partial = view.plan.partial
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
            # checked by restore (--undo-partial restores it): a run killed part-way
            # has no event to hold it
            **({"backup_sha256": result.backup.sha256} if result.backup else {}),
            "plan": view.plan.ids(),
            "target": view.plan.target,
            **({"partial": partial, "params": dict(view.params)} if partial else {}),
        },
    )

    def on_start() -> None:
        executor.execute(*start)
        if not partial:
            ws.record_host(
                executor,
                HostEvent.ROLLBACK_STARTED,
                step.step.migration,
                started=utcnow(),
                script=step.step.script,
            )

    runner.run_without_transaction(
        step.unit, on_start=on_start, journal=JournalHooks(journal, run, executor)
    )
    executor.begin()
    record(step.unit)
    executor.execute(*journal.write(run, journal_entries.FINISH, run.total))
    executor.commit()


def _explain_failure(
    ws: Workspace,
    exc: BackoutError | KeyboardInterrupt,
    first: StepView,
    result: RollbackResult,
    *,
    journaled: bool,
) -> None:
    """Set the hint of a group's failure: what was undone, and what stays rolled back."""
    if journaled and isinstance(exc, BackoutError):
        exc.hint = _journaled_hint(ws, first, result)
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


def _live_row(ws: Workspace, session: Session, key: str) -> str | None:
    """The ledger row that says a migration is applied (the one a rollback closes)."""
    rows = [r for r in ws.ledger.rows(session) if r.key == key and r.live and r.finished_at]
    return rows[-1].id if rows else None


def _journaled_hint(ws: Workspace, step: StepView, result: RollbackResult) -> str:
    script = step.step.script.display
    why = step.unit.journal_reason(ws.dialect)
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


def next_backup_scope(ws: Workspace) -> BackupScope:
    """What the backup a rollback of the latest migration would take holds: scoped to the
    tables its rollback touches (plus the full schema and the ledger), or full when that scope
    cannot be determined (nothing applied, no rollback script, SQL that cannot be analysed)."""
    try:
        view = plan(ws, to=None, steps=1, backup_mode="scoped", simulate=False)
    except BackoutError as exc:
        return "full", (), f"on demand (full: no rollback to scope it by: {exc})"
    if view.plan.empty or view.backup.mode != "scoped":
        return "full", (), "on demand (full: the rollback's scope is unknown)"
    latest = view.plan.ids()[0]
    return "scoped", view.backup.tables, f"on demand (scoped to the rollback of {latest})"


def plan_refusals(view: PlanView) -> list[str]:
    """Why ``plan`` exits 1: what the rollback would refuse, one line each."""
    reasons = [
        f"{check.script}:{check.line}: require does not hold now: {check.sql}"
        for check in view.requires_fail
    ]
    try:
        refuse_understated(view, accept_data_loss=False)
    except BackoutError as exc:
        reasons.append(str(exc))
    try:
        refuse_failed_simulation(view, ignore=False)
    except BackoutError as exc:
        reasons.append(str(exc))
    return reasons
