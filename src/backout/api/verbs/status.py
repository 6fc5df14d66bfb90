"""``status``: every migration's state, read without changing anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from backout.dialects.base import Session
from backout.migrate.residue import Residue, failed_residue
from backout.project.config import Config
from backout.run.hosts.flyway import FlywayHistory, Repeatable
from backout.run.status import StatusReport, compute_status
from backout.run.verdicts import VerdictCache
from backout.run.workspace import Workspace


@dataclass(frozen=True)
class StatusResult:
    """``status``: every migration's state plus where it was read from."""

    workspace: Workspace
    report: StatusReport
    database_exists: bool
    #: how pending migrations will run, where not plainly in one transaction (journaled, the
    #: script's own BEGIN/COMMIT), and scripts ``up`` will refuse
    notes: tuple[str, ...] = ()
    #: per failed migration id: what of it remains in the database (see backout.migrate.residue)
    residues: Mapping[str, Residue] = field(default_factory=dict)
    #: rollback and partial scripts ``rollback`` would refuse: display path → the error
    broken: Mapping[str, str] = field(default_factory=dict)
    #: Flyway's repeatable ``R__`` migrations with their states (Flyway layout only)
    repeatables: tuple[Repeatable, ...] = ()

    def failed_repeatables(self) -> list[Repeatable]:
        """Repeatables whose run Flyway's table records as failed."""
        return [r for r in self.repeatables if r.state == "failed"]

    def problems(self) -> bool:
        """Something needs a person's attention: the history's problems, a rollback script
        that would not run, or a failed repeatable."""
        return self.report.problems() or bool(self.broken) or bool(self.failed_repeatables())

    def attention(self) -> str:
        """Why ``status`` exits 1, as one line for stderr."""
        report = self.report
        parts = [
            f"{len(items)} {what}"
            for items, what in (
                (report.failed, "failed migration(s)"),
                (report.interrupted, "migration(s) stopped part-way"),
                (report.unfinished_restores, "restore(s) stopped part-way"),
                (report.edited, "applied migration(s) edited since"),
                (report.missing, "applied migration(s) missing from disk"),
                (list(self.broken), "broken rollback script(s)"),
                (self.failed_repeatables(), "failed repeatable(s)"),
            )
            if items
        ]
        return "needs attention: " + ", ".join(parts) + " (see `backout status`)"


def status(config: Config) -> StatusResult:
    """Read every migration's state; changes nothing (a missing SQLite file is not created)."""
    ws = Workspace.open(config)
    # The same parser and checks `rollback` runs first: a broken script shows now, not then.
    # Verdicts are saved per exact script and code (backout.run.verdicts): not parsed again.
    verdicts = VerdictCache(config.root, ws.dialect)
    broken = {
        script.display: error
        for m in ws.project.migrations
        for script in ([m.down] if m.down is not None else []) + [s for _, s in m.partials]
        if (error := verdicts.verdict(script).error) is not None
    }
    if not ws.database_exists():
        verdicts.save()
        report = compute_status(ws.project, [], ledger_exists=False)
        return StatusResult(
            workspace=ws,
            report=report,
            database_exists=False,
            broken=broken,
            repeatables=_repeatables(ws, None),
        )
    with ws.session(create=False) as session:
        report = ws.read_status(session)
        residues = {}
        for entry in report.failed:
            residue = failed_residue(ws, session, entry)
            if residue is not None:
                residues[entry.id] = residue
        repeatables = _repeatables(ws, session)
    notes = _pending_notes(verdicts, report)
    verdicts.save()
    return StatusResult(
        workspace=ws,
        report=report,
        database_exists=True,
        notes=notes,
        residues=residues,
        broken=broken,
        repeatables=repeatables,
    )


def _repeatables(ws: Workspace, session: Session | None) -> tuple[Repeatable, ...]:
    """Flyway's repeatables and their states (``()`` outside the Flyway layout)."""
    if not isinstance(ws.host, FlywayHistory):
        return ()
    return tuple(ws.host.repeatables(session))


def _pending_notes(verdicts: VerdictCache, report: StatusReport) -> tuple[str, ...]:
    """How ``up`` will run each pending migration, where it is not one plain transaction."""
    notes: list[str] = []
    for entry in report.pending:
        assert entry.migration is not None
        verdict = verdicts.verdict(entry.migration.up)
        if verdict.error is not None:
            notes.append(f"{entry.id}: `up` will refuse it: {verdict.error}")
        notes.extend(verdict.notes)
    return tuple(notes)
