"""Human rendering of rollback plans and outcomes, printed without rich (its import and first
table cost as much as the rest of ``plan``'s own work: issue 14) but as rich's console prints
them (see :func:`backout.cli.render.say` and :func:`~backout.cli.render.fitted_grid`); only a
partial rollback's preview table, and a table on a terminal, are drawn by rich."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backout.analysis.risk import loss_summary, loss_text
from backout.cli.render import Cell, Column, console, fitted_grid, say
from backout.dialects.params import render_literal

if TYPE_CHECKING:
    from backout.analysis.impact import ScriptImpact
    from backout.api import PlanView, RollbackResult
    from backout.rollback.rollback import StepView
    from backout.rollback.schema_update import SchemaUpdateResult


def nothing_to_roll_back(target: str | None) -> str:
    """The line for an empty plan (exit 0: the database already is where it would go)."""
    if target is None:
        return "Nothing to roll back: no migration is applied."
    return f"Nothing to roll back: {target} is the latest applied migration."


def plan(view: PlanView, *, err: bool = False) -> None:
    """The plan: steps, declared properties, require checks, backup, execution settings."""
    if view.plan.empty:
        say(nothing_to_roll_back(view.plan.target), err=err)
        return
    _heading(view, err=err)
    _steps_table(view, err=err)
    for step, impact in zip(view.steps, view.impact.scripts, strict=False):
        _step_details(step, impact, err=err)
    say(f"Backup: {view.backup.describe()}", err=err)
    if view.schema_update is not None:
        say(
            f"Schema update (--update-schema={view.schema_update.mode}): "
            f"{view.schema_update.describe()}",
            err=err,
        )
    statement = f"{view.statement_timeout:g}s" if view.statement_timeout else "none"
    shape = "one transaction" if view.transactions == 1 else f"{view.transactions} transactions"
    say(
        f"Execution: {shape}, under the run lock ({view.lock}); lock timeout "
        f"{view.lock_timeout:g}s, "
        f"{view.lock_retries} retries with backoff; statement timeout {statement}.",
        err=err,
    )
    for warning in view.warnings:
        say(("warning: ", "bold yellow"), warning, err=err)


def _heading(view: PlanView, *, err: bool) -> None:
    """What is rolled back, on which database: a partial rollback with its parameters and
    preview, or the migration that is the newest applied afterwards."""
    if not view.plan.partial:
        say(("Rollback plan", "bold"), " on ", (view.database, "dim"), err=err)
        after = view.plan.target or "nothing (every migration rolled back)"
        say(f"Afterwards the newest applied migration is {after}.", err=err)
        return
    first = view.steps[0].step
    say(
        ("Partial rollback ", "bold"),
        (view.plan.partial, "bold cyan"),
        f" of {first.migration.id} on ",
        (view.database, "dim"),
        err=err,
    )
    say("Data only: the migration stays applied.", err=err)
    for name, value in view.params.items():
        say(f"  param {name} = {render_literal(value)}", err=err)
    if view.preview is not None:
        _preview(view)


def _steps_table(view: PlanView, *, err: bool) -> None:
    """One row per script: declared and computed risk, and the data it loses."""
    columns = [
        Column("#"),
        Column("migration"),
        Column("rollback script", wraps=True),
        Column("declared"),
        Column("computed"),
        Column("data lost"),
    ]
    rows: list[list[Cell]] = []
    impacts = view.impact.scripts
    for number, (step, impact) in enumerate(zip(view.steps, impacts, strict=False), start=1):
        risk = step.step.declared_risk
        computed: Cell = (impact.assessment.risk.name, "")
        if impact.understated:
            computed = (computed[0] + " understated!", "bold red")
        rows.append(
            [
                (str(number), ""),
                (step.step.migration.id, ""),
                (step.step.script.display, ""),
                (risk.name, "") if risk is not None else ("undeclared", "bold red"),
                computed,
                (loss_summary(impact.losses), ""),
            ]
        )
    fitted_grid(columns, rows, err=err)


def _step_details(step: StepView, impact: ScriptImpact, *, err: bool) -> None:
    """A script's details (nothing when it has none): what it changes and writes, what it
    declares, what the analysis found, and its require and verify checks."""
    d = step.step.script.directives
    lines = _detail_lines(step, impact)
    if not lines and not step.requires and not d.verify:
        return
    say((step.step.migration.id, "bold"), err=err)
    for label, text in lines:
        say(f"  {label}: {text}", err=err)
    for check in step.requires:
        if check.passes is True:
            verdict = ("passes now", "green")
        elif check.passes is False:
            verdict = ("FAILS now", "bold red")
        else:
            verdict = (f"cannot be evaluated yet ({check.error})", "yellow")
        say(f"  require (line {check.line}): ", verdict, f"  {check.sql}", err=err)
    for verify in d.verify:
        say(f"  verify (line {verify.line}), after the statements: {verify.sql}", err=err)


def _detail_lines(step: StepView, impact: ScriptImpact) -> list[tuple[str, str]]:
    """(label, text) lines of a script's details, in the order shown."""
    d = step.step.script.directives
    lines = [("impact", t) for t in d.impact] + [("data loss", t) for t in d.data_loss]
    lines += [("manual", t) for t in d.manual]
    objects = [f"{e.action.value} {e.target.display}" for e in impact.objects()]
    if objects:
        shown = ", ".join(objects[:12]) + (
            f" … (+{len(objects) - 12})" if len(objects) > 12 else ""
        )
        lines.insert(0, ("changes", shown))
    lines += [("lost", loss_text(x)) for x in impact.losses if x.count]
    lines += [("risk", r) for r in impact.assessment.reasons[:5]]
    lines += [("cannot count", u) for u in impact.uncounted]
    lines += [("side effect", x) for x in impact.side_effects]
    lines += [("needs review", f"line {u.line}: {u.reason}") for u in impact.effects.unknown]
    if step.tables:
        lines.insert(0, ("writes", ", ".join(step.tables)))
    return lines


