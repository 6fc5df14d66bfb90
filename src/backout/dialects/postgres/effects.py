"""PostgreSQL effects analysis: pglast's parse tree (and plpgsql's) → :mod:`backout.model.effects`.

This module imports pglast when it is imported; reach it through
:func:`backout.model.effects.analyze`
so that commands which do not analyse SQL never load the parser.

What it knows beyond a statement-by-statement reading:

- ``DO`` blocks are parsed with ``pglast.parse_plpgsql`` and the statements inside them are
  analysed like top-level ones (context "DO block"); a dynamic ``EXECUTE`` is an :class:`Unknown`.
- A function or procedure the script defines is remembered; calling it later (``CALL``,
  ``SELECT f()``, ``PERFORM``) analyses its body at the call site. Calling a function that is
  neither defined in the script nor a known side-effect-free built-in is an :class:`Unknown`:
  its body could do anything. Bodies are not analysed where they are defined (a definition runs
  nothing).
- ``SET search_path`` (and ``CREATE SCHEMA ... <elements>``) decide the schema that later
  unqualified names resolve to; otherwise unqualified names keep ``schema=None``.
- Constraints and indexes created without a name get PostgreSQL's default name
  (``<table>_<columns>_fkey``, ``_key``, ``_pkey``, ``_check``, ``_idx``), so a rollback's
  ``DROP CONSTRAINT "registry_purchases_registryId_fkey"`` matches the forward migration.
- Partial-rollback parameters (``:since``) are not PostgreSQL syntax; a statement that fails to
  parse is retried with them replaced by positional placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast, enums
from pglast.parser import ParseError
from pglast.stream import RawStream

from backout.dialects.postgres.check_guard import SERVER_FUNCTIONS, is_server_function, walk_nodes
from backout.model.effects import (
    Action,
    Effect,
    ObjectKind,
    ObjectRef,
    ScriptEffects,
    ServerEffect,
    Unknown,
)
from backout.model.identifiers import quote_identifier
from backout.model.script import Statement

K = ObjectKind
OT = enums.ObjectType
AT = enums.AlterTableType

_NAMEDATALEN = 64
_NAMED_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

#: ObjectType → the kind of object it names (types without an entry are not analysed)
_KINDS: dict[enums.ObjectType, ObjectKind] = {
    OT.OBJECT_TABLE: K.TABLE,
    OT.OBJECT_FOREIGN_TABLE: K.TABLE,
    OT.OBJECT_VIEW: K.VIEW,
    OT.OBJECT_MATVIEW: K.MATERIALIZED_VIEW,
    OT.OBJECT_INDEX: K.INDEX,
    OT.OBJECT_SEQUENCE: K.SEQUENCE,
    OT.OBJECT_TYPE: K.TYPE,
    OT.OBJECT_DOMAIN: K.TYPE,
    OT.OBJECT_FUNCTION: K.FUNCTION,
    OT.OBJECT_AGGREGATE: K.FUNCTION,
    OT.OBJECT_ROUTINE: K.FUNCTION,
    OT.OBJECT_PROCEDURE: K.PROCEDURE,
    OT.OBJECT_TRIGGER: K.TRIGGER,
    OT.OBJECT_SCHEMA: K.SCHEMA,
    OT.OBJECT_EXTENSION: K.EXTENSION,
    OT.OBJECT_COLUMN: K.COLUMN,
    OT.OBJECT_TABCONSTRAINT: K.CONSTRAINT,
}

#: dropping one of these loses data
_DESTRUCTIVE_DROPS = frozenset({K.TABLE, K.COLUMN, K.TYPE, K.ENUM, K.SEQUENCE})
#: dropping one of these with CASCADE loses data: the tables of a schema, the columns of an
#: extension's types (a cascade from a table, view or constraint only takes views and constraints)
_DESTRUCTIVE_CASCADES = frozenset({K.SCHEMA, K.EXTENSION})

_FK_ACTIONS = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}

#: ALTER TABLE subcommands on a column that need only their name in the report
_COLUMN_DETAILS = {
    AT.AT_SetNotNull: "SET NOT NULL",
    AT.AT_DropNotNull: "DROP NOT NULL",
    AT.AT_DropExpression: "DROP EXPRESSION",
    AT.AT_DropIdentity: "DROP IDENTITY",
    AT.AT_AddIdentity: "ADD GENERATED AS IDENTITY",
    AT.AT_SetIdentity: "SET identity options",
    AT.AT_SetStatistics: "SET STATISTICS",
    AT.AT_SetStorage: "SET STORAGE",
    AT.AT_SetCompression: "SET COMPRESSION",
    AT.AT_SetOptions: "SET options",
    AT.AT_ResetOptions: "RESET options",
    AT.AT_SetExpression: "SET EXPRESSION",
}
#: constraints declared on an added column that are reported as constraints of their own
_COLUMN_CONSTRAINTS = frozenset(
    {
        enums.ConstrType.CONSTR_FOREIGN,
        enums.ConstrType.CONSTR_PRIMARY,
        enums.ConstrType.CONSTR_UNIQUE,
        enums.ConstrType.CONSTR_CHECK,
        enums.ConstrType.CONSTR_EXCLUSION,
    }
)

#: statements that change neither schema nor data (transaction control, maintenance, cursors)
_NO_EFFECT: tuple[type[ast.Node], ...] = (
    ast.TransactionStmt,
    ast.LockStmt,
    ast.VacuumStmt,
    ast.ClusterStmt,
    ast.ReindexStmt,
    ast.CheckPointStmt,
    ast.NotifyStmt,
    ast.ListenStmt,
    ast.UnlistenStmt,
    ast.DiscardStmt,
    ast.VariableShowStmt,
    ast.DeallocateStmt,
    ast.PrepareStmt,
    ast.ConstraintsSetStmt,
    ast.DeclareCursorStmt,
    ast.FetchStmt,
    ast.ClosePortalStmt,
)

#: built-in functions without side effects worth reporting (a call to anything else that the
#: script does not define is an Unknown: it could write anywhere)
_SAFE_FUNCTIONS = frozenset(
    [
        "abs",
        "age",
        "array_agg",
        "array_append",
        "array_cat",
        "array_length",
        "array_position",
        "array_remove",
        "array_to_json",
        "array_to_string",
        "avg",
        "bool_and",
        "bool_or",
        "btrim",
        "cardinality",
        "ceil",
        "ceiling",
        "char_length",
        "character_length",
        "clock_timestamp",
        "coalesce",
        "concat",
        "concat_ws",
        "count",
        "current_database",
        "current_schema",
        "current_setting",
        "currval",
        "date_part",
        "date_trunc",
        "decode",
        "dense_rank",
        "encode",
        "every",
        "extract",
        "first_value",
        "floor",
        "format",
        "format_type",
        "gen_random_uuid",
        "generate_series",
        "greatest",
        "has_schema_privilege",
        "has_table_privilege",
        "initcap",
        "json_agg",
        "json_array_elements",
        "json_array_length",
        "json_build_array",
        "json_build_object",
        "json_extract_path",
        "json_extract_path_text",
        "json_object_agg",
        "jsonb_agg",
        "jsonb_array_elements",
        "jsonb_array_elements_text",
        "jsonb_array_length",
        "jsonb_build_array",
        "jsonb_build_object",
        "jsonb_each",
        "jsonb_each_text",
        "jsonb_extract_path",
        "jsonb_extract_path_text",
        "jsonb_insert",
        "jsonb_object_agg",
        "jsonb_object_keys",
        "jsonb_set",
        "jsonb_strip_nulls",
        "jsonb_typeof",
        "lag",
        "last_value",
        "lastval",
        "lead",
        "least",
        "left",
        "length",
        "lower",
        "lpad",
        "ltrim",
        "make_date",
        "make_interval",
        "make_timestamp",
        "make_timestamptz",
        "max",
        "md5",
        "min",
        "mod",
        "now",
        "nth_value",
        "ntile",
        "nullif",
        "obj_description",
        "overlay",
        "percent_rank",
        "pg_advisory_lock",
        "pg_advisory_unlock",
        "pg_advisory_xact_lock",
        "pg_get_serial_sequence",
        "pg_sleep",
        "pg_try_advisory_lock",
        "pg_try_advisory_xact_lock",
        "position",
        "power",
        "random",
        "rank",
        "regexp_match",
        "regexp_matches",
        "regexp_replace",
        "regexp_split_to_array",
        "repeat",
        "replace",
        "reverse",
        "right",
        "round",
        "row_number",
        "row_to_json",
        "rpad",
        "rtrim",
        "sign",
        "split_part",
        "sqrt",
        "starts_with",
        "statement_timestamp",
        "string_agg",
        "string_to_array",
        "strpos",
        "substr",
        "substring",
        "sum",
        "timezone",
        "to_char",
        "to_date",
        "to_json",
        "to_jsonb",
        "to_number",
        "to_regclass",
        "to_timestamp",
        "transaction_timestamp",
        "translate",
        "trim",
        "trunc",
        "txid_current",
        "unnest",
        "upper",
        "uuid_generate_v4",
        "version",
    ]
)


def analyze_statements(statements: Sequence[Statement]) -> ScriptEffects:
    """Analyse PostgreSQL statements (as split by ``PostgresDialect.split``) for their effects."""
    analyzer = _Analyzer()
    for statement in statements:
        analyzer.run(statement)
    return ScriptEffects(
        tuple(analyzer.effects),
        tuple(analyzer.unknown),
        tuple(statements),
        server=tuple(analyzer.server),
    )


# --- small helpers ----------------------------------------------------------------------------


def _sql(node: ast.Node) -> str:
    """A node printed back as SQL (for details shown to people)."""
    return str(RawStream()(node))


def _strings(items: Sequence[Any] | None) -> list[str]:
    """The values of a list of String nodes."""
    return [item.sval for item in items or () if isinstance(item, ast.String) and item.sval]


def _quoted_list(names: Sequence[str]) -> str:
    return ", ".join(quote_identifier(n) for n in names)


def _clip(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


def _object_name(name1: str, name2: str | None, label: str) -> str:
    """PostgreSQL's makeObjectName: ``name1_name2_label`` clipped to NAMEDATALEN - 1 bytes."""
    overhead = len(label.encode()) + 1 + (1 if name2 else 0)
    available = _NAMEDATALEN - 1 - overhead
    len1 = len(name1.encode())
    len2 = len(name2.encode()) if name2 else 0
    while len1 + len2 > available:
        if len1 > len2:
            len1 -= 1
        else:
            len2 -= 1
    name = _clip(name1, len1)
    if name2:
        name += "_" + _clip(name2, len2)
    return f"{name}_{label}"


