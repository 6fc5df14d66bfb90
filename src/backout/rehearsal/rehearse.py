"""``backout test``: rehearse rollbacks on a throwaway copy of the database, with its data.

For each migration M the rehearsal runs on the copy what production would run, through the
same code (``up`` and ``rollback``, with the run lock, one transaction, ``require`` and
``verify``), and fails, naming what differs, when:

- the schema after the rollback is not the schema before M (catalog snapshot, and the
  database's own schema dump; column order separately, relaxable);
- rows of tables that neither M nor its rollback touch changed (row counts and checksums);
- ``check`` finds orphans it did not find before;
- the rollback fails, or re-applying M fails or gives a different schema;
- the ``smoke`` hook, run with ``DATABASE_URL`` pointing at the copy, fails.

Two ways to pick the copy and the migrations:

- **copy** (default): the configured database (or ``--from URL``) is copied with its data into a
  scratch database. Pending migrations are rehearsed forward (apply, roll back, apply again);
  without pending ones, the newest applied migration is rehearsed backward (roll back, apply
  again), against the schema that replaying the migrations before it gives.
- **all** (``--all``, CI): an empty scratch database; every migration in order, forward.

The copy is always dropped, also on Ctrl-C.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backout.model.errors import BackoutError, ConfigError, UsageError
from backout.model.urls import DatabaseURL, parse_url
from backout.project.migration import Migration
from backout.rehearsal.compare import Failure
from backout.run.hooks import HookResult
from backout.run.runner import refuse_writing_checks
from backout.run.workspace import Workspace

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


def rehearse(
    ws: Workspace,
    *,
    ids: Sequence[str] = (),
    all_: bool = False,
    from_url: str | None = None,
    ignore_column_order: bool = True,
    with_smoke: bool = True,
    with_data: bool = False,
    progress: Progress | None = None,
) -> RehearsalReport:
    """Rehearse rollbacks on a throwaway database (see the module docstring); never touches
    the configured database except to read it for the copy.

    ``with_data`` (``--all`` only): fill every table with synthetic rows as the walk goes, so
    the data comparisons have rows to compare.
    """
    from backout.rehearsal.walk import Walk

    if all_ and (ids or from_url):
        raise UsageError(
            "--all rehearses every migration on an empty database: give no ID or --from"
        )
    if with_data and not all_:
        raise UsageError(
            "--with-data fills an empty database with synthetic rows: it goes with --all "
            "(a copy always has the source's data)"
        )
    chosen = [ws.project.find(ref) for ref in ids]
    _refuse_writing_checks(ws, chosen or ws.project.migrations)
    started = time.monotonic()
    emit = progress or (lambda _event: None)
    if all_:
        from backout.run.replay import scratch_workspace

        with scratch_workspace(ws) as copy:
            report = RehearsalReport(source="empty database", copy=copy.url.masked(), mode="all")
            walk = Walk(copy, report, emit, ignore_column_order, with_smoke, with_data)
            walk.run_all()
    else:
        source = _source(ws, from_url)
        report = _copy_mode(ws, source, chosen, emit, ignore_column_order, with_smoke)
    report.duration_s = time.monotonic() - started
    return report


def _refuse_writing_checks(ws: Workspace, migrations: Sequence[Migration]) -> None:
    """ProjectError (exit 2, file and line) before any copy is made, when a rollback to be
    rehearsed has a check that visibly writes: the same refusal as a real rollback's."""
    for migration in migrations:
        scripts = [script for _, script in migration.partials]
        if migration.down is not None:
            scripts.insert(0, migration.down)
        for script in scripts:
            refuse_writing_checks(ws.dialect, script)


def _source(ws: Workspace, from_url: str | None) -> DatabaseURL:
    if from_url is None:
        if not ws.database_exists():
            raise UsageError(
                f"the database {ws.url.masked()} does not exist: nothing to copy",
                hint="`backout test --all` rehearses every migration on an empty database",
            )
        return ws.url
    source = parse_url(from_url, base_dir=ws.config.root)
    if source.dialect != ws.dialect.name:
        raise ConfigError(
            f"--from {source.masked()} is {source.dialect}, but the project's database is "
            f"{ws.dialect.name}"
        )
    if not ws.dialect.database_exists(source):
        raise UsageError(f"--from {source.masked()}: the database does not exist")
    return source


def _copy_mode(
    ws: Workspace,
    source: DatabaseURL,
    chosen: list[Migration],
    emit: Progress,
    ignore_column_order: bool,
    with_smoke: bool,
) -> RehearsalReport:
    from backout.rehearsal.walk import Walk
    from backout.run.replay import scratch_workspace

    emit(RehearsalEvent("step", text=f"copying {source.masked()} (schema and data)"))
    with scratch_workspace(ws, copy_from=source, data=True) as copy:
        report = RehearsalReport(source=source.masked(), copy=copy.url.masked(), mode="copy")
        walk = Walk(copy, report, emit, ignore_column_order, with_smoke, with_data=False)
        try:
            walk.run_copy(chosen)
        except BackoutError as exc:
            report.notes.append(f"the rehearsal stopped: {exc}")
            if not report.migrations:
                raise
    return report


def rehearsal_json(report: RehearsalReport) -> dict[str, Any]:
    """The ``test --json`` document (docs/json.md)."""
    from backout.model.documents import JSON_FORMAT

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
