"""What a dialect provides for backups: dump, verify, and restore (into a new database or over
the current one).

:mod:`backout.backup` owns the catalog, file names, permissions, checksums and the checks
that decide whether a restore succeeded; a :class:`BackupEngine` only moves bytes between a database
and a backup file, with the database's own tools (``pg_dump``/``pg_restore``, the ``sqlite3``
backup API).

Vocabulary shared with :mod:`backout.backup`:

- tables are named by their :class:`~backout.model.schema.SchemaSnapshot` key (``public.Voucher`` on
  PostgreSQL, ``Voucher`` on SQLite);
- the **ledger tables** (``_prisma_migrations``, backout's ``migrations``) are not part of any
  snapshot, but their data is in every backup, so that the applied state always matches the
  restored schema;
- backout's event log and ``schema_version`` tables are never dumped and never restored: the
  audit trail survives restores untouched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from backout.dialects.base import Actor, Session
from backout.model.schema import SchemaSnapshot
from backout.model.urls import DatabaseURL

Progress = Callable[[str], None]


def no_progress(message: str) -> None:
    """A progress callback that ignores what it is told."""


@dataclass(frozen=True)
class DumpResult:
    """What a dump holds, read in the same database snapshot as the dump itself."""

    #: keys of the tables whose rows are in the file (ledger tables included)
    tables: tuple[str, ...]
    #: rows per table of :attr:`tables`
    row_counts: Mapping[str, int]
    #: the schema when the dump was taken (the ledger and backout's tables left out)
    snapshot: SchemaSnapshot
    #: the tool and its version, e.g. ``pg_dump 15.20``
    tool: str


@dataclass(frozen=True)
class RestoreRequest:
    """What :meth:`BackupEngine.restore_over` must bring back."""

    #: the backup file
    path: Path
    #: the schema recorded with the backup: what the database must look like afterwards
    snapshot: SchemaSnapshot
    #: keys of the tables whose rows the backup holds (ledger tables included)
    data_tables: tuple[str, ...]
    #: a full backup: every table is replaced, and tables not in the backup are dropped
    full: bool
    #: schema (PostgreSQL) holding backout's own tables
    history_schema: str
    #: seconds to wait for a lock before giving up (0: no limit)
    lock_timeout: float
    #: the masked URL the backup was taken from: its parameters say the backup's scope
    #: (PostgreSQL's ``?schema=``); "" when not known
    source: str = ""


class BackupEngine(ABC):
    """Dump, verify and restore one kind of database. Stateless; obtained from
    :meth:`backout.dialects.base.Dialect.backup_engine`."""

    #: file name suffix of a backup file (``.dump``, ``.sqlite3``)
    file_suffix: ClassVar[str]
    #: constraints and foreign keys can be dropped and re-created without rebuilding their
    #: table (PostgreSQL); where they cannot (SQLite), a scoped restore can only fix them by
    #: rebuilding the table, which needs its rows
    constraints_in_place: ClassVar[bool]
    #: :meth:`restore_over` is one transaction: a failure or a kill changes nothing. Where it
    #: is not (MySQL/MariaDB commit DDL at once), backout journals the restore so that a
    #: half-restored database is reported and can be finished (see :mod:`backout.run.journal`)
    atomic_restore: ClassVar[bool] = True
    #: how :meth:`restore_over` runs, as the progress line says it
    restore_manner: ClassVar[str] = "in one transaction"

    @abstractmethod
    def check_tools(self, session: Session) -> str:
        """The dump tool and its version; ToolMissing (writing nothing) when it is missing or
        older than the server."""

    @abstractmethod
    def ledger_tables(self, session: Session, history_schema: str) -> list[str]:
        """Keys of the migration-ledger tables that exist (``_prisma_migrations``,
        backout's ``migrations``)."""

    @abstractmethod
    def dump(
        self,
        session: Session,
        path: Path,
        *,
        data_tables: Sequence[str] | None,
        history_schema: str,
        progress: Progress,
    ) -> DumpResult:
        """Write a backup into ``path`` (an empty file, already created with mode 0600).

        The whole schema is always in it. ``data_tables`` lists the tables whose rows go in as
        well (None: every table); the ledger tables' rows always go in; backout's event log and
        ``schema_version`` never do. Raises BackupError when the tool fails.
        """

    @abstractmethod
    def verify(
        self,
        path: Path,
        *,
        snapshot: SchemaSnapshot,
        tables: Sequence[str],
        row_counts: Mapping[str, int],
    ) -> None:
        """Check the file's structure: it can be read back and holds the rows of ``tables``
        (and, where the file itself can be counted, ``row_counts``). BackupError otherwise."""

    @abstractmethod
    def row_counts(self, session: Session, tables: Sequence[str]) -> dict[str, int]:
        """Exact rows per table (tables given by key; ledger tables allowed)."""

    @abstractmethod
    def restore_into(
        self,
        path: Path,
        *,
        target: DatabaseURL,
        actor: Actor,
        progress: Progress,
    ) -> None:
        """Load the backup into ``target``, a new database: it must not exist yet (SQLite), or
        exist and be empty, or not exist and be creatable (PostgreSQL). BackupError otherwise.
        """

    def refuse_out_of_scope(self, request: RestoreRequest, target: DatabaseURL) -> None:
        """BackupError (nothing changed yet) when the backup's scope is not the one of the
        project at ``target`` (PostgreSQL's ``?schema=``); called before anything is taken
        or changed. Default: a database is one scope."""
        return None

    @abstractmethod
    def restore_over(
        self,
        session: Session,
        request: RestoreRequest,
        *,
        finish: Callable[[], None],
        progress: Progress,
    ) -> None:
        """Make the database match the backup, in ONE transaction (where
        :attr:`atomic_restore`; otherwise statement by statement, journaled by the caller).

        Drops what the backup re-creates (and, for a full backup, what it does not hold), loads
        the schema objects that are missing or different and the rows of
        :attr:`RestoreRequest.data_tables`, then calls ``finish`` inside the transaction (it
        checks the result and records the event) and commits. Any error, in the restore or in
        ``finish``, rolls everything back and propagates. Never touches backout's event log.
        """
