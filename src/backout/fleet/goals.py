"""Where a command takes each target, read from the target's own history: a target already
there is skipped, so running the same fleet command again finishes the job and repeats
nothing (no side file is kept that could disagree with the databases)."""

from __future__ import annotations

from dataclasses import dataclass

from backout.project.config import Config
from backout.project.migration import Project
from backout.run.status import State, StatusReport, compute_status
from backout.run.workspace import Workspace

__all__ = ["AppliedUpTo", "Goal", "RolledBackTo", "reachable", "reached"]


@dataclass(frozen=True)
class RolledBackTo:
    """``rollback --to ID``: ID applied, and no migration after it applied, nor half rolled
    back."""

    to: str

    def describe(self) -> str:
        """The goal, for messages."""
        return f"{self.to} applied and nothing after it"

    def reached_in(self, project: Project, report: StatusReport) -> bool:
        """Whether ``report`` already is there."""
        ids = [m.id for m in project.migrations]
        to = project.find(self.to).id
        later = set(ids[ids.index(to) + 1 :])
        if not any(e.id == to and e.is_applied for e in report.entries):
            return False  # ID itself not applied: the command refuses, and says why
        # A history entry whose file is unknown here (newer code applied it) may well come
        # after ID; a run stopped part-way, even on ID, is for the command itself to see.
        return _settled(report) and not any(
            e.interrupted is not None
            or ((e.id in later or e.missing_from_disk) and e.state not in _NOT_APPLIED)
            for e in report.entries
        )


@dataclass(frozen=True)
class AppliedUpTo:
    """``up [--to ID]``: every migration up to ID (default: all) applied, none part-way."""

    to: str | None = None

    def describe(self) -> str:
        """The goal, for messages."""
        return f"every migration up to {self.to} applied" if self.to else "every migration applied"

    def reached_in(self, project: Project, report: StatusReport) -> bool:
        """Whether ``report`` already is there."""
        ids = [m.id for m in project.migrations]
        wanted = set(ids[: ids.index(project.find(self.to).id) + 1] if self.to else ids)
        states = {e.id: e for e in report.entries}
        return _settled(report) and all(
            i in states and states[i].is_applied and states[i].interrupted is None for i in wanted
        )


Goal = RolledBackTo | AppliedUpTo

#: states in which a migration counts as not applied (a failed apply does not: something of
#: it may remain, so the command itself must look)
_NOT_APPLIED = (State.PENDING, State.ROLLED_BACK)


def _settled(report: StatusReport) -> bool:
    """No restore stopped part-way: a half-restored database is not where its history says."""
    return not report.unfinished_restores


def reached(config: Config, goal: Goal) -> bool:
    """Whether the target ``config`` names is already where ``goal`` says (connects: an
    unreachable target raises DatabaseUnavailable, as the command would)."""
    ws = Workspace.open(config)
    goal.reached_in(ws.project, _empty_report(ws))  # an unknown ID fails before connecting
    if not ws.database_exists():
        return goal.reached_in(ws.project, _empty_report(ws))
    with ws.session(create=False) as session:
        return goal.reached_in(ws.project, ws.read_status(session))


def _empty_report(ws: Workspace) -> StatusReport:
    return compute_status(ws.project, [], ledger_exists=False)


def reachable(config: Config) -> bool:
    """Connect to the target ``config`` names and back (DatabaseUnavailable when it cannot be
    reached); False: a command without a goal is never already done."""
    ws = Workspace.open(config)
    if ws.database_exists():
        with ws.session(create=False):
            pass
    return False
