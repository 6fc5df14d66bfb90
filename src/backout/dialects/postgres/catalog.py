"""Read a PostgreSQL schema snapshot from ``pg_catalog``, and per-table row statistics.

Everything here is a plain ``SELECT`` on the catalog and the ``pg_get_*def`` functions: no
``nextval()``, no ``SET``, no temporary objects, so it is safe on a live database and inside the
caller's transaction.

What is read, and from where:

- tables (``pg_class`` kinds ``r``/``p``) with columns (``pg_attribute``, ``format_type``,
  ``pg_attrdef`` via ``pg_get_expr``), constraints (``pg_constraint``, ``pg_get_constraintdef``,
  ``confdeltype``/``confupdtype``, ``convalidated``), inheritance and partitioning;
- indexes (``pg_index``, ``pg_get_indexdef``) except those backing a PRIMARY KEY, UNIQUE or
  EXCLUDE constraint, which are represented by the constraint;
- enums (``pg_enum`` in ``enumsortorder``), domains, composite and range types;
- sequences (``pg_sequence``; never their current value), with the column owning them (serial
  and identity columns' sequences are listed, owner recorded);
- views and materialized views (``pg_get_viewdef``), functions, procedures and aggregates
  (``pg_get_functiondef``), non-internal triggers (``pg_get_triggerdef``), extensions, and
  comments (``pg_description``).

Objects that belong to an extension are left out (the extension is listed instead). The schema
``backout`` (backout's own history) and any table called ``_prisma_migrations`` are always left
out, together with everything attached to them.

Definitions printed by the server (views, defaults, indexes) qualify names that are not on the
session's ``search_path``, so snapshots meant to be compared should be read with the same
``search_path``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Final

from backout.model.identifiers import qualified_name, quote_identifier
from backout.model.schema import (
    ColumnInfo,
    CommentInfo,
    ConstraintInfo,
    ConstraintKind,
    EnumInfo,
    ExtensionInfo,
    ForeignKeyInfo,
    FunctionInfo,
    FunctionKind,
    IndexInfo,
    QueryFn,
    SchemaSnapshot,
    SequenceInfo,
    TableInfo,
    TableStats,
    TriggerInfo,
    TypeInfo,
    ViewInfo,
)
from backout.model.urls import DatabaseURL

ExcludeFn = Callable[[str, str], bool]
#: runs independent queries at once (one round trip); the rows of each, in order
BatchFn = Callable[[Sequence[tuple[str, Sequence[object] | None]]], list[list[tuple[Any, ...]]]]

DIALECT: Final = "postgresql"
DEFAULT_SCHEMA: Final = "public"
#: backout's own history lives here; never part of a snapshot
HISTORY_SCHEMA: Final = "backout"
#: Prisma's bookkeeping table; never part of a snapshot, whatever its schema
PRISMA_TABLE: Final = "_prisma_migrations"

_CONSTRAINT_KINDS: Final[dict[str, ConstraintKind]] = {
    "p": "primary_key",
    "u": "unique",
    "c": "check",
    "x": "exclusion",
}
_ACTIONS: Final = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}
_MATCH: Final = {"s": "SIMPLE", "f": "FULL", "p": "PARTIAL"}
_FUNCTION_KINDS: Final[dict[str, FunctionKind]] = {
    "f": "function",
    "p": "procedure",
    "a": "aggregate",
    "w": "window",
}
_TRIGGER_FIRING: Final = {"O": "ENABLED", "D": "DISABLED", "R": "REPLICA", "A": "ALWAYS"}
_RELATION_COMMENT_TYPES: Final = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized view",
    "S": "sequence",
    "i": "index",
    "I": "index",
    "c": "type",
    "f": "foreign table",
}


def _not_extension_member(catalog: str, oid: str) -> str:
    """SQL condition: the object ``oid`` of ``catalog`` is not part of an extension."""
    return (
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep"
        f" WHERE dep.classid = 'pg_catalog.{catalog}'::regclass AND dep.objid = {oid}"
        " AND dep.deptype = 'e')"
    )


# A collation name as SQL would write it; pg_catalog's are left unqualified.
_COLLATION_NAME: Final = """
    CASE WHEN coll_ns.nspname = 'pg_catalog' THEN quote_ident(coll.collname)
         ELSE quote_ident(coll_ns.nspname) || '.' || quote_ident(coll.collname) END
