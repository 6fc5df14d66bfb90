"""The rules of ``backout lint``: their catalogue, and the static models they reason with.

Rule ids are stable (``BO`` + area + number) and each has a page ``docs/lint/<ID>.md``:

- ``BO1xx`` rollbacks and their directives;
- ``BO2xx`` a rollback in sync with its forward migration;
- ``BO3xx`` statements that will fail, or break the run's atomicity;
- ``BO4xx`` data and review;
- ``BO5xx`` files, history and tools.

Two models feed the rules, both built from :mod:`backout.model.effects` and never from a database:

- :class:`SyncTracker` follows every object a forward migration creates, renames or drops
  through the forward script and then its rollback, by identity (renames are followed, and
  objects owned by a table go with it), so it can say what the rollback leaves behind, drops
  without reason, or never restores.
- :class:`Catalog` is what the forward migrations up to a point have built: the objects (to tell
  whether an ``IF NOT EXISTS`` create made something new) and the foreign keys (to tell whether a
  ``DROP TABLE`` is blocked by, or cascades to, a table that still references it).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from backout.model.effects import Action, Effect, ObjectKind, ObjectRef, namespace_kind

K = ObjectKind


class Severity(enum.StrEnum):
    """How bad a finding is: an error fails ``lint`` (exit 1), a warning does not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Rule:
    """One lint rule: stable id, kebab-case name, fixed severity, one-line summary."""

    id: str
    name: str
    severity: Severity
    summary: str

    @property
    def docs(self) -> str:
        """Where the rule is documented, relative to the backout repository."""
        return f"docs/lint/{self.id}.md"


_ALL_RULES = (
    # --- rollbacks and their directives ---------------------------------------------------
    Rule("BO101", "missing-rollback", Severity.ERROR, "a migration has no rollback script"),
    Rule("BO102", "empty-rollback", Severity.ERROR, "a rollback script has no statements"),
    Rule("BO103", "undeclared-risk", Severity.ERROR, "a rollback declares no risk"),
    Rule(
        "BO104",
        "understated-risk",
        Severity.ERROR,
        "a rollback declares a lower risk than its statements carry",
    ),
    Rule(
        "BO105",
        "scaffold-placeholder",
        Severity.WARNING,
        "a directive still holds the placeholder text of `backout new`",
    ),
    Rule(
        "BO106",
        "writing-check",
        Severity.ERROR,
        "a require/verify/preview query writes, locks or acts outside the database",
    ),
    # --- forward and rollback in sync -----------------------------------------------------
    Rule(
        "BO201",
        "rollback-leaves-object",
        Severity.ERROR,
        "the rollback leaves an object the forward migration created or renamed",
    ),
    Rule(
        "BO202",
        "rollback-drops-unrelated",
        Severity.WARNING,
        "the rollback drops an object the forward migration did not create",
    ),
    Rule(
        "BO203",
        "drop-not-restored",
        Severity.WARNING,
        "the forward migration drops data the rollback cannot bring back (declared)",
    ),
    Rule(
        "BO204",
        "undeclared-data-loss",
        Severity.ERROR,
        "the forward migration drops data the rollback cannot bring back, and no data-loss "
        "is declared",
    ),
    # --- statements that will fail or break atomicity -------------------------------------
    Rule(
        "BO301",
        "drop-blocked-by-foreign-key",
        Severity.ERROR,
        "DROP TABLE while another table still references it",
    ),
    Rule(
        "BO302",
        "drop-cascades-foreign-keys",
        Severity.WARNING,
        "DROP TABLE ... CASCADE silently drops the foreign keys of other tables",
    ),
    Rule(
        "BO303",
        "transaction-control",
        Severity.ERROR,
        "transaction control backout cannot honour (ROLLBACK, unbalanced BEGIN/COMMIT)",
    ),
    Rule(
        "BO304",
        "non-transactional-statement",
        Severity.ERROR,
        "a statement that cannot run in a transaction block, inside the script's own block",
    ),
    Rule(
        "BO305",
        "new-enum-value-used",
        Severity.ERROR,
        "an enum value added and used in one transaction (PostgreSQL 55P04)",
    ),
    # --- data and review ------------------------------------------------------------------
    Rule(
        "BO401",
        "dml-without-where",
        Severity.WARNING,
        "DELETE or UPDATE without WHERE touches every row",
    ),
    Rule("BO402", "needs-review", Severity.WARNING, "a statement the analysis cannot understand"),
    Rule(
        "BO403",
        "server-side-effect",
        Severity.ERROR,
        "a statement acts outside the database (files, programs, other servers)",
    ),
    # --- files, history and tools ---------------------------------------------------------
    Rule("BO501", "syntax-error", Severity.ERROR, "a script does not parse"),
    Rule(
        "BO502",
        "edited-after-apply",
        Severity.ERROR,
        "a forward migration changed after it was applied",
    ),
    Rule(
        "BO503",
        "database-unchecked",
        Severity.WARNING,
        "the applied state could not be read from the database",
    ),
    Rule("BO504", "squawk-failed", Severity.WARNING, "squawk is installed but did not run"),
    Rule(
        "BO505",
        "bad-suppression",
        Severity.WARNING,
        "a lint-ignore comment names no rule, or an unknown one",
    ),
)

