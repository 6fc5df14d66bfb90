"""What every database backend provides; every difference between databases lives here.

A :class:`Dialect` is stateless: it knows how to connect, split scripts, recognise statements
that cannot run in a transaction, name backout's own tables and take the run lock. A
:class:`Session` is one open connection with explicit transaction control whose errors are
already translated into :mod:`backout.model.errors`.

Capability flags are class attributes, documented where they are declared, so the rest of the
code asks "does this database do X?" and never "is this PostgreSQL?".
"""

from __future__ import annotations

import datetime as dt
import enum
import getpass
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from backout import __version__
from backout.dialects import params as sql_params
from backout.model.effects import Action, ObjectKind, ScriptEffects
from backout.model.errors import BackupError, DatabaseError, UsageError
from backout.model.urls import DatabaseURL

if TYPE_CHECKING:
    from backout.dialects.ddl_base import Draft, DraftStep, LiveNames, Rename
    from backout.dialects.fill import TableRows
    from backout.model.effects import Effect
    from backout.model.schema import SchemaSnapshot, TableInfo, TableStats
    from backout.model.script import Statement

Row = tuple[Any, ...]
#: the savepoint a check query runs under inside a transaction (see Session.query_undone)
CHECK_SAVEPOINT = "backout_check"
Params = Sequence[object] | None


@dataclass(frozen=True)
class Actor:
    """Who runs backout, from where: recorded in history and shown to other runs."""

    user: str
    host: str
    pid: int
    tool_version: str = __version__

    @classmethod
    def current(cls) -> Actor:
        """The current user, host and process."""
        try:
            user = os.environ.get("BACKOUT_ACTOR") or getpass.getuser()
        except (KeyError, OSError):
            user = f"uid-{os.getuid()}"
        return cls(user=user, host=socket.gethostname(), pid=os.getpid())

    def label(self) -> str:
        """``backout/0.1.0 alice@host pid 42`` (also PostgreSQL's application_name)."""
        return f"backout/{self.tool_version} {self.user}@{self.host} pid {self.pid}"


@dataclass(frozen=True)
class DmlScope:
    """The rows a DELETE/UPDATE changes, as SQL: ``SELECT count(*) FROM {from_where}``."""

    from_where: str
    #: how the changed table is named inside ``from_where`` (its alias, or its name)
    target: str
    #: with joins (USING/FROM) a row can match several times: count DISTINCT this
    distinct_key: str | None = None

    def count_sql(self) -> str:
        """A query counting the rows the statement changes."""
        what = f"DISTINCT {self.distinct_key}" if self.distinct_key else "*"
        return f"SELECT count({what}) FROM {self.from_where}"


@dataclass(frozen=True)
class ScriptShape:
    """How a dialect will run a script's statements around its transaction."""

    #: run before BEGIN (e.g. SQLite's ``PRAGMA foreign_keys=OFF``, which is a no-op inside one)
    before: tuple[Statement, ...]
    inside: tuple[Statement, ...]
    #: run after COMMIT (e.g. SQLite's ``PRAGMA foreign_keys=ON``)
    after: tuple[Statement, ...]


class TxControl(enum.Enum):
    """What a script's transaction-control statement does (:meth:`Dialect.transaction_control`)."""

    #: opens a block that the script itself commits (BEGIN, START TRANSACTION)
    BEGIN = "begin"
    #: closes the open block, keeping its work (COMMIT, END)
    COMMIT = "commit"
    #: closes the open block, discarding its work: cannot be honoured by a journal
    ROLLBACK = "rollback"
    #: SAVEPOINT, RELEASE, ROLLBACK TO: works only inside an open transaction
    NESTED = "nested"
    #: anything else (PREPARE TRANSACTION, BEGIN with options, COMMIT AND CHAIN, XA): refused
    OTHER = "other"


@dataclass(frozen=True)
class ControlStatement:
    """A script's own transaction-control statement, as its dialect reads it."""

    kind: TxControl
    #: the statement's verb for messages: ``BEGIN``, ``COMMIT``, ``ROLLBACK``, ``SAVEPOINT``
    verb: str
    #: for :attr:`TxControl.OTHER`: why backout cannot honour it
    reason: str = ""


@dataclass(frozen=True)
class CommitNeeded:
    """Two statements of one script that cannot share a transaction (``earlier`` must commit
    before ``later`` runs), e.g. a new enum value and its first use (PostgreSQL's 55P04)."""

    earlier: Statement
    later: Statement
    reason: str


