"""MySQL/MariaDB backups with ``mariadb-dump`` (or ``mysqldump``) ``--single-transaction``.

Taking a backup:

- The dump tool is found by :mod:`backout.dialects.mysql.tools`; the password reaches it in an
  option file it inherits as a descriptor, never on its command line nor in a named file.
- ``--single-transaction`` dumps a consistent InnoDB snapshot without locking the application
  out; ``--routines --triggers --hex-blob`` make it complete and byte-exact. backout's event
  log, ``schema_version`` and journal are never dumped (``--ignore-table``); the migration
  ledgers' rows always are.
- A scoped backup passes ``--ignore-table-data`` for every table outside the scope (MariaDB's
  tool; MySQL's mysqldump has no such option, so with it a scoped backup holds every table's
  rows and is recorded as such).
- The dump runs in its own session, so the rows per table are counted **in the file** (each
  ``INSERT`` row), not in backout's session: the record then describes exactly what the file
  holds. The schema is read before and after the dump; if it changed meanwhile, the backup is
  refused.

Restoring over the current database happens on backout's session, with
``FOREIGN_KEY_CHECKS = 0``: the tables the backup re-creates (its data tables, tables it does not
know, and every table for a full backup) are dropped, with every view, trigger and routine; then
the dump's own statements re-create what is missing and load the rows. **DDL is not
transactional here**: unlike PostgreSQL and SQLite, a failure part-way leaves the database
between the two states. :func:`backout.backup.restore.restore` takes a full backup of the current
state
first, and the error says so; the restore is journaled (:mod:`backout.run.journal`), so a
half-restored database is reported by ``status`` and finished by ``restore --resume``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar, Final

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
from backout.dialects.mysql.catalog import quote_identifier, read_mysql_snapshot
from backout.dialects.mysql.session import MysqlSession, translate
from backout.dialects.mysql.tools import client_options, find_tool
from backout.dialects.orphans import unvalidated_orphans
from backout.model.errors import BackupError, DatabaseError, DatabaseUnavailable
from backout.model.schema import SchemaSnapshot
from backout.model.urls import DatabaseURL, scrub

#: backout's audit tables and journal: never dumped, never restored
NEVER_TABLES: Final = ("backout_events", "backout_schema_version", "backout_journal")
#: migration ledgers: their rows are in every backup
LEDGER_TABLES: Final = ("_prisma_migrations", "backout_migrations")
_COMPLETED: Final = "-- Dump completed"
_TABLE_NAME = r"`((?:[^`]|``)+)`"
_DROP_TABLE = re.compile(rf"^DROP TABLE IF EXISTS {_TABLE_NAME}", re.I)
_CREATE_TABLE = re.compile(rf"^CREATE TABLE {_TABLE_NAME}", re.I)
_INSERT = re.compile(rf"^INSERT INTO {_TABLE_NAME}", re.I)
_SKIP = re.compile(
    r"^(?:LOCK TABLES|UNLOCK TABLES|/\*!40000 ALTER TABLE .* (?:DISABLE|ENABLE) KEYS \*/)", re.I
)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'", re.S)
_ROW_BREAK = re.compile(r"\)\s*,\s*\(")


def _unquote(name: str) -> str:
    return name.replace("``", "`")


@dataclass(frozen=True)
class DumpStatement:
    """One statement of a dump file: what it is, and for which table."""

    #: ``drop_table``, ``create_table``, ``insert``, ``skip`` or ``other``
    kind: str
    table: str | None
    sql: str


def read_dump(path: Path) -> Iterator[DumpStatement]:
    """The statements of a mysqldump/mariadb-dump file, in order (comments dropped).

    Line-based, as the dump tools write: a statement ends on a line ending with the current
    delimiter (``DELIMITER ;;`` blocks hold triggers and routines); strings never hold a raw
    newline (the tools escape it).
    """
    delimiter = ";"
    lines: list[str] = []
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if not lines:
                stripped = line.strip()
                if not stripped or stripped.startswith("--") or stripped.startswith("/*M!999999"):
                    continue
                if stripped.upper().startswith("DELIMITER "):
                    delimiter = stripped.split(None, 1)[1].strip()
                    continue
            lines.append(line)
            if line.rstrip().endswith(delimiter):
                text = "\n".join(lines).rstrip()
                lines = []
                yield _classify(text[: -len(delimiter)].rstrip())
    if lines:
        yield _classify("\n".join(lines).strip())


def _classify(sql: str) -> DumpStatement:
    for kind, pattern in (
        ("drop_table", _DROP_TABLE),
        ("create_table", _CREATE_TABLE),
        ("insert", _INSERT),
    ):
        match = pattern.match(sql)
        if match is not None:
            return DumpStatement(kind, _unquote(match.group(1)), sql)
    if _SKIP.match(sql):
        return DumpStatement("skip", None, sql)
    return DumpStatement("other", None, sql)


def count_rows(insert: str) -> int:
    """Rows of one extended ``INSERT ... VALUES (...),(...)`` as the dump tools write it."""
    _head, sep, values = insert.partition(" VALUES")
    if not sep:
        return 0
    bare = _STRING.sub("''", values)
    return len(_ROW_BREAK.findall(bare)) + 1 if "(" in bare else 0


def dump_contents(path: Path) -> tuple[dict[str, int], set[str], bool]:
    """(rows per table, tables created, the dump completed) of a dump file."""
    counts: dict[str, int] = {}
    created: set[str] = set()
    for statement in read_dump(path):
        if statement.kind == "insert" and statement.table is not None:
            counts[statement.table] = counts.get(statement.table, 0) + count_rows(statement.sql)
        elif statement.kind == "create_table" and statement.table is not None:
            created.add(statement.table)
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 512))
        tail = handle.read().decode("utf-8", "replace")
    return counts, created, _COMPLETED in tail


_RESUME_HINT: Final = (
    "`backout restore --resume` finishes it once the cause is fixed; or "
    "restore the full backup taken just before it (see `backout backups`)"
)


@dataclass
class _RestorePlan:
    """What a restore over the current database drops, creates from the dump and fills
    (the ledger tables join ``create`` and ``load`` as the restore finds them)."""

    #: tables dropped first (sorted)
    drop: list[str]
    #: tables whose CREATE TABLE runs from the dump
    create: set[str]
    #: tables whose rows are loaded from the dump
    load: set[str]

    @classmethod
    def of(cls, current: SchemaSnapshot, request: RestoreRequest) -> _RestorePlan:
        wanted = request.snapshot
        data = set(request.data_tables)
        rebuild = set(wanted.tables) if request.full else data & set(wanted.tables)
        drop = sorted(
            t for t in current.tables if request.full or t in rebuild or t not in wanted.tables
        )
        create = {t for t in wanted.tables if t not in current.tables or t in drop}
        return cls(drop, create, set(rebuild))

    def runs(self, statement: DumpStatement) -> bool:
        """Whether the restore runs this statement of the dump."""
        if statement.kind in ("drop_table", "skip"):
            return False
        if statement.kind == "create_table" and statement.table not in self.create:
            return False
        return not (statement.kind == "insert" and statement.table not in self.load)


def _reset_session(session: Session) -> None:
    """The session's settings back to backout's, after a restore (whatever became of it)."""
    try:
        session.execute("SET SESSION FOREIGN_KEY_CHECKS = 1")
        session.execute("SET SESSION lock_wait_timeout = DEFAULT")
        session.execute("SET NAMES utf8mb4")
        session.execute("SET time_zone = '+00:00'")
    except DatabaseError:
        pass  # the connection is gone; its settings went with it


class MysqlBackupEngine(BackupEngine):
    """Backups of MySQL/MariaDB databases with their own dump and client tools."""

    file_suffix: ClassVar[str] = ".sql"
    constraints_in_place: ClassVar[bool] = False
    atomic_restore: ClassVar[bool] = False
    restore_manner: ClassVar[str] = (
        "statement by statement, journaled (MySQL/MariaDB commit DDL at once)"
    )

    def __init__(self, dialect: Dialect) -> None:
        #: the dialect whose sessions restores open (passed in: the dialect module imports this)
        self.dialect = dialect

    def _snapshot(self, session: Session) -> SchemaSnapshot:
        """The schema as the dialect's snapshots see it (the host table left out)."""
        return read_mysql_snapshot(
            session.query, exclude=self.dialect.is_host_table if self.dialect.host_table else None
        )

    def _ledgers(self) -> tuple[str, ...]:
        """The ledger tables' names: backout's, Prisma's and the host tool's."""
        host = self.dialect.host_table
        return (*LEDGER_TABLES, host) if host and "." not in host else LEDGER_TABLES

    @staticmethod
    def _mariadb(session: Session) -> bool:
        return bool(getattr(session, "mariadb", True))

    def check_tools(self, session: Session) -> str:
        tool = find_tool("dump", server_is_mariadb=self._mariadb(session))
        return f"{Path(tool.path).name} {tool.version}"

    def ledger_tables(self, session: Session, history_schema: str) -> list[str]:
        names = self._ledgers()
        rows = session.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            f"AND TABLE_NAME IN ({', '.join('%s' for _ in names)}) ORDER BY TABLE_NAME",
            names,
        )
        return [str(r[0]) for r in rows]

    def row_counts(self, session: Session, tables: Sequence[str]) -> dict[str, int]:
        return {
            t: int(session.query(f"SELECT count(*) FROM {quote_identifier(t)}")[0][0])
            for t in tables
        }

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
        url = session.url
        database = str(url.database)
        tool = find_tool("dump", server_is_mariadb=self._mariadb(session))
        snapshot = self._snapshot(session)
        ledger = self.ledger_tables(session, history_schema)
        if data_tables is None:
            chosen = list(snapshot.tables)
        else:
            gone = [t for t in data_tables if t not in snapshot.tables]
            if gone:
                raise BackupError(
                    f"table {gone[0]} disappeared while the backup was being taken",
                    hint="run the command again",
                )
            chosen = list(data_tables)
            if not tool.ignore_table_data:
                chosen = list(snapshot.tables)  # MySQL's mysqldump cannot leave rows out
        included = tuple(dict.fromkeys([*chosen, *ledger]))
        with client_options(url) as options:
            args = [
                tool.path,
                *options.args,
                "--single-transaction",
                "--routines",
                "--triggers",
                "--hex-blob",
                "--skip-dump-date",
                "--no-tablespaces",
                *(f"--ignore-table={database}.{t}" for t in NEVER_TABLES),
            ]
            if data_tables is not None and tool.ignore_table_data:
                keep = set(chosen)
                args += [
                    f"--ignore-table-data={database}.{t}" for t in snapshot.tables if t not in keep
                ]
            args.append(database)
            progress(f"{Path(tool.path).name}: schema and the rows of {len(included)} table(s)")
            with path.open("wb") as out:
                _run(args, url=url, what=Path(tool.path).name, stdout=out, fds=options.fds)
        if self._snapshot(session).fingerprint() != snapshot.fingerprint():
            raise BackupError(
                "the schema changed while the backup was being taken",
                hint="run the command again",
            )
        counts, created, completed = dump_contents(path)
        if not completed:
            raise BackupError(f"{Path(tool.path).name} did not finish the dump")
        missing = [t for t in included if t not in created]
        if missing:
            raise BackupError(f"the dump does not hold table {missing[0]}")
        return DumpResult(
            tables=included,
            row_counts={t: counts.get(t, 0) for t in included},
            snapshot=snapshot,
            tool=f"{Path(tool.path).name} {tool.version}",
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
        try:
            counts, created, completed = dump_contents(path)
        except OSError as exc:
            raise BackupError(f"backup {path.name} cannot be read: {exc}") from exc
        if not completed:
            raise BackupError(f"backup {path.name} is truncated: it does not end the dump")
        for key in snapshot.tables:
            if key not in created:
                raise BackupError(f"backup {path.name} does not create table {key}")
        for table in tables:
            found = counts.get(table, 0)
            if found != row_counts.get(table):
                raise BackupError(
                    f"backup {path.name} holds {found} rows of {table}, "
                    f"{row_counts.get(table)} were recorded when it was taken"
                )

    # --- restoring into a new database -----------------------------------------------------

    def restore_into(
        self,
        path: Path,
        *,
        target: DatabaseURL,
        actor: Actor,
        progress: Progress,
    ) -> None:
        if not target.database:
            raise BackupError(f"--into needs a database name ({target.masked()})")
        dialect = self.dialect
        try:
            session = dialect.connect(target, actor=actor, create=False)
        except DatabaseUnavailable as exc:
            if "Unknown database" not in exc.message:
                raise
            self._create_database(target, actor)
            session = dialect.connect(target, actor=actor, create=False)
        try:
            assert isinstance(session, MysqlSession)
            present = session.query(
                "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            )[0][0]
            routines = session.query(
                "SELECT count(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()"
            )[0][0]
            if int(present) or int(routines):
                raise BackupError(
                    f"the database {target.masked()} is not empty: --into needs a new, empty "
                    "database",
                    hint="name a database that does not exist yet (backout creates it)",
                )
            client = find_tool("client", server_is_mariadb=session.mariadb)
        finally:
            session.close()
        progress(f"{Path(client.path).name} < {path.name} into {target.masked()}")
        with client_options(target) as options, path.open("rb") as source:
            _run(
                [client.path, *options.args, str(target.database)],
                url=target,
                what=f"loading into {target.masked()}",
                stdin=source,
                stdout=subprocess.DEVNULL,
                fds=options.fds,
            )

    @staticmethod
    def _create_database(target: DatabaseURL, actor: Actor) -> None:
        import pymysql

        params = dict(target.params)
        kwargs: dict[str, object] = {
            "user": target.user,
            "password": target.password or "",
            "charset": "utf8mb4",
            "autocommit": True,
        }
        if params.get("socket"):
            kwargs["unix_socket"] = params["socket"]
        else:
            kwargs["host"] = target.host or "127.0.0.1"
            kwargs["port"] = target.port or 3306
        try:
            conn = pymysql.connect(**kwargs)
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        f"CREATE DATABASE {quote_identifier(str(target.database))} "
                        "DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
            finally:
                conn.close()
        except pymysql.Error as exc:
            raise BackupError(
                f"the database {target.masked()} does not exist and cannot be created: "
                f"{translate(exc, target).message}",
                hint="create it (empty), then run the command again",
            ) from exc

    # --- restoring over the current database -----------------------------------------------

    def restore_over(
        self,
        session: Session,
        request: RestoreRequest,
        *,
        finish: Callable[[], None],
        progress: Progress,
    ) -> None:
        plan = _RestorePlan.of(self._snapshot(session), request)
        ledgers = self.ledger_tables(session, request.history_schema)
        try:
            session.execute("SET SESSION FOREIGN_KEY_CHECKS = 0")
            session.execute(
                f"SET SESSION lock_wait_timeout = {max(1, round(request.lock_timeout))}"
            )
            progress("dropping what the backup re-creates")
            self._drop_for_restore(session, plan.drop)
            for ledger in self._ledgers():
                if ledger in request.data_tables:
                    if ledger in ledgers:
                        session.execute(f"DROP TABLE {quote_identifier(ledger)}")
                    plan.create.add(ledger)
                    plan.load.add(ledger)
                elif ledger in ledgers:
                    # The backup was taken before this ledger existed: nothing was applied then.
                    session.execute(f"DELETE FROM {quote_identifier(ledger)}")
            progress(f"loading the schema and the rows of {len(plan.load)} table(s)")
            for statement in read_dump(request.path):
                if plan.runs(statement):
                    session.execute(statement.sql)
            _check_references(session, plan.load)
            session.execute("SET SESSION FOREIGN_KEY_CHECKS = 1")
            finish()
        except DatabaseError as exc:
            raise BackupError(
                f"restoring {request.path.name} stopped part-way: {exc.message}. MySQL/MariaDB "
                "commit DDL implicitly, so the database is now partly restored",
                hint=_RESUME_HINT,
            ) from exc
        except BackupError as exc:
            raise BackupError(
                f"{exc.message}; MySQL/MariaDB commit DDL implicitly, so the restore was not "
                "undone",
                hint=_RESUME_HINT,
            ) from exc
        finally:
            _reset_session(session)

    def _drop_for_restore(self, session: Session, tables: Sequence[str]) -> None:
        """Drop every view, trigger and routine (the dump re-creates them), and ``tables``."""
        for name in self._names(session, "VIEW"):
            session.execute(f"DROP VIEW IF EXISTS {quote_identifier(name)}")
        for name in self._triggers(session):
            session.execute(f"DROP TRIGGER IF EXISTS {quote_identifier(name)}")
        for kind in ("PROCEDURE", "FUNCTION"):
            for name in self._routines(session, kind):
                session.execute(f"DROP {kind} IF EXISTS {quote_identifier(name)}")
        for name in tables:
            session.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")

    @staticmethod
    def _names(session: Session, table_type: str) -> list[str]:
        rows = session.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_TYPE = %s",
            (table_type,),
        )
        return [str(r[0]) for r in rows]

    @staticmethod
    def _triggers(session: Session) -> list[str]:
        rows = session.query(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
        )
        return [str(r[0]) for r in rows]

    @staticmethod
    def _routines(session: Session, kind: str) -> list[str]:
        rows = session.query(
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES "
            "WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_TYPE = %s",
            (kind,),
        )
        return [str(r[0]) for r in rows]


def _check_references(session: Session, loaded: set[str]) -> None:
    """Refuse to finish a restore whose rows break a foreign key of a table it loaded.

    The rows were loaded with ``FOREIGN_KEY_CHECKS = 0`` and InnoDB never re-checks them, so
    without this a backup's rows that point at rows gone since (or kept rows that point at
    rows the backup does not have) would be restored as if nothing were wrong. PostgreSQL
    refuses the same restore when it re-creates the constraint, SQLite with
    ``foreign_key_check``.
    """

    snapshot = read_mysql_snapshot(session.query)
    keys = [
        (table, fk)
        for table in snapshot.tables.values()
        for fk in table.foreign_keys
        if table.key in loaded or fk.referenced_table in loaded
    ]
    orphans = unvalidated_orphans(session, snapshot, keys)
    if orphans:
        shown = "; ".join(
            f"{o.count} row(s) of {o.table} ({', '.join(o.columns)}) point to no row of "
            f"{o.referenced_table} (foreign key {o.constraint or '(unnamed)'})"
            for o in orphans[:3]
        )
        more = f" (and {len(orphans) - 3} more foreign key(s))" if len(orphans) > 3 else ""
        raise BackupError(f"the restored rows break foreign keys: {shown}{more}")


def _run(
    args: Sequence[str],
    *,
    url: DatabaseURL,
    what: str,
    stdout: int | IO[bytes],
    stdin: int | IO[bytes] | None = None,
    fds: tuple[int, ...] = (),
) -> None:
    """Run a client tool; BackupError with its last stderr line (scrubbed) when it fails."""
    try:
        done = client_programs.run(
            args,
            secrets=url.secrets,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            pass_fds=fds,
        )
    except OSError as exc:
        raise BackupError(f"{what} could not start: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        lines = [
            line
            for line in done.stderr.decode("utf-8", "replace").splitlines()
            if line.strip() and "Deprecated program name" not in line
        ]
        detail = scrub(lines[-1] if lines else f"exit status {done.returncode}", url.secrets)
        raise BackupError(f"{what} failed: {detail}")
