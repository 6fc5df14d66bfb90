"""``up`` and ``resolve``: move the project forward, fix its bookkeeping."""

from __future__ import annotations

from collections.abc import Callable

from backout.migrate import apply as _apply
from backout.migrate import resolve as _resolve
from backout.project.config import Config
from backout.run.workspace import Workspace

UpResult = _apply.UpResult
ResolveResult = _resolve.ResolveResult
Progress = _apply.Progress


def up(
    config: Config,
    *,
    to: str | None = None,
    dry_run: bool = False,
    allow_edited: bool = False,
    allow_missing: bool = False,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
) -> UpResult:
    """Apply pending migrations in order, each in one transaction, under the run lock."""
    ws = Workspace.open(config)
    ws.notice = notice
    if to is not None:
        ws.project.find(to)  # an unknown target is refused before connecting
    return _apply.up(
        ws,
        to=to,
        dry_run=dry_run,
        allow_edited=allow_edited,
        allow_missing=allow_missing,
        progress=progress,
    )


def resolve(config: Config, ref: str, *, applied: bool) -> ResolveResult:
    """Record a failed migration as rolled back, or a migration as applied (baseline)."""
    ws = Workspace.open(config)
    ws.project.find(ref)
    return _resolve.resolve(ws, ref, applied=applied)
