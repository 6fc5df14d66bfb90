"""Executing scripts: statement by statement, in one transaction, with timeouts and retries.

A dry run is this same code path with an :class:`Executor` that writes into a transcript instead
of the database; reads (history, ``require`` checks) still go to the live database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from backout.dialects.base import Dialect, Params, Row, ScriptShape, Session
from backout.dialects.params import render, render_literal
from backout.model import interrupts
from backout.model.errors import CheckFailed, DatabaseError, LockError, ProjectError
from backout.model.script import Script, SqlCheck, Statement
from backout.run.transactions import TransactionLayout, lay_out


def render_sql(sql: str, params: Params) -> str:
    """``sql`` with backout's ``%s`` placeholders replaced by literals (dry-run display)."""
    if not params:
        return sql
    pieces = sql.split("%s")
    out = [pieces[0]]
    for value, rest in zip(params, pieces[1:], strict=False):
        out.append(render_literal(value))
        out.append(rest)
    return "".join(out)


class Executor:
    """Runs writes on the session, or (dry run) only records them; keeps a transcript either way."""

    def __init__(self, session: Session, *, dry_run: bool) -> None:
        self.session = session
        self.dry_run = dry_run
        self.transcript: list[str] = []

    def execute(
        self, sql: str, params: Params = None, *, named: Mapping[str, object] | None = None
    ) -> int:
        """Run (or record) one write; returns the affected row count (0 in a dry run).

        ``named``: values of the script's declared parameters, bound to its ``:name``
        placeholders (never pasted into the SQL; the transcript shows them as literals).
        """
        if named:
            dialect = self.session.dialect
            shown = render(sql, dialect.param_spans(sql, named.keys()), named)
            self.transcript.append(shown.rstrip().rstrip(";") + ";")
            if self.dry_run:
                return 0
            driver_sql, driver_params = dialect.bind(sql, named)
            return self.session.execute_native(driver_sql, driver_params)
        self.transcript.append(render_sql(sql, params).rstrip().rstrip(";") + ";")
        if self.dry_run:
            return 0
        return self.session.execute(sql, params)

    def query(self, sql: str, *, named: Mapping[str, object] | None = None) -> list[Row]:
        """A read (always on the database, also in a dry run), with bound parameters."""
        if named:
            driver_sql, driver_params = self.session.dialect.bind(sql, named)
            return self.session.query_native(driver_sql, driver_params)
        return self.session.query(sql)

    def check(self, sql: str, *, named: Mapping[str, object] | None = None) -> list[Row]:
        """A check query (always on the database, also in a dry run), bound parameters,
        with any write it makes undone (see ``Session.query_undone``)."""
        driver_sql, driver_params = self.session.dialect.bind(sql, named or {})
        return self.session.query_undone(driver_sql, driver_params)

    def comment(self, text: str) -> None:
        """Add a ``-- comment`` line to the transcript."""
        for line in text.splitlines() or [""]:
            self.transcript.append(f"-- {line}".rstrip())

    def begin(self) -> None:
        """Start a transaction (a SIGTERM held since the last COMMIT stops the run here, with
        nothing open: see backout.model.interrupts)."""
        self.transcript.append("BEGIN;")
        if not self.dry_run:
            interrupts.beginning()
            self.session.begin()

    def commit(self) -> None:
        """Commit; from here until the next :meth:`begin`, a SIGTERM waits."""
        self.transcript.append("COMMIT;")
        if not self.dry_run:
            with interrupts.committing():
                self.session.commit()

    def rollback(self) -> None:
        """Roll back whatever is open (never raises)."""
        if not self.dry_run:
            self.session.rollback()


