"""Read a SQLite schema snapshot from ``sqlite_master`` and the pragma functions.

Columns, primary keys, indexes and foreign keys come from the table-valued pragmas
(``pragma_table_xinfo``, ``pragma_index_list``, ``pragma_index_xinfo``,
``pragma_foreign_key_list``) read with ``SELECT``. What only the stored ``CREATE`` text knows
(CHECK constraints, generated-column expressions, collations, AUTOINCREMENT, constraint names,
DEFERRABLE, a partial index's predicate, expression index keys) is taken from it with a small
tokenizer: strings, quoted names and comments are respected, so hostile names work.

Stored definitions (indexes, views, triggers) are compared in a normalised form: comments
dropped, whitespace collapsed, SQLite keywords upper-cased. SQLite keeps the text as written, so
without this a rollback that recreates an object with different spacing would look different.

Only the ``main`` database is read. Left out always: SQLite's internal ``sqlite_%`` tables,
``_prisma_migrations``, and tables named ``backout_%`` (backout's history on SQLite), with their
indexes and triggers. Enums, sequences, functions and comments do not exist on SQLite.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from backout.model.identifiers import quote_identifier
from backout.model.schema import (
    ColumnInfo,
    ConstraintInfo,
    ForeignKeyInfo,
    IndexInfo,
    QueryFn,
    SchemaSnapshot,
    TableInfo,
    TableStats,
    TriggerInfo,
    ViewInfo,
)

ExcludeFn = Callable[[str, str], bool]

DIALECT: Final = "sqlite"
#: the schema name passed to ``exclude`` callbacks
MAIN_SCHEMA: Final = "main"
PRISMA_TABLE: Final = "_prisma_migrations"
#: backout's own tables on SQLite start with this
HISTORY_PREFIX: Final = "backout_"

# https://sqlite.org/lang_keywords.html, plus the non-reserved words of table options.
_KEYWORD_LIST: Final = """
    ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE
    BEGIN BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE
    CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE
    DEFERRED DELETE DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE
    EXISTS EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP
    GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD
    INTERSECT INTO IS ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT
    NOTHING NOTNULL NULL NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA
    PRECEDING PRIMARY QUERY RAISE RANGE RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME
    REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SET TABLE TEMP
    TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE UPDATE USING VACUUM
    VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT ROWID STRICT STORED
