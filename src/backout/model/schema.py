"""Schema snapshots: what a database's catalog says, a fingerprint of it, and the diff of two.

A :class:`SchemaSnapshot` is backout's oracle for "the schema is exactly as before": a rollback is
verified by comparing the snapshot taken before the forward migration with the one taken after
the rollback; drift and leftovers are diffs too. Snapshots are built by the catalog readers
(:mod:`backout.dialects.postgres.catalog`, :mod:`backout.dialects.sqlite.catalog`); this module is
pure
data and logic: no database access, no printing.

Conventions:

- Every object is keyed by its schema-qualified name (``public.Voucher``); on SQLite, which has
  no schemas, by its bare name (``Voucher``). Functions add their identity arguments
  (``public.add(integer, integer)``); triggers add their table (``public.Voucher.audit``);
  extensions are keyed by name. Keys are plain strings for lookups and sorting; objects keep
  ``schema`` and ``name`` apart for building SQL.
- References to other relations (a foreign key's table, a table's parents, a sequence's owner)
  are stored as keys.
- A column's ``position`` is its 1-based place among the *live* columns: dropped columns leave no
  gap, so ``ADD COLUMN`` + ``DROP COLUMN`` gives back the same snapshot, while dropping and
  re-adding a column moves it to the end, which the fingerprint sees and the diff reports in
  :attr:`SchemaDiff.column_order`.
- Constructors canonicalise: collections are sorted by key and positions renumbered, so the order
  in which catalog rows arrive never matters.
- An index that backs a PRIMARY KEY, UNIQUE or EXCLUDE *constraint* is represented only by that
  constraint (in :attr:`TableInfo.constraints`), never also in :attr:`SchemaSnapshot.indexes`. A
  unique *index* (``CREATE UNIQUE INDEX``, which is what Prisma emits) is an index, not a
  constraint: swapping one for the other is a real difference and is reported.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Final, Literal, Protocol, TypeVar, cast, get_args

from backout.model.identifiers import qualified_name, quote_identifier

QueryFn = Callable[[str, Sequence[object] | None], list[tuple[Any, ...]]]
"""Runs one read-only query and returns all its rows.