@dataclass(frozen=True)
class PreparedScript:
    """A script split into statements, laid out onto transactions
    (:mod:`backout.run.transactions`)."""

    script: Script
    #: the statements that run (the script's own BEGIN/COMMIT left out), numbered 1..n
    statements: tuple[Statement, ...]
    shape: ScriptShape
    #: the script's own blocks, what cannot run in a transaction, why it runs journaled
    layout: TransactionLayout = field(default_factory=lambda: TransactionLayout(statements=()))
    #: statements the database commits on its own (MySQL's DDL): the script cannot be one
    #: transaction, and runs statement by statement with a journal
    implicit: tuple[Statement, ...] = ()

    @property
    def transactional(self) -> bool:
        """False when the script runs journaled: ``-- backout:transaction off``, a statement the
        database commits implicitly (see :attr:`implicit`), a statement that cannot run in a
        transaction block, or statements that cannot share one."""
        return self.layout.atomic and not self.implicit

    def journal_reason(self, dialect: Dialect) -> str:
        """Why the script runs statement by statement (for messages), '' when it does not."""
        if self.layout.journal_reasons:
            return self.layout.journal_reasons[0]
        if self.implicit:
            return f"{dialect.display_name} commits DDL implicitly"
        return ""

    def commits_alone(self, statement: Statement) -> bool:
        """True when ``statement`` runs outside any transaction, committing on its own."""
        if statement.index in self.layout.alone or statement in self.implicit:
            return True
        # ``transaction off``: outside the script's own blocks, nothing is wrapped
        return not self.script.directives.transaction and not self.layout.in_block(statement.index)

    def groups(self) -> list[tuple[Statement, ...]]:
        """The statements in run order; a block of the script's own that can be one
        transaction is one group (its statements commit together)."""
        groups: list[tuple[Statement, ...]] = []
        for group in self.layout.groups():
            if len(group) > 1 and any(self.commits_alone(s) for s in group):
                groups.extend((s,) for s in group)  # MySQL DDL commits the block anyway
            else:
                groups.append(group)
        return groups

    def notes(self, dialect: Dialect) -> list[str]:
        """What backout does with the script's transactions, when it is not the plain case."""
        notes = []
        if self.script.directives.transaction and self.layout.journal_reasons:
            notes.append(
                f"{self.script.display}: runs journaled, statement by statement, because "
                f"{self.layout.journal_reasons[0]}"
                + (
                    f" (and {len(self.layout.journal_reasons) - 1} more)"
                    if len(self.layout.journal_reasons) > 1
                    else ""
                )
            )
        control = self.control_note(dialect)
        if control:
            notes.append(control)
        return notes

    def control_note(self, dialect: Dialect) -> str | None:
        """What is done with the script's own BEGIN/COMMIT (None: it has none)."""
        in_blocks = any(self.layout.in_block(s.index) for s in self.implicit)
        implicit = f"{dialect.display_name} commits DDL implicitly" if in_blocks else ""
        return self.layout.control_note(self.script.display, implicit, atomic=self.transactional)


def check_queries(script: Script) -> list[tuple[str, SqlCheck]]:
    """The script's check queries with their directive: require, verify, then preview."""
    directives = script.directives
    found = [("require", c) for c in directives.require]
    found += [("verify", c) for c in directives.verify]
    if directives.preview is not None:
        found.append(("preview", directives.preview))
    return found


def writing_checks(dialect: Dialect, script: Script) -> list[tuple[str, SqlCheck, str]]:
    """Check queries that visibly do more than read: (directive, check, why), in order."""
    names = [p.name for p in script.directives.params]
    found = []
    for kind, check in check_queries(script):
        reason = dialect.check_write(check.sql, names)
        if reason is not None:
            found.append((kind, check, reason))
    return found


def refuse_writing_checks(dialect: Dialect, script: Script) -> None:
    """ProjectError (file and line) for the first check query that visibly writes.

    A check is somebody's SQL run in the middle of a rollback: one that writes is refused
    before anything runs, rather than trusted to the savepoint that undoes it.
    """
    for kind, check, reason in writing_checks(dialect, script):
        flat = " ".join(check.sql.split())
        raise ProjectError(
            f"{kind} query must only read, but {reason}: {flat[:80]}",
            path=script.display,
            line=check.line,
            hint="a check must never change data: make it a plain SELECT",
        )