"""

_SCHEMAS_SQL: Final = "SELECT nspname::text FROM pg_catalog.pg_namespace"

_EXTENSIONS_SQL: Final = """
SELECT e.extname::text, n.nspname::text, e.extversion
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE n.nspname::text = ANY(%s::text[])
"""

_TABLES_SQL: Final = f"""
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relpersistence::text,
       coalesce(c.reloptions, ARRAY[]::text[]),
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname::text = ANY(%s::text[])
  AND {_not_extension_member("pg_class", "c.oid")}
"""

_PARENTS_SQL: Final = """
SELECT i.inhrelid, pn.nspname::text, pc.relname::text
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
WHERE n.nspname::text = ANY(%s::text[])
"""

_COLUMNS_SQL: Final = f"""
SELECT a.attrelid, a.attname::text, a.attnum, format_type(a.atttypid, a.atttypmod),
       a.attnotnull,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       a.attidentity::text,
       CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       a.attgenerated::text,
       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
            THEN {_COLLATION_NAME} END
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation coll ON coll.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace coll_ns ON coll_ns.oid = coll.collnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p')
  AND n.nspname::text = ANY(%s::text[])
"""


def _attnames(relid: str, keys: str) -> str:
    """SQL: the names of the attributes ``keys`` (an int2 array) of ``relid``, in array order."""
    return (
        "ARRAY(SELECT a.attname::text"
        f" FROM unnest({keys}) WITH ORDINALITY AS k(attnum, ord)"
        f" JOIN pg_catalog.pg_attribute a ON a.attrelid = {relid} AND a.attnum = k.attnum"
        " ORDER BY k.ord)"
    )


_CONSTRAINTS_SQL: Final = f"""
SELECT con.conrelid, con.conname::text, con.contype::text, pg_get_constraintdef(con.oid, true),
       con.condeferrable, con.condeferred, con.convalidated,
       {_attnames("con.conrelid", "con.conkey")},
       fn.nspname::text, fc.relname::text,
       {_attnames("con.confrelid", "con.confkey")},
       con.confupdtype::text, con.confdeltype::text, con.confmatchtype::text
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.contype IN ('p', 'u', 'c', 'x', 'f')
  AND c.relkind IN ('r', 'p')
  AND n.nspname::text = ANY(%s::text[])
"""

_INDEXES_SQL: Final = f"""
SELECT n.nspname::text, ic.relname::text, tc.relname::text, i.indisunique, am.amname::text,
       pg_get_expr(i.indpred, i.indrelid, true), pg_get_indexdef(i.indexrelid),
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
             FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k),
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
             FROM generate_series(i.indnkeyatts + 1, i.indnatts) AS k ORDER BY k),
       i.indisvalid
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
WHERE n.nspname::text = ANY(%s::text[])
  AND tc.relkind IN ('r', 'p', 'm')
  AND {_not_extension_member("pg_class", "ic.oid")}
  AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_constraint con
      WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
        AND con.contype IN ('p', 'u', 'x'))
"""

_SEQUENCES_SQL: Final = f"""
SELECT n.nspname::text, c.relname::text, format_type(s.seqtypid, NULL),
       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       own_ns.nspname::text, own.relname::text, own_att.attname::text
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_depend d
       ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.objsubid = 0
      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
      AND d.deptype IN ('a', 'i')
LEFT JOIN pg_catalog.pg_class own ON own.oid = d.refobjid
LEFT JOIN pg_catalog.pg_namespace own_ns ON own_ns.oid = own.relnamespace
LEFT JOIN pg_catalog.pg_attribute own_att
       ON own_att.attrelid = d.refobjid AND own_att.attnum = d.refobjsubid
WHERE n.nspname::text = ANY(%s::text[])
  AND {_not_extension_member("pg_class", "c.oid")}
