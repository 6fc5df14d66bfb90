"""Commands that set up a project and move it forward: init, new, status, up, resolve."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from backout import api
from backout.api.action_documents import up_fields, up_outcome
from backout.api.status_document import status_json
from backout.cli import main, render

if TYPE_CHECKING:
    from backout.api import UpResult
    from backout.project.migration import Migration
from backout.cli.common import (
    ActionDocument,
    build_config,
    fail,
    handle_errors,
    lock_wait_option,
    project_options,
)
from backout.cli.fleet_options import fleet_options
from backout.model.errors import UsageError
from backout.project.migration import Migration

if TYPE_CHECKING:
    pass


@main.command()
@click.option(
    "--layout",
    type=click.Choice(["prisma", "plain", "dbmate", "flyway"]),
    help="Layout to use (default: detect it; needed to start a new project).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing backout.toml.")
@project_options
@handle_errors
def init(
    layout: str | None, force: bool, url: str | None, project: Path | None, config_file: Path | None
) -> None:
    """Write backout.toml for this project (detects the layout)."""
    config = build_config(url=url, project=project, config_file=config_file, validate_url=False)
    result = api.init(config, layout=layout, force=force)
    click.echo(
        f"Wrote {result.config_file} ({result.layout} layout, "
        f"migrations in {result.migrations_dir.relative_to(config.root)})."
    )
    for path in result.created:
        click.echo(f"Created {path.relative_to(config.root)}/")
    if result.gitignore_updated:
        click.echo("Added .backout/ (backups hold data) to .gitignore.")


@main.command()
@click.argument("name")
@project_options
@handle_errors
def new(name: str, url: str | None, project: Path | None, config_file: Path | None) -> None:
    """Scaffold a migration and its rollback script with a directive header.

    Given the id of an existing migration that has no rollback, scaffold only its rollback.
    """
    config = build_config(url=url, project=project, config_file=config_file, validate_url=False)
    result = api.new(config, name)
    for path in result.created:
        click.echo(f"Created {path.relative_to(config.root)}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON (docs/json.md).")
@project_options
@handle_errors
@fleet_options
def status(as_json: bool, url: str | None, project: Path | None, config_file: Path | None) -> None:
    """Show every migration: applied, pending, failed, rolled back; rollbacks and their risk.

    Exits 1 when something needs attention: a failed migration, an applied one edited since,
    history whose files are missing, a run or restore that stopped part-way, or a rollback
    (or partial) script `rollback` would refuse (a syntax error).
    """
    config = build_config(url=url, project=project, config_file=config_file)
    result = api.status(config)
    ws = result.workspace
    if as_json:
        render.echo_json(
            status_json(
                result.report,
                layout=ws.project.layout,
                database=ws.url.masked(),
                database_source=config.url_source,
                history_table=ws.ledger.name,
                host_table=ws.host.table_name if ws.host is not None else None,
                database_exists=result.database_exists,
                notes=result.notes,
                residues=result.residues,
                broken=result.broken,
                repeatables=result.repeatables,
            )
        )
    else:
        render.status(result)
    if result.problems():
        fail(result.attention(), None, 1)


@main.command()
@click.option("--to", "target", metavar="ID", help="Apply up to and including this migration.")
@click.option("--dry-run", is_flag=True, help="Print the exact SQL instead of running it.")
@click.option("--allow-edited", is_flag=True, help="Continue although an applied script changed.")
@click.option("--allow-missing", is_flag=True, help="Continue although applied files are gone.")
@click.option("--lock-timeout", metavar="DURATION", help="Per-attempt lock wait, e.g. 2s.")
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON (docs/json.md).")
@project_options
@lock_wait_option
@handle_errors
@fleet_options
def up(
    target: str | None,
    dry_run: bool,
    allow_edited: bool,
    allow_missing: bool,
    lock_timeout: str | None,
    as_json: bool,
    url: str | None,
    project: Path | None,
    config_file: Path | None,
) -> None:
    """Apply pending migrations in order, each in one transaction, under the run lock."""
    import time

    config = build_config(
        url=url, project=project, config_file=config_file, lock_timeout=lock_timeout
    )
    started = time.monotonic()
    lines = _UpLines(dry_run=dry_run, as_json=as_json)
    with ActionDocument("up", as_json) as document:
        try:
            result = api.up(
                config,
                to=target,
                dry_run=dry_run,
                allow_edited=allow_edited,
                allow_missing=allow_missing,
                progress=lines.progress,
                notice=lines.notice,
            )
        except BaseException:
            if lines.running:
                click.echo(" failed", err=as_json)
            raise
    if as_json:
        fields = up_fields(result)
        if dry_run:
            fields["sql"] = result.transcript
        document.emit(up_outcome(result), fields)
        return
    if dry_run:
        click.echo("\n".join(result.transcript))
        return
    _report_up(result, time.monotonic() - started)


class _UpLines:
    """``Applying X ... ok`` lines while ``up`` runs (on stderr with --json: stdout holds the
    document only), and its notices."""

    def __init__(self, *, dry_run: bool, as_json: bool) -> None:
        self.dry_run = dry_run
        self.as_json = as_json
        #: the migration whose line is open (``Applying X ...``)
        self.running: list[str] = []

    def progress(self, event: str, migration: Migration) -> None:
        """A migration starts or is done."""
        if self.dry_run:
            return
        if event == "start":
            self.running.append(migration.id)
            click.echo(f"Applying {migration.id} ...", nl=False, err=self.as_json)
        else:
            self.running.clear()
            click.echo(" ok", err=self.as_json)

    def notice(self, text: str) -> None:
        """Inside an open "Applying X ..." line (a lock-timeout retry), or a line of its own
        (waiting for the run lock, before anything is applied)."""
        if self.running:
            click.echo(f"\n  … {text}", err=True, nl=False)
        else:
            click.echo(f"… {text}", err=True)


def _report_up(result: UpResult, elapsed: float) -> None:
    """What ``up`` applied, with notes on journaled and out-of-order migrations."""
    if not result.applied and not result.repeatables:
        click.echo("Nothing to apply: the database is up to date.")
        return
    statements = sum(m.statements for m in [*result.applied, *result.repeatables])
    repeatables = f", {len(result.repeatables)} repeatable(s)" if result.repeatables else ""
    click.echo(
        f"Applied {len(result.applied)} migration(s){repeatables}, {statements} statement(s), "
        f"in {elapsed:.2f} s."
    )
    journaled = [m for m in result.applied if m.journaled]
    if journaled:
        shown = "; ".join(f"{m.id} ({m.journaled})" for m in journaled[:3])
        more = f"; and {len(journaled) - 3} more" if len(journaled) > 3 else ""
        click.echo(
            f"note: {len(journaled)} migration(s) ran journaled, statement by statement: "
            f"{shown}{more}."
        )
    for repeat in result.repeatables:
        click.echo(f"Ran repeatable {repeat.id} (recorded in Flyway's history).")
    for migration_id in result.out_of_order:
        click.echo(f"note: {migration_id} was applied out of order (older than applied ones).")


@main.command()
@click.argument("migration_id", metavar="ID")
@click.option("--applied", is_flag=True, help="Record it as applied (baseline).")
@click.option(
    "--rolled-back", "rolled_back", is_flag=True, help="Record a failed one as rolled back."
)
@project_options
@lock_wait_option
@handle_errors
def resolve(
    migration_id: str,
    applied: bool,
    rolled_back: bool,
    url: str | None,
    project: Path | None,
    config_file: Path | None,
) -> None:
    """Fix the bookkeeping of a migration, as `prisma migrate resolve` does."""
    if applied == rolled_back:
        raise UsageError("say either --applied or --rolled-back (one of them)")
    config = build_config(url=url, project=project, config_file=config_file)
    result = api.resolve(config, migration_id, applied=applied)
    click.echo(
        f"Recorded {result.migration} as {result.marked.replace('_', ' ')} "
        f"(was {result.previous_state.replace('_', ' ')})."
    )
