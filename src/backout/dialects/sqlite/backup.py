"""SQLite backups: a backup is itself a SQLite database file.

- **full**: the ``sqlite3`` backup API copies every page in one step, inside a read transaction
  that also counts the rows and reads the schema, so all three agree. backout's event log and
  ``schema_version`` are then dropped from the copy (with ``secure_delete``, so their rows do
  not linger in free pages).
- **scoped** (and **schema**): a new file with every ``sqlite_master`` object (tables, then the
  rows of the chosen tables and of the migration ledger, then indexes, views and triggers, so
  no trigger fires on the copy), written through an ``ATTACH`` inside one read transaction.

A restore over the current database ATTACHes the backup and works in one ``BEGIN IMMEDIATE``
transaction with foreign keys off (``PRAGMA foreign_keys`` is a no-op inside a transaction, so
it is switched around it), and runs ``PRAGMA foreign_key_check`` before COMMIT.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final
from urllib.parse import quote

from backout.dialects.base import (
    Actor,
    BackupEngine,
    Dialect,
    DumpResult,
    Progress,
    RestoreRequest,
    Session,
)
from backout.dialects.sqlite.catalog import read_sqlite_snapshot
from backout.model.errors import BackupError, DatabaseError, LockError
from backout.model.identifiers import quote_identifier
from backout.model.schema import SchemaSnapshot
from backout.model.urls import DatabaseURL

#: backout's audit tables and journal: never in a backup, never touched by a restore
NEVER_TABLES: Final = frozenset({"backout_events", "backout_schema_version", "backout_journal"})
#: migration ledgers: their rows are in every backup
LEDGER_TABLES: Final = ("_prisma_migrations", "backout_migrations")
_TARGET: Final = "backout_target"
_SOURCE: Final = "backout_restore"
_OBJECTS_SQL: Final = (
    "SELECT type, name, tbl_name, sql FROM {schema}.sqlite_master "
    "WHERE sql IS NOT NULL ORDER BY rowid"
)


@dataclass(frozen=True)
class _Object:
    """One ``sqlite_master`` row."""

    type: str
    name: str
    table: str
    sql: str

    @property
    def key(self) -> tuple[str, str]:
        """Type and case-folded name: SQLite names are case-insensitive."""
        return self.type, self.name.lower()


def _objects(conn: sqlite3.Connection, schema: str = "main") -> list[_Object]:
    """The schema objects backout backs up, in creation order."""
    rows = conn.execute(_OBJECTS_SQL.format(schema=quote_identifier(schema))).fetchall()
    result = []
    for kind, name, table, sql in rows:
        if str(name).lower().startswith("sqlite_") or str(table).lower() in NEVER_TABLES:
            continue
        result.append(_Object(str(kind), str(name), str(table), str(sql)))
    return result


def _connection(session: Session) -> sqlite3.Connection:
    conn = getattr(session, "conn", None)
    if not isinstance(conn, sqlite3.Connection):
        raise TypeError("a SQLite backup needs a SQLite session")
    return conn


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """Columns a row copy must name: all but generated (and hidden) ones."""
    rows = conn.execute(
        "SELECT name FROM pragma_table_xinfo(?, 'main') WHERE hidden = 0 ORDER BY cid", (table,)
    ).fetchall()
    return [str(r[0]) for r in rows]


def _copy_rows(conn: sqlite3.Connection, table: str, *, source: str, target: str) -> None:
    columns = ", ".join(quote_identifier(c) for c in _columns(conn, table))
    conn.execute(
        f"INSERT INTO {quote_identifier(target)}.{quote_identifier(table)} ({columns}) "
        f"SELECT {columns} FROM {quote_identifier(source)}.{quote_identifier(table)}"
    )


def _has_table(conn: sqlite3.Connection, schema: str, name: str) -> bool:
    rows = conn.execute(
        f"SELECT 1 FROM {quote_identifier(schema)}.sqlite_master "
        "WHERE type = 'table' AND lower(name) = ?",
        (name.lower(),),
    ).fetchall()
    return bool(rows)


def _copy_sequences(
    conn: sqlite3.Connection, tables: Sequence[str] | None, *, source: str, target: str
) -> None:
    """AUTOINCREMENT counters of ``tables`` (None: all) as the source has them."""
    if not _has_table(conn, target, "sqlite_sequence"):
        return
    where, params = "", tuple[str, ...]()
    if tables is not None:
        marks = ", ".join("?" for _ in tables)
        where, params = f" WHERE lower(name) IN ({marks})", tuple(t.lower() for t in tables)
    conn.execute(f"DELETE FROM {quote_identifier(target)}.sqlite_sequence{where}", params)
    if _has_table(conn, source, "sqlite_sequence"):
        conn.execute(
            f"INSERT INTO {quote_identifier(target)}.sqlite_sequence (name, seq) "
            f"SELECT name, seq FROM {quote_identifier(source)}.sqlite_sequence{where}",
            params,
        )


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)


class SqliteBackupEngine(BackupEngine):
    """Backups of SQLite databases with the ``sqlite3`` module (no external tool)."""

    file_suffix: ClassVar[str] = ".sqlite3"
    constraints_in_place: ClassVar[bool] = False

    def __init__(self, dialect: Dialect | None = None) -> None:
        #: the dialect whose host table (dbmate's, golang-migrate's) is kept like a ledger
        self.dialect = dialect

    def _exclude(self) -> Callable[[str, str], bool] | None:
        dialect = self.dialect
        return dialect.is_host_table if dialect is not None and dialect.host_table else None

    def _ledgers(self) -> tuple[str, ...]:
        """The ledger tables' names: backout's, Prisma's and the host tool's."""
        host = self.dialect.host_table if self.dialect is not None else None
        return (*LEDGER_TABLES, host) if host and "." not in host else LEDGER_TABLES

    def check_tools(self, session: Session) -> str:
        return f"sqlite3 backup API {sqlite3.sqlite_version}"

    def ledger_tables(self, session: Session, history_schema: str) -> list[str]:
        names = tuple(n.lower() for n in self._ledgers())
        rows = session.query(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' "
            f"AND lower(name) IN ({', '.join('%s' for _ in names)}) ORDER BY name",
            names,
        )
        return [str(r[0]) for r in rows]

    def row_counts(self, session: Session, tables: Sequence[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for table in tables:
            rows = session.query(f"SELECT count(*) FROM main.{quote_identifier(table)}")
            counts[table] = int(rows[0][0])
        return counts

    # --- dumping ---------------------------------------------------------------------------

    def dump(
        self,
        session: Session,
        path: Path,
        *,
        data_tables: Sequence[str] | None,
        history_schema: str,
        progress: Progress,
    ) -> DumpResult:
        conn = _connection(session)
        if conn.in_transaction:
            raise BackupError("cannot take a SQLite backup inside an open transaction")
        ledger = self.ledger_tables(session, history_schema)
        try:
            if data_tables is None:
                return self._dump_full(session, conn, path, ledger)
            objects = _objects(conn)
            virtual = [
                o.name
                for o in objects
                if o.type == "table" and o.name in data_tables and _is_virtual(o.sql)
            ]
            if virtual:
                raise BackupError(
                    f"a scoped backup cannot copy the rows of virtual table {virtual[0]}",
                    hint="take a full backup (--backup full)",
                )
            included = tuple(dict.fromkeys([*data_tables, *ledger]))
            target = sqlite3.connect(path, isolation_level=None)
            try:
                self._create(target, objects, kinds=("table",))
                target.execute(f"PRAGMA user_version = {_user_version(conn, 'main')}")
            finally:
                target.close()
            foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
            # Copied rows may reference rows the backup does not hold: no FK checks on it.
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("ATTACH DATABASE ? AS " + quote_identifier(_TARGET), (str(path),))
            try:
                conn.execute("BEGIN")
                if _objects(conn) != objects:
                    raise BackupError(
                        "the schema changed while the backup was being taken",
                        hint="run the command again",
                    )
                snapshot = read_sqlite_snapshot(session.query, exclude=self._exclude())
                counts = self.row_counts(session, included)
                progress(f"copying the rows of {len(included)} table(s)")
                for table in included:
                    _copy_rows(conn, table, source="main", target=_TARGET)
                _copy_sequences(conn, included, source="main", target=_TARGET)
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute("DETACH DATABASE " + quote_identifier(_TARGET))
                conn.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")
            target = sqlite3.connect(path, isolation_level=None)
            try:
                self._create(target, objects, kinds=("index", "view", "trigger"))
                target.execute("PRAGMA journal_mode = DELETE")
            finally:
                target.close()
        except sqlite3.Error as exc:
            raise BackupError(f"SQLite could not write the backup to {path}: {exc}") from exc
        return DumpResult(
            tables=included, row_counts=counts, snapshot=snapshot, tool=self.check_tools(session)
        )

    def _dump_full(
        self, session: Session, conn: sqlite3.Connection, path: Path, ledger: Sequence[str]
    ) -> DumpResult:
        conn.execute("BEGIN")
        try:
            # One read transaction: the schema, the counts and the copy see the same state.
            snapshot = read_sqlite_snapshot(session.query, exclude=self._exclude())
            included = tuple(dict.fromkeys([*snapshot.tables, *ledger]))
            counts = self.row_counts(session, included)
            target = sqlite3.connect(path, isolation_level=None)
            try:
                conn.backup(target)
                target.execute("PRAGMA secure_delete = ON")
                for name in sorted(NEVER_TABLES):
                    target.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")
                if _has_table(target, "main", "sqlite_sequence"):
                    target.execute(
                        "DELETE FROM sqlite_sequence WHERE lower(name) IN "
                        f"({', '.join('?' for _ in NEVER_TABLES)})",
                        tuple(sorted(NEVER_TABLES)),
                    )
                target.execute("PRAGMA journal_mode = DELETE")
            finally:
                target.close()
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")
        return DumpResult(
            tables=included, row_counts=counts, snapshot=snapshot, tool=self.check_tools(session)
        )

    @staticmethod
    def _create(
        conn: sqlite3.Connection, objects: Sequence[_Object], *, kinds: Sequence[str]
    ) -> None:
        """Create ``objects`` of ``kinds`` on ``conn`` in one transaction (a virtual table's
        shadow tables exist once it is created, so existing tables are skipped)."""
        conn.execute("BEGIN")
        try:
            for item in objects:
                if item.type not in kinds:
                    continue
                if item.type == "table" and _has_table(conn, "main", item.name):
                    continue
                conn.execute(item.sql)
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    # --- verifying -------------------------------------------------------------------------

    def verify(
        self,
        path: Path,
        *,
        snapshot: SchemaSnapshot,
        tables: Sequence[str],
        row_counts: Mapping[str, int],
    ) -> None:
        try:
            conn = _read_only(path)
        except sqlite3.Error as exc:
            raise BackupError(f"backup {path.name} cannot be opened: {exc}") from exc
        try:
            result = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if result != ["ok"]:
                raise BackupError(
                    f"backup {path.name} fails SQLite's integrity check: {'; '.join(result[:3])}"
                )

            def query(sql: str, params: Sequence[object] | None) -> list[tuple[object, ...]]:
                return list(conn.execute(sql.replace("%s", "?"), params or ()).fetchall())

            if (
                read_sqlite_snapshot(query, exclude=self._exclude()).fingerprint()
                != snapshot.fingerprint()
            ):
                raise BackupError(f"backup {path.name} does not hold the recorded schema")
            for table in tables:
                (count,) = conn.execute(
                    f"SELECT count(*) FROM main.{quote_identifier(table)}"
                ).fetchone()
                if count != row_counts.get(table):
                    raise BackupError(
                        f"backup {path.name} holds {count} rows of {table}, "
                        f"{row_counts.get(table)} were counted when it was taken"
                    )
        except sqlite3.Error as exc:
            raise BackupError(f"backup {path.name} cannot be read: {exc}") from exc
        finally:
            conn.close()

    # --- restoring -------------------------------------------------------------------------

    def restore_into(
        self,
        path: Path,
        *,
        target: DatabaseURL,
        actor: Actor,
        progress: Progress,
    ) -> None:
        if target.path is None:
            raise BackupError("--into needs a SQLite database file, not an in-memory database")
        if target.path.exists():
            raise BackupError(
                f"{target.path} already exists: --into needs a new file",
                hint="name a file that does not exist yet",
            )
        if not target.path.parent.is_dir():
            raise BackupError(f"cannot create {target.path}: its folder does not exist")
        try:
            handle = os.open(target.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(handle, "wb") as out, path.open("rb") as source:
                shutil.copyfileobj(source, out)
        except OSError as exc:
            target.path.unlink(missing_ok=True)
            raise BackupError(f"cannot write {target.path}: {exc.strerror or exc}") from exc

    def restore_over(
        self,
        session: Session,
        request: RestoreRequest,
        *,
        finish: Callable[[], None],
        progress: Progress,
    ) -> None:
        conn = _connection(session)
        try:
            backup = _read_only(request.path)
            try:
                wanted = _objects(backup)
                version = _user_version(backup, "main")
            finally:
                backup.close()
            foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("ATTACH DATABASE ? AS " + quote_identifier(_SOURCE), (str(request.path),))
        except sqlite3.Error as exc:
            raise BackupError(f"cannot open backup {request.path.name}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(request.lock_timeout * 1000)}")
            session.begin()
            rebuilt = self._replace(conn, request, wanted, progress)
            if request.full:
                conn.execute(f"PRAGMA main.user_version = {version}")
            self._check_foreign_keys(conn, None if request.full else rebuilt)
            finish()
            session.commit()
        except (sqlite3.Error, DatabaseError) as exc:
            # A database error (SQLITE_FULL, SQLITE_IOERR, ...), not a bad backup: it was
            # verified before anything changed. A busy database is a lock timeout.
            error = (
                exc
                if isinstance(exc, DatabaseError)
                else DatabaseError(
                    f"SQLite refused the restore: {exc}",
                    sqlstate=getattr(exc, "sqlite_errorname", None),
                )
            )
            if session.dialect.is_lock_timeout(error.sqlstate, error.message):
                raise LockError(
                    f"could not lock the database to restore within the lock timeout "
                    f"({request.lock_timeout:g}s): {error.message}; nothing changed",
                    hint="retry when the application is quieter, or raise lock_timeout",
                ) from exc
            if error is exc:
                raise
            raise error from exc
        finally:
            session.rollback()
            try:
                conn.execute("DETACH DATABASE " + quote_identifier(_SOURCE))
            finally:
                conn.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")

    def _replace(
        self,
        conn: sqlite3.Connection,
        request: RestoreRequest,
        wanted: Sequence[_Object],
        progress: Progress,
    ) -> set[str]:
        """Drop what differs, create what is missing, copy the rows; returns the (lower-case)
        names of the tables rebuilt with the backup's rows."""
        backup_tables = {o.name.lower() for o in wanted if o.type == "table"}
        data = {t.lower() for t in request.data_tables}
        rebuilt = backup_tables if request.full else data & backup_tables
        progress("dropping what the backup re-creates")
        _drop_differing(conn, wanted, rebuilt, full=request.full)
        for ledger in self._ledgers():
            if ledger not in backup_tables and _has_table(conn, "main", ledger):
                # The backup was taken before this ledger existed: nothing was applied then.
                conn.execute(f"DELETE FROM main.{quote_identifier(ledger)}")
        progress(f"loading the rows of {len(rebuilt)} table(s)")
        existing = {o.key for o in _objects(conn)}
        for kind in ("table", "index", "view", "trigger"):
            for item in wanted:
                if item.type != kind or item.key in existing:
                    continue
                if kind == "table" and _has_table(conn, "main", item.name):
                    continue  # a virtual table's shadow table, created with it
                conn.execute(item.sql)
                if kind == "table" and item.name.lower() in rebuilt:
                    _copy_rows(conn, item.name, source=_SOURCE, target="main")
        names = [o.name for o in wanted if o.type == "table" and o.name.lower() in rebuilt]
        _copy_sequences(conn, None if request.full else names, source=_SOURCE, target="main")
        return rebuilt

    @staticmethod
    def _check_foreign_keys(conn: sqlite3.Connection, tables: set[str] | None) -> None:
        """Foreign-key violations that involve the restored tables (None: any) undo it all."""
        problems = []
        for table, rowid, parent, _ in conn.execute("PRAGMA main.foreign_key_check").fetchall():
            if tables is None or str(table).lower() in tables or str(parent).lower() in tables:
                problems.append(f"row {rowid} of {table} references a missing row of {parent}")
        if problems:
            raise BackupError(
                f"the restored rows break foreign keys: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                hint="restore a full backup, or restore --into a new database to inspect it",
            )


