"""PostgreSQL backups with ``pg_dump --format=custom`` and ``pg_restore``.

Taking a backup:

- ``pg_dump`` and ``pg_restore`` are found by :mod:`backout.dialects.postgres.tools` (the
  first pair at least as new as the server); none: ToolMissing, before anything is written.
- backout's session opens a ``REPEATABLE READ, READ ONLY`` transaction and exports its snapshot;
  ``pg_dump --snapshot`` dumps exactly that state, and the schema snapshot and row counts are
  read in it too, so the record describes the file exactly.
- A scoped backup passes ``--exclude-table-data`` for every table outside the scope. Patterns
  follow psql's rules; inside double quotes every character is literal and ``""`` is a quote,
  so ``"public"."we""ird"`` matches exactly the table ``we"ird`` and nothing else.
- The password goes to the tools in ``PGPASSWORD``, never on their command line.

Restoring over the current database happens in ONE transaction on backout's session:
``pg_restore -f -`` turns the archive into SQL (``-L`` selects the TOC entries needed), which is
executed statement group by statement group, ``COPY ... FROM stdin`` blocks through psycopg's
``cursor.copy``. Before that, what the backup re-creates is dropped: the tables whose rows it
holds (CASCADE: whatever the cascade takes that the backup holds is re-created too, and the
fingerprint check afterwards catches anything it could not), tables it does not know, and
schema objects that differ from it. The script's session-level settings (``SET``,
``set_config(..., false)``) are made transaction-local or reset afterwards, and the lines
``\\restrict``/``\\unrestrict`` that pg_dump 15.18+ writes into plain SQL are dropped.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, Final

from backout.dialects import client_programs
from backout.dialects.base import (
    Actor,
    BackupEngine,
    Dialect,
    DumpResult,
    Progress,
    RestoreRequest,
    Session,
)
from backout.dialects.postgres.catalog import dump_scope_args, scope_extensions, url_scope
from backout.dialects.postgres.session import translate
from backout.dialects.postgres.tools import (
    PgTools,
    find_tools,
    libpq_target,
    server_version,
    tools_for_archive,
)
from backout.model.errors import BackupError, DatabaseError, LockError
from backout.model.identifiers import qualified_name, quote_identifier
from backout.model.schema import SchemaSnapshot, TableInfo
from backout.model.urls import DatabaseURL, parse_url, scrub

if TYPE_CHECKING:
    import psycopg

#: backout's audit tables and journal (in the history schema): never dumped, never restored
NEVER_TABLES: Final = ("events", "schema_version", "journal")
PRISMA_TABLE: Final = "_prisma_migrations"

_TOC_LINE = re.compile(r"^(\d+); \d+ \d+ (.*)$")
_TIMEOUT_SETTINGS = re.compile(
    rb"^SET (statement_timeout|lock_timeout|idle_in_transaction_session_timeout|"
    rb"transaction_timeout) = "
)
_SEARCH_PATH = b"SELECT pg_catalog.set_config('search_path', '', false);"
_COPY = re.compile(rb"^COPY .+ FROM stdin;\n$")
_CHUNK: Final = 1 << 20
#: TOC entry types whose tag is ``<table> <name>``
_TABLE_CHILDREN: Final = ("CONSTRAINT", "FK CONSTRAINT", "DEFAULT", "TRIGGER", "POLICY", "RULE")
_LOCK_NOT_AVAILABLE: Final = "55P03"


def _relation(schema: str | None, name: str) -> str:
    return f"{quote_identifier(schema or 'public')}.{quote_identifier(name)}"


def dump_pattern(schema: str, name: str) -> str:
    """A pg_dump ``--table``/``--exclude-table-data`` pattern matching exactly one table."""
    return f"{quote_identifier(schema)}.{quote_identifier(name)}"


# --------------------------------------------------------------------------------------------
# Connecting the tools


def _run(
    args: Sequence[str | Path], *, url: DatabaseURL, env: Mapping[str, str], what: str, **kw: Any
) -> subprocess.CompletedProcess[bytes]:
    try:
        done = client_programs.run(args, secrets=url.secrets, env=env, stderr=subprocess.PIPE, **kw)
    except OSError as exc:
        raise BackupError(f"cannot run {args[0]}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {_stderr(done.stderr, url)}")
    return done


def _stderr(data: bytes, url: DatabaseURL) -> str:
    lines = [
        line.strip()
        for line in data.decode("utf-8", "replace").splitlines()
        if line.strip() and not line.startswith("pg_restore: hint")
    ]
    return scrub("; ".join(lines[-3:]) or "no message", url.secrets)


# --------------------------------------------------------------------------------------------
# The archive's table of contents


@dataclass(frozen=True)
class TocEntry:
    """One line of ``pg_restore --list``: ``id; catalog oid TYPE SCHEMA TAG OWNER``."""

    id: int
    #: ``TYPE SCHEMA TAG OWNER`` (schema ``-`` for global objects)
    rest: str

    def is_(self, kind: str, schema: str, tag: str) -> bool:
        """Exactly this object (the owner, a role name, is taken to hold no space)."""
        prefix = f"{kind} {schema} {tag} "
        return self.rest.startswith(prefix) and " " not in self.rest[len(prefix) :]

    def under(self, kind: str, schema: str, prefix: str) -> bool:
        """An entry of ``kind`` whose tag starts with ``prefix``."""
        return self.rest.startswith(f"{kind} {schema} {prefix}")

    def tag(self, kind: str, schema: str) -> str | None:
        """The tag of an entry of ``kind`` in ``schema`` (None otherwise)."""
        head = f"{kind} {schema} "
        if not self.rest.startswith(head):
            return None
        return self.rest[len(head) :].rsplit(" ", 1)[0]


#: the schemas a database has (a restore --into leaves out the archive's CREATE SCHEMA of these)
_SCHEMAS_PRESENT = "SELECT nspname::text FROM pg_catalog.pg_namespace"


def read_toc(restore: Path, path: Path, url: DatabaseURL) -> list[TocEntry]:
    """The archive's entries in restore order; BackupError when it cannot be read."""
    done = _run(
        [restore, "--list", path],
        url=url,
        env=os.environ,
        what=f"pg_restore --list {path.name}",
        stdout=subprocess.PIPE,
    )
    entries = []
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        match = _TOC_LINE.match(line)
        if match is not None:
            entries.append(TocEntry(int(match[1]), match[2]))
    return entries


