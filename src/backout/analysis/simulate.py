"""Simulated impact: run the rollback scripts on a schema-only scratch copy, never on the live
database (so no production lock is taken), and compare what changed with what the parser saw.

The two sources are independent: the parser reads the SQL; the simulation asks the database.
Where they disagree (dynamic SQL, CASCADE side effects, IF EXISTS on something absent, a
parser gap) the disagreement is reported, never silently resolved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import replace

from backout import __version__
from backout.analysis.expected import compare
from backout.analysis.impact import Simulation
from backout.dialects.base import KeptCopies, Session
from backout.model.effects import ScriptEffects
from backout.model.errors import BackoutError, DatabaseError
from backout.model.schema import SchemaSnapshot
from backout.model.urls import DatabaseURL
from backout.run.runner import Executor, PreparedScript, ScriptRunner
from backout.run.workspace import Workspace


def _without_checks(unit: PreparedScript) -> PreparedScript:
    """Checks read data; a schema-only copy has none, so they are not part of the simulation."""
    directives = replace(unit.script.directives, require=(), verify=())
    return replace(unit, script=replace(unit.script, directives=directives))


def simulate(
    ws: Workspace,
    analysed: Sequence[tuple[PreparedScript, ScriptEffects]],
    live_key: str | None = None,
    live: Session | None = None,
) -> tuple[list[Simulation], str]:
    """Run the scripts in order on a schema-only scratch copy; one Simulation per script.

    ``live_key``: the live schema's :meth:`~backout.dialects.base.Dialect.schema_key`, just
    read. With it, where the dialect keeps copies
    (:meth:`~backout.dialects.base.Dialect.kept_copies`) and every script runs in a
    transaction, the copy outlives the run and the next one reuses it while the live schema is
    unchanged (see :func:`_on_kept_copy`). ``live``: the open session ``live_key`` was read
    on, lent to the kept copies' bookkeeping (one connection fewer). Returns ([], reason)
    when no scratch copy can be made (e.g. no permission to create a database): the
    simulation is then skipped and the reason reported.
    """
    results: list[Simulation] = []
    try:
        if live_key is not None and _one_transaction(ws, analysed):
            copies = ws.dialect.kept_copies(
                ws.url, ws.config.shadow, ws.actor, prefix=ws.config.scratch_prefix, admin=live
            )
            if copies is not None and _on_kept_copy(ws, copies, analysed, live_key, results):
                return results, ""
            results.clear()
        with ws.dialect.scratch(
            ws.url, ws.config.shadow, ws.actor, prefix=ws.config.scratch_prefix
        ) as scratch_url:
            ws.dialect.copy_database(ws.url, scratch_url, ws.actor, data=False)
            session = ws.dialect.connect(scratch_url, actor=ws.actor)
            try:
                _run(ws, session, analysed, results, ws.dialect.snapshot(session))
            finally:
                session.close()
    except BackoutError as exc:
        if not results:
            return [], f"simulation skipped: {exc}"
        raise
    return results, ""


def _one_transaction(
    ws: Workspace, analysed: Sequence[tuple[PreparedScript, ScriptEffects]]
) -> bool:
    """Whether every script can run inside one transaction that is then rolled back: each is
    transactional, with nothing run around its transaction, and no statement needs an earlier
    one committed first."""
    units = [unit for unit, _ in analysed]
    if not all(u.transactional and not u.shape.before and not u.shape.after for u in units):
        return False
    return not ws.dialect.commit_needed([s for u in units for s in u.statements])


def copy_key(live_key: str, history_schema: str) -> str:
    """What a kept copy is labelled with: the live schema's key, the history schema (the copy
    holds it too) and this backout's version (a snapshot's form may change)."""
    text = f"{live_key}\0{history_schema}\0{__version__}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _on_kept_copy(
    ws: Workspace,
    copies: KeptCopies,
    analysed: Sequence[tuple[PreparedScript, ScriptEffects]],
    live_key: str,
    results: list[Simulation],
) -> bool:
    """Simulate on a kept copy of the live schema (claimed, else made and kept); False when
    none could be used, ``results`` then says nothing.

    The scripts run inside one transaction that is rolled back, so the copy stays as it was.
    A copy is used only when its own schema is the live one: one whose label is right but whose
    schema differs (it was changed, or the live schema changed while it was being copied) is
    dropped, never used.
    """
    key = copy_key(live_key, ws.dialect.history_schema)
    copy = copies.claim(key)
    made = copy is None
    if copy is None:
        copy = copies.create()
    try:
        used = _run_undone(ws, copy, analysed, live_key, results)
    except BaseException:
        if made:
            copies.discard(copy)
        raise
    if not used:
        copies.discard(copy)
    elif made:
        copies.keep(copy, key)
    return used


def _run_undone(
    ws: Workspace,
    copy: DatabaseURL,
    analysed: Sequence[tuple[PreparedScript, ScriptEffects]],
    live_key: str,
    results: list[Simulation],
) -> bool:
    """Run the scripts on ``copy`` in one transaction, rolled back at the end; False (nothing
    run) when the copy's schema key is not ``live_key``."""
    session = ws.dialect.connect(copy, actor=ws.actor)
    try:
        session.begin()
        before = ws.dialect.snapshot(session)
        if ws.dialect.schema_key(session, before) != live_key:
            return False
        _run(ws, session, analysed, results, before, executor=_SavepointExecutor(session))
        return True
    finally:
        session.rollback()
        session.close()


class _SavepointExecutor(Executor):
    """Runs each script's transaction as a savepoint of the simulation's own transaction."""

    _SAVEPOINT = "backout_simulation"

    def __init__(self, session: Session) -> None:
        super().__init__(session, dry_run=False)
        self._open = False

    def begin(self) -> None:
        self.session.execute(f"SAVEPOINT {self._SAVEPOINT}")
        self._open = True

    def commit(self) -> None:
        self.session.execute(f"RELEASE SAVEPOINT {self._SAVEPOINT}")
        self._open = False

    def rollback(self) -> None:
        # Never raises (see Executor.rollback): if the savepoint cannot be rolled back to, the
        # simulation's transaction is broken and the next statement says so.
        if self._open:
            self._open = False
            with suppress(DatabaseError):
                self.session.execute(f"ROLLBACK TO SAVEPOINT {self._SAVEPOINT}")


def _run(
    ws: Workspace,
    session: Session,
    analysed: Sequence[tuple[PreparedScript, ScriptEffects]],
    results: list[Simulation],
    before: SchemaSnapshot,
    *,
    executor: Executor | None = None,
) -> None:
    insensitive = not ws.dialect.has_schemas
    failed = False
    for unit, effects in analysed:
        if failed:
            results.append(Simulation(ran=False, error="not run: an earlier script failed"))
            continue
        runner = ScriptRunner(
            session, executor or Executor(session, dry_run=False), ws.run_options()
        )
        try:
            if unit.transactional:
                runner.run_in_transaction([_without_checks(unit)], before_commit=lambda: None)
            else:
                runner.run_without_transaction(_without_checks(unit))
        except BackoutError as exc:
            failed = True
            results.append(
                Simulation(ran=True, error=f"fails on a schema-only copy of the database: {exc}")
            )
            continue
        after = ws.dialect.snapshot(session)
        changes, disagreements = compare(before, after, effects, case_insensitive=insensitive)
        results.append(
            Simulation(ran=True, changes=tuple(changes), disagreements=tuple(disagreements))
        )
        before = after