#: every rule by id, in catalogue order
RULES: dict[str, Rule] = {rule.id: rule for rule in _ALL_RULES}
#: squawk's rules are reported as ``squawk:<rule-name>``
SQUAWK_PREFIX = "squawk:"
SQUAWK_DOCS = "https://squawkhq.com/docs/{name}"


@dataclass(frozen=True)
class Finding:
    """One problem found by lint, at a file and line."""

    rule: str
    name: str
    severity: Severity
    #: path as shown to users (relative to the project root); None for project-wide findings
    file: str | None
    line: int | None
    message: str
    #: the migration the file belongs to (None for project-wide findings)
    migration: str | None
    #: ``docs/lint/<ID>.md``, or squawk's page for a squawk rule
    docs: str

    @property
    def location(self) -> str:
        """``file:line`` (empty for project-wide findings)."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def __str__(self) -> str:
        where = f"{self.location}: " if self.file is not None else ""
        return f"{where}{self.severity.value} {self.rule} ({self.name}): {self.message}"


# --- names ------------------------------------------------------------------------------------

#: kinds whose objects go with the table they belong to (found in ``Effect.table``)
_OWNED = frozenset({K.COLUMN, K.CONSTRAINT, K.INDEX, K.TRIGGER})
#: kinds a rollback is expected to undo when its forward migration creates them
SYNC_KINDS = frozenset(
    {
        K.TABLE,
        K.COLUMN,
        K.INDEX,
        K.CONSTRAINT,
        K.TYPE,
        K.SEQUENCE,
        K.VIEW,
        K.MATERIALIZED_VIEW,
        K.FUNCTION,
        K.PROCEDURE,
        K.TRIGGER,
        K.SCHEMA,
        K.EXTENSION,
    }
)
#: kinds whose ``IF NOT EXISTS`` create usually meets an object that was there before the
#: migrations (``CREATE EXTENSION IF NOT EXISTS pgcrypto``): not required to be dropped
_SHARED_KINDS = frozenset({K.SCHEMA, K.EXTENSION})
#: functions and procedures (``CREATE OR REPLACE`` creates them; see SyncTracker._create)
_ROUTINES = frozenset({K.FUNCTION, K.PROCEDURE})
#: kinds whose drop loses data that a rollback cannot bring back
DATA_KINDS = frozenset({K.TABLE, K.COLUMN, K.TYPE, K.MATERIALIZED_VIEW})


def _fold(ref: ObjectRef, text: str) -> str:
    return text.casefold() if ref.case_insensitive else text


def _schema(ref: ObjectRef) -> str | None:
    return None if ref.schema is None else _fold(ref, ref.schema)


def kind_of(ref: ObjectRef) -> ObjectKind:
    """The kind that decides identity (an enum is a type, a foreign key a constraint)."""
    return namespace_kind(ref.kind)


def _scoped(ref: ObjectRef) -> bool:
    """True when the name is only unique within its table (columns, constraints, PG triggers)."""
    return ref.parent is not None and kind_of(ref) in (K.COLUMN, K.CONSTRAINT, K.TRIGGER)


def same_object(a: ObjectRef, b: ObjectRef) -> bool:
    """Same kind and name; an unqualified name matches any schema (search_path is unknown)."""
    if kind_of(a) is not kind_of(b) or _fold(a, a.name) != _fold(b, b.name):
        return False
    sa, sb = _schema(a), _schema(b)
    return sa is None or sb is None or sa == sb


T = TypeVar("T")


class _Names(Generic[T]):
    """Objects by (key, schema); an unqualified name (schema None) matches any schema."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[object, ...], list[tuple[str | None, T]]] = {}

    def get(self, key: tuple[object, ...], schema: str | None) -> T | None:
        for found_schema, value in self._by_key.get(key, ()):
            if found_schema is None or schema is None or found_schema == schema:
                return value
        return None

    def add(self, key: tuple[object, ...], schema: str | None, value: T) -> None:
        self._by_key.setdefault(key, []).insert(0, (schema, value))

    def remove(self, key: tuple[object, ...], value: T) -> None:
        entries = self._by_key.get(key)
        if entries:
            entries[:] = [e for e in entries if e[1] is not value]

    def values(self) -> Iterator[T]:
        for entries in self._by_key.values():
            for _, value in entries:
                yield value