"""
_KEYWORDS: Final = frozenset(_KEYWORD_LIST.split())

_TOKEN: Final = re.compile(
    r"""
      \s+
    | --[^\n]*
    | /\*.*?(?:\*/|\Z)
    | (?P<token>
          '(?:[^']|'')*'
        | [xX]'[0-9A-Fa-f]*'
        | "(?:[^"]|"")*"
        | `(?:[^`]|``)*`
        | \[[^\]]*\]
        | 0[xX][0-9A-Fa-f]+
        | (?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?
        | [A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*
        | [?:@$][A-Za-z0-9_]*
        | \|\| | << | >> | <= | >= | == | != | <> | ->> | ->
        | .
      )
    """,
    re.DOTALL | re.VERBOSE,
)
_PLAIN_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tokenize(sql: str) -> list[str]:
    """SQLite tokens of ``sql``, without whitespace and comments."""
    return [m.group("token") for m in _TOKEN.finditer(sql) if m.group("token") is not None]


def _is_word(token: str) -> bool:
    return token[:1].isalpha() or token[:1] == "_" or (token[:1] > "\x7f")


def _upper(token: str) -> str:
    return token.upper() if _is_word(token) else token


def _is_name(token: str) -> bool:
    """A non-keyword word or a quoted identifier (what a call or column list follows)."""
    if token[:1] in ('"', "`", "["):
        return True
    return _is_word(token) and token.upper() not in _KEYWORDS


def _is_operand(token: str) -> bool:
    """Whether a ``-``/``+`` after ``token`` is binary (else it is a sign)."""
    if not token:
        return False
    return (
        _is_name(token)
        or token[:1].isdigit()
        or token[:1] in ("'", ".", ")")
        or token.upper() in ("NULL", "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP")
    )


def _join(tokens: Sequence[str]) -> str:
    """Tokens as canonical text: keywords upper-cased, one space between tokens except after
    ``(``, a unary sign and a name before ``(``, and before ``)``, ``,``, ``;``; none around
    dots."""
    out: list[str] = []
    previous = ""
    tight = True  # no space before the next token
    for token in tokens:
        text = token.upper() if _is_word(token) and token.upper() in _KEYWORDS else token
        call = text == "(" and bool(previous) and _is_name(previous)
        if not tight and not call and text not in (")", ",", ".", ";"):
            out.append(" ")
        out.append(text)
        unary = text in ("-", "+") and not _is_operand(previous)
        tight = text in ("(", ".") or unary
        previous = text
    return "".join(out)


def normalise_sql(sql: str) -> str:
    """SQL text compared in a canonical form: no comments, collapsed spaces, keywords upper."""
    return _join(tokenize(sql))


def unquote_identifier(token: str) -> str:
    """The name a (possibly quoted) identifier token stands for."""
    if len(token) >= 2:
        first, last = token[0], token[-1]
        if first == '"' and last == '"':
            return token[1:-1].replace('""', '"')
        if first == "`" and last == "`":
            return token[1:-1].replace("``", "`")
        if first == "[" and last == "]":
            return token[1:-1]
        if first == "'" and last == "'":
            return token[1:-1].replace("''", "'")
    return token


def _sql_name(name: str) -> str:
    """An identifier as SQL text: bare when that is unambiguous, quoted otherwise."""
    if _PLAIN_NAME.fullmatch(name) and name.upper() not in _KEYWORDS:
        return name
    return quote_identifier(name)


def _group(tokens: Sequence[str], start: int) -> tuple[list[str], int]:
    """Tokens inside the parenthesis opening at ``start``, and the index after its close."""
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i] == "(":
            depth += 1
        elif tokens[i] == ")":
            depth -= 1
            if depth == 0:
                return list(tokens[start + 1 : i]), i + 1
    return list(tokens[start + 1 :]), len(tokens)


def _split_commas(tokens: Sequence[str]) -> list[list[str]]:
    """Split at top-level commas."""
    items: list[list[str]] = [[]]
    depth = 0
    for token in tokens:
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        if token == "," and depth == 0:
            items.append([])
        else:
            items[-1].append(token)
    return [item for item in items if item]


def _find_top_level(tokens: Sequence[str], word: str, start: int = 0) -> int:
    """Index of the first top-level keyword ``word`` at or after ``start``, or -1."""
    depth = 0
    for i in range(start, len(tokens)):
        token = tokens[i]
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0 and _upper(token) == word:
            return i
    return -1


def _key_expression(item: Sequence[str]) -> list[str]:
    """An index key or constraint column without its ``COLLATE x``/``ASC``/``DESC`` suffix."""
    tokens = list(item)
    while tokens:
        if _upper(tokens[-1]) in ("ASC", "DESC"):
            tokens.pop()
        elif len(tokens) >= 2 and _upper(tokens[-2]) == "COLLATE":
            del tokens[-2:]
        else:
            break
    return tokens


# --------------------------------------------------------------------------------------------
# CREATE TABLE / CREATE INDEX text


@dataclass
class _ParsedColumn:
    collation: str | None = None
    generated: str | None = None
    autoincrement: bool = False


@dataclass
class _ParsedConstraint:
    kind: str  # primary_key, unique, check, foreign_key
    name: str | None
    columns: tuple[str, ...] = ()
    expression: str = ""
    referenced_table: str = ""
    deferrable: bool = False
    initially_deferred: bool = False


@dataclass
class _ParsedTable:
    columns: dict[str, _ParsedColumn] = field(default_factory=dict)
    constraints: list[_ParsedConstraint] = field(default_factory=list)
    options: tuple[str, ...] = ()
    virtual: bool = False


