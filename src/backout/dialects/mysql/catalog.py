"""Read a MySQL/MariaDB schema snapshot from ``information_schema``, and table stats.

Only the connection's database (``DATABASE()``) is read. Objects carry no schema (like SQLite):
a MySQL "schema" is the database itself, so a scratch copy or a restore into another database
compares equal. Left out always: backout's tables (``backout_%``) and ``_prisma_migrations``,
with their indexes and triggers.

How MySQL's catalog maps onto :mod:`backout.model.schema`:

- the primary key is a constraint named ``PRIMARY``; CHECK constraints are constraints (MariaDB
  adds ``json_valid(col)`` checks for JSON columns itself: they are part of the schema);
- every other index, unique or not, is an :class:`~backout.model.schema.IndexInfo`: MySQL does not
  tell a ``UNIQUE`` constraint from a unique index. Index names are unique per *table* in
  MySQL, so an index whose name another table's index also has is keyed ``table.index``;
- column types are ``COLUMN_TYPE`` as the server prints it (``int(11)``, ``enum('A','B')``),
  defaults as the server prints them (MariaDB quotes literals: ``'TOKENS'``; MySQL does not), a
  default of NULL and no default are the same; ``ON UPDATE`` is part of the default text;
- a column's collation is recorded only when it differs from its table's;
- table options are the engine, the collation and ``CREATE_OPTIONS``;
- views keep the server's normalised definition, with the database's own name removed from
  qualified references (``\\`db\\`.\\`t\\``); triggers and routines keep their bodies;
- table and column comments are :class:`~backout.model.schema.CommentInfo`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Final

from backout.model.errors import DatabaseError
from backout.model.schema import (
    ColumnInfo,
    CommentInfo,
    ConstraintInfo,
    ForeignKeyInfo,
    FunctionInfo,
    IndexInfo,
    QueryFn,
    SchemaSnapshot,
    TableInfo,
    TableStats,
    TriggerInfo,
    ViewInfo,
)

DIALECT: Final = "mysql"
PRISMA_TABLE: Final = "_prisma_migrations"
HISTORY_PREFIX: Final = "backout_"
#: column types whose values are hashed as hex (bytes, not text)
_BINARY_TYPES: Final = (
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
    "bit",
    "geometry",
    "point",
    "linestring",
    "polygon",
)

_TABLES_SQL: Final = (
    "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT "
    "FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
    "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
)
_COLUMNS_SQL: Final = (
    "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, "
    "COLUMN_DEFAULT, EXTRA, GENERATION_EXPRESSION, COLLATION_NAME, COLUMN_COMMENT "
    "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
    "ORDER BY TABLE_NAME, ORDINAL_POSITION"
)
_INDEXES_SQL: Final = (
    "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, "
    "INDEX_TYPE, COLLATION FROM information_schema.STATISTICS "
    "WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
)
_FOREIGN_KEYS_SQL: Final = (
    "SELECT rc.TABLE_NAME, rc.CONSTRAINT_NAME, rc.REFERENCED_TABLE_NAME, rc.UPDATE_RULE, "
    "rc.DELETE_RULE, k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME "
    "FROM information_schema.REFERENTIAL_CONSTRAINTS rc "
    "JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA "
    "AND k.TABLE_NAME = rc.TABLE_NAME AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME "
    "WHERE rc.CONSTRAINT_SCHEMA = DATABASE() "
    "ORDER BY rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.ORDINAL_POSITION"
)
#: MariaDB's CHECK_CONSTRAINTS names the table; MySQL's needs TABLE_CONSTRAINTS for it
_CHECKS_MARIADB_SQL: Final = (
    "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
    "WHERE CONSTRAINT_SCHEMA = DATABASE()"
)
_CHECKS_MYSQL_SQL: Final = (
    "SELECT tc.TABLE_NAME, cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE "
    "FROM information_schema.TABLE_CONSTRAINTS tc "
    "JOIN information_schema.CHECK_CONSTRAINTS cc ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA "
    "AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME "
    "WHERE tc.CONSTRAINT_TYPE = 'CHECK' AND tc.TABLE_SCHEMA = DATABASE()"
)
_VIEWS_SQL: Final = (
    "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE, DATABASE() "
    "FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()"
)
_TRIGGERS_SQL: Final = (
    "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, "
    "ACTION_ORDER, ACTION_STATEMENT FROM information_schema.TRIGGERS "
    "WHERE TRIGGER_SCHEMA = DATABASE()"
)
_ROUTINES_SQL: Final = (
    "SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, ROUTINE_DEFINITION, IS_DETERMINISTIC, "
    "SQL_DATA_ACCESS, SECURITY_TYPE FROM information_schema.ROUTINES "
    "WHERE ROUTINE_SCHEMA = DATABASE()"
)
_PARAMETERS_SQL: Final = (
    "SELECT SPECIFIC_NAME, ROUTINE_TYPE, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER "
    "FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = DATABASE() "
    "AND ORDINAL_POSITION > 0 ORDER BY SPECIFIC_NAME, ORDINAL_POSITION"
)


def quote_identifier(name: str) -> str:
    """A backtick-quoted identifier."""
    return "`" + name.replace("`", "``") + "`"


def is_internal_table(name: str) -> bool:
    """backout's tables and ``_prisma_migrations``: never part of a snapshot."""
    lowered = name.lower()
    return lowered == PRISMA_TABLE or lowered.startswith(HISTORY_PREFIX)


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def _default(value: Any, extra: str) -> str | None:
    text = None if value is None else _text(value)
    if text is not None and text.upper() == "NULL":
        text = None  # MariaDB prints a NULL default as the word NULL
    update = ""
    lowered = extra.lower()
    if "on update" in lowered:
        update = "ON UPDATE " + extra[lowered.index("on update") + len("on update") :].strip()
    if text is None and not update:
        return None
    return " ".join(p for p in ((text or "NULL"), update) if p)


