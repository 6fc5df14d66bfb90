"""SQLite: the stdlib driver, ``complete_statement`` splitting, a lock file, FK checks at commit.

Facts that shape this module:

- ``PRAGMA foreign_keys`` is a no-op inside a transaction. Prisma's table-redefinition
  migrations switch foreign keys off around ``DROP TABLE``/``RENAME``; inside backout's
  transaction that would silently do nothing and ``DROP TABLE`` would fire ``ON DELETE CASCADE``
  on the children. So such PRAGMAs are run *around* the transaction (:meth:`SqliteDialect.shape`)
  and ``PRAGMA foreign_key_check`` runs before COMMIT: a violation undoes everything.
- ``BEGIN IMMEDIATE`` takes the write lock at the start, so a busy database fails fast (after
  ``busy_timeout``, our lock timeout) instead of mid-script.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NoReturn

from backout.dialects.base import (
    Actor,
    BackupEngine,
    ControlStatement,
    Dialect,
    DmlScope,
    HostLock,
    OrphanRows,
    Params,
    Row,
    RunLock,
    ScriptShape,
    Session,
    TxControl,
)
from backout.dialects.sqlite import explain as sqlite_explain
from backout.dialects.sqlite import impact as sqlite_impact
from backout.model.errors import (
    DatabaseError,
    DatabaseUnavailable,
    LockError,
    LockHeld,
    ProjectError,
)
from backout.model.identifiers import quote_identifier
from backout.model.script import Statement
from backout.model.urls import DatabaseURL

if TYPE_CHECKING:
    from backout.dialects.ddl_base import Draft, LiveNames, Rename
    from backout.dialects.fill import TableRows
    from backout.model.effects import ScriptEffects
    from backout.model.schema import SchemaSnapshot, TableStats

_LEADING_NOISE = re.compile(r"^(?:\s+|--[^\n]*\n?|/\*.*?\*/)*", re.S)
_FIRST_WORDS = re.compile(r"^([A-Za-z]+)(?:\s+([A-Za-z_]+))?")
_FK_PRAGMA = re.compile(r"^PRAGMA\s+(?:main\.)?foreign_keys\s*(?:=\s*|\(\s*)(\w+)", re.I)
_SYNTAX = ("syntax error", "incomplete input", "unrecognized token")
#: result codes of a failing file or system rather than a refused statement
_FAILURE_CODES = (
    "SQLITE_FULL",
    "SQLITE_IOERR",
    "SQLITE_CORRUPT",
    "SQLITE_NOTADB",
    "SQLITE_NOMEM",
    "SQLITE_CANTOPEN",
    "SQLITE_READONLY",
    "SQLITE_PROTOCOL",
)


def _first_words(sql: str) -> tuple[str, str]:
    body = _LEADING_NOISE.sub("", sql, count=1)
    match = _FIRST_WORDS.match(body)
    if match is None:
        return "", ""
    return match[1].upper(), (match[2] or "").upper()


def _error(exc: sqlite3.Error) -> DatabaseError:
    code = getattr(exc, "sqlite_errorname", None)
    return DatabaseError(str(exc), sqlstate=code)


class SqliteSession(Session):
    """A sqlite3 connection with ``isolation_level=None``: backout issues BEGIN itself."""

    def __init__(self, dialect: SqliteDialect, url: DatabaseURL, conn: sqlite3.Connection):
        self.dialect = dialect
        self.url = url
        self.conn = conn

    @staticmethod
    def _sql(sql: str, params: Params) -> tuple[str, Sequence[object]]:
        if params is None:
            return sql, ()
        return sql.replace("%s", "?"), params

    def query(self, sql: str, params: Params = None) -> list[Row]:
        text, args = self._sql(sql, params)
        try:
            return list(self.conn.execute(text, args).fetchall())
        except sqlite3.Error as exc:
            raise _error(exc) from exc

    def execute(self, sql: str, params: Params = None) -> int:
        text, args = self._sql(sql, params)
        try:
            cursor = self.conn.execute(text) if params is None else self.conn.execute(text, args)
            return cursor.rowcount
        except sqlite3.Error as exc:
            raise _error(exc) from exc

    def query_native(self, sql: str, params: Mapping[str, object]) -> list[Row]:
        try:
            return list(self.conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise _error(exc) from exc

    def query_table(
        self, sql: str, params: Mapping[str, object], limit: int
    ) -> tuple[list[str], list[Row]]:
        try:
            cursor = self.conn.execute(sql, params)
            names = [c[0] for c in cursor.description or ()]
            return names, list(cursor.fetchmany(limit))
        except sqlite3.Error as exc:
            raise _error(exc) from exc

    def execute_native(self, sql: str, params: Mapping[str, object]) -> int:
        try:
            return self.conn.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise _error(exc) from exc

    def begin(self) -> None:
        self.execute("BEGIN IMMEDIATE")

    def begin_read(self, *, lock_timeout: float | None = None) -> None:
        # DEFERRED takes only a shared lock at the first read: an application's open write
        # transaction neither delays it nor is delayed by it (IMMEDIATE takes the write lock).
        self.execute("BEGIN DEFERRED")

    def query_undone(
        self, sql: str, params: Mapping[str, object], *, lock_timeout: float | None = None
    ) -> list[Row]:
        # query_only: SQLite refuses any write for the check's duration, in a transaction too.
        self.execute("PRAGMA query_only = ON")
        try:
            return super().query_undone(sql, params, lock_timeout=lock_timeout)
        finally:
            self.execute("PRAGMA query_only = OFF")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                # Closing the connection rolls back whatever is left.
                return

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def close(self) -> None:
        self.conn.close()


class LockFile(RunLock):
    """An exclusive ``flock`` on ``<database>.backout-lock``; the OS drops it if we die."""

    def __init__(self, handle: int, path: Path):
        self.handle: int | None = handle
        self.path = path
        self.description = f"exclusive lock on {path.name}"

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            os.close(self.handle)
            self.handle = None


class SqliteDialect(Dialect):
    """SQLite 3.35 or newer (for ``DROP COLUMN`` and ``RETURNING``)."""

    name: ClassVar[str] = "sqlite"
    parser_packages: ClassVar[tuple[str, ...]] = ("sqlglot",)
    display_name: ClassVar[str] = "SQLite"
    has_schemas: ClassVar[bool] = False
    # dbmate pkg/driver/sqlite; golang-migrate database/sqlite3 (SQLite keeps the text: it is
    # written as each tool writes it)
    dbmate_table_ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS {table} (version varchar(128) primary key)",
    )
    golang_migrate_table_ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS {table} (version uint64,dirty bool)",
        "CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON {table} (version)",
    )
    # SQLiteDatabase.getRawCreateScript (flyway-core), no baseline
    flyway_history_ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE {table} (\n"
        '    "installed_rank" INT NOT NULL PRIMARY KEY,\n'
        '    "version" VARCHAR(50),\n'
        '    "description" VARCHAR(200) NOT NULL,\n'
        '    "type" VARCHAR(20) NOT NULL,\n'
        '    "script" VARCHAR(1000) NOT NULL,\n'
        '    "checksum" INT,\n'
        '    "installed_by" VARCHAR(100) NOT NULL,\n'
        "    \"installed_on\" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),\n"
        '    "execution_time" INT NOT NULL,\n'
        '    "success" BOOLEAN NOT NULL\n'
        ")",
        'CREATE INDEX {qidx} ON {bare} ("success")',
    )
    #: SQLiteDatabase.doGetCurrentUser returns "" (SQLite has no users)
    flyway_installed_by: ClassVar[str] = "''"
    flyway_default_schema: ClassVar[str | None] = "main"
    timestamp_type: ClassVar[str] = "TEXT"
    serial_primary_key: ClassVar[str] = "INTEGER PRIMARY KEY AUTOINCREMENT"
    bracket_quotes: ClassVar[bool] = True

    def connect(
        self,
        url: DatabaseURL,
        *,
        actor: Actor,
        connect_timeout: float = 10.0,
        create: bool = True,
    ) -> Session:
        target = ":memory:" if url.path is None else str(url.path)
        if not create and url.path is not None and not url.path.exists():
            target = ":memory:"
        if url.path is not None and not url.path.parent.is_dir():
            raise DatabaseUnavailable(
                f"cannot open {url.masked()}: folder {url.path.parent} does not exist"
            )
        try:
            conn = sqlite3.connect(target, isolation_level=None, timeout=connect_timeout)
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open {url.masked()}: {exc}") from exc
        return SqliteSession(self, url, conn)

    # --- scripts -----------------------------------------------------------------------------

    def fill_tables(self, url: DatabaseURL, tables: Sequence[TableRows]) -> dict[str, int]:
        from backout.dialects.sqlite.fill import fill_tables

        return fill_tables(url, tables)

    def analyze(self, statements: Sequence[Statement]) -> ScriptEffects:
        from backout.dialects.sqlite.effects import analyze_statements

        return analyze_statements(statements)

    def split(
        self, text: str, display: str, *, first_line: int = 1, params: Collection[str] = ()
    ) -> list[Statement]:
        statements: list[Statement] = []
        start = 0
        position = text.find(";")
        while position != -1:
            chunk = text[start : position + 1]
            if sqlite3.complete_statement(chunk):
                self._add(statements, text, start, position + 1, first_line)
                start = position + 1
            position = text.find(";", position + 1)
        self._add(statements, text, start, len(text), first_line)
        for statement in statements:
            self._check_syntax(statement, display)
        return statements

    @staticmethod
    def _add(out: list[Statement], text: str, start: int, end: int, first_line: int) -> None:
        chunk = text[start:end]
        lead = _LEADING_NOISE.match(chunk)
        offset = lead.end() if lead else 0
        body = chunk[offset:].strip()
        if not body or body == ";" or not _LEADING_NOISE.sub("", body).strip(" ;\n\t"):
            return
        body = body.removesuffix(";").rstrip()
        line = first_line + text.count("\n", 0, start + offset)
        out.append(Statement(sql=body, line=line, index=len(out) + 1))

    @staticmethod
    def _check_syntax(statement: Statement, display: str) -> None:
        """Compile the statement with EXPLAIN on an empty database; report only syntax errors.

        SQLite resolves some names while it parses (a trigger's table, ALTER TABLE's table) and
        stops at the first such error, which would hide a syntax error further on. So a table
        the probe stops at is created as a stub on the scratch database, and the probe retried.
        """
        first, _ = _first_words(statement.sql)
        probe_sql = statement.sql if first == "EXPLAIN" else "EXPLAIN " + statement.sql
        probe = sqlite3.connect(":memory:")
        stubbed: set[str] = set()
        try:
            for _ in range(32):
                try:
                    probe.execute(probe_sql)
                    return
                except sqlite3.Error as exc:
                    message = str(exc)
                    if any(marker in message for marker in _SYNTAX):
                        raise ProjectError(
                            f"syntax error: {message} in: {statement.excerpt(60)}",
                            path=display,
                            line=statement.line,
                        ) from exc
                    missing = re.match(r"no such table: (?:main\.)?(.+)$", message)
                    on_table = re.match(
                        r"cannot create INSTEAD OF trigger on table: (?:main\.)?(.+)$", message
                    )
                    if missing is not None and missing[1] not in stubbed:
                        stubbed.add(missing[1])
                        name = quote_identifier(missing[1])
                        stub = f"CREATE TABLE {name} (stub)"
                    elif on_table is not None and f"view {on_table[1]}" not in stubbed:
                        stubbed.add(f"view {on_table[1]}")
                        name = quote_identifier(on_table[1])
                        stub = f"DROP TABLE {name}; CREATE VIEW {name} AS SELECT NULL AS stub"
                    else:
                        return
                try:
                    probe.executescript(stub)
                except sqlite3.Error:
                    # Not a name a stub can stand in for (e.g. a table of another schema).
                    return
        finally:
            probe.close()

    def bind(self, sql: str, values: Mapping[str, object]) -> tuple[str, dict[str, object]]:
        # sqlite3 understands :name natively; only adapt the values it will see.
        names = {name for _, _, name in self.param_spans(sql, values.keys())}
        return sql, {name: self.adapt(values[name]) for name in names}

    def per_row_scans(self, session: Session, sql: str, params: Mapping[str, object]) -> list[str]:
        plan = session.query_native(f"EXPLAIN QUERY PLAN {sql}", params)
        return [
            scan.describe("EXPLAIN QUERY PLAN")
            for scan in sqlite_explain.per_row_scans(session.query, plan, sql)
        ]

    def adapt(self, value: object) -> object:
        """Dates as ISO text (UTC for aware date-times), decimals and UUIDs as text."""
        import decimal
        import uuid

        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, decimal.Decimal | uuid.UUID):
            return str(value)
        return value

    def check_write(self, sql: str, params: Collection[str] = ()) -> str | None:
        # lazy: check_guard imports sqlglot at import time, which only check queries need
        from backout.dialects.sqlglot.check_guard import SQLITE_CHECK_REFUSED, check_write

        return check_write(sql, "sqlite", SQLITE_CHECK_REFUSED, params)

    def transaction_conflict(self, statement: Statement) -> str | None:
        first, _ = _first_words(statement.sql)
        if first == "VACUUM":
            return "VACUUM cannot run inside a transaction"
        return None

    def transaction_control(self, statement: Statement) -> ControlStatement | None:
        first, _ = _first_words(statement.sql)
        if first in {"SAVEPOINT", "RELEASE"}:
            return ControlStatement(TxControl.NESTED, first)
        if first == "BEGIN":
            # DEFERRED/IMMEDIATE/EXCLUSIVE only say when the write lock is taken; backout's
            # own BEGIN IMMEDIATE takes it at once.
            return ControlStatement(TxControl.BEGIN, first)
        if first in {"COMMIT", "END"}:
            return ControlStatement(TxControl.COMMIT, first)
        if first == "ROLLBACK":
            # ROLLBACK [TRANSACTION] TO [SAVEPOINT] x only undoes work back to a savepoint, which
            # nests inside a transaction like SAVEPOINT and RELEASE do.
            body = _LEADING_NOISE.sub("", statement.sql, count=1)
            to_savepoint = re.match(r"ROLLBACK(?:\s+TRANSACTION)?\s+TO\b", body, re.I)
            return ControlStatement(TxControl.NESTED if to_savepoint else TxControl.ROLLBACK, first)
        return None

    def shape(self, statements: Sequence[Statement]) -> ScriptShape:
        """Move ``PRAGMA foreign_keys=OFF`` before BEGIN and ``=ON`` after COMMIT."""
        before: list[Statement] = []
        after: list[Statement] = []
        inside: list[Statement] = []
        for statement in statements:
            # SQLite also takes the value quoted (foreign_keys = 'OFF'); left inside the
            # transaction such a PRAGMA would silently do nothing.
            unquoted = re.sub(r"""(=\s*|\(\s*)(['"])(\w+)\2""", r"\1\3", statement.sql, count=1)
            match = _FK_PRAGMA.match(unquoted)
            if match is None:
                inside.append(statement)
            elif match[1].lower() in {"off", "0", "false", "no"}:
                before.append(statement)
            else:
                after.append(statement)
        return ScriptShape(before=tuple(before), inside=tuple(inside), after=tuple(after))

    def after_script(self, session: Session) -> None:
        """Foreign keys back on, whatever the script did with them."""
        session.execute("PRAGMA foreign_keys = ON")

    def integrity_check(self, session: Session) -> list[str]:
        rows = session.query("PRAGMA foreign_key_check")
        problems = []
        for table, rowid, parent, fk_index in rows[:20]:
            columns = [
                str(r[3])
                for r in session.query(
                    "SELECT * FROM pragma_foreign_key_list(%s) WHERE id = %s", (table, fk_index)
                )
            ]
            via = f" through {table}.{', '.join(columns)}" if columns else ""
            problems.append(f"row {rowid} of {table} points to a missing row of {parent}{via}")
        if len(rows) > 20:
            problems.append(f"... and {len(rows) - 20} more foreign key violations")
        return problems

    # --- locks and timeouts --------------------------------------------------------------------

    def acquire_run_lock(
        self, session: Session, actor: Actor, *, host_locks: Sequence[HostLock] = ()
    ) -> RunLock:
        url = session.url
        if url.path is None:
            raise LockError("an in-memory SQLite database cannot be shared: no lock needed")
        path = _lock_path(url.path)
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LockError(f"cannot create lock file {path}: {exc.strerror}") from exc
        if not _flock_now(handle, fcntl.LOCK_EX):
            _refuse_held(handle, url)
        # The name first, in one write, then the old name's tail cut off: a run reading the
        # file meanwhile sees this holder (truncating first would show it an empty file).
        data = json.dumps({"holder": actor.label()}).encode()
        os.pwrite(handle, data, 0)
        os.ftruncate(handle, len(data))
        return LockFile(handle, path)

    def check_run_lock(
        self, session: Session, actor: Actor, *, host_locks: Sequence[HostLock] = ()
    ) -> None:
        url = session.url
        if url.path is None:
            return
        try:
            # No O_CREAT: a read-only command must not leave a lock file behind.
            handle = os.open(_lock_path(url.path), os.O_RDONLY)
        except OSError:
            return  # no lock file: no run has ever held the lock here
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            _refuse_held(handle, url)
        # Held for microseconds; acquire_run_lock tolerates such a check (see _flock_now).
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)

    def timeout_statements(self, *, lock_timeout: float, statement_timeout: float) -> list[str]:
        # busy_timeout must be set before BEGIN IMMEDIATE; see before_begin_statements.
        return []

    def before_begin_statements(self, *, lock_timeout: float) -> list[str]:
        return [f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}"]

    def run_lock_description(self, *, host_locks: Sequence[HostLock] = ()) -> str:
        return "exclusive lock file <database>.backout-lock, then BEGIN IMMEDIATE"

    def is_lock_timeout(self, sqlstate: str | None, message: str) -> bool:
        return sqlstate in {"SQLITE_BUSY", "SQLITE_LOCKED"} or "database is locked" in message

    def is_database_failure(self, sqlstate: str | None, message: str) -> bool:
        if sqlstate is not None:
            # Extended codes (SQLITE_IOERR_WRITE...) start with their primary code's name.
            return sqlstate.startswith(_FAILURE_CODES)
        return "disk is full" in message or "disk I/O error" in message

    # --- names ---------------------------------------------------------------------------------

    def quote(self, identifier: str) -> str:
        return quote_identifier(identifier)

    def history_table(self, logical: str, schema: str) -> str:
        return self.quote(f"backout_{logical}")

    def table_exists(self, session: Session, table: str, schema: str | None) -> bool:
        rows = session.query(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", (table,)
        )
        return bool(rows)

    def ensure_history_schema(self, schema: str) -> list[str]:
        return []

    def database_exists(self, url: DatabaseURL) -> bool:
        return url.path is None or url.path.exists()

    def snapshot(self, session: Session) -> SchemaSnapshot:
        from backout.dialects.sqlite.catalog import read_sqlite_snapshot

        return read_sqlite_snapshot(
            session.query, exclude=self.is_host_table if self.host_table else None
        )

    def table_stats(self, session: Session, snapshot: SchemaSnapshot) -> dict[str, TableStats]:
        from backout.dialects.sqlite.catalog import read_table_stats

        return read_table_stats(session.query, snapshot)

    def dml_scope(self, statement: Statement, params: Collection[str] = ()) -> DmlScope | None:
        return sqlite_impact.dml_scope(statement)

    @contextmanager
    def scratch(
        self,
        url: DatabaseURL,
        shadow: DatabaseURL | None,
        actor: Actor,
        *,
        prefix: str = "backout_scratch_",
    ) -> Iterator[DatabaseURL]:
        # A temporary folder: the operating system's own clean-up owns what a kill leaves.
        folder = Path(tempfile.mkdtemp(prefix="backout-scratch-"))
        try:
            yield url.with_path(folder / "scratch.db")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def copy_database(
        self, source: DatabaseURL, target: DatabaseURL, actor: Actor, *, data: bool
    ) -> None:
        assert target.path is not None
        src = sqlite3.connect(":memory:" if source.path is None else str(source.path))
        dst = sqlite3.connect(str(target.path), isolation_level=None)
        try:
            if data:
                src.backup(dst)
                return
            rows = src.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE "
                "'sqlite\\_%' ESCAPE '\\' ORDER BY CASE type WHEN 'table' THEN 0 "
                "WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, rowid"
            ).fetchall()
            dst.execute("BEGIN")
            for (sql,) in rows:
                dst.execute(sql)
            dst.execute("COMMIT")
        except sqlite3.Error as exc:
            raise DatabaseError(
                f"copying {source.masked()} to a scratch file failed: {exc}"
            ) from exc
        finally:
            src.close()
            dst.close()

    def user_tables(self, session: Session, history_schema: str) -> list[str]:
        rows = session.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\' AND name NOT LIKE 'backout\\_%' ESCAPE '\\' "
            "AND name <> '_prisma_migrations' ORDER BY name"
        )
        return [str(r[0]) for r in rows if not self.is_host_table(None, str(r[0]))]

    def to_db_time(self, value: dt.datetime) -> object:
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+00:00"

    def to_prisma_time(self, value: dt.datetime) -> object:
        # Prisma's schema engine (quaint) stores SQLite DATETIME values as epoch milliseconds.
        return int(value.timestamp() * 1000)

    def backup_engine(self) -> BackupEngine:
        from backout.dialects.sqlite.backup import SqliteBackupEngine

        return SqliteBackupEngine(self)

    # --- checks, rehearsals and drafts ---------------------------------------------------------

    def find_orphans(self, session: Session, snapshot: SchemaSnapshot) -> list[OrphanRows]:
        """Every foreign key, with ``PRAGMA foreign_key_check`` (which works with them off)."""
        from backout.dialects.sqlite.checks import find_orphans

        return find_orphans(session, snapshot)

    def draft_rollback(
        self,
        before: SchemaSnapshot,
        after: SchemaSnapshot,
        *,
        definitions: Mapping[str, str] | None = None,
        live: LiveNames | None = None,
    ) -> Draft:
        """SQL that turns a database at ``after`` back into ``before`` (see sqlite_ddl; its
        drafts carry no checks, so ``live`` names are not needed)."""
        from backout.dialects.sqlite.ddl import draft_rollback

        return draft_rollback(before, after, definitions=definitions or {})

    def rename_back(self, rename: Rename) -> str | None:
        """``ALTER TABLE ... RENAME [COLUMN]`` back; other renames are re-created by the diff."""
        from backout.dialects.sqlite.ddl import rename_back

        return rename_back(rename)

    def stored_definitions(self, session: Session) -> dict[str, str]:
        """``sqlite_master.sql`` of every table, index, view and trigger, by ``"kind name"``."""
        rows = session.query(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        )
        return {f"{kind} {name}": str(sql) for kind, name, sql in rows}