Placeholders are ``%s`` (backout's convention: a ``Session`` translates them for its driver), and
queries that take no parameters are sent with ``None`` so that ``%`` in them stays literal.
``Session.query`` of any dialect is a ``QueryFn``.
"""

SNAPSHOT_FORMAT: Final = 1
"""Version of :meth:`SchemaSnapshot.to_dict`'s layout; part of the fingerprint."""

ChangeKind = Literal["added", "removed", "changed"]
ObjectType = Literal[
    "schema",
    "extension",
    "table",
    "column",
    "constraint",
    "foreign_key",
    "index",
    "enum",
    "enum_value",
    "type",
    "sequence",
    "view",
    "function",
    "trigger",
    "comment",
]
ConstraintKind = Literal["primary_key", "unique", "check", "exclusion"]
TypeKind = Literal["domain", "composite", "range"]
FunctionKind = Literal["function", "procedure", "aggregate", "window"]

#: every object type a :class:`SchemaChange` can name, in the order diffs are sorted
OBJECT_TYPES: Final[tuple[str, ...]] = get_args(ObjectType)
CONSTRAINT_KINDS: Final[tuple[str, ...]] = get_args(ConstraintKind)
TYPE_KINDS: Final[tuple[str, ...]] = get_args(TypeKind)
FUNCTION_KINDS: Final[tuple[str, ...]] = get_args(FunctionKind)
_CHANGE_KINDS: Final[tuple[str, ...]] = get_args(ChangeKind)


# --------------------------------------------------------------------------------------------
# Rebuilding from JSON


class _Fields:
    """Typed access to one JSON object while rebuilding a snapshot; errors name where."""

    _MISSING: Final = object()

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
        self._data = cast(Mapping[str, object], data)
        self.where = where

    def _get(self, key: str, default: object) -> object:
        value = self._data.get(key, default)
        if value is _Fields._MISSING:
            raise ValueError(f"{self.where}: missing {key!r}")
        return value

    def _fail(self, key: str, expected: str, value: object) -> ValueError:
        return ValueError(f"{self.where}.{key}: expected {expected}, got {value!r}")

    def text(self, key: str, default: object = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self._fail(key, "a string", value)
        return value

    def opt_text(self, key: str) -> str | None:
        value = self._get(key, None)
        if value is not None and not isinstance(value, str):
            raise self._fail(key, "a string or null", value)
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: object = _MISSING) -> str:
        value = self.text(key, default)
        if value not in allowed:
            raise self._fail(key, "one of " + ", ".join(allowed), value)
        return value

    def flag(self, key: str, default: object = _MISSING) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def number(self, key: str, default: object = _MISSING) -> int:
        value = self._get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._fail(key, "an integer", value)
        return value

    def texts(self, key: str, default: object = ()) -> tuple[str, ...]:
        value = self._get(key, default)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings", value)
        return tuple(cast(Sequence[str], value))

    def items(self, key: str) -> list[object]:
        value = self._get(key, [])
        if not isinstance(value, list | tuple):
            raise self._fail(key, "a list", value)
        return list(value)

    def entries(self, key: str) -> list[tuple[str, object]]:
        value = self._get(key, {})
        if not isinstance(value, Mapping):
            raise self._fail(key, "an object", value)
        return [(str(k), v) for k, v in cast(Mapping[object, object], value).items()]


def _plain(value: object) -> object:
    """A JSON-ready copy of a model value (tuples become lists, records become dicts)."""
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class _Record:
    """Mixin for the frozen catalog records: a JSON-ready ``to_dict``."""

    def to_dict(self) -> dict[str, Any]:
        """This object as plain JSON-ready data (lists, dicts, strings, numbers, booleans)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(cast(Any, self))}


class _Keyed(Protocol):
    @property
    def key(self) -> str: ...


_K = TypeVar("_K", bound=_Keyed)


def _sorted_by_key(items: Iterable[_K], what: str) -> tuple[_K, ...]:
    ordered = sorted(items, key=lambda item: item.key)
    for first, second in itertools.pairwise(ordered):
        if first.key == second.key:
            raise ValueError(f"duplicate {what} {first.key!r}")
    return tuple(ordered)


# --------------------------------------------------------------------------------------------
# Catalog records


@dataclass(frozen=True)
class ColumnInfo(_Record):
    """One column of a table, as the catalog describes it."""

    name: str
    #: 1-based place among the table's live columns
    position: int
    #: the type as the database spells it (``format_type`` on PostgreSQL, declared on SQLite)
    type: str
    nullable: bool = True
    #: default expression as the database prints it; None when there is none
    default: str | None = None
    #: ``ALWAYS`` / ``BY DEFAULT`` (identity column) or ``AUTOINCREMENT`` (SQLite)
    identity: str | None = None
    #: expression of a generated column
    generated: str | None = None
    #: ``STORED`` or ``VIRTUAL`` for a generated column
    generated_storage: str | None = None
    #: collation, only when it is not the type's default
    collation: str | None = None

    @property
    def key(self) -> str:
        """The column's name (unique within its table)."""
        return self.name

    def describe(self) -> str:
        """Type and attributes as one line: ``bigint NOT NULL DEFAULT 0``."""
        parts = [self.type or "(no type)"]
        if self.collation is not None:
            parts.append(f"COLLATE {self.collation}")
        if not self.nullable:
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if self.identity is not None:
            parts.append(_show_identity(self.identity))
        if self.generated is not None:
            parts.append(f"GENERATED ALWAYS AS ({self.generated}) {self.generated_storage or ''}")
        return " ".join(parts).strip()

    @classmethod
    def from_dict(cls, data: object, where: str = "column") -> ColumnInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(
            name=f.text("name"),
            position=f.number("position"),
            type=f.text("type"),
            nullable=f.flag("nullable", True),
            default=f.opt_text("default"),
            identity=f.opt_text("identity"),
            generated=f.opt_text("generated"),
            generated_storage=f.opt_text("generated_storage"),
            collation=f.opt_text("collation"),
        )


@dataclass(frozen=True)
class ConstraintInfo(_Record):
    """A PRIMARY KEY, UNIQUE, CHECK or EXCLUDE constraint of a table."""

    kind: ConstraintKind
    #: None only on SQLite, where constraints may be anonymous
    name: str | None
    #: constrained columns in constraint order (empty for most CHECKs)
    columns: tuple[str, ...]
    #: full definition as the database prints it: ``CHECK (value > 0)``, ``UNIQUE (code)``
    definition: str
    deferrable: bool = False
    initially_deferred: bool = False
    #: False for a constraint added ``NOT VALID`` and not validated since
    validated: bool = True

    @property
    def key(self) -> str:
        """Its name; for an anonymous constraint, ``PRIMARY KEY`` or its definition."""
        if self.name is not None:
            return self.name
        return "PRIMARY KEY" if self.kind == "primary_key" else self.definition

    @classmethod
    def from_dict(cls, data: object, where: str = "constraint") -> ConstraintInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(
            kind=cast(ConstraintKind, f.choice("kind", CONSTRAINT_KINDS)),
            name=f.opt_text("name"),
            columns=f.texts("columns"),
            definition=f.text("definition"),
            deferrable=f.flag("deferrable", False),
            initially_deferred=f.flag("initially_deferred", False),
            validated=f.flag("validated", True),
        )


@dataclass(frozen=True)
class ForeignKeyInfo(_Record):
    """A FOREIGN KEY constraint: columns, what they reference, and the referential actions."""

    #: None only on SQLite, where constraints may be anonymous
    name: str | None
    columns: tuple[str, ...]
    #: key of the referenced table (``public.Voucher``; ``Voucher`` on SQLite)
    referenced_table: str
    #: referenced columns, pairing with :attr:`columns`
    referenced_columns: tuple[str, ...]
    #: ``NO ACTION``, ``RESTRICT``, ``CASCADE``, ``SET NULL`` or ``SET DEFAULT``
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"
    #: ``SIMPLE``/``FULL``/``PARTIAL`` on PostgreSQL; SQLite reports ``NONE``
    match: str = "SIMPLE"
    deferrable: bool = False
    initially_deferred: bool = False
    #: False for a foreign key added ``NOT VALID`` and not validated since
    validated: bool = True
    #: full definition as the database prints it (synthesised on SQLite)
    definition: str = ""

    @property
    def key(self) -> str:
        """Its name; for an anonymous one, its columns and referenced table."""
        if self.name is not None:
            return self.name
        return f"FOREIGN KEY ({', '.join(self.columns)}) REFERENCES {self.referenced_table}"

    @classmethod
    def from_dict(cls, data: object, where: str = "foreign_key") -> ForeignKeyInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(
            name=f.opt_text("name"),
            columns=f.texts("columns"),
            referenced_table=f.text("referenced_table"),
            referenced_columns=f.texts("referenced_columns"),
            on_delete=f.text("on_delete", "NO ACTION"),
            on_update=f.text("on_update", "NO ACTION"),
            match=f.text("match", "SIMPLE"),
            deferrable=f.flag("deferrable", False),
            initially_deferred=f.flag("initially_deferred", False),
            validated=f.flag("validated", True),
            definition=f.text("definition", ""),
        )


@dataclass(frozen=True)
class TableInfo(_Record):
    """A table: its columns in order, its constraints and foreign keys, and table-level options."""

    schema: str | None
    name: str
    columns: tuple[ColumnInfo, ...]
    constraints: tuple[ConstraintInfo, ...] = ()
    foreign_keys: tuple[ForeignKeyInfo, ...] = ()
    #: ``table``, ``partitioned table`` (PostgreSQL) or ``virtual table`` (SQLite)
    kind: str = "table"
    unlogged: bool = False
    #: storage parameters (PostgreSQL ``reloptions``) or ``WITHOUT ROWID``/``STRICT`` (SQLite)
    options: tuple[str, ...] = ()
    #: keys of the tables this one inherits from or is a partition of
    parents: tuple[str, ...] = ()
    #: ``PARTITION BY`` key of a partitioned table
    partition_key: str | None = None
    #: ``FOR VALUES ...`` bound of a partition
    partition_bound: str | None = None

    def __post_init__(self) -> None:
        ordered = sorted(self.columns, key=lambda c: (c.position, c.name))
        columns = tuple(
            c if c.position == i else replace(c, position=i) for i, c in enumerate(ordered, 1)
        )
        _sorted_by_key(columns, f"column in table {self.key}")
        object.__setattr__(self, "columns", columns)
        object.__setattr__(
            self, "constraints", _sorted_by_key(self.constraints, f"constraint on {self.key}")
        )
        object.__setattr__(
            self, "foreign_keys", _sorted_by_key(self.foreign_keys, f"foreign key on {self.key}")
        )
        object.__setattr__(self, "options", tuple(sorted(self.options)))
        object.__setattr__(self, "parents", tuple(sorted(self.parents)))

    @property
    def key(self) -> str:
        """``schema.name`` (``name`` on SQLite)."""
        return qualified_name(self.schema, self.name)

    @property
    def primary_key(self) -> ConstraintInfo | None:
        """The PRIMARY KEY constraint, if the table has one."""
        return next((c for c in self.constraints if c.kind == "primary_key"), None)

    def column(self, name: str) -> ColumnInfo | None:
        """The column called ``name``, or None."""
        return next((c for c in self.columns if c.name == name), None)

    @classmethod
    def from_dict(cls, data: object, where: str = "table") -> TableInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(
            schema=f.opt_text("schema"),
            name=f.text("name"),
            columns=tuple(
                ColumnInfo.from_dict(c, f"{where}.columns[{i}]")
                for i, c in enumerate(f.items("columns"))
            ),
            constraints=tuple(
                ConstraintInfo.from_dict(c, f"{where}.constraints[{i}]")
                for i, c in enumerate(f.items("constraints"))
            ),
            foreign_keys=tuple(
                ForeignKeyInfo.from_dict(c, f"{where}.foreign_keys[{i}]")
                for i, c in enumerate(f.items("foreign_keys"))
            ),
            kind=f.text("kind", "table"),
            unlogged=f.flag("unlogged", False),
            options=f.texts("options"),
            parents=f.texts("parents"),
            partition_key=f.opt_text("partition_key"),
            partition_bound=f.opt_text("partition_bound"),
        )


@dataclass(frozen=True)
class IndexInfo(_Record):
    """An index that does not back a constraint (see the module docstring)."""

    schema: str | None
    name: str
    #: name of the indexed table or materialized view (always in the index's schema)
    table: str
    #: key columns in order: a column name, or an expression's text
    columns: tuple[str, ...]
    #: non-key ``INCLUDE`` columns
    include: tuple[str, ...] = ()
    unique: bool = False
    #: access method (``btree``, ``gin``...); None on SQLite, which only has b-trees
    method: str | None = None
    #: ``WHERE`` predicate of a partial index
    predicate: str | None = None
    #: full ``CREATE INDEX`` statement as the database prints it (normalised on SQLite)
    definition: str = ""
    #: False for an index left invalid by a failed ``CREATE INDEX CONCURRENTLY``
    valid: bool = True

    @property
    def key(self) -> str:
        """``schema.name`` (``name`` on SQLite)."""
        return qualified_name(self.schema, self.name)

    @property
    def table_key(self) -> str:
        """Key of the indexed table."""
        return qualified_name(self.schema, self.table)

    @classmethod
    def from_dict(cls, data: object, where: str = "index") -> IndexInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(
            schema=f.opt_text("schema"),
            name=f.text("name"),
            table=f.text("table"),
            columns=f.texts("columns"),
            include=f.texts("include"),
            unique=f.flag("unique", False),
            method=f.opt_text("method"),
            predicate=f.opt_text("predicate"),
            definition=f.text("definition", ""),
            valid=f.flag("valid", True),
        )


@dataclass(frozen=True)
class EnumInfo(_Record):
    """An enum type and its labels in sort order."""

    schema: str | None
    name: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"enum {self.key}: duplicate value")

    @property
    def key(self) -> str:
        """``schema.name``."""
        return qualified_name(self.schema, self.name)

    @classmethod
    def from_dict(cls, data: object, where: str = "enum") -> EnumInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(schema=f.opt_text("schema"), name=f.text("name"), values=f.texts("values"))


