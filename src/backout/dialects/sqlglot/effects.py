"""The walk of sqlglot's parse tree → :mod:`backout.model.effects` that SQLite and MySQL share.

This module imports sqlglot when it is imported. Only :mod:`backout.dialects.sqlite.effects` and
:mod:`backout.dialects.mysql.effects` import it; reach them through
:func:`backout.model.effects.analyze`.

:class:`SqlglotAnalyzer` holds what the two dialects do alike: silencing sqlglot's "falling back to
Command" warning, parsing and routing a statement, the handlers for ``CREATE TABLE/INDEX/VIEW``,
``DROP``, ``ALTER TABLE``, ``DELETE``, ``UPDATE`` and ``INSERT``, foreign keys, and the tables a
statement reads. A dialect subclasses it and supplies:

- class attributes for what differs only in value: sqlglot's dialect name, identifier quotes, the
  default schema (folded away), the default foreign-key action, the objects ``DROP`` and
  ``ALTER TABLE ... DROP`` know, how CTE names compare;
- :meth:`SqlglotAnalyzer.run`: what it reads before sqlglot (statements sqlglot mis-parses or turns
  into commands, read with regular expressions), ending in :meth:`SqlglotAnalyzer.dispatch_sql`;
- the hooks where the dialects' trees and conventions differ: ``create_index``, ``fk_name``,
  ``insert_notes``, and the ``*_other`` / ``table_element`` / ``skip_read`` extension points.

sqlglot accepts invalid SQL and falls back to ``exp.Command`` for what it does not know, so only the
tree types handled here or in a subclass are trusted: any other tree, and every ``exp.Command``, is
an :class:`~backout.model.effects.Unknown` ("needs review"), never passed. Every name compares
case-insensitively (:attr:`~backout.model.effects.ObjectRef.case_insensitive`).
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from backout.model.effects import (
    Action,
    Effect,
    ObjectKind,
    ObjectRef,
    ScriptEffects,
    ServerEffect,
    Unknown,
)
from backout.model.script import Statement

K = ObjectKind

_COMMAND_WARNING = "Falling back to parsing as a 'Command'"
#: parsed statements with no effect on schema or data
_PASSIVE = (
    exp.Select,
    exp.Union,
    exp.Values,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Analyze,
)
#: an index or key declared inside CREATE TABLE: its name, detail and columns
DeclaredIndex = tuple[ObjectRef, str, list[str]]
#: a foreign key declared inside CREATE TABLE: its name (if given), columns and REFERENCES
_DeclaredForeignKey = tuple[str | None, list[str], exp.Reference]


class _DropCommandWarning(logging.Filter):
    """Drops sqlglot's "falling back to Command" warning: we report those as Unknown."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _COMMAND_WARNING not in record.getMessage()


@contextmanager
def quiet_sqlglot() -> Iterator[None]:
    """sqlglot's "falling back to Command" warning silenced while parsing."""
    logger = logging.getLogger("sqlglot")
    quiet = _DropCommandWarning()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def unschema(node: Any) -> Any:
    """The table of ``name (columns)``."""
    return node.this if isinstance(node, exp.Schema) else node


def _create_table_notes(tree: exp.Create) -> list[str]:
    """What CREATE TABLE's properties say about the table: TEMPORARY, VIRTUAL USING module."""
    notes: list[str] = []
    properties = tree.args.get("properties")
    for prop in properties.expressions if isinstance(properties, exp.Properties) else ():
        if isinstance(prop, exp.TemporaryProperty):
            notes.append("TEMPORARY")
        elif isinstance(prop, exp.ModuleProperty):
            notes.append(f"VIRTUAL USING {prop.name}")
    return notes


