"""SQLite rollback drafts (``backout generate``): the schema after a migration back to before it.

SQLite keeps every object's ``CREATE`` text, so what the migration dropped or changed is
re-created from the text it had before (``definitions``), exactly. Its ``ALTER TABLE`` only
renames, adds and drops columns; any other change to a table is undone by rebuilding it the
way SQLite documents (and Prisma does): create ``new_T`` from the old text, copy the common
columns, drop ``T``, rename ``new_T`` to ``T``, re-create its indexes and triggers, with
``PRAGMA foreign_keys = OFF`` around it (backout runs that outside the transaction). Views,
and triggers of other tables that name a rebuilt table, are dropped and re-created around
the rebuild: SQLite re-checks them when a table is renamed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from backout.dialects.ddl_base import Draft, Rename, plural
from backout.model.identifiers import quote_identifier as q
from backout.model.schema import ColumnInfo, SchemaSnapshot, TableInfo

_CREATE_TABLE = re.compile(
    r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>(?:(?:\"(?:[^\"]|\"\")*\"|\[[^\]]*\]|`(?:[^`]|``)*`|[\w$]+)\s*\.\s*)?"
    r"(?:\"(?:[^\"]|\"\")*\"|\[[^\]]*\]|`(?:[^`]|``)*`|[\w$]+))",
    re.IGNORECASE,
)
#: column defaults SQLite refuses in ADD COLUMN
_NON_CONSTANT = re.compile(r"CURRENT_|\(", re.IGNORECASE)


def rename_back(rename: Rename) -> str | None:
    """``ALTER TABLE`` renames back; indexes, views and triggers are re-created instead."""
    if rename.kind == "table":
        return f"ALTER TABLE {q(rename.new)} RENAME TO {q(rename.old)}"
    if rename.kind == "column" and rename.parent:
        return f"ALTER TABLE {q(rename.parent)} RENAME COLUMN {q(rename.new)} TO {q(rename.old)}"
    return None


def _without(table: TableInfo, names: set[str]) -> TableInfo:
    return replace(table, columns=tuple(c for c in table.columns if c.name not in names))


class _Renderer:
    def __init__(
        self, before: SchemaSnapshot, after: SchemaSnapshot, definitions: Mapping[str, str]
    ) -> None:
        self.b = before
        self.a = after
        self.defs = definitions
        self.d = Draft()
        self.new_tables = [k for k in after.tables if k not in before.tables]
        self.gone_tables = [k for k in before.tables if k not in after.tables]
        self.common = [k for k in before.tables if k in after.tables]
        self.rebuilt: list[str] = []
        self.plans: dict[str, str] = {}

    def definition(self, kind: str, name: str) -> str | None:
        return self.defs.get(f"{kind} {name}")

    # --- what to do with each remaining table ----------------------------------------------

    def plan(self) -> None:
        for key in self.common:
            old, new = self.b.tables[key], self.a.tables[key]
            if old == new:
                continue
            added = {c.name for c in new.columns if old.column(c.name) is None}
            removed = [c for c in old.columns if new.column(c.name) is None]
            if added and not removed and _without(new, added) == old:
                self.plans[key] = "drop_columns"
            elif removed and not added and self._can_add(old, new, removed):
                self.plans[key] = "add_columns"
            else:
                self.plans[key] = "rebuild"
                self.rebuilt.append(key)

    def _can_add(self, old: TableInfo, new: TableInfo, removed: list[ColumnInfo]) -> bool:
        names = {c.name for c in removed}
        last = [c.name for c in old.columns[len(old.columns) - len(removed) :]]
        if set(last) != names or _without(old, names) != new:
            return False
        keys = {c for con in old.constraints for c in con.columns}
        keys |= {c for fk in old.foreign_keys for c in fk.columns}
        for column in removed:
            if column.name in keys or column.generated is not None:
                return False
            if not column.nullable and column.default is None:
                return False
            if column.default is not None and _NON_CONSTANT.search(column.default):
                return False
        return True

    # --- rendering -----------------------------------------------------------------------

    def render(self) -> Draft:
        self.plan()
        pragmas = bool(self.rebuilt or self.new_tables or self.gone_tables)
        if pragmas:
            self.d.add(
                "PRAGMA foreign_keys = OFF",
                comment="backout runs this before the transaction, and switches keys back on "
                "after it (foreign_key_check runs before COMMIT)",
            )
        views, triggers = self._drop_dependents()
        self._drop_new_tables()
        for key in self.common:
            plan = self.plans.get(key)
            if plan == "drop_columns":
                self._drop_columns(key)
            elif plan == "add_columns":
                self._add_columns(key)
            elif plan == "rebuild":
                self._rebuild(key)
        for key in self.gone_tables:
            self._create_table(key)
        self._create_indexes()
        for name in views:
            self._create("view", name)
        for name in triggers:
            self._create("trigger", name)
        if pragmas:
            self.d.add("PRAGMA foreign_keys = ON")
        return self.d

    def _create(self, kind: str, name: str) -> None:
        text = self.definition(kind, name)
        if text is None:
            self.d.todo.append(f"{kind} {q(name)}: its definition is unknown; re-create it")
        else:
            self.d.add(text)

    def _mentions_rebuilt(self, text: str) -> bool:
        lowered = text.lower()
        return any(self.b.tables[k].name.lower() in lowered for k in self.rebuilt)

    def _drop_dependents(self) -> tuple[list[str], list[str]]:
        """Drop changed/new triggers and views (and those a rebuild would trip over); return
        the views and triggers to re-create at the end."""
        views: list[str] = []
        for key, view in self.a.views.items():
            old = self.b.views.get(key)
            if old != view or (self.rebuilt and old is not None):
                self.d.add(f"DROP VIEW {q(view.name)}")
                if old is not None:
                    views.append(old.name)
        views += [v.name for k, v in self.b.views.items() if k not in self.a.views]
        triggers = self._drop_triggers()
        for key, index in self.a.indexes.items():
            table = index.table_key
            if table in self.new_tables or table in self.rebuilt:
                continue
            if self.b.indexes.get(key) != index:
                self.d.add(f"DROP INDEX {q(index.name)}")
        return views, list(dict.fromkeys(triggers))

    def _drop_triggers(self) -> list[str]:
        """Drop changed/new triggers (and those a rebuild would trip over); return the
        triggers to re-create at the end (a rebuilt table's go with its DROP TABLE)."""
        triggers: list[str] = []
        for key, trig in self.a.triggers.items():
            old_trig = self.b.triggers.get(key)
            if trig.table in self.new_tables:
                continue
            rebuilt = trig.table in self.rebuilt
            if old_trig != trig or (not rebuilt and self._mentions_rebuilt(trig.definition)):
                if not rebuilt:
                    self.d.add(f"DROP TRIGGER {q(trig.name)}")
                if old_trig is not None:
                    triggers.append(old_trig.name)
            elif rebuilt and old_trig is not None:
                triggers.append(old_trig.name)  # goes with DROP TABLE
        triggers += [
            trig.name for key, trig in self.b.triggers.items() if key not in self.a.triggers
        ]
        return triggers

    def _drop_new_tables(self) -> None:
        remaining = list(self.new_tables)
        if remaining:
            names = [q(k) for k in remaining]
            self.d.impact.append(f"Drops {plural('table', names)}, created by the migration")
            self.d.data_loss.append(f"Every row of {', '.join(names)}")
        while remaining:
            referenced = {
                fk.referenced_table
                for k in remaining
                for fk in self.a.tables[k].foreign_keys
                if fk.referenced_table != k
            }
            ready = [k for k in remaining if k not in referenced] or list(remaining)
            for key in ready:
                self.d.add(f"DROP TABLE {q(self.a.tables[key].name)}")
                remaining.remove(key)

    def _drop_columns(self, key: str) -> None:
        old, new = self.b.tables[key], self.a.tables[key]
        added = [c for c in new.columns if old.column(c.name) is None]
        names = [q(c.name) for c in added]
        self.d.impact.append(
            f"Drops {plural('column', names)} of {q(new.name)}, added by the migration"
        )
        self.d.data_loss.append(f"The values of {', '.join(names)} of {q(new.name)}")
        for column in added:
            self.d.add(f"ALTER TABLE {q(new.name)} DROP COLUMN {q(column.name)}")

    def _add_columns(self, key: str) -> None:
        old, new = self.b.tables[key], self.a.tables[key]
        for column in old.columns:
            if new.column(column.name) is not None:
                continue
            parts = [q(column.name), column.type]
            if not column.nullable:
                parts.append("NOT NULL")
            if column.default is not None:
                parts.append(f"DEFAULT {column.default}")
            if column.collation is not None:
                parts.append(f"COLLATE {column.collation}")
            self.d.add(
                f"ALTER TABLE {q(old.name)} ADD COLUMN {' '.join(parts)}",
                comment=f"The migration dropped {q(old.name)}.{q(column.name)}: it comes back "
                "without its old values",
            )
            self.d.data_loss.append(
                f"The values {q(old.name)}.{q(column.name)} held before the migration"
            )

    def _rebuild(self, key: str) -> None:
        old, new = self.b.tables[key], self.a.tables[key]
        text = self.definition("table", old.name)
        if text is None:
            self.d.todo.append(f"table {q(old.name)}: its definition is unknown; rebuild it")
            return
        temp = f"new_{old.name}"
        match = _CREATE_TABLE.match(text)
        if match is None:
            self.d.todo.append(f"table {q(old.name)}: cannot read its CREATE TABLE; rebuild it")
            return
        common = [c.name for c in old.columns if new.column(c.name) is not None]
        restored = [
            c
            for c in old.columns
            if new.column(c.name) is None and not c.nullable and not c.default
        ]
        columns = ", ".join(q(c) for c in common)
        self.d.impact.append(
            f"Rebuilds table {q(old.name)} with its definition before the migration"
        )
        lost = [q(c.name) for c in new.columns if old.column(c.name) is None]
        if lost:
            self.d.data_loss.append(f"The values of {', '.join(lost)} of {q(old.name)}")
        self.d.add(
            text[: match.start("name")] + q(temp) + text[match.end("name") :],
            comment=f"Rebuild {q(old.name)} as it was before the migration",
        )
        if restored:
            self.d.manual.append(
                f"Columns {', '.join(q(c.name) for c in restored)} of {q(old.name)} come back "
                "NOT NULL without values: the copy fails while the table has rows; restore them "
                "from a backup"
            )
        self.d.add(f"INSERT INTO {q(temp)} ({columns}) SELECT {columns} FROM {q(old.name)}")
        self.d.add(f"DROP TABLE {q(old.name)}")
        self.d.add(f"ALTER TABLE {q(temp)} RENAME TO {q(old.name)}")

    def _create_table(self, key: str) -> None:
        table = self.b.tables[key]
        self.d.impact.append(f"Re-creates table {q(table.name)}, dropped by the migration")
        self.d.manual.append(f"{q(table.name)} comes back empty: restore its rows from a backup")
        self._create("table", table.name)

    def _create_indexes(self) -> None:
        for key, index in self.b.indexes.items():
            table = index.table_key
            fresh = table in self.rebuilt or table in self.gone_tables
            if not fresh and self.a.indexes.get(key) == index:
                continue
            self._create("index", index.name)


def draft_rollback(
    before: SchemaSnapshot, after: SchemaSnapshot, *, definitions: Mapping[str, str]
) -> Draft:
    """The statements that turn a database at ``after`` back into ``before``."""
    return _Renderer(before, after, definitions).render()