"""

_VIEWS_SQL: Final = f"""
SELECT n.nspname::text, c.relname::text, c.relkind::text, pg_get_viewdef(c.oid, true),
       coalesce(c.reloptions, ARRAY[]::text[])
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm')
  AND n.nspname::text = ANY(%s::text[])
  AND {_not_extension_member("pg_class", "c.oid")}
"""

_ENUMS_SQL: Final = f"""
SELECT n.nspname::text, t.typname::text,
       ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
             WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e'
  AND n.nspname::text = ANY(%s::text[])
  AND {_not_extension_member("pg_type", "t.oid")}
"""

_DOMAINS_SQL: Final = f"""
SELECT n.nspname::text, t.typname::text, format_type(t.typbasetype, t.typtypmod),
       t.typnotnull, t.typdefault,
       CASE WHEN t.typcollation <> bt.typcollation AND t.typcollation <> 0
            THEN {_COLLATION_NAME} END,
       ARRAY(SELECT 'CONSTRAINT ' || quote_ident(con.conname) || ' '
                    || pg_get_constraintdef(con.oid, true)
             FROM pg_catalog.pg_constraint con WHERE con.contypid = t.oid
             ORDER BY con.conname)
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_catalog.pg_collation coll ON coll.oid = t.typcollation
LEFT JOIN pg_catalog.pg_namespace coll_ns ON coll_ns.oid = coll.collnamespace
WHERE t.typtype = 'd'
  AND n.nspname::text = ANY(%s::text[])
  AND {_not_extension_member("pg_type", "t.oid")}
"""

_COMPOSITES_SQL: Final = f"""
SELECT n.nspname::text, t.typname::text,
       ARRAY(SELECT quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
             FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum)
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
WHERE t.typtype = 'c' AND c.relkind = 'c'
  AND n.nspname::text = ANY(%s::text[])
  AND {_not_extension_member("pg_type", "t.oid")}
"""

_RANGES_SQL: Final = f"""
SELECT n.nspname::text, t.typname::text, format_type(r.rngsubtype, NULL),
       opc.opcname::text,
       CASE WHEN r.rngcollation <> 0 THEN {_COLLATION_NAME} END,
       r.rngcanonical::regproc::text, r.rngsubdiff::regproc::text
FROM pg_catalog.pg_range r
JOIN pg_catalog.pg_type t ON t.oid = r.rngtypid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
JOIN pg_catalog.pg_opclass opc ON opc.oid = r.rngsubopc
LEFT JOIN pg_catalog.pg_collation coll ON coll.oid = r.rngcollation
LEFT JOIN pg_catalog.pg_namespace coll_ns ON coll_ns.oid = coll.collnamespace
WHERE n.nspname::text = ANY(%s::text[])
  AND {_not_extension_member("pg_type", "t.oid")}
"""

# pg_get_functiondef() refuses aggregates, so theirs is put together from pg_aggregate.
_FUNCTIONS_SQL: Final = f"""
SELECT n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid),
       p.prokind::text,
       CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END,
       l.lanname::text,
       CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid)
            ELSE 'CREATE AGGREGATE ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname)
                 || '(' || pg_get_function_identity_arguments(p.oid) || ') (SFUNC = '
                 || ag.aggtransfn::regproc::text
                 || ', STYPE = ' || format_type(ag.aggtranstype, NULL)
                 || coalesce(', FINALFUNC = ' || nullif(ag.aggfinalfn::regproc::text, '-'), '')
                 || coalesce(', COMBINEFUNC = '
                             || nullif(ag.aggcombinefn::regproc::text, '-'), '')
                 || coalesce(', INITCOND = ' || quote_literal(ag.agginitval), '')
                 || coalesce(', SORTOP = ' || nullif(ag.aggsortop::regoperator::text, '0'), '')
                 || ')'
       END
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
LEFT JOIN pg_catalog.pg_aggregate ag ON ag.aggfnoid = p.oid
WHERE n.nspname::text = ANY(%s::text[])
  AND {_not_extension_member("pg_proc", "p.oid")}
"""

_TRIGGERS_SQL: Final = """
SELECT n.nspname::text, c.relname::text, t.tgname::text, pg_get_triggerdef(t.oid, true),
       t.tgenabled::text
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal
  AND n.nspname::text = ANY(%s::text[])
