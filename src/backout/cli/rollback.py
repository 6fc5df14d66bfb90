"""``plan`` and ``rollback``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from backout import api
from backout.api import PartialRequest
from backout.api.action_documents import rollback_fields, rollback_outcome
from backout.api.documents import plan_json, plan_markdown
from backout.cli import main, render, render_plan
from backout.cli.common import (
    ActionDocument,
    F,
    ask,
    build_config,
    fail,
    handle_errors,
    lock_wait_option,
    project_options,
)
from backout.cli.fleet_options import fleet_options
from backout.cli.render import echo_json
from backout.model.errors import Declined, UsageError
from backout.rollback.rollback import plan_refusals
from backout.rollback.schema_update import failure as schema_update_failure

if TYPE_CHECKING:
    from collections.abc import Callable

    from backout.api import PartialRequest, PlanView, RollbackResult
    from backout.project.config import Config
    from backout.rollback.recovery import RecoveryPlan

#: options shared by plan and rollback
shared_options = [
    click.argument("migration_id", metavar="[ID]", required=False),
    click.option("--to", "target", metavar="ID", help="Roll back every migration after ID."),
    click.option("--steps", type=int, help="Roll back the last N applied migrations (default 1)."),
    click.option(
        "--partial",
        metavar="NAME",
        help="Run the data-only partial rollback NAME of migration ID instead.",
    ),
    click.option(
        "--param",
        "params",
        multiple=True,
        metavar="KEY=VALUE",
        help="A value for a partial rollback's declared parameter (repeatable).",
    ),
    click.option(
        "--backup",
        "backup_mode",
        type=click.Choice(["scoped", "full", "none"]),
        default="scoped",
        show_default=True,
        help="scoped: full schema + the touched tables' rows; full: everything.",
    ),
    click.option("--exact", is_flag=True, help="Count rows exactly even on large tables."),
    click.option(
        "--simulate/--no-simulate",
        default=True,
        show_default=True,
        help="Also run the scripts on a schema-only scratch copy and compare with the parser.",
    ),
    click.option("--lock-timeout", metavar="DURATION", help="Per-attempt lock wait (default 2s)."),
]


def _partial(
    migration_id: str | None, partial: str | None, params: tuple[str, ...]
) -> PartialRequest | None:
    """The PartialRequest the options describe (None for a full rollback)."""
    if partial is None:
        if migration_id is not None or params:
            raise UsageError(
                "ID and --param go with --partial NAME; for a full rollback use --to ID"
            )
        return None
    values: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: expected KEY=VALUE")
        values[key.strip()] = value
    return PartialRequest(name=partial, migration=migration_id, params=values)


def _targets(func: F) -> F:
    for option in reversed(shared_options):
        func = option(func)
    return func


@main.command()
@_targets
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON (docs/json.md).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    help="Output: table (default), json (= --json), markdown (for a pull-request comment).",
)
@project_options
@handle_errors
@fleet_options
def plan(
    migration_id: str | None,
    target: str | None,
    steps: int | None,
    partial: str | None,
    params: tuple[str, ...],
    backup_mode: str,
    as_json: bool,
    fmt: str,
    exact: bool,
    simulate: bool,
    lock_timeout: str | None,
    url: str | None,
    project: Path | None,
    config_file: Path | None,
) -> None:
    """Show what a rollback would do: scripts, computed impact and risk, checks, backup.

    Changes nothing. Exits 1 (saying why on stderr) when a `require` check does not hold now,
    when a script's declared risk understates the computed one, or when a script fails on the
    schema-only copy.
    """
    config = build_config(
        url=url, project=project, config_file=config_file, lock_timeout=lock_timeout
    )
    view = api.plan(
        config,
        to=target,
        steps=steps,
        backup=backup_mode,
        exact=exact,
        simulate=simulate,
        partial=_partial(migration_id, partial, params),
    )
    if as_json or fmt == "json":
        echo_json(plan_json(view))
    elif fmt == "markdown":
        click.echo(plan_markdown(view), nl=False)
    else:
        render_plan.plan(view)
    reasons = plan_refusals(view)
    if reasons:
        # The table may be cut on a narrow terminal, and JSON is for machines: the reason a
        # plan fails is always one line on stderr.
        fail("; ".join(reasons), "nothing was changed; read the plan above", 1)


@main.command()
@_targets
@click.option("--dry-run", is_flag=True, help="Print the exact SQL, locks and backup instead.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--i-accept-data-loss",
    "accept_data_loss",
    is_flag=True,
    help="Needed with --backup none, and when a declared risk understates the computed one.",
)
@click.option(
    "--ignore-simulation-failure",
    "ignore_simulation",
    is_flag=True,
    help="Run the rollback although it failed on a schema-only copy of the database "
    "(a backup is still taken first).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON (docs/json.md).")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the apply or rollback that stopped part-way (see status), after the "
    "statement that completed last.",
)
@click.option(
    "--undo-partial",
    "undo_partial",
    is_flag=True,
    help="Undo the statements an apply or rollback that stopped part-way completed: each "
    "one's inverse, or the backup taken before it.",
)
@click.option(
    "--update-schema",
    "update_schema",
    type=click.Choice(["pull", "git", "off"]),
    default=None,
    help="After COMMIT, update prisma/schema.prisma (pull: prisma db pull; git: as it was "
    "before the oldest rolled-back migration's commit), show its diff, run prisma generate "
    "(default: [prisma] update_schema in backout.toml, else off).",
)
@project_options
@lock_wait_option
@handle_errors
@fleet_options
def rollback(
    migration_id: str | None,
    target: str | None,
    steps: int | None,
    partial: str | None,
    params: tuple[str, ...],
    dry_run: bool,
    yes: bool,
    backup_mode: str,
    accept_data_loss: bool,
    ignore_simulation: bool,
    exact: bool,
    simulate: bool,
    lock_timeout: str | None,
    as_json: bool,
    resume: bool,
    undo_partial: bool,
    update_schema: str | None,
    url: str | None,
    project: Path | None,
    config_file: Path | None,
) -> None:
    """Roll back applied migrations: backup, lock, one transaction, verify, record.

    Without --to or --steps, rolls back the latest applied migration. With --partial NAME,
    runs the named data-only script of migration ID (its preview is shown first; the
    migration stays applied).

    On MySQL/MariaDB (DDL commits implicitly) and for `transaction off` scripts, every
    statement is journaled: when such an apply or rollback stops part-way, --resume
    continues it and --undo-partial undoes what it did.
    """

    config = build_config(
        url=url, project=project, config_file=config_file, lock_timeout=lock_timeout
    )
    if resume or undo_partial:
        schema = update_schema not in (None, "off")
        others = (migration_id, target, steps, partial, params, backup_mode != "scoped", schema)
        _recover(
            config,
            "resume" if resume else "undo",
            conflicting=(resume and undo_partial) or any(others),
            as_json=as_json,
            dry_run=dry_run,
            yes=yes,
        )
        return

    with ActionDocument("rollback", as_json) as document:
        result = api.rollback(
            config,
            to=target,
            steps=steps,
            dry_run=dry_run,
            backup=backup_mode,
            accept_data_loss=accept_data_loss,
            confirm=_confirm_rollback(yes=yes, as_json=as_json),
            progress=None if dry_run else _progress,
            exact=exact,
            simulate=simulate,
            partial=_partial(migration_id, partial, params),
            ignore_simulation=ignore_simulation,
            update_schema=update_schema,
        )
    _report_rollback(result, document, as_json=as_json, dry_run=dry_run)


def _progress(message: str) -> None:
    click.echo(f"… {message}", err=True)


def _confirm_rollback(*, yes: bool, as_json: bool) -> Callable[[PlanView], bool]:
    """Show the plan (on stderr with --json: stdout holds the document only), then ask."""

    def confirm(view: PlanView) -> bool:
        render_plan.plan(view, err=as_json)
        if yes:
            return True
        if not sys.stdin.isatty():
            raise Declined(
                "rollback changes the database: pass --yes to confirm when not on a terminal"
            )
        if view.plan.partial:
            return ask(f"Run partial rollback {view.plan.partial}?", err=as_json)
        return ask(f"Roll back {len(view.plan.steps)} migration(s)?", err=as_json)

    return confirm


def _report_rollback(
    result: RollbackResult, document: ActionDocument, *, as_json: bool, dry_run: bool
) -> None:
    """Print what the rollback did (or the document); exit 1 when a hook after it failed."""

    if as_json:
        fields = rollback_fields(result)
        if dry_run:
            fields["sql"] = result.transcript
        document.emit(rollback_outcome(result), fields)
    elif result.view.plan.empty:
        click.echo(render_plan.nothing_to_roll_back(result.view.plan.target))
        return
    elif dry_run:
        render_plan.plan(result.view)
        click.echo("\n".join(result.transcript))
        render_plan.schema_diff(result.schema_update)
        return
    else:
        render_plan.outcome(result)
    failed_hooks = [h for h in result.hooks if not h.ok]
    if result.schema_update is not None and result.schema_update.failed:
        error = schema_update_failure(result.schema_update)
        also = f" ({failed_hooks[0].describe()})" if failed_hooks else ""
        fail(str(error) + also, error.hint, error.exit_code)
    if failed_hooks:
        fail(
            f"{failed_hooks[0].describe()}; the rollback itself is committed",
            "run the hook's command by hand",
            1,
        )


def _recover(
    config: Config, action: str, *, conflicting: bool, as_json: bool, dry_run: bool, yes: bool
) -> None:
    """``rollback --resume`` / ``--undo-partial``: plan, confirm, run, report."""
    if as_json:
        raise UsageError("--json does not apply to --resume or --undo-partial")
    if conflicting:
        raise UsageError(
            "--resume and --undo-partial work on the run that stopped part-way: give one of "
            "them, without an ID, --to, --steps, --partial, --param, --backup or "
            "--update-schema"
        )

    def confirm(plan: RecoveryPlan) -> bool:
        render.recovery_plan(plan)
        if yes or dry_run:
            return True
        if not sys.stdin.isatty():
            raise Declined(
                "this changes the database: pass --yes to confirm when not on a terminal"
            )
        verb = "Resume" if plan.action == "resume" else "Undo"
        return ask(f"{verb} the {plan.direction} of {plan.migration}?", err=False)

    result = api.recover(
        config, action, dry_run=dry_run, confirm=confirm, progress=None if dry_run else _progress
    )
    if dry_run:
        click.echo("\n".join(result.transcript))
        return
    render.recovery_outcome(result)