def _split_key(key: str, snapshot: SchemaSnapshot) -> tuple[str, str]:
    """``(schema, name)`` of a table key (ledger tables, not in snapshots, have no dots)."""
    table = snapshot.tables.get(key)
    if table is not None:
        return table.schema or "public", table.name
    schema, _, name = key.rpartition(".")
    return schema or "public", name


# --------------------------------------------------------------------------------------------
# The engine


class PostgresBackupEngine(BackupEngine):
    """Backups of PostgreSQL databases with pg_dump/pg_restore."""

    file_suffix: ClassVar[str] = ".dump"
    constraints_in_place: ClassVar[bool] = True

    def __init__(self, dialect: Dialect) -> None:
        #: the dialect whose sessions restores open (passed in: the dialect module imports this)
        self.dialect = dialect

    def _tools(self, session: Session) -> PgTools:
        return find_tools(server_version(session))

    def check_tools(self, session: Session) -> str:
        return f"pg_dump {self._tools(session).version}"

    def ledger_tables(self, session: Session, history_schema: str) -> list[str]:
        # Prisma's ledger lives in the project's schema: another project's is not ours
        scope = url_scope(session.url)
        # the host tool's table (dbmate's, golang-migrate's): its schema, or the search path's
        host = self.dialect.host_table
        host_schema, _, host_name = (host or "").rpartition(".")
        rows = session.query(
            "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND ((c.relname = %s "
            "AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%' "
            "AND (%s::text[] IS NULL OR n.nspname = ANY(%s::text[]))) "
            "OR (n.nspname = %s AND c.relname = 'migrations') "
            "OR (c.relname = %s AND n.nspname = coalesce(%s, current_schema()))) ORDER BY 1, 2",
            (
                PRISMA_TABLE,
                scope,
                scope,
                history_schema,
                host_name or None,
                host_schema or None,
            ),
        )
        return [qualified_name(str(schema), str(name)) for schema, name in rows]

    def row_counts(self, session: Session, tables: Sequence[str]) -> dict[str, int]:
        rows = session.query(
            "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p')"
        )
        names = {qualified_name(str(s), str(n)): (str(s), str(n)) for s, n in rows}
        counts: dict[str, int] = {}
        for key in tables:
            if key not in names:
                raise BackupError(f"table {key} does not exist")
            schema, name = names[key]
            counts[key] = int(
                session.query(f"SELECT count(*) FROM ONLY {_relation(schema, name)}")[0][0]
            )
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
        tools = self._tools(session)
        conninfo, env = libpq_target(session.url)
        session.begin()
        try:
            session.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            exported = str(session.query("SELECT pg_catalog.pg_export_snapshot()")[0][0])
            # the project's scope (?schema=): a full backup is the whole of it, no more
            snapshot = session.dialect.snapshot(session)
            ledger = self.ledger_tables(session, history_schema)
            if data_tables is None:
                chosen = [k for k, t in snapshot.tables.items() if t.kind == "table"]
            else:
                gone = [k for k in data_tables if k not in snapshot.tables]
                if gone:
                    raise BackupError(
                        f"table {gone[0]} disappeared while the backup was being taken",
                        hint="run the command again",
                    )
                chosen = [k for k in data_tables if snapshot.tables[k].kind == "table"]
            included = tuple(dict.fromkeys([*chosen, *ledger]))
            counts = self.row_counts(session, included)
            args: list[str | Path] = [
                tools.dump,
                "--format=custom",
                "--no-password",
                f"--snapshot={exported}",
                f"--dbname={conninfo}",
            ]
            args += dump_scope_args(
                session.url, history_schema, scope_extensions(session.query, session.url)
            )
            args += [f"--exclude-table={dump_pattern(history_schema, t)}" for t in NEVER_TABLES]
            if data_tables is not None:
                keep = set(chosen)
                args += [
                    f"--exclude-table-data={dump_pattern(t.schema or 'public', t.name)}"
                    for key, t in snapshot.tables.items()
                    if key not in keep
                ]
            progress(f"pg_dump: schema and the rows of {len(included)} table(s)")
            with path.open("wb") as out:
                try:
                    _run(args, url=session.url, env=env, what="pg_dump", stdout=out)
                except BackupError as exc:
                    _refuse_if_connection_lost(session, exc)
                    raise
        finally:
            # Ends the read-only transaction, and with it the exported snapshot.
            session.rollback()
        return DumpResult(
            tables=included, row_counts=counts, snapshot=snapshot, tool=f"pg_dump {tools.version}"
        )

    # --- verifying -------------------------------------------------------------------------

    def verify(
        self,
        path: Path,
        *,
        snapshot: SchemaSnapshot,
        tables: Sequence[str],
        row_counts: Mapping[str, int],
    ) -> None:
        tools = tools_for_archive()
        url = DatabaseURL(raw="", dialect="postgresql")
        entries = read_toc(tools.restore, path, url)
        if not entries:
            raise BackupError(f"backup {path.name} lists no contents")
        for key in tables:
            schema, name = _split_key(key, snapshot)
            if not any(e.is_("TABLE DATA", schema, name) for e in entries):
                raise BackupError(f"backup {path.name} does not hold the rows of table {key}")

    # --- restoring into a new database -----------------------------------------------------

    def restore_into(
        self,
        path: Path,
        *,
        target: DatabaseURL,
        actor: Actor,
        progress: Progress,
    ) -> None:
        tools, existing = self._new_empty_database(target, actor)
        conninfo, env = libpq_target(target)
        # A backup confined to ?schema=public says CREATE SCHEMA public, which a new database
        # already has (empty): that entry is left out, the rest restored as is.
        entries = [
            e for e in read_toc(tools.restore, path, target) if e.tag("SCHEMA", "-") not in existing
        ]
        progress(f"pg_restore into {target.masked()}")
        with tempfile.TemporaryDirectory(prefix="backout-restore-") as scratch:
            listing = Path(scratch) / "toc.list"
            listing.write_text("".join(f"{e.id};\n" for e in entries), encoding="ascii")
            try:
                _run(
                    [
                        tools.restore,
                        "--no-password",
                        "--no-owner",
                        "--no-privileges",
                        "--exit-on-error",
                        "--single-transaction",
                        f"--use-list={listing}",
                        f"--dbname={conninfo}",
                        path,
                    ],
                    url=target,
                    env=env,
                    what=f"pg_restore into {target.masked()}",
                    stdout=subprocess.DEVNULL,
                )
            except BackupError as exc:
                if (
                    "foreign key" not in exc.message
                    and "is not present in table" not in exc.message
                ):
                    raise
                # A scoped backup's rows may reference rows it does not hold (the parents of the
                # tables it scoped). pg_restore's single transaction left the database empty.
                progress("loading rows whose foreign keys point outside the backup")
                self._restore_dangling(path, entries, target, actor, tools, exc.message)

    def _new_empty_database(self, target: DatabaseURL, actor: Actor) -> tuple[PgTools, set[str]]:
        """The tools for the (created if missing) empty database at ``target``, and the schemas
        it already has; BackupError when it is not empty."""
        import psycopg

        if not target.database:
            raise BackupError(f"--into needs a database name ({target.masked()})")
        dialect = self.dialect
        try:
            session = dialect.connect(target, actor=actor, create=False)
        except DatabaseError as exc:
            if "does not exist" not in exc.message:
                raise
            self._create_database(target, actor)
            session = dialect.connect(target, actor=actor, create=False)
        try:
            if not self._is_empty(session):
                raise BackupError(
                    f"the database {target.masked()} is not empty: --into needs a new, empty "
                    "database",
                    hint="name a database that does not exist yet (backout creates it)",
                )
            return find_tools(server_version(session)), {
                str(r[0]) for r in session.query(_SCHEMAS_PRESENT)
            }
        except psycopg.Error as exc:
            raise BackupError(f"cannot inspect {target.masked()}: {exc}") from exc
        finally:
            session.close()

    def _restore_dangling(
        self,
        path: Path,
        entries: Sequence[TocEntry],
        target: DatabaseURL,
        actor: Actor,
        tools: PgTools,
        why: str,
    ) -> None:
        """Load a backup whose rows break foreign keys, keeping its schema exact.

        A foreign key is validated when it is added, whatever the session does, so the
        constraints are created first (on empty tables) and the rows loaded afterwards with
        ``session_replication_role = replica``, which skips the foreign-key triggers. That
        setting needs a superuser; without one the backup cannot be loaded alone.
        """
        data = ("TABLE DATA ", "SEQUENCE SET ", "BLOB", "LARGE OBJECT")
        late = ("TRIGGER ", "EVENT TRIGGER ", "MATERIALIZED VIEW DATA ")
        ordered = [
            *(e for e in entries if not e.rest.startswith((*data, *late))),
            *(e for e in entries if e.rest.startswith(data)),
            *(e for e in entries if e.rest.startswith(late)),
        ]
        session = self.dialect.connect(target, actor=actor, create=False)
        try:
            session.begin()
            try:
                session.execute("SET LOCAL session_replication_role = replica")
            except DatabaseError as exc:
                raise BackupError(
                    f"this backup's rows reference rows it does not hold ({why}); loading them "
                    "alone into a new database needs a superuser",
                    hint="restore it over the database it came from, or use a full backup",
                ) from exc
            self._run_script(
                session, tools, path, ordered, options=("--no-owner", "--no-privileges")
            )
            session.commit()
        finally:
            if session.in_transaction:
                session.rollback()
            session.close()

    def _create_database(self, target: DatabaseURL, actor: Actor) -> None:
        assert target.database is not None
        errors = []
        for maintenance in ("postgres", "template1"):
            try:
                admin = self.dialect.connect(
                    target.with_database(maintenance), actor=actor, create=False
                )
            except DatabaseError as exc:
                errors.append(exc.message)
                continue
            try:
                admin.execute(f"CREATE DATABASE {quote_identifier(target.database)}")
                return
            except DatabaseError as exc:
                raise BackupError(
                    f"the database {target.masked()} does not exist and cannot be created: "
                    f"{exc.message}",
                    hint="create it (empty), then run the command again",
                ) from exc
            finally:
                admin.close()
        raise BackupError(
            f"the database {target.masked()} does not exist, and no maintenance database of "
            f"its server accepts a connection to create it ({errors[-1] if errors else ''})",
            hint="create it (empty), then run the command again",
        )

    @staticmethod
    def _is_empty(session: Session) -> bool:
        def not_extension(catalog: str, oid: str) -> str:
            return (
                "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = "
                f"'pg_catalog.{catalog}'::regclass AND d.objid = {oid} AND d.deptype = 'e')"
            )

        user = (
            "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
        )
        counts = [
            f"SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            f"ON n.oid = c.relnamespace WHERE {user} AND {not_extension('pg_class', 'c.oid')}",
            f"SELECT count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
            f"ON n.oid = p.pronamespace WHERE {user} AND {not_extension('pg_proc', 'p.oid')}",
            f"SELECT count(*) FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n "
            f"ON n.oid = t.typnamespace WHERE {user} AND {not_extension('pg_type', 't.oid')}",
            f"SELECT count(*) FROM pg_catalog.pg_namespace n WHERE {user} "
            "AND n.nspname <> 'public'",
        ]
        return all(int(session.query(sql)[0][0]) == 0 for sql in counts)

    # --- restoring over the current database -----------------------------------------------

    def refuse_out_of_scope(self, request: RestoreRequest, target: DatabaseURL) -> None:
        _refuse_out_of_scope(request, target)

    def restore_over(
        self,
        session: Session,
        request: RestoreRequest,
        *,
        finish: Callable[[], None],
        progress: Progress,
    ) -> None:

        tools = self._tools(session)
        entries = read_toc(tools.restore, request.path, session.url)
        wanted = request.snapshot
        self.refuse_out_of_scope(request, session.url)
        data = set(request.data_tables)
        ledger = [t for t in request.data_tables if t not in wanted.tables]
        session.begin()
        try:
            for statement in session.dialect.timeout_statements(
                lock_timeout=request.lock_timeout, statement_timeout=0
            ):
                session.execute(statement)
            saved_path = str(session.query("SELECT current_setting('search_path')")[0][0])
            # Only the project's scope (?schema=) is read, so only it is dropped or rebuilt:
            # a restore never touches an object outside the backup's scope.
            current = session.dialect.snapshot(session)
            around = _outside_fingerprint(session, request.history_schema)
            rebuild = set(wanted.tables) if request.full else data & set(wanted.tables)
            progress("dropping what the backup re-creates")
            for statement in _drops(current, wanted, rebuild):
                session.execute(statement)
            for key in self.ledger_tables(session, request.history_schema):
                schema, name = _split_key(key, wanted)
                if key in ledger:
                    session.execute(f"DROP TABLE {_relation(schema, name)}")
                else:
                    # The backup was taken before this ledger existed: nothing was applied.
                    session.execute(f"DELETE FROM {_relation(schema, name)}")
            middle = session.dialect.snapshot(session)
            chosen = _select(entries, wanted, middle, data, ledger, full=request.full)
            chosen |= self._missing_functions(session, entries, wanted, middle)
            progress(f"loading {len(chosen)} archive entries (schema objects and rows)")
            self._run_script(session, tools, request.path, [e for e in entries if e.id in chosen])
            session.execute("SELECT pg_catalog.set_config('search_path', %s, true)", (saved_path,))
            if _outside_fingerprint(session, request.history_schema) != around:
                # DROP … CASCADE took a view, a foreign key or a column of another schema
                # that builds on the project's objects: undone, with everything else.
                raise BackupError(
                    "the restore would drop objects outside this project's scope "
                    f"(?schema={session.url.schema}) that build on its objects (a view, a "
                    "foreign key, a column of one of its types); nothing changed",
                    hint="restore it --into a new database, or remove those dependencies first",
                )
            finish()
            session.commit()
        except DatabaseError as exc:
            if exc.sqlstate == _LOCK_NOT_AVAILABLE:
                raise LockError(
                    f"could not lock the tables to restore within the lock timeout "
                    f"({request.lock_timeout:g}s): {exc.message}; nothing changed",
                    hint="retry when the application is quieter, or raise lock_timeout",
                ) from exc
            raise
        finally:
            if session.in_transaction:
                session.rollback()
            self._reset(session)

    @staticmethod
    def _reset(session: Session) -> None:
        """Undo session settings the restore script made (it SETs at session level)."""
        try:
            session.execute("RESET ALL")
            if session.url.schema:
                session.execute(f"SET search_path TO {quote_identifier(session.url.schema)}")
        except DatabaseError:
            # The connection is gone; its settings went with it.
            return

    @staticmethod
    def _missing_functions(
        session: Session,
        entries: Sequence[TocEntry],
        wanted: SchemaSnapshot,
        middle: SchemaSnapshot,
    ) -> set[int]:
        """Archive entries of functions the backup has and the database now lacks.

        The archive names a function by its argument types and the catalog by its identity
        arguments (with names), so the server is asked whether each candidate exists.
        """
        lacking = {
            (f.schema or "public", f.name)
            for key, f in wanted.functions.items()
            if middle.functions.get(key) != f
        }
        chosen: set[int] = set()
        for entry in entries:
            for kind in ("FUNCTION", "PROCEDURE", "AGGREGATE"):
                for schema, name in lacking:
                    tag = entry.tag(kind, schema)
                    if tag is None or not tag.startswith(name + "(") or not tag.endswith(")"):
                        continue
                    signature = f"{_relation(schema, name)}{tag[len(name) :]}"
                    (exists,) = session.query(
                        "SELECT to_regprocedure(%s) IS NOT NULL", (signature,)
                    )[0]
                    if not exists:
                        chosen.add(entry.id)
        return chosen

    def _run_script(
        self,
        session: Session,
        tools: PgTools,
        path: Path,
        entries: Sequence[TocEntry],
        *,
        options: Sequence[str] = (),
    ) -> None:
        """Generate SQL for ``entries`` (in their order) with pg_restore and execute it in the
        open transaction."""
        with tempfile.TemporaryDirectory(prefix="backout-restore-") as scratch:
            listing = Path(scratch) / "toc.list"
            listing.write_text("".join(f"{e.id};\n" for e in entries), encoding="ascii")
            errors = Path(scratch) / "stderr"
            with errors.open("wb") as err:
                process = client_programs.start(
                    [
                        str(tools.restore),
                        "--file=-",
                        f"--use-list={listing}",
                        *options,
                        str(path),
                    ],
                    secrets=session.url.secrets,
                    stdout=subprocess.PIPE,
                    stderr=err,
                )
            assert process.stdout is not None
            try:
                _execute_stream(session, process.stdout)
            except BaseException:
                process.kill()
                process.wait()
                raise
            finally:
                process.stdout.close()
            if process.wait() != 0:
                raise BackupError(
                    f"pg_restore could not read {path.name}: "
                    f"{_stderr(errors.read_bytes(), session.url)}"
                )