"""

_RELATION_COMMENTS_SQL: Final = f"""
SELECT n.nspname::text, c.relname::text, c.relkind::text, a.attname::text, d.description,
       tc.relname::text
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_class c ON d.classoid = 'pg_catalog.pg_class'::regclass AND d.objoid = c.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a
       ON d.objsubid > 0 AND a.attrelid = c.oid AND a.attnum = d.objsubid
LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
WHERE n.nspname::text = ANY(%s::text[])
  AND {_not_extension_member("pg_class", "c.oid")}
"""

_CONSTRAINT_COMMENTS_SQL: Final = """
SELECT n.nspname::text, coalesce(c.relname, t.typname)::text, con.conname::text, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_constraint con
  ON d.classoid = 'pg_catalog.pg_constraint'::regclass AND d.objoid = con.oid
JOIN pg_catalog.pg_namespace n ON n.oid = con.connamespace
LEFT JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
LEFT JOIN pg_catalog.pg_type t ON t.oid = con.contypid
WHERE n.nspname::text = ANY(%s::text[])
"""

_TYPE_COMMENTS_SQL: Final = f"""
SELECT n.nspname::text, t.typname::text, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_type t ON d.classoid = 'pg_catalog.pg_type'::regclass AND d.objoid = t.oid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname::text = ANY(%s::text[])
  AND {_not_extension_member("pg_type", "t.oid")}
"""

_FUNCTION_COMMENTS_SQL: Final = f"""
SELECT n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid),
       p.prokind::text, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_proc p ON d.classoid = 'pg_catalog.pg_proc'::regclass AND d.objoid = p.oid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname::text = ANY(%s::text[])
  AND {_not_extension_member("pg_proc", "p.oid")}
"""

_TRIGGER_COMMENTS_SQL: Final = """
SELECT n.nspname::text, c.relname::text, t.tgname::text, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_trigger t
  ON d.classoid = 'pg_catalog.pg_trigger'::regclass AND d.objoid = t.oid
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname::text = ANY(%s::text[])
"""

_SCHEMA_COMMENTS_SQL: Final = """
SELECT n.nspname::text, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_namespace n
  ON d.classoid = 'pg_catalog.pg_namespace'::regclass AND d.objoid = n.oid
WHERE n.nspname::text = ANY(%s::text[])
"""


def is_system_schema(name: str) -> bool:
    """True for PostgreSQL's own schemas (``pg_catalog``, ``information_schema``, ``pg_*``)."""
    # Users cannot create schemas starting with "pg_", so this covers pg_toast* and pg_temp*.
    return name == "information_schema" or name.startswith("pg_")