#: scripts prepared, by dialect (the object) and content (see :func:`prepare`), oldest first
_PREPARED: dict[tuple[object, ...], PreparedScript] = {}
_PREPARED_MAX = 4096


def prepare(dialect: Dialect, script: Script) -> PreparedScript:
    """Split ``script`` and lay it out onto transactions.

    Raises ProjectError (file and line) for syntax errors, for transaction control that
    cannot be honoured (:func:`backout.run.transactions.lay_out`), and for a require/verify/preview
    query that visibly writes. The same script is split once per process: a rehearsal walk
    prepares each one several times (its analysis, the apply, the rollback, the re-apply).
    """
    key = (dialect, script.path, script.display, script.kind, script.first_line, script.text)
    found = _PREPARED.get(key)
    if found is None:
        found = _prepare(dialect, script)
        if len(_PREPARED) >= _PREPARED_MAX:
            del _PREPARED[next(iter(_PREPARED))]
        _PREPARED[key] = found
    return found if found.script is script else dataclasses.replace(found, script=script)


def _prepare(dialect: Dialect, script: Script) -> PreparedScript:
    refuse_writing_checks(dialect, script)
    split = dialect.split(
        script.text,
        script.display,
        first_line=script.first_line,
        params=[p.name for p in script.directives.params],
    )
    layout = lay_out(dialect, script, split)
    statements = layout.statements
    implicit = tuple(s for s in statements if dialect.commits_implicitly(s))
    if layout.atomic and not implicit:
        shape = dialect.shape(statements)
    else:
        shape = ScriptShape(before=(), inside=tuple(statements), after=())
    return PreparedScript(
        script=script, statements=statements, shape=shape, implicit=implicit, layout=layout
    )


class StatementJournal(Protocol):
    """What a journaled run records around each statement (see :mod:`backout.run.journal`)."""

    def running(self, statement: Statement) -> None:
        """Before a statement that commits on its own."""

    def done(self, statement: Statement) -> None:
        """After a statement took effect (in its transaction, when it has one)."""

    def failed(self, statement: Statement, error: str) -> None:
        """A statement failed and took no effect."""


@dataclass(frozen=True)
class RunOptions:
    """How patient to be with locks, and how long a statement may run."""

    lock_timeout: float = 2.0
    lock_retries: int = 5
    statement_timeout: float = 0.0
    #: seconds before the first retry; doubles each time (with jitter), capped at 10 s
    backoff: float = 0.5
    #: told about each lock wait before backing off: (where, attempt, wait seconds)
    on_retry: Callable[[str, int, float], None] | None = field(default=None, compare=False)

    #: how long one attempt really waits for a lock, when the database rounds ``lock_timeout``
    #: (MySQL: whole seconds); None: ``lock_timeout`` itself
    lock_wait: float | None = None

    def pause(self, delay: float) -> float:
        """Seconds to wait before the next attempt, for a backoff currently at ``delay``.

        Never less than an attempt's lock wait: while an attempt waits for a table lock, the
        application's queries on that table queue behind it, so between attempts they get
        at least as long again to drain.
        """
        floor = self.lock_timeout if self.lock_wait is None else self.lock_wait
        return max(floor, min(10.0, delay) * (0.5 + random.random() / 2))


@dataclass
class RunStats:
    """What a run did: attempts, statements, per-script timings."""

    attempts: int = 0
    statements: int = 0
    rows_affected: int = 0
    lock_waits: list[str] = field(default_factory=list)