@dataclass(frozen=True)
class TypeInfo(_Record):
    """A user-defined domain, composite or range type (enums are :class:`EnumInfo`)."""

    schema: str | None
    name: str
    kind: TypeKind
    #: canonical description: a domain's base type, default and constraints; a composite's
    #: attributes; a range's subtype and support functions
    definition: str

    @property
    def key(self) -> str:
        """``schema.name``."""
        return qualified_name(self.schema, self.name)

    @classmethod
    def from_dict(cls, data: object, where: str = "type") -> TypeInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(
            schema=f.opt_text("schema"),
            name=f.text("name"),
            kind=cast(TypeKind, f.choice("kind", TYPE_KINDS)),
            definition=f.text("definition"),
        )


@dataclass(frozen=True)
class SequenceInfo(_Record):
    """A sequence's parameters (never its current value, which is data, not schema)."""

    schema: str | None
    name: str
    data_type: str
    start: int
    increment: int
    minimum: int
    maximum: int
    cache: int = 1
    cycle: bool = False
    #: key of the table owning the sequence (serial and identity columns), or None
    owned_by_table: str | None = None
    owned_by_column: str | None = None

    @property
    def key(self) -> str:
        """``schema.name``."""
        return qualified_name(self.schema, self.name)

    @property
    def owner(self) -> str | None:
        """``table_key.column`` of the owning column, or None."""
        if self.owned_by_table is None or self.owned_by_column is None:
            return None
        return f"{self.owned_by_table}.{self.owned_by_column}"

    @classmethod
    def from_dict(cls, data: object, where: str = "sequence") -> SequenceInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(
            schema=f.opt_text("schema"),
            name=f.text("name"),
            data_type=f.text("data_type"),
            start=f.number("start"),
            increment=f.number("increment"),
            minimum=f.number("minimum"),
            maximum=f.number("maximum"),
            cache=f.number("cache", 1),
            cycle=f.flag("cycle", False),
            owned_by_table=f.opt_text("owned_by_table"),
            owned_by_column=f.opt_text("owned_by_column"),
        )


