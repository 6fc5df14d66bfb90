"""Throwaway databases for ``check``, ``test`` and ``generate``: scratch workspaces and replays.

A scratch workspace is the project's :class:`~backout.run.workspace.Workspace` pointed at a new,
empty database (or a copy of one) that is dropped on exit, also on Ctrl-C. Its configuration
keeps only the ``smoke`` hook: a rehearsal must never run ``after_rollback`` (``npx prisma
generate``) or ``stop_app`` for real.

A replay applies forward scripts through the runner without writing history: what a scratch
database looks like after a list of migrations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from backout.dialects.base import KeptStates, Session
from backout.model.schema import SchemaSnapshot
from backout.model.urls import DatabaseURL, parse_url, with_params
from backout.project.migration import Migration
from backout.run.runner import Executor, ScriptRunner, prepare
from backout.run.workspace import Workspace

#: the hooks a scratch workspace keeps
SCRATCH_HOOKS = ("smoke",)


def _same_schema(url: DatabaseURL, like: DatabaseURL) -> DatabaseURL:
    """``url`` with ``like``'s ``?schema=`` (Prisma), so unqualified names land alike."""
    if like.schema is None or url.schema == like.schema:
        return url
    return parse_url(with_params(url, schema=like.schema))


def on_url(ws: Workspace, url: DatabaseURL) -> Workspace:
    """The same project on another (throwaway, private) database, with only the hooks a
    rehearsal may run."""
    hooks = {k: v for k, v in ws.config.hooks.items() if k in SCRATCH_HOOKS}
    config = dataclasses.replace(
        ws.config, database_url=url.raw, url_source="scratch copy", hooks=hooks
    )
    return dataclasses.replace(ws, config=config, url=url, notice=None, private=True)


@contextmanager
def scratch_workspace(
    ws: Workspace,
    *,
    copy_from: DatabaseURL | None = None,
    data: bool = False,
    kept: tuple[KeptStates, str] | None = None,
) -> Iterator[Workspace]:
    """A workspace on a new throwaway database, dropped on exit (also on Ctrl-C).

    Empty, a copy of ``copy_from`` (its schema, and its rows when ``data``), or a copy of a
    kept state (``kept``: where, and its key). PostgreSQL creates it on ``shadow_url`` when
    configured, else on the server of the database it copies.
    """
    base = copy_from or ws.url
    creating = (
        kept[0].copy(kept[1])
        if kept is not None
        else ws.dialect.scratch(base, ws.config.shadow, ws.actor, prefix=ws.config.scratch_prefix)
    )
    with creating as created:
        url = _same_schema(created, base)
        if kept is None:  # a kept state's copy has its migrations applied already
            ws.dialect.tune_scratch(url, ws.actor)
        if copy_from is not None:
            ws.dialect.copy_database(copy_from, url, ws.actor, data=data)
        yield on_url(ws, url)


def apply_unrecorded(ws: Workspace, session: Session, migration: Migration) -> None:
    """Run a migration's forward script through the runner, writing no history."""
    unit = prepare(ws.dialect, migration.up)
    runner = ScriptRunner(session, Executor(session, dry_run=False), ws.run_options())
    if unit.transactional:
        runner.run_in_transaction([unit], before_commit=lambda: None)
    else:
        runner.run_without_transaction(unit)


def ensure_url_schema(ws: Workspace, session: Session) -> None:
    """Create the schema the URL names (Prisma's ``?schema=``), as ``migrate deploy`` does."""
    for sql in ws.dialect.ensure_url_schema(ws.url):
        session.execute(sql)


def replay(ws: Workspace, session: Session, migrations: Sequence[Migration]) -> SchemaSnapshot:
    """Apply ``migrations`` in order on the (scratch) session's database; its snapshot after."""
    ensure_url_schema(ws, session)
    for migration in migrations:
        apply_unrecorded(ws, session, migration)
    return ws.dialect.snapshot(session)
