"""The ``--json`` documents of the commands that act: ``rollback``, ``up``, ``backup``,
``restore`` and ``emergency`` (docs/json.md).

Each is one envelope (format, command, outcome, started_at, finished_at, duration_s, error)
plus the command's own fields: the backup taken, the rows lost, what was applied or rolled
back, each step's timing. A command that fails prints the envelope with ``outcome`` "error"
and the error (message, hint, exit code), so a script reads one document either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backout.model.documents import iso

if TYPE_CHECKING:
    from backout.backup.catalog import BackupRecord
    from backout.backup.restore import RestoreResult
    from backout.emergency.incident import EmergencyResult
    from backout.migrate.apply import AppliedMigration, UpResult
    from backout.rollback.rollback import RollbackResult
    from backout.rollback.schema_update import SchemaUpdateResult
    from backout.run.hooks import HookResult


def backup_ref_json(record: BackupRecord | None) -> dict[str, Any] | None:
    """A backup in an action document: enough to find, check and restore it."""
    if record is None:
        return None
    return {
        "id": record.id,
        "kind": record.kind,
        "file": record.file,
        "sha256": record.sha256,
        "size": record.size,
        "tables": list(record.tables),
        "created_at": iso(record.created_at),
    }


def hook_json(hook: HookResult) -> dict[str, Any]:
    """One hook run."""
    return {
        "name": hook.name,
        "ok": hook.ok,
        "exit_code": hook.exit_code,
        "timed_out": hook.timed_out,
        "duration_s": round(hook.duration_s, 3),
    }


def rollback_fields(result: RollbackResult) -> dict[str, Any]:
    """``rollback --json``'s own fields."""
    view = result.view
    return {
        "dry_run": result.dry_run,
        "database": view.database,
        "target": view.plan.target,
        "partial": view.plan.partial,
        "migrations": view.plan.ids(),
        "rolled_back": list(result.rolled_back),
        "backup": backup_ref_json(result.backup),
        "rows_lost": view.impact.rows_lost(),
        "rows_affected": result.rows_affected,
        "statements": result.statements,
        "attempts": result.attempts,
        "rollback_s": round(result.duration_s, 3),
        "hooks": [hook_json(h) for h in result.hooks],
        "manual": [{"migration": m, "step": text} for m, text in result.manual],
        "schema_update": schema_update_json(result.schema_update),
    }


def schema_update_json(update: SchemaUpdateResult | None) -> dict[str, Any] | None:
    """What ``--update-schema`` did to schema.prisma (None: not asked for)."""
    if update is None:
        return None
    return {
        "mode": update.mode,
        "schema": update.schema,
        "status": update.status,
        "commit": update.commit,
        "diff": update.diff,
        "generate": update.generate,
        "commands": [
            {
                "command": run.command,
                "exit_code": run.exit_code,
                "ok": run.ok,
                "timed_out": run.timed_out,
                "duration_s": round(run.duration_s, 3),
            }
            for run in update.commands
        ],
        "reason": update.reason,
        "error": update.error,
        "where_things_stand": update.state,
        "kept_copy": update.kept,
        "manual": list(update.manual),
    }


def rollback_outcome(result: RollbackResult) -> str:
    """``rolled_back``, ``dry_run``, ``nothing_to_roll_back``, ``schema_update_failed`` or
    ``hook_failed``."""
    if result.view.plan.empty:
        return "nothing_to_roll_back"
    if result.dry_run:
        return "dry_run"
    if result.schema_update is not None and result.schema_update.failed:
        return "schema_update_failed"
    if any(not h.ok for h in result.hooks):
        return "hook_failed"
    return "rolled_back"


def _applied_json(m: AppliedMigration) -> dict[str, Any]:
    return {
        "id": m.id,
        "statements": m.statements,
        "duration_s": round(m.duration_ms / 1000, 3),
        "attempts": m.attempts,
        "transactional": m.transactional,
    }


def up_fields(result: UpResult) -> dict[str, Any]:
    """``up --json``'s own fields (``repeatables``: Flyway's ``R__`` files run)."""
    return {
        "dry_run": result.dry_run,
        "applied": [_applied_json(m) for m in result.applied],
        "repeatables": [_applied_json(m) for m in result.repeatables],
        "already_applied": result.skipped,
        "out_of_order": list(result.out_of_order),
        "warnings": list(result.warnings),
    }


def up_outcome(result: UpResult) -> str:
    """``applied``, ``dry_run`` or ``nothing_to_apply``."""
    if result.dry_run:
        return "dry_run"
    return "applied" if result.applied or result.repeatables else "nothing_to_apply"


def backup_fields(record: BackupRecord) -> dict[str, Any]:
    """``backup --json``'s own fields."""
    return {"backup": backup_ref_json(record), "rows": dict(record.row_counts)}


def restore_fields(result: RestoreResult) -> dict[str, Any]:
    """``restore --json``'s own fields."""
    plan = result.plan
    return {
        "backup": backup_ref_json(result.backup),
        "target": result.target,
        "into_new": plan.into_new,
        "pre_restore_backup": backup_ref_json(result.pre_restore),
        "replaced": list(plan.replaces),
        "dropped": list(plan.drops),
        "created_empty": list(plan.created_empty),
        "schema_changes": list(plan.schema_changes),
        "rows": dict(result.row_counts),
        "schema_fingerprint": result.schema_fingerprint,
        "restore_s": round(result.duration_s, 3),
    }


def emergency_fields(result: EmergencyResult) -> dict[str, Any]:
    """``emergency --json``'s own fields: every step with its timing, and where things stand."""
    rollback = result.rollback
    return {
        "dry_run": result.dry_run,
        "target": result.target,
        "steps": [
            {
                "name": s.name,
                "title": s.title,
                "status": s.status,
                "started_at": iso(s.started),
                "finished_at": iso(s.finished),
                "duration_s": round(s.seconds, 3),
                "detail": s.detail,
                "exit_code": s.exit_code,
            }
            for s in result.steps
        ],
        "failed_step": result.failed.name if result.failed else None,
        "refusals": list(result.refusals),
        "backup": backup_ref_json(result.backup),
        "rolled_back": list(rollback.rolled_back) if rollback else [],
        "rows_lost": result.view.impact.rows_lost() if result.view else None,
        "hooks": [hook_json(h) for h in result.hooks],
        "warnings": list(result.warnings),
        "where_things_stand": result.where_things_stand,
        "next_steps": list(result.next_steps),
        "report": str(result.report) if result.report else None,
        # the step that failed is the command's error (it ran to the end without raising)
        **({"error": _step_error(result)} if result.failed is not None else {}),
    }


def _step_error(result: EmergencyResult) -> dict[str, Any]:
    """The failed step as the document's error, like the CLI's ``error:`` line."""
    failed = result.failed
    assert failed is not None
    return {
        "message": f"{failed.title}: {failed.detail or 'failed'}",
        "hint": None,
        "exit_code": result.exit_code,
        "kind": "StepFailed",
    }


def emergency_outcome(result: EmergencyResult) -> str:
    """``ok``, ``dry_run``, ``warnings`` or ``failed`` (see ``failed_step``)."""
    if result.failed is not None:
        return "failed"
    if result.dry_run:
        return "dry_run"
    return "warnings" if result.warnings else "ok"
