"""How a script's statements map onto transactions: atomic where possible, journaled where not.

Real migrations ship with their own transaction control (Prisma wraps every enum rebuild in
``BEGIN; … COMMIT;``) and with statements no transaction block may hold (``CREATE INDEX
CONCURRENTLY``). ``psql -f`` applies them as they are, and so does backout, without an edit to the
file (its checksum is history):

* the script's own ``BEGIN``/``COMMIT`` are the boundaries of the blocks its author wants atomic.
  They are never sent: when the whole script can be one transaction, backout's transaction holds
  the blocks; when it cannot, each block runs as one journaled transaction of its own;
* the script runs **journaled** (statement by statement, each recorded in the statement journal
  as it commits, exactly like ``-- backout:transaction off``) when it says ``transaction off``,
  holds a statement that cannot run in a transaction block (the dialect's
  ``transaction_conflict``), or holds two statements that cannot share a transaction (the
  dialect's ``commit_needed``: PostgreSQL's new enum value used too early, 55P04);
* what cannot be honoured is refused up front with file and line, before anything runs: a
  ``ROLLBACK`` (it discards the script's own work), a ``BEGIN`` inside an open block, a
  ``COMMIT`` with no ``BEGIN``, a ``BEGIN`` never committed, a non-transactional statement
  inside the script's own block (the database refuses it there too), a ``SAVEPOINT`` outside
  any transaction of a journaled script, and the dialect's exotic forms (two-phase commit,
  ``BEGIN`` with options).

The classification of each statement is a dialect capability (:mod:`backout.dialects`); this
module only applies the rules above.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from backout.dialects.base import CommitNeeded, Dialect, TxControl
from backout.model.errors import ProjectError
from backout.model.script import Script, Statement


@dataclass(frozen=True)
class TransactionLayout:
    """A script's statements as they will run (see the module docstring)."""

    #: the statements that run, without the script's own BEGIN/COMMIT, numbered 1..n
    statements: tuple[Statement, ...]
    #: the script's own BEGIN/COMMIT (numbered as in the file): never sent
    control: tuple[Statement, ...] = ()
    #: each block of the script's own, as (first, last) index of :attr:`statements`
    blocks: tuple[tuple[int, int], ...] = ()
    #: statements that cannot run inside a transaction block (each commits on its own)
    alone: frozenset[int] = frozenset()
    #: why the script cannot be one transaction (empty: it can), first reason first
    journal_reasons: tuple[str, ...] = ()

    @property
    def atomic(self) -> bool:
        """The whole script can run in one transaction."""
        return not self.journal_reasons

    def groups(self) -> list[tuple[Statement, ...]]:
        """The statements in run order, each block of the script's own as one group."""
        starts = {first: last for first, last in self.blocks}
        groups: list[tuple[Statement, ...]] = []
        index = 1
        while index <= len(self.statements):
            last = starts.get(index, index)
            groups.append(self.statements[index - 1 : last])
            index = last + 1
        return groups

    def in_block(self, index: int) -> bool:
        """True when statement ``index`` sits inside one of the script's own blocks."""
        return any(first <= index <= last for first, last in self.blocks)

    def control_note(
        self, display: str, implicit: str = "", *, atomic: bool | None = None
    ) -> str | None:
        """What is done with the script's own BEGIN/COMMIT, for dry runs, plans and status.
        ``implicit``: why the database commits inside the script's blocks on its own (MySQL's
        DDL), '' when it does not; such a block cannot be atomic, and the note says so.
        ``atomic``: whether the script runs in one transaction (default: :attr:`atomic`)."""
        if not self.control:
            return None
        lines = ", ".join(f"{s.excerpt(12).rstrip(';')} (line {s.line})" for s in self.control)
        if implicit:
            return (
                f"{display}: its own {lines} are not sent; {implicit}, so a block holding such a "
                "statement is not atomic (each of its statements commits on its own, journaled), "
                "and any other block runs as one journaled transaction"
            )
        if self.atomic if atomic is None else atomic:
            return (
                f"{display}: its own {lines} are not sent: the whole script runs atomically in "
                "backout's transaction, which holds its block(s)"
            )
        return (
            f"{display}: its own {lines} are not sent: each of its blocks runs as one "
            "journaled transaction"
        )


class UnhonourableTransaction(ProjectError):
    """A script's transaction control (or a statement's place in it) that cannot be honoured."""

    def __init__(
        self,
        script: Script,
        statement: Statement,
        reason: str,
        *,
        placement: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            f"{reason}: {statement.excerpt(60)}",
            path=script.display,
            line=statement.line,
            hint=hint
            or "backout runs scripts as shipped only when their transactions can be honoured; "
            "nothing was changed",
        )
        self.statement = statement
        self.reason = reason
        #: True: a statement that cannot run in the transaction block the script puts it in;
        #: False: transaction control itself (ROLLBACK, unbalanced BEGIN/COMMIT, …)
        self.placement = placement