# --- what a constraint depends on ---------------------------------------------------------------

_QUOTED = re.compile(r'"((?:[^"]|"")*)"|([A-Za-z_][\w$]*)')
_KEY_COLUMNS = re.compile(r"^(?:UNIQUE|PRIMARY KEY)\s*\(([^)]*)\)")
_FK_COLUMNS = re.compile(r"^\(([^)]*)\)\s*→")


def _identifiers(text: str, ref: ObjectRef) -> frozenset[str]:
    names = set()
    for quoted, bare in _QUOTED.findall(text):
        name = quoted.replace('""', '"') if quoted else bare.lower()
        names.add(_fold(ref, name))
    return frozenset(names)


def depends_on_columns(effect: Effect) -> frozenset[str]:
    """Columns an index or constraint uses: PostgreSQL drops it when one of them is dropped."""
    target = effect.target
    if target.kind is K.INDEX:
        return frozenset(_fold(target, c) for c in effect.columns)
    if kind_of(target) is not K.CONSTRAINT:
        return frozenset()
    detail = effect.detail
    match = _FK_COLUMNS.match(detail) or _KEY_COLUMNS.match(detail)
    if match is not None:
        return _identifiers(match[1], target)
    if detail.startswith("CHECK"):
        return _identifiers(detail.removeprefix("CHECK"), target)
    return frozenset()


_OFF = frozenset({"off", "0", "false", "no"})


def _fk_setting(effect: Effect) -> tuple[str, bool] | None:
    """SQLite's ``PRAGMA foreign_keys`` / ``defer_foreign_keys``: (name, on), else None.

    With foreign keys off, or deferred to the commit, a table can be rebuilt (dropped, then
    re-created under its name) while other tables reference it: nothing checks in between."""
    target = effect.target
    if target.kind is not K.SETTING or effect.action is not Action.OTHER:
        return None
    name = target.name.casefold()
    if name not in ("foreign_keys", "defer_foreign_keys"):
        return None
    value = effect.detail.removeprefix("=").strip().strip("'\"").casefold()
    return name, value not in _OFF


def _recreated_later(effects: Sequence[Effect], position: int) -> bool:
    """True when a table of the dropped one's name is created (or renamed into) afterwards."""
    dropped = effects[position].target
    for effect in effects[position + 1 :]:
        if effect.target.kind is not K.TABLE:
            continue
        if effect.action is Action.CREATE and same_object(effect.target, dropped):
            return True
        renamed = effect.renamed_to
        if effect.action is Action.RENAME and renamed is not None and same_object(renamed, dropped):
            return True
    return False


def _guarded(effect: Effect) -> bool:
    """CREATE ... IF NOT EXISTS / CREATE OR REPLACE: the object may have existed before."""
    return effect.if_exists or "OR REPLACE" in effect.detail