class _CatalogReader:
    """One snapshot read: the chosen schemas and the exclusion rules."""

    def __init__(
        self,
        query: QueryFn,
        schemas: list[str],
        exclude: ExcludeFn | None,
        batch: BatchFn | None = None,
    ) -> None:
        self.query = query
        self.schemas = schemas
        self.exclude = exclude
        #: rows already read by :meth:`prefetch`, by query
        self.ready: dict[str, list[tuple[Any, ...]]] = {}
        if batch is not None:
            self.prefetch(batch)

    def prefetch(self, batch: BatchFn) -> None:
        """Read every catalog query of a snapshot at once (each is independent of the others)."""
        queries: list[tuple[str, Sequence[object] | None]] = [
            (sql, (self.schemas,)) for sql in _SNAPSHOT_QUERIES
        ]
        queries.append((_CURRENT_SCHEMA_SQL, None))
        for (sql, _), rows in zip(queries, batch(queries), strict=True):
            self.ready[sql] = rows

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        ready = self.ready.pop(sql, None)
        return ready if ready is not None else self.query(sql, (self.schemas,))

    def excluded(self, schema: str, name: str) -> bool:
        """Whether a table, view, sequence, index, type or function is left out."""
        if name == PRISMA_TABLE:
            return True
        return self.exclude is not None and self.exclude(schema, name)

    def snapshot(self) -> SchemaSnapshot:
        tables = self.tables()
        table_keys = set(tables)
        views = self.views()
        relation_keys = table_keys | set(views)
        # Unqualified names in scripts resolve through the session's search_path (Prisma's
        # ?schema= sets it), so that is the default schema, not always "public".
        current = self.ready.pop(_CURRENT_SCHEMA_SQL, None) or self.query(_CURRENT_SCHEMA_SQL, None)
        default_schema = str(current[0][0]) if current and current[0][0] else DEFAULT_SCHEMA
        return SchemaSnapshot.build(
            DIALECT,
            default_schema=default_schema,
            schemas=self.schemas,
            extensions=self.extensions(),
            tables=tables.values(),
            views=views.values(),
            indexes=self.indexes(relation_keys),
            sequences=self.sequences(),
            enums=self.enums(),
            types=self.types(),
            functions=self.functions(),
            triggers=self.triggers(relation_keys),
            comments=self.comments(),
        )

    def extensions(self) -> list[ExtensionInfo]:
        return [
            ExtensionInfo(name=name, schema=schema, version=version)
            for name, schema, version in self.rows(_EXTENSIONS_SQL)
        ]

    def tables(self) -> dict[str, TableInfo]:
        heads: dict[int, tuple[Any, ...]] = {}
        for oid, schema, name, *rest in self.rows(_TABLES_SQL):
            if not self.excluded(schema, name):
                heads[oid] = (schema, name, *rest)
        parents: dict[int, list[str]] = defaultdict(list)
        for oid, schema, name in self.rows(_PARENTS_SQL):
            parents[oid].append(qualified_name(schema, name))
        columns = self.table_columns()
        constraints, foreign_keys = self.table_constraints()
        result: dict[str, TableInfo] = {}
        for oid, (schema, name, relkind, persistence, options, part_key, bound) in heads.items():
            table = TableInfo(
                schema=schema,
                name=name,
                columns=tuple(columns[oid]),
                constraints=tuple(constraints[oid]),
                foreign_keys=tuple(foreign_keys[oid]),
                kind="partitioned table" if relkind == "p" else "table",
                unlogged=persistence == "u",
                options=tuple(options),
                parents=tuple(parents[oid]),
                partition_key=part_key,
                partition_bound=bound,
            )
            result[table.key] = table
        return result

    def table_columns(self) -> dict[int, list[ColumnInfo]]:
        """Every table's columns, by the table's oid."""
        columns: dict[int, list[ColumnInfo]] = defaultdict(list)
        for row in self.rows(_COLUMNS_SQL):
            oid, name, position, type_, notnull, default, identity, expr, generated, coll = row
            columns[oid].append(
                ColumnInfo(
                    name=name,
                    position=position,
                    type=type_,
                    nullable=not notnull,
                    default=default,
                    identity={"a": "ALWAYS", "d": "BY DEFAULT"}.get(identity),
                    generated=expr if generated else None,
                    generated_storage="STORED" if generated == "s" else None,
                    collation=coll,
                )
            )
        return columns

    def table_constraints(
        self,
    ) -> tuple[dict[int, list[ConstraintInfo]], dict[int, list[ForeignKeyInfo]]]:
        """Every table's constraints and, apart, its foreign keys, by the table's oid."""
        constraints: dict[int, list[ConstraintInfo]] = defaultdict(list)
        foreign_keys: dict[int, list[ForeignKeyInfo]] = defaultdict(list)
        for row in self.rows(_CONSTRAINTS_SQL):
            oid, name, contype, definition, deferrable, deferred, validated, cols = row[:8]
            if contype == "f":
                ref_schema, ref_table, ref_cols, on_update, on_delete, match = row[8:]
                foreign_keys[oid].append(
                    ForeignKeyInfo(
                        name=name,
                        columns=tuple(cols),
                        referenced_table=qualified_name(ref_schema, ref_table),
                        referenced_columns=tuple(ref_cols),
                        on_delete=_ACTIONS[on_delete],
                        on_update=_ACTIONS[on_update],
                        match=_MATCH[match],
                        deferrable=deferrable,
                        initially_deferred=deferred,
                        validated=validated,
                        definition=definition,
                    )
                )
            else:
                constraints[oid].append(
                    ConstraintInfo(
                        kind=_CONSTRAINT_KINDS[contype],
                        name=name,
                        columns=tuple(cols),
                        definition=definition,
                        deferrable=deferrable,
                        initially_deferred=deferred,
                        validated=validated,
                    )
                )
        return constraints, foreign_keys

    def views(self) -> dict[str, ViewInfo]:
        result: dict[str, ViewInfo] = {}
        for schema, name, relkind, definition, options in self.rows(_VIEWS_SQL):
            if self.excluded(schema, name):
                continue
            view = ViewInfo(
                schema=schema,
                name=name,
                definition=definition,
                materialized=relkind == "m",
                options=tuple(options),
            )
            result[view.key] = view
        return result

    def indexes(self, relation_keys: set[str]) -> list[IndexInfo]:
        result: list[IndexInfo] = []
        for row in self.rows(_INDEXES_SQL):
            schema, name, table, unique, method, predicate, definition, keys, include, valid = row
            if self.excluded(schema, name) or qualified_name(schema, table) not in relation_keys:
                continue
            result.append(
                IndexInfo(
                    schema=schema,
                    name=name,
                    table=table,
                    columns=tuple(keys),
                    include=tuple(include),
                    unique=unique,
                    method=method,
                    predicate=predicate,
                    definition=definition,
                    valid=valid,
                )
            )
        return result

    def sequences(self) -> list[SequenceInfo]:
        result: list[SequenceInfo] = []
        for row in self.rows(_SEQUENCES_SQL):
            schema, name, data_type, start, increment, minimum, maximum, cache, cycle = row[:9]
            owner_schema, owner_table, owner_column = row[9:]
            if self.excluded(schema, name):
                continue
            if owner_table is not None and self.excluded(owner_schema, owner_table):
                continue
            result.append(
                SequenceInfo(
                    schema=schema,
                    name=name,
                    data_type=data_type,
                    start=int(start),
                    increment=int(increment),
                    minimum=int(minimum),
                    maximum=int(maximum),
                    cache=int(cache),
                    cycle=cycle,
                    owned_by_table=(
                        qualified_name(owner_schema, owner_table) if owner_table else None
                    ),
                    owned_by_column=owner_column,
                )
            )
        return result

    def enums(self) -> list[EnumInfo]:
        return [
            EnumInfo(schema=schema, name=name, values=tuple(values))
            for schema, name, values in self.rows(_ENUMS_SQL)
            if not self.excluded(schema, name)
        ]

    def types(self) -> list[TypeInfo]:
        result: list[TypeInfo] = []
        for schema, name, base, notnull, default, collation, checks in self.rows(_DOMAINS_SQL):
            parts = [base]
            if collation is not None:
                parts.append(f"COLLATE {collation}")
            if default is not None:
                parts.append(f"DEFAULT {default}")
            if notnull:
                parts.append("NOT NULL")
            parts.extend(checks)
            result.append(TypeInfo(schema, name, "domain", " ".join(parts)))
        for schema, name, attributes in self.rows(_COMPOSITES_SQL):
            result.append(TypeInfo(schema, name, "composite", f"({', '.join(attributes)})"))
        for schema, name, subtype, opclass, collation, canonical, subdiff in self.rows(_RANGES_SQL):
            parts = [f"SUBTYPE = {subtype}", f"SUBTYPE_OPCLASS = {opclass}"]
            if collation is not None:
                parts.append(f"COLLATION = {collation}")
            if canonical not in (None, "-"):
                parts.append(f"CANONICAL = {canonical}")
            if subdiff not in (None, "-"):
                parts.append(f"SUBTYPE_DIFF = {subdiff}")
            result.append(TypeInfo(schema, name, "range", f"({', '.join(parts)})"))
        return [t for t in result if not self.excluded(t.schema or "", t.name)]

    def functions(self) -> list[FunctionInfo]:
        return [
            FunctionInfo(
                schema=schema,
                name=name,
                arguments=arguments,
                kind=_FUNCTION_KINDS[kind],
                result=result,
                language=language,
                definition=definition,
            )
            for schema, name, arguments, kind, result, language, definition in self.rows(
                _FUNCTIONS_SQL
            )
            if not self.excluded(schema, name)
        ]

    def triggers(self, relation_keys: set[str]) -> list[TriggerInfo]:
        return [
            TriggerInfo(
                schema=schema,
                table=table,
                name=name,
                definition=definition,
                enabled=_TRIGGER_FIRING.get(enabled, enabled),
            )
            for schema, table, name, definition, enabled in self.rows(_TRIGGERS_SQL)
            if qualified_name(schema, table) in relation_keys
        ]

    def comments(self) -> list[CommentInfo]:
        result = self.relation_comments()
        for schema, owner, name, text in self.rows(_CONSTRAINT_COMMENTS_SQL):
            if not self.excluded(schema, owner):
                result.append(CommentInfo("constraint", schema, (owner, name), text))
        for schema, name, text in self.rows(_TYPE_COMMENTS_SQL):
            if not self.excluded(schema, name):
                result.append(CommentInfo("type", schema, (name,), text))
        for schema, name, arguments, kind, text in self.rows(_FUNCTION_COMMENTS_SQL):
            if not self.excluded(schema, name):
                label = _FUNCTION_KINDS.get(kind, "function")
                result.append(CommentInfo(label, schema, (name,), text, arguments))
        for schema, table, name, text in self.rows(_TRIGGER_COMMENTS_SQL):
            if not self.excluded(schema, table):
                result.append(CommentInfo("trigger", schema, (table, name), text))
        for schema, text in self.rows(_SCHEMA_COMMENTS_SQL):
            result.append(CommentInfo("schema", schema, (), text))
        return result

    def relation_comments(self) -> list[CommentInfo]:
        """Comments on tables, views, indexes, sequences and columns in scope."""
        result: list[CommentInfo] = []
        for schema, relname, relkind, column, text, index_table in self.rows(
            _RELATION_COMMENTS_SQL
        ):
            if self.excluded(schema, relname):
                continue
            if index_table is not None and self.excluded(schema, index_table):
                continue
            if column is not None:
                result.append(CommentInfo("column", schema, (relname, column), text))
            else:
                kind = _RELATION_COMMENT_TYPES.get(relkind, "relation")
                result.append(CommentInfo(kind, schema, (relname,), text))
        return result