_REFERENCE_WORD_LIST: Final = (
    "ON DELETE UPDATE SET NULL DEFAULT CASCADE RESTRICT NO ACTION MATCH NOT DEFERRABLE "
    "INITIALLY DEFERRED IMMEDIATE"
)
_REFERENCE_WORDS: Final = frozenset(_REFERENCE_WORD_LIST.split())


def _parse_references(tokens: Sequence[str], start: int, constraint: _ParsedConstraint) -> int:
    """Read ``REFERENCES table [(cols)] [actions] [DEFERRABLE ...]`` from ``start``."""
    i = start + 1
    if i < len(tokens):
        constraint.referenced_table = unquote_identifier(tokens[i])
        i += 1
    if i < len(tokens) and tokens[i] == "(":
        _, i = _group(tokens, i)
    while i < len(tokens) and _upper(tokens[i]) in _REFERENCE_WORDS:
        word = _upper(tokens[i])
        following = _upper(tokens[i + 1]) if i + 1 < len(tokens) else ""
        if word == "NOT" and following == "DEFERRABLE":
            constraint.deferrable = False
            i += 2
            continue
        if word == "DEFERRABLE":
            constraint.deferrable = True
        elif word == "INITIALLY":
            constraint.initially_deferred = following == "DEFERRED"
            i += 2
            continue
        elif word == "MATCH":
            i += 2
            continue
        i += 1
    return i


def _column_list(tokens: Sequence[str]) -> tuple[str, ...]:
    return tuple(
        unquote_identifier(item[0]) for item in map(_key_expression, _split_commas(tokens)) if item
    )


def _parse_table_constraint(item: Sequence[str], parsed: _ParsedTable) -> None:
    name: str | None = None
    i = 0
    if _upper(item[0]) == "CONSTRAINT" and len(item) > 1:
        name = unquote_identifier(item[1])
        i = 2
    if i >= len(item):
        return
    word = _upper(item[i])
    paren = next((j for j in range(i, len(item)) if item[j] == "("), -1)
    if paren < 0:
        return
    inside, after = _group(item, paren)
    if word == "PRIMARY":
        parsed.constraints.append(_ParsedConstraint("primary_key", name, _column_list(inside)))
    elif word == "UNIQUE":
        parsed.constraints.append(_ParsedConstraint("unique", name, _column_list(inside)))
    elif word == "CHECK":
        parsed.constraints.append(_ParsedConstraint("check", name, expression=_join(inside)))
    elif word == "FOREIGN":
        constraint = _ParsedConstraint("foreign_key", name, _column_list(inside))
        ref = _find_top_level(item, "REFERENCES", after)
        if ref >= 0:
            _parse_references(item, ref, constraint)
        parsed.constraints.append(constraint)


def _parse_column(item: Sequence[str], parsed: _ParsedTable) -> None:
    column_name = unquote_identifier(item[0])
    column = _ParsedColumn()
    pending: str | None = None  # the name a CONSTRAINT clause gives the next constraint
    i = 1
    while i < len(item):
        word = _upper(item[i])
        if word == "CONSTRAINT" and i + 1 < len(item) and item[i + 1]:
            pending = unquote_identifier(item[i + 1])
            i += 2
            continue
        if word in ("NOT", "NULL", "DEFAULT", "COLLATE", "AS", "GENERATED"):
            pending = None  # a name given to NOT NULL or DEFAULT names nothing kept here
        after = _column_constraint(item, i, column_name, pending, parsed)
        if after is not None:
            pending = None
            i = after
        else:
            i = _column_clause(item, i, column)
    parsed.columns[column_name.lower()] = column


