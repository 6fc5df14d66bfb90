"""The ``status --json`` document (docs/json.md), apart from the other documents so that
``backout status`` imports what it reads and no more: not the analysis that plans and
rollbacks render (risk, impact), not the schema model (tests/integration/test_start_imports.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from backout.model.documents import JSON_FORMAT, iso
from backout.run.status import MigrationStatus, State, StatusReport

if TYPE_CHECKING:
    from backout.migrate.residue import Residue
    from backout.model.script import Script
    from backout.project.migration import Migration
    from backout.run.hosts.flyway import Repeatable


def script_json(script: Script) -> dict[str, Any]:
    """A rollback script's declared properties."""
    d = script.directives
    return {
        "file": script.display,
        "risk": d.risk.name if d.risk is not None else None,
        "impact": list(d.impact),
        "data_loss": list(d.data_loss),
        "manual": list(d.manual),
        "transaction": d.transaction,
    }


def partials_json(migration: Migration) -> list[dict[str, Any]]:
    """The partial rollbacks of a migration."""
    return [
        {
            "name": name,
            **script_json(script),
            "params": [
                {"name": p.name, "type": p.type, "default": p.default}
                for p in script.directives.params
            ],
        }
        for name, script in migration.partials
    ]


def residue_json(residue: Residue | None) -> dict[str, Any] | None:
    """What remains of a failed migration, in ``status --json`` (None: not failed)."""
    if residue is None:
        return None
    return {
        "known": residue.rolled_back_by_backout
        or (not residue.unknown_reason and bool(residue.statements)),
        "nothing_remains": residue.nothing_remains,
        "rolled_back_by_backout": residue.rolled_back_by_backout,
        "unknown_reason": residue.unknown_reason or None,
        "statements": [
            {
                "line": s.line,
                "statement": s.excerpt,
                "verdict": s.verdict,
                "present": list(s.present),
                "absent": list(s.absent),
            }
            for s in residue.statements
        ],
    }


def status_entry_json(
    entry: MigrationStatus,
    residue: Residue | None = None,
    broken: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One migration in ``status --json``; a broken rollback or partial carries its error."""
    migration = entry.migration
    known_broken = broken or {}

    def with_error(document: dict[str, Any]) -> dict[str, Any]:
        return {**document, "error": known_broken.get(document["file"])}

    return {
        "applying_by": entry.applying_by,
        "recorded_by": entry.recorded_by,
        "remains": residue_json(residue),
        "id": entry.id,
        "version": migration.version if migration else None,
        "name": migration.name if migration else None,
        "state": entry.state.value,
        "applied_at": iso(entry.applied_at),
        "rolled_back_at": iso(entry.rolled_back_at),
        "edited": entry.edited,
        "out_of_order": entry.out_of_order,
        "missing_from_disk": entry.missing_from_disk,
        "attempts": entry.attempts,
        "failure": entry.failure,
        "failed_statements_applied": entry.failed_steps,
        "interrupted": entry.interrupted.to_dict() if entry.interrupted else None,
        "file": migration.up.display if migration else None,
        "rollback": with_error(script_json(migration.down))
        if migration and migration.down
        else None,
        "partials": [with_error(p) for p in partials_json(migration)] if migration else [],
    }


def status_json(
    report: StatusReport,
    *,
    layout: str,
    database: str,
    database_source: str,
    history_table: str,
    database_exists: bool,
    host_table: str | None = None,
    notes: Sequence[str] = (),
    residues: Mapping[str, Residue] | None = None,
    broken: Mapping[str, str] | None = None,
    repeatables: Sequence[Repeatable] = (),
) -> dict[str, Any]:
    """The ``status --json`` document (``repeatables``: Flyway's ``R__`` files, their states)."""
    entries = report.entries
    residues = residues or {}
    broken = broken or {}
    return {
        "notes": list(notes),
        "repeatables": [
            {
                "script": r.script.display,
                "description": r.description,
                "checksum": r.checksum,
                "state": r.state,
            }
            for r in repeatables
        ],
        "format": JSON_FORMAT,
        "layout": layout,
        "database": database,
        "database_source": database_source,
        "database_exists": database_exists,
        "history_table": history_table,
        "host_table": host_table,
        "migrations": [status_entry_json(e, residues.get(e.id), broken) for e in entries],
        "unfinished_restores": [
            {
                **run.to_dict(),
                "pre_restore_backup": run.details.get("pre_restore_backup"),
                "undoes": run.undoes,
            }
            for run in report.unfinished_restores
        ],
        "summary": {
            "applied": len(report.applied),
            "pending": len(report.by_state(State.PENDING)),
            "rolled_back": len(report.by_state(State.ROLLED_BACK)),
            "failed": len(report.failed),
            "applying": len(report.applying),
            "interrupted": len(report.interrupted),
            "edited": len(report.edited),
            "missing_from_disk": len(report.missing),
            "broken_scripts": len(broken),
            "without_rollback": sum(
                1 for e in entries if e.migration is not None and e.migration.down is None
            ),
        },
    }