class _LockTimeout(Exception):
    def __init__(self, error: DatabaseError, where: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.where = where


def check_passes(rows: list[tuple[object, ...]]) -> bool:
    """A require/verify query passes when its first row's first column is true or non-zero."""
    if not rows or not rows[0]:
        return False
    value = rows[0][0]
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip().lower() in {"t", "true", "1", "yes", "y", "on"}
    return bool(value)


class ScriptRunner:
    """Runs prepared scripts on one session; every error names the script, line and statement."""

    def __init__(
        self,
        session: Session,
        executor: Executor,
        options: RunOptions,
        *,
        sleep: Callable[[float], None] = time.sleep,
        values: Mapping[str, object] | None = None,
    ) -> None:
        #: values of declared parameters (partial rollbacks), bound wherever ``:name`` appears
        self.values = dict(values or {})
        self.session = session
        self.dialect = session.dialect
        self.executor = executor
        self.options = options
        self.sleep = sleep
        self.stats = RunStats()
        #: told about each lock wait before backing off: (where, attempt, wait seconds)
        self.on_retry = options.on_retry
        #: the statement a journaled run is on (named in the journal when it fails)
        self._failed: Statement | None = None
        #: what stood, before the statement running alone, where it could leave something
        self._before: object = None

    # --- checks ----------------------------------------------------------------------------

    def evaluate(self, script: Script, check: SqlCheck, kind: str) -> None:
        """Run a require/verify query; CheckFailed naming file and line when it does not pass."""
        if self.executor.dry_run and kind == "verify":
            self.executor.comment(f"verify ({script.display}:{check.line}), after the statements:")
            self.executor.comment(f"  {check.sql}")
            return
        try:
            rows = self.executor.check(check.sql, named=self.values)
        except DatabaseError as exc:
            raise DatabaseError(
                f"{script.display}:{check.line}: {kind} query failed: {exc}",
                sqlstate=exc.sqlstate,
                path=script.display,
                line=check.line,
                statement=check.sql,
            ) from exc
        passed = check_passes(rows)
        if self.executor.dry_run:
            verdict = "passes now" if passed else "FAILS now"
            self.executor.comment(f"{kind} ({script.display}:{check.line}) {verdict}: {check.sql}")
            if not passed:
                raise CheckFailed(
                    f"{script.display}:{check.line}: require does not hold: {check.sql}"
                )
            return
        if not passed:
            got = rows[0][0] if rows and rows[0] else "no rows"
            raise CheckFailed(
                f"{script.display}:{check.line}: {kind} failed (got {got!r}): {check.sql}",
                hint="nothing was changed" if kind == "require" else "everything was undone",
            )

    # --- statements ------------------------------------------------------------------------

    def run_statement(self, script: Script, statement: Statement) -> int:
        """Execute one statement, naming script, line and statement on failure."""
        try:
            count = self.executor.execute(statement.sql, named=self.values)
        except DatabaseError as exc:
            where = f"{script.display}:{statement.line}"
            if self.dialect.is_lock_timeout(exc.sqlstate, exc.message):
                raise _LockTimeout(exc, where) from exc
            if self.dialect.is_statement_timeout(exc.sqlstate, exc.message):
                raise LockError(
                    f"{where}: statement {statement.index} ran longer than the statement "
                    f"timeout ({self.options.statement_timeout:g}s): {statement.excerpt(60)}",
                    hint="nothing of this run was kept; raise statement_timeout, or run it "
                    "when the database is quieter",
                ) from exc
            state = f" [{exc.sqlstate}]" if exc.sqlstate else ""
            raise DatabaseError(
                f"{where}: statement {statement.index} failed: {exc.message}{state}: "
                f"{statement.excerpt(70)}",
                sqlstate=exc.sqlstate,
                path=script.display,
                line=statement.line,
                statement=statement.sql,
            ) from exc
        self.stats.statements += 1
        if count > 0:
            self.stats.rows_affected += count
        return count

    def _run_body(self, unit: PreparedScript, statements: Sequence[Statement]) -> None:
        for statement in statements:
            self.run_statement(unit.script, statement)

    # --- transactions ----------------------------------------------------------------------

    def run_in_transaction(
        self,
        units: Sequence[PreparedScript],
        *,
        before_commit: Callable[[], None],
        on_unit_done: Callable[[PreparedScript], None] | None = None,
    ) -> RunStats:
        """Run every unit in one transaction, retrying the whole of it on lock timeouts.

        Per unit: its ``require`` checks, its statements, its ``verify`` checks. Then the
        dialect's integrity check and ``before_commit`` (history writes), then COMMIT.
        Any error rolls everything back and propagates; lock timeouts are retried
        ``lock_retries`` times with exponential backoff, then become LockError.
        """
        delay = self.options.backoff
        while True:
            self.stats.attempts += 1
            # Only the attempt that commits counts: a retried attempt was rolled back.
            self.stats.statements = 0
            self.stats.rows_affected = 0
            try:
                self._attempt(units, before_commit, on_unit_done)
            except _LockTimeout as timeout:
                self.executor.rollback()
                self._after_all(units, quietly=True)
                self.stats.lock_waits.append(timeout.where)
                if self.stats.attempts > self.options.lock_retries:
                    raise LockError(
                        f"{timeout.where}: could not get a lock within "
                        f"{self.options.lock_timeout:g}s, {self.stats.attempts} attempts: "
                        f"{timeout.error.message}",
                        hint="a long transaction holds a lock on that table; nothing was changed. "
                        "Retry later, or raise --lock-timeout",
                    ) from timeout.error
                wait = self.options.pause(delay)
                if self.on_retry is not None:
                    self.on_retry(timeout.where, self.stats.attempts, wait)
                self.sleep(wait)
                delay *= 2
            except BaseException:
                self.executor.rollback()
                self._after_all(units, quietly=True)
                raise
            else:
                self._after_all(units, quietly=False)
                return self.stats

    def _attempt(
        self,
        units: Sequence[PreparedScript],
        before_commit: Callable[[], None],
        on_unit_done: Callable[[PreparedScript], None] | None,
    ) -> None:
        self._begin(units)
        for unit in units:
            self.executor.comment(f"{unit.script.kind.value}: {unit.script.display}")
            for note in unit.notes(self.dialect):
                self.executor.comment(note)
            for check in unit.script.directives.require:
                self.evaluate(unit.script, check, "require")
            self._run_body(unit, unit.shape.inside)
            for check in unit.script.directives.verify:
                self.evaluate(unit.script, check, "verify")
            if on_unit_done is not None:
                on_unit_done(unit)
        if not self.executor.dry_run:
            self._check_integrity()
        before_commit()
        self.executor.commit()

    def _begin(self, units: Sequence[PreparedScript]) -> None:
        """What must run before the transaction, then BEGIN and the session's timeouts; a lock
        timeout at BEGIN raises :class:`_LockTimeout`, as one in a statement does."""
        opts = self.options
        for sql in self.dialect.before_begin_statements(lock_timeout=opts.lock_timeout):
            self.executor.execute(sql)
        for unit in units:
            for statement in unit.shape.before:
                self.run_statement(unit.script, statement)
        try:
            self.executor.begin()
        except DatabaseError as exc:
            if self.dialect.is_lock_timeout(exc.sqlstate, exc.message):
                where = units[0].script.display if units else "BEGIN"
                raise _LockTimeout(exc, f"{where}: BEGIN") from exc
            raise
        for sql in self.dialect.timeout_statements(
            lock_timeout=opts.lock_timeout, statement_timeout=opts.statement_timeout
        ):
            self.executor.execute(sql)

    def _check_integrity(self) -> None:
        """The dialect's end-of-transaction integrity check, before COMMIT."""
        problems = self.dialect.integrity_check(self.session)
        if problems:
            raise CheckFailed(
                f"integrity check failed before commit: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                hint="everything was undone",
            )

    def _after_all(self, units: Sequence[PreparedScript], *, quietly: bool) -> None:
        """Run what follows COMMIT (e.g. foreign keys back on) and restore session settings.

        ``quietly``: we are already propagating an error, which must not be masked by a
        second one from a connection that may be gone.
        """
        try:
            for unit in units:
                for statement in unit.shape.after:
                    self.executor.execute(statement.sql)
            if not self.executor.dry_run:
                self.dialect.after_script(self.session)
        except DatabaseError:
            if not quietly:
                raise

    def run_without_transaction(
        self,
        unit: PreparedScript,
        *,
        on_start: Callable[[], None] | None = None,
        on_statement: Callable[[Statement], None] | None = None,
        journal: StatementJournal | None = None,
        start_at: int = 1,
    ) -> RunStats:
        """Run a script statement by statement, each committing on its own: a ``transaction
        off`` script, or one holding statements the database commits implicitly (MySQL DDL).

        A failure leaves the statements before it applied; the DatabaseError says how many.
        With a ``journal``, each statement is recorded as it completes: a statement that
        commits on its own gets a ``running`` entry before and a ``done`` entry after it; any
        other runs in a transaction of its own together with its ``done`` entry. ``start_at``
        (a resumed run) skips the statements before it and the ``require`` checks, which held
        when the run started.
        """
        self.stats.attempts += 1
        why = self._why_statement_by_statement(unit)
        self.executor.comment(f"{unit.script.display}: {why}, each statement commits on its own")
        control = unit.control_note(self.dialect)
        if control:
            self.executor.comment(control)
        if start_at > 1:
            self.executor.comment(f"resuming at statement {start_at} of {len(unit.statements)}")
        else:
            for check in unit.script.directives.require:
                self.evaluate(unit.script, check, "require")
        setters, resetters = self.dialect.session_timeout_statements(
            lock_timeout=self.options.lock_timeout,
            statement_timeout=self.options.statement_timeout,
        )
        for sql in setters:
            self.executor.execute(sql)
        try:
            self._autocommit_body(unit, on_start, on_statement, journal, start_at)
        finally:
            for sql in resetters:
                if self.executor.dry_run:
                    self.executor.execute(sql)
                else:
                    # If the connection is gone, its settings went with it.
                    with contextlib.suppress(DatabaseError):
                        self.session.execute(sql)
        for check in unit.script.directives.verify:
            self.evaluate(unit.script, check, "verify")
        return self.stats

    def _why_statement_by_statement(self, unit: PreparedScript) -> str:
        return unit.journal_reason(self.dialect) or "transaction off"

    def _autocommit_body(
        self,
        unit: PreparedScript,
        on_start: Callable[[], None] | None,
        on_statement: Callable[[Statement], None] | None,
        journal: StatementJournal | None = None,
        start_at: int = 1,
    ) -> None:
        if on_start is not None:
            on_start()
        total = len(unit.statements)
        why = self._why_statement_by_statement(unit)
        done = start_at - 1
        for whole in unit.groups():
            group = tuple(s for s in whole if s.index >= start_at)
            if not group:
                continue
            self._failed = group[0]
            self._before = None
            try:
                if len(group) > 1 or not unit.commits_alone(group[0]):
                    self._transaction_group(unit, group, journal)
                elif journal is None:
                    self._before = self._failure_marker(unit, group)
                    self._autocommit_statement(unit, group[0])
                else:
                    self._before = self._failure_marker(unit, group)
                    journal.running(group[0])
                    self._autocommit_statement(unit, group[0])
                    journal.done(group[0])
            except _LockTimeout as timeout:
                error = LockError(
                    f"{timeout.where}: could not get a lock within {self.options.lock_timeout:g}s "
                    f"after {self.options.lock_retries + 1} attempts ({done} of {total} "
                    f"statements were applied and remain, {why})"
                )
                self._journal_failure(journal, self._failed, error.message)
                raise error from timeout.error
            except (DatabaseError, LockError) as exc:
                cause = exc.__cause__
                short = exc.message
                if isinstance(cause, DatabaseError):
                    short = cause.message + (f" [{cause.sqlstate}]" if cause.sqlstate else "")
                self._journal_failure(journal, self._failed, short)
                cleaned = self._clean_up_after(unit, group)
                exc.message = (
                    f"{exc.message} ({done} of {total} statements were applied and remain: {why})"
                    + (f"; {cleaned}" if cleaned else "")
                )
                exc.args = (exc.message,)
                raise
            for statement in group:
                done += 1
                if on_statement is not None:
                    on_statement(statement)

    def _remove_left(self, unit: PreparedScript, statement: Statement) -> None:
        """Remove what an attempt of ``statement`` that timed out left; the removal waits for
        locks too, and a lock timeout in it is one of the statement's (_LockTimeout)."""
        for sql in self.dialect.left_by_failure(self.session, statement, self._before):
            self.run_statement(unit.script, dataclasses.replace(statement, sql=sql))

    def _failure_marker(self, unit: PreparedScript, group: Sequence[Statement]) -> object:
        """What stands where the statement could leave something on failure (dialect's say)."""
        if self.executor.dry_run or len(group) != 1 or not unit.commits_alone(group[0]):
            return None
        return self.dialect.failure_marker(self.session, group[0])

    def _clean_up_after(self, unit: PreparedScript, group: Sequence[Statement]) -> str:
        """Remove what a failed statement that ran outside a transaction left behind (the
        dialect says what: an invalid index), so a resume can run it again; '' if nothing."""
        if self.executor.dry_run or len(group) != 1 or not unit.commits_alone(group[0]):
            return ""
        removed = []
        for sql in self.dialect.left_by_failure(self.session, group[0], self._before):
            try:
                self.session.execute(sql)
            except DatabaseError as exc:
                # the failure itself is what must be reported; say what is still left
                return f"what the failed statement left is still there ({sql} failed: {exc})"
            removed.append(sql)
        return (
            f"what the failed statement left was removed ({'; '.join(removed)})" if removed else ""
        )

    def _journal_failure(
        self, journal: StatementJournal | None, statement: Statement | None, message: str
    ) -> None:
        """Record that a statement failed (it took no effect); never masks the failure."""
        if journal is None or statement is None or self.executor.dry_run:
            return
        self.session.rollback()
        with contextlib.suppress(DatabaseError):
            journal.failed(statement, message)

    def _transaction_group(
        self,
        unit: PreparedScript,
        group: Sequence[Statement],
        journal: StatementJournal | None,
    ) -> None:
        """Statements that commit together (one statement, or a block of the script's own),
        with their journal entries; retried on lock timeouts (they leave nothing)."""
        delay = self.options.backoff
        for attempt in range(1, self.options.lock_retries + 2):
            try:
                # The statements and their journal entries commit together: the entries are exact.
                self.executor.begin()
                for statement in group:
                    self._failed = statement
                    self.run_statement(unit.script, statement)
                    if journal is not None:
                        journal.done(statement)
                self.executor.commit()
                return
            except _LockTimeout as timeout:
                self.executor.rollback()
                if attempt > self.options.lock_retries:
                    raise
                wait = self.options.pause(delay)
                if self.on_retry is not None:
                    self.on_retry(timeout.where, attempt, wait)
                self.sleep(wait)
                delay *= 2
            except BaseException:
                self.executor.rollback()
                raise

    def _autocommit_statement(self, unit: PreparedScript, statement: Statement) -> None:
        """One committed-on-its-own statement, retried after a lock timeout. A lock timeout
        can leave something behind (CREATE INDEX CONCURRENTLY times out waiting for writers
        after its invalid index is in the catalog): it is removed before the next attempt."""
        delay = self.options.backoff
        left = False  # the last attempt timed out: what it left is removed before the next
        for attempt in range(1, self.options.lock_retries + 2):
            try:
                if left:
                    self._remove_left(unit, statement)
                    left = False
                self.run_statement(unit.script, statement)
                return
            except _LockTimeout as timeout:
                left = not self.executor.dry_run
                if attempt > self.options.lock_retries:
                    with contextlib.suppress(_LockTimeout):
                        self._remove_left(unit, statement)
                    raise
                wait = self.options.pause(delay)
                if self.on_retry is not None:
                    self.on_retry(timeout.where, attempt, wait)
                self.sleep(wait)
                delay *= 2