#: a digest of the objects outside a scope (relations, columns, constraints, rules, triggers,
#: defaults, types, functions), backout's own schema left out: a restore confined to the scope
#: leaves it unchanged
_OUTSIDE_SQL = """
SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
  SELECT 'c' || c.oid::text || c.relkind::text FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE {outside}
  UNION ALL SELECT concat_ws(':', 'a', a.attrelid, a.attnum, a.atttypid, a.attisdropped)
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE a.attnum > 0 AND {outside}
  UNION ALL SELECT 'k' || k.oid::text FROM pg_catalog.pg_constraint k
    JOIN pg_catalog.pg_namespace n ON n.oid = k.connamespace WHERE {outside}
  UNION ALL SELECT 'r' || r.oid::text FROM pg_catalog.pg_rewrite r
    JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE {outside}
  UNION ALL SELECT 't' || t.oid::text FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE {outside}
  UNION ALL SELECT 'd' || d.oid::text FROM pg_catalog.pg_attrdef d
    JOIN pg_catalog.pg_class c ON c.oid = d.adrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE {outside}
  UNION ALL SELECT 'y' || y.oid::text FROM pg_catalog.pg_type y
    JOIN pg_catalog.pg_namespace n ON n.oid = y.typnamespace WHERE {outside}
  UNION ALL SELECT 'p' || p.oid::text FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE {outside}
) s(x)
""".format(
    outside="NOT n.nspname = ANY(%(scope)s::text[]) AND n.nspname <> %(history)s "
    "AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'"
)