def _refuse(
    script: Script,
    statement: Statement,
    message: str,
    hint: str | None = None,
    *,
    placement: bool = False,
) -> None:
    raise UnhonourableTransaction(script, statement, message, placement=placement, hint=hint)


def lay_out(dialect: Dialect, script: Script, statements: Sequence[Statement]) -> TransactionLayout:
    """The transaction layout of ``script``'s split ``statements``; ProjectError (file and line)
    for transaction control that cannot be honoured (see the module docstring)."""
    run: list[Statement] = []
    control: list[Statement] = []
    blocks: list[tuple[int, int]] = []
    nested_outside: list[Statement] = []
    opened: Statement | None = None
    opened_verb = ""
    for statement in statements:
        verb = dialect.transaction_control(statement)
        if verb is None or verb.kind is TxControl.NESTED:
            run.append(dataclasses.replace(statement, index=len(run) + 1))
            if verb is not None and opened is None:
                nested_outside.append(statement)
            continue
        if verb.kind is TxControl.BEGIN:
            if opened is not None:
                _refuse(
                    script,
                    statement,
                    f"{verb.verb} inside the transaction opened at line {opened.line} "
                    "(transactions do not nest)",
                )
            opened, opened_verb = statement, verb.verb
            control.append(statement)
            blocks.append((len(run) + 1, 0))
        elif verb.kind is TxControl.COMMIT:
            if opened is None:
                _refuse(script, statement, f"{verb.verb} without a BEGIN before it")
            opened = None
            control.append(statement)
            first, _ = blocks.pop()
            if len(run) >= first:
                blocks.append((first, len(run)))
        elif verb.kind is TxControl.ROLLBACK:
            _refuse(
                script,
                statement,
                f"{verb.verb} discards the script's own work: backout cannot honour it",
                "a migration that undoes itself is not a migration: remove the ROLLBACK (or "
                "use SAVEPOINT / ROLLBACK TO inside the block); nothing was changed",
            )
        else:
            _refuse(script, statement, verb.reason or f"{verb.verb} cannot be honoured")
    if opened is not None:
        _refuse(script, opened, f"{opened_verb} is never committed (no COMMIT after it)")
    layout = TransactionLayout(statements=tuple(run), control=tuple(control), blocks=tuple(blocks))
    return _journal_reasons(dialect, script, layout, nested_outside)


def same_block_pairs(dialect: Dialect, layout: TransactionLayout) -> list[CommitNeeded]:
    """Statements that cannot share a transaction but sit in one block of the script's own:
    the database refuses them there (under ``psql`` too), so no layout can run them."""
    return [
        pair
        for pair in dialect.commit_needed(layout.statements)
        if any(
            first <= pair.earlier.index and pair.later.index <= last
            for first, last in layout.blocks
        )
    ]


def _journal_reasons(
    dialect: Dialect,
    script: Script,
    layout: TransactionLayout,
    nested_outside: Sequence[Statement],
) -> TransactionLayout:
    """Why the script cannot be one transaction; refuses what a journal cannot run either."""
    reasons: list[str] = []
    if not script.directives.transaction:
        reasons.append("transaction off")
    alone = set()
    for statement in layout.statements:
        reason = dialect.transaction_conflict(statement)
        if reason is None:
            continue
        if layout.in_block(statement.index):
            _refuse(
                script,
                statement,
                f"{reason}, and the script's own BEGIN puts it in one",
                "the database refuses it there too: move it out of the BEGIN … COMMIT block; "
                "nothing was changed",
                placement=True,
            )
        alone.add(statement.index)
        reasons.append(f"{reason} (line {statement.line})")
    in_one_block = same_block_pairs(dialect, layout)
    for pair in dialect.commit_needed([*layout.statements, *_checks_after(script, layout)]):
        if pair not in in_one_block:  # in one block it fails under psql too: the database says so
            reasons.append(pair.reason)
    if reasons and nested_outside:
        _refuse(
            script,
            nested_outside[0],
            f"this needs an open transaction, but the script runs journaled ({reasons[0]}), "
            "each statement committing on its own",
            "put it inside a BEGIN … COMMIT block of the script; nothing was changed",
        )
    return dataclasses.replace(layout, alone=frozenset(alone), journal_reasons=tuple(reasons))


def _checks_after(script: Script, layout: TransactionLayout) -> list[Statement]:
    """The script's ``verify`` checks, as statements run after its last one (numbered on): in
    one transaction with the script they must not use what needs a commit first (55P04)."""
    after = len(layout.statements)
    return [
        Statement(sql=check.sql, line=check.line, index=after + number)
        for number, check in enumerate(script.directives.verify, start=1)
    ]
