"""``backout generate``: draft a migration's rollback from the schema diff before and after it.

On a scratch database the migrations before ID are applied (from empty), the schema is read,
ID is applied and the schema read again. The dialect turns the two snapshots into SQL
(:meth:`~backout.dialects.base.Dialect.draft_rollback`), after undoing the renames the forward
script made (so a renamed table keeps its rows). The draft is then run on the scratch database,
inside a transaction that is rolled back, and the schema it leaves is compared with the one
before ID: what still differs is written into the draft as TODO lines, never hidden.

The header carries the directives: risk computed from the draft's own statements
(:func:`backout.analysis.risk.assess_static`), impact, data-loss and manual lines where data cannot
come back, and ``require`` checks that refuse a rollback that would fail half-way. The file goes
where the layout expects it and is never overwritten without ``force``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from backout.analysis.risk import assess_static
from backout.dialects.base import KeptStates, Session
from backout.dialects.ddl_base import Draft, DraftStep, LiveNames, Rename
from backout.generate import replay_cache
from backout.model.effects import Action, ObjectKind
from backout.model.errors import BackoutError, UsageError
from backout.model.schema import SchemaSnapshot, TableInfo, diff_schemas
from backout.model.script import Risk
from backout.project.layouts.flyway import undo_path
from backout.project.migration import Migration, Project
from backout.run.replay import apply_unrecorded, ensure_url_schema, scratch_workspace
from backout.run.runner import prepare
from backout.run.workspace import Workspace

_RENAME_KINDS = {
    ObjectKind.TABLE: "table",
    ObjectKind.COLUMN: "column",
    ObjectKind.INDEX: "index",
    ObjectKind.CONSTRAINT: "constraint",
    ObjectKind.FOREIGN_KEY: "constraint",
    ObjectKind.ENUM: "type",
    ObjectKind.TYPE: "type",
    ObjectKind.ENUM_VALUE: "enum_value",
    ObjectKind.VIEW: "view",
    ObjectKind.MATERIALIZED_VIEW: "view",
    ObjectKind.SEQUENCE: "sequence",
}
DBMATE_DOWN = re.compile(r"^\s*--\s*migrate:down\b", re.IGNORECASE)
_DATA = (Action.INSERT, Action.UPDATE, Action.DELETE, Action.TRUNCATE)
WIDTH = 100


@dataclass
class GeneratedRollback:
    """One drafted rollback."""

    migration: str
    path: Path
    #: the whole script: header and statements
    text: str
    risk: Risk
    statements: int
    #: schema differences the draft leaves when run on a scratch copy (should be none)
    residual: list[str] = field(default_factory=list)
    #: column-order differences it leaves (re-added columns come last)
    column_order: list[str] = field(default_factory=list)
    #: the draft fails on a scratch copy of the schema before ID
    error: str | None = None
    todo: list[str] = field(default_factory=list)
    written: bool = False
    overwrote: bool = False

    @property
    def needs_review(self) -> bool:
        """The draft is known to be incomplete: residual differences, an error, or TODOs."""
        return bool(self.residual or self.error or self.todo)


def rollback_path(project: Project, migration: Migration) -> Path:
    """Where the layout expects the rollback of ``migration``."""
    if migration.down is not None:
        return migration.down.path
    if project.layout == "prisma":
        folder = project.rollback_dir or project.migrations_dir.parent / "rollback"
        return folder / f"{migration.id}_rollback.sql"
    if project.layout == "dbmate":
        return migration.up.path
    if project.layout == "flyway":
        return undo_path(project.root, migration.up.path)
    return project.migrations_dir / f"{migration.id}.down.sql"


def _has_rollback(ws: Workspace, migration: Migration) -> bool:
    if migration.down is None:
        return False
    if ws.project.layout != "dbmate":
        return True
    try:
        return bool(ws.dialect.split(migration.down.text, migration.down.display))
    except BackoutError:
        return True


def renames_of(ws: Workspace, migration: Migration) -> list[Rename]:
    """What the forward script renames, newest first (the order to undo them in)."""
    statements = prepare(ws.dialect, migration.up).statements
    found: list[Rename] = []
    for effect in ws.dialect.analyze(statements).effects:
        kind = _RENAME_KINDS.get(effect.target.kind)
        if effect.action is not Action.RENAME or effect.renamed_to is None or kind is None:
            continue
        target = effect.target
        found.append(
            Rename(kind, target.schema, target.parent, target.name, effect.renamed_to.name)
        )
    return list(reversed(found))


def _exists(snapshot: SchemaSnapshot, kind: str, parent: str | None, name: str) -> bool:
    """Whether the object a rename names exists in ``snapshot`` (names compared folded on
    databases without schemas, where identifiers are case-insensitive)."""
    fold = str.casefold if snapshot.default_schema is None else str

    def has(names: Iterable[str]) -> bool:
        return fold(name) in {fold(n) for n in names}

    def table(table_name: str) -> TableInfo | None:
        return next((t for t in snapshot.tables.values() if fold(t.name) == fold(table_name)), None)

    if kind == "table":
        return table(name) is not None
    if kind in ("column", "constraint"):
        owner = table(parent or "")
        if owner is None:
            return False
        if kind == "column":
            return has(c.name for c in owner.columns)
        keys = [c.name for c in owner.constraints if c.name]
        return has(keys + [f.name for f in owner.foreign_keys if f.name])
    if kind == "enum_value":
        enum = next((e for e in snapshot.enums.values() if e.name == parent), None)
        return enum is not None and name in enum.values
    pools: dict[str, Iterable[str]] = {
        "index": (i.name for i in snapshot.indexes.values()),
        "type": [
            *(e.name for e in snapshot.enums.values()),
            *(t.name for t in snapshot.types.values()),
        ],
        "view": (v.name for v in snapshot.views.values()),
        "sequence": (s.name for s in snapshot.sequences.values()),
    }
    return has(pools.get(kind, ()))


def _owner_names(renames: Sequence[Rename]) -> list[tuple[str | None, str | None]]:
    """For each rename (newest first, as given), the name its owning table (the ``parent`` of a
    column or constraint) had before the migration and has after it.

    The statement names the table as it is called at that point of the script: renaming
    ``"Team"`` to ``"Organization"`` and then a constraint of ``"Organization"`` means a
    constraint of ``"Team"`` before the migration."""
    forward = list(reversed(renames))
    names: list[tuple[str | None, str | None]] = []
    for i, rename in enumerate(forward):
        first = last = rename.parent
        if rename.kind != "enum_value" and rename.parent is not None:
            for earlier in reversed(forward[:i]):
                if earlier.kind == "table" and earlier.schema == rename.schema:
                    first = earlier.old if earlier.new == first else first
            for later in forward[i + 1 :]:
                if later.kind == "table" and later.schema == rename.schema:
                    last = later.new if later.old == last else last
        names.append((first, last))
    return list(reversed(names))


def lasting_renames(
    renames: Sequence[Rename], before: SchemaSnapshot, after: SchemaSnapshot
) -> list[Rename]:
    """The renames of an object that existed before the migration under its old name and exists
    after it under the new one (its table looked up under the name it has in each). Renames
    that are steps of something else are left to the schema diff: a type renamed to ``x_old``
    and dropped later, or a rebuilt ``new_T`` renamed to ``T`` after the old ``T`` was
    dropped."""
    return [
        r
        for r, (first, last) in zip(renames, _owner_names(renames), strict=True)
        if _exists(before, r.kind, first, r.old)
        and not _exists(before, r.kind, first, r.new)
        and _exists(after, r.kind, last, r.new)
        and not _exists(after, r.kind, last, r.old)
    ]


def live_names(lasting: Sequence[Rename]) -> LiveNames:
    """Where the migration renamed tables and columns, the names they have after it (what a
    ``require`` check sees: checks run before the renames are undone)."""
    tables: dict[str, str] = {}
    columns: dict[tuple[str, str], str] = {}
    for rename, (first, _) in zip(lasting, _owner_names(lasting), strict=True):
        if rename.kind == "table":
            tables[rename.old] = rename.new
        elif rename.kind == "column" and first is not None:
            columns[(first, rename.old)] = rename.new
    return LiveNames(tables=tables, columns=columns)


def _recreated_tables(ws: Workspace, migration: Migration, before: SchemaSnapshot) -> list[str]:
    """Tables that existed before the migration and that it drops and creates again: their
    schema may come back unchanged, their rows do not."""
    effects = ws.dialect.analyze(prepare(ws.dialect, migration.up).statements).effects
    dropped: set[str] = set()
    found: list[str] = []
    for effect in effects:
        target = effect.target
        if target.kind is not ObjectKind.TABLE:
            continue
        if effect.action is Action.DROP:
            dropped.add(target.name)
        elif (
            effect.action is Action.CREATE
            and target.name in dropped
            and _exists(before, "table", None, target.name)
        ):
            found.append(target.display)
    return list(dict.fromkeys(found))


def _data_changes(ws: Workspace, migration: Migration, undone: set[int]) -> list[tuple[str, str]]:
    """(where, what) of each statement that changes rows of an existing table and that the
    draft does not undo exactly (``undone``: lines of those it does)."""
    effects = ws.dialect.analyze(prepare(ws.dialect, migration.up).statements)
    # Rows copied into a table the script creates (a SQLite redefinition) are not data it
    # changes: only tables that existed before count.
    existing = set(effects.tables_written())
    found = []
    for effect in effects.effects:
        if effect.line in undone:
            continue
        if effect.action in _DATA and (effect.table or effect.target) in existing:
            found.append(
                (
                    f"{migration.up.display}:{effect.line}",
                    f"{effect.action.value}s rows of {effect.target.display}",
                )
            )
    return found


def _data_notes(
    changes: Sequence[tuple[str, str]], *, data_only: bool
) -> tuple[list[str], list[str]]:
    """(todo, manual) lines for row changes a schema diff cannot undo. In a data-only draft
    they are the manual steps the rehearsal reports; otherwise TODOs for the reviewer."""
    if data_only:
        manual = [
            f"Put back the rows that {where} {what} (from a backup taken before the "
            "migration), or confirm that none need to be"
            for where, what in changes
        ]
        return [], manual
    todo = [
        f"{where} {what}: a schema diff cannot undo that; add statements that restore the "
        "data, or say why none are needed"
        for where, what in changes
    ]
    return todo, []


def _undo_inserts(
    ws: Workspace, migration: Migration, before: SchemaSnapshot, after: SchemaSnapshot
) -> tuple[list[DraftStep], set[int]]:
    """Deletes of the rows the migration inserted with literal keys into tables that keep
    their name and primary key (see :meth:`~backout.dialects.base.Dialect.undo_inserts`)."""
    statements = prepare(ws.dialect, migration.up).statements
    kept = SchemaSnapshot(
        dialect=before.dialect,
        default_schema=before.default_schema,
        tables={
            k: t
            for k, t in before.tables.items()
            if k in after.tables and after.tables[k].primary_key == t.primary_key
        },
    )
    return ws.dialect.undo_inserts(statements, kept)


def _directive(name: str, text: str) -> list[str]:
    """``-- backout:name text`` wrapped with backslash continuations."""
    lines = textwrap.wrap(
        " ".join(text.split()),
        WIDTH - 2,
        initial_indent=f"-- backout:{name} ",
        subsequent_indent="--   ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line + " \\" if i < len(lines) - 1 else line for i, line in enumerate(lines)]


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent="-- ", subsequent_indent="-- ")


def render(
    ws: Workspace, migration: Migration, draft: Draft, *, column_order: Sequence[str] = ()
) -> str:
    """The whole rollback script: header with directives, then the statements."""
    body = draft.sql()
    statements = ws.dialect.split(body, "(draft)") if body.strip() else []
    risk = assess_static(ws.dialect.analyze(statements)).risk
    manual = list(draft.manual)
    if ws.project.layout == "prisma":
        manual.append(
            f"Revert prisma/schema.prisma to its state before {migration.id}, then run "
            "`npx prisma generate`"
        )
    header = [
        *_comment(
            f"Rollback of {migration.id}: drafted by `backout generate` from the schema before "
            "and after it. Review it, then rehearse it on a copy with data: "
            f"`backout test {migration.id}`."
        ),
        "--",
        *_directive("risk", risk.name),
        *(line for text in dict.fromkeys(draft.impact) for line in _directive("impact", text)),
        *(
            line
            for text in dict.fromkeys(draft.data_loss)
            for line in _directive("data-loss", text)
        ),
        *(line for text in dict.fromkeys(manual) for line in _directive("manual", text)),
        *(line for text in dict.fromkeys(draft.requires) for line in _directive("require", text)),
    ]
    if draft.data_only is not None:
        header += _directive("data-only", draft.data_only)
    notes = [*(f"TODO: {t}" for t in draft.todo)]
    notes += [f"NOTE: {t} (re-added columns come last)" for t in column_order]
    if notes:
        header.append("--")
        header += [line for note in notes for line in _comment(note)]
    if not statements and draft.data_only is None:
        header += ["--", "-- TODO: the migration changes no schema object: write the statements"]
    return "\n".join(header) + "\n\n" + body


def _note_rows(
    ws: Workspace,
    migration: Migration,
    draft: Draft,
    states: tuple[SchemaSnapshot, SchemaSnapshot],
    undone: set[int],
) -> None:
    """What the draft says about rows: tables dropped and re-created, row changes it does not
    undo, and whether the migration is data-only (``states``: the schema before and after)."""
    before, after = states
    changes = _data_changes(ws, migration, undone)
    recreated = _recreated_tables(ws, migration, before)
    for table in recreated:
        draft.data_loss.append(
            f"Every row {table} held before the migration: the migration dropped and re-created it"
        )
        draft.manual.append(f"Restore the rows of {table} from a backup taken before the migration")
    if not diff_schemas(before, after).all_changes() and (changes or undone or recreated):
        draft.data_only = (
            "the migration changes rows only: there is no schema to put back; "
            + (
                f"it dropped and re-created {', '.join(recreated)}, whose rows are lost; "
                if recreated
                else ""
            )
            + ("its literal inserts are deleted by key; " if undone else "")
            + ("the other row changes are manual steps" if changes else "nothing else to do")
        )
    todo, manual = _data_notes(changes, data_only=draft.data_only is not None)
    draft.todo += todo
    draft.manual += manual


def _draft_on(
    ws: Workspace,
    session: Session,
    migration: Migration,
    before: SchemaSnapshot,
    definitions: dict[str, str],
) -> GeneratedRollback:
    """Draft the rollback of ``migration`` (just applied) and try it in a rolled-back
    transaction; the scratch database stays as it was (``migration`` applied)."""
    dialect = ws.dialect
    after = dialect.snapshot(session)
    lasting = lasting_renames(renames_of(ws, migration), before, after)
    renames = [(r, dialect.rename_back(r)) for r in lasting]
    deletes, undone = _undo_inserts(ws, migration, before, after)
    draft = Draft()
    error: str | None = None
    residual: list[str] = []
    order: list[str] = []
    session.begin()
    try:
        # Rows first, while the tables still have the names and columns the inserts used.
        undo_first = [*(step.sql for step in deletes), *(sql for _, sql in renames if sql)]
        for sql in undo_first:
            session.execute(sql)
        middle = dialect.snapshot(session) if undo_first else after
        draft = dialect.draft_rollback(
            before, middle, definitions=definitions, live=live_names(lasting)
        )
        undo = [DraftStep(sql, "Undo what the migration renamed") for _, sql in renames if sql]
        draft.steps[:0] = [*deletes, *undo]
        for step in draft.steps[len(deletes) + len(undo) :]:
            session.execute(step.sql)
        diff = diff_schemas(before, dialect.snapshot(session))
        residual = [c.detail for c in diff.changes]
        order = [c.detail for c in diff.column_order]
    except BackoutError as exc:
        error = f"the draft fails on a scratch copy of the schema before {migration.id}: {exc}"
    finally:
        session.rollback()
    _note_rows(ws, migration, draft, (before, after), undone)
    draft.todo += [f"not undone: {line}" for line in residual]
    if error:
        draft.todo.append(error)
    text = render(ws, migration, draft, column_order=order)
    statements = dialect.split(text, "(draft)")
    return GeneratedRollback(
        migration=migration.id,
        path=rollback_path(ws.project, migration),
        text=text,
        risk=assess_static(dialect.analyze(statements)).risk,
        statements=len(statements),
        residual=residual,
        column_order=order,
        error=error,
        todo=list(draft.todo),
    )


def _write(ws: Workspace, migration: Migration, result: GeneratedRollback) -> None:
    path = result.path
    path.parent.mkdir(parents=True, exist_ok=True)
    if ws.project.layout == "dbmate":
        # Everything before the down marker stays byte for byte: the up section's checksum
        # is what history compares.
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        marker = next(
            (i for i, line in enumerate(lines) if DBMATE_DOWN.match(line)),
            None,
        )
        if marker is None:
            head = text if text.endswith("\n") or not text else text + "\n"
        else:
            head = "".join(lines[:marker])
        path.write_text(head + "-- migrate:down\n" + result.text, encoding="utf-8")
    else:
        result.overwrote = path.exists()
        path.write_text(result.text, encoding="utf-8")
    result.written = True


def _scratch_at(
    ws: Workspace, stack: ExitStack, keys: Sequence[str], first: int
) -> tuple[Workspace, int, SchemaSnapshot | None]:
    """A scratch workspace holding the longest saved replay of ``migrations[:first]`` (see
    backout.generate.replay_cache), how many migrations it already holds (0: an empty one),
    and the schema it was checked against (None when empty)."""
    states = replay_cache.kept_states(ws)
    while True:
        start, on_server = replay_cache.longest_saved(ws, states, keys, first)
        attempt = ExitStack()
        if start == 0:
            scratch = attempt.enter_context(scratch_workspace(ws))
            stack.enter_context(attempt)
            return scratch, 0, None
        restored = _restored(ws, attempt, states, keys[start], on_server)
        if restored is not None:
            stack.enter_context(attempt)
            return restored[0], start, restored[1]
        # Not faithful: forget it, and start again on a fresh scratch database.
        attempt.close()
        replay_cache.forget(ws, states, keys[start])


def _restored(
    ws: Workspace,
    attempt: ExitStack,
    states: KeptStates | None,
    key: str,
    on_server: str | None,
) -> tuple[Workspace, SchemaSnapshot] | None:
    """A scratch workspace holding the saved state ``key`` (copied from the server's kept state
    when ``on_server``, its fingerprint; else loaded from the file) and its schema, checked;
    None when it could not be made or is not the state recorded."""
    try:
        if states is not None and on_server is not None:
            scratch = attempt.enter_context(scratch_workspace(ws, kept=(states, key)))
            expected: str | None = on_server
        else:
            scratch = attempt.enter_context(scratch_workspace(ws))
            expected = replay_cache.restore(scratch, key)
    except BackoutError:
        return None
    if expected is None:
        return None
    with scratch.session() as session:
        restored = scratch.dialect.snapshot(session)
    if restored.fingerprint() != expected:
        return None
    if on_server is None:
        # loaded from the file: keep it on the server for the next run
        replay_cache.keep(states, scratch, key, expected)
    return scratch, restored


def _prefix_on(
    scratch: Workspace,
    session: Session,
    migrations: Sequence[Migration],
    start: int,
    restored: SchemaSnapshot | None,
) -> SchemaSnapshot:
    """Replay ``migrations[start:]`` on the scratch database (which holds those before
    ``start``); its schema afterwards."""
    ensure_url_schema(scratch, session)
    for migration in migrations[start:]:
        apply_unrecorded(scratch, session, migration)
    # The restored state's schema was just read to check it: it is the "before".
    if restored is not None and start == len(migrations):
        return restored
    return scratch.dialect.snapshot(session)


def _drafting_session(
    scratch: Workspace,
    stack: ExitStack,
    migrations: Sequence[Migration],
    start: int,
    restored: SchemaSnapshot | None,
    save_as: str | None,
) -> tuple[Session, SchemaSnapshot]:
    """A session on the scratch database once ``migrations`` (the prefix) are all applied, and
    the schema then, saved under ``save_as`` unless None. Saving needs the session closed: a
    database is kept on the server by copying it, alone."""
    if save_as is None:
        session = stack.enter_context(scratch.session())
        return session, _prefix_on(scratch, session, migrations, start, restored)
    with scratch.session() as replaying:
        before = _prefix_on(scratch, replaying, migrations, start, restored)
    replay_cache.save(scratch, replay_cache.kept_states(scratch), save_as, before)
    return stack.enter_context(scratch.session()), before


def generate(
    ws: Workspace, refs: Sequence[str], *, force: bool = False, write: bool = True
) -> list[GeneratedRollback]:
    """Draft the rollbacks of the given migrations (see the module docstring).

    ``write=False`` only returns the drafts. Without ``force`` an existing rollback is never
    overwritten: that is refused before any database work.
    """
    if not refs:
        raise UsageError("name the migration(s) to draft a rollback for")
    project = ws.project
    empty = SchemaSnapshot(dialect=ws.dialect.name)
    ws.dialect.draft_rollback(empty, empty)  # refuses, before any work, where unsupported
    chosen = sorted(
        {m.key: m for m in (project.find(r) for r in refs)}.values(), key=project.index_of
    )
    if write and not force:
        existing = [m for m in chosen if _has_rollback(ws, m)]
        if existing:
            shown = ", ".join(project.rel(rollback_path(project, m)) for m in existing)
            raise UsageError(
                f"a rollback already exists: {shown}",
                hint="pass --force to overwrite it (or --stdout to only print the draft)",
            )
    wanted = {m.key for m in chosen}
    migrations = project.migrations[: project.index_of(chosen[-1]) + 1]
    first = project.index_of(chosen[0])
    keys = replay_cache.prefix_keys(ws, migrations[:first])
    results: list[GeneratedRollback] = []
    with ExitStack() as stack:
        scratch, start, restored = _scratch_at(ws, stack, keys, first)
        save = start < first and first >= replay_cache.MIN_PREFIX
        session, before = _drafting_session(
            scratch, stack, migrations[:first], start, restored, keys[first] if save else None
        )
        for index, migration in enumerate(migrations[first:], start=first):
            if migration.key not in wanted:
                apply_unrecorded(scratch, session, migration)
                continue
            if index > first:
                before = scratch.dialect.snapshot(session)
            definitions = scratch.dialect.stored_definitions(session)
            apply_unrecorded(scratch, session, migration)
            results.append(_draft_on(scratch, session, migration, before, definitions))
    if write:
        by_id = {m.id: m for m in chosen}
        for result in results:
            _write(ws, by_id[result.migration], result)
    return results