_CURRENT_SCHEMA_SQL: Final = "SELECT current_schema()"
#: the queries of one snapshot, all with the chosen schemas as their one parameter
_SNAPSHOT_QUERIES: Final = (
    _EXTENSIONS_SQL,
    _TABLES_SQL,
    _PARENTS_SQL,
    _COLUMNS_SQL,
    _CONSTRAINTS_SQL,
    _VIEWS_SQL,
    _INDEXES_SQL,
    _SEQUENCES_SQL,
    _ENUMS_SQL,
    _DOMAINS_SQL,
    _COMPOSITES_SQL,
    _RANGES_SQL,
    _FUNCTIONS_SQL,
    _TRIGGERS_SQL,
    _RELATION_COMMENTS_SQL,
    _CONSTRAINT_COMMENTS_SQL,
    _TYPE_COMMENTS_SQL,
    _FUNCTION_COMMENTS_SQL,
    _TRIGGER_COMMENTS_SQL,
    _SCHEMA_COMMENTS_SQL,
)


def url_scope(url: DatabaseURL) -> list[str] | None:
    """The schemas a project on ``url`` owns: the one Prisma's ``?schema=`` names, or None
    (no ``?schema=``: the project owns the whole database).

    Several projects can share a database, each in its own schema. Every catalog read, dump,
    restore and copy of a project is confined to this scope, so that nothing it does (an
    emptiness check, drift, a full backup's restore) sees or touches another project's
    objects. backout's own schema is outside every scope; what of it a backup needs (the
    ``migrations`` ledger) is added explicitly (see :func:`dump_scope_args`).
    """
    return [url.schema] if url.schema else None


