"""Pure computation of each migration's state from the files and the ledger rows."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection
from dataclasses import dataclass, replace

from backout.model.errors import HistoryError
from backout.project.migration import Migration, Project
from backout.run.history import LedgerRow
from backout.run.journal import InterruptedRun, describe_unfinished_restore, finish_restore_hint


class State(enum.StrEnum):
    """Where a migration stands."""

    APPLIED = "applied"
    PENDING = "pending"
    #: an apply attempt failed and was not resolved: ``up`` refuses until it is
    FAILED = "failed"
    #: rolled back (every ledger row has rolled_back_at): counts as not applied
    ROLLED_BACK = "rolled_back"
    #: unfinished, and its writer still holds the run lock: being applied right now
    APPLYING = "applying"


@dataclass(frozen=True)
class MigrationStatus:
    """One line of ``backout status``."""

    id: str
    key: str
    state: State
    migration: Migration | None
    applied_at: dt.datetime | None = None
    rolled_back_at: dt.datetime | None = None
    #: the forward script's checksum differs from the one recorded when it was applied
    edited: bool = False
    #: pending, but a later migration is already applied
    out_of_order: bool = False
    #: the failed attempt's error text
    failure: str | None = None
    #: statements a failed non-transactional attempt left applied (None: unknown/not applicable)
    failed_steps: int | None = None
    attempts: int = 0
    #: a journaled apply or rollback of it that stopped part-way (``rollback --resume`` /
    #: ``--undo-partial``): a rollback's migration stays applied, an apply's failed
    interrupted: InterruptedRun | None = None
    #: state APPLYING: who holds the run lock while applying it (a sentence)
    applying_by: str | None = None
    #: the host tool whose own history table alone says this state ("dbmate": it applied or
    #: rolled back the migration on its own, see :mod:`backout.run.host_history`); None: backout
    recorded_by: str | None = None

    @property
    def missing_from_disk(self) -> bool:
        """In history, but no file on disk."""
        return self.migration is None

    @property
    def is_applied(self) -> bool:
        """Counts as applied (a failed attempt does not)."""
        return self.state is State.APPLIED

    @property
    def needs_apply(self) -> bool:
        """``up`` would apply it."""
        return self.state in (State.PENDING, State.ROLLED_BACK) and self.migration is not None


@dataclass(frozen=True)
class StatusReport:
    """Every migration's state, in order; history rows with no file come last."""

    entries: tuple[MigrationStatus, ...]
    ledger_exists: bool
    #: journaled restores that stopped part-way (MySQL/MariaDB): the database is half-restored
    unfinished_restores: tuple[InterruptedRun, ...] = ()

    def by_state(self, state: State) -> list[MigrationStatus]:
        """Entries in a given state."""
        return [e for e in self.entries if e.state is state]

    @property
    def failed(self) -> list[MigrationStatus]:
        """Failed attempts that need resolving."""
        return self.by_state(State.FAILED)

    @property
    def applying(self) -> list[MigrationStatus]:
        """Migrations another run is applying now (it holds the run lock)."""
        return self.by_state(State.APPLYING)

    @property
    def unfinished(self) -> list[MigrationStatus]:
        """Failed attempts with no error recorded: their writer stopped without saying why,
        or is still applying them (see :func:`being_applied`)."""
        return [e for e in self.failed if not (e.failure or "").strip()]

    @property
    def edited(self) -> list[MigrationStatus]:
        """Applied migrations whose forward script changed since."""
        return [e for e in self.entries if e.edited]

    @property
    def missing(self) -> list[MigrationStatus]:
        """History entries whose files are gone."""
        return [e for e in self.entries if e.missing_from_disk and e.state is not State.ROLLED_BACK]

    @property
    def pending(self) -> list[MigrationStatus]:
        """What ``up`` would apply, in order."""
        return [e for e in self.entries if e.needs_apply]

    @property
    def applied(self) -> list[MigrationStatus]:
        """Applied migrations, in order."""
        return [e for e in self.entries if e.is_applied]

    @property
    def interrupted(self) -> list[MigrationStatus]:
        """Migrations whose journaled apply or rollback stopped part-way."""
        return [e for e in self.entries if e.interrupted is not None]

    def problems(self) -> bool:
        """True when something needs a person's attention (failed, edited, missing, partly
        applied or rolled back, half-restored)."""
        return bool(
            self.failed
            or self.edited
            or self.missing
            or self.interrupted
            or self.unfinished_restores
        )

    def entry(self, key: str) -> MigrationStatus | None:
        """The entry for a history key."""
        return next((e for e in self.entries if e.key == key), None)


def _state_of(rows: list[LedgerRow]) -> tuple[State, LedgerRow | None]:
    live = [r for r in rows if r.live]
    failed = [r for r in live if r.finished_at is None]
    done = [r for r in live if r.finished_at is not None]
    if failed:
        return State.FAILED, failed[-1]
    if done:
        return State.APPLIED, done[-1]
    if any(r.finished_at is not None for r in rows):
        return State.ROLLED_BACK, rows[-1]
    # Only failed attempts, resolved as rolled back: it never applied.
    return State.PENDING, rows[-1] if rows else None


def _failed_steps(row: LedgerRow | None) -> int | None:
    if row is not None and row.interrupted is not None:
        return len(row.interrupted.applied)
    if row is None or not row.logs:
        return None
    statement_by_statement = "transaction off" in row.logs or "applied and remain" in row.logs
    return row.applied_steps_count if statement_by_statement else 0


