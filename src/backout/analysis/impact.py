"""What a rollback would destroy, counted on the live database (never by running it there).

For every destructive effect the static analysis finds (see :mod:`backout.model.effects`):

- a dropped or truncated table: its rows (and, with CASCADE, the rows of referencing tables);
- a DELETE: the rows its WHERE matches, and the rows ON DELETE CASCADE takes from children;
- an UPDATE: the rows it matches (values overwritten);
- a dropped column or a column type change: its non-null values.

Counts are exact on tables below :data:`EXACT_LIMIT` rows (or with ``exact=True``); on larger
ones they are estimates from the catalog statistics or the planner, marked as estimates. All
counting runs in a read transaction that is rolled back (:meth:`Session.begin_read`: no write
lock, and a bounded wait for table locks: a count that cannot get its lock is reported as not
counted rather than waiting for whoever holds it). The risk follows the rules of
:mod:`backout.analysis.risk`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from backout.analysis.risk import Loss, RiskAssessment, assess_live
from backout.dialects.base import Dialect, Session
from backout.model.effects import Action, Effect, ObjectKind, ObjectRef, ScriptEffects, table_key
from backout.model.errors import BackoutError, DatabaseError
from backout.model.schema import ForeignKeyInfo, SchemaSnapshot, TableInfo
from backout.model.script import Risk, Script

#: tables with fewer rows (by estimate) are always counted exactly
EXACT_LIMIT = 100_000


@dataclass(frozen=True)
class ScriptImpact:
    """The computed impact of one script, next to what its author declared."""

    script: Script
    effects: ScriptEffects
    losses: tuple[Loss, ...]
    #: losses that exist but could not be counted (statement and why)
    uncounted: tuple[str, ...]
    #: what happens besides the statements' own targets (FKs dropped by CASCADE...)
    side_effects: tuple[str, ...]
    assessment: RiskAssessment
    #: the uncounted losses whose count gave up waiting for another session's lock
    lock_waits: tuple[str, ...] = ()
    #: filled by the simulation on a scratch copy, when it ran
    simulation: Simulation | None = None

    @property
    def declared(self) -> Risk | None:
        """The risk the script declares."""
        return self.script.directives.risk

    @property
    def understated(self) -> bool:
        """The declared risk is lower than the computed one."""
        return self.assessment.understates(self.declared)

    def objects(self) -> list[Effect]:
        """Objects the script drops or changes (not the ones it only creates)."""
        return [
            e
            for e in self.effects.effects
            if e.action in (Action.DROP, Action.ALTER, Action.RENAME, Action.TRUNCATE)
        ]


@dataclass(frozen=True)
class Simulation:
    """What running the scripts on a schema-only scratch copy changed, versus the parser."""

    ran: bool
    changes: tuple[str, ...] = ()
    #: disagreements between the static analysis and the simulation
    disagreements: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ImpactReport:
    """The impact of a whole rollback plan."""

    scripts: tuple[ScriptImpact, ...]
    exact: bool
    simulation_note: str = ""

    @property
    def risk(self) -> Risk:
        """The highest computed risk."""
        return max((s.assessment.risk for s in self.scripts), default=Risk.NONE)

    @property
    def understated(self) -> list[ScriptImpact]:
        """Scripts whose declared risk is lower than computed."""
        return [s for s in self.scripts if s.understated]

    @property
    def simulation_failures(self) -> list[ScriptImpact]:
        """Scripts that failed when the simulation ran them on the schema-only copy (a script
        not run because an earlier one failed is not counted twice)."""
        return [
            s
            for s in self.scripts
            if s.simulation is not None and s.simulation.ran and s.simulation.error
        ]

    def rows_lost(self) -> int:
        """Total rows lost (exact and estimated)."""
        return sum(loss.count for s in self.scripts for loss in s.losses if loss.kind == "rows")

    @property
    def lock_waits(self) -> list[str]:
        """Counts that gave up waiting for a lock another session holds (lock_timeout)."""
        return [wait for s in self.scripts for wait in s.lock_waits]


@dataclass
class _Counter:
    """Counts on one session, caching per table."""

    session: Session
    dialect: Dialect
    snapshot: SchemaSnapshot
    exact: bool
    values: dict[str, object] = field(default_factory=dict)
    rows_cache: dict[str, tuple[int, bool]] = field(default_factory=dict)
    #: whether the savepoint of the effect being counted is open (see :meth:`db`)
    in_savepoint: bool = False

    def db(self) -> Session:
        """The session, inside the savepoint of the effect being counted: opened before its
        first query, so an effect counted from the cache (or not counted) costs no round
        trip. A failed count is rolled back to it (see :func:`_script_impact`)."""
        if not self.in_savepoint:
            # Set first: a SAVEPOINT that fails is then rolled back to, which fails too, so
            # the error goes up as it did before the savepoint was opened lazily.
            self.in_savepoint = True
            self.session.execute("SAVEPOINT backout_impact")
        return self.session

    def table(self, ref: ObjectRef | None) -> TableInfo | None:
        key = table_key(ref, self.snapshot) if ref is not None else None
        return self.snapshot.tables.get(key) if key else None

    def rows(self, table: TableInfo) -> tuple[int, bool]:
        """(rows, estimated) of a table."""
        key = table.key
        if key not in self.rows_cache:
            estimate = None if self.exact else self.dialect.estimate_rows(self.db(), table)
            if estimate is not None and estimate >= EXACT_LIMIT:
                self.rows_cache[key] = (estimate, True)
            else:
                sql = f"SELECT count(*) FROM {self.dialect.table_sql(table)}"
                self.rows_cache[key] = (int(self.db().query(sql)[0][0]), False)
        return self.rows_cache[key]

    def non_null(self, table: TableInfo, column: str) -> tuple[int, bool]:
        rows, estimated = self.rows(table)
        if estimated:
            guess = self.dialect.estimate_non_null(self.db(), table, column, rows)
            if guess is not None:
                return guess, True
        sql = f"SELECT count({self.dialect.quote(column)}) FROM {self.dialect.table_sql(table)}"
        return int(self.db().query(sql)[0][0]), False

    def matching(self, effect: Effect, table: TableInfo) -> tuple[int, bool] | None:
        """Rows a DELETE/UPDATE matches (None: not computable, e.g. it has parameters)."""
        if effect.has_where is False and not effect.references:
            return self.rows(table)
        scope = self.dialect.dml_scope(effect.statement, self.values.keys())
        if scope is None:
            return None
        sql, params = self.dialect.bind(scope.count_sql(), self.values)
        if _has_param(sql) and not params:
            return None  # an undeclared :name: the statement itself would fail
        if not self.exact and self.rows(table)[1]:
            # A big table: the planner's estimate, with the parameters' values bound.
            where, where_params = self.dialect.bind(scope.from_where, self.values)
            estimate = self.dialect.explain_rows(self.db(), where, where_params)
            if estimate is not None:
                return estimate, True
        rows = self.db().query_native(sql, params)
        return int(rows[0][0]), False


def _has_param(sql: str) -> bool:
    import re

    return re.search(r"(?<![:\w]):[A-Za-z_]\w*", sql) is not None


def _unquoted(column: str) -> str:
    """An index's key column as a plain name (MySQL's catalog keeps it quoted: `code`)."""
    if len(column) > 1 and column[0] == column[-1] and column[0] in '`"':
        return column[1:-1].replace(column[0] * 2, column[0])
    return column


def _key_columns(table: TableInfo, snapshot: SchemaSnapshot) -> set[str]:
    """Columns of the table's primary key, unique constraints, unique indexes (MySQL has no
    other kind of unique key) and foreign keys."""
    keys: set[str] = set()
    for constraint in table.constraints:
        if constraint.kind in ("primary_key", "unique"):
            keys.update(constraint.columns)
    for index in snapshot.indexes.values():
        if index.unique and index.table == table.name and index.schema == table.schema:
            keys.update(_unquoted(column) for column in index.columns)
    for fk in table.foreign_keys:
        keys.update(fk.columns)
    return keys


def _children(
    snapshot: SchemaSnapshot, parent: TableInfo
) -> list[tuple[TableInfo, ForeignKeyInfo]]:
    """(child table, foreign key) pairs referencing ``parent``."""
    found = []
    for table in snapshot.tables.values():
        for fk in table.foreign_keys:
            if fk.referenced_table == parent.key:
                found.append((table, fk))
    return found


def _enum_types(snapshot: SchemaSnapshot, effects: ScriptEffects) -> set[str]:
    """Names of the named enum types a script's column type changes may target: those of the
    database and those the script creates."""
    names = {e.name for e in snapshot.enums.values()}
    names |= {
        e.target.name
        for e in effects.effects
        if e.action is Action.CREATE and e.target.kind is ObjectKind.ENUM
    }
    return names


def _retyped_to_enum(effect: Effect, enums: set[str]) -> bool:
    """A column type change to a named enum type. It loses no value: each row keeps its label
    or, when the enum lacks it, the statement fails and the whole run is undone."""
    if not effect.detail.startswith("type → "):
        return False
    type_ = effect.detail.removeprefix("type → ").split(" USING ", 1)[0].removesuffix("[]")
    return type_.rsplit(".", 1)[-1].strip('"') in enums


def _script_impact(counter: _Counter, script: Script, effects: ScriptEffects) -> ScriptImpact:
    losses: list[Loss] = []
    uncounted: list[str] = []
    uncounted_effects: list[Effect] = []
    lock_waits: list[str] = []
    # what acts outside the database is named first: no rollback or restore undoes it
    side: list[str] = [f"line {x.line}: {x.describe()}" for x in effects.server]
    enums = _enum_types(counter.snapshot, effects)
    for effect in effects.effects:
        if _retyped_to_enum(effect, enums):
            continue
        before = len(uncounted)
        # A failed count (odd SQL, a table the script itself creates) must not spoil the
        # others: each runs under a savepoint (opened by its first query: Counter.db).
        counter.in_savepoint = False
        try:
            _count_effect(counter, script, effect, losses, uncounted, side)
        except DatabaseError as exc:
            if counter.in_savepoint:
                counter.session.execute("ROLLBACK TO SAVEPOINT backout_impact")
            if counter.dialect.is_lock_timeout(exc.sqlstate, exc.message):
                # Counting never queues behind another session's lock (a running rollback's
                # ACCESS EXCLUSIVE on the table it drops): it says so instead.
                wait = (
                    f"{script.display}:{effect.line}: could not be counted: another session "
                    f"holds a lock on its table ({exc})"
                )
                lock_waits.append(wait)
                uncounted.append(wait)
            else:
                uncounted.append(f"{script.display}:{effect.line}: could not be counted ({exc})")
        if counter.in_savepoint:
            counter.session.execute("RELEASE SAVEPOINT backout_impact")
        if len(uncounted) > before:
            uncounted_effects.append(effect)
    return ScriptImpact(
        script=script,
        effects=effects,
        losses=tuple(_without_subsumed(losses)),
        uncounted=tuple(uncounted),
        side_effects=tuple(side),
        assessment=assess_live(effects, losses, uncounted=uncounted_effects),
        lock_waits=tuple(lock_waits),
    )


def _without_subsumed(losses: list[Loss]) -> list[Loss]:
    """A table the script drops or truncates loses all its rows: its DELETEs, UPDATEs and
    dropped columns are already in that count (else ``DELETE FROM t; DROP TABLE t`` would
    count t's rows twice)."""
    gone = {
        loss.effect.target
        for loss in losses
        if loss.cascade_table is None
        and loss.effect.action in (Action.DROP, Action.TRUNCATE)
        and loss.effect.target.kind is ObjectKind.TABLE
    }
    if not gone:
        return losses
    kept = []
    for loss in losses:
        effect = loss.effect
        table = effect.target.owner if effect.target.kind is ObjectKind.COLUMN else effect.table
        subsumed = table is not None and table in gone
        if subsumed and (
            effect.target.kind is ObjectKind.COLUMN
            or (loss.cascade_table is None and effect.action not in (Action.DROP, Action.TRUNCATE))
        ):
            continue
        kept.append(loss)
    return kept


def _count_effect(
    counter: _Counter,
    script: Script,
    effect: Effect,
    losses: list[Loss],
    uncounted: list[str],
    side: list[str],
) -> None:
    target = effect.target
    where = f"{script.display}:{effect.line}"
    if effect.action in (Action.DROP, Action.TRUNCATE) and target.kind is ObjectKind.TABLE:
        _count_table_loss(counter, effect, where, losses, side)
    elif effect.action in (Action.DELETE, Action.UPDATE):
        _count_rows_written(counter, effect, where, losses, uncounted)
    elif target.kind is ObjectKind.COLUMN and (
        effect.action is Action.DROP or (effect.action is Action.ALTER and effect.destructive)
    ):
        table = counter.table(target.owner)
        if table is None or table.column(target.name) is None:
            return
        count, estimated = counter.non_null(table, target.name)
        key = target.name in _key_columns(table, counter.snapshot)
        losses.append(Loss(effect, "values", count, estimated, key=key))


def _count_table_loss(
    counter: _Counter, effect: Effect, where: str, losses: list[Loss], side: list[str]
) -> None:
    """DROP TABLE or TRUNCATE: the table's rows, and what a CASCADE takes with them."""
    table = counter.table(effect.target)
    if table is None:
        return
    rows, estimated = counter.rows(table)
    losses.append(Loss(effect, "rows", rows, estimated))
    for child, fk in _children(counter.snapshot, table):
        if child.key == table.key or not effect.cascade:
            continue
        if effect.action is Action.DROP:
            side.append(
                f"{where}: DROP ... CASCADE also drops foreign key "
                f"{fk.name or '(unnamed)'} of {child.key}"
            )
        else:
            child_rows, child_est = counter.rows(child)
            losses.append(Loss(effect, "rows", child_rows, child_est, cascade_table=child.key))


def _count_rows_written(
    counter: _Counter, effect: Effect, where: str, losses: list[Loss], uncounted: list[str]
) -> None:
    """DELETE or UPDATE: the rows it matches (and a DELETE's cascades), when they can be counted."""
    table = counter.table(effect.table or effect.target)
    if table is None:
        return
    matched = counter.matching(effect, table)
    if matched is None:
        uncounted.append(
            f"{where}: rows matched by this {effect.action.value} cannot be counted before "
            "it runs (WITH, WHERE CURRENT OF, or SQL the counter cannot rewrite)"
        )
        return
    count, estimated = matched
    if effect.action is Action.DELETE:
        losses.append(Loss(effect, "rows", count, estimated))
        _cascades(counter, effect, table, count, estimated, losses)
    else:
        touched_key = any(c in _key_columns(table, counter.snapshot) for c in effect.columns)
        losses.append(Loss(effect, "values", count, estimated, key=touched_key))


def _cascades(
    counter: _Counter,
    effect: Effect,
    table: TableInfo,
    matched: int,
    estimated: bool,
    losses: list[Loss],
) -> None:
    """Rows ON DELETE CASCADE removes from child tables (direct children)."""
    if matched == 0:
        return
    for child, fk in _children(counter.snapshot, table):
        if fk.on_delete != "CASCADE" or child.key == table.key:
            continue
        columns = fk.columns
        if effect.has_where is False:
            not_null = " AND ".join(f"{counter.dialect.quote(c)} IS NOT NULL" for c in columns)
            sql = f"SELECT count(*) FROM {counter.dialect.table_sql(child)} WHERE {not_null}"
            losses.append(
                Loss(
                    effect,
                    "rows",
                    int(counter.db().query(sql)[0][0]),
                    estimated,
                    cascade_table=child.key,
                )
            )
        else:
            scope = counter.dialect.dml_scope(effect.statement)
            referenced = fk.referenced_columns
            if scope is None or len(columns) != 1 or len(referenced) != 1:
                continue
            q = counter.dialect.quote
            sql = (
                f"SELECT count(*) FROM {counter.dialect.table_sql(child)} WHERE {q(columns[0])} IN "
                f"(SELECT {scope.target}.{q(referenced[0])} FROM {scope.from_where})"
            )
            losses.append(
                Loss(
                    effect,
                    "rows",
                    int(counter.db().query(sql)[0][0]),
                    estimated,
                    cascade_table=child.key,
                )
            )


def compute_impact(
    session: Session,
    dialect: Dialect,
    snapshot: SchemaSnapshot,
    scripts: Sequence[tuple[Script, ScriptEffects]],
    *,
    exact: bool = False,
    values: Mapping[str, object] | None = None,
    lock_timeout: float | None = None,
) -> ImpactReport:
    """Count what each script would destroy, in a read transaction rolled back after.

    ``snapshot``: the database's schema now (the caller has just read it).
    ``values``: a partial rollback's parameter values, bound into the counting queries.
    ``lock_timeout``: the longest wait for a table lock, in seconds (None: the database's).
    """
    counter = _Counter(session, dialect, snapshot, exact, dict(values or {}))
    session.begin_read(lock_timeout=lock_timeout)
    try:
        impacts = tuple(_script_impact(counter, script, effects) for script, effects in scripts)
    except BackoutError as exc:
        # Same error, same exit code (a lost connection stays a database error, exit 4).
        exc.message = f"counting the rollback's impact failed: {exc.message}"
        raise
    finally:
        session.rollback()
    return ImpactReport(scripts=impacts, exact=exact)
