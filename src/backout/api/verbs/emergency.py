"""``emergency``: the emergency procedure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from backout.emergency import procedure as _emergency
from backout.project.config import Config
from backout.rollback.rollback import PlanView
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    from backout.emergency.incident import EmergencyResult, StepRecord


def emergency(
    config: Config,
    *,
    to: str,
    dry_run: bool = False,
    accept_data_loss: bool = False,
    confirm: Callable[[PlanView], bool] | None = None,
    progress: Callable[[StepRecord], None] | None = None,
    incidents_dir: Path | None = None,
    ignore_simulation: bool = False,
) -> EmergencyResult:
    """The emergency procedure: stop_app, full backup, rollback, deploy_previous, checks."""
    ws = Workspace.open(config)
    return _emergency.emergency(
        ws,
        to=to,
        dry_run=dry_run,
        accept_data_loss=accept_data_loss,
        confirm=confirm,
        progress=progress,
        incidents_dir=incidents_dir,
        ignore_simulation=ignore_simulation,
    )