@dataclass(frozen=True)
class ViewInfo(_Record):
    """A view or materialized view and its normalised definition."""

    schema: str | None
    name: str
    #: the query as the database prints it (``pg_get_viewdef``; normalised SQL on SQLite)
    definition: str
    materialized: bool = False
    #: view options (``security_barrier``, ``check_option``...), sorted
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(sorted(self.options)))

    @property
    def key(self) -> str:
        """``schema.name`` (``name`` on SQLite)."""
        return qualified_name(self.schema, self.name)

    @classmethod
    def from_dict(cls, data: object, where: str = "view") -> ViewInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(
            schema=f.opt_text("schema"),
            name=f.text("name"),
            definition=f.text("definition"),
            materialized=f.flag("materialized", False),
            options=f.texts("options"),
        )


@dataclass(frozen=True)
class FunctionInfo(_Record):
    """A function, procedure or aggregate, with its full definition."""

    schema: str | None
    name: str
    #: identity arguments (``integer, text``): with schema and name, what makes it unique
    arguments: str
    kind: FunctionKind
    #: result type; None for procedures
    result: str | None
    language: str
    #: complete ``CREATE OR REPLACE ...`` text, body included (``pg_get_functiondef``)
    definition: str

    @property
    def key(self) -> str:
        """``schema.name(arguments)``."""
        return f"{qualified_name(self.schema, self.name)}({self.arguments})"

    @property
    def definition_sha256(self) -> str:
        """sha256 hex of :attr:`definition` (a short way to tell bodies apart)."""
        return hashlib.sha256(self.definition.encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, data: object, where: str = "function") -> FunctionInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(
            schema=f.opt_text("schema"),
            name=f.text("name"),
            arguments=f.text("arguments"),
            kind=cast(FunctionKind, f.choice("kind", FUNCTION_KINDS)),
            result=f.opt_text("result"),
            language=f.text("language"),
            definition=f.text("definition"),
        )


@dataclass(frozen=True)
class TriggerInfo(_Record):
    """A trigger on a table or view (internal triggers of foreign keys are not listed)."""

    schema: str | None
    #: name of the table or view (always in the trigger's schema)
    table: str
    name: str
    #: ``CREATE TRIGGER ...`` as the database prints it (normalised on SQLite)
    definition: str
    #: ``ENABLED``, ``DISABLED``, ``REPLICA`` or ``ALWAYS`` (PostgreSQL's session_replication_role)
    enabled: str = "ENABLED"

    @property
    def key(self) -> str:
        """``schema.table.name`` (``table.name`` on SQLite)."""
        return qualified_name(self.schema, self.table, self.name)

    @classmethod
    def from_dict(cls, data: object, where: str = "trigger") -> TriggerInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(
            schema=f.opt_text("schema"),
            table=f.text("table"),
            name=f.text("name"),
            definition=f.text("definition"),
            enabled=f.text("enabled", "ENABLED"),
        )


@dataclass(frozen=True)
class ExtensionInfo(_Record):
    """An installed extension (its member objects are not listed individually)."""

    name: str
    schema: str
    version: str

    @property
    def key(self) -> str:
        """The extension's name (unique in a database)."""
        return self.name

    @classmethod
    def from_dict(cls, data: object, where: str = "extension") -> ExtensionInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(name=f.text("name"), schema=f.text("schema"), version=f.text("version"))


@dataclass(frozen=True)
class CommentInfo(_Record):
    """A comment (``COMMENT ON ...``) attached to an object."""

    #: ``schema``, ``table``, ``column``, ``view``, ``materialized view``, ``sequence``,
    #: ``index``, ``constraint``, ``type``, ``function``, ``trigger``
    object_type: str
    #: schema of the object (for a comment on a schema: the schema itself)
    schema: str | None
    #: the object's names inside its schema: ``()`` for a schema, ``(table,)``,
    #: ``(table, column)``, ``(table, constraint)``, ``(table, trigger)``, ``(function,)``...
    names: tuple[str, ...]
    text: str
    #: identity arguments, for comments on functions
    arguments: str | None = None

    @property
    def key(self) -> str:
        """``object_type schema.names`` plus ``(arguments)`` for functions."""
        args = f"({self.arguments})" if self.arguments is not None else ""
        return f"{self.object_type} {qualified_name(self.schema, *self.names)}{args}"

    @classmethod
    def from_dict(cls, data: object, where: str = "comment") -> CommentInfo:
        """Rebuild from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, where)
        return cls(
            object_type=f.text("object_type"),
            schema=f.opt_text("schema"),
            names=f.texts("names"),
            text=f.text("text"),
            arguments=f.opt_text("arguments"),
        )


@dataclass(frozen=True)
class TableStats:
    """Exact row count and an order-independent checksum of one table's content."""

    row_count: int
    #: hex digest; equal for equal multisets of rows, whatever their physical order
    checksum: str


# --------------------------------------------------------------------------------------------
# The snapshot


def _freeze(items: Mapping[str, _K], what: str) -> Mapping[str, _K]:
    for key, item in items.items():
        if key != item.key:
            raise ValueError(f"{what} {item.key!r} is filed under the wrong key {key!r}")
    return MappingProxyType(dict(sorted(items.items())))


def _keyed(items: Iterable[_K], what: str) -> dict[str, _K]:
    return {item.key: item for item in _sorted_by_key(items, what)}


