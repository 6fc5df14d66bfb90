"""MySQL/MariaDB effects analysis: sqlglot's parse tree (``read="mysql"``) →
:mod:`backout.model.effects`.

This module imports sqlglot when it is imported; reach it through
:func:`backout.model.effects.analyze`.
The walk of sqlglot's tree is shared with SQLite (:mod:`backout.dialects.sqlglot.effects`); what is
MySQL's own is here.

sqlglot accepts invalid SQL and falls back to ``exp.Command`` for what it does not know; both
shape this module:

- Only the statement types handled here and in the shared walk are trusted; any other tree, and
  every ``exp.Command``, is an :class:`~backout.model.effects.Unknown` ("needs review"), never
  passed.
- ``RENAME TABLE a TO b, c TO d`` and ``CREATE TRIGGER`` become commands; they are read with
  regular expressions instead (a trigger's body is not analysed: it runs later, per row).
- ``REPLACE INTO`` is rewritten to ``INSERT`` for sqlglot and kept as a destructive insert (it
  deletes the rows it conflicts with).
- ``CALL`` runs a stored procedure whose body is elsewhere: Unknown.
- ``CREATE PROCEDURE/FUNCTION`` create the routine; the body runs on ``CALL``, not here.

Names keep their spelling and compare case-insensitively: column, index and routine names are
case-insensitive in MySQL, and table names are too where ``lower_case_table_names`` is set
(Windows, macOS; not Linux's default, where two tables differing only in case are possible but
rare). There are no schemas inside a database: ``db.t`` keeps ``db`` as its schema, an
unqualified name has none. Every index (``UNIQUE`` or not) is an
index, as in :mod:`backout.dialects.mysql.catalog`. ``MODIFY``/``CHANGE`` of a column can narrow
its type, so they count as destructive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sqlglot import exp

from backout.dialects.mysql.split import head_words
from backout.dialects.sqlglot.check_guard import MYSQL_SERVER_FUNCTIONS
from backout.dialects.sqlglot.effects import DeclaredIndex, SqlglotAnalyzer
from backout.model.effects import Action, ObjectKind, ObjectRef, ScriptEffects
from backout.model.script import Statement

K = ObjectKind

_NAME = r"(?:`(?:[^`]|``)*`|[A-Za-z0-9_$]+)"
_QUALIFIED = rf"(?:(?P<{{p}}s>{_NAME})\s*\.\s*)?(?P<{{p}}n>{_NAME})"
_RENAME_PAIR = re.compile(
    rf"{_QUALIFIED.format(p='a')}\s+TO\s+{_QUALIFIED.format(p='b')}", re.I | re.S
)
_TRIGGER = re.compile(
    rf"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?TRIGGER\s+"
    rf"(?P<guard>IF\s+NOT\s+EXISTS\s+)?{_QUALIFIED.format(p='t')}\s+"
    rf"(?P<timing>BEFORE|AFTER)\s+(?P<event>INSERT|UPDATE|DELETE)\s+ON\s+"
    rf"{_QUALIFIED.format(p='o')}\s",
    re.I | re.S,
)
_DROP_TRIGGER = re.compile(
    rf"^DROP\s+TRIGGER\s+(?P<guard>IF\s+EXISTS\s+)?{_QUALIFIED.format(p='t')}\s*$", re.I | re.S
)
#: LOAD DATA [LOW_PRIORITY | CONCURRENT] [LOCAL] INFILE
_LOAD_DATA = re.compile(
    r"^LOAD\s+(?:DATA|XML)\s+(?:(?:LOW_PRIORITY|CONCURRENT)\s+)?(?P<local>LOCAL\s+)?INFILE\b", re.I
)
#: SELECT … INTO OUTFILE / DUMPFILE writes a file on the server
#: a call of a function that acts outside the database (read in the text: SELECTs are not parsed)
_SERVER_CALL = re.compile(r"\b(" + "|".join(MYSQL_SERVER_FUNCTIONS) + r")\s*\(", re.I)
_INTO_FILE = re.compile(r"\bINTO\s+(?:OUTFILE|DUMPFILE)\b", re.I)
#: string literals, quoted names and comments (not executable ones): the server-side effects
#: above are looked for in the rest, so a word in a string or a comment raises no alarm
_NOT_CODE = re.compile(
    r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|`(?:[^`]|``)*`"
    r"|#[^\n]*|--(?:\s[^\n]*)?(?=\n|$)|/\*(?!!|M!)[\s\S]*?\*/"
)
_REPLACE_INTO = re.compile(r"^REPLACE\s+(?:LOW_PRIORITY\s+|DELAYED\s+)?(?:INTO\s+)?", re.I)
_LEADING_NOISE = re.compile(
    r"^(?:\s+|#[^\n]*(?:\n|$)|--(?:\s[^\n]*)?(?:\n|$)|/\*(?!!|M!)(?:.|\n)*?\*/)*"
)
_NO_EFFECT_HEADS = frozenset(
    {
        "SELECT",
        "SHOW",
        "EXPLAIN",
        "DESCRIBE",
        "DESC",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "START",
        "SAVEPOINT",
        "RELEASE",
        "ANALYZE",
        "OPTIMIZE",
        "CHECK",
        "CHECKSUM",
        "DO",
        "USE",
    }
)


def analyze_statements(statements: Sequence[Statement]) -> ScriptEffects:
    """Analyse MySQL statements (as split by ``MysqlDialect.split``) for their effects."""
    return _Analyzer().analyze(statements)


def _column_names(nodes: Sequence[Any]) -> list[str]:
    names = []
    for node in nodes:
        inner = node.this if isinstance(node, exp.Ordered) else node
        names.append(inner.name if isinstance(inner, exp.Column | exp.Identifier) else inner.sql())
    return names


class _Analyzer(SqlglotAnalyzer):
    """Walks MySQL statements, recording effects and unknowns."""

    dialect = "mysql"
    leading_noise = _LEADING_NOISE
    quotes = "`"
    # InnoDB's default is RESTRICT (NO ACTION behaves the same)
    default_fk_action = "RESTRICT"
    drop_kinds: ClassVar[Mapping[str, ObjectKind]] = {
        "TABLE": K.TABLE,
        "INDEX": K.INDEX,
        "VIEW": K.VIEW,
        "PROCEDURE": K.PROCEDURE,
        "FUNCTION": K.FUNCTION,
    }
    alter_drop_kinds: ClassVar[Mapping[str, ObjectKind]] = {
        "COLUMN": K.COLUMN,
        "INDEX": K.INDEX,
        "KEY": K.INDEX,
        "FOREIGN KEY": K.FOREIGN_KEY,
        "CONSTRAINT": K.CONSTRAINT,
        "CHECK": K.CONSTRAINT,
    }

    server_functions: ClassVar[Mapping[str, str]] = MYSQL_SERVER_FUNCTIONS

    def __init__(self) -> None:
        super().__init__()
        #: the statement is a ``REPLACE`` (rewritten to ``INSERT`` for sqlglot)
        self.replace = False

    def run(self, sql: str) -> None:
        """Analyse one statement."""
        words = head_words(sql, 4)
        head = words[0] if words else ""
        if not sql or sql.startswith(("/*!", "/*M!")):
            self.flag("an executable comment (/*! ... */): its effect depends on the server")
            return
        if head == "CALL":
            self.flag("CALL runs a stored procedure: what it does is not analysed")
            return
        if head == "RENAME":
            self.rename_tables(sql)
            return
        if head == "CREATE" and "TRIGGER" in words:
            self.trigger(sql)
            return
        if head == "DROP" and words[1:2] == ["TRIGGER"]:
            self.drop_trigger(sql)
            return
        if head in {"LOCK", "UNLOCK"}:
            return  # refused in transactional scripts; no effect on schema or data
        load = _LOAD_DATA.match(sql)
        if load is not None:
            where = "the client machine" if load["local"] else "the database server"
            self.outside(f"reads a file on {where} into a table (LOAD DATA INFILE)")
            self.flag("LOAD DATA: the rows it loads are not analysed")
            return
        code = _NOT_CODE.sub(" ", sql)
        if _INTO_FILE.search(code):
            self.outside("writes a file on the database server (SELECT … INTO OUTFILE/DUMPFILE)")
        for call in _SERVER_CALL.finditer(code):
            name = call[1].lower()
            self.outside(f"{MYSQL_SERVER_FUNCTIONS[name]} ({name}())")
        if head in _NO_EFFECT_HEADS and not (head == "START" and words[1:2] != ["TRANSACTION"]):
            return
        self.replace = head == "REPLACE"
        if self.replace:
            sql = _REPLACE_INTO.sub("INSERT INTO ", sql, count=1)
        self.dispatch_sql(sql)

    def dispatch_other(self, tree: exp.Expr) -> None:
        """``TRUNCATE`` and ``SET``."""
        if isinstance(tree, exp.TruncateTable):
            for node in tree.expressions:
                if isinstance(node, exp.Table):
                    table = self.table(node)
                    self.emit(Action.TRUNCATE, table, table=table, destructive=True)
        elif isinstance(tree, exp.Set):
            for item in tree.expressions:
                self.emit(Action.OTHER, self.ref(K.SETTING, None, item.sql(dialect="mysql")))
        else:
            super().dispatch_other(tree)

    # --- statements sqlglot does not read -----------------------------------------------------

    def rename_tables(self, sql: str) -> None:
        body = re.sub(r"^RENAME\s+TABLES?\s+", "", sql, count=1, flags=re.I)
        pairs = list(_RENAME_PAIR.finditer(body))
        if not pairs:
            self.flag("RENAME TABLE not understood")
            return
        for pair in pairs:
            old = self.ref(K.TABLE, self.unquote(pair["as"]), self.unquote(pair["an"]) or "")
            new = self.ref(K.TABLE, self.unquote(pair["bs"]), self.unquote(pair["bn"]) or "")
            self.emit(
                Action.RENAME,
                old,
                table=old,
                detail=f'rename to "{new.name}"',
                renamed_to=new,
            )

    def trigger(self, sql: str) -> None:
        match = _TRIGGER.match(sql)
        if match is None:
            self.flag("CREATE TRIGGER not understood")
            return
        table = self.ref(K.TABLE, self.unquote(match["os"]), self.unquote(match["on"]) or "")
        name = self.unquote(match["tn"]) or ""
        self.emit(
            Action.CREATE,
            self.ref(K.TRIGGER, self.unquote(match["ts"]), name, table.name),
            table=table,
            detail=f"{match['timing'].upper()} {match['event'].upper()} ON {table.qualified_name}",
            if_exists=match["guard"] is not None,
        )

    def drop_trigger(self, sql: str) -> None:
        match = _DROP_TRIGGER.match(sql)
        if match is None:
            self.flag("DROP TRIGGER not understood")
            return
        self.emit(
            Action.DROP,
            self.ref(K.TRIGGER, self.unquote(match["ts"]), self.unquote(match["tn"]) or ""),
            if_exists=match["guard"] is not None,
        )

    # --- hooks of the shared walk -------------------------------------------------------------

    def create_index(
        self, tree: exp.Create, index: exp.Index, table: ObjectRef, guarded: bool
    ) -> None:
        """``CREATE [UNIQUE] INDEX``: an index of its table, by its key columns."""
        params = index.args.get("params")
        columns = (
            _column_names(params.args.get("columns") or ())
            if isinstance(params, exp.IndexParameters)
            else []
        )
        unique = bool(tree.args.get("unique"))
        self.emit(
            Action.CREATE,
            self.ref(K.INDEX, table.schema, index.name, table.name),
            table=table,
            detail=("UNIQUE " if unique else "") + f"on {table.qualified_name}",
            columns=tuple(columns),
            if_exists=guarded,
        )

    def create_other(self, kind: str, tree: exp.Create, guarded: bool) -> None:
        """``CREATE PROCEDURE/FUNCTION``: the routine (its body runs on CALL, not here)."""
        if kind not in {"PROCEDURE", "FUNCTION"}:
            super().create_other(kind, tree, guarded)
            return
        node = tree.this
        name_node = node.this if isinstance(node, exp.UserDefinedFunction) else node
        name = getattr(name_node, "name", "") or ""
        schema = getattr(name_node, "db", None) or None
        self.emit(
            Action.CREATE,
            self.ref(K.PROCEDURE if kind == "PROCEDURE" else K.FUNCTION, schema, name),
            if_exists=guarded,
            detail="OR REPLACE" if tree.args.get("replace") else "",
        )

    def table_element(
        self, table: ObjectRef, element: Any, columns: list[str], indexes: list[DeclaredIndex]
    ) -> None:
        """``UNIQUE``/``KEY``/``INDEX`` in CREATE TABLE: indexes, named after their first
        column when they have no name of their own."""
        if isinstance(element, exp.UniqueColumnConstraint):
            inner = element.this
            # ``UNIQUE (col)`` has no name node: MySQL names the key after its first column
            name_node = inner.this if isinstance(inner, exp.Schema) else None
            name = name_node.name if name_node is not None else ""
            cols = _column_names(inner.expressions if isinstance(inner, exp.Schema) else [])
            unique = True
        elif isinstance(element, exp.IndexColumnConstraint):
            cols = _column_names(element.expressions or [])
            name = element.this.name if element.this is not None else ""
            unique = False
        else:
            return
        target = self.ref(K.INDEX, table.schema, name or (cols[0] if cols else "?"), table.name)
        detail = ("UNIQUE " if unique else "") + f"on {table.qualified_name} (in CREATE TABLE)"
        indexes.append((target, detail, cols))

    def fk_name(
        self, table: ObjectRef, name: str | None, columns: list[str], number: int | None
    ) -> str:
        """Unnamed foreign keys get InnoDB's ``<table>_ibfk_<n>`` (``?`` for an n unknown
        here: ALTER TABLE numbers after the table's existing ones)."""
        return name or f"{table.name}_ibfk_{'?' if number is None else number}"

    def alter_other(self, table: ObjectRef, action: Any) -> None:
        """``MODIFY``/``CHANGE``/``ALTER`` of a column, ``ADD`` of keys and constraints,
        ``DROP PRIMARY KEY``."""

        def column(name: str) -> ObjectRef:
            return self.ref(K.COLUMN, table.schema, name, table.name)

        if isinstance(action, exp.Drop):
            # a kind alter_drop_kinds does not know
            kind = str(action.args.get("kind") or "").upper()
            for _item in action.args.get("tables") or ():
                self.flag(f"ALTER TABLE DROP {kind or '?'} is not analysed")
        elif isinstance(action, exp.DropPrimaryKey):
            self.emit(
                Action.DROP,
                self.ref(K.CONSTRAINT, table.schema, "PRIMARY", table.name),
                table=table,
            )
        elif isinstance(action, exp.ModifyColumn) and isinstance(action.this, exp.ColumnDef):
            definition = action.this
            old_name = action.args.get("rename_from")
            definition_sql = definition.sql(dialect="mysql")
            if old_name is not None and old_name.name != definition.name:
                self.emit(
                    Action.RENAME,
                    column(old_name.name),
                    table=table,
                    detail=f'CHANGE to "{definition.name}": {definition_sql}',
                    renamed_to=column(definition.name),
                    destructive=True,
                )
            else:
                self.emit(
                    Action.ALTER,
                    column(definition.name),
                    table=table,
                    detail=f"MODIFY {definition_sql}",
                    destructive=True,
                )
        elif isinstance(action, exp.AlterColumn):
            detail = action.sql(dialect="mysql").split(" ", 2)[-1] if action.name else "ALTER"
            self.emit(Action.ALTER, column(action.name), table=table, detail=detail)
        elif isinstance(action, exp.AddConstraint):
            for item in action.expressions:
                self.add_constraint(table, item)
        else:
            super().alter_other(table, action)

    def add_constraint(self, table: ObjectRef, item: Any) -> None:
        name = item.name if isinstance(item, exp.Constraint) else ""
        inner = item.expressions if isinstance(item, exp.Constraint) else [item]
        for key in inner:
            if isinstance(key, exp.ForeignKey) and isinstance(
                key.args.get("reference"), exp.Reference
            ):
                target, target_cols = self.reference(key.args["reference"])
                cols = [e.name for e in key.expressions]
                self.foreign_key(
                    table,
                    self.fk_name(table, name, cols, None),
                    cols,
                    key.args["reference"],
                    target,
                    target_cols,
                )
            elif isinstance(key, exp.UniqueColumnConstraint):
                schema = key.this
                index = schema.this.name if isinstance(schema, exp.Schema) else ""
                cols = _column_names(schema.expressions if isinstance(schema, exp.Schema) else [])
                self.emit(
                    Action.CREATE,
                    self.ref(
                        K.INDEX,
                        table.schema,
                        index or name or (cols[0] if cols else "?"),
                        table.name,
                    ),
                    table=table,
                    detail=f"UNIQUE on {table.qualified_name}",
                    columns=tuple(cols),
                )
            elif isinstance(key, exp.IndexColumnConstraint):
                cols = _column_names(key.expressions or [])
                index = key.this.name if key.this is not None else ""
                self.emit(
                    Action.CREATE,
                    self.ref(
                        K.INDEX, table.schema, index or (cols[0] if cols else "?"), table.name
                    ),
                    table=table,
                    detail=f"on {table.qualified_name}",
                    columns=tuple(cols),
                )
            elif isinstance(key, exp.PrimaryKey):
                cols = _column_names(key.expressions or [])
                self.emit(
                    Action.CREATE,
                    self.ref(K.CONSTRAINT, table.schema, "PRIMARY", table.name),
                    table=table,
                    detail=f"PRIMARY KEY ({self.quoted(cols)})",
                    columns=tuple(cols),
                )
            elif isinstance(key, exp.CheckColumnConstraint):
                self.emit(
                    Action.CREATE,
                    self.ref(K.CONSTRAINT, table.schema, name or "?", table.name),
                    table=table,
                    detail=f"CHECK ({key.this.sql(dialect='mysql')})",
                )
            else:
                self.flag(f"ADD {key.key.upper()} is not analysed")

    def insert_notes(self, tree: exp.Insert) -> tuple[list[str], bool]:
        """``REPLACE``, ``IGNORE`` and ``ON DUPLICATE KEY UPDATE``: REPLACE and UPDATE overwrite
        rows."""
        notes: list[str] = []
        destructive = self.replace
        if self.replace:
            notes.append("REPLACE (deletes the rows it conflicts with)")
        if tree.args.get("ignore"):
            notes.append("IGNORE")
        conflict = tree.args.get("conflict")
        if isinstance(conflict, exp.OnConflict):
            notes.append("ON DUPLICATE KEY UPDATE")
            destructive = True
        return notes, destructive

    def skip_read(self, node: exp.Table, skip: exp.Table | None) -> bool:
        # the target's table named again (DELETE t FROM t JOIN u) is the target, not a read
        return skip is not None and self.table(node) == self.table(skip)