#: how long a run that finds the lock taken waits for the holder to write its name (the holder
#: writes it right after taking the lock; an unnamed holder is reported after this)
HOLDER_NAME_WAIT = 2.0


#: how long acquiring the lock keeps trying while it is taken: long enough to outlast another
#: run's check_run_lock (a shared flock held for microseconds), far too short to wait for a run
CHECK_GRACE = 0.1


def _flock_now(handle: int, mode: int) -> bool:
    """Take ``mode`` on ``handle`` without waiting for a holder (False: it is held)."""
    deadline = time.monotonic() + CHECK_GRACE
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


def _lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".backout-lock")


def _refuse_held(handle: int, url: DatabaseURL) -> NoReturn:
    """Close ``handle`` (the lock file another run holds) and raise LockError naming it."""
    try:
        holder = _read_holder(handle)
    finally:
        os.close(handle)
    raise LockHeld(
        f"the backout run lock on {url.masked()} is held by {holder}",
        hint="wait for that run to finish, or wait longer with --lock-wait DURATION; "
        "backout never breaks a lock",
    )


def _read_holder(handle: int) -> str:
    """The holder's name from the lock file; retried briefly while the file has none yet (the
    holder may have the lock but not have written its name)."""
    deadline = time.monotonic() + HOLDER_NAME_WAIT
    while True:
        holder = _holder_name(handle)
        if holder is not None:
            return holder
        if time.monotonic() >= deadline:
            return "another process"
        time.sleep(0.02)


def _holder_name(handle: int) -> str | None:
    try:
        data = os.pread(handle, 4096, 0).decode()
        # raw_decode: a longer previous name's tail may still follow (see acquire_run_lock).
        found, _ = json.JSONDecoder().raw_decode(data)
    except (OSError, ValueError):
        return None
    holder = found.get("holder") if isinstance(found, dict) else None
    return str(holder) if holder else None
