"""``check``, ``test`` and ``generate``: look for trouble, rehearse rollbacks, draft them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from backout.analysis.checks import run_checks
from backout.generate.draft import generate as _generate
from backout.project.config import Config
from backout.rehearsal.rehearse import rehearse
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    from backout.analysis.checks import CheckReport
    from backout.generate.draft import GeneratedRollback
    from backout.rehearsal.report import Progress as RehearsalProgress
    from backout.rehearsal.report import RehearsalReport


def check(config: Config, *, drift: bool = True, ignore_column_order: bool = False) -> CheckReport:
    """Orphaned rows, leftovers and drift, and the verify queries of rollbacks; read-only."""
    return run_checks(Workspace.open(config), drift=drift, ignore_column_order=ignore_column_order)


def test(
    config: Config,
    ids: Sequence[str] = (),
    *,
    all_: bool = False,
    from_url: str | None = None,
    ignore_column_order: bool = True,
    with_smoke: bool = True,
    with_data: bool = False,
    progress: RehearsalProgress | None = None,
) -> RehearsalReport:
    """Rehearse rollbacks on a throwaway copy (or, with ``all_``, an empty database)."""
    return rehearse(
        Workspace.open(config),
        ids=ids,
        all_=all_,
        from_url=from_url,
        ignore_column_order=ignore_column_order,
        with_smoke=with_smoke,
        with_data=with_data,
        progress=progress,
    )


test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test function


def generate(
    config: Config, ids: Sequence[str], *, force: bool = False, write: bool = True
) -> list[GeneratedRollback]:
    """Draft the rollback of each migration from the schema diff before and after it."""
    return _generate(Workspace.open(config), ids, force=force, write=write)
