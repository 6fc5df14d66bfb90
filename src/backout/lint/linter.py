"""``backout lint``: static checks over the migration folder, in one run.

The rules (ids, names, severities) and the models they reason with are in
:mod:`backout.lint.rules`; each rule has a page ``docs/lint/<ID>.md``. This module runs them:
it loads the project, splits and analyses every script (:mod:`backout.model.effects`), walks the
migrations in order, optionally reads the applied state from the database (edited migrations)
and runs squawk on PostgreSQL scripts when it is installed.

Problems in scripts are findings, never exceptions: a syntax error is rule BO501 and the run
goes on. Only a project that cannot be loaded at all (no migrations folder, an ambiguous layout,
an invalid directive) raises, as every command does.

Suppression is an SQL comment that is not a directive (docs/commands/lint.md):
``-- lint-ignore: BO401 reason`` before a statement covers that statement; in a script's header
(before its first statement) it covers the whole script.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backout.analysis.risk import assess_static
from backout.dialects import dialect_for
from backout.lint.rules import (
    RULES,
    SQUAWK_DOCS,
    SQUAWK_PREFIX,
    Catalog,
    Finding,
    Rule,
    Severity,
    SyncTracker,
    same_object,
)
from backout.model.documents import JSON_FORMAT
from backout.model.effects import Action, ObjectKind, ScriptEffects
from backout.model.errors import BackoutError, ProjectError, UsageError
from backout.model.identifiers import quote_identifier
from backout.model.script import Script, ScriptKind, Statement, scan_directives
from backout.model.urls import DatabaseURL, scrub
from backout.project.layouts import load_project
from backout.project.layouts.prisma import provider_dialect
from backout.project.migration import Migration, Project
from backout.project.scaffold import ROLLBACK_HEADER
from backout.run.runner import writing_checks
from backout.run.transactions import UnhonourableTransaction, lay_out, same_block_pairs
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    from backout.dialects.base import Dialect
    from backout.project.config import Config
    from backout.run.status import StatusReport

__all__ = ["RULES", "Finding", "LintReport", "Rule", "Severity", "lint", "lint_json"]

#: squawk rules left out: backout sets lock_timeout and statement_timeout itself, in every
#: transaction it runs (``--lock-timeout``, ``statement_timeout`` in backout.toml)
SQUAWK_EXCLUDED = ("require-lock-timeout", "require-statement-timeout")
#: squawk findings left out: BO501 reports syntax errors, from PostgreSQL's own parser (and
#: squawk does not know partial rollbacks' ``:name`` parameters); a script's own BEGIN/COMMIT
#: are never sent inside backout's transaction (backout.run.transactions lays them out, and BO303
#: reports what it cannot honour), so squawk's transaction-nesting does not apply
SQUAWK_IGNORED = frozenset({"syntax-error", "transaction-nesting"})
#: squawk rules kept for forward migrations only: dropping is what a rollback is for, and its
#: ``risk``/``data-loss`` directives (BO103, BO104, BO203, BO204) already account for it
SQUAWK_FORWARD_ONLY = frozenset(
    {"ban-drop-column", "ban-drop-table", "ban-drop-type", "ban-drop-constraint"}
)


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LintReport:
    """Everything one ``lint`` run found, plus what it looked at."""

    findings: tuple[Finding, ...]
    #: findings left out by ``lint-ignore`` comments or ``--ignore``
    suppressed: int
    #: migrations linted (after PATHS filtering) and their scripts
    migrations: int
    scripts: int
    dialect: str
    #: "checked", "not found" (no database file yet), "unavailable", "offline" (--offline), or
    #: "not configured" (no database URL given: the applied state was not read)
    database: str
    #: squawk's version, "not installed", "disabled" or "not applicable (<dialect>)"
    squawk: str

    @property
    def errors(self) -> tuple[Finding, ...]:
        """Findings of severity error."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Findings of severity warning."""
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """No errors (warnings do not fail lint)."""
        return not self.errors

    @property
    def own(self) -> tuple[Finding, ...]:
        """backout's own findings (rules ``BO…``), first in :attr:`findings`."""
        return tuple(f for f in self.findings if not f.rule.startswith(SQUAWK_PREFIX))

    @property
    def from_squawk(self) -> tuple[Finding, ...]:
        """squawk's findings (rules ``squawk:…``), after backout's own."""
        return tuple(f for f in self.findings if f.rule.startswith(SQUAWK_PREFIX))

    def squawk_by_rule(self) -> dict[str, int]:
        """How many findings each squawk rule made, most first (then by name)."""
        counts: dict[str, int] = {}
        for finding in self.from_squawk:
            counts[finding.rule] = counts.get(finding.rule, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def summary(self) -> dict[str, Any]:
        """Counts and context, as in ``lint --json``."""
        return {
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "suppressed": self.suppressed,
            "migrations": self.migrations,
            "scripts": self.scripts,
            "dialect": self.dialect,
            "database": self.database,
            "squawk": self.squawk,
            "own_findings": len(self.own),
            "squawk_findings": len(self.from_squawk),
            "squawk_by_rule": self.squawk_by_rule(),
        }


def lint_json(report: LintReport) -> dict[str, Any]:
    """The ``lint --json`` document (``"format": 1``; docs/commands/lint.md)."""
    return {
        "format": JSON_FORMAT,
        "findings": [
            {
                "rule": f.rule,
                "name": f.name,
                "severity": f.severity.value,
                "file": f.file,
                "line": f.line,
                "message": f.message,
                "migration": f.migration,
                "docs": f.docs,
            }
            for f in report.findings
        ],
        "summary": report.summary(),
    }


# --- suppression ---------------------------------------------------------------------------

_IGNORE_LINE = re.compile(r"^\s*--\s*lint-ignore\s*:(?P<body>.*)$", re.IGNORECASE)
_RULE_ID = r"(?:[A-Za-z]{2}\d{3}|squawk:[A-Za-z0-9_-]+)"
_IGNORE_BODY = re.compile(rf"^\s*(?P<ids>{_RULE_ID}(?:\s*,\s*{_RULE_ID})*)(?:\s+(?P<reason>.*))?$")


def _normalise_rule(rule: str) -> str:
    return rule.lower() if rule.lower().startswith(SQUAWK_PREFIX) else rule.upper()


@dataclass
class _Suppressions:
    """``lint-ignore`` comments of one script: for the whole script, or per statement."""

    whole: set[str] = field(default_factory=set)
    #: (first line, last line, rule ids) of statements with a comment before them
    spans: list[tuple[int, int, set[str]]] = field(default_factory=list)
    #: (line, problem) of comments that name no rule, or an unknown one
    problems: list[tuple[int, str]] = field(default_factory=list)

    def covers(self, rule: str, line: int) -> bool:
        """True when ``rule`` is ignored at ``line``."""
        if rule in self.whole:
            return True
        return any(first <= line <= last and rule in ids for first, last, ids in self.spans)


def _suppressions(script: Script, statements: Sequence[Statement]) -> _Suppressions:
    found = _Suppressions()
    if "lint-ignore" not in script.text.lower():
        return found
    starts = [s.line for s in statements]
    end_of_script = script.first_line + script.text.count("\n")
    for offset, text in enumerate(script.text.split("\n")):
        match = _IGNORE_LINE.match(text)
        if match is None:
            continue
        line = script.first_line + offset
        body = _IGNORE_BODY.match(match["body"])
        if body is None:
            found.problems.append(
                (line, "lint-ignore names no rule: write `-- lint-ignore: BO401 <reason>`")
            )
            continue
        ids = {_normalise_rule(i) for i in re.split(r"\s*,\s*", body["ids"].strip())}
        for rule in sorted(ids):
            if not rule.startswith(SQUAWK_PREFIX) and rule not in RULES:
                found.problems.append((line, f"lint-ignore names unknown rule {rule}"))
        following = [i for i, start in enumerate(starts) if start > line]
        if not starts or line < starts[0] or not following:
            found.whole |= ids  # in the header (or after the last statement): whole script
            continue
        index = following[0]
        last = starts[index + 1] - 1 if index + 1 < len(starts) else end_of_script
        found.spans.append((starts[index], last, ids))
    return found


# --- per-script analysis -------------------------------------------------------------------


@dataclass(frozen=True)
class _SyntaxProblem:
    """Why a script could not be split: the first syntax error, at a line."""

    line: int | None
    message: str


@dataclass
class _Analysed:
    """One script, split and analysed (or the syntax error that stopped it)."""

    script: Script
    statements: tuple[Statement, ...]
    effects: ScriptEffects | None
    error: _SyntaxProblem | None
    #: (rule, line, message) of transaction control that cannot be honoured
    conflicts: tuple[tuple[str, int, str], ...]
    suppressions: _Suppressions
    #: the script can run as one transaction (see :mod:`backout.run.transactions`)
    atomic: bool = True


_Result = tuple[
    tuple[Statement, ...],
    ScriptEffects | None,
    _SyntaxProblem | None,
    tuple[tuple[str, int, str], ...],
    bool,
]


def _analyse(dialect: Dialect, script: Script) -> _Result:
    """Split and analyse one script; a syntax error is returned, not raised."""
    try:
        statements = tuple(
            dialect.split(
                script.text,
                script.display,
                first_line=script.first_line,
                params=[p.name for p in script.directives.params],
            )
        )
    except ProjectError as exc:
        line = exc.line
        text = exc.message
        if line is not None:
            text = text.removeprefix(f"{script.display}:{line}: ")
        return (), None, _SyntaxProblem(line, text), (), True
    conflicts, atomic = _transaction_findings(dialect, script, statements)
    return statements, dialect.analyze(statements), None, conflicts, atomic


def _transaction_findings(
    dialect: Dialect, script: Script, statements: Sequence[Statement]
) -> tuple[tuple[tuple[str, int, str], ...], bool]:
    """BO303/BO304/BO305 from the script's transaction layout, exactly as ``up`` would lay it
    out (a script that runs journaled is no finding: ``up`` runs it as shipped); and whether
    the script can be one transaction."""
    try:
        layout = lay_out(dialect, script, statements)
    except UnhonourableTransaction as exc:
        rule = "BO304" if exc.placement else "BO303"
        return ((rule, exc.statement.line, f"{exc.statement.excerpt(40)}: {exc.reason}"),), False
    found = [
        ("BO305", pair.later.line, pair.reason + ", inside one BEGIN … COMMIT block of the script")
        for pair in same_block_pairs(dialect, layout)
    ]
    return tuple(found), layout.atomic


#: what forked workers analyse (inherited through fork, so nothing is pickled on the way in)
_WORK: tuple[Dialect, Sequence[Script]] | None = None


def _analyse_nth(index: int) -> _Result:
    assert _WORK is not None
    dialect, scripts = _WORK
    return _analyse(dialect, scripts[index])


#: below this many scripts, starting worker processes costs more than it saves
PARALLEL_MIN_SCRIPTS = 400


def _parallel_workers(count: int) -> int:
    """How many processes may share the analysis (1: do it here).

    The SQL parsers are pure Python (sqlglot) or build Python objects for every node (pglast),
    so the analysis is CPU-bound and splits well across cores. Workers are forked, so they
    inherit the imported parsers and the scripts; fork is only safe in a process without other
    threads, and only POSIX has it.
    """
    import multiprocessing
    import threading

    if count < PARALLEL_MIN_SCRIPTS or threading.active_count() > 1:
        return 1
    if "fork" not in multiprocessing.get_all_start_methods() or sys.platform == "darwin":
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


class _Analyses:
    """Split and analyse each script once, on first use (or all at once, in parallel)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._done: dict[int, _Analysed] = {}

    def get(self, script: Script) -> _Analysed:
        found = self._done.get(id(script))
        if found is None:
            found = self._store(script, _analyse(self.dialect, script))
        return found

    def _store(self, script: Script, result: _Result) -> _Analysed:
        statements, effects, error, conflicts, atomic = result
        analysed = _Analysed(
            script, statements, effects, error, conflicts, _suppressions(script, statements), atomic
        )
        self._done[id(script)] = analysed
        return analysed

    def prefetch(self, scripts: Sequence[Script]) -> None:
        """Analyse many scripts at once, on every core when there are enough of them."""
        global _WORK  # noqa: PLW0603 - handed to forked workers, reset right after
        todo = [s for s in scripts if id(s) not in self._done]
        workers = _parallel_workers(len(todo))
        if workers <= 1:
            return
        import multiprocessing

        # Import the parser in the parent, so every worker inherits it instead of importing it.
        self.dialect.analyze(())
        _WORK = (self.dialect, todo)
        try:
            context = multiprocessing.get_context("fork")
            with context.Pool(workers) as pool:
                chunk = max(1, len(todo) // (workers * 4))
                results = pool.map(_analyse_nth, range(len(todo)), chunksize=chunk)
        finally:
            _WORK = None
        for script, result in zip(todo, results, strict=True):
            self._store(script, result)


# --- the run ---------------------------------------------------------------------------------


def _head(script: Script) -> int:
    """The line a finding about a whole script points to: its first line, or the section
    marker (``-- migrate:down``) of a dbmate section."""
    return script.first_line - 1 if script.first_line > 1 else 1


def _placeholders() -> dict[str, str]:
    """Directive values ``backout new`` writes for the author to replace, lower-cased."""
    found = scan_directives(ROLLBACK_HEADER.format(id="x"), "scaffold")
    return {d.name: d.value.lower() for d in found if d.name != "risk"}


#: a forward script without these words cannot create, move or drop a foreign key
_FK_WORDS = ("references", "drop", "rename", "schema")


class _Linter:
    """Runs the rules over a project and collects findings."""

    def __init__(
        self,
        project: Project,
        dialect: Dialect,
        selected: set[str] | None,
        ignore: set[tuple[str, str | None]],
    ) -> None:
        self.project = project
        self.dialect = dialect
        self.selected = selected
        self.ignore = ignore
        self.analyses = _Analyses(dialect)
        self.findings: list[Finding] = []
        self.suppressed = 0
        self._placeholders = _placeholders()

    # --- recording ---------------------------------------------------------------------------

    def is_selected(self, migration: Migration) -> bool:
        """True when PATHS (if any) name one of this migration's files."""
        return self.selected is None or migration.key in self.selected

    def emit(
        self,
        rule_id: str,
        script: Script | None,
        line: int | None,
        message: str,
        migration: Migration | None,
        *,
        severity: Severity | None = None,
        name: str | None = None,
        docs: str | None = None,
    ) -> None:
        """Record a finding unless a ``lint-ignore`` comment or ``--ignore`` suppresses it."""
        rule = RULES.get(rule_id)
        where = line if line is not None or script is None else _head(script)
        if (rule_id, None) in self.ignore or (
            migration is not None
            and ((rule_id, migration.id) in self.ignore or (rule_id, migration.key) in self.ignore)
        ):
            self.suppressed += 1
            return
        if (
            script is not None
            and where is not None
            and self.analyses.get(script).suppressions.covers(rule_id, where)
        ):
            self.suppressed += 1
            return
        self.findings.append(
            Finding(
                rule=rule_id,
                name=name or (rule.name if rule else rule_id),
                severity=severity or (rule.severity if rule else Severity.WARNING),
                file=script.display if script else None,
                line=where,
                message=message,
                migration=migration.id if migration else None,
                docs=docs or (rule.docs if rule else ""),
            )
        )

    # --- walking the project ----------------------------------------------------------------

    def scripts_of(self, migration: Migration) -> list[Script]:
        """Forward, rollback and partial scripts of a migration."""
        scripts = [migration.up]
        if migration.down is not None:
            scripts.append(migration.down)
        scripts.extend(script for _, script in migration.partials)
        return scripts

    def run(self) -> None:
        """Lint every selected migration, in order."""
        migrations = self.project.migrations
        targets = [i for i, m in enumerate(migrations) if self.is_selected(m)]
        if not targets:
            return
        self.analyses.prefetch([s for i in targets for s in self.scripts_of(migrations[i])])
        # Earlier migrations that are not linted still build the schema model: all of them when
        # an IF NOT EXISTS create needs to know what existed, else those that can touch a
        # foreign key.
        full_catalog = any(self._has_guarded_create(migrations[i]) for i in targets)
        model = [
            migration
            for migration in migrations[: targets[-1] + 1]
            if not self.is_selected(migration)
            and (full_catalog or any(w in migration.up.text.lower() for w in _FK_WORDS))
        ]
        self.analyses.prefetch([m.up for m in model])
        in_model = {m.key for m in model}
        catalog = Catalog()
        for migration in migrations[: targets[-1] + 1]:
            if self.is_selected(migration):
                self.lint_migration(migration, catalog)
            elif migration.key in in_model:
                forward = self.analyses.get(migration.up)
                if forward.effects is not None:
                    catalog.apply(forward.effects.effects, migration.up.display)

    def _has_guarded_create(self, migration: Migration) -> bool:
        forward = self.analyses.get(migration.up)
        return forward.effects is not None and any(
            e.action is Action.CREATE and (e.if_exists or "OR REPLACE" in e.detail)
            for e in forward.effects.effects
        )

    def lint_migration(self, migration: Migration, catalog: Catalog) -> None:
        """Every rule that concerns one migration and its scripts."""
        forward = self.analyses.get(migration.up)
        self.lint_script(forward, migration, catalog)
        tracker = SyncTracker(catalog)
        if forward.effects is not None:
            tracker.forward(forward.effects.effects)
            catalog.apply(forward.effects.effects, migration.up.display)
        if migration.down is None:
            self.emit(
                "BO101",
                migration.up,
                _head(migration.up),
                f"migration {migration.id} has no rollback script: write one "
                f"(`backout new {migration.id}` scaffolds it)",
                migration,
            )
        else:
            rollback = self.analyses.get(migration.down)
            self.lint_script(rollback, migration, catalog)
            self.lint_rollback_header(rollback, migration)
            if forward.effects is not None and rollback.effects is not None and rollback.statements:
                self.lint_sync(tracker, forward, rollback, migration)
        for _, script in migration.partials:
            partial = self.analyses.get(script)
            self.lint_script(partial, migration, catalog)
            self.lint_rollback_header(partial, migration)

    # --- rules on one script ------------------------------------------------------------------

    def lint_script(self, analysed: _Analysed, migration: Migration, catalog: Catalog) -> None:
        """Rules that need only the script (and the catalog the forward migrations built)."""
        script = analysed.script
        for line, problem in analysed.suppressions.problems:
            self.emit("BO505", script, line, problem, migration)
        if analysed.error is not None:
            line = analysed.error.line or _head(script)
            self.emit("BO501", script, line, analysed.error.message, migration)
            return
        for kind, check, reason in writing_checks(self.dialect, script):
            self.emit(
                "BO106",
                script,
                check.line,
                f"{kind} query must only read, but {reason}: a check must never change data",
                migration,
            )
        effects = analysed.effects
        assert effects is not None
        self.lint_transaction(analysed, migration)
        for unknown in effects.unknown:
            self.emit("BO402", script, unknown.line, f"needs review: {unknown.reason}", migration)
        for outside in effects.server:
            self.emit(
                "BO403",
                script,
                outside.line,
                f"{outside.describe()}: no rollback or restore undoes it",
                migration,
            )
        self.lint_dml(effects, script, migration)
        for blocked in catalog.check_drops(effects.effects, script.display):
            for fk in blocked.references:
                table = blocked.effect.target.qualified_name
                child = fk.child.qualified_name
                if blocked.effect.cascade:
                    self.emit(
                        "BO302",
                        script,
                        blocked.effect.line,
                        f"DROP TABLE {table} CASCADE also drops foreign key "
                        f"{quote_identifier(fk.name.name)} of {child} ({fk.origin}): drop it "
                        "explicitly first, so the rollback says what it removes",
                        migration,
                    )
                else:
                    self.emit(
                        "BO301",
                        script,
                        blocked.effect.line,
                        f"DROP TABLE {table} fails while {child} still references it by "
                        f"foreign key {quote_identifier(fk.name.name)} ({fk.origin}): drop {child} "
                        "or that foreign key first",
                        migration,
                    )

    def lint_transaction(self, analysed: _Analysed, migration: Migration) -> None:
        """Transaction control that cannot be honoured (BO303), a statement that cannot run in
        the script's own block (BO304), a new enum value used in the block that adds it
        (BO305). A script that runs journaled is no finding: ``up`` runs it as shipped."""
        for rule, line, message in analysed.conflicts:
            self.emit(rule, analysed.script, line, message, migration)

    def lint_dml(self, effects: ScriptEffects, script: Script, migration: Migration) -> None:
        """DELETE/UPDATE without WHERE, unless the script drops the table afterwards."""
        for effect in effects.dml_without_where():
            table = effect.table or effect.target
            dropped_later = any(
                e.action is Action.DROP
                and e.target.kind is ObjectKind.TABLE
                and e.statement.index > effect.statement.index
                and same_object(e.target, table)
                for e in effects.effects
            )
            if dropped_later:
                continue
            where = f" (in {effect.context})" if effect.context else ""
            if effect.action is Action.DELETE:
                text = f"DELETE FROM {table.qualified_name} without WHERE removes every row"
            else:
                columns = ", ".join(quote_identifier(c) for c in effect.columns) or "columns"
                text = (
                    f"UPDATE {table.qualified_name} without WHERE overwrites {columns} in every row"
                )
            self.emit("BO401", script, effect.line, text + where, migration)

    def lint_rollback_header(self, analysed: _Analysed, migration: Migration) -> None:
        """Rollback and partial scripts: statements present, risk declared and not understated,
        no scaffold placeholders left."""
        script = analysed.script
        kind = "rollback" if script.kind is ScriptKind.ROLLBACK else "partial rollback"
        raw = scan_directives(script.text, script.display, first_line=script.first_line)
        for directive in raw:
            placeholder = self._placeholders.get(directive.name)
            value = directive.value.lower()
            if "or delete this line" in value or (
                placeholder is not None and value.startswith(placeholder[:24])
            ):
                self.emit(
                    "BO105",
                    script,
                    directive.line,
                    f"directive '{directive.name}' still holds the text `backout new` wrote: "
                    "replace it (or delete the line)",
                    migration,
                )
        if analysed.effects is None:
            return
        if not analysed.statements:
            if script.directives.data_only is None:  # data-only: its steps are manual
                self.emit(
                    "BO102",
                    script,
                    _head(script),
                    f"the {kind} has no statements: running it would change nothing and still "
                    "record the migration as rolled back",
                    migration,
                )
            return
        assessment = assess_static(analysed.effects)
        declared = script.directives.risk
        if declared is None:
            self.emit(
                "BO103",
                script,
                _head(script),
                f"the {kind} declares no risk; its statements carry {assessment.risk} "
                f"(add `-- backout:risk {assessment.risk}`)",
                migration,
            )
        elif assessment.understates(declared):
            line = next((d.line for d in raw if d.name == "risk"), _head(script))
            worst = assessment.reasons[0] if assessment.reasons else ""
            self.emit(
                "BO104",
                script,
                line,
                f"declares risk {declared} but its statements carry {assessment.risk}: {worst}",
                migration,
            )

    # --- forward and rollback together --------------------------------------------------------

    def lint_sync(
        self, tracker: SyncTracker, forward: _Analysed, rollback: _Analysed, migration: Migration
    ) -> None:
        """What the rollback leaves, drops without reason, or does not restore."""
        assert rollback.effects is not None
        result = tracker.rollback(rollback.effects.effects)
        script = rollback.script
        up = forward.script.display
        for obj in result.left:
            assert obj.created is not None
            self.emit(
                "BO201",
                script,
                _head(script),
                f"leaves {obj.ref.display}, which the forward migration creates "
                f"({up}:{obj.created.line}): drop it in the rollback",
                migration,
            )
        for obj in result.not_renamed_back:
            assert obj.original is not None
            self.emit(
                "BO201",
                script,
                _head(script),
                f"leaves {obj.original.display} renamed to {obj.ref.qualified_name} by the "
                "forward migration: rename it back",
                migration,
            )
        for effect in result.unrelated_drops:
            self.emit(
                "BO202",
                script,
                effect.line,
                f"drops {effect.target.display}, which the forward migration does not create: "
                "check that the rollback should remove it",
                migration,
            )
        declared = bool(script.directives.data_loss)
        for effect, original in result.not_restored:
            text = (
                f"the forward migration drops {original.display} ({up}:{effect.line}) and the "
                "rollback does not re-create it: its data cannot come back"
            )
            if declared:
                self.emit("BO203", script, _head(script), text, migration)
            else:
                self.emit(
                    "BO204",
                    script,
                    _head(script),
                    text + "; say so in a `-- backout:data-loss` directive",
                    migration,
                )

    # --- history --------------------------------------------------------------------------------

    def lint_history(self, report: StatusReport) -> None:
        """Forward migrations edited after they were applied."""
        by_key = self.project.by_key()
        for entry in report.edited:
            migration = by_key.get(entry.key)
            if migration is None or not self.is_selected(migration):
                continue
            applied = ""
            if entry.applied_at is not None:
                stamp = entry.applied_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
                applied = f" on {stamp} UTC"
            self.emit(
                "BO502",
                migration.up,
                _head(migration.up),
                f"{migration.id} was edited after it was applied{applied} (its checksum "
                "differs from the recorded one): restore the applied version, and put the "
                "change in a new migration",
                migration,
            )


# --- selecting migrations by path ------------------------------------------------------------


def _select(project: Project, paths: Sequence[Path]) -> set[str] | None:
    """History keys of the migrations whose files are among ``paths`` (None: all).

    A relative path is taken from the current folder (as pre-commit passes them), else from
    the project folder (``-C``)."""
    if not paths:
        return None
    files: set[Path] = set()
    folders: list[Path] = []
    for given in paths:
        path = given
        if not path.exists() and not path.is_absolute() and (project.root / path).exists():
            path = project.root / path
        if not path.exists():
            raise UsageError(f"no such file or folder: {given}")
        resolved = path.resolve()
        if resolved.is_dir():
            folders.append(resolved)
        else:
            files.add(resolved)
    selected: set[str] = set()
    for migration in project.migrations:
        for script in [
            migration.up,
            *([migration.down] if migration.down else []),
            *(s for _, s in migration.partials),
        ]:
            resolved = script.path.resolve()
            if resolved in files or any(resolved.is_relative_to(f) for f in folders):
                selected.add(migration.key)
                break
    return selected


def _parse_ignore(values: Iterable[str]) -> set[tuple[str, str | None]]:
    """``BO101`` (everywhere) or ``BO101:<migration>``; unknown rules are usage errors."""
    parsed: set[tuple[str, str | None]] = set()
    for value in values:
        text = value.strip()
        if text.lower().startswith(SQUAWK_PREFIX):
            name, _, where = text[len(SQUAWK_PREFIX) :].partition("@")
            parsed.add((SQUAWK_PREFIX + name.lower(), where or None))
            continue
        rule, _, where = text.partition(":")
        rule = rule.upper()
        if rule not in RULES:
            raise UsageError(
                f"--ignore: unknown rule {value!r}",
                hint=f"rules: {', '.join(RULES)}; squawk rules as squawk:<name>",
            )
        parsed.add((rule, where or None))
    return parsed


# --- dialect and database --------------------------------------------------------------------


def _dialect_for(config: Config, project: Project) -> Dialect:
    """The dialect the scripts are written for: Prisma's provider, else the URL's."""
    name = provider_dialect(project.provider) or config.url.dialect
    return dialect_for(DatabaseURL(raw="", dialect=name))


@dataclass
class _DatabaseState:
    state: str
    report: StatusReport | None = None
    problem: str | None = None


def _read_status(config: Config) -> _DatabaseState:
    """The applied state, or why it could not be read (never raises for the database)."""
    try:
        ws = Workspace.open(config)
    except ProjectError:
        raise
    except BackoutError as exc:
        return _DatabaseState("unavailable", problem=scrub(str(exc)))
    try:
        if not ws.database_exists():
            return _DatabaseState("not found")
        session = ws.dialect.connect(ws.url, actor=ws.actor, connect_timeout=5.0, create=False)
        try:
            report = ws.read_status(session)
        finally:
            session.close()
    except BackoutError as exc:
        return _DatabaseState("unavailable", problem=scrub(str(exc), ws.url.secrets))
    return _DatabaseState("checked", report=report)


# --- squawk ----------------------------------------------------------------------------------


def find_squawk() -> str | None:
    """The squawk binary: next to this Python (the ``squawk`` extra), else on PATH."""
    name = "squawk.exe" if os.name == "nt" else "squawk"
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("squawk")


def _squawk_version(binary: str) -> str:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise BackoutError(f"cannot run {binary}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BackoutError(f"{binary} --version did not answer in 30 s") from exc
    words = out.stdout.split()
    return words[-1] if words else "unknown"


def _run_squawk(binary: str, files: Sequence[Path], *, in_transaction: bool, cwd: Path) -> Any:
    """squawk's JSON findings for ``files`` (parsed; BackoutError when it fails)."""
    args = [
        binary,
        "--reporter",
        "json",
        "--exclude",
        ",".join(SQUAWK_EXCLUDED),
        "--no-error-on-unmatched-pattern",
    ]
    if in_transaction:
        args.append("--assume-in-transaction")
    args.extend(str(f) for f in files)
    try:
        out = subprocess.run(
            args, capture_output=True, text=True, cwd=cwd, timeout=300, check=False
        )
    except OSError as exc:
        raise BackoutError(f"cannot run {binary}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BackoutError("squawk did not finish in 300 s") from exc
    try:
        return json.loads(out.stdout or "[]")
    except json.JSONDecodeError as exc:
        first = (out.stderr or out.stdout).strip().splitlines()
        detail = first[0] if first else f"exit code {out.returncode}"
        raise BackoutError(f"squawk printed no JSON ({detail})") from exc


def _squawk(linter: _Linter, config: Config) -> str:
    """Run squawk over the selected PostgreSQL scripts; returns its version (or why not)."""
    binary = find_squawk()
    if binary is None:
        return "not installed"
    try:
        version = _squawk_version(binary)
    except BackoutError as exc:
        linter.emit("BO504", None, None, str(exc), None)
        return "failed"
    #: file → its scripts (a dbmate file holds two), with their migration
    owners: dict[Path, list[tuple[Script, Migration]]] = {}
    for migration in linter.project.migrations:
        if not linter.is_selected(migration):
            continue
        for script in linter.scripts_of(migration):
            owners.setdefault(script.path.resolve(), []).append((script, migration))
    groups: dict[bool, list[Path]] = {True: [], False: []}
    for path, scripts in owners.items():
        # a script that runs journaled is not one transaction: squawk must not assume one
        groups[all(linter.analyses.get(s).atomic for s, _ in scripts)].append(path)
    for in_transaction, files in groups.items():
        for start in range(0, len(files), 500):
            chunk = files[start : start + 500]
            try:
                results = _run_squawk(binary, chunk, in_transaction=in_transaction, cwd=config.root)
            except BackoutError as exc:
                linter.emit("BO504", None, None, str(exc), None)
                return f"{version} (failed)"
            _squawk_findings(linter, results, owners, config.root)
    return version


def _squawk_findings(
    linter: _Linter,
    results: Any,
    owners: dict[Path, list[tuple[Script, Migration]]],
    root: Path,
) -> None:
    if not isinstance(results, list):
        linter.emit("BO504", None, None, "squawk's JSON is not a list of findings", None)
        return
    for item in results:
        if not isinstance(item, dict):
            continue
        rule_name = str(item.get("rule_name") or "unknown")
        if rule_name in SQUAWK_IGNORED:
            continue
        path = (root / str(item.get("file", ""))).resolve()
        scripts = owners.get(path)
        if not scripts:
            continue
        # squawk numbers lines from 0
        line = int(item.get("line") or 0) + 1
        script, migration = scripts[0]
        for candidate, owner in scripts:
            if candidate.first_line <= line:
                script, migration = candidate, owner
        if script.kind is not ScriptKind.FORWARD and rule_name in SQUAWK_FORWARD_ONLY:
            continue
        level = str(item.get("level", "warning")).lower()
        message = str(item.get("message", "")).strip()
        help_text = item.get("help")
        if help_text:
            message += f" ({str(help_text).strip().rstrip('.')})"
        linter.emit(
            SQUAWK_PREFIX + rule_name,
            script,
            line,
            message,
            migration,
            severity=Severity.ERROR if level == "error" else Severity.WARNING,
            name=rule_name,
            docs=SQUAWK_DOCS.format(name=rule_name),
        )


# --- the verb --------------------------------------------------------------------------------


def lint(
    config: Config,
    paths: Sequence[Path] = (),
    *,
    check_database: bool | None = None,
    ignore: Sequence[str] = (),
    squawk: bool = True,
) -> LintReport:
    """Check the migration folder statically; every problem is a finding, in one run.

    ``paths`` restricts findings to migrations whose forward, rollback or partial files are
    among the given files or under the given folders. ``check_database``: None reads the
    applied state (edited migrations) only when a database URL is configured explicitly;
    True always; False never (``--offline``). ``ignore`` holds rule ids (``BO101``) or
    rule ids for one migration (``BO101:<migration id>``). ``squawk=False`` skips squawk.
    """
    ignored = _parse_ignore(ignore)
    project = load_project(
        config.root,
        layout=config.layout,
        migrations_dir=config.migrations_dir,
        rollback_dir=config.rollback_dir,
    )
    selected = _select(project, paths)
    dialect = _dialect_for(config, project)
    linter = _Linter(project, dialect, selected, ignored)
    linter.run()
    database = _lint_applied(linter, config, check_database)
    if not squawk:
        squawk_state = "disabled"
    elif not dialect.squawk_parses:
        squawk_state = f"not applicable ({dialect.name})"
    else:
        squawk_state = _squawk(linter, config)
    linted = [m for m in project.migrations if linter.is_selected(m)]
    return LintReport(
        findings=_in_report_order(linter.findings, project),
        suppressed=linter.suppressed,
        migrations=len(linted),
        scripts=sum(len(linter.scripts_of(m)) for m in linted),
        dialect=dialect.name,
        database=database,
        squawk=squawk_state,
    )


def _lint_applied(linter: _Linter, config: Config, check_database: bool | None) -> str:
    """Check the applied state when wanted (see :func:`lint`); what became of the database."""
    wants_database = (
        check_database if check_database is not None else config.url_source != "default"
    )
    if check_database is False:
        return "offline"
    if not wants_database:
        return "not configured"
    state = _read_status(config)
    if state.report is not None:
        linter.lint_history(state.report)
    if state.problem is not None:
        linter.emit("BO503", None, None, f"could not check applied state: {state.problem}", None)
    return state.state


def _in_report_order(findings: Sequence[Finding], project: Project) -> tuple[Finding, ...]:
    """backout's own findings first, squawk's after them, each by migration, file and line.

    On Prisma-generated SQL squawk reports hundreds of style and lock-safety notes that would
    bury a rollback that loses data.
    """
    order = {m.id: i for i, m in enumerate(project.migrations)}
    return tuple(
        sorted(
            findings,
            key=lambda f: (
                f.rule.startswith(SQUAWK_PREFIX),
                f.file is None,
                order.get(f.migration or "", -1),
                f.file or "",
                f.line or 0,
                f.severity is not Severity.ERROR,
                f.rule,
            ),
        )
    )
