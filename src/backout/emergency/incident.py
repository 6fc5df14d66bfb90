"""What ``backout emergency`` did (:class:`EmergencyResult`, one :class:`StepRecord` per step)
and its incident report in Markdown ("document the incident")."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from backout.analysis.risk import loss_text
from backout.backup.catalog import BackupCatalog

if TYPE_CHECKING:
    from backout.analysis.checks import CheckReport
    from backout.backup.catalog import BackupRecord
    from backout.rollback.rollback import PlanView, RollbackResult
    from backout.run.hooks import HookResult
    from backout.run.workspace import Workspace

_OUTPUT_LINES = 40


@dataclass
class StepRecord:
    """One step of the timeline."""

    name: str
    title: str
    status: str = "pending"  # ok | failed | skipped | dry-run | pending
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    detail: str = ""
    output: str = ""
    exit_code: int | None = None

    @property
    def seconds(self) -> float:
        """Duration of the step."""
        if self.started is None or self.finished is None:
            return 0.0
        return (self.finished - self.started).total_seconds()


@dataclass
class EmergencyResult:
    """What the emergency procedure did, and where things stand."""

    target: str
    dry_run: bool
    steps: list[StepRecord]
    report: Path | None = None
    view: PlanView | None = None
    backup: BackupRecord | None = None
    rollback: RollbackResult | None = None
    checks: CheckReport | None = None
    hooks: list[HookResult] = field(default_factory=list)
    #: what went wrong without stopping the procedure (a failed after_rollback hook)
    warnings: list[str] = field(default_factory=list)
    #: every reason the rollback would be refused, found before the first side effect
    refusals: list[str] = field(default_factory=list)
    where_things_stand: str = ""
    next_steps: list[str] = field(default_factory=list)

    @property
    def failed(self) -> StepRecord | None:
        """The step that failed, if any."""
        return next((s for s in self.steps if s.status == "failed"), None)

    @property
    def exit_code(self) -> int:
        """0 when every step passed (or was skipped) with no warning; 1 after a warning; else
        the failing step's code."""
        failed = self.failed
        if failed is None:
            return 1 if self.warnings else 0
        return failed.exit_code or 1


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%H:%M:%S") if value else ""


def _fence(text: str) -> list[str]:
    lines = text.strip().splitlines()
    if len(lines) > _OUTPUT_LINES:
        lines = [*lines[:_OUTPUT_LINES], f"... ({len(lines) - _OUTPUT_LINES} more lines)"]
    return ["```", *lines, "```"]


def render_incident(ws: Workspace, result: EmergencyResult, started: dt.datetime) -> str:
    """The whole report; passwords never appear (URLs are masked, hook output scrubbed)."""
    outcome = "FAILED at " + result.failed.name if result.failed else "completed"
    if result.dry_run:
        outcome = "dry run (nothing was changed): " + outcome
    lines = [
        f"# Incident: emergency rollback to `{result.target}`",
        "",
        f"- **Date**: {started.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"- **Operator**: {ws.actor.user}@{ws.actor.host} (backout {ws.actor.tool_version})",
        f"- **Database**: {ws.url.masked()}",
        f"- **Outcome**: {outcome}",
        "",
        "## Where things stand",
        "",
        result.where_things_stand,
        "",
        "## Next steps",
        "",
        *(f"1. {step}" for step in result.next_steps),
        "",
        "## Timeline (UTC)",
        "",
        "| step | started | finished | seconds | status | detail |",
        "|---|---|---|---|---|---|",
    ]
    for step in result.steps:
        detail = step.detail.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {step.title} | {_when(step.started)} | {_when(step.finished)} | "
            f"{step.seconds:.1f} | {step.status} | {detail} |"
        )
    lines += ["", "## Rollback", "", *_rollback_section(result)]
    lines += ["", "## Backup", "", *_backup_section(ws, result)]
    lines += ["", "## Checks", "", *_checks_section(result)]
    lines += ["", "## Commands and outputs", ""]
    for step in result.steps:
        if step.output.strip():
            lines += [f"### {step.title}", "", *_fence(step.output), ""]
    lines += [
        "## Root cause",
        "",
        "_To be written._",
        "",
        "## Follow-ups",
        "",
        "- [ ] _To be written._",
        "",
    ]
    return "\n".join(lines)


def _rollback_section(result: EmergencyResult) -> list[str]:
    """The migrations rolled back with their risks, the data lost, and the manual steps."""
    view = result.view
    if view is None:
        return ["No plan could be made."]
    lines = [f"Migrations rolled back, newest first: {', '.join(view.plan.ids())}.", ""]
    lines += ["| migration | declared risk | computed risk |", "|---|---|---|"]
    for step_view, impact in zip(view.steps, view.impact.scripts, strict=False):
        declared = impact.declared.name if impact.declared else "undeclared"
        lines.append(
            f"| `{step_view.step.migration.id}` | {declared} | {impact.assessment.risk.name} |"
        )
    lines += ["", "### Data lost (counted before the rollback)", ""]
    losses = [x for impact in view.impact.scripts for x in impact.losses if x.count]
    lines += [f"- {loss_text(x)}" for x in losses] or ["- nothing"]
    manual = [t for s in view.steps for t in s.step.script.directives.manual]
    if manual:
        lines += ["", "### Manual steps declared by the scripts", ""]
        lines += [f"- [ ] {text}" for text in manual]
    return lines


def _backup_section(ws: Workspace, result: EmergencyResult) -> list[str]:
    """The backup's id, path, checksum and how to restore it."""
    if result.backup is None:
        return ["No backup was taken."]

    catalog = BackupCatalog(ws.config.backups)
    return [
        f"- **id**: `{result.backup.id}`",
        f"- **path**: `{catalog.path_of(result.backup)}`",
        f"- **sha256**: `{result.backup.sha256}`",
        f"- **restore**: `backout restore {result.backup.id}`",
    ]


def _checks_section(result: EmergencyResult) -> list[str]:
    """What ``check`` found after the rollback."""
    if result.checks is None:
        return ["Not run."]
    if result.checks.ok:
        return ["No orphans, leftovers or failing verify queries."]
    return [f"- {p.message}" for p in result.checks.problems]
