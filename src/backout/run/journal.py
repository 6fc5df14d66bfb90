"""The statement journal: what a run that cannot be undone by a transaction has done so far.

MySQL and MariaDB commit DDL implicitly, so a rollback script that fails at its third statement
leaves the first two applied: no ROLLBACK brings them back. The same holds anywhere for a script
that says ``-- backout:transaction off``. For such runs backout writes one journal entry per step,
each committed before the next statement starts, into its ``journal`` table (beside ``events``;
``backout_journal`` on SQLite and MySQL):

========== ===================================================================================
entry      written
========== ===================================================================================
start      before the first statement: the run id, its direction (``up``, ``rollback``,
           ``partial``), migration, script and its checksum, how many statements, the ledger
           row concerned, the backup taken before the run, the plan
running    just before a statement that commits on its own (DDL): if the process dies while it
           runs, whether it took effect is unknown until someone looks (see :func:`observe`)
done       a statement completed, with its index, line and the sha256 of its SQL. A statement
           that runs in a transaction (MySQL DML) writes this entry in that same transaction,
           so it is exact
failed     a statement failed (the error), so it did not take effect
resume     ``rollback --resume`` continued the run from this statement
reversing, reversed
           ``rollback --undo-partial`` undid this statement with its inverse
finish     every statement ran and the history was updated (same transaction)
undone     ``--undo-partial`` brought the database back to where the run started
========== ===================================================================================

A **restore** where restores are not atomic (MySQL/MariaDB) is a run too (direction
``restore``): ``start`` before it changes anything (details: the backup, the full backup of the
state before it, the run it undoes for ``--undo-partial``), ``finish`` once the database matches
the backup. One that has no ``finish`` is an **unfinished restore**: ``status`` reports the
database as half-restored and ``restore --resume`` finishes it. A restore that completes closes
every unfinished one (the database is then exactly its backup), and writes ``undone`` for the
run it undid.

========== ===================================================================================
========== ===================================================================================

A run is **interrupted** while it has neither ``finish`` nor ``undone``, and nothing superseded
it: for an ``up``, its failed ledger row still stands (``resolve`` closes it); for a rollback, the
migration's ledger row it was rolling back is still the live one; and no backup taken before the
run has been restored since (a ``restore`` event). Runs that happen in one transaction (anything
on PostgreSQL and SQLite without ``transaction off``, a MySQL script of DML only) are atomic and
write no journal.

This module holds the model and its SQL; :mod:`backout.rollback.rollback` and
:mod:`backout.migrate.apply` run
it, and :mod:`backout.rollback.recovery` reads it to resume or undo a run. Every write is returned
as
SQL + parameters and goes through the run's executor, so a dry run shows the journal writes too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backout import __version__
from backout.dialects.base import Dialect, Session, utcnow
from backout.model.effects import table_key
from backout.model.object_keys import fold_key, objects
from backout.model.script import Statement

if TYPE_CHECKING:
    from backout.model.effects import Effect, ScriptEffects
    from backout.model.schema import SchemaSnapshot
    from backout.run.runner import Executor

SqlWrite = tuple[str, tuple[object, ...]]

START = "start"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
RESUME = "resume"
REVERSING = "reversing"
REVERSED = "reversed"
FINISH = "finish"
UNDONE = "undone"
#: entries that close a run
CLOSING = (FINISH, UNDONE)

#: direction of a run: what its statements do
UP = "up"
ROLLBACK = "rollback"
PARTIAL = "partial"
#: a restore over the current database where restores are not atomic (MySQL/MariaDB): one
#: ``start`` entry before the first change, ``finish`` when the database matches the backup
RESTORE = "restore"

#: the entries of every run with no closing entry, by run id, oldest first
OpenEntries = dict[str, list[tuple[Any, ...]]]


def statement_sha256(sql: str) -> str:
    """sha256 hex of a statement's text as split from its script."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunContext:
    """The run being journaled: identity and the script it runs."""

    run_id: str
    direction: str
    migration: str
    migration_key: str
    script: str
    script_checksum: str
    total: int

    @classmethod
    def new(
        cls,
        *,
        direction: str,
        migration: str,
        migration_key: str,
        script: str,
        script_checksum: str,
        total: int,
    ) -> RunContext:
        """A context with a fresh run id."""
        return cls(
            run_id=str(uuid.uuid4()),
            direction=direction,
            migration=migration,
            migration_key=migration_key,
            script=script,
            script_checksum=script_checksum,
            total=total,
        )


