"""``recover``: finishing or undoing the apply or rollback that stopped part-way (apart from
``plan`` and ``rollback``, which do not need the restore it imports)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from backout.project.config import Config
from backout.rollback.recovery import recover as _recover
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    from backout.rollback.recovery import RecoveryPlan, RecoveryResult


def recover(
    config: Config,
    action: str,
    *,
    dry_run: bool = False,
    confirm: Callable[[RecoveryPlan], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RecoveryResult:
    """Finish (``action="resume"``) or undo (``"undo"``) the apply or rollback that stopped
    part-way, from its statement journal (MySQL/MariaDB DDL, ``transaction off`` scripts)."""
    ws = Workspace.open(config)
    ws.notice = progress

    return _recover(ws, action, dry_run=dry_run, confirm=confirm, progress=progress)
