"""A project, its database and its history, opened together for one command."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from backout.dialects import dialect_for
from backout.dialects.base import Actor, Dialect, HostLock, RunLock, Session, utcnow
from backout.model.errors import ConfigError, HistoryError, LockError, LockHeld, PoolerRefused
from backout.model.script import Script
from backout.model.urls import DatabaseURL
from backout.project.config import Config, direct_url_hint
from backout.project.layouts import load_project
from backout.project.layouts.prisma import provider_dialect
from backout.project.migration import Migration, Project
from backout.run.history import Event, EventLog, Ledger, LedgerRow
from backout.run.host_history import (
    HostChange,
    HostEvent,
    HostHistory,
    HostSetup,
    SqlWrite,
    reconcile,
)
from backout.run.hosts import host_history_for
from backout.run.runner import Executor, RunOptions
from backout.run.status import EntryMemo, State, StatusReport, being_applied, compute_status

T = TypeVar("T")


@dataclass
class Workspace:
    """Everything one command needs; open with :meth:`open`."""

    config: Config
    project: Project
    url: DatabaseURL
    dialect: Dialect
    actor: Actor
    ledger: Ledger
    events: EventLog
    #: where human notices go while a command runs (lock waits...); None: nowhere
    notice: Callable[[str], None] | None = None
    #: the database is a throwaway one that only this process knows (a rehearsal's scratch
    #: copy): no other run can change it between two of this run's steps
    private: bool = False
    #: the host tool's own history table (dbmate's, golang-migrate's...), None: the layout's
    #: ledger is the host tool's own (Prisma); see :mod:`backout.run.host_history`
    host: HostHistory | None = None
    #: the last status computed, with what it was computed from (see :meth:`_status_of`)
    _status_memo: tuple[Any, ...] | None = field(default=None, init=False, repr=False)
    #: the status entries computed for this project (see :func:`compute_status`'s ``memo``)
    _entries: tuple[Project | None, EntryMemo] = field(
        default_factory=lambda: (None, {}), init=False, repr=False
    )
    #: keys applied as of the last status read and this run's host writes since, in the
    #: project's order: what :class:`HostChange.applied_after` is computed from
    _applied_now: list[str] | None = field(default=None, init=False, repr=False)
    #: backout's own tables seen on a private database, shared by all its sessions: only
    #: backout creates them there (each in a committed transaction of its own), nothing drops
    #: them (see Dialect.bookkeeping_exists)
    _known_tables: set[tuple[str, str | None]] = field(default_factory=set, init=False, repr=False)
    #: the run lock taken once for a whole walk of commands on a private database (see
    #: :meth:`holding_run_lock`), None when each command takes its own
    _held: RunLock | None = field(default=None, init=False, repr=False)

    @classmethod
    def open(cls, config: Config) -> Workspace:
        """Load the project and pick the dialect; no database access yet."""
        project = load_project(
            config.root,
            layout=config.layout,
            migrations_dir=config.migrations_dir,
            rollback_dir=config.rollback_dir,
        )
        url = config.url
        expected = provider_dialect(project.provider)
        if expected is not None and expected != url.dialect:
            raise ConfigError(
                f"{project.provider_source} says provider '{project.provider}', "
                f"but the database URL ({url.masked()}, from {config.url_source}) is {url.dialect}"
            )
        dialect = dialect_for(url)
        dialect.history_schema = config.history_schema
        host = host_history_for(
            HostSetup(dialect=dialect, project=project, url=url, table=_host_table(config, project))
        )
        if host is not None:
            if "." in host.table_name and not dialect.has_schemas:
                raise ConfigError(
                    f"migrations_table {host.table_name!r}: a schema-qualified table needs a "
                    f"database with schemas (PostgreSQL), not {dialect.display_name}"
                )
            dialect.host_table = host.table_name
        return cls(
            config=config,
            project=project,
            url=url,
            dialect=dialect,
            actor=Actor.current(),
            ledger=Ledger(
                dialect, prisma=project.ledger == "prisma", history_schema=config.history_schema
            ),
            events=EventLog(dialect, config.history_schema),
            host=host,
        )

    def connect(self, *, create: bool = True) -> Session:
        """Open a session on the configured database (``create=False``: never create a file)."""
        try:
            session = self.dialect.connect(self.url, actor=self.actor, create=create)
        except PoolerRefused as exc:
            raise PoolerRefused(
                f"{exc.message} (URL from {self.config.url_source})",
                hint=direct_url_hint(self.config, prisma=self.project.ledger == "prisma"),
            ) from exc
        if self.private:
            session.known_tables = self._known_tables
        return session

    @contextmanager
    def session(self, *, create: bool = True) -> Iterator[Session]:
        """A session closed on exit."""
        session = self.connect(create=create)
        try:
            yield session
        finally:
            session.close()

    def database_exists(self) -> bool:
        """False when the database is a file that does not exist yet (read-only commands)."""
        return self.dialect.database_exists(self.url)

    def run_lock(self, session: Session) -> RunLock:
        """Take the run lock (also Prisma's, in the Prisma layout), waiting up to
        ``lock_wait`` while another run holds it; LockError after that. While
        :meth:`holding_run_lock`, the lock held is handed out (its release keeps it)."""
        if self._held is not None:
            return _StillHeld(self._held.description)
        locks = self.host_locks()
        return self._waiting(
            lambda: self.dialect.acquire_run_lock(session, self.actor, host_locks=locks)
        )

    def host_locks(self) -> list[HostLock]:
        """The host tool's own migration lock(s), taken with backout's run lock: Prisma
        Migrate's in the Prisma layout, else the host history's (none for dbmate, nor on
        SQLite)."""
        if self.project.ledger == "prisma":
            return self.dialect.host_locks("prisma", self.url, schema=None, table="")
        return self.host.locks(self.url) if self.host is not None else []

    def check_run_lock(self, session: Session) -> None:
        """LockError naming the holder when another run holds the run lock (takes nothing),
        after waiting up to ``lock_wait`` for it to be released. While
        :meth:`holding_run_lock`, nobody else can hold it."""
        if self._held is not None:
            return
        locks = self.host_locks()
        self._waiting(lambda: self.dialect.check_run_lock(session, self.actor, host_locks=locks))

    @contextmanager
    def holding_run_lock(self) -> Iterator[None]:
        """On a private database (a rehearsal's scratch copy), take the run lock once, on a
        session of its own, for every command run in the block: each would otherwise take
        and release it (and check it first) several times per migration. Elsewhere, nothing
        changes: each command takes its own."""
        if not self.private or self._held is not None:
            yield
            return
        with self.session() as session, self.run_lock(session) as lock:
            self._held = lock
            try:
                yield
            finally:
                self._held = None

    def _waiting(self, attempt: Callable[[], T]) -> T:
        """``attempt()`` again while the run lock is held elsewhere, until ``lock_wait`` ends.

        The dialects only ever try (never block inside the database), so waiting is this loop
        the same everywhere, and the holder is named when the wait is over.
        """
        wait = self.config.lock_wait
        deadline = time.monotonic() + wait
        pause = 0.05
        told = False
        while True:
            try:
                return attempt()
            except LockHeld as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    if wait > 0:
                        exc.message += f" (waited {wait:g}s, --lock-wait)"
                        exc.args = (exc.message,)
                    raise
                if not told and self.notice is not None:
                    self.notice(f"{exc.message}; waiting up to {wait:g}s (--lock-wait)")
                    told = True
                time.sleep(min(pause, left))
                pause = min(pause * 2, 0.5)

    def run_options(self) -> RunOptions:
        """Timeouts and retries from the configuration (lock waits reported to ``notice``)."""
        notice = self.notice

        def on_retry(where: str, attempt: int, wait: float) -> None:
            if notice is not None:
                notice(
                    f"{where}: lock not granted within {self.config.lock_timeout:g}s "
                    f"(attempt {attempt} of {self.config.lock_retries + 1}); retrying in "
                    f"{wait:.1f}s"
                )

        return RunOptions(
            lock_timeout=self.config.lock_timeout,
            lock_wait=self.dialect.lock_wait(self.config.lock_timeout),
            lock_retries=self.config.lock_retries,
            statement_timeout=self.config.statement_timeout,
            on_retry=on_retry,
        )

    def read_status(self, session: Session) -> StatusReport:
        """The state of every migration, checking the history tables' version first."""
        # Which of the tables read below exist: asked once, not before each read.
        tables = [self.events.ref("schema_version"), self.ledger.ref, self.events.journal.ref]
        with (
            self.dialect.bookkeeping_known(session, tables),
            session.reading_ahead(self._history_reads(session)),
        ):
            self.events.check_version(session)
            exists = self.ledger.exists(session)
            # the journal's open runs, read once: interrupted applies and unfinished restores
            entries = self.events.journal.open_entries(session)
            rows = self.ledger.rows(session, entries, exists=True) if exists else []
            report = self._with_host(session, self._status_of(rows, exists))
            in_flight = self._host_in_flight(report)
            if report.unfinished or in_flight:
                holder = self.run_lock_holder(session)
                if holder is not None:
                    report = being_applied(report, holder, in_flight=in_flight)
            # A half-restored database may have lost its ledger: the journal still knows.
            restores = tuple(self.events.journal.unfinished_restores(session, entries))
        return replace(report, unfinished_restores=restores) if restores else report

    def _history_reads(self, session: Session) -> list[tuple[str, None]]:
        """The queries :meth:`read_status` asks of the history tables that exist: read all at
        once where the driver can."""
        reads = []
        if self.events.version_exists(session):
            reads.append((self.events.version_sql, None))
        if self.events.journal.exists(session):
            reads.append((self.events.journal.open_entries_sql, None))
        if self.ledger.exists(session):
            reads.append((self.ledger.rows_sql, None))
        return reads

    def _host_in_flight(self, report: StatusReport) -> set[str]:
        """Keys the host tool marked failed before running them (golang-migrate's dirty
        version): being applied now when the tool (or backout) holds the run lock."""
        if self.host is None or not self.host.marks_before_running:
            return set()
        return {e.key for e in report.failed if e.recorded_by == self.host.tool}

    def _status_of(self, rows: list[LedgerRow], exists: bool) -> StatusReport:
        """:func:`compute_status`, remembered for the last rows read: it is pure, and a
        rehearsal walk reads the same history several times per migration, each costing as
        much as the project has migrations."""
        memo = self._status_memo
        same = memo is not None and (memo[2] is rows or memo[2] == rows)
        if memo is not None and memo[0] is self.project and memo[1] == exists and same:
            return memo[3]  # type: ignore[no-any-return]
        if self._entries[0] is not self.project:
            self._entries = (self.project, {})
        report = compute_status(self.project, rows, ledger_exists=exists, memo=self._entries[1])
        self._status_memo = (self.project, exists, rows, report)
        return report

    def _with_host(self, session: Session, report: StatusReport) -> StatusReport:
        """``report`` as the host table says it is (one read of it), remembering what is
        applied for the host writes that follow."""
        if self.host is not None:
            state = self.host.read(session)
            applied = tuple(e.key for e in report.entries if e.is_applied)
            failed = tuple(
                e.key
                for e in report.entries
                if e.state is State.FAILED or e.interrupted is not None
            )
            report = reconcile(report, self.host.compare(state, applied, failed), self.host.tool)
            if state.exists and not report.ledger_exists:
                report = replace(report, ledger_exists=True)
        self._applied_now = [e.key for e in report.entries if e.is_applied]
        return report

    def host_writes(
        self,
        session: Session,
        event: HostEvent,
        migration: Migration | None,
        key: str,
        *,
        started: dt.datetime,
        finished: dt.datetime | None = None,
        script: Script | None = None,
        error: str | None = None,
        statements: int = 0,
    ) -> list[SqlWrite]:
        """The host table's counterpart of one ledger write (``[]`` without a host table),
        to run in the same transaction; later calls see this change as made."""
        if self.host is None:
            return []
        if self._applied_now is None:
            self.read_status(session)
        assert self._applied_now is not None
        applied = _applied_after(self.project, self._applied_now, event, key)
        change = HostChange(
            event=event,
            key=key,
            migration=migration,
            applied_after=applied,
            started_at=started,
            finished_at=finished,
            actor=self.actor,
            script=script,
            error=error,
            statements=statements,
        )
        writes = self.host.writes(session, change)
        self._applied_now = list(applied)
        return writes

    def record_host(
        self, executor: Executor, event: HostEvent, migration: Migration, **kw: Any
    ) -> None:
        """:meth:`host_writes` for ``migration``, run through ``executor`` (in whatever
        transaction is open)."""
        writes = self.host_writes(executor.session, event, migration, migration.key, **kw)
        if writes and self.host is not None:
            executor.comment(
                f"{self.host.tool}: {migration.id} {event.value} in {self.host.table_name}"
            )
        for sql, params in writes:
            executor.execute(sql, params or None)

    def run_lock_holder(self, session: Session) -> str | None:
        """Who holds the run lock now (backout's, or the host tool's: Prisma Migrate's,
        golang-migrate's, Flyway's), as the sentence LockError gives; None when it is free.
        Takes nothing. While :meth:`holding_run_lock`, only this process holds it: None."""
        if self._held is not None:
            return None
        try:
            # asked once, never waited for: status reports, it does not queue
            self.dialect.check_run_lock(session, self.actor, host_locks=self.host_locks())
        except LockError as exc:
            return exc.message
        return None

    def refuse_being_applied(self, report: StatusReport) -> None:
        """LockError naming the holder when another run is applying a migration now."""
        if report.applying:
            entry = report.applying[0]
            raise LockError(
                f"migration {entry.id} is being applied: {entry.applying_by}",
                hint="wait for that run to finish, then look at `backout status`",
            )

    def ensure_history(self, session: Session, executor: Executor) -> None:
        """Create backout's tables (and the ledger) if missing, in their own transaction.

        On a first run this also creates the schema the URL names (Prisma's ``?schema=``),
        as ``prisma migrate deploy`` does.
        """
        missing: list[tuple[str, tuple[object, ...]]] = []
        if not self.events.exists(session):
            missing.extend(self.events.create_sql(self.actor, utcnow()))
        if not self.ledger.exists(session):
            missing.extend((sql, ()) for sql in self.ledger.create_sql())
        if self.host is not None and not self.host.exists(session):
            # first write since the host table went missing (or backout kept none before):
            # created as its tool creates it, holding what backout counts as applied
            rows = self.ledger.rows(session) if self.ledger.exists(session) else []
            applied = tuple(
                e.key for e in compute_status(self.project, rows, ledger_exists=True).applied
            )
            missing.extend(self.host.create_sql(applied))
        if not missing:
            return
        statements = [(sql, ()) for sql in self.dialect.ensure_url_schema(self.url)] + missing
        executor.comment("backout: create history tables")
        executor.begin()
        try:
            for sql, params in statements:
                executor.execute(sql, params or None)
            executor.commit()
        except BaseException:
            executor.rollback()
            raise

    def record(self, executor: Executor, event: Event) -> None:
        """Append an event through the executor (in whatever transaction is open)."""
        sql, params = self.events.append(event)
        executor.execute(sql, params)

    def record_alone(self, session: Session, event: Event) -> None:
        """Append an event in a transaction of its own (after a failure was rolled back)."""
        if not self.events.exists(session):
            executor = Executor(session, dry_run=False)
            self.ensure_history(session, executor)
        sql, params = self.events.append(event)
        session.begin()
        try:
            session.execute(sql, params)
            session.commit()
        except BaseException:
            session.rollback()
            raise

    def refuse_untrusted(
        self, report: StatusReport, *, allow_edited: bool, allow_missing: bool
    ) -> None:
        """Refuse to continue past history that cannot be trusted, unless told to."""
        self.refuse_being_applied(report)
        if report.failed:
            entry = report.failed[0]
            others = f" (and {len(report.failed) - 1} more)" if len(report.failed) > 1 else ""
            raise HistoryError(
                f"migration {entry.id} failed{others} and is not resolved",
                hint=f"see `backout status`; fix the cause, then `backout resolve {entry.id} "
                "--rolled-back` (or --applied if its changes are in place)",
            )
        if report.missing and not allow_missing:
            ids = ", ".join(e.id for e in report.missing[:5])
            raise HistoryError(
                f"applied migration(s) missing from disk: {ids}",
                hint="restore the files (e.g. git checkout), or pass --allow-missing",
            )
        if report.edited and not allow_edited:
            entry = report.edited[0]
            assert entry.migration is not None
            raise HistoryError(
                f"{entry.migration.up.display} was edited after it was applied "
                f"({len(report.edited)} edited migration(s))",
                hint="restore the applied version (e.g. git checkout), or pass --allow-edited",
            )


class _StillHeld(RunLock):
    """The lock :meth:`Workspace.holding_run_lock` holds, handed to one command: released
    when the block ends, not by the command."""

    def __init__(self, description: str) -> None:
        self.description = description

    def release(self) -> None:
        return None


def _host_table(config: Config, project: Project) -> str | None:
    """The host table's configured name: ``DBMATE_MIGRATIONS_TABLE`` (dbmate layout), else
    ``migrations_table``; None: the tool's default."""
    if project.layout == "dbmate" and config.dbmate_migrations_table:
        return config.dbmate_migrations_table
    return config.migrations_table


def _applied_after(
    project: Project, applied: list[str], event: HostEvent, key: str
) -> tuple[str, ...]:
    """``applied`` once ``event`` is recorded for ``key``, in the project's order."""
    keys = [k for k in applied if k != key]
    applies = (HostEvent.APPLIED, HostEvent.RESOLVED_APPLIED, HostEvent.ROLLBACK_UNDONE)
    stays = event is not HostEvent.ROLLED_BACK and key in applied
    if event in applies or stays:
        keys.append(key)
    order = {m.key: i for i, m in enumerate(project.migrations)}
    return tuple(sorted(keys, key=lambda k: (order.get(k, len(order)), k)))
