"""The host tool's own history table, kept beside backout's ledger (issue #15).

A layout's *host tool* (dbmate, golang-migrate, Flyway...) keeps its own record of what is
applied (``schema_migrations``, ``flyway_schema_history``). A team runs that tool in its deploy
pipeline and backout on the day of an incident, so both records must agree:

- **writes**: every write backout makes to its ledger (:class:`~backout.run.history.Ledger`) has
  its counterpart in the host table, made through the same executor, in the same transaction
  where the dialect allows it (on MySQL a journaled run writes the host rows at the same points
  as the ledger's started/finished rows; see :class:`HostEvent`). backout's ledger, audit events
  and journal stay in backout's tables; the host table is written exactly as its tool writes it.
- **reads**: the host table is the authority for *which* migrations are applied; backout's
  ledger adds what the host table cannot say (checksums, failure text, journaled runs). When the
  host tool applied or rolled back a migration on its own, :func:`reconcile` shows that
  migration as the host table says, marked ``recorded_by`` the tool, with no checksum (unknown:
  never guessed). See docs/history.md for the rule, tool by tool.

A host implements :class:`HostHistory`; :func:`reconcile` (pure) turns its
:class:`HostVerdict` into the :class:`~backout.run.status.StatusReport` every command reads.
The Prisma layout needs none: its ledger *is* Prisma's table.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from backout.dialects.base import Actor, Dialect, HostLock, Session
from backout.model.script import Script
from backout.model.urls import DatabaseURL
from backout.project.migration import Migration, Project
from backout.run.status import MigrationStatus, State, StatusReport

SqlWrite = tuple[str, tuple[object, ...]]


class HostEvent(enum.StrEnum):
    """What backout just did, as a host table must record it (one per ledger write).

    Names only ever get added (implementations must treat an unknown event as "nothing to
    write" and return ``[]``).
    """

    #: a statement-by-statement (journaled) apply began: backout wrote a started ledger row
    #: (golang-migrate: ``dirty = true`` at its version; dbmate: nothing)
    APPLY_STARTED = "apply_started"
    #: a migration is applied; in the same transaction as its finished ledger row (the apply's
    #: own transaction when transactional, else the closing one of the journaled run, or the
    #: resumed run's, ``rollback --resume``)
    APPLIED = "applied"
    #: an apply failed; written in a transaction of its own after the failed one was rolled
    #: back, beside the failed ledger row (``change.error`` says why; ``change.statements``
    #: how many statements stay applied: 0 for a transactional script)
    FAILED = "failed"
    #: a journaled rollback began (the migration stays applied until it finishes)
    ROLLBACK_STARTED = "rollback_started"
    #: a migration is rolled back; in the same transaction as the ledger's rolled_back_at
    ROLLED_BACK = "rolled_back"
    #: ``resolve --applied``: marked applied without running anything
    RESOLVED_APPLIED = "resolved_applied"
    #: ``resolve --rolled-back`` or ``rollback --undo-partial`` of a failed apply: the failed
    #: attempt is closed and the migration is pending again
    RESOLVED_ROLLED_BACK = "resolved_rolled_back"
    #: ``rollback --undo-partial`` of a journaled rollback: what it had undone is redone and
    #: the migration is applied, as before the rollback began
    ROLLBACK_UNDONE = "rollback_undone"


@dataclass(frozen=True)
class HostChange:
    """One change to record, with everything a host table could want to store about it."""

    event: HostEvent
    #: the history key (:attr:`Migration.key`)
    key: str
    #: the migration, None when its files are gone (a missing migration being resolved)
    migration: Migration | None
    #: keys backout counts as applied once this change is made, in the project's order (a
    #: linear host, golang-migrate, derives its single version from it)
    applied_after: tuple[str, ...]
    started_at: dt.datetime
    #: when the change completed (None for the ``*_STARTED`` events)
    finished_at: dt.datetime | None
    actor: Actor
    #: the script that ran (the forward script for apply events, the rollback script for
    #: rollback events, None for resolve): Flyway stores its checksum and description
    script: Script | None = None
    #: the failure, for :attr:`HostEvent.FAILED`
    error: str | None = None
    #: statements run (for FAILED: how many completed and stay applied)
    statements: int = 0

    @property
    def duration_ms(self) -> int:
        """Elapsed milliseconds (0 while not finished)."""
        if self.finished_at is None:
            return 0
        return max(0, int((self.finished_at - self.started_at).total_seconds() * 1000))


@dataclass(frozen=True)
class HostRow:
    """One migration as the host table records it (a reading of one or more of its rows)."""

    key: str
    #: False: the host table says this migration failed or is in flight (golang-migrate's
    #: ``dirty``, Flyway's ``success = false``)
    success: bool = True
    #: when the host recorded it, where the table says (dbmate and golang-migrate do not)
    applied_at: dt.datetime | None = None
    #: who, where the table says (Flyway's ``installed_by``)
    by: str | None = None


@dataclass(frozen=True)
class HostState:
    """The host table as read once: its rows, oldest first (``exists`` False: no table)."""

    exists: bool
    rows: tuple[HostRow, ...] = ()


@dataclass(frozen=True)
class HostVerdict:
    """Where the host table disagrees with backout's ledger; empty when they agree."""

    #: applied per the host table, not per the ledger: the host tool applied them on its own
    applied: tuple[HostRow, ...] = ()
    #: applied per the ledger, not per the host table: the host tool rolled them back
    not_applied: tuple[str, ...] = ()
    #: failed or in flight per the host table (golang-migrate's dirty version), not per the
    #: ledger: key -> the sentence shown as the failure
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        """Nothing to reconcile."""
        return not (self.applied or self.not_applied or self.failed)


@dataclass(frozen=True)
class HostSetup:
    """What a host history is built from (see ``backout.run.hosts.host_history_for``): each
    implementation's constructor takes one of these and nothing else."""

    dialect: Dialect
    project: Project
    url: DatabaseURL
    #: ``migrations_table`` from backout.toml (or the host tool's environment variable, e.g.
    #: ``DBMATE_MIGRATIONS_TABLE``), possibly ``schema.table``; None: the tool's default
    table: str | None = None


@runtime_checkable
class HostHistory(Protocol):
    """A host tool's history table, read and written as that tool does.

    Contract for every method:

    - no method commits, begins or rolls back: the caller owns the transaction;
    - write methods *return* SQL and parameters (``%s`` placeholders, the dialect's quoting)
      and never execute them, so a dry run prints exactly what a real run executes;
    - reads cost at most one query when the table exists (``status`` must stay fast);
    - the table is the configured one (``migrations_table`` in backout.toml), schema-qualified
      where the user wrote ``schema.table`` and the dialect has schemas.
    """

    #: the host tool's name as users know it ("dbmate", "golang-migrate", "flyway"): shown as
    #: "applied by dbmate" and stored as ``recorded_by`` in ``status --json``
    tool: str
    #: the tool marks a migration before running it (golang-migrate's dirty version), so a
    #: marked migration whose writer still holds the lock is being applied, not failed
    marks_before_running: bool

    @property
    def table_name(self) -> str:
        """The host table as shown to users (``schema_migrations``, ``app.schema_migrations``)."""
        ...

    def exists(self, session: Session) -> bool:
        """True when the host table exists (reads the catalog; writes nothing)."""
        ...

    def create_sql(self, applied: tuple[str, ...]) -> list[SqlWrite]:
        """Statements creating the table exactly as the host tool creates it (``IF NOT
        EXISTS``), then recording ``applied`` (keys backout counts as applied, in order) as
        the host tool would have recorded them: run once, when backout first finds the table
        missing, in the same transaction as backout's own history tables where DDL allows."""
        ...

    def read(self, session: Session) -> HostState:
        """The host table's rows (``HostState(exists=False)`` when there is no table)."""
        ...

    def compare(
        self, state: HostState, applied: tuple[str, ...], failed: tuple[str, ...]
    ) -> HostVerdict:
        """Pure: where ``state`` disagrees with backout's ledger, whose view is ``applied``
        (keys applied, in the project's order) and ``failed`` (keys with an unresolved failed
        attempt). A host table that records exactly what backout would have written for that
        view agrees (an empty verdict), even where the host's model is coarser than backout's
        (a linear version with an out-of-order gap below it)."""
        ...

    def writes(self, session: Session, change: HostChange) -> list[SqlWrite]:
        """The statements recording ``change`` in the host table, run by the caller in the
        transaction that records it in backout's ledger. ``session`` may be read (never
        written) for what the SQL needs (Flyway's next ``installed_rank``); ``[]`` when the
        host records nothing for this event. Raises :class:`~backout.model.errors.HistoryError`
        for a change the host table cannot represent; callers ask :meth:`refusal` first."""
        ...

    def refusal(self, change: HostChange) -> str | None:
        """Why the host table cannot record ``change`` (then the command refuses before its
        first side effect), or None. golang-migrate's single version cannot record rolling
        back a migration below a still-applied one."""
        ...

    def locks(self, url: DatabaseURL) -> list[HostLock]:
        """The migration lock the host tool takes on this database, exactly as it takes it
        (``Dialect.host_locks``): backout's run lock takes it too, so the tool and backout
        never migrate at once. Empty when the tool takes none (dbmate; SQLite)."""
        ...


def reconcile(report: StatusReport, verdict: HostVerdict, tool: str) -> StatusReport:
    """``report`` (from backout's ledger) as the host table says it is (see the module doc).

    - applied by the host alone: APPLIED, ``recorded_by`` the tool, no checksum known (never
      marked edited), ``applied_at`` as the host table says (None when it does not say);
    - rolled back by the host alone: ROLLED_BACK, ``recorded_by`` the tool, no time known;
    - failed per the host alone (dirty): FAILED with the host's sentence as the failure.

    ``out_of_order`` is recomputed from the reconciled states.
    """
    if verdict.agrees:
        return report
    applied = {row.key: row for row in verdict.applied}
    entries = [_reconciled(entry, verdict, applied, tool) for entry in report.entries]
    return replace(report, entries=_with_out_of_order(entries), ledger_exists=True)


def _reconciled(
    entry: MigrationStatus, verdict: HostVerdict, applied: dict[str, HostRow], tool: str
) -> MigrationStatus:
    """One entry as the host table says it is."""
    if entry.key in verdict.failed:
        return replace(
            entry,
            state=State.FAILED,
            failure=verdict.failed[entry.key],
            failed_steps=None,
            edited=False,
            recorded_by=tool,
        )
    if entry.key in applied and not entry.is_applied:
        return replace(
            entry,
            state=State.APPLIED,
            applied_at=applied[entry.key].applied_at,
            rolled_back_at=None,
            failure=None,
            failed_steps=None,
            edited=False,
            recorded_by=tool,
        )
    if entry.key in verdict.not_applied and entry.is_applied:
        return replace(
            entry,
            state=State.ROLLED_BACK,
            applied_at=None,
            rolled_back_at=None,
            edited=False,
            recorded_by=tool,
        )
    return entry


def _with_out_of_order(entries: list[MigrationStatus]) -> tuple[MigrationStatus, ...]:
    last = max(
        (i for i, e in enumerate(entries) if e.is_applied and e.migration is not None), default=-1
    )
    return tuple(
        replace(
            e,
            out_of_order=e.migration is not None
            and e.state in (State.PENDING, State.ROLLED_BACK)
            and i < last,
        )
        for i, e in enumerate(entries)
    )