def _column_constraint(
    item: Sequence[str], i: int, column_name: str, name: str | None, parsed: _ParsedTable
) -> int | None:
    """A constraint declared on a column at ``item[i]``: recorded, and the index after it.

    None when ``item[i]`` starts no constraint.
    """
    word = _upper(item[i])
    following = item[i + 1] if i + 1 < len(item) else ""
    if word == "PRIMARY":
        parsed.constraints.append(_ParsedConstraint("primary_key", name, (column_name,)))
        return i + 1
    if word == "UNIQUE":
        parsed.constraints.append(_ParsedConstraint("unique", name, (column_name,)))
        return i + 1
    if word == "CHECK" and following == "(":
        inside, after = _group(item, i + 1)
        parsed.constraints.append(_ParsedConstraint("check", name, expression=_join(inside)))
        return after
    if word == "REFERENCES":
        constraint = _ParsedConstraint("foreign_key", name, (column_name,))
        after = _parse_references(item, i, constraint)
        parsed.constraints.append(constraint)
        return after
    return None


def _column_clause(item: Sequence[str], i: int, column: _ParsedColumn) -> int:
    """Any other clause of a column definition at ``item[i]``: kept if wanted; the index after."""
    word = _upper(item[i])
    following = item[i + 1] if i + 1 < len(item) else ""
    if word == "AUTOINCREMENT":
        column.autoincrement = True
    elif word == "COLLATE" and following:
        column.collation = unquote_identifier(following).upper()
        return i + 2
    elif word == "AS" and following == "(":
        inside, after = _group(item, i + 1)
        column.generated = _join(inside)
        return after
    elif word == "DEFAULT" and following == "(":
        return _group(item, i + 1)[1]
    elif word == "DEFAULT" and following:
        # a signed number is two tokens; anything else one
        return i + (3 if following in ("+", "-") else 2)
    elif item[i] == "(":
        return _group(item, i)[1]
    return i + 1


def parse_create_table(sql: str) -> _ParsedTable:
    """What the ``CREATE TABLE`` text says beyond the pragmas (see the module docstring)."""
    tokens = tokenize(sql)
    parsed = _ParsedTable()
    if len(tokens) > 1 and _upper(tokens[1]) == "VIRTUAL":
        using = _find_top_level(tokens, "USING")
        parsed.virtual = True
        parsed.options = (_join(tokens[using:]),) if using >= 0 else ()
        return parsed
    table = _find_top_level(tokens, "TABLE")
    name_end = table + 2
    if name_end < len(tokens) and tokens[name_end] == ".":
        name_end += 2
    if name_end >= len(tokens) or tokens[name_end] != "(":
        return parsed  # CREATE TABLE ... AS SELECT: no declared constraints
    body, after = _group(tokens, name_end)
    for item in _split_commas(body):
        if _upper(item[0]) in ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"):
            _parse_table_constraint(item, parsed)
        else:
            _parse_column(item, parsed)
    parsed.options = tuple(_join(option) for option in _split_commas(tokens[after:]))
    return parsed


@dataclass
class _ParsedIndex:
    keys: list[str] = field(default_factory=list)
    predicate: str | None = None


def parse_create_index(sql: str) -> _ParsedIndex:
    """Key expressions (as written, normalised) and ``WHERE`` predicate of ``CREATE INDEX``."""
    tokens = tokenize(sql)
    parsed = _ParsedIndex()
    on = _find_top_level(tokens, "ON")
    if on < 0:
        return parsed
    paren = next((i for i in range(on, len(tokens)) if tokens[i] == "("), -1)
    if paren < 0:
        return parsed
    inside, after = _group(tokens, paren)
    parsed.keys = [_join(_key_expression(item)) for item in _split_commas(inside)]
    where = _find_top_level(tokens, "WHERE", after)
    if where >= 0:
        parsed.predicate = _join(tokens[where + 1 :])
    return parsed


# --------------------------------------------------------------------------------------------
# Reading