class Session(ABC):
    """One open connection; explicit BEGIN/COMMIT/ROLLBACK; driver errors translated.

    Placeholders in SQL that backout itself writes are ``%s``; a session translates them to its
    driver's style. User SQL is passed through untouched when no parameters are given.
    """

    dialect: Dialect
    url: DatabaseURL
    #: backout's own tables seen to exist (see Dialect.bookkeeping_exists); None: always ask
    known_tables: set[tuple[str, str | None]] | None = None
    #: rows read by :meth:`reading_ahead` not asked for yet, by (SQL, parameters)
    _ahead: dict[tuple[str, tuple[object, ...] | None], list[Row]] | None = None

    @abstractmethod
    def query(self, sql: str, params: Params = None) -> list[Row]:
        """Run a query and return all rows."""

    def query_many(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        """Run read-only queries in order; each one's rows, as :meth:`query` gives them.

        A driver that can send them all before reading any result (PostgreSQL's pipeline
        mode) does, in one round trip. Default: one :meth:`query` after the other.
        """
        return [self.query(sql, params) for sql, params in queries]

    def can_read_ahead(self) -> bool:
        """Whether :meth:`reading_ahead` saves round trips now: the driver sends several
        queries before reading any result, and no transaction is open (a query failing
        would abort it). Default: no."""
        return False

    @contextmanager
    def reading_ahead(self, queries: Sequence[tuple[str, Params]]) -> Iterator[None]:
        """Within the block, :meth:`query` of one of ``queries`` (same SQL, same parameters)
        answers once with its rows read ahead, all in one round trip (:meth:`query_many`):
        a read that goes through several tables in turn (the history) pays one, not one per
        table. Outside a transaction each query reads what is committed when it runs, read
        ahead or not. Nothing changes when :meth:`can_read_ahead` says no."""
        if len(queries) < 2 or self._ahead is not None or not self.can_read_ahead():
            yield
            return
        try:
            answers = self.query_many(queries)
        except DatabaseError:
            # One of them fails: asked again in turn, it fails where its caller expects it.
            answers = []
        self._ahead = {
            (sql, _params_key(params)): rows
            for (sql, params), rows in zip(queries, answers, strict=False)
        }
        try:
            yield
        finally:
            self._ahead = None

    def read_ahead(self, sql: str, params: Params) -> list[Row] | None:
        """The rows :meth:`reading_ahead` read for this query (once), else None."""
        if not self._ahead:
            return None
        return self._ahead.pop((sql, _params_key(params)), None)

    @abstractmethod
    def execute(self, sql: str, params: Params = None) -> int:
        """Run a statement; returns the affected row count (-1 when unknown)."""

    @abstractmethod
    def query_native(self, sql: str, params: Mapping[str, object]) -> list[Row]:
        """Run a query already in the driver's named-parameter style (see Dialect.bind)."""

    @abstractmethod
    def query_table(
        self, sql: str, params: Mapping[str, object], limit: int
    ) -> tuple[list[str], list[Row]]:
        """Column names and at most ``limit`` rows of a query in the driver's named style."""

    @abstractmethod
    def execute_native(self, sql: str, params: Mapping[str, object]) -> int:
        """Run a statement already in the driver's named-parameter style (see Dialect.bind)."""

    @abstractmethod
    def begin(self) -> None:
        """Start a transaction."""

    def begin_read(self, *, lock_timeout: float | None = None) -> None:
        """Start a transaction that only reads (planning, counting, checks), rolled back after.

        It takes no write lock, so it neither waits for nor blocks the application's writers,
        and where the database bounds lock waits it waits at most ``lock_timeout`` seconds
        for a table lock (a query that cannot get one fails instead of queueing behind it).
        Default: :meth:`begin`.
        """
        self.begin()

    def begin_check(self, *, lock_timeout: float | None = None) -> None:
        """Start the transaction a check query runs in alone, rolled back after it.

        Read-only where the database has such a mode, so a write the check attempts fails
        instead of waiting for the rollback. Default: :meth:`begin_read`.
        """
        self.begin_read(lock_timeout=lock_timeout)

    def query_undone(
        self, sql: str, params: Mapping[str, object], *, lock_timeout: float | None = None
    ) -> list[Row]:
        """Run a check query (``require``/``verify``/``preview``) so that any write it makes
        is undone, whatever happens; ``sql`` and ``params`` in the driver's named style.

        Inside a transaction the query runs under a savepoint rolled back once its rows are
        read (the surrounding work stays); alone, in its own (read-only where possible)
        transaction rolled back after. A check is somebody's SQL, and a function it calls
        may write: nothing it does is ever committed with a rollback.
        """
        if self.in_transaction:
            self.execute(f"SAVEPOINT {CHECK_SAVEPOINT}")
            try:
                return self.query_native(sql, params)
            finally:
                # Also after an error: PostgreSQL's aborted transaction is usable again.
                self.execute(f"ROLLBACK TO SAVEPOINT {CHECK_SAVEPOINT}")
                self.execute(f"RELEASE SAVEPOINT {CHECK_SAVEPOINT}")
        self.begin_check(lock_timeout=lock_timeout)
        try:
            return self.query_native(sql, params)
        finally:
            self.rollback()

    @abstractmethod
    def commit(self) -> None:
        """Commit the current transaction."""

    @abstractmethod
    def rollback(self) -> None:
        """Roll the current transaction back (no error when there is none)."""

    @property
    @abstractmethod
    def in_transaction(self) -> bool:
        """True between begin() and commit()/rollback()."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection (rolling back anything uncommitted)."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _params_key(params: Params) -> tuple[object, ...] | None:
    return None if params is None else tuple(params)


@dataclass(frozen=True)
class HostLock:
    """Another tool's migration lock, taken with backout's run lock so that tool and backout
    never migrate the same database at once (Prisma Migrate's, golang-migrate's, Flyway's)."""

    #: PostgreSQL: the advisory lock key; MySQL/MariaDB: the ``GET_LOCK`` name
    key: int | str
    #: the tool, as messages name it ("Prisma Migrate", "golang-migrate", "Flyway")
    owner: str


class RunLock(ABC):
    """The run lock: at most one backout run (or Prisma migrate) changes a database at a time."""

    description: str = ""

    @abstractmethod
    def release(self) -> None:
        """Release the lock (idempotent)."""

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class OrphanRows:
    """Rows of ``table`` whose ``columns`` match no row of ``referenced_table``."""

    #: key of the referencing table
    table: str
    columns: tuple[str, ...]
    #: key of the referenced table
    referenced_table: str
    referenced_columns: tuple[str, ...]
    #: the foreign key's name (None: anonymous, or no constraint at all)
    constraint: str | None
    count: int
    #: a few referencing values, ``"registryItemId"='abc'``
    samples: tuple[str, ...] = ()


# --- backups ------------------------------------------------------------------------------------
#
# What a dialect provides for backups: dump, verify, and restore (into a new database or over the
# current one). :mod:`backout.backup` owns the catalog, file names, permissions, checksums
# and the checks that decide whether a restore succeeded; a :class:`BackupEngine` only moves bytes
# between a database and a backup file, with the database's own tools (``pg_dump``/``pg_restore``,
# the ``sqlite3`` backup API). The interface lives here, next to :class:`Dialect`, because each
# names the other (``Dialect.backup_engine``, the engine's sessions).
#
# Vocabulary shared with :mod:`backout.backup`:
#
# - tables are named by their :class:`~backout.model.schema.SchemaSnapshot` key
#   (``public.Voucher`` on PostgreSQL, ``Voucher`` on SQLite);
# - the **ledger tables** (``_prisma_migrations``, backout's ``migrations``) are not part of any
#   snapshot, but their data is in every backup, so that the applied state always matches the
#   restored schema;
# - backout's event log and ``schema_version`` tables are never dumped and never restored: the
#   audit trail survives restores untouched.

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


class KeptCopies(ABC):
    """Schema-only copies a server keeps between runs, found by a key (``plan``'s simulation:
    see :mod:`backout.analysis.simulate`). Named and swept as scratch databases are
    (:mod:`backout.dialects.scratch_names`); a copy is handed to one run at a time."""

    @abstractmethod
    def claim(self, key: str) -> DatabaseURL | None:
        """A kept copy labelled ``key`` that no one else uses, now this process's (None:
        there is none)."""

    @abstractmethod
    def create(self) -> DatabaseURL:
        """A new schema-only copy of the source database, this process's, not yet labelled
        (abandoned copies are swept first, as for any scratch database)."""

    @abstractmethod
    def keep(self, copy: DatabaseURL, key: str) -> None:
        """Label ``copy`` with ``key``, so a later run may :meth:`claim` it."""

    @abstractmethod
    def discard(self, copy: DatabaseURL) -> None:
        """Drop ``copy`` (it is not what its label says, or it could not be made)."""


class KeptStates(ABC):
    """Whole database states (schema and rows) a server keeps between runs, found by a key,
    each copied in one server-side operation into a new scratch database (``generate``'s saved
    replays: see :mod:`backout.generate.replay_cache`). Named and swept as scratch databases
    are (:mod:`backout.dialects.scratch_names`); a kept state itself is never written to."""

    @abstractmethod
    def find(self, keys: Collection[str]) -> dict[str, str]:
        """The fingerprints recorded with the kept states of those ``keys`` that have one."""

    @abstractmethod
    def copy(self, key: str) -> AbstractContextManager[DatabaseURL]:
        """A new scratch database holding the kept state ``key``, dropped on exit (also on
        Ctrl-C). DatabaseError when it cannot be made (gone meanwhile)."""

    @abstractmethod
    def keep(self, scratch: DatabaseURL, key: str, fingerprint: str) -> None:
        """Keep the state of the scratch database ``scratch`` (no session may be connected to
        it) under ``key``, with the schema ``fingerprint`` it must show when copied."""

    @abstractmethod
    def discard(self, key: str) -> None:
        """Drop the kept states of ``key`` (one did not copy faithfully)."""


class Dialect(ABC):
    """A database backend. Subclasses fill in the documented capability flags."""

    #: short name used in URLs' dialect field: "postgresql", "sqlite", "mysql"
    name: ClassVar[str]
    #: human name
    display_name: ClassVar[str]
    #: third-party packages whose release decides what :meth:`split` and :meth:`check_write`
    #: accept: a cached verdict on a script (backout.run.verdicts) is keyed by their files
    parser_packages: ClassVar[tuple[str, ...]] = ()
    #: the server's port when a URL gives none (None: no server, SQLite)
    default_port: ClassVar[int | None] = None
    #: the schema a URL without ``?schema=`` works in (None: the dialect has no schemas)
    default_schema: ClassVar[str | None] = None
    #: backout's tables go in their own schema (else they share the database, prefixed)
    has_schemas: ClassVar[bool]
    #: SQL type for timestamps in backout's tables
    timestamp_type: ClassVar[str]
    #: schema of backout's own tables (configurable): never part of a snapshot
    history_schema: str = "backout"
    #: the layout's host-tool history table (dbmate's, golang-migrate's ``schema_migrations``;
    #: ``table`` or ``schema.table``), set with the project: kept like a ledger, never part of
    #: a snapshot or of the user's tables, its rows in every backup (None: none)
    host_table: str | None = None
    #: column definition for an auto-incrementing integer primary key
    serial_primary_key: ClassVar[str]
    #: appended to ``CREATE TABLE`` of backout's own tables (MySQL: engine and character set)
    table_options: ClassVar[str] = ""
    #: ``CREATE TABLE _prisma_migrations`` exactly as Prisma's schema engine writes it, where it
    #: differs from the PostgreSQL/SQLite definitions in :mod:`backout.run.history` (None: those)
    prisma_ledger_ddl: ClassVar[str | None] = None
    #: ``CREATE TABLE`` of dbmate's ``schema_migrations`` exactly as dbmate 2.x creates it on
    #: this database (``{table}``: the quoted, possibly schema-qualified name)
    dbmate_table_ddl: ClassVar[tuple[str, ...]] = ()
    #: ``CREATE TABLE`` (and index) of golang-migrate's ``schema_migrations`` exactly as its
    #: driver for this database creates it (``ensureVersionTable``; ``{table}`` as above)
    golang_migrate_table_ddl: ClassVar[tuple[str, ...]] = ()
    #: ``flyway_schema_history`` as Flyway creates it on this database (its
    #: ``getRawCreateScript``), one statement each; placeholders: ``{table}`` the qualified
    #: table, ``{bare}`` the quoted bare name, ``{pk}``/``{idx}`` the quoted constraint and
    #: index names, ``{qidx}`` the index name qualified like the table. Empty: not supported
    flyway_history_ddl: ClassVar[tuple[str, ...]] = ()
    #: SQL expression for Flyway's ``installed_by`` (its ``doGetCurrentUser``)
    flyway_installed_by: ClassVar[str] = "''"
    #: Flyway qualifies its table with this schema when none is configured (SQLite's
    #: ``main``); None: the session's current schema/database, unqualified
    flyway_default_schema: ClassVar[str | None] = None

    @abstractmethod
    def connect(
        self,
        url: DatabaseURL,
        *,
        actor: Actor,
        connect_timeout: float = 10.0,
        create: bool = True,
    ) -> Session:
        """Open a session; DatabaseUnavailable (masked URL) when it cannot.

        ``create=False``: a database file that does not exist yet is not created; the session
        reads as an empty database (for read-only commands and dry runs).
        """

    @abstractmethod
    def split(
        self, text: str, display: str, *, first_line: int = 1, params: Collection[str] = ()
    ) -> list[Statement]:
        """Split a script into statements with their lines; syntax errors raise ProjectError.

        ``params`` are declared parameter names: their ``:name`` placeholders are valid SQL.
        """

    @abstractmethod
    def analyze(self, statements: Sequence[Statement]) -> ScriptEffects:
        """What the statements (as :meth:`split` returns them) do: their effects, and the
        statements whose effect cannot be known statically (see :mod:`backout.model.effects`).
        Pure: no database is touched."""

    @abstractmethod
    def fill_tables(self, url: DatabaseURL, tables: Sequence[TableRows]) -> dict[str, int]:
        """Insert generated rows into the freshly migrated, empty tables of the database at
        ``url``, in one transaction, the dialect's fastest way; rows inserted per table.
        UsageError when a table already has rows (see :mod:`backout.dialects.fill`)."""

    #: squawk (``lint``'s optional PostgreSQL linter) can parse this dialect's scripts
    squawk_parses: ClassVar[bool] = False

    #: PostgreSQL-style $tag$ quoting exists (placeholders inside are not parameters)
    dollar_quotes: ClassVar[bool] = False
    #: ``[name]`` quotes an identifier (SQLite, for compatibility with SQL Server and Access)
    bracket_quotes: ClassVar[bool] = False

    def lock_wait(self, lock_timeout: float) -> float:
        """How long a statement really waits for a lock, given ``lock_timeout`` seconds."""
        return lock_timeout

    def param_spans(self, sql: str, names: Collection[str]) -> list[tuple[int, int, str]]:
        """Where the ``:name`` placeholders of declared parameters are in ``sql``."""
        return sql_params.param_spans(
            sql, names, dollar_quotes=self.dollar_quotes, brackets=self.bracket_quotes
        )

    def adapt(self, value: object) -> object:
        """A converted parameter value as this driver binds it (default: unchanged)."""
        return value

    @abstractmethod
    def bind(self, sql: str, values: Mapping[str, object]) -> tuple[str, dict[str, object]]:
        """``:name`` placeholders → the driver's named style, with adapted values.

        The result runs with ``Session.query_native``/``execute_native``/``query_table``. When
        ``sql`` holds no declared placeholder the parameters are empty and the SQL is returned
        verbatim (no driver escaping such as ``%%``): the native methods run SQL with empty
        parameters as is, so a query is correct with and without parameters.
        """

    @abstractmethod
    def check_write(self, sql: str, params: Collection[str] = ()) -> str | None:
        """Why a check query (``require``/``verify``/``preview``) visibly does more than read,
        or None when it is one plain query; ``params`` are the script's declared parameters.

        Read from the text alone, before anything runs: more than one statement, DML or DDL
        (also inside ``WITH``), ``SELECT … INTO``, ``FOR UPDATE``, calls to functions with
        effects a rollback does not undo. What the text does not show is undone at run time
        (:meth:`Session.query_undone`).
        """

    @abstractmethod
    def transaction_conflict(self, statement: Statement) -> str | None:
        """Why ``statement`` cannot run inside a transaction block, or None when it can.

        Transaction control (BEGIN/COMMIT…) is not a conflict: see :meth:`transaction_control`.
        A script holding such a statement runs journaled, each statement committing on its own.
        """

    def transaction_control(self, statement: Statement) -> ControlStatement | None:
        """``statement`` read as transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT…), or
        None when it is not one. A script's own BEGIN/COMMIT are the boundaries of the blocks
        it wants atomic; :func:`backout.run.transactions.lay_out` decides how to honour them.
        Default: no statement is transaction control."""
        return None

    def commit_needed(self, statements: Sequence[Statement]) -> list[CommitNeeded]:
        """Pairs of statements that fail in one transaction although each is transactional
        (PostgreSQL: a new enum value used before its ``ADD VALUE`` commits, 55P04). A script
        holding one runs journaled, its statements (or its own blocks) each committing.
        Default: none."""
        return []

    def commits_implicitly(self, statement: Statement) -> bool:
        """True when the database commits on its own around ``statement`` (MySQL's DDL).

        A script holding such a statement cannot run in one transaction: it runs statement by
        statement, each recorded in the journal as it completes (see :mod:`backout.run.journal`).
        Default: never (transactional DDL).
        """
        return False

    def shape(self, statements: Sequence[Statement]) -> ScriptShape:
        """Which statements run before, inside and after the transaction (default: all inside)."""
        return ScriptShape(before=(), inside=tuple(statements), after=())

    def inverse_sql(self, effect: Effect, snapshot: SchemaSnapshot) -> list[str] | None:
        """SQL that undoes one effect of a statement that took effect, or None when the
        statement alone does not say how (see :func:`backout.run.journal.inverse_of`).

        Default (PostgreSQL/SQLite syntax): a created table, index, column or view is dropped;
        a renamed table or column is renamed back. Constraints, triggers and routines differ
        too much between databases: None.
        """
        target = effect.target
        table = effect.table
        if effect.action is Action.CREATE and "OR REPLACE" not in effect.detail:
            if target.kind is ObjectKind.TABLE:
                return [f"DROP TABLE {self._ref_sql(target.schema, target.name)}"]
            if target.kind is ObjectKind.INDEX:
                return [f"DROP INDEX {self._ref_sql(target.schema, target.name)}"]
            if target.kind is ObjectKind.VIEW:
                return [f"DROP VIEW {self._ref_sql(target.schema, target.name)}"]
            if target.kind is ObjectKind.COLUMN and table is not None:
                return [
                    f"ALTER TABLE {self._ref_sql(table.schema, table.name)} "
                    f"DROP COLUMN {self.quote(target.name)}"
                ]
        if effect.action is Action.RENAME and effect.renamed_to is not None:
            if effect.destructive:
                return None  # a rename that also changed the definition
            new = effect.renamed_to
            if target.kind is ObjectKind.TABLE:
                return [
                    f"ALTER TABLE {self._ref_sql(new.schema, new.name)} "
                    f"RENAME TO {self.quote(target.name)}"
                ]
            if target.kind is ObjectKind.COLUMN and table is not None:
                return [
                    f"ALTER TABLE {self._ref_sql(table.schema, table.name)} RENAME COLUMN "
                    f"{self.quote(new.name)} TO {self.quote(target.name)}"
                ]
        return None

    def _ref_sql(self, schema: str | None, name: str) -> str:
        return f"{self.quote(schema)}.{self.quote(name)}" if schema else self.quote(name)

    @abstractmethod
    def acquire_run_lock(
        self, session: Session, actor: Actor, *, host_locks: Sequence[HostLock] = ()
    ) -> RunLock:
        """Take the run lock without waiting; LockError naming the holder when it is taken.

        ``host_locks`` (from :meth:`host_locks`) are taken too, after backout's own, so the
        host tool (``prisma migrate deploy``, ``migrate up``, ``flyway migrate``) and backout
        never run at the same time.
        """

    def host_locks(
        self, tool: str, url: DatabaseURL, *, schema: str | None, table: str
    ) -> list[HostLock]:
        """The lock ``tool`` ("prisma", "golang-migrate", "flyway", "dbmate") takes on this
        database when it migrates, with its history table ``schema.table`` (``schema`` None:
        the tool's default). Default: none (SQLite: these tools take no database lock)."""
        return []

    def check_run_lock(
        self, session: Session, actor: Actor, *, host_locks: Sequence[HostLock] = ()
    ) -> None:
        """LockError naming the holder when another run holds the run lock now; keeps nothing.

        A rollback asks before it plans: planning reads tables a running rollback may hold
        locked, and a second run must say at once who holds the lock instead of queueing.
        Default: take the lock and release it straight away.
        """
        self.acquire_run_lock(session, actor, host_locks=host_locks).release()

    @abstractmethod
    def timeout_statements(self, *, lock_timeout: float, statement_timeout: float) -> list[str]:
        """Statements that bound lock waits and statement time for the current transaction."""

    def session_timeout_statements(
        self, *, lock_timeout: float, statement_timeout: float
    ) -> tuple[list[str], list[str]]:
        """(set, reset) statements bounding waits for statements run outside a transaction."""
        return [], []

    #: ``statement_timeout`` is enforced by the database
    supports_statement_timeout: ClassVar[bool] = False

    def is_statement_timeout(self, sqlstate: str | None, message: str) -> bool:
        """True when an error means the statement ran longer than ``statement_timeout``."""
        return False

    def hook_environment(self, url: DatabaseURL) -> dict[str, str]:
        """What a hook is told about the database: ``DATABASE_URL`` in a form the database's
        own tools accept, ``BACKOUT_SCHEMA`` when the URL names a schema (Prisma's
        ``?schema=``), and ``BACKOUT_PRISMA_URL``, the URL as configured, for hooks that run
        Prisma. Default: the URL as configured (no tool of this database reads URLs with
        parameters it would reject)."""
        env = {"DATABASE_URL": url.raw, "BACKOUT_PRISMA_URL": url.raw}
        if url.schema:
            env["BACKOUT_SCHEMA"] = url.schema
        return env

    def run_lock_description(self, *, host_locks: Sequence[HostLock] = ()) -> str:
        """How the run lock is taken, for plans and dry runs."""
        return f"{self.display_name} run lock"

    def before_begin_statements(self, *, lock_timeout: float) -> list[str]:
        """Session settings that must be in place before BEGIN (default: none)."""
        return []

    @abstractmethod
    def is_lock_timeout(self, sqlstate: str | None, message: str) -> bool:
        """True when an error means "could not get a lock in time" (worth a retry)."""

    def is_database_failure(self, sqlstate: str | None, message: str) -> bool:
        """True when an error means the database itself failed (the connection was lost, the
        disk is full, an I/O error, out of resources), not that it refused a statement.

        A restore tells them apart: a failure is a database error (exit 4), a statement the
        database refuses means the backup does not fit the database (exit 2). Default: an
        error without a code (the driver lost the connection).
        """
        return sqlstate is None

    def left_by_failure(
        self, session: Session, statement: Statement, before: object = None
    ) -> list[str]:
        """SQL removing what ``statement``, which ran outside a transaction and failed, left
        behind (PostgreSQL: the invalid index of a failed ``CREATE INDEX CONCURRENTLY``), so
        that running it again (``rollback --resume``) can work. ``before``: what
        :meth:`failure_marker` saw before the statement ran; what stood there then is not the
        statement's to remove. Default: nothing."""
        return []

    def failure_marker(self, session: Session, statement: Statement) -> object:
        """What stands, before ``statement`` runs, where it could leave something behind on
        failure (see :meth:`left_by_failure`); None when nothing does. Default: None."""
        return None

    def after_script(self, session: Session) -> None:  # noqa: B027 - optional hook
        """Restore session settings a script may have changed outside its transaction."""

    def integrity_check(self, session: Session) -> list[str]:
        """Problems a dialect can detect only at the end of a transaction (default: none)."""
        return []

    @abstractmethod
    def snapshot(self, session: Session) -> SchemaSnapshot:
        """The schema as the catalog describes it (backout's and Prisma's tables excluded)."""

    @abstractmethod
    def table_stats(self, session: Session, snapshot: SchemaSnapshot) -> dict[str, TableStats]:
        """Exact row count and content checksum per table of ``snapshot``."""

    # --- impact analysis (counts are exact unless an estimate is cheap and the table big) --

    @abstractmethod
    def dml_scope(self, statement: Statement, params: Collection[str] = ()) -> DmlScope | None:
        """The rows a DELETE/UPDATE statement changes, as SQL (None: not computable).

        Declared parameters stay ``:name`` placeholders, to be bound with :meth:`bind`.
        """

    def estimate_rows(self, session: Session, table: TableInfo) -> int | None:
        """A cheap row-count estimate from statistics (None: none; count exactly)."""
        return None

    def per_row_scans(self, session: Session, sql: str, params: Mapping[str, object]) -> list[str]:
        """Where this database's own plan for ``sql`` (EXPLAIN: nothing runs) repeats a subquery
        once per row that visits many rows each time (see backout.dialects.explain); one line
        each. ``sql`` and ``params`` are in the driver's style (see :meth:`bind`). Default:
        none (no plan to read)."""
        return []

    def estimate_non_null(
        self, session: Session, table: TableInfo, column: str, rows: int
    ) -> int | None:
        """A cheap estimate of a column's non-null values (None: none; count exactly)."""
        return None

    def count_sql(self, query: str, params: Collection[str]) -> str:
        """A query counting the rows of ``query`` (its ``:name`` placeholders left as they are)."""
        return f"SELECT count(*) FROM ({query}\n) AS backout_count"

    def explain_rows(
        self, session: Session, from_where: str, params: Mapping[str, object]
    ) -> int | None:
        """The planner's estimate of rows matching ``FROM {from_where}`` (None: none).

        ``from_where`` and ``params`` come from :meth:`bind`: the estimate uses the values.
        """
        return None

    #: :meth:`save_state`/:meth:`load_state` work (``generate`` may cache replayed states)
    caches_states: ClassVar[bool] = False

    def save_state(self, url: DatabaseURL, actor: Actor, path: Path) -> None:
        """Write the whole state of the (scratch) database at ``url`` to ``path``."""
        raise NotImplementedError(f"{self.name}: no saved states")

    def load_state(self, url: DatabaseURL, actor: Actor, path: Path) -> None:
        """Restore a :meth:`save_state` file into the empty (scratch) database at ``url``."""
        raise NotImplementedError(f"{self.name}: no saved states")

    def state_origin(self, url: DatabaseURL, actor: Actor) -> str:
        """What else than the migrations shapes a saved state at ``url`` (the server's
        version): a state saved elsewhere is not loaded. Default: nothing."""
        return ""

    def empty_tables(self, session: Session, tables: Sequence[TableInfo]) -> None:
        """Delete every row of ``tables`` (a rehearsal copy only), and of the rows referencing
        them. Default: ``DELETE FROM`` each, children first as given by the caller."""
        for table in tables:
            session.execute(f"DELETE FROM {self.table_sql(table)}")

    def table_sql(self, table: TableInfo) -> str:
        """A table of a snapshot as a quoted, qualified SQL name."""
        if table.schema:
            return f"{self.quote(table.schema)}.{self.quote(table.name)}"
        return self.quote(table.name)

    # --- scratch copies (rehearsals, simulations, replays) ---------------------------------

    @abstractmethod
    def scratch(
        self,
        url: DatabaseURL,
        shadow: DatabaseURL | None,
        actor: Actor,
        *,
        prefix: str = "backout_scratch_",
    ) -> AbstractContextManager[DatabaseURL]:
        """A new, empty, throwaway database, dropped on exit (also on Ctrl-C).

        PostgreSQL creates it on ``shadow`` (or, without one, on ``url``'s server). On a
        server, it is named by :mod:`backout.dialects.scratch_names` (``prefix``, owner, time)
        and the scratch databases killed runs left there are dropped first.
        """

    @abstractmethod
    def copy_database(
        self, source: DatabaseURL, target: DatabaseURL, actor: Actor, *, data: bool
    ) -> None:
        """Copy ``source``'s schema (and its data when ``data``) into the empty ``target``."""

    def schema_key(self, session: Session, snapshot: SchemaSnapshot) -> str:
        """A digest of everything in ``session``'s schema a simulation depends on: equal keys
        mean a kept copy may stand in for the live schema. ``snapshot``: the schema just read
        on ``session``. Default: the snapshot's fingerprint; a dialect adds what its snapshot
        leaves out."""
        return snapshot.fingerprint()

    def kept_copies(
        self,
        url: DatabaseURL,
        shadow: DatabaseURL | None,
        actor: Actor,
        *,
        prefix: str = "backout_scratch_",
        admin: Session | None = None,
    ) -> KeptCopies | None:
        """Schema-only copies of ``url`` kept between runs on ``shadow`` (else ``url``'s
        server), or None where a dialect keeps none (default): every simulation then makes a
        new copy with :meth:`scratch`.

        ``admin``: an open session on ``url``, between transactions, that the copies' own
        queries (finding, claiming, labelling one) may use instead of a connection of their
        own when they live on ``url``'s server (no ``shadow``); it is not closed."""
        return None

    def kept_states(
        self,
        url: DatabaseURL,
        shadow: DatabaseURL | None,
        actor: Actor,
        *,
        prefix: str = "backout_scratch_",
        owner: str = "",
    ) -> KeptStates | None:
        """Whole states kept between runs on ``shadow`` (else ``url``'s server), or None where
        a dialect keeps none (default). ``owner``: who keeps them (a project), so that each
        keeps only its newest few."""
        return None

    # --- checks and rehearsals ----------------------------------------------------------------

    @abstractmethod
    def find_orphans(self, session: Session, snapshot: SchemaSnapshot) -> list[OrphanRows]:
        """Rows whose foreign key points nowhere, for the keys the database does not guarantee
        (:mod:`backout.dialects.orphans` counts them)."""

    def schema_dump(
        self, url: DatabaseURL, actor: Actor, *, ignore_column_order: bool = False
    ) -> str | None:
        """The database's own text dump of its schema, normalised for comparison.

        A second oracle besides :meth:`snapshot` (PostgreSQL: ``pg_dump --schema-only``).
        None when the database has none worth comparing.
        """
        return None

    def tune_scratch(self, url: DatabaseURL, actor: Actor) -> None:  # noqa: B027 - optional
        """Make a throwaway database cheaper to write to (durability is not needed there)."""

    def typed_placeholder(self, type_: str) -> str:
        """A ``%s`` placeholder for a value of column type ``type_`` (PostgreSQL casts it)."""
        return "%s"

    def draft_rollback(
        self,
        before: SchemaSnapshot,
        after: SchemaSnapshot,
        *,
        definitions: Mapping[str, str] | None = None,
        live: LiveNames | None = None,
    ) -> Draft:
        """SQL that turns a database whose schema is ``after`` back into ``before``.

        ``live``: names renamed objects have when the rollback starts (for its checks).

        Renames are undone first, separately (:meth:`rename_back`). ``definitions``: the
        stored ``CREATE`` text of objects in ``before``, where the catalog snapshot cannot
        rebuild them exactly (see :meth:`stored_definitions`).
        """
        raise UsageError(f"`generate` does not support {self.display_name} yet")

    def rename_back(self, rename: Rename) -> str | None:
        """The statement undoing a rename of the forward migration (None: not possible, the
        schema diff recreates the object instead)."""
        return None

    def undo_inserts(
        self, statements: Sequence[Statement], before: SchemaSnapshot
    ) -> tuple[list[DraftStep], set[int]]:
        """Statements deleting exactly the rows the forward ``statements`` inserted, where the
        SQL alone says which (literal rows with their primary key), and the lines of the
        statements they undo. Default: none is undone this way (a person restores the data)."""
        return [], set()

    def stored_definitions(self, session: Session) -> dict[str, str]:
        """The ``CREATE`` text the database keeps for its objects, by ``"kind name"``.

        Only needed where the catalog cannot rebuild a definition exactly (SQLite); default: none.
        """
        return {}

    def database_exists(self, url: DatabaseURL) -> bool:
        """False when the database is a file that does not exist yet (default: assume it does)."""
        return True

    def references_from_outside(self, session: Session) -> list[tuple[str, str, str]]:
        """Foreign keys from tables outside the project's scope (PostgreSQL's ``?schema=``)
        into it whose ``ON DELETE`` changes the outside rows: ``(outside table, table in the
        scope, action)``. Default: a database is one scope, so none."""
        return []

    @abstractmethod
    def user_tables(self, session: Session, history_schema: str) -> list[str]:
        """Tables of the application: all but system, backout's and ``_prisma_migrations``."""

    @abstractmethod
    def quote(self, identifier: str) -> str:
        """Quote an identifier."""

    @abstractmethod
    def history_table(self, logical: str, schema: str) -> str:
        """Qualified, quoted name of one of backout's tables (``migrations``, ``events``...)."""

    @abstractmethod
    def table_exists(self, session: Session, table: str, schema: str | None) -> bool:
        """True when the table exists (``schema`` None: the session's default schema)."""

    def is_host_table(self, schema: str | None, name: str) -> bool:
        """Whether ``schema.name`` is the host tool's history table (:attr:`host_table`); an
        unqualified host table is matched in any schema, as ``_prisma_migrations`` is."""
        configured = self.host_table
        if not configured:
            return False
        if "." in configured:
            own_schema, own_name = configured.split(".", 1)
            return name == own_name and (schema is None or schema == own_schema)
        return name == configured

    def bookkeeping_exists(self, session: Session, table: str, schema: str | None) -> bool:
        """:meth:`table_exists` for backout's (and Prisma's) own tables, remembered once seen
        on a session that keeps :attr:`Session.known_tables` (a private scratch database,
        where nothing drops them): a walk asks dozens of times per migration."""
        known = session.known_tables
        if known is not None and (table, schema) in known:
            return True
        found = self.table_exists(session, table, schema)
        if found and known is not None:
            known.add((table, schema))
        return found

    def tables_exist(
        self, session: Session, tables: Sequence[tuple[str, str | None]]
    ) -> list[bool]:
        """:meth:`table_exists` of each (table, schema), in order. Default: one question each;
        a dialect asks them all at once where that saves round trips."""
        return [self.table_exists(session, table, schema) for table, schema in tables]

    @contextmanager
    def bookkeeping_known(
        self, session: Session, tables: Sequence[tuple[str, str | None]]
    ) -> Iterator[None]:
        """While one read goes through several of backout's tables (``status``'s history):
        which of ``tables`` exist is asked once (:meth:`tables_exist`), and those found are
        remembered as :attr:`Session.known_tables` remembers them, until the block ends. It
        changes what the read can see no more than asking before each table does (neither
        is atomic with the read that follows). A session that keeps known tables already (a
        private scratch database) is left as it is."""
        if session.known_tables is not None:
            yield
            return
        found = self.tables_exist(session, tables)
        session.known_tables = {ref for ref, ok in zip(tables, found, strict=True) if ok}
        try:
            yield
        finally:
            session.known_tables = None

    def backup_engine(self) -> BackupEngine:
        """The engine that dumps, verifies and restores this kind of database."""
        raise BackupError(f"backups of {self.display_name} databases are not supported yet")

    def ensure_url_schema(self, url: DatabaseURL) -> list[str]:
        """Statements creating the schema a URL names (Prisma's ``?schema=``), if any."""
        return []

    @abstractmethod
    def ensure_history_schema(self, schema: str) -> list[str]:
        """Statements that create the namespace for backout's tables (may be empty)."""

    def to_db_time(self, value: dt.datetime) -> object:
        """A UTC datetime in the form this database stores in backout's tables."""
        return value

    def to_prisma_time(self, value: dt.datetime) -> object:
        """A UTC datetime as Prisma's schema engine stores it in ``_prisma_migrations``."""
        return value

    def from_db_time(self, value: object) -> dt.datetime | None:
        """Read a timestamp from backout's or Prisma's tables as an aware UTC datetime."""
        return parse_db_time(value)


def parse_db_time(value: object) -> dt.datetime | None:
    """Timestamps come back as datetimes, ISO text, or Prisma's SQLite epoch milliseconds."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value / 1000.0, tz=dt.UTC)
    text = str(value).strip()
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000.0, tz=dt.UTC)
    stamp = dt.datetime.fromisoformat(text.replace(" ", "T", 1).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    """Now, as an aware UTC datetime with millisecond precision (what Prisma stores)."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