def _outside_fingerprint(session: Session, history_schema: str) -> str | None:
    """A digest of every object outside the project's scope (None: no ``?schema=``, the
    project owns the whole database)."""
    scope = url_scope(session.url)
    if scope is None:
        return None
    rows = session.query_native(_OUTSIDE_SQL, {"scope": scope, "history": history_schema})
    return str(rows[0][0])


def _refuse_out_of_scope(request: RestoreRequest, target: DatabaseURL) -> None:
    """BackupError (nothing changed) when the backup's scope is not the project's.

    A restore reads, drops and rebuilds only what is in the project's scope (``?schema=``),
    so a backup taken with another scope would reach schemas it must not touch (another
    project's), or miss the ones it should.
    """
    scope = url_scope(target)
    shown = f"?schema={scope[0]}" if scope else "the whole database"
    if request.source:
        taken = url_scope(parse_url(request.source))
        if taken != scope:
            where = f"?schema={taken[0]}" if taken else "the whole database"
            raise BackupError(
                f"the backup was taken of {where}, and this project's URL covers {shown}; "
                "nothing changed",
                hint="restore it with the URL it was taken with, or --into a new database",
            )
    outside = sorted(set(request.snapshot.schemas) - set(scope)) if scope is not None else []
    if outside:
        # taken before backout confined backups to the project's schema
        raise BackupError(
            f"the backup holds schema(s) outside this project's scope ({shown}): "
            f"{', '.join(outside)}; nothing changed",
            hint="restore it --into a new database and copy what you need",
        )


