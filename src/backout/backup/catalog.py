"""The backup catalog: one record per verified backup, and the files it names.

A backup is one file in the backup folder (``Config.backups``, default ``.backout/backups``)
plus a record in ``catalog.json`` beside it, and the schema snapshot it was taken against
(``<id>.schema.json``). Files are created with mode 0600 in a 0700 folder; their names hold no
user name and no password, and neither does the catalog. See :mod:`backout.backup.take` for the
kinds of backup and :mod:`backout.backup.restore` for bringing one back.
"""

from __future__ import annotations

import datetime as dt
import difflib
import fcntl
import hashlib
import json
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from backout.model.errors import BackupError, UsageError
from backout.model.urls import DatabaseURL

__all__ = [
    "BackupCatalog",
    "BackupRecord",
    "database_display",
    "database_label",
    "file_sha256",
    "same_database",
    "write_new_file",
]

CATALOG_FILE: Final = "catalog.json"
CATALOG_FORMAT: Final = 1
#: refuse to start a backup when the folder's file system has less free space than this
_MIN_FREE_BYTES: Final = 1 << 20
_CHUNK: Final = 1 << 20


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
            probe = self.folder / f".write-test-{os.getpid()}-{threading.get_ident()}"
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
        probe = existing / f".write-test-{os.getpid()}-{threading.get_ident()}"
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
        taken = {r.id for r in self.records()}
        # A file is the id before its suffix; the id itself may hold a dot (``app.v2``).
        files = [p.name for p in self._files()]

        def used(candidate: str) -> bool:
            return candidate in taken or any(
                f == candidate or f.startswith(candidate + ".") for f in files
            )

        candidate, n = base, 1
        while used(candidate):
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
# The database a backup names


def database_label(url: DatabaseURL) -> str:
    """The database's name for backup ids: a file's stem, or the database name."""
    if url.path is not None:
        return url.path.stem
    return url.database or "db"


def database_display(url: DatabaseURL) -> str:
    """The masked URL recorded with a backup (absolute for a database file)."""
    return (url.with_path(url.path) if url.path is not None else url).masked()


def same_database(a: DatabaseURL, b: DatabaseURL) -> bool:
    """Whether two URLs name the same database (the same file, or host, port and name)."""
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
