"""What remains of a failed migration: its changes compared with the database as it is now.

A failed attempt that backout recorded ran in one transaction that was rolled back, so none
of it remains. Other writers promise no such thing: Prisma records every failure with 0
applied steps, yet (depending on its engine) the statements before the failing one may stay
applied; golang-migrate only marks the version dirty. For those, each statement's schema
changes are looked up in the live schema, and what cannot be looked up (data changes, type
changes) is said to be unknown, with how to check it.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backout.analysis.expected import describe_object, expected_changes
from backout.dialects.base import Session
from backout.model.effects import ScriptEffects
from backout.model.errors import BackoutError
from backout.model.object_keys import ObjectKey, objects
from backout.model.script import Statement
from backout.project.migration import Migration
from backout.run.status import MigrationStatus
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    from backout.model.schema import SchemaSnapshot

#: the last line of a failure backout recorded (see backout.migrate.apply)
_BACKOUT_MARK = "Recorded by backout."
_ROLLED_BACK = "The transaction was rolled back"


@dataclass(frozen=True)
class StatementResidue:
    """One statement of the failed migration, and whether its changes are in the database."""

    line: int
    excerpt: str
    #: "applied" (every change it makes is there), "not applied" (none is), "partly",
    #: or "unknown" (it changes nothing backout can look up: data, a type, a default; or
    #: what it changes, other statements change too, and the schema now does not tell which ran)
    verdict: str
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()


@dataclass(frozen=True)
class Residue:
    """What is known of a failed migration's changes that remain in the database."""

    migration: str
    file: str
    #: backout recorded the failure of a transaction it rolled back: nothing of it remains
    rolled_back_by_backout: bool = False
    statements: tuple[StatementResidue, ...] = ()
    #: why the statements could not be compared (the script does not parse...)
    unknown_reason: str = ""

    @property
    def applied(self) -> list[StatementResidue]:
        """Statements whose changes are (at least partly) in the database."""
        return [s for s in self.statements if s.verdict in ("applied", "partly")]

    @property
    def unknown(self) -> list[StatementResidue]:
        """Statements whose effect cannot be looked up."""
        return [s for s in self.statements if s.verdict == "unknown"]

    @property
    def nothing_remains(self) -> bool:
        """Known for certain: no change of the migration is in the database."""
        if self.rolled_back_by_backout:
            return True
        return (
            not self.unknown_reason
            and bool(self.statements)
            and all(s.verdict == "not applied" for s in self.statements)
        )


def recorded_rollback(failure: str | None) -> bool:
    """Whether backout itself recorded this failure as a transaction it rolled back."""
    text = failure or ""
    return _BACKOUT_MARK in text and _ROLLED_BACK in text


def failed_residue(ws: Workspace, session: Session, entry: MigrationStatus) -> Residue | None:
    """What remains of the failed migration ``entry`` (None when its files are gone or a
    journal already says it: a stopped journaled run)."""
    migration = entry.migration
    if migration is None or entry.interrupted is not None or entry.failed_steps:
        return None
    file = migration.up.display
    if recorded_rollback(entry.failure):
        return Residue(entry.id, file, rolled_back_by_backout=True)
    try:
        statements = _split(ws, migration)
    except BackoutError as exc:
        return Residue(entry.id, file, unknown_reason=f"{file} cannot be analysed: {exc}")
    effects = ws.dialect.analyze(statements)
    snapshot = ws.dialect.snapshot(session)
    return Residue(entry.id, file, statements=_compare(ws, snapshot, statements, effects))


def _split(ws: Workspace, migration: Migration) -> list[Statement]:
    script = migration.up
    return list(ws.dialect.split(script.text, script.display, first_line=script.first_line))


def _compare(
    ws: Workspace,
    snapshot: SchemaSnapshot,
    statements: Sequence[Statement],
    effects: ScriptEffects,
) -> tuple[StatementResidue, ...]:
    """Each statement's verdict, from its schema changes looked up in ``snapshot``."""
    live = objects(snapshot, case_insensitive=not ws.dialect.has_schemas)
    changes = []
    guarded = []
    for statement in statements:
        own = ScriptEffects(
            effects=tuple(e for e in effects.effects if e.statement is statement),
            unknown=tuple(u for u in effects.unknown if u.statement is statement),
        )
        changes.append(expected_changes(own, snapshot.default_schema))
        # IF [NOT] EXISTS, OR REPLACE: the object may have been so before the statement ran
        loose = ScriptEffects(
            effects=tuple(e for e in own.effects if e.if_exists or e.detail == "OR REPLACE"),
            unknown=(),
        )
        guarded.append(set().union(*expected_changes(loose, snapshot.default_schema)))
    applied_at = _evidence(changes, live)
    found = []
    for index, statement in enumerate(statements):
        dropped, created = changes[index]
        judged = [
            (k, None if seen and k in guarded[index] else seen)
            for k in sorted(dropped | created)
            for seen in (applied_at[k][index],)
        ]
        present = [k for k, seen in judged if seen is True]
        absent = [k for k, seen in judged if seen is False]
        found.append(
            StatementResidue(
                line=statement.line,
                excerpt=statement.excerpt(60),
                verdict=_verdict(present, absent),
                present=_described(present, dropped),
                absent=_described(absent, dropped),
            )
        )
    return tuple(found)


def _evidence(
    changes: Sequence[tuple[set[ObjectKey], set[ObjectKey]]], live: Container[ObjectKey]
) -> dict[ObjectKey, dict[int, bool | None]]:
    """For each object and each statement that creates or drops it: whether the object as it
    is now proves that statement's change applied (True), not applied (False), or neither
    (None).

    An object several statements touch (created, then renamed away; dropped, then created
    again by a rename) proves something only when its present state is reached after exactly
    one prefix of the script: a table that is there now may be the one from before.
    """
    touches: dict[ObjectKey, list[tuple[int, bool]]] = {}
    unclear: set[ObjectKey] = set()
    for index, (dropped, created) in enumerate(changes):
        for key in dropped | created:
            if key in dropped and key in created:
                unclear.add(key)  # dropped and created again by one statement
            touches.setdefault(key, []).append((index, key in created))
    evidence: dict[ObjectKey, dict[int, bool | None]] = {}
    for key, seq in touches.items():
        # states[j]: whether the object exists after the first j touches
        states = [not seq[0][1]] + [exists for _, exists in seq]
        now = key in live
        matches = [j for j, state in enumerate(states) if state == now]
        verdicts: dict[int, bool | None] = {}
        for position, (index, _) in enumerate(seq, start=1):
            if len(matches) != 1 or key in unclear:
                verdicts[index] = None
            else:
                seen = position <= matches[0]
                verdicts[index] = seen if verdicts.get(index, seen) == seen else None
        evidence[key] = verdicts
    return evidence


def _verdict(present: Sequence[ObjectKey], absent: Sequence[ObjectKey]) -> str:
    if present and absent:
        return "partly"
    if present:
        return "applied"
    if absent:
        return "not applied"
    return "unknown"


def _described(keys: Sequence[ObjectKey], dropped: set[ObjectKey]) -> tuple[str, ...]:
    """Keys as words: what the statement creates is "present", what it drops is "gone"."""
    return tuple(
        ("dropped " if key in dropped else "") + describe_object(key) for key in sorted(keys)
    )
