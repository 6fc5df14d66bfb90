"""``backout resolve``: fix the bookkeeping of a failed migration, as ``prisma migrate resolve``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from backout.dialects.base import utcnow
from backout.model.errors import UsageError
from backout.run.history import Event
from backout.run.host_history import HostEvent
from backout.run.runner import Executor
from backout.run.status import State, refuse_half_restored
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    from backout.project.migration import Migration


@dataclass(frozen=True)
class ResolveResult:
    """What ``resolve`` recorded."""

    migration: str
    marked: str
    previous_state: str


def resolve(ws: Workspace, ref: str, *, applied: bool) -> ResolveResult:
    """Mark a migration applied (baseline or manually finished) or a failed one rolled back.

    - ``--applied``: refuses an applied migration; closes failed attempts (rolled_back_at) and
      records a finished row without running anything, as Prisma does.
    - ``--rolled-back``: only for a failed migration; closes its failed attempts so ``up`` (or
      ``prisma migrate deploy``) applies it again. An applied migration is undone with
      ``backout rollback``, not here.
    """
    migration = ws.project.find(ref)
    with ws.session() as session, ws.run_lock(session):
        report = ws.read_status(session)
        # The ledger of a half-restored database is the restore's, part-way: nothing to mark.
        refuse_half_restored(report)
        entry = report.entry(migration.key)
        assert entry is not None
        _refuse_state(migration, entry.state, applied=applied)
        executor = Executor(session, dry_run=False)
        ws.ensure_history(session, executor)
        started = utcnow()
        executor.begin()
        try:
            failed_rows = [
                r
                for r in ws.ledger.rows(session)
                if r.key == migration.key and r.live and r.finished_at is None
            ]
            for row in failed_rows:
                executor.execute(*ws.ledger.close_failed(row.id, started))
            if applied:
                _, write = ws.ledger.insert(
                    key=migration.key,
                    migration_id=migration.id,
                    checksum=migration.up.checksum,
                    started_at=started,
                    finished_at=started,
                    logs="",
                    applied_steps_count=0,
                )
                executor.execute(*write)
            ws.record_host(
                executor,
                HostEvent.RESOLVED_APPLIED if applied else HostEvent.RESOLVED_ROLLED_BACK,
                migration,
                started=started,
                finished=started,
            )
            marked = "applied" if applied else "rolled_back"
            ws.record(
                executor,
                Event(
                    event="resolve",
                    outcome="ok",
                    started_at=started,
                    finished_at=utcnow(),
                    actor=ws.actor,
                    migration=migration.id,
                    checksum=migration.up.checksum,
                    details={
                        "as": marked,
                        "previous_state": entry.state.value,
                        "failed_attempts_closed": len(failed_rows),
                    },
                ),
            )
            executor.commit()
        except BaseException:
            executor.rollback()
            raise
    return ResolveResult(migration=migration.id, marked=marked, previous_state=entry.state.value)


def _refuse_state(migration: Migration, state: State, *, applied: bool) -> None:
    """UsageError when a migration in ``state`` cannot be resolved as asked."""
    if applied and state is State.APPLIED:
        raise UsageError(f"migration {migration.id} is already applied")
    if not applied and state is not State.FAILED:
        raise UsageError(
            f"migration {migration.id} is {state.value.replace('_', ' ')}, not failed: "
            "only a failed migration can be resolved as rolled back",
            hint="to undo an applied migration, use `backout rollback`",
        )
