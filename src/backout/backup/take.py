"""Taking and verifying backups.

Kinds:

- **scoped** (what ``rollback`` takes by default): the whole schema, plus the rows of the tables
  the rollback touches (and of those referencing them by foreign key). Fast on a large
  database, because only those rows are copied.
- **full**: the whole schema and every row.
- **schema** (``backout backup`` without ``--full``): the whole schema and no table's rows.

Every kind also holds the rows of the migration ledger (``_prisma_migrations`` or backout's
``migrations``) and of the host tool's history table (dbmate's or golang-migrate's
``schema_migrations``), so that a restore brings back the applied state that matches its schema;
none holds backout's event log, which survives restores untouched.

Every backup is verified right after it is written: the file is read back with the database's
own tool, the rows it holds are checked against what was counted while it was taken, and its
sha256 is recorded (see :mod:`backout.backup.catalog`).

Every difference between databases lives in :mod:`backout.dialects` (see
:class:`~backout.dialects.base.BackupEngine`); this module never prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from backout.backup.catalog import (
    BackupCatalog,
    BackupRecord,
    database_display,
    database_label,
    file_sha256,
    write_new_file,
)
from backout.dialects.base import Session, no_progress, utcnow
from backout.model.errors import BackupError, UsageError
from backout.model.schema import SchemaSnapshot
from backout.run.history import Event

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    from backout.dialects.base import BackupEngine, DumpResult
    from backout.run.workspace import Workspace

__all__ = [
    "KINDS",
    "backup_now",
    "list_backups",
    "load_snapshot",
    "take_backup",
    "verify_backup",
    "verify_file",
]

#: backup kinds: see the module docstring
KINDS: Final = ("scoped", "full", "schema")


def _resolve_tables(snapshot: SchemaSnapshot, tables: Sequence[str]) -> tuple[str, ...]:
    """Snapshot keys of ``tables`` (bare names allowed in the default schema), with the
    partitions and inheritance children of each."""
    keys: set[str] = set()
    unknown: list[str] = []
    for name in tables:
        if name in snapshot.tables:
            keys.add(name)
        elif snapshot.default_schema and f"{snapshot.default_schema}.{name}" in snapshot.tables:
            keys.add(f"{snapshot.default_schema}.{name}")
        else:
            unknown.append(name)
    if unknown:
        raise UsageError(f"cannot back up table(s) that do not exist: {', '.join(unknown)}")
    changed = True
    while changed:
        changed = False
        for key, table in snapshot.tables.items():
            if key not in keys and any(parent in keys for parent in table.parents):
                keys.add(key)
                changed = True
    return tuple(sorted(keys))


def take_backup(
    ws: Workspace,
    session: Session,
    *,
    kind: str,
    tables: Sequence[str] = (),
    reason: str,
    progress: Callable[[str], None] | None = None,
) -> BackupRecord:
    """Take, verify and catalog a backup of the session's database.

    ``kind`` is ``scoped`` (the whole schema plus the rows of ``tables``), ``full`` or
    ``schema`` (no table's rows; ``tables`` is ignored by both); the migration ledger's rows
    are always in it. Refuses before
    touching the database when the backup folder is not writable (BackupError) or the dump
    tool is missing or too old (ToolMissing). A backup that fails or does not verify is
    deleted, and BackupError raised.
    """
    report = progress or no_progress
    if kind not in KINDS:
        raise UsageError(f"backup kind must be one of {', '.join(KINDS)}, not {kind!r}")
    engine = ws.dialect.backup_engine()
    catalog = BackupCatalog(ws.config.backups)
    catalog.prepare(report)
    engine.check_tools(session)
    data_tables = _data_tables(ws, session, kind, tables)
    # Whoever takes it (backup, restore's backup of the state before, emergency): a backup of
    # a half-finished state says so.
    unsettled = _unsettled_state(ws, session)
    if unsettled:
        reason += f"; taken while {unsettled}"
    created = utcnow()
    backup_id = catalog.new_id(kind, database_label(ws.url), created)
    path = catalog.folder / f"{backup_id}{engine.file_suffix}"
    sidecar = catalog.folder / f"{backup_id}.schema.json"
    try:
        write_new_file(path, b"")
        report(f"writing {kind} backup {backup_id}")
        dumped = engine.dump(
            session,
            path,
            data_tables=data_tables,
            history_schema=ws.config.history_schema,
            progress=report,
        )
        write_new_file(sidecar, json.dumps(dumped.snapshot.to_dict(), sort_keys=True).encode())
        record = _record_of(ws, backup_id, path, kind, reason, created, dumped)
        report(f"verifying backup {backup_id}")
        verify_file(engine, catalog, record)
        catalog.append(record)
    except OSError as exc:
        path.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise BackupError(
            f"cannot write the backup into {catalog.folder}: {exc.strerror or exc}; "
            "the partial file was removed",
            hint="free some space or fix the folder, or set backup_dir in backout.toml",
        ) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise
    return record


def _data_tables(
    ws: Workspace, session: Session, kind: str, tables: Sequence[str]
) -> tuple[str, ...] | None:
    """The tables whose rows a backup of ``kind`` holds (None: every table)."""
    if kind == "scoped":
        return _resolve_tables(ws.dialect.snapshot(session), tables)
    if kind == "schema":
        return ()
    return None


def _record_of(
    ws: Workspace,
    backup_id: str,
    path: Path,
    kind: str,
    reason: str,
    created: dt.datetime,
    dumped: DumpResult,
) -> BackupRecord:
    """The catalog record of a backup just dumped into ``path`` (flushed to disk first)."""
    return BackupRecord(
        id=backup_id,
        file=path.name,
        kind=kind,
        dialect=ws.dialect.name,
        database=database_display(ws.url),
        tables=dumped.tables,
        created_at=created,
        created_by=ws.actor.label(),
        reason=reason,
        size=path.stat().st_size,
        sha256=file_sha256(path, sync=True),
        schema_fingerprint=dumped.snapshot.fingerprint(),
        row_counts=dumped.row_counts,
        tool=dumped.tool,
    )


def load_snapshot(catalog: BackupCatalog, record: BackupRecord) -> SchemaSnapshot:
    """The schema snapshot stored with a backup, checked against the record's fingerprint."""
    path = catalog.snapshot_path(record)
    try:
        snapshot = SchemaSnapshot.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise BackupError(
            f"backup {record.id}: its schema file {path.name} is missing or damaged ({exc})",
            hint="restore it --into a new database to inspect it",
        ) from exc
    if snapshot.fingerprint() != record.schema_fingerprint:
        raise BackupError(
            f"backup {record.id}: its schema file {path.name} does not match the catalog"
        )
    return snapshot


def verify_file(engine: BackupEngine, catalog: BackupCatalog, record: BackupRecord) -> None:
    """Check a catalogued backup's file: size, sha256, schema file, and the engine's read-back."""
    path = catalog.path_of(record)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BackupError(
            f"backup {record.id}: its file {path} is missing ({exc.strerror or exc})"
        ) from exc
    if size != record.size:
        raise BackupError(
            f"backup {record.id} is damaged: {path.name} has {size} bytes, "
            f"the catalog recorded {record.size}",
            hint="it cannot be used; choose another with `backout backups`",
        )
    digest = file_sha256(path)
    if digest != record.sha256:
        raise BackupError(
            f"backup {record.id} is damaged: sha256 {digest[:12]}… differs from the "
            f"recorded {record.sha256[:12]}…",
            hint="it cannot be used; choose another with `backout backups`",
        )
    snapshot = load_snapshot(catalog, record)
    engine.verify(path, snapshot=snapshot, tables=record.tables, row_counts=record.row_counts)


def verify_backup(ws: Workspace, record: BackupRecord) -> None:
    """Check a backup's file: size and sha256 as recorded, and readable by the database's own
    tool with every recorded table's rows in it. BackupError when it fails."""
    if record.dialect != ws.dialect.name:
        raise BackupError(
            f"backup {record.id} is a {record.dialect} backup, but the database is "
            f"{ws.dialect.display_name} ({ws.url.masked()})"
        )
    verify_file(ws.dialect.backup_engine(), BackupCatalog(ws.config.backups), record)


def list_backups(ws: Workspace) -> list[BackupRecord]:
    """Every catalogued backup, oldest first."""
    return BackupCatalog(ws.config.backups).records()


#: what a backup holds and why: (kind "full" or "scoped", the tables a scoped one holds, reason)
BackupScope = tuple[str, tuple[str, ...], str]


def backup_now(
    ws: Workspace,
    *,
    scope: Callable[[Workspace], BackupScope] | None = None,
    progress: Callable[[str], None] | None = None,
) -> BackupRecord:
    """Take a verified backup on demand.

    ``scope`` None: every table's rows. Otherwise ``scope`` says what to hold, once the
    database is known to exist (the API passes
    :func:`backout.rollback.rollback.next_backup_scope`: the backup ``backout rollback`` would
    take now). Records a ``backup`` event when the event log exists.
    """
    if not ws.database_exists():
        raise BackupError(f"the database {ws.url.masked()} does not exist: nothing to back up")
    kind, reason = "full", "on demand (full)"
    tables: tuple[str, ...] = ()
    if scope is not None:
        kind, tables, reason = scope(ws)
    with ws.session(create=False) as session:
        # Under the run lock: never while a restore or a journaled run changes the database
        # (it would catalogue a state half-way between two as a verified backup).
        lock = ws.run_lock(session)
        try:
            started = utcnow()
            record = take_backup(
                ws, session, kind=kind, tables=tables, reason=reason, progress=progress
            )
        finally:
            lock.release()
        if ws.events.exists(session):
            ws.events.check_version(session)
            ws.record_alone(
                session,
                Event(
                    event="backup",
                    outcome="ok",
                    started_at=started,
                    finished_at=utcnow(),
                    actor=ws.actor,
                    backup=record.id,
                    details={"kind": record.kind, "size": record.size, "sha256": record.sha256},
                ),
            )
    return record


def _unsettled_state(ws: Workspace, session: Session) -> str:
    """What makes the database's state half-finished now ("" when nothing): a restore or a
    journaled run that stopped part-way. A backup of it is labelled with this."""
    if not ws.events.exists(session):
        return ""
    report = ws.read_status(session)
    if report.unfinished_restores:
        run = report.unfinished_restores[-1]
        return f"the database was half-restored (restore of {run.backup} stopped part-way)"
    if report.interrupted:
        entry = report.interrupted[0]
        assert entry.interrupted is not None
        return f"{entry.id} was partly {entry.interrupted.verb} (run stopped part-way)"
    return ""