def _interrupted(rows: list[LedgerRow]) -> InterruptedRun | None:
    return next((r.interrupted for r in reversed(rows) if r.interrupted is not None), None)


#: per migration key: the migration, its ledger rows, the index of the newest applied one,
#: and the entry computed from them (see :func:`compute_status`)
EntryMemo = dict[str, tuple[Migration, list[LedgerRow], int, "MigrationStatus"]]


def compute_status(
    project: Project,
    rows: list[LedgerRow],
    *,
    ledger_exists: bool,
    memo: EntryMemo | None = None,
) -> StatusReport:
    """Combine files and ledger rows (oldest first) into a StatusReport.

    ``memo``: entries computed before, kept by the caller; an entry whose migration, rows
    (the same objects) and newest applied migration are unchanged is taken from it. A walk
    computes the status after every change of one row, each costing as much as the project
    has migrations."""
    by_key: dict[str, list[LedgerRow]] = {}
    for ledger_row in rows:
        by_key.setdefault(ledger_row.key, []).append(ledger_row)
    entries: list[MigrationStatus] = []
    states = [_state_of(by_key.get(m.key, [])) for m in project.migrations]
    last_applied = max((i for i, (s, _) in enumerate(states) if s is State.APPLIED), default=-1)
    for index, migration in enumerate(project.migrations):
        attempts = by_key.get(migration.key, [])
        known_entry = memo.get(migration.key) if memo is not None else None
        if known_entry is not None and _same_entry(known_entry, migration, attempts, last_applied):
            entries.append(known_entry[3])
            continue
        state, row = states[index]
        entries.append(
            MigrationStatus(
                id=migration.id,
                key=migration.key,
                state=state,
                migration=migration,
                applied_at=row.finished_at if state is State.APPLIED and row else None,
                rolled_back_at=row.rolled_back_at if state is State.ROLLED_BACK and row else None,
                edited=bool(
                    state is State.APPLIED
                    and row is not None
                    and not migration.up.matches_checksum(row.checksum)
                ),
                out_of_order=state in (State.PENDING, State.ROLLED_BACK) and index < last_applied,
                failure=row.logs if state is State.FAILED and row else None,
                failed_steps=_failed_steps(row) if state is State.FAILED else None,
                attempts=len(attempts),
                interrupted=_interrupted(attempts),
            )
        )
        if memo is not None:
            memo[migration.key] = (migration, attempts, last_applied, entries[-1])
    known = {m.key for m in project.migrations}
    for key, attempts in by_key.items():
        if key in known:
            continue
        state, row = _state_of(attempts)
        entries.append(
            MigrationStatus(
                id=attempts[-1].migration_id or key,
                key=key,
                state=state,
                migration=None,
                applied_at=row.finished_at if state is State.APPLIED and row else None,
                rolled_back_at=row.rolled_back_at if state is State.ROLLED_BACK and row else None,
                failure=row.logs if state is State.FAILED and row else None,
                attempts=len(attempts),
            )
        )
    return StatusReport(entries=tuple(entries), ledger_exists=ledger_exists)


def _same_entry(
    known: tuple[Migration, list[LedgerRow], int, MigrationStatus],
    migration: Migration,
    attempts: list[LedgerRow],
    last_applied: int,
) -> bool:
    return (
        known[0] is migration
        and known[2] == last_applied
        and len(known[1]) == len(attempts)
        and all(a is b for a, b in zip(known[1], attempts, strict=True))
    )


def being_applied(
    report: StatusReport, holder: str, *, in_flight: Collection[str] = ()
) -> StatusReport:
    """The report with its unfinished attempts as APPLYING by ``holder``, the run lock's
    holder: a writer that failed records the error (Prisma and backout both do), so an
    attempt with none whose writer still holds the lock is one being applied now. Keys in
    ``in_flight`` (the host tool's marks made before running, golang-migrate's dirty version)
    are too."""
    unfinished = {id(e) for e in report.unfinished}
    entries = tuple(
        replace(e, state=State.APPLYING, applying_by=holder)
        if id(e) in unfinished or e.key in in_flight
        else e
        for e in report.entries
    )
    return replace(report, entries=entries)


# --- refusals every run makes first (up, rollback, resolve) ---------------------------------


def refuse_half_restored(report: StatusReport) -> None:
    """Refuse while the database is half-restored (the restore must be finished first)."""
    if report.unfinished_restores:
        restore = report.unfinished_restores[-1]
        raise HistoryError(
            f"the database is half-restored: {describe_unfinished_restore(restore)}",
            hint=finish_restore_hint(restore),
        )


def refuse_interrupted(report: StatusReport) -> None:
    """Refuse a new run while a journaled one stopped part-way (it must be resumed or undone),
    or while the database is half-restored (the restore must be finished)."""
    refuse_half_restored(report)
    if not report.interrupted:
        return
    entry = report.interrupted[0]
    run = entry.interrupted
    assert run is not None
    raise HistoryError(
        f"the {'apply' if run.direction == 'up' else 'rollback'} of {entry.id} stopped part-way: "
        f"{run.describe()}",
        hint="fix the cause, then `backout rollback --resume` to continue it, or "
        "`backout rollback --undo-partial` to undo what it did (see `backout status`)",
    )
