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
from collections.abc import Sequence

from backout.model.errors import BackoutError, ConfigError, UsageError
from backout.model.urls import DatabaseURL, parse_url
from backout.project.migration import Migration
from backout.rehearsal.report import (
    Progress,
    RehearsalEvent,
    RehearsalReport,
)
from backout.rehearsal.walk import Walk
from backout.run.replay import scratch_workspace
from backout.run.runner import refuse_writing_checks
from backout.run.workspace import Workspace


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