def _generated(extra: str) -> str | None:
    lowered = extra.lower()
    if "stored" in lowered or "persistent" in lowered:
        return "STORED"
    if "virtual" in lowered:
        return "VIRTUAL"
    return None


def _fk_definition(fk: ForeignKeyInfo) -> str:
    cols = ", ".join(quote_identifier(c) for c in fk.columns)
    refs = ", ".join(quote_identifier(c) for c in fk.referenced_columns)
    return (
        f"FOREIGN KEY ({cols}) REFERENCES {quote_identifier(fk.referenced_table)} ({refs}) "
        f"ON DELETE {fk.on_delete} ON UPDATE {fk.on_update}"
    )


def _checks(query: QueryFn) -> list[tuple[Any, ...]]:
    try:
        return query(_CHECKS_MARIADB_SQL, None)
    except DatabaseError:
        return query(_CHECKS_MYSQL_SQL, None)


def read_mysql_snapshot(
    query: QueryFn, *, exclude: Callable[[str | None, str], bool] | None = None
) -> SchemaSnapshot:
    """The schema of the connection's database (see the module docstring); ``exclude(None,
    name)`` may leave out more tables (the host tool's history table)."""
    tables_raw = [
        r
        for r in query(_TABLES_SQL, None)
        if not is_internal_table(_text(r[0])) and not (exclude and exclude(None, _text(r[0])))
    ]
    names = {_text(r[0]) for r in tables_raw}
    table_collation = {_text(r[0]): _text(r[2]) for r in tables_raw}
    comments: list[CommentInfo] = []
    columns = _read_columns(query, table_collation, comments)
    constraints, indexes = _read_indexes(query, names)
    for raw_table, name, clause in _checks(query):
        table = _text(raw_table)
        if table in names:
            definition = f"CHECK ({_text(clause)})"
            constraints[table].append(ConstraintInfo("check", _text(name), (), definition))
    foreign_keys = _read_foreign_keys(query, names)
    tables = []
    for row in tables_raw:
        table = _text(row[0])
        options = [f"ENGINE={_text(row[1])}", f"COLLATE={_text(row[2])}"]
        options += [o for o in _text(row[3]).split() if o]
        tables.append(
            TableInfo(
                schema=None,
                name=table,
                columns=tuple(columns.get(table, ())),
                constraints=tuple(constraints.get(table, ())),
                foreign_keys=tuple(foreign_keys.get(table, ())),
                options=tuple(options),
            )
        )
        if _text(row[4]):
            comments.append(CommentInfo("table", None, (table,), _text(row[4])))
    views = _read_views(query)
    triggers = _read_triggers(query, names)
    return SchemaSnapshot.build(
        DIALECT,
        tables=tables,
        views=views,
        indexes=indexes,
        functions=_routines(query),
        triggers=triggers,
        comments=comments,
    )


