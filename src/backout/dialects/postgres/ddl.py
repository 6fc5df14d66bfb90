"""PostgreSQL rollback drafts: the SQL that turns the schema after a migration back into the one
before it, from two catalog snapshots (``backout generate``).

The order matters, and is fixed:

1. drop what depends on the objects about to change: triggers, views, foreign keys,
   constraints and indexes the migration added or changed; defaults that change;
2. drop the tables the migration created, referencing tables first;
3. re-create what columns need: schemas, extensions, enum types (and removed enum values),
   domains, sequences, functions;
4. columns of the remaining tables: drop added ones, re-add dropped ones, change types,
   nullability, identity and collation back; rebuild enum types that gained values; defaults;
5. re-create the tables the migration dropped;
6. constraints, indexes, foreign keys, triggers, views and comments;
7. drop the functions, sequences, types, extensions and schemas the migration created.

Data cannot come back: a re-created table is empty, a re-added column holds NULLs. The draft
says so in its header (``data-loss``, ``manual``) and never invents values.
"""

from __future__ import annotations

from collections.abc import Iterable

from backout.dialects.ddl_base import Draft, LiveNames, Rename, plural
from backout.model.identifiers import qualified_name
from backout.model.identifiers import quote_identifier as q
from backout.model.schema import (
    ColumnInfo,
    CommentInfo,
    EnumInfo,
    FunctionInfo,
    SchemaSnapshot,
    SequenceInfo,
    TableInfo,
    TypeInfo,
    ViewInfo,
)


def literal(text: str) -> str:
    """A quoted string literal."""
    return "'" + text.replace("'", "''") + "'"


_RENAME_KINDS = {
    "table": "TABLE",
    "index": "INDEX",
    "type": "TYPE",
    "view": "VIEW",
    "sequence": "SEQUENCE",
}


def rename_back(rename: Rename) -> str | None:
    """The statement that gives an object renamed by the migration its old name back."""
    schema = f"{q(rename.schema)}." if rename.schema else ""
    if rename.kind == "column" and rename.parent:
        return (
            f"ALTER TABLE {schema}{q(rename.parent)} RENAME COLUMN {q(rename.new)} "
            f"TO {q(rename.old)}"
        )
    if rename.kind == "constraint" and rename.parent:
        return (
            f"ALTER TABLE {schema}{q(rename.parent)} RENAME CONSTRAINT {q(rename.new)} "
            f"TO {q(rename.old)}"
        )
    if rename.kind == "enum_value" and rename.parent:
        return (
            f"ALTER TYPE {schema}{q(rename.parent)} RENAME VALUE {literal(rename.new)} "
            f"TO {literal(rename.old)}"
        )
    keyword = _RENAME_KINDS.get(rename.kind)
    if keyword is None:
        return None
    return f"ALTER {keyword} {schema}{q(rename.new)} RENAME TO {q(rename.old)}"


def _type_name(type_: str) -> str:
    """``"VoucherType"[]`` → ``VoucherType``: the type a column type names, unquoted."""
    bare = type_.removesuffix("[]")
    if bare.startswith('"') and bare.endswith('"'):
        return bare[1:-1].replace('""', '"')
    return bare.rsplit(".", 1)[-1].strip('"')


