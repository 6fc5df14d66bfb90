"""What a script's parsed effects say it changes in the schema, and how that compares with
what a schema snapshot shows changed. Pure: no database. :mod:`backout.analysis.simulate`
compares a simulation with it; :mod:`backout.migrate.residue` looks for a failed migration's
changes with it (read by ``status``, which must not load the simulation's runner)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backout.model.effects import Action, ObjectKind, ScriptEffects
from backout.model.identifiers import quote_identifier
from backout.model.object_keys import ObjectKey, fold_key, objects

if TYPE_CHECKING:
    from backout.model.schema import SchemaSnapshot

_KINDS = {
    ObjectKind.TABLE: "table",
    ObjectKind.COLUMN: "column",
    ObjectKind.INDEX: "index",
    ObjectKind.ENUM: "type",
    ObjectKind.TYPE: "type",
    ObjectKind.VIEW: "view",
    ObjectKind.MATERIALIZED_VIEW: "view",
    ObjectKind.SEQUENCE: "sequence",
    ObjectKind.FUNCTION: "function",
    ObjectKind.PROCEDURE: "function",
    ObjectKind.TRIGGER: "trigger",
    ObjectKind.CONSTRAINT: "constraint",
    ObjectKind.FOREIGN_KEY: "constraint",
}


def expected_changes(
    effects: ScriptEffects, default_schema: str | None
) -> tuple[set[ObjectKey], set[ObjectKey]]:
    """(objects the statements drop, objects they create), as keys of :func:`objects`."""
    dropped: set[ObjectKey] = set()
    created: set[ObjectKey] = set()
    for effect in effects.effects:
        kind = _KINDS.get(effect.target.kind)
        if kind is None or effect.action not in (Action.DROP, Action.CREATE, Action.RENAME):
            continue
        target = effect.target
        schema = target.schema if target.schema is not None else default_schema
        names: tuple[str, ...] = (target.name,)
        if kind in ("column", "trigger", "constraint"):
            names = (target.parent or "", target.name)
        key = fold_key((kind, schema, *names), target.case_insensitive)
        # Net effect, in script order: an object renamed away and created again under its name
        # (an enum rebuild) is still there afterwards, and one created then dropped is not.
        if effect.action is Action.DROP:
            dropped.add(key)
            created.discard(key)
        elif effect.action is Action.CREATE:
            created.add(key)
            dropped.discard(key)
        elif effect.renamed_to is not None:
            dropped.add(key)
            created.discard(key)
            new = effect.renamed_to
            renamed = fold_key((kind, schema, *names[:-1], new.name), target.case_insensitive)
            created.add(renamed)
            dropped.discard(renamed)
    return dropped, created


def describe_object(key: ObjectKey) -> str:
    """An object key for people: ``column "User"."nickname"``."""
    kind, schema, *names = key
    shown = ".".join(quote_identifier(n) for n in names)
    return f"{kind} {shown}" + (f" (schema {schema})" if schema and schema != "public" else "")


def compare(
    before: SchemaSnapshot,
    after: SchemaSnapshot,
    effects: ScriptEffects,
    *,
    case_insensitive: bool,
) -> tuple[list[str], list[str]]:
    """(changes seen by the simulation, disagreements with the static analysis)."""
    old = objects(before, case_insensitive=case_insensitive)
    new = objects(after, case_insensitive=case_insensitive)
    removed = {k for k in old if k not in new}
    added = {k for k in new if k not in old}
    dropped, created = expected_changes(effects, before.default_schema)
    changes = [f"removed {describe_object(k)}" for k in sorted(removed)]
    changes += [f"added {describe_object(k)}" for k in sorted(added)]
    disagreements: list[str] = []
    for k in sorted(removed):
        owner = old[k]
        if k in dropped or (owner is not None and owner in removed):
            continue
        disagreements.append(
            f"the simulation drops {describe_object(k)}, which the parser did not see "
            "(dynamic SQL or a CASCADE side effect)"
        )
    for k in sorted(dropped):
        if k in old and k not in removed:
            disagreements.append(
                f"the parser expects {describe_object(k)} to be dropped, but after the simulation "
                "it is still there"
            )
    for k in sorted(added):
        owner = new[k]
        if k in created or (owner is not None and owner in added):
            continue
        disagreements.append(
            f"the simulation creates {describe_object(k)}, which the parser did not see"
        )
    return changes, disagreements