def _read_columns(
    query: QueryFn, table_collation: dict[str, str], comments: list[CommentInfo]
) -> dict[str, list[ColumnInfo]]:
    """The columns, in order, of each table of ``table_collation`` (table → its collation);
    column comments are appended to ``comments``."""
    columns: dict[str, list[ColumnInfo]] = defaultdict(list)
    for row in query(_COLUMNS_SQL, None):
        table, name, position, type_, nullable, default, extra, generation, collation, comment = row
        table = _text(table)
        if table not in table_collation:
            continue
        extra_text = _text(extra)
        storage = _generated(extra_text) if _text(generation) else None
        collation_text = _text(collation) or None
        columns[table].append(
            ColumnInfo(
                name=_text(name),
                position=int(position),
                type=_text(type_),
                nullable=_text(nullable) == "YES",
                default=None if storage else _default(default, extra_text),
                identity="AUTO_INCREMENT" if "auto_increment" in extra_text.lower() else None,
                generated=_text(generation) if storage else None,
                generated_storage=storage,
                collation=collation_text
                if collation_text and collation_text != table_collation.get(table)
                else None,
            )
        )
        if _text(comment):
            comments.append(CommentInfo("column", None, (table, _text(name)), _text(comment)))
    return columns


def _read_indexes(
    query: QueryFn, names: set[str]
) -> tuple[dict[str, list[ConstraintInfo]], list[IndexInfo]]:
    """The primary keys (as constraints, by table) and every other index of the listed tables."""
    index_rows: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for row in query(_INDEXES_SQL, None):
        table = _text(row[0])
        if table in names:
            index_rows[(table, _text(row[1]))].append(row)
    index_count: dict[str, int] = defaultdict(int)
    for _, index in index_rows:
        if index != "PRIMARY":
            index_count[index] += 1
    constraints: dict[str, list[ConstraintInfo]] = defaultdict(list)
    indexes: list[IndexInfo] = []
    for (table, index), rows in sorted(index_rows.items()):
        keys = [_index_key(r) for r in rows]
        if index == "PRIMARY":
            cols = tuple(_text(r[4]) for r in rows)
            definition = f"PRIMARY KEY ({', '.join(keys)})"
            constraints[table].append(ConstraintInfo("primary_key", "PRIMARY", cols, definition))
            continue
        key_name = index if index_count[index] == 1 else f"{table}.{index}"
        indexes.append(_index_info(key_name, table, index, keys, rows[0]))
    return constraints, indexes


def _index_key(row: tuple[Any, ...]) -> str:
    """One key part of an index, as ``CREATE INDEX`` would spell it: column, prefix, order."""
    key = quote_identifier(_text(row[4]) or "(expression)")
    if row[5] is not None:
        key += f"({int(row[5])})"
    if _text(row[7]) == "D":
        key += " DESC"
    return key


def _index_info(
    key_name: str, table: str, index: str, keys: list[str], first: tuple[Any, ...]
) -> IndexInfo:
    unique = int(first[2]) == 0
    method = _text(first[6]) or None
    kind = "UNIQUE INDEX" if unique else ("FULLTEXT INDEX" if method == "FULLTEXT" else "INDEX")
    return IndexInfo(
        schema=None,
        name=key_name,
        table=table,
        columns=tuple(keys),
        unique=unique,
        method=method,
        definition=f"{kind} {quote_identifier(index)} ON {quote_identifier(table)} "
        f"({', '.join(keys)}) USING {method}",
    )


def _read_foreign_keys(query: QueryFn, names: set[str]) -> dict[str, list[ForeignKeyInfo]]:
    fk_rows: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for row in query(_FOREIGN_KEYS_SQL, None):
        if _text(row[0]) in names:
            fk_rows[(_text(row[0]), _text(row[1]))].append(row)
    foreign_keys: dict[str, list[ForeignKeyInfo]] = defaultdict(list)
    for (table, name), rows in fk_rows.items():
        first = rows[0]
        fk = ForeignKeyInfo(
            name=name,
            columns=tuple(_text(r[5]) for r in rows),
            referenced_table=_text(first[2]),
            referenced_columns=tuple(_text(r[6]) for r in rows),
            on_delete=_text(first[4]),
            on_update=_text(first[3]),
            match="NONE",
        )
        foreign_keys[table].append(_with_definition(fk))
    return foreign_keys