def _refuse_if_connection_lost(session: Session, failure: BackupError) -> None:
    """DatabaseError when backout's own connection died while pg_dump ran.

    pg_dump reads the snapshot backout's transaction exported; when that connection is cut
    (``pg_terminate_backend``, a failover) the snapshot goes with it and pg_dump fails with
    "invalid snapshot identifier": a lost connection, not a bad backup request.
    """
    try:
        session.query("SELECT 1")
    except DatabaseError as lost:
        raise DatabaseError(
            f"the connection to {session.url.masked()} was lost while pg_dump was reading "
            f"backout's snapshot ({lost.message}); no backup was written",
            sqlstate=lost.sqlstate,
            hint="run the command again once the database accepts connections",
        ) from failure


def _drops(current: SchemaSnapshot, wanted: SchemaSnapshot, rebuild: set[str]) -> list[str]:
    """Statements dropping the tables to rebuild and every object that differs from the backup.

    CASCADE is used; what it takes beyond these objects is re-created from the archive when
    the backup has it, and the fingerprint check afterwards refuses anything else.
    """
    out: list[str] = []
    for key, view in current.views.items():
        if wanted.views.get(key) != view:
            kind = "MATERIALIZED VIEW" if view.materialized else "VIEW"
            out.append(f"DROP {kind} IF EXISTS {_relation(view.schema, view.name)} CASCADE")
    dropped: set[str] = set()
    for key, table in current.tables.items():
        if key in rebuild or key not in wanted.tables:
            out.append(f"DROP TABLE IF EXISTS {_relation(table.schema, table.name)} CASCADE")
            dropped.add(key)
    out += _drop_table_parts(current, wanted, dropped)
    out += _drop_routines_and_types(current, wanted)
    return out


