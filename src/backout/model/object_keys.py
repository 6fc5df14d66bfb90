"""Object identities: what a script's effects name, as a snapshot holds them.

Keys are normalised tuples (``("column", schema, table, name)``), casefolded where the database
folds names, so that an effect read from SQL and an object read from the catalog meet. Kept apart
from :mod:`backout.model.schema` (the snapshot's classes), which commands that never read a
snapshot (``status``) need not load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backout.model.schema import SchemaSnapshot, TableInfo

#: normalised identity of a schema object: (kind, schema, name...) → owning table (or None)
ObjectKey = tuple[str, ...]


def fold_key(parts: Sequence[str | None], case_insensitive: bool) -> ObjectKey:
    """An object key's parts, casefolded where the database folds names."""
    return tuple((p or "").casefold() if case_insensitive else (p or "") for p in parts)


def objects(
    snapshot: SchemaSnapshot, *, case_insensitive: bool
) -> dict[ObjectKey, ObjectKey | None]:
    """Every object of a snapshot → the key of the table it belongs to (None: standalone)."""
    found: dict[ObjectKey, ObjectKey | None] = {}

    def key(*parts: str | None) -> ObjectKey:
        return fold_key(parts, case_insensitive)

    for table in snapshot.tables.values():
        found.update(_table_parts(table, key))
    for index in snapshot.indexes.values():
        found[key("index", index.schema, index.name)] = key("table", index.schema, index.table)
    for kind, items in (
        ("type", snapshot.enums),
        ("type", snapshot.types),
        ("view", snapshot.views),
    ):
        for item in items.values():
            found[key(kind, item.schema, item.name)] = None
    for sequence in snapshot.sequences.values():
        owner = sequence.owned_by_table
        found[key("sequence", sequence.schema, sequence.name)] = (
            key("table", sequence.schema, owner.split(".")[-1]) if owner else None
        )
    for function in snapshot.functions.values():
        found[key("function", function.schema, function.name)] = None
    for trigger in snapshot.triggers.values():
        found[key("trigger", trigger.schema, trigger.table, trigger.name)] = key(
            "table", trigger.schema, trigger.table
        )
    return found


def _table_parts(
    table: TableInfo, key: Callable[..., ObjectKey]
) -> dict[ObjectKey, ObjectKey | None]:
    """A table (standalone), its columns and its named constraints (the table's)."""
    table_key = key("table", table.schema, table.name)
    found: dict[ObjectKey, ObjectKey | None] = {table_key: None}
    for column in table.columns:
        found[key("column", table.schema, table.name, column.name)] = table_key
    for fk in table.foreign_keys:
        if fk.name:
            found[key("constraint", table.schema, table.name, fk.name)] = table_key
    for constraint in table.constraints:
        if constraint.name:
            found[key("constraint", table.schema, table.name, constraint.name)] = table_key
    return found
