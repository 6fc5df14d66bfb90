"""``status``: every migration's state, read without changing anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from backout.migrate.residue import Residue, failed_residue
from backout.model.errors import ProjectError
from backout.project.config import Config
from backout.run.runner import broken_scripts, prepare
from backout.run.status import StatusReport, compute_status
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

    def problems(self) -> bool:
        """Something needs a person's attention: the history's problems, or a rollback
        script that would not run."""
        return self.report.problems() or bool(self.broken)


def status(config: Config) -> StatusResult:
    """Read every migration's state; changes nothing (a missing SQLite file is not created)."""
    ws = Workspace.open(config)
    # The same parser and checks `rollback` runs first: a broken script shows now, not then.
    broken = broken_scripts(
        ws.dialect,
        [
            script
            for m in ws.project.migrations
            for script in ([m.down] if m.down is not None else []) + [s for _, s in m.partials]
        ],
    )
    if not ws.database_exists():
        report = compute_status(ws.project, [], ledger_exists=False)
        return StatusResult(workspace=ws, report=report, database_exists=False, broken=broken)
    with ws.session(create=False) as session:
        report = ws.read_status(session)
        residues = {}
        for entry in report.failed:
            residue = failed_residue(ws, session, entry)
            if residue is not None:
                residues[entry.id] = residue
    return StatusResult(
        workspace=ws,
        report=report,
        database_exists=True,
        notes=_pending_notes(ws, report),
        residues=residues,
        broken=broken,
    )


def _pending_notes(ws: Workspace, report: StatusReport) -> tuple[str, ...]:
    """How ``up`` will run each pending migration, where it is not one plain transaction."""
    notes: list[str] = []
    for entry in report.pending:
        assert entry.migration is not None
        try:
            notes.extend(prepare(ws.dialect, entry.migration.up).notes(ws.dialect))
        except ProjectError as exc:
            notes.append(f"{entry.id}: `up` will refuse it: {exc}")
    return tuple(notes)
