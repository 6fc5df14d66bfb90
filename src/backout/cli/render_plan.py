"""Human rendering of rollback plans and outcomes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backout.analysis.risk import loss_summary, loss_text
from backout.cli.render import Column, console, fitted_table
from backout.dialects.params import render_literal

if TYPE_CHECKING:
    from rich.console import Console

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
    from rich.text import Text  # rich is heavy: loaded when a command renders

    out = console(err=err)
    if view.plan.empty:
        out.print(nothing_to_roll_back(view.plan.target), markup=False)
        return
    _heading(out, view)
    _steps_table(out, view)
    for step, impact in zip(view.steps, view.impact.scripts, strict=False):
        _step_details(out, step, impact)
    out.print(f"Backup: {view.backup.describe()}", markup=False)
    if view.schema_update is not None:
        out.print(
            f"Schema update (--update-schema={view.schema_update.mode}): "
            f"{view.schema_update.describe()}",
            markup=False,
        )
    statement = f"{view.statement_timeout:g}s" if view.statement_timeout else "none"
    shape = "one transaction" if view.transactions == 1 else f"{view.transactions} transactions"
    out.print(
        f"Execution: {shape}, under the run lock ({view.lock}); lock timeout "
        f"{view.lock_timeout:g}s, "
        f"{view.lock_retries} retries with backoff; statement timeout {statement}.",
        markup=False,
    )
    for warning in view.warnings:
        out.print(Text.assemble(("warning: ", "bold yellow"), warning))


def _heading(out: Console, view: PlanView) -> None:
    """What is rolled back, on which database: a partial rollback with its parameters and
    preview, or the migration that is the newest applied afterwards."""
    from rich.text import Text  # rich is heavy: loaded when a command renders

    if not view.plan.partial:
        out.print(Text.assemble(("Rollback plan", "bold"), " on ", (view.database, "dim")))
        after = view.plan.target or "nothing (every migration rolled back)"
        out.print(f"Afterwards the newest applied migration is {after}.", markup=False)
        return
    first = view.steps[0].step
    out.print(
        Text.assemble(
            ("Partial rollback ", "bold"),
            (view.plan.partial, "bold cyan"),
            f" of {first.migration.id} on ",
            (view.database, "dim"),
        )
    )
    out.print("Data only: the migration stays applied.", markup=False)
    for name, value in view.params.items():
        out.print(f"  param {name} = {render_literal(value)}", markup=False)
    if view.preview is not None:
        _preview(view)


def _steps_table(out: Console, view: PlanView) -> None:
    """One row per script: declared and computed risk, and the data it loses."""
    from rich.text import Text  # rich is heavy: loaded when a command renders

    columns = [
        Column("#"),
        Column("migration"),
        Column("rollback script", wraps=True),
        Column("declared"),
        Column("computed"),
        Column("data lost"),
    ]
    rows = []
    impacts = view.impact.scripts
    for number, (step, impact) in enumerate(zip(view.steps, impacts, strict=False), start=1):
        risk = step.step.declared_risk
        computed = Text(impact.assessment.risk.name)
        if impact.understated:
            computed.append(" understated!", style="bold red")
        rows.append(
            [
                str(number),
                step.step.migration.id,
                step.step.script.display,
                Text(
                    risk.name if risk is not None else "undeclared",
                    style="bold red" if risk is None else "",
                ),
                computed,
                loss_summary(impact.losses),
            ]
        )
    fitted_table(out, columns, rows)


def _step_details(out: Console, step: StepView, impact: ScriptImpact) -> None:
    """A script's details (nothing when it has none): what it changes and writes, what it
    declares, what the analysis found, and its require and verify checks."""
    from rich.text import Text  # rich is heavy: loaded when a command renders

    d = step.step.script.directives
    lines = _detail_lines(step, impact)
    if not lines and not step.requires and not d.verify:
        return
    out.print(Text(step.step.migration.id, style="bold"))
    for label, text in lines:
        out.print(f"  {label}: {text}", markup=False)
    for check in step.requires:
        if check.passes is True:
            verdict = Text("passes now", style="green")
        elif check.passes is False:
            verdict = Text("FAILS now", style="bold red")
        else:
            verdict = Text(f"cannot be evaluated yet ({check.error})", style="yellow")
        out.print(Text.assemble(f"  require (line {check.line}): ", verdict, f"  {check.sql}"))
    for verify in d.verify:
        out.print(
            f"  verify (line {verify.line}), after the statements: {verify.sql}", markup=False
        )


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
    from rich.text import Text  # rich is heavy: loaded when a command renders

    out = console()
    ids = ", ".join(result.rolled_back)
    if result.view.plan.partial:
        out.print(
            f"Partial rollback {result.view.plan.partial} of {ids}: {result.statements} "
            f"statement(s), {result.rows_affected:,} row(s) changed, in "
            f"{result.duration_s:.2f} s. The migration stays applied.",
            markup=False,
        )
    else:
        out.print(
            f"Rolled back {len(result.rolled_back)} migration(s) ({ids}): {result.statements} "
            f"statement(s) in {result.duration_s:.2f} s, {result.attempts} attempt(s).",
            markup=False,
        )
    if result.backup is not None:
        out.print(
            f"Backup {result.backup.id} ({result.backup.kind}, sha256 "
            f"{result.backup.sha256[:12]}…): restore with `backout restore {result.backup.id}`.",
            markup=False,
        )
    if result.schema_update is not None:
        _schema_update(out, result.schema_update)
    for hook in result.hooks:
        style = "green" if hook.ok else "bold red"
        out.print(Text(hook.describe(), style=style))
        if not hook.ok and hook.output.strip():
            out.print(hook.output.strip()[-2000:], markup=False)
    if result.manual:
        out.print("[bold]Manual steps declared by the scripts, to do now:[/]")
        for number, (migration, text) in enumerate(result.manual, start=1):
            out.print(f"  {number}. {text}  ({migration})", markup=False)


def _schema_update(out: Console, update: SchemaUpdateResult) -> None:
    """What ``--update-schema`` did: the diff, each command, the state, what is left."""
    from rich.text import Text  # rich is heavy: loaded when a command renders

    out.print(f"Schema update (--update-schema={update.mode}): {update.state}.", markup=False)
    _print_diff(out, update)
    for run in update.commands:
        out.print(Text(run.describe(), style="green" if run.ok else "bold red"))
        if not run.ok and run.output.strip():
            out.print(run.output.strip()[-2000:], markup=False)
    if update.reason:
        out.print(f"Not done here: {update.reason}.", markup=False)
    if update.manual:
        out.print("[bold]To do by hand for the schema:[/]")
        for number, step in enumerate(update.manual, start=1):
            out.print(f"  {number}. {step}", markup=False)


def _print_diff(out: Console, update: SchemaUpdateResult) -> None:
    if not update.diff:
        out.print(f"{update.schema}: no change.", markup=False)
        return
    from rich.text import Text  # rich is heavy: loaded when a command renders

    for line in update.diff.removesuffix("\n").split("\n"):  # as written: "\n" ends a line
        style = ""
        if line.startswith("+") and not line.startswith("+++"):
            style = "green"
        elif line.startswith("-") and not line.startswith("---"):
            style = "red"
        out.print(Text(line.removesuffix("\r"), style=style), soft_wrap=True)


def schema_diff(update: SchemaUpdateResult | None) -> None:
    """A dry run's schema update: what it would do, and (git mode) the diff it would make."""
    if update is None:
        return
    out = console()
    out.print(f"Schema update (--update-schema={update.mode}): {update.state}", markup=False)
    if update.diff or update.commit:
        _print_diff(out, update)
