"""The library's public verbs: one function per command. They take a Config, return result
objects, and never print or exit; the CLI renders what they return."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from backout.analysis.checks import run_checks
from backout.backup import restore as _backup_restore
from backout.backup import take as _backup_take
from backout.backup.catalog import BackupCatalog
from backout.emergency import procedure as _emergency
from backout.generate.draft import generate as _generate
from backout.lint import linter as _lint
from backout.migrate import apply as _apply
from backout.migrate import resolve as _resolve
from backout.migrate.residue import Residue, failed_residue
from backout.model.errors import ProjectError, UsageError
from backout.project import scaffold
from backout.project.config import Config
from backout.rehearsal.rehearse import rehearse
from backout.rollback import rollback as _rollback
from backout.rollback.recovery import recover as _recover
from backout.run.history import Event
from backout.run.runner import broken_scripts, prepare
from backout.run.status import StatusReport, compute_status
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    from backout.backup.catalog import BackupRecord
    from backout.backup.restore import RestorePlan, RestoreResult
    from backout.emergency.incident import EmergencyResult, StepRecord
    from backout.lint.linter import LintReport
    from backout.rollback.recovery import RecoveryPlan, RecoveryResult

InitResult = scaffold.InitResult
NewResult = scaffold.NewResult
UpResult = _apply.UpResult
ResolveResult = _resolve.ResolveResult
Progress = _apply.Progress
PlanView = _rollback.PlanView
PartialRequest = _rollback.PartialRequest
RollbackResult = _rollback.RollbackResult


@dataclass(frozen=True)
class StatusResult:
    """``status``: every migration's state plus where it was read from."""

    workspace: Workspace
    report: StatusReport
    database_exists: bool
    #: how pending migrations will run, where not plainly in one transaction (journaled, the
    #: script's own BEGIN/COMMIT), and scripts ``up`` will refuse
    notes: tuple[str, ...] = ()
    #: per failed migration id: what of it remains in the database (see backout.migrate.residue)
    residues: Mapping[str, Residue] = field(default_factory=dict)
    #: rollback and partial scripts ``rollback`` would refuse: display path → the error
    broken: Mapping[str, str] = field(default_factory=dict)

    def problems(self) -> bool:
        """Something needs a person's attention: the history's problems, or a rollback
        script that would not run."""
        return self.report.problems() or bool(self.broken)


def init(config: Config, *, layout: str | None = None, force: bool = False) -> InitResult:
    """Write backout.toml, detecting the project's layout unless ``layout`` is given."""
    return scaffold.init(config, layout=layout, force=force)


def new(config: Config, name: str) -> NewResult:
    """Scaffold a forward migration and its rollback (or only the rollback of an existing id)."""
    return scaffold.new(config, name)


def status(config: Config) -> StatusResult:
    """Read every migration's state; changes nothing (a missing SQLite file is not created)."""
    ws = Workspace.open(config)
    # The same parser and checks `rollback` runs first: a broken script shows now, not then.
    broken = broken_scripts(
        ws.dialect,
        [
            script
            for m in ws.project.migrations
            for script in ([m.down] if m.down is not None else []) + [s for _, s in m.partials]
        ],
    )
    if not ws.database_exists():
        report = compute_status(ws.project, [], ledger_exists=False)
        return StatusResult(workspace=ws, report=report, database_exists=False, broken=broken)
    with ws.session(create=False) as session:
        report = ws.read_status(session)
        residues = {}
        for entry in report.failed:
            residue = failed_residue(ws, session, entry)
            if residue is not None:
                residues[entry.id] = residue
    return StatusResult(
        workspace=ws,
        report=report,
        database_exists=True,
        notes=_pending_notes(ws, report),
        residues=residues,
        broken=broken,
    )


def _pending_notes(ws: Workspace, report: StatusReport) -> tuple[str, ...]:
    """How ``up`` will run each pending migration, where it is not one plain transaction."""
    notes: list[str] = []
    for entry in report.pending:
        assert entry.migration is not None
        try:
            notes.extend(prepare(ws.dialect, entry.migration.up).notes(ws.dialect))
        except ProjectError as exc:
            notes.append(f"{entry.id}: `up` will refuse it: {exc}")
    return tuple(notes)