def _read_views(query: QueryFn) -> list[ViewInfo]:
    views = []
    for name, definition, check_option, security, database in query(_VIEWS_SQL, None):
        text = _text(definition).replace(f"{quote_identifier(_text(database))}.", "")
        options = [f"SQL SECURITY {_text(security)}"]
        if _text(check_option) not in ("", "NONE"):
            options.append(f"WITH {_text(check_option)} CHECK OPTION")
        views.append(
            ViewInfo(schema=None, name=_text(name), definition=text, options=tuple(options))
        )
    return views


def _read_triggers(query: QueryFn, names: set[str]) -> list[TriggerInfo]:
    triggers = []
    for table, name, timing, event, order, statement in query(_TRIGGERS_SQL, None):
        if _text(table) not in names:
            continue
        triggers.append(
            TriggerInfo(
                schema=None,
                table=_text(table),
                name=_text(name),
                definition=f"{_text(timing)} {_text(event)} ON {quote_identifier(_text(table))} "
                f"FOR EACH ROW (order {order}) {_text(statement)}",
            )
        )
    return triggers


def _with_definition(fk: ForeignKeyInfo) -> ForeignKeyInfo:
    from dataclasses import replace

    return replace(fk, definition=_fk_definition(fk))


def _routines(query: QueryFn) -> list[FunctionInfo]:
    params: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, kind, mode, pname, dtd in query(_PARAMETERS_SQL, None):
        text = f"{_text(pname)} {_text(dtd)}"
        if _text(mode) and _text(kind).upper() == "PROCEDURE":
            text = f"{_text(mode)} {text}"
        params[(_text(name), _text(kind).upper())].append(text)
    found = []
    for name, kind, result, body, deterministic, access, security in query(_ROUTINES_SQL, None):
        kind_text = _text(kind).upper()
        found.append(
            FunctionInfo(
                schema=None,
                name=_text(name),
                arguments=", ".join(params.get((_text(name), kind_text), [])),
                kind="procedure" if kind_text == "PROCEDURE" else "function",
                result=_text(result) or None if kind_text == "FUNCTION" else None,
                language="SQL",
                definition=(
                    f"{kind_text} {quote_identifier(_text(name))} "
                    f"DETERMINISTIC={_text(deterministic)} {_text(access)} "
                    f"SQL SECURITY {_text(security)}\n{_text(body)}"
                ),
            )
        )
    return found


def _value_sql(column: ColumnInfo) -> str:
    name = quote_identifier(column.name)
    base = column.type.split("(", 1)[0].strip().lower()
    return f"HEX({name})" if base in _BINARY_TYPES else name


def table_stats_sql(table: TableInfo) -> str:
    """A query returning (rows, high 64-bit sum, low 64-bit sum) of the table's row hashes.

    Each row is hashed as ``MD5(JSON_ARRAY(name, value, ...))`` over its columns in name order
    (binary values as hex), so column order does not matter and ``1``, ``1.0`` and ``'1'``
    differ; summing the hashes makes the physical row order irrelevant.
    """
    parts = []
    for column in sorted(table.columns, key=lambda c: c.name):
        literal = "'" + column.name.replace("\\", "\\\\").replace("'", "''") + "'"
        parts.append(f"{literal}, {_value_sql(column)}")
    row = f"JSON_ARRAY({', '.join(parts)})" if parts else "''"
    return (
        "SELECT COUNT(*), "
        "COALESCE(SUM(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS DECIMAL(20, 0))), 0), "
        "COALESCE(SUM(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS DECIMAL(20, 0))), 0) "
        f"FROM (SELECT MD5({row}) AS h FROM {quote_identifier(table.name)}) AS backout_rows"
    )


def read_table_stats(query: QueryFn, snapshot: SchemaSnapshot) -> dict[str, TableStats]:
    """Exact row count and an order-independent content checksum of every table in ``snapshot``."""
    result: dict[str, TableStats] = {}
    for key, table in snapshot.tables.items():
        ((count, high, low),) = query(table_stats_sql(table), None)
        checksum = f"{int(high) % 2**64:016x}{int(low) % 2**64:016x}"
        result[key] = TableStats(row_count=int(count), checksum=checksum)
    return result


def table_names(query: QueryFn) -> Sequence[str]:
    """Base tables of the database, backout's and Prisma's included."""
    return [_text(r[0]) for r in query(_TABLES_SQL, None)]