@dataclass(frozen=True)
class InterruptedRun:
    """A journaled run that stopped part-way and was neither finished nor undone."""

    run_id: str
    direction: str
    migration: str
    migration_key: str
    script: str
    script_checksum: str
    total: int
    started_at: dt.datetime
    stopped_at: dt.datetime
    #: statements that took effect and were not reversed, ascending
    applied: tuple[int, ...]
    #: sha256 and line of every statement that took effect, by index
    hashes: Mapping[int, str]
    lines: Mapping[int, int]
    #: a statement that was running when the run stopped, with no outcome recorded
    uncertain: int | None = None
    uncertain_line: int | None = None
    uncertain_sha256: str | None = None
    #: the statement whose failure stopped the run, and the error
    failed: int | None = None
    failed_line: int | None = None
    error: str | None = None
    #: details of the start entry: ledger row, backup, plan, target, partial and params
    details: Mapping[str, Any] = field(default_factory=dict)
    #: an undo (``--undo-partial``) reversed some statements already
    reversed: tuple[int, ...] = ()
    #: an undo was reversing this statement when it stopped (whether it did is unknown)
    reversing: int | None = None

    def context(self) -> RunContext:
        """The context to write more entries of this run (resume, undo, finish)."""
        return RunContext(
            run_id=self.run_id,
            direction=self.direction,
            migration=self.migration,
            migration_key=self.migration_key,
            script=self.script,
            script_checksum=self.script_checksum,
            total=self.total,
        )

    @property
    def last_done(self) -> int:
        """The highest statement index that took effect (0: none)."""
        return max(self.applied, default=0)

    @property
    def next_index(self) -> int:
        """The statement a resume starts with."""
        return self.last_done + 1

    @property
    def backup(self) -> str | None:
        """The backup taken before the run (None: none was)."""
        value = self.details.get("backup")
        return str(value) if value else None

    @property
    def ledger_row(self) -> str | None:
        """The ledger row the run concerns (an up's failed row; a rollback's live row)."""
        value = self.details.get("ledger_row")
        return str(value) if value else None

    @property
    def undoes(self) -> str | None:
        """A restore: the id of the run whose ``--undo-partial`` it is (None: a plain one)."""
        value = self.details.get("undoes")
        return str(value) if value else None

    @property
    def verb(self) -> str:
        """``applied``, ``rolled back``: what the run was doing, as a past participle."""
        return {UP: "applied", ROLLBACK: "rolled back"}.get(self.direction, "run")

    def describe(self) -> str:
        """``statements 1-2 of 5 of <script> took effect (last: line 27)``."""
        done = len(self.applied)
        if not done:
            text = f"no statement of {self.total} of {self.script} took effect"
        else:
            span = _span(self.applied)
            last_line = self.lines.get(self.last_done)
            text = (
                f"statement{'s' if done > 1 else ''} {span} of {self.total} of {self.script} "
                f"took effect" + (f" (last: {self.script}:{last_line})" if last_line else "")
            )
        if self.failed is not None:
            where = f"{self.script}:{self.failed_line}" if self.failed_line else self.script
            text += f"; statement {self.failed} ({where}) failed"
            if self.error:
                text += f": {self.error}"
        if self.uncertain is not None:
            where = f"{self.script}:{self.uncertain_line}" if self.uncertain_line else self.script
            text += (
                f"; statement {self.uncertain} ({where}) was running when the run stopped: "
                "whether it took effect is not recorded"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``status --json``'s ``interrupted``)."""
        return {
            "run_id": self.run_id,
            "direction": self.direction,
            "script": self.script,
            "statements": self.total,
            "applied": list(self.applied),
            "last_applied": self.last_done or None,
            "last_applied_line": self.lines.get(self.last_done),
            "next": self.next_index if self.next_index <= self.total else None,
            "failed": self.failed,
            "failed_line": self.failed_line,
            "error": self.error,
            "uncertain": self.uncertain,
            "uncertain_line": self.uncertain_line,
            "reversed": list(self.reversed),
            "backup": self.backup,
            "started_at": self.started_at.astimezone(dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }


def _span(indexes: Sequence[int]) -> str:
    if not indexes:
        return "none"
    if list(indexes) == list(range(indexes[0], indexes[-1] + 1)):
        return str(indexes[0]) if len(indexes) == 1 else f"{indexes[0]}-{indexes[-1]}"
    return ", ".join(str(i) for i in indexes)


class Journal:
    """Read and write backout's ``journal`` table."""

    def __init__(self, dialect: Dialect, history_schema: str) -> None:
        self.dialect = dialect
        self.history_schema = history_schema
        self.table = dialect.history_table("journal", history_schema)
        self.events_table = dialect.history_table("events", history_schema)

    @property
    def ref(self) -> tuple[str, str | None]:
        """The journal table as :meth:`Dialect.bookkeeping_exists` names it: (table, schema)."""
        if self.dialect.has_schemas:
            return "journal", self.history_schema
        return "backout_journal", None

    def exists(self, session: Session) -> bool:
        """True when the journal table exists (history schema version 2 or newer)."""
        return self.dialect.bookkeeping_exists(session, *self.ref)

    def create_sql(self) -> list[str]:
        """DDL creating the journal (the history schema itself exists already)."""
        ts = self.dialect.timestamp_type
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table} (\n"
            f"    id {self.dialect.serial_primary_key},\n"
            "    run_id VARCHAR(36) NOT NULL,\n"
            "    entry VARCHAR(16) NOT NULL,\n"
            "    direction VARCHAR(16) NOT NULL,\n"
            "    migration VARCHAR(255) NOT NULL,\n"
            "    migration_key VARCHAR(255) NOT NULL,\n"
            "    script VARCHAR(1024) NOT NULL,\n"
            "    script_checksum VARCHAR(64) NOT NULL,\n"
            "    statement_index INTEGER NOT NULL,\n"
            "    statement_count INTEGER NOT NULL,\n"
            "    line INTEGER,\n"
            "    sha256 VARCHAR(64),\n"
            f"    recorded_at {ts} NOT NULL,\n"
            "    details TEXT NOT NULL\n"
            f"){self.dialect.table_options}"
        ]

    def ensure(
        self, session: Session, executor: Executor, version_table: str, version: int
    ) -> None:
        """Create the journal on history tables of an older schema version (1 → 2)."""
        if executor.dry_run or self.exists(session):
            return
        executor.comment("backout: history schema version 2 (statement journal)")
        for sql in self.create_sql():
            executor.execute(sql)
        executor.execute(
            f"INSERT INTO {version_table} (version, installed_at, tool_version) "
            "VALUES (%s, %s, %s)",
            (version, self.dialect.to_db_time(utcnow()), _tool_version()),
        )

    # --- writes -------------------------------------------------------------------------------

    def write(
        self,
        run: RunContext,
        entry: str,
        index: int,
        *,
        statement: Statement | None = None,
        details: Mapping[str, Any] | None = None,
        when: dt.datetime | None = None,
    ) -> SqlWrite:
        """SQL appending one entry of ``run``."""
        return (
            f"INSERT INTO {self.table} (run_id, entry, direction, migration, migration_key, "
            "script, script_checksum, statement_index, statement_count, line, sha256, "
            "recorded_at, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                run.run_id,
                entry,
                run.direction,
                run.migration,
                run.migration_key,
                run.script,
                run.script_checksum,
                index,
                run.total,
                statement.line if statement is not None else None,
                statement_sha256(statement.sql) if statement is not None else None,
                self.dialect.to_db_time(when or utcnow()),
                json.dumps(dict(details or {}), sort_keys=True, default=str),
            ),
        )

    # --- reads --------------------------------------------------------------------------------

    @property
    def open_entries_sql(self) -> str:
        """The query :meth:`open_entries` reads the journal with."""
        closing = ", ".join(f"'{e}'" for e in CLOSING)
        return (
            "SELECT run_id, entry, direction, migration, migration_key, script, script_checksum, "
            "statement_index, statement_count, line, sha256, recorded_at, details "
            f"FROM {self.table} WHERE run_id IN (SELECT run_id FROM {self.table} "
            f"GROUP BY run_id HAVING SUM(CASE WHEN entry IN ({closing}) THEN 1 ELSE 0 END) = 0) "
            "ORDER BY id"
        )

    def open_entries(self, session: Session) -> OpenEntries:
        """Entries of every run that has no closing entry, by run id, oldest first."""
        if not self.exists(session):
            return {}
        rows = session.query(self.open_entries_sql)
        runs: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            runs.setdefault(str(row[0]), []).append(row)
        return runs

    def restores(self, session: Session) -> list[tuple[str, dt.datetime]]:
        """(backup id, when) of every successful restore in the event log."""
        if self.dialect.has_schemas:
            present = self.dialect.bookkeeping_exists(session, "events", self.history_schema)
        else:
            present = self.dialect.bookkeeping_exists(session, "backout_events", None)
        if not present:
            return []
        rows = session.query(
            f"SELECT backup, finished_at FROM {self.events_table} "
            "WHERE event = 'restore' AND outcome = 'ok'"
        )
        found = []
        for backup, finished in rows:
            when = self.dialect.from_db_time(finished)
            if backup and when is not None:
                found.append((str(backup), when))
        return found

    def interrupted(
        self,
        session: Session,
        *,
        failed_rows: Collection[str],
        live_rows: Mapping[str, str],
        entries: OpenEntries | None = None,
    ) -> list[InterruptedRun]:
        """Runs that stopped part-way and still stand (see the module docstring).

        ``failed_rows``: ids of ledger rows of failed, unresolved applies; ``live_rows``: the
        live (applied) ledger row id per migration key. ``entries``: :meth:`open_entries`, when
        the caller has just read them.
        """
        if entries is None:
            entries = self.open_entries(session)
        if not entries:
            return []
        restores = self.restores(session)
        runs = []
        for rows in entries.values():
            run = self._build(rows)
            if run is None or run.direction == RESTORE:
                continue
            if self._superseded(run, failed_rows, live_rows, restores):
                continue
            runs.append(run)
        return runs

    def unfinished_restores(
        self, session: Session, entries: OpenEntries | None = None
    ) -> list[InterruptedRun]:
        """Journaled restores that started and never finished, oldest first: the database is
        half-restored (see the module docstring). ``entries``: as for :meth:`interrupted`."""
        runs = []
        if entries is None:
            entries = self.open_entries(session)
        for rows in entries.values():
            run = self._build(rows)
            if run is not None and run.direction == RESTORE:
                runs.append(run)
        return runs

    def _build(self, rows: Sequence[tuple[Any, ...]]) -> InterruptedRun | None:
        start = next((r for r in rows if r[1] == START), None)
        if start is None:
            return None
        parse = self.dialect.from_db_time
        started = parse(start[11])
        stopped = parse(rows[-1][11])
        assert started is not None and stopped is not None
        done: dict[int, tuple[str, int | None]] = {}
        reversed_: set[int] = set()
        running: dict[int, tuple[int | None, str | None]] = {}
        failed: tuple[int, int | None, str | None] | None = None
        for row in rows:
            entry, index, line, sha = str(row[1]), int(row[7]), row[9], row[10]
            if entry == DONE:
                done[index] = (str(sha or ""), line)
                running.pop(index, None)
                reversed_.discard(index)
                failed = None if failed and failed[0] == index else failed
            elif entry == RUNNING:
                running[index] = (line, sha)
            elif entry == FAILED:
                running.pop(index, None)
                details = _details(row[12])
                failed = (index, line, details.get("error"))
            elif entry == REVERSED:
                reversed_.add(index)
                running.pop(-index, None)
            elif entry == REVERSING:
                running[-index] = (line, sha)
            elif entry == RESUME:
                failed = None
        applied = tuple(sorted(set(done) - reversed_))
        uncertain = next((i for i in sorted(running) if i > 0), None)
        # A reversal that was running when the run stopped: its statement still counts as
        # applied; --undo-partial looks at the schema before repeating the inverse.
        reversing = next((-i for i in sorted(running, reverse=True) if i < 0), None)
        return InterruptedRun(
            run_id=str(start[0]),
            direction=str(start[2]),
            migration=str(start[3]),
            migration_key=str(start[4]),
            script=str(start[5]),
            script_checksum=str(start[6]),
            total=int(rows[-1][8]),
            started_at=started,
            stopped_at=stopped,
            applied=applied,
            hashes={i: done[i][0] for i in applied},
            lines={i: int(line) for i in applied if (line := done[i][1]) is not None},
            uncertain=uncertain,
            uncertain_line=running[uncertain][0] if uncertain is not None else None,
            uncertain_sha256=running[uncertain][1] if uncertain is not None else None,
            reversing=reversing if reversing in applied else None,
            failed=failed[0] if failed else None,
            failed_line=failed[1] if failed else None,
            error=failed[2] if failed else None,
            details=_details(start[12]),
            reversed=tuple(sorted(reversed_ & set(done))),
        )

    @staticmethod
    def _superseded(
        run: InterruptedRun,
        failed_rows: Collection[str],
        live_rows: Mapping[str, str],
        restores: Sequence[tuple[str, dt.datetime]],
    ) -> bool:
        row = run.ledger_row
        if run.direction == UP and row is not None and row not in failed_rows:
            return True  # resolved (--applied or --rolled-back), or restored away
        if run.direction in (ROLLBACK, PARTIAL) and live_rows.get(run.migration_key) != row:
            return True  # rolled back or re-applied by other means since
        for backup, when in restores:
            taken = backup_time(backup)
            if when > run.started_at and taken is not None and taken <= run.started_at:
                return True  # a backup from before the run was restored after it
        return False


