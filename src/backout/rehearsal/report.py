"""What a rehearsal (``backout test``) found: one :class:`MigrationRehearsal` per migration, the
:class:`RehearsalReport`, the progress events, and the ``test --json`` document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backout.model.documents import JSON_FORMAT
from backout.rehearsal.compare import Failure
from backout.run.hooks import HookResult

PASSED = "passed"
FAILED = "failed"
NO_ROLLBACK = "no_rollback"
NOT_RUN = "not_run"


@dataclass
class MigrationRehearsal:
    """The rehearsal of one migration."""

    id: str
    #: forward (pending on the copy: up → rollback → up) or backward (applied: rollback → up)
    mode: str
    status: str = PASSED
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: hazards found on the way that do not fail the rollback's rehearsal: "this migration
    #: fails on a non-empty table" (``--with-data``), after which the walk went on
    findings: list[str] = field(default_factory=list)
    #: seconds per step: apply, rollback, reapply, compare, smoke
    timings: dict[str, float] = field(default_factory=dict)
    smoke: HookResult | None = None
    #: wall-clock seconds for the whole rehearsal of this migration
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Passed, or had nothing to rehearse that was asked for."""
        return self.status in (PASSED, NO_ROLLBACK)

    def fail(self, kind: str, message: str) -> None:
        """Record a failure."""
        self.failures.append(Failure(kind, message))
        self.status = FAILED


@dataclass
class RehearsalReport:
    """Everything a rehearsal did and found."""

    #: where the data came from (masked URL), or "empty database" with --all
    source: str
    #: the throwaway database (masked URL); gone by the time the report is read
    copy: str
    mode: str
    migrations: list[MigrationRehearsal] = field(default_factory=list)
    #: the smoke hook's run at the end of an --all rehearsal
    smoke: HookResult | None = None
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Every rehearsed migration passed (and the final smoke hook, if it ran)."""
        smoke_ok = self.smoke is None or self.smoke.ok
        return smoke_ok and all(m.ok for m in self.migrations)

    @property
    def failed(self) -> list[MigrationRehearsal]:
        """Rehearsals that failed or could not run."""
        return [m for m in self.migrations if not m.ok]


@dataclass(frozen=True)
class RehearsalEvent:
    """Progress: ``plan`` (total known), ``start``/``done`` per migration, ``step`` text."""

    kind: str
    total: int = 0
    migration: str | None = None
    text: str = ""
    result: MigrationRehearsal | None = None


Progress = Callable[[RehearsalEvent], None]


def rehearsal_json(report: RehearsalReport) -> dict[str, Any]:
    """The ``test --json`` document (docs/json.md)."""

    def hook(result: HookResult | None) -> dict[str, Any] | None:
        if result is None:
            return None
        return {
            "command": result.command,
            "exit_code": result.exit_code,
            "ok": result.ok,
            "timed_out": result.timed_out,
            "duration_s": round(result.duration_s, 3),
            "output": result.output,
        }

    return {
        "format": JSON_FORMAT,
        "mode": report.mode,
        "source": report.source,
        "copy": report.copy,
        "ok": report.ok,
        "duration_s": round(report.duration_s, 3),
        "migrations": [
            {
                "id": m.id,
                "mode": m.mode,
                "status": m.status,
                "ok": m.ok,
                "failures": [{"kind": f.kind, "message": f.message} for f in m.failures],
                "notes": list(m.notes),
                "findings": list(m.findings),
                "duration_s": round(m.duration_s, 3),
                "timings_s": {k: round(v, 3) for k, v in m.timings.items()},
                "smoke": hook(m.smoke),
            }
            for m in report.migrations
        ],
        "smoke": hook(report.smoke),
        "notes": list(report.notes),
        "summary": {
            status: sum(1 for m in report.migrations if m.status == status)
            for status in (PASSED, FAILED, NO_ROLLBACK, NOT_RUN)
        },
    }