# --- the catalogue built by forward migrations --------------------------------------------------


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key the forward migrations created: child table → parent table."""

    name: ObjectRef
    child: ObjectRef
    parent: ObjectRef
    #: ``file:line`` of the statement that created it
    origin: str
    #: the child's columns it uses, folded (dropping one drops the foreign key)
    columns: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BlockedDrop:
    """A ``DROP TABLE`` while other tables still reference the table by foreign key."""

    effect: Effect
    references: tuple[ForeignKey, ...]


class Catalog:
    """Objects and foreign keys the forward migrations build, statement by statement.

    Only names are kept. Columns count as children of their table (by table name), so a table
    rename moves them and a table drop removes them.
    """

    def __init__(self) -> None:
        self._objects: _Names[ObjectRef] = _Names()
        #: folded table name → {(kind, folded name)}
        self._children: dict[str, set[tuple[str, str]]] = {}
        self.foreign_keys: list[ForeignKey] = []

    def _top(self, ref: ObjectRef) -> tuple[object, ...]:
        return (kind_of(ref).value, _fold(ref, ref.name))

    def exists(self, ref: ObjectRef) -> bool:
        """True when the forward migrations so far created this object (and kept it)."""
        if _scoped(ref):
            assert ref.parent is not None
            children = self._children.get(_fold(ref, ref.parent), set())
            return (kind_of(ref).value, _fold(ref, ref.name)) in children
        return self._objects.get(self._top(ref), _schema(ref)) is not None

    def apply(self, effects: Iterable[Effect], origin_file: str) -> None:
        """Record what a forward script did."""
        for effect in effects:
            self._apply(effect, self.foreign_keys, origin_file)

    def check_drops(self, effects: Sequence[Effect], origin_file: str) -> list[BlockedDrop]:
        """Simulate a script on the foreign keys (nothing is recorded): which ``DROP TABLE``
        meets a table that still references the dropped one."""
        if not any(e.action is Action.DROP and e.target.kind is K.TABLE for e in effects):
            return []
        keys = list(self.foreign_keys)
        blocked: list[BlockedDrop] = []
        enforced, deferred = True, False
        for position, effect in enumerate(effects):
            setting = _fk_setting(effect)
            if setting is not None:
                name, on = setting
                if name == "foreign_keys":
                    enforced = on
                else:
                    deferred = on
            if (
                effect.action is Action.DROP
                and effect.target.kind is K.TABLE
                and enforced
                and not (deferred and _recreated_later(effects, position))
            ):
                dropped_together = [
                    e.target
                    for e in effects
                    if e.statement.index == effect.statement.index
                    and e.action is Action.DROP
                    and e.target.kind is K.TABLE
                ]
                referencing = tuple(
                    fk
                    for fk in keys
                    if same_object(fk.parent, effect.target)
                    and not any(same_object(fk.child, t) for t in dropped_together)
                )
                if referencing:
                    blocked.append(BlockedDrop(effect, referencing))
            self._apply(effect, keys, origin_file, record=False)
        return blocked

    def _apply(
        self, effect: Effect, keys: list[ForeignKey], origin_file: str, *, record: bool = True
    ) -> None:
        action = effect.action
        if action is Action.CREATE:
            created = _created_foreign_key(effect, origin_file)
            if created is not None:
                keys.append(created)
        elif action is Action.DROP:
            keys[:] = _keys_after_drop(effect, keys)
        elif action is Action.RENAME and effect.renamed_to is not None:
            keys[:] = _keys_after_rename(effect.target, effect.renamed_to, keys)
        if record:
            self._record(effect)

    def _record(self, effect: Effect) -> None:
        target = effect.target
        kind = kind_of(target)
        if kind in (K.ENUM_VALUE, K.SETTING):
            return
        if _scoped(target):
            self._record_child(effect)
        elif effect.action is Action.CREATE:
            self._record_create(effect)
        elif effect.action is Action.DROP:
            self._record_drop(target)
        elif effect.action is Action.RENAME and effect.renamed_to is not None:
            self._record_rename(target, effect.renamed_to)

    def _record_child(self, effect: Effect) -> None:
        """A column, constraint or other object named within its table."""
        target = effect.target
        assert target.parent is not None
        table = _fold(target, target.parent)
        entry = (kind_of(target).value, _fold(target, target.name))
        if effect.action is Action.CREATE:
            self._children.setdefault(table, set()).add(entry)
        elif effect.action is Action.DROP:
            self._children.get(table, set()).discard(entry)
        elif effect.action is Action.RENAME and effect.renamed_to is not None:
            children = self._children.setdefault(table, set())
            children.discard(entry)
            children.add((kind_of(target).value, _fold(target, effect.renamed_to.name)))

    def _record_create(self, effect: Effect) -> None:
        target = effect.target
        key = self._top(target)
        if self._objects.get(key, _schema(target)) is None:
            self._objects.add(key, _schema(target), target)
        if kind_of(target) is K.TABLE:
            columns = self._children.setdefault(_fold(target, target.name), set())
            columns.update((K.COLUMN.value, _fold(target, c)) for c in effect.columns)

    def _record_drop(self, target: ObjectRef) -> None:
        key = self._top(target)
        found = self._objects.get(key, _schema(target))
        if found is not None:
            self._objects.remove(key, found)
        if kind_of(target) is K.TABLE:
            self._children.pop(_fold(target, target.name), set())

    def _record_rename(self, target: ObjectRef, new: ObjectRef) -> None:
        key = self._top(target)
        found = self._objects.get(key, _schema(target))
        if found is not None:
            self._objects.remove(key, found)
        self._objects.add(self._top(new), _schema(new), new)
        if kind_of(target) is K.TABLE:
            moved = self._children.pop(_fold(target, target.name), set())
            if moved:
                self._children[_fold(new, new.name)] = moved


def _created_foreign_key(effect: Effect, origin_file: str) -> ForeignKey | None:
    """The foreign key a CREATE effect adds, if it adds one."""
    target = effect.target
    if target.kind is not K.FOREIGN_KEY or not effect.references:
        return None
    child = effect.table or target.owner
    if child is None:
        return None
    origin = f"{origin_file}:{effect.line}"
    return ForeignKey(target, child, effect.references[0], origin, depends_on_columns(effect))


def _names_foreign_key(target: ObjectRef, fk: ForeignKey) -> bool:
    """True when ``target`` (a constraint of a table) is the foreign key ``fk``."""
    return (
        _fold(target, fk.name.name) == _fold(target, target.name)
        and target.parent is not None
        and _fold(target, fk.child.name) == _fold(target, target.parent)
    )


def _keys_after_drop(effect: Effect, keys: list[ForeignKey]) -> list[ForeignKey]:
    """The foreign keys left after a DROP: of a column they use, themselves, a table, a schema."""
    target = effect.target
    kind = kind_of(target)
    if kind is K.COLUMN and target.parent is not None:
        column = _fold(target, target.name)
        table = _fold(target, target.parent)
        return [
            fk
            for fk in keys
            if not (column in fk.columns and _fold(fk.child, fk.child.name) == table)
        ]
    if kind is K.CONSTRAINT:
        return [fk for fk in keys if not _names_foreign_key(target, fk)]
    if kind is K.TABLE:
        return [
            fk
            for fk in keys
            if not same_object(fk.child, target)
            and not (effect.cascade and same_object(fk.parent, target))
        ]
    if kind is K.SCHEMA and effect.cascade:
        return [fk for fk in keys if _schema(fk.child) != _fold(target, target.name)]
    return list(keys)


def _keys_after_rename(
    target: ObjectRef, new: ObjectRef, keys: list[ForeignKey]
) -> list[ForeignKey]:
    """The foreign keys after a RENAME of a table, a column they use, or themselves."""
    kind = kind_of(target)
    if kind is K.TABLE:
        return [
            ForeignKey(
                fk.name,
                new if same_object(fk.child, target) else fk.child,
                new if same_object(fk.parent, target) else fk.parent,
                fk.origin,
                fk.columns,
            )
            for fk in keys
        ]
    if kind is K.COLUMN:
        old, new_column = _fold(target, target.name), _fold(target, new.name)
        table = _fold(target, target.parent or "")
        return [
            replace(fk, columns=(fk.columns - {old}) | {new_column})
            if old in fk.columns and _fold(fk.child, fk.child.name) == table
            else fk
            for fk in keys
        ]
    if kind is K.CONSTRAINT:
        return [replace(fk, name=new) if _names_foreign_key(target, fk) else fk for fk in keys]
    return list(keys)


# --- following objects through a forward migration and its rollback ------------------------------


@dataclass(eq=False)
class TrackedObject:
    """An object as the sync check follows it (identity survives renames)."""

    kind: ObjectKind
    #: its name now
    ref: ObjectRef
    #: its name before the forward migration ran; None when the forward migration created it
    original: ObjectRef | None
    #: the forward migration's CREATE (None for objects that existed before)
    created: Effect | None = None
    #: the table it belongs to (columns, constraints, indexes, triggers)
    owner: TrackedObject | None = None
    #: columns it depends on (indexes, constraints), folded
    columns: frozenset[str] = frozenset()
    #: foreign keys: the table they reference; views: the tables they read
    points_to: tuple[TrackedObject, ...] = ()
    #: the drop that removed it (itself, or its table, a column it uses, a cascade)
    gone: Effect | None = None
    #: created by the rollback itself
    by_rollback: bool = False
    #: a guarded create (IF NOT EXISTS / OR REPLACE) of the forward migration met it again
    replaced_in_rollback: bool = False
    #: the forward migration rebuilt it (dropped it and left another under its name)
    rebuilt: bool = False
    #: a column first seen being dropped, of a table the forward migration created or rebuilt
    #: (the column came with the table's definition)
    from_definition: bool = False
    #: a routine the forward migration's CREATE OR REPLACE met under an existing name: whether
    #: it replaced a body or added an overload cannot be told, so leaving it is no finding
    existed_before: bool = False

    def is_gone(self) -> bool:
        """Dropped, directly or with what it belongs to."""
        return self.gone is not None or (self.owner is not None and self.owner.is_gone())


@dataclass
class SyncResult:
    """What a rollback leaves undone of its forward migration."""

    #: created by the forward migration and still there after the rollback
    left: list[TrackedObject] = field(default_factory=list)
    #: renamed by the forward migration and not renamed back: (object, name it had before)
    not_renamed_back: list[TrackedObject] = field(default_factory=list)
    #: objects the rollback drops that the forward migration did not create
    unrelated_drops: list[Effect] = field(default_factory=list)
    #: dropped by the forward migration and not re-created by the rollback
    not_restored: list[tuple[Effect, ObjectRef]] = field(default_factory=list)


class SyncTracker:
    """Follows a forward script, then its rollback, object by object (see module docstring)."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self._catalog = catalog
        self._names: _Names[TrackedObject] = _Names()
        self._objects: list[TrackedObject] = []
        #: pre-existing objects the forward migration dropped: (drop, object)
        self._forward_drops: list[tuple[Effect, TrackedObject]] = []
        self._restored: set[int] = set()
        self._rollback_drops: list[tuple[Effect, TrackedObject]] = []
        #: names the rollback creates or renames objects into
        self._rollback_creates: list[ObjectRef] = []
        self._in_rollback = False

    # --- identity -----------------------------------------------------------------------------

    def _key(self, ref: ObjectRef, owner: TrackedObject | None) -> tuple[object, ...]:
        if _scoped(ref) and owner is not None:
            return ("child", id(owner), kind_of(ref).value, _fold(ref, ref.name))
        return ("top", kind_of(ref).value, _fold(ref, ref.name))

    def _table(self, ref: ObjectRef | None) -> TrackedObject | None:
        """The tracked table ``ref`` names, adding it as pre-existing when first seen."""
        if ref is None or ref.kind is not K.TABLE:
            return None
        found = self._names.get(self._key(ref, None), _schema(ref))
        if found is None:
            found = TrackedObject(K.TABLE, ref, original=ref)
            self._add(found)
        return found

    def _owner_of(self, effect: Effect) -> TrackedObject | None:
        target = effect.target
        if kind_of(target) not in _OWNED:
            return None
        return self._table(effect.table or target.owner)

    def _add(self, obj: TrackedObject) -> None:
        self._objects.append(obj)
        self._names.add(self._key(obj.ref, obj.owner), _schema(obj.ref), obj)

    def _lookup(self, ref: ObjectRef, owner: TrackedObject | None) -> TrackedObject | None:
        return self._names.get(self._key(ref, owner), _schema(ref))

    # --- walking scripts ------------------------------------------------------------------------

    def forward(self, effects: Iterable[Effect]) -> None:
        """Follow the forward migration's effects."""
        self._in_rollback = False
        for effect in effects:
            self._step(effect)

    def rollback(self, effects: Iterable[Effect]) -> SyncResult:
        """Follow the rollback's effects, then say what it left undone."""
        self._in_rollback = True
        self._merge_rebuilt()
        for effect in effects:
            self._step(effect)
        return self._result()

    def _step(self, effect: Effect) -> None:
        kind = kind_of(effect.target)
        if kind in (K.ENUM_VALUE, K.SETTING):
            return
        if effect.action is Action.CREATE:
            self._create(effect)
        elif effect.action is Action.DROP:
            self._drop(effect)
        elif effect.action is Action.RENAME and effect.renamed_to is not None:
            self._rename(effect)

    def _create(self, effect: Effect) -> None:
        target = effect.target
        owner = self._owner_of(effect)
        existing = self._lookup(target, owner)
        if self._in_rollback:
            self._rollback_creates.append(target)
            if existing is not None and existing.created is not None and _guarded(existing.created):
                existing.replaced_in_rollback = True
                return
            obj = TrackedObject(kind_of(target), target, None, owner=owner, by_rollback=True)
            self._add(obj)
            self._restore(obj)
            return
        existed = existing is not None or (
            self._catalog is not None and self._catalog.exists(target)
        )
        if existed and effect.if_exists:
            return  # IF NOT EXISTS: it was there before, kept, not created
        if existed and _guarded(effect) and kind_of(target) not in _ROUTINES:
            return  # OR REPLACE: it was there before, replaced, not created
        # CREATE OR REPLACE FUNCTION creates the function its rollback drops: routines are
        # known by name only here, so a new overload and a replaced body look alike
        obj = TrackedObject(
            kind_of(target),
            target,
            None,
            created=effect,
            owner=owner,
            columns=depends_on_columns(effect),
            existed_before=existed,
        )
        if target.kind is K.FOREIGN_KEY and effect.references:
            table = self._table(effect.references[0])
            obj.points_to = (table,) if table is not None else ()
        elif kind_of(target) in (K.VIEW, K.MATERIALIZED_VIEW):
            obj.points_to = tuple(t for t in map(self._table, effect.references) if t)
        self._add(obj)

    def _merge_rebuilt(self) -> None:
        """A forward migration that drops an object and leaves another of the same kind under
        its name rebuilt it (SQLite's table redefinition, Prisma's enum replacement): it is the
        same object, changed, rather than one dropped and one created."""
        for obj in self._objects:
            if obj.created is None or obj.is_gone():
                continue
            for index, (_, dropped) in enumerate(self._forward_drops):
                assert dropped.original is not None
                if dropped.owner is obj.owner and self._same_name(dropped.original, obj.ref):
                    del self._forward_drops[index]
                    obj.original = dropped.original
                    obj.created = None
                    obj.rebuilt = True
                    break

    @staticmethod
    def _same_name(a: ObjectRef, b: ObjectRef) -> bool:
        return same_object(a, b)

    def _restore(self, obj: TrackedObject) -> None:
        for _, dropped in self._forward_drops:
            assert dropped.original is not None
            if id(dropped) not in self._restored and self._same_name(dropped.original, obj.ref):
                same_owner = dropped.owner is obj.owner or (
                    dropped.owner is not None
                    and obj.owner is not None
                    and dropped.owner.original is not None
                    and self._same_name(dropped.owner.original, obj.owner.ref)
                )
                if dropped.owner is None or same_owner:
                    self._restored.add(id(dropped))
                    return

    def _drop(self, effect: Effect) -> None:
        target = effect.target
        owner = self._owner_of(effect)
        obj = self._lookup(target, owner)
        kind = kind_of(target)
        if obj is None:
            obj = TrackedObject(kind, target, original=target, owner=owner)
            obj.from_definition = (
                kind is K.COLUMN
                and owner is not None
                and (owner.created is not None or owner.rebuilt)
            )
            self._add(obj)
        self._names.remove(self._key(obj.ref, obj.owner), obj)
        obj.gone = effect
        for other in self._objects:
            if other.gone is not None:
                continue
            if kind is K.COLUMN and other.owner is obj.owner and obj.owner is not None:
                if _fold(target, target.name) in other.columns:
                    other.gone = effect
            elif (effect.cascade and obj in other.points_to) or (
                kind is K.SCHEMA
                and effect.cascade
                and other.ref.schema is not None
                and _fold(other.ref, other.ref.schema) == _fold(target, target.name)
            ):
                other.gone = effect
        if self._in_rollback:
            self._rollback_drops.append((effect, obj))
        elif obj.created is None and not obj.from_definition:
            # a column of a table this migration created is gone with it: nothing to restore
            self._forward_drops.append((effect, obj))

    def _rename(self, effect: Effect) -> None:
        target = effect.target
        new = effect.renamed_to
        assert new is not None
        owner = self._owner_of(effect)
        obj = self._lookup(target, owner)
        if obj is None:
            obj = TrackedObject(kind_of(target), target, original=target, owner=owner)
            self._add(obj)
        self._names.remove(self._key(obj.ref, obj.owner), obj)
        if obj.kind is K.COLUMN and obj.owner is not None:
            old, renamed = _fold(obj.ref, obj.ref.name), _fold(new, new.name)
            for other in self._objects:
                if other.owner is obj.owner and old in other.columns:
                    other.columns = (other.columns - {old}) | {renamed}
        obj.ref = new
        self._names.add(self._key(new, obj.owner), _schema(new), obj)
        if self._in_rollback:
            self._rollback_creates.append(new)
            self._restore(obj)

    # --- the verdict --------------------------------------------------------------------------

    def _result(self) -> SyncResult:
        result = SyncResult()
        for obj in self._objects:
            if self._left_behind(obj):
                result.left.append(obj)
            elif self._not_renamed_back(obj):
                result.not_renamed_back.append(obj)
        result.unrelated_drops.extend(self._unrelated_drops())
        result.not_restored.extend(self._not_restored())
        return result

    @staticmethod
    def _followed(obj: TrackedObject) -> bool:
        """An object the sync check reports on: of a synced kind, there after the rollback."""
        return not (obj.by_rollback or obj.is_gone() or obj.kind not in SYNC_KINDS)

    def _left_behind(self, obj: TrackedObject) -> bool:
        """Created by the forward migration and still there after the rollback."""
        created = obj.created
        if created is None or not self._followed(obj):
            return False
        if obj.replaced_in_rollback or obj.existed_before:
            return False
        return not (created.if_exists and obj.kind in _SHARED_KINDS)

    def _not_renamed_back(self, obj: TrackedObject) -> bool:
        """Renamed (or moved) by the forward migration and not back by the rollback."""
        original = obj.original
        if obj.created is not None or original is None or not self._followed(obj):
            return False
        return not self._same_name(original, obj.ref) or original.schema != obj.ref.schema

    def _unrelated_drops(self) -> list[Effect]:
        """The rollback's drops of objects the forward migration neither created nor rebuilt."""
        found = []
        for effect, obj in self._rollback_drops:
            if obj.created is not None or obj.by_rollback or obj.from_definition:
                continue
            names = [effect.target] + ([obj.original] if obj.original is not None else [])
            if any(self._same_name(ref, name) for ref in self._rollback_creates for name in names):
                continue  # rebuilt under its name (SQLite's table redefinition, enum swaps)
            found.append(effect)
        return found

    def _not_restored(self) -> list[tuple[Effect, ObjectRef]]:
        """The forward migration's drops of data the rollback does not bring back."""
        found = []
        for effect, obj in self._forward_drops:
            if id(obj) in self._restored or obj.kind not in DATA_KINDS:
                continue
            if obj.owner is not None and obj.owner.gone is not None and obj.owner.created is None:
                continue  # its table was dropped too: reported once, for the table
            assert obj.original is not None
            found.append((effect, obj.original))
        return found


# --- string literals ---------------------------------------------------------------------------

_LITERAL_SCAN = re.compile(
    r"--[^\n]*|/\*.*?\*/|\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$|'(?P<text>(?:[^']|'')*)'|\"(?:[^\"]|\"\")*\"",
    re.S,
)


def string_literals(sql: str) -> set[str]:
    """The single-quoted string literals of a statement (comments, quoted identifiers and
    dollar-quoted bodies are skipped: a function body does not run when it is defined)."""
    found: set[str] = set()
    for match in _LITERAL_SCAN.finditer(sql):
        text = match["text"]
        if text is not None:
            found.add(text.replace("''", "'"))
    return found