def _drop_table_parts(
    current: SchemaSnapshot, wanted: SchemaSnapshot, dropped: set[str]
) -> list[str]:
    """Constraints, indexes, triggers and sequences that differ, of the tables kept."""
    out: list[str] = []
    for key, table in current.tables.items():
        if key in dropped:
            continue
        target = wanted.tables[key]
        stale = [
            c.name for c in table.constraints if c.name is not None and c not in target.constraints
        ] + [
            f.name
            for f in table.foreign_keys
            if f.name is not None and f not in target.foreign_keys
        ]
        out += [
            f"ALTER TABLE {_relation(table.schema, table.name)} DROP CONSTRAINT IF EXISTS "
            f"{quote_identifier(name)} CASCADE"
            for name in stale
        ]
    for key, index in current.indexes.items():
        if qualified_name(index.schema, index.table) not in dropped and (
            wanted.indexes.get(key) != index
        ):
            out.append(f"DROP INDEX IF EXISTS {_relation(index.schema, index.name)} CASCADE")
    for key, trigger in current.triggers.items():
        if qualified_name(trigger.schema, trigger.table) not in dropped and (
            wanted.triggers.get(key) != trigger
        ):
            out.append(
                f"DROP TRIGGER IF EXISTS {quote_identifier(trigger.name)} ON "
                f"{_relation(trigger.schema, trigger.table)}"
            )
    for key, sequence in current.sequences.items():
        if sequence.owned_by_table not in dropped and wanted.sequences.get(key) != sequence:
            out.append(
                f"DROP SEQUENCE IF EXISTS {_relation(sequence.schema, sequence.name)} CASCADE"
            )
    return out


