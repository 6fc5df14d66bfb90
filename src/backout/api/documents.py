"""Machine-readable output. Every ``--json`` document carries ``"format": 1``; its fields are
documented in docs/json.md and only ever added to within a format version."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from backout.analysis.risk import loss_text
from backout.model.documents import JSON_FORMAT, iso
from backout.model.script import Script
from backout.project.migration import Migration
from backout.run.history import Event
from backout.run.status import MigrationStatus, State, StatusReport

if TYPE_CHECKING:
    from backout.analysis.impact import ScriptImpact
    from backout.migrate.residue import Residue
    from backout.rollback.rollback import PlanView


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
    repeatables: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``status --json`` document (``repeatables``: Flyway's ``R__`` files, listed)."""
    entries = report.entries
    residues = residues or {}
    broken = broken or {}
    return {
        "notes": list(notes),
        "repeatables": list(repeatables),
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


def plan_json(view: PlanView) -> dict[str, Any]:
    """The ``plan --json`` document."""
    return {
        "format": JSON_FORMAT,
        "database": view.database,
        "target": view.plan.target,
        "steps": [
            {
                "migration": s.step.migration.id,
                "applied_at": iso(s.step.applied_at),
                "edited": s.step.edited,
                "rollback": script_json(s.step.script),
                "statements": len(s.unit.statements),
                "transactional": s.unit.transactional,
                "implicit_commit_lines": [st.line for st in s.unit.implicit],
                "tables_written": list(s.tables),
                "impact": impact_json(view.impact.scripts[i]) if view.impact.scripts else None,
                "requires": [
                    {"line": r.line, "sql": r.sql, "passes": r.passes, "error": r.error}
                    for r in s.requires
                ],
                "verifies": [
                    {"line": v.line, "sql": v.sql} for v in s.step.script.directives.verify
                ],
            }
            for i, s in enumerate(view.steps)
        ],
        "declared_risk": view.plan.declared_risk.name if view.steps else None,
        "computed_risk": view.impact.risk.name if view.steps else None,
        "counts_exact": view.impact.exact,
        "backup": {
            "mode": view.backup.mode,
            "tables": list(view.backup.tables),
            "reason": view.backup.reason or None,
        },
        "execution": {
            "transactions": view.transactions,
            "lock": view.lock,
            "lock_timeout_s": view.lock_timeout,
            "lock_retries": view.lock_retries,
            "statement_timeout_s": view.statement_timeout or None,
        },
        "warnings": list(view.warnings),
        "partial": view.plan.partial,
        "params": {name: _json_value(value) for name, value in view.params.items()},
        "preview": None
        if view.preview is None
        else {
            "line": view.preview.line,
            "sql": view.preview.sql,
            "count": view.preview.count,
            "columns": list(view.preview.columns),
            "rows": [[_json_value(v) for v in row] for row in view.preview.rows],
        },
    }


def _json_value(value: object) -> object:
    """A parameter or preview value as JSON: numbers and booleans as such, the rest as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def history_json(events: list[Event]) -> dict[str, Any]:
    """The ``history --json`` document."""
    return {
        "format": JSON_FORMAT,
        "events": [
            {
                "id": e.id,
                "event": e.event,
                "migration": e.migration,
                "outcome": e.outcome,
                "started_at": iso(e.started_at),
                "finished_at": iso(e.finished_at),
                "duration_ms": e.duration_ms,
                "who": e.actor.user,
                "host": e.actor.host,
                "tool_version": e.actor.tool_version,
                "checksum": e.checksum,
                "backup": e.backup,
                "error": e.error,
                "details": e.details,
            }
            for e in events
        ],
    }


def impact_json(impact: ScriptImpact) -> dict[str, Any]:
    """One script's computed impact."""
    return {
        "declared_risk": impact.declared.name if impact.declared is not None else None,
        "computed_risk": impact.assessment.risk.name,
        "understated": impact.understated,
        "reasons": list(impact.assessment.reasons),
        "objects": [
            {
                "line": e.line,
                "action": e.action.value,
                "object": e.target.display,
                "detail": e.detail or None,
            }
            for e in impact.objects()
        ],
        "losses": [
            {
                "line": loss.effect.line,
                "object": loss.effect.target.display,
                "kind": loss.kind,
                "count": loss.count,
                "estimated": loss.estimated,
                "key": loss.key,
                "cascade_table": loss.cascade_table,
            }
            for loss in impact.losses
        ],
        "uncounted": list(impact.uncounted),
        "side_effects": list(impact.side_effects),
        "needs_review": [{"line": u.line, "reason": u.reason} for u in impact.effects.unknown],
        "simulation": None
        if impact.simulation is None
        else {
            "ran": impact.simulation.ran,
            "changes": list(impact.simulation.changes),
            "disagreements": list(impact.simulation.disagreements),
            "error": impact.simulation.error,
        },
    }


def plan_markdown(view: PlanView) -> str:
    """The plan as Markdown, for a pull-request comment."""
    lines = [f"### backout rollback plan: {len(view.steps)} migration(s)", ""]
    after = view.plan.target or "nothing"
    lines += [f"Afterwards the newest applied migration is `{after}`.", ""]
    lines += [
        "| # | migration | declared risk | computed risk | data lost |",
        "|---|---|---|---|---|",
    ]
    for number, (step, impact) in enumerate(zip(view.steps, view.impact.scripts, strict=False), 1):
        lost = "; ".join(loss_text(x) for x in impact.losses if x.count) or "nothing"
        flag = " ⚠️ understated" if impact.understated else ""
        declared = impact.declared.name if impact.declared is not None else "undeclared"
        lines.append(
            f"| {number} | `{step.step.migration.id}` | {declared} | "
            f"**{impact.assessment.risk.name}**{flag} | {lost} |"
        )
    lines.append("")
    for step, impact in zip(view.steps, view.impact.scripts, strict=False):
        lines.append(f"#### `{step.step.migration.id}` ({step.step.script.display})")
        for effect in impact.objects():
            lines.append(f"- {effect.action.value} {effect.target.display}")
        for reason in impact.assessment.reasons:
            lines.append(f"- risk: {reason}")
        for unknown in impact.effects.unknown:
            lines.append(f"- needs review: line {unknown.line}: {unknown.reason}")
        for text in step.step.script.directives.manual:
            lines.append(f"- manual: {text}")
        lines.append("")
    lines.append(f"Backup: {view.backup.describe()}")
    for warning in view.warnings:
        lines.append(f"\n> warning: {warning}")
    return "\n".join(lines) + "\n"