def dump_scope_args(
    url: DatabaseURL, history_schema: str | None, extensions: Sequence[str] = ()
) -> list[str]:
    """``pg_dump`` switches confining a dump to the project's scope (none: the whole
    database), plus backout's own schema when named (a restore brings its ledger back), plus
    the scope's ``extensions`` (see :func:`scope_extensions`)."""
    scope = url_scope(url)
    if scope is None:
        return []
    extra = [history_schema] if history_schema is not None else []
    args = [f"--schema={dump_schema_pattern(name)}" for name in [*scope, *extra]]
    return args + [f"--extension={dump_schema_pattern(name)}" for name in extensions]


def scope_extensions(query: QueryFn, url: DatabaseURL) -> list[str]:
    """The extensions created in the project's scope: ``pg_dump --schema`` leaves out their
    CREATE EXTENSION (even in a selected schema), so a dump names them with ``--extension``."""
    scope = url_scope(url)
    if scope is None:
        return []
    rows = query(
        "SELECT e.extname::text FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
        "WHERE n.nspname = ANY(%s::text[]) ORDER BY 1",
        (scope,),
    )
    return [str(r[0]) for r in rows]


def dump_schema_pattern(name: str) -> str:
    """A pg_dump ``--schema`` pattern matching exactly the schema ``name``."""
    # pg_dump patterns follow psql's rules: double quotes make the name literal (case, dots,
    # wildcards); a double quote inside is written twice.
    return quote_identifier(name)