def _drop_routines_and_types(current: SchemaSnapshot, wanted: SchemaSnapshot) -> list[str]:
    """Functions, enums, types and domains that differ; extensions and schemas the backup
    does not have."""
    out: list[str] = []
    for key, function in current.functions.items():
        if wanted.functions.get(key) != function:
            kind = {"procedure": "PROCEDURE", "aggregate": "AGGREGATE"}.get(
                function.kind, "FUNCTION"
            )
            out.append(
                f"DROP {kind} IF EXISTS {_relation(function.schema, function.name)}"
                f"({function.arguments}) CASCADE"
            )
    for key, enum in current.enums.items():
        if wanted.enums.get(key) != enum:
            out.append(f"DROP TYPE IF EXISTS {_relation(enum.schema, enum.name)} CASCADE")
    for key, type_ in current.types.items():
        if wanted.types.get(key) != type_:
            kind = "DOMAIN" if type_.kind == "domain" else "TYPE"
            out.append(f"DROP {kind} IF EXISTS {_relation(type_.schema, type_.name)} CASCADE")
    out += [
        f"DROP EXTENSION IF EXISTS {quote_identifier(extension.name)} CASCADE"
        for key, extension in current.extensions.items()
        if key not in wanted.extensions
    ]
    out += [
        f"DROP SCHEMA IF EXISTS {quote_identifier(schema)} CASCADE"
        for schema in current.schemas
        if schema not in wanted.schemas
    ]
    return out


class _Picker:
    """The ids of the archive entries chosen so far."""

    def __init__(self, entries: Sequence[TocEntry]) -> None:
        self.entries = entries
        self.chosen: set[int] = set()

    def pick(self, kind: str, schema: str | None, tag: str) -> None:
        schema = schema or "public"
        self.chosen.update(e.id for e in self.entries if e.is_(kind, schema, tag))

    def pick_under(self, kind: str, schema: str | None, prefix: str) -> None:
        schema = schema or "public"
        self.chosen.update(e.id for e in self.entries if e.under(kind, schema, prefix))


def _select(
    entries: Sequence[TocEntry],
    wanted: SchemaSnapshot,
    middle: SchemaSnapshot,
    data: set[str],
    ledger: Sequence[str],
    *,
    full: bool,
) -> set[int]:
    """Ids of the archive entries that re-create what ``middle`` lacks of ``wanted``, plus the
    rows of ``data`` (functions are chosen by :meth:`PostgresBackupEngine._missing_functions`).
    """
    picker = _Picker(entries)
    created = _pick_containers(picker, wanted, middle)
    _pick_types(picker, wanted, middle, full=full)
    for key, table in wanted.tables.items():
        _pick_table(picker, table, middle.tables.get(key), rows=key in data or full)
    _pick_relations(picker, wanted, middle)
    for key in ledger:
        schema, name = _split_key(key, wanted)
        picker.pick("TABLE", schema, name)
        picker.pick("TABLE DATA", schema, name)
        for kind in _TABLE_CHILDREN:
            picker.pick_under(kind, schema, f"{name} ")
    _pick_annotations(picker, created)
    return picker.chosen


def _pick_containers(picker: _Picker, wanted: SchemaSnapshot, middle: SchemaSnapshot) -> set[str]:
    """The schemas and extensions to re-create; their tags (as COMMENT/ACL entries name them)."""
    schemas = [s for s in wanted.schemas if s not in middle.schemas]
    for schema in schemas:
        picker.pick("SCHEMA", "-", schema)
    extensions = [k for k in wanted.extensions if k not in middle.extensions]
    for name in extensions:
        picker.pick("EXTENSION", "-", name)
    created = {f"SCHEMA {s}" for s in schemas} | {f"EXTENSION {e}" for e in extensions}
    return created | {f'SCHEMA "{s}"' for s in schemas} | {f'EXTENSION "{e}"' for e in extensions}


def _pick_types(
    picker: _Picker, wanted: SchemaSnapshot, middle: SchemaSnapshot, *, full: bool
) -> None:
    """Enums, composite types, domains (with their checks) and sequences that differ."""
    for key, enum in wanted.enums.items():
        if middle.enums.get(key) != enum:
            picker.pick("TYPE", enum.schema, enum.name)
    for key, type_ in wanted.types.items():
        if middle.types.get(key) != type_:
            picker.pick("DOMAIN" if type_.kind == "domain" else "TYPE", type_.schema, type_.name)
            picker.pick_under("CHECK CONSTRAINT", type_.schema, f"{type_.name} ")
    for key, sequence in wanted.sequences.items():
        if middle.sequences.get(key) != sequence:
            for kind in ("SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET"):
                picker.pick(kind, sequence.schema, sequence.name)
        elif full:
            picker.pick("SEQUENCE SET", sequence.schema, sequence.name)


def _pick_table(picker: _Picker, table: TableInfo, now: TableInfo | None, *, rows: bool) -> None:
    """A missing table with its defaults, policies, rules (and rows when ``rows``); the
    constraints and foreign keys it lacks."""
    schema = table.schema
    if now is None:
        for kind in ("TABLE", "TABLE ATTACH", "ROW SECURITY"):
            picker.pick(kind, schema, table.name)
        for column in table.columns:
            picker.pick("DEFAULT", schema, f"{table.name} {column.name}")
        for kind in ("POLICY", "RULE"):
            picker.pick_under(kind, schema, f"{table.name} ")
        if rows:
            picker.pick("TABLE DATA", schema, table.name)
    for constraint in table.constraints:
        if constraint.name is not None and (now is None or constraint not in now.constraints):
            picker.pick("CONSTRAINT", schema, f"{table.name} {constraint.name}")
    for foreign_key in table.foreign_keys:
        if foreign_key.name is not None and (now is None or foreign_key not in now.foreign_keys):
            picker.pick("FK CONSTRAINT", schema, f"{table.name} {foreign_key.name}")


