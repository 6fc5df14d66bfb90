"""``emergency``: the emergency rollback procedure, with an incident report."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from backout import api
from backout.api.action_documents import emergency_fields, emergency_outcome
from backout.cli import main, render_plan
from backout.cli.common import (
    CLOSED_PIPE_EXIT,
    ActionDocument,
    ask,
    build_config,
    handle_errors,
    lock_wait_option,
    project_options,
)
from backout.model.errors import Declined

if TYPE_CHECKING:
    from backout.api import PlanView
    from backout.emergency.incident import EmergencyResult, StepRecord

_MARK = {"ok": "✓", "failed": "✗", "skipped": "–", "dry-run": "·", "pending": " "}


@main.command()
@click.option("--to", "target", required=True, metavar="ID", help="The migration to go back to.")
@click.option("--dry-run", is_flag=True, help="Rehearse every step without changing anything.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--i-accept-data-loss",
    "accept_data_loss",
    is_flag=True,
    help="Proceed although a declared risk understates the computed one.",
)
@click.option(
    "--ignore-simulation-failure",
    "ignore_simulation",
    is_flag=True,
    help="Proceed although the rollback failed on a schema-only copy of the database.",
)
@click.option(
    "--incidents",
    "incidents_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the incident report (default: incidents/ in the project).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON (docs/json.md).")
@project_options
@lock_wait_option
@handle_errors
def emergency(
    target: str,
    dry_run: bool,
    yes: bool,
    accept_data_loss: bool,
    ignore_simulation: bool,
    incidents_dir: Path | None,
    as_json: bool,
    url: str | None,
    project: Path | None,
    config_file: Path | None,
) -> None:
    """Emergency runbook: stop app, full backup, roll back, deploy previous, check, smoke.

    Stops at the first failure and says where things stand and what to do next. Always
    writes an incident report (incidents/<timestamp>_<target>.md).
    """
    config = build_config(url=url, project=project, config_file=config_file)
    output = _Stdout()
    with ActionDocument("emergency", as_json) as document:
        result = api.emergency(
            config,
            to=target,
            dry_run=dry_run,
            accept_data_loss=accept_data_loss,
            confirm=_confirm(output, yes=yes, as_json=as_json),
            progress=_progress(output, as_json=as_json),
            incidents_dir=incidents_dir,
            ignore_simulation=ignore_simulation,
        )
    output.shown(lambda: _summary(result, document, as_json=as_json, dry_run=dry_run))
    if output.closed:
        click.echo(
            f"warning: stdout was closed; the procedure went on. Incident report: {result.report}",
            err=True,
        )
    # Like every other command, what went wrong also goes to stderr as one line each.
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    failed = result.failed
    if failed is not None:
        click.echo(f"error: {failed.title}: {failed.detail or 'failed'}", err=True)
    if result.exit_code or output.closed:
        sys.exit(result.exit_code or CLOSED_PIPE_EXIT)


class _Stdout:
    """Stdout that may close under the procedure.

    Once under way, the procedure must not stop half-way (the application stopped, the
    database not rolled back) because nobody reads stdout any more (`| head`, a dead tee):
    it goes on; the incident report and stderr say what happened; the exit status is 141.
    """

    def __init__(self) -> None:
        self.closed = False

    def shown(self, write: Callable[[], None]) -> None:
        """Run ``write``; once stdout is closed, nothing more is written to it."""
        if self.closed:
            return
        try:
            write()
            sys.stdout.flush()
        except BrokenPipeError:
            self.closed = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


def _confirm(output: _Stdout, *, yes: bool, as_json: bool) -> Callable[[PlanView], bool]:
    """Show the plan (on stderr with --json: stdout holds the document only), then ask."""

    def confirm(view: PlanView) -> bool:
        output.shown(lambda: render_plan.plan(view, err=as_json))
        if yes:
            return True
        if not sys.stdin.isatty():
            raise Declined(
                "emergency changes the database: pass --yes to confirm when not on a terminal"
            )
        return ask("Run the emergency procedure?", err=as_json)

    return confirm


def _progress(output: _Stdout, *, as_json: bool) -> Callable[[StepRecord], None]:
    """One line per finished step."""

    def progress(step: StepRecord) -> None:
        mark = _MARK.get(step.status, "?")
        line = f"{mark} {step.title}: {step.status}" + (f" — {step.detail}" if step.detail else "")
        output.shown(lambda: click.echo(line, err=as_json))

    return progress


def _summary(
    result: EmergencyResult, document: ActionDocument, *, as_json: bool, dry_run: bool
) -> None:
    """The document, or where things stand, the next steps and the incident report."""
    if as_json:
        document.emit(emergency_outcome(result), emergency_fields(result))
        return
    if dry_run and result.rollback is not None and result.rollback.transcript:
        click.echo("\nThe rollback would run:\n" + "\n".join(result.rollback.transcript))
    click.echo(f"\nWhere things stand: {result.where_things_stand}")
    for number, step in enumerate(result.next_steps, start=1):
        click.echo(f"  {number}. {step}")
    click.echo(f"Incident report: {result.report}")