_OBJECTS_SQL: Final = "SELECT type, name, tbl_name, sql FROM main.sqlite_master"
_COLUMNS_SQL: Final = (
    'SELECT cid, name, type, "notnull", dflt_value, pk, hidden'
    " FROM pragma_table_xinfo(%s, 'main') ORDER BY cid"
)
_INDEX_LIST_SQL: Final = (
    "SELECT name, \"unique\", origin, partial FROM pragma_index_list(%s, 'main') ORDER BY name"
)
_INDEX_COLUMNS_SQL: Final = (
    "SELECT seqno, cid, name FROM pragma_index_xinfo(%s, 'main') WHERE key = 1 ORDER BY seqno"
)
_FOREIGN_KEYS_SQL: Final = (
    'SELECT id, seq, "table", "from", "to", on_update, on_delete, match'
    " FROM pragma_foreign_key_list(%s, 'main') ORDER BY id, seq"
)
_GENERATED_STORAGE: Final = {2: "VIRTUAL", 3: "STORED"}


def _is_internal_table(name: str) -> bool:
    lowered = name.lower()
    return (
        lowered.startswith("sqlite_")
        or lowered == PRISMA_TABLE
        or lowered.startswith(HISTORY_PREFIX)
    )


def _fk_definition(fk: ForeignKeyInfo) -> str:
    parts = [
        f"FOREIGN KEY ({', '.join(map(_sql_name, fk.columns))})",
        f"REFERENCES {_sql_name(fk.referenced_table)}"
        f"({', '.join(map(_sql_name, fk.referenced_columns))})",
    ]
    if fk.on_update != "NO ACTION":
        parts.append(f"ON UPDATE {fk.on_update}")
    if fk.on_delete != "NO ACTION":
        parts.append(f"ON DELETE {fk.on_delete}")
    if fk.deferrable:
        parts.append("DEFERRABLE")
        if fk.initially_deferred:
            parts.append("INITIALLY DEFERRED")
    return " ".join(parts)


def _declared_name(
    declared: Sequence[_ParsedConstraint], kind: str, cols: Sequence[str]
) -> str | None:
    """The name the CREATE TABLE text gives a constraint of this kind on these columns."""
    wanted = tuple(c.lower() for c in cols)
    for c in declared:
        if c.kind == kind and tuple(x.lower() for x in c.columns) == wanted:
            return c.name
    return None


def _index_keys(key_rows: Sequence[tuple[Any, ...]], parsed: _ParsedIndex) -> tuple[str, ...]:
    """An index's keys: quoted column names, ``rowid``, or the expression as written."""
    keys = []
    for seqno, cid, column_name in key_rows:
        if cid == -2:  # an expression: only the CREATE INDEX text knows it
            keys.append(parsed.keys[seqno] if seqno < len(parsed.keys) else "")
        elif cid == -1:
            keys.append("rowid")
        else:
            keys.append(_sql_name(column_name))
    return tuple(keys)


