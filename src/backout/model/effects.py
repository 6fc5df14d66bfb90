"""Static effects of a SQL script: what each statement does to the schema and to the data.

One engine serves scoped backups (which tables a rollback touches), impact and risk analysis,
``lint`` (drops, data-destroying statements, ``DELETE``/``UPDATE`` without ``WHERE``, foreign
keys) and ``generate``. It never touches a database: each dialect parses its own SQL
(:meth:`backout.dialects.base.Dialect.analyze`; ``dialects/postgres/effects.py`` with pglast,
``dialects/sqlite/effects.py`` and ``dialects/mysql/effects.py`` with sqlglot, sharing
``dialects/sqlglot/effects.py``) into the dialect-neutral model defined here.

The analysis is conservative. A statement the parser cannot understand, or whose effect is only
known at run time (a dynamic ``EXECUTE``, a call to a function defined elsewhere), becomes an
:class:`Unknown` that callers must report as "needs review": it is never silently passed.

Names are kept the way the database resolves them: PostgreSQL's parser has already folded
unquoted identifiers to lower case (quoted ones keep their case), and SQLite's identifiers keep
their spelling but compare case-insensitively (:attr:`ObjectRef.case_insensitive`). An
unqualified name has ``schema`` None: which schema it lands in depends on the connection's
``search_path``, which a static analysis does not know (:meth:`ObjectRef.in_schema` fills it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from backout.model.identifiers import qualified_name, quote_identifier

if TYPE_CHECKING:
    from backout.model.schema import SchemaSnapshot
    from backout.model.script import Statement


class ObjectKind(enum.StrEnum):
    """What sort of database object an :class:`ObjectRef` names."""

    TABLE = "table"
    COLUMN = "column"
    INDEX = "index"
    CONSTRAINT = "constraint"
    FOREIGN_KEY = "foreign_key"
    ENUM = "enum"
    ENUM_VALUE = "enum_value"
    TYPE = "type"
    SEQUENCE = "sequence"
    VIEW = "view"
    MATERIALIZED_VIEW = "materialized_view"
    FUNCTION = "function"
    PROCEDURE = "procedure"
    TRIGGER = "trigger"
    SCHEMA = "schema"
    EXTENSION = "extension"
    #: a run-time setting (PostgreSQL ``SET``, SQLite ``PRAGMA``), not a stored object
    SETTING = "setting"

    @property
    def label(self) -> str:
        """The kind as words: ``foreign key``, ``materialized view``."""
        return self.value.replace("_", " ")


#: kinds that share one namespace in the database, so one name means one object:
#: an enum is a type (pg_type), a foreign key is a constraint (pg_constraint)
_SAME_NAMESPACE: dict[ObjectKind, ObjectKind] = {
    ObjectKind.ENUM: ObjectKind.TYPE,
    ObjectKind.FOREIGN_KEY: ObjectKind.CONSTRAINT,
}

#: kinds whose name is only unique within their parent (a table, or an enum for its values)
_PARENT_SCOPED = frozenset(
    {
        ObjectKind.COLUMN,
        ObjectKind.CONSTRAINT,
        ObjectKind.FOREIGN_KEY,
        ObjectKind.ENUM_VALUE,
        ObjectKind.TRIGGER,
    }
)


def namespace_kind(kind: ObjectKind | str) -> ObjectKind:
    """The kind that decides identity: enum counts as type, foreign key as constraint."""
    kind = ObjectKind(kind)
    return _SAME_NAMESPACE.get(kind, kind)


class Action(enum.StrEnum):
    """What a statement does to its target."""

    CREATE = "create"
    DROP = "drop"
    ALTER = "alter"
    RENAME = "rename"
    TRUNCATE = "truncate"
    DELETE = "delete"
    UPDATE = "update"
    INSERT = "insert"
    GRANT = "grant"
    OTHER = "other"


@dataclass(frozen=True, eq=False)
class ObjectRef:
    """A database object named by a script: its kind, schema, name and parent.

    ``parent`` is the owning table for columns, constraints, foreign keys and PostgreSQL
    triggers, and the enum type for enum values; None otherwise. Equality and hashing use
    :attr:`key`, so an enum equals the type of the same name, a foreign key the constraint of
    the same name, and SQLite names compare case-insensitively.
    """

    kind: ObjectKind
    schema: str | None
    name: str
    parent: str | None = None
    #: SQLite: compare names case-insensitively (spelling is kept for display)
    case_insensitive: bool = False

    @property
    def key(self) -> tuple[str, str | None, str | None, str]:
        """What identifies the object: namespace kind, then schema, parent and name, folded."""

        fold = str.casefold if self.case_insensitive else str
        schema = None if self.schema is None else fold(self.schema)
        parent = None if self.parent is None or self.kind not in _PARENT_SCOPED else self.parent
        return (
            namespace_kind(self.kind).value,
            schema,
            None if parent is None else fold(parent),
            fold(self.name),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectRef):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def owner(self) -> ObjectRef | None:
        """The parent as an object: the table of a column or constraint, the enum of a value."""
        if self.parent is None:
            return None
        kind = ObjectKind.ENUM if self.kind is ObjectKind.ENUM_VALUE else ObjectKind.TABLE
        return ObjectRef(kind, self.schema, self.parent, None, self.case_insensitive)

    def in_schema(self, schema: str) -> ObjectRef:
        """This reference with an unqualified name resolved to ``schema``."""
        return self if self.schema is not None else replace(self, schema=schema)

    @property
    def qualified_name(self) -> str:
        """``"schema"."name"`` (or ``"name"`` when unqualified), quoted for display."""
        parts = [p for p in (self.schema, self.name) if p is not None]
        return ".".join(quote_identifier(p) for p in parts)

    @property
    def display(self) -> str:
        """Stable human name: ``column "Voucher"."currentUses"``, ``table "public"."Voucher"``."""
        label = self.kind.label
        owner = self.owner
        if self.kind is ObjectKind.COLUMN and owner is not None:
            return f"{label} {owner.qualified_name}.{quote_identifier(self.name)}"
        if self.kind is ObjectKind.ENUM_VALUE:
            literal = "'" + self.name.replace("'", "''") + "'"
            return f"{label} {literal}" + (f" of {owner.qualified_name}" if owner else "")
        if owner is not None:
            return f"{label} {quote_identifier(self.name)} on {owner.qualified_name}"
        return f"{label} {self.qualified_name}"

    def __str__(self) -> str:
        return self.display


@dataclass(frozen=True, kw_only=True)
class Effect:
    """One thing one statement does to one object, with what a reviewer needs to judge it."""

    action: Action
    target: ObjectRef
    statement: Statement
    #: what changes, in words: "type → bigint", "ADD VALUE 'GIFT'", "SET NOT NULL"
    detail: str = ""
    cascade: bool = False
    #: guarded by IF EXISTS (drops) or IF NOT EXISTS (creates)
    if_exists: bool = False
    #: DML only: whether the statement filters its rows with WHERE (None for other actions)
    has_where: bool | None = None
    #: UPDATE's SET columns, INSERT's column list, CREATE TABLE's columns
    columns: tuple[str, ...] = ()
    #: tables the statement reads (FROM, USING, subqueries) or points to (a foreign key's target)
    references: tuple[ObjectRef, ...] = ()
    #: the statement can lose data: rows, values, or an object that holds them
    destructive: bool = False
    #: the table whose rows or structure this changes (for a column: its table), when known
    table: ObjectRef | None = None
    #: rename: the object's new name
    renamed_to: ObjectRef | None = None
    #: foreign keys: the ON DELETE action ("CASCADE", "SET NULL", "RESTRICT", ...)
    on_delete: str | None = None
    #: where the effect comes from inside the statement: "DO block", "function f() via CALL"
    context: str = ""

    @property
    def line(self) -> int:
        """Line of the statement in its file."""
        return self.statement.line

    def flags(self) -> list[str]:
        """Short markers for display: destructive, cascade, if-exists, no-where."""
        marks: list[str] = []
        if self.destructive:
            marks.append("destructive")
        if self.cascade:
            marks.append("cascade")
        if self.if_exists:
            marks.append("if-not-exists" if self.action is Action.CREATE else "if-exists")
        if self.has_where is not None:
            marks.append("where" if self.has_where else "no-where")
        return marks

    def describe(self) -> str:
        """One line: ``drop table "Voucher" [destructive, if-exists]``."""
        text = f"{self.action.value} {self.target.display}"
        if self.detail:
            text += f" — {self.detail}"
        if self.context:
            text += f" (in {self.context})"
        if self.columns:
            text += " columns (" + ", ".join(quote_identifier(c) for c in self.columns) + ")"
        if self.references:
            text += " refs " + ", ".join(r.display for r in self.references)
        marks = self.flags()
        if marks:
            text += " [" + ", ".join(marks) + "]"
        return text


@dataclass(frozen=True)
class Unknown:
    """A statement whose effect the analysis cannot tell: it must be reviewed by a person."""

    statement: Statement
    reason: str

    @property
    def line(self) -> int:
        """Line of the statement in its file."""
        return self.statement.line

    def describe(self) -> str:
        """One line: ``unknown: dynamic EXECUTE in DO block — needs review``."""
        return f"unknown: {self.reason} — needs review"


@dataclass(frozen=True)
class ServerEffect:
    """A statement that acts outside the database (a program, a file, another server or
    session): neither a rollback nor a restore can undo it."""

    statement: Statement
    #: what it does there, in words: "runs a program on the database server (COPY … PROGRAM)"
    what: str
    #: where it comes from inside the statement: "DO block", "function f() called here"
    context: str = ""

    @property
    def line(self) -> int:
        """Line of the statement in its file."""
        return self.statement.line

    def describe(self) -> str:
        """One line: ``outside the database: reads a file on the database server (in DO block)``."""
        where = f" (in {self.context})" if self.context else ""
        return f"outside the database: {self.what}{where}"


#: actions that change a table's rows or structure (create and grant/other do not count)
_WRITES = frozenset(
    {
        Action.DROP,
        Action.ALTER,
        Action.RENAME,
        Action.TRUNCATE,
        Action.DELETE,
        Action.UPDATE,
        Action.INSERT,
    }
)
_DML = frozenset({Action.DELETE, Action.UPDATE})


@dataclass(frozen=True)
class ScriptEffects:
    """Everything a script does, statement by statement, plus what could not be analysed."""

    effects: tuple[Effect, ...]
    unknown: tuple[Unknown, ...]
    #: the statements analysed, so statements with no effect can be listed too
    statements: tuple[Statement, ...] = ()
    #: what statements do outside the database (files, programs, other servers)
    server: tuple[ServerEffect, ...] = ()

    @property
    def needs_review(self) -> bool:
        """True when some statement could not be analysed."""
        return bool(self.unknown)

    def tables_written(self) -> tuple[ObjectRef, ...]:
        """Existing tables whose rows or structure the script changes, in order of first change.

        Counts tables dropped, altered (columns, constraints, indexes, triggers on them),
        truncated, renamed, and deleted from, updated or inserted into. Tables the script creates
        itself (without IF NOT EXISTS) before changing them did not exist before it ran, so they
        are left out: there is nothing of theirs to back up. A table changed after a rename is
        listed under the name it had before the script.
        """
        created: set[ObjectRef] = set()
        #: a renamed table's new name → its name before the script ran
        original: dict[ObjectRef, ObjectRef] = {}
        written: dict[ObjectRef, None] = {}
        for effect in self.effects:
            target = effect.target
            if effect.action is Action.CREATE and target.kind is ObjectKind.TABLE:
                if not effect.if_exists and target not in written:
                    created.add(target)
                    original.pop(target, None)
                continue
            table = effect.table
            if table is None or table.kind is not ObjectKind.TABLE:
                continue
            renamed = effect.renamed_to if target.kind is ObjectKind.TABLE else None
            if table in created:
                if effect.action is Action.RENAME and renamed is not None:
                    created.add(renamed)
                continue
            table = original.get(table, table)
            if effect.action is Action.RENAME and renamed is not None:
                original[renamed] = table
            if effect.action in _WRITES or effect.action is Action.CREATE:
                written.setdefault(table, None)
        return tuple(written)

    def _select(self, action: Action, kind: ObjectKind | str | None) -> tuple[Effect, ...]:
        wanted = None if kind is None else namespace_kind(kind)
        return tuple(
            e
            for e in self.effects
            if e.action is action and (wanted is None or namespace_kind(e.target.kind) is wanted)
        )

    def dropped(self, kind: ObjectKind | str | None = None) -> tuple[Effect, ...]:
        """Drop effects, optionally of one kind (enum and type match each other, as do
        foreign key and constraint: a drop does not say which it is)."""
        return self._select(Action.DROP, kind)

    def created(self, kind: ObjectKind | str | None = None) -> tuple[Effect, ...]:
        """Create effects, optionally of one kind (enum/type and foreign key/constraint match)."""
        return self._select(Action.CREATE, kind)

    def destructive(self) -> tuple[Effect, ...]:
        """Effects that can lose data."""
        return tuple(e for e in self.effects if e.destructive)

    def dml_without_where(self) -> tuple[Effect, ...]:
        """DELETE and UPDATE effects that touch every row of their table (no WHERE)."""
        return tuple(e for e in self.effects if e.action in _DML and e.has_where is False)

    def for_statement(self, statement: Statement) -> tuple[Effect, ...]:
        """The effects of one statement."""
        return tuple(e for e in self.effects if e.statement.index == statement.index)

    def lines(self, *, excerpt_width: int = 60) -> list[str]:
        """The analysis as text, one line per effect, unknown or inert statement, in order.

        ``12: drop table "Voucher" [destructive, if-exists]``,
        ``20: unknown: dynamic EXECUTE in DO block — needs review``,
        ``25: no effect: SELECT 1``.
        """
        by_index: dict[int, list[str]] = {}
        for effect in self.effects:
            by_index.setdefault(effect.statement.index, []).append(
                f"{effect.line}: {effect.describe()}"
            )
        for unknown in self.unknown:
            by_index.setdefault(unknown.statement.index, []).append(
                f"{unknown.line}: {unknown.describe()}"
            )
        for outside in self.server:
            by_index.setdefault(outside.statement.index, []).append(
                f"{outside.line}: {outside.describe()}"
            )
        out: list[str] = []
        seen: set[int] = set()
        for statement in self.statements:
            seen.add(statement.index)
            found = by_index.get(statement.index)
            if found:
                out.extend(found)
            else:
                out.append(f"{statement.line}: no effect: {statement.excerpt(excerpt_width)}")
        for index in sorted(set(by_index) - seen):
            out.extend(by_index[index])
        return out


def table_key(ref: ObjectRef, snapshot: SchemaSnapshot) -> str | None:
    """The snapshot key of a table a script names, or None when it does not exist now."""
    schema = ref.schema if ref.schema is not None else snapshot.default_schema
    key = qualified_name(schema, ref.name)
    if key in snapshot.tables:
        return key
    if ref.case_insensitive:
        folded = key.casefold()
        return next((k for k in snapshot.tables if k.casefold() == folded), None)
    return None
