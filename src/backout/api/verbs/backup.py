"""``backup``, ``backups`` and ``restore``: the verified backups and their catalog."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from backout.backup import restore as _backup_restore
from backout.backup import take as _backup_take
from backout.backup.catalog import BackupCatalog
from backout.project.config import Config
from backout.rollback import rollback as _rollback
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    from backout.backup.catalog import BackupRecord
    from backout.backup.restore import RestorePlan, RestoreResult


def backup(
    config: Config, *, full: bool = False, progress: Callable[[str], None] | None = None
) -> BackupRecord:
    """Take a verified backup now: full, or scoped to the next rollback (full when none)."""
    scope = None if full else _rollback.next_backup_scope
    return _backup_take.backup_now(Workspace.open(config), scope=scope, progress=progress)


def backups(config: Config) -> list[BackupRecord]:
    """The backup catalog, oldest first."""
    return _backup_take.list_backups(Workspace.open(config))


def uncatalogued_backup_files(config: Config) -> list[Path]:
    """Files in the backup folder that no catalogued backup owns: the partial file of a
    backup that was interrupted (or is being written now). Never verified; never restored."""
    return BackupCatalog(config.backups).uncatalogued()  # the folder only: no project to load


def restore(
    config: Config,
    ref: str | None,
    *,
    into: str | None = None,
    confirm: Callable[[RestorePlan], bool] | None = None,
    progress: Callable[[str], None] | None = None,
    resume: bool = False,
) -> RestoreResult:
    """Restore a catalogued backup into a new database, or over the current one; ``resume``:
    finish the restore that stopped part-way (``ref`` None)."""
    return _backup_restore.restore(
        Workspace.open(config),
        ref,
        into_url=into,
        confirm=confirm,
        progress=progress,
        resume=resume,
    )