@dataclass(frozen=True)
class SchemaSnapshot:
    """Everything the catalog says about a database's schema, keyed and canonically ordered.

    Build one with :meth:`build` (from lists of records) or with the catalog readers. Mappings
    are read-only and sorted by key. Two snapshots have the same :meth:`fingerprint` exactly
    when :func:`diff_schemas` finds no difference between them.
    """

    #: ``postgresql`` or ``sqlite``
    dialect: str
    #: schema whose name is left out of human-readable names (``public``); None without schemas
    default_schema: str | None = None
    schemas: tuple[str, ...] = ()
    extensions: Mapping[str, ExtensionInfo] = field(default_factory=dict)
    tables: Mapping[str, TableInfo] = field(default_factory=dict)
    views: Mapping[str, ViewInfo] = field(default_factory=dict)
    indexes: Mapping[str, IndexInfo] = field(default_factory=dict)
    sequences: Mapping[str, SequenceInfo] = field(default_factory=dict)
    enums: Mapping[str, EnumInfo] = field(default_factory=dict)
    types: Mapping[str, TypeInfo] = field(default_factory=dict)
    functions: Mapping[str, FunctionInfo] = field(default_factory=dict)
    triggers: Mapping[str, TriggerInfo] = field(default_factory=dict)
    comments: Mapping[str, CommentInfo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.schemas)) != len(self.schemas):
            raise ValueError("duplicate schema in snapshot")
        object.__setattr__(self, "schemas", tuple(sorted(self.schemas)))
        object.__setattr__(self, "extensions", _freeze(self.extensions, "extension"))
        object.__setattr__(self, "tables", _freeze(self.tables, "table"))
        object.__setattr__(self, "views", _freeze(self.views, "view"))
        object.__setattr__(self, "indexes", _freeze(self.indexes, "index"))
        object.__setattr__(self, "sequences", _freeze(self.sequences, "sequence"))
        object.__setattr__(self, "enums", _freeze(self.enums, "enum"))
        object.__setattr__(self, "types", _freeze(self.types, "type"))
        object.__setattr__(self, "functions", _freeze(self.functions, "function"))
        object.__setattr__(self, "triggers", _freeze(self.triggers, "trigger"))
        object.__setattr__(self, "comments", _freeze(self.comments, "comment"))

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    @classmethod
    def build(
        cls,
        dialect: str,
        *,
        default_schema: str | None = None,
        schemas: Iterable[str] = (),
        extensions: Iterable[ExtensionInfo] = (),
        tables: Iterable[TableInfo] = (),
        views: Iterable[ViewInfo] = (),
        indexes: Iterable[IndexInfo] = (),
        sequences: Iterable[SequenceInfo] = (),
        enums: Iterable[EnumInfo] = (),
        types: Iterable[TypeInfo] = (),
        functions: Iterable[FunctionInfo] = (),
        triggers: Iterable[TriggerInfo] = (),
        comments: Iterable[CommentInfo] = (),
    ) -> SchemaSnapshot:
        """A snapshot from lists of records, each filed under its key (duplicates: ValueError)."""
        return cls(
            dialect=dialect,
            default_schema=default_schema,
            schemas=tuple(schemas),
            extensions=_keyed(extensions, "extension"),
            tables=_keyed(tables, "table"),
            views=_keyed(views, "view"),
            indexes=_keyed(indexes, "index"),
            sequences=_keyed(sequences, "sequence"),
            enums=_keyed(enums, "enum"),
            types=_keyed(types, "type"),
            functions=_keyed(functions, "function"),
            triggers=_keyed(triggers, "trigger"),
            comments=_keyed(comments, "comment"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as plain JSON-ready data; :meth:`from_dict` reads it back."""
        return {
            "format": SNAPSHOT_FORMAT,
            "dialect": self.dialect,
            "default_schema": self.default_schema,
            "schemas": list(self.schemas),
            "extensions": _plain(self.extensions),
            "tables": _plain(self.tables),
            "views": _plain(self.views),
            "indexes": _plain(self.indexes),
            "sequences": _plain(self.sequences),
            "enums": _plain(self.enums),
            "types": _plain(self.types),
            "functions": _plain(self.functions),
            "triggers": _plain(self.triggers),
            "comments": _plain(self.comments),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchemaSnapshot:
        """Rebuild a snapshot from :meth:`to_dict` output; ValueError names what is wrong."""
        f = _Fields(data, "snapshot")
        if f.number("format") != SNAPSHOT_FORMAT:
            raise ValueError(
                f"snapshot: format {data.get('format')!r} is not supported "
                f"(this version reads format {SNAPSHOT_FORMAT})"
            )

        def load(key: str, loader: Callable[[object, str], _K]) -> dict[str, _K]:
            return {k: loader(v, f"snapshot.{key}[{k!r}]") for k, v in f.entries(key)}

        return cls(
            dialect=f.text("dialect"),
            default_schema=f.opt_text("default_schema"),
            schemas=f.texts("schemas"),
            extensions=load("extensions", ExtensionInfo.from_dict),
            tables=load("tables", TableInfo.from_dict),
            views=load("views", ViewInfo.from_dict),
            indexes=load("indexes", IndexInfo.from_dict),
            sequences=load("sequences", SequenceInfo.from_dict),
            enums=load("enums", EnumInfo.from_dict),
            types=load("types", TypeInfo.from_dict),
            functions=load("functions", FunctionInfo.from_dict),
            triggers=load("triggers", TriggerInfo.from_dict),
            comments=load("comments", CommentInfo.from_dict),
        )

    def canonical_json(self, *, ignore_column_order: bool = False) -> str:
        """The canonical JSON text that :meth:`fingerprint` hashes (sorted keys, no spaces)."""
        data = self.to_dict()
        # Which schema is left out of display names is presentation, not schema.
        del data["default_schema"]
        if ignore_column_order:
            for table in data["tables"].values():
                table["columns"] = sorted(
                    ({k: v for k, v in c.items() if k != "position"} for c in table["columns"]),
                    key=lambda c: str(c["name"]),
                )
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def fingerprint(self, *, ignore_column_order: bool = False) -> str:
        """sha256 hex of the canonical JSON form: equal exactly for identical schemas.

        Column order is part of it unless ``ignore_column_order`` is set.
        """
        text = self.canonical_json(ignore_column_order=ignore_column_order)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Diff


@dataclass(frozen=True)
class SchemaChange:
    """One difference between two snapshots, with a precise one-line description."""

    kind: ChangeKind
    object_type: ObjectType
    #: key of the object (``public.Voucher.value`` for a column)
    name: str
    #: the human one-liner: ``column "Voucher"."value" changed type: integer → bigint``
    detail: str
    #: the full old and new value of a changed attribute (e.g. a whole view definition)
    before: str | None = None
    after: str | None = None

    def __str__(self) -> str:
        return self.detail

    def sort_key(self) -> tuple[int, str, int, str]:
        """Deterministic order: object type, name, kind, detail."""
        return (
            OBJECT_TYPES.index(self.object_type),
            self.name,
            _CHANGE_KINDS.index(self.kind),
            self.detail,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "object_type": self.object_type,
            "name": self.name,
            "detail": self.detail,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True)
class SchemaDiff:
    """The differences between two snapshots, sorted; column-order changes kept apart."""

    changes: tuple[SchemaChange, ...] = ()
    #: tables whose common columns come in a different order (and nothing else about them)
    column_order: tuple[SchemaChange, ...] = ()

    def is_empty(self, ignore_column_order: bool = False) -> bool:
        """True when the schemas are the same (optionally up to column order)."""
        return not self.changes and (ignore_column_order or not self.column_order)

    def all_changes(self, ignore_column_order: bool = False) -> tuple[SchemaChange, ...]:
        """Changes followed by column-order changes (unless ignored)."""
        return self.changes if ignore_column_order else self.changes + self.column_order

    def lines(self, ignore_column_order: bool = False) -> list[str]:
        """The one-line descriptions, in order."""
        return [c.detail for c in self.all_changes(ignore_column_order)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "changes": [c.to_dict() for c in self.changes],
            "column_order": [c.to_dict() for c in self.column_order],
        }


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''").replace("\n", "\\n") + "'"


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _show_text(value: object) -> str:
    return "(none)" if value is None else _one_line(str(value))


def _show_list(value: object) -> str:
    return "(" + ", ".join(cast(Sequence[str], value)) + ")"


def _show_literals(value: object) -> str:
    return "(" + ", ".join(_literal(v) for v in cast(Sequence[str], value)) + ")"


def _show_identity(value: object) -> str:
    if value is None:
        return "(none)"
    if value in ("ALWAYS", "BY DEFAULT"):
        return f"GENERATED {value} AS IDENTITY"
    return str(value)


def _show_flag(yes: str, no: str) -> Callable[[object], str]:
    return lambda value: yes if value else no


def _raw(value: object) -> str | None:
    """Full text of an attribute value for :attr:`SchemaChange.before`/``after``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


_Spec = tuple[str, str, Callable[[object], str]]

_COLUMN_SPECS: Final[tuple[_Spec, ...]] = (
    ("type", "type", _show_text),
    ("nullable", "nullability", _show_flag("NULL", "NOT NULL")),
    ("default", "default", _show_text),
    ("identity", "identity", _show_identity),
    ("generated", "generation expression", _show_text),
    ("generated_storage", "generated storage", _show_text),
    ("collation", "collation", _show_text),
)
_TABLE_SPECS: Final[tuple[_Spec, ...]] = (
    ("kind", "kind", _show_text),
    ("unlogged", "persistence", _show_flag("UNLOGGED", "LOGGED")),
    ("options", "options", _show_list),
    ("parents", "parents", _show_list),
    ("partition_key", "partition key", _show_text),
    ("partition_bound", "partition bound", _show_text),
)
_CONSTRAINT_SPECS: Final[tuple[_Spec, ...]] = (
    ("kind", "kind", _show_text),
    ("columns", "columns", _show_list),
    ("deferrable", "deferrability", _show_flag("DEFERRABLE", "NOT DEFERRABLE")),
    (
        "initially_deferred",
        "initial mode",
        _show_flag("INITIALLY DEFERRED", "INITIALLY IMMEDIATE"),
    ),
    ("validated", "validation", _show_flag("VALID", "NOT VALID")),
)
_FOREIGN_KEY_SPECS: Final[tuple[_Spec, ...]] = (
    ("columns", "columns", _show_list),
    ("referenced_table", "referenced table", _show_text),
    ("referenced_columns", "referenced columns", _show_list),
    ("on_delete", "ON DELETE", _show_text),
    ("on_update", "ON UPDATE", _show_text),
    ("match", "MATCH", _show_text),
    *_CONSTRAINT_SPECS[2:],
)
_INDEX_SPECS: Final[tuple[_Spec, ...]] = (
    ("table", "table", _show_text),
    ("columns", "columns", _show_list),
    ("include", "INCLUDE columns", _show_list),
    ("unique", "uniqueness", _show_flag("UNIQUE", "not unique")),
    ("method", "method", _show_text),
    ("predicate", "predicate", _show_text),
    ("valid", "validity", _show_flag("valid", "INVALID")),
)
_SEQUENCE_SPECS: Final[tuple[_Spec, ...]] = (
    ("data_type", "type", _show_text),
    ("start", "start", _show_text),
    ("increment", "increment", _show_text),
    ("minimum", "minimum", _show_text),
    ("maximum", "maximum", _show_text),
    ("cache", "cache", _show_text),
    ("cycle", "cycle", _show_flag("CYCLE", "NO CYCLE")),
    ("owned_by_table", "owning table", _show_text),
    ("owned_by_column", "owning column", _show_text),
)
_VIEW_SPECS: Final[tuple[_Spec, ...]] = (
    ("materialized", "kind", _show_flag("materialized view", "view")),
    ("options", "options", _show_list),
)
_FUNCTION_SPECS: Final[tuple[_Spec, ...]] = (
    ("kind", "kind", _show_text),
    ("result", "result type", _show_text),
    ("language", "language", _show_text),
)
_TRIGGER_SPECS: Final[tuple[_Spec, ...]] = (
    ("definition", "definition", _show_text),
    ("enabled", "firing", _show_text),
)
_TYPE_SPECS: Final[tuple[_Spec, ...]] = (
    ("kind", "kind", _show_text),
    ("definition", "definition", _show_text),
)
_EXTENSION_SPECS: Final[tuple[_Spec, ...]] = (
    ("schema", "schema", _show_text),
    ("version", "version", _show_text),
)


class _Differ:
    """Collects the changes between two snapshots."""

    def __init__(self, default_schema: str | None) -> None:
        self.default_schema = default_schema
        self.changes: list[SchemaChange] = []
        self.column_order: list[SchemaChange] = []

    def show(self, schema: str | None, *names: str) -> str:
        """Quoted dotted name, leaving out the default schema when something follows it."""
        parts = list(names)
        if schema is not None and (schema != self.default_schema or not parts):
            parts.insert(0, schema)
        return ".".join(quote_identifier(p) for p in parts)

    def add(
        self,
        kind: ChangeKind,
        object_type: ObjectType,
        name: str,
        detail: str,
        *,
        before: str | None = None,
        after: str | None = None,
    ) -> None:
        self.changes.append(SchemaChange(kind, object_type, name, detail, before, after))

    def fields(
        self,
        object_type: ObjectType,
        name: str,
        label: str,
        pair: tuple[object, object],
        specs: Sequence[_Spec],
        *,
        definition: str | None = None,
    ) -> None:
        """One change per differing attribute; ``definition`` only if nothing else differs.

        A definition restates the other attributes (``NOT VALID`` in a constraint's text, for
        instance), so it is reported only when it is the sole difference, to say it once.
        """
        before, after = pair
        found = False
        for attr, what, show in specs:
            old, new = getattr(before, attr), getattr(after, attr)
            if old != new:
                found = True
                self.add(
                    "changed",
                    object_type,
                    name,
                    f"{label} changed {what}: {show(old)} → {show(new)}",
                    before=_raw(old),
                    after=_raw(new),
                )
        if definition is not None and not found:
            old, new = getattr(before, definition), getattr(after, definition)
            if old != new:
                self.add(
                    "changed",
                    object_type,
                    name,
                    f"{label} changed definition: {_show_text(old)} → {_show_text(new)}",
                    before=_raw(old),
                    after=_raw(new),
                )

    def long_definition(
        self, object_type: ObjectType, name: str, label: str, *, old: str, new: str, extra: str = ""
    ) -> None:
        """A change of a multi-line definition: named, with full texts in before/after."""
        if old != new:
            detail = f"{label} changed definition{extra}"
            self.add("changed", object_type, name, detail, before=old, after=new)

    # -- per object type ---------------------------------------------------------------------

    def schemas(self, before: Sequence[str], after: Sequence[str]) -> None:
        for name in sorted(set(before) - set(after)):
            self.add("removed", "schema", name, f"schema {quote_identifier(name)} removed")
        for name in sorted(set(after) - set(before)):
            self.add("added", "schema", name, f"schema {quote_identifier(name)} added")

    def mapping(
        self,
        object_type: ObjectType,
        before: Mapping[str, _K],
        after: Mapping[str, _K],
        label: Callable[[_K], str],
        *,
        compare: Callable[[str, str, _K, _K], None],
        added: Callable[[_K], str] = lambda _: "",
    ) -> None:
        for key in sorted(before.keys() - after.keys()):
            item = before[key]
            self.add("removed", object_type, key, f"{label(item)} removed{added(item)}")
        for key in sorted(after.keys() - before.keys()):
            item = after[key]
            self.add("added", object_type, key, f"{label(item)} added{added(item)}")
        for key in sorted(before.keys() & after.keys()):
            if before[key] != after[key]:
                compare(key, label(before[key]), before[key], after[key])

    def table(self, key: str, label: str, before: TableInfo, after: TableInfo) -> None:
        self.fields("table", key, label, (before, after), _TABLE_SPECS)
        self.columns(key, label, before, after)
        table_label = self.show(after.schema, after.name)

        def constraint_label(c: ConstraintInfo) -> str:
            if c.name is not None:
                return f"constraint {self.show(after.schema, after.name, c.name)}"
            return f"constraint {c.definition} on {table_label}"

        def constraint_added(c: ConstraintInfo) -> str:
            return f": {_one_line(c.definition)}" if c.name is not None else ""

        def fk_label(c: ForeignKeyInfo) -> str:
            if c.name is not None:
                return f"foreign key {self.show(after.schema, after.name, c.name)}"
            return f"foreign key {_show_list(c.columns)} → {c.referenced_table} on {table_label}"

        def fk_added(c: ForeignKeyInfo) -> str:
            return f": {_one_line(c.definition)}" if c.definition else ""

        self.mapping(
            "constraint",
            {f"{key}.{c.key}": c for c in before.constraints},
            {f"{key}.{c.key}": c for c in after.constraints},
            constraint_label,
            compare=lambda k, lbl, old, new: self.fields(
                "constraint", k, lbl, (old, new), _CONSTRAINT_SPECS, definition="definition"
            ),
            added=constraint_added,
        )
        self.mapping(
            "foreign_key",
            {f"{key}.{c.key}": c for c in before.foreign_keys},
            {f"{key}.{c.key}": c for c in after.foreign_keys},
            fk_label,
            compare=lambda k, lbl, old, new: self.fields(
                "foreign_key", k, lbl, (old, new), _FOREIGN_KEY_SPECS, definition="definition"
            ),
            added=fk_added,
        )

    def columns(self, key: str, label: str, before: TableInfo, after: TableInfo) -> None:
        old_columns = {c.name: c for c in before.columns}
        new_columns = {c.name: c for c in after.columns}
        for name in sorted(old_columns.keys() - new_columns.keys()):
            shown = self.show(before.schema, before.name, name)
            detail = f"column {shown} removed ({old_columns[name].describe()})"
            self.add("removed", "column", f"{key}.{name}", detail)
        for name in sorted(new_columns.keys() - old_columns.keys()):
            shown = self.show(after.schema, after.name, name)
            detail = f"column {shown} added ({new_columns[name].describe()})"
            self.add("added", "column", f"{key}.{name}", detail)
        for name in sorted(old_columns.keys() & new_columns.keys()):
            shown = self.show(after.schema, after.name, name)
            pair = (old_columns[name], new_columns[name])
            self.fields("column", f"{key}.{name}", f"column {shown}", pair, _COLUMN_SPECS)
        # Only the relative order of the columns both sides have: an added or dropped column
        # shifts positions without being an order change.
        old_order = [c.name for c in before.columns if c.name in new_columns]
        new_order = [c.name for c in after.columns if c.name in old_columns]
        if old_order != new_order:
            old_all = [c.name for c in before.columns]
            new_all = [c.name for c in after.columns]
            detail = f"{label} changed column order: {_show_list(old_all)} → {_show_list(new_all)}"
            self.column_order.append(
                SchemaChange(
                    "changed",
                    "table",
                    key,
                    detail,
                    before=", ".join(old_all),
                    after=", ".join(new_all),
                )
            )

    def enum(self, key: str, label: str, before: EnumInfo, after: EnumInfo) -> None:
        old, new = set(before.values), set(after.values)
        for value in sorted(old - new):
            detail = f"{label} lost value {_literal(value)}"
            self.add("removed", "enum_value", f"{key}.{value}", detail)
        for value in sorted(new - old):
            detail = f"{label} gained value {_literal(value)}"
            self.add("added", "enum_value", f"{key}.{value}", detail)
        old_order = [v for v in before.values if v in new]
        new_order = [v for v in after.values if v in old]
        if old_order != new_order:
            shown = f"{_show_literals(old_order)} → {_show_literals(new_order)}"
            self.add(
                "changed",
                "enum",
                key,
                f"{label} changed value order: {shown}",
                before=", ".join(before.values),
                after=", ".join(after.values),
            )


def diff_schemas(before: SchemaSnapshot, after: SchemaSnapshot) -> SchemaDiff:
    """Every difference between two snapshots of the same database kind, sorted.

    Objects are matched by key, so a rename shows as a removal plus an addition. Differences in
    column order alone go to :attr:`SchemaDiff.column_order` so a caller can relax them.
    """
    if before.dialect != after.dialect:
        raise ValueError(f"cannot compare a {before.dialect} snapshot with a {after.dialect} one")
    d = _Differ(before.default_schema)
    d.schemas(before.schemas, after.schemas)
    _diff_relations(d, before, after)
    _diff_types(d, before, after)
    _diff_code(d, before, after)
    _diff_comments(d, before, after)
    return SchemaDiff(
        changes=tuple(sorted(d.changes, key=SchemaChange.sort_key)),
        column_order=tuple(sorted(d.column_order, key=SchemaChange.sort_key)),
    )


def _diff_relations(d: _Differ, before: SchemaSnapshot, after: SchemaSnapshot) -> None:
    """Extensions, tables (with their columns and constraints) and indexes."""
    show = d.show
    d.mapping(
        "extension",
        before.extensions,
        after.extensions,
        lambda e: f"extension {quote_identifier(e.name)}",
        compare=lambda k, lbl, old, new: d.fields(
            "extension", k, lbl, (old, new), _EXTENSION_SPECS
        ),
        added=lambda e: f" (version {e.version})",
    )
    d.mapping(
        "table",
        before.tables,
        after.tables,
        lambda t: f"table {show(t.schema, t.name)}",
        compare=d.table,
    )
    d.mapping(
        "index",
        before.indexes,
        after.indexes,
        lambda i: f"index {show(i.schema, i.name)}",
        compare=lambda k, lbl, old, new: d.fields(
            "index", k, lbl, (old, new), _INDEX_SPECS, definition="definition"
        ),
        added=lambda i: f" on {show(i.schema, i.table)}: {_one_line(i.definition)}",
    )


def _diff_types(d: _Differ, before: SchemaSnapshot, after: SchemaSnapshot) -> None:
    """Enums, other user-defined types and sequences."""
    show = d.show
    d.mapping(
        "enum",
        before.enums,
        after.enums,
        lambda e: f"enum {show(e.schema, e.name)}",
        compare=d.enum,
        added=lambda e: f": {_show_literals(e.values)}",
    )
    d.mapping(
        "type",
        before.types,
        after.types,
        lambda t: f"{t.kind} type {show(t.schema, t.name)}",
        compare=lambda k, lbl, old, new: d.fields("type", k, lbl, (old, new), _TYPE_SPECS),
        added=lambda t: f": {_one_line(t.definition)}",
    )
    d.mapping(
        "sequence",
        before.sequences,
        after.sequences,
        lambda s: f"sequence {show(s.schema, s.name)}",
        compare=lambda k, lbl, old, new: d.fields("sequence", k, lbl, (old, new), _SEQUENCE_SPECS),
        added=lambda s: f" ({s.data_type}" + (f", owned by {s.owner})" if s.owner else ")"),
    )


def _diff_code(d: _Differ, before: SchemaSnapshot, after: SchemaSnapshot) -> None:
    """Views, functions and procedures, and triggers: objects defined by a body of code."""
    show = d.show

    def compare_views(key: str, label: str, old: ViewInfo, new: ViewInfo) -> None:
        d.fields("view", key, label, (old, new), _VIEW_SPECS)
        d.long_definition("view", key, label, old=old.definition, new=new.definition)

    d.mapping(
        "view",
        before.views,
        after.views,
        lambda v: f"{'materialized view' if v.materialized else 'view'} {show(v.schema, v.name)}",
        compare=compare_views,
    )

    def compare_functions(key: str, label: str, old: FunctionInfo, new: FunctionInfo) -> None:
        d.fields("function", key, label, (old, new), _FUNCTION_SPECS)
        extra = f" (sha256 {old.definition_sha256[:12]} → {new.definition_sha256[:12]})"
        d.long_definition(
            "function", key, label, old=old.definition, new=new.definition, extra=extra
        )

    d.mapping(
        "function",
        before.functions,
        after.functions,
        lambda f: f"{f.kind} {show(f.schema, f.name)}({f.arguments})",
        compare=compare_functions,
    )
    d.mapping(
        "trigger",
        before.triggers,
        after.triggers,
        lambda t: f"trigger {quote_identifier(t.name)} on {show(t.schema, t.table)}",
        compare=lambda k, lbl, old, new: d.fields("trigger", k, lbl, (old, new), _TRIGGER_SPECS),
    )


def _diff_comments(d: _Differ, before: SchemaSnapshot, after: SchemaSnapshot) -> None:
    def comment_label(c: CommentInfo) -> str:
        args = f"({c.arguments})" if c.arguments is not None else ""
        return f"comment on {c.object_type} {d.show(c.schema, *c.names)}{args}"

    def compare_comments(key: str, label: str, old: CommentInfo, new: CommentInfo) -> None:
        detail = f"{label} changed: {_literal(old.text)} → {_literal(new.text)}"
        d.add("changed", "comment", key, detail, before=old.text, after=new.text)

    d.mapping(
        "comment",
        before.comments,
        after.comments,
        comment_label,
        compare=compare_comments,
        added=lambda c: f": {_literal(c.text)}",
    )