def _name_addition(columns: Sequence[str]) -> str:
    """PostgreSQL's ChooseIndexNameAddition: column names joined by "_", NAMEDATALEN-bounded."""
    text = ""
    for column in columns:
        if text:
            text += "_"
        text += column
        if len(text.encode()) >= _NAMEDATALEN:
            break
    return _clip(text, _NAMEDATALEN - 1)


def _fk_action(code: str | None) -> str:
    return _FK_ACTIONS.get(code or "a", "NO ACTION")


_HUMAN_NAMES = {
    "RuleStmt": "CREATE RULE",
    "CreateEventTrigStmt": "CREATE EVENT TRIGGER",
    "AlterEventTrigStmt": "ALTER EVENT TRIGGER",
    "ExecuteStmt": "EXECUTE of a prepared statement",
    "CreateFdwStmt": "CREATE FOREIGN DATA WRAPPER",
}


def _humanize(name: str) -> str:
    """``CreatePolicyStmt`` → ``CREATE POLICY``; ``AT_EnableRowSecurity`` → ``ENABLE ROW ...``;
    ``OBJECT_POLICY`` → ``POLICY``."""
    if name in _HUMAN_NAMES:
        return _HUMAN_NAMES[name]
    for prefix in ("AT_", "OBJECT_", "CONSTR_", "ROLESPEC_"):
        name = name.removeprefix(prefix)
    name = name.removesuffix("Stmt").replace("_", " ")
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).upper().split()
    words = [{"TRIG": "TRIGGER", "STATS": "STATISTICS"}.get(w, w) for w in words]
    return " ".join(words).replace("TABLE SPACE", "TABLESPACE")


def _parse_text_name(text: str) -> list[str]:
    """A regclass literal such as ``'public."Voucher_id_seq"'`` as its folded name parts."""
    parts: list[str] = []
    for match in re.finditer(r'"((?:[^"]|"")*)"|([^."]+)', text):
        quoted, bare = match.groups()
        parts.append(quoted.replace('""', '"') if quoted is not None else bare.strip().lower())
    return parts


@dataclass(frozen=True)
class _Function:
    """A function or procedure defined earlier in the script."""

    name: str
    language: str
    #: the CREATE statement printed back (plpgsql needs the whole definition to parse)
    definition: str
    #: SQL-language body as text, or BEGIN ATOMIC body as nodes
    sql_body: str | None
    atomic_body: tuple[Any, ...]


