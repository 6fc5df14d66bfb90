"""Applied state and the audit log.

Two kinds of table:

- a **ledger**, one row per apply attempt, read to decide what is applied. In the Prisma layout it
  is Prisma's own ``_prisma_migrations`` (written exactly as ``prisma migrate deploy`` writes it);
  otherwise it is backout's ``migrations`` table with the same semantics. A migration is applied
  when a row has ``finished_at`` set and ``rolled_back_at`` NULL; failed when its only live row has
  ``finished_at`` NULL; rolled back when every row has ``rolled_back_at`` set (Prisma then
  re-applies it on the next ``migrate deploy``).
- the **event log** (``events``): append-only, one row per apply, rollback, partial rollback,
  restore, resolve, backup or emergency, with who, where, which version, the backup and outcome.
- the statement **journal** (``journal``, schema version 2): one entry per statement of a run
  that cannot be one transaction (MySQL's DDL, ``transaction off``); see :mod:`backout.run.journal`.

backout's tables carry a schema version (``schema_version``) so later versions can migrate them.
On PostgreSQL they live in their own schema (default ``backout``) so that Prisma's drift
detection does not see them; on SQLite and MySQL they are prefixed ``backout_``.

Every write is returned as SQL + parameters and run through an executor, so a dry run prints
exactly what a real run would execute.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from backout.dialects.base import Actor, Dialect, Session
from backout.model.errors import HistoryError
from backout.run.journal import InterruptedRun, Journal, OpenEntries

#: 1: ``events``, ``schema_version``, ``migrations``; 2: adds the statement ``journal``
HISTORY_SCHEMA_VERSION = 2
PRISMA_TABLE = "_prisma_migrations"

SqlWrite = tuple[str, tuple[object, ...]]


@dataclass(frozen=True)
class LedgerRow:
    """One apply attempt of one migration."""

    id: str
    key: str
    checksum: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    rolled_back_at: dt.datetime | None
    logs: str | None
    applied_steps_count: int
    #: the migration's full id where the ledger stores it (backout's), else the key (Prisma's)
    migration_id: str = ""
    #: a journaled run of this migration that stopped part-way (see :mod:`backout.run.journal`)
    interrupted: InterruptedRun | None = None

    @property
    def live(self) -> bool:
        """Not rolled back."""
        return self.rolled_back_at is None


@dataclass(frozen=True)
class Event:
    """One entry of the audit log."""

    event: str
    outcome: str
    started_at: dt.datetime
    finished_at: dt.datetime
    actor: Actor
    migration: str | None = None
    checksum: str | None = None
    backup: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    @property
    def duration_ms(self) -> int:
        """Elapsed time in milliseconds."""
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


class Ledger:
    """Read and write the table that says which migrations are applied."""

    def __init__(self, dialect: Dialect, *, prisma: bool, history_schema: str):
        self.dialect = dialect
        self.prisma = prisma
        self.history_schema = history_schema
        #: the rows last read, as the database gave them and parsed (see :meth:`_parsed`)
        self._last: tuple[list[Any], list[LedgerRow], list[LedgerRow]] | None = None
        q = dialect.quote
        if prisma:
            self.table = q(PRISMA_TABLE)
            self.key_column = "migration_name"
        else:
            self.table = dialect.history_table("migrations", history_schema)
            self.key_column = "migration_key"
        id_column = self.key_column if prisma else "migration_id"
        self._cols = (
            f"id, {self.key_column}, checksum, started_at, finished_at, rolled_back_at, logs, "
            f"applied_steps_count, {id_column}"
        )

    @property
    def name(self) -> str:
        """Table name as shown to users."""
        if self.prisma:
            return PRISMA_TABLE
        if self.dialect.has_schemas:
            return f"{self.history_schema}.migrations"
        return "backout_migrations"

    @property
    def ref(self) -> tuple[str, str | None]:
        """The ledger table as :meth:`Dialect.bookkeeping_exists` names it: (table, schema)."""
        if self.prisma:
            return PRISMA_TABLE, None
        return self._plain("migrations"), self._schema_or_none()

    def exists(self, session: Session) -> bool:
        """True when the ledger table exists."""
        return self.dialect.bookkeeping_exists(session, *self.ref)

    def _plain(self, logical: str) -> str:
        return logical if self.dialect.has_schemas else f"backout_{logical}"

    def _schema_or_none(self) -> str | None:
        return self.history_schema if self.dialect.has_schemas else None

    def create_sql(self) -> list[str]:
        """DDL creating the ledger table (Prisma's exact definition in the Prisma layout)."""
        ts = self.dialect.timestamp_type
        if self.prisma and self.dialect.prisma_ledger_ddl is not None:
            return [self.dialect.prisma_ledger_ddl]
        if self.prisma:
            if self.dialect.has_schemas:
                return [
                    f"CREATE TABLE IF NOT EXISTS {self.table} (\n"
                    '    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,\n'
                    '    "checksum"              VARCHAR(64) NOT NULL,\n'
                    '    "finished_at"           TIMESTAMPTZ,\n'
                    '    "migration_name"        VARCHAR(255) NOT NULL,\n'
                    '    "logs"                  TEXT,\n'
                    '    "rolled_back_at"        TIMESTAMPTZ,\n'
                    '    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),\n'
                    '    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0\n'
                    ")"
                ]
            return [
                f"CREATE TABLE IF NOT EXISTS {self.table} (\n"
                '    "id"                    TEXT PRIMARY KEY NOT NULL,\n'
                '    "checksum"              TEXT NOT NULL,\n'
                '    "finished_at"           DATETIME,\n'
                '    "migration_name"        TEXT NOT NULL,\n'
                '    "logs"                  TEXT,\n'
                '    "rolled_back_at"        DATETIME,\n'
                '    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,\n'
                '    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0\n'
                ")"
            ]
        return [
            *self.dialect.ensure_history_schema(self.history_schema),
            f"CREATE TABLE IF NOT EXISTS {self.table} (\n"
            "    id VARCHAR(36) PRIMARY KEY NOT NULL,\n"
            "    migration_key VARCHAR(255) NOT NULL,\n"
            "    migration_id VARCHAR(255) NOT NULL,\n"
            "    checksum VARCHAR(64) NOT NULL,\n"
            f"    started_at {ts} NOT NULL,\n"
            f"    finished_at {ts},\n"
            f"    rolled_back_at {ts},\n"
            "    logs TEXT,\n"
            "    applied_steps_count INTEGER NOT NULL DEFAULT 0\n"
            f"){self.dialect.table_options}",
        ]

    @property
    def rows_sql(self) -> str:
        """The query :meth:`rows` reads the ledger with."""
        return f"SELECT {self._cols} FROM {self.table}"

    def rows(
        self,
        session: Session,
        entries: OpenEntries | None = None,
        *,
        exists: bool | None = None,
    ) -> list[LedgerRow]:
        """All ledger rows, oldest first ([] when the table does not exist yet).

        ``entries``: the journal's open entries, when the caller has just read them;
        ``exists``: whether the table exists, already known, not asked again."""
        if not (self.exists(session) if exists is None else exists):
            return []
        return self._with_interrupted(session, self._parsed(session.query(self.rows_sql)), entries)

    def _parsed(self, raw: list[Any]) -> list[LedgerRow]:
        """The rows, oldest first; the same list again when the database gave the same rows as
        last time (a walk reads the ledger several times per migration, each parse costing as
        much as the project has migrations)."""
        if self._last is not None and self._last[0] == raw:
            return self._last[1]
        # A row the database gives as it did last time is the same object (see compute_status).
        before = (
            dict(zip(map(tuple, self._last[0]), self._last[2], strict=True)) if self._last else {}
        )
        parse = self.dialect.from_db_time
        parsed = [
            before.get(tuple(r))
            or LedgerRow(
                id=str(r[0]),
                key=str(r[1]),
                checksum=str(r[2]),
                started_at=parse(r[3]),
                finished_at=parse(r[4]),
                rolled_back_at=parse(r[5]),
                logs=r[6],
                applied_steps_count=int(r[7] or 0),
                migration_id=str(r[8]),
            )
            for r in raw
        ]
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        rows = sorted(parsed, key=lambda r: (r.started_at or epoch, r.id))
        self._last = (raw, rows, parsed)
        return rows

    def _with_interrupted(
        self, session: Session, rows: list[LedgerRow], entries: OpenEntries | None
    ) -> list[LedgerRow]:
        """Attach each interrupted journaled run to the ledger row it concerns."""
        failed = {r.id for r in rows if r.live and r.finished_at is None}
        live: dict[str, str] = {}
        for row in rows:
            if row.live and row.finished_at is not None:
                live[row.key] = row.id
        runs = Journal(self.dialect, self.history_schema).interrupted(
            session, failed_rows=failed, live_rows=live, entries=entries
        )
        if not runs:
            return rows
        by_row = {run.ledger_row: run for run in runs}
        return [
            replace(row, interrupted=by_row[row.id]) if row.id in by_row else row for row in rows
        ]

    def insert(
        self,
        *,
        key: str,
        migration_id: str,
        checksum: str,
        started_at: dt.datetime,
        finished_at: dt.datetime | None,
        logs: str | None = None,
        applied_steps_count: int = 0,
        row_id: str | None = None,
    ) -> tuple[str, SqlWrite]:
        """SQL inserting one attempt; returns (row id, write)."""
        row_id = row_id or str(uuid.uuid4())
        t = self._time
        finished = t(finished_at) if finished_at is not None else None
        if self.prisma:
            sql = (
                f"INSERT INTO {self.table} (id, checksum, finished_at, migration_name, logs, "
                "rolled_back_at, started_at, applied_steps_count) "
                "VALUES (%s, %s, %s, %s, %s, NULL, %s, %s)"
            )
            params: tuple[object, ...] = (
                row_id,
                checksum,
                finished,
                key,
                logs,
                t(started_at),
                applied_steps_count,
            )
        else:
            sql = (
                f"INSERT INTO {self.table} (id, migration_key, migration_id, checksum, started_at, "
                "finished_at, rolled_back_at, logs, applied_steps_count) "
                "VALUES (%s, %s, %s, %s, %s, %s, NULL, %s, %s)"
            )
            params = (
                row_id,
                key,
                migration_id,
                checksum,
                t(started_at),
                finished,
                logs,
                applied_steps_count,
            )
        return row_id, (sql, params)

    def finish(
        self,
        row_id: str,
        finished_at: dt.datetime,
        applied_steps: int,
        *,
        checksum: str | None = None,
    ) -> SqlWrite:
        """SQL marking an attempt finished (``checksum``: the script as it finally ran, when a
        resumed apply ran a corrected version of its later statements)."""
        if checksum is not None:
            return (
                f"UPDATE {self.table} SET finished_at = %s, applied_steps_count = %s, "
                "checksum = %s WHERE id = %s",
                (self._time(finished_at), applied_steps, checksum, row_id),
            )
        return (
            f"UPDATE {self.table} SET finished_at = %s, applied_steps_count = %s WHERE id = %s",
            (self._time(finished_at), applied_steps, row_id),
        )

    def fail(self, row_id: str, logs: str, applied_steps: int) -> SqlWrite:
        """SQL recording an attempt's failure (finished_at stays NULL, as Prisma leaves it)."""
        return (
            f"UPDATE {self.table} SET logs = %s, applied_steps_count = %s WHERE id = %s",
            (logs, applied_steps, row_id),
        )

    def close_failed(self, row_id: str, when: dt.datetime) -> SqlWrite:
        """SQL setting rolled_back_at on one failed attempt (``resolve``)."""
        return (
            f"UPDATE {self.table} SET rolled_back_at = %s WHERE id = %s",
            (self._time(when), row_id),
        )

    def mark_rolled_back(self, key: str, when: dt.datetime) -> SqlWrite:
        """SQL setting rolled_back_at on every live row of a migration (rows are kept)."""
        return (
            f"UPDATE {self.table} SET rolled_back_at = %s "
            f"WHERE {self.key_column} = %s AND rolled_back_at IS NULL",
            (self._time(when), key),
        )

    def _time(self, value: dt.datetime) -> object:
        if self.prisma:
            return self.dialect.to_prisma_time(value)
        return self.dialect.to_db_time(value)


class EventLog:
    """backout's append-only audit log and its schema-version table."""

    def __init__(self, dialect: Dialect, history_schema: str):
        self.dialect = dialect
        self.history_schema = history_schema
        self.table = dialect.history_table("events", history_schema)
        self.version_table = dialect.history_table("schema_version", history_schema)

    def ref(self, logical: str) -> tuple[str, str | None]:
        """One of backout's tables (``events``, ``schema_version``) as
        :meth:`Dialect.bookkeeping_exists` names it: (table, schema)."""
        name = logical if self.dialect.has_schemas else f"backout_{logical}"
        return name, self.history_schema if self.dialect.has_schemas else None

    def _exists(self, session: Session, logical: str) -> bool:
        return self.dialect.bookkeeping_exists(session, *self.ref(logical))

    def exists(self, session: Session) -> bool:
        """True when the event log exists."""
        return self._exists(session, "events")

    def upgrade(self, session: Session, executor: Any) -> None:
        """Bring history tables of an older schema version up to this one (1 → 2: the
        journal), through ``executor`` (a dry run only shows it)."""
        self.journal.ensure(session, executor, self.version_table, HISTORY_SCHEMA_VERSION)

    def version_exists(self, session: Session) -> bool:
        """True when the schema-version table exists."""
        return self._exists(session, "schema_version")

    @property
    def version_sql(self) -> str:
        """The query :meth:`check_version` reads the version with."""
        return f"SELECT max(version) FROM {self.version_table}"

    def check_version(self, session: Session) -> int | None:
        """The schema version of backout's tables (None: not created yet); refuse newer ones."""
        if not self.version_exists(session):
            return None
        rows = session.query(self.version_sql)
        version = int(rows[0][0]) if rows and rows[0][0] is not None else None
        if version is not None and version > HISTORY_SCHEMA_VERSION:
            raise HistoryError(
                f"backout's history tables are at schema version {version}, written by a newer "
                f"backout; this one understands version {HISTORY_SCHEMA_VERSION}",
                hint="upgrade backout",
            )
        return version

    @property
    def journal(self) -> Journal:
        """The statement journal beside the event log."""
        return Journal(self.dialect, self.history_schema)

    def create_sql(self, actor: Actor, now: dt.datetime) -> list[SqlWrite]:
        """Statements creating the event log and the journal, and recording the version."""
        ts = self.dialect.timestamp_type
        statements: list[SqlWrite] = [
            (s, ()) for s in self.dialect.ensure_history_schema(self.history_schema)
        ]
        statements.append(
            (
                f"CREATE TABLE IF NOT EXISTS {self.version_table} (\n"
                "    version INTEGER NOT NULL,\n"
                f"    installed_at {ts} NOT NULL,\n"
                "    tool_version VARCHAR(64) NOT NULL\n"
                f"){self.dialect.table_options}",
                (),
            )
        )
        statements.append(
            (
                f"CREATE TABLE IF NOT EXISTS {self.table} (\n"
                f"    id {self.dialect.serial_primary_key},\n"
                "    event VARCHAR(32) NOT NULL,\n"
                "    migration VARCHAR(255),\n"
                "    outcome VARCHAR(16) NOT NULL,\n"
                f"    started_at {ts} NOT NULL,\n"
                f"    finished_at {ts} NOT NULL,\n"
                "    duration_ms INTEGER NOT NULL,\n"
                "    who VARCHAR(255) NOT NULL,\n"
                "    host VARCHAR(255) NOT NULL,\n"
                "    tool_version VARCHAR(64) NOT NULL,\n"
                "    checksum VARCHAR(64),\n"
                "    backup TEXT,\n"
                "    error TEXT,\n"
                "    details TEXT NOT NULL\n"
                f"){self.dialect.table_options}",
                (),
            )
        )
        statements.extend((sql, ()) for sql in self.journal.create_sql())
        statements.append(
            (
                f"INSERT INTO {self.version_table} (version, installed_at, tool_version) "
                "VALUES (%s, %s, %s)",
                (HISTORY_SCHEMA_VERSION, self.dialect.to_db_time(now), actor.tool_version),
            )
        )
        return statements

    def recorded_sha256(self, session: Session, backup_id: str) -> set[str]:
        """The sha256 of backup ``backup_id``'s file as recorded in this database's history
        when it was taken (empty: not recorded here): ``backup`` events (``sha256``), the
        rollback or emergency that took it (``backup_sha256``), the restore that took it as the
        state before (``pre_restore_sha256``), whatever their outcome (a failed run's backup is
        the one ``--undo-partial`` restores), and the ``start`` entries of journaled runs (a
        run killed part-way has no event). The history lives in the database, out of reach of
        whoever can edit the backup folder (its file and its catalog alike)."""
        if not self.exists(session):
            return set()
        rows = [
            (str(backup) if backup is not None else None, raw)
            for backup, raw in session.query(
                f"SELECT backup, details FROM {self.table} WHERE backup = %s OR details LIKE %s",
                (backup_id, f"%{backup_id}%"),
            )
        ]
        journal = self.journal
        if journal.exists(session):
            rows += [
                (None, raw)
                for (raw,) in session.query(
                    f"SELECT details FROM {journal.table} WHERE entry = 'start' "
                    "AND details LIKE %s",
                    (f"%{backup_id}%",),
                )
            ]
        found: set[str] = set()
        for backup, raw in rows:
            try:
                details = json.loads(str(raw or "{}"))
            except ValueError:
                continue
            if not isinstance(details, dict):
                continue
            if backup == backup_id:
                found.update(str(details[k]) for k in ("sha256", "backup_sha256") if k in details)
            if details.get("backup") == backup_id and "backup_sha256" in details:
                found.add(str(details["backup_sha256"]))
            if details.get("pre_restore_backup") == backup_id and "pre_restore_sha256" in details:
                found.add(str(details["pre_restore_sha256"]))
        return found

    def append(self, event: Event) -> SqlWrite:
        """SQL appending one event."""
        t = self.dialect.to_db_time
        return (
            f"INSERT INTO {self.table} (event, migration, outcome, started_at, finished_at, "
            "duration_ms, who, host, tool_version, checksum, backup, error, details) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                event.event,
                event.migration,
                event.outcome,
                t(event.started_at),
                t(event.finished_at),
                event.duration_ms,
                event.actor.user,
                event.actor.host,
                event.actor.tool_version,
                event.checksum,
                event.backup,
                event.error,
                json.dumps(event.details, sort_keys=True, default=str),
            ),
        )

    def read(self, session: Session, *, migration: str | None = None) -> list[Event]:
        """Events, oldest first ([] when the log does not exist yet)."""
        if not self.exists(session):
            return []
        sql = (
            "SELECT id, event, migration, outcome, started_at, finished_at, who, host, "
            f"tool_version, checksum, backup, error, details FROM {self.table}"
        )
        params: Sequence[object] | None = None
        if migration is not None:
            sql += " WHERE migration = %s"
            params = (migration,)
        sql += " ORDER BY id"
        parse = self.dialect.from_db_time
        events = []
        for row in session.query(sql, params):
            started = parse(row[4])
            finished = parse(row[5])
            assert started is not None and finished is not None
            events.append(
                Event(
                    id=int(row[0]),
                    event=row[1],
                    migration=row[2],
                    outcome=row[3],
                    started_at=started,
                    finished_at=finished,
                    actor=Actor(user=row[6], host=row[7], pid=0, tool_version=row[8]),
                    checksum=row[9],
                    backup=row[10],
                    error=row[11],
                    details=json.loads(row[12] or "{}"),
                )
            )
        return events