def up(
    config: Config,
    *,
    to: str | None = None,
    dry_run: bool = False,
    allow_edited: bool = False,
    allow_missing: bool = False,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
) -> UpResult:
    """Apply pending migrations in order, each in one transaction, under the run lock."""
    ws = Workspace.open(config)
    ws.notice = notice
    if to is not None:
        ws.project.find(to)  # an unknown target is refused before connecting
    return _apply.up(
        ws,
        to=to,
        dry_run=dry_run,
        allow_edited=allow_edited,
        allow_missing=allow_missing,
        progress=progress,
    )


def resolve(config: Config, ref: str, *, applied: bool) -> ResolveResult:
    """Record a failed migration as rolled back, or a migration as applied (baseline)."""
    ws = Workspace.open(config)
    ws.project.find(ref)
    return _resolve.resolve(ws, ref, applied=applied)


def plan(
    config: Config,
    *,
    to: str | None = None,
    steps: int | None = None,
    backup: str = "scoped",
    exact: bool = False,
    simulate: bool = True,
    partial: PartialRequest | None = None,
) -> PlanView:
    """The rollback plan with live checks (impact, require, backup scope); changes nothing."""
    ws = Workspace.open(config)
    return _rollback.plan(
        ws,
        to=to,
        steps=steps,
        backup_mode=backup,
        exact=exact,
        simulate=simulate,
        partial=partial,
    )


def rollback(
    config: Config,
    *,
    to: str | None = None,
    steps: int | None = None,
    dry_run: bool = False,
    backup: str = "scoped",
    accept_data_loss: bool = False,
    confirm: Callable[[PlanView], bool] | None = None,
    progress: Callable[[str], None] | None = None,
    exact: bool = False,
    simulate: bool = True,
    partial: PartialRequest | None = None,
    ignore_simulation: bool = False,
) -> RollbackResult:
    """Roll back migrations: verified backup, run lock, one transaction, history, hooks."""
    ws = Workspace.open(config)
    ws.notice = progress
    return _rollback.rollback(
        ws,
        to=to,
        steps=steps,
        dry_run=dry_run,
        backup_mode=backup,
        accept_data_loss=accept_data_loss,
        confirm=confirm,
        progress=progress,
        exact=exact,
        simulate=simulate,
        partial=partial,
        ignore_simulation=ignore_simulation,
    )


def backup(
    config: Config, *, full: bool = False, progress: Callable[[str], None] | None = None
) -> BackupRecord:
    """Take a verified backup now: full, or scoped to the next rollback (full when none)."""
    scope = None if full else _rollback.next_backup_scope
    return _backup_take.backup_now(Workspace.open(config), scope=scope, progress=progress)


def backups(config: Config) -> list[BackupRecord]:
    """The backup catalog, oldest first."""
    return _backup_take.list_backups(Workspace.open(config))


def uncatalogued_backup_files(config: Config) -> list[Path]:
    """Files in the backup folder that no catalogued backup owns: the partial file of a
    backup that was interrupted (or is being written now). Never verified; never restored."""
    return BackupCatalog(config.backups).uncatalogued()  # the folder only: no project to load


def restore(
    config: Config,
    ref: str | None,
    *,
    into: str | None = None,
    confirm: Callable[[RestorePlan], bool] | None = None,
    progress: Callable[[str], None] | None = None,
    resume: bool = False,
) -> RestoreResult:
    """Restore a catalogued backup into a new database, or over the current one; ``resume``:
    finish the restore that stopped part-way (``ref`` None)."""
    return _backup_restore.restore(
        Workspace.open(config),
        ref,
        into_url=into,
        confirm=confirm,
        progress=progress,
        resume=resume,
    )


@dataclass(frozen=True)
class HistoryResult:
    """``history``: the audit log, filtered."""

    workspace: Workspace
    events: list[Event]