class _SqliteReader:
    """One snapshot read of the ``main`` database."""

    def __init__(self, query: QueryFn, exclude: ExcludeFn | None) -> None:
        self.query = query
        self.exclude = exclude
        self.table_names: dict[str, str] = {}  # lower-case name → name as created

    def excluded(self, name: str) -> bool:
        return self.exclude is not None and self.exclude(MAIN_SCHEMA, name)

    def snapshot(self) -> SchemaSnapshot:
        objects = self.query(_OBJECTS_SQL, None)
        table_sql: dict[str, str] = {}
        index_sql: dict[str, str] = {}
        views: list[ViewInfo] = []
        trigger_rows: list[tuple[str, str, str]] = []
        for kind, name, table, sql in objects:
            if kind == "table" and not _is_internal_table(name) and not self.excluded(name):
                table_sql[name] = sql or ""
            elif kind == "index" and sql is not None:
                index_sql[name] = sql
            elif kind == "view" and not self.excluded(name):
                views.append(ViewInfo(schema=None, name=name, definition=normalise_sql(sql)))
            elif kind == "trigger":
                trigger_rows.append((name, table, sql))
        self.table_names = {name.lower(): name for name in table_sql}
        tables: list[TableInfo] = []
        indexes: list[IndexInfo] = []
        for name, sql in table_sql.items():
            table, table_indexes = self.table(name, sql, index_sql)
            tables.append(table)
            indexes.extend(table_indexes)
        relations = {name.lower() for name in table_sql} | {v.name.lower() for v in views}
        triggers = [
            TriggerInfo(schema=None, table=table, name=name, definition=normalise_sql(sql))
            for name, table, sql in trigger_rows
            if table.lower() in relations
        ]
        return SchemaSnapshot.build(
            DIALECT,
            tables=tables,
            views=views,
            indexes=indexes,
            triggers=triggers,
        )

    def table(
        self, name: str, sql: str, index_sql: dict[str, str]
    ) -> tuple[TableInfo, list[IndexInfo]]:
        parsed = parse_create_table(sql)
        columns, primary_key = self.columns(name, parsed)
        declared = parsed.constraints
        constraints: list[ConstraintInfo] = []
        if primary_key:
            pk_columns = tuple(column for _, column in sorted(primary_key))
            constraints.append(
                ConstraintInfo(
                    kind="primary_key",
                    name=_declared_name(declared, "primary_key", pk_columns),
                    columns=pk_columns,
                    definition=f"PRIMARY KEY ({', '.join(map(_sql_name, pk_columns))})",
                )
            )
        checks_seen: set[str] = set()
        for c in declared:
            if c.kind != "check":
                continue
            check = ConstraintInfo(
                kind="check", name=c.name, columns=(), definition=f"CHECK ({c.expression})"
            )
            # Two identical anonymous CHECKs are one rule; keep one so keys stay unique.
            if check.key not in checks_seen:
                checks_seen.add(check.key)
                constraints.append(check)
        indexes = self.indexes(name, declared, index_sql, constraints)
        table = TableInfo(
            schema=None,
            name=name,
            columns=tuple(columns),
            constraints=tuple(constraints),
            foreign_keys=tuple(self.foreign_keys(name, declared)),
            kind="virtual table" if parsed.virtual else "table",
            options=parsed.options,
        )
        return table, indexes

    def columns(
        self, name: str, parsed: _ParsedTable
    ) -> tuple[list[ColumnInfo], list[tuple[int, str]]]:
        """The table's columns, and its primary key as (position in the key, column) pairs."""
        columns: list[ColumnInfo] = []
        primary_key: list[tuple[int, str]] = []
        for cid, column_name, type_, notnull, default, pk, hidden in self.query(
            _COLUMNS_SQL, (name,)
        ):
            if hidden == 1:  # a virtual table's hidden column: module machinery
                continue
            extra = parsed.columns.get(column_name.lower(), _ParsedColumn())
            storage = _GENERATED_STORAGE.get(hidden)
            columns.append(
                ColumnInfo(
                    name=column_name,
                    position=cid + 1,
                    type=type_ or "",
                    nullable=not notnull,
                    default=normalise_sql(default) if default is not None else None,
                    identity="AUTOINCREMENT" if extra.autoincrement else None,
                    generated=extra.generated if storage else None,
                    generated_storage=storage,
                    collation=extra.collation,
                )
            )
            if pk:
                primary_key.append((pk, column_name))
        return columns, primary_key

    def indexes(
        self,
        name: str,
        declared: list[_ParsedConstraint],
        index_sql: dict[str, str],
        constraints: list[ConstraintInfo],
    ) -> list[IndexInfo]:
        """The table's own indexes; its UNIQUE constraints' indexes go to ``constraints``."""
        indexes: list[IndexInfo] = []
        for index_name, unique, origin, partial in self.query(_INDEX_LIST_SQL, (name,)):
            key_rows = self.query(_INDEX_COLUMNS_SQL, (index_name,))
            if origin == "u":
                cols = tuple(str(row[2]) for row in key_rows)
                constraints.append(
                    ConstraintInfo(
                        kind="unique",
                        name=_declared_name(declared, "unique", cols),
                        columns=cols,
                        definition=f"UNIQUE ({', '.join(map(_sql_name, cols))})",
                    )
                )
            elif origin == "c" and not self.excluded(index_name):
                sql_text = index_sql.get(index_name, "")
                parsed_index = parse_create_index(sql_text)
                indexes.append(
                    IndexInfo(
                        schema=None,
                        name=index_name,
                        table=name,
                        columns=_index_keys(key_rows, parsed_index),
                        unique=bool(unique),
                        predicate=parsed_index.predicate if partial else None,
                        definition=normalise_sql(sql_text),
                    )
                )
        return indexes

    def foreign_keys(self, name: str, declared: list[_ParsedConstraint]) -> list[ForeignKeyInfo]:
        grouped: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for row in self.query(_FOREIGN_KEYS_SQL, (name,)):
            grouped[row[0]].append(row)
        declared_fks = [c for c in declared if c.kind == "foreign_key"]
        result: list[ForeignKeyInfo] = []
        for rows in grouped.values():
            _, _, parent, _, _, on_update, on_delete, match = rows[0]
            parent_name = self.table_names.get(parent.lower(), parent)
            columns = tuple(row[3] for row in rows)
            referenced = tuple(row[4] for row in rows)
            if any(column is None for column in referenced):
                # "REFERENCES parent" without columns means the parent's primary key
                referenced = self.primary_key_of(parent_name)
            wanted = (tuple(c.lower() for c in columns), parent.lower())
            match_decl = next(
                (
                    c
                    for c in declared_fks
                    if (tuple(x.lower() for x in c.columns), c.referenced_table.lower()) == wanted
                ),
                None,
            )
            if match_decl is not None:
                declared_fks.remove(match_decl)
            fk = ForeignKeyInfo(
                name=match_decl.name if match_decl else None,
                columns=columns,
                referenced_table=parent_name,
                referenced_columns=referenced,
                on_delete=on_delete,
                on_update=on_update,
                match=match,
                deferrable=match_decl.deferrable if match_decl else False,
                initially_deferred=match_decl.initially_deferred if match_decl else False,
            )
            result.append(replace(fk, definition=_fk_definition(fk)))
        return result

    def primary_key_of(self, table: str) -> tuple[str, ...]:
        rows = self.query(_COLUMNS_SQL, (table,))
        return tuple(str(row[1]) for row in sorted((r for r in rows if r[5]), key=lambda r: r[5]))