def _pick_relations(picker: _Picker, wanted: SchemaSnapshot, middle: SchemaSnapshot) -> None:
    """Indexes, triggers and views that differ."""
    for key, index in wanted.indexes.items():
        if middle.indexes.get(key) != index:
            picker.pick("INDEX", index.schema, index.name)
            picker.pick("INDEX ATTACH", index.schema, index.name)
    for key, trigger in wanted.triggers.items():
        if middle.triggers.get(key) != trigger:
            picker.pick("TRIGGER", trigger.schema, f"{trigger.table} {trigger.name}")
    for key, view in wanted.views.items():
        if middle.views.get(key) != view:
            if view.materialized:
                picker.pick("MATERIALIZED VIEW", view.schema, view.name)
                picker.pick("MATERIALIZED VIEW DATA", view.schema, view.name)
            else:
                picker.pick("VIEW", view.schema, view.name)


def _pick_annotations(picker: _Picker, created: set[str]) -> None:
    """Comments and privileges are idempotent: re-apply all of them, except those on schemas
    and extensions that were not re-created (the schema ``public`` is not backout's to change).
    """
    for entry in picker.entries:
        for kind in ("COMMENT", "ACL", "SECURITY LABEL"):
            tag = entry.tag(kind, "-")
            if tag is not None:
                if tag in created:
                    picker.chosen.add(entry.id)
            elif entry.rest.startswith(kind + " "):
                picker.chosen.add(entry.id)


def _header_line(line: bytes) -> bytes | None:
    """A line of the script's preamble made transaction-local (None: leave it out)."""
    if _TIMEOUT_SETTINGS.match(line):
        return None  # backout's own lock_timeout applies
    if line.rstrip(b"\n") == _SEARCH_PATH:
        return b"SELECT pg_catalog.set_config('search_path', '', true);\n"
    if line.startswith(b"SET ") and not line.startswith(b"SET LOCAL "):
        return b"SET LOCAL " + line[4:]
    return line


def _execute_stream(session: Session, stream: IO[bytes]) -> None:
    """Execute pg_restore's SQL output, entry by entry, with COPY blocks through cursor.copy."""
    conn: psycopg.Connection[Any] = getattr(session, "conn")  # noqa: B009 - PostgresSession
    preamble = True
    previous = b""
    entry = "the script's preamble"
    pending: list[bytes] = []

    def flush() -> None:
        text = b"".join(pending)
        pending.clear()
        if not any(
            line.strip() and not line.lstrip().startswith(b"--") for line in text.splitlines()
        ):
            return
        _execute(session, conn, text, entry)

    for line in stream:
        if line.startswith((b"\\restrict ", b"\\unrestrict ")):
            continue
        heading = previous == b"--" and line.startswith((b"-- Name: ", b"-- Data for Name: "))
        if heading:
            preamble = False
            flush()
            entry = line[3:].decode("utf-8", "replace").strip()
        elif preamble:
            changed = _header_line(line)
            if changed is not None:
                pending.append(changed)
            if line.strip():
                previous = line.rstrip(b"\n")
            continue
        elif entry.startswith("Data for Name:") and _COPY.match(line):
            flush()
            _copy(session, conn, line, stream, entry)
            previous = b"\\."
            continue
        pending.append(line)
        if line.strip():
            previous = line.rstrip(b"\n")
    flush()


def _execute(session: Session, conn: psycopg.Connection[Any], text: bytes, entry: str) -> None:
    import psycopg

    try:
        with conn.cursor() as cursor:
            cursor.execute(text)
    except psycopg.Error as exc:
        error = translate(exc, session.url)
        raise DatabaseError(f"restoring {entry}: {error.message}", sqlstate=error.sqlstate) from exc


def _copy(
    session: Session,
    conn: psycopg.Connection[Any],
    statement: bytes,
    stream: IO[bytes],
    entry: str,
) -> None:
    import psycopg

    try:
        with conn.cursor() as cursor, cursor.copy(statement.rstrip(b";\n")) as copy:
            chunk: list[bytes] = []
            size = 0
            for line in stream:
                if line == b"\\.\n":
                    break
                chunk.append(line)
                size += len(line)
                if size >= _CHUNK:
                    copy.write(b"".join(chunk))
                    chunk.clear()
                    size = 0
            else:
                raise BackupError(f"the archive ends inside the rows of {entry}")
            if chunk:
                copy.write(b"".join(chunk))
    except psycopg.Error as exc:
        error = translate(exc, session.url)
        raise DatabaseError(f"restoring {entry}: {error.message}", sqlstate=error.sqlstate) from exc
