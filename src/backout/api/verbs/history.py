"""``history``: the append-only audit log."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from backout.model.errors import UsageError
from backout.project.config import Config
from backout.run.history import Event
from backout.run.workspace import Workspace


@dataclass(frozen=True)
class HistoryResult:
    """``history``: the audit log, filtered."""

    workspace: Workspace
    events: list[Event]


def history(
    config: Config, *, since: dt.datetime | None = None, migration: str | None = None
) -> HistoryResult:
    """The append-only audit log (applies, rollbacks, restores, resolves...), oldest first."""
    ws = Workspace.open(config)
    unknown: UsageError | None = None
    if migration is not None:
        # History outlives files: a deleted migration is still found by its id.
        try:
            migration = ws.project.find(migration).id
        except UsageError as exc:
            unknown = exc
            migration = migration.strip()
    events: list[Event] = []
    if ws.database_exists():
        with ws.session(create=False) as session:
            ws.events.check_version(session)
            events = ws.events.read(session, migration=migration)
    if unknown is not None and not events:
        # Neither a migration folder nor a history row knows it: a typo, most likely.
        raise UsageError(f"{unknown}; no history event names {migration!r} either")
    if since is not None:
        events = [e for e in events if e.started_at >= since]
    # Stored in the order they were recorded, which is when they ended: an emergency is
    # recorded after the rollback it ran. Listed by when each began (ties: recording order).
    events.sort(key=lambda e: e.started_at)
    return HistoryResult(workspace=ws, events=events)