def history(
    config: Config, *, since: dt.datetime | None = None, migration: str | None = None
) -> HistoryResult:
    """The append-only audit log (applies, rollbacks, restores, resolves...), oldest first."""
    ws = Workspace.open(config)
    unknown: UsageError | None = None
    if migration is not None:
        # History outlives files: a deleted migration is still found by its id.
        try:
            migration = ws.project.find(migration).id
        except UsageError as exc:
            unknown = exc
            migration = migration.strip()
    events: list[Event] = []
    if ws.database_exists():
        with ws.session(create=False) as session:
            ws.events.check_version(session)
            events = ws.events.read(session, migration=migration)
    if unknown is not None and not events:
        # Neither a migration folder nor a history row knows it: a typo, most likely.
        raise UsageError(f"{unknown}; no history event names {migration!r} either")
    if since is not None:
        events = [e for e in events if e.started_at >= since]
    # Stored in the order they were recorded, which is when they ended: an emergency is
    # recorded after the rollback it ran. Listed by when each began (ties: recording order).
    events.sort(key=lambda e: e.started_at)
    return HistoryResult(workspace=ws, events=events)


def lint(
    config: Config,
    paths: Sequence[Path] = (),
    *,
    check_database: bool | None = None,
    ignore: Sequence[str] = (),
    squawk: bool = True,
) -> LintReport:
    """Static checks over the migration folder; every problem is a finding (docs/lint/)."""
    return _lint.lint(config, paths, check_database=check_database, ignore=ignore, squawk=squawk)


def emergency(
    config: Config,
    *,
    to: str,
    dry_run: bool = False,
    accept_data_loss: bool = False,
    confirm: Callable[[PlanView], bool] | None = None,
    progress: Callable[[StepRecord], None] | None = None,
    incidents_dir: Path | None = None,
    ignore_simulation: bool = False,
) -> EmergencyResult:
    """The emergency procedure: stop_app, full backup, rollback, deploy_previous, checks."""
    ws = Workspace.open(config)
    return _emergency.emergency(
        ws,
        to=to,
        dry_run=dry_run,
        accept_data_loss=accept_data_loss,
        confirm=confirm,
        progress=progress,
        incidents_dir=incidents_dir,
        ignore_simulation=ignore_simulation,
    )


def recover(
    config: Config,
    action: str,
    *,
    dry_run: bool = False,
    confirm: Callable[[RecoveryPlan], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RecoveryResult:
    """Finish (``action="resume"``) or undo (``"undo"``) the apply or rollback that stopped
    part-way, from its statement journal (MySQL/MariaDB DDL, ``transaction off`` scripts)."""
    ws = Workspace.open(config)
    ws.notice = progress

    return _recover(ws, action, dry_run=dry_run, confirm=confirm, progress=progress)


if TYPE_CHECKING:
    from backout.analysis.checks import CheckReport
    from backout.generate.draft import GeneratedRollback
    from backout.rehearsal.report import Progress as RehearsalProgress
    from backout.rehearsal.report import RehearsalReport


def check(config: Config, *, drift: bool = True, ignore_column_order: bool = False) -> CheckReport:
    """Orphaned rows, leftovers and drift, and the verify queries of rollbacks; read-only."""
    return run_checks(Workspace.open(config), drift=drift, ignore_column_order=ignore_column_order)


def test(
    config: Config,
    ids: Sequence[str] = (),
    *,
    all_: bool = False,
    from_url: str | None = None,
    ignore_column_order: bool = True,
    with_smoke: bool = True,
    with_data: bool = False,
    progress: RehearsalProgress | None = None,
) -> RehearsalReport:
    """Rehearse rollbacks on a throwaway copy (or, with ``all_``, an empty database)."""
    return rehearse(
        Workspace.open(config),
        ids=ids,
        all_=all_,
        from_url=from_url,
        ignore_column_order=ignore_column_order,
        with_smoke=with_smoke,
        with_data=with_data,
        progress=progress,
    )


test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test function


def generate(
    config: Config, ids: Sequence[str], *, force: bool = False, write: bool = True
) -> list[GeneratedRollback]:
    """Draft the rollback of each migration from the schema diff before and after it."""
    return _generate(Workspace.open(config), ids, force=force, write=write)