def read_postgres_snapshot(
    query: QueryFn,
    *,
    schemas: Sequence[str] | None = None,
    exclude: ExcludeFn | None = None,
    history_schema: str = HISTORY_SCHEMA,
    batch: BatchFn | None = None,
) -> SchemaSnapshot:
    """Read the schema of a PostgreSQL database from its catalog, without side effects.

    ``schemas`` limits the snapshot to those schemas (default: every non-system schema);
    schema ``backout`` and tables called ``_prisma_migrations`` are always left out.
    ``exclude(schema, name)`` may leave out more: it is asked about every table, view,
    sequence, index, type and function by name, and what hangs off an excluded table (its
    indexes, triggers, owned sequences, comments) goes with it. ``batch``, when given, reads
    the catalog queries all at once (one round trip).
    """
    present = {row[0] for row in query(_SCHEMAS_SQL, None)}
    if schemas is None:
        chosen = {name for name in present if not is_system_schema(name)}
    else:
        chosen = {name for name in schemas if name in present}
    chosen.discard(HISTORY_SCHEMA)
    chosen.discard(history_schema)
    return _CatalogReader(query, sorted(chosen), exclude, batch).snapshot()


def read_table_stats(query: QueryFn, snapshot: SchemaSnapshot) -> dict[str, TableStats]:
    """Exact row count and an order-independent content checksum of every table in ``snapshot``.

    Each row is hashed as ``md5(to_jsonb(row))`` (keys sorted by jsonb, so column order does
    not matter) and the 128-bit hashes are summed, which needs no sort and no memory per row.
    Values are hashed in their text form, so compare stats read with the same session settings
    (``TimeZone``, ``DateStyle``...). ``ONLY`` is used: a parent's stats exclude its children.
    Every table is read by one statement (``UNION ALL``): parsed and planned once, not once per
    table, and all read at the same moment.
    """
    if not snapshot.tables:
        return {}
    sql = " UNION ALL ".join(_stats_sql(i, t) for i, t in enumerate(snapshot.tables.values()))
    found = {int(row[0]): row[1:] for row in query(sql, None)}
    result: dict[str, TableStats] = {}
    for index, key in enumerate(snapshot.tables):
        count, high, low = found[index]
        checksum = f"{int(high) % 2**64:016x}{int(low) % 2**64:016x}"
        result[key] = TableStats(row_count=int(count), checksum=checksum)
    return result


def _stats_sql(index: int, table: TableInfo) -> str:
    relation = f"{quote_identifier(table.schema or DEFAULT_SCHEMA)}.{quote_identifier(table.name)}"
    # "r.*" names the whole row even when the table has a column called "r".
    return (
        f"SELECT {index}, count(*),"
        " coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0),"
        " coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)"
        f" FROM (SELECT md5(to_jsonb(r.*)::text) AS h FROM ONLY {relation} AS r) AS s"
    )