class _Analyzer:
    """Walks statements, carrying what earlier statements decided (search_path, functions)."""

    def __init__(self) -> None:
        self.effects: list[Effect] = []
        self.unknown: list[Unknown] = []
        self.server: list[ServerEffect] = []
        self.default_schema: str | None = None
        self.functions: dict[str, _Function] = {}
        self.statement = Statement(sql="", line=0, index=0)
        self.context = ""
        self.calling: set[str] = set()

    # --- recording ------------------------------------------------------------------------

    def emit(self, action: Action, target: ObjectRef, **fields: Any) -> None:
        """Record an effect of the current statement."""
        self.effects.append(
            Effect(
                action=action,
                target=target,
                statement=self.statement,
                context=self.context,
                **fields,
            )
        )

    def flag(self, reason: str) -> None:
        """Record that the current statement needs review."""
        where = f" in {self.context}" if self.context else ""
        unknown = Unknown(self.statement, reason + where)
        if unknown not in self.unknown:
            self.unknown.append(unknown)

    def outside(self, what: str) -> None:
        """Record that the current statement acts outside the database."""
        found = ServerEffect(self.statement, what, self.context)
        if found not in self.server:
            self.server.append(found)

    # --- names ----------------------------------------------------------------------------

    def ref(
        self, kind: ObjectKind, schema: str | None, name: str, parent: str | None = None
    ) -> ObjectRef:
        """An ObjectRef, resolving an unqualified name through the current search_path."""
        return ObjectRef(kind, schema if schema is not None else self.default_schema, name, parent)

    def relation(self, node: ast.RangeVar | None, kind: ObjectKind = K.TABLE) -> ObjectRef:
        """A RangeVar as an ObjectRef."""
        if node is None:
            raise ValueError("statement has no relation")
        return self.ref(kind, node.schemaname, node.relname or "")

    def qualified(self, parts: Sequence[str], kind: ObjectKind) -> ObjectRef:
        """A dotted name (``schema.name`` or ``name``; a catalog part is ignored)."""
        schema = parts[-2] if len(parts) >= 2 else None
        return self.ref(kind, schema, parts[-1] if parts else "")

    def object_ref(self, kind: ObjectKind, obj: Any) -> tuple[ObjectRef, str]:
        """Any object designator (RangeVar, names, TypeName, ObjectWithArgs, String) → ref, args.

        The second value is a function's argument list (``(integer, text)``), else "".
        """
        if isinstance(obj, ast.RangeVar):
            return self.relation(obj, kind), ""
        if isinstance(obj, ast.String):
            return ObjectRef(kind, None, obj.sval or ""), ""
        if isinstance(obj, ast.TypeName):
            return self.qualified(_strings(obj.names), kind), ""
        if isinstance(obj, ast.ObjectWithArgs):
            args = ""
            if not obj.args_unspecified:
                args = "(" + ", ".join(_sql(a) for a in obj.objargs or ()) + ")"
            return self.qualified(_strings(obj.objname), kind), args
        if isinstance(obj, tuple | list):
            parts = _strings(obj)
            if kind in (K.COLUMN, K.CONSTRAINT, K.TRIGGER) and len(parts) >= 2:
                table = self.qualified(parts[:-1], K.TABLE)
                return ObjectRef(kind, table.schema, parts[-1], table.name), ""
            if len(obj) == 1 and isinstance(obj[0], tuple | list):
                return self.object_ref(kind, obj[0])
            return self.qualified(parts, kind), ""
        raise ValueError(f"unexpected object designator {type(obj).__name__}")

    @staticmethod
    def column(table: ObjectRef, name: str, kind: ObjectKind = K.COLUMN) -> ObjectRef:
        """A table-scoped object (column, constraint, trigger) of ``table``."""
        return ObjectRef(kind, table.schema, name, table.name)

    # --- entry points -----------------------------------------------------------------------

    def run(self, statement: Statement) -> None:
        """Analyse one statement of the script."""
        self.statement = statement
        self.context = ""
        self.analyze_sql(statement.sql)

    def analyze_sql(self, sql: str) -> None:
        """Parse SQL text (one or more statements) and analyse each."""
        try:
            raws = pglast.parse_sql(sql)
        except ParseError as exc:
            if _NAMED_PARAM.search(sql) is None:
                self.flag(f"PostgreSQL cannot parse it: {exc.args[0]}")
                return
            counter = iter(range(1, 10_000))
            bound = _NAMED_PARAM.sub(lambda _m: f"${next(counter)}", sql)
            try:
                raws = pglast.parse_sql(bound)
            except ParseError:
                self.flag(f"PostgreSQL cannot parse it: {exc.args[0]}")
                return
        for raw in raws:
            if raw.stmt is not None:
                self.node(raw.stmt)

    def nodes(self, nodes: Sequence[Any]) -> None:
        """Analyse several parsed statements."""
        for node in nodes:
            if isinstance(node, ast.Node):
                self.node(node)

    def node(self, node: ast.Node) -> None:
        """Analyse one parsed statement."""
        if isinstance(node, _NO_EFFECT):
            return
        handler = getattr(self, "on_" + type(node).__name__, None)
        if handler is None:
            self.flag(f"{_humanize(type(node).__name__)} is not analysed")
            return
        try:
            handler(node)
        except ValueError as exc:
            # a shape of statement the handler does not know: review it rather than guess
            self.flag(f"{_humanize(type(node).__name__)} not understood ({exc})")

    # --- tables -----------------------------------------------------------------------------

    def on_CreateStmt(self, node: ast.CreateStmt) -> None:
        table = self.relation(node.relation)
        notes, references = self.create_table_notes(node)
        columns: list[str] = []
        foreign_keys: list[tuple[ast.Constraint, list[str]]] = []
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef) and element.colname:
                columns.append(element.colname)
                for constraint in element.constraints or ():
                    if constraint.contype == enums.ConstrType.CONSTR_FOREIGN:
                        foreign_keys.append((constraint, [element.colname]))
            elif isinstance(element, ast.Constraint):
                if element.contype == enums.ConstrType.CONSTR_FOREIGN:
                    foreign_keys.append((element, _strings(element.fk_attrs)))
            elif isinstance(element, ast.TableLikeClause) and element.relation is not None:
                like = self.relation(element.relation)
                notes.append(f"LIKE {like.qualified_name}")
                references.append(like)
        for constraint, _cols in foreign_keys:
            if constraint.pktable is not None:
                references.append(self.relation(constraint.pktable))
        self.emit(
            Action.CREATE,
            table,
            table=table,
            detail=", ".join(notes),
            columns=tuple(columns),
            references=tuple(dict.fromkeys(references)),
            if_exists=bool(node.if_not_exists),
        )
        for constraint, cols in foreign_keys:
            self.add_constraint(table, constraint, cols)

    def create_table_notes(self, node: ast.CreateStmt) -> tuple[list[str], list[ObjectRef]]:
        """What CREATE TABLE says about the table itself (TEMPORARY, UNLOGGED, PARTITION OF,
        INHERITS, OF type), and the tables it names there."""
        notes: list[str] = []
        references: list[ObjectRef] = []
        persistence = node.relation.relpersistence if node.relation else None
        if persistence == "t":
            notes.append("TEMPORARY")
        elif persistence == "u":
            notes.append("UNLOGGED")
        parents = [self.relation(r) for r in node.inhRelations or ()]
        if parents:
            word = "PARTITION OF" if node.partbound is not None else "INHERITS"
            notes.append(f"{word} " + ", ".join(p.qualified_name for p in parents))
            references.extend(parents)
        if node.ofTypename is not None:
            notes.append(f"OF {_sql(node.ofTypename)}")
        return notes, references

    def on_AlterTableStmt(self, node: ast.AlterTableStmt) -> None:
        kind = _KINDS.get(node.objtype or OT.OBJECT_TABLE)
        if kind is None:
            self.flag("ALTER of this kind of object is not analysed")
            return
        target = self.relation(node.relation, kind)
        guarded = bool(node.missing_ok)
        for cmd in node.cmds or ():
            if not isinstance(cmd, ast.AlterTableCmd):
                continue
            if kind is K.TABLE:
                self.alter_table_cmd(target, cmd, guarded)
            else:
                subtype = cmd.subtype
                label = _humanize(subtype.name) if subtype is not None else "ALTER"
                if subtype == AT.AT_ChangeOwner and cmd.newowner is not None:
                    label = f"OWNER TO {cmd.newowner.rolename or _sql(cmd.newowner)}"
                if subtype in (AT.AT_AddColumn, AT.AT_DropColumn, AT.AT_AlterColumnType):
                    label = label.replace("COLUMN", "ATTRIBUTE")
                    if isinstance(cmd.def_, ast.ColumnDef) and cmd.def_.colname:
                        label += f" {cmd.def_.colname}"
                    elif cmd.name:
                        label += f" {cmd.name}"
                self.emit(
                    Action.ALTER,
                    target,
                    detail=label,
                    if_exists=guarded,
                    cascade=cmd.behavior == enums.DropBehavior.DROP_CASCADE,
                    destructive=subtype in (AT.AT_DropColumn, AT.AT_AlterColumnType),
                )

    def alter_table_cmd(self, table: ObjectRef, cmd: ast.AlterTableCmd, guarded: bool) -> None:
        """One ALTER TABLE subcommand.

        ``guarded`` (ALTER TABLE IF EXISTS) guards the table, so it marks only effects on the
        table itself; a column's or constraint's ``if_exists`` is its own IF [NOT] EXISTS.
        """
        if self.alter_column_cmd(table, cmd) or self.alter_constraint_cmd(table, cmd):
            return
        subtype = cmd.subtype
        label = _humanize(subtype.name) if subtype is not None else "ALTER"
        if subtype == AT.AT_ChangeOwner and cmd.newowner is not None:
            label = f"OWNER TO {cmd.newowner.rolename or _sql(cmd.newowner)}"
        elif cmd.name:
            label += f" {cmd.name}"
        elif isinstance(cmd.def_, ast.PartitionCmd) and cmd.def_.name is not None:
            label += f" {self.relation(cmd.def_.name).qualified_name}"
        self.emit(
            Action.ALTER,
            table,
            table=table,
            detail=label,
            if_exists=guarded,
            cascade=cmd.behavior == enums.DropBehavior.DROP_CASCADE,
        )

    def alter_column_cmd(self, table: ObjectRef, cmd: ast.AlterTableCmd) -> bool:
        """An ALTER TABLE subcommand on one column: emitted, and True; anything else: False."""
        subtype = cmd.subtype
        definition = cmd.def_
        if subtype == AT.AT_AddColumn and isinstance(definition, ast.ColumnDef):
            self.add_column(table, definition, bool(cmd.missing_ok))
        elif subtype == AT.AT_DropColumn:
            self.emit(
                Action.DROP,
                self.column(table, cmd.name or ""),
                table=table,
                cascade=cmd.behavior == enums.DropBehavior.DROP_CASCADE,
                if_exists=bool(cmd.missing_ok),
                destructive=True,
            )
        elif subtype == AT.AT_AlterColumnType and isinstance(definition, ast.ColumnDef):
            detail = "type → " + (_sql(definition.typeName) if definition.typeName else "?")
            if definition.raw_default is not None:
                detail += f" USING {_sql(definition.raw_default)}"
            column = self.column(table, cmd.name or "")
            self.emit(Action.ALTER, column, table=table, detail=detail, destructive=True)
        elif subtype in _COLUMN_DETAILS and cmd.name:
            column = self.column(table, cmd.name)
            self.emit(Action.ALTER, column, table=table, detail=_COLUMN_DETAILS[subtype])
        elif subtype == AT.AT_ColumnDefault and cmd.name:
            detail = "DROP DEFAULT"
            if isinstance(definition, ast.Node):
                detail = f"SET DEFAULT {_sql(definition)}"
            self.emit(Action.ALTER, self.column(table, cmd.name), table=table, detail=detail)
        else:
            return False
        return True

    def add_column(self, table: ObjectRef, definition: ast.ColumnDef, if_exists: bool) -> None:
        """ADD COLUMN, and the constraints declared on the new column."""
        name = definition.colname or ""
        spec = [_sql(definition.typeName)] if definition.typeName is not None else []
        spec += [
            _sql(c)
            for c in definition.constraints or ()
            if c.contype != enums.ConstrType.CONSTR_FOREIGN
        ]
        self.emit(
            Action.CREATE,
            self.column(table, name),
            table=table,
            detail=" ".join(["ADD COLUMN", *spec]),
            if_exists=if_exists,
        )
        for constraint in definition.constraints or ():
            if constraint.contype in _COLUMN_CONSTRAINTS:
                self.add_constraint(table, constraint, [name])

    def alter_constraint_cmd(self, table: ObjectRef, cmd: ast.AlterTableCmd) -> bool:
        """An ALTER TABLE subcommand on one constraint: emitted, and True; anything else: False."""
        subtype = cmd.subtype
        definition = cmd.def_
        if subtype == AT.AT_AddConstraint and isinstance(definition, ast.Constraint):
            # ALTER TABLE IF EXISTS guards the table, not the constraint
            self.add_constraint(table, definition, [])
        elif subtype == AT.AT_DropConstraint:
            self.emit(
                Action.DROP,
                self.column(table, cmd.name or "", K.CONSTRAINT),
                table=table,
                cascade=cmd.behavior == enums.DropBehavior.DROP_CASCADE,
                if_exists=bool(cmd.missing_ok),
            )
        elif subtype in (AT.AT_ValidateConstraint, AT.AT_AlterConstraint):
            constraint_name = cmd.name
            if isinstance(definition, ast.ATAlterConstraint):
                constraint_name = definition.conname
            self.emit(
                Action.ALTER,
                self.column(table, constraint_name or "", K.CONSTRAINT),
                table=table,
                detail="VALIDATE" if subtype == AT.AT_ValidateConstraint else "ALTER CONSTRAINT",
            )
        else:
            return False
        return True

    def add_constraint(
        self,
        table: ObjectRef,
        constraint: ast.Constraint,
        columns: list[str],
    ) -> None:
        """A constraint added to ``table`` (``columns``: the column it is declared on, if any)."""
        contype = constraint.contype
        keys = _strings(constraint.keys) or columns
        if contype == enums.ConstrType.CONSTR_FOREIGN:
            fk_columns = _strings(constraint.fk_attrs) or columns
            name = constraint.conname or _object_name(
                table.name, _name_addition(fk_columns), "fkey"
            )
            target = self.relation(constraint.pktable)
            on_delete = _fk_action(constraint.fk_del_action)
            detail = f"({_quoted_list(fk_columns)}) → {target.qualified_name}"
            pk_columns = _strings(constraint.pk_attrs)
            if pk_columns:
                detail += f"({_quoted_list(pk_columns)})"
            detail += f" ON DELETE {on_delete}"
            on_update = _fk_action(constraint.fk_upd_action)
            if on_update != "NO ACTION":
                detail += f" ON UPDATE {on_update}"
            if constraint.skip_validation:
                detail += " NOT VALID"
            self.emit(
                Action.CREATE,
                self.column(table, name, K.FOREIGN_KEY),
                table=table,
                detail=detail,
                references=(target,),
                on_delete=on_delete,
            )
            return
        if contype == enums.ConstrType.CONSTR_PRIMARY:
            default = _object_name(table.name, None, "pkey")
            detail = f"PRIMARY KEY ({_quoted_list(keys)})"
        elif contype == enums.ConstrType.CONSTR_UNIQUE:
            default = _object_name(table.name, _name_addition(keys), "key")
            detail = f"UNIQUE ({_quoted_list(keys)})"
        elif contype == enums.ConstrType.CONSTR_CHECK:
            refs = [n for n in walk_nodes(constraint.raw_expr) if isinstance(n, ast.ColumnRef)]
            column = _strings(refs[0].fields)[-1:] if len(refs) == 1 else []
            default = _object_name(table.name, column[0] if column else None, "check")
            detail = "CHECK " + (
                f"({_sql(constraint.raw_expr)})" if constraint.raw_expr is not None else ""
            )
        elif contype == enums.ConstrType.CONSTR_EXCLUSION:
            default = _object_name(table.name, None, "excl")
            detail = "EXCLUDE"
        else:
            label = _humanize(contype.name.removeprefix("CONSTR_")) if contype else "constraint"
            default = _object_name(table.name, None, label.lower())
            detail = label
        detail = detail.replace(" ()", "")
        if constraint.indexname:
            detail += f' USING INDEX "{constraint.indexname}"'
        if constraint.skip_validation:
            detail += " NOT VALID"
        self.emit(
            Action.CREATE,
            self.column(table, constraint.conname or default, K.CONSTRAINT),
            table=table,
            detail=detail,
        )

    def on_RenameStmt(self, node: ast.RenameStmt) -> None:
        rename = node.renameType
        new = node.newname or ""
        detail = f'rename to "{new}"'
        guarded = bool(node.missing_ok)
        if rename in (OT.OBJECT_COLUMN, OT.OBJECT_TABCONSTRAINT, OT.OBJECT_TRIGGER):
            table = self.relation(node.relation)
            scoped = {
                OT.OBJECT_COLUMN: K.COLUMN,
                OT.OBJECT_TABCONSTRAINT: K.CONSTRAINT,
                OT.OBJECT_TRIGGER: K.TRIGGER,
            }[rename]
            is_table = node.relationType in (OT.OBJECT_TABLE, OT.OBJECT_FOREIGN_TABLE, None)
            self.emit(
                Action.RENAME,
                self.column(table, node.subname or "", scoped),
                table=table if is_table or scoped is not K.COLUMN else None,
                detail=detail,
                renamed_to=self.column(table, new, scoped),
            )
            return
        if rename == OT.OBJECT_SCHEMA:
            old = ObjectRef(K.SCHEMA, None, node.subname or "")
            self.emit(
                Action.RENAME,
                old,
                detail=detail,
                renamed_to=ObjectRef(K.SCHEMA, None, new),
                if_exists=guarded,
            )
            return
        kind = _KINDS.get(rename) if rename is not None else None
        if kind is None:
            self.flag(f"ALTER {_humanize(rename.name if rename else '')} RENAME is not analysed")
            return
        if node.relation is not None:
            target = self.relation(node.relation, kind)
        else:
            target, _args = self.object_ref(kind, node.object)
        self.emit(
            Action.RENAME,
            target,
            table=target if kind is K.TABLE else None,
            detail=detail,
            renamed_to=ObjectRef(kind, target.schema, new, target.parent),
            if_exists=guarded,
        )

    def on_AlterObjectSchemaStmt(self, node: ast.AlterObjectSchemaStmt) -> None:
        kind = _KINDS.get(node.objectType) if node.objectType is not None else None
        if kind is None:
            self.flag("ALTER ... SET SCHEMA of this kind of object is not analysed")
            return
        if node.relation is not None:
            target = self.relation(node.relation, kind)
        else:
            target, _args = self.object_ref(kind, node.object)
        self.emit(
            Action.RENAME,
            target,
            table=target if kind is K.TABLE else None,
            detail=f'SET SCHEMA "{node.newschema}"',
            renamed_to=ObjectRef(kind, node.newschema, target.name),
            if_exists=bool(node.missing_ok),
        )

    def on_AlterOwnerStmt(self, node: ast.AlterOwnerStmt) -> None:
        kind = _KINDS.get(node.objectType) if node.objectType is not None else None
        if kind is None:
            self.flag("ALTER ... OWNER TO of this kind of object is not analysed")
            return
        if node.relation is not None:
            target = self.relation(node.relation, kind)
        else:
            target, _args = self.object_ref(kind, node.object)
        owner = node.newowner.rolename if node.newowner is not None else None
        self.emit(Action.ALTER, target, detail=f"OWNER TO {owner or '?'}")

    def on_TruncateStmt(self, node: ast.TruncateStmt) -> None:
        cascade = node.behavior == enums.DropBehavior.DROP_CASCADE
        for relation in node.relations or ():
            table = self.relation(relation)
            self.emit(
                Action.TRUNCATE,
                table,
                table=table,
                detail="RESTART IDENTITY" if node.restart_seqs else "",
                cascade=cascade,
                destructive=True,
            )

    # --- drops ------------------------------------------------------------------------------

    def on_DropStmt(self, node: ast.DropStmt) -> None:
        remove = node.removeType
        kind = _KINDS.get(remove) if remove is not None else None
        if kind is None:
            self.flag(f"DROP {_humanize(remove.name if remove else '')} is not analysed")
            return
        cascade = node.behavior == enums.DropBehavior.DROP_CASCADE
        details = ["CONCURRENTLY"] if node.concurrent else []
        for obj in node.objects or ():
            target, args = self.object_ref(kind, obj)
            self.emit(
                Action.DROP,
                target,
                table=target.owner if kind is K.TRIGGER else target,
                detail=" ".join([*details, args if args != "()" else ""]).strip(),
                cascade=cascade,
                if_exists=bool(node.missing_ok),
                destructive=kind in _DESTRUCTIVE_DROPS
                or (cascade and kind in _DESTRUCTIVE_CASCADES),
            )

    # --- indexes, types, sequences, views --------------------------------------------------

    def on_IndexStmt(self, node: ast.IndexStmt) -> None:
        table = self.relation(node.relation)
        columns: list[str] = []
        # PostgreSQL names an unnamed index after its columns, an expression after its function
        name_parts: list[str] = []
        expressions: list[str] = []
        for element in node.indexParams or ():
            if not isinstance(element, ast.IndexElem):
                continue
            if element.name:
                columns.append(element.name)
                name_parts.append(element.name)
            elif element.expr is not None:
                expressions.append(_sql(element.expr))
                expr = element.expr
                if isinstance(expr, ast.FuncCall):
                    name_parts.append(_strings(expr.funcname)[-1])
                else:
                    name_parts.append("expr")
        name = node.idxname or _object_name(table.name, _name_addition(name_parts), "idx")
        notes = []
        if node.unique:
            notes.append("UNIQUE")
        if node.concurrent:
            notes.append("CONCURRENTLY")
        notes.append(f"on {table.qualified_name}")
        if expressions:
            notes.append(f"({', '.join(expressions)})")
        if node.whereClause is not None:
            notes.append(f"WHERE {_sql(node.whereClause)}")
        self.emit(
            Action.CREATE,
            ObjectRef(K.INDEX, table.schema, name),
            table=table,
            detail=" ".join(notes),
            columns=tuple(columns),
            if_exists=bool(node.if_not_exists),
        )

    def on_CreateEnumStmt(self, node: ast.CreateEnumStmt) -> None:
        values = ", ".join("'" + v.replace("'", "''") + "'" for v in _strings(node.vals))
        self.emit(
            Action.CREATE,
            self.qualified(_strings(node.typeName), K.ENUM),
            detail=f"AS ENUM ({values})",
        )

    def on_AlterEnumStmt(self, node: ast.AlterEnumStmt) -> None:
        enum_type = self.qualified(_strings(node.typeName), K.ENUM)

        def value(name: str) -> ObjectRef:
            return ObjectRef(K.ENUM_VALUE, enum_type.schema, name, enum_type.name)

        if node.oldVal is not None:
            self.emit(
                Action.RENAME,
                value(node.oldVal),
                detail=f"rename to '{node.newVal}'",
                renamed_to=value(node.newVal or ""),
            )
            return
        detail = f"ADD VALUE '{node.newVal}'"
        if node.newValNeighbor:
            where = "AFTER" if node.newValIsAfter else "BEFORE"
            detail += f" {where} '{node.newValNeighbor}'"
        self.emit(
            Action.CREATE,
            value(node.newVal or ""),
            detail=detail,
            if_exists=bool(node.skipIfNewValExists),
        )

    def on_CompositeTypeStmt(self, node: ast.CompositeTypeStmt) -> None:
        self.emit(Action.CREATE, self.relation(node.typevar, K.TYPE), detail="composite")

    def on_CreateRangeStmt(self, node: ast.CreateRangeStmt) -> None:
        self.emit(Action.CREATE, self.qualified(_strings(node.typeName), K.TYPE), detail="range")

    def on_CreateDomainStmt(self, node: ast.CreateDomainStmt) -> None:
        base = _sql(node.typeName) if node.typeName is not None else "?"
        self.emit(
            Action.CREATE,
            self.qualified(_strings(node.domainname), K.TYPE),
            detail=f"DOMAIN AS {base}",
        )

    def on_DefineStmt(self, node: ast.DefineStmt) -> None:
        kind = {OT.OBJECT_TYPE: K.TYPE, OT.OBJECT_AGGREGATE: K.FUNCTION}.get(
            node.kind or OT.OBJECT_TABLE
        )
        if kind is None:
            self.flag(f"CREATE {_humanize(node.kind.name if node.kind else '')} is not analysed")
            return
        label = "base type" if kind is K.TYPE else "aggregate"
        self.emit(
            Action.CREATE,
            self.qualified(_strings(node.defnames), kind),
            detail=label,
            if_exists=bool(node.if_not_exists),
        )

    def on_AlterDomainStmt(self, node: ast.AlterDomainStmt) -> None:
        self.emit(
            Action.ALTER,
            self.qualified(_strings(node.typeName), K.TYPE),
            detail="ALTER DOMAIN" + (f" {node.name}" if node.name else ""),
        )

    def on_CreateSeqStmt(self, node: ast.CreateSeqStmt) -> None:
        self.emit(
            Action.CREATE,
            self.relation(node.sequence, K.SEQUENCE),
            if_exists=bool(node.if_not_exists),
        )

    def on_AlterSeqStmt(self, node: ast.AlterSeqStmt) -> None:
        options = []
        for option in node.options or ():
            if isinstance(option, ast.DefElem) and option.defname:
                text = option.defname.upper().replace("_", " ")
                if isinstance(option.arg, ast.Integer | ast.Float):
                    text += f" {_sql(option.arg)}"
                elif isinstance(option.arg, tuple) and option.defname == "owned_by":
                    owner = _strings(option.arg)
                    text += (
                        " NONE"
                        if owner == ["none"]
                        else " " + ".".join(quote_identifier(n) for n in owner)
                    )
                options.append(text)
        self.emit(
            Action.ALTER,
            self.relation(node.sequence, K.SEQUENCE),
            detail=", ".join(options),
            if_exists=bool(node.missing_ok),
        )

    def on_ViewStmt(self, node: ast.ViewStmt) -> None:
        self.emit(
            Action.CREATE,
            self.relation(node.view, K.VIEW),
            detail="OR REPLACE" if node.replace else "",
            references=self.reads(node.query),
        )

    def on_CreateTableAsStmt(self, node: ast.CreateTableAsStmt) -> None:
        kind = K.MATERIALIZED_VIEW if node.objtype == OT.OBJECT_MATVIEW else K.TABLE
        target = self.relation(node.into.rel if node.into else None, kind)
        if isinstance(node.query, ast.ExecuteStmt):
            self.flag("CREATE TABLE AS EXECUTE runs a prepared statement that is not analysed")
        self.check_calls(node.query)
        self.emit(
            Action.CREATE,
            target,
            table=target if kind is K.TABLE else None,
            detail="AS query",
            columns=tuple(_strings(node.into.colNames)) if node.into else (),
            references=self.reads(node.query),
            if_exists=bool(node.if_not_exists),
        )

    def on_RefreshMatViewStmt(self, node: ast.RefreshMatViewStmt) -> None:
        detail = "REFRESH" + (" CONCURRENTLY" if node.concurrent else "")
        self.emit(Action.OTHER, self.relation(node.relation, K.MATERIALIZED_VIEW), detail=detail)

    # --- functions, triggers, schemas, extensions -------------------------------------------

    def on_CreateFunctionStmt(self, node: ast.CreateFunctionStmt) -> None:
        kind = K.PROCEDURE if node.is_procedure else K.FUNCTION
        target = self.qualified(_strings(node.funcname), kind)
        language = "sql"
        body: str | None = None
        for option in node.options or ():
            if not isinstance(option, ast.DefElem):
                continue
            if option.defname == "language" and isinstance(option.arg, ast.String):
                language = (option.arg.sval or "").lower()
            elif option.defname == "as":
                parts = _strings(option.arg if isinstance(option.arg, tuple) else (option.arg,))
                body = parts[0] if parts else None
        atomic: tuple[Any, ...] = ()
        if node.sql_body is not None:
            atomic = tuple(
                item
                for group in node.sql_body
                for item in (group if isinstance(group, tuple) else (group,))
            )
        self.functions[target.name] = _Function(
            name=target.name,
            language=language,
            definition=_sql(node),
            sql_body=body,
            atomic_body=atomic,
        )
        notes = ["OR REPLACE"] if node.replace else []
        notes.append(f"LANGUAGE {language}")
        self.emit(Action.CREATE, target, detail=" ".join(notes))

    def on_AlterFunctionStmt(self, node: ast.AlterFunctionStmt) -> None:
        kind = K.PROCEDURE if node.objtype == OT.OBJECT_PROCEDURE else K.FUNCTION
        target, _args = self.object_ref(kind, node.func)
        changes = [
            (a.defname or "").upper().replace("_", " ")
            for a in node.actions or ()
            if isinstance(a, ast.DefElem)
        ]
        self.emit(Action.ALTER, target, detail=", ".join(changes))

    def on_CreateTrigStmt(self, node: ast.CreateTrigStmt) -> None:
        table = self.relation(node.relation)
        timing = node.timing or 0
        when = "INSTEAD OF" if timing & 64 else "BEFORE" if timing & 2 else "AFTER"
        events_mask = node.events or 0
        events = [
            word
            for bit, word in ((4, "INSERT"), (8, "DELETE"), (16, "UPDATE"), (32, "TRUNCATE"))
            if events_mask & bit
        ]
        level = "FOR EACH ROW" if node.row else "FOR EACH STATEMENT"
        function = ".".join(_strings(node.funcname))
        detail = f"{when} {' OR '.join(events)} {level} EXECUTE FUNCTION {function}()"
        if node.isconstraint:
            detail = "CONSTRAINT TRIGGER " + detail
        if node.replace:
            detail = "OR REPLACE " + detail
        self.emit(
            Action.CREATE,
            self.column(table, node.trigname or "", K.TRIGGER),
            table=table,
            detail=detail,
        )

    def on_CreateSchemaStmt(self, node: ast.CreateSchemaStmt) -> None:
        name = node.schemaname or (node.authrole.rolename if node.authrole else None) or ""
        self.emit(
            Action.CREATE,
            ObjectRef(K.SCHEMA, None, name),
            if_exists=bool(node.if_not_exists),
        )
        saved = self.default_schema
        self.default_schema = name
        try:
            for element in node.schemaElts or ():
                self.node(element)
        finally:
            self.default_schema = saved

    def on_CreateExtensionStmt(self, node: ast.CreateExtensionStmt) -> None:
        self.emit(
            Action.CREATE,
            ObjectRef(K.EXTENSION, None, node.extname or ""),
            if_exists=bool(node.if_not_exists),
        )

    def on_AlterExtensionStmt(self, node: ast.AlterExtensionStmt) -> None:
        self.emit(Action.ALTER, ObjectRef(K.EXTENSION, None, node.extname or ""), detail="UPDATE")

    def on_CommentStmt(self, node: ast.CommentStmt) -> None:
        kind = _KINDS.get(node.objtype) if node.objtype is not None else None
        if kind is None:
            self.flag("COMMENT ON this kind of object is not analysed")
            return
        target, _args = self.object_ref(kind, node.object)
        detail = "COMMENT" if node.comment is not None else "COMMENT removed"
        self.emit(Action.OTHER, target, detail=detail)

    def on_GrantStmt(self, node: ast.GrantStmt) -> None:
        verb = "GRANT" if node.is_grant else "REVOKE"
        privileges = ", ".join(
            (p.priv_name or "").upper() for p in node.privileges or () if p.priv_name
        )
        roles = ", ".join(
            r.rolename or _humanize(r.roletype.name if r.roletype else "")
            for r in node.grantees or ()
        )
        direction = f"{'TO' if node.is_grant else 'FROM'} {roles}"
        detail = f"{verb} {privileges or 'ALL'} {direction}"
        if node.targtype == enums.GrantTargetType.ACL_TARGET_ALL_IN_SCHEMA:
            kind_word = _humanize(node.objtype.name if node.objtype else "")
            for schema in _strings(node.objects):
                self.emit(
                    Action.GRANT,
                    ObjectRef(K.SCHEMA, None, schema),
                    detail=f"{verb} {privileges or 'ALL'} ON ALL {kind_word}S IN SCHEMA "
                    + direction,
                )
            return
        kind = _KINDS.get(node.objtype) if node.objtype is not None else None
        if kind is None or node.targtype != enums.GrantTargetType.ACL_TARGET_OBJECT:
            self.flag(f"{verb} on this kind of object is not analysed")
            return
        for obj in node.objects or ():
            target, _args = self.object_ref(kind, obj)
            self.emit(Action.GRANT, target, detail=detail)

    def on_VariableSetStmt(self, node: ast.VariableSetStmt) -> None:
        name = node.name or "all"
        if name == "search_path":
            values = [
                a.val.sval
                for a in node.args or ()
                if isinstance(a, ast.A_Const) and isinstance(a.val, ast.String)
            ]
            chosen = [v for v in values if v and v != "$user"]
            kind = node.kind
            self.default_schema = (
                chosen[0] if kind == enums.VariableSetKind.VAR_SET_VALUE and chosen else None
            )
        self.emit(Action.OTHER, ObjectRef(K.SETTING, None, name), detail=_sql(node))

    # --- data -------------------------------------------------------------------------------

    def on_DeleteStmt(self, node: ast.DeleteStmt) -> None:
        self.with_clause(node.withClause)
        table = self.relation(node.relation)
        self.check_calls(node)
        self.emit(
            Action.DELETE,
            table,
            table=table,
            has_where=node.whereClause is not None,
            references=self.reads(node, skip=node.relation),
            destructive=True,
        )

    def on_UpdateStmt(self, node: ast.UpdateStmt) -> None:
        self.with_clause(node.withClause)
        table = self.relation(node.relation)
        columns = [t.name for t in node.targetList or () if isinstance(t, ast.ResTarget) and t.name]
        self.check_calls(node)
        self.emit(
            Action.UPDATE,
            table,
            table=table,
            has_where=node.whereClause is not None,
            columns=tuple(dict.fromkeys(columns)),
            references=self.reads(node, skip=node.relation),
            destructive=True,
        )

    def on_InsertStmt(self, node: ast.InsertStmt) -> None:
        self.with_clause(node.withClause)
        table = self.relation(node.relation)
        columns = [c.name for c in node.cols or () if isinstance(c, ast.ResTarget) and c.name]
        detail = ""
        destructive = False
        conflict = node.onConflictClause
        if conflict is not None:
            if conflict.action == enums.OnConflictAction.ONCONFLICT_UPDATE:
                detail, destructive = "ON CONFLICT DO UPDATE", True
            else:
                detail = "ON CONFLICT DO NOTHING"
        self.check_calls(node)
        self.emit(
            Action.INSERT,
            table,
            table=table,
            detail=detail,
            columns=tuple(columns),
            references=self.reads(node, skip=node.relation),
            destructive=destructive,
        )

    def on_MergeStmt(self, node: ast.MergeStmt) -> None:
        self.with_clause(node.withClause)
        table = self.relation(node.relation)
        actions: dict[Action, None] = {}
        for clause in node.mergeWhenClauses or ():
            command = clause.commandType
            if command == enums.CmdType.CMD_UPDATE:
                actions[Action.UPDATE] = None
            elif command == enums.CmdType.CMD_DELETE:
                actions[Action.DELETE] = None
            elif command == enums.CmdType.CMD_INSERT:
                actions[Action.INSERT] = None
        self.check_calls(node)
        references = self.reads(node, skip=node.relation)
        for action in actions:
            self.emit(
                action,
                table,
                table=table,
                detail="MERGE",
                has_where=True if action is not Action.INSERT else None,
                references=references,
                destructive=action is not Action.INSERT,
            )

    def on_SelectStmt(self, node: ast.SelectStmt) -> None:
        self.with_clause(node.withClause)
        if node.intoClause is not None:
            target = self.relation(node.intoClause.rel)
            self.emit(
                Action.CREATE,
                target,
                table=target,
                detail="SELECT INTO",
                references=self.reads(node, skip=node.intoClause.rel),
            )
        self.check_calls(node)

    def on_CopyStmt(self, node: ast.CopyStmt) -> None:
        if node.is_program:
            verb = "FROM" if node.is_from else "TO"
            self.outside(f"runs a program on the database server (COPY … {verb} PROGRAM)")
        elif node.filename:
            if node.is_from:
                self.outside(f"reads the server file {node.filename!r} (COPY … FROM a file)")
            else:
                self.outside(f"writes the server file {node.filename!r} (COPY … TO a file)")
        if node.query is not None:
            self.check_calls(node.query)
        if not node.is_from or node.relation is None:
            return
        table = self.relation(node.relation)
        source = "PROGRAM" if node.is_program else (repr(node.filename) if node.filename else "")
        self.emit(
            Action.INSERT,
            table,
            table=table,
            detail=f"COPY FROM {source or 'STDIN'}",
            columns=tuple(_strings(node.attlist)),
        )

    def on_ExplainStmt(self, node: ast.ExplainStmt) -> None:
        analyze = any(
            isinstance(o, ast.DefElem)
            and o.defname == "analyze"
            and not (isinstance(o.arg, ast.String) and o.arg.sval in ("false", "off", "0"))
            for o in node.options or ()
        )
        if analyze and node.query is not None:
            self.nested("EXPLAIN ANALYZE", lambda: self.node(node.query))

    def with_clause(self, clause: ast.WithClause | None) -> None:
        """Data-modifying statements inside WITH are effects too."""
        if clause is None:
            return
        for cte in clause.ctes or ():
            query = cte.ctequery if isinstance(cte, ast.CommonTableExpr) else None
            if isinstance(query, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
                self.nested(f'WITH "{cte.ctename}"', lambda q=query: self.node(q))

    def reads(self, node: Any, skip: ast.RangeVar | None = None) -> tuple[ObjectRef, ...]:
        """Tables a statement reads: every relation but its target, CTE names and nested
        DML targets."""
        ctes = {
            n.ctename for n in walk_nodes(node) if isinstance(n, ast.CommonTableExpr) and n.ctename
        }
        excluded = {id(skip)} if skip is not None else set()
        for inner in walk_nodes(node):
            if isinstance(inner, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
                excluded.add(id(inner.relation))
        found: dict[ObjectRef, None] = {}
        for inner in walk_nodes(node):
            if not isinstance(inner, ast.RangeVar) or id(inner) in excluded:
                continue
            if inner.schemaname is None and inner.relname in ctes:
                continue
            found.setdefault(self.relation(inner), None)
        return tuple(found)

    # --- calls, DO blocks -------------------------------------------------------------------

    def nested(self, context: str, action: Any) -> None:
        """Run ``action`` with an added context label (restored afterwards)."""
        saved = self.context
        self.context = f"{saved}, {context}" if saved else context
        try:
            action()
        finally:
            self.context = saved

    def check_calls(self, node: Any) -> None:
        """Function calls executed by a statement: sequences, script-defined bodies, or review."""
        for inner in walk_nodes(node):
            if isinstance(inner, ast.FuncCall):
                self.call(inner)

    def call(self, call: ast.FuncCall) -> None:
        """One function call: known harmless, a sequence change, analysed body, or Unknown."""
        parts = _strings(call.funcname)
        name = parts[-1] if parts else ""
        schema = parts[-2] if len(parts) >= 2 else None
        if name in ("setval", "nextval") and schema in (None, "pg_catalog"):
            args = call.args or ()
            first = args[0] if args else None
            if isinstance(first, ast.TypeCast):
                first = first.arg
            if isinstance(first, ast.A_Const) and isinstance(first.val, ast.String):
                sequence = self.qualified(_parse_text_name(first.val.sval or ""), K.SEQUENCE)
                self.emit(Action.ALTER, sequence, detail=f"{name}()")
            elif name == "setval":
                # resetting a sequence can make later inserts collide: say which one it is
                self.flag("setval() on a sequence named at run time")
            return
        defined = self.functions.get(name)
        if defined is not None and schema in (None, self.default_schema):
            self.run_body(defined, f"function {name}() called here")
            return
        if is_server_function(name):
            self.outside(f"{SERVER_FUNCTIONS[name]} ({name}())")
            return
        if schema in (None, "pg_catalog") and name in _SAFE_FUNCTIONS:
            return
        qualified = ".".join(parts)
        self.flag(f"calls {qualified}(), whose side effects are not analysed")

    def on_CallStmt(self, node: ast.CallStmt) -> None:
        call = node.funccall
        if call is None:
            self.flag("CALL without a procedure")
            return
        parts = _strings(call.funcname)
        name = parts[-1] if parts else ""
        defined = self.functions.get(name)
        if defined is None:
            self.flag(f"CALL {'.'.join(parts)}(): procedure body not in this script")
            return
        self.run_body(defined, f"procedure {name}() via CALL")
        for arg in call.args or ():
            self.check_calls(arg)

    def run_body(self, function: _Function, context: str) -> None:
        """Analyse a script-defined function's body at a call site (once per call chain)."""
        if function.name in self.calling:
            self.flag(f"recursive call of {function.name}()")
            return
        self.calling.add(function.name)
        try:
            if function.language == "plpgsql":
                self.nested(context, lambda: self.plpgsql(function.definition, "function"))
            elif function.language == "sql" and function.atomic_body:
                self.nested(context, lambda: self.nodes(function.atomic_body))
            elif function.language == "sql" and function.sql_body is not None:
                body = function.sql_body
                self.nested(context, lambda: self.analyze_sql(body))
            else:
                self.flag(f"{context}: LANGUAGE {function.language} body is not analysed")
        finally:
            self.calling.discard(function.name)

    def on_DoStmt(self, node: ast.DoStmt) -> None:
        language = "plpgsql"
        for arg in node.args or ():
            if (
                isinstance(arg, ast.DefElem)
                and arg.defname == "language"
                and isinstance(arg.arg, ast.String)
            ):
                language = (arg.arg.sval or "").lower()
        if language != "plpgsql":
            self.flag(f"DO block in LANGUAGE {language} is not analysed")
            return
        self.nested("DO block", lambda: self.plpgsql(_sql(node), "DO block"))

    def plpgsql(self, source: str, what: str) -> None:
        """Parse a DO block or plpgsql function and analyse the SQL statements it runs."""
        try:
            tree = pglast.parse_plpgsql(source)
        except ParseError as exc:
            self.flag(f"cannot parse the {what}: {exc.args[0]}")
            return
        self.plpgsqlwalk_nodes(tree)

    def plpgsqlwalk_nodes(self, node: Any) -> None:
        """Walk plpgsql's JSON tree, analysing embedded SQL; dynamic SQL is an Unknown."""
        if isinstance(node, list):
            for item in node:
                self.plpgsqlwalk_nodes(item)
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            self.plpgsql_item(key, value)

    def plpgsql_item(self, key: str, value: Any) -> None:
        """One entry of a plpgsql tree node: a statement that runs SQL, or a subtree to walk."""
        if key in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors"):
            self.flag("dynamic EXECUTE")
        elif key in ("PLpgSQL_stmt_open", "PLpgSQL_stmt_return_query") and isinstance(value, dict):
            if "dynquery" in value:
                self.flag("dynamic EXECUTE")
            else:
                self.plpgsqlwalk_nodes(value)
        elif key == "PLpgSQL_stmt_execsql":
            self.embedded_sql(value.get("sqlstmt"))
        elif key in ("PLpgSQL_stmt_perform", "PLpgSQL_stmt_call"):
            self.embedded_sql(value.get("expr"))
        elif key in ("PLpgSQL_stmt_fors", "PLpgSQL_stmt_forc"):
            self.embedded_sql(value.get("query"))
            self.plpgsqlwalk_nodes(value.get("body"))
        elif key != "datums":
            self.plpgsqlwalk_nodes(value)

    def embedded_sql(self, expr: Any) -> None:
        """The SQL text of a PLpgSQL_expr, analysed like a statement."""
        if not isinstance(expr, dict):
            return
        query = expr.get("PLpgSQL_expr", {}).get("query")
        if isinstance(query, str) and query.strip():
            self.analyze_sql(query)