def _drop_differing(
    conn: sqlite3.Connection, wanted: Sequence[_Object], rebuilt: set[str], *, full: bool
) -> None:
    """Drop the tables to rebuild, and every object the backup lacks or defines otherwise
    (all of them for a full restore); triggers, views and indexes first."""
    wanted_by_key = {o.key: o for o in wanted}
    dropped_tables: set[str] = set()
    for item in sorted(
        _objects(conn), key=lambda o: ("trigger", "view", "index", "table").index(o.type)
    ):
        same = wanted_by_key.get(item.key)
        if item.type == "table":
            if item.name.lower() in rebuilt or same is None or full:
                conn.execute(f"DROP TABLE main.{quote_identifier(item.name)}")
                dropped_tables.add(item.name.lower())
            continue
        if item.table.lower() in dropped_tables:
            continue  # went with its table
        if same is None or same.sql != item.sql or full:
            conn.execute(f"DROP {item.type.upper()} IF EXISTS main.{quote_identifier(item.name)}")


def _is_virtual(sql: str) -> bool:
    return sql.lstrip().upper().startswith("CREATE VIRTUAL")


def _user_version(conn: sqlite3.Connection, schema: str) -> int:
    return int(conn.execute(f"PRAGMA {quote_identifier(schema)}.user_version").fetchone()[0])
