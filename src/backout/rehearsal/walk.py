"""The rehearsal itself: walking migrations on the throwaway database (see
backout.rehearsal.rehearse)."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from backout.analysis.checks import CheckProblem, run_checks, show_table
from backout.dialects.base import Session
from backout.dialects.pool import ConnectionPool, reusing
from backout.migrate.apply import up
from backout.migrate.resolve import resolve
from backout.model.effects import table_key
from backout.model.errors import BackoutError
from backout.model.schema import SchemaDiff, SchemaSnapshot, TableStats, diff_schemas
from backout.project.migration import Migration
from backout.rehearsal.compare import (
    check_failures,
    data_failures,
    dump_failures,
    reapply_failures,
    schema_failures,
)
from backout.rehearsal.data import fill_tables
from backout.rehearsal.report import (
    FAILED,
    NO_ROLLBACK,
    NOT_RUN,
    MigrationRehearsal,
    Progress,
    RehearsalEvent,
    RehearsalReport,
)
from backout.rollback.rollback import rollback
from backout.run.hooks import HookResult, run_hook
from backout.run.replay import apply_unrecorded, replay, scratch_workspace
from backout.run.runner import prepare
from backout.run.status import State, StatusReport
from backout.run.workspace import Workspace


@dataclass
class Capture:
    """The state of the copy at one point: schema, data of untouched tables, dump, checks."""

    snapshot: SchemaSnapshot
    stats: dict[str, TableStats]
    dump: str | None
    checks: list[CheckProblem]


def _names(text: str, name: str) -> bool:
    """Whether ``text`` names ``name`` as a whole word (quoted or not)."""
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text) is not None


class Walk:
    """Rehearses migrations one after another on one throwaway database."""

    def __init__(
        self,
        ws: Workspace,
        report: RehearsalReport,
        emit: Progress,
        ignore_column_order: bool,
        with_smoke: bool,
        with_data: bool,
    ) -> None:
        self.ws = ws
        self.report = report
        self.emit = emit
        self.ignore_column_order = ignore_column_order
        self.with_smoke = with_smoke
        self.with_data = with_data
        #: set when the copy is no longer in a state later migrations can build on
        self.stopped: str | None = None
        self._pool = ThreadPoolExecutor(max_workers=1)
        #: the copy's schema as last read, None after a change
        self.current: SchemaSnapshot | None = None
        #: a schema dump of the current state, started early to overlap with other work
        self.early_dump: Future[str | None] | None = None

    # --- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[Session]:
        with self.ws.session() as session:
            yield session

    def status(self) -> StatusReport:
        """The copy's migration state."""
        with self._reader() as session:
            return self.ws.read_status(session)

    def _step(self, migration: Migration, text: str) -> None:
        self.emit(RehearsalEvent("step", migration=migration.id, text=text))

    def _timed(self, result: MigrationRehearsal, name: str, action: Callable[[], object]) -> None:
        clock = time.monotonic()
        try:
            action()
        finally:
            result.timings[name] = result.timings.get(name, 0.0) + time.monotonic() - clock

    def _up(self, migration: Migration) -> None:
        up(self.ws, to=migration.id)

    def _rollback_one(self, migration: Migration, known: SchemaSnapshot | None) -> list[str]:
        result = rollback(
            self.ws,
            steps=1,
            backup_mode="none",
            accept_data_loss=True,
            simulate=False,
            known=known,
        )
        return result.rolled_back

    def _declared(self, migration: Migration, snapshot: SchemaSnapshot) -> tuple[set[str], bool]:
        """Tables the migration declares to touch (keys in ``snapshot``), and whether some
        statement could not be analysed.

        Declared: every table the forward script writes (its rows or its structure), and the
        tables its rollback writes *and names* in an ``impact`` or ``data-loss`` directive.
        A rollback that deletes rows of a table it never mentions is what this check exists
        to catch.
        """
        declared: set[str] = set()
        unknown = False
        for script in (migration.up, migration.down):
            if script is None:
                continue
            effects = self.ws.dialect.analyze(prepare(self.ws.dialect, script).statements)
            unknown = unknown or effects.needs_review
            said = " ".join((*script.directives.impact, *script.directives.data_loss))
            for ref in effects.tables_written():
                key = table_key(ref, snapshot)
                if key is None:
                    continue
                if script is migration.up or _names(said, snapshot.tables[key].name):
                    declared.add(key)
        return declared, unknown

    def _dump(self) -> Future[str | None]:
        ws = self.ws
        return self._pool.submit(
            ws.dialect.schema_dump,
            ws.url,
            ws.actor,
            ignore_column_order=self.ignore_column_order,
        )

    def capture(
        self,
        session: Session,
        declared: set[str],
        *,
        dump: bool = True,
        snapshot: SchemaSnapshot | None = None,
    ) -> Capture:
        """Schema, stats of the tables not in ``declared``, schema dump and check problems."""
        pending = None
        if dump:
            # A dump started when this state was reached (see _reapply) is still valid.
            pending, self.early_dump = self.early_dump or self._dump(), None
        dialect = self.ws.dialect
        if snapshot is None:
            snapshot = dialect.snapshot(session)
        untouched = {k: v for k, v in snapshot.tables.items() if k not in declared}
        stats = dialect.table_stats(session, dataclasses.replace(snapshot, tables=untouched))
        checks = run_checks(self.ws, session, drift=False, snapshot=snapshot).problems
        return Capture(snapshot, stats, self._dumped(pending), checks)

    def _dumped(self, pending: Future[str | None] | None) -> str | None:
        """The dump, or None (with a note, once) when the database's dump tool cannot run."""
        if pending is None:
            return None
        try:
            return pending.result()
        except BackoutError as exc:
            note = f"the schema dump comparison was skipped: {exc}"
            if note not in self.report.notes:
                self.report.notes.append(note)
            return None

    def snapshot(self, session: Session) -> SchemaSnapshot:
        """The copy's schema (read again only after a change: :attr:`current` is reset then)."""
        if self.current is None:
            self.current = self.ws.dialect.snapshot(session)
        return self.current

    def _smoke(self, result: MigrationRehearsal | None) -> HookResult | None:
        if not self.with_smoke:
            return None
        hook = run_hook(self.ws.config, "smoke", self.ws.url)
        if hook is not None and result is not None:
            result.smoke = hook
            if not hook.ok:
                result.fail("smoke", f"{hook.describe()} (DATABASE_URL: the copy)")
        return hook

    def _fill(self, session: Session, tables: Sequence[str] | None) -> None:
        if not self.with_data:
            return

        for note in fill_tables(session, self.snapshot(session), tables):
            if note not in self.report.notes:
                self.report.notes.append(note)

    def _begin(self, migration: Migration, mode: str) -> MigrationRehearsal:
        result = MigrationRehearsal(id=migration.id, mode=mode)
        self.report.migrations.append(result)
        self.emit(RehearsalEvent("start", migration=migration.id))
        return result

    def _skip(self, migration: Migration) -> None:
        result = MigrationRehearsal(id=migration.id, mode="forward", status=NOT_RUN)
        result.notes.append(f"not run: {self.stopped}")
        self.report.migrations.append(result)
        self.emit(RehearsalEvent("done", migration=migration.id, result=result))

    # --- walks ----------------------------------------------------------------------------

    def run_all(self) -> None:
        """Every migration in order, forward, from an empty database."""
        migrations = self.ws.project.migrations
        self.emit(RehearsalEvent("plan", total=len(migrations)))
        with self._running():
            for migration in migrations:
                if self.stopped:
                    self._skip(migration)
                else:
                    self.forward(migration, explicit=False)
            if self.with_smoke and not self.stopped:
                self.report.smoke = self._smoke(None)

    @contextmanager
    def _running(self) -> Iterator[None]:
        """While the walk runs: its sessions reuse connections (opening one costs a server
        process and a cold catalog cache, four times per migration) and the run lock is
        taken once; on exit, the dumps started are waited for and the connections closed."""
        connections = ConnectionPool(max_idle=4)
        try:
            with reusing(connections), self.ws.holding_run_lock():
                yield
        finally:
            self._pool.shutdown(wait=True)
            connections.close()

    def run_copy(self, chosen: Sequence[Migration]) -> None:
        """The chosen migrations (default: pending ones, else the newest applied one)."""
        with self._running():
            status = self.status()
            applied = {e.key for e in status.applied}
            targets = list(chosen)
            if not targets:
                pending = [e.migration for e in status.pending if e.migration is not None]
                newest = [e.migration for e in status.applied[-1:] if e.migration is not None]
                targets = pending or newest
            if not targets:
                self.report.notes.append("nothing to rehearse: no migration is pending or applied")
                return
            index = self.ws.project.index_of
            backward = sorted((m for m in targets if m.key in applied), key=index, reverse=True)
            forward = sorted((m for m in targets if m.key not in applied), key=index)
            self.emit(RehearsalEvent("plan", total=len(backward) + len(forward)))
            for migration in backward:
                self.backward(migration, explicit=bool(chosen))
            for migration in forward:
                if self.stopped:
                    self._skip(migration)
                    continue
                self._apply_pending_before(migration)
                if self.stopped:
                    self._skip(migration)
                    continue
                self.forward(migration, explicit=bool(chosen))

    def _apply_pending_before(self, migration: Migration) -> None:
        """Apply (without rehearsing them) the pending migrations that come before it."""
        status = self.status()
        index = self.ws.project.index_of(migration)
        before = [
            e.migration
            for e in status.pending
            if e.migration is not None and self.ws.project.index_of(e.migration) < index
        ]
        if not before:
            return
        self.emit(
            RehearsalEvent("step", migration=migration.id, text=f"applying {len(before)} first")
        )
        self.current = self.early_dump = None
        try:
            self._up(before[-1])
        except BackoutError as exc:
            self.stopped = f"applying {before[-1].id} (before {migration.id}) failed: {exc}"

    # --- one migration --------------------------------------------------------------------

    def forward(self, migration: Migration, *, explicit: bool) -> None:
        """Apply, roll back, compare, apply again."""
        result = self._begin(migration, "forward")
        clock = time.monotonic()
        try:
            self._forward(migration, result, explicit=explicit)
        finally:
            result.duration_s = time.monotonic() - clock
            self.emit(RehearsalEvent("done", migration=migration.id, result=result))

    def _forward(self, migration: Migration, result: MigrationRehearsal, *, explicit: bool) -> None:
        with self._reader() as session:
            self._fill(session, None)
            snapshot = self.snapshot(session)
            declared, unknown = self._declared(migration, snapshot)
            if unknown:
                result.notes.append(
                    "some statements cannot be analysed statically: every table's rows are "
                    "compared, also those they may write"
                )
            rollback = migration.down is not None
            before = None
            if rollback:
                before = self.capture(session, declared, snapshot=snapshot)
            self._step(migration, f"applying {migration.id}")
            self.current = self.early_dump = None
            try:
                self._timed(result, "apply", lambda: self._up(migration))
            except BackoutError as exc:
                cleared = self.with_data and self._clear_for(migration, session, snapshot)
                if not cleared:
                    result.fail("apply", f"applying {migration.id} failed: {exc}")
                    self.stopped = f"{migration.id} could not be applied"
                    return
                if rollback:
                    before = self.capture(session, declared, snapshot=snapshot)
                self.current = self.early_dump = None
                try:
                    self._timed(result, "apply", lambda: self._up(migration))
                except BackoutError as again:
                    result.fail("apply", f"applying {migration.id} failed: {again}")
                    self.stopped = f"{migration.id} could not be applied"
                    return
                result.findings.append(
                    f"this migration fails on a non-empty table: {exc}. A database with rows "
                    f"there fails the same way unless its data differs from the sample rows; "
                    f"the rehearsal emptied {cleared}, applied it again, and went on"
                )
            if before is None:
                self._no_rollback(migration, result, explicit)
                return
            if self.with_data:
                self._fill(
                    session, sorted(set(self.snapshot(session).tables) - set(snapshot.tables))
                )
            # The schema with M applied, read once: the rollback plans with it, and it is the
            # next migration's "before" when the rollback put the schema back exactly (then
            # re-applying M starts from the very schema it first did).
            applied = self.snapshot(session)
            self.current = None
            if not self._rollback(migration, result, session, applied):
                self.current = applied
                return
            self._step(migration, "comparing")
            after = self.capture(session, declared)
            self._compare(migration, result, before, after)
            exact = after.snapshot == before.snapshot and result.status != FAILED
            self._reapply(
                migration,
                result,
                session,
                applied if self.with_data else None,
                rolled_back=after.snapshot,
                same=applied if exact and not self.with_data else None,
            )

    def _clear_for(self, migration: Migration, session: Session, snapshot: SchemaSnapshot) -> str:
        """With sample rows, a migration that fails is a finding, not the end of the walk:
        empty the tables it writes (and the rows referencing them) so it can be applied again.

        Only when the failure left the schema as it was (the migration ran in one
        transaction); the failed attempt the history records is resolved as rolled back, as a
        person would. Returns the tables emptied, "" when not."""
        self.current = self.early_dump = None
        if self.snapshot(session) != snapshot:
            return ""
        failed = [e for e in self.ws.read_status(session).entries if e.state is State.FAILED]
        if any(e.key != migration.key for e in failed):
            return ""
        try:
            if failed:
                resolve(self.ws, migration.id, applied=False)
        except BackoutError:
            return ""
        effects = self.ws.dialect.analyze(prepare(self.ws.dialect, migration.up).statements)
        keys = {table_key(ref, snapshot) for ref in effects.tables_written()}
        tables = [snapshot.tables[k] for k in sorted(k for k in keys if k is not None)]
        if not tables:
            return ""
        shown = ", ".join(show_table(t.key, snapshot) for t in tables)
        self._step(migration, f"emptying {shown} and applying {migration.id} again")
        session.begin()
        try:
            self.ws.dialect.empty_tables(session, tables)
            session.commit()
        except BackoutError:
            return ""
        finally:
            session.rollback()
        return shown

    def _no_rollback(
        self, migration: Migration, result: MigrationRehearsal, explicit: bool
    ) -> None:
        if explicit:
            result.fail("setup", f"{migration.id} has no rollback script: nothing to rehearse")
        else:
            result.status = NO_ROLLBACK
            result.notes.append("no rollback script: applied, not rehearsed")

    def _rollback(
        self,
        migration: Migration,
        result: MigrationRehearsal,
        session: Session,
        known: SchemaSnapshot | None = None,
    ) -> bool:
        newest = self.ws.read_status(session).applied[-1:]
        if not newest or newest[0].key != migration.key:
            result.fail(
                "setup",
                f"{migration.id} is not the newest applied migration on the copy "
                f"({newest[0].id if newest else 'none'} is): it cannot be rolled back alone",
            )
            return False
        self._step(migration, f"rolling back {migration.id}")
        rolled: list[str] = []

        def run() -> None:
            rolled.extend(self._rollback_one(migration, known))

        try:
            self._timed(result, "rollback", run)
        except BackoutError as exc:
            result.fail("rollback", f"the rollback failed: {exc}")
            return False
        if rolled != [migration.id]:
            result.fail("rollback", f"the rollback undid {rolled}, not only {migration.id}")
            return False
        self._data_only_note(migration, result)
        return True

    @staticmethod
    def _data_only_note(migration: Migration, result: MigrationRehearsal) -> None:
        """A data-only rollback passes on the schema; what a person must do is reported."""
        directives = migration.down.directives if migration.down is not None else None
        if directives is None or directives.data_only is None:
            return
        steps = "; ".join(directives.manual) or "none declared"
        result.notes.append(
            f"data-only rollback ({directives.data_only}): checked on the schema; "
            f"manual data steps: {steps}"
        )

    def _compare(
        self,
        migration: Migration,
        result: MigrationRehearsal,
        before: Capture,
        after: Capture,
        *,
        expected: SchemaSnapshot | None = None,
        known: SchemaDiff | None = None,
    ) -> None:
        clock = time.monotonic()
        reference = expected if expected is not None else before.snapshot
        failures, notes = schema_failures(
            reference,
            after.snapshot,
            ignore_column_order=self.ignore_column_order,
            known=known,
        )
        if not failures and expected is None:
            failures = dump_failures(before.dump, after.dump)
        failures += data_failures(before.stats, after.stats, before.snapshot, migration.id)
        failures += check_failures(before.checks, after.checks)
        result.failures.extend(failures)
        result.notes.extend(notes)
        if failures:
            result.status = FAILED
        result.timings["compare"] = time.monotonic() - clock

    def _reapply(
        self,
        migration: Migration,
        result: MigrationRehearsal,
        session: Session,
        applied: SchemaSnapshot | None,
        *,
        rolled_back: SchemaSnapshot | None = None,
        same: SchemaSnapshot | None = None,
    ) -> None:
        """Apply the migration again after its rollback. With sample rows, one that fails on
        the rows the rollback left (a data-only rollback keeps the rows a seed inserted) is a
        finding, as in :meth:`_forward`: ``rolled_back`` is the schema it must start from.

        ``same``: the schema M gave when first applied, from exactly the schema it is
        re-applied on now: re-applied without failing, it gives that schema again, which is
        not read again."""
        self._step(migration, f"re-applying {migration.id}")
        self.current = self.early_dump = None
        try:
            self._timed(result, "reapply", lambda: self._up(migration))
        except BackoutError as exc:
            cleared = ""
            if self.with_data and rolled_back is not None:
                cleared = self._clear_for(migration, session, rolled_back)
            try:
                if not cleared:
                    raise exc
                self.current = self.early_dump = None
                self._timed(result, "reapply", lambda: self._up(migration))
            except BackoutError as final:
                result.fail(
                    "reapply", f"re-applying {migration.id} after its rollback failed: {final}"
                )
                self.stopped = f"{migration.id} could not be re-applied after its rollback"
                return
            result.findings.append(
                f"re-applying this migration after its rollback fails on the rows left in the "
                f"table: {exc}. The rehearsal emptied {cleared}, applied it again, and went on"
            )
        if self.report.mode == "all":
            # The next migration's "before" is this state: dump it while the walk goes on.
            self.early_dump = self._dump()
        if same is not None and self.current is None:
            self.current = same
        again = self.snapshot(session)
        for failure in reapply_failures(applied, again) if applied is not None else ():
            result.fail(failure.kind, failure.message)
        if self.report.mode == "copy":
            self._step(migration, "smoke hook")
            self._timed(result, "smoke", lambda: self._smoke(result))

    def backward(self, migration: Migration, *, explicit: bool) -> None:
        """Roll back an applied migration, compare with the replayed schema, apply again."""
        result = self._begin(migration, "backward")
        clock = time.monotonic()
        try:
            self._backward(migration, result, explicit=explicit)
        finally:
            result.duration_s = time.monotonic() - clock
            self.emit(RehearsalEvent("done", migration=migration.id, result=result))

    def _backward(
        self, migration: Migration, result: MigrationRehearsal, *, explicit: bool
    ) -> None:
        status = self.status()
        index = self.ws.project.index_of
        newer = [
            e
            for e in status.applied
            if e.migration is None or index(e.migration) > index(migration)
        ]
        if newer:
            self._step(migration, f"rolling back {len(newer)} newer migration(s) first")

            try:
                rollback(
                    self.ws,
                    to=migration.id,
                    backup_mode="none",
                    accept_data_loss=True,
                    simulate=False,
                )
            except BackoutError as exc:
                ids = ", ".join(e.id for e in newer)
                result.fail("setup", f"rolling back the newer migrations ({ids}) failed: {exc}")
                return
        if migration.down is None:
            self._no_rollback(migration, result, explicit)
            return
        earlier = [
            e.migration
            for e in status.applied
            if e.migration is not None and index(e.migration) < index(migration)
        ]
        expected = self._expected(migration, earlier, result)
        with self._reader() as session:
            snapshot = self.ws.dialect.snapshot(session)
            declared, _ = self._declared(migration, snapshot)
            before = self.capture(session, declared, dump=False)
            known = diff_schemas(expected[1], before.snapshot) if expected else None
            if not self._rollback(migration, result, session):
                return
            self._step(migration, "comparing")
            after = self.capture(session, declared, dump=False)
            if expected is None:
                # Without a reference schema only the data, the checks and the round trip
                # can be compared.
                after = dataclasses.replace(after, snapshot=before.snapshot)
            self._compare(
                migration,
                result,
                before,
                after,
                expected=expected[0] if expected else None,
                known=known,
            )
            self._reapply(migration, result, session, before.snapshot)

    def _expected(
        self, migration: Migration, earlier: list[Migration], result: MigrationRehearsal
    ) -> tuple[SchemaSnapshot, SchemaSnapshot] | None:
        """The schema before and after ``migration``, replayed on an empty scratch database."""
        self._step(migration, "replaying the migrations before it on an empty database")
        try:
            with scratch_workspace(self.ws) as scratch, scratch.session() as session:
                before = replay(scratch, session, earlier)
                apply_unrecorded(scratch, session, migration)
                return before, scratch.dialect.snapshot(session)
        except BackoutError as exc:
            result.notes.append(
                f"no reference schema (replaying the migrations failed: {exc}): the schema "
                "after the rollback is only checked by re-applying"
            )
            return None
