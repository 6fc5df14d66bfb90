"""MySQL and MariaDB: PyMySQL sessions, ``GET_LOCK`` run lock, and DDL that is not transactional.

Facts that shape this module (and :mod:`backout.run.journal`):

- **DDL commits implicitly.** ``CREATE``, ``ALTER``, ``DROP``, ``RENAME``, ``TRUNCATE`` and a
  few others end the open transaction and commit themselves: a ROLLBACK after ``ALTER TABLE``
  leaves the column in place. :meth:`MysqlDialect.commits_implicitly` names them; a script
  holding one runs statement by statement and every statement is journaled as it completes, so
  a run that fails (or is killed) part-way can be resumed or undone. A script of plain DML (a
  partial rollback, for instance) still runs in one transaction, atomically.
- **The run lock is a named lock.** ``GET_LOCK('backout:<database>', 0)``: per database, since
  MySQL's lock names are server-wide, and never waited for. In the Prisma layout backout also
  takes ``GET_LOCK('prisma_migrate', 0)``, the (server-wide) lock ``prisma migrate deploy``
  takes, so the two never migrate at the same time. The holder is named from
  ``IS_USED_LOCK`` and the process list.
- **Timeouts are session settings.** ``lock_wait_timeout`` (metadata locks, what an
  ``ALTER TABLE`` waits for) and ``innodb_lock_wait_timeout`` (row locks) play PostgreSQL's
  ``lock_timeout``: whole seconds, at least one. Error 1205 (lock wait timeout) and 1213
  (deadlock) are retried with backoff like PostgreSQL's 55P03. MariaDB's
  ``max_statement_time`` bounds every statement; MySQL's ``max_execution_time`` only bounds
  ``SELECT``, so on MySQL the statement timeout is not applied to scripts.
- **Sessions run in UTC** (``time_zone = '+00:00'``), as Prisma's engine does: ``DATETIME(3)``
  columns of ``_prisma_migrations`` and of backout's tables hold UTC.
- **Double quotes are strings**, not identifiers (backout never turns on ``ANSI_QUOTES``):
  identifiers are quoted with backticks.
- Errors carry MySQL's error number where PostgreSQL's carry a SQLSTATE: ``[1146]``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import subprocess
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from backout.dialects import client_programs, scratch_names
from backout.dialects.base import (
    Actor,
    BackupEngine,
    ControlStatement,
    Dialect,
    DmlScope,
    HostLock,
    OrphanRows,
    RunLock,
    Session,
    TxControl,
)
from backout.dialects.host_locks import flyway_mysql_name, golang_migrate_lock_id
from backout.dialects.mysql import explain as mysql_explain
from backout.dialects.mysql import impact as mysql_impact
from backout.dialects.mysql import split as mysql_split
from backout.dialects.mysql import tools as mysql_tools
from backout.dialects.mysql.backup import MysqlBackupEngine
from backout.dialects.mysql.catalog import quote_identifier, read_mysql_snapshot, read_table_stats
from backout.dialects.mysql.fill import fill_tables
from backout.dialects.mysql.session import MysqlSession, translate
from backout.dialects.mysql.split import head_words
from backout.dialects.orphans import unvalidated_orphans
from backout.dialects.params import bind_pyformat
from backout.model.effects import Action, ObjectKind
from backout.model.errors import ConfigError, DatabaseError, DatabaseUnavailable, LockHeld
from backout.model.schema import SchemaSnapshot, TableInfo, TableStats
from backout.model.script import Statement
from backout.model.urls import DatabaseURL, scrub

if TYPE_CHECKING:
    from backout.dialects.fill import TableRows
    from backout.model.effects import Effect, ScriptEffects

#: the lock ``prisma migrate deploy`` takes on MySQL (server-wide, as Prisma names it)
PRISMA_LOCK_NAME = "prisma_migrate"
#: MySQL 5.7+ refuses longer lock names
_LOCK_NAME_MAX = 64
#: lock wait timeout (1205), deadlock (1213), NOWAIT (3572)
_LOCK_TIMEOUT_ERRORS = frozenset({"1205", "1213", "3572"})
#: MariaDB's max_statement_time (1969), MySQL's max_execution_time (3024)
_STATEMENT_TIMEOUT_ERRORS = frozenset({"1969", "3024"})
_UNKNOWN_DATABASE = 1049
#: a failing server rather than a refused statement: disk full (1021), table full (1114),
#: out of memory (1037, 1041), error writing or reading a file (3, 1030), shutdown (1053),
#: connection killed (1927, MariaDB), server gone away (2006), lost connection (2013)
_FAILURE_ERRORS = frozenset(
    {"3", "1021", "1030", "1037", "1041", "1053", "1114", "1927", "2006", "2013"}
)

#: first keywords of statements that do not commit implicitly (DML, reads, session SETs)
_NO_IMPLICIT_COMMIT = frozenset(
    {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "REPLACE",
        "WITH",
        "VALUES",
        "TABLE",
        "DO",
        "SET",
        "LOAD",
        "HANDLER",
        "EXPLAIN",
        "DESCRIBE",
        "DESC",
        "SHOW",
        "SAVEPOINT",
        "RELEASE",
    }
)


def lock_name(database: str) -> str:
    """backout's run-lock name for a database (hashed when too long for MySQL)."""
    name = f"backout:{database}"
    if len(name) > _LOCK_NAME_MAX:
        name = "backout:" + hashlib.sha256(database.encode()).hexdigest()[:32]
    return name


