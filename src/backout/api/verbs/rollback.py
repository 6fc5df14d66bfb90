"""``plan`` and ``rollback``: what a rollback would do, and doing it (finishing or undoing one
that stopped part-way is :mod:`backout.api.verbs.recovery`'s: neither imports it)."""

from __future__ import annotations

from collections.abc import Callable

from backout.project.config import Config
from backout.rollback import rollback as _rollback
from backout.run.workspace import Workspace

PlanView = _rollback.PlanView
PartialRequest = _rollback.PartialRequest
RollbackResult = _rollback.RollbackResult


def plan(
    config: Config,
    *,
    to: str | None = None,
    steps: int | None = None,
    backup: str = "scoped",
    exact: bool = False,
    simulate: bool = True,
    partial: PartialRequest | None = None,
) -> PlanView:
    """The rollback plan with live checks (impact, require, backup scope); changes nothing."""
    ws = Workspace.open(config)
    return _rollback.plan(
        ws,
        to=to,
        steps=steps,
        backup_mode=backup,
        exact=exact,
        simulate=simulate,
        partial=partial,
    )


def rollback(
    config: Config,
    *,
    to: str | None = None,
    steps: int | None = None,
    dry_run: bool = False,
    backup: str = "scoped",
    accept_data_loss: bool = False,
    confirm: Callable[[PlanView], bool] | None = None,
    progress: Callable[[str], None] | None = None,
    exact: bool = False,
    simulate: bool = True,
    partial: PartialRequest | None = None,
    ignore_simulation: bool = False,
    update_schema: str | None = None,
) -> RollbackResult:
    """Roll back migrations: verified backup, run lock, one transaction, history, hooks.

    ``update_schema`` (``off``, ``pull``, ``git``; None: ``[prisma] update_schema`` of the
    configuration) updates schema.prisma and runs ``prisma generate`` after COMMIT.
    """
    ws = Workspace.open(config)
    ws.notice = progress
    return _rollback.rollback(
        ws,
        to=to,
        steps=steps,
        dry_run=dry_run,
        backup_mode=backup,
        accept_data_loss=accept_data_loss,
        confirm=confirm,
        progress=progress,
        exact=exact,
        simulate=simulate,
        partial=partial,
        ignore_simulation=ignore_simulation,
        update_schema=update_schema or config.update_schema,
    )
