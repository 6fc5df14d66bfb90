"""The risk rules, in one place (documented in docs/risk.md).

Two assessments use them:

- **static** (:func:`assess_static`): from the script alone, assuming the worst about data
  (every table has rows, every column has values). ``lint`` uses it.
- **live** (:func:`assess_live`): from counts taken on the database (``plan``/``rollback``).

Rules, highest first:

- **HIGH**: rows are lost (a dropped or truncated table that has rows, a DELETE that matches
  rows, rows removed by ON DELETE CASCADE), or values of a key column are lost (a primary-key,
  unique or foreign-key column), or a statement cannot be analysed (it needs review, and backout
  does not guess), or a statement acts outside the database (runs a program, reads or writes a
  server file, talks to another server): no rollback or restore undoes that.
- **MEDIUM**: values are lost, but only from non-key columns (a dropped column with non-null
  values, an UPDATE that matches rows, a type change of a column holding values).
- **LOW**: the script destroys only objects that hold no data, or empty ones (an index, a
  constraint, a view, a function, a trigger, a sequence, an enum type, an empty table or
  column).
- **NONE**: nothing is destroyed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backout.model.effects import Action, Effect, ObjectKind, ScriptEffects
from backout.model.script import Risk

#: objects that hold no rows or values of their own
_DATALESS = frozenset(
    {
        ObjectKind.INDEX,
        ObjectKind.CONSTRAINT,
        ObjectKind.FOREIGN_KEY,
        ObjectKind.VIEW,
        ObjectKind.FUNCTION,
        ObjectKind.PROCEDURE,
        ObjectKind.TRIGGER,
        ObjectKind.SEQUENCE,
        ObjectKind.ENUM,
        ObjectKind.TYPE,
        ObjectKind.ENUM_VALUE,
        ObjectKind.SETTING,
        ObjectKind.EXTENSION,
    }
)


@dataclass(frozen=True)
class RiskAssessment:
    """A computed risk and the reasons for it, worst first."""

    risk: Risk
    reasons: tuple[str, ...] = ()

    def understates(self, declared: Risk | None) -> bool:
        """True when a declared risk (None: undeclared) is lower than this one."""
        return declared is not None and declared < self.risk


@dataclass(frozen=True)
class Loss:
    """Data a statement destroys, as counted (or estimated) on the database."""

    effect: Effect
    #: "rows" (rows removed), "values" (non-null values removed/overwritten)
    kind: str
    count: int
    estimated: bool = False
    #: the column (or rows) lost belong to a key: primary key, unique, or foreign key
    key: bool = False
    #: rows removed from another table by ON DELETE CASCADE (the table is named)
    cascade_table: str | None = None


def _static_level(effect: Effect) -> tuple[Risk, str] | None:
    target = effect.target
    where = f"line {effect.line}: {effect.action.value} {target.display}"
    if effect.action in (Action.TRUNCATE, Action.DELETE):
        return Risk.HIGH, f"{where} removes rows"
    if effect.action is Action.DROP and target.kind in (
        ObjectKind.TABLE,
        ObjectKind.MATERIALIZED_VIEW,
        ObjectKind.SCHEMA,
    ):
        return Risk.HIGH, f"{where} removes its rows"
    if effect.action is Action.DROP and effect.cascade:
        return Risk.HIGH, f"{where} CASCADE may remove dependent objects and their data"
    if effect.action is Action.UPDATE:
        return Risk.MEDIUM, f"{where} overwrites values"
    if effect.action is Action.DROP and target.kind is ObjectKind.COLUMN:
        return Risk.MEDIUM, f"{where} removes its values"
    if effect.destructive and target.kind not in _DATALESS:
        return Risk.MEDIUM, f"{where} ({effect.detail or 'changes stored values'})"
    if effect.destructive or effect.action is Action.DROP:
        return Risk.LOW, f"{where} holds no data"
    return None


def _beyond_analysis(effects: ScriptEffects) -> list[tuple[Risk, str]]:
    """HIGH for what backout cannot weigh: statements it cannot analyse, and effects outside
    the database that no rollback or restore undoes."""
    found = [(Risk.HIGH, f"line {u.line}: {u.describe()}") for u in effects.unknown]
    found += [(Risk.HIGH, f"line {s.line}: {s.describe()}") for s in effects.server]
    return found


def assess_static(effects: ScriptEffects) -> RiskAssessment:
    """Worst-case risk of a script from its statements alone (every table assumed non-empty)."""
    found = _beyond_analysis(effects)
    for effect in effects.effects:
        level = _static_level(effect)
        if level is not None:
            found.append(level)
    return _combine(found)


def assess_live(
    effects: ScriptEffects, losses: Sequence[Loss], *, uncounted: Sequence[Effect] = ()
) -> RiskAssessment:
    """Risk from what the database holds: counted losses, plus dataless drops (LOW),
    statements that cannot be analysed (HIGH), and, for losses that could not be counted,
    the static worst case (backout does not guess low)."""
    found = _beyond_analysis(effects)
    for effect in uncounted:
        level = _static_level(effect)
        if level is not None:
            found.append((level[0], level[1] + " (not countable before it runs)"))
    for loss in losses:
        if loss.count <= 0:
            continue
        about = "about " if loss.estimated else ""
        where = f"line {loss.effect.line}: {loss.effect.target.display}"
        if loss.kind == "rows":
            table = f" of {loss.cascade_table} (ON DELETE CASCADE)" if loss.cascade_table else ""
            found.append((Risk.HIGH, f"{where}: {about}{loss.count} row(s){table} lost"))
        elif loss.key:
            found.append((Risk.HIGH, f"{where}: {about}{loss.count} key value(s) lost"))
        else:
            found.append((Risk.MEDIUM, f"{where}: {about}{loss.count} value(s) lost"))
    for effect in effects.effects:
        if effect.destructive or effect.action is Action.DROP:
            found.append(
                (Risk.LOW, f"line {effect.line}: {effect.action.value} {effect.target.display}")
            )
    return _combine(found)


def _combine(found: list[tuple[Risk, str]]) -> RiskAssessment:
    if not found:
        return RiskAssessment(Risk.NONE, ())
    found.sort(key=lambda item: -item[0])
    top = found[0][0]
    return RiskAssessment(top, tuple(reason for risk, reason in found if risk == top))


def loss_text(loss: Loss) -> str:
    """``1234 rows of public.Voucher`` / ``about 17 values of column "User"."flag"``."""
    about = "about " if loss.estimated else ""
    if loss.kind == "rows":
        where = loss.cascade_table or loss.effect.target.display
        extra = " (ON DELETE CASCADE)" if loss.cascade_table else ""
        return f"{about}{loss.count:,} rows of {where}{extra}"
    what = "key values" if loss.key else "values"
    return f"{about}{loss.count:,} {what} of {loss.effect.target.display}"


def loss_summary(losses: Sequence[Loss]) -> str:
    """``1,234 rows, 17 values (estimated)`` or ``nothing``."""
    rows = sum(x.count for x in losses if x.kind == "rows")
    values = sum(x.count for x in losses if x.kind == "values")
    parts = [f"{rows:,} rows"] if rows else []
    if values:
        parts.append(f"{values:,} values")
    if not parts:
        return "nothing"
    return ", ".join(parts) + (" (estimated)" if any(x.estimated for x in losses) else "")
