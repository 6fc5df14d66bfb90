"""PostgreSQL: psycopg 3 sessions, pglast splitting, advisory run lock, ``SET LOCAL`` timeouts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from backout.dialects import client_programs, scratch_names
from backout.dialects.base import (
    Actor,
    BackupEngine,
    CommitNeeded,
    ControlStatement,
    Dialect,
    DmlScope,
    HostLock,
    KeptCopies,
    KeptStates,
    OrphanRows,
    RunLock,
    Session,
)
from backout.dialects.host_locks import flyway_postgres_key, golang_migrate_lock_id
from backout.dialects.params import bind_pyformat, mask_as_dollar_params
from backout.dialects.pool import ConnectionPool, current_pool
from backout.dialects.postgres import transactions as pg_transactions
from backout.dialects.postgres.pooler import check_not_transaction_pooled, refuse_declared
from backout.dialects.postgres.session import PostgresSession, translate
from backout.model.errors import DatabaseError, DatabaseUnavailable, LockHeld, ProjectError
from backout.model.identifiers import qualified_name, quote_identifier
from backout.model.script import Statement
from backout.model.urls import DatabaseURL, scrub

if TYPE_CHECKING:
    from backout.dialects.ddl_base import Draft, DraftStep, LiveNames, Rename
    from backout.dialects.fill import TableRows
    from backout.dialects.postgres import tools as pg_tools
    from backout.model.effects import ScriptEffects
    from backout.model.schema import SchemaSnapshot, TableInfo, TableStats

#: backout's own advisory lock key: the bytes of "backout" as a bigint
BACKOUT_LOCK_KEY = int.from_bytes(b"backout", "big")
#: the key ``prisma migrate deploy`` takes with pg_advisory_lock
PRISMA_LOCK_KEY = 72707369
#: client_connection_check_interval (PostgreSQL 14+) of every session, in milliseconds
CLIENT_CHECK_MS = 500

_LOCK_TIMEOUT_STATES = {"55P03"}  # lock_not_available (lock_timeout, NOWAIT)
#: SQLSTATE classes of a failing server rather than a refused statement: connection exception,
#: insufficient resources (disk full), operator intervention (pg_terminate_backend), system
#: error (I/O), internal error
_FAILURE_CLASSES = frozenset({"08", "53", "57", "58", "XX"})
#: what a schema snapshot leaves out but a rollback script may touch (see schema_key)
_UNSNAPSHOTTED = """
SELECT 'policy', schemaname || '.' || tablename || '.' || policyname,
       concat_ws(' ', permissive, roles::text, cmd, qual, with_check)
FROM pg_policies WHERE schemaname = ANY(%s)
UNION ALL
SELECT 'rule', schemaname || '.' || tablename || '.' || rulename, definition
FROM pg_rules WHERE schemaname = ANY(%s)
UNION ALL
SELECT 'statistics', n.nspname || '.' || x.stxname, pg_get_statisticsobjdef(x.oid)
FROM pg_statistic_ext x JOIN pg_namespace n ON n.oid = x.stxnamespace
WHERE n.nspname = ANY(%s)
UNION ALL
SELECT 'row security', n.nspname || '.' || c.relname,
       c.relrowsecurity::text || ' ' || c.relforcerowsecurity::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s) AND (c.relrowsecurity OR c.relforcerowsecurity)
ORDER BY 1, 2, 3
"""
_HOLDER_SQL = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), 'unknown application'), a.usename,
       coalesce(host(a.client_addr), 'local socket'), a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
        SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %s AND l.objid = %s AND l.objsubid = 1
"""


def _conninfo(url: DatabaseURL) -> str:
    """The URL without Prisma-only query parameters, which libpq would reject (a space is
    %20: libpq reads "+" as itself)."""
    parts = urlsplit(url.raw)
    scheme = "postgresql"
    return urlunsplit(
        (scheme, parts.netloc, parts.path, urlencode(url.params, quote_via=quote), "")
    )