def _preview(view: PlanView) -> None:
    """The preview query's count and first rows."""
    from rich.table import Table

    preview = view.preview
    assert preview is not None
    out = console()
    out.print(
        f"Preview (line {preview.line}): {preview.count:,} row(s) will be affected"
        + (f"; the first {len(preview.rows)}:" if preview.rows else "."),
        markup=False,
    )
    if preview.rows:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in preview.columns:
            table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=40)
        for row in preview.rows:
            table.add_row(*("NULL" if v is None else str(v) for v in row))
        out.print(table)


def outcome(result: RollbackResult) -> None:
    """After a rollback: what was done, the backup, hooks, and manual steps to do now."""
    ids = ", ".join(result.rolled_back)
    if result.view.plan.partial:
        say(
            f"Partial rollback {result.view.plan.partial} of {ids}: {result.statements} "
            f"statement(s), {result.rows_affected:,} row(s) changed, in "
            f"{result.duration_s:.2f} s. The migration stays applied."
        )
    else:
        say(
            f"Rolled back {len(result.rolled_back)} migration(s) ({ids}): {result.statements} "
            f"statement(s) in {result.duration_s:.2f} s, {result.attempts} attempt(s)."
        )
    if result.backup is not None:
        say(
            f"Backup {result.backup.id} ({result.backup.kind}, sha256 "
            f"{result.backup.sha256[:12]}…): restore with `backout restore {result.backup.id}`."
        )
    if result.schema_update is not None:
        _schema_update(result.schema_update)
    for hook in result.hooks:
        say((hook.describe(), "green" if hook.ok else "bold red"))
        if not hook.ok and hook.output.strip():
            say(hook.output.strip()[-2000:])
    if result.manual:
        say(("Manual steps declared by the scripts, to do now:", "bold"))
        for number, (migration, text) in enumerate(result.manual, start=1):
            say(f"  {number}. {text}  ({migration})")


def _schema_update(update: SchemaUpdateResult) -> None:
    """What ``--update-schema`` did: the diff, each command, the state, what is left."""
    say(f"Schema update (--update-schema={update.mode}): {update.state}.")
    _print_diff(update)
    for run in update.commands:
        say((run.describe(), "green" if run.ok else "bold red"))
        if not run.ok and run.output.strip():
            say(run.output.strip()[-2000:])
    if update.reason:
        say(f"Not done here: {update.reason}.")
    if update.manual:
        say(("To do by hand for the schema:", "bold"))
        for number, step in enumerate(update.manual, start=1):
            say(f"  {number}. {step}")


def _print_diff(update: SchemaUpdateResult) -> None:
    if not update.diff:
        say(f"{update.schema}: no change.")
        return
    for line in update.diff.removesuffix("\n").split("\n"):  # as written: "\n" ends a line
        style = ""
        if line.startswith("+") and not line.startswith("+++"):
            style = "green"
        elif line.startswith("-") and not line.startswith("---"):
            style = "red"
        say((line.removesuffix("\r"), style), wrap=False)


def schema_diff(update: SchemaUpdateResult | None) -> None:
    """A dry run's schema update: what it would do, and (git mode) the diff it would make."""
    if update is None:
        return
    say(f"Schema update (--update-schema={update.mode}): {update.state}")
    if update.diff or update.commit:
        _print_diff(update)
