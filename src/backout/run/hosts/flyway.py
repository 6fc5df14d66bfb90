"""Flyway's ``flyway_schema_history``, written as Flyway writes it (issue #15).

What each backout command records there, and why real Flyway Community stays consistent with
it (the source behind each rule is quoted in docs/history.md, "Flyway"):

- **apply** (``up``): one row ``type = 'SQL'``, ``success = true``, ``installed_rank`` = the
  last rank + 1 (``SchemaHistory.calculateInstalledRank``), ``version`` as Flyway prints it
  (``MigrationVersion.toString``: ``1_1`` → ``1.1``), ``description`` from the file name
  (``_`` → space, cut to 200 as ``AbbreviationUtils``), ``script`` = the path relative to its
  location, ``checksum`` = Flyway's CRC32 of the ``V`` file, ``installed_by`` = the database
  user as Flyway asks it, ``execution_time`` in ms; ``installed_on`` is left to the column's
  default, as Flyway's ``getInsertStatement`` does.
- **failed apply**: Flyway records ``success = false`` only when the migration did not run in
  one transaction on a database with transactional DDL (``DbMigrate`` catch block:
  ``database.supportsDdlTransactions() && executeGroupInTransaction`` → nothing is recorded,
  it was rolled back). backout does the same: a row with ``success = false`` on MySQL/MariaDB
  and for journaled scripts; nothing where the failed transaction was rolled back.
- **rollback**: the version's rows are deleted (all of them: its ``SQL`` row and any failed
  or ``DELETE`` row), the way ``flyway repair`` deletes a failed migration's rows
  (``JdbcTableSchemaHistory.removeFailedMigrations``). With no row, Flyway resolves the file
  as pending (``MigrationInfoServiceImpl.getPendingResolvedVersionedMigrations``) and
  ``flyway migrate`` applies it again. An ``UNDO_SQL`` row is not an option: open-source
  Flyway's ``CoreMigrationType`` has no such constant, so reading it throws
  (``BaseAppliedMigration`` → ``CoreMigrationType.fromString``). A ``DELETE`` row (what recent
  Flyway's repair writes for a missing migration) works only where Flyway knows that type
  (2022+ sources; the 2017-2020 ``MigrationType`` has no ``DELETE``).
- **resolve --applied**: a success row with ``execution_time = 0``;
  **resolve --rolled-back**: the failed rows deleted, as ``flyway repair`` does.

Reading: a version counts as applied by Flyway when its latest row of a migration type
succeeded and no later ``DELETE`` or undo row undid it; a ``BASELINE`` row counts every
version at or below it as applied; a latest row with ``success = false`` is failed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from backout.dialects.base import HostLock, Session
from backout.model.errors import HistoryError, ProjectError
from backout.model.script import Script
from backout.model.urls import DatabaseURL
from backout.project.layouts.flyway import (
    FlywaySettings,
    flyway_checksum,
    location_dirs,
    parse_name,
    read_settings,
    version_parts,
)
from backout.project.migration import Migration
from backout.run.host_history import (
    HostChange,
    HostEvent,
    HostRow,
    HostSetup,
    HostState,
    HostVerdict,
    SqlWrite,
)
from backout.run.runner import prepare

#: a repeatable's states (``MigrationInfoServiceImpl``): never run, run with another checksum,
#: run with this one, or a run recorded as failed (Flyway's migrate refuses until repaired)
PENDING, OUTDATED, UP_TO_DATE, FAILED = "pending", "outdated", "up to date", "failed"

COLUMNS = (
    "installed_rank",
    "version",
    "description",
    "type",
    "script",
    "checksum",
    "installed_by",
    "installed_on",
    "execution_time",
    "success",
)
#: row types that apply a versioned migration (``CoreMigrationType`` and Teams' types)
_MIGRATION_TYPES = frozenset({"SQL", "JDBC", "SPRING_JDBC", "SCRIPT", "CUSTOM"})
_UNDO_TYPES = frozenset({"UNDO_SQL", "UNDO_JDBC", "UNDO_SCRIPT", "UNDO_CUSTOM"})


@dataclass(frozen=True)
class FlywayRow:
    """One row of ``flyway_schema_history``."""

    installed_rank: int
    version: str | None
    description: str
    type: str
    script: str
    checksum: int | None
    installed_by: str
    installed_on: object
    execution_time: int
    success: bool


@dataclass(frozen=True)
class Repeatable:
    """A repeatable ``R__`` migration as Flyway sees it against its history."""

    script: Script
    description: str
    #: Flyway's checksum of the file
    checksum: int
    state: str

    @property
    def due(self) -> bool:
        """``up`` runs it (Flyway's ``migrate`` would)."""
        return self.state in (PENDING, OUTDATED)


def abbreviate(description: str) -> str:
    """A description as Flyway stores it (``AbbreviationUtils.abbreviateDescription``)."""
    return description[:197] + "..." if len(description) > 200 else description


def repeatable_states(
    scripts: tuple[Script, ...], rows: list[FlywayRow], settings: FlywaySettings
) -> list[Repeatable]:
    """Pure: each repeatable's state, ordered by description as Flyway runs them.

    As ``MigrationInfoServiceImpl``: the applied repeatable rows (``version`` NULL) are matched
    by description; when the latest one (``getLatestRepeatableRuns``) is a run, not deleted,
    with the file's checksum → up to date; another latest row → outdated; none → pending. A
    failed row of that description not deleted → failed (``MigrationInfoImpl.getState``; and
    ``DbMigrate`` refuses "a failed repeatable migration"). A successful ``DELETE`` row marks
    the description's latest run deleted (``markRepeatableAsDeleted``).
    """
    latest: dict[str, FlywayRow] = {}
    runs: dict[str, list[FlywayRow]] = {}
    deleted: set[int] = set()
    for row in rows:
        if row.version is None:
            latest[row.description] = row
            if row.type == "DELETE":
                if row.success and runs.get(row.description):
                    deleted.add(runs[row.description][-1].installed_rank)
            else:
                runs.setdefault(row.description, []).append(row)
    failed = {
        r.description
        for group in runs.values()
        for r in group
        if not r.success and r.installed_rank not in deleted
    }
    found: list[Repeatable] = []
    for script in scripts:
        parsed = parse_name(script.path.name, settings)
        description = abbreviate(parsed.description if parsed is not None else script.path.stem)
        checksum = flyway_checksum(script.text)
        last = latest.get(description)
        if description in failed:
            state = FAILED
        elif last is None:
            state = PENDING
        else:
            live = last.type != "DELETE" and last.installed_rank not in deleted
            state = UP_TO_DATE if live and last.checksum == checksum else OUTDATED
        found.append(Repeatable(script, description, checksum, state))
    return sorted(found, key=lambda r: r.description)


class FlywayHistory:
    """:class:`~backout.run.host_history.HostHistory` for Flyway's schema history table."""

    tool = "flyway"
    marks_before_running = False

    def __init__(self, setup: HostSetup):
        self.dialect = setup.dialect
        self.project = setup.project
        self.settings: FlywaySettings = read_settings(setup.project.root)
        table = setup.table or self.settings.table
        schema, _, name = table.rpartition(".")
        if not schema and self.settings.schemas and self.dialect.has_schemas:
            schema = self.settings.schemas[0]
        if not schema and self.dialect.has_schemas and setup.url.schema:
            schema = setup.url.schema
        self.schema: str | None = schema or self.dialect.flyway_default_schema
        self.name = name
        q = self.dialect.quote
        self.table = f"{q(self.schema)}.{q(name)}" if self.schema else q(name)
        self._locations = [
            self.project.migrations_dir,
            *location_dirs(self.project.root, self.settings),
        ]

    @property
    def table_name(self) -> str:
        """The table as shown to users."""
        has_own = self.schema and self.schema != self.dialect.flyway_default_schema
        return f"{self.schema}.{self.name}" if has_own else self.name

    def exists(self, session: Session) -> bool:
        """True when the table exists."""
        schema = self.schema if self.dialect.has_schemas else None
        return self.dialect.table_exists(session, self.name, schema)

    # --- writing --------------------------------------------------------------------------

    def create_sql(self, applied: tuple[str, ...]) -> list[SqlWrite]:
        """Flyway's CREATE TABLE, primary key and index, then a success row per migration
        backout already counts as applied (``execution_time`` 0: not timed by Flyway)."""
        if not self.dialect.flyway_history_ddl:
            raise HistoryError(
                f"Flyway's history table is not supported on {self.dialect.display_name}"
            )
        q = self.dialect.quote
        names = {
            "table": self.table,
            "bare": q(self.name),
            "pk": q(f"{self.name}_pk"),
            "idx": q(f"{self.name}_s_idx"),
            "qidx": (f"{q(self.schema)}." if self.schema else "") + q(f"{self.name}_s_idx"),
        }
        writes: list[SqlWrite] = [
            (ddl.format(**names), ()) for ddl in self.dialect.flyway_history_ddl
        ]
        by_key = self.project.by_key()
        for key in applied:
            migration = by_key.get(key)
            if migration is not None:
                writes.append(self._insert(migration, migration.up, 0, success=True))
        return writes

    def writes(self, session: Session, change: HostChange) -> list[SqlWrite]:
        """The statements recording ``change`` (see the module doc)."""
        migration = change.migration
        event = change.event
        if event in (HostEvent.APPLY_STARTED, HostEvent.ROLLBACK_STARTED):
            return []  # Flyway writes a row only when a migration ends
        if event is HostEvent.ROLLED_BACK:
            return self._delete(session, change.key, failed_only=False)
        if event is HostEvent.RESOLVED_ROLLED_BACK:
            return self._delete(session, change.key, failed_only=True)
        if migration is None:
            return []  # no file: nothing Flyway could describe
        if event in (HostEvent.APPLIED, HostEvent.ROLLBACK_UNDONE):
            # ROLLBACK_UNDONE (`rollback --undo-partial` of a journaled rollback): applied
            # again; its row is still there, since only a finished rollback deletes it
            return self._applied_row(session, migration, change)
        if event is HostEvent.RESOLVED_APPLIED:
            return [
                *self._delete(session, change.key, failed_only=True),
                self._insert(migration, migration.up, 0, success=True),
            ]
        if event is HostEvent.FAILED and self._recorded_when_failed(migration):
            return [self._insert(migration, migration.up, change.duration_ms, success=False)]
        return []

    def _applied_row(
        self, session: Session, migration: Migration, change: HostChange
    ) -> list[SqlWrite]:
        """A success row, unless the version already has one as its latest (the migration
        stayed applied in Flyway's eyes, e.g. a journaled rollback undone part-way)."""
        if change.event is HostEvent.ROLLBACK_UNDONE and self.exists(session):
            latest = {r.key: r for r in self.state_of(self._rows(session))}
            if change.key in latest and latest[change.key].success:
                return []
        return [self._insert(migration, migration.up, change.duration_ms, success=True)]

    def refusal(self, change: HostChange) -> str | None:
        """Flyway's table can record every change backout makes."""
        return None

    def locks(self, url: DatabaseURL) -> list[HostLock]:
        return self.dialect.host_locks(self.tool, url, schema=self.schema, table=self.name)

    def _recorded_when_failed(self, migration: Migration) -> bool:
        """Flyway records a failure unless the migration's transaction rolled it back (its
        script ran as one transaction, on a database whose DDL is transactional)."""
        try:
            return not prepare(self.dialect, migration.up).transactional
        except ProjectError:
            return True

    def _insert(self, migration: Migration, script: Script, ms: int, *, success: bool) -> SqlWrite:
        """``INSERT`` of one row of a versioned migration."""
        parsed = parse_name(script.path.name, self.settings)
        description = parsed.description if parsed is not None else migration.name
        return self._row(migration.key, description, script, ms, success=success)

    def _row(
        self, version: str | None, description: str, script: Script, ms: int, *, success: bool
    ) -> SqlWrite:
        """``INSERT`` of one row, ranked after the last one in the same statement."""
        description = abbreviate(description)
        path = self._script_path(script.path)
        if len(path) > 1000:  # AbbreviationUtils.abbreviateScript
            path = "..." + path[3:1000]
        q = self.dialect.quote
        columns = ", ".join(q(c) for c in COLUMNS if c != "installed_on")
        sql = (
            f"INSERT INTO {self.table} ({columns}) "
            f"SELECT COALESCE(MAX({q('installed_rank')}), 0) + 1, %s, %s, %s, %s, %s, "
            f"{self.dialect.flyway_installed_by}, %s, %s FROM {self.table}"
        )
        params: tuple[object, ...] = (
            version,
            description,
            "SQL",
            path,
            flyway_checksum(script.text),
            ms,
            success,
        )
        return sql, params

    # --- repeatable migrations ------------------------------------------------------------

    def repeatable_row(self, repeatable: Repeatable, ms: int, *, success: bool) -> SqlWrite:
        """The row Flyway writes for a run of a repeatable: ``version`` NULL."""
        return self._row(None, repeatable.description, repeatable.script, ms, success=success)

    def repeatables(self, session: Session | None) -> list[Repeatable]:
        """Each ``R__`` file with its state, in Flyway's order (by description); without a
        ``session`` (no database yet), every one is pending."""
        rows = self.rows(session) if session is not None else []
        return repeatable_states(self.project.repeatables, rows, self.settings)

    def _script_path(self, path: Path) -> str:
        """The script as Flyway stores it: relative to the location holding it."""
        for location in self._locations:
            try:
                return path.relative_to(location).as_posix()
            except ValueError:
                continue
        return path.name

    def _delete(self, session: Session, key: str, *, failed_only: bool) -> list[SqlWrite]:
        """``DELETE`` of the version's rows (only the failed ones: what ``repair`` does)."""
        if not self.exists(session):
            return []
        parts = version_parts(key)
        ranks = [
            row.installed_rank
            for row in self._rows(session)
            if row.version is not None
            and version_parts(row.version) == parts
            and row.type != "BASELINE"
            and (not failed_only or not row.success)
        ]
        if not ranks:
            return []
        q = self.dialect.quote
        marks = ", ".join(["%s"] * len(ranks))
        return [
            (f"DELETE FROM {self.table} WHERE {q('installed_rank')} IN ({marks})", tuple(ranks))
        ]

    # --- reading --------------------------------------------------------------------------

    def _rows(self, session: Session) -> list[FlywayRow]:
        q = self.dialect.quote
        raw = session.query(
            f"SELECT {', '.join(q(c) for c in COLUMNS)} FROM {self.table} "
            f"ORDER BY {q('installed_rank')}"
        )
        return [
            FlywayRow(
                installed_rank=int(r[0]),
                version=None if r[1] is None else str(r[1]),
                description=str(r[2]),
                type=str(r[3]),
                script=str(r[4]),
                checksum=None if r[5] is None else int(r[5]),
                installed_by=str(r[6]),
                installed_on=r[7],
                execution_time=int(r[8] or 0),
                success=bool(r[9]),
            )
            for r in raw
        ]

    def rows(self, session: Session) -> list[FlywayRow]:
        """Every row, oldest first ([] without the table)."""
        return self._rows(session) if self.exists(session) else []

    def read(self, session: Session) -> HostState:
        """The versions Flyway counts as applied or failed, in rank order."""
        if not self.exists(session):
            return HostState(exists=False)
        return HostState(exists=True, rows=tuple(self.state_of(self._rows(session))))

    def state_of(self, rows: list[FlywayRow]) -> list[HostRow]:
        """Pure: the rows folded into one :class:`HostRow` per version (module doc)."""
        keys = {version_parts(m.key): m.key for m in self.project.migrations}
        current: dict[str, HostRow] = {}
        for row in rows:
            if row.version is None:
                continue  # repeatable, schema marker
            parts = version_parts(row.version)
            key = keys.get(parts, row.version)
            if row.type == "BASELINE":
                for other_parts, other in keys.items():
                    if other_parts <= parts:
                        current[other] = HostRow(
                            key=other, applied_at=_when(row), by=row.installed_by
                        )
            elif row.type == "DELETE" or row.type in _UNDO_TYPES:
                if row.success:
                    current.pop(key, None)
            elif row.type in _MIGRATION_TYPES:
                current[key] = HostRow(
                    key=key, success=row.success, applied_at=_when(row), by=row.installed_by
                )
        return sorted(current.values(), key=lambda r: version_parts(r.key))

    def compare(
        self, state: HostState, applied: tuple[str, ...], failed: tuple[str, ...]
    ) -> HostVerdict:
        """Where Flyway's table disagrees with backout's ledger."""
        if not state.exists:
            return HostVerdict()
        ok = {r.key: r for r in state.rows if r.success}
        bad = {r.key for r in state.rows if not r.success}
        mine = set(applied)
        return HostVerdict(
            applied=tuple(r for k, r in ok.items() if k not in mine),
            not_applied=tuple(k for k in applied if k not in ok and k not in bad),
            failed={
                k: f"{self.table_name} records a failed attempt (success = false): repair it "
                "with `backout resolve` once its changes are settled"
                for k in sorted(bad)
                if k not in failed
            },
        )

    def checksums(self, session: Session) -> dict[str, int | None]:
        """The checksum Flyway recorded for each applied version (for edit detection)."""
        keys = {version_parts(m.key): m.key for m in self.project.migrations}
        found: dict[str, int | None] = {}
        for row in self.rows(session):
            if row.version is not None and row.type in _MIGRATION_TYPES and row.success:
                found[keys.get(version_parts(row.version), row.version)] = row.checksum
        return found


def _when(row: FlywayRow) -> dt.datetime | None:
    value = row.installed_on
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
    return None
