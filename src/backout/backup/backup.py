"""Backups: take and verify them, keep them in a catalog, and restore them.

A backup is one file in the backup folder (``Config.backups``, default ``.backout/backups``)
plus a record in ``catalog.json`` beside it, and the schema snapshot it was taken against
(``<id>.schema.json``). Kinds:

- **scoped** (what ``rollback`` takes by default): the whole schema, plus the rows of the tables
  the rollback touches (and of those referencing them by foreign key). Fast on a large
  database, because only those rows are copied.
- **full**: the whole schema and every row.
- **schema** (``backout backup`` without ``--full``): the whole schema and no table's rows.

Every kind also holds the rows of the migration ledger (``_prisma_migrations`` or backout's
``migrations``), so that a restore brings back the applied state that matches its schema; none
holds backout's event log, which survives restores untouched.

Every backup is verified right after it is written: the file is read back with the database's
own tool, the rows it holds are checked against what was counted while it was taken, and its
sha256 is recorded. Files are created with mode 0600 in a 0700 folder; their names hold no user
name and no password, and neither does the catalog.

``restore`` either loads a backup into a new, empty database for inspection (``--into``), or
replaces the current database's contents: it verifies the file first, takes a full backup of
the current state, and then restores in one transaction that is committed only if the schema
fingerprint and the restored row counts match the backup's record.

Every difference between databases lives in :mod:`backout.dialects` (see
:class:`~backout.dialects.base.BackupEngine`); this module never prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import difflib
import fcntl
import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from backout.dialects.base import Progress, RestoreRequest, Session, no_progress, utcnow
from backout.model.errors import (
    BackoutError,
    BackupError,
    DatabaseError,
    Declined,
    HistoryError,
    LockError,
    UsageError,
)
from backout.model.schema import SchemaChange, SchemaSnapshot, TableInfo, diff_schemas
from backout.model.urls import DatabaseURL, mask_url, parse_url, with_params
from backout.run import journal as journal_entries
from backout.run.history import Event
from backout.run.journal import InterruptedRun, RunContext
from backout.run.runner import Executor

if TYPE_CHECKING:
    from backout.dialects.base import BackupEngine
    from backout.run.workspace import Workspace

__all__ = [
    "KINDS",
    "BackupCatalog",
    "BackupRecord",
    "RestorePlan",
    "RestoreResult",
    "backup_now",
    "list_backups",
    "restore",
    "take_backup",
    "verify_backup",
]

#: backup kinds: see the module docstring
KINDS: Final = ("scoped", "full", "schema")
CATALOG_FILE: Final = "catalog.json"
CATALOG_FORMAT: Final = 1
#: refuse to start a backup when the folder's file system has less free space than this
_MIN_FREE_BYTES: Final = 1 << 20
_CHUNK: Final = 1 << 20


# --------------------------------------------------------------------------------------------
# Records and the catalog


@dataclass(frozen=True)
class BackupRecord:
    """One verified backup, as the catalog records it."""

    #: unique, sortable, no secrets: ``20261122T045433Z-scoped-appdb``
    id: str
    #: file name, relative to the backup folder
    file: str
    #: ``scoped``, ``full`` or ``schema``
    kind: str
    dialect: str
    #: the database it was taken from, as a masked URL
    database: str
    #: keys of the tables whose rows are in the file (a full backup: every table)
    tables: tuple[str, ...]
    created_at: dt.datetime
    #: :meth:`backout.dialects.base.Actor.label` of whoever took it
    created_by: str
    #: ``before rollback of ...``, ``before restore of <id>``, ``on demand``
    reason: str
    size: int
    sha256: str
    #: :meth:`SchemaSnapshot.fingerprint` of the database when it was backed up
    schema_fingerprint: str
    #: rows per table of :attr:`tables`
    row_counts: Mapping[str, int] = field(hash=False)
    #: ``pg_dump 15.20``, ``sqlite3 backup API 3.40.1``
    tool: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "tables", tuple(self.tables))
        object.__setattr__(
            self, "row_counts", MappingProxyType({k: int(v) for k, v in self.row_counts.items()})
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (the catalog's and ``backups --json``'s format)."""
        return {
            "id": self.id,
            "file": self.file,
            "kind": self.kind,
            "dialect": self.dialect,
            "database": self.database,
            "tables": list(self.tables),
            "created_at": self.created_at.astimezone(dt.UTC).isoformat(),
            "created_by": self.created_by,
            "reason": self.reason,
            "size": self.size,
            "sha256": self.sha256,
            "schema_fingerprint": self.schema_fingerprint,
            "row_counts": dict(self.row_counts),
            "tool": self.tool,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackupRecord:
        """Rebuild a record from :meth:`to_dict` output; ValueError names what is wrong."""
        try:
            created = dt.datetime.fromisoformat(str(data["created_at"]))
            return cls(
                id=str(data["id"]),
                file=str(data["file"]),
                kind=str(data["kind"]),
                dialect=str(data["dialect"]),
                database=str(data["database"]),
                tables=tuple(str(t) for t in data["tables"]),
                created_at=created if created.tzinfo else created.replace(tzinfo=dt.UTC),
                created_by=str(data["created_by"]),
                reason=str(data["reason"]),
                size=int(data["size"]),
                sha256=str(data["sha256"]),
                schema_fingerprint=str(data["schema_fingerprint"]),
                row_counts={str(k): int(v) for k, v in dict(data["row_counts"]).items()},
                tool=str(data["tool"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"backup record {data.get('id', '?')!r}: {exc}") from exc

    @property
    def total_rows(self) -> int:
        """Rows in the backup, all tables together."""
        return sum(self.row_counts.values())


class BackupCatalog:
    """``<backup folder>/catalog.json``: every backup taken, oldest first.

    The folder is created with mode 0700 and every file in it with 0600. The catalog is
    rewritten atomically (a temporary file renamed over it) under an exclusive lock, so two
    backups taken at once both end up in it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / CATALOG_FILE

    def records(self) -> list[BackupRecord]:
        """Every catalogued backup, oldest first ([] when there is none yet)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise BackupError(f"cannot read the backup catalog {self.path}: {exc}") from exc
        try:
            document = json.loads(text)
            if document.get("format") != CATALOG_FORMAT:
                raise ValueError(f"unsupported format {document.get('format')!r}")
            return [BackupRecord.from_dict(item) for item in document["backups"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupError(
                f"the backup catalog {self.path} is damaged: {exc}",
                hint="restore it from a copy; the backup files themselves are untouched",
            ) from exc

    def get(self, ref: str) -> BackupRecord:
        """The backup named by ``ref``: an id, a unique prefix of one, or ``latest``."""
        records = self.records()
        if not records:
            raise UsageError(
                f"there are no backups in {self.folder}",
                hint="take one with `backout backup` (rollback takes one by itself)",
            )
        if ref == "latest":
            return records[-1]
        for record in records:
            if record.id == ref:
                return record
        matches = [r for r in records if r.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        ids = [r.id for r in records]
        if len(matches) > 1:
            shown = ", ".join(r.id for r in matches[:5])
            raise UsageError(f"backup {ref!r} is ambiguous: it starts {len(matches)} ids ({shown})")
        close = difflib.get_close_matches(ref, ids, n=3, cutoff=0.4) or ids[-3:]
        raise UsageError(
            f"no backup {ref!r} in {self.folder}",
            hint=f"did you mean {' or '.join(close)}? (`backout backups` lists them all)",
        )

    def path_of(self, record: BackupRecord) -> Path:
        """Where the record's backup file is."""
        return self.folder / record.file

    def uncatalogued(self) -> list[Path]:
        """Files in the folder that no catalogued backup owns, by name.

        A backup killed before it was catalogued (kill -9, power loss) leaves its partial
        file: it was never verified, and restore will not use it. So does one being written
        right now by another run.
        """
        records = self.records()
        owned = {CATALOG_FILE, *(r.file for r in records)}
        owned.update(self.snapshot_path(r).name for r in records)
        try:
            entries = sorted(self.folder.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise BackupError(f"cannot list the backup folder {self.folder}: {exc}") from exc
        return [
            p for p in entries if p.name not in owned and not p.name.startswith(".") and p.is_file()
        ]

    def snapshot_path(self, record: BackupRecord) -> Path:
        """Where the schema snapshot taken with the backup is."""
        return self.folder / f"{record.id}.schema.json"

    def prepare(self, notice: Callable[[str], None] | None = None) -> None:
        """Create the folder (0700) and check that a file can be written in it; BackupError
        naming the folder otherwise.

        An existing folder that others may open (mode 0777, 0755…) is tightened to 0700, and
        ``notice`` is told; one owned by another user is refused: backups hold the data.
        """
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._tighten(notice)
            probe = self.folder / f".write-test-{os.getpid()}"
            handle = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(handle, b"x")
            finally:
                os.close(handle)
                probe.unlink()
            stats = os.statvfs(self.folder)
        except OSError as exc:
            raise BackupError(
                f"the backup folder {self.folder} is not writable: {exc.strerror or exc}",
                hint="fix its permissions, or set backup_dir in backout.toml",
            ) from exc
        if stats.f_bavail * stats.f_frsize < _MIN_FREE_BYTES:
            raise BackupError(
                f"the backup folder {self.folder} is full",
                hint="free some space, or set backup_dir in backout.toml",
            )

    def _tighten(self, notice: Callable[[str], None] | None) -> None:
        """Make the folder 0700 (see :meth:`prepare`)."""
        info = self.folder.stat()
        if info.st_uid != os.geteuid():
            raise BackupError(
                f"the backup folder {self.folder} belongs to another user (uid {info.st_uid}): "
                "backups hold the database's rows, so backout writes them only into a folder "
                "of its own; nothing was backed up",
                hint="point backup_dir in backout.toml at a folder of yours",
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            os.chmod(self.folder, 0o700)
            if notice is not None:
                notice(
                    f"the backup folder {self.folder} was mode {mode:04o} (others could read "
                    "or replace backups): tightened to 0700"
                )

    def check_writable(self) -> None:
        """:meth:`prepare`'s checks without creating the folder: BackupError naming it when a
        backup could not be written there (used to refuse before any side effect)."""
        existing = self.folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise BackupError(
                f"the backup folder {self.folder} is not writable: {existing} is not a folder",
                hint="fix the path, or set backup_dir in backout.toml",
            )
        probe = existing / f".write-test-{os.getpid()}"
        try:
            handle = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(handle)
            probe.unlink()
        except OSError as exc:
            raise BackupError(
                f"the backup folder {self.folder} is not writable: {exc.strerror or exc}",
                hint="fix its permissions, or set backup_dir in backout.toml",
            ) from exc

    def new_id(self, kind: str, label: str, when: dt.datetime) -> str:
        """A fresh id: UTC time, kind and database name (never a user name or password)."""
        stamp = when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.")[:40] or "db"
        base = f"{stamp}-{kind}-{safe}"
        taken = {r.id for r in self.records()} | {p.name.split(".", 1)[0] for p in self._files()}
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _files(self) -> Iterator[Path]:
        if self.folder.is_dir():
            yield from self.folder.iterdir()

    def append(self, record: BackupRecord) -> None:
        """Add a record (atomically, under the catalog's lock)."""
        with self._locked():
            records = self.records()
            records.append(record)
            self._write(records)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        handle = os.open(self.folder / ".catalog.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        finally:
            os.close(handle)

    def _write(self, records: Sequence[BackupRecord]) -> None:
        document = {"format": CATALOG_FORMAT, "backups": [r.to_dict() for r in records]}
        data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
        temporary = self.folder / f".{CATALOG_FILE}.{os.getpid()}.tmp"
        try:
            write_new_file(temporary, data)
            os.replace(temporary, self.path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise BackupError(
                f"cannot write the backup catalog {self.path}: {exc.strerror or exc}"
            ) from exc
        _sync_folder(self.folder)


def write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0600, failing if it exists) holding ``data``, flushed to disk."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(handle, view)
            view = view[written:]
        os.fsync(handle)
    finally:
        os.close(handle)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (the new catalog and the backup files it names).

    Best effort, after the fact: the catalog is already in place, and some file systems
    refuse to fsync a directory (EINVAL), as PostgreSQL's own ``fsync_fname`` tolerates.
    """
    try:
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
    except OSError:
        pass


def file_sha256(path: Path, *, sync: bool = False) -> str:
    """Lowercase sha256 hex of a file's bytes; ``sync`` also flushes the file to disk.

    Dump tools write through their own handles and never fsync: without ``sync``, a crash
    right after could leave a catalogued backup whose bytes never reached the disk.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
        if sync:
            os.fsync(handle.fileno())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Taking and verifying backups


def _database_label(url: DatabaseURL) -> str:
    """The database's name for backup ids: a file's stem, or the database name."""
    if url.path is not None:
        return url.path.stem
    return url.database or "db"


def _database_display(url: DatabaseURL) -> str:
    """The masked URL recorded with a backup (absolute for a database file)."""
    return (url.with_path(url.path) if url.path is not None else url).masked()


def _same_database(a: DatabaseURL, b: DatabaseURL) -> bool:
    if a.dialect != b.dialect:
        return False
    if a.path is not None or b.path is not None:
        return a.path is not None and b.path is not None and a.path.resolve() == b.path.resolve()
    same_port = a.port is None or b.port is None or a.port == b.port
    return (
        (a.host or "").lower() == (b.host or "").lower()
        and same_port
        and (a.database == b.database)
    )


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
    data_tables: tuple[str, ...] | None = None
    if kind == "scoped":
        data_tables = _resolve_tables(ws.dialect.snapshot(session), tables)
    elif kind == "schema":
        data_tables = ()
    # Whoever takes it (backup, restore's backup of the state before, emergency): a backup of
    # a half-finished state says so.
    unsettled = _unsettled_state(ws, session)
    if unsettled:
        reason += f"; taken while {unsettled}"
    created = utcnow()
    backup_id = catalog.new_id(kind, _database_label(ws.url), created)
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
        record = BackupRecord(
            id=backup_id,
            file=path.name,
            kind=kind,
            dialect=ws.dialect.name,
            database=_database_display(ws.url),
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
        report(f"verifying backup {backup_id}")
        _verify(engine, catalog, record)
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


def _load_snapshot(catalog: BackupCatalog, record: BackupRecord) -> SchemaSnapshot:
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


def _verify(engine: BackupEngine, catalog: BackupCatalog, record: BackupRecord) -> None:
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
    snapshot = _load_snapshot(catalog, record)
    engine.verify(path, snapshot=snapshot, tables=record.tables, row_counts=record.row_counts)


def verify_backup(ws: Workspace, record: BackupRecord) -> None:
    """Check a backup's file: size and sha256 as recorded, and readable by the database's own
    tool with every recorded table's rows in it. BackupError when it fails."""
    if record.dialect != ws.dialect.name:
        raise BackupError(
            f"backup {record.id} is a {record.dialect} backup, but the database is "
            f"{ws.dialect.display_name} ({ws.url.masked()})"
        )
    _verify(ws.dialect.backup_engine(), BackupCatalog(ws.config.backups), record)


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


# --------------------------------------------------------------------------------------------
# Restoring


@dataclass(frozen=True)
class RestorePlan:
    """What a restore will do, shown before it is confirmed."""

    backup: BackupRecord
    #: the database that will be written (masked URL)
    target: str
    #: True: a new database (``--into``); False: the current database is replaced
    into_new: bool
    #: tables whose rows will be replaced by the backup's
    replaces: tuple[str, ...]
    #: tables that exist now, are not in the backup, and will be dropped
    drops: tuple[str, ...] = ()
    #: tables the backup's schema has, that are missing now and whose rows it does not hold:
    #: they come back empty
    created_empty: tuple[str, ...] = ()
    #: how the current schema differs from the backup's (what the restore undoes)
    schema_changes: tuple[str, ...] = ()
    #: what is backed up first (None: nothing, the target is new)
    pre_restore_backup: str | None = None


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore."""

    plan: RestorePlan
    backup: BackupRecord
    #: the full backup of the state the restore replaced (None for ``--into``)
    pre_restore: BackupRecord | None
    #: the restored database (masked URL)
    target: str
    duration_s: float
    #: rows per restored table, as counted afterwards
    row_counts: Mapping[str, int]
    #: the schema fingerprint afterwards (equal to the backup's)
    schema_fingerprint: str


def _table_shape(table: TableInfo, *, constraints_in_place: bool) -> TableInfo:
    if constraints_in_place:
        return dataclasses.replace(table, constraints=(), foreign_keys=())
    return table


def restore_action(change: SchemaChange) -> str:
    """A difference from the current schema to the backup's, as what the restore does to the
    database: ``re-creates table "Voucher"``, ``drops column "User"."nickname"``.

    The change's own wording ("added"/"removed") is relative to the current schema, which
    reads backwards to a user who knows what happened since the backup.
    """
    marker = {"added": " added", "removed": " removed"}.get(change.kind)
    if marker is None or marker not in change.detail:
        return f"changes back {change.detail}"
    label, _, rest = change.detail.partition(marker)
    verb = "re-creates" if change.kind == "added" else "drops"
    return f"{verb} {label}{rest}"


def _plan_over(
    ws: Workspace,
    engine: BackupEngine,
    record: BackupRecord,
    backup_schema: SchemaSnapshot,
    current: SchemaSnapshot,
) -> RestorePlan:
    """The plan of a restore over the current database; refuses one that cannot reproduce
    the backup's schema (a changed table whose rows the backup does not hold)."""
    full = record.kind == "full"
    changes = diff_schemas(current, backup_schema)
    created_empty: list[str] = []
    problems: list[str] = []
    for key, table in backup_schema.tables.items():
        if full or key in record.tables:
            continue
        now = current.tables.get(key)
        if now is None:
            created_empty.append(key)
            continue
        shape = engine.constraints_in_place
        if _table_shape(now, constraints_in_place=shape) != _table_shape(
            table, constraints_in_place=shape
        ):
            # Described as what happened since the backup, not what a restore would undo.
            since = diff_schemas(backup_schema, current).changes
            details = [c.detail for c in since if c.name == key or c.name.startswith(key + ".")]
            problems.append(f"{key} ({'; '.join(details[:3]) or 'its definition changed'})")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BackupError(
            f"backup {record.id} is {record.kind} and cannot bring back the schema exactly: "
            f"table {problems[0]}{more} changed since, and the backup does not hold its rows; "
            "nothing changed",
            hint=f"restore it into a new database with `backout restore {record.id} --into URL`, "
            "or restore a full backup",
        )
    drops = tuple(sorted(set(current.tables) - set(backup_schema.tables)))
    replaces = tuple(sorted(record.tables))
    return RestorePlan(
        backup=record,
        target=_database_display(ws.url),
        into_new=False,
        replaces=replaces,
        drops=drops,
        created_empty=tuple(sorted(created_empty)),
        schema_changes=tuple(restore_action(c) for c in changes.changes),
        pre_restore_backup=f"a full backup of the current state (reason: before restore of "
        f"{record.id})",
    )


def _check_restored(
    engine: BackupEngine,
    session: Session,
    snapshot: SchemaSnapshot,
    record: BackupRecord,
    backup_schema: SchemaSnapshot,
    where: str,
) -> dict[str, int]:
    """Schema fingerprint and row counts of a restored database against the record."""
    if snapshot.fingerprint() != record.schema_fingerprint:
        diff = diff_schemas(backup_schema, snapshot)
        shown = "; ".join(c.detail for c in diff.changes[:3]) or "; ".join(
            c.detail for c in diff.column_order[:3]
        )
        more = f" (and {len(diff.changes) - 3} more)" if len(diff.changes) > 3 else ""
        raise BackupError(
            f"after restoring backup {record.id}, the schema of {where} differs from the "
            f"backup's: {shown}{more}"
        )
    counts = engine.row_counts(session, record.tables)
    wrong = [
        f"{table}: {counts.get(table)} rows, expected {expected}"
        for table, expected in record.row_counts.items()
        if counts.get(table) != expected
    ]
    if wrong:
        raise BackupError(
            f"after restoring backup {record.id}, row counts of {where} differ: "
            + "; ".join(wrong[:3])
        )
    return counts


def restore(
    ws: Workspace,
    ref: str | None,
    *,
    into_url: str | None,
    confirm: Callable[[RestorePlan], bool] | None = None,
    progress: Callable[[str], None] | None = None,
    resume: bool = False,
    undoes: RunContext | None = None,
) -> RestoreResult:
    """Restore a catalogued backup: into a new database (``into_url``) or over the current one.

    The backup file is verified first (a damaged one is refused before anything changes).
    Over the current database, a full backup of the current state is taken, then the restore
    runs in one transaction that commits only when the schema fingerprint and the restored row
    counts equal the backup's record, and a ``restore`` event is recorded in it. Where restores
    are not atomic (MySQL/MariaDB) it is journaled instead: one that stops part-way is an
    unfinished restore, which ``status`` reports and ``resume=True`` finishes (restoring the
    same backup again). ``undoes``: the journaled run this restore undoes (``--undo-partial``),
    closed when the restore completes. ``confirm`` sees the plan and may decline (Declined).
    """
    report = progress or no_progress
    catalog = BackupCatalog(ws.config.backups)
    if resume:
        if ref is not None or into_url is not None:
            raise UsageError("restore --resume takes no BACKUP and no --into")
        unfinished = unfinished_restore(ws)
        ref = unfinished.backup
        undoes = undoes or _undone_context(unfinished)
        if ref is None:
            raise HistoryError(f"the unfinished restore {unfinished.run_id[:8]} names no backup")
    if ref is None:
        raise UsageError("name the backup to restore (an id, a unique prefix, or `latest`)")
    record = catalog.get(ref)
    report(f"verifying backup {record.id}")
    if _same_database(parse_url(record.database), ws.url):
        _check_recorded_sha256(ws, record, report)
    verify_backup(ws, record)
    backup_schema = _load_snapshot(catalog, record)
    engine = ws.dialect.backup_engine()
    if into_url is not None:
        return _restore_into(ws, engine, catalog, record, backup_schema, into_url, confirm, report)
    source = parse_url(record.database)
    if not _same_database(source, ws.url):
        raise UsageError(
            f"backup {record.id} was taken from {record.database}, not from the current "
            f"database {ws.url.masked()}",
            hint=f"restore it into a new database with `backout restore {record.id} --into URL`",
        )
    # before anything is taken or changed: a backup of another scope (?schema=) is refused
    engine.refuse_out_of_scope(_restore_request(ws, catalog, record, backup_schema), ws.url)
    return _restore_over(ws, engine, catalog, record, backup_schema, confirm, report, undoes)


def _check_recorded_sha256(ws: Workspace, record: BackupRecord, report: Progress) -> None:
    """Refuse a backup whose file differs from what the database's own event log recorded
    when it was taken: its bytes were changed, and the catalog's checksum with them. The
    same check on every database, before anything changes. A backup the history holds no
    sha256 for is checked against its catalog only, and ``report`` says so."""
    if not ws.database_exists():
        report(
            f"backup {record.id}: the database it was taken of no longer exists, so its history "
            "cannot vouch for the file: it is checked against its catalog entry only"
        )
        return
    with ws.session(create=False) as session:
        recorded = ws.events.recorded_sha256(session, record.id)
    if not recorded:
        report(
            f"backup {record.id}: this database's history holds no sha256 for it (taken by an "
            "older backout, or before backout's tables existed): its file is checked against "
            "its catalog entry only"
        )
    elif record.sha256 not in recorded:
        shown = sorted(recorded)[0]
        raise BackupError(
            f"backup {record.id} was changed after it was taken: its file and catalog say "
            f"sha256 {record.sha256[:12]}…, but the database's history recorded {shown[:12]}… "
            "when it was taken; nothing changed",
            hint="it cannot be trusted; choose another with `backout backups`",
        )


def unfinished_restore(ws: Workspace) -> InterruptedRun:
    """The latest journaled restore that stopped part-way; UsageError when there is none."""
    with ws.session(create=False) as session:
        runs = ws.events.journal.unfinished_restores(session)
    if not runs:
        raise UsageError(
            "nothing to resume: no restore stopped part-way",
            hint="`backout status` shows the database's state",
        )
    return runs[-1]


def _undone_context(run: InterruptedRun) -> RunContext | None:
    """The run an unfinished restore was undoing (``--undo-partial``), from its details."""
    data = run.details.get("undoes_run")
    if not run.undoes or not isinstance(data, dict):
        return None
    return RunContext(run_id=run.undoes, **{k: data[k] for k in _RUN_FIELDS})


#: what a restore's journal keeps of the run it undoes, to close it when it completes
_RUN_FIELDS: Final = (
    "direction",
    "migration",
    "migration_key",
    "script",
    "script_checksum",
    "total",
)


def _restore_into(
    ws: Workspace,
    engine: BackupEngine,
    catalog: BackupCatalog,
    record: BackupRecord,
    backup_schema: SchemaSnapshot,
    into_url: str,
    confirm: Callable[[RestorePlan], bool] | None,
    report: Progress,
) -> RestoreResult:
    target = parse_url(into_url, base_dir=ws.config.root)
    if target.dialect != record.dialect:
        raise UsageError(
            f"--into must be a {record.dialect} database like the backup, not {target.masked()}"
        )
    if _same_database(target, ws.url) or _same_database(target, parse_url(record.database)):
        raise UsageError(
            f"--into must name a new database, not the one backed up ({target.masked()})",
            hint=f"to replace the current database, run `backout restore {record.id}`",
        )
    given_schema = target.schema
    if ws.url.schema and not target.schema:
        # Definitions are read relative to the search path: read both sides alike.
        target = parse_url(with_params(target, schema=ws.url.schema), base_dir=ws.config.root)
    # As the user gave it (masked): the schema carried over from the project is said apart.
    shown = mask_url(into_url) + (
        f" (schema {target.schema})" if target.schema and target.schema != given_schema else ""
    )
    plan = RestorePlan(backup=record, target=shown, into_new=True, replaces=tuple(record.tables))
    if confirm is not None and not confirm(plan):
        raise Declined("restore declined: nothing was changed")
    clock = time.monotonic()
    report(f"restoring {record.id} into {shown}")
    engine.restore_into(catalog.path_of(record), target=target, actor=ws.actor, progress=report)
    report("checking the restored database")
    with ws.dialect.connect(target, actor=ws.actor, create=False) as session:
        snapshot = ws.dialect.snapshot(session)
        counts = _check_restored(engine, session, snapshot, record, backup_schema, shown)
    return RestoreResult(
        plan=plan,
        backup=record,
        pre_restore=None,
        target=shown,
        duration_s=time.monotonic() - clock,
        row_counts=counts,
        schema_fingerprint=snapshot.fingerprint(),
    )


def _restore_request(
    ws: Workspace, catalog: BackupCatalog, record: BackupRecord, backup_schema: SchemaSnapshot
) -> RestoreRequest:
    """What the engine must bring back, for a restore over the current database."""
    return RestoreRequest(
        path=catalog.path_of(record),
        snapshot=backup_schema,
        data_tables=tuple(record.tables),
        full=record.kind == "full",
        history_schema=ws.config.history_schema,
        lock_timeout=ws.config.lock_timeout,
        source=record.database,
    )


def _restore_over(
    ws: Workspace,
    engine: BackupEngine,
    catalog: BackupCatalog,
    record: BackupRecord,
    backup_schema: SchemaSnapshot,
    confirm: Callable[[RestorePlan], bool] | None,
    report: Progress,
    undoes: RunContext | None = None,
) -> RestoreResult:
    with ws.session() as session:
        lock = ws.run_lock(session)
        try:
            ws.events.check_version(session)
            plan = _plan_over(ws, engine, record, backup_schema, ws.dialect.snapshot(session))
            if confirm is not None and not confirm(plan):
                raise Declined("restore declined: nothing was changed")
            report("backing up the current state (full)")
            pre = take_backup(
                ws, session, kind="full", reason=f"before restore of {record.id}", progress=report
            )
            executor = Executor(session, dry_run=False)
            ws.ensure_history(session, executor)
            ws.events.upgrade(session, executor)
            started = utcnow()
            clock = time.monotonic()
            counts: dict[str, int] = {}
            fingerprint = ""
            journal = ws.events.journal
            run = RunContext.new(
                direction=journal_entries.RESTORE,
                migration=undoes.migration if undoes else record.id,
                migration_key=undoes.migration_key if undoes else record.id,
                script=record.file,
                script_checksum=record.sha256,
                total=1,
            )
            if not engine.atomic_restore:
                _journal_alone(
                    session,
                    journal.write(
                        run,
                        journal_entries.START,
                        0,
                        details=_restore_details(record, pre, undoes),
                        when=started,
                    ),
                )

            def finish() -> None:
                nonlocal counts, fingerprint
                report("checking the restored schema and rows")
                snapshot = ws.dialect.snapshot(session)
                counts = _check_restored(
                    engine, session, snapshot, record, backup_schema, "the database"
                )
                fingerprint = snapshot.fingerprint()
                earlier = [
                    r for r in journal.unfinished_restores(session) if r.run_id != run.run_id
                ]
                sql, params = ws.events.append(
                    Event(
                        event="restore",
                        outcome="ok",
                        started_at=started,
                        finished_at=utcnow(),
                        actor=ws.actor,
                        backup=record.id,
                        details={
                            "kind": record.kind,
                            "pre_restore_backup": pre.id,
                            "pre_restore_sha256": pre.sha256,
                            "tables": list(record.tables),
                            "duration_s": round(time.monotonic() - clock, 3),
                            **({"undoes": undoes.run_id} if undoes else {}),
                            # the attempts this one finishes (killed part-way: no event of
                            # their own), so that history shows them
                            **(
                                {
                                    "finishes": [
                                        {"run": r.run_id, "started_at": r.started_at.isoformat()}
                                        for r in earlier
                                    ]
                                }
                                if earlier
                                else {}
                            ),
                        },
                    )
                )
                session.execute(sql, params)
                # After the event (a kill in between leaves a finished restore reported as
                # unfinished; resuming it is harmless). The database is now exactly the
                # backup: the run it undid is undone, and every restore that stopped
                # part-way before is superseded.
                if undoes is not None:
                    session.execute(
                        *journal.write(
                            undoes,
                            journal_entries.UNDONE,
                            0,
                            details={"path": "backup", "backup": record.id},
                        )
                    )
                for other in earlier:
                    session.execute(*journal.write(other.context(), journal_entries.FINISH, 1))
                if not engine.atomic_restore:
                    session.execute(*journal.write(run, journal_entries.FINISH, 1))

            request = _restore_request(ws, catalog, record, backup_schema)
            report(f"restoring {record.id} {engine.restore_manner}")
            try:
                engine.restore_over(session, request, finish=finish, progress=report)
            except KeyboardInterrupt as exc:
                # Ctrl-C or SIGTERM: rolled back (or, journaled, left for --resume); recorded.
                with contextlib.suppress(BackoutError):
                    session.rollback()
                _record_failure(ws, session, record, pre, started, exc)
                raise
            except BackoutError as exc:
                _record_failure(ws, session, record, pre, started, exc)
                if isinstance(exc, BackupError | LockError):
                    raise
                if isinstance(exc, DatabaseError) and ws.dialect.is_database_failure(
                    exc.sqlstate, exc.message
                ):
                    # The database failed (connection cut, disk full): a database error,
                    # exit 4. A statement it refuses means the backup does not fit: exit 2.
                    raise DatabaseError(
                        f"restoring backup {record.id} failed and was undone; nothing changed: "
                        f"{exc.message}",
                        sqlstate=exc.sqlstate,
                        hint=f"the state before it is in backup {pre.id}",
                    ) from exc
                raise BackupError(
                    f"restoring backup {record.id} failed and was undone; nothing changed: {exc}",
                    hint=f"the state before it is in backup {pre.id}",
                ) from exc
        finally:
            lock.release()
    return RestoreResult(
        plan=plan,
        backup=record,
        pre_restore=pre,
        target=_database_display(ws.url),
        duration_s=time.monotonic() - clock,
        row_counts=counts,
        schema_fingerprint=fingerprint,
    )


def _restore_details(
    record: BackupRecord, pre: BackupRecord, undoes: RunContext | None
) -> dict[str, Any]:
    """The ``start`` entry of a journaled restore: what ``status`` and ``--resume`` need."""
    details: dict[str, Any] = {
        "backup": record.id,
        "pre_restore_backup": pre.id,
        "pre_restore_sha256": pre.sha256,
    }
    if undoes is not None:
        details["undoes"] = undoes.run_id
        details["undoes_run"] = {k: getattr(undoes, k) for k in _RUN_FIELDS}
    return details


def _journal_alone(session: Session, write: tuple[str, tuple[object, ...]]) -> None:
    """Commit one journal entry by itself, before anything it announces happens."""
    session.begin()
    try:
        session.execute(*write)
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _record_failure(
    ws: Workspace,
    session: Session,
    record: BackupRecord,
    pre: BackupRecord,
    started: dt.datetime,
    error: BackoutError | KeyboardInterrupt,
) -> None:
    """Append a failed ``restore`` event in a transaction of its own (the restore's own
    transaction has been rolled back)."""
    event = Event(
        event="restore",
        outcome="failed",
        started_at=started,
        finished_at=utcnow(),
        actor=ws.actor,
        backup=record.id,
        error=str(error) or "interrupted (Ctrl-C)",
        details={
            "kind": record.kind,
            "pre_restore_backup": pre.id,
            "pre_restore_sha256": pre.sha256,
        },
    )
    try:
        ws.record_alone(session, event)
    except DatabaseError:
        # The database refuses even this (e.g. the connection died): the error being raised
        # says what happened, and the restore changed nothing.
        return
