"""Synthetic rows for ``backout test --all --with-data``: something for the data checks to see.

An empty database proves little about a rollback that deletes the wrong rows. With
``--with-data`` every empty table gets :data:`ROWS` rows before each migration is rehearsed (and
the tables a migration creates get theirs before it is rolled back). Values follow each column's
type (timestamps in 2020, so a ``require`` about recent activity holds); foreign keys point at
existing rows of the referenced table; identity and serial columns are left to the database.
A table whose constraints refuse the rows (a CHECK, a unique boolean) is left empty and named
in a note: the rehearsal goes on.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Sequence

from backout.dialects.base import Session
from backout.model.errors import BackoutError
from backout.model.schema import ColumnInfo, SchemaSnapshot, TableInfo

ROWS = 20

_LENGTH = re.compile(r"\((\d+)\)")


def _enum_values(type_: str, snapshot: SchemaSnapshot) -> tuple[str, ...] | None:
    name = type_.replace('"', "").rsplit(".", 1)[-1].removesuffix("[]")
    for enum in snapshot.enums.values():
        if enum.name == name and not type_.endswith("[]"):
            return enum.values
    return None


def _has(*words: str) -> Callable[[str], bool]:
    return lambda type_: any(word in type_ for word in words)


def _text(column: ColumnInfo, i: int) -> object:
    text = f"{column.name}-{i}"
    length = _LENGTH.search(column.type.lower())
    return text[-int(length[1]) :] if length else text


#: (does a lower-cased type name match, the value of row i), tried in order: the first match wins
_BY_TYPE: tuple[tuple[Callable[[str], bool], Callable[[ColumnInfo, int], object]], ...] = (
    (lambda type_: type_.endswith("[]"), lambda c, i: "{}"),
    (_has("bool"), lambda c, i: i % 2 == 0),
    (_has("int", "serial"), lambda c, i: i + 1),
    (_has("numeric", "decimal", "real", "double", "float"), lambda c, i: i + 1.5),
    (_has("timestamp", "datetime"), lambda c, i: f"2020-01-{i % 28 + 1:02d} 10:00:00"),
    (_has("date"), lambda c, i: (dt.date(2020, 1, 1) + dt.timedelta(days=i)).isoformat()),
    (_has("time"), lambda c, i: "10:00:00"),
    (_has("uuid"), lambda c, i: str(uuid.uuid5(uuid.NAMESPACE_OID, f"{c.name}-{i}"))),
    (_has("json"), lambda c, i: "{}"),
    (_has("bytea", "blob"), lambda c, i: b"\x00"),
    (lambda type_: not type_ or _has("char", "text", "clob", "string")(type_), _text),
)


def value_for(column: ColumnInfo, i: int, snapshot: SchemaSnapshot) -> tuple[bool, object]:
    """(known, value) for row ``i`` of a column, from its type's name."""
    enum = _enum_values(column.type, snapshot)
    if enum:
        return True, enum[i % len(enum)]
    type_ = column.type.lower()
    for matches, make in _BY_TYPE:
        if matches(type_):
            return True, make(column, i)
    return False, None


def _parents_first(tables: Sequence[TableInfo]) -> list[TableInfo]:
    keys = {t.key for t in tables}
    ordered: list[TableInfo] = []
    placed: set[str] = set()
    remaining = list(tables)
    while remaining:
        ready = [
            t
            for t in remaining
            if all(
                fk.referenced_table in placed
                or fk.referenced_table not in keys
                or fk.referenced_table == t.key
                for fk in t.foreign_keys
            )
        ]
        if not ready:  # a cycle: fill in any order, nullable keys stay NULL
            ready = remaining[:1]
        for table in ready:
            ordered.append(table)
            placed.add(table.key)
            remaining.remove(table)
    return ordered


def _rows(session: Session, table: TableInfo) -> int:
    sql = f"SELECT count(*) FROM {session.dialect.table_sql(table)}"
    return int(session.query(sql)[0][0])


def _fill_one(session: Session, snapshot: SchemaSnapshot, table: TableInfo) -> str | None:
    """Insert ROWS rows; a note when the table cannot be filled."""
    dialect = session.dialect
    referenced: dict[str, list[object]] = {}
    for fk in table.foreign_keys:
        parent = snapshot.tables.get(fk.referenced_table)
        if parent is None or len(fk.columns) != 1:
            continue
        key = dialect.quote(fk.referenced_columns[0])
        rows = session.query(f"SELECT {key} FROM {dialect.table_sql(parent)} LIMIT {ROWS}")
        referenced[fk.columns[0]] = [r[0] for r in rows]
    # Defaults are overridden too (a ``DEFAULT now()`` would trip "nothing happened in the
    # last minutes" requires); only generated keys are left to the database.
    columns = [
        c
        for c in table.columns
        if c.identity is None and c.generated is None and "nextval(" not in (c.default or "")
    ]
    if not columns:
        return None
    names = ", ".join(dialect.quote(c.name) for c in columns)
    marks = ", ".join(dialect.typed_placeholder(c.type) for c in columns)
    sql = f"INSERT INTO {dialect.table_sql(table)} ({names}) VALUES ({marks})"
    session.begin()
    try:
        for i in range(ROWS):
            values: list[object] = []
            for column in columns:
                if column.name in referenced:
                    pool = referenced[column.name]
                    if not pool and not column.nullable:
                        raise _Skip("a table it references is empty")
                    values.append(pool[i % len(pool)] if pool else None)
                    continue
                known, value = value_for(column, i, snapshot)
                if not known:
                    if not column.nullable:
                        raise _Skip(f'no sample value for column "{column.name}" ({column.type})')
                    value = None
                values.append(value)
            session.execute(sql, values)
        session.commit()
    except (BackoutError, _Skip) as exc:
        session.rollback()
        return f"--with-data: table {table.key} left empty: {exc}"
    return None


class _Skip(Exception):
    """This table cannot be filled."""


def fill_tables(
    session: Session, snapshot: SchemaSnapshot, tables: Sequence[str] | None
) -> list[str]:
    """Give each empty table (of ``tables``, default all) ROWS rows; notes for those left empty."""
    chosen = [t for k, t in snapshot.tables.items() if tables is None or k in tables]
    notes: list[str] = []
    for table in _parents_first(chosen):
        if table.kind != "table" or _rows(session, table):
            continue
        note = _fill_one(session, snapshot, table)
        if note:
            notes.append(note)
    return notes