class _Renderer:
    """Builds the draft for one pair of snapshots."""

    def __init__(self, before: SchemaSnapshot, after: SchemaSnapshot, live: LiveNames) -> None:
        self.live = live
        self.b = before
        self.a = after
        self.default = before.default_schema or after.default_schema
        self.d = Draft()
        self.new_tables = [k for k in after.tables if k not in before.tables]
        self.gone_tables = [k for k in before.tables if k not in after.tables]
        self.common = [k for k in before.tables if k in after.tables]
        #: (table key, column) pairs whose defaults are reset in phase 4
        self.defaults: list[tuple[str, ColumnInfo]] = []
        #: enums rebuilt in phase 4 (their columns' defaults are handled there)
        self.rebuilt: set[str] = set()
        #: columns the migration added and the draft drops (table key, column)
        self.dropped_columns: set[tuple[str, str]] = set()
        #: foreign keys (table key, key) dropped around a column type change and re-added
        self.fks_around_retype: set[tuple[str, str]] = self._fks_on_retyped_columns()

    # --- names --------------------------------------------------------------------------

    def name(self, schema: str | None, name: str) -> str:
        if schema is None or schema == self.default:
            return q(name)
        return f"{q(schema)}.{q(name)}"

    def table(self, key: str) -> str:
        info = self.b.tables.get(key) or self.a.tables[key]
        return self.name(info.schema, info.name)

    def show(self, key: str) -> str:
        return self.table(key)

    def column(self, key: str, column: str) -> str:
        return f"{self.show(key)}.{q(column)}"

    def check_table(self, key: str) -> str:
        """The table as a ``require`` check must name it: checks run before any statement,
        so before the migration's renames are undone."""
        info = self.b.tables.get(key) or self.a.tables[key]
        return self.name(info.schema, self.live.tables.get(info.name, info.name))

    def check_column(self, key: str, column: str) -> str:
        """The column as a ``require`` check must name it (see :meth:`check_table`)."""
        info = self.b.tables.get(key) or self.a.tables[key]
        return q(self.live.columns.get((info.name, column), column))

    def _retyped_columns(self) -> set[tuple[str, str]]:
        """(table key, column) of every column whose type the draft changes back."""
        found = set()
        for key in self.common:
            new = self.a.tables[key]
            for column in self.b.tables[key].columns:
                current = new.column(column.name)
                if current is not None and current.type != column.type:
                    found.add((key, column.name))
        return found

    def _fks_on_retyped_columns(self) -> set[tuple[str, str]]:
        """Foreign keys (in the schema after the migration) on either side of a column whose
        type goes back: PostgreSQL refuses to change a key's type under them (it re-checks
        the pair and finds them incompatible), so they are dropped first and re-added after."""
        retyped = self._retyped_columns()
        found = set()
        for key in self.common:
            for fk in self.a.tables[key].foreign_keys:
                own = any((key, c) in retyped for c in fk.columns)
                far = any((fk.referenced_table, c) in retyped for c in fk.referenced_columns)
                if fk.name and (own or far):
                    found.add((key, fk.key))
        return found

    def _is_enum(self, type_: str) -> bool:
        name = _type_name(type_)
        return any(e.name == name for e in (*self.b.enums.values(), *self.a.enums.values()))

    def _cast(self, column: str, from_type: str, to_type: str) -> str:
        """``USING`` expression: through text where an enum is involved, since PostgreSQL has
        no cast between two enum types (42846) and enum labels are what both share."""
        if not (self._is_enum(from_type) or self._is_enum(to_type)):
            return f"{q(column)}::{to_type}"
        text = "text[]" if to_type.endswith("[]") else "text"
        return f"{q(column)}::{text}::{to_type}"

    # --- phase 1: what depends on what changes ---------------------------------------------

    def phase1(self) -> None:
        for key, trig in self.a.triggers.items():
            table = f"{trig.schema}.{trig.table}" if trig.schema else trig.table
            if self.b.triggers.get(key) == trig or table in self.new_tables:
                continue
            self.d.add(f"DROP TRIGGER {q(trig.name)} ON {self.name(trig.schema, trig.table)}")
        for key, view in self.a.views.items():
            if self.b.views.get(key) != view:
                kind = "MATERIALIZED VIEW" if view.materialized else "VIEW"
                self.d.add(f"DROP {kind} {self.name(view.schema, view.name)}")
        for key in self.common:
            self._drop_changed_constraints(key)
        dropped_views = {k for k, v in self.a.views.items() if self.b.views.get(k) != v}
        for key, index in self.a.indexes.items():
            if index.table_key in self.new_tables or index.table_key in dropped_views:
                continue  # goes with its table or materialized view
            if self.b.indexes.get(key) == index:
                continue
            self.d.add(f"DROP INDEX {self.name(index.schema, index.name)}")
        for key in self.common:
            self._drop_changed_defaults(key)

    def _drop_changed_constraints(self, key: str) -> None:
        """A kept table's foreign keys and constraints the migration added or changed."""
        before_fks = {fk.key: fk for fk in self.b.tables[key].foreign_keys}
        for fk in self.a.tables[key].foreign_keys:
            around = (key, fk.key) in self.fks_around_retype
            if (before_fks.get(fk.key) != fk or around) and fk.name:
                self.d.add(
                    f"ALTER TABLE {self.table(key)} DROP CONSTRAINT {q(fk.name)}",
                    comment="Re-added once the key types are back" if around else "",
                )
        before_cons = {c.key: c for c in self.b.tables[key].constraints}
        for con in self.a.tables[key].constraints:
            if before_cons.get(con.key) != con and con.name:
                self.d.add(f"ALTER TABLE {self.table(key)} DROP CONSTRAINT {q(con.name)}")

    def _drop_changed_defaults(self, key: str) -> None:
        """A kept table's column defaults that must go before the column's type or default is
        put back."""
        old_cols = {c.name: c for c in self.b.tables[key].columns}
        for column in self.a.tables[key].columns:
            previous = old_cols.get(column.name)
            if previous is None or column.default is None:
                continue
            if previous.default != column.default or previous.type != column.type:
                self.d.add(
                    f"ALTER TABLE {self.table(key)} ALTER COLUMN {q(column.name)} DROP DEFAULT"
                )

    # --- phase 2: tables the migration created ---------------------------------------------

    def phase2(self) -> None:
        remaining = list(self.new_tables)
        if remaining:
            self.d.impact.append(
                "Drops " + plural("table", [self.show(k) for k in remaining]) + ", created by "
                "the migration"
            )
            self.d.data_loss.append("Every row of " + ", ".join(self.show(k) for k in remaining))
        while remaining:
            referenced = {
                fk.referenced_table
                for k in remaining
                for fk in self.a.tables[k].foreign_keys
                if fk.referenced_table != k
            }
            ready = [k for k in remaining if k not in referenced]
            if not ready:  # a cycle: cut it at its foreign keys
                for k in remaining:
                    for fk in self.a.tables[k].foreign_keys:
                        if fk.referenced_table in remaining and fk.name:
                            self.d.add(f"ALTER TABLE {self.table(k)} DROP CONSTRAINT {q(fk.name)}")
                ready = list(remaining)
            for key in ready:
                self.d.add(f"DROP TABLE {self.table(key)}")
                remaining.remove(key)

    # --- phase 3: what columns need -------------------------------------------------------

    def phase3(self) -> None:
        for schema in self.b.schemas:
            if schema not in self.a.schemas:
                self.d.add(f"CREATE SCHEMA {q(schema)}")
        for name, ext in self.b.extensions.items():
            if name not in self.a.extensions:
                self.d.add(f"CREATE EXTENSION IF NOT EXISTS {q(name)} WITH SCHEMA {q(ext.schema)}")
        self._restore_types()
        for key, seq in self.b.sequences.items():
            current_seq = self.a.sequences.get(key)
            if current_seq is None and not self._identity_sequence(seq):
                self.d.add(self._create_sequence(seq))
            elif current_seq is not None and current_seq != seq:
                self._alter_sequence(seq)
        for key, function in self.b.functions.items():
            current_fn = self.a.functions.get(key)
            if current_fn == function:
                continue
            if current_fn is not None and (
                current_fn.result != function.result or current_fn.kind != function.kind
            ):
                self.d.add(self._drop_function(current_fn))
            self.d.add(function.definition.strip())

    def _restore_types(self) -> None:
        """Enums and other types the migration dropped or changed."""
        for key, enum in self.b.enums.items():
            current = self.a.enums.get(key)
            if current is None:
                values = ", ".join(literal(v) for v in enum.values)
                self.d.add(f"CREATE TYPE {self.name(enum.schema, enum.name)} AS ENUM ({values})")
            elif current != enum:
                self._enum_values(key, enum, current)
        for key, type_ in self.b.types.items():
            current_type = self.a.types.get(key)
            if current_type is None:
                self.d.add(self._create_type(type_))
            elif current_type != type_:
                self.d.todo.append(f"{type_.kind} type {type_.key} changed: re-create it by hand")

    def _enum_values(self, key: str, enum: EnumInfo, current: EnumInfo) -> None:
        extra = [v for v in current.values if v not in enum.values]
        common_order = [v for v in current.values if v in enum.values]
        if not extra and common_order == [v for v in enum.values if v in current.values]:
            present = set(current.values)
            previous: str | None = None
            for value in enum.values:
                if value not in present:
                    where = (
                        f" AFTER {literal(previous)}"
                        if previous is not None
                        else f" BEFORE {literal(current.values[0])}"
                        if current.values
                        else ""
                    )
                    name = self.name(enum.schema, enum.name)
                    self.d.add(f"ALTER TYPE {name} ADD VALUE {literal(value)}{where}")
                    present.add(value)
                previous = value
            return
        self.rebuilt.add(key)

    def _rebuild_enum(self, key: str) -> None:
        enum = self.b.enums[key]
        current = self.a.enums[key]
        name = self.name(enum.schema, enum.name)
        old_name = f"{enum.name}_backout_old"
        extra = [v for v in current.values if v not in enum.values]
        values = ", ".join(literal(v) for v in enum.values)
        shown = ", ".join(literal(v) for v in extra)
        self.d.add(
            f"ALTER TYPE {name} RENAME TO {q(old_name)}",
            comment=f"Rebuild enum {name} without the value(s) the migration added: {shown}",
        )
        self.d.add(f"CREATE TYPE {name} AS ENUM ({values})")
        for table_key in self.common:
            for column in self.b.tables[table_key].columns:
                if _type_name(column.type) != enum.name:
                    continue
                if (table_key, column.name) in self.dropped_columns:
                    continue
                table = self.table(table_key)
                array = "[]" if column.type.endswith("[]") else ""
                if extra:
                    live = self.check_column(table_key, column.name)
                    test = (
                        f"{live}::text[] && ARRAY[{shown}]"
                        if array
                        else f"{live}::text IN ({shown})"
                    )
                    self.d.requires.append(
                        f"SELECT NOT EXISTS (SELECT 1 FROM {self.check_table(table_key)} "
                        f"WHERE {test})"
                    )
                current_col = self.a.tables[table_key].column(column.name)
                if current_col is not None and current_col.default is not None:
                    self.d.add(f"ALTER TABLE {table} ALTER COLUMN {q(column.name)} DROP DEFAULT")
                self.d.add(
                    f"ALTER TABLE {table} ALTER COLUMN {q(column.name)} TYPE {column.type} "
                    f"USING {q(column.name)}::text{array}::{column.type}"
                )
                if column.default is not None:
                    self.d.add(
                        f"ALTER TABLE {table} ALTER COLUMN {q(column.name)} "
                        f"SET DEFAULT {column.default}"
                    )
                self.defaults = [d for d in self.defaults if d != (table_key, column)]
        schema = f"{q(enum.schema)}." if enum.schema and enum.schema != self.default else ""
        self.d.add(f"DROP TYPE {schema}{q(old_name)}")
        if extra:
            self.d.impact.append(f"Removes value(s) {shown} from enum {name} (rebuilds the type)")
            self.d.manual.append(
                f"Rows using enum value(s) {shown} of {name} must be changed before the rollback "
                "(its require checks refuse to start otherwise)"
            )

    def _create_type(self, type_: TypeInfo) -> str:
        name = self.name(type_.schema, type_.name)
        if type_.kind == "domain":
            return f"CREATE DOMAIN {name} AS {type_.definition}"
        if type_.kind == "range":
            return f"CREATE TYPE {name} AS RANGE {type_.definition}"
        return f"CREATE TYPE {name} AS {type_.definition}"

    def _identity_sequence(self, seq: SequenceInfo) -> bool:
        if seq.owned_by_table is None or seq.owned_by_column is None:
            return False
        table = self.b.tables.get(seq.owned_by_table)
        column = table.column(seq.owned_by_column) if table else None
        return column is not None and column.identity is not None

    def _sequence_options(self, seq: SequenceInfo) -> str:
        return (
            f"AS {seq.data_type} INCREMENT BY {seq.increment} MINVALUE {seq.minimum} "
            f"MAXVALUE {seq.maximum} START WITH {seq.start} CACHE {seq.cache}"
            + (" CYCLE" if seq.cycle else " NO CYCLE")
        )

    def _create_sequence(self, seq: SequenceInfo) -> str:
        return f"CREATE SEQUENCE {self.name(seq.schema, seq.name)} {self._sequence_options(seq)}"

    def _alter_sequence(self, seq: SequenceInfo) -> None:
        options = self._sequence_options(seq)
        self.d.add(f"ALTER SEQUENCE {self.name(seq.schema, seq.name)} {options}")

    def _drop_function(self, function: FunctionInfo) -> str:
        keyword = {"procedure": "PROCEDURE", "aggregate": "AGGREGATE"}.get(
            function.kind, "FUNCTION"
        )
        return f"DROP {keyword} {self.name(function.schema, function.name)}({function.arguments})"

    # --- phase 4: columns of the remaining tables ------------------------------------------

    def phase4(self) -> None:
        for key in self.common:
            old, new = self.b.tables[key], self.a.tables[key]
            added = [c for c in new.columns if old.column(c.name) is None]
            if added:
                names = [q(c.name) for c in added]
                self.d.impact.append(
                    f"Drops {plural('column', names)} of {self.show(key)}, added by the migration"
                )
                self.d.data_loss.append(f"The values of {', '.join(names)} of {self.show(key)}")
            for column in added:
                self.dropped_columns.add((key, column.name))
                self.d.add(f"ALTER TABLE {self.table(key)} DROP COLUMN {q(column.name)}")
            for column in old.columns:
                if new.column(column.name) is None:
                    self._add_column(key, column)
            for column in old.columns:
                current = new.column(column.name)
                if current is not None and current != column:
                    self._alter_column(key, column, current)
            self._table_options(key, old, new)
        for key in sorted(self.rebuilt):
            self._rebuild_enum(key)
        for key, column in self.defaults:
            self.d.add(
                f"ALTER TABLE {self.table(key)} ALTER COLUMN {q(column.name)} "
                f"SET DEFAULT {column.default}"
            )

    def _column_sql(self, column: ColumnInfo, *, not_null: bool) -> str:
        parts = [q(column.name), column.type]
        if column.collation is not None:
            parts.append(f"COLLATE {q(column.collation)}")
        if column.generated is not None:
            parts.append(f"GENERATED ALWAYS AS ({column.generated}) STORED")
        elif column.identity is not None:
            parts.append(f"GENERATED {column.identity} AS IDENTITY")
        elif column.default is not None:
            parts.append(f"DEFAULT {column.default}")
        if not_null and not column.nullable:
            parts.append("NOT NULL")
        return " ".join(parts)

    def _add_column(self, key: str, column: ColumnInfo) -> None:
        table = self.table(key)
        fills = column.default is not None or column.identity is not None
        fills = fills or column.generated is not None
        self.d.impact.append(f"Re-adds column {self.column(key, column.name)} ({column.type})")
        self.d.add(
            f"ALTER TABLE {table} ADD COLUMN {self._column_sql(column, not_null=fills)}",
            comment=f"The migration dropped {self.column(key, column.name)}: it comes back "
            + ("with its default, not its old values" if fills else "holding NULLs"),
        )
        self.d.data_loss.append(
            f"The values {self.column(key, column.name)} held before the migration (restore "
            "them from a backup)"
        )
        if not column.nullable and not fills:
            self.d.add(
                f"ALTER TABLE {table} ALTER COLUMN {q(column.name)} SET NOT NULL",
                comment="Fails while the table has rows: their values are gone. Restore them "
                "from a backup first (UPDATE ... FROM the restored copy)",
            )
            self.d.manual.append(
                f"Restore the values of {self.column(key, column.name)} from a backup: the "
                "rollback re-adds the column NOT NULL, which fails while rows hold NULL"
            )

    def _alter_column(self, key: str, column: ColumnInfo, current: ColumnInfo) -> None:
        table = self.table(key)
        alter = f"ALTER TABLE {table} ALTER COLUMN {q(column.name)}"
        shown = self.column(key, column.name)
        enum_key = next(
            (k for k in self.rebuilt if self.b.enums[k].name == _type_name(column.type)), None
        )
        if column.type != current.type and enum_key is None:
            using = self._cast(column.name, current.type, column.type)
            collate = f" COLLATE {q(column.collation)}" if column.collation else ""
            self.d.add(
                f"{alter} TYPE {column.type}{collate} USING {using}",
                comment=f"{shown} back from {current.type} to {column.type}",
            )
            self.d.impact.append(f"Changes {shown} back to {column.type} (from {current.type})")
            self.d.data_loss.append(
                f"Values of {shown} that do not fit {column.type} make the rollback fail"
            )
        elif column.collation != current.collation:
            collate = f" COLLATE {q(column.collation)}" if column.collation else ""
            self.d.add(f"{alter} TYPE {column.type}{collate}")
        if column.nullable and not current.nullable:
            self.d.add(f"{alter} DROP NOT NULL")
        elif not column.nullable and current.nullable:
            self.d.requires.append(
                f"SELECT NOT EXISTS (SELECT 1 FROM {self.check_table(key)} "
                f"WHERE {self.check_column(key, column.name)} IS NULL)"
            )
            self.d.add(
                f"{alter} SET NOT NULL",
                comment=f"Rows written since the migration may hold NULL in {shown}",
            )
            self.d.manual.append(
                f"Give every row a value for {shown} (or delete those rows) before rolling back: "
                "the migration allowed NULL there"
            )
        if column.identity != current.identity:
            if column.identity is None:
                self.d.add(f"{alter} DROP IDENTITY")
            elif current.identity is None:
                self.d.add(f"{alter} ADD GENERATED {column.identity} AS IDENTITY")
            else:
                self.d.add(f"{alter} SET GENERATED {column.identity}")
        if column.generated != current.generated:
            self.d.todo.append(f"the generation expression of {shown} changed: restore it by hand")
        changed = column.default != current.default or column.type != current.type
        if changed and column.default is not None and enum_key is None:
            # the current default was dropped in phase 1
            self.defaults.append((key, column))
        if column.default != current.default:
            self.d.impact.append(
                f"Sets the default of {shown} back to {column.default or 'none'}"
                + (f" (from {current.default})" if current.default else "")
            )

    def _table_options(self, key: str, old: TableInfo, new: TableInfo) -> None:
        table = self.table(key)
        if old.unlogged != new.unlogged:
            self.d.add(f"ALTER TABLE {table} SET {'UNLOGGED' if old.unlogged else 'LOGGED'}")
        if old.options != new.options:
            if new.options:
                names = ", ".join(o.split("=", 1)[0] for o in new.options)
                self.d.add(f"ALTER TABLE {table} RESET ({names})")
            if old.options:
                self.d.add(f"ALTER TABLE {table} SET ({', '.join(old.options)})")
        if (old.kind, old.parents, old.partition_key, old.partition_bound) != (
            new.kind,
            new.parents,
            new.partition_key,
            new.partition_bound,
        ):
            self.d.todo.append(f"inheritance or partitioning of {self.show(key)} changed")

    # --- phase 5: tables the migration dropped ---------------------------------------------

    def phase5(self) -> None:
        if self.gone_tables:
            shown = [self.show(k) for k in self.gone_tables]
            self.d.impact.append(f"Re-creates {plural('table', shown)}, dropped by the migration")
            self.d.manual.append(
                f"{', '.join(shown)} come back empty: restore their rows from a backup"
            )
        for key in self.gone_tables:
            self.d.add(self._create_table(self.b.tables[key]))
        for key, seq in self.b.sequences.items():
            if seq.owned_by_table is None or seq.owned_by_column is None:
                continue
            current = self.a.sequences.get(key)
            if current is not None and current.owner == seq.owner:
                continue
            if self._identity_sequence(seq):
                continue
            owner = f"{self.table(seq.owned_by_table)}.{q(seq.owned_by_column)}"
            self.d.add(f"ALTER SEQUENCE {self.name(seq.schema, seq.name)} OWNED BY {owner}")

    def _create_table(self, table: TableInfo) -> str:
        name = self.name(table.schema, table.name)
        unlogged = "UNLOGGED " if table.unlogged else ""
        if table.partition_bound is not None and table.parents:
            parent = self.table(table.parents[0])
            return f"CREATE {unlogged}TABLE {name} PARTITION OF {parent} {table.partition_bound}"
        items = [self._column_sql(c, not_null=True) for c in table.columns]
        items += [
            f"CONSTRAINT {q(c.name)} {c.definition}"
            for c in table.constraints
            if c.name and c.validated
        ]
        body = ",\n    ".join(items)
        tail = ""
        if table.parents:
            tail += f" INHERITS ({', '.join(self.table(p) for p in table.parents)})"
        if table.partition_key:
            tail += f" PARTITION BY {table.partition_key}"
        if table.options:
            tail += f" WITH ({', '.join(table.options)})"
        return f"CREATE {unlogged}TABLE {name} (\n    {body}\n){tail}"

    # --- phase 6: constraints, indexes, foreign keys, triggers, views, comments ----------

    def phase6(self) -> None:
        for key in self.common + self.gone_tables:
            self._restore_constraints(key)
        for key, index in self.b.indexes.items():
            if self.a.indexes.get(key) == index and index.table_key not in self.gone_tables:
                continue
            self.d.add(index.definition)
        for key in self.common + self.gone_tables:
            self._restore_foreign_keys(key)
        for key, trig in self.b.triggers.items():
            table = f"{trig.schema}.{trig.table}" if trig.schema else trig.table
            if self.a.triggers.get(key) == trig and table not in self.gone_tables:
                continue
            self.d.add(trig.definition)
            if trig.enabled == "DISABLED":
                name = self.name(trig.schema, trig.table)
                self.d.add(f"ALTER TABLE {name} DISABLE TRIGGER {q(trig.name)}")
        for key, view in self.b.views.items():
            if self.a.views.get(key) != view:
                self.d.add(self._create_view(view))
        self._comments()

    def _restore_constraints(self, key: str) -> None:
        """A table's constraints the migration dropped or changed (a re-created table has its
        validated ones in its CREATE TABLE already)."""
        new = self.a.tables.get(key)
        current = {c.key: c for c in new.constraints} if new else {}
        for con in self.b.tables[key].constraints:
            fresh = key in self.gone_tables and con.validated
            if not con.name or fresh or current.get(con.key) == con:
                continue
            self.d.add(
                f"ALTER TABLE {self.table(key)} ADD CONSTRAINT {q(con.name)} {con.definition}"
            )

    def _restore_foreign_keys(self, key: str) -> None:
        """A table's foreign keys the migration dropped or changed, or that phase 1 dropped
        around a key's retype."""
        new = self.a.tables.get(key)
        current_fks = {fk.key: fk for fk in new.foreign_keys} if new else {}
        for fk in self.b.tables[key].foreign_keys:
            around = (key, fk.key) in self.fks_around_retype
            if fk.name and (current_fks.get(fk.key) != fk or around):
                self.d.add(
                    f"ALTER TABLE {self.table(key)} ADD CONSTRAINT {q(fk.name)} {fk.definition}"
                )

    def _create_view(self, view: ViewInfo) -> str:
        name = self.name(view.schema, view.name)
        kind = "MATERIALIZED VIEW" if view.materialized else "VIEW"
        options = f" WITH ({', '.join(view.options)})" if view.options else ""
        body = view.definition.strip().rstrip(";")
        return f"CREATE {kind} {name}{options} AS\n{body}"

    def _comment_target(self, comment: CommentInfo) -> str | None:
        names = comment.names
        kind = comment.object_type
        if kind == "schema":
            return f"SCHEMA {q(comment.schema or '')}"
        if kind == "column" and len(names) == 2:
            return f"COLUMN {self.name(comment.schema, names[0])}.{q(names[1])}"
        if kind in ("constraint", "trigger") and len(names) == 2:
            return f"{kind.upper()} {q(names[1])} ON {self.name(comment.schema, names[0])}"
        if kind in ("function", "procedure", "aggregate") and names:
            return f"{kind.upper()} {self.name(comment.schema, names[0])}({comment.arguments})"
        if names:
            return f"{kind.upper()} {self.name(comment.schema, names[0])}"
        return None

    def _comment_subject_survives(self, comment: CommentInfo) -> bool:
        """The commented object exists before and after (else it goes, or comes, with it)."""
        kind, schema, names = comment.object_type, comment.schema, comment.names
        if kind == "schema":
            return schema in self.b.schemas and schema in self.a.schemas
        if not names:
            return False
        key = qualified_name(schema, names[0])
        if kind in ("table", "column", "constraint", "trigger"):
            if key not in self.common:
                return False
            if kind == "column":
                return (key, names[1]) not in self.dropped_columns and (
                    self.b.tables[key].column(names[1]) is not None
                )
            return True
        if kind in ("function", "procedure", "aggregate"):
            key = f"{key}({comment.arguments})"
            return key in self.b.functions and key in self.a.functions
        pools: dict[str, tuple[Iterable[str], Iterable[str]]] = {
            "index": (self.b.indexes, self.a.indexes),
            "sequence": (self.b.sequences, self.a.sequences),
            "view": (self.b.views, self.a.views),
            "materialized view": (self.b.views, self.a.views),
            "type": ([*self.b.enums, *self.b.types], [*self.a.enums, *self.a.types]),
        }
        pair = pools.get(kind)
        return pair is not None and key in set(pair[0]) and key in set(pair[1])

    def _comments(self) -> None:
        for key, comment in self.b.comments.items():
            current = self.a.comments.get(key)
            if current == comment:
                continue
            target = self._comment_target(comment)
            if target is not None:
                self.d.add(f"COMMENT ON {target} IS {literal(comment.text)}")
        for key, comment in self.a.comments.items():
            if key in self.b.comments or not self._comment_subject_survives(comment):
                continue
            target = self._comment_target(comment)
            if target is not None:
                self.d.add(f"COMMENT ON {target} IS NULL")

    # --- phase 7: what the migration created and nothing uses any more --------------------

    def phase7(self) -> None:
        for key, function in self.a.functions.items():
            if key not in self.b.functions:
                self.d.add(self._drop_function(function))
        for key, seq in self.a.sequences.items():
            if key not in self.b.sequences and not self._goes_with_its_owner(seq):
                self.d.add(f"DROP SEQUENCE {self.name(seq.schema, seq.name)}")
        self._drop_new_types()
        for name in self.a.extensions:
            if name not in self.b.extensions:
                self.d.add(f"DROP EXTENSION {q(name)}")
        for schema in self.a.schemas:
            if schema not in self.b.schemas:
                self.d.add(f"DROP SCHEMA {q(schema)}")

    def _drop_new_types(self) -> None:
        """Enums, domains and other types the migration created."""
        enums = [k for k in self.a.enums if k not in self.b.enums]
        if enums:
            shown = [self.name(self.a.enums[k].schema, self.a.enums[k].name) for k in enums]
            self.d.impact.append(f"Drops enum {plural('type', shown)}, created by the migration")
        for key in enums:
            enum = self.a.enums[key]
            self.d.add(f"DROP TYPE {self.name(enum.schema, enum.name)}")
        for key, type_ in self.a.types.items():
            if key not in self.b.types:
                keyword = "DOMAIN" if type_.kind == "domain" else "TYPE"
                self.d.add(f"DROP {keyword} {self.name(type_.schema, type_.name)}")

    def _goes_with_its_owner(self, seq: SequenceInfo) -> bool:
        """A sequence owned by a table or column the rollback drops: it goes with it."""
        owner_table = seq.owned_by_table
        return owner_table is not None and (
            owner_table in self.new_tables
            or (owner_table, seq.owned_by_column or "") in self.dropped_columns
        )

    def render(self) -> Draft:
        self.phase1()
        self.phase2()
        self.phase3()
        self.phase4()
        self.phase5()
        self.phase6()
        self.phase7()
        return self.d


def draft_rollback(
    before: SchemaSnapshot, after: SchemaSnapshot, *, live: LiveNames | None = None
) -> Draft:
    """The statements that turn a database at ``after`` back into ``before``; ``live``: the
    names renamed tables and columns have when the rollback starts (for its checks)."""
    return _Renderer(before, after, live or LiveNames()).render()