def read_sqlite_snapshot(query: QueryFn, *, exclude: ExcludeFn | None = None) -> SchemaSnapshot:
    """Read the schema of a SQLite database's ``main`` schema, without side effects.

    ``sqlite_%`` tables, ``_prisma_migrations`` and ``backout_%`` tables are always left out.
    ``exclude("main", name)`` may leave out more tables, views and indexes; an excluded table's
    indexes and triggers go with it.
    """
    return _SqliteReader(query, exclude).snapshot()


def read_table_stats(query: QueryFn, snapshot: SchemaSnapshot) -> dict[str, TableStats]:
    """Exact row count and an order-independent content checksum of every table in ``snapshot``.

    Each row is hashed as its ``(column, value)`` pairs in column-name order (so column order
    does not matter, and ``1``, ``1.0`` and ``'1'`` differ), and the 128-bit hashes are summed,
    so the physical order of rows does not matter either.
    """
    result: dict[str, TableStats] = {}
    for key, table in snapshot.tables.items():
        names = sorted(column.name for column in table.columns)
        select = ", ".join(quote_identifier(name) for name in names)
        rows = query(f"SELECT {select} FROM main.{quote_identifier(table.name)}", None)
        total = 0
        for row in rows:
            text = repr(tuple(zip(names, row, strict=True))).encode("utf-8")
            digest = hashlib.blake2b(text, digest_size=16).digest()
            total = (total + int.from_bytes(digest, "big")) % 2**128
        result[key] = TableStats(row_count=len(rows), checksum=f"{total:032x}")
    return result