class NamedLock(RunLock):
    """MySQL named locks (``GET_LOCK``), released on release() or when the session ends."""

    def __init__(self, session: MysqlSession, description: str):
        self.session = session
        self.names: list[str] = []
        self.description = description

    def release(self) -> None:
        import pymysql

        while self.names:
            name = self.names.pop()
            if not self.session.conn.open:
                continue
            try:
                with self.session.conn.cursor() as cur:
                    cur.execute("SELECT RELEASE_LOCK(%s)", (name,))
            except pymysql.Error:
                # A dead session has already lost its named locks.
                continue


class MysqlDialect(Dialect):
    """MySQL 8 and MariaDB 10.6 or newer."""

    name: ClassVar[str] = "mysql"
    parser_packages: ClassVar[tuple[str, ...]] = ("sqlglot",)
    display_name: ClassVar[str] = "MySQL/MariaDB"
    default_port: ClassVar[int | None] = 3306
    has_schemas: ClassVar[bool] = False
    # dbmate pkg/driver/mysql CreateMigrationsTable; golang-migrate database/mysql (no table
    # options: both take the server's defaults)
    dbmate_table_ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS {table} (version varchar(128) PRIMARY KEY)",
    )
    golang_migrate_table_ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS {table} (version bigint NOT NULL PRIMARY KEY, "
        "dirty boolean NOT NULL)",
    )
    # MySQLDatabase.getRawCreateScript (flyway-mysql), no tablespace, no baseline
    flyway_history_ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE {table} (\n"
        "    `installed_rank` INT NOT NULL,\n"
        "    `version` VARCHAR(50),\n"
        "    `description` VARCHAR(200) NOT NULL,\n"
        "    `type` VARCHAR(20) NOT NULL,\n"
        "    `script` VARCHAR(1000) NOT NULL,\n"
        "    `checksum` INT,\n"
        "    `installed_by` VARCHAR(100) NOT NULL,\n"
        "    `installed_on` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
        "    `execution_time` INT NOT NULL,\n"
        "    `success` BOOL NOT NULL,\n"
        "    CONSTRAINT {pk} PRIMARY KEY (`installed_rank`)\n"
        ") ENGINE=InnoDB",
        "CREATE INDEX {idx} ON {table} (`success`)",
    )
    #: MySQLDatabase.doGetCurrentUser
    flyway_installed_by: ClassVar[str] = "SUBSTRING_INDEX(USER(),'@',1)"
    timestamp_type: ClassVar[str] = "DATETIME(3)"
    serial_primary_key: ClassVar[str] = "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY"
    table_options: ClassVar[str] = (
        " ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )
    prisma_ledger_ddl: ClassVar[str | None] = (
        "CREATE TABLE IF NOT EXISTS _prisma_migrations (\n"
        "    id                      VARCHAR(36) PRIMARY KEY NOT NULL,\n"
        "    checksum                VARCHAR(64) NOT NULL,\n"
        "    finished_at             DATETIME(3),\n"
        "    migration_name          VARCHAR(255) NOT NULL,\n"
        "    logs                    TEXT,\n"
        "    rolled_back_at          DATETIME(3),\n"
        "    started_at              DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),\n"
        "    applied_steps_count     INTEGER UNSIGNED NOT NULL DEFAULT 0\n"
        ") DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )
    supports_statement_timeout: ClassVar[bool] = True

    def __init__(self) -> None:
        #: learnt at connect time: MariaDB bounds every statement, MySQL only SELECTs
        self.mariadb = True

    # --- sessions ------------------------------------------------------------------------------

    def connect(
        self,
        url: DatabaseURL,
        *,
        actor: Actor,
        connect_timeout: float = 10.0,
        create: bool = True,
    ) -> Session:
        import pymysql

        if not url.database:
            raise ConfigError(
                f"the MySQL URL {url.masked()} names no database: use mysql://user@host/DATABASE"
            )
        params = dict(url.params)
        socket = params.get("socket") or params.get("unix_socket")
        kwargs: dict[str, Any] = {
            "user": url.user,
            "password": url.password or "",
            "database": url.database,
            "charset": "utf8mb4",
            "autocommit": True,
            "connect_timeout": max(1, int(connect_timeout)),
            "program_name": actor.label()[:64],
            "init_command": "SET time_zone = '+00:00'",
        }
        if socket:
            kwargs["unix_socket"] = socket
        else:
            kwargs["host"] = url.host or "127.0.0.1"
            kwargs["port"] = url.port or 3306
        if params.get("ssl") in ("true", "1"):
            kwargs["ssl"] = {}  # TLS without verifying the server's certificate
        try:
            conn = pymysql.connect(**kwargs)
        except pymysql.Error as exc:
            reason = translate(exc, url)
            hint = None
            if getattr(exc, "args", (None,))[0] == _UNKNOWN_DATABASE:
                hint = f"create it first: CREATE DATABASE `{url.database}`"
            raise DatabaseUnavailable(
                f"cannot connect to {url.masked()}: {reason.message}", hint=hint
            ) from exc
        session = MysqlSession(self, url, conn)
        self.mariadb = session.mariadb
        return session

    # --- scripts -------------------------------------------------------------------------------

    def fill_tables(self, url: DatabaseURL, tables: Sequence[TableRows]) -> dict[str, int]:
        return fill_tables(url, tables)

    def analyze(self, statements: Sequence[Statement]) -> ScriptEffects:
        from backout.dialects.mysql.effects import analyze_statements

        return analyze_statements(statements)

    def split(
        self, text: str, display: str, *, first_line: int = 1, params: Collection[str] = ()
    ) -> list[Statement]:
        return mysql_split.split(text, display, first_line=first_line)

    def param_spans(self, sql: str, names: Collection[str]) -> list[tuple[int, int, str]]:
        return mysql_split.param_spans(sql, names)

    def adapt(self, value: object) -> object:
        """Aware date-times as naive UTC (sessions run in UTC); UUIDs as text."""
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        if isinstance(value, uuid.UUID):
            return str(value)
        return value

    def bind(self, sql: str, values: Mapping[str, object]) -> tuple[str, dict[str, object]]:
        return bind_pyformat(sql, self.param_spans(sql, values.keys()), values, self.adapt)

    def check_write(self, sql: str, params: Collection[str] = ()) -> str | None:
        # lazy: check_guard imports sqlglot at import time, which only check queries need
        from backout.dialects.sqlglot.check_guard import MYSQL_CHECK_REFUSED, check_write

        return check_write(sql, "mysql", MYSQL_CHECK_REFUSED, params)

    def transaction_conflict(self, statement: Statement) -> str | None:
        words = head_words(statement.sql, 3)
        first = words[0] if words else ""
        second = words[1] if len(words) > 1 else ""
        if first in {"LOCK", "UNLOCK"}:
            return f"{first} TABLES commits implicitly and holds locks beyond the statement"
        if first == "SET" and second in {"AUTOCOMMIT", "TRANSACTION"}:
            return f"SET {second.lower()} changes how backout's statements commit"
        return None

    def transaction_control(self, statement: Statement) -> ControlStatement | None:
        words = head_words(statement.sql, 4)
        first = words[0] if words else ""
        rest = [w for w in words[1:] if w != "WORK"]
        if first == "XA":
            return ControlStatement(TxControl.OTHER, "XA", "XA (two-phase) transactions")
        if first in {"SAVEPOINT", "RELEASE"} or (first == "ROLLBACK" and "TO" in rest):
            return ControlStatement(TxControl.NESTED, first)
        if (first, rest[:1]) == ("START", ["TRANSACTION"]):
            if len(rest) > 1:
                return ControlStatement(
                    TxControl.OTHER,
                    "START TRANSACTION",
                    "START TRANSACTION with options (READ ONLY, CONSISTENT SNAPSHOT): backout "
                    "cannot honour them",
                )
            return ControlStatement(TxControl.BEGIN, "START TRANSACTION")
        if first == "BEGIN":
            # MariaDB's BEGIN NOT ATOMIC … END is a compound statement, not a transaction
            return None if rest else ControlStatement(TxControl.BEGIN, first)
        if first in {"COMMIT", "ROLLBACK"}:
            if rest:  # AND [NO] CHAIN, [NO] RELEASE
                return ControlStatement(
                    TxControl.OTHER, first, f"{first} {' '.join(rest)} changes the session"
                )
            kind = TxControl.COMMIT if first == "COMMIT" else TxControl.ROLLBACK
            return ControlStatement(kind, first)
        return None

    def commits_implicitly(self, statement: Statement) -> bool:
        """DDL and the other statements MySQL commits on its own (conservative: anything that
        is not plain DML, a read or a session ``SET`` counts; ``CALL`` too, since a procedure
        may run DDL). ``CREATE/DROP TEMPORARY TABLE`` do not commit."""
        words = head_words(statement.sql, 2)
        if not words:
            return False
        if words[0] in {"CREATE", "DROP"} and len(words) > 1 and words[1] == "TEMPORARY":
            return False
        return words[0] not in _NO_IMPLICIT_COMMIT

    def inverse_sql(self, effect: Effect, snapshot: SchemaSnapshot) -> list[str] | None:
        """MySQL's syntax for the inverses (see :meth:`Dialect.inverse_sql`), plus foreign
        keys (and the index InnoDB created for one), CHECK constraints, primary keys,
        triggers and routines."""
        target = effect.target
        table = effect.table
        q = self.quote
        if effect.action is Action.CREATE and "OR REPLACE" not in effect.detail:
            on = q(table.name) if table is not None else None
            if target.kind is ObjectKind.INDEX and on is not None:
                return [f"ALTER TABLE {on} DROP INDEX {q(target.name)}"]
            if target.kind is ObjectKind.FOREIGN_KEY and on is not None:
                if target.name.endswith("_ibfk_?"):
                    return None  # an unnamed key: its generated name is not known here
                statements = [f"ALTER TABLE {on} DROP FOREIGN KEY {q(target.name)}"]
                auto = snapshot.indexes.get(target.name)
                if auto is not None and table is not None and auto.table == table.name:
                    # InnoDB created this index for the key (it names it after the key);
                    # dropping the key leaves it behind.
                    statements.append(f"ALTER TABLE {on} DROP INDEX {q(target.name)}")
                return statements
            if target.kind is ObjectKind.CONSTRAINT and on is not None:
                if target.name == "PRIMARY":
                    return [f"ALTER TABLE {on} DROP PRIMARY KEY"]
                if target.name == "?":
                    return None
                return [f"ALTER TABLE {on} DROP CONSTRAINT {q(target.name)}"]
            if target.kind is ObjectKind.TRIGGER:
                return [f"DROP TRIGGER {self._ref_sql(target.schema, target.name)}"]
            if target.kind in (ObjectKind.PROCEDURE, ObjectKind.FUNCTION):
                kind = "PROCEDURE" if target.kind is ObjectKind.PROCEDURE else "FUNCTION"
                return [f"DROP {kind} {self._ref_sql(target.schema, target.name)}"]
        if (
            effect.action is Action.RENAME
            and effect.renamed_to is not None
            and target.kind is ObjectKind.TABLE
            and not effect.destructive
        ):
            new = effect.renamed_to
            return [
                f"RENAME TABLE {self._ref_sql(new.schema, new.name)} "
                f"TO {self._ref_sql(target.schema, target.name)}"
            ]
        return super().inverse_sql(effect, snapshot)

    # --- locks and timeouts --------------------------------------------------------------------

    def acquire_run_lock(
        self, session: Session, actor: Actor, *, host_locks: Sequence[HostLock] = ()
    ) -> RunLock:
        assert isinstance(session, MysqlSession)
        own = lock_name(session.url.database or "")
        wanted = [(own, "backout"), *((str(h.key), h.owner) for h in host_locks)]
        lock = NamedLock(session, self.run_lock_description(host_locks=host_locks))
        for name, owner in wanted:
            (got,) = session.query("SELECT GET_LOCK(%s, 0)", (name,))[0]
            if got != 1:
                holder = self._holder(session, name)
                lock.release()
                raise LockHeld(
                    f"the {owner} run lock (GET_LOCK('{name}')) on {session.url.masked()} "
                    f"is held by {holder}",
                    hint="wait for that run to finish, or wait longer with --lock-wait DURATION; "
                    "backout never breaks a lock",
                )
            lock.names.append(name)
        return lock

    def check_run_lock(
        self, session: Session, actor: Actor, *, host_locks: Sequence[HostLock] = ()
    ) -> None:
        # IS_USED_LOCK rather than GET_LOCK: a try would make a run starting at this very
        # moment find the lock taken (by this check).
        wanted = [
            (lock_name(session.url.database or ""), "backout"),
            *((str(h.key), h.owner) for h in host_locks),
        ]
        for name, owner in wanted:
            (used,) = session.query("SELECT IS_USED_LOCK(%s)", (name,))[0]
            if used is not None:
                raise LockHeld(
                    f"the {owner} run lock (GET_LOCK('{name}')) on {session.url.masked()} "
                    f"is held by {self._holder(session, name)}",
                    hint="wait for that run to finish, or wait longer with --lock-wait DURATION; "
                    "backout never breaks a lock",
                )

    def _holder(self, session: Session, name: str) -> str:
        (holder,) = session.query("SELECT IS_USED_LOCK(%s)", (name,))[0]
        if holder is None:
            return "another session (it has just released it; try again)"
        found = session.query(
            "SELECT USER, HOST, DB, COMMAND, TIME FROM information_schema.PROCESSLIST "
            "WHERE ID = %s",
            (holder,),
        )
        program = None
        try:
            attrs = session.query(
                "SELECT ATTR_VALUE FROM performance_schema.session_connect_attrs "
                "WHERE PROCESSLIST_ID = %s AND ATTR_NAME = 'program_name'",
                (holder,),
            )
            program = str(attrs[0][0]) if attrs else None
        except DatabaseError:
            program = None  # performance_schema is off (MariaDB's default) or not readable
        if not found:
            return f"connection {holder}"
        user, host, db, command, seconds = found[0]
        parts = [f"program {program}"] if program else []
        parts.append(f"user {user} from {host}")
        if db:
            parts.append(f"database {db}")
        parts.append(f"{str(command).lower()} for {seconds}s")
        return f"connection {holder} ({', '.join(parts)})"

    def run_lock_description(self, *, host_locks: Sequence[HostLock] = ()) -> str:
        text = "MySQL named lock GET_LOCK('backout:<database>', 0)"
        for host in host_locks:
            text += f" and {host.owner}'s GET_LOCK('{host.key}', 0)"
        return text

    def host_locks(
        self, tool: str, url: DatabaseURL, *, schema: str | None, table: str
    ) -> list[HostLock]:
        # Each tool's own lock name, derived from its source (docs/history.md).
        database = url.database or ""
        if tool == "prisma":
            return [HostLock(PRISMA_LOCK_NAME, "Prisma Migrate")]
        if tool == "golang-migrate":
            # database/mysql/mysql.go Lock(): GET_LOCK(GenerateAdvisoryLockId("db:table"), 10)
            key = golang_migrate_lock_id(f"{database}:{table}")
            return [HostLock(str(key), "golang-migrate")]
        if tool == "flyway":
            return [HostLock(flyway_mysql_name(schema or database, table), "Flyway")]
        return []  # dbmate takes no lock

    @staticmethod
    def _seconds(lock_timeout: float) -> int:
        return max(1, math.ceil(lock_timeout))

    def lock_wait(self, lock_timeout: float) -> float:
        return float(self._seconds(lock_timeout))

    def _setters(self, lock_timeout: float, statement_timeout: float) -> list[str]:
        seconds = self._seconds(lock_timeout)
        statements = [
            f"SET SESSION lock_wait_timeout = {seconds}",
            f"SET SESSION innodb_lock_wait_timeout = {seconds}",
        ]
        if self.mariadb:
            statements.append(f"SET SESSION max_statement_time = {max(0.0, statement_timeout):g}")
        return statements

    def _resetters(self) -> list[str]:
        statements = [
            "SET SESSION lock_wait_timeout = DEFAULT",
            "SET SESSION innodb_lock_wait_timeout = DEFAULT",
        ]
        if self.mariadb:
            statements.append("SET SESSION max_statement_time = DEFAULT")
        return statements

    def timeout_statements(self, *, lock_timeout: float, statement_timeout: float) -> list[str]:
        # Session settings (MySQL has no SET LOCAL); after_script() puts them back.
        return self._setters(lock_timeout, statement_timeout)

    def session_timeout_statements(
        self, *, lock_timeout: float, statement_timeout: float
    ) -> tuple[list[str], list[str]]:
        return self._setters(lock_timeout, statement_timeout), self._resetters()

    def after_script(self, session: Session) -> None:
        """Put the session's timeouts back to the server's defaults."""
        for sql in self._resetters():
            session.execute(sql)

    def is_lock_timeout(self, sqlstate: str | None, message: str) -> bool:
        return sqlstate in _LOCK_TIMEOUT_ERRORS

    def is_statement_timeout(self, sqlstate: str | None, message: str) -> bool:
        return sqlstate in _STATEMENT_TIMEOUT_ERRORS

    def is_database_failure(self, sqlstate: str | None, message: str) -> bool:
        return sqlstate is None or sqlstate in _FAILURE_ERRORS

    # --- names ---------------------------------------------------------------------------------

    def quote(self, identifier: str) -> str:
        return quote_identifier(identifier)

    def history_table(self, logical: str, schema: str) -> str:
        return self.quote(f"backout_{logical}")

    def table_exists(self, session: Session, table: str, schema: str | None) -> bool:
        rows = session.query(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = %s",
            (table,),
        )
        return bool(rows)

    def ensure_history_schema(self, schema: str) -> list[str]:
        return []

    def user_tables(self, session: Session, history_schema: str) -> list[str]:
        rows = session.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE 'backout\\\\_%' "
            "AND TABLE_NAME <> '_prisma_migrations' ORDER BY TABLE_NAME"
        )
        return [str(r[0]) for r in rows if not self.is_host_table(None, str(r[0]))]

    def to_db_time(self, value: dt.datetime) -> object:
        # DATETIME(3) holds naive UTC (sessions run with time_zone '+00:00').
        stamp = value.astimezone(dt.UTC).replace(tzinfo=None)
        return stamp.replace(microsecond=stamp.microsecond // 1000 * 1000)

    def to_prisma_time(self, value: dt.datetime) -> object:
        return self.to_db_time(value)

    # --- catalog and impact --------------------------------------------------------------------

    def snapshot(self, session: Session) -> SchemaSnapshot:
        return read_mysql_snapshot(
            session.query, exclude=self.is_host_table if self.host_table else None
        )

    def table_stats(self, session: Session, snapshot: SchemaSnapshot) -> dict[str, TableStats]:
        return read_table_stats(session.query, snapshot)

    def dml_scope(self, statement: Statement, params: Collection[str] = ()) -> DmlScope | None:
        return mysql_impact.dml_scope(statement, params)

    def per_row_scans(self, session: Session, sql: str, params: Mapping[str, object]) -> list[str]:
        columns, rows = session.query_table(f"EXPLAIN {sql}", params, 1000)
        return [scan.describe("EXPLAIN") for scan in mysql_explain.per_row_scans(columns, rows)]

    def estimate_rows(self, session: Session, table: TableInfo) -> int | None:
        return mysql_impact.estimate_rows(session, table.name)

    def explain_rows(
        self, session: Session, from_where: str, params: Mapping[str, object]
    ) -> int | None:
        return mysql_impact.explain_rows(session, from_where, params)

    def find_orphans(self, session: Session, snapshot: SchemaSnapshot) -> list[OrphanRows]:
        """Every foreign key is checked: ``FOREIGN_KEY_CHECKS = 0`` (mysqldump's loads, bulk
        imports) lets rows in that point nowhere, and InnoDB never re-checks them."""
        keys = [(table, fk) for table in snapshot.tables.values() for fk in table.foreign_keys]
        return unvalidated_orphans(session, snapshot, keys)

    # --- scratch copies --------------------------------------------------------------------------

    @contextmanager
    def scratch(
        self,
        url: DatabaseURL,
        shadow: DatabaseURL | None,
        actor: Actor,
        *,
        prefix: str = scratch_names.DEFAULT_PREFIX,
    ) -> Iterator[DatabaseURL]:
        server = shadow or url
        name = scratch_names.new_name(prefix)
        admin = self.connect(server, actor=actor)
        try:
            charset, collation = self._database_defaults(
                admin if shadow is None else None, url, actor
            )
            self._sweep_scratch(admin, prefix)
            admin.execute(
                f"CREATE DATABASE {self.quote(name)} "
                f"DEFAULT CHARACTER SET {charset} COLLATE {collation}"
            )
        except DatabaseError as exc:
            raise DatabaseError(
                f"cannot create a scratch database on {server.masked()}: {exc.message}",
                sqlstate=exc.sqlstate,
                hint="set shadow_url in backout.toml to a server where backout may create "
                "throwaway databases",
            ) from exc
        finally:
            admin.close()
        try:
            yield server.with_database(name)
        finally:
            admin = self.connect(server, actor=actor)
            try:
                admin.execute(f"DROP DATABASE IF EXISTS {self.quote(name)}")
            finally:
                admin.close()

    def _database_defaults(
        self, session: Session | None, url: DatabaseURL, actor: Actor
    ) -> tuple[str, str]:
        """The default character set and collation of ``url``'s database (``session`` is on
        it, or None to connect): a scratch copy gets the same, or a table created there
        without its own COLLATE differs from the live one (a false drift in ``check``)."""
        fallback = ("utf8mb4", "utf8mb4_unicode_ci")
        try:
            own = session or self.connect(url, actor=actor)
        except DatabaseUnavailable:
            return fallback  # a scratch on the shadow server for a database not created yet
        try:
            ((charset, collation),) = own.query(
                "SELECT @@character_set_database, @@collation_database"
            )
        finally:
            if session is None:
                own.close()
        if not all(re.fullmatch(r"\w+", str(v)) for v in (charset, collation)):
            return fallback
        return str(charset), str(collation)

    def _sweep_scratch(self, admin: Session, prefix: str) -> None:
        """Drop the scratch databases killed runs left (see :mod:`scratch_names`)."""
        pattern = prefix.replace("_", "\\_") + "%"
        rows = admin.query(
            "SELECT s.SCHEMA_NAME, (SELECT count(*) FROM information_schema.PROCESSLIST p "
            "WHERE p.DB = s.SCHEMA_NAME) FROM information_schema.SCHEMATA s "
            "WHERE s.SCHEMA_NAME LIKE %s",
            (pattern,),
        )
        scratch_names.sweep(
            ((str(name), int(count)) for name, count in rows),
            lambda name: admin.execute(f"DROP DATABASE IF EXISTS {self.quote(name)}"),
            prefix,
        )

    def copy_database(
        self, source: DatabaseURL, target: DatabaseURL, actor: Actor, *, data: bool
    ) -> None:
        """``mariadb-dump --single-transaction`` of ``source`` piped into ``mariadb``."""
        with self.connect(source, actor=actor) as session:
            assert isinstance(session, MysqlSession)
            mariadb = session.mariadb
        dump = mysql_tools.find_tool("dump", server_is_mariadb=mariadb)
        client = mysql_tools.find_tool("client", server_is_mariadb=mariadb)
        with (
            mysql_tools.client_options(source) as source_options,
            mysql_tools.client_options(target) as target_options,
        ):
            args = [
                dump.path,
                *source_options.args,
                "--single-transaction",
                "--routines",
                "--triggers",
                "--skip-add-locks",
                "--skip-comments",
                "--hex-blob",
            ]
            if not data:
                args.append("--no-data")
            args.append(str(source.database))
            with client_programs.start(
                args,
                secrets=source.secrets,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=source_options.fds,
            ) as dumper:
                assert dumper.stdout is not None
                loaded = client_programs.run(
                    [client.path, *target_options.args, str(target.database)],
                    secrets=target.secrets,
                    stdin=dumper.stdout,
                    capture_output=True,
                    pass_fds=target_options.fds,
                )
                dumper.stdout.close()
                dump_err = dumper.stderr.read() if dumper.stderr else b""
                dumper.wait()
        if dumper.returncode != 0 or loaded.returncode != 0:
            detail = (dump_err or loaded.stderr).decode("utf-8", "replace").strip()
            raise DatabaseError(
                f"copying {source.masked()} to a scratch database failed: "
                + scrub(detail.splitlines()[-1] if detail else "unknown error", source.secrets)
            )

    def backup_engine(self) -> BackupEngine:
        return MysqlBackupEngine(self)