def _details(value: object) -> dict[str, Any]:
    try:
        loaded = json.loads(str(value or "{}"))
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def describe_unfinished_restore(run: InterruptedRun) -> str:
    """``restoring backup X (started …) stopped part-way; the state before it is in …``."""
    when = run.started_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    text = f"the restore of backup {run.backup} (started {when}) stopped part-way"
    if run.undoes:
        text += f", while undoing the interrupted run {run.undoes[:8]} of {run.migration}"
    before = run.details.get("pre_restore_backup")
    if before:
        text += f"; the state before it is in backup {before}"
    return text


def finish_restore_hint(run: InterruptedRun) -> str:
    """How to finish an unfinished restore."""
    if run.undoes:
        return (
            "finish the undo with `backout restore --resume` (it restores the same backup "
            "again, then closes the run)"
        )
    return (
        f"finish it with `backout restore --resume` (the same as `backout restore {run.backup}` "
        "again)"
    )


def backup_time(backup_id: str) -> dt.datetime | None:
    """When a backup was taken, from its id (``20261122T045433Z-scoped-app``)."""
    try:
        return dt.datetime.strptime(backup_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _tool_version() -> str:
    return __version__


# --- hooks the runner calls ------------------------------------------------------------------


class JournalHooks:
    """What :class:`backout.run.runner.ScriptRunner` calls around each statement of a run."""

    def __init__(self, journal: Journal, run: RunContext, executor: Executor) -> None:
        self.journal = journal
        self.run = run
        self.executor = executor

    def running(self, statement: Statement) -> None:
        """Before a statement that commits on its own (committed at once)."""
        self.executor.execute(
            *self.journal.write(self.run, RUNNING, statement.index, statement=statement)
        )

    def done(self, statement: Statement, **details: Any) -> None:
        """After a statement took effect (inside its transaction when it has one)."""
        self.executor.execute(
            *self.journal.write(
                self.run, DONE, statement.index, statement=statement, details=details
            )
        )

    def failed(self, statement: Statement, error: str) -> None:
        """A statement failed: it took no effect (committed at once, best effort)."""
        self.executor.execute(
            *self.journal.write(
                self.run, FAILED, statement.index, statement=statement, details={"error": error}
            )
        )


# --- undoing statements ------------------------------------------------------------------------


@dataclass(frozen=True)
class Inverse:
    """How one completed statement is undone: SQL derived from its effects, or why not."""

    statement: Statement
    sql: tuple[str, ...] = ()
    #: why no inverse can be derived (None: ``sql`` undoes it; empty ``sql``: nothing to undo)
    reason: str | None = None

    @property
    def derivable(self) -> bool:
        """An inverse exists (possibly empty: the statement changed nothing to undo)."""
        return self.reason is None


def inverse_of(
    dialect: Dialect,
    statement: Statement,
    effects: ScriptEffects,
    snapshot: SchemaSnapshot,
    row_counts: Mapping[str, int],
) -> Inverse:
    """The inverse of one statement that took effect, from its effects (see docs/mysql.md).

    Derivable: CREATE TABLE (an empty table) → DROP TABLE, ADD COLUMN → DROP COLUMN,
    CREATE INDEX → DROP INDEX, ADD FOREIGN KEY / CONSTRAINT → DROP it, RENAME → RENAME back,
    CREATE VIEW/TRIGGER/PROCEDURE/FUNCTION → DROP it; statements without effect need nothing.
    Anything that destroyed or changed data or definitions (DROP, MODIFY, DELETE, UPDATE,
    INSERT, TRUNCATE) needs the backup; so does a statement the analysis cannot read.
    """
    own = effects.for_statement(statement)
    unknown = [u for u in effects.unknown if u.statement.index == statement.index]
    if unknown:
        return Inverse(statement, reason=f"its effect cannot be analysed ({unknown[0].reason})")
    created_tables = {
        e.target for e in own if e.target.kind.value == "table" and e.action.value == "create"
    }
    per_effect: list[list[str]] = []
    for effect in own:
        table = effect.table
        if (
            table is not None
            and table in created_tables
            and effect.target not in created_tables
            and effect.action.value == "create"
        ):
            continue  # a column, index or key created with its table goes with it
        if effect.target.kind.value == "setting":
            continue  # a session setting: gone with the session
        if effect.if_exists and effect.action.value == "create":
            return Inverse(
                statement,
                reason=f"{effect.target.display} was created IF NOT EXISTS: whether this "
                "statement created it is unknown",
            )
        if effect.action.value == "create" and effect.target.kind.value == "table":
            rows = _rows_of(effect.target, snapshot, row_counts)
            if rows:
                return Inverse(
                    statement,
                    reason=f"{effect.target.display} holds {rows} row(s) now: dropping it would "
                    "lose them",
                )
        undo = dialect.inverse_sql(effect, snapshot)
        if undo is None:
            return Inverse(statement, reason=_why_not(effect))
        per_effect.append(undo)
    # Effects are undone in the reverse of the order they happened in.
    return Inverse(statement, sql=tuple(sql for undo in reversed(per_effect) for sql in undo))


def _rows_of(target: Any, snapshot: SchemaSnapshot, row_counts: Mapping[str, int]) -> int:
    key = table_key(target, snapshot)
    return int(row_counts.get(key, 0)) if key else 0


def _why_not(effect: Effect) -> str:
    action = effect.action.value
    what = effect.target.display
    if action == "drop":
        return f"it dropped {what} (only the backup holds it as it was)"
    if action in {"truncate", "delete"}:
        return f"it deleted rows of {what} (only the backup holds them)"
    if action in {"update", "insert"}:
        return f"it changed the rows of {what} (only the backup holds them as they were)"
    if action == "alter":
        return (
            f"it changed {what} ({effect.detail or 'definition'}); the old definition is not known"
        )
    return f"no inverse is known for: {effect.describe()}"


def observe(effects: Sequence[Effect], snapshot: SchemaSnapshot) -> bool | None:
    """Whether a statement's schema effects are visible in ``snapshot``: True (it took effect),
    False (it did not), None (cannot tell: no observable effect, or the effects disagree).

    Used for a statement that was running when a run died: MySQL's DDL is atomic per
    statement, so its objects either all exist as it leaves them or not at all.
    """
    folded = any(e.target.case_insensitive for e in effects)
    present = objects(snapshot, case_insensitive=folded)
    # An index left invalid by a CREATE INDEX CONCURRENTLY cut short is in the catalog but not
    # built: the statement did not take effect (it is dropped and run again). One left by a
    # DROP INDEX CONCURRENTLY cut short is still there: that drop did not take effect either.
    invalid = {
        fold_key(("index", index.schema, index.name), folded)
        for index in snapshot.indexes.values()
        if not index.valid
    }
    verdicts: set[bool] = set()
    for effect in effects:
        keys = _keys(effect, folded, snapshot.default_schema)
        if keys is None:
            return None
        before, after = keys
        action = effect.action.value
        if action == "create" and after is not None:
            verdicts.add(after in present and after not in invalid)
        elif action == "drop" and before is not None:
            verdicts.add(before not in present)
        elif action == "rename" and before is not None and after is not None:
            if (before in present) == (after in present):
                return None
            verdicts.add(after in present)
        else:
            return None
    if len(verdicts) != 1:
        return None
    return verdicts.pop()


def _keys(
    effect: Effect, folded: bool, default_schema: str | None = None
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None] | None:
    """The object keys (as :func:`backout.model.schema.objects` makes them) an effect's
    target has
    before and after it; a name without a schema is in ``default_schema`` (the project's)."""
    kinds = {
        "table": "table",
        "column": "column",
        "index": "index",
        "view": "view",
        "trigger": "trigger",
        "constraint": "constraint",
        "foreign_key": "constraint",
        "function": "function",
        "procedure": "function",
    }
    kind = kinds.get(effect.target.kind.value)
    if kind is None:
        return None
    target = effect.target

    def key(name: str) -> tuple[str, ...]:
        names: tuple[str, ...] = (name,)
        if kind in ("column", "trigger", "constraint"):
            names = (target.parent or "", name)
        schema = target.schema if target.schema is not None else default_schema
        parts = (kind, schema or "", *names)
        return tuple(p.casefold() for p in parts) if folded else parts

    before = key(target.name)
    after = key(effect.renamed_to.name) if effect.renamed_to is not None else before
    return before, after