def _lock_ids(key: int) -> tuple[int, int]:
    """An advisory lock's bigint key as pg_locks shows it: (classid, objid)."""
    return (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF


def _describe_holder(rows: Sequence[Sequence[Any]]) -> str:
    """Who holds a lock, from its :data:`_HOLDER_SQL` rows."""
    if not rows:
        return "another session (it has just released it; try again)"
    pid, app, user, client, started = rows[0]
    since = started.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if started else "?"
    return f"pid {pid} ({app}, user {user}, from {client}, connected since {since})"


class AdvisoryLock(RunLock):
    """Session-level advisory locks, released on release() or when the connection ends."""

    def __init__(self, session: PostgresSession, keys: list[int], description: str):
        self.session = session
        self.keys = keys
        self.description = description

    def release(self) -> None:
        import psycopg

        while self.keys:
            key = self.keys.pop()
            if self.session.conn.closed:
                continue
            try:
                self.session.conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.Error:
                # A dead connection has already released its session locks.
                continue


#: extensions in schemas outside a scope (pg_catalog's are in every database)
_EXTENSIONS_OUTSIDE = (
    "SELECT e.extname::text, n.nspname::text FROM pg_catalog.pg_extension e "
    "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
    "WHERE n.nspname <> 'pg_catalog' AND NOT n.nspname = ANY(%s::text[]) ORDER BY 1"
)


#: foreign keys from outside a scope into it whose ON DELETE changes the outside rows
_REFERENCES_FROM_OUTSIDE = (
    "SELECT rn.nspname::text, r.relname::text, fn.nspname::text, f.relname::text, "
    "c.confdeltype::text FROM pg_catalog.pg_constraint c "
    "JOIN pg_catalog.pg_class r ON r.oid = c.conrelid "
    "JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace "
    "JOIN pg_catalog.pg_class f ON f.oid = c.confrelid "
    "JOIN pg_catalog.pg_namespace fn ON fn.oid = f.relnamespace "
    "WHERE c.contype = 'f' AND c.confdeltype IN ('c', 'n', 'd') "
    "AND fn.nspname = ANY(%s::text[]) AND NOT rn.nspname = ANY(%s::text[]) ORDER BY 1, 2, 3, 4"
)


class PostgresDialect(Dialect):
    """PostgreSQL 12 or newer."""

    name: ClassVar[str] = "postgresql"
    parser_packages: ClassVar[tuple[str, ...]] = ("pglast",)
    display_name: ClassVar[str] = "PostgreSQL"
    default_port: ClassVar[int | None] = 5432
    default_schema: ClassVar[str | None] = "public"
    has_schemas: ClassVar[bool] = True
    # dbmate pkg/driver/postgres CreateMigrationsTable; golang-migrate database/postgres
    dbmate_table_ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS {table} (version varchar PRIMARY KEY)",
    )
    golang_migrate_table_ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS {table} (version bigint NOT NULL PRIMARY KEY, "
        "dirty boolean NOT NULL)",
    )
    # PostgreSQLDatabase.getRawCreateScript (flyway-database-postgresql), no tablespace
    flyway_history_ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE {table} (\n"
        '    "installed_rank" INT NOT NULL,\n'
        '    "version" VARCHAR(50),\n'
        '    "description" VARCHAR(200) NOT NULL,\n'
        '    "type" VARCHAR(20) NOT NULL,\n'
        '    "script" VARCHAR(1000) NOT NULL,\n'
        '    "checksum" INTEGER,\n'
        '    "installed_by" VARCHAR(100) NOT NULL,\n'
        '    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),\n'
        '    "execution_time" INTEGER NOT NULL,\n'
        '    "success" BOOLEAN NOT NULL\n'
        ")",
        'ALTER TABLE {table} ADD CONSTRAINT {pk} PRIMARY KEY ("installed_rank")',
        'CREATE INDEX {idx} ON {table} ("success")',
    )
    #: PostgreSQLDatabase.doGetCurrentUser: ``SELECT current_user``
    flyway_installed_by: ClassVar[str] = "current_user"
    timestamp_type: ClassVar[str] = "timestamptz"
    serial_primary_key: ClassVar[str] = "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"

    def _reuse(self, pool: ConnectionPool, conninfo: str, url: DatabaseURL) -> Session | None:
        """A session on a connection ``pool`` kept for this database, or None. One the
        server closed meanwhile (idle timeout, pooler, failover) is dropped, not used."""
        while (conn := pool.take(conninfo)) is not None:
            # Idle, no transaction open; what the last session left set (its migrations' SET,
            # temporary tables, advisory locks...) is reset as a new connection has it.
            session = PostgresSession(self, url, conn, pool=(pool, conninfo))
            try:
                session.reset(self._session_setup(url, conn.info.server_version))
            except DatabaseError:
                with suppress(Exception):  # already closed by the server
                    conn.close()
                continue
            return session
        return None

    def connect(
        self,
        url: DatabaseURL,
        *,
        actor: Actor,
        connect_timeout: float = 10.0,
        create: bool = True,
    ) -> Session:
        import psycopg

        refuse_declared(url)
        pool = current_pool()
        conninfo = _conninfo(url)
        reused = self._reuse(pool, conninfo, url) if pool is not None else None
        if reused is not None:
            return reused
        try:
            conn = psycopg.connect(
                conninfo,
                autocommit=True,
                connect_timeout=max(1, int(connect_timeout)),
                application_name=actor.label()[:63],
            )
        except psycopg.Error as exc:
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            reason = scrub("; ".join(lines[-2:]) if lines else type(exc).__name__, url.secrets)
            raise DatabaseUnavailable(f"cannot connect to {url.masked()}: {reason}") from exc
        session = PostgresSession(
            self, url, conn, pool=(pool, conninfo) if pool is not None else None
        )
        try:
            # before anything else, SET search_path included: through a transaction pooler it
            # would stick to a backend other clients use
            check_not_transaction_pooled(conn, conninfo, url)
        except psycopg.Error as exc:
            conn.close()
            raise translate(exc, url) from exc
        except BaseException:
            conn.close()
            raise
        for sql in self._session_setup(url, conn.info.server_version):
            session.execute(sql)
        return session

    def _session_setup(self, url: DatabaseURL, server_version: int) -> list[str]:
        """What every session sets on its connection first."""
        setup = []
        if server_version >= 140000:
            # A backout killed mid-statement (kill -9, a lost terminal) leaves no backend
            # running its statement on, holding its locks: the server notices the missing
            # client within half a second, rolls back and ends the session.
            setup.append(f"SET client_connection_check_interval = {CLIENT_CHECK_MS}")
        if url.schema:
            setup.append(f"SET search_path TO {self.quote(url.schema)}")
        return setup

    # --- scripts -----------------------------------------------------------------------------

    dollar_quotes: ClassVar[bool] = True

    def fill_tables(self, url: DatabaseURL, tables: Sequence[TableRows]) -> dict[str, int]:
        from backout.dialects.postgres.fill import fill_tables

        return fill_tables(url, tables)

    def analyze(self, statements: Sequence[Statement]) -> ScriptEffects:
        from backout.dialects.postgres.effects import analyze_statements

        return analyze_statements(statements)

    squawk_parses: ClassVar[bool] = True

    def split(
        self, text: str, display: str, *, first_line: int = 1, params: Collection[str] = ()
    ) -> list[Statement]:
        import pglast
        from pglast.parser import ParseError

        # pglast does not know :name placeholders: parse a copy where each is a $n of the same
        # length (so offsets still match), and cut the statements out of the original text.
        spans = self.param_spans(text, params)
        parsed = mask_as_dollar_params(text, spans, numbered=False)
        try:
            slices = pglast.split(parsed, with_parser=True, only_slices=True)
        except ParseError as exc:
            message = exc.args[0]
            location = exc.args[1] if len(exc.args) > 1 else None
            # An error at the end of input (an unclosed bracket) carries no location.
            end = len(parsed) if location is None else max(0, location)
            line = first_line + text.count("\n", 0, end)
            raise ProjectError(f"syntax error: {message}", path=display, line=line) from exc
        statements = []
        for index, part in enumerate(slices, start=1):
            start = part.start or 0
            line = first_line + text.count("\n", 0, start)
            statements.append(Statement(sql=text[part].strip(), line=line, index=index))
        return statements

    def bind(self, sql: str, values: Mapping[str, object]) -> tuple[str, dict[str, object]]:
        return bind_pyformat(sql, self.param_spans(sql, values.keys()), values, self.adapt)

    def check_write(self, sql: str, params: Collection[str] = ()) -> str | None:
        # lazy: check_guard imports pglast at import time, which only check queries need
        from backout.dialects.postgres.check_guard import check_write

        return check_write(sql, params)

    def transaction_conflict(self, statement: Statement) -> str | None:
        return pg_transactions.transaction_conflict(statement)

    def transaction_control(self, statement: Statement) -> ControlStatement | None:
        return pg_transactions.transaction_control(statement)

    def commit_needed(self, statements: Sequence[Statement]) -> list[CommitNeeded]:
        return pg_transactions.commit_needed(statements)

    def left_by_failure(
        self, session: Session, statement: Statement, before: object = None
    ) -> list[str]:
        """A failed ``CREATE INDEX CONCURRENTLY`` leaves its index behind, marked invalid
        (PostgreSQL's documentation says to drop it and try again): drop it, unless the index
        of that name is the one that stood there before (``before``: its oid), which is not
        the statement's (someone's earlier attempt, or a build running in another session)."""
        name = pg_transactions.concurrent_index_name(statement)
        if name is None:
            return []
        rows = session.query(
            "SELECT NOT i.indisvalid, i.indexrelid::bigint FROM pg_index i "
            "WHERE i.indexrelid = to_regclass(%s)",
            (name,),
        )
        if not rows or not rows[0][0] or (before is not None and rows[0][1] == before):
            return []
        return [f"DROP INDEX CONCURRENTLY IF EXISTS {name}"]

    def failure_marker(self, session: Session, statement: Statement) -> object:
        """The oid of the index a ``CREATE INDEX CONCURRENTLY`` names, when one stands."""
        name = pg_transactions.concurrent_index_name(statement)
        if name is None:
            return None
        rows = session.query("SELECT to_regclass(%s)::oid::bigint", (name,))
        return rows[0][0] if rows else None

    # --- locks and timeouts --------------------------------------------------------------------

    def acquire_run_lock(
        self, session: Session, actor: Actor, *, host_locks: Sequence[HostLock] = ()
    ) -> RunLock:
        assert isinstance(session, PostgresSession)
        keys = [(BACKOUT_LOCK_KEY, "backout"), *((int(h.key), h.owner) for h in host_locks)]
        lock = AdvisoryLock(session, [], f"pg_try_advisory_lock({BACKOUT_LOCK_KEY})")
        for key, owner in keys:
            (got,) = session.query("SELECT pg_try_advisory_lock(%s)", (key,))[0]
            if not got:
                holder = self._holder(session, key)
                lock.release()
                raise LockHeld(
                    f"the {owner} run lock (advisory lock {key}) on {session.url.masked()} "
                    f"is held by {holder}",
                    hint="wait for that run to finish, or wait longer with --lock-wait DURATION; "
                    "backout never breaks a lock",
                )
            lock.keys.append(key)
        for host in host_locks:
            lock.description += f" and pg_try_advisory_lock({host.key})"
        return lock

    def check_run_lock(
        self, session: Session, actor: Actor, *, host_locks: Sequence[HostLock] = ()
    ) -> None:
        # Read pg_locks rather than try the lock: a try would make a run starting at this very
        # moment find it taken (by this check). pg_locks lists session and transaction-level
        # advisory locks alike (Flyway takes pg_try_advisory_xact_lock by default).
        keys = [(BACKOUT_LOCK_KEY, "backout"), *((int(h.key), h.owner) for h in host_locks)]
        # Every lock's holders in one round trip; a holder found is named from its own row.
        found = session.query_many([(_HOLDER_SQL, _lock_ids(key)) for key, _ in keys])
        for (key, owner), rows in zip(keys, found, strict=True):
            if rows:
                raise LockHeld(
                    f"the {owner} run lock (advisory lock {key}) on {session.url.masked()} "
                    f"is held by {_describe_holder(rows)}",
                    hint="wait for that run to finish, or wait longer with --lock-wait DURATION; "
                    "backout never breaks a lock",
                )

    def host_locks(
        self, tool: str, url: DatabaseURL, *, schema: str | None, table: str
    ) -> list[HostLock]:
        # Each tool's own key, derived from its source (docs/history.md).
        schema = schema or url.schema or "public"
        if tool == "prisma":
            return [HostLock(PRISMA_LOCK_KEY, "Prisma Migrate")]
        if tool == "golang-migrate":
            # database/postgres/postgres.go Lock(): GenerateAdvisoryLockId(DatabaseName, schema,
            # table), DatabaseName being the URL's path as Go parses it, leading "/" included.
            name = "/" + (url.database or "")
            return [HostLock(golang_migrate_lock_id(name, schema, table), "golang-migrate")]
        if tool == "flyway":
            return [HostLock(flyway_postgres_key(schema, table), "Flyway")]
        return []  # dbmate takes no lock

    def _holder(self, session: Session, key: int) -> str:
        return _describe_holder(session.query(_HOLDER_SQL, _lock_ids(key)))

    def timeout_statements(self, *, lock_timeout: float, statement_timeout: float) -> list[str]:
        return [
            f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'",
            f"SET LOCAL statement_timeout = '{int(statement_timeout * 1000)}ms'",
        ]

    def is_lock_timeout(self, sqlstate: str | None, message: str) -> bool:
        return sqlstate in _LOCK_TIMEOUT_STATES

    def is_database_failure(self, sqlstate: str | None, message: str) -> bool:
        # No SQLSTATE: libpq lost the connection ("server closed the connection unexpectedly").
        return sqlstate is None or sqlstate[:2] in _FAILURE_CLASSES

    supports_statement_timeout: ClassVar[bool] = True

    def is_statement_timeout(self, sqlstate: str | None, message: str) -> bool:
        return sqlstate == "57014" and "statement timeout" in message

    def session_timeout_statements(
        self, *, lock_timeout: float, statement_timeout: float
    ) -> tuple[list[str], list[str]]:
        return (
            [
                f"SET lock_timeout = '{int(lock_timeout * 1000)}ms'",
                f"SET statement_timeout = '{int(statement_timeout * 1000)}ms'",
            ],
            ["RESET lock_timeout", "RESET statement_timeout"],
        )

    def hook_environment(self, url: DatabaseURL) -> dict[str, str]:
        # libpq (psql, pg_dump) rejects Prisma's ?schema= ("invalid URI query parameter"):
        # DATABASE_URL carries the schema as libpq's options=-csearch_path= instead.
        env = super().hook_environment(url)
        params = dict(url.params)
        if url.schema:
            # search_path takes identifiers ("App" is not app, "a,b" not two schemas), and in
            # libpq's options a space separates two options unless escaped with a backslash.
            # The URL's own options (-c statement_timeout=...) stay.
            value = self.quote(url.schema).replace("\\", "\\\\").replace(" ", "\\ ")
            own = params.get("options", "").strip()
            params["options"] = (own + " " if own else "") + f"-csearch_path={value}"
        parts = urlsplit(url.raw)
        env["DATABASE_URL"] = urlunsplit(
            ("postgresql", parts.netloc, parts.path, urlencode(params, quote_via=quote), "")
        )
        return env

    def run_lock_description(self, *, host_locks: Sequence[HostLock] = ()) -> str:
        keys = f"pg_try_advisory_lock({BACKOUT_LOCK_KEY})"
        for host in host_locks:
            keys += f" and {host.owner}'s pg_try_advisory_lock({host.key})"
        return f"PostgreSQL advisory lock: {keys}"

    # --- names ---------------------------------------------------------------------------------

    def quote(self, identifier: str) -> str:
        return quote_identifier(identifier)

    def history_table(self, logical: str, schema: str) -> str:
        return f"{self.quote(schema)}.{self.quote(logical)}"

    def table_exists(self, session: Session, table: str, schema: str | None) -> bool:
        return self.tables_exist(session, [(table, schema)])[0]

    def tables_exist(
        self, session: Session, tables: Sequence[tuple[str, str | None]]
    ) -> list[bool]:
        if not tables:
            return []
        names = [
            self.quote(table) if schema is None else f"{self.quote(schema)}.{self.quote(table)}"
            for table, schema in tables
        ]
        columns = ", ".join("to_regclass(%s) IS NOT NULL" for _ in names)
        return [bool(value) for value in session.query(f"SELECT {columns}", names)[0]]

    def snapshot(self, session: Session) -> SchemaSnapshot:
        from backout.dialects.postgres.catalog import read_postgres_snapshot, url_scope

        return read_postgres_snapshot(
            session.query,
            schemas=url_scope(session.url),
            history_schema=self.history_schema,
            batch=session.query_many,
            exclude=self.is_host_table if self.host_table else None,
        )

    def table_stats(self, session: Session, snapshot: SchemaSnapshot) -> dict[str, TableStats]:
        from backout.dialects.postgres.catalog import read_table_stats

        return read_table_stats(session.query, snapshot)

    def dml_scope(self, statement: Statement, params: Collection[str] = ()) -> DmlScope | None:
        from backout.dialects.postgres import impact as pg_impact

        return pg_impact.dml_scope(statement, params)

    def per_row_scans(self, session: Session, sql: str, params: Mapping[str, object]) -> list[str]:
        from backout.dialects.postgres import explain as pg_explain

        rows = session.query_native(f"EXPLAIN (FORMAT JSON) {sql}", params)
        document = rows[0][0]
        if isinstance(document, str):
            document = json.loads(document)

        def estimate(schema: str | None, name: str) -> int:
            found = session.query(
                "SELECT c.reltuples::bigint FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = %s AND (%s::text IS NULL OR n.nspname = %s)",
                (name, schema, schema),
            )
            rows = int(str(found[0][0])) if found else 0
            if found and rows < 0:  # never analysed: -1 means unknown, so count
                where = f"{self.quote(schema)}.{self.quote(name)}" if schema else self.quote(name)
                rows = int(str(session.query(f"SELECT count(*) FROM {where}")[0][0]))
            return rows

        return [
            scan.describe("EXPLAIN")
            for scan in pg_explain.per_row_scans(document[0]["Plan"], estimate)
        ]

    def estimate_rows(self, session: Session, table: TableInfo) -> int | None:
        from backout.dialects.postgres import impact as pg_impact

        return pg_impact.estimate_rows(session, self.table_sql(table))

    def estimate_non_null(
        self, session: Session, table: TableInfo, column: str, rows: int
    ) -> int | None:
        from backout.dialects.postgres import impact as pg_impact

        return pg_impact.estimate_non_null(session, table, column, rows)

    def count_sql(self, query: str, params: Collection[str]) -> str:
        from backout.dialects.postgres import impact as pg_impact

        return pg_impact.count_sql(query, self.param_spans(query, params))

    def explain_rows(
        self, session: Session, from_where: str, params: Mapping[str, object]
    ) -> int | None:
        from backout.dialects.postgres import impact as pg_impact

        return pg_impact.explain_rows(session, from_where, params)

    def _server_version_at(self, url: DatabaseURL, actor: Actor) -> pg_tools.Version:
        """The version of the server at ``url``, asked once per server and process: a
        rehearsal walk runs ``pg_dump`` twice per migration, each needing it."""
        from backout.dialects.postgres import tools as pg_tools

        versions: dict[tuple[str | None, int | None, str | None], pg_tools.Version] = (
            self.__dict__.setdefault("_server_versions", {})
        )
        key = (url.host, url.port, dict(url.params).get("host"))
        if key not in versions:
            with self.connect(url, actor=actor) as session:
                versions[key] = pg_tools.server_version(session)
        return versions[key]

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
        name = self.create_scratch(server, actor, prefix)
        try:
            yield server.with_database(name)
        finally:
            self.drop_scratch(server, actor, name)

    def create_scratch(
        self,
        server: DatabaseURL,
        actor: Actor,
        prefix: str,
        *,
        template: str | None = None,
        admin: Session | None = None,
    ) -> str:
        """Create an empty scratch database on ``server`` (after sweeping the abandoned ones),
        or a copy of the database ``template`` (no session may be connected to it); its name.
        ``admin``: a session on ``server`` to use (else one is opened and closed)."""
        name = scratch_names.new_name(prefix)
        own = admin is None
        admin = self.connect(server, actor=actor) if admin is None else admin
        try:
            self._sweep_scratch(admin, prefix)
            copied = f" TEMPLATE {self.quote(template)}" if template else ""
            admin.execute(f"CREATE DATABASE {self.quote(name)}{copied}")
        except DatabaseError as exc:
            raise DatabaseError(
                f"cannot create a scratch database on {server.masked()}: {exc.message}",
                sqlstate=exc.sqlstate,
                hint="set shadow_url in backout.toml to a server where backout may create "
                "throwaway databases",
            ) from exc
        finally:
            if own:
                admin.close()
        return name

    def drop_scratch(self, server: DatabaseURL, actor: Actor, name: str) -> None:
        """Drop the scratch database ``name`` on ``server`` (gone already: fine)."""
        admin = self.connect(server, actor=actor)
        try:
            admin.execute(f"DROP DATABASE IF EXISTS {self.quote(name)} WITH (FORCE)")
        finally:
            admin.close()

    def _sweep_scratch(self, admin: Session, prefix: str) -> None:
        """Drop the scratch databases killed runs left (see :mod:`scratch_names`); kept
        simulation copies and replay states once they have been idle long enough."""
        from backout.dialects.postgres.kept import KEPT_ANY

        pattern = prefix.replace("_", "\\_") + "%"
        rows = admin.query(
            "SELECT d.datname, (SELECT count(*) FROM pg_stat_activity a "
            "WHERE a.datname = d.datname), "
            "coalesce(shobj_description(d.oid, 'pg_database'), '') LIKE %s "
            "FROM pg_database d WHERE d.datname LIKE %s",
            (KEPT_ANY + "%", pattern),
        )
        scratch_names.sweep(
            ((str(name), int(count)) for name, count, _ in rows),
            lambda name: admin.execute(f"DROP DATABASE IF EXISTS {self.quote(name)} WITH (FORCE)"),
            prefix,
            kept={str(name) for name, _, kept in rows if kept},
        )

    def schema_key(self, session: Session, snapshot: SchemaSnapshot) -> str:
        # Row security, policies, rules and extended statistics are not in a snapshot, yet a
        # rollback script may drop or depend on them.
        rows = session.query(_UNSNAPSHOTTED, (list(snapshot.schemas),) * 4)
        text = json.dumps([snapshot.fingerprint(), [list(r) for r in rows]], default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def kept_copies(
        self,
        url: DatabaseURL,
        shadow: DatabaseURL | None,
        actor: Actor,
        *,
        prefix: str = scratch_names.DEFAULT_PREFIX,
        admin: Session | None = None,
    ) -> KeptCopies:
        from backout.dialects.postgres.kept import PostgresKeptCopies

        return PostgresKeptCopies(
            self, url, shadow or url, actor, prefix, admin=admin if shadow is None else None
        )

    def kept_states(
        self,
        url: DatabaseURL,
        shadow: DatabaseURL | None,
        actor: Actor,
        *,
        prefix: str = scratch_names.DEFAULT_PREFIX,
        owner: str = "",
    ) -> KeptStates:
        """Replayed states kept as template databases (see .kept)."""
        from backout.dialects.postgres.kept import PostgresKeptStates

        return PostgresKeptStates(self, shadow or url, actor, prefix, owner)

    def copy_database(
        self, source: DatabaseURL, target: DatabaseURL, actor: Actor, *, data: bool
    ) -> None:
        from backout.dialects.postgres import tools as pg_tools
        from backout.dialects.postgres.catalog import dump_scope_args, scope_extensions, url_scope

        scope = url_scope(source)
        with self.connect(source, actor=actor) as session:
            server = pg_tools.server_version(session)
            # extensions outside the scope that its objects may use (Supabase's `extensions`)
            outside = [] if scope is None else session.query(_EXTENSIONS_OUTSIDE, (scope,))
            inside = scope_extensions(session.query, source)
        tools = pg_tools.find_tools(server)
        source_info, source_env = pg_tools.libpq_target(source)
        target_info, target_env = pg_tools.libpq_target(target)
        args = [str(tools.dump), "--format=custom", "--no-owner", "--no-acl", source_info]
        # only the project's schema (and backout's ledger): a copy of the whole database
        # would be slower, and would show the other projects' objects to the rehearsal
        args[1:1] = dump_scope_args(source, self.history_schema, inside)
        if scope:
            # Such a dump says CREATE SCHEMA for its schemas; the new scratch database already
            # has an empty public (?schema=public, Prisma's default URL): drop it first. It
            # holds no extension: those the scope may use come first, where the source has them.
            with self.connect(target, actor=actor, create=False) as scratch:
                for name in scope:
                    scratch.execute(f"DROP SCHEMA IF EXISTS {self.quote(name)}")
                for extension, schema in outside:
                    # not fatal here: pg_restore names what is missing if the scope needs it
                    with suppress(DatabaseError):
                        scratch.execute(f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}")
                        scratch.execute(
                            f"CREATE EXTENSION IF NOT EXISTS {self.quote(extension)} "
                            f"WITH SCHEMA {self.quote(schema)}"
                        )
        if not data:
            args.insert(1, "--schema-only")
        with client_programs.start(
            args,
            secrets=source.secrets,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=source_env,
        ) as dumper:
            assert dumper.stdout is not None
            restored = client_programs.run(
                [tools.restore, "--no-owner", "--no-acl", "--exit-on-error", "-d", target_info],
                secrets=target.secrets,
                stdin=dumper.stdout,
                capture_output=True,
                env=target_env,
            )
            dumper.stdout.close()
            dump_err = dumper.stderr.read() if dumper.stderr else b""
            dumper.wait()
        if dumper.returncode != 0 or restored.returncode != 0:
            detail = (dump_err or restored.stderr).decode("utf-8", "replace").strip()
            raise DatabaseError(
                f"copying {source.masked()} to a scratch database failed: "
                + scrub(detail.splitlines()[-1] if detail else "unknown error", source.secrets)
            )

    def references_from_outside(self, session: Session) -> list[tuple[str, str, str]]:
        from backout.dialects.postgres.catalog import url_scope

        scope = url_scope(session.url)
        if scope is None:
            return []
        rows = session.query(_REFERENCES_FROM_OUTSIDE, (scope, scope))
        actions = {
            "c": "ON DELETE CASCADE",
            "n": "ON DELETE SET NULL",
            "d": "ON DELETE SET DEFAULT",
        }
        return [
            (qualified_name(str(rs), str(rn)), qualified_name(str(fs), str(fn)), actions[str(a)])
            for rs, rn, fs, fn, a in rows
        ]

    def user_tables(self, session: Session, history_schema: str) -> list[str]:
        from backout.dialects.postgres.catalog import url_scope

        # only the project's scope: another project's schema does not make this one non-empty
        scope = url_scope(session.url)
        rows = session.query(
            "SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname <> ALL(%s) "
            "AND n.nspname NOT LIKE 'pg\\_%%' AND c.relname <> '_prisma_migrations' "
            "AND (%s::text[] IS NULL OR n.nspname = ANY(%s::text[])) ORDER BY 1",
            (["information_schema", history_schema], scope, scope),
        )
        return [str(r[0]) for r in rows if not self._host_key(str(r[0]))]

    def _host_key(self, key: str) -> bool:
        """Whether a ``schema.table`` key (as format('%I.%I') gives it) is the host table."""
        schema, _, name = key.rpartition(".")
        return self.is_host_table(schema.strip('"'), name.strip('"'))

    def ensure_url_schema(self, url: DatabaseURL) -> list[str]:
        # Prisma's migrate deploy creates the ?schema= schema too.
        return [f"CREATE SCHEMA IF NOT EXISTS {self.quote(url.schema)}"] if url.schema else []

    def ensure_history_schema(self, schema: str) -> list[str]:
        return [f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}"]

    def backup_engine(self) -> BackupEngine:
        from backout.dialects.postgres.backup import PostgresBackupEngine

        return PostgresBackupEngine(self)

    # --- rehearsals and drafts -----------------------------------------------------------------

    def find_orphans(self, session: Session, snapshot: SchemaSnapshot) -> list[OrphanRows]:
        """Foreign keys added ``NOT VALID`` and not validated since (a validated key is
        enforced by the server, so it cannot have orphans)."""
        from backout.dialects.orphans import unvalidated_orphans

        keys = [
            (table, fk)
            for table in snapshot.tables.values()
            for fk in table.foreign_keys
            if not fk.validated
        ]
        return unvalidated_orphans(session, snapshot, keys)

    def schema_dump(
        self, url: DatabaseURL, actor: Actor, *, ignore_column_order: bool = False
    ) -> str | None:
        """``pg_dump --schema-only``, normalised (see
        :mod:`backout.dialects.postgres.schema_dump`)."""
        from backout.dialects.postgres.schema_dump import schema_dump

        return schema_dump(
            url,
            self._server_version_at(url, actor),
            history_schema=self.history_schema,
            ignore_column_order=ignore_column_order,
            host_table=self.host_table,
        )

    def tune_scratch(self, url: DatabaseURL, actor: Actor) -> None:
        """``synchronous_commit = off`` for every later session: no WAL flush per COMMIT."""
        with self.connect(url, actor=actor) as session:
            name = self.quote(url.database or "")
            session.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")

    def typed_placeholder(self, type_: str) -> str:
        """``CAST(%s AS type)``: text parameters become enums, timestamps, json..."""
        return f"CAST(%s AS {type_})"

    def draft_rollback(
        self,
        before: SchemaSnapshot,
        after: SchemaSnapshot,
        *,
        definitions: Mapping[str, str] | None = None,
        live: LiveNames | None = None,
    ) -> Draft:
        """SQL that turns a database at ``after`` back into ``before`` (see pg_ddl)."""
        from backout.dialects.postgres.ddl import draft_rollback

        return draft_rollback(before, after, live=live)

    caches_states: ClassVar[bool] = True

    def save_state(self, url: DatabaseURL, actor: Actor, path: Path) -> None:
        """``pg_dump`` of the database (schema and rows) into ``path`` as SQL (see .state)."""
        from backout.dialects.postgres.state import save_state

        save_state(url, self._server_version_at(url, actor), path)

    def state_origin(self, url: DatabaseURL, actor: Actor) -> str:
        """The server's version, e.g. ``PostgreSQL 15.20`` (asked once per process)."""
        major, minor = self._server_version_at(url, actor)
        return f"PostgreSQL {major}.{minor}"

    def load_state(self, url: DatabaseURL, actor: Actor, path: Path) -> None:
        """Run a :meth:`save_state` file as one batch on one connection (see .state)."""
        from backout.dialects.postgres.state import state_sql

        sql = state_sql(path)
        # A connection of its own: the dump sets search_path and other settings for itself.
        with self.connect(url, actor=actor) as session:
            session.execute(sql)

    def empty_tables(self, session: Session, tables: Sequence[TableInfo]) -> None:
        """``TRUNCATE ... CASCADE``: the rows referencing them go too, as a copy needs."""
        if tables:
            names = ", ".join(self.table_sql(t) for t in tables)
            session.execute(f"TRUNCATE {names} CASCADE")

    def undo_inserts(
        self, statements: Sequence[Statement], before: SchemaSnapshot
    ) -> tuple[list[DraftStep], set[int]]:
        """Deletes by primary key of literal ``INSERT ... VALUES`` rows (see pg_data)."""
        from backout.dialects.postgres.data import undo_inserts

        return undo_inserts(statements, before)

    def rename_back(self, rename: Rename) -> str | None:
        """``ALTER TABLE/INDEX/TYPE/... RENAME`` back to the old name."""
        from backout.dialects.postgres.ddl import rename_back

        return rename_back(rename)