def _declared_foreign_keys(element: Any) -> list[_DeclaredForeignKey]:
    """The foreign keys a column definition or a table constraint of CREATE TABLE declares."""
    if isinstance(element, exp.ColumnDef):
        return [
            (None, [element.name], constraint.args["kind"])
            for constraint in element.args.get("constraints") or ()
            if isinstance(constraint.args.get("kind"), exp.Reference)
        ]
    name = element.name if isinstance(element, exp.Constraint) else None
    keys = element.expressions if isinstance(element, exp.Constraint) else [element]
    return [
        (name, [e.name for e in key.expressions], key.args["reference"])
        for key in keys
        if isinstance(key, exp.ForeignKey) and isinstance(key.args.get("reference"), exp.Reference)
    ]


class SqlglotAnalyzer(ABC):
    """Walks statements parsed by sqlglot, recording effects and unknowns (a subclass a dialect)."""

    #: sqlglot's name for the dialect: what it parses, and how details are written back
    dialect: ClassVar[str]
    #: strips what may precede a statement's first keyword (whitespace, comments)
    leading_noise: ClassVar[re.Pattern[str]]
    #: characters that open a quoted identifier; the first is the one :meth:`quoted` writes
    quotes: ClassVar[str]
    #: the schema an unqualified name is in (compared case-insensitively): stored as no schema
    default_schema: ClassVar[str | None] = None
    #: a foreign key's ON DELETE / ON UPDATE action when it names none
    default_fk_action: ClassVar[str]
    #: ``DROP <kind>`` → what it drops
    drop_kinds: ClassVar[Mapping[str, ObjectKind]]
    #: ``ALTER TABLE ... DROP <kind>`` → what it drops (dropping a column loses its data)
    alter_drop_kinds: ClassVar[Mapping[str, ObjectKind]] = {"COLUMN": K.COLUMN}
    #: ``UPDATE t SET (a, b) = (...)`` is valid in the dialect
    tuple_assignments: ClassVar[bool] = False
    #: a CTE named ``x`` hides a table ``X`` too
    cte_names_fold_case: ClassVar[bool] = False
    #: lower-case names of functions that act outside the database → what they do there
    server_functions: ClassVar[Mapping[str, str]] = {}

    def __init__(self) -> None:
        self.effects: list[Effect] = []
        self.unknown: list[Unknown] = []
        self.server: list[ServerEffect] = []
        self.statement = Statement(sql="", line=0, index=0)

    def analyze(self, statements: Sequence[Statement]) -> ScriptEffects:
        """Analyse statements in order, with sqlglot's fallback warnings silenced."""
        with quiet_sqlglot():
            for statement in statements:
                self.statement = statement
                sql = self.leading_noise.sub("", statement.sql, count=1)
                self.run(sql.strip().rstrip(";").strip())
        return ScriptEffects(
            tuple(self.effects),
            tuple(self.unknown),
            tuple(statements),
            server=tuple(self.server),
        )

    @abstractmethod
    def run(self, sql: str) -> None:
        """Analyse the current statement: its SQL from the first keyword, without a final ``;``."""

    def emit(self, action: Action, target: ObjectRef, **fields: Any) -> None:
        """Record an effect of the current statement."""
        self.effects.append(
            Effect(action=action, target=target, statement=self.statement, **fields)
        )

    def flag(self, reason: str) -> None:
        """Record that the current statement needs review."""
        self.unknown.append(Unknown(self.statement, reason))

    def outside(self, what: str) -> None:
        """Record that the current statement acts outside the database."""
        found = ServerEffect(self.statement, what)
        if found not in self.server:
            self.server.append(found)

    def server_calls(self, tree: exp.Expr) -> None:
        """Calls in ``tree`` of functions that act outside the database."""
        for node in tree.walk():
            if isinstance(node, exp.Func):
                name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
                if name in self.server_functions:
                    self.outside(f"{self.server_functions[name]} ({name}())")

    # --- names --------------------------------------------------------------------------------

    def unquote(self, name: str | None) -> str | None:
        """An identifier as written (matched by a regular expression), without its quotes."""
        if name is None or len(name) < 2:
            return name
        if name[0] == name[-1] and name[0] in self.quotes and name[0] != "[":
            return name[1:-1].replace(name[0] * 2, name[0])
        if name[0] == "[" and name[-1] == "]" and "[" in self.quotes:
            return name[1:-1]
        return name

    def quoted(self, names: Sequence[str]) -> str:
        """Names quoted for display, comma-separated."""
        quote = self.quotes[0]
        return ", ".join(quote + n.replace(quote, quote * 2) + quote for n in names)

    def ref(
        self, kind: ObjectKind, schema: str | None, name: str, parent: str | None = None
    ) -> ObjectRef:
        """A named object; the default schema, like none, is stored as None."""
        default = self.default_schema
        if not schema or (default is not None and schema.casefold() == default):
            schema = None
        return ObjectRef(kind, schema, name, parent, case_insensitive=True)

    def table(self, node: exp.Table) -> ObjectRef:
        """The table a sqlglot ``Table`` node names."""
        return self.ref(K.TABLE, node.db or None, node.name)

    @abstractmethod
    def fk_name(
        self, table: ObjectRef, name: str | None, columns: list[str], number: int | None
    ) -> str:
        """A foreign key's name: its own, or the one the database gives it (``number``: its
        position among ``table``'s unnamed ones in CREATE TABLE, None when not known)."""

    def fk_action(self, options: Sequence[Any], event: str) -> str:
        """A REFERENCES clause's ``ON <event>`` action, or the dialect's default."""
        for option in options:
            text = " ".join(str(option).upper().split())
            if text.startswith(f"ON {event} "):
                return text.removeprefix(f"ON {event} ")
        return self.default_fk_action

    # --- routing ------------------------------------------------------------------------------

    def dispatch_sql(self, sql: str) -> None:
        """Parse ``sql`` with sqlglot and route its tree; what it cannot parse needs review."""
        try:
            tree = sqlglot.parse_one(sql, read=self.dialect)
        except (ParseError, TokenError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.flag(f"sqlglot cannot parse it: {first}")
            return
        self.server_calls(tree)
        self.dispatch(tree)

    def dispatch(self, tree: exp.Expr) -> None:
        """Route a parsed statement to its handler; anything unexpected needs review."""
        if isinstance(tree, exp.Command):
            self.flag("sqlglot could not parse it (fell back to a raw command)")
        elif isinstance(tree, exp.Create):
            self.create(tree)
        elif isinstance(tree, exp.Drop):
            self.drop(tree)
        elif isinstance(tree, exp.Alter):
            self.alter(tree)
        elif isinstance(tree, exp.Delete):
            self.delete(tree)
        elif isinstance(tree, exp.Update):
            self.update(tree)
        elif isinstance(tree, exp.Insert):
            self.insert(tree)
        elif isinstance(tree, _PASSIVE):
            return
        else:
            self.dispatch_other(tree)

    def dispatch_other(self, tree: exp.Expr) -> None:
        """A statement type the shared handlers do not know: a dialect may handle it."""
        self.flag(f"{tree.key.upper()} statement is not analysed")

    # --- CREATE -------------------------------------------------------------------------------

    def create(self, tree: exp.Create) -> None:
        kind = str(tree.args.get("kind") or "").upper()
        guarded = bool(tree.args.get("exists"))
        if kind == "TABLE":
            self.create_table(tree, guarded)
        elif kind == "INDEX":
            index = tree.this
            if not isinstance(index, exp.Index) or not isinstance(
                index.args.get("table"), exp.Table
            ):
                self.flag("CREATE INDEX not understood")
                return
            self.create_index(tree, index, self.table(index.args["table"]), guarded)
        elif kind == "VIEW" and isinstance(view := unschema(tree.this), exp.Table):
            self.emit(
                Action.CREATE,
                self.ref(K.VIEW, view.db or None, view.name),
                references=self.reads(tree.args.get("expression")),
                if_exists=guarded,
                detail="OR REPLACE" if tree.args.get("replace") else "",
            )
        else:
            self.create_other(kind, tree, guarded)

    @abstractmethod
    def create_index(
        self, tree: exp.Create, index: exp.Index, table: ObjectRef, guarded: bool
    ) -> None:
        """``CREATE INDEX index ON table``."""

    def create_other(self, kind: str, tree: exp.Create, guarded: bool) -> None:
        """``CREATE <kind>`` the shared handlers do not know: a dialect may handle it."""
        self.flag(f"CREATE {kind or '?'} is not analysed")

    def create_table(self, tree: exp.Create, guarded: bool) -> None:
        schema = tree.this
        node = unschema(schema)
        if not isinstance(node, exp.Table):
            self.flag("CREATE TABLE not understood")
            return
        table = self.table(node)
        columns: list[str] = []
        foreign_keys: list[_DeclaredForeignKey] = []
        indexes: list[DeclaredIndex] = []
        notes = _create_table_notes(tree)
        for element in schema.expressions if isinstance(schema, exp.Schema) else ():
            if isinstance(element, exp.ColumnDef):
                columns.append(element.name)
                foreign_keys.extend(_declared_foreign_keys(element))
            elif isinstance(element, exp.Constraint | exp.ForeignKey):
                foreign_keys.extend(_declared_foreign_keys(element))
            else:
                self.table_element(table, element, columns, indexes)
        query = tree.args.get("expression")
        if query is not None:
            notes.append("AS query")
        references = list(self.reads(query)) if query is not None else []
        resolved = [(name, cols, ref, self.reference(ref)) for name, cols, ref in foreign_keys]
        references.extend(pair[0] for _name, _cols, _ref_node, pair in resolved)
        self.emit(
            Action.CREATE,
            table,
            table=table,
            detail=", ".join(notes),
            columns=tuple(columns),
            references=tuple(dict.fromkeys(references)),
            if_exists=guarded,
        )
        for target, detail, cols in indexes:
            self.emit(Action.CREATE, target, table=table, detail=detail, columns=tuple(cols))
        for number, (name, cols, reference, (target, target_cols)) in enumerate(resolved, 1):
            fk_name = self.fk_name(table, name, cols, number)
            self.foreign_key(table, fk_name, cols, reference, target, target_cols)

    def table_element(  # noqa: B027 - an optional hook: passing over is the default
        self, table: ObjectRef, element: Any, columns: list[str], indexes: list[DeclaredIndex]
    ) -> None:
        """A CREATE TABLE element other than a column definition or a foreign key: a dialect
        may add to ``columns`` or ``indexes``; by default it is passed over."""

    def reference(self, reference: exp.Reference) -> tuple[ObjectRef, list[str]]:
        """A REFERENCES clause's table and columns."""
        node = reference.this
        if isinstance(node, exp.Schema) and isinstance(node.this, exp.Table):
            return self.table(node.this), [e.name for e in node.expressions]
        if isinstance(node, exp.Table):
            return self.table(node), []
        return self.ref(K.TABLE, None, node.name if node is not None else ""), []

    def foreign_key(
        self,
        table: ObjectRef,
        name: str,
        columns: list[str],
        reference: exp.Reference,
        target: ObjectRef,
        target_columns: list[str],
    ) -> None:
        """A foreign key declared on ``table``."""
        options = reference.args.get("options") or []
        on_delete = self.fk_action(options, "DELETE")
        detail = f"({self.quoted(columns)}) → {target.qualified_name}"
        if target_columns:
            detail += f"({self.quoted(target_columns)})"
        detail += f" ON DELETE {on_delete}"
        on_update = self.fk_action(options, "UPDATE")
        if on_update != self.default_fk_action:
            detail += f" ON UPDATE {on_update}"
        self.emit(
            Action.CREATE,
            self.ref(K.FOREIGN_KEY, table.schema, name, table.name),
            table=table,
            detail=detail,
            references=(target,),
            on_delete=on_delete,
        )

    # --- DROP and ALTER -----------------------------------------------------------------------

    def drop(self, tree: exp.Drop) -> None:
        kind_name = str(tree.args.get("kind") or "").upper()
        kind = self.drop_kinds.get(kind_name)
        if kind is None:
            self.flag(f"DROP {kind_name or '?'} is not analysed")
            return
        if kind is K.TABLE and tree.args.get("temporary"):
            return  # a temporary table lives for the session only
        table_ref: ObjectRef | None = None
        if kind is K.INDEX:
            on = tree.args.get("cluster")  # DROP INDEX i ON t: sqlglot keeps t as OnProperty
            on = on.this if isinstance(on, exp.OnProperty) else on
            if isinstance(on, exp.Table):
                table_ref = self.table(on)
        for node in tree.args.get("tables") or ():
            if not isinstance(node, exp.Table):
                self.flag(f"DROP {kind_name} not understood")
                continue
            if kind is K.INDEX:
                parent = table_ref.name if table_ref else None
                target = self.ref(K.INDEX, node.db or None, node.name, parent)
                self.emit(
                    Action.DROP, target, table=table_ref, if_exists=bool(tree.args.get("exists"))
                )
                continue
            target = self.ref(kind, node.db or None, node.name)
            self.emit(
                Action.DROP,
                target,
                table=target if kind is K.TABLE else None,
                if_exists=bool(tree.args.get("exists")),
                cascade=bool(tree.args.get("cascade")),
                destructive=kind is K.TABLE,
            )

    def alter(self, tree: exp.Alter) -> None:
        node = tree.this
        if str(tree.args.get("kind") or "").upper() != "TABLE" or not isinstance(node, exp.Table):
            self.flag("ALTER of this kind is not analysed")
            return
        table = self.table(node)
        for action in tree.args.get("actions") or ():
            self.alter_action(table, action)

    def alter_action(self, table: ObjectRef, action: Any) -> None:
        """One action of ``ALTER TABLE table``."""
        drop_kind = (
            self.alter_drop_kinds.get(str(action.args.get("kind") or "").upper())
            if isinstance(action, exp.Drop)
            else None
        )
        if isinstance(action, exp.ColumnDef):
            self.add_column(table, action)
        elif drop_kind is not None:
            for item in action.args.get("tables") or ():
                self.emit(
                    Action.DROP,
                    self.ref(drop_kind, table.schema, item.name, table.name),
                    table=table,
                    if_exists=bool(action.args.get("exists")),
                    destructive=drop_kind is K.COLUMN,
                )
        elif isinstance(action, exp.RenameColumn):
            old = action.this.name
            new = action.args["to"].name
            self.emit(
                Action.RENAME,
                self.ref(K.COLUMN, table.schema, old, table.name),
                table=table,
                detail=f'rename to "{new}"',
                renamed_to=self.ref(K.COLUMN, table.schema, new, table.name),
            )
        elif isinstance(action, exp.AlterRename) and isinstance(action.this, exp.Table):
            new_table = self.ref(K.TABLE, action.this.db or table.schema, action.this.name)
            self.emit(
                Action.RENAME,
                table,
                table=table,
                detail=f'rename to "{new_table.name}"',
                renamed_to=new_table,
            )
        elif isinstance(action, exp.Command):
            self.flag("sqlglot could not parse the ALTER TABLE action")
        else:
            self.alter_other(table, action)

    def alter_other(self, table: ObjectRef, action: Any) -> None:
        """An ALTER TABLE action the shared handlers do not know: a dialect may handle it."""
        self.flag(f"ALTER TABLE {action.key.upper()} is not analysed")

    def add_column(self, table: ObjectRef, action: exp.ColumnDef) -> None:
        """``ALTER TABLE table ADD COLUMN``, with its inline foreign keys."""
        kind = action.args.get("kind")
        spec = [kind.sql(dialect=self.dialect)] if kind else []
        references: list[exp.Reference] = []
        for constraint in action.args.get("constraints") or ():
            inner = constraint.args.get("kind")
            if isinstance(inner, exp.Reference):
                references.append(inner)
            else:
                spec.append(constraint.sql(dialect=self.dialect))
        self.emit(
            Action.CREATE,
            self.ref(K.COLUMN, table.schema, action.name, table.name),
            table=table,
            detail=" ".join(["ADD COLUMN", *spec]),
        )
        for reference in references:
            target, target_cols = self.reference(reference)
            fk_name = self.fk_name(table, None, [action.name], None)
            self.foreign_key(table, fk_name, [action.name], reference, target, target_cols)

    # --- DML ----------------------------------------------------------------------------------

    def delete(self, tree: exp.Delete) -> None:
        target = tree.this
        named = tree.args.get("tables") or []
        if named:
            # DELETE t FROM t JOIN u ...: the rows of the named tables go
            target = named[0]
        if not isinstance(target, exp.Table):
            self.flag("DELETE target not understood")
            return
        if len(named) > 1:
            self.flag("multi-table DELETE: only its first table is analysed")
        table = self.table(target)
        joined = isinstance(tree.this, exp.Table) and bool(tree.this.args.get("joins"))
        self.emit(
            Action.DELETE,
            table,
            table=table,
            has_where=tree.args.get("where") is not None or joined,
            references=self.reads(tree, skip=target),
            destructive=True,
        )

    def update(self, tree: exp.Update) -> None:
        target = tree.this
        if not isinstance(target, exp.Table):
            self.flag("UPDATE target not understood")
            return
        table = self.table(target)
        columns: list[str] = []
        for assignment in tree.expressions:
            left = assignment.this if isinstance(assignment, exp.EQ) else None
            if isinstance(left, exp.Column):
                columns.append(left.name)
            elif isinstance(left, exp.Tuple) and self.tuple_assignments:
                columns.extend(c.name for c in left.expressions if isinstance(c, exp.Column))
            else:
                self.flag("UPDATE assignment not understood")
        self.emit(
            Action.UPDATE,
            table,
            table=table,
            detail=self.update_detail(),
            # an (inner) JOIN ... ON restricts the rows a multi-table UPDATE changes
            has_where=tree.args.get("where") is not None or bool(target.args.get("joins")),
            columns=tuple(dict.fromkeys(columns)),
            references=self.reads(tree, skip=target),
            destructive=True,
        )

    def update_detail(self) -> str:
        """What to say about the current UPDATE beyond its columns."""
        return ""

    def insert(self, tree: exp.Insert) -> None:
        node = tree.this
        columns: list[str] = []
        if isinstance(node, exp.Schema):
            columns = [e.name for e in node.expressions]
            node = node.this
        if not isinstance(node, exp.Table):
            self.flag("INSERT target not understood")
            return
        table = self.table(node)
        notes, destructive = self.insert_notes(tree)
        self.emit(
            Action.INSERT,
            table,
            table=table,
            detail=" ".join(notes),
            columns=tuple(columns),
            references=self.reads(tree, skip=node),
            destructive=destructive,
        )

    @abstractmethod
    def insert_notes(self, tree: exp.Insert) -> tuple[list[str], bool]:
        """An INSERT's conflict handling, in words, and whether it can overwrite rows."""

    def reads(
        self, tree: exp.Expression | None, skip: exp.Table | None = None
    ) -> tuple[ObjectRef, ...]:
        """Tables a statement reads: every table but its target and the names of its CTEs."""
        if tree is None:
            return ()

        def key(name: str) -> str:
            return name.casefold() if self.cte_names_fold_case else name

        ctes = {key(cte.alias_or_name) for cte in tree.find_all(exp.CTE, bfs=False)}
        found: dict[ObjectRef, None] = {}
        for node in tree.find_all(exp.Table, bfs=False):
            if node is skip or not isinstance(node.this, exp.Identifier):
                continue
            if not node.db and key(node.name) in ctes:
                continue
            if self.skip_read(node, skip):
                continue
            found.setdefault(self.table(node), None)
        return tuple(found)

    def skip_read(self, node: exp.Table, skip: exp.Table | None) -> bool:
        """Whether a table node in a statement is not a table it reads (beyond its target node
        ``skip`` and CTE names)."""
        return False
